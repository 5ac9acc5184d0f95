//! The cluster page in real headless Chromium against the real binary: two
//! `spectask serve --cluster` replicas (`a` and `b`, each its own data dir) on one
//! fresh PostgreSQL database, room for one task each, and a plain server beside
//! them; `node web/tests/cluster.mjs` drives Debian's Chromium: both replicas
//! running, a held task under its replica linking to the task page, a third task
//! waiting for room, 375 px and dark mode, and the plain server saying it runs
//! alone. Screenshots go to `target/screenshots/`
//! (`cluster-*`).
//!
//! Needs `npm ci --prefix web`, `scripts/install-browser` and PostgreSQL (see
//! `tests/common/db.rs`); nothing is skipped when they are missing: the test fails
//! and says what to run.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::time::Duration;

use common::db::{Backend, TestDb};

/// The whole browser scenario must end within this.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(300);

#[test]
fn cluster_page_in_headless_chromium() {
    browser::require_tools();
    let db = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(TestDb::new(Backend::Postgres));
    let dir = tempfile::tempdir().unwrap();
    let repo = common::plan::script_repo(dir.path());
    let replica = |name: &str| {
        browser::serve_with(
            &dir.path().join(name),
            &[
                "--cluster",
                "--replica-id",
                name,
                "--max-agents",
                "1",
                "--database-url",
                db.url(),
            ],
        )
    };
    let a = replica("a");
    let b = replica("b");
    let alone = browser::serve(&dir.path().join("alone"));
    let passed = browser::run_scenario(
        "cluster.mjs",
        &[
            ("SPECTASK_URL", a.url.clone()),
            ("SPECTASK_SIGN_IN", a.sign_in.clone()),
            ("SPECTASK_TOKEN", a.token.clone()),
            ("SPECTASK_REPO", repo.to_string_lossy().into_owned()),
            ("SPECTASK_ALONE_URL", alone.url.clone()),
            ("SPECTASK_ALONE_SIGN_IN", alone.sign_in.clone()),
            ("SPECTASK_SCREENSHOTS", browser::screenshots()),
        ],
        SCENARIO_TIMEOUT,
    );
    // The replicas hand their leases back as they stop, before the database goes.
    drop((b, a, alone));
    drop(db);
    assert!(passed, "the browser scenario failed (its output is above)");
}
