//! Implementation: the approved `tasks.md` becomes implementation tasks and their
//! dependency graph; every ready task runs as a work session in its own worktree and
//! branch, in its own thread of the task's agent instance; when a session ends its
//! work is committed and merged into the task branch through a per-task merge queue
//! (one merge at a time), `tasks.md` is ticked and the session's history written;
//! then the next ready tasks start. When every task is done the SpecTask goes to
//! implementation review.
//!
//! Not here yet (issue 5 continues): conflict-fixing sessions (a conflict waits for a
//! person), spawning, coordination delivery, progress views, crash recovery of
//! running sessions after a server restart, and `spectask demo`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;
use tokio::sync::Mutex;

use super::spec_files;
use crate::agents::manager::AgentManager;
use crate::domain::tasks_md::{self, Mark};
use crate::domain::*;
use crate::git::{self, Merge};
use crate::store::{
    NewCoordinationEvent, NewImplementationTask, NewWorkSession, Store, StoreError,
};

pub const IMPLEMENTATION_TEMPLATE: &str = include_str!("../../templates/implementation.md");
pub const PROJECT_TEMPLATE: &str = ".spectask/implementation.md";
pub const CONFLICT_TEMPLATE: &str = include_str!("../../templates/conflict.md");
/// Attempts a session gets when its agent crashes or its thread is interrupted.
pub const MAX_ATTEMPTS: i64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum ImplError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Git(#[from] git::GitError),
    #[error("{0}")]
    Other(String),
    /// Not allowed in the current state (409).
    #[error("{0}")]
    Refused(String),
    /// The request names something unusable (422).
    #[error("{0}")]
    Invalid(String),
}

/// A person's (or an agent's) request for a new session in a running SpecTask.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpawnRequest {
    pub name: String,
    /// What the session should do.
    pub prompt: String,
    /// The session it belongs under in the hierarchy.
    pub parent_id: Option<i64>,
    /// Task keys (`2`, `S1`) or sessions (`session:12`) it waits for.
    #[serde(default)]
    pub depends_on: Vec<String>,
}

pub struct Implementer {
    store: Arc<dyn Store>,
    agents: Arc<AgentManager>,
    tasks_dir: PathBuf,
    /// Sessions this process is driving.
    running: Mutex<HashSet<i64>>,
    /// One merge at a time per SpecTask.
    merge_locks: Mutex<HashMap<i64, Arc<Mutex<()>>>>,
}

/// What one step did for one SpecTask.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepOutcome {
    pub started: Vec<String>,
    pub finished: bool,
}

impl Implementer {
    pub fn new(
        store: Arc<dyn Store>,
        agents: Arc<AgentManager>,
        tasks_dir: PathBuf,
    ) -> Arc<Implementer> {
        Arc::new(Implementer {
            store,
            agents,
            tasks_dir,
            running: Mutex::new(HashSet::new()),
            merge_locks: Mutex::new(HashMap::new()),
        })
    }

    /// Runs a step at start and one whenever events are committed.
    pub fn spawn_loop(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let mut events = self.store.subscribe_events();
        tokio::spawn(async move {
            loop {
                if let Err(e) = me.run_once().await {
                    tracing::error!(error = %e, "implementation step");
                }
                // A step runs on every committed event, and at least every few seconds
                // so that a step that failed (a busy database, a git error) is retried
                // even when nothing else happens.
                if let Ok(Err(_)) =
                    tokio::time::timeout(super::RECONCILE_EVERY, events.changed()).await
                {
                    return;
                }
            }
        })
    }

    /// One step over every SpecTask in `implementing`.
    pub async fn run_once(self: &Arc<Self>) -> Result<HashMap<i64, StepOutcome>, ImplError> {
        let filter = crate::store::SpecTaskFilter {
            status: Some(SpecTaskStatus::Implementing),
            limit: 500,
            ..Default::default()
        };
        let (tasks, _) = self.store.list_spec_tasks(&filter).await?;
        let mut outcomes = HashMap::new();
        for task in tasks {
            match self.step(&task).await {
                Ok(o) => {
                    outcomes.insert(task.id, o);
                }
                Err(e) => tracing::error!(task = task.id, error = %e, "implementation step"),
            }
        }
        Ok(outcomes)
    }

    fn task_worktree(&self, task: &SpecTask) -> PathBuf {
        spec_files::task_worktree(&self.tasks_dir, task)
    }

    fn session_worktree(&self, task: &SpecTask, session_id: i64) -> PathBuf {
        self.tasks_dir
            .join(task.id.to_string())
            .join("sessions")
            .join(session_id.to_string())
    }

    /// The plan's tasks, created from the approved tasks.md on first use.
    async fn plan(
        &self,
        task: &SpecTask,
        project: &Project,
    ) -> Result<Vec<ImplementationTask>, ImplError> {
        let existing = self.store.list_implementation_tasks(task.id).await?;
        if !existing.is_empty() {
            return Ok(existing);
        }
        let worktree = self.task_worktree(task);
        git::ensure_worktree(Path::new(&project.path), &worktree, &task.branch).await?;
        let tasks_md = worktree
            .join(spec_files::spec_dir_rel(project, task))
            .join("tasks.md");
        let text = std::fs::read_to_string(&tasks_md)
            .map_err(|e| ImplError::Other(format!("reading {}: {e}", tasks_md.display())))?;
        let doc = tasks_md::parse(&text);
        let graph = tasks_md::graph(&doc);
        let depends: HashMap<&str, &Vec<String>> = graph
            .nodes
            .iter()
            .map(|n| (n.key.as_str(), &n.depends))
            .collect();
        let new = doc
            .top_level()
            .map(|item| NewImplementationTask {
                key: item.key.clone(),
                title: item.title.clone(),
                details: item.details.join("\n"),
                depends_on: depends
                    .get(item.key.as_str())
                    .map(|d| d.to_vec())
                    .unwrap_or_default(),
                requirements: item.requirements.clone(),
                optional: item.optional,
                parallel: item.parallel,
            })
            .collect();
        Ok(self.store.create_implementation_tasks(task.id, new).await?)
    }

    async fn step(self: &Arc<Self>, task: &SpecTask) -> Result<StepOutcome, ImplError> {
        let project = self.store.get_project(task.project_id).await?;
        let plan = self.plan(task, &project).await?;
        let mut outcome = StepOutcome::default();
        let finished = |s: ImplementationTaskStatus| {
            matches!(
                s,
                ImplementationTaskStatus::Done | ImplementationTaskStatus::Skipped
            )
        };
        if plan.iter().all(|t| finished(t.status)) {
            self.store
                .transition_spec_task(
                    task.id,
                    &|_| SpecTaskEvent::ImplementationFinished { review_gate: true },
                    "system",
                )
                .await?;
            outcome.finished = true;
            return Ok(outcome);
        }
        self.resume_orphans(task, &project, &plan).await?;
        // Resuming may have started tasks: decide what is ready on fresh statuses.
        let plan = self.store.list_implementation_tasks(task.id).await?;
        let done: HashSet<&str> = plan
            .iter()
            .filter(|t| finished(t.status))
            .map(|t| t.key.as_str())
            .collect();
        let in_progress = plan
            .iter()
            .filter(|t| t.status == ImplementationTaskStatus::InProgress)
            .count();
        let limit = task
            .max_parallel_sessions
            .unwrap_or(project.settings.max_parallel_sessions)
            .max(1) as usize;
        let ready: Vec<&ImplementationTask> = plan
            .iter()
            .filter(|t| t.status == ImplementationTaskStatus::Pending)
            .filter(|t| t.depends_on.iter().all(|d| done.contains(d.as_str())))
            .collect();
        let sessions = self.store.list_work_sessions(task.id).await?;
        let mut slots = limit.saturating_sub(in_progress);
        for t in ready {
            if slots == 0 {
                break;
            }
            // A spawned session someone has blocked waits before it starts, too.
            let held = match sessions.iter().find(|s| {
                s.implementation_task_id == Some(t.id) && s.status == WorkSessionStatus::Pending
            }) {
                Some(s) => self.is_blocked(task.id, s.id).await?,
                None => false,
            };
            if held {
                continue;
            }
            self.start(task, &project, t).await?;
            outcome.started.push(t.key.clone());
            slots -= 1;
        }
        Ok(outcome)
    }

    /// Sessions a previous server process was driving when it died: they are retried
    /// in their own worktree with a continuation prompt (a recorded merge is never
    /// done again).
    async fn resume_orphans(
        self: &Arc<Self>,
        task: &SpecTask,
        project: &Project,
        plan: &[ImplementationTask],
    ) -> Result<(), ImplError> {
        let running = self.running.lock().await.clone();
        for session in self.store.list_work_sessions(task.id).await? {
            let active = matches!(
                session.status,
                WorkSessionStatus::Pending
                    | WorkSessionStatus::Running
                    | WorkSessionStatus::Blocked
                    | WorkSessionStatus::Verifying
                    | WorkSessionStatus::Merging
                    | WorkSessionStatus::Interrupted
            );
            let driven_kind = matches!(
                session.kind,
                WorkSessionKind::Implementation | WorkSessionKind::Spawned
            );
            if !active || running.contains(&session.id) || !driven_kind {
                continue;
            }
            // Only sessions the scheduler had started: a pending session of a task that
            // is still pending is picked up by the scheduler when the task is ready.
            let Some(item) = plan.iter().find(|t| {
                Some(t.id) == session.implementation_task_id
                    && t.status == ImplementationTaskStatus::InProgress
            }) else {
                continue;
            };
            tracing::info!(session = session.id, status = %session.status, "resuming a session left by an earlier server");
            self.running.lock().await.insert(session.id);
            // The server may have died before the workspace was even recorded.
            let branch = session
                .branch
                .clone()
                .unwrap_or_else(|| session_branch(task, item));
            let worktree = session
                .worktree_path
                .clone()
                .map(PathBuf::from)
                .unwrap_or_else(|| self.session_worktree(task, session.id));
            git::add_branch_worktree(Path::new(&project.path), &worktree, &branch, &task.branch)
                .await?;
            if session.branch.is_none() {
                self.store
                    .set_session_workspace(session.id, &branch, &worktree.display().to_string())
                    .await?;
            }
            if matches!(
                session.status,
                WorkSessionStatus::Running
                    | WorkSessionStatus::Blocked
                    | WorkSessionStatus::Verifying
                    | WorkSessionStatus::Merging
            ) {
                let _ = self
                    .store
                    .transition_work_session(
                        session.id,
                        WorkSessionEvent::Interrupt,
                        Some("the server restarted".into()),
                        "system",
                    )
                    .await;
            }
            self.store
                .transition_work_session(session.id, WorkSessionEvent::Start, None, "system")
                .await?;
            let prompt = format!(
                "spectask restarted while you worked on task {} ({}). Continue where you stopped; the \
                 worktree holds what was done.\n\n{}",
                item.key, item.title, item.details
            );
            let me = self.clone();
            let (task, project, item) = (task.clone(), project.clone(), item.clone());
            tokio::spawn(async move {
                let result = me
                    .run_session(
                        &task, &project, &item, session.id, &worktree, &branch, &prompt,
                    )
                    .await;
                if let Err(e) = result {
                    tracing::error!(session = session.id, error = %e, "resumed work session");
                }
                me.running.lock().await.remove(&session.id);
            });
        }
        Ok(())
    }

    /// Adds a session to a running SpecTask: it runs like any task (own worktree, own
    /// thread, merge queue) once its dependencies (task keys) are done, and appears
    /// under its parent in the hierarchy.
    pub async fn spawn(
        &self,
        spec_task_id: i64,
        req: SpawnRequest,
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
                    .find(|s| s.id == sid)
                    .and_then(|s| s.implementation_task_id)
                    .and_then(|tid| plan.iter().find(|t| t.id == tid))
                    .map(|t| t.key.clone()),
                Some(Err(_)) => None,
                None => plan.iter().find(|t| &t.key == dep).map(|t| t.key.clone()),
            };
            depends.push(key.ok_or_else(|| {
                ImplError::Invalid(format!(
                    "depends_on: {dep:?} is not a task or session of this task"
                ))
            })?);
        }
        if let Some(parent) = req.parent_id
            && !sessions.iter().any(|s| s.id == parent)
        {
            return Err(ImplError::Invalid(format!(
                "parent_id: session {parent} is not in this task"
            )));
        }
        if req.name.trim().is_empty() || req.prompt.trim().is_empty() {
            return Err(ImplError::Invalid(
                "name and prompt must not be empty".into(),
            ));
        }
        let key = format!(
            "S{}",
            plan.iter().filter(|t| t.key.starts_with('S')).count() + 1
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
        Ok(self
            .store
            .create_work_session(
                NewWorkSession {
                    spec_task_id: task.id,
                    parent_id: req.parent_id,
                    implementation_task_id: Some(item.id),
                    kind: WorkSessionKind::Spawned,
                    name: req.name.trim().to_string(),
                    prompt: req.prompt,
                },
                actor,
            )
            .await?)
    }

    /// After a SpecTask is cancelled: every session and open task is cancelled (so no
    /// session merges afterwards), every thread gets `session/cancel`, and the agent
    /// instance stops. Branches and worktrees stay.
    pub async fn cancel_task(&self, spec_task_id: i64) -> Result<(), ImplError> {
        for session in self.store.list_work_sessions(spec_task_id).await? {
            if !session.status.is_terminal() {
                let _ = self
                    .store
                    .transition_work_session(session.id, WorkSessionEvent::Cancel, None, "system")
                    .await;
            }
        }
        for t in self.store.list_implementation_tasks(spec_task_id).await? {
            let _ = self
                .store
                .transition_implementation_task(t.id, ImplementationTaskEvent::Cancel, "system")
                .await;
        }
        self.agents
            .cancel_all(spec_task_id)
            .await
            .map_err(|e| ImplError::Other(e.to_string()))
    }

    /// Coordination messages waiting for a session, as text for its prompt: those
    /// addressed to it (acknowledged now, by it) and the task's broadcasts.
    async fn deliver(&self, spec_task_id: i64, session_id: i64) -> Result<String, ImplError> {
        let mut text = String::new();
        for e in self.store.list_coordination_events(spec_task_id).await? {
            let addressed = e.to_session_id == Some(session_id);
            let broadcast = e.to_session_id.is_none() && e.from_session_id != Some(session_id);
            let waiting = e.acknowledged_at.is_none()
                && !matches!(
                    e.kind,
                    CoordinationKind::Blocking | CoordinationKind::Unblocked
                );
            if !(waiting && (addressed || broadcast)) {
                continue;
            }
            let from = e
                .from_session_id
                .map_or("a person".to_string(), |s| format!("session {s}"));
            text.push_str(&format!("\n[{} from {from}] {}", e.kind, e.message));
            if addressed {
                self.store
                    .acknowledge_coordination_event(spec_task_id, e.id, Some(session_id), "system")
                    .await?;
            }
        }
        if text.is_empty() {
            return Ok(text);
        }
        Ok(format!(
            "\n\nMessages for you from the other sessions and people:{text}\n"
        ))
    }

    /// Whether the latest `blocking` / `unblocked` event addressed to a session is a
    /// `blocking` one.
    async fn is_blocked(&self, spec_task_id: i64, session_id: i64) -> Result<bool, ImplError> {
        let latest = self
            .store
            .list_coordination_events(spec_task_id)
            .await?
            .into_iter()
            .rfind(|e| {
                e.to_session_id == Some(session_id)
                    && matches!(
                        e.kind,
                        CoordinationKind::Blocking | CoordinationKind::Unblocked
                    )
            });
        Ok(latest.is_some_and(|e| e.kind == CoordinationKind::Blocking))
    }

    /// A `blocking` event holds its receiver (status `blocked`, nothing merged)
    /// until an `unblocked` event for it arrives.
    async fn hold_while_blocked(&self, session_id: i64) -> Result<(), ImplError> {
        let session = self.store.get_work_session(session_id).await?;
        let mut events = self.store.subscribe_events();
        if !self.is_blocked(session.spec_task_id, session_id).await? {
            return Ok(());
        }
        self.store
            .transition_work_session(session_id, WorkSessionEvent::Block, None, "system")
            .await?;
        while self.is_blocked(session.spec_task_id, session_id).await? {
            if events.changed().await.is_err() {
                return Err(ImplError::Other(
                    "the store closed while a session was blocked".into(),
                ));
            }
            // A cancelled task releases its blocked sessions into cancellation.
            if self.store.get_work_session(session_id).await?.status != WorkSessionStatus::Blocked {
                return Err(ImplError::Other(format!(
                    "session {session_id} left `blocked` while held"
                )));
            }
        }
        self.store
            .transition_work_session(session_id, WorkSessionEvent::Unblock, None, "system")
            .await?;
        Ok(())
    }

    /// A person's choice about an implementation task: `retry` a failed one, `skip`
    /// one (done, nothing merged) or `cancel` it. Tasks blocked only by failures that
    /// are now resolved become ready again.
    pub async fn decide(
        &self,
        spec_task_id: i64,
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
        let updated = self
            .store
            .transition_implementation_task(item.id, event, actor)
            .await?;
        let plan = self.store.list_implementation_tasks(spec_task_id).await?;
        let failed: HashSet<&str> = plan
            .iter()
            .filter(|t| t.status == ImplementationTaskStatus::Failed)
            .map(|t| t.key.as_str())
            .collect();
        let by_key: HashMap<&str, &ImplementationTask> =
            plan.iter().map(|t| (t.key.as_str(), t)).collect();
        // A blocked task is freed when nothing it waits on, directly or not, has failed.
        let waits_on_failure = |start: &ImplementationTask| {
            let mut stack: Vec<&str> = start.depends_on.iter().map(String::as_str).collect();
            let mut seen = HashSet::new();
            while let Some(k) = stack.pop() {
                if !seen.insert(k) {
                    continue;
                }
                if failed.contains(k) {
                    return true;
                }
                if let Some(t) = by_key.get(k) {
                    stack.extend(t.depends_on.iter().map(String::as_str));
                }
            }
            false
        };
        for t in plan
            .iter()
            .filter(|t| t.status == ImplementationTaskStatus::Blocked)
        {
            if !waits_on_failure(t) {
                self.store
                    .transition_implementation_task(t.id, ImplementationTaskEvent::Unblock, actor)
                    .await?;
            }
        }
        Ok(updated)
    }

    async fn start(
        self: &Arc<Self>,
        task: &SpecTask,
        project: &Project,
        item: &ImplementationTask,
    ) -> Result<(), ImplError> {
        let repo = PathBuf::from(&project.path);
        let spec_dir = self
            .task_worktree(task)
            .join(spec_files::spec_dir_rel(project, task));
        let template = std::fs::read_to_string(self.task_worktree(task).join(PROJECT_TEMPLATE))
            .unwrap_or_else(|_| IMPLEMENTATION_TEMPLATE.to_string());
        // A spawned session was created by the person who spawned it; it starts here.
        let spawned = self
            .store
            .list_work_sessions(task.id)
            .await?
            .into_iter()
            .find(|s| {
                s.implementation_task_id == Some(item.id) && s.status == WorkSessionStatus::Pending
            });
        let session = match spawned {
            Some(s) => s,
            None => {
                self.store
                    .create_work_session(
                        NewWorkSession {
                            spec_task_id: task.id,
                            parent_id: None,
                            implementation_task_id: Some(item.id),
                            kind: WorkSessionKind::Implementation,
                            name: format!("{}. {}", item.key, item.title),
                            prompt: String::new(),
                        },
                        "system",
                    )
                    .await?
            }
        };
        let branch = session_branch(task, item);
        let worktree = self.session_worktree(task, session.id);
        git::add_branch_worktree(&repo, &worktree, &branch, &task.branch).await?;
        self.store
            .set_session_workspace(session.id, &branch, &worktree.display().to_string())
            .await?;
        let prompt = spec_files::render(
            &template,
            &[
                ("spec_title", &task.title),
                ("worktree", &worktree.display().to_string()),
                ("key", &item.key),
                ("title", &item.title),
                ("details", &item.details),
                ("requirements", &item.requirements.join(", ")),
                ("spec_dir", &spec_dir.display().to_string()),
            ],
        );
        let prompt = prompt + &self.deliver(task.id, session.id).await?;
        // Marked as driven here before its status says running, so a concurrent step
        // never takes it for an orphan.
        self.running.lock().await.insert(session.id);
        self.store
            .transition_implementation_task(item.id, ImplementationTaskEvent::Start, "system")
            .await?;
        self.store
            .transition_work_session(session.id, WorkSessionEvent::Start, None, "system")
            .await?;
        let me = self.clone();
        let (task, project, item) = (task.clone(), project.clone(), item.clone());
        tokio::spawn(async move {
            if let Err(e) = me
                .run_session(
                    &task, &project, &item, session.id, &worktree, &branch, &prompt,
                )
                .await
            {
                tracing::error!(session = session.id, error = %e, "work session");
            }
            me.running.lock().await.remove(&session.id);
        });
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_session(
        &self,
        task: &SpecTask,
        project: &Project,
        item: &ImplementationTask,
        session_id: i64,
        worktree: &Path,
        branch: &str,
        prompt: &str,
    ) -> Result<(), ImplError> {
        let runtime = self
            .agents
            .runtime(task.id)
            .await
            .map_err(|e| ImplError::Other(e.to_string()))?;
        let mut attempt = 1;
        let mut text = prompt.to_string();
        loop {
            let turn = async {
                runtime
                    .open_thread(session_id, worktree.to_path_buf())
                    .await?;
                runtime.prompt(session_id, &text).await
            }
            .await;
            match turn {
                Ok(_) => break,
                Err(e) if attempt < MAX_ATTEMPTS => {
                    // Retried in the same worktree with a continuation prompt.
                    let reason = e.to_string();
                    let _ = self
                        .store
                        .transition_work_session(
                            session_id,
                            WorkSessionEvent::Interrupt,
                            Some(reason.clone()),
                            "system",
                        )
                        .await;
                    self.store
                        .transition_work_session(
                            session_id,
                            WorkSessionEvent::Start,
                            None,
                            "system",
                        )
                        .await?;
                    attempt += 1;
                    text = format!(
                        "Your previous attempt at this task was interrupted ({reason}). Continue where it stopped; \
                         the worktree holds what was done.\n\n{prompt}"
                    );
                }
                Err(e) => return self.fail(task, item, session_id, e.to_string()).await,
            }
        }
        let message = format!(
            "spectask #{}: task {} (session {session_id})",
            task.id, item.key
        );
        git::commit_all(worktree, &message).await?;
        self.hold_while_blocked(session_id).await?;
        if let Some(command) = &project.settings.verification_command
            && let Err(output) = verify(worktree, command).await
        {
            // One follow-up with the output, then the session fails.
            let follow_up =
                format!("The verification command `{command}` failed:\n{output}\nFix it.");
            let _ = runtime.prompt(session_id, &follow_up).await;
            git::commit_all(worktree, &message).await?;
            if let Err(output) = verify(worktree, command).await {
                return self
                    .fail(
                        task,
                        item,
                        session_id,
                        format!("verification failed twice:\n{output}"),
                    )
                    .await;
            }
        }
        self.store
            .transition_work_session(session_id, WorkSessionEvent::TurnEnded, None, "system")
            .await?;
        self.store
            .transition_work_session(session_id, WorkSessionEvent::VerifyPassed, None, "system")
            .await?;
        if let Some(files) = self
            .merge(task, project, item, session_id, worktree, branch)
            .await?
        {
            self.resolve_conflict(task, project, item, session_id, worktree, branch, files)
                .await?;
        }
        Ok(())
    }

    async fn merge(
        &self,
        task: &SpecTask,
        project: &Project,
        item: &ImplementationTask,
        session_id: i64,
        worktree: &Path,
        branch: &str,
    ) -> Result<Option<Vec<String>>, ImplError> {
        let lock = self
            .merge_locks
            .lock()
            .await
            .entry(task.id)
            .or_default()
            .clone();
        let _queue = lock.lock().await;
        // Merges are recorded, so replaying one is a no-op.
        if self.store.merge_commit(session_id).await?.is_some() {
            return Ok(None);
        }
        let repo = PathBuf::from(&project.path);
        let task_worktree = self.task_worktree(task);
        git::ensure_worktree(&repo, &task_worktree, &task.branch).await?;
        let message = format!(
            "spectask #{}: merge task {} (session {session_id})",
            task.id, item.key
        );
        let merged = match git::merge(&task_worktree, branch, &message).await? {
            Merge::Merged(commit) => commit,
            Merge::Conflict(files) => {
                self.store
                    .post_coordination_event(
                        NewCoordinationEvent {
                            spec_task_id: task.id,
                            kind: CoordinationKind::Conflict,
                            from_session_id: Some(session_id),
                            to_session_id: None,
                            message: format!(
                                "merging task {} conflicts in {}",
                                item.key,
                                files.join(", ")
                            ),
                            payload: json!({ "files": files, "branch": branch }),
                        },
                        "system",
                    )
                    .await?;
                self.store
                    .transition_work_session(session_id, WorkSessionEvent::Conflict, None, "system")
                    .await?;
                return Ok(Some(files));
            }
        };
        // Tick the task in tasks.md and write the session's history, on the task branch.
        let spec_rel = spec_files::spec_dir_rel(project, task);
        let tasks_path = task_worktree.join(&spec_rel).join("tasks.md");
        if let Ok(text) = std::fs::read_to_string(&tasks_path) {
            let doc = tasks_md::parse(&text);
            if let Some(found) = doc.get(&item.key)
                && let Ok(ticked) = tasks_md::set_mark(&text, found.line, Mark::Done)
            {
                std::fs::write(&tasks_path, ticked).map_err(git::GitError::from)?;
            }
        }
        let history_dir = task_worktree.join(&spec_rel).join("history");
        std::fs::create_dir_all(&history_dir).map_err(git::GitError::from)?;
        let history = self.history(session_id, item, branch, &merged).await?;
        std::fs::write(
            history_dir.join(format!("session-{session_id}-{}.md", slugify(&item.key))),
            history,
        )
        .map_err(git::GitError::from)?;
        git::commit_paths(
            &task_worktree,
            &[&spec_rel],
            &format!("spectask #{}: task {} done", task.id, item.key),
        )
        .await?;
        self.store.record_merge(session_id, &merged).await?;
        // The worktree goes once its branch is merged (never with uncommitted work),
        // before the task counts as done, so a finished run leaves none behind.
        let _ = git::remove_worktree(&repo, worktree).await;
        self.store
            .transition_work_session(session_id, WorkSessionEvent::Merged, None, "system")
            .await?;
        self.store
            .transition_implementation_task(item.id, ImplementationTaskEvent::Complete, "system")
            .await?;
        Ok(None)
    }

    /// A conflict is never resolved silently: a conflict-fixing session (a child of
    /// the conflicted one) merges the task branch into the session's branch, resolves
    /// the conflicts in the agent's thread, and the merge is tried again. If markers
    /// remain, the session stays `conflicted` for a person.
    #[allow(clippy::too_many_arguments)]
    async fn resolve_conflict(
        &self,
        task: &SpecTask,
        project: &Project,
        item: &ImplementationTask,
        session_id: i64,
        worktree: &Path,
        branch: &str,
        files: Vec<String>,
    ) -> Result<(), ImplError> {
        tracing::info!(
            session = session_id,
            ?files,
            "starting a conflict-fixing session"
        );
        let fixer = self
            .store
            .create_work_session(
                NewWorkSession {
                    spec_task_id: task.id,
                    parent_id: Some(session_id),
                    implementation_task_id: Some(item.id),
                    kind: WorkSessionKind::MergeConflict,
                    name: format!("resolve the merge conflict of task {}", item.key),
                    prompt: String::new(),
                },
                "system",
            )
            .await?;
        self.store
            .set_session_workspace(fixer.id, branch, &worktree.display().to_string())
            .await?;
        self.store
            .transition_work_session(fixer.id, WorkSessionEvent::Start, None, "system")
            .await?;
        let message = format!(
            "spectask #{}: bring the task branch into task {}",
            task.id, item.key
        );
        let conflicted = git::merge_for_resolution(worktree, &task.branch, &message).await?;
        if !conflicted.is_empty() {
            let template =
                std::fs::read_to_string(self.task_worktree(task).join(".spectask/conflict.md"))
                    .unwrap_or_else(|_| CONFLICT_TEMPLATE.to_string());
            let spec_dir = self
                .task_worktree(task)
                .join(spec_files::spec_dir_rel(project, task));
            let prompt = spec_files::render(
                &template,
                &[
                    ("worktree", &worktree.display().to_string()),
                    ("key", &item.key),
                    ("title", &item.title),
                    ("files", &conflicted.join("\n")),
                    ("spec_dir", &spec_dir.display().to_string()),
                ],
            );
            let runtime = self
                .agents
                .runtime(task.id)
                .await
                .map_err(|e| ImplError::Other(e.to_string()))?;
            let turn = async {
                runtime
                    .open_thread(fixer.id, worktree.to_path_buf())
                    .await?;
                runtime.prompt(fixer.id, &prompt).await
            }
            .await;
            if let Err(e) = turn {
                let _ = self
                    .store
                    .transition_work_session(
                        fixer.id,
                        WorkSessionEvent::Fail,
                        Some(e.to_string()),
                        "system",
                    )
                    .await;
                return Ok(());
            }
            if git::has_conflict_markers(worktree, &conflicted) {
                let reason = format!("conflict markers remain in {}", conflicted.join(", "));
                let _ = self
                    .store
                    .transition_work_session(
                        fixer.id,
                        WorkSessionEvent::Fail,
                        Some(reason),
                        "system",
                    )
                    .await;
                return Ok(());
            }
            git::conclude_merge(worktree).await?;
        }
        for event in [
            WorkSessionEvent::TurnEnded,
            WorkSessionEvent::VerifyPassed,
            WorkSessionEvent::Merged,
        ] {
            self.store
                .transition_work_session(fixer.id, event, None, "system")
                .await?;
        }
        self.store
            .transition_work_session(
                session_id,
                WorkSessionEvent::ConflictResolved,
                None,
                "system",
            )
            .await?;
        // The session's branch now contains the task branch: this merge is clean.
        if let Some(files) = self
            .merge(task, project, item, session_id, worktree, branch)
            .await?
        {
            tracing::warn!(
                session = session_id,
                ?files,
                "still conflicting after resolution"
            );
        }
        Ok(())
    }

    async fn history(
        &self,
        session_id: i64,
        item: &ImplementationTask,
        branch: &str,
        merged: &str,
    ) -> Result<String, ImplError> {
        let session = self.store.get_work_session(session_id).await?;
        let mut out = format!(
            "# Session {session_id}: task {} — {}\n\n- branch: `{branch}`\n- attempts: {}\n- merged as: `{merged}`\n\n## Transcript\n\n",
            item.key, item.title, session.attempt
        );
        for entry in self.store.list_transcript(session_id, 0).await? {
            out.push_str(&format!(
                "### {}\n\n{}\n\n",
                entry.kind,
                entry.content.trim_end()
            ));
        }
        Ok(out)
    }

    async fn fail(
        &self,
        task: &SpecTask,
        item: &ImplementationTask,
        session_id: i64,
        reason: String,
    ) -> Result<(), ImplError> {
        let _ = self
            .store
            .transition_work_session(session_id, WorkSessionEvent::Fail, Some(reason), "system")
            .await;
        self.store
            .transition_implementation_task(item.id, ImplementationTaskEvent::Fail, "system")
            .await?;
        // Everything that waits on it, directly or not, is blocked until a person decides.
        let plan = self.store.list_implementation_tasks(task.id).await?;
        let mut blocked: HashSet<String> = HashSet::from([item.key.clone()]);
        loop {
            let more: Vec<&ImplementationTask> = plan
                .iter()
                .filter(|t| {
                    !blocked.contains(&t.key) && t.depends_on.iter().any(|d| blocked.contains(d))
                })
                .collect();
            if more.is_empty() {
                break;
            }
            for t in more {
                blocked.insert(t.key.clone());
                if t.status == ImplementationTaskStatus::Pending {
                    let _ = self
                        .store
                        .transition_implementation_task(
                            t.id,
                            ImplementationTaskEvent::Block,
                            "system",
                        )
                        .await;
                }
            }
        }
        Ok(())
    }
}

/// A session's branch. Git refs cannot nest under an existing branch name, so it is
/// the task branch with a suffix rather than a sub-path.
fn session_branch(task: &SpecTask, item: &ImplementationTask) -> String {
    format!("{}--{}", task.branch, slugify(&item.key))
}

/// Runs the project's verification command in a worktree.
async fn verify(worktree: &Path, command: &str) -> Result<(), String> {
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(worktree)
        .output()
        .await
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
