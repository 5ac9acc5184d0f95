//! Authentication for every API route: a bearer token (CLI, scripts) or the browser
//! session cookie set by sign-in (the dashboard, whose WebSocket cannot send headers).
//! A cookie travels with any request the browser makes, so a cookie-authenticated
//! write, and a WebSocket opened with the cookie, must come from our own origin.

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN, UPGRADE};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use super::error::ApiError;
use crate::auth::hash_token;

/// The browser session cookie. Its value is a random secret; only its hash is stored.
pub const SESSION_COOKIE: &str = "spectask_session";

/// How the caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Bearer,
    Cookie,
}

/// Who is calling, as recorded in the events their changes write.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: i64,
    pub token_name: String,
    pub via: Via,
    /// When a cookie session ends (`None` for a bearer token).
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Caller {
    pub fn actor(&self) -> String {
        format!("token:{}", self.token_id)
    }
}

pub async fn require_token(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, req.headers()).await?;
    if caller.via == Via::Cookie {
        let writes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        let upgrades = req.headers().contains_key(UPGRADE);
        if (writes || upgrades) && !same_origin(req.headers()) {
            return Err(ApiError::Forbidden(
                "cross-site request refused: a signed-in browser may write only from the dashboard's own origin"
                    .into(),
            ));
        }
    }
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

/// The caller behind a bearer token or, failing that, a session cookie.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let token = state
            .store
            .find_active_token(&hash_token(token))
            .await?
            .ok_or(ApiError::Unauthorized)?;
        return Ok(Caller {
            token_id: token.id,
            token_name: token.name,
            via: Via::Bearer,
            expires_at: None,
        });
    }
    let secret = session_cookie(headers).ok_or(ApiError::Unauthorized)?;
    let session = state
        .store
        .find_browser_session(&hash_token(secret))
        .await?
        .ok_or(ApiError::Unauthorized)?;
    Ok(Caller {
        token_id: session.token.id,
        token_name: session.token.name,
        via: Via::Cookie,
        expires_at: Some(session.expires_at),
    })
}

/// The session cookie's value, from any of the request's `Cookie` headers.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// Whether the request's `Origin` names the host it was sent to. A request without
/// `Origin` is refused: every browser sends it on writes and WebSocket handshakes.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let (Some(origin), Some(host)) = (
        headers.get(ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(HOST).and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn finds_the_session_cookie_among_others() {
        let h = headers(&[("cookie", "a=1; spectask_session=s3cret ; b=2")]);
        assert_eq!(session_cookie(&h), Some("s3cret"));
        let h = headers(&[("cookie", "a=1"), ("cookie", "spectask_session=x")]);
        assert_eq!(session_cookie(&h), Some("x"));
        assert_eq!(
            session_cookie(&headers(&[("cookie", "spectask_session=")])),
            None
        );
        assert_eq!(
            session_cookie(&headers(&[("cookie", "xspectask_session=y")])),
            None
        );
    }

    #[test]
    fn origin_must_name_the_host() {
        let ok = headers(&[
            ("origin", "http://127.0.0.1:7420"),
            ("host", "127.0.0.1:7420"),
        ]);
        assert!(same_origin(&ok));
        let other = headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:7420"),
        ]);
        assert!(!same_origin(&other));
        let port = headers(&[
            ("origin", "http://127.0.0.1:8000"),
            ("host", "127.0.0.1:7420"),
        ]);
        assert!(!same_origin(&port));
        assert!(!same_origin(&headers(&[("host", "127.0.0.1:7420")])));
        let null = headers(&[("origin", "null"), ("host", "127.0.0.1:7420")]);
        assert!(!same_origin(&null));
    }
}
