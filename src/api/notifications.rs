//! `/notifications` (what needs a person, across every open spec task) and
//! `/webhooks` (where spectask sends them, and how each delivery went).

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Json, Path, Query};
use super::{AppState, Caller, page_limit};
use crate::auth::generate_token;
use crate::domain::ids::*;
use crate::domain::{Notification, NotificationKind, Webhook, WebhookDelivery, WebhookFormat};
use crate::orchestrator::inbox;
use crate::store::NewWebhook;

/// What waits for a person, oldest first: specs and finished work to review,
/// permission requests, conflicts, failed or blocked tasks and sessions, requests
/// sessions addressed to a person. An entry is gone once it is handled.
#[utoipa::path(get, path = "/notifications", tag = "notifications",
    responses((status = 200, body = Vec<Notification>)))]
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<Notification>>> {
    Ok(Json(inbox::notifications(state.store.as_ref()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// An `http://` or `https://` URL with a host, without spaces or control
    /// characters; at most 2000 characters.
    #[schema(
        max_length = 2000,
        pattern = r"^https?://[^/?#\s\x00-\x1f\x7f-\x9f]+[^\s\x00-\x1f\x7f-\x9f]*$"
    )]
    pub url: String,
    /// Only this project's notifications; omitted or `null`: every project's.
    pub project_id: Option<i64>,
    /// The kinds to send; omitted or empty: every kind.
    #[serde(default)]
    pub kinds: Vec<NotificationKind>,
    /// The body's shape (default `generic`).
    pub format: Option<WebhookFormat>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedWebhook {
    pub webhook: Webhook,
    /// The HMAC-SHA256 key of `X-Spectask-Signature`. Shown this once.
    pub secret: String,
}

pub(super) fn check_url(url: &str) -> Result<(), ApiError> {
    let bad = || {
        ApiError::Validation(
            "url: an http:// or https:// URL with a host, without spaces, at most 2000 characters"
                .into(),
        )
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty()
        || url.chars().count() > 2000
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    Ok(())
}

/// Add a webhook. Its secret is in this answer only.
#[utoipa::path(post, path = "/webhooks", tag = "notifications", request_body = CreateWebhook,
    responses((status = 201, body = CreatedWebhook), (status = 404, body = ErrorBody, description = "no such project"),
              (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<CreateWebhook>,
) -> ApiResult<(StatusCode, Json<CreatedWebhook>)> {
    check_url(&body.url)?;
    let mut kinds = body.kinds;
    kinds.sort_by_key(|k| k.as_str());
    kinds.dedup();
    let secret = generate_token();
    let webhook = state
        .store
        .create_webhook(
            NewWebhook {
                project_id: body.project_id.map(ProjectId),
                url: body.url,
                kinds,
                format: body.format.unwrap_or(WebhookFormat::Generic),
                secret: secret.clone(),
            },
            &caller.actor(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook { webhook, secret }),
    ))
}

/// The webhooks, oldest first (never their secrets).
#[utoipa::path(get, path = "/webhooks", tag = "notifications",
    responses((status = 200, body = Vec<Webhook>)))]
pub async fn list_webhooks(State(state): State<AppState>) -> ApiResult<Json<Vec<Webhook>>> {
    Ok(Json(state.store.list_webhooks().await?))
}

/// Remove a webhook: nothing more is sent to it; it and its deliveries are gone
/// from the API.
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "notifications", params(("id" = i64, Path)),
    responses((status = 204, description = "removed"), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    state.store.delete_webhook(id, &caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// How many, newest first: 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// A webhook's deliveries, newest first: status, attempts, the last answer or error.
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "notifications",
    params(("id" = i64, Path), DeliveriesQuery),
    responses((status = 200, body = Vec<WebhookDelivery>), (status = 404, body = ErrorBody)))]
pub async fn deliveries(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<DeliveriesQuery>,
) -> ApiResult<Json<Vec<WebhookDelivery>>> {
    let limit = page_limit(q.limit, 100, 500)?;
    Ok(Json(state.store.list_deliveries(id, limit).await?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn webhook_urls_need_a_scheme_and_a_host() {
        use super::check_url;
        assert!(check_url("https://hooks.slack.com/services/x").is_ok());
        assert!(check_url("http://127.0.0.1:9/").is_ok());
        for bad in [
            "ftp://x",
            "https://",
            "http:///x",
            "https://a b",
            "hooks.slack.com",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
