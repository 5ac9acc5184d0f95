//! The dashboard in real headless Chromium against the real binary: `spectask serve`
//! on port 0 with a fresh data dir, the scripted agent as the planning agent, and
//! `node web/tests/dashboard.mjs` driving Debian's Chromium through playwright-core
//! (sign in with the printed link, the board live while planning runs, spec review,
//! a refused approval, sign-out). Screenshots go to `target/screenshots/`.
//!
//! Needs `npm ci --prefix web` and `scripts/install-browser`; nothing is skipped when
//! they are missing: the test fails and says what to run.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::app::git;
use common::spec::{REQUIREMENTS, TASKS};

/// The whole browser scenario must end within this.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(300);

/// A repository whose planning prompt the scripted agent follows: it writes a valid
/// spec whose design names the version (so versions differ), after a short pause so
/// the card is seen in the planning column.
fn repository(dir: &Path) -> PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join(".spectask")).unwrap();
    let esc = |t: &str| t.replace('\n', "\\n");
    let template = format!(
        "say reading the repository\nsleep 700\nthink requirements first\n\
         write {{{{spec_dir}}}}/requirements.md {}\n\
         write {{{{spec_dir}}}}/design.md # Design v{{{{version}}}}\\n\\nA session table and two endpoints.\\n\n\
         write {{{{spec_dir}}}}/tasks.md {}\n\
         say planned version {{{{version}}}}\n",
        esc(REQUIREMENTS),
        esc(TASKS)
    );
    std::fs::write(repo.join(".spectask/planning.md"), template).unwrap();
    std::fs::write(repo.join("README.md"), "# a project\n").unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "init"]);
    repo
}

#[test]
fn dashboard_in_headless_chromium() {
    browser::require_tools();
    let dir = tempfile::tempdir().unwrap();
    let repo = repository(dir.path());
    let server = browser::serve(&dir.path().join("data"));
    let passed = browser::run_scenario(
        "dashboard.mjs",
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
