//! A spec folder on disk: reading its documents, writing `spec.json`, and where a
//! task's worktree and spec folder are.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::domain::ids::*;
use crate::domain::spec_report::{self, SpecFiles, SpecReport};
use crate::domain::{Project, SpecTask};

pub const DOCUMENTS: [&str; 3] = ["requirements.md", "design.md", "tasks.md"];
pub const SPEC_JSON: &str = "spec.json";

/// Where a task's worktree (its branch, checked out for spectask) lives.
pub fn task_worktree(tasks_dir: &Path, task: &SpecTask) -> PathBuf {
    tasks_dir.join(task.id.to_string()).join("worktree")
}

/// The task's own bare repository, of which its session worktrees are worktrees
/// (see `git::ensure_task_repo`).
pub fn task_repo(tasks_dir: &Path, task_id: SpecTaskId) -> PathBuf {
    tasks_dir.join(task_id.to_string()).join("repo.git")
}

/// The task's spec folder, relative to the repository root.
pub fn spec_dir_rel(project: &Project, task: &SpecTask) -> String {
    format!(
        "{}/{}",
        project.settings.spec_folder.trim_end_matches('/'),
        task.spec_dir_name
    )
}

/// The task's `tasks.md`, relative to the repository root (the same in the task's
/// worktree and in each session's).
pub fn tasks_md_rel(project: &Project, task: &SpecTask) -> String {
    format!("{}/tasks.md", spec_dir_rel(project, task))
}

/// Reads the documents of a spec folder (spec-kit's `spec.md` stands in for a
/// missing `requirements.md`, and so does a Kiro bugfix spec's `bugfix.md`).
pub fn read(dir: &Path) -> SpecFiles {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .ok()
            .map(|t| (name.to_string(), t))
    };
    SpecFiles {
        requirements: read("requirements.md")
            .or_else(|| read("spec.md"))
            .or_else(|| read("bugfix.md")),
        design: read("design.md").or_else(|| read("plan.md")),
        tasks: read("tasks.md"),
    }
}

pub fn check(dir: &Path) -> SpecReport {
    spec_report::check(&read(dir))
}

/// The metadata spectask keeps beside the documents.
pub fn spec_json(task: &SpecTask, version: i64, status: &str, extra: Value) -> String {
    let mut doc = json!({
        "spec_task": task.id,
        "feature": task.slug,
        "title": task.title,
        "branch": task.branch,
        "version": version,
        "status": status,
        "documents": DOCUMENTS,
    });
    if let (Some(map), Value::Object(more)) = (doc.as_object_mut(), extra) {
        map.extend(more);
    }
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

/// Fills `{{name}}` placeholders.
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{{{name}}}}}"), value);
    }
    out
}
