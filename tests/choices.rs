//! What a project's settings and a person's decisions do to a running plan: a
//! conflict that waits for a person and is retried, a plan that ends in `done`
//! with its report, a message that reaches a busy session in a turn of its own,
//! and a running session cancelled through the API.

mod common;

use common::app::{TestApp, git};
use common::plan::{
    approved_plan, commit_templates, drive, pending_permission, scripted_app, set_project,
    wait_for, wait_status,
};
use reqwest::StatusCode;
use serde_json::json;
use spectask::domain::ids::*;
use spectask::domain::{TranscriptKind, WorkSessionKind, WorkSessionStatus};

/// Runs the real `spectask` binary against the app.
async fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_spectask"))
        .args(["--url", &app.url, "--token", &app.token])
        .args(args)
        .env_remove("SPECTASK_URL")
        .env_remove("SPECTASK_TOKEN")
        .output()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_waits_for_a_person_when_the_project_says_so_and_retry_resolves_it() {
    let app = scripted_app(|_| {}).await;
    let (project, repo) = app.project_with_repo().await;
    set_project(&app, project, json!({ "conflict_policy": "wait" })).await;
    commit_templates(
        &repo,
        &[
            ("implementation.md", "{{details}}\n"),
            ("conflict.md", "write shared.txt left\\nright\\n\n"),
        ],
    );
    let plan = "- [ ] 1. Left\n  - write shared.txt left\\n\n- [ ] 2. Right (P)\n  - sleep 200\n  - write shared.txt right\\n\n";
    let id = approved_plan(&app, project, "Conflicting", plan).await;
    let driver = drive(&app);
    let conflicted = wait_for(&app, "a conflicted session", || async {
        app.store
            .list_work_sessions(SpecTaskId(id))
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.status == WorkSessionStatus::Conflicted)
    })
    .await;
    // Nothing resolves it on its own: no fixer, the task still implementing, and
    // further steps change nothing.
    for _ in 0..3 {
        app.implementer.run_once().await.unwrap();
    }
    let sessions = app.store.list_work_sessions(SpecTaskId(id)).await.unwrap();
    assert!(
        sessions
            .iter()
            .all(|s| s.kind != WorkSessionKind::MergeConflict),
        "{sessions:?}"
    );
    let (_, task) = app.get(&format!("/api/v1/spec-tasks/{id}")).await;
    assert_eq!(task["status"], "implementing");
    let (_, coordination) = app
        .get(&format!("/api/v1/spec-tasks/{id}/coordination"))
        .await;
    assert!(
        coordination
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "conflict" && e["from_session_id"] == conflicted.id.0)
    );
    // Skipping a working session's task is refused; a bad decision is a 404.
    let (status, _) = app
        .post(
            &format!("/api/v1/sessions/{}/frobnicate", conflicted.id),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The person retries: a conflict-fixing session resolves it and the merge lands.
    let (status, body) = app
        .post(
            &format!("/api/v1/sessions/{}/retry", conflicted.id),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let done = wait_status(&app, id, "implementation_review").await;
    driver.abort();
    let branch = done["branch"].as_str().unwrap();
    assert_eq!(
        git(&repo, &["show", &format!("{branch}:shared.txt")]),
        "left\nright\n"
    );
    let fixer = app
        .store
        .list_work_sessions(SpecTaskId(id))
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.kind == WorkSessionKind::MergeConflict)
        .expect("a fixer after the retry");
    assert_eq!(fixer.parent_id, Some(conflicted.id));
    // Retrying a completed session is refused and changes nothing.
    let (status, _) = app
        .post(
            &format!("/api/v1/sessions/{}/retry", conflicted.id),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_without_implementation_review_ends_in_done_with_its_report() {
    let app = scripted_app(|_| {}).await;
    let (project, repo) = app.project_with_repo().await;
    set_project(&app, project, json!({ "review_implementation": false })).await;
    commit_templates(&repo, &[("implementation.md", "{{details}}\n")]);
    let plan =
        "- [ ] 1. One\n  - write one.txt 1\n  - usage 1200 200000 0.25\n  - say one is written\n";
    let id = approved_plan(&app, project, "Straight to done", plan).await;
    let driver = drive(&app);
    let done = wait_status(&app, id, "done").await;
    driver.abort();
    let (status, report) = app.get(&format!("/api/v1/spec-tasks/{id}/report")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["status"], "done");
    assert_eq!(report["tasks_done"], 1);
    let session = &report["sessions"][0];
    assert_eq!(session["status"], "completed");
    assert_eq!(session["attempts"], 1);
    assert_eq!(session["context_tokens"], 1200);
    assert_eq!(report["cost_usd"], 0.25);
    assert!(session["merge_commit"].as_str().unwrap().len() >= 40);
    let commits: Vec<&str> = report["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        commits.iter().any(|c| c.contains("merge task 1")),
        "{commits:?}"
    );
    let branch = done["branch"].as_str().unwrap();
    let spec = format!("specs/{}", done["spec_dir_name"].as_str().unwrap());
    let written = git(
        &repo,
        &["show", &format!("{branch}:{spec}/history/report.md")],
    );
    assert!(written.contains("- cost: $0.2500"), "{written}");
    assert!(
        written.contains("| 1 | implementation | completed | 1 |"),
        "{written}"
    );
    let (status, _) = app.get("/api/v1/spec-tasks/999/report").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The CLI prints the same report.
    let out = cli(&app, &["task", "report", &id.to_string()]).await;
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{printed}");
    assert!(
        printed.starts_with("# Implementation report: Straight to done"),
        "{printed}"
    );
    assert!(
        printed.contains("| 1 | implementation | completed | 1 |"),
        "{printed}"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_to_a_busy_session_is_delivered_in_a_turn_after_its_own() {
    let app = scripted_app(|_| {}).await;
    let (project, repo) = app.project_with_repo().await;
    // `ask` holds the turn on a permission request the test answers.
    set_project(&app, project, json!({ "permission_policy": "ask" })).await;
    commit_templates(&repo, &[("implementation.md", "{{details}}\n")]);
    let plan = "- [ ] 1. Busy\n  - ask May I write?\n  - write busy.txt busy\n";
    let id = approved_plan(&app, project, "Busy", plan).await;
    let driver = drive(&app);
    let pending = pending_permission(&app, id).await;
    let session = pending["work_session_id"].as_i64().unwrap();
    let (status, posted) = app
        .post(
            &format!("/api/v1/spec-tasks/{id}/coordination"),
            json!({ "kind": "request", "to_session_id": session, "message": "please also note the API version" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{posted}");
    let (status, _) = app
        .post(
            &format!("/api/v1/permissions/{}/answer", pending["id"]),
            json!({ "option_id": "allow" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    wait_status(&app, id, "implementation_review").await;
    driver.abort();
    // Two prompts: the task, then the message that arrived during it, which the
    // agent read (it echoes a prompt without commands) before the merge.
    let transcript = app
        .store
        .list_transcript(WorkSessionId(session), 0)
        .await
        .unwrap();
    let prompts: Vec<&str> = transcript
        .iter()
        .filter(|e| e.kind == TranscriptKind::Prompt)
        .map(|e| e.content.as_str())
        .collect();
    assert_eq!(prompts.len(), 2, "{prompts:?}");
    assert!(!prompts[0].contains("API version"));
    assert!(prompts[1].contains("[request from a person] please also note the API version"));
    assert!(
        transcript
            .iter()
            .any(|e| e.kind == TranscriptKind::Message
                && e.content.contains("echo: While you worked"))
    );
    let (_, coordination) = app
        .get(&format!("/api/v1/spec-tasks/{id}/coordination"))
        .await;
    let event = coordination
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == posted["id"])
        .unwrap()
        .clone();
    assert!(event["acknowledged_at"].is_string(), "{event}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_session_cancels_its_turn_and_its_task_and_merges_nothing() {
    let app = scripted_app(|_| {}).await;
    let (project, repo) = app.project_with_repo().await;
    set_project(&app, project, json!({ "permission_policy": "ask" })).await;
    commit_templates(&repo, &[("implementation.md", "{{details}}\n")]);
    let plan = "- [ ] 1. Doomed\n  - write doomed.txt x\n  - ask Go on?\n- [ ] 2. After\n  - write after.txt y\n";
    let id = approved_plan(&app, project, "Cancel one", plan).await;
    let driver = drive(&app);
    let pending = pending_permission(&app, id).await;
    let session = pending["work_session_id"].as_i64().unwrap();
    // A running session cannot be skipped, only cancelled.
    let (status, _) = app
        .post(&format!("/api/v1/sessions/{session}/skip"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = app
        .post(&format!("/api/v1/sessions/{session}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "cancelled");
    // Through the CLI, a second cancel is refused with the server's reason.
    let out = cli(&app, &["session", "cancel", &session.to_string()]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cancel"),
        "{out:?}"
    );
    // The turn ends (its permission request is answered `cancelled`) and nothing merges.
    wait_for(&app, "the permission request cancelled", || async {
        let (_, list) = app
            .get(&format!("/api/v1/permissions?spec_task={id}"))
            .await;
        list.as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == pending["id"] && p["status"] != "pending")
            .then_some(())
    })
    .await;
    // Task 2 waits on the cancelled task, so it cannot run either: it is cancelled
    // too, and the run ends for a person to look at (never `done` with work missing).
    wait_status(&app, id, "implementation_review").await;
    let (_, plan_now) = app
        .get(&format!("/api/v1/spec-tasks/{id}/implementation-tasks"))
        .await;
    assert_eq!(plan_now[0]["status"], "cancelled", "{plan_now}");
    assert_eq!(plan_now[1]["status"], "cancelled", "{plan_now}");
    // The work stays on the session's branch; the task branch has none of it.
    let (_, task) = app.get(&format!("/api/v1/spec-tasks/{id}")).await;
    let branch = task["branch"].as_str().unwrap();
    let log = git(&repo, &["log", "--format=%s", branch]);
    assert!(!log.contains("merge task 1"), "{log}");
    driver.abort();
    let s = app
        .store
        .get_work_session(WorkSessionId(session))
        .await
        .unwrap();
    assert_eq!(s.status, WorkSessionStatus::Cancelled);
    assert_eq!(
        app.store
            .merge_commit(WorkSessionId(session))
            .await
            .unwrap(),
        None
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_turn_ends_with_the_agents_own_answer_even_when_it_is_the_runs_last() {
    let app = scripted_app(|_| {}).await;
    let (project, repo) = app.project_with_repo().await;
    commit_templates(&repo, &[("implementation.md", "{{details}}\n")]);
    // The agent answers a cancel 500 ms late, as OpenCode does (~100 ms): the run
    // ends with this cancel, and stopping its agent must not cut that answer off.
    let plan = "- [ ] 1. Slow to cancel\n  - say working\n  - hang 500\n";
    let id = approved_plan(&app, project, "Slow cancel", plan).await;
    let driver = drive(&app);
    let session = wait_for(&app, "the turn under way", || async {
        for s in app.store.list_work_sessions(SpecTaskId(id)).await.unwrap() {
            let t = app.store.list_transcript(s.id, 0).await.unwrap();
            if t.iter()
                .any(|e| e.kind == TranscriptKind::Message && e.content.contains("working"))
            {
                return Some(s.id);
            }
        }
        None
    })
    .await;
    let (status, body) = app
        .post(&format!("/api/v1/sessions/{session}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    wait_status(&app, id, "implementation_review").await;
    let ended = wait_for(&app, "the turn's end", || async {
        let t = app.store.list_transcript(session, 0).await.unwrap();
        t.iter()
            .find(|e| matches!(e.kind, TranscriptKind::StopReason | TranscriptKind::Error))
            .map(|e| (e.kind, e.content.clone()))
    })
    .await;
    driver.abort();
    assert_eq!(ended, (TranscriptKind::StopReason, "Cancelled".to_string()));
    app.shutdown().await;
}
