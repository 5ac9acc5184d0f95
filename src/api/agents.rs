//! The agent side of a SpecTask: its instance (status and controls), its threads,
//! each session's transcript, and the permission requests waiting for a person.

use axum::Extension;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Json, Path, Query};
use super::{AppState, Caller};
use crate::agents::manager::ManagerError;
use crate::agents::runtime::AgentError;
use crate::domain::*;

impl From<ManagerError> for ApiError {
    fn from(err: ManagerError) -> ApiError {
        match err {
            ManagerError::Store(e) => e.into(),
            ManagerError::UnknownProfile(..) | ManagerError::InvalidAnswer(_) => {
                ApiError::Validation(err.to_string())
            }
            ManagerError::Agent(AgentError::Store(e)) => e.into(),
            // The agent itself failed (not installed, timed out, crashed): the request
            // was fine, the state is recorded on the instance, and the reason is shown.
            ManagerError::Agent(e) => ApiError::Conflict(e.to_string()),
        }
    }
}

/// The agent instance of a spec task: status, process, agent, resource use; `null`
/// while the task has never started one.
#[utoipa::path(get, path = "/spec-tasks/{id}/agent", tag = "agents", params(("id" = i64, Path)),
    responses((status = 200, body = Option<AgentInstance>), (status = 404, body = ErrorBody, description = "no such spec task")))]
pub async fn get_instance(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Option<AgentInstance>>> {
    state.store.get_spec_task(SpecTaskId(id)).await?;
    match state.store.get_agent_instance(SpecTaskId(id)).await {
        Ok(instance) => Ok(Json(Some(instance))),
        Err(crate::store::StoreError::NotFound { .. }) => Ok(Json(None)),
        Err(e) => Err(e.into()),
    }
}

/// Stop the agent instance: its whole process tree ends and it is held — the
/// orchestrator starts nothing on it (its sessions wait, interrupted) until it is
/// restarted. A task that never started an agent has nothing to stop: `null`.
#[utoipa::path(post, path = "/spec-tasks/{id}/agent/stop", tag = "agents", params(("id" = i64, Path)),
    responses((status = 200, body = Option<AgentInstance>), (status = 404, body = ErrorBody, description = "no such spec task"),
              (status = 409, body = ErrorBody, description = "the agent could not be stopped")))]
pub async fn stop_instance(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Option<AgentInstance>>> {
    state.store.get_spec_task(SpecTaskId(id)).await?;
    Ok(Json(
        state.agents.hold(SpecTaskId(id), &caller.actor()).await?,
    ))
}

/// Start the agent instance, or stop and start it again; ends a hold.
#[utoipa::path(post, path = "/spec-tasks/{id}/agent/restart", tag = "agents", params(("id" = i64, Path)),
    responses((status = 200, body = AgentInstance), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "the agent could not start; the reason is recorded")))]
pub async fn restart_instance(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<AgentInstance>> {
    state.store.get_spec_task(SpecTaskId(id)).await?;
    state
        .agents
        .release_and_restart(SpecTaskId(id), &caller.actor())
        .await?;
    Ok(Json(state.store.get_agent_instance(SpecTaskId(id)).await?))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StoppedAll {
    /// How many agents were running and are stopped now.
    pub stopped: usize,
}

/// The emergency stop: every agent of every task is stopped and held; nothing starts
/// again until a person restarts each task's agent.
#[utoipa::path(post, path = "/agents/stop-all", tag = "agents",
    responses((status = 200, body = StoppedAll), (status = 409, body = ErrorBody, description = "an agent could not be stopped")))]
pub async fn stop_all(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<StoppedAll>> {
    let stopped = state.agents.hold_all(&caller.actor()).await?;
    Ok(Json(StoppedAll { stopped }))
}

/// CPU and memory of the task's agent over time, oldest first (the newest 360
/// samples; none when it never had an agent).
#[utoipa::path(get, path = "/spec-tasks/{id}/agent/samples", tag = "agents", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<AgentSample>), (status = 404, body = ErrorBody)))]
pub async fn samples(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<AgentSample>>> {
    Ok(Json(
        state
            .store
            .list_agent_samples(SpecTaskId(id), crate::store::KEPT_SAMPLES)
            .await?,
    ))
}

/// The threads of a spec task's agent instance, one per work session.
#[utoipa::path(get, path = "/spec-tasks/{id}/threads", tag = "agents", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<AgentThread>), (status = 404, body = ErrorBody)))]
pub async fn list_threads(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<AgentThread>>> {
    Ok(Json(state.store.list_agent_threads(SpecTaskId(id)).await?))
}

/// The thread of a work session.
#[utoipa::path(get, path = "/sessions/{id}/thread", tag = "agents", params(("id" = i64, Path)),
    responses((status = 200, body = AgentThread), (status = 404, body = ErrorBody)))]
pub async fn get_thread(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<AgentThread>> {
    Ok(Json(state.store.get_agent_thread(WorkSessionId(id)).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TranscriptQuery {
    /// Only entries with an id above this.
    pub after: Option<i64>,
}

/// A work session's transcript: prompts, messages (coalesced), thoughts, tool calls,
/// plans, usage, permission answers, stop reasons and errors.
#[utoipa::path(get, path = "/sessions/{id}/transcript", tag = "agents", params(("id" = i64, Path), TranscriptQuery),
    responses((status = 200, body = Vec<TranscriptEntry>), (status = 404, body = ErrorBody)))]
pub async fn transcript(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<TranscriptQuery>,
) -> ApiResult<Json<Vec<TranscriptEntry>>> {
    Ok(Json(
        state
            .store
            .list_transcript(WorkSessionId(id), q.after.unwrap_or(0))
            .await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PermissionQuery {
    pub status: Option<PermissionStatus>,
    pub spec_task: Option<i64>,
}

/// Permission requests (`?status=pending` for those waiting for a person).
#[utoipa::path(get, path = "/permissions", tag = "agents", params(PermissionQuery),
    responses((status = 200, body = Vec<PermissionRequest>)))]
pub async fn list_permissions(
    State(state): State<AppState>,
    Query(q): Query<PermissionQuery>,
) -> ApiResult<Json<Vec<PermissionRequest>>> {
    Ok(Json(
        state
            .store
            .list_permission_requests(q.status, q.spec_task.map(SpecTaskId))
            .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionAnswer {
    /// One of the request's `optionId`s; leave out (or null) to cancel the request.
    pub option_id: Option<String>,
}

/// Answer a pending permission request; the waiting agent continues at once.
#[utoipa::path(post, path = "/permissions/{id}/answer", tag = "agents", params(("id" = i64, Path)),
    request_body = PermissionAnswer,
    responses((status = 200, body = PermissionRequest), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "already answered or cancelled"),
              (status = 422, body = ErrorBody, description = "not one of the request's options")))]
pub async fn answer_permission(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Json(body): Json<PermissionAnswer>,
) -> ApiResult<Json<PermissionRequest>> {
    let answered = state
        .agents
        .answer_permission(
            PermissionRequestId(id),
            body.option_id.as_deref(),
            &caller.actor(),
        )
        .await?;
    Ok(Json(answered))
}
