//! Importing a spec written elsewhere (a Kiro `.kiro/specs/<name>/` folder or a
//! spec-kit `specs/NNN-name/` folder) as a new SpecTask whose version 1 is that spec,
//! ready for review.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::review::ReviewError;
use super::spec_files::{self, SPEC_JSON};
use crate::domain::*;
use crate::git;
use crate::store::{NewSpecTask, Store};

pub struct ImportRequest {
    pub project_id: ProjectId,
    pub title: String,
    /// Where it came from, for the prompt and the commit message.
    pub source: String,
    /// File name to content; names are plain file names (no folders).
    pub files: BTreeMap<String, String>,
}

/// A file name an import may carry: one markdown (or `.config.kiro`/JSON) file,
/// never a path.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != SPEC_JSON
        && !name.contains(['/', '\\'])
        && name != "."
        && name != ".."
        && (name.ends_with(".md") || name.ends_with(".json") || name == ".config.kiro")
}

pub async fn import(
    store: &Arc<dyn Store>,
    tasks_dir: &std::path::Path,
    req: ImportRequest,
) -> Result<SpecTask, ReviewError> {
    if let Some(bad) = req.files.keys().find(|n| !valid_name(n)) {
        return Err(ReviewError::Invalid(format!(
            "files: {bad:?} is not a spec file name (plain names of .md files, no folders)"
        )));
    }
    if !req.files.contains_key("tasks.md") {
        return Err(ReviewError::Invalid(
            "files: a spec needs a tasks.md".into(),
        ));
    }
    if req.title.trim().is_empty() {
        return Err(ReviewError::Invalid("title: must not be empty".into()));
    }
    let project = store.get_project(req.project_id).await?;
    // Checked before the task exists, so a refusal leaves nothing behind.
    let base = &project.settings.base_branch;
    if git::branch_head(std::path::Path::new(&project.path), base)
        .await?
        .is_none()
    {
        return Err(ReviewError::Refused(format!(
            "the project's base branch {base:?} does not exist or has no commits yet"
        )));
    }
    let task = store
        .create_spec_task(
            NewSpecTask {
                project_id: project.id,
                title: req.title.trim().to_string(),
                description: format!("Imported from {}", req.source),
                prompt: format!("Implement the imported spec {}.", req.source),
                priority: Priority::Medium,
                task_type: TaskType::Feature,
                max_parallel_sessions: None,
                agent_profile: None,
            },
            "import",
        )
        .await?;
    let repo = PathBuf::from(&project.path);
    let worktree = spec_files::task_worktree(tasks_dir, &task);
    git::ensure_branch(&repo, &task.branch, &project.settings.base_branch).await?;
    git::ensure_worktree(&repo, &worktree, &task.branch).await?;
    let rel = spec_files::spec_dir_rel(&project, &task);
    let dir = worktree.join(&rel);
    std::fs::create_dir_all(&dir).map_err(git::GitError::from)?;
    for (name, text) in &req.files {
        std::fs::write(dir.join(name), text).map_err(git::GitError::from)?;
    }
    let meta = serde_json::json!({ "imported_from": req.source });
    std::fs::write(
        dir.join(SPEC_JSON),
        spec_files::spec_json(&task, 1, "in_review", meta),
    )
    .map_err(git::GitError::from)?;
    let message = format!(
        "spectask #{}: spec v1 (imported from {})",
        task.id, req.source
    );
    let commit = git::commit_paths(&worktree, &[&rel], &message)
        .await?
        .ok_or_else(|| ReviewError::Invalid("the imported spec is empty".into()))?;
    store
        .create_spec_version(task.id, &commit, "import")
        .await?;
    Ok(store
        .transition_spec_task(task.id, &|_| SpecTaskEvent::Imported, "import")
        .await?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_plain_spec_file_names() {
        for ok in ["tasks.md", "spec.md", ".config.kiro", "tasks.meta.json"] {
            assert!(super::valid_name(ok), "{ok}");
        }
        for bad in ["../x.md", "a/b.md", "spec.json", "run.sh", "", ".."] {
            assert!(!super::valid_name(bad), "{bad}");
        }
    }
}
