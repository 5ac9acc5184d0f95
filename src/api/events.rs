//! `/events` (the change log, by cursor) and `/tokens` (API tokens).

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Json, Path, Query};
use super::{AppState, Caller, page_limit};
use crate::auth::{ApiToken, generate_token, hash_token};
use crate::domain::Event;
use crate::domain::ids::*;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events with an id above this (default 0: from the start).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Only events of this spec task.
    pub spec_task: Option<i64>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Long poll: when nothing is new, wait up to this many seconds (at most 30)
    /// for the next event before answering (the server may answer sooner, with
    /// nothing new).
    #[param(minimum = 0, maximum = 30)]
    pub wait: Option<u64>,
}

/// The longest a long poll of this process really waits, in milliseconds: 30 s
/// unless [`set_long_poll_limit`] lowered it.
static LONG_POLL_LIMIT_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(30_000);

fn long_poll_limit() -> std::time::Duration {
    std::time::Duration::from_millis(LONG_POLL_LIMIT_MS.load(std::sync::atomic::Ordering::Relaxed))
}

/// Caps how long `GET /events?wait=` waits in this process (the documented bound is
/// 30 s; answering sooner with nothing new is allowed). For tests that fuzz the API
/// and must not sit out every long poll.
pub fn set_long_poll_limit(limit: std::time::Duration) {
    let ms = u64::try_from(limit.as_millis())
        .unwrap_or(u64::MAX)
        .min(30_000);
    LONG_POLL_LIMIT_MS.store(ms, std::sync::atomic::Ordering::Relaxed);
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<Event>,
    /// Pass as `after` to continue; equal to the request's `after` when nothing is new.
    pub next_after: i64,
    /// The newest event's id in the whole log when this page was read (0 when there is
    /// none): where a client that loaded its data now starts listening
    /// (`GET /events/ws?after=<last_id>`).
    pub last_id: i64,
}

/// Events in the order they were committed.
#[utoipa::path(get, path = "/events", operation_id = "list_events", tag = "events", params(EventsQuery),
    responses((status = 200, body = EventPage), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Json<EventPage>> {
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::Validation("after: must be 0 or more".into()));
    }
    let limit = page_limit(q.limit, 100, 1000)?;
    let wait = match q.wait {
        Some(w) if w > 30 => return Err(ApiError::Validation("wait: at most 30 seconds".into())),
        w => std::time::Duration::from_secs(w.unwrap_or(0)).min(long_poll_limit()),
    };
    // Subscribed before the first read, so an event committed in between still wakes us.
    let mut changes = state.store.subscribe_events();
    let deadline = tokio::time::Instant::now() + wait;
    let mut items = state
        .store
        .list_events(after, q.spec_task.map(SpecTaskId), limit)
        .await?;
    while items.is_empty()
        && tokio::time::timeout_at(deadline, changes.changed())
            .await
            .is_ok_and(|r| r.is_ok())
    {
        items = state
            .store
            .list_events(after, q.spec_task.map(SpecTaskId), limit)
            .await?;
    }
    let next_after = items.last().map_or(after, |e| e.id);
    // Read after the page, so it is never below the page's last id.
    let last_id = state.store.last_event_id().await?.max(next_after);
    Ok(Json(EventPage {
        items,
        next_after,
        last_id,
    }))
}

/// List API tokens (never their values).
#[utoipa::path(get, path = "/tokens", tag = "tokens", responses((status = 200, body = Vec<ApiToken>)))]
pub async fn list_tokens(State(state): State<AppState>) -> ApiResult<Json<Vec<ApiToken>>> {
    Ok(Json(state.store.list_tokens().await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Not blank; at most 100 characters.
    #[schema(max_length = 100)]
    pub name: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub info: ApiToken,
    /// The token itself. It is shown this once; only its hash is stored.
    pub token: String,
}

/// Create an API token.
#[utoipa::path(post, path = "/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 422, body = ErrorBody)))]
pub async fn create_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<CreateToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let name = body.name.trim();
    if name.is_empty() || body.name.chars().count() > 100 {
        return Err(ApiError::Validation("name: 1 to 100 characters".into()));
    }
    let token = generate_token();
    let info = state
        .store
        .create_token(name, &hash_token(&token), &caller.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { info, token })))
}

/// Revoke an API token; it stops working at once.
#[utoipa::path(post, path = "/tokens/{id}/revoke", tag = "tokens", params(("id" = i64, Path)),
    responses((status = 200, body = ApiToken), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<ApiToken>> {
    Ok(Json(state.store.revoke_token(id, &caller.actor()).await?))
}
