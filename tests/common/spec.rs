//! A small valid spec, and a way to record it as a spec version the way the planner
//! does (on the task branch, in spectask's worktree), without an agent.

use spectask::domain::SpecTaskEvent;
use spectask::domain::ids::*;
use spectask::orchestrator::spec_files;

use super::app::TestApp;

pub const REQUIREMENTS: &str = "# Requirements Document

## Introduction

Users log in to see their data.

## Requirements

### Requirement 1: Log in

**User Story:** As a user, I want to log in, so that I can see my data.

#### Acceptance Criteria

1. WHEN a user submits valid credentials THEN the system SHALL start a session
2. IF the credentials are wrong THEN the system SHALL refuse the login

### Requirement 2: Log out

**User Story:** As a user, I want to log out, so that nobody else uses my session.

#### Acceptance Criteria

1. WHEN a user logs out THEN the system SHALL end the session
";

pub const DESIGN: &str = "# Design\n\nA session table and two endpoints.\n";

pub const TASKS: &str = "# Implementation Plan

- [ ] 1. Create the session table
  - _Requirements: 1.1_
- [ ] 2. Login endpoint
  - [ ] 2.1 Handler
  - _Requirements: 1.1, 1.2_
- [ ] 3. Logout endpoint (P)
  - _Requirements: 2.1_
  - _Depends: 1_
";

/// Writes the sample spec on the task branch, commits it, records it as the next
/// spec version and moves the task from `planning` to `spec_review`.
pub async fn record_version(app: &TestApp, task_id: i64, design: &str) -> i64 {
    record_spec(app, task_id, design, TASKS).await
}

/// Like [`record_version`], with a plan of one's own.
pub async fn record_spec(app: &TestApp, task_id: i64, design: &str, tasks: &str) -> i64 {
    let task = app.store.get_spec_task(SpecTaskId(task_id)).await.unwrap();
    let project = app.store.get_project(task.project_id).await.unwrap();
    let repo = std::path::PathBuf::from(&project.path);
    let worktree = spec_files::task_worktree(&app.data_dir.join("tasks"), &task);
    spectask::git::ensure_branch(&repo, &task.branch, &project.settings.base_branch)
        .await
        .unwrap();
    spectask::git::ensure_worktree(&repo, &worktree, &task.branch)
        .await
        .unwrap();
    let rel = spec_files::spec_dir_rel(&project, &task);
    let dir = worktree.join(&rel);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in [
        ("requirements.md", REQUIREMENTS),
        ("design.md", design),
        ("tasks.md", tasks),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let sha = spectask::git::commit_paths(&worktree, &[&rel], "test: spec")
        .await
        .unwrap()
        .unwrap();
    let version = app
        .store
        .create_spec_version(SpecTaskId(task_id), &sha, "system")
        .await
        .unwrap();
    app.store
        .transition_spec_task(
            SpecTaskId(task_id),
            &|_| SpecTaskEvent::SpecWritten,
            "system",
        )
        .await
        .unwrap();
    version.number
}
