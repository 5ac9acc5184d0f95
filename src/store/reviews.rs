//! Storage for spec review: versions (one per planning round, each a commit on the
//! task branch), the comments people anchor to them, and their verdicts.

use async_trait::async_trait;
use serde_json::json;
use sqlx::Row;

use super::rows::{self, now_ms};
use super::sql::{Bind, SqlStore};
use super::{Actor, Result, Store, StoreError, not_found};
use crate::domain::*;

#[derive(Debug, Clone)]
pub struct NewReviewComment {
    pub spec_version_id: i64,
    pub author: String,
    pub document: String,
    pub line_start: Option<i64>,
    pub line_end: Option<i64>,
    pub quote: Option<String>,
    pub body: String,
}

#[async_trait]
pub trait ReviewStore: Send + Sync + 'static {
    /// Records the next spec version of a task (1, 2, …) at `commit_sha`.
    async fn create_spec_version(
        &self,
        spec_task_id: SpecTaskId,
        commit_sha: &str,
        actor: Actor<'_>,
    ) -> Result<SpecVersion>;
    async fn list_spec_versions(&self, spec_task_id: SpecTaskId) -> Result<Vec<SpecVersion>>;
    async fn get_spec_version(&self, spec_task_id: SpecTaskId, number: i64) -> Result<SpecVersion>;
    async fn add_review_comment(
        &self,
        new: NewReviewComment,
        actor: Actor<'_>,
    ) -> Result<ReviewComment>;
    /// A version's comments, oldest first.
    async fn list_review_comments(&self, spec_version_id: i64) -> Result<Vec<ReviewComment>>;
    async fn get_review_comment(&self, id: i64) -> Result<ReviewComment>;
    /// Marks a comment resolved; resolving twice is a conflict.
    async fn resolve_review_comment(&self, id: i64, actor: Actor<'_>) -> Result<ReviewComment>;
    /// A verdict on a task's spec version and the transition it causes, in one
    /// transaction (see [`SqlStore::transition_spec_task_reviewed`]).
    async fn review_spec_task(
        &self,
        spec_task_id: SpecTaskId,
        make_event: super::MakeEvent<'_>,
        spec_version_id: i64,
        verdict: Verdict,
        actor: Actor<'_>,
    ) -> Result<(SpecTask, Review)>;
    async fn list_reviews(&self, spec_version_id: i64) -> Result<Vec<Review>>;
}

/// Writes a verdict on `task`'s version inside `tx`; returns it with its event.
pub(super) async fn insert_review(
    tx: &mut super::write_tx::WriteTx,
    task: &SpecTask,
    spec_version_id: i64,
    verdict: Verdict,
    actor: Actor<'_>,
) -> Result<(Review, NewEvent)> {
    let sql = format!(
        "INSERT INTO reviews (spec_version_id, reviewer, verdict, created_at) VALUES ($1, $2, $3, $4) RETURNING {}",
        rows::REVIEW_COLUMNS
    );
    let row = sqlx::query(&sql)
        .bind(spec_version_id)
        .bind(actor)
        .bind(verdict.as_str())
        .bind(now_ms())
        .fetch_one(&mut **tx)
        .await?;
    let review = rows::review(&row)?;
    let event = NewEvent {
        project_id: Some(task.project_id),
        spec_task_id: Some(task.id),
        entity: "review",
        entity_id: Some(review.id),
        kind: "review.recorded",
        data: json!({ "spec_version_id": spec_version_id, "verdict": verdict }),
    };
    Ok((review, event))
}

impl SqlStore {
    async fn version_task(&self, spec_version_id: i64) -> Result<(SpecTaskId, ProjectId)> {
        let row = sqlx::query(
            "SELECT v.spec_task_id, t.project_id FROM spec_versions v \
             JOIN spec_tasks t ON t.id = v.spec_task_id WHERE v.id = $1",
        )
        .bind(spec_version_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| not_found("spec version", spec_version_id))?;
        Ok((row.try_get("spec_task_id")?, row.try_get("project_id")?))
    }
}

#[async_trait]
impl ReviewStore for SqlStore {
    async fn create_spec_version(
        &self,
        spec_task_id: SpecTaskId,
        commit_sha: &str,
        actor: Actor<'_>,
    ) -> Result<SpecVersion> {
        let task = Store::get_spec_task(self, spec_task_id).await?;
        let mut tx = self.begin().await?;
        // The number is computed inside the insert, so the write comes first and
        // the UNIQUE (spec_task_id, number) constraint settles any race.
        let sql = format!(
            "INSERT INTO spec_versions (spec_task_id, number, commit_sha, created_at) \
             SELECT $1, COALESCE(MAX(number), 0) + 1, $2, $3 FROM spec_versions WHERE spec_task_id = $1 \
             RETURNING {}",
            rows::SPEC_VERSION_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(spec_task_id)
            .bind(commit_sha)
            .bind(now_ms())
            .fetch_one(&mut *tx)
            .await?;
        let version = rows::spec_version(&row)?;
        let event = NewEvent {
            project_id: Some(task.project_id),
            spec_task_id: Some(spec_task_id),
            entity: "spec_version",
            entity_id: Some(version.id),
            kind: "spec_version.created",
            data: json!({ "number": version.number, "commit": commit_sha }),
        };
        self.commit_with(tx, event, actor).await?;
        Ok(version)
    }

    async fn list_spec_versions(&self, spec_task_id: SpecTaskId) -> Result<Vec<SpecVersion>> {
        self.list_of_task(
            spec_task_id,
            rows::SPEC_VERSION_COLUMNS,
            "spec_versions",
            "number",
            rows::spec_version,
        )
        .await
    }

    async fn get_spec_version(&self, spec_task_id: SpecTaskId, number: i64) -> Result<SpecVersion> {
        Store::get_spec_task(self, spec_task_id).await?;
        let sql = format!(
            "SELECT {} FROM spec_versions WHERE spec_task_id = $1 AND number = $2",
            rows::SPEC_VERSION_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(spec_task_id)
            .bind(number)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| not_found("spec version", number))?;
        rows::spec_version(&row)
    }

    async fn add_review_comment(
        &self,
        new: NewReviewComment,
        actor: Actor<'_>,
    ) -> Result<ReviewComment> {
        let (spec_task_id, project_id) = self.version_task(new.spec_version_id).await?;
        let mut tx = self.begin().await?;
        let sql = format!(
            "INSERT INTO review_comments (spec_version_id, author, document, line_start, line_end, quote, body, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {}",
            rows::REVIEW_COMMENT_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(new.spec_version_id)
            .bind(&new.author)
            .bind(&new.document)
            .bind(new.line_start)
            .bind(new.line_end)
            .bind(new.quote.clone())
            .bind(&new.body)
            .bind(now_ms())
            .fetch_one(&mut *tx)
            .await?;
        let comment = rows::review_comment(&row)?;
        let event = NewEvent {
            project_id: Some(project_id),
            spec_task_id: Some(spec_task_id),
            entity: "review_comment",
            entity_id: Some(comment.id),
            kind: "review_comment.added",
            data: json!({ "spec_version_id": new.spec_version_id, "document": new.document }),
        };
        self.commit_with(tx, event, actor).await?;
        Ok(comment)
    }

    async fn list_review_comments(&self, spec_version_id: i64) -> Result<Vec<ReviewComment>> {
        self.version_task(spec_version_id).await?;
        let sql = format!(
            "SELECT {} FROM review_comments WHERE spec_version_id = $1 ORDER BY id",
            rows::REVIEW_COMMENT_COLUMNS
        );
        self.fetch_rows(&sql, vec![Bind::Int(spec_version_id)])
            .await?
            .iter()
            .map(rows::review_comment)
            .collect()
    }

    async fn get_review_comment(&self, id: i64) -> Result<ReviewComment> {
        let table = ("review_comments", rows::REVIEW_COMMENT_COLUMNS, "id");
        self.fetch_by(
            &self.pool,
            table,
            id,
            "review comment",
            rows::review_comment,
        )
        .await
    }

    async fn resolve_review_comment(&self, id: i64, actor: Actor<'_>) -> Result<ReviewComment> {
        let current = self.get_review_comment(id).await?;
        let (spec_task_id, project_id) = self.version_task(current.spec_version_id).await?;
        let mut tx = self.begin().await?;
        let sql = format!(
            "UPDATE review_comments SET resolved_at = $1 WHERE id = $2 AND resolved_at IS NULL RETURNING {}",
            rows::REVIEW_COMMENT_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(now_ms())
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| {
                StoreError::Conflict(format!("review comment {id} is already resolved"))
            })?;
        let comment = rows::review_comment(&row)?;
        let event = NewEvent {
            project_id: Some(project_id),
            spec_task_id: Some(spec_task_id),
            entity: "review_comment",
            entity_id: Some(id),
            kind: "review_comment.resolved",
            data: json!({}),
        };
        self.commit_with(tx, event, actor).await?;
        Ok(comment)
    }

    async fn review_spec_task(
        &self,
        spec_task_id: SpecTaskId,
        make_event: super::MakeEvent<'_>,
        spec_version_id: i64,
        verdict: Verdict,
        actor: Actor<'_>,
    ) -> Result<(SpecTask, Review)> {
        let (of_task, _) = self.version_task(spec_version_id).await?;
        if of_task != spec_task_id {
            return Err(not_found("spec version", spec_version_id));
        }
        let (task, review) = self
            .transition_spec_task_reviewed(
                spec_task_id,
                make_event,
                Some((spec_version_id, verdict)),
                actor,
            )
            .await?;
        Ok((task, review.expect("a review was asked for")))
    }

    async fn list_reviews(&self, spec_version_id: i64) -> Result<Vec<Review>> {
        let sql = format!(
            "SELECT {} FROM reviews WHERE spec_version_id = $1 ORDER BY id",
            rows::REVIEW_COLUMNS
        );
        self.fetch_rows(&sql, vec![Bind::Int(spec_version_id)])
            .await?
            .iter()
            .map(rows::review)
            .collect()
    }
}
