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

use std::time::Duration;

/// The whole browser scenario must end within this.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(300);

#[test]
fn session_page_in_headless_chromium() {
    browser::require_tools();
    let dir = tempfile::tempdir().unwrap();
    let repo = common::plan::script_repo(dir.path());
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
