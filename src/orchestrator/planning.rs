//! Planning: a planning thread in the task's agent instance writes the spec on the
//! task branch; spectask validates it, sends one follow-up prompt with the exact
//! problems if it does not validate, and commits a valid spec as the next spec
//! version (then the task is in `spec_review`), or fails the task with the report.

use crate::store::TryTransition;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Mutex;

use super::spec_files::{self, SPEC_JSON};
use crate::agents::manager::{AgentManager, ManagerError};
use crate::domain::*;
use crate::git;
use crate::store::{NewWorkSession, Store, StoreError};

/// The planning prompt shipped with spectask; a project overrides it with
/// `.spectask/planning.md` on its base branch.
pub const PLANNING_TEMPLATE: &str = include_str!("../../templates/planning.md");
pub const PROJECT_TEMPLATE: &str = ".spectask/planning.md";

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Git(#[from] git::GitError),
    #[error(transparent)]
    Agent(#[from] ManagerError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone, PartialEq)]
pub enum PlanOutcome {
    /// A valid spec was committed as this version; the task is in `spec_review`.
    Version(i64),
    /// The task failed in planning, with this reason.
    Failed(String),
    /// The task was not in `planning` (any more).
    Skipped,
}

pub struct Planner {
    store: Arc<dyn Store>,
    agents: Arc<AgentManager>,
    tasks_dir: PathBuf,
    active: Mutex<HashSet<SpecTaskId>>,
    /// Failed rounds in a row per task: a round that keeps failing the same way
    /// fails the task instead of being retried forever.
    repeats: super::repeats::Repeats,
}

impl Planner {
    pub fn new(
        store: Arc<dyn Store>,
        agents: Arc<AgentManager>,
        tasks_dir: PathBuf,
    ) -> Arc<Planner> {
        Arc::new(Planner {
            store,
            agents,
            tasks_dir,
            active: Mutex::new(HashSet::new()),
            repeats: Default::default(),
        })
    }

    /// One step of the planning loop: starts a planning round for every task in
    /// `planning` that has none running. Returns the tasks it started.
    pub async fn run_once(self: &Arc<Self>) -> Result<Vec<SpecTaskId>, PlanError> {
        let filter = crate::store::SpecTaskFilter {
            status: Some(SpecTaskStatus::Planning),
            limit: 500,
            ..Default::default()
        };
        let (tasks, _) = self.store.list_spec_tasks(&filter).await?;
        let mut started = Vec::new();
        for task in tasks {
            // In a cluster, another replica may hold the task.
            if !self.store.fences().owns(task.id) {
                continue;
            }
            if !self.active.lock().await.insert(task.id) {
                continue;
            }
            started.push(task.id);
            let planner = self.clone();
            tokio::spawn(async move {
                match planner.plan(task.id).await {
                    Ok(outcome) => {
                        planner.repeats.succeeded(task.id);
                        tracing::info!(task = task.id.0, ?outcome, "planning round ended")
                    }
                    Err(e) => {
                        tracing::error!(task = task.id.0, error = %e, "planning round failed");
                        let error = e.to_string();
                        if let Some(count) = planner.repeats.failed(task.id, &error) {
                            let reason = super::repeats::stuck_reason("planning", count, &error);
                            let _ = planner
                                .store
                                .transition_spec_task(
                                    task.id,
                                    &|_| SpecTaskEvent::Fail {
                                        reason: reason.clone(),
                                    },
                                    "system",
                                )
                                .await;
                        }
                    }
                }
                planner.active.lock().await.remove(&task.id);
            });
        }
        Ok(started)
    }

    /// Runs the planning loop: a step at start (tasks left in `planning` by an
    /// earlier server), then a step whenever events are committed.
    pub fn spawn_loop(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let planner = self.clone();
        // A step runs on every committed event, and at least every few seconds so
        // that a step that failed (a busy database, a git error) is retried even
        // when nothing else happens.
        super::step_loop(
            self.store.subscribe_events(),
            std::time::Duration::ZERO,
            move || {
                let planner = planner.clone();
                async move {
                    if let Err(e) = planner.run_once().await {
                        tracing::error!(error = %e, "planning step");
                    }
                    super::RECONCILE_EVERY
                }
            },
        )
    }

    /// One planning round for a task in `planning`.
    pub async fn plan(&self, spec_task_id: SpecTaskId) -> Result<PlanOutcome, PlanError> {
        let task = self.store.get_spec_task(spec_task_id).await?;
        if task.status != SpecTaskStatus::Planning {
            return Ok(PlanOutcome::Skipped);
        }
        let project = self.store.get_project(task.project_id).await?;
        let repo = PathBuf::from(&project.path);
        let worktree = spec_files::task_worktree(&self.tasks_dir, &task);
        let prepared = async {
            git::ensure_branch(&repo, &task.branch, &project.settings.base_branch).await?;
            git::ensure_worktree(&repo, &worktree, &task.branch).await?;
            Ok::<_, PlanError>(())
        }
        .await;
        if let Err(e) = prepared {
            return self
                .fail(&task, None, format!("preparing the task branch: {e}"))
                .await;
        }
        let spec_rel = spec_files::spec_dir_rel(&project, &task);
        let spec_dir = worktree.join(&spec_rel);
        std::fs::create_dir_all(&spec_dir)?;

        // A revision carries the open comments of the latest version.
        let versions = self.store.list_spec_versions(task.id).await?;
        let mut revision = String::new();
        let mut comment_count = 0;
        if let Some(last) = versions.last() {
            let open: Vec<ReviewComment> = self
                .store
                .list_review_comments(last.id)
                .await?
                .into_iter()
                .filter(|c| !c.resolved)
                .collect();
            comment_count = open.len();
            revision = revision_text(last.number, &open);
        }
        let number = versions.last().map_or(1, |v| v.number + 1);
        let mut template = std::fs::read_to_string(worktree.join(PROJECT_TEMPLATE))
            .unwrap_or_else(|_| PLANNING_TEMPLATE.to_string());
        // A project's own template may leave the revision out; the comments must still
        // reach the agent.
        if !template.contains("{{revision}}") {
            template.push_str("\n{{revision}}");
        }
        let prompt = spec_files::render(
            &template,
            &[
                ("spec_dir", &spec_dir.display().to_string()),
                ("title", &task.title),
                ("prompt", &task.prompt),
                ("revision", &revision),
                ("version", &number.to_string()),
            ],
        );

        // Sessions left running by an earlier server are superseded by this round.
        for old in self.store.list_work_sessions(task.id).await? {
            if old.kind == WorkSessionKind::Planning
                && !old.status.is_terminal()
                && old.status != WorkSessionStatus::Failed
            {
                self.store
                    .transition_work_session(old.id, WorkSessionEvent::Cancel, None, "system")
                    .await
                    .try_transition()?;
            }
        }
        let session = self
            .store
            .create_work_session(
                NewWorkSession {
                    spec_task_id: task.id,
                    parent_id: None,
                    implementation_task_id: None,
                    kind: WorkSessionKind::Planning,
                    name: format!("planning v{number}"),
                    prompt: prompt.clone(),
                },
                "system",
            )
            .await?;
        self.store
            .transition_work_session(session.id, WorkSessionEvent::Start, None, "system")
            .await?;

        let runtime = self.agents.runtime(task.id).await?;
        let turn = async {
            runtime.open_thread(session.id, worktree.clone()).await?;
            runtime.prompt(session.id, &prompt).await?;
            let mut report = spec_files::check(&spec_dir);
            if !report.is_valid() {
                let follow_up = format!(
                    "The spec in {} does not validate. Fix exactly these problems and change nothing else:\n{}",
                    spec_dir.display(),
                    report.error_lines().iter().map(|l| format!("- {l}")).collect::<Vec<_>>().join("\n")
                );
                runtime.prompt(session.id, &follow_up).await?;
                report = spec_files::check(&spec_dir);
            }
            Ok::<_, crate::agents::runtime::AgentError>(report)
        }
        .await;
        let report = match turn {
            Ok(r) => r,
            Err(e) => {
                return self
                    .fail(
                        &task,
                        Some(session.id),
                        format!("the planning agent failed: {e}"),
                    )
                    .await;
            }
        };
        if !report.is_valid() {
            let reason = format!(
                "the spec does not validate after a follow-up prompt:\n{}",
                report.error_lines().join("\n")
            );
            return self.fail(&task, Some(session.id), reason).await;
        }

        std::fs::write(
            spec_dir.join(SPEC_JSON),
            spec_files::spec_json(&task, number, "in_review", serde_json::json!({})),
        )?;
        let message = if number == 1 {
            format!("spectask #{}: spec v1", task.id)
        } else {
            format!(
                "spectask #{}: spec v{number} (changes requested: {comment_count} comments)",
                task.id
            )
        };
        let commit = match git::commit_paths(&worktree, &[&spec_rel], &message).await? {
            Some(sha) => sha,
            None => {
                return self
                    .fail(
                        &task,
                        Some(session.id),
                        "the planning agent changed nothing".into(),
                    )
                    .await;
            }
        };
        let version = self
            .store
            .create_spec_version(task.id, &commit, "system")
            .await?;
        for event in [
            WorkSessionEvent::TurnEnded,
            WorkSessionEvent::VerifyPassed,
            WorkSessionEvent::Merged,
        ] {
            self.store
                .transition_work_session(session.id, event, None, "system")
                .await?;
        }
        self.store
            .transition_spec_task(task.id, &|_| SpecTaskEvent::SpecWritten, "system")
            .await?;
        Ok(PlanOutcome::Version(version.number))
    }

    async fn fail(
        &self,
        task: &SpecTask,
        session: Option<WorkSessionId>,
        reason: String,
    ) -> Result<PlanOutcome, PlanError> {
        if let Some(id) = session {
            self.store
                .transition_work_session(id, WorkSessionEvent::Fail, Some(reason.clone()), "system")
                .await
                .try_transition()?;
        }
        let fail = reason.clone();
        self.store
            .transition_spec_task(
                task.id,
                &move |_| SpecTaskEvent::Fail {
                    reason: fail.clone(),
                },
                "system",
            )
            .await?;
        Ok(PlanOutcome::Failed(reason))
    }
}

/// The part of the planning prompt that asks for a revision.
fn revision_text(version: i64, comments: &[ReviewComment]) -> String {
    if comments.is_empty() {
        return format!(
            "\nThis is a revision of spec version {version}: the reviewer asked for changes.\n"
        );
    }
    let mut text = format!(
        "\nThis is a revision of spec version {version}. Address each review comment, editing the files in place:\n"
    );
    for c in comments {
        let anchor = match (c.line_start, c.line_end, &c.quote) {
            (Some(a), Some(b), _) if a != b => format!("{} lines {a}-{b}", c.document),
            (Some(a), _, _) => format!("{} line {a}", c.document),
            (None, _, Some(q)) => format!("{} at \"{q}\"", c.document),
            _ => c.document.clone(),
        };
        text.push_str(&format!("- ({anchor}) {}\n", c.body));
    }
    text
}
