//! Storage for browser sign-in: one-time sign-in codes and the browser sessions they
//! open. Only SHA-256 hashes of the secrets are stored; both stand for the API token
//! that made them, so a revoked token ends its links and sessions at once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::Row;

use super::rows::{self, now_ms};
use super::sql::SqlStore;
use super::write_tx::{Unrecorded, WriteTx};
use super::{Actor, Result};
use crate::auth::ApiToken;
use crate::domain::NewEvent;

/// A signed-in browser: the token it acts as, and when it must sign in again.
#[derive(Debug, Clone)]
pub struct BrowserSession {
    pub token: ApiToken,
    pub expires_at: DateTime<Utc>,
}

#[async_trait]
pub trait BrowserStore: Send + Sync + 'static {
    /// Records a one-time sign-in code for `token_id`, valid until `expires_at`.
    async fn create_sign_in_link(
        &self,
        code_hash: &str,
        token_id: i64,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;
    /// Uses up a sign-in code and opens a browser session in one transaction: a code
    /// works once, before it expires, while its token is active. `None` otherwise.
    async fn redeem_sign_in_link(
        &self,
        code_hash: &str,
        session_hash: &str,
        session_expires_at: DateTime<Utc>,
    ) -> Result<Option<BrowserSession>>;
    /// Opens a browser session for an API token a person pasted.
    async fn open_browser_session(
        &self,
        token: &ApiToken,
        session_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<BrowserSession>;
    /// The session with this secret, if it is open, unexpired and its token active.
    async fn find_browser_session(&self, session_hash: &str) -> Result<Option<BrowserSession>>;
    /// Signs a browser session out; `false` when it was not open.
    async fn end_browser_session(&self, session_hash: &str, actor: Actor<'_>) -> Result<bool>;
}

const SESSION_SELECT: &str = "SELECT b.expires_at AS session_expires_at, t.id, t.name, t.created_at, t.revoked_at \
     FROM browser_credentials b JOIN api_tokens t ON t.id = b.token_id";

fn session(row: &sqlx::any::AnyRow) -> Result<BrowserSession> {
    Ok(BrowserSession {
        token: rows::token(row)?,
        expires_at: rows::time(row, "session_expires_at")?,
    })
}

fn signed_in(token: &ApiToken, how: &str) -> NewEvent {
    NewEvent {
        project_id: None,
        spec_task_id: None,
        entity: "token",
        entity_id: Some(token.id),
        kind: "token.signed_in",
        data: json!({ "name": token.name, "with": how }),
    }
}

/// Opens a browser session row inside the caller's transaction.
async fn insert_session(
    tx: &mut WriteTx,
    session_hash: &str,
    token_id: i64,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO browser_credentials (kind, secret_hash, token_id, created_at, expires_at) \
         VALUES ('session', $1, $2, $3, $4)",
    )
    .bind(session_hash)
    .bind(token_id)
    .bind(now_ms())
    .bind(expires_at.timestamp_millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl BrowserStore for SqlStore {
    async fn create_sign_in_link(
        &self,
        code_hash: &str,
        token_id: i64,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO browser_credentials (kind, secret_hash, token_id, created_at, expires_at) \
             VALUES ('link', $1, $2, $3, $4)",
        )
        .bind(code_hash)
        .bind(token_id)
        .bind(now_ms())
        .bind(expires_at.timestamp_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit_without_events(Unrecorded::SignInLink).await
    }

    async fn redeem_sign_in_link(
        &self,
        code_hash: &str,
        session_hash: &str,
        session_expires_at: DateTime<Utc>,
    ) -> Result<Option<BrowserSession>> {
        let mut tx = self.begin().await?;
        let now = now_ms();
        // The UPDATE is the claim: of two browsers racing with one code, one wins.
        let used = sqlx::query(
            "UPDATE browser_credentials SET ended_at = $1 \
             WHERE secret_hash = $2 AND kind = 'link' AND ended_at IS NULL AND expires_at > $1 \
             AND token_id IN (SELECT id FROM api_tokens WHERE revoked_at IS NULL) RETURNING token_id",
        )
        .bind(now)
        .bind(code_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(used) = used else {
            return Ok(None);
        };
        let token_id: i64 = used.try_get("token_id")?;
        insert_session(&mut tx, session_hash, token_id, session_expires_at).await?;
        let sql = format!("{SESSION_SELECT} WHERE b.secret_hash = $1");
        let row = sqlx::query(&sql)
            .bind(session_hash)
            .fetch_one(&mut *tx)
            .await?;
        let found = session(&row)?;
        self.commit_with(tx, signed_in(&found.token, "link"), "system")
            .await?;
        Ok(Some(found))
    }

    async fn open_browser_session(
        &self,
        token: &ApiToken,
        session_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<BrowserSession> {
        let mut tx = self.begin().await?;
        insert_session(&mut tx, session_hash, token.id, expires_at).await?;
        self.commit_with(tx, signed_in(token, "token"), "system")
            .await?;
        Ok(BrowserSession {
            token: token.clone(),
            expires_at,
        })
    }

    async fn find_browser_session(&self, session_hash: &str) -> Result<Option<BrowserSession>> {
        let sql = format!(
            "{SESSION_SELECT} WHERE b.secret_hash = $1 AND b.kind = 'session' AND b.ended_at IS NULL \
             AND b.expires_at > $2 AND t.revoked_at IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(session_hash)
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(session).transpose()
    }

    async fn end_browser_session(&self, session_hash: &str, actor: Actor<'_>) -> Result<bool> {
        let mut tx = self.begin().await?;
        let ended = sqlx::query(
            "UPDATE browser_credentials SET ended_at = $1 \
             WHERE secret_hash = $2 AND kind = 'session' AND ended_at IS NULL RETURNING token_id",
        )
        .bind(now_ms())
        .bind(session_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(ended) = ended else {
            return Ok(false);
        };
        let token_id: i64 = ended.try_get("token_id")?;
        let event = NewEvent {
            project_id: None,
            spec_task_id: None,
            entity: "token",
            entity_id: Some(token_id),
            kind: "token.signed_out",
            data: json!({}),
        };
        self.commit_with(tx, event, actor).await?;
        Ok(true)
    }
}
