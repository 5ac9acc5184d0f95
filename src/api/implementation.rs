//! Implementation over HTTP: the plan's tasks with their statuses, a person's
//! choices about them (retry, skip), progress, and the overview of a spec task.

use axum::Extension;
use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Json, Path};
use super::{AppState, Caller};
use crate::domain::*;
use crate::orchestrator::implementation::{FinalReport, ImplError, SpawnRequest};
use crate::orchestrator::progress::{self, Overview, Progress};

impl From<ImplError> for ApiError {
    fn from(err: ImplError) -> ApiError {
        match err {
            ImplError::Store(e) => e.into(),
            ImplError::Git(e) => ApiError::Internal(e.into()),
            ImplError::Other(m) | ImplError::Refused(m) => ApiError::Conflict(m),
            ImplError::Invalid(m) => ApiError::Validation(m),
        }
    }
}

/// The implementation tasks of a spec task, in plan order.
#[utoipa::path(get, path = "/spec-tasks/{id}/implementation-tasks", tag = "implementation", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<ImplementationTask>), (status = 404, body = ErrorBody)))]
pub async fn list_tasks(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<ImplementationTask>>> {
    state.store.get_spec_task(SpecTaskId(id)).await?;
    Ok(Json(
        state
            .store
            .list_implementation_tasks(SpecTaskId(id))
            .await?,
    ))
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    Retry,
    Skip,
    Cancel,
}

/// The lifecycle event a decision named in a path stands for.
fn decision_event(decision: &str) -> Result<ImplementationTaskEvent, ApiError> {
    let parsed: Decision = serde_json::from_value(serde_json::Value::String(decision.to_string()))
        .map_err(|_| {
            ApiError::NotFound(format!(
                "no decision {decision:?}; use retry, skip or cancel"
            ))
        })?;
    Ok(match parsed {
        Decision::Retry => ImplementationTaskEvent::Retry,
        Decision::Skip => ImplementationTaskEvent::Skip,
        Decision::Cancel => ImplementationTaskEvent::Cancel,
    })
}

/// A person's decision about a session: `retry` a conflicted one (a conflict-fixing
/// session, which also completes a merge the person resolved in the worktree) or a
/// failed one (its task runs again in the same worktree); `skip` its task (done,
/// nothing merged) or `cancel` it (its turn is cancelled).
#[utoipa::path(post, path = "/sessions/{id}/{decision}", tag = "implementation",
    params(("id" = i64, Path), ("decision" = Decision, Path)),
    responses((status = 200, body = WorkSession), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "not allowed in the session's status, or it works on no plan task")))]
pub async fn decide_session(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, decision)): Path<(i64, String)>,
) -> ApiResult<Json<WorkSession>> {
    let event = decision_event(&decision)?;
    Ok(Json(
        state
            .implementer
            .decide_session(WorkSessionId(id), event, &caller.actor())
            .await?,
    ))
}

/// `retry` a failed task, `skip` one (marked done, nothing merged; its dependents
/// become ready), or `cancel` it.
#[utoipa::path(post, path = "/spec-tasks/{id}/implementation-tasks/{key}/{decision}", tag = "implementation",
    params(("id" = i64, Path), ("key" = String, Path), ("decision" = Decision, Path)),
    responses((status = 200, body = ImplementationTask), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "not allowed in the task's status")))]
pub async fn decide(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, key, decision)): Path<(i64, String, String)>,
) -> ApiResult<Json<ImplementationTask>> {
    let event = decision_event(&decision)?;
    Ok(Json(
        state
            .implementer
            .decide(SpecTaskId(id), &key, event, &caller.actor())
            .await?,
    ))
}

/// Implementation progress of a spec task: tasks by status, each task's sub-items
/// (read back from `tasks.md`), each session's, and overall.
#[utoipa::path(get, path = "/spec-tasks/{id}/progress", tag = "implementation", params(("id" = i64, Path)),
    responses((status = 200, body = Progress), (status = 404, body = ErrorBody)))]
pub async fn progress(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Progress>> {
    Ok(Json(
        progress::progress(state.store.as_ref(), &state.tasks_dir, SpecTaskId(id)).await?,
    ))
}

/// One call for everything about a spec task: the task, its session tree, the task
/// graph with statuses, the agent instance, progress, and the latest 50 events.
#[utoipa::path(get, path = "/spec-tasks/{id}/overview", tag = "implementation", params(("id" = i64, Path)),
    responses((status = 200, body = Overview), (status = 404, body = ErrorBody)))]
pub async fn overview(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Overview>> {
    Ok(Json(
        progress::overview(state.store.as_ref(), &state.tasks_dir, SpecTaskId(id)).await?,
    ))
}

/// Spawn a session into a running spec task, with a parent and dependencies.
#[utoipa::path(post, path = "/spec-tasks/{id}/sessions", tag = "implementation", params(("id" = i64, Path)),
    request_body = SpawnRequest,
    responses((status = 201, body = WorkSession),
              (status = 404, body = ErrorBody, description = "no such spec task, parent session or dependency"),
              (status = 409, body = ErrorBody, description = "the task is not implementing"),
              (status = 422, body = ErrorBody)))]
pub async fn spawn(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Json(body): Json<SpawnRequest>,
) -> ApiResult<(axum::http::StatusCode, Json<WorkSession>)> {
    let session = state
        .implementer
        .spawn(SpecTaskId(id), body, &caller.actor())
        .await?;
    Ok((axum::http::StatusCode::CREATED, Json(session)))
}

/// The implementation report: sessions with attempts, durations, merge commits and
/// usage, and the commits on the task branch. Written to `history/report.md` when
/// the plan is all merged; available at any time.
#[utoipa::path(get, path = "/spec-tasks/{id}/report", tag = "implementation", params(("id" = i64, Path)),
    responses((status = 200, body = FinalReport), (status = 404, body = ErrorBody)))]
pub async fn report(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<FinalReport>> {
    Ok(Json(state.implementer.report(SpecTaskId(id)).await?))
}

#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenThread {
    /// What to ask the task's agent. Not blank.
    pub prompt: String,
    /// A short name; by default the prompt's first line.
    pub name: Option<String>,
}

/// Open a new thread on a running task's agent: it becomes a work session of kind
/// `ad_hoc` with its own worktree cut from the task branch, shown in the hierarchy;
/// its work is merged like any other session's (skip the session to discard it).
#[utoipa::path(post, path = "/spec-tasks/{id}/threads", tag = "implementation", params(("id" = i64, Path)),
    request_body = OpenThread,
    responses((status = 201, body = WorkSession),
              (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "the task is not implementing"),
              (status = 422, body = ErrorBody)))]
pub async fn open_thread(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Json(body): Json<OpenThread>,
) -> ApiResult<(axum::http::StatusCode, Json<WorkSession>)> {
    if body.prompt.trim().is_empty() {
        return Err(ApiError::Validation("prompt: must not be empty".into()));
    }
    let session = state
        .implementer
        .open_thread(SpecTaskId(id), body.name, body.prompt, &caller.actor())
        .await?;
    Ok((axum::http::StatusCode::CREATED, Json(session)))
}
