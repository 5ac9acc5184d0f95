//! What a work session changed, read back from git and the event log: its commits,
//! the files they touch, and its latest verification run. Read-only; behind
//! `GET /sessions/{id}/changes` (the session page).

use std::path::Path;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::ids::*;
use crate::git;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CommitInfo {
    pub sha: String,
    pub subject: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Verification {
    pub command: String,
    pub passed: bool,
    /// The tail of what it printed (stdout, then stderr).
    pub output: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SessionChanges {
    /// The session branch's own commits, oldest first.
    pub commits: Vec<CommitInfo>,
    /// The files they change.
    pub files: Vec<String>,
    /// The latest run of the project's verification command; `null` when none ran.
    pub verification: Option<Verification>,
}

/// The changes of a session (404 when there is none). Before its merge they are
/// what its branch has beyond the task branch; after, what the merge brought in.
pub async fn session_changes(
    store: &dyn Store,
    session_id: WorkSessionId,
) -> Result<SessionChanges, StoreError> {
    let session = store.get_work_session(session_id).await?;
    let task = store.get_spec_task(session.spec_task_id).await?;
    let project = store.get_project(task.project_id).await?;
    let verification = store
        .latest_event_of("work_session", session_id.0, "work_session.verified")
        .await?
        .map(|e| Verification {
            command: e.data["command"].as_str().unwrap_or_default().to_string(),
            passed: e.data["passed"].as_bool().unwrap_or(false),
            output: e.data["output"].as_str().unwrap_or_default().to_string(),
            at: e.created_at,
        });
    let (mut commits, mut files) = (Vec::new(), Vec::new());
    if let Some(branch) = &session.branch {
        let merge_of_session = store.merge_commit(session_id).await?;
        let base = match &merge_of_session {
            Some(merge) => format!("{merge}^1"),
            None => task.branch.clone(),
        };
        // Until it is merged the branch lives in the task's own repository, which
        // its worktree belongs to; after, the user's repository has it.
        let task_repo = session
            .worktree_path
            .as_deref()
            .and_then(|w| Path::new(w).parent()?.parent().map(|t| t.join("repo.git")));
        let repo = match (&session.worktree_path, &task_repo) {
            (Some(w), _) if Path::new(w).join(".git").exists() => Path::new(w),
            (_, Some(r)) if r.exists() && merge_of_session.is_none() => r.as_path(),
            _ => Path::new(&project.path),
        };
        // A branch removed since (or never made) has nothing to show.
        match git::commits(repo, &format!("{base}..{branch}")).await {
            Ok(list) => {
                commits = list
                    .into_iter()
                    .map(|(sha, subject)| CommitInfo { sha, subject })
                    .collect()
            }
            Err(e) => {
                tracing::debug!(session = session_id.0, error = %e, "reading a session's commits")
            }
        }
        match git::files_in_range(repo, &format!("{base}...{branch}")).await {
            Ok(list) => files = list.into_iter().filter(|f| !f.is_empty()).collect(),
            Err(e) => {
                tracing::debug!(session = session_id.0, error = %e, "reading a session's files")
            }
        }
    }
    Ok(SessionChanges {
        commits,
        files,
        verification,
    })
}
