//! Implementation: the approved `tasks.md` becomes implementation tasks and their
//! dependency graph; every ready task runs as a work session in its own worktree and
//! branch, in its own thread of the task's agent instance; when a session ends its
//! work is committed and merged into the task branch through a per-task merge queue
//! (one merge at a time), `tasks.md` is ticked and the session's history written;
//! then the next ready tasks start. When every task is done the SpecTask goes to
//! implementation review.
//!
//! This file holds the scheduler (`step`: which ready tasks start now); `session`
//! runs one session, `merge` is the merge queue, `coordination` delivers messages,
//! and `choices` takes what people ask (spawn, retry/skip/cancel, cancel all).

use crate::store::TryTransition;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Mutex;

use super::spec_files;
use crate::agents::manager::AgentManager;
use crate::domain::tasks_md::{self, Mark};
use crate::domain::*;
use crate::git::{self, Merge};
use crate::store::{
    NewCoordinationEvent, NewImplementationTask, NewWorkSession, StartSession, Store, StoreError,
};

mod choices;
mod coordination;
mod merge;
mod prompt;
mod report;
mod session;

pub use choices::SpawnRequest;
pub use report::{FinalReport, SessionReport, render_markdown};

pub const IMPLEMENTATION_TEMPLATE: &str = include_str!("../../../templates/implementation.md");
pub const PROJECT_TEMPLATE: &str = ".spectask/implementation.md";
pub const CONFLICT_TEMPLATE: &str = include_str!("../../../templates/conflict.md");
/// Why a session that changed nothing stops under `empty_session = "review"`.
pub const EMPTY_SESSION_REVIEW: &str = "the session made no change to merge (empty_session = review): \
     skip it to accept it as done, or retry it";
/// Turns a session gets, after its own, to answer messages that arrived meanwhile.
const MAX_FOLLOW_UPS: usize = 3;
/// Sessions a step starts at the same time.
const START_CONCURRENCY: usize = 8;

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

pub struct Implementer {
    store: Arc<dyn Store>,
    agents: Arc<AgentManager>,
    tasks_dir: PathBuf,
    /// Sessions this process is driving.
    running: Mutex<HashSet<WorkSessionId>>,
    /// One merge at a time per SpecTask.
    merge_locks: Mutex<HashMap<SpecTaskId, Arc<Mutex<()>>>>,
    /// Task worktrees brought up to date under a lease (task, since when held).
    refreshed: Mutex<HashSet<(SpecTaskId, chrono::DateTime<chrono::Utc>)>>,
    /// One step at a time: a step decides from statuses it read, so two at once
    /// could start the same task twice.
    stepping: Mutex<()>,
    /// Failures of each task's step in a row: a task whose step keeps failing the
    /// same way fails, instead of being retried forever.
    repeats: super::repeats::Repeats,
    /// Set when the server shuts down: sessions stop where they are (a restart
    /// resumes them) instead of counting the stopped agent as a failure.
    closing: std::sync::atomic::AtomicBool,
    /// When this process started: a conflict fixer at work since before then was
    /// left by a dead server.
    born: chrono::DateTime<chrono::Utc>,
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
            refreshed: Default::default(),
            stepping: Mutex::new(()),
            repeats: Default::default(),
            closing: Default::default(),
            born: chrono::Utc::now(),
        })
    }

    /// Runs a step at start and one whenever events are committed.
    pub fn spawn_loop(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        // A step runs on every committed event, and at least every few seconds so
        // that a step that failed (a busy database, a git error) is retried even
        // when nothing else happens.
        super::step_loop(
            self.store.subscribe_events(),
            std::time::Duration::ZERO,
            move || {
                let me = me.clone();
                async move {
                    if let Err(e) = me.run_once().await {
                        tracing::error!(error = %e, "implementation step");
                    }
                    super::RECONCILE_EVERY
                }
            },
        )
    }

    /// The server is shutting down: from now on sessions leave their state for the
    /// next start to resume.
    pub fn close(&self) {
        self.closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn is_closing(&self) -> bool {
        self.closing.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// One step over every SpecTask in `implementing`.
    pub async fn run_once(self: &Arc<Self>) -> Result<HashMap<SpecTaskId, StepOutcome>, ImplError> {
        let _one_at_a_time = self.stepping.lock().await;
        let filter = crate::store::SpecTaskFilter {
            status: Some(SpecTaskStatus::Implementing),
            limit: 500,
            ..Default::default()
        };
        let (tasks, _) = self.store.list_spec_tasks(&filter).await?;
        let mut outcomes = HashMap::new();
        for task in tasks {
            // In a cluster, another replica may hold the task.
            if !self.store.fences().owns(task.id) {
                continue;
            }
            match self.step(&task).await {
                Ok(o) => {
                    self.repeats.succeeded(task.id);
                    outcomes.insert(task.id, o);
                }
                Err(e) => {
                    tracing::error!(task = task.id.0, error = %e, "implementation step");
                    let error = e.to_string();
                    if let Some(count) = self.repeats.failed(task.id, &error) {
                        let reason = super::repeats::stuck_reason("implementation", count, &error);
                        if let Err(e) = self.give_up_task(task.id, reason).await {
                            tracing::error!(task = task.id.0, error = %e, "failing a stuck task");
                        }
                    }
                }
            }
        }
        Ok(outcomes)
    }

    /// Whether a person stopped the task's agent (see `AgentManager::hold`).
    pub(super) async fn agent_held(&self, spec_task_id: SpecTaskId) -> Result<bool, ImplError> {
        match self.store.get_agent_instance(spec_task_id).await {
            Ok(i) => Ok(i.held_at.is_some()),
            Err(crate::store::StoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The task's merge queue. Cancelling or skipping a session takes it too, so a
    /// session is never cancelled halfway through its merge.
    async fn merge_lock(&self, spec_task_id: SpecTaskId) -> Arc<Mutex<()>> {
        self.merge_locks
            .lock()
            .await
            .entry(spec_task_id)
            .or_default()
            .clone()
    }

    fn task_worktree(&self, task: &SpecTask) -> PathBuf {
        spec_files::task_worktree(&self.tasks_dir, task)
    }

    /// The task's own repository, made on first use and holding the task branch as
    /// it is in the user's repository: session worktrees are cut from it.
    async fn task_repo(&self, task: &SpecTask, project: &Project) -> Result<PathBuf, ImplError> {
        let repo = spec_files::task_repo(&self.tasks_dir, task.id);
        git::ensure_task_repo(Path::new(&project.path), &repo).await?;
        git::copy_branch(Path::new(&project.path), &repo, &task.branch).await?;
        Ok(repo)
    }

    /// Copies a session's branch from the task's repository to the user's, so the
    /// user sees the work (also of a session that fails or is cancelled) where
    /// they always look, and a replica taking the task over resumes from it. Only
    /// forward: a replica that lost the task while paused cannot roll back what
    /// its successor published. Best effort: the merge queue copies the branch
    /// again (from the owner's own copy), and there a failure counts.
    async fn publish_branch(&self, task: &SpecTask, project: &Project, branch: &str) {
        let task_repo = spec_files::task_repo(&self.tasks_dir, task.id);
        if let Err(e) = git::copy_branch_forward(&task_repo, Path::new(&project.path), branch).await
        {
            tracing::warn!(spec_task = task.id.0, branch, error = %e, "copying a session branch to the project's repository");
        }
    }

    /// A plan task's worktree; a retry of the task works in the same one.
    fn session_worktree(&self, task: &SpecTask, item: &ImplementationTask) -> PathBuf {
        self.tasks_dir
            .join(task.id.to_string())
            .join("sessions")
            .join(slugify(&item.key))
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
        // The approval's `spec.json` commit is finished here if a crash interrupted
        // it, before anything is cut from the branch.
        super::review::Reviewer::new(self.store.clone(), self.tasks_dir.clone())
            .record_approval(task)
            .await
            .map_err(|e| ImplError::Other(format!("recording the approval: {e}")))?;
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
        // A person stopped the task's agent: nothing starts or resumes until they
        // restart it (its interrupted sessions wait; the overview says why).
        if self.agent_held(task.id).await? {
            return Ok(StepOutcome::default());
        }
        let project = self.store.get_project(task.project_id).await?;
        let plan = self.plan(task, &project).await?;
        let plan = self.cancel_dependents_of_cancelled(task, plan).await?;
        let mut outcome = StepOutcome::default();
        let finished = |s: ImplementationTaskStatus| {
            matches!(
                s,
                ImplementationTaskStatus::Done | ImplementationTaskStatus::Skipped
            )
        };
        let ended =
            |s: ImplementationTaskStatus| finished(s) || s == ImplementationTaskStatus::Cancelled;
        if plan.iter().all(|t| ended(t.status)) {
            // A plan with cancelled tasks is not all done: a person looks at it.
            let incomplete = plan
                .iter()
                .any(|t| t.status == ImplementationTaskStatus::Cancelled);
            self.commit_report(task, &project).await?;
            self.store
                .transition_spec_task(
                    task.id,
                    &|_| SpecTaskEvent::ImplementationFinished {
                        review_gate: project.settings.review_implementation || incomplete,
                    },
                    "system",
                )
                .await?;
            // A session spawned while this step decided would never run: it is
            // cancelled (its spawn, too, sees the task has left `implementing`).
            for t in self.store.list_implementation_tasks(task.id).await? {
                if matches!(
                    t.status,
                    ImplementationTaskStatus::Pending | ImplementationTaskStatus::Blocked
                ) {
                    self.cancel_unstarted(task.id, &t).await?;
                }
            }
            // The run is over: its agent process goes (a request-changes round
            // starts it again).
            self.agents.stop(task.id).await;
            outcome.finished = true;
            return Ok(outcome);
        }
        self.unblock_freed(&plan, "system").await?;
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
        let mut chosen = Vec::new();
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
            chosen.push(t);
            slots -= 1;
        }
        // The chosen sessions start concurrently (a few at a time): most of a start
        // is `git worktree add`, which runs in its own process.
        let gate = Arc::new(tokio::sync::Semaphore::new(START_CONCURRENCY));
        let mut starting = tokio::task::JoinSet::new();
        for t in chosen {
            let (me, task, project, t) = (self.clone(), task.clone(), project.clone(), t.clone());
            let gate = gate.clone();
            starting.spawn(async move {
                let _turn = gate.acquire().await;
                let result = me.start(&task, &project, &t).await;
                (t, result)
            });
        }
        let starts = starting.join_all().await;
        let mut first_error = None;
        for (t, result) in starts {
            match result {
                Ok(()) => outcome.started.push(t.key.clone()),
                Err(e) => {
                    tracing::error!(task = task.id.0, key = %t.key, error = %e, "starting a session");
                    first_error.get_or_insert(e);
                }
            }
        }
        outcome.started.sort();
        if let Some(e) = first_error
            && outcome.started.is_empty()
        {
            return Err(e);
        }
        Ok(outcome)
    }
}

impl Implementer {
    /// Tasks that wait, directly or not, on a cancelled task can never run: they are
    /// cancelled too, so the plan can end. Returns the plan as it is now.
    async fn cancel_dependents_of_cancelled(
        &self,
        task: &SpecTask,
        plan: Vec<ImplementationTask>,
    ) -> Result<Vec<ImplementationTask>, ImplError> {
        let mut cancelled: HashSet<String> = plan
            .iter()
            .filter(|t| t.status == ImplementationTaskStatus::Cancelled)
            .map(|t| t.key.clone())
            .collect();
        if cancelled.is_empty() {
            return Ok(plan);
        }
        let mut changed = false;
        loop {
            let next: Vec<&ImplementationTask> = plan
                .iter()
                .filter(|t| {
                    matches!(
                        t.status,
                        ImplementationTaskStatus::Pending | ImplementationTaskStatus::Blocked
                    ) && !cancelled.contains(&t.key)
                        && t.depends_on.iter().any(|d| cancelled.contains(d))
                })
                .collect();
            if next.is_empty() {
                break;
            }
            for t in next {
                cancelled.insert(t.key.clone());
                self.cancel_unstarted(task.id, t).await?;
                changed = true;
            }
        }
        if changed {
            return Ok(self.store.list_implementation_tasks(task.id).await?);
        }
        Ok(plan)
    }

    /// Frees every blocked task that nothing failed holds any more, directly or not:
    /// after a person's retry or skip, and on every step (a choice that raced with
    /// the failure that blocked it).
    pub(super) async fn unblock_freed(
        &self,
        plan: &[ImplementationTask],
        actor: &str,
    ) -> Result<(), ImplError> {
        let by_key: HashMap<&str, &ImplementationTask> =
            plan.iter().map(|t| (t.key.as_str(), t)).collect();
        let waits_on_failure = |start: &ImplementationTask| {
            let mut stack: Vec<&str> = start.depends_on.iter().map(String::as_str).collect();
            let mut seen = HashSet::new();
            while let Some(k) = stack.pop() {
                if !seen.insert(k) {
                    continue;
                }
                if let Some(d) = by_key.get(k) {
                    if d.status == ImplementationTaskStatus::Failed {
                        return true;
                    }
                    stack.extend(d.depends_on.iter().map(String::as_str));
                }
            }
            false
        };
        for t in plan
            .iter()
            .filter(|t| t.status == ImplementationTaskStatus::Blocked && !waits_on_failure(t))
        {
            // A person's choice and a step may free it at the same moment: whichever
            // comes second finds it free, which is no failure.
            self.store
                .transition_implementation_task(t.id, ImplementationTaskEvent::Unblock, actor)
                .await
                .try_transition()?;
        }
        Ok(())
    }

    /// Cancels a plan task that has not started, and the pending (spawned) session
    /// that was to run it.
    pub(super) async fn cancel_unstarted(
        &self,
        spec_task_id: SpecTaskId,
        t: &ImplementationTask,
    ) -> Result<(), ImplError> {
        for s in self.store.list_work_sessions(spec_task_id).await? {
            if s.implementation_task_id == Some(t.id) && s.status == WorkSessionStatus::Pending {
                self.store
                    .transition_work_session(s.id, WorkSessionEvent::Cancel, None, "system")
                    .await
                    .try_transition()?;
            }
        }
        // A person may decide about it at the same moment; their choice stands.
        self.store
            .transition_implementation_task(t.id, ImplementationTaskEvent::Cancel, "system")
            .await
            .try_transition()?;
        Ok(())
    }

    /// A task whose step keeps failing the same way fails (phase implementation, the
    /// error as the reason): its working sessions are interrupted and its agent
    /// stopped; `retry` of the task resumes them.
    async fn give_up_task(
        &self,
        spec_task_id: SpecTaskId,
        reason: String,
    ) -> Result<(), ImplError> {
        self.store
            .transition_spec_task(
                spec_task_id,
                &|_| SpecTaskEvent::Fail {
                    reason: reason.clone(),
                },
                "system",
            )
            .await?;
        for s in self.store.list_work_sessions(spec_task_id).await? {
            self.interrupt_if_working(&s, "the spec task failed")
                .await?;
        }
        self.agents
            .cancel_all(spec_task_id)
            .await
            .map_err(|e| ImplError::Other(e.to_string()))
    }
}

/// A session's branch. Git refs cannot nest under an existing branch name, so it is
/// the task branch with a suffix rather than a sub-path.
fn session_branch(task: &SpecTask, item: &ImplementationTask) -> String {
    format!("{}--{}", task.branch, slugify(&item.key))
}
