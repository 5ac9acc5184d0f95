//! The per-task merge queue: one merge at a time into the task branch, ticking
//! `tasks.md` and writing the session's history; conflicts go to a conflict-fixing
//! session.

use crate::store::TryTransition;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::*;

impl Implementer {
    pub(super) async fn merge(
        &self,
        task: &SpecTask,
        project: &Project,
        item: &ImplementationTask,
        session_id: WorkSessionId,
        worktree: &Path,
        branch: &str,
    ) -> Result<Option<Vec<String>>, ImplError> {
        let lock = self.merge_lock(task.id).await;
        let _queue = lock.lock().await;
        let repo = PathBuf::from(&project.path);
        // Merges are recorded, so replaying one only finishes what followed it.
        if let Some(merged) = self.store.merge_commit(session_id).await? {
            self.finish_merged(task, item, session_id, &repo, worktree, &merged)
                .await?;
            return Ok(None);
        }
        // A session a person cancelled or skipped while it waited for the queue is
        // not merged.
        let session = self.store.get_work_session(session_id).await?;
        if session.status != WorkSessionStatus::Merging {
            return Ok(None);
        }
        // Nor is one of a spec task that stopped implementing: a cancel whose
        // compare-and-set lost to this session's own step (running → verifying) left
        // it going; it ends here, under the queue lock the cancel also takes.
        if self.settle_if_task_ended(task.id, &session).await? {
            return Ok(None);
        }
        // A replica that lost the task (paused past its lease) merges nothing.
        self.store.check_lease(task.id).await?;
        let task_worktree = self.task_worktree(task);
        git::ensure_worktree(&repo, &task_worktree, &task.branch).await?;
        // In a cluster, others moved the branch while this copy sat still (an
        // earlier owner's merges, an approval on another replica): the first merge
        // under a new lease starts from the branch as it is.
        if let Some(since) = self.store.fences().owned_since(task.id)
            && self.refreshed.lock().await.insert((task.id, since))
        {
            git::refresh_worktree(&task_worktree).await?;
        }
        git::settle_interrupted_merge(&task_worktree).await?;
        // The session's branch lives in the task's repository: it is merged here,
        // in the user's, so it comes over first (spectask does this, not the agent).
        let task_repo = spec_files::task_repo(&self.tasks_dir, task.id);
        git::copy_branch(&task_repo, &repo, branch).await?;
        let message = format!(
            "spectask #{}: merge task {} (session {session_id})",
            task.id, item.key
        );
        // `None`: the session has nothing to merge.
        let merged = if let Some(commit) = git::merge_of(&task_worktree, branch).await? {
            // Merged by a process that died before recording it: never merged twice.
            Some(commit)
        } else if git::commits_ahead(&task_worktree, branch).await? == 0 {
            if project.settings.empty_session == EmptySessionPolicy::Review {
                self.fail(task, item, session_id, EMPTY_SESSION_REVIEW.to_string())
                    .await?;
                return Ok(None);
            }
            None
        } else {
            let tasks_rel = spec_files::tasks_md_rel(project, task);
            let mut outcome = git::merge(&task_worktree, branch, &message).await?;
            // Sessions tick their own sub-items in tasks.md (an agent's
            // `report_progress`) while the merges tick tasks on the task branch: lines
            // side by side conflict in git although the marks do not. The task
            // branch's side is kept, and the session's marks are copied over below.
            if matches!(&outcome, Merge::Conflict(files) if files == std::slice::from_ref(&tasks_rel))
            {
                outcome = git::merge_preferring_ours(&task_worktree, branch, &message).await?;
            }
            match outcome {
                Merge::Merged(commit) => Some(commit),
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
                        .transition_work_session(
                            session_id,
                            WorkSessionEvent::Conflict,
                            None,
                            "system",
                        )
                        .await?;
                    return Ok(Some(files));
                }
            }
        };
        // Tick the task in tasks.md and write the session's history, on the task branch.
        let spec_rel = spec_files::spec_dir_rel(project, task);
        let tasks_rel = spec_files::tasks_md_rel(project, task);
        let tasks_path = task_worktree.join(&tasks_rel);
        if let Ok(text) = std::fs::read_to_string(&tasks_path) {
            let session_doc = std::fs::read_to_string(worktree.join(&tasks_rel))
                .ok()
                .map(|t| tasks_md::parse(&t));
            let mut text = text;
            // The session's own sub-items as it left them (see the merge above).
            if let Some(theirs) = &session_doc {
                for sub in crate::orchestrator::progress::sub_items(theirs, &item.key) {
                    let mark = if sub.done { Mark::Done } else { Mark::Pending };
                    let doc = tasks_md::parse(&text);
                    if let Some(found) = doc
                        .get(&sub.key)
                        .filter(|f| (f.mark == Mark::Done) != sub.done)
                        && let Ok(next) = tasks_md::set_mark(&text, found.line, mark)
                    {
                        text = next;
                    }
                }
            }
            let doc = tasks_md::parse(&text);
            if let Some(found) = doc.get(&item.key)
                && let Ok(ticked) = tasks_md::set_mark(&text, found.line, Mark::Done)
            {
                text = ticked;
            }
            std::fs::write(&tasks_path, text).map_err(git::GitError::from)?;
        }
        let history_dir = task_worktree.join(&spec_rel).join("history");
        std::fs::create_dir_all(&history_dir).map_err(git::GitError::from)?;
        let history = self
            .history(session_id, item, branch, merged.as_deref(), &repo)
            .await?;
        std::fs::write(
            history_dir.join(format!("session-{session_id}-{}.md", slugify(&item.key))),
            history,
        )
        .map_err(git::GitError::from)?;
        let subject = match merged {
            Some(_) => format!("spectask #{}: task {} done", task.id, item.key),
            None => format!(
                "spectask #{}: task {} done (session {session_id} changed nothing)",
                task.id, item.key
            ),
        };
        let ticked = git::commit_paths(&task_worktree, &[&spec_rel], &subject).await?;
        // A session with nothing to merge records the commit that ticked its task (one
        // parent, no merge) as its merge: the documented empty marker. A replay after a
        // crash finds the tick already made and records the branch head.
        let merged = match (merged, ticked) {
            (Some(commit), _) | (None, Some(commit)) => commit,
            (None, None) => git::branch_head(&task_worktree, &task.branch)
                .await?
                .ok_or_else(|| ImplError::Other(format!("{} has no head", task.branch)))?,
        };
        self.store.record_merge(session_id, &merged).await?;
        self.finish_merged(task, item, session_id, &repo, worktree, &merged)
            .await?;
        Ok(None)
    }

    /// What follows a recorded merge, each part done once even when a restart
    /// replays it: the summary handed to the dependents, the worktree removed, the
    /// session completed and its task done.
    async fn finish_merged(
        &self,
        task: &SpecTask,
        item: &ImplementationTask,
        session_id: WorkSessionId,
        repo: &Path,
        worktree: &Path,
        merged: &str,
    ) -> Result<(), ImplError> {
        let events = self.store.list_coordination_events(task.id).await?;
        let mine = |e: &&CoordinationEvent| {
            e.kind == CoordinationKind::Completion && e.from_session_id == Some(session_id)
        };
        // The agent's own summary (its `complete` tool) is posted before the merge;
        // the merge's completion event is the one that names the merge commit.
        let summary = events
            .iter()
            .filter(mine)
            .rfind(|e| e.is_summary())
            .map(|e| e.message.clone());
        let posted = events.iter().filter(mine).any(|e| !e.is_summary());
        if !posted {
            let last_message = match summary {
                Some(s) => Some(s),
                None => self
                    .store
                    .list_transcript(session_id, 0)
                    .await?
                    .into_iter()
                    .rev()
                    .find(|e| e.kind == TranscriptKind::Message)
                    .map(|e| e.content),
            };
            let files = if git::is_merge(repo, merged).await? {
                git::changed_files(repo, &format!("{merged}^1"), merged).await?
            } else {
                Vec::new()
            };
            self.store
                .post_coordination_event(
                    NewCoordinationEvent {
                        spec_task_id: task.id,
                        kind: CoordinationKind::Completion,
                        from_session_id: Some(session_id),
                        to_session_id: None,
                        message: format!(
                            "task {} ({}) is merged. {}",
                            item.key,
                            item.title,
                            prompt::summary(last_message.as_deref(), &files)
                        ),
                        payload: json!({ "task_key": item.key, "merge_commit": merged, "files": files }),
                    },
                    "system",
                )
                .await?;
        }
        // The worktree goes once its branch is merged (never with uncommitted work),
        // before the task counts as done, so a finished run leaves none behind.
        let task_repo = spec_files::task_repo(&self.tasks_dir, task.id);
        let _ = git::remove_worktree(&task_repo, worktree).await;
        if self.store.get_work_session(session_id).await?.status != WorkSessionStatus::Completed {
            self.store
                .transition_work_session(session_id, WorkSessionEvent::Merged, None, "system")
                .await?;
        }
        self.complete_if_in_progress(task.id, item.id).await
    }

    /// Marks a plan task done unless it is already (a replay, or a restart's
    /// reconciliation, may reach it twice).
    pub(super) async fn complete_if_in_progress(
        &self,
        spec_task_id: SpecTaskId,
        item_id: ImplementationTaskId,
    ) -> Result<(), ImplError> {
        let current = self.store.list_implementation_tasks(spec_task_id).await?;
        if current
            .iter()
            .any(|t| t.id == item_id && t.status == ImplementationTaskStatus::InProgress)
        {
            self.store
                .transition_implementation_task(
                    item_id,
                    ImplementationTaskEvent::Complete,
                    "system",
                )
                .await?;
        }
        Ok(())
    }

    /// A conflict is never resolved silently: a conflict-fixing session (a child of
    /// the conflicted one) merges the task branch into the session's branch, resolves
    /// the conflicts in the agent's thread, and the merge is tried again. If markers
    /// remain, the session stays `conflicted` for a person.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn resolve_conflict(
        &self,
        task: &SpecTask,
        project: &Project,
        item: &ImplementationTask,
        session_id: WorkSessionId,
        worktree: &Path,
        branch: &str,
        files: Vec<String>,
    ) -> Result<(), ImplError> {
        tracing::info!(
            session = session_id.0,
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
        let fixed = self
            .fix_conflict(task, project, item, session_id, fixer.id, worktree, branch)
            .await;
        if let Err(e) = &fixed {
            // The fixer ends, whatever went wrong; the session stays `conflicted` for a
            // person.
            self.store
                .transition_work_session(
                    fixer.id,
                    WorkSessionEvent::Fail,
                    Some(e.to_string()),
                    "system",
                )
                .await
                .try_transition()?;
        }
        fixed
    }

    /// The conflict-fixing session's work: the merge into the session's branch, the
    /// agent's turn on the conflicts, and the merge into the task branch again.
    #[allow(clippy::too_many_arguments)]
    async fn fix_conflict(
        &self,
        task: &SpecTask,
        project: &Project,
        item: &ImplementationTask,
        session_id: WorkSessionId,
        fixer_id: WorkSessionId,
        worktree: &Path,
        branch: &str,
    ) -> Result<(), ImplError> {
        let message = format!(
            "spectask #{}: bring the task branch into task {}",
            task.id, item.key
        );
        // The session's worktree belongs to the task's repository: the task branch
        // as merged so far comes over before it is merged in.
        self.task_repo(task, project).await?;
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
            if let Err(e) = session::turn(&runtime, project, fixer_id, worktree, &prompt).await {
                self.store
                    .transition_work_session(
                        fixer_id,
                        WorkSessionEvent::Fail,
                        Some(e.to_string()),
                        "system",
                    )
                    .await
                    .try_transition()?;
                return Ok(());
            }
            if git::has_conflict_markers(worktree, &conflicted) {
                let reason = format!("conflict markers remain in {}", conflicted.join(", "));
                self.store
                    .transition_work_session(
                        fixer_id,
                        WorkSessionEvent::Fail,
                        Some(reason),
                        "system",
                    )
                    .await
                    .try_transition()?;
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
                .transition_work_session(fixer_id, event, None, "system")
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
                session = session_id.0,
                ?files,
                "still conflicting after resolution"
            );
        }
        Ok(())
    }

    pub(super) async fn history(
        &self,
        session_id: WorkSessionId,
        item: &ImplementationTask,
        branch: &str,
        merged: Option<&str>,
        repo: &Path,
    ) -> Result<String, ImplError> {
        let session = self.store.get_work_session(session_id).await?;
        let merged_as = match merged {
            Some(commit) => format!("`{commit}`"),
            None => "nothing: the session changed nothing".to_string(),
        };
        let mut out = format!(
            "# Session {session_id}: task {} — {}\n\n- branch: `{branch}`\n- attempts: {}\n- merged as: {merged_as}\n",
            item.key, item.title, session.attempt
        );
        out.push_str("\n## Commits\n\n");
        match merged {
            Some(merged) => {
                for subject in git::subjects(repo, &format!("{merged}^1..{merged}^2")).await? {
                    out.push_str(&format!("- {subject}\n"));
                }
            }
            None => out.push_str("(none)\n"),
        }
        out.push_str("\n## Coordination\n\n");
        let mut any = false;
        for e in self
            .store
            .list_coordination_events(session.spec_task_id)
            .await?
        {
            let to_it = e.to_session_id == Some(session_id);
            if e.from_session_id == Some(session_id) || to_it {
                any = true;
                let direction = if to_it { "received" } else { "sent" };
                out.push_str(&format!("- {direction} {}: {}\n", e.kind, e.message));
            }
        }
        if !any {
            out.push_str("(none)\n");
        }
        out.push_str("\n## Transcript\n\n");
        let entries = self.store.list_transcript(session_id, 0).await?;
        out.push_str(&crate::domain::transcript::to_markdown(
            &entries,
            session.worktree_path.as_deref(),
        ));
        Ok(out)
    }
}
