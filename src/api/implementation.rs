//! Implementation over HTTP: the plan's tasks with their statuses, a person's
//! choices about them (retry, skip), and progress.

use axum::Extension;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Json, Path};
use super::{AppState, Caller};
use crate::domain::*;
use crate::orchestrator::implementation::{ImplError, SpawnRequest};

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
    state.store.get_spec_task(id).await?;
    Ok(Json(state.store.list_implementation_tasks(id).await?))
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    Retry,
    Skip,
    Cancel,
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
    let decision: Decision = serde_json::from_value(serde_json::Value::String(decision.clone()))
        .map_err(|_| {
            ApiError::NotFound(format!(
                "no decision {decision:?}; use retry, skip or cancel"
            ))
        })?;
    let event = match decision {
        Decision::Retry => ImplementationTaskEvent::Retry,
        Decision::Skip => ImplementationTaskEvent::Skip,
        Decision::Cancel => ImplementationTaskEvent::Cancel,
    };
    Ok(Json(
        state
            .implementer
            .decide(id, &key, event, &caller.actor())
            .await?,
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    pub spec_task_id: i64,
    pub status: SpecTaskStatus,
    pub tasks_total: usize,
    pub tasks_done: usize,
    /// Tasks by status: `pending`, `in_progress`, `done`, `failed`, `blocked`, `skipped`.
    pub by_status: std::collections::BTreeMap<String, usize>,
    pub sessions_running: usize,
    /// Done (or skipped) tasks over all tasks, 0.0 to 1.0.
    pub fraction: f64,
}

/// Overall implementation progress of a spec task.
#[utoipa::path(get, path = "/spec-tasks/{id}/progress", tag = "implementation", params(("id" = i64, Path)),
    responses((status = 200, body = Progress), (status = 404, body = ErrorBody)))]
pub async fn progress(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Progress>> {
    let task = state.store.get_spec_task(id).await?;
    let plan = state.store.list_implementation_tasks(id).await?;
    let sessions = state.store.list_work_sessions(id).await?;
    let mut by_status = std::collections::BTreeMap::new();
    for t in &plan {
        *by_status.entry(t.status.to_string()).or_insert(0) += 1;
    }
    let done = plan
        .iter()
        .filter(|t| {
            matches!(
                t.status,
                ImplementationTaskStatus::Done | ImplementationTaskStatus::Skipped
            )
        })
        .count();
    Ok(Json(Progress {
        spec_task_id: id,
        status: task.status,
        tasks_total: plan.len(),
        tasks_done: done,
        by_status,
        sessions_running: sessions
            .iter()
            .filter(|s| s.status == WorkSessionStatus::Running)
            .count(),
        fraction: if plan.is_empty() {
            0.0
        } else {
            done as f64 / plan.len() as f64
        },
    }))
}

/// Spawn a session into a running spec task, with a parent and dependencies.
#[utoipa::path(post, path = "/spec-tasks/{id}/sessions", tag = "implementation", params(("id" = i64, Path)),
    request_body = SpawnRequest,
    responses((status = 201, body = WorkSession), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "the task is not implementing"),
              (status = 422, body = ErrorBody)))]
pub async fn spawn(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Json(body): Json<SpawnRequest>,
) -> ApiResult<(axum::http::StatusCode, Json<WorkSession>)> {
    let session = state.implementer.spawn(id, body, &caller.actor()).await?;
    Ok((axum::http::StatusCode::CREATED, Json(session)))
}
