//! The session page in real headless Chromium against the real binary: `spectask
//! serve` on port 0 with a fresh data dir and the scripted agent as the default
//! agent, a project whose permission policy is `ask`, and `node web/tests/session.mjs`
//! driving Debian's Chromium: the transcript streams while the agent runs, a write
//! shows its diff, a permission request is answered from the page and the session
//! goes on to finish. Screenshots go to `target/screenshots/` (`session-*`).
//!
//! Needs `npm ci --prefix web` and `scripts/install-browser`; nothing is skipped when
//! they are missing: the test fails and says what to run.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::app::git;

/// The whole browser scenario must end within this.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(300);

/// A repository whose implementation prompt is the plan task's details, so the
/// scripted agent does what the plan's sub-items say.
fn repository(dir: &Path) -> PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join(".spectask")).unwrap();
    std::fs::write(repo.join(".spectask/implementation.md"), "{{details}}\n").unwrap();
    std::fs::write(repo.join("README.md"), "# a project\n").unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "init"]);
    repo
}

#[test]
fn session_page_in_headless_chromium() {
    browser::require_tools();
    let dir = tempfile::tempdir().unwrap();
    let repo = repository(dir.path());
    let server = browser::serve(&dir.path().join("data"));
    let passed = browser::run_scenario(
        "session.mjs",
        &[
            ("SPECTASK_URL", server.url.clone()),
            ("SPECTASK_SIGN_IN", server.sign_in.clone()),
            ("SPECTASK_TOKEN", server.token.clone()),
            ("SPECTASK_REPO", repo.to_string_lossy().into_owned()),
            ("SPECTASK_SCREENSHOTS", browser::screenshots()),
        ],
        SCENARIO_TIMEOUT,
    );
    drop(server);
    assert!(passed, "the browser scenario failed (its output is above)");
}
