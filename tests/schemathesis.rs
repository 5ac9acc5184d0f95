//! The OpenAPI document is complete and true: schemathesis (installed by
//! `scripts/install-schemathesis`) runs every phase (examples, coverage, fuzzing,
//! stateful) with `--checks all` against a live server with a fresh database,
//! authenticated with the admin token, and must find nothing: no server error, no
//! response that breaks its schema, no undocumented status code, no schema-valid
//! request refused, no invalid one accepted.
//!
//! On SQLite and on PostgreSQL. The orchestrator's background loops are off, so a
//! lifecycle action records the status change and nothing moves a task behind
//! schemathesis' back; the agent profile is the scripted test agent, so
//! `agent/restart` starts a real process. Long polls answer within a second. The
//! seed is fixed (the same requests each run); `SPECTASK_SCHEMATHESIS_SEED` and
//! `SPECTASK_SCHEMATHESIS_EXAMPLES` (default 30 per operation) explore further.
//! Reports (JUnit) land in `target/schemathesis/report/<backend>/`.
//!
//! Two operations are left out: revoking a token (schemathesis would revoke the one
//! it calls with; tests/api.rs covers it) and the WebSocket (an upgrade, not a JSON
//! operation). `tests/schemathesis/hooks.py` works around one bug of schemathesis
//! itself (a null picked out of a wildcard link sent as `None`).

mod common;

use std::path::PathBuf;
use std::time::Instant;

use common::app::spawn_app_with;
use common::db::Backend;
use serde_json::json;
use spectask::agents::profile::AgentProfile;

const AGENT: &str = env!("CARGO_BIN_EXE_spectask-test-agent");

fn schemathesis() -> PathBuf {
    let st = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/schemathesis/venv/bin/st");
    assert!(
        st.exists(),
        "{} is missing: run scripts/install-schemathesis",
        st.display()
    );
    st
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_on_sqlite() {
    schemathesis_finds_nothing(Backend::Sqlite, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_on_postgres() {
    schemathesis_finds_nothing(Backend::Postgres, "postgres").await;
}

async fn schemathesis_finds_nothing(backend: Backend, name: &str) {
    let st = schemathesis();
    // Long polls answer within a second here (sooner than `wait` is allowed).
    spectask::api::set_long_poll_limit(std::time::Duration::from_secs(1));
    let app = spawn_app_with(backend, |config| {
        config
            .agent_profiles
            .insert("test".into(), AgentProfile::new(AGENT, &[]));
        config.default_agent = "test".into();
    })
    .await;
    // Something to find: a project, a task in each of a few states, a session-less
    // task's shared state and a coordination message.
    let project = app.project().await;
    let task = app.task(project, "Add a login page").await;
    app.task(project, "Write the docs").await;
    let (status, body) = app
        .post(
            &format!("/api/v1/spec-tasks/{task}/start-planning"),
            json!({}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (status, body) = app
        .post(
            &format!("/api/v1/spec-tasks/{task}/coordination"),
            json!({ "kind": "notification", "message": "hello" }),
        )
        .await;
    assert!(status.is_success(), "{body}");
    // A spec in review (versions, documents, a comment) and one approved, with a
    // spawned session, so the review and session routes have something to find.
    let files = json!({
        "requirements.md": common::spec::REQUIREMENTS,
        "design.md": common::spec::DESIGN,
        "tasks.md": common::spec::TASKS,
    });
    let mut imported = Vec::new();
    for title in ["Log in", "Log out"] {
        let (status, body) = app
            .post(
                "/api/v1/spec-tasks/import",
                json!({ "project_id": project, "title": title, "files": files }),
            )
            .await;
        assert!(status.is_success(), "{body}");
        imported.push(body["id"].as_i64().unwrap());
    }
    let (status, body) = app
        .post(
            &format!(
                "/api/v1/spec-tasks/{}/spec-versions/1/comments",
                imported[0]
            ),
            json!({ "document": "design.md", "line_start": 1, "body": "Which table?" }),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (status, body) = app
        .post(
            &format!("/api/v1/spec-tasks/{}/approve", imported[1]),
            json!({}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (status, body) = app
        .post(
            &format!("/api/v1/spec-tasks/{}/sessions", imported[1]),
            json!({ "name": "Docs", "prompt": "say hello" }),
        )
        .await;
    assert!(status.is_success(), "{body}");

    let report_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/schemathesis/report")
        .join(name);
    let _ = std::fs::remove_dir_all(&report_dir);
    std::fs::create_dir_all(&report_dir).unwrap();
    let max_examples = std::env::var("SPECTASK_SCHEMATHESIS_EXAMPLES").unwrap_or("30".into());
    let started = Instant::now();
    let out = tokio::process::Command::new(&st)
        .arg("--config-file")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/schemathesis/schemathesis.toml"
        ))
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", app.url))
        .args(["--checks", "all"])
        // Revoking a token would revoke the one schemathesis calls with (tests/api.rs
        // covers it); the WebSocket is an upgrade, not a JSON operation (tests/ws.rs).
        .args(["--exclude-path", "/api/v1/tokens/{id}/revoke"])
        .args(["--exclude-path", "/api/v1/events/ws"])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--max-examples", &max_examples])
        .args([
            "--seed",
            &std::env::var("SPECTASK_SCHEMATHESIS_SEED").unwrap_or("7".into()),
        ])
        .args(["--workers", "2"])
        .args(["--generation-database", "none"])
        .args(["--request-timeout", "40"])
        .arg("--no-color")
        .arg("-H")
        .arg(format!("Authorization: Bearer {}", app.token))
        .args(["--report", "junit"])
        .arg("--report-dir")
        .arg(&report_dir)
        .current_dir(&report_dir)
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env(
            "PYTHONPATH",
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis"),
        )
        .output()
        .await
        .expect("running schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "schemathesis on {name} took {:.1}s\n{stdout}\n{stderr}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success(),
        "schemathesis found problems (exit {:?}); its output is above",
        out.status.code()
    );
    app.shutdown().await;
}
