//! What the agent panel and the session page use, against real agent processes: the
//! emergency stop-all holds every agent (nothing starts them again, no attempt is
//! spent) until a person restarts each; the CPU and memory samples over time; a
//! session's commits, files and verification output.

mod common;

use std::time::Duration;

use common::app::TestApp;
use common::plan::{
    approved_plan, commit_templates, drive, scripted_app, set_project, wait_for, wait_status,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use spectask::agents::runtime::Timeouts;

async fn app() -> TestApp {
    scripted_app(|config| {
        config.agent_timeouts = Timeouts {
            sample_every: Duration::from_millis(100),
            ..Timeouts::default()
        };
    })
    .await
}

fn alive(pid: i64) -> bool {
    // SAFETY: signal 0 only asks whether the process exists.
    unsafe { libc::kill(pid as i32, 0) == 0 }
}

async fn instance(app: &TestApp, task: i64) -> Value {
    app.get(&format!("/api/v1/spec-tasks/{task}/agent")).await.1
}

async fn sessions(app: &TestApp, task: i64) -> Vec<Value> {
    let (_, list) = app
        .get(&format!("/api/v1/spec-tasks/{task}/sessions"))
        .await;
    list.as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_all_holds_every_agent_until_a_person_restarts_it() {
    let app = app().await;
    let (project, repo) = app.project_with_repo().await;
    commit_templates(&repo, &[("implementation.md", "{{details}}\n")]);
    let mut tasks = Vec::new();
    for name in ["a", "b"] {
        // The first attempt hangs until it is interrupted; a resumed one goes on
        // (the marker is in the agent's temporary folder, outside the worktree).
        let plan = format!(
            "# Implementation Plan\n\n- [ ] 1. Work\n  - say working\n  - once $TMPDIR/{name} hang\n  - write {name}.txt {name}\n"
        );
        tasks.push(approved_plan(&app, project, name, &plan).await);
    }
    let driver = drive(&app);
    let mut pids = Vec::new();
    for &task in &tasks {
        let pid = wait_for(&app, "the agent to be working", || async {
            let i = instance(&app, task).await;
            let working = sessions(&app, task)
                .await
                .iter()
                .any(|s| s["status"] == "running");
            (i["status"] == "ready" && working)
                .then(|| i["pid"].as_i64())
                .flatten()
        })
        .await;
        pids.push(pid);
    }
    wait_for(&app, "both agents to reach their hang", || async {
        let mut hanging = 0;
        for &task in &tasks {
            let s = sessions(&app, task).await;
            let (_, t) = app
                .get(&format!("/api/v1/sessions/{}/transcript", s[0]["id"]))
                .await;
            hanging += usize::from(
                t.as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["content"] == "working"),
            );
        }
        (hanging == 2).then_some(())
    })
    .await;

    let (status, body) = app.post("/api/v1/agents/stop-all", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["stopped"], 2);
    for (&task, &pid) in tasks.iter().zip(&pids) {
        let i = instance(&app, task).await;
        assert_eq!(i["status"], "stopped", "{i}");
        assert!(i["held_at"].is_string(), "{i}");
        assert!(!alive(pid), "agent {pid} still runs");
    }
    wait_for(&app, "the sessions to wait, interrupted", || async {
        let mut waiting = true;
        for &task in &tasks {
            waiting &= sessions(&app, task).await[0]["status"] == "interrupted";
        }
        waiting.then_some(())
    })
    .await;
    // Steps of the orchestrator start nothing on a held agent and spend no attempt.
    driver.abort();
    for _ in 0..3 {
        app.implementer.run_once().await.unwrap();
    }
    for &task in &tasks {
        assert_eq!(instance(&app, task).await["status"], "stopped");
        let s = &sessions(&app, task).await[0];
        assert_eq!(
            (s["status"].as_str(), s["attempt"].as_i64()),
            (Some("interrupted"), Some(1)),
            "{s}"
        );
        let (_, overview) = app
            .get(&format!("/api/v1/spec-tasks/{task}/overview"))
            .await;
        assert!(overview["instance"]["held_at"].is_string());
        // The task says why nothing moves.
        assert_eq!(overview["idle"], true, "{overview}");
        assert!(
            overview["needs_person"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["kind"] == "agent_stopped"),
            "{overview}"
        );
    }
    // A second stop-all has nothing left to stop.
    let (_, body) = app.post("/api/v1/agents/stop-all", json!({})).await;
    assert_eq!(body["stopped"], 0);

    // Restarting one task's agent resumes that task only.
    let driver = drive(&app);
    let (status, body) = app
        .post(
            &format!("/api/v1/spec-tasks/{}/agent/restart", tasks[0]),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["held_at"].is_null(), "{body}");
    wait_status(&app, tasks[0], "implementation_review").await;
    assert_eq!(instance(&app, tasks[1]).await["status"], "stopped");
    assert_eq!(sessions(&app, tasks[1]).await[0]["status"], "interrupted");
    app.post(
        &format!("/api/v1/spec-tasks/{}/agent/restart", tasks[1]),
        json!({}),
    )
    .await;
    wait_status(&app, tasks[1], "implementation_review").await;
    driver.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_over_time_and_a_sessions_commits_files_and_verification() {
    let app = app().await;
    let (project, repo) = app.project_with_repo().await;
    commit_templates(&repo, &[("implementation.md", "{{details}}\n")]);
    set_project(
        &app,
        project,
        json!({ "verification_command": "cat one.txt" }),
    )
    .await;
    let plan = "# Implementation Plan\n\n- [ ] 1. One\n  - write one.txt one\n  - sleep 600\n";
    let task = approved_plan(&app, project, "one", plan).await;
    let (status, none) = app
        .get(&format!("/api/v1/spec-tasks/{task}/agent/samples"))
        .await;
    assert_eq!((status, none), (StatusCode::OK, json!([])));
    let driver = drive(&app);
    wait_status(&app, task, "implementation_review").await;
    driver.abort();

    // The sampler ran every 100 ms while the agent worked.
    let (_, samples) = app
        .get(&format!("/api/v1/spec-tasks/{task}/agent/samples"))
        .await;
    let samples = samples.as_array().unwrap();
    assert!(samples.len() >= 2, "{samples:?}");
    assert!(samples.iter().all(|s| s["rss_bytes"].as_i64().unwrap() > 0));
    // Compared as times: RFC 3339 text leaves out a zero fraction ("…:18Z" is
    // before "…:18.100Z" but sorts after it).
    let at = |s: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(s["at"].as_str().unwrap()).unwrap()
    };
    assert!(
        samples.windows(2).all(|w| at(&w[0]) <= at(&w[1])),
        "oldest first: {samples:?}"
    );

    let s = sessions(&app, task).await;
    let (status, changes) = app
        .get(&format!("/api/v1/sessions/{}/changes", s[0]["id"]))
        .await;
    assert_eq!(status, StatusCode::OK, "{changes}");
    assert_eq!(changes["files"], json!(["one.txt"]), "{changes}");
    let commits = changes["commits"].as_array().unwrap();
    assert!(
        commits
            .iter()
            .any(|c| c["subject"].as_str().unwrap().contains("task 1")
                && c["sha"].as_str().unwrap().len() == 40),
        "{changes}"
    );
    let v = &changes["verification"];
    assert_eq!(
        (v["command"].as_str(), v["passed"].as_bool()),
        (Some("cat one.txt"), Some(true)),
        "{v}"
    );
    assert_eq!(v["output"], "one");
    let (status, _) = app.get("/api/v1/sessions/999/changes").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
