//! The notification center and the webhooks page in real headless Chromium against
//! the real binary: `spectask serve` with the scripted agent planning and
//! implementing a plan whose two parallel tasks write the same file differently
//! (project `conflict_policy = wait`, `permission_policy = ask`), and
//! `node web/tests/inbox.mjs` following it from the notification center: the spec
//! ready for review, a permission answered in place, the conflict retried from the
//! center (a conflict-fixing session resolves it), the run going on to its review;
//! webhooks delivering it all to a receiver the scenario runs. Screenshots go to
//! `target/screenshots/` (`inbox-*`, `webhooks-*`).
//!
//! Needs `npm ci --prefix web` and `scripts/install-browser`; nothing is skipped when
//! they are missing: the test fails and says what to run.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::app::git;
use common::spec::REQUIREMENTS;

/// The plan the scripted planner writes: task 1 asks a person first, so task 2
/// merges first and task 1's merge of the same new file conflicts.
const PLAN: &str = "# Implementation Plan

- [ ] 1. Left side
  - ask Write the left side?
  - write shared.txt left
- [ ] 2. Right side (P)
  - sleep 300
  - write shared.txt right
";

/// A repository whose prompt templates the scripted agent follows: planning writes
/// a valid spec with [`PLAN`], a task runs its details, and the conflict fixer
/// keeps both sides.
fn repository(dir: &Path) -> PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join(".spectask")).unwrap();
    let esc = |t: &str| t.replace('\n', "\\n");
    let planning = format!(
        "say reading the repository\n\
         write {{{{spec_dir}}}}/requirements.md {}\n\
         write {{{{spec_dir}}}}/design.md # Design\\n\\nOne shared file, two sides.\\n\n\
         write {{{{spec_dir}}}}/tasks.md {}\n\
         say planned version {{{{version}}}}\n",
        esc(REQUIREMENTS),
        esc(PLAN)
    );
    let files = [
        (".spectask/planning.md", planning.as_str()),
        (".spectask/implementation.md", "{{details}}\n"),
        (
            ".spectask/conflict.md",
            "write shared.txt left\\nright\\n\n",
        ),
        ("README.md", "# a project\n"),
    ];
    for (path, text) in files {
        std::fs::write(repo.join(path), text).unwrap();
    }
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "init"]);
    repo
}

#[test]
fn notification_center_and_webhooks_in_headless_chromium() {
    browser::require_tools();
    let dir = tempfile::tempdir().unwrap();
    let repo = repository(dir.path());
    let server = browser::serve(&dir.path().join("data"));
    let passed = browser::run_scenario(
        "inbox.mjs",
        &[
            ("SPECTASK_URL", server.url.clone()),
            ("SPECTASK_SIGN_IN", server.sign_in.clone()),
            ("SPECTASK_TOKEN", server.token.clone()),
            ("SPECTASK_REPO", repo.to_string_lossy().into_owned()),
            ("SPECTASK_SCREENSHOTS", browser::screenshots()),
        ],
        Duration::from_secs(300),
    );
    drop(server);
    assert!(passed, "the browser scenario failed (its output is above)");
}
