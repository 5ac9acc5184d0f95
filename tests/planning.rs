//! Planning and spec review end to end, through the API, with the scripted agent as
//! the planning agent and real git: versions on the task branch, review comments,
//! request changes, approval into spec.json, and the user's checkout untouched.

mod common;

use std::path::Path;
use std::time::Duration;

use common::app::{TestApp, git, spawn_app_with};
use common::db::Backend;
use common::spec::{REQUIREMENTS, TASKS};
use reqwest::StatusCode;
use serde_json::{Value, json};
use spectask::agents::profile::AgentProfile;
use spectask::domain::ids::*;

const AGENT: &str = env!("CARGO_BIN_EXE_spectask-test-agent");
const WAIT: Duration = Duration::from_secs(30);

async fn app(extra: Vec<(&str, AgentProfile)>) -> TestApp {
    spawn_app_with(Backend::Sqlite, |config| {
        config
            .agent_profiles
            .insert("test".into(), AgentProfile::new(AGENT, &[]));
        for (name, p) in extra {
            config.agent_profiles.insert(name.into(), p);
        }
        config.default_agent = "test".into();
        config.background = true;
    })
    .await
}

/// The test agent's commands escape newlines as `\n`.
fn escaped(text: &str) -> String {
    text.replace('\n', "\\n")
}

/// A planning prompt the scripted agent follows: it writes a valid spec whose
/// design names the version, so versions differ.
fn planning_template() -> String {
    format!(
        "write {{{{spec_dir}}}}/requirements.md {}\nwrite {{{{spec_dir}}}}/design.md # Design v{{{{version}}}}\\n\\nA session table.\\n\nwrite {{{{spec_dir}}}}/tasks.md {}\nsay planned version {{{{version}}}}\n",
        escaped(REQUIREMENTS),
        escaped(TASKS)
    )
}

/// Waits, on the event log, until the task reaches `status`.
async fn wait_status(app: &TestApp, task: i64, status: &str) -> Value {
    let mut events = app.store.subscribe_events();
    tokio::time::timeout(WAIT, async {
        loop {
            let (_, body) = app.get(&format!("/api/v1/spec-tasks/{task}")).await;
            if body["status"] == status {
                return body;
            }
            assert!(
                body["status"] != "failed" || status == "failed",
                "the task failed: {}",
                body["failure_reason"]
            );
            events.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("task {task} never reached {status}"))
}

fn checkout_state(repo: &Path) -> (String, String, String) {
    (
        git(repo, &["symbolic-ref", "--short", "HEAD"]),
        git(repo, &["status", "--porcelain"]),
        std::fs::read_to_string(repo.join("README.md")).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_review_revise_approve_end_to_end() {
    let app = app(vec![]).await;
    let (project, repo) = app.project_with_repo().await;
    std::fs::create_dir_all(repo.join(".spectask")).unwrap();
    std::fs::write(repo.join(".spectask/planning.md"), planning_template()).unwrap();
    git(&repo, &["add", ".spectask"]);
    git(&repo, &["commit", "-qm", "planning template"]);
    // The user has work in progress: it must survive untouched.
    std::fs::write(repo.join("README.md"), "# a project\nwork in progress\n").unwrap();
    std::fs::write(repo.join("notes.txt"), "untracked").unwrap();
    let before = checkout_state(&repo);

    let (status, task) = app
        .post(
            "/api/v1/spec-tasks",
            json!({ "prompt": "Add login", "project_id": project }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = task["id"].as_i64().unwrap();
    let branch = task["branch"].as_str().unwrap().to_string();
    let (status, _) = app
        .post(
            &format!("/api/v1/spec-tasks/{id}/start-planning"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    wait_status(&app, id, "spec_review").await;

    // Version 1 is a commit on the task branch.
    let (_, versions) = app
        .get(&format!("/api/v1/spec-tasks/{id}/spec-versions"))
        .await;
    assert_eq!(versions.as_array().unwrap().len(), 1);
    let v1_sha = versions[0]["commit_sha"].as_str().unwrap().to_string();
    assert_eq!(git(&repo, &["rev-parse", &branch]).trim(), v1_sha);
    assert_eq!(
        git(&repo, &["log", "-1", "--format=%s %an", &branch]).trim(),
        format!("spectask #{id}: spec v1 spectask")
    );
    let spec_dir = format!("specs/{}", task["spec_dir_name"].as_str().unwrap());
    assert_eq!(
        git(
            &repo,
            &["show", &format!("{branch}:{spec_dir}/requirements.md")]
        ),
        REQUIREMENTS
    );
    let (status, v1) = app
        .get(&format!("/api/v1/spec-tasks/{id}/spec-versions/1"))
        .await;
    assert_eq!(status, StatusCode::OK, "{v1}");
    assert_eq!(v1["report"]["errors"], json!([]));
    assert_eq!(v1["diff_from_previous"], Value::Null);
    let design = v1["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "design.md")
        .unwrap();
    assert_eq!(design["raw"], "# Design v1\n\nA session table.\n");
    assert!(
        design["html"]
            .as_str()
            .unwrap()
            .contains("<h1>Design v1</h1>")
    );

    // Comments: anchored by line or quote; bad anchors are refused: 404 for a
    // document, lines or a quote that are not there, 422 for a request that breaks
    // the schema's rules.
    let comments = format!("/api/v1/spec-tasks/{id}/spec-versions/1/comments");
    for (bad, expected) in [
        (
            json!({ "document": "nope.md", "line_start": 1, "body": "x" }),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({ "document": "design.md", "line_start": 99, "body": "x" }),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({ "document": "design.md", "quote": "not in the text", "body": "x" }),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({ "document": "design.md", "body": "  " }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "document": "design.md", "line_end": 2, "body": "x" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "document": "design.md", "line_start": 0, "body": "x" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, body) = app.post(&comments, bad.clone()).await;
        assert_eq!(status, expected, "{bad}: {body}");
    }
    // A range given backwards is the same range.
    let (status, backwards) = app
        .post(
            &comments,
            json!({ "document": "design.md", "line_start": 2, "line_end": 1, "body": "x" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{backwards}");
    assert_eq!(
        (
            backwards["line_start"].as_i64(),
            backwards["line_end"].as_i64()
        ),
        (Some(1), Some(2))
    );
    let (status, body) = app
        .post(
            &format!("/api/v1/review-comments/{}/resolve", backwards["id"]),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, comment) = app
        .post(
            &comments,
            json!({ "document": "design.md", "line_start": 1, "body": "Name the tables" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{comment}");
    let (status, quoted) = app
        .post(&comments, json!({ "document": "requirements.md", "quote": "start a session", "body": "How long?" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{quoted}");
    let resolve = format!("/api/v1/review-comments/{}/resolve", quoted["id"]);
    assert_eq!(app.post(&resolve, json!({})).await.0, StatusCode::OK);
    assert_eq!(app.post(&resolve, json!({})).await.0, StatusCode::CONFLICT);

    // Request changes: the planner revises and version 2 differs from version 1.
    let (status, body) = app
        .post(
            &format!("/api/v1/spec-tasks/{id}/request-changes"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("planning"))
    );
    wait_status(&app, id, "spec_review").await;
    let (_, v2) = app
        .get(&format!("/api/v1/spec-tasks/{id}/spec-versions/2"))
        .await;
    let diff = v2["diff_from_previous"].as_str().unwrap();
    assert!(
        diff.contains("-# Design v1") && diff.contains("+# Design v2"),
        "{diff}"
    );
    assert_eq!(
        git(&repo, &["log", "-1", "--format=%s", &branch]).trim(),
        format!("spectask #{id}: spec v2 (changes requested: 1 comments)")
    );
    let sessions = app.store.list_work_sessions(SpecTaskId(id)).await.unwrap();
    let second_prompt = &sessions.last().unwrap().prompt;
    assert!(
        second_prompt.contains("(design.md line 1) Name the tables"),
        "{second_prompt}"
    );
    assert!(
        !second_prompt.contains("How long?"),
        "resolved comments are not sent"
    );
    let (_, v1_reviews) = app
        .get(&format!("/api/v1/spec-tasks/{id}/spec-versions/1"))
        .await;
    assert_eq!(v1_reviews["reviews"][0]["verdict"], "changes_requested");

    // Approve: spec.json on the task branch records who approved which commit.
    let v2_sha = v2["version"]["commit_sha"].as_str().unwrap().to_string();
    let (status, body) = app
        .post(&format!("/api/v1/spec-tasks/{id}/approve"), json!({}))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("implementing")),
        "{body}"
    );
    let spec_json: Value = serde_json::from_str(&git(
        &repo,
        &["show", &format!("{branch}:{spec_dir}/spec.json")],
    ))
    .unwrap();
    assert_eq!(spec_json["status"], "approved");
    assert_eq!(spec_json["approved_version"], 2);
    assert_eq!(spec_json["approved_commit"], v2_sha);
    assert!(
        spec_json["approved_by"]
            .as_str()
            .unwrap()
            .starts_with("token:")
    );
    assert!(
        git(&repo, &["log", "-1", "--format=%s", &branch]).contains("spec v2 approved by token:")
    );

    // The user's checkout is exactly as it was.
    assert_eq!(checkout_state(&repo), before);
    assert_eq!(
        std::fs::read_to_string(repo.join("notes.txt")).unwrap(),
        "untracked"
    );
    assert!(!repo.join("specs").exists());
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_spec_gets_one_follow_up_then_the_task_fails_with_the_report() {
    let scripts = tempfile::tempdir().unwrap();
    let never = scripts.path().join("never.txt");
    let fixed = scripts.path().join("fixed.txt");
    let app = app(vec![
        (
            "never",
            AgentProfile::new(AGENT, &["--script", never.to_str().unwrap()]),
        ),
        (
            "fixed",
            AgentProfile::new(AGENT, &["--script", fixed.to_str().unwrap()]),
        ),
    ])
    .await;
    let project = app.project().await;
    let task = |profile: &'static str| {
        let app = &app;
        async move {
            let (status, body) = app
                .post(
                    "/api/v1/spec-tasks",
                    json!({ "prompt": "Add login", "title": profile, "project_id": project, "agent_profile": profile }),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            (
                body["id"].as_i64().unwrap(),
                format!("specs/{}", body["spec_dir_name"].as_str().unwrap()),
            )
        }
    };
    let (bad, bad_dir) = task("never").await;
    let (good, good_dir) = task("fixed").await;
    // Turn 1 writes only the requirements; turn 2 (the follow-up) does nothing, or
    // writes what is missing.
    std::fs::write(
        &never,
        format!(
            "write {bad_dir}/requirements.md {}\n---\nsay I think it is fine\n",
            escaped(REQUIREMENTS)
        ),
    )
    .unwrap();
    std::fs::write(
        &fixed,
        format!(
            "write {good_dir}/requirements.md {}\n---\nwrite {good_dir}/design.md # Design\\n\nwrite {good_dir}/tasks.md {}\n",
            escaped(REQUIREMENTS),
            escaped(TASKS)
        ),
    )
    .unwrap();
    for id in [bad, good] {
        app.post(
            &format!("/api/v1/spec-tasks/{id}/start-planning"),
            json!({}),
        )
        .await;
    }
    let failed = wait_status(&app, bad, "failed").await;
    assert_eq!(failed["failed_phase"], "planning");
    let reason = failed["failure_reason"].as_str().unwrap();
    assert!(
        reason.contains("design.md: the file is missing")
            && reason.contains("tasks.md: the file is missing"),
        "{reason}"
    );
    let session = app
        .store
        .list_work_sessions(SpecTaskId(bad))
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(session.status, spectask::domain::WorkSessionStatus::Failed);
    let prompts: Vec<String> = app
        .store
        .list_transcript(session.id, 0)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == spectask::domain::TranscriptKind::Prompt)
        .map(|e| e.content)
        .collect();
    assert_eq!(prompts.len(), 2, "one planning prompt and one follow-up");
    assert!(
        prompts[1].contains("does not validate")
            && prompts[1].contains("tasks.md: the file is missing")
    );
    assert!(
        app.store
            .list_spec_versions(SpecTaskId(bad))
            .await
            .unwrap()
            .is_empty()
    );

    wait_status(&app, good, "spec_review").await;
    assert_eq!(
        app.store
            .list_spec_versions(SpecTaskId(good))
            .await
            .unwrap()
            .len(),
        1
    );
    app.shutdown().await;
}
