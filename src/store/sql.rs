//! The [`Store`] implementation, written once in SQL that both SQLite and PostgreSQL
//! accept (`$n` placeholders, `RETURNING`, epoch-millisecond integers, JSON as text),
//! run through sqlx's `Any` driver with runtime-checked queries.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyPool, Executor, Row};

use super::rows::{self, now_ms};
use super::transition::{Set, Transition};
pub(super) use super::write_tx::EVENTS_CHANNEL;
use super::write_tx::WriteTx;
use super::*;

/// Which database a [`SqlStore`] talks to; decides the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct SqlStore {
    pub(super) pool: AnyPool,
    backend: Backend,
    /// The id of the newest event this process committed, or (on PostgreSQL) that
    /// another replica announced with `NOTIFY`.
    pub(super) last_event: Arc<tokio::sync::watch::Sender<i64>>,
    /// The task that listens for other replicas' events; ends with the last clone.
    pub(super) follower: Option<Arc<AbortOnDrop>>,
    /// The task leases this process holds as a cluster replica (see `cluster.rs`).
    pub(super) fences: Arc<super::cluster::Fences>,
}

/// Aborts a background task when dropped.
pub(super) struct AbortOnDrop(pub(super) tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A value to bind in a query whose shape is built at runtime.
pub(super) enum Bind {
    Int(i64),
    Text(String),
    MaybeInt(Option<i64>),
    MaybeText(Option<String>),
}

pub(super) fn bind_all<'q>(
    mut q: Query<'q, Any, AnyArguments<'q>>,
    binds: Vec<Bind>,
) -> Query<'q, Any, AnyArguments<'q>> {
    for b in binds {
        q = match b {
            Bind::Int(i) => q.bind(i),
            Bind::Text(s) => q.bind(s),
            Bind::MaybeInt(i) => q.bind(i),
            Bind::MaybeText(s) => q.bind(s),
        };
    }
    q
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

/// Wakes whoever follows the log; ids commit in order (the events lock), so the max
/// is the news.
pub(super) fn announce(last_event: &tokio::sync::watch::Sender<i64>, last: i64) {
    last_event.send_if_modified(|seen| {
        let newer = last > *seen;
        if newer {
            *seen = last;
        }
        newer
    });
}

impl SqlStore {
    pub(super) fn new(pool: AnyPool, backend: Backend) -> SqlStore {
        SqlStore {
            pool,
            backend,
            last_event: Arc::new(tokio::sync::watch::channel(0).0),
            follower: None,
            fences: Default::default(),
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The one row of `table` whose `key` column is `id`, mapped; `NotFound` names
    /// `entity` when there is none.
    pub(super) async fn fetch_by<'e, T>(
        &self,
        db: impl Executor<'e, Database = Any>,
        (table, columns, key): (&str, &str, &str),
        id: i64,
        entity: &'static str,
        map: fn(&AnyRow) -> Result<T>,
    ) -> Result<T> {
        let sql = format!("SELECT {columns} FROM {table} WHERE {key} = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(db)
            .await?
            .ok_or_else(|| not_found(entity, id))?;
        map(&row)
    }

    async fn fetch_spec_task<'e>(
        &self,
        db: impl Executor<'e, Database = Any>,
        id: SpecTaskId,
    ) -> Result<SpecTask> {
        let table = ("spec_tasks", rows::SPEC_TASK_COLUMNS, "id");
        self.fetch_by(db, table, id.0, "spec task", rows::spec_task)
            .await
    }

    async fn fetch_project<'e>(
        &self,
        db: impl Executor<'e, Database = Any>,
        id: ProjectId,
    ) -> Result<Project> {
        let table = ("projects", rows::PROJECT_COLUMNS, "id");
        self.fetch_by(db, table, id.0, "project", rows::project)
            .await
    }

    /// Takes the project's row lock: every status change in a project goes through
    /// it, so WIP counts and compare-and-sets are decided one at a time.
    async fn lock_project(&self, tx: &mut WriteTx, project_id: ProjectId) -> Result<()> {
        let done = sqlx::query("UPDATE projects SET updated_at = updated_at WHERE id = $1")
            .bind(project_id)
            .execute(&mut **tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(not_found("project", project_id));
        }
        Ok(())
    }

    async fn capacity(&self, tx: &mut WriteTx, project: &Project) -> Result<Capacity> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM spec_tasks \
             WHERE project_id = $1 AND status IN ('planning', 'implementing') GROUP BY status",
        )
        .bind(project.id)
        .fetch_all(&mut **tx)
        .await?;
        let (mut planning, mut implementing) = (0, 0);
        for row in rows {
            let n: i64 = row.try_get("n")?;
            match row.try_get::<String, _>("status")?.as_str() {
                "planning" => planning = n,
                _ => implementing = n,
            }
        }
        Ok(Capacity::from_usage(
            planning,
            implementing,
            project.settings.planning_wip_limit,
            project.settings.implementation_wip_limit,
        ))
    }

    /// Applies one transition to a task whose project is already locked in `tx`, and
    /// returns the event to record. Events are recorded last, after every row lock
    /// the transaction needs (see [`SqlStore::record`]).
    async fn transition_locked(
        &self,
        tx: &mut WriteTx,
        task: &SpecTask,
        event: SpecTaskEvent,
    ) -> Result<(SpecTask, NewEvent)> {
        let action = event.name();
        let step = Transition::decide(task.state(), event)?;
        let next = step.to();
        let (phase, reason) = match next {
            SpecTaskState::Failed { phase, reason } => (Some(phase.as_str()), Some(reason.clone())),
            _ => (None, None),
        };
        let sets = vec![
            Set(
                "failed_phase = {}",
                Bind::MaybeText(phase.map(str::to_string)),
            ),
            Set("failure_reason = {}", Bind::MaybeText(reason.clone())),
            Set("updated_at = {}", Bind::Int(now_ms())),
        ];
        let table = ("spec_tasks", rows::SPEC_TASK_COLUMNS);
        let row = step.write(tx, table, task.id.0, sets).await?;
        let updated = rows::spec_task(&row)?;
        let event = NewEvent {
            project_id: Some(task.project_id),
            spec_task_id: Some(task.id),
            entity: "spec_task",
            entity_id: Some(task.id.0),
            kind: "spec_task.status_changed",
            data: json!({
                "from": task.status,
                "to": updated.status,
                "action": action,
                "failed_phase": phase,
                "reason": reason,
            }),
        };
        Ok((updated, event))
    }

    /// Moves queued tasks into their phase while the project's WIP limits allow,
    /// oldest first. Runs inside the transaction that may have freed a slot and
    /// returns the events to record.
    async fn admit_queued(&self, tx: &mut WriteTx, project: &Project) -> Result<Vec<NewEvent>> {
        let mut events = Vec::new();
        loop {
            let capacity = self.capacity(tx, project).await?;
            let mut queued = Vec::new();
            if !capacity.planning_full {
                queued.push("planning_queued");
            }
            if !capacity.implementation_full {
                queued.push("implementation_queued");
            }
            if queued.is_empty() {
                return Ok(events);
            }
            let placeholders: Vec<String> =
                (0..queued.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT id FROM spec_tasks WHERE project_id = $1 AND status IN ({}) ORDER BY id LIMIT 1",
                placeholders.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(project.id);
            for status in queued {
                q = q.bind(status);
            }
            let Some(row) = q.fetch_optional(&mut **tx).await? else {
                return Ok(events);
            };
            let task = self.fetch_spec_task(&mut **tx, row.try_get("id")?).await?;
            let (_, event) = self
                .transition_locked(tx, &task, SpecTaskEvent::Admit(capacity))
                .await?;
            events.push(event);
        }
    }

    async fn session_task(&self, session_id: WorkSessionId) -> Result<SpecTaskId> {
        let row = sqlx::query("SELECT spec_task_id FROM work_sessions WHERE id = $1")
            .bind(session_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| not_found("work session", session_id))?;
        Ok(row.try_get("spec_task_id")?)
    }

    /// Checks that an optional session belongs to the SpecTask a request is about.
    pub(super) async fn check_session_in_task(
        &self,
        session_id: Option<WorkSessionId>,
        spec_task_id: SpecTaskId,
        role: &str,
    ) -> Result<()> {
        let Some(id) = session_id else { return Ok(()) };
        let owner = match self.session_task(id).await {
            Err(StoreError::NotFound { .. }) => {
                return Err(StoreError::Missing(format!(
                    "{role} session {id} does not exist"
                )));
            }
            other => other?,
        };
        if owner != spec_task_id {
            return Err(StoreError::Missing(format!(
                "{role} session {id} belongs to spec task {owner}, not {spec_task_id}"
            )));
        }
        Ok(())
    }

    /// The one path of a spec task's status. `review`, when given, is a verdict on
    /// a spec version written in the same transaction (approve, request changes,
    /// reject), so the status and the verdict that caused it never part.
    pub(super) async fn transition_spec_task_reviewed(
        &self,
        id: SpecTaskId,
        make_event: MakeEvent<'_>,
        review: Option<(i64, Verdict)>,
        actor: Actor<'_>,
    ) -> Result<(SpecTask, Option<Review>)> {
        // A task never changes project, so this read can precede the transaction,
        // whose first statement must be a write (see the module invariants).
        let project_id = self.get_spec_task(id).await?.project_id;
        let mut tx = self.begin().await?;
        self.lock_project(&mut tx, project_id).await?;
        let project = self.fetch_project(&mut *tx, project_id).await?;
        let task = self.fetch_spec_task(&mut *tx, id).await?;
        let capacity = self.capacity(&mut tx, &project).await?;
        let (updated, event) = self
            .transition_locked(&mut tx, &task, make_event(capacity))
            .await?;
        let mut events = vec![event];
        let review = match review {
            Some((version, verdict)) => {
                let (review, event) =
                    super::reviews::insert_review(&mut tx, &task, version, verdict, actor).await?;
                events.push(event);
                Some(review)
            }
            None => None,
        };
        let admitted = self.admit_queued(&mut tx, &project).await?;
        self.commit_all_with_admissions(tx, events, actor, admitted)
            .await?;
        Ok((updated, review))
    }

    /// The rows of `table` that belong to a spec task, oldest first; 404 for an
    /// unknown task rather than an empty list.
    pub(super) async fn list_of_task<T>(
        &self,
        spec_task_id: SpecTaskId,
        columns: &str,
        table: &str,
        order_by: &str,
        map: fn(&AnyRow) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.get_spec_task(spec_task_id).await?;
        let sql =
            format!("SELECT {columns} FROM {table} WHERE spec_task_id = $1 ORDER BY {order_by}");
        self.fetch_rows(&sql, vec![Bind::Int(spec_task_id.0)])
            .await?
            .iter()
            .map(map)
            .collect()
    }

    pub(super) async fn fetch_rows(&self, sql: &str, binds: Vec<Bind>) -> Result<Vec<AnyRow>> {
        Ok(bind_all(sqlx::query(sql), binds)
            .fetch_all(&self.pool)
            .await?)
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn close(&self) {
        self.pool.close().await;
    }

    fn subscribe_events(&self) -> tokio::sync::watch::Receiver<i64> {
        self.last_event.subscribe()
    }

    async fn last_event_id(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS last FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("last")?)
    }

    async fn create_token(
        &self,
        name: &str,
        token_hash: &str,
        actor: Actor<'_>,
    ) -> Result<ApiToken> {
        let mut tx = self.begin().await?;
        let sql = format!(
            "INSERT INTO api_tokens (name, token_hash, created_at) VALUES ($1, $2, $3) RETURNING {}",
            rows::TOKEN_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(name)
            .bind(token_hash)
            .bind(now_ms())
            .fetch_one(&mut *tx)
            .await?;
        let token = rows::token(&row)?;
        let event = NewEvent {
            project_id: None,
            spec_task_id: None,
            entity: "token",
            entity_id: Some(token.id),
            kind: "token.created",
            data: json!({ "name": name }),
        };
        self.commit_with(tx, event, actor).await?;
        Ok(token)
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>> {
        let sql = format!("SELECT {} FROM api_tokens ORDER BY id", rows::TOKEN_COLUMNS);
        self.fetch_rows(&sql, vec![])
            .await?
            .iter()
            .map(rows::token)
            .collect()
    }

    async fn revoke_token(&self, id: i64, actor: Actor<'_>) -> Result<ApiToken> {
        let mut tx = self.begin().await?;
        let sql = format!(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING {}",
            rows::TOKEN_COLUMNS
        );
        let Some(row) = sqlx::query(&sql)
            .bind(now_ms())
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            let exists = sqlx::query("SELECT id FROM api_tokens WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            return Err(match exists {
                Some(_) => StoreError::Conflict(format!("token {id} is already revoked")),
                None => not_found("token", id),
            });
        };
        let token = rows::token(&row)?;
        let event = NewEvent {
            project_id: None,
            spec_task_id: None,
            entity: "token",
            entity_id: Some(id),
            kind: "token.revoked",
            data: json!({ "name": token.name }),
        };
        self.commit_with(tx, event, actor).await?;
        Ok(token)
    }

    async fn find_active_token(&self, token_hash: &str) -> Result<Option<ApiToken>> {
        let sql = format!(
            "SELECT {} FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
            rows::TOKEN_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::token).transpose()
    }

    async fn create_project(&self, new: NewProject, actor: Actor<'_>) -> Result<Project> {
        new.settings.validate()?;
        let mut tx = self.begin().await?;
        let now = now_ms();
        let s = &new.settings;
        let sql = format!(
            "INSERT INTO projects (name, path, base_branch, spec_folder, verification_command, \
             planning_wip_limit, implementation_wip_limit, max_parallel_sessions, permission_policy, \
             conflict_policy, review_implementation, max_attempts, empty_session, turn_timeout_secs, \
             verify_timeout_secs, sandbox, max_spawned_sessions, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18) RETURNING {}",
            rows::PROJECT_COLUMNS
        );
        let result = sqlx::query(&sql)
            .bind(&new.name)
            .bind(&new.path)
            .bind(&s.base_branch)
            .bind(&s.spec_folder)
            .bind(s.verification_command.clone())
            .bind(s.planning_wip_limit)
            .bind(s.implementation_wip_limit)
            .bind(s.max_parallel_sessions)
            .bind(s.permission_policy.as_str())
            .bind(s.conflict_policy.as_str())
            .bind(i64::from(s.review_implementation))
            .bind(s.max_attempts)
            .bind(s.empty_session.as_str())
            .bind(s.turn_timeout_secs)
            .bind(s.verify_timeout_secs)
            .bind(s.sandbox.as_str())
            .bind(s.max_spawned_sessions)
            .bind(now)
            .fetch_one(&mut *tx)
            .await;
        let row = match result {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!(
                    "a project at {} is already registered",
                    new.path
                )));
            }
            other => other?,
        };
        let project = rows::project(&row)?;
        let event = NewEvent {
            project_id: Some(project.id),
            spec_task_id: None,
            entity: "project",
            entity_id: Some(project.id.0),
            kind: "project.created",
            data: json!({ "name": project.name, "path": project.path }),
        };
        self.commit_with(tx, event, actor).await?;
        Ok(project)
    }

    async fn list_projects(&self) -> Result<Vec<Project>> {
        let sql = format!("SELECT {} FROM projects ORDER BY id", rows::PROJECT_COLUMNS);
        self.fetch_rows(&sql, vec![])
            .await?
            .iter()
            .map(rows::project)
            .collect()
    }

    async fn get_project(&self, id: ProjectId) -> Result<Project> {
        self.fetch_project(&self.pool, id).await
    }

    async fn update_project(
        &self,
        id: ProjectId,
        patch: &ProjectSettingsPatch,
        actor: Actor<'_>,
    ) -> Result<Project> {
        let name = match &patch.name {
            Some(n) if n.trim().is_empty() => {
                return Err(StoreError::Invalid("name: must not be empty".into()));
            }
            Some(n) => Some(n.trim().to_string()),
            None => None,
        };
        let mut tx = self.begin().await?;
        self.lock_project(&mut tx, id).await?;
        let current = self.fetch_project(&mut *tx, id).await?;
        let s = current.settings.patched(patch)?;
        let sql = format!(
            "UPDATE projects SET name = $1, base_branch = $2, spec_folder = $3, verification_command = $4, \
             planning_wip_limit = $5, implementation_wip_limit = $6, max_parallel_sessions = $7, \
             permission_policy = $8, conflict_policy = $9, review_implementation = $10, max_attempts = $11, \
             empty_session = $12, turn_timeout_secs = $13, verify_timeout_secs = $14, \
             sandbox = $15, max_spawned_sessions = $16, updated_at = $17 WHERE id = $18 RETURNING {}",
            rows::PROJECT_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(name.unwrap_or(current.name))
            .bind(&s.base_branch)
            .bind(&s.spec_folder)
            .bind(s.verification_command.clone())
            .bind(s.planning_wip_limit)
            .bind(s.implementation_wip_limit)
            .bind(s.max_parallel_sessions)
            .bind(s.permission_policy.as_str())
            .bind(s.conflict_policy.as_str())
            .bind(i64::from(s.review_implementation))
            .bind(s.max_attempts)
            .bind(s.empty_session.as_str())
            .bind(s.turn_timeout_secs)
            .bind(s.verify_timeout_secs)
            .bind(s.sandbox.as_str())
            .bind(s.max_spawned_sessions)
            .bind(now_ms())
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let project = rows::project(&row)?;
        // A raised WIP limit may let queued tasks in.
        let admitted = self.admit_queued(&mut tx, &project).await?;
        let event = NewEvent {
            project_id: Some(id),
            spec_task_id: None,
            entity: "project",
            entity_id: Some(id.0),
            kind: "project.updated",
            data: json!({ "name": project.name, "settings": project.settings }),
        };
        self.commit_with_admissions(tx, event, actor, admitted)
            .await?;
        Ok(project)
    }

    async fn create_spec_task(&self, new: NewSpecTask, actor: Actor<'_>) -> Result<SpecTask> {
        let mut tx = self.begin().await?;
        let now = now_ms();
        let slug = slugify(&new.title);
        let sql = format!(
            "INSERT INTO spec_tasks (project_id, title, description, prompt, priority, task_type, status, \
             slug, max_parallel_sessions, agent_profile, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING {}",
            rows::SPEC_TASK_COLUMNS
        );
        let result = sqlx::query(&sql)
            .bind(new.project_id)
            .bind(&new.title)
            .bind(&new.description)
            .bind(&new.prompt)
            .bind(new.priority.as_str())
            .bind(new.task_type.as_str())
            .bind(SpecTaskStatus::Backlog.as_str())
            .bind(&slug)
            .bind(new.max_parallel_sessions)
            .bind(new.agent_profile.clone())
            .bind(now)
            .fetch_one(&mut *tx)
            .await;
        let row = match result {
            Err(e) if is_foreign_key_violation(&e) => {
                return Err(not_found("project", new.project_id));
            }
            other => other?,
        };
        let task = rows::spec_task(&row)?;
        let event = NewEvent {
            project_id: Some(task.project_id),
            spec_task_id: Some(task.id),
            entity: "spec_task",
            entity_id: Some(task.id.0),
            kind: "spec_task.created",
            data: json!({ "title": task.title, "status": task.status, "branch": task.branch }),
        };
        self.commit_with(tx, event, actor).await?;
        Ok(task)
    }

    async fn list_open_spec_tasks(&self) -> Result<Vec<SpecTask>> {
        let sql = format!(
            "SELECT {} FROM spec_tasks WHERE status NOT IN ('done', 'cancelled', 'rejected') ORDER BY id",
            rows::SPEC_TASK_COLUMNS
        );
        self.fetch_rows(&sql, Vec::new())
            .await?
            .iter()
            .map(rows::spec_task)
            .collect()
    }

    async fn list_spec_tasks(
        &self,
        filter: &SpecTaskFilter,
    ) -> Result<(Vec<SpecTask>, Option<i64>)> {
        let mut conditions = Vec::new();
        let mut binds = Vec::new();
        if let Some(p) = filter.project_id {
            binds.push(Bind::Int(p.0));
            conditions.push(format!("project_id = ${}", binds.len()));
        }
        if let Some(status) = filter.status {
            binds.push(Bind::Text(status.as_str().to_string()));
            conditions.push(format!("status = ${}", binds.len()));
        }
        if let Some(b) = filter.before_id {
            binds.push(Bind::Int(b));
            conditions.push(format!("id < ${}", binds.len()));
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let limit = filter.limit.max(1);
        // One extra row tells whether a next page exists.
        binds.push(Bind::Int(limit + 1));
        let sql = format!(
            "SELECT {} FROM spec_tasks {where_clause} ORDER BY id DESC LIMIT ${}",
            rows::SPEC_TASK_COLUMNS,
            binds.len()
        );
        let mut tasks = self
            .fetch_rows(&sql, binds)
            .await?
            .iter()
            .map(rows::spec_task)
            .collect::<Result<Vec<_>>>()?;
        let next = if tasks.len() as i64 > limit {
            tasks.truncate(limit as usize);
            tasks.last().map(|t| t.id.0)
        } else {
            None
        };
        Ok((tasks, next))
    }

    async fn get_spec_task(&self, id: SpecTaskId) -> Result<SpecTask> {
        self.fetch_spec_task(&self.pool, id).await
    }

    async fn update_spec_task(
        &self,
        id: SpecTaskId,
        patch: &SpecTaskPatch,
        actor: Actor<'_>,
    ) -> Result<SpecTask> {
        if patch.title.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(StoreError::Invalid("title: must not be empty".into()));
        }
        let mut tx = self.begin().await?;
        let sql = format!(
            "UPDATE spec_tasks SET title = COALESCE($1, title), description = COALESCE($2, description), \
             priority = COALESCE($3, priority), updated_at = $4 WHERE id = $5 RETURNING {}",
            rows::SPEC_TASK_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(patch.title.as_deref().map(str::trim))
            .bind(patch.description.clone())
            .bind(patch.priority.map(|p| p.as_str()))
            .bind(now_ms())
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| not_found("spec task", id))?;
        let task = rows::spec_task(&row)?;
        let event = NewEvent {
            project_id: Some(task.project_id),
            spec_task_id: Some(id),
            entity: "spec_task",
            entity_id: Some(id.0),
            kind: "spec_task.updated",
            data: json!({
                "title": patch.title,
                "description": patch.description,
                "priority": patch.priority,
            }),
        };
        self.commit_with(tx, event, actor).await?;
        Ok(task)
    }

    async fn transition_spec_task(
        &self,
        id: SpecTaskId,
        make_event: MakeEvent<'_>,
        actor: Actor<'_>,
    ) -> Result<SpecTask> {
        Ok(self
            .transition_spec_task_reviewed(id, make_event, None, actor)
            .await?
            .0)
    }

    async fn create_work_session(
        &self,
        new: NewWorkSession,
        actor: Actor<'_>,
    ) -> Result<WorkSession> {
        let task = self.get_spec_task(new.spec_task_id).await?;
        self.check_session_in_task(new.parent_id, task.id, "parent")
            .await?;
        let mut tx = self.begin().await?;
        let (session, event) = insert_work_session(
            &mut tx,
            task.project_id,
            &new,
            WorkSessionStatus::Pending,
            0,
            None,
        )
        .await?;
        self.commit_with(tx, event, actor).await?;
        Ok(session)
    }

    async fn list_work_sessions(&self, spec_task_id: SpecTaskId) -> Result<Vec<WorkSession>> {
        self.list_of_task(
            spec_task_id,
            rows::WORK_SESSION_COLUMNS,
            "work_sessions",
            "id",
            rows::work_session,
        )
        .await
    }

    async fn get_work_session(&self, id: WorkSessionId) -> Result<WorkSession> {
        let table = ("work_sessions", rows::WORK_SESSION_COLUMNS, "id");
        self.fetch_by(&self.pool, table, id.0, "work session", rows::work_session)
            .await
    }

    async fn transition_work_session(
        &self,
        id: WorkSessionId,
        event: WorkSessionEvent,
        reason: Option<String>,
        actor: Actor<'_>,
    ) -> Result<WorkSession> {
        let current = self.get_work_session(id).await?;
        let step = Transition::decide(current.status, event.clone())?;
        let next = *step.to();
        let attempt = current.attempt + i64::from(event == WorkSessionEvent::Start);
        let reason = match next {
            WorkSessionStatus::Failed | WorkSessionStatus::Interrupted => reason,
            _ => None,
        };
        let mut tx = self.begin().await?;
        let sets = vec![
            Set("attempt = {}", Bind::Int(attempt)),
            Set("failure_reason = {}", Bind::MaybeText(reason.clone())),
            Set("updated_at = {}", Bind::Int(now_ms())),
        ];
        let table = ("work_sessions", rows::WORK_SESSION_COLUMNS);
        let row = step.write(&mut tx, table, id.0, sets).await?;
        let session = rows::work_session(&row)?;
        // A session that will not run again loses its agent-tool credentials with
        // the change that ends it (a failed one may be retried: its token is refused
        // while it is failed, see `find_session_token`).
        if matches!(
            next,
            WorkSessionStatus::Completed
                | WorkSessionStatus::Skipped
                | WorkSessionStatus::Cancelled
        ) {
            super::session_tokens::revoke_in(&mut tx, id).await?;
        }
        let project_id: ProjectId = sqlx::query("SELECT project_id FROM spec_tasks WHERE id = $1")
            .bind(session.spec_task_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("project_id")?;
        let event = session_status_event(project_id, &session, current.status, reason);
        self.commit_with(tx, event, actor).await?;
        Ok(session)
    }

    async fn post_coordination_event(
        &self,
        new: NewCoordinationEvent,
        actor: Actor<'_>,
    ) -> Result<CoordinationEvent> {
        let task = self.get_spec_task(new.spec_task_id).await?;
        self.check_session_in_task(new.from_session_id, task.id, "sending")
            .await?;
        self.check_session_in_task(new.to_session_id, task.id, "receiving")
            .await?;
        if new.kind == CoordinationKind::Broadcast && new.to_session_id.is_some() {
            return Err(StoreError::Invalid(
                "a broadcast goes to every session: leave to_session_id out".into(),
            ));
        }
        let mut tx = self.begin().await?;
        let sql = format!(
            "INSERT INTO coordination_events (spec_task_id, kind, from_session_id, to_session_id, message, \
             payload, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {}",
            rows::COORDINATION_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(task.id)
            .bind(new.kind.as_str())
            .bind(new.from_session_id)
            .bind(new.to_session_id)
            .bind(&new.message)
            .bind(new.payload.to_string())
            .bind(now_ms())
            .fetch_one(&mut *tx)
            .await?;
        let posted = rows::coordination_event(&row)?;
        let event = NewEvent {
            project_id: Some(task.project_id),
            spec_task_id: Some(task.id),
            entity: "coordination_event",
            entity_id: Some(posted.id.0),
            kind: "coordination_event.posted",
            data: json!({
                "kind": posted.kind,
                "from_session_id": posted.from_session_id,
                "to_session_id": posted.to_session_id,
            }),
        };
        self.commit_with(tx, event, actor).await?;
        Ok(posted)
    }

    async fn list_coordination_events(
        &self,
        spec_task_id: SpecTaskId,
    ) -> Result<Vec<CoordinationEvent>> {
        self.list_of_task(
            spec_task_id,
            rows::COORDINATION_COLUMNS,
            "coordination_events",
            "id",
            rows::coordination_event,
        )
        .await
    }

    async fn acknowledge_coordination_event(
        &self,
        spec_task_id: SpecTaskId,
        id: CoordinationEventId,
        by_session: Option<WorkSessionId>,
        actor: Actor<'_>,
    ) -> Result<CoordinationEvent> {
        let task = self.get_spec_task(spec_task_id).await?;
        self.check_session_in_task(by_session, spec_task_id, "acknowledging")
            .await?;
        let mut tx = self.begin().await?;
        let sql = format!(
            "UPDATE coordination_events SET acknowledged_at = $1, acknowledged_by = $2 \
             WHERE id = $3 AND spec_task_id = $4 AND acknowledged_at IS NULL RETURNING {}",
            rows::COORDINATION_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(now_ms())
            .bind(by_session)
            .bind(id)
            .bind(spec_task_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            let exists = sqlx::query(
                "SELECT id FROM coordination_events WHERE id = $1 AND spec_task_id = $2",
            )
            .bind(id)
            .bind(spec_task_id)
            .fetch_optional(&mut *tx)
            .await?;
            return Err(match exists {
                Some(_) => {
                    StoreError::Conflict(format!("coordination event {id} is already acknowledged"))
                }
                None => not_found("coordination event", id),
            });
        };
        let acked = rows::coordination_event(&row)?;
        if let (Some(to), Some(by)) = (acked.to_session_id, by_session)
            && to != by
        {
            // Dropping the transaction rolls the acknowledgement back.
            return Err(StoreError::Conflict(format!(
                "coordination event {id} is addressed to session {to}, not {by}"
            )));
        }
        let event = NewEvent {
            project_id: Some(task.project_id),
            spec_task_id: Some(spec_task_id),
            entity: "coordination_event",
            entity_id: Some(id.0),
            kind: "coordination_event.acknowledged",
            data: json!({ "by_session_id": by_session }),
        };
        self.commit_with(tx, event, actor).await?;
        Ok(acked)
    }

    async fn list_shared_state(&self, spec_task_id: SpecTaskId) -> Result<Vec<SharedStateEntry>> {
        self.list_of_task(
            spec_task_id,
            rows::SHARED_STATE_COLUMNS,
            "shared_state",
            "state_key",
            rows::shared_state,
        )
        .await
    }

    async fn get_shared_state(
        &self,
        spec_task_id: SpecTaskId,
        key: &str,
    ) -> Result<SharedStateEntry> {
        self.get_spec_task(spec_task_id).await?;
        let sql = format!(
            "SELECT {} FROM shared_state WHERE spec_task_id = $1 AND state_key = $2",
            rows::SHARED_STATE_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(spec_task_id)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| not_found("shared state key", key))?;
        rows::shared_state(&row)
    }

    async fn put_shared_state(
        &self,
        spec_task_id: SpecTaskId,
        key: &str,
        value: &serde_json::Value,
        expected_version: i64,
        actor: Actor<'_>,
    ) -> Result<SharedStateEntry> {
        validate_state_key(key).map_err(StoreError::Invalid)?;
        let task = self.get_spec_task(spec_task_id).await?;
        let mut tx = self.begin().await?;
        let now = now_ms();
        let result = if expected_version == 0 {
            let sql = format!(
                "INSERT INTO shared_state (spec_task_id, state_key, value, version, updated_at) \
                 VALUES ($1, $2, $3, 1, $4) RETURNING {}",
                rows::SHARED_STATE_COLUMNS
            );
            match sqlx::query(&sql)
                .bind(spec_task_id)
                .bind(key)
                .bind(value.to_string())
                .bind(now)
                .fetch_one(&mut *tx)
                .await
            {
                Err(e) if is_unique_violation(&e) => None,
                other => Some(other?),
            }
        } else {
            let sql = format!(
                "UPDATE shared_state SET value = $1, version = version + 1, updated_at = $2 \
                 WHERE spec_task_id = $3 AND state_key = $4 AND version = $5 RETURNING {}",
                rows::SHARED_STATE_COLUMNS
            );
            sqlx::query(&sql)
                .bind(value.to_string())
                .bind(now)
                .bind(spec_task_id)
                .bind(key)
                .bind(expected_version)
                .fetch_optional(&mut *tx)
                .await?
        };
        let Some(row) = result else {
            drop(tx);
            let current = match self.get_shared_state(spec_task_id, key).await {
                Ok(entry) => format!("its current version is {}", entry.version),
                Err(StoreError::NotFound { .. }) => {
                    "it does not exist (use expected_version 0 to create it)".into()
                }
                Err(e) => return Err(e),
            };
            return Err(StoreError::Conflict(format!(
                "shared state {key:?} was not written: expected version {expected_version}, but {current}"
            )));
        };
        let entry = rows::shared_state(&row)?;
        let event = NewEvent {
            project_id: Some(task.project_id),
            spec_task_id: Some(spec_task_id),
            entity: "shared_state",
            entity_id: None,
            kind: "shared_state.written",
            data: json!({ "key": key, "version": entry.version }),
        };
        self.commit_with(tx, event, actor).await?;
        Ok(entry)
    }

    async fn list_events(
        &self,
        after: i64,
        spec_task_id: Option<SpecTaskId>,
        limit: i64,
    ) -> Result<Vec<Event>> {
        let (filter, mut binds) = match spec_task_id {
            Some(t) => (
                "AND spec_task_id = $2",
                vec![Bind::Int(after), Bind::Int(t.0)],
            ),
            None => ("", vec![Bind::Int(after)]),
        };
        binds.push(Bind::Int(limit.max(1)));
        let sql = format!(
            "SELECT {} FROM events WHERE id > $1 {filter} ORDER BY id LIMIT ${}",
            rows::EVENT_COLUMNS,
            binds.len()
        );
        self.fetch_rows(&sql, binds)
            .await?
            .iter()
            .map(rows::event)
            .collect()
    }

    async fn latest_event_of(
        &self,
        entity: &str,
        entity_id: i64,
        kind: &str,
    ) -> Result<Option<Event>> {
        let sql = format!(
            "SELECT {} FROM events WHERE entity = $1 AND entity_id = $2 AND kind = $3 ORDER BY id DESC LIMIT 1",
            rows::EVENT_COLUMNS
        );
        self.fetch_rows(
            &sql,
            vec![
                Bind::Text(entity.to_string()),
                Bind::Int(entity_id),
                Bind::Text(kind.to_string()),
            ],
        )
        .await?
        .first()
        .map(rows::event)
        .transpose()
    }

    async fn latest_events(&self, spec_task_id: SpecTaskId, limit: i64) -> Result<Vec<Event>> {
        let sql = format!(
            "SELECT {} FROM events WHERE spec_task_id = $1 ORDER BY id DESC LIMIT $2",
            rows::EVENT_COLUMNS
        );
        let mut events = self
            .fetch_rows(
                &sql,
                vec![Bind::Int(spec_task_id.0), Bind::Int(limit.max(1))],
            )
            .await?
            .iter()
            .map(rows::event)
            .collect::<Result<Vec<_>>>()?;
        events.reverse();
        Ok(events)
    }
}

/// Inserts a work session (with its branch and worktree when they are known) and
/// returns it with its `work_session.created` event, for the caller's transaction.
pub(super) async fn insert_work_session(
    tx: &mut WriteTx,
    project_id: ProjectId,
    new: &NewWorkSession,
    status: WorkSessionStatus,
    attempt: i64,
    workspace: Option<(&str, &str)>,
) -> Result<(WorkSession, NewEvent)> {
    let sql = format!(
        "INSERT INTO work_sessions (spec_task_id, parent_id, implementation_task_id, kind, name, prompt, \
         status, attempt, branch, worktree_path, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING {}",
        rows::WORK_SESSION_COLUMNS
    );
    let row = sqlx::query(&sql)
        .bind(new.spec_task_id)
        .bind(new.parent_id)
        .bind(new.implementation_task_id)
        .bind(new.kind.as_str())
        .bind(&new.name)
        .bind(&new.prompt)
        .bind(status.as_str())
        .bind(attempt)
        .bind(workspace.map(|(branch, _)| branch.to_string()))
        .bind(workspace.map(|(_, worktree)| worktree.to_string()))
        .bind(now_ms())
        .fetch_one(&mut **tx)
        .await?;
    let session = rows::work_session(&row)?;
    let event = NewEvent {
        project_id: Some(project_id),
        spec_task_id: Some(session.spec_task_id),
        entity: "work_session",
        entity_id: Some(session.id.0),
        kind: "work_session.created",
        data: json!({ "name": session.name, "kind": session.kind, "parent_id": session.parent_id }),
    };
    Ok((session, event))
}

/// The event of a work session's status change.
pub(super) fn session_status_event(
    project_id: ProjectId,
    session: &WorkSession,
    from: WorkSessionStatus,
    reason: Option<String>,
) -> NewEvent {
    NewEvent {
        project_id: Some(project_id),
        spec_task_id: Some(session.spec_task_id),
        entity: "work_session",
        entity_id: Some(session.id.0),
        kind: "work_session.status_changed",
        data: json!({ "from": from, "to": session.status, "attempt": session.attempt, "reason": reason }),
    }
}

/// The event of an implementation task's status change.
pub(super) fn task_status_event(
    project_id: ProjectId,
    item: &ImplementationTask,
    to: ImplementationTaskStatus,
) -> NewEvent {
    NewEvent {
        project_id: Some(project_id),
        spec_task_id: Some(item.spec_task_id),
        entity: "implementation_task",
        entity_id: Some(item.id.0),
        kind: "implementation_task.status_changed",
        data: json!({ "key": item.key, "from": item.status, "to": to }),
    }
}
