//! Storage for session tokens: the credential each work session's agent gets for
//! spectask's MCP server (see `crate::mcp`). Only SHA-256 hashes are stored. A token
//! stands for one session of one spec task and is honoured only while that session
//! has not ended: a failed session's token works again if the session is retried,
//! and a session that completed, was skipped or cancelled has its tokens revoked in
//! the transaction that ended it (`revoke_in`).

use async_trait::async_trait;
use serde_json::json;
use sqlx::Row;

use super::rows::now_ms;
use super::sql::SqlStore;
use super::write_tx::WriteTx;
use super::{Actor, Result};
use crate::domain::{NewEvent, ProjectId, SpecTaskId, WorkSessionId, WorkSessionStatus};

/// What a session token lets its bearer act as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionGrant {
    pub token_id: i64,
    pub work_session_id: WorkSessionId,
    pub spec_task_id: SpecTaskId,
    pub project_id: ProjectId,
}

#[async_trait]
pub trait SessionTokenStore: Send + Sync + 'static {
    /// Records a new token for a session and revokes the session's earlier ones (its
    /// thread was reopened: only the newest process holds a valid one).
    /// `transport` (`http`, `stdio`) is recorded in the event, for people and tests.
    async fn issue_session_token(
        &self,
        work_session_id: WorkSessionId,
        token_hash: &str,
        transport: &str,
        actor: Actor<'_>,
    ) -> Result<i64>;
    /// The grant of an unrevoked token whose session has not ended.
    async fn find_session_token(&self, token_hash: &str) -> Result<Option<SessionGrant>>;
}

/// Revokes a session's tokens inside the caller's transaction (its session ended).
pub(super) async fn revoke_in(tx: &mut WriteTx, work_session_id: WorkSessionId) -> Result<()> {
    sqlx::query(
        "UPDATE session_tokens SET revoked_at = $1 WHERE work_session_id = $2 AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(work_session_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl SessionTokenStore for SqlStore {
    async fn issue_session_token(
        &self,
        work_session_id: WorkSessionId,
        token_hash: &str,
        transport: &str,
        actor: Actor<'_>,
    ) -> Result<i64> {
        let mut tx = self.begin().await?;
        revoke_in(&mut tx, work_session_id).await?;
        let row = sqlx::query(
            "INSERT INTO session_tokens (work_session_id, token_hash, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(work_session_id)
        .bind(token_hash)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get("id")?;
        let owner = sqlx::query(
            "SELECT s.spec_task_id, t.project_id FROM work_sessions s JOIN spec_tasks t ON t.id = s.spec_task_id \
             WHERE s.id = $1",
        )
        .bind(work_session_id)
        .fetch_one(&mut *tx)
        .await?;
        // The event says a token exists, never what it is.
        let event = NewEvent {
            project_id: Some(owner.try_get("project_id")?),
            spec_task_id: Some(owner.try_get("spec_task_id")?),
            entity: "work_session",
            entity_id: Some(work_session_id.0),
            kind: "session.token_issued",
            data: json!({ "token_id": id, "transport": transport }),
        };
        self.commit_with(tx, event, actor).await?;
        Ok(id)
    }

    async fn find_session_token(&self, token_hash: &str) -> Result<Option<SessionGrant>> {
        let row = sqlx::query(
            "SELECT k.id, k.work_session_id, s.spec_task_id, s.status, t.project_id FROM session_tokens k \
             JOIN work_sessions s ON s.id = k.work_session_id JOIN spec_tasks t ON t.id = s.spec_task_id \
             WHERE k.token_hash = $1 AND k.revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let status: String = row.try_get("status")?;
        let ended = status
            .parse::<WorkSessionStatus>()
            .map_or(true, WorkSessionStatus::is_terminal);
        if ended {
            return Ok(None);
        }
        Ok(Some(SessionGrant {
            token_id: row.try_get("id")?,
            work_session_id: row.try_get("work_session_id")?,
            spec_task_id: row.try_get("spec_task_id")?,
            project_id: row.try_get("project_id")?,
        }))
    }
}
