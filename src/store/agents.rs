//! Storage for the agent side: instances, threads, transcripts and permission
//! requests. Same rules as the rest of the store: status changes go through the
//! domain's lifecycles as compare-and-sets, and each change writes its event.

use async_trait::async_trait;
use serde_json::json;
use sqlx::Row;

use super::rows::{self, now_ms};
use super::sql::{Bind, SqlStore};
use super::transition::{Set, Transition};
use super::write_tx::Unrecorded;
use super::{Actor, Result, StoreError, not_found};
use crate::domain::*;

/// What the agent reported about itself when an instance became ready or stopped.
#[derive(Debug, Clone, Default)]
pub struct InstanceReport {
    pub pid: Option<i64>,
    pub last_error: Option<String>,
    pub agent_name: Option<String>,
    pub agent_version: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewTranscriptEntry {
    pub work_session_id: WorkSessionId,
    pub kind: TranscriptKind,
    pub content: String,
    pub data: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct NewPermissionRequest {
    pub work_session_id: WorkSessionId,
    pub title: String,
    pub tool_call: serde_json::Value,
    pub options: serde_json::Value,
}

/// Samples kept per agent instance: the dashboard's chart window.
pub const KEPT_SAMPLES: i64 = 360;

#[async_trait]
pub trait AgentStore: Send + Sync + 'static {
    /// The SpecTask's instance, created in `starting` if it has none. An existing
    /// instance that is stopped or crashed is moved to `starting` (a restart).
    async fn start_agent_instance(
        &self,
        spec_task_id: SpecTaskId,
        profile: &str,
        actor: Actor<'_>,
    ) -> Result<AgentInstance>;
    async fn get_agent_instance(&self, spec_task_id: SpecTaskId) -> Result<AgentInstance>;
    async fn transition_agent_instance(
        &self,
        id: AgentInstanceId,
        event: AgentInstanceEvent,
        report: InstanceReport,
        actor: Actor<'_>,
    ) -> Result<AgentInstance>;
    /// A person stopped (`true`) or restarted (`false`) the task's agent: while held,
    /// the orchestrator starts nothing on it. `None` when the task never had one.
    async fn hold_agent_instance(
        &self,
        spec_task_id: SpecTaskId,
        held: bool,
        actor: Actor<'_>,
    ) -> Result<Option<AgentInstance>>;
    /// Every agent instance, of every spec task.
    async fn list_agent_instances(&self) -> Result<Vec<AgentInstance>>;
    /// The newest `limit` samples of a task's agent, oldest first (none without one).
    async fn list_agent_samples(
        &self,
        spec_task_id: SpecTaskId,
        limit: i64,
    ) -> Result<Vec<AgentSample>>;
    /// The latest CPU and memory sample; not an event (it would flood the log).
    async fn record_instance_sample(
        &self,
        id: AgentInstanceId,
        cpu_percent: f64,
        rss_bytes: i64,
    ) -> Result<()>;

    /// The session's thread in `opening`, created if it has none; an existing
    /// interrupted thread is resumed (moved to `opening`).
    async fn open_agent_thread(
        &self,
        instance_id: AgentInstanceId,
        work_session_id: WorkSessionId,
        actor: Actor<'_>,
    ) -> Result<AgentThread>;
    async fn transition_agent_thread(
        &self,
        id: AgentThreadId,
        event: AgentThreadEvent,
        acp_session_id: Option<&str>,
        reason: Option<&str>,
        actor: Actor<'_>,
    ) -> Result<AgentThread>;
    async fn get_agent_thread(&self, work_session_id: WorkSessionId) -> Result<AgentThread>;
    async fn list_agent_threads(&self, spec_task_id: SpecTaskId) -> Result<Vec<AgentThread>>;

    async fn append_transcript(&self, entry: NewTranscriptEntry) -> Result<TranscriptEntry>;
    async fn list_transcript(
        &self,
        work_session_id: WorkSessionId,
        after_id: i64,
    ) -> Result<Vec<TranscriptEntry>>;

    async fn create_permission_request(
        &self,
        new: NewPermissionRequest,
    ) -> Result<PermissionRequest>;
    /// Moves a pending request through its lifecycle: `answered` (with the option)
    /// or `cancelled`; a request that is no longer pending is a conflict.
    async fn resolve_permission_request(
        &self,
        id: PermissionRequestId,
        event: PermissionEvent,
        option_id: Option<&str>,
        actor: Actor<'_>,
    ) -> Result<PermissionRequest>;
    async fn get_permission_request(&self, id: PermissionRequestId) -> Result<PermissionRequest>;
    async fn list_permission_requests(
        &self,
        status: Option<PermissionStatus>,
        spec_task_id: Option<SpecTaskId>,
    ) -> Result<Vec<PermissionRequest>>;

    /// Records an event that changes no row, such as a refused escape attempt.
    async fn record_event(&self, event: NewEvent, actor: Actor<'_>) -> Result<()>;
}

impl SqlStore {
    pub(super) async fn task_project(&self, spec_task_id: SpecTaskId) -> Result<ProjectId> {
        let row = sqlx::query("SELECT project_id FROM spec_tasks WHERE id = $1")
            .bind(spec_task_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| not_found("spec task", spec_task_id))?;
        Ok(row.try_get("project_id")?)
    }

    async fn instance_by_id(&self, id: AgentInstanceId) -> Result<AgentInstance> {
        let table = ("agent_instances", rows::AGENT_INSTANCE_COLUMNS, "id");
        self.fetch_by(
            &self.pool,
            table,
            id.0,
            "agent instance",
            rows::agent_instance,
        )
        .await
    }

    async fn thread_by_id(&self, id: AgentThreadId) -> Result<AgentThread> {
        let table = ("agent_threads", rows::AGENT_THREAD_COLUMNS, "id");
        self.fetch_by(&self.pool, table, id.0, "agent thread", rows::agent_thread)
            .await
    }

    async fn session_ids(&self, work_session_id: WorkSessionId) -> Result<(SpecTaskId, ProjectId)> {
        let row = sqlx::query(
            "SELECT s.spec_task_id, t.project_id FROM work_sessions s \
             JOIN spec_tasks t ON t.id = s.spec_task_id WHERE s.id = $1",
        )
        .bind(work_session_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| not_found("work session", work_session_id))?;
        Ok((row.try_get("spec_task_id")?, row.try_get("project_id")?))
    }
}

#[async_trait]
impl AgentStore for SqlStore {
    async fn start_agent_instance(
        &self,
        spec_task_id: SpecTaskId,
        profile: &str,
        actor: Actor<'_>,
    ) -> Result<AgentInstance> {
        let project_id = self.task_project(spec_task_id).await?;
        match self.get_agent_instance(spec_task_id).await {
            Ok(existing) => {
                return match existing.status {
                    AgentInstanceStatus::Stopped | AgentInstanceStatus::Crashed => {
                        self.transition_agent_instance(
                            existing.id,
                            AgentInstanceEvent::Restart,
                            InstanceReport::default(),
                            actor,
                        )
                        .await
                    }
                    _ => Ok(existing),
                };
            }
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let mut tx = self.begin().await?;
        let sql = format!(
            "INSERT INTO agent_instances (spec_task_id, profile, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) RETURNING {}",
            rows::AGENT_INSTANCE_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(spec_task_id)
            .bind(profile)
            .bind(AgentInstanceStatus::Starting.as_str())
            .bind(now_ms())
            .fetch_one(&mut *tx)
            .await?;
        let instance = rows::agent_instance(&row)?;
        let event = NewEvent {
            project_id: Some(project_id),
            spec_task_id: Some(spec_task_id),
            entity: "agent_instance",
            entity_id: Some(instance.id.0),
            kind: "agent_instance.created",
            data: json!({ "profile": profile }),
        };
        self.commit_with(tx, event, actor).await?;
        Ok(instance)
    }

    async fn get_agent_instance(&self, spec_task_id: SpecTaskId) -> Result<AgentInstance> {
        let table = (
            "agent_instances",
            rows::AGENT_INSTANCE_COLUMNS,
            "spec_task_id",
        );
        self.fetch_by(
            &self.pool,
            table,
            spec_task_id.0,
            "agent instance of spec task",
            rows::agent_instance,
        )
        .await
    }

    async fn transition_agent_instance(
        &self,
        id: AgentInstanceId,
        event: AgentInstanceEvent,
        report: InstanceReport,
        actor: Actor<'_>,
    ) -> Result<AgentInstance> {
        let current = self.instance_by_id(id).await?;
        let step = Transition::decide(current.status, event)?;
        let next = *step.to();
        let project_id = self.task_project(current.spec_task_id).await?;
        let restarted = i64::from(
            event == AgentInstanceEvent::Restart && current.status == AgentInstanceStatus::Crashed,
        );
        let mut tx = self.begin().await?;
        let sets = vec![
            Set("pid = COALESCE({}, pid)", Bind::MaybeInt(report.pid)),
            Set(
                "last_error = COALESCE({}, last_error)",
                Bind::MaybeText(report.last_error.clone()),
            ),
            Set(
                "agent_name = COALESCE({}, agent_name)",
                Bind::MaybeText(report.agent_name.clone()),
            ),
            Set(
                "agent_version = COALESCE({}, agent_version)",
                Bind::MaybeText(report.agent_version.clone()),
            ),
            Set("restarts = restarts + {}", Bind::Int(restarted)),
            Set("updated_at = {}", Bind::Int(now_ms())),
        ];
        let table = ("agent_instances", rows::AGENT_INSTANCE_COLUMNS);
        let row = step.write(&mut tx, table, id.0, sets).await?;
        let instance = rows::agent_instance(&row)?;
        let event = NewEvent {
            project_id: Some(project_id),
            spec_task_id: Some(current.spec_task_id),
            entity: "agent_instance",
            entity_id: Some(id.0),
            kind: "agent_instance.status_changed",
            data: json!({ "from": current.status, "to": next, "reason": report.last_error, "pid": report.pid }),
        };
        self.commit_with(tx, event, actor).await?;
        Ok(instance)
    }

    async fn record_instance_sample(
        &self,
        id: AgentInstanceId,
        cpu_percent: f64,
        rss_bytes: i64,
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE agent_instances SET cpu_percent = $1, rss_bytes = $2, sampled_at = $3 WHERE id = $4")
            .bind(cpu_percent)
            .bind(rss_bytes)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO agent_samples (agent_instance_id, cpu_percent, rss_bytes, sampled_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(cpu_percent)
        .bind(rss_bytes)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // Only the newest samples are kept: the chart's window, bounded.
        sqlx::query(
            "DELETE FROM agent_samples WHERE agent_instance_id = $1 AND id <= \
             (SELECT id FROM agent_samples WHERE agent_instance_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
        )
        .bind(id)
        .bind(KEPT_SAMPLES)
        .execute(&mut *tx)
        .await?;
        tx.commit_without_events(Unrecorded::ResourceSample).await
    }

    async fn hold_agent_instance(
        &self,
        spec_task_id: SpecTaskId,
        held: bool,
        actor: Actor<'_>,
    ) -> Result<Option<AgentInstance>> {
        let project_id = self.task_project(spec_task_id).await?;
        let current = match self.get_agent_instance(spec_task_id).await {
            Ok(i) => i,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        if current.held_at.is_some() == held {
            return Ok(Some(current));
        }
        let mut tx = self.begin().await?;
        let sql = format!(
            "UPDATE agent_instances SET held_at = $1, updated_at = $2 WHERE id = $3 RETURNING {}",
            rows::AGENT_INSTANCE_COLUMNS
        );
        let now = now_ms();
        let row = sqlx::query(&sql)
            .bind(held.then_some(now))
            .bind(now)
            .bind(current.id)
            .fetch_one(&mut *tx)
            .await?;
        let instance = rows::agent_instance(&row)?;
        let event = NewEvent {
            project_id: Some(project_id),
            spec_task_id: Some(spec_task_id),
            entity: "agent_instance",
            entity_id: Some(instance.id.0),
            kind: if held {
                "agent_instance.held"
            } else {
                "agent_instance.released"
            },
            data: json!({}),
        };
        self.commit_with(tx, event, actor).await?;
        Ok(Some(instance))
    }

    async fn list_agent_instances(&self) -> Result<Vec<AgentInstance>> {
        let sql = format!(
            "SELECT {} FROM agent_instances ORDER BY id",
            rows::AGENT_INSTANCE_COLUMNS
        );
        self.fetch_rows(&sql, Vec::new())
            .await?
            .iter()
            .map(rows::agent_instance)
            .collect()
    }

    async fn list_agent_samples(
        &self,
        spec_task_id: SpecTaskId,
        limit: i64,
    ) -> Result<Vec<AgentSample>> {
        self.task_project(spec_task_id).await?;
        let rows = self
            .fetch_rows(
                "SELECT s.cpu_percent, s.rss_bytes, s.sampled_at FROM agent_samples s \
                 JOIN agent_instances i ON i.id = s.agent_instance_id WHERE i.spec_task_id = $1 \
                 ORDER BY s.id DESC LIMIT $2",
                vec![Bind::Int(spec_task_id.0), Bind::Int(limit)],
            )
            .await?;
        let mut samples = rows
            .iter()
            .map(|r| {
                Ok(AgentSample {
                    cpu_percent: r.try_get("cpu_percent")?,
                    rss_bytes: r.try_get("rss_bytes")?,
                    at: rows::ts(r.try_get("sampled_at")?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        samples.reverse();
        Ok(samples)
    }

    async fn open_agent_thread(
        &self,
        instance_id: AgentInstanceId,
        work_session_id: WorkSessionId,
        actor: Actor<'_>,
    ) -> Result<AgentThread> {
        let (spec_task_id, project_id) = self.session_ids(work_session_id).await?;
        match self.get_agent_thread(work_session_id).await {
            Ok(existing) if existing.status == AgentThreadStatus::Interrupted => {
                return self
                    .transition_agent_thread(
                        existing.id,
                        AgentThreadEvent::Resume,
                        None,
                        None,
                        actor,
                    )
                    .await;
            }
            Ok(existing) => return Ok(existing),
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let mut tx = self.begin().await?;
        let sql = format!(
            "INSERT INTO agent_threads (agent_instance_id, work_session_id, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) RETURNING {}",
            rows::AGENT_THREAD_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(instance_id)
            .bind(work_session_id)
            .bind(AgentThreadStatus::Opening.as_str())
            .bind(now_ms())
            .fetch_one(&mut *tx)
            .await?;
        let thread = rows::agent_thread(&row)?;
        let event = NewEvent {
            project_id: Some(project_id),
            spec_task_id: Some(spec_task_id),
            entity: "agent_thread",
            entity_id: Some(thread.id.0),
            kind: "agent_thread.created",
            data: json!({ "work_session_id": work_session_id, "agent_instance_id": instance_id }),
        };
        self.commit_with(tx, event, actor).await?;
        Ok(thread)
    }

    async fn transition_agent_thread(
        &self,
        id: AgentThreadId,
        event: AgentThreadEvent,
        acp_session_id: Option<&str>,
        reason: Option<&str>,
        actor: Actor<'_>,
    ) -> Result<AgentThread> {
        let current = self.thread_by_id(id).await?;
        let step = Transition::decide(current.status, event)?;
        let next = *step.to();
        let (spec_task_id, project_id) = self.session_ids(current.work_session_id).await?;
        let mut tx = self.begin().await?;
        let sets = vec![
            Set(
                "acp_session_id = COALESCE({}, acp_session_id)",
                Bind::MaybeText(acp_session_id.map(str::to_string)),
            ),
            Set("updated_at = {}", Bind::Int(now_ms())),
        ];
        let table = ("agent_threads", rows::AGENT_THREAD_COLUMNS);
        let row = step.write(&mut tx, table, id.0, sets).await?;
        let thread = rows::agent_thread(&row)?;
        let event = NewEvent {
            project_id: Some(project_id),
            spec_task_id: Some(spec_task_id),
            entity: "agent_thread",
            entity_id: Some(id.0),
            kind: "agent_thread.status_changed",
            data: json!({ "from": current.status, "to": next, "work_session_id": current.work_session_id,
                          "reason": reason }),
        };
        self.commit_with(tx, event, actor).await?;
        Ok(thread)
    }

    async fn get_agent_thread(&self, work_session_id: WorkSessionId) -> Result<AgentThread> {
        let table = (
            "agent_threads",
            rows::AGENT_THREAD_COLUMNS,
            "work_session_id",
        );
        self.fetch_by(
            &self.pool,
            table,
            work_session_id.0,
            "agent thread of work session",
            rows::agent_thread,
        )
        .await
    }

    async fn list_agent_threads(&self, spec_task_id: SpecTaskId) -> Result<Vec<AgentThread>> {
        super::Store::get_spec_task(self, spec_task_id).await?;
        let sql = format!(
            "SELECT {} FROM agent_threads WHERE work_session_id IN \
             (SELECT id FROM work_sessions WHERE spec_task_id = $1) ORDER BY id",
            rows::AGENT_THREAD_COLUMNS
        );
        self.fetch_rows(&sql, vec![Bind::Int(spec_task_id.0)])
            .await?
            .iter()
            .map(rows::agent_thread)
            .collect()
    }

    async fn append_transcript(&self, entry: NewTranscriptEntry) -> Result<TranscriptEntry> {
        let (spec_task_id, project_id) = self.session_ids(entry.work_session_id).await?;
        let mut tx = self.begin().await?;
        let sql = format!(
            "INSERT INTO transcript_entries (spec_task_id, work_session_id, kind, content, data, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {}",
            rows::TRANSCRIPT_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(spec_task_id)
            .bind(entry.work_session_id)
            .bind(entry.kind.as_str())
            .bind(&entry.content)
            .bind(entry.data.to_string())
            .bind(now_ms())
            .fetch_one(&mut *tx)
            .await?;
        let stored = rows::transcript_entry(&row)?;
        let event = NewEvent {
            project_id: Some(project_id),
            spec_task_id: Some(spec_task_id),
            entity: "transcript_entry",
            entity_id: Some(stored.id),
            kind: "transcript.appended",
            data: json!({ "work_session_id": entry.work_session_id, "kind": entry.kind, "bytes": entry.content.len() }),
        };
        self.commit_with(tx, event, "system").await?;
        Ok(stored)
    }

    async fn list_transcript(
        &self,
        work_session_id: WorkSessionId,
        after_id: i64,
    ) -> Result<Vec<TranscriptEntry>> {
        self.session_ids(work_session_id).await?;
        let sql = format!(
            "SELECT {} FROM transcript_entries WHERE work_session_id = $1 AND id > $2 ORDER BY id",
            rows::TRANSCRIPT_COLUMNS
        );
        self.fetch_rows(
            &sql,
            vec![Bind::Int(work_session_id.0), Bind::Int(after_id)],
        )
        .await?
        .iter()
        .map(rows::transcript_entry)
        .collect()
    }

    async fn create_permission_request(
        &self,
        new: NewPermissionRequest,
    ) -> Result<PermissionRequest> {
        let (spec_task_id, project_id) = self.session_ids(new.work_session_id).await?;
        let mut tx = self.begin().await?;
        let sql = format!(
            "INSERT INTO permission_requests (spec_task_id, work_session_id, title, tool_call, options, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {}",
            rows::PERMISSION_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(spec_task_id)
            .bind(new.work_session_id)
            .bind(&new.title)
            .bind(new.tool_call.to_string())
            .bind(new.options.to_string())
            .bind(PermissionStatus::Pending.as_str())
            .bind(now_ms())
            .fetch_one(&mut *tx)
            .await?;
        let request = rows::permission_request(&row)?;
        let event = NewEvent {
            project_id: Some(project_id),
            spec_task_id: Some(spec_task_id),
            entity: "permission_request",
            entity_id: Some(request.id.0),
            kind: "permission.requested",
            data: json!({ "work_session_id": new.work_session_id, "title": new.title }),
        };
        self.commit_with(tx, event, "system").await?;
        Ok(request)
    }

    async fn resolve_permission_request(
        &self,
        id: PermissionRequestId,
        event: PermissionEvent,
        option_id: Option<&str>,
        actor: Actor<'_>,
    ) -> Result<PermissionRequest> {
        let current = self.get_permission_request(id).await?;
        // A request that already ended answers 409 `conflict`, as it always has (an
        // agent and a person race to it), not `illegal_transition`.
        let already = || {
            StoreError::Conflict(format!(
                "permission request {id} is already {}",
                current.status
            ))
        };
        let step = Transition::decide(current.status, event).map_err(|_| already())?;
        // Only an answer carries the chosen option.
        let option_id = option_id.filter(|_| *step.to() == PermissionStatus::Answered);
        let project_id = self.task_project(current.spec_task_id).await?;
        let mut tx = self.begin().await?;
        let sets = vec![
            Set(
                "option_id = {}",
                Bind::MaybeText(option_id.map(str::to_string)),
            ),
            Set("resolved_at = {}", Bind::Int(now_ms())),
        ];
        let table = ("permission_requests", rows::PERMISSION_COLUMNS);
        let row = match step.write(&mut tx, table, id.0, sets).await {
            Err(StoreError::Conflict(_)) => return Err(already()),
            other => other?,
        };
        let resolved = rows::permission_request(&row)?;
        let event = NewEvent {
            project_id: Some(project_id),
            spec_task_id: Some(current.spec_task_id),
            entity: "permission_request",
            entity_id: Some(id.0),
            kind: "permission.resolved",
            data: json!({ "status": step.to(), "option_id": option_id }),
        };
        self.commit_with(tx, event, actor).await?;
        Ok(resolved)
    }

    async fn get_permission_request(&self, id: PermissionRequestId) -> Result<PermissionRequest> {
        let table = ("permission_requests", rows::PERMISSION_COLUMNS, "id");
        self.fetch_by(
            &self.pool,
            table,
            id.0,
            "permission request",
            rows::permission_request,
        )
        .await
    }

    async fn list_permission_requests(
        &self,
        status: Option<PermissionStatus>,
        spec_task_id: Option<SpecTaskId>,
    ) -> Result<Vec<PermissionRequest>> {
        let mut conditions = Vec::new();
        let mut binds = Vec::new();
        if let Some(s) = status {
            binds.push(Bind::Text(s.as_str().to_string()));
            conditions.push(format!("status = ${}", binds.len()));
        }
        if let Some(t) = spec_task_id {
            binds.push(Bind::Int(t.0));
            conditions.push(format!("spec_task_id = ${}", binds.len()));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT {} FROM permission_requests {filter} ORDER BY id",
            rows::PERMISSION_COLUMNS
        );
        self.fetch_rows(&sql, binds)
            .await?
            .iter()
            .map(rows::permission_request)
            .collect()
    }

    async fn record_event(&self, event: NewEvent, actor: Actor<'_>) -> Result<()> {
        let tx = self.begin().await?;
        self.commit_with(tx, event, actor).await
    }
}
