//! Bearer-token authentication for every API route.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use super::error::ApiError;
use crate::auth::hash_token;

/// Who is calling, as recorded in the events their changes write.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: i64,
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
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthorized)?;
    let found = state.store.find_active_token(&hash_token(token)).await?;
    let token = found.ok_or(ApiError::Unauthorized)?;
    req.extensions_mut().insert(Caller { token_id: token.id });
    Ok(next.run(req).await)
}
