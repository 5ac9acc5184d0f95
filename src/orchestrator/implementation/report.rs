//! The final report of an implementation: its sessions (attempts, durations, merge
//! commits, usage) and the commits on the task branch. It is written to the spec
//! folder's `history/report.md` and committed when the plan is all merged, and can
//! be asked for at any time (`GET /spec-tasks/{id}/report`).

use std::path::Path;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::*;

/// The subject of the commit that adds the report, so a rewritten report does not
/// list its own earlier version among the task's commits.
const REPORT_COMMIT: &str = "implementation report";

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionReport {
    #[schema(value_type = i64)]
    pub id: WorkSessionId,
    pub name: String,
    pub kind: WorkSessionKind,
    pub status: WorkSessionStatus,
    pub task_key: Option<String>,
    pub attempts: i64,
    /// From the session's creation to its last change.
    pub duration_ms: i64,
    pub merge_commit: Option<String>,
    /// The agent's last reported context use, in tokens, if it reported any.
    pub context_tokens: Option<i64>,
    /// The agent's last reported cost, if it reported one.
    pub cost_usd: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FinalReport {
    #[schema(value_type = i64)]
    pub spec_task_id: SpecTaskId,
    pub title: String,
    pub status: SpecTaskStatus,
    pub base_branch: String,
    pub task_branch: String,
    pub sessions: Vec<SessionReport>,
    /// Subjects of the commits on the task branch since the base branch, oldest first.
    pub commits: Vec<String>,
    /// From the first session's start to the last session's last change.
    pub duration_ms: i64,
    pub tasks_done: usize,
    pub tasks_skipped: usize,
    pub tasks_total: usize,
    /// The sum of the sessions' last reported costs.
    pub cost_usd: f64,
}

impl Implementer {
    pub async fn report(&self, spec_task_id: SpecTaskId) -> Result<FinalReport, ImplError> {
        let task = self.store.get_spec_task(spec_task_id).await?;
        let project = self.store.get_project(task.project_id).await?;
        let plan = self.store.list_implementation_tasks(task.id).await?;
        let all = self.store.list_work_sessions(task.id).await?;
        let mut sessions = Vec::new();
        for s in &all {
            let usage = self
                .store
                .list_transcript(s.id, 0)
                .await?
                .into_iter()
                .rev()
                .find(|e| e.kind == TranscriptKind::Usage)
                .map(|e| e.data);
            sessions.push(SessionReport {
                id: s.id,
                name: s.name.clone(),
                kind: s.kind,
                status: s.status,
                task_key: s
                    .implementation_task_id
                    .and_then(|id| plan.iter().find(|t| t.id == id))
                    .map(|t| t.key.clone()),
                attempts: s.attempt,
                duration_ms: (s.updated_at - s.created_at).num_milliseconds(),
                merge_commit: self.store.merge_commit(s.id).await?,
                context_tokens: usage.as_ref().and_then(|u| u["used"].as_i64()),
                cost_usd: usage.as_ref().and_then(|u| u["cost"].as_f64()),
            });
        }
        let duration_ms = match (
            all.iter().map(|s| s.created_at).min(),
            all.iter().map(|s| s.updated_at).max(),
        ) {
            (Some(a), Some(b)) => (b - a).num_milliseconds(),
            _ => 0,
        };
        let range = format!("{}..{}", project.settings.base_branch, task.branch);
        let commits = git::subjects(Path::new(&project.path), &range)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|s| !s.ends_with(REPORT_COMMIT))
            .collect();
        let count = |st: ImplementationTaskStatus| plan.iter().filter(|t| t.status == st).count();
        Ok(FinalReport {
            spec_task_id: task.id,
            title: task.title.clone(),
            status: task.status,
            base_branch: project.settings.base_branch.clone(),
            task_branch: task.branch.clone(),
            cost_usd: sessions.iter().filter_map(|s| s.cost_usd).sum(),
            sessions,
            commits,
            duration_ms,
            tasks_done: count(ImplementationTaskStatus::Done),
            tasks_skipped: count(ImplementationTaskStatus::Skipped),
            tasks_total: plan.len(),
        })
    }

    /// Writes the report to `history/report.md` on the task branch and commits it.
    pub(super) async fn commit_report(
        &self,
        task: &SpecTask,
        project: &Project,
    ) -> Result<(), ImplError> {
        let report = self.report(task.id).await?;
        let worktree = self.task_worktree(task);
        git::ensure_worktree(Path::new(&project.path), &worktree, &task.branch).await?;
        let spec_rel = spec_files::spec_dir_rel(project, task);
        let dir = worktree.join(&spec_rel).join("history");
        std::fs::create_dir_all(&dir).map_err(git::GitError::from)?;
        std::fs::write(dir.join("report.md"), render_markdown(&report))
            .map_err(git::GitError::from)?;
        git::commit_paths(
            &worktree,
            &[&spec_rel],
            &format!("spectask #{}: {REPORT_COMMIT}", task.id),
        )
        .await?;
        Ok(())
    }
}

fn seconds(ms: i64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// The report as markdown, for the spec folder and for people.
pub fn render_markdown(r: &FinalReport) -> String {
    let mut out = format!(
        "# Implementation report: {}\n\n- spec task: #{}\n- branch: `{}` (from `{}`)\n- tasks: {} done, {} skipped, {} in all\n- sessions: {}\n- duration: {}\n- cost: {}\n\n## Sessions\n\n| session | task | kind | status | attempts | duration | merge commit | context tokens |\n|---|---|---|---|---|---|---|---|\n",
        r.title,
        r.spec_task_id,
        r.task_branch,
        r.base_branch,
        r.tasks_done,
        r.tasks_skipped,
        r.tasks_total,
        r.sessions.len(),
        seconds(r.duration_ms),
        if r.cost_usd > 0.0 {
            format!("${:.4}", r.cost_usd)
        } else {
            "not reported".to_string()
        },
    );
    for s in &r.sessions {
        out.push_str(&format!(
            "| {} {} | {} | {} | {} | {} | {} | {} | {} |\n",
            s.id,
            s.name.replace('|', "/"),
            s.task_key.as_deref().unwrap_or("-"),
            s.kind,
            s.status,
            s.attempts,
            seconds(s.duration_ms),
            s.merge_commit
                .as_deref()
                .map_or("-".to_string(), |c| format!("`{}`", &c[..c.len().min(10)])),
            s.context_tokens.map_or("-".to_string(), |t| t.to_string()),
        ));
    }
    out.push_str("\n## Commits\n\n");
    for c in &r.commits {
        out.push_str(&format!("- {c}\n"));
    }
    out
}
