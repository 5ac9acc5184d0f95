//! Axum's extractors, with their rejections turned into [`ApiError`] so a malformed
//! request gets the same JSON error shape as everything else.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body. Beyond axum's checks it refuses text containing NUL (`\u0000`):
/// PostgreSQL cannot store it, and it is never meaningful in spectask's fields, so it
/// is a 422 on every backend rather than a database error on one. Free JSON values
/// (the top-level fields in [`FREE_JSON_FIELDS`]) may hold it: they are stored as
/// serialized JSON, where it stays escaped.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .is_some_and(|m| {
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest(e.body_text())
            }
        })?;
        let value = match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => value,
            // JSON Schema's integers include `2.0`; serde's do not.
            Err(JsonRejection::JsonDataError(e)) => match integral_floats_as_integers(&bytes) {
                Some(fixed) => axum::Json::<T>::from_bytes(&fixed)?.0,
                None => return Err(JsonRejection::JsonDataError(e).into()),
            },
            Err(other) => return Err(other.into()),
        };
        if bytes.windows(6).any(|w| w == b"\\u0000") {
            let json: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            if let Some(field) = nul_field(&json) {
                return Err(ApiError::Validation(format!(
                    "{field}: text must not contain NUL (\\u0000) characters"
                )));
            }
        }
        Ok(Json(value))
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// The body with every number that has no fractional part (`2.0`, `-3e2`) written as
/// an integer, or `None` when it has none or is not JSON.
pub(super) fn integral_floats_as_integers(bytes: &[u8]) -> Option<Vec<u8>> {
    fn walk(value: &mut serde_json::Value) -> bool {
        match value {
            serde_json::Value::Number(n) if n.is_f64() => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
                    *value = serde_json::Value::from(f as i64);
                    true
                } else {
                    false
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().fold(false, |c, v| walk(v) | c),
            serde_json::Value::Object(map) => map.values_mut().fold(false, |c, v| walk(v) | c),
            _ => false,
        }
    }
    let mut json: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    walk(&mut json).then(|| serde_json::to_vec(&json).expect("JSON serializes"))
}

/// The top-level body fields that hold any JSON (`PostCoordination.payload`,
/// `PutState.value`); NUL inside them is kept.
pub const FREE_JSON_FIELDS: &[&str] = &["payload", "value"];

/// Where a body holds NUL in a string or a key outside the free JSON fields, as a
/// dotted path (`title`, `files.tasks.md`).
fn nul_field(body: &serde_json::Value) -> Option<String> {
    fn walk(value: &serde_json::Value, path: &str) -> Option<String> {
        match value {
            serde_json::Value::String(s) if s.contains('\0') => Some(path.to_string()),
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, v)| walk(v, &format!("{path}[{i}]"))),
            serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| {
                let here = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if k.contains('\0') {
                    return Some(here);
                }
                if path.is_empty() && FREE_JSON_FIELDS.contains(&k.as_str()) {
                    return None;
                }
                walk(v, &here)
            }),
            _ => None,
        }
    }
    walk(body, "").map(|p| if p.is_empty() { "body".to_string() } else { p })
}

/// Path parameters. A parameter holding NUL (`%00`) is refused (400) before it can
/// reach the database, which cannot compare text with NUL on PostgreSQL.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        if parts.uri.path().contains("%00") {
            return Err(ApiError::BadRequest(
                "path parameters must not contain NUL (%00)".into(),
            ));
        }
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(value))
    }
}

#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);
