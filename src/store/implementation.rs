//! Storage for implementation: the tasks of an approved plan, and where each work
//! session's work lives and was merged.

use async_trait::async_trait;
use serde_json::json;

use super::rows::{self, now_ms};
use super::sql::{Bind, SqlStore, insert_work_session, session_status_event, task_status_event};
use super::transition::Transition;
use super::{Actor, NewEvent, NewWorkSession, Result, Store, StoreError, not_found};
use crate::domain::*;

#[derive(Debug, Clone)]
pub struct NewImplementationTask {
    pub key: String,
    pub title: String,
    pub details: String,
    pub depends_on: Vec<String>,
    pub requirements: Vec<String>,
    pub optional: bool,
    pub parallel: bool,
}

/// What starting a plan task's session writes: the session (a pending one that was
/// spawned, or a new one), where it works, and the task it works on.
#[derive(Debug, Clone)]
pub struct StartSession {
    /// A pending session to start; `None` creates one from `new`.
    pub pending: Option<WorkSessionId>,
    pub new: NewWorkSession,
    pub implementation_task_id: ImplementationTaskId,
    pub branch: String,
    pub worktree: String,
}

#[async_trait]
pub trait ImplementationStore: Send + Sync + 'static {
    /// Records the plan's tasks once; a second call returns the existing ones.
    async fn create_implementation_tasks(
        &self,
        spec_task_id: SpecTaskId,
        tasks: Vec<NewImplementationTask>,
    ) -> Result<Vec<ImplementationTask>>;
    /// Adds one task to a running plan (a spawned session's), after the others.
    async fn add_implementation_task(
        &self,
        spec_task_id: SpecTaskId,
        task: NewImplementationTask,
        actor: Actor<'_>,
    ) -> Result<ImplementationTask>;
    /// In plan order.
    async fn list_implementation_tasks(
        &self,
        spec_task_id: SpecTaskId,
    ) -> Result<Vec<ImplementationTask>>;
    async fn transition_implementation_task(
        &self,
        id: ImplementationTaskId,
        event: ImplementationTaskEvent,
        actor: Actor<'_>,
    ) -> Result<ImplementationTask>;
    /// Starts a session in one transaction: the session gets its branch and worktree
    /// and goes `running` (attempt 1), its task goes `in_progress`, and each change
    /// writes its event. Both status changes pass through their lifecycles.
    async fn start_session(&self, start: StartSession) -> Result<WorkSession>;
    /// Where a session works: its branch and worktree.
    async fn set_session_workspace(
        &self,
        id: WorkSessionId,
        branch: &str,
        worktree: &str,
    ) -> Result<WorkSession>;
    /// Records the merge of a session's branch; refuses a second one.
    async fn record_merge(&self, id: WorkSessionId, commit: &str) -> Result<()>;
    async fn merge_commit(&self, id: WorkSessionId) -> Result<Option<String>>;
}

/// Appends one task to a SpecTask's plan, after the ones already there.
async fn insert_task(
    tx: &mut super::write_tx::WriteTx,
    spec_task_id: SpecTaskId,
    t: &NewImplementationTask,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO implementation_tasks (spec_task_id, task_key, title, details, status, depends_on, \
         requirements, optional, parallel, position) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, COALESCE(MAX(position), -1) + 1 \
         FROM implementation_tasks WHERE spec_task_id = $1",
    )
    .bind(spec_task_id)
    .bind(&t.key)
    .bind(&t.title)
    .bind(&t.details)
    .bind(ImplementationTaskStatus::Pending.as_str())
    .bind(json!(t.depends_on).to_string())
    .bind(json!(t.requirements).to_string())
    .bind(i64::from(t.optional))
    .bind(i64::from(t.parallel))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl ImplementationStore for SqlStore {
    async fn create_implementation_tasks(
        &self,
        spec_task_id: SpecTaskId,
        tasks: Vec<NewImplementationTask>,
    ) -> Result<Vec<ImplementationTask>> {
        let task = Store::get_spec_task(self, spec_task_id).await?;
        let existing = self.list_implementation_tasks(spec_task_id).await?;
        if !existing.is_empty() {
            return Ok(existing);
        }
        let mut tx = self.begin().await?;
        for t in &tasks {
            insert_task(&mut tx, spec_task_id, t).await?;
        }
        let event = NewEvent {
            project_id: Some(task.project_id),
            spec_task_id: Some(spec_task_id),
            entity: "spec_task",
            entity_id: Some(spec_task_id.0),
            kind: "implementation_tasks.created",
            data: json!({ "keys": tasks.iter().map(|t| &t.key).collect::<Vec<_>>() }),
        };
        self.commit_with(tx, event, "system").await?;
        self.list_implementation_tasks(spec_task_id).await
    }

    async fn add_implementation_task(
        &self,
        spec_task_id: SpecTaskId,
        t: NewImplementationTask,
        actor: Actor<'_>,
    ) -> Result<ImplementationTask> {
        let task = Store::get_spec_task(self, spec_task_id).await?;
        let mut tx = self.begin().await?;
        let result = insert_task(&mut tx, spec_task_id, &t).await;
        match result {
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Err(StoreError::Conflict(format!(
                    "task {} already exists",
                    t.key
                )));
            }
            other => {
                other?;
            }
        }
        let event = NewEvent {
            project_id: Some(task.project_id),
            spec_task_id: Some(spec_task_id),
            entity: "spec_task",
            entity_id: Some(spec_task_id.0),
            kind: "implementation_task.added",
            data: json!({ "key": t.key, "depends_on": t.depends_on }),
        };
        self.commit_with(tx, event, actor).await?;
        self.list_implementation_tasks(spec_task_id)
            .await?
            .into_iter()
            .find(|x| x.key == t.key)
            .ok_or_else(|| not_found("implementation task", &t.key))
    }

    async fn list_implementation_tasks(
        &self,
        spec_task_id: SpecTaskId,
    ) -> Result<Vec<ImplementationTask>> {
        let sql = format!(
            "SELECT {} FROM implementation_tasks WHERE spec_task_id = $1 ORDER BY position",
            rows::IMPLEMENTATION_TASK_COLUMNS
        );
        self.fetch_rows(&sql, vec![Bind::Int(spec_task_id.0)])
            .await?
            .iter()
            .map(rows::implementation_task)
            .collect()
    }

    async fn transition_implementation_task(
        &self,
        id: ImplementationTaskId,
        event: ImplementationTaskEvent,
        actor: Actor<'_>,
    ) -> Result<ImplementationTask> {
        let table = (
            "implementation_tasks",
            rows::IMPLEMENTATION_TASK_COLUMNS,
            "id",
        );
        let current = self
            .fetch_by(
                &self.pool,
                table,
                id.0,
                "implementation task",
                rows::implementation_task,
            )
            .await?;
        let step = Transition::decide(current.status, event)?;
        let task = Store::get_spec_task(self, current.spec_task_id).await?;
        let mut tx = self.begin().await?;
        let table = ("implementation_tasks", rows::IMPLEMENTATION_TASK_COLUMNS);
        let row = step.write(&mut tx, table, id.0, Vec::new()).await?;
        let updated = rows::implementation_task(&row)?;
        let event = task_status_event(task.project_id, &current, *step.to());
        self.commit_with(tx, event, actor).await?;
        Ok(updated)
    }

    async fn start_session(&self, start: StartSession) -> Result<WorkSession> {
        let item = self
            .fetch_by(
                &self.pool,
                (
                    "implementation_tasks",
                    rows::IMPLEMENTATION_TASK_COLUMNS,
                    "id",
                ),
                start.implementation_task_id.0,
                "implementation task",
                rows::implementation_task,
            )
            .await?;
        let task = Store::get_spec_task(self, item.spec_task_id).await?;
        let item_step = Transition::decide(item.status, ImplementationTaskEvent::Start)?;
        let running = WorkSessionStatus::Pending.apply(WorkSessionEvent::Start)?;
        let now = now_ms();
        let mut events = Vec::new();
        let mut tx = self.begin().await?;
        let session = match start.pending {
            Some(id) => {
                let sql = format!(
                    "UPDATE work_sessions SET status = $1, attempt = attempt + 1, branch = $2, worktree_path = $3, \
                     updated_at = $4 WHERE id = $5 AND status = $6 AND implementation_task_id = $7 RETURNING {}",
                    rows::WORK_SESSION_COLUMNS
                );
                let row = sqlx::query(&sql)
                    .bind(running.as_str())
                    .bind(&start.branch)
                    .bind(&start.worktree)
                    .bind(now)
                    .bind(id)
                    .bind(WorkSessionStatus::Pending.as_str())
                    .bind(item.id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| {
                        StoreError::Conflict(format!(
                            "work session {id} is not a pending session of task {}",
                            item.key
                        ))
                    })?;
                rows::work_session(&row)?
            }
            None => {
                let (session, created) = insert_work_session(
                    &mut tx,
                    task.project_id,
                    &NewWorkSession {
                        spec_task_id: task.id,
                        implementation_task_id: Some(item.id),
                        ..start.new.clone()
                    },
                    running,
                    1,
                    Some((&start.branch, &start.worktree)),
                )
                .await?;
                events.push(created);
                session
            }
        };
        let table = ("implementation_tasks", rows::IMPLEMENTATION_TASK_COLUMNS);
        item_step
            .write(&mut tx, table, item.id.0, Vec::new())
            .await?;
        events.push(NewEvent {
            project_id: Some(task.project_id),
            spec_task_id: Some(task.id),
            entity: "work_session",
            entity_id: Some(session.id.0),
            kind: "work_session.workspace",
            data: json!({ "branch": start.branch, "worktree": start.worktree }),
        });
        events.push(task_status_event(task.project_id, &item, *item_step.to()));
        events.push(session_status_event(
            task.project_id,
            &session,
            WorkSessionStatus::Pending,
            None,
        ));
        self.commit_events(tx, events, "system").await?;
        Ok(session)
    }

    async fn set_session_workspace(
        &self,
        id: WorkSessionId,
        branch: &str,
        worktree: &str,
    ) -> Result<WorkSession> {
        let session = Store::get_work_session(self, id).await?;
        let task = Store::get_spec_task(self, session.spec_task_id).await?;
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE work_sessions SET branch = $1, worktree_path = $2, updated_at = $3 WHERE id = $4")
            .bind(branch)
            .bind(worktree)
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let event = NewEvent {
            project_id: Some(task.project_id),
            spec_task_id: Some(task.id),
            entity: "work_session",
            entity_id: Some(id.0),
            kind: "work_session.workspace",
            data: json!({ "branch": branch, "worktree": worktree }),
        };
        self.commit_with(tx, event, "system").await?;
        Store::get_work_session(self, id).await
    }

    async fn record_merge(&self, id: WorkSessionId, commit: &str) -> Result<()> {
        let session = Store::get_work_session(self, id).await?;
        let task = Store::get_spec_task(self, session.spec_task_id).await?;
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE work_sessions SET merge_commit = $1 WHERE id = $2 AND merge_commit IS NULL",
        )
        .bind(commit)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "work session {id} is already merged"
            )));
        }
        let event = NewEvent {
            project_id: Some(task.project_id),
            spec_task_id: Some(task.id),
            entity: "work_session",
            entity_id: Some(id.0),
            kind: "work_session.merged",
            data: json!({ "commit": commit }),
        };
        self.commit_with(tx, event, "system").await
    }

    async fn merge_commit(&self, id: WorkSessionId) -> Result<Option<String>> {
        use sqlx::Row;
        let row = sqlx::query("SELECT merge_commit FROM work_sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| not_found("work session", id))?;
        Ok(row.try_get("merge_commit")?)
    }
}
