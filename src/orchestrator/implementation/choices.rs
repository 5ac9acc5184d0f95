//! What people (and agents) ask of a running SpecTask: spawning a session, a
//! decision about a task, cancelling everything.

use super::*;
use crate::store::TryTransition;

/// A person's (or an agent's) request for a new session in a running SpecTask.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpawnRequest {
    pub name: String,
    /// What the session should do.
    pub prompt: String,
    /// The session it belongs under in the hierarchy.
    #[schema(value_type = Option<i64>)]
    pub parent_id: Option<WorkSessionId>,
    /// Task keys (`2`, `S1`) or sessions (`session:12`) it waits for.
    #[serde(default)]
    pub depends_on: Vec<String>,
}

impl Implementer {
    /// Adds a session to a running SpecTask: it runs like any task (own worktree, own
    /// thread, merge queue) once its dependencies (task keys) are done, and appears
    /// under its parent in the hierarchy.
    pub async fn spawn(
        &self,
        spec_task_id: SpecTaskId,
        req: SpawnRequest,
        actor: &str,
    ) -> Result<WorkSession, ImplError> {
        self.add_session(spec_task_id, req, WorkSessionKind::Spawned, actor)
            .await
    }

    /// A thread a person opens on a running task's agent: an `ad_hoc` session with
    /// its own worktree cut from the task branch, whose work goes through the merge
    /// queue like any other (skipping it discards the work).
    pub async fn open_thread(
        &self,
        spec_task_id: SpecTaskId,
        name: Option<String>,
        prompt: String,
        actor: &str,
    ) -> Result<WorkSession, ImplError> {
        let name = name.filter(|n| !n.trim().is_empty()).unwrap_or_else(|| {
            prompt
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(60)
                .collect()
        });
        let req = SpawnRequest {
            name,
            prompt,
            parent_id: None,
            depends_on: Vec::new(),
        };
        self.add_session(spec_task_id, req, WorkSessionKind::AdHoc, actor)
            .await
    }

    async fn add_session(
        &self,
        spec_task_id: SpecTaskId,
        req: SpawnRequest,
        kind: WorkSessionKind,
        actor: &str,
    ) -> Result<WorkSession, ImplError> {
        let task = self.store.get_spec_task(spec_task_id).await?;
        if task.status != SpecTaskStatus::Implementing {
            return Err(ImplError::Refused(format!(
                "sessions are spawned into a task that is implementing; task {} is {}",
                task.id, task.status
            )));
        }
        let plan = self.store.list_implementation_tasks(task.id).await?;
        let sessions = self.store.list_work_sessions(task.id).await?;
        let mut depends = Vec::new();
        for dep in &req.depends_on {
            // A dependency names a task key, or a session as `session:<id>`.
            let key = match dep.strip_prefix("session:").map(str::parse::<i64>) {
                Some(Ok(sid)) => sessions
                    .iter()
                    .find(|s| s.id == WorkSessionId(sid))
                    .and_then(|s| s.implementation_task_id)
                    .and_then(|tid| plan.iter().find(|t| t.id == tid))
                    .map(|t| t.key.clone()),
                Some(Err(_)) => None,
                None => plan.iter().find(|t| &t.key == dep).map(|t| t.key.clone()),
            };
            depends.push(key.ok_or_else(|| {
                ImplError::Store(StoreError::Missing(format!(
                    "depends_on: {dep:?} is not a task or session of this task"
                )))
            })?);
        }
        if let Some(parent) = req.parent_id
            && !sessions.iter().any(|s| s.id == parent)
        {
            return Err(ImplError::Store(StoreError::Missing(format!(
                "parent_id: session {parent} is not in this task"
            ))));
        }
        if req.name.trim().is_empty() || req.prompt.trim().is_empty() {
            return Err(ImplError::Invalid(
                "name and prompt must not be empty".into(),
            ));
        }
        // Spawned sessions' tasks are S1, S2…; threads people opened are A1, A2….
        let prefix = if kind == WorkSessionKind::AdHoc {
            'A'
        } else {
            'S'
        };
        let key = format!(
            "{prefix}{}",
            plan.iter().filter(|t| t.key.starts_with(prefix)).count() + 1
        );
        let item = self
            .store
            .add_implementation_task(
                task.id,
                NewImplementationTask {
                    key,
                    title: req.name.trim().to_string(),
                    details: req.prompt.clone(),
                    depends_on: depends,
                    requirements: Vec::new(),
                    optional: false,
                    parallel: true,
                },
                actor,
            )
            .await?;
        let session = self
            .store
            .create_work_session(
                NewWorkSession {
                    spec_task_id: task.id,
                    parent_id: req.parent_id,
                    implementation_task_id: Some(item.id),
                    kind,
                    name: req.name.trim().to_string(),
                    prompt: req.prompt,
                },
                actor,
            )
            .await?;
        // The run may have ended while this was added: then it would never start.
        let now = self.store.get_spec_task(task.id).await?.status;
        if now != SpecTaskStatus::Implementing {
            self.cancel_unstarted(task.id, &item).await?;
            return Err(ImplError::Refused(format!(
                "task {} is {now}: its run ended while the session was spawned",
                task.id
            )));
        }
        Ok(session)
    }

    /// After a SpecTask is cancelled: every session and open task is cancelled (so no
    /// session merges afterwards), every thread gets `session/cancel`, and the agent
    /// instance stops. Branches and worktrees stay.
    pub async fn cancel_task(&self, spec_task_id: SpecTaskId) -> Result<(), ImplError> {
        // A merge in flight finishes first; none starts after (the sessions are
        // cancelled, and the merge queue merges only a `merging` session).
        let lock = self.merge_lock(spec_task_id).await;
        let _queue = lock.lock().await;
        for session in self.store.list_work_sessions(spec_task_id).await? {
            if !session.status.is_terminal() {
                self.store
                    .transition_work_session(session.id, WorkSessionEvent::Cancel, None, "system")
                    .await
                    .try_transition()?;
            }
        }
        for t in self.store.list_implementation_tasks(spec_task_id).await? {
            self.store
                .transition_implementation_task(t.id, ImplementationTaskEvent::Cancel, "system")
                .await
                .try_transition()?;
        }
        self.agents
            .cancel_all(spec_task_id)
            .await
            .map_err(|e| ImplError::Other(e.to_string()))
    }

    /// A person's choice about a session. `retry`: a conflicted session gets a
    /// conflict-fixing session on its merge (which also finishes a merge a person
    /// resolved in the worktree); a failed one's task runs again in the same
    /// worktree. `skip` marks its task done with nothing merged; `cancel` stops its
    /// turn and cancels its task. Skipping or cancelling needs a session that is not
    /// working (failed, conflicted, interrupted, blocked or pending), or for cancel
    /// any live one.
    pub async fn decide_session(
        self: &Arc<Self>,
        session_id: WorkSessionId,
        event: ImplementationTaskEvent,
        actor: &str,
    ) -> Result<WorkSession, ImplError> {
        let session = self.store.get_work_session(session_id).await?;
        let task = self.store.get_spec_task(session.spec_task_id).await?;
        let plan = self.store.list_implementation_tasks(task.id).await?;
        let item = session
            .implementation_task_id
            .and_then(|id| plan.iter().find(|t| t.id == id))
            .cloned()
            .ok_or_else(|| {
                ImplError::Refused(format!("session {session_id} does not work on a plan task"))
            })?;
        if session.kind == WorkSessionKind::MergeConflict {
            return Err(ImplError::Refused(format!(
                "session {session_id} fixes a conflict of session {}: decide about that one",
                session.parent_id.map_or(0, i64::from)
            )));
        }
        match event {
            ImplementationTaskEvent::Retry if session.status == WorkSessionStatus::Conflicted => {
                // One fixer at a time works in the session's worktree.
                let fixing = self
                    .store
                    .list_work_sessions(task.id)
                    .await?
                    .into_iter()
                    .any(|s| {
                        s.parent_id == Some(session_id)
                            && s.kind == WorkSessionKind::MergeConflict
                            && !s.status.is_terminal()
                    });
                if fixing {
                    return Err(ImplError::Refused(format!(
                        "a conflict-fixing session is already at work on session {session_id}"
                    )));
                }
                let project = self.store.get_project(task.project_id).await?;
                let (Some(branch), Some(worktree)) =
                    (session.branch.clone(), session.worktree_path.clone())
                else {
                    return Err(ImplError::Refused(format!(
                        "session {session_id} has no worktree"
                    )));
                };
                let me = self.clone();
                let started = session.clone();
                tokio::spawn(async move {
                    let worktree = PathBuf::from(worktree);
                    if let Err(e) = me
                        .resolve_conflict(
                            &task,
                            &project,
                            &item,
                            session_id,
                            &worktree,
                            &branch,
                            Vec::new(),
                        )
                        .await
                    {
                        tracing::error!(session = session_id.0, error = %e, "retrying a conflicted merge");
                    }
                });
                Ok(started)
            }
            ImplementationTaskEvent::Retry => {
                if session.status != WorkSessionStatus::Failed {
                    return Err(ImplError::Refused(format!(
                        "session {session_id} is {}: only a failed or conflicted session can be retried",
                        session.status
                    )));
                }
                self.decide(task.id, &item.key, ImplementationTaskEvent::Retry, actor)
                    .await?;
                Ok(session)
            }
            ImplementationTaskEvent::Skip | ImplementationTaskEvent::Cancel => {
                // The session's lifecycle decides: a second cancel, or skipping a
                // session at work, is refused and changes nothing.
                let updated = self.stop_session(task.id, session_id, event, actor).await?;
                if !matches!(
                    item.status,
                    ImplementationTaskStatus::Done
                        | ImplementationTaskStatus::Skipped
                        | ImplementationTaskStatus::Cancelled
                ) {
                    self.decide(task.id, &item.key, event, actor).await?;
                }
                Ok(updated)
            }
            other => Err(ImplError::Invalid(format!("{other:?} is not a decision"))),
        }
    }

    /// Skips or cancels a session (`event` is the task's `Skip` or `Cancel`) through
    /// its lifecycle; a cancelled session's turn gets `session/cancel`.
    async fn stop_session(
        &self,
        spec_task_id: SpecTaskId,
        session_id: WorkSessionId,
        event: ImplementationTaskEvent,
        actor: &str,
    ) -> Result<WorkSession, ImplError> {
        let cancel = event == ImplementationTaskEvent::Cancel;
        let session_event = if cancel {
            WorkSessionEvent::Cancel
        } else {
            WorkSessionEvent::Skip
        };
        let lock = self.merge_lock(spec_task_id).await;
        let stopped = {
            let _queue = lock.lock().await;
            self.store
                .transition_work_session(session_id, session_event, None, actor)
                .await?
        };
        if cancel && let Ok(runtime) = self.agents.runtime(spec_task_id).await {
            let _ = runtime.cancel(session_id).await;
        }
        Ok(stopped)
    }

    /// A person's choice about an implementation task: `retry` a failed one, `skip`
    /// one (done, nothing merged) or `cancel` it. Tasks blocked only by failures that
    /// are now resolved become ready again.
    pub async fn decide(
        &self,
        spec_task_id: SpecTaskId,
        key: &str,
        event: ImplementationTaskEvent,
        actor: &str,
    ) -> Result<ImplementationTask, ImplError> {
        let plan = self.store.list_implementation_tasks(spec_task_id).await?;
        let item = plan
            .iter()
            .find(|t| t.key == key)
            .ok_or_else(|| StoreError::NotFound {
                entity: "implementation task",
                id: key.to_string(),
            })?;
        if item.status == ImplementationTaskStatus::InProgress {
            let live = self
                .store
                .list_work_sessions(spec_task_id)
                .await?
                .into_iter()
                .filter(|s| s.implementation_task_id == Some(item.id) && !s.status.is_terminal())
                .find(|s| s.kind != WorkSessionKind::MergeConflict);
            if let Some(s) = live
                && !matches!(s.status, WorkSessionStatus::Pending)
            {
                let allowed = match event {
                    ImplementationTaskEvent::Skip => s.status.apply(WorkSessionEvent::Skip).is_ok(),
                    _ => true,
                };
                if !allowed {
                    return Err(ImplError::Refused(format!(
                        "task {key} is being worked on by session {} ({}); cancel it instead, or wait",
                        s.id, s.status
                    )));
                }
                self.stop_session(spec_task_id, s.id, event, actor).await?;
            }
        }
        let updated = self
            .store
            .transition_implementation_task(item.id, event, actor)
            .await?;
        // A pending (spawned) session of a task skipped or cancelled before it started
        // goes the same way, so nothing is left waiting to start.
        if matches!(
            event,
            ImplementationTaskEvent::Skip | ImplementationTaskEvent::Cancel
        ) {
            let session_event = if event == ImplementationTaskEvent::Skip {
                WorkSessionEvent::Skip
            } else {
                WorkSessionEvent::Cancel
            };
            for s in self.store.list_work_sessions(spec_task_id).await? {
                if s.implementation_task_id == Some(item.id)
                    && s.status == WorkSessionStatus::Pending
                {
                    self.store
                        .transition_work_session(s.id, session_event.clone(), None, actor)
                        .await
                        .try_transition()?;
                }
            }
        }
        // A blocked task is freed when nothing it waits on, directly or not, has failed.
        let plan = self.store.list_implementation_tasks(spec_task_id).await?;
        self.unblock_freed(&plan, actor).await?;
        Ok(updated)
    }
}
