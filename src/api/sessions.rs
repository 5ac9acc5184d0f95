//! Work sessions (read-only until the orchestrator arrives), coordination events
//! between sessions, and the shared state of a spec task.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Json, Path};
use super::{AppState, Caller};
use crate::domain::*;
use crate::store::NewCoordinationEvent;

/// The work sessions of a spec task, oldest first; `parent_id` gives the hierarchy.
#[utoipa::path(get, path = "/spec-tasks/{id}/sessions", operation_id = "list_sessions", tag = "sessions", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<WorkSession>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<WorkSession>>> {
    Ok(Json(state.store.list_work_sessions(SpecTaskId(id)).await?))
}

/// Get one work session.
#[utoipa::path(get, path = "/sessions/{id}", operation_id = "get_session", tag = "sessions", params(("id" = i64, Path)),
    responses((status = 200, body = WorkSession), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<WorkSession>> {
    Ok(Json(state.store.get_work_session(WorkSessionId(id)).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostCoordination {
    pub kind: CoordinationKind,
    /// The sending session; leave out when a person sends it.
    pub from_session_id: Option<i64>,
    /// The receiving session; leave out to address every session of the task.
    /// Not with `kind` `broadcast`, which goes to every session.
    pub to_session_id: Option<i64>,
    /// Not blank.
    pub message: String,
    #[serde(default)]
    pub payload: serde_json::Value,
}

/// The coordination events of a spec task, oldest first.
#[utoipa::path(get, path = "/spec-tasks/{id}/coordination", tag = "coordination", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<CoordinationEvent>), (status = 404, body = ErrorBody)))]
pub async fn list_coordination(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<CoordinationEvent>>> {
    Ok(Json(
        state.store.list_coordination_events(SpecTaskId(id)).await?,
    ))
}

/// Post a coordination event to one session or to all.
#[utoipa::path(post, path = "/spec-tasks/{id}/coordination", tag = "coordination", params(("id" = i64, Path)),
    request_body = PostCoordination,
    responses((status = 201, body = CoordinationEvent),
              (status = 404, body = ErrorBody, description = "no such spec task, or a session not in it"),
              (status = 422, body = ErrorBody)))]
pub async fn post_coordination(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Json(body): Json<PostCoordination>,
) -> ApiResult<(StatusCode, Json<CoordinationEvent>)> {
    if body.message.trim().is_empty() {
        return Err(ApiError::Validation("message: must not be empty".into()));
    }
    let new = NewCoordinationEvent {
        spec_task_id: SpecTaskId(id),
        kind: body.kind,
        from_session_id: body.from_session_id.map(WorkSessionId),
        to_session_id: body.to_session_id.map(WorkSessionId),
        message: body.message,
        payload: body.payload,
    };
    let posted = state
        .store
        .post_coordination_event(new, &caller.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(posted)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Acknowledge {
    /// The acknowledging session; leave out when a person acknowledges.
    pub by_session_id: Option<i64>,
}

/// Acknowledge a coordination event. A second acknowledgement is refused with 409.
#[utoipa::path(post, path = "/spec-tasks/{id}/coordination/{event_id}/ack", tag = "coordination",
    params(("id" = i64, Path), ("event_id" = i64, Path)),
    request_body(content = Option<Acknowledge>, description = "Optional: none (or an empty body) when a person acknowledges."),
    responses((status = 200, body = CoordinationEvent),
              (status = 404, body = ErrorBody, description = "no such task or event, or an acknowledging session not in the task"),
              (status = 409, body = ErrorBody, description = "already acknowledged, or addressed to another session")))]
pub async fn acknowledge(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, event_id)): Path<(i64, i64)>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Json<CoordinationEvent>> {
    // The body is optional here: an empty one means a person acknowledges.
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        _ => ApiError::BadRequest(e.body_text()),
    })?;
    let by = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        // JSON Schema's integers include `2.0`; serde's do not.
        let body =
            super::extract::integral_floats_as_integers(&body).unwrap_or_else(|| body.to_vec());
        serde_json::from_slice::<Option<Acknowledge>>(&body)
            .map_err(|e| match e.classify() {
                serde_json::error::Category::Data => {
                    ApiError::Validation(format!("invalid body: {e}"))
                }
                _ => ApiError::BadRequest(format!("invalid JSON: {e}")),
            })?
            .and_then(|a| a.by_session_id)
    };
    let acked = state
        .store
        .acknowledge_coordination_event(
            SpecTaskId(id),
            CoordinationEventId(event_id),
            by.map(WorkSessionId),
            &caller.actor(),
        )
        .await?;
    Ok(Json(acked))
}

/// Every shared-state entry of a spec task.
#[utoipa::path(get, path = "/spec-tasks/{id}/state", tag = "shared state", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<SharedStateEntry>), (status = 404, body = ErrorBody)))]
pub async fn list_state(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<SharedStateEntry>>> {
    Ok(Json(state.store.list_shared_state(SpecTaskId(id)).await?))
}

/// One shared-state entry.
#[utoipa::path(get, path = "/spec-tasks/{id}/state/{key}", tag = "shared state",
    params(("id" = i64, Path), ("key" = String, Path)),
    responses((status = 200, body = SharedStateEntry), (status = 404, body = ErrorBody)))]
pub async fn get_state(
    State(state): State<AppState>,
    Path((id, key)): Path<(i64, String)>,
) -> ApiResult<Json<SharedStateEntry>> {
    Ok(Json(
        state.store.get_shared_state(SpecTaskId(id), &key).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutState {
    pub value: serde_json::Value,
    /// The version you read (0 to create the key). A different current version
    /// means someone else wrote in between: 409, nothing written.
    #[schema(minimum = 0)]
    pub expected_version: i64,
}

/// Write a shared-state entry with compare-and-set on its version.
#[utoipa::path(put, path = "/spec-tasks/{id}/state/{key}", tag = "shared state",
    params(("id" = i64, Path), ("key" = String, Path)), request_body = PutState,
    responses((status = 200, body = SharedStateEntry), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "version conflict; nothing written"),
              (status = 422, body = ErrorBody)))]
pub async fn put_state(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, key)): Path<(i64, String)>,
    Json(body): Json<PutState>,
) -> ApiResult<Json<SharedStateEntry>> {
    if body.expected_version < 0 {
        return Err(ApiError::Validation(
            "expected_version: must be 0 or more".into(),
        ));
    }
    let entry = state
        .store
        .put_shared_state(
            SpecTaskId(id),
            &key,
            &body.value,
            body.expected_version,
            &caller.actor(),
        )
        .await?;
    Ok(Json(entry))
}

/// What a session changed: its commits, the files they touch, its latest
/// verification run (command, pass or fail, output).
#[utoipa::path(get, path = "/sessions/{id}/changes", tag = "sessions", params(("id" = i64, Path)),
    responses((status = 200, body = crate::orchestrator::changes::SessionChanges), (status = 404, body = ErrorBody)))]
pub async fn changes(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<crate::orchestrator::changes::SessionChanges>> {
    Ok(Json(
        crate::orchestrator::changes::session_changes(state.store.as_ref(), WorkSessionId(id))
            .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    /// Not blank; one of the request's `choices` when it offered some.
    pub answer: String,
}

/// Answer a session's request to a person (an agent's `ask_person`, or a `request`
/// addressed to nobody): a `response` goes to the asking session, whose waiting tool
/// call returns it, and the request is acknowledged.
#[utoipa::path(post, path = "/spec-tasks/{id}/coordination/{event_id}/answer", tag = "coordination",
    params(("id" = i64, Path), ("event_id" = i64, Path)), request_body = AnswerRequest,
    responses((status = 201, body = CoordinationEvent, description = "the response sent to the session"),
              (status = 404, body = ErrorBody, description = "no such task, or no such event in it"),
              (status = 409, body = ErrorBody, description = "not a session's request to a person, or already answered"),
              (status = 422, body = ErrorBody)))]
pub async fn answer(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, event_id)): Path<(i64, i64)>,
    Json(body): Json<AnswerRequest>,
) -> ApiResult<(StatusCode, Json<CoordinationEvent>)> {
    let asked = state
        .store
        .list_coordination_events(SpecTaskId(id))
        .await?
        .into_iter()
        .find(|e| e.id == CoordinationEventId(event_id))
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no coordination event {event_id} in spec task {id}"
            ))
        })?;
    let Some(asker) = asked.from_session_id.filter(|_| {
        asked.kind == CoordinationKind::Request
            && asked.to_session_id.is_none()
            && asked.for_task().is_none()
    }) else {
        return Err(ApiError::Conflict(format!(
            "event {event_id} is not a session's request to a person"
        )));
    };
    if asked.acknowledged_at.is_some() {
        return Err(ApiError::Conflict(format!(
            "request {event_id} was already answered"
        )));
    }
    let answer = body.answer.trim();
    if answer.is_empty() {
        return Err(ApiError::Validation("answer: must not be empty".into()));
    }
    let choices: Vec<&str> = asked
        .payload
        .get("choices")
        .and_then(serde_json::Value::as_array)
        .map(|c| c.iter().filter_map(serde_json::Value::as_str).collect())
        .unwrap_or_default();
    if !choices.is_empty() && !choices.contains(&answer) {
        return Err(ApiError::Validation(format!(
            "answer: must be one of {}",
            choices.join(", ")
        )));
    }
    // The response first, then the acknowledgement: the waiting call never sees an
    // acknowledged request without its answer.
    let response = state
        .store
        .post_coordination_event(
            NewCoordinationEvent {
                spec_task_id: SpecTaskId(id),
                kind: CoordinationKind::Response,
                from_session_id: None,
                to_session_id: Some(asker),
                message: answer.to_string(),
                payload: serde_json::json!({ "in_reply_to": event_id }),
            },
            &caller.actor(),
        )
        .await?;
    state
        .store
        .acknowledge_coordination_event(
            SpecTaskId(id),
            CoordinationEventId(event_id),
            None,
            &caller.actor(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(response)))
}
