//! Running one work session: starting it in its own worktree and thread, retrying
//! it after a crash, resuming it after a server restart, and failing it.

use crate::store::TryTransition;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::agents::protocol::StopReason;
use crate::agents::runtime::{AgentError, AgentRuntime};

impl Implementer {
    /// Sessions a previous server process was driving when it died: they are retried
    /// in their own worktree with a continuation prompt (a recorded merge is never
    /// done again).
    pub(super) async fn resume_orphans(
        self: &Arc<Self>,
        task: &SpecTask,
        project: &Project,
        plan: &[ImplementationTask],
    ) -> Result<(), ImplError> {
        let running = self.running.lock().await.clone();
        for session in self.store.list_work_sessions(task.id).await? {
            // A server killed between completing a session and its task leaves the
            // task in progress with nothing at work on it: it is done.
            if session.status == WorkSessionStatus::Completed
                && session.kind != WorkSessionKind::MergeConflict
                && let Some(item) = plan.iter().find(|t| {
                    Some(t.id) == session.implementation_task_id
                        && t.status == ImplementationTaskStatus::InProgress
                })
                && self.store.merge_commit(session.id).await?.is_some()
            {
                self.complete_if_in_progress(task.id, item.id).await?;
                continue;
            }
            let active = matches!(
                session.status,
                WorkSessionStatus::Pending
                    | WorkSessionStatus::Running
                    | WorkSessionStatus::Blocked
                    | WorkSessionStatus::Verifying
                    | WorkSessionStatus::Merging
                    | WorkSessionStatus::Interrupted
            );
            // A conflict fixer a dead server left at work is not resumed (its
            // prompt was one turn): it fails, so its conflicted session is listed
            // for a person, who can retry it with a new fixer.
            if session.kind == WorkSessionKind::MergeConflict
                && active
                && session.updated_at < self.owned_since(task.id)
            {
                self.store
                    .transition_work_session(
                        session.id,
                        WorkSessionEvent::Fail,
                        Some("the server restarted while it worked".into()),
                        "system",
                    )
                    .await
                    .try_transition()?;
                continue;
            }
            let driven_kind = matches!(
                session.kind,
                WorkSessionKind::Implementation | WorkSessionKind::Spawned | WorkSessionKind::AdHoc
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
            // A pending session of a task that another session already runs never
            // starts: two sessions would share one worktree and branch.
            if session.status == WorkSessionStatus::Pending {
                self.store
                    .transition_work_session(
                        session.id,
                        WorkSessionEvent::Cancel,
                        Some(format!("another session runs task {}", item.key)),
                        "system",
                    )
                    .await
                    .try_transition()?;
                continue;
            }
            tracing::info!(session = session.id.0, status = %session.status, "resuming a session left by an earlier server");
            self.running.lock().await.insert(session.id);
            // The server may have died before the workspace was even recorded.
            let branch = session
                .branch
                .clone()
                .unwrap_or_else(|| session_branch(task, item));
            let recorded = session.worktree_path.clone().map(PathBuf::from);
            // A worktree in another replica's data dir (a task taken over): this
            // replica makes its own from what that one published, the session
            // branch in the user's repository (committed at each turn's end).
            let moved = recorded
                .as_ref()
                .is_some_and(|p| !p.starts_with(&self.tasks_dir));
            let worktree = match recorded {
                Some(p) if !moved => p,
                _ => self.session_worktree(task, item),
            };
            let repo = self.task_repo(task, project).await?;
            if moved {
                // A worktree of ours from before (the task went to another replica
                // and came back) is behind the published branch, and holds it
                // checked out, which would refuse the copy.
                if worktree.join(".git").exists() {
                    git::discard_worktree(&repo, &worktree).await?;
                }
                git::copy_branch(Path::new(&project.path), &repo, &branch).await?;
            }
            git::add_branch_worktree(&repo, &worktree, &branch, &task.branch).await?;
            self.publish_branch(task, project, &branch).await;
            if session.branch.is_none() || moved {
                self.store
                    .set_session_workspace(session.id, &branch, &worktree.display().to_string())
                    .await?;
            }
            // A session that was merging has its work committed and checked: it goes
            // back to the merge queue as it is (`run_session` sees `merging`).
            let merging = session.status == WorkSessionStatus::Merging;
            self.interrupt_if_working(&session, "the server restarted")
                .await?;
            if !merging {
                self.store
                    .transition_work_session(session.id, WorkSessionEvent::Start, None, "system")
                    .await?;
            }
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
                    me.give_up(&task, &item, session.id, &e).await;
                }
                me.running.lock().await.remove(&session.id);
            });
        }
        Ok(())
    }

    /// When this process took the task: a session last touched before then was
    /// left by a server (or replica) that is gone.
    fn owned_since(&self, spec_task_id: SpecTaskId) -> chrono::DateTime<chrono::Utc> {
        self.store
            .fences()
            .owned_since(spec_task_id)
            .map_or(self.born, |since| since.max(self.born))
    }

    /// In a cluster, a turn that another follows leaves its work committed on the
    /// session branch and published to the user's repository: a replica that takes
    /// the task over redoes at most the turn that was in flight.
    async fn checkpoint(
        &self,
        task: &SpecTask,
        project: &Project,
        session_id: WorkSessionId,
        worktree: &Path,
    ) -> Result<(), ImplError> {
        if self.store.fences().replica().is_none() {
            return Ok(());
        }
        let message = format!("spectask: work of session {session_id} so far");
        // The branch in the user's repository is the new owner's once it is taken.
        self.store.check_lease(task.id).await?;
        if git::commit_all(worktree, &message).await?.is_some()
            && let Some(branch) = self.store.get_work_session(session_id).await?.branch
        {
            self.publish_branch(task, project, &branch).await;
        }
        Ok(())
    }

    pub(super) async fn start(
        self: &Arc<Self>,
        task: &SpecTask,
        project: &Project,
        item: &ImplementationTask,
    ) -> Result<(), ImplError> {
        let repo = self.task_repo(task, project).await?;
        // A spawned session was created by the person who spawned it; it starts here.
        let pending = self
            .store
            .list_work_sessions(task.id)
            .await?
            .into_iter()
            .find(|s| {
                s.implementation_task_id == Some(item.id) && s.status == WorkSessionStatus::Pending
            })
            .map(|s| s.id);
        let branch = session_branch(task, item);
        let worktree = self.session_worktree(task, item);
        // The worktree comes first: a server that dies right after leaves a worktree
        // that the next start reuses, never a running session without one.
        git::add_branch_worktree(&repo, &worktree, &branch, &task.branch).await?;
        self.publish_branch(task, project, &branch).await;
        let started = self
            .store
            .start_session(StartSession {
                pending,
                new: NewWorkSession {
                    spec_task_id: task.id,
                    parent_id: None,
                    implementation_task_id: Some(item.id),
                    kind: WorkSessionKind::Implementation,
                    name: format!("{}. {}", item.key, item.title),
                    prompt: String::new(),
                },
                implementation_task_id: item.id,
                branch: branch.clone(),
                worktree: worktree.display().to_string(),
            })
            .await;
        let session = match started {
            Ok(session) => session,
            Err(e) => {
                // Refused (the task was cancelled or skipped meanwhile): the worktree
                // made for it goes, unless an earlier attempt left work in it.
                let _ = git::remove_worktree(&repo, &worktree).await;
                return Err(e.into());
            }
        };
        // Steps run one at a time, so no other step can take this running session
        // for an orphan before it is marked as driven here.
        self.running.lock().await.insert(session.id);
        let prompt = self
            .first_prompt(task, project, item, session.id, &worktree)
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
                me.give_up(&task, &item, session.id, &e).await;
            }
            me.running.lock().await.remove(&session.id);
        });
        Ok(())
    }

    /// A session's turns: the first prompt, a turn for the messages that arrived
    /// during one (up to [`MAX_FOLLOW_UPS`]), and retries in the same worktree after
    /// a crash (up to the project's `max_attempts`). `Ok(false)` when the session
    /// ended here: failed, skipped or cancelled.
    #[allow(clippy::too_many_arguments)]
    async fn work(
        &self,
        runtime: &Arc<AgentRuntime>,
        task: &SpecTask,
        project: &Project,
        item: &ImplementationTask,
        session_id: WorkSessionId,
        worktree: &Path,
        prompt: &str,
    ) -> Result<bool, ImplError> {
        // Attempts count from the session's record, so a session resumed after a
        // server restart has used one already.
        let mut attempt = self
            .store
            .get_work_session(session_id)
            .await?
            .attempt
            .max(1);
        let mut text = prompt.to_string();
        let mut follow_ups = 0;
        loop {
            let result = turn(runtime, project, session_id, worktree, &text).await;
            // A person skipped or cancelled the session meanwhile, or its spec task
            // stopped implementing (cancelled, failed): nothing more is done with it
            // (its work stays in its worktree and branch).
            if self.stopped(task.id, session_id).await? {
                return Ok(false);
            }
            // A person stopped the agent: the session waits, interrupted, without
            // spending an attempt, and resumes when the agent is restarted.
            if result.is_err() && self.agent_held(task.id).await? {
                let session = self.store.get_work_session(session_id).await?;
                self.interrupt_if_working(&session, crate::agents::runtime::HELD)
                    .await?;
                return Ok(false);
            }
            match result {
                Ok(_) => {
                    // Messages that arrived during the turn start another one, so a
                    // message to a busy session is never left unread. Past the last
                    // follow-up nothing more is delivered, so nothing is acknowledged
                    // unread.
                    if follow_ups == MAX_FOLLOW_UPS {
                        return Ok(true);
                    }
                    let waiting = self.deliver(task.id, session_id).await?;
                    if waiting.is_empty() {
                        return Ok(true);
                    }
                    self.checkpoint(task, project, session_id, worktree).await?;
                    follow_ups += 1;
                    text = format!(
                        "While you worked, messages arrived.{waiting}\nAct on them if they concern your task, then finish it."
                    );
                }
                Err(e) if attempt < project.settings.max_attempts => {
                    // Retried in the same worktree with a continuation prompt.
                    let reason = e.to_string();
                    self.checkpoint(task, project, session_id, worktree).await?;
                    self.store
                        .transition_work_session(
                            session_id,
                            WorkSessionEvent::Interrupt,
                            Some(reason.clone()),
                            "system",
                        )
                        .await
                        .try_transition()?;
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
                Err(e) => {
                    self.fail(task, item, session_id, e.to_string()).await?;
                    return Ok(false);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_session(
        &self,
        task: &SpecTask,
        project: &Project,
        item: &ImplementationTask,
        session_id: WorkSessionId,
        worktree: &Path,
        branch: &str,
        prompt: &str,
    ) -> Result<(), ImplError> {
        let runtime = self
            .agents
            .runtime(task.id)
            .await
            .map_err(|e| ImplError::Other(e.to_string()))?;
        // A session whose merge was recorded before a restart has nothing left to do
        // but what follows the merge; one that was merging goes back to the queue.
        let merging =
            self.store.get_work_session(session_id).await?.status == WorkSessionStatus::Merging;
        if !merging && self.store.merge_commit(session_id).await?.is_none() {
            if !self
                .work(&runtime, task, project, item, session_id, worktree, prompt)
                .await?
            {
                return Ok(());
            }
            let message = format!(
                "spectask #{}: task {} (session {session_id})",
                task.id, item.key
            );
            git::commit_all(worktree, &message).await?;
            self.publish_branch(task, project, branch).await;
            self.hold_while_blocked(session_id, &runtime).await?;
            let verify_limit =
                Duration::from_secs(project.settings.verify_timeout_secs.max(1) as u64);
            if let Some(command) = &project.settings.verification_command
                && let Err(output) = self
                    .verify_recorded(task, session_id, worktree, command, verify_limit)
                    .await
            {
                // One follow-up with the output, then the session fails.
                let follow_up =
                    format!("The verification command `{command}` failed:\n{output}\nFix it.");
                let _ = turn(&runtime, project, session_id, worktree, &follow_up).await;
                if self.stopped(task.id, session_id).await? {
                    return Ok(());
                }
                git::commit_all(worktree, &message).await?;
                self.publish_branch(task, project, branch).await;
                if let Err(output) = self
                    .verify_recorded(task, session_id, worktree, command, verify_limit)
                    .await
                {
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
        }
        if !merging {
            self.store
                .transition_work_session(session_id, WorkSessionEvent::TurnEnded, None, "system")
                .await?;
            self.store
                .transition_work_session(session_id, WorkSessionEvent::VerifyPassed, None, "system")
                .await?;
        }
        if let Some(files) = self
            .merge(task, project, item, session_id, worktree, branch)
            .await?
        {
            match project.settings.conflict_policy {
                ConflictPolicy::Fix => {
                    self.resolve_conflict(task, project, item, session_id, worktree, branch, files)
                        .await?
                }
                // The session stays `conflicted` until a person retries it (after
                // resolving it in the worktree, or to get a conflict-fixing session),
                // skips or cancels it.
                ConflictPolicy::Wait => {
                    tracing::info!(
                        session = session_id.0,
                        ?files,
                        "a merge conflict waits for a person"
                    )
                }
            }
        }
        Ok(())
    }

    /// Interrupts a session that is at work (the states its lifecycle interrupts:
    /// running, blocked, verifying), so that a later start resumes it.
    pub(super) async fn interrupt_if_working(
        &self,
        session: &WorkSession,
        reason: &str,
    ) -> Result<(), ImplError> {
        if session.status.apply(WorkSessionEvent::Interrupt).is_ok() {
            self.store
                .transition_work_session(
                    session.id,
                    WorkSessionEvent::Interrupt,
                    Some(reason.to_string()),
                    "system",
                )
                .await
                .try_transition()?;
        }
        Ok(())
    }

    /// Runs the verification command and records how it went (command, pass or
    /// fail, the output's tail) as the session's `work_session.verified` event, which
    /// the session page shows.
    async fn verify_recorded(
        &self,
        task: &SpecTask,
        session_id: WorkSessionId,
        worktree: &Path,
        command: &str,
        limit: Duration,
    ) -> Result<(), String> {
        let result = verify(worktree, command, limit).await;
        let (passed, output) = match &result {
            Ok(out) => (true, out.clone()),
            Err(out) => (false, out.clone()),
        };
        let event = NewEvent {
            project_id: Some(task.project_id),
            spec_task_id: Some(task.id),
            entity: "work_session",
            entity_id: Some(session_id.0),
            kind: "work_session.verified",
            data: serde_json::json!({ "command": command, "passed": passed, "output": output }),
        };
        if let Err(e) = self.store.record_event(event, "system").await {
            tracing::error!(error = %e, session = session_id.0, "recording a verification");
        }
        result.map(|_| ())
    }

    /// Whether a session is to go no further: a person ended it, or its spec task is
    /// no longer implementing.
    async fn stopped(
        &self,
        spec_task_id: SpecTaskId,
        session_id: WorkSessionId,
    ) -> Result<bool, ImplError> {
        if self.is_closing() {
            return Ok(true);
        }
        let session = self.store.get_work_session(session_id).await?;
        if session.status.is_terminal() || session.status == WorkSessionStatus::Interrupted {
            return Ok(true);
        }
        self.settle_if_task_ended(spec_task_id, &session).await
    }

    /// A session still at work whose spec task left `implementing` (a start or a
    /// turn that raced with the end): cancelled with a cancelled task, interrupted
    /// with a failed one (a retry resumes it). `true` when the task has ended.
    pub(super) async fn settle_if_task_ended(
        &self,
        spec_task_id: SpecTaskId,
        session: &WorkSession,
    ) -> Result<bool, ImplError> {
        let status = self.store.get_spec_task(spec_task_id).await?.status;
        if status == SpecTaskStatus::Implementing {
            return Ok(false);
        }
        let event = if status == SpecTaskStatus::Failed {
            WorkSessionEvent::Interrupt
        } else {
            WorkSessionEvent::Cancel
        };
        if !session.status.is_terminal() {
            self.store
                .transition_work_session(
                    session.id,
                    event,
                    Some(format!("the spec task is {status}")),
                    "system",
                )
                .await
                .try_transition()?;
        }
        Ok(true)
    }

    /// A session whose driver hit an error (git, the store, the agent) fails with it,
    /// for a person to retry, skip or cancel, instead of being picked up again and
    /// failing the same way forever.
    pub(super) async fn give_up(
        &self,
        task: &SpecTask,
        item: &ImplementationTask,
        session_id: WorkSessionId,
        error: &ImplError,
    ) {
        tracing::error!(session = session_id.0, error = %error, "work session");
        if self.is_closing() {
            return;
        }
        let Ok(session) = self.store.get_work_session(session_id).await else {
            return;
        };
        if session.status.is_terminal() || session.status == WorkSessionStatus::Failed {
            return;
        }
        if self
            .settle_if_task_ended(task.id, &session)
            .await
            .unwrap_or(false)
        {
            return;
        }
        let reason = format!("failed while {}: {error}", session.status);
        if let Err(e) = self.fail(task, item, session_id, reason).await {
            tracing::error!(session = session_id.0, error = %e, "failing a work session");
        }
    }

    pub(super) async fn fail(
        &self,
        task: &SpecTask,
        item: &ImplementationTask,
        session_id: WorkSessionId,
        reason: String,
    ) -> Result<(), ImplError> {
        self.store
            .transition_work_session(session_id, WorkSessionEvent::Fail, Some(reason), "system")
            .await
            .try_transition()?;
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
                    self.store
                        .transition_implementation_task(
                            t.id,
                            ImplementationTaskEvent::Block,
                            "system",
                        )
                        .await
                        .try_transition()?;
                }
            }
        }
        Ok(())
    }
}

/// What is kept of each output stream of a verification command: its tail.
const OUTPUT_KEPT: usize = 32 * 1024;

/// Runs the project's verification command in a worktree, in a process group of its
/// own: past `limit` the whole group is killed and the command counts as failed. Only
/// the tail of its output is kept, so a command that prints megabytes costs kilobytes.
async fn verify(worktree: &Path, command: &str, limit: Duration) -> Result<String, String> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(worktree)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("could not run the verification command: {e}"))?;
    let pid = child.id();
    let stdout = tail(child.stdout.take());
    let stderr = tail(child.stderr.take());
    let finished =
        tokio::time::timeout(limit, async { tokio::join!(child.wait(), stdout, stderr) }).await;
    match finished {
        Ok((status, out, err)) => {
            let status = status.map_err(|e| e.to_string())?;
            if status.success() {
                Ok(format!("{out}{err}"))
            } else {
                Err(format!("{out}{err}\n({status})"))
            }
        }
        Err(_) => {
            if let Some(pid) = pid {
                // SAFETY: killpg only signals the command's own process group.
                unsafe {
                    libc::killpg(pid as i32, libc::SIGKILL);
                }
            }
            let _ = child.wait().await;
            Err(format!(
                "the verification command did not finish within {} s and was killed",
                limit.as_secs()
            ))
        }
    }
}

/// Reads a stream to its end, keeping the last [`OUTPUT_KEPT`] bytes.
async fn tail(stream: Option<impl tokio::io::AsyncRead + Unpin>) -> String {
    use tokio::io::AsyncReadExt;
    let Some(mut stream) = stream else {
        return String::new();
    };
    let mut kept: Vec<u8> = Vec::new();
    let mut total = 0usize;
    let mut buf = [0u8; 8192];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
        total += n;
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > 2 * OUTPUT_KEPT {
            kept.drain(..kept.len() - OUTPUT_KEPT);
        }
    }
    if kept.len() > OUTPUT_KEPT {
        kept.drain(..kept.len() - OUTPUT_KEPT);
    }
    let text = String::from_utf8_lossy(&kept).into_owned();
    if total > kept.len() {
        format!("[{} earlier bytes left out]\n{text}", total - kept.len())
    } else {
        text
    }
}

/// One turn of a session's thread, opening the thread first (again, after the agent
/// restarted) when it is not open.
pub(super) async fn turn(
    runtime: &Arc<AgentRuntime>,
    project: &Project,
    session_id: WorkSessionId,
    worktree: &Path,
    text: &str,
) -> Result<StopReason, AgentError> {
    runtime
        .open_thread(session_id, worktree.to_path_buf())
        .await?;
    runtime
        .prompt_within(session_id, text, turn_limit(project))
        .await
}

/// The project's turn timeout.
pub(super) fn turn_limit(project: &Project) -> Duration {
    Duration::from_secs(project.settings.turn_timeout_secs.max(1) as u64)
}
