//! Signing in from a browser. `spectask serve`, `demo` and `dashboard` print a link
//! `…/sign-in#code=…`: the code is in the fragment, which browsers never send, so it
//! appears in no request line or log; the sign-in page posts it here once, and gets
//! the session cookie (HttpOnly, SameSite=Strict) in exchange. A person may paste an
//! API token instead. Sign-out ends the session on the server, not only the cookie.

use axum::Extension;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::auth::{Caller, SESSION_COOKIE, Via, same_origin, session_cookie};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::Json;
use crate::auth::{generate_token, hash_token};

/// What a browser signs in with: the code of a sign-in link, or an API token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// The one-time code from a sign-in link (`/sign-in#code=…`).
    #[schema(min_length = 1, max_length = 200)]
    pub code: Option<String>,
    /// An API token (`st_…`), pasted by a person.
    #[schema(min_length = 1, max_length = 200)]
    pub token: Option<String>,
}

/// Who the browser (or bearer) is signed in as.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionInfo {
    /// The name of the API token the session acts as.
    pub token_name: String,
    /// When the browser must sign in again (`null` for a bearer token).
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// `cookie` or `bearer`.
    pub via: String,
}

/// A new one-time sign-in code. Open `<server>/sign-in#code=<code>` before it expires.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignInLink {
    pub code: String,
    /// The path to open on the server, with the code in its fragment.
    pub path: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Makes a one-time sign-in code for `token_id`, valid for the configured time.
pub async fn make_link(state: &AppState, token_id: i64) -> ApiResult<SignInLink> {
    let code = generate_token();
    let expires_at = chrono::Utc::now() + state.web.link_ttl;
    state
        .store
        .create_sign_in_link(&hash_token(&code), token_id, expires_at)
        .await?;
    Ok(SignInLink {
        path: format!("/sign-in#code={code}"),
        code,
        expires_at,
    })
}

fn cookie(secret: &str, max_age_secs: u64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={secret}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}"
    ))
    .expect("a token is a valid header value")
}

/// Sign a browser in with a sign-in code or an API token; sets the session cookie.
/// Needs no credential of its own: the code or token is the credential.
#[utoipa::path(post, path = "/auth/sign-in", tag = "auth", request_body = SignIn, security(()),
    responses(
        (status = 200, body = SessionInfo, description = "Signed in; the response sets the `spectask_session` cookie"),
        (status = 401, body = ErrorBody, description = "The code or token is wrong, used or expired"),
        (status = 403, body = ErrorBody, description = "Sent from another site"),
        (status = 422, body = ErrorBody)))]
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<SignIn>,
) -> ApiResult<Response> {
    // A browser always sends Origin here; another site must not sign a visitor in.
    if headers.contains_key(axum::http::header::ORIGIN) && !same_origin(&headers) {
        return Err(ApiError::Forbidden("cross-site sign-in refused".into()));
    }
    let secret = generate_token();
    let expires_at = chrono::Utc::now() + state.web.session_ttl;
    let session = match (body.code.as_deref(), body.token.as_deref()) {
        (Some(code), None) => state
            .store
            .redeem_sign_in_link(&hash_token(code.trim()), &hash_token(&secret), expires_at)
            .await?
            .ok_or(ApiError::Unauthorized)?,
        (None, Some(token)) => {
            let token = state
                .store
                .find_active_token(&hash_token(token.trim()))
                .await?
                .ok_or(ApiError::Unauthorized)?;
            state
                .store
                .open_browser_session(&token, &hash_token(&secret), expires_at)
                .await?
        }
        _ => {
            return Err(ApiError::Validation(
                "send exactly one of `code` (from a sign-in link) or `token`".into(),
            ));
        }
    };
    let info = SessionInfo {
        token_name: session.token.name,
        expires_at: Some(session.expires_at),
        via: "cookie".into(),
    };
    let mut response = Json(info).into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, cookie(&secret, state.web.session_ttl.as_secs()));
    Ok(response)
}

/// Who is signed in: answers 401 when the browser is not (or no longer) signed in.
#[utoipa::path(get, path = "/auth/session", tag = "auth",
    responses((status = 200, body = SessionInfo), (status = 401, body = ErrorBody)))]
pub async fn session(Extension(caller): Extension<Caller>) -> Json<SessionInfo> {
    Json(SessionInfo {
        token_name: caller.token_name,
        expires_at: caller.expires_at,
        via: match caller.via {
            Via::Cookie => "cookie",
            Via::Bearer => "bearer",
        }
        .into(),
    })
}

/// Sign this browser out: its session ends on the server and its cookie is cleared.
#[utoipa::path(post, path = "/auth/sign-out", tag = "auth",
    responses((status = 204, description = "Signed out"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn sign_out(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let (Via::Cookie, Some(secret)) = (caller.via, session_cookie(&headers)) {
        state
            .store
            .end_browser_session(&hash_token(secret), &caller.actor())
            .await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(SET_COOKIE, cookie("", 0));
    Ok(response)
}

/// Make a one-time sign-in link that signs a browser in as the calling token
/// (what `spectask dashboard` prints).
#[utoipa::path(post, path = "/auth/sign-in-links", tag = "auth",
    responses((status = 201, body = SignInLink), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_link(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<(StatusCode, Json<SignInLink>)> {
    Ok((
        StatusCode::CREATED,
        Json(make_link(&state, caller.token_id).await?),
    ))
}
