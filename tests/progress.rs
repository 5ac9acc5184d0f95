//! Progress per sub-item, per task, per session and overall; the one-call overview;
//! and `spectask task watch` with the real binary. The scripted agent ticks a
//! sub-item in its own worktree's tasks.md and then waits on a permission request,
//! so the test looks at a session mid-task without racing it.

mod common;

use std::process::Stdio;

use common::app::{TestApp, git};
use common::plan::{
    WAIT, approved_plan, commit_templates, drive, pending_permission, scripted_app, set_project,
    wait_status,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_spectask");

/// Task 1 ticks its sub-item 1.1 (with sed, in the session's worktree), then asks
/// for a permission the test answers; task 2 waits for task 1.
const PLAN: &str = "# Implementation Plan

- [ ] 1. Build the feature
  - run sed -i /Alph[a]/s/\\[.\\]/[x]/ {{spec_dir}}/tasks.md
  - ask Carry on?
  - write feature.txt feature
  - [ ] 1.1 Alpha
  - [ ] 1.2 Beta
- [ ] 2. Document it
  - write docs.txt docs
  - [ ] 2.1 Write the docs
";

fn sub_items(task: &Value) -> Vec<(String, bool)> {
    task["sub_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["key"].as_str().unwrap().to_string(),
                i["done"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn edges(overview: &Value) -> Vec<(String, String)> {
    overview["graph"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap().to_string(),
                e["to"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The overview's events are the task's latest, oldest first: the same run of
/// events the log holds, ending where the overview's list ends.
async fn assert_recent_events(app: &TestApp, id: i64, overview: &Value) {
    let got: Vec<i64> = overview["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["spec_task_id"], id);
            e["id"].as_i64().unwrap()
        })
        .collect();
    let (_, page) = app
        .get(&format!("/api/v1/events?spec_task={id}&limit=1000"))
        .await;
    let all: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    let last = *got.last().expect("some events");
    let upto: Vec<i64> = all.into_iter().filter(|e| *e <= last).collect();
    let expected = upto[upto.len().saturating_sub(50)..].to_vec();
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_reads_sub_items_from_the_running_session_and_the_overview_shows_the_whole_task() {
    let app = scripted_app(|_| {}).await;
    let (project, repo) = app.project_with_repo().await;
    commit_templates(&repo, &[("implementation.md", "{{details}}\n")]);
    // `ask`: the agent's permission request waits for the test's answer.
    set_project(&app, project, json!({ "permission_policy": "ask" })).await;
    let id = approved_plan(&app, project, "Progress", PLAN).await;

    // Before the first step: no plan yet (the implementer makes it from the approved
    // tasks.md), no session, no instance.
    let (status, before) = app.get(&format!("/api/v1/spec-tasks/{id}/overview")).await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert_eq!(before["progress"]["tasks"], json!([]));
    assert_eq!(before["progress"]["fraction"], 0.0);
    assert_eq!(before["sessions"], json!([]));
    assert_eq!(before["instance"], Value::Null);

    let driver = drive(&app);
    let pending = pending_permission(&app, id).await;
    let session = pending["work_session_id"].as_i64().unwrap();
    // A spawned session under the running one, after task 2.
    let (status, spawned) = app
        .post(
            &format!("/api/v1/spec-tasks/{id}/sessions"),
            json!({ "name": "Changelog", "prompt": "write changelog.txt entry",
                    "parent_id": session, "depends_on": ["2"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{spawned}");

    // Mid-task: 1.1 is ticked in the session's worktree only, and progress says so.
    let (status, mid) = app.get(&format!("/api/v1/spec-tasks/{id}/overview")).await;
    assert_eq!(status, StatusCode::OK, "{mid}");
    assert_eq!(mid["task"]["id"], id);
    assert_eq!(mid["task"]["status"], "implementing");
    let progress = &mid["progress"];
    let first = &progress["tasks"][0];
    assert_eq!(
        (first["key"].as_str(), first["status"].as_str()),
        (Some("1"), Some("in_progress"))
    );
    assert_eq!(
        sub_items(first),
        [("1.1".to_string(), true), ("1.2".to_string(), false)]
    );
    assert_eq!(
        (
            first["sub_items_done"].as_i64(),
            first["sub_items_total"].as_i64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(first["read_from_session"], session);
    assert_eq!(first["session_ids"], json!([session]));
    assert_eq!(first["fraction"], 0.5);
    let second = &progress["tasks"][1];
    assert_eq!(second["status"], "pending");
    assert_eq!(second["depends_on"], json!(["1"]));
    assert_eq!(sub_items(second), [("2.1".to_string(), false)]);
    assert_eq!(second["read_from_session"], Value::Null);
    // (0.5 + 0 + 0) / 3 tasks, the spawned one included.
    assert_eq!(progress["tasks_total"], 3);
    assert!((progress["fraction"].as_f64().unwrap() - 0.5 / 3.0).abs() < 1e-9);
    assert_eq!(progress["sessions_running"], 1);
    let row = progress["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == session)
        .unwrap();
    assert_eq!(
        (
            row["task_key"].as_str(),
            row["status"].as_str(),
            row["kind"].as_str(),
            row["attempt"].as_i64(),
            row["sub_items_done"].as_i64(),
            row["sub_items_total"].as_i64()
        ),
        (
            Some("1"),
            Some("running"),
            Some("implementation"),
            Some(1),
            Some(1),
            Some(2)
        )
    );
    // The task branch still has 1.1 open: the tick came from the session's worktree.
    let branch = mid["task"]["branch"].as_str().unwrap().to_string();
    let tasks_md_path = format!(
        "specs/{}/tasks.md",
        mid["task"]["spec_dir_name"].as_str().unwrap()
    );
    let on_branch = git(&repo, &["show", &format!("{branch}:{tasks_md_path}")]);
    assert!(on_branch.contains("- [ ] 1.1 Alpha"), "{on_branch}");
    // `/progress` is the overview's progress.
    let (_, alone) = app.get(&format!("/api/v1/spec-tasks/{id}/progress")).await;
    assert_eq!(&alone, progress);
    // The session tree: the spawned session under the running one.
    let roots = mid["sessions"].as_array().unwrap();
    assert_eq!(roots.len(), 1, "{roots:?}");
    assert_eq!(roots[0]["id"], session);
    assert_eq!(roots[0]["children"][0]["id"], spawned["id"]);
    assert_eq!(roots[0]["children"][0]["children"], json!([]));
    // The graph: 1 → 2 (implicit order), 2 → S1 (the spawned session's dependency).
    let keys: Vec<&str> = mid["graph"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["1", "2", "S1"]);
    assert_eq!(mid["graph"]["nodes"][0]["status"], "in_progress");
    assert_eq!(
        edges(&mid),
        [
            ("1".to_string(), "2".to_string()),
            ("2".to_string(), "S1".to_string())
        ]
    );
    // The agent instance serving the session.
    assert_eq!(mid["instance"]["spec_task_id"], id);
    assert_eq!(mid["instance"]["status"], "ready");
    assert_eq!(mid["instance"]["agent_name"], "spectask-test-agent");
    assert_recent_events(&app, id, &mid).await;
    assert!(
        mid["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "permission.requested"),
        "{}",
        mid["events"]
    );

    // Let it finish.
    let (status, body) = app
        .post(
            &format!("/api/v1/permissions/{}/answer", pending["id"]),
            json!({ "option_id": "allow" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    wait_status(&app, id, "implementation_review").await;
    driver.abort();
    let (_, end) = app.get(&format!("/api/v1/spec-tasks/{id}/overview")).await;
    assert_eq!(end["task"]["status"], "implementation_review");
    let progress = &end["progress"];
    assert_eq!(progress["fraction"], 1.0);
    assert_eq!(
        (
            progress["tasks_done"].as_i64(),
            progress["tasks_total"].as_i64()
        ),
        (Some(3), Some(3))
    );
    assert_eq!(progress["sessions_running"], 0);
    // Task 1 is done, so 1.2 counts as done although nobody ticked it in tasks.md.
    let on_branch = git(&repo, &["show", &format!("{branch}:{tasks_md_path}")]);
    assert!(on_branch.contains("- [x] 1.1 Alpha"), "{on_branch}");
    assert!(on_branch.contains("- [ ] 1.2 Beta"), "{on_branch}");
    assert_eq!(
        sub_items(&progress["tasks"][0]),
        [("1.1".to_string(), true), ("1.2".to_string(), true)]
    );
    for t in progress["tasks"].as_array().unwrap() {
        assert_eq!(
            (t["status"].as_str(), t["fraction"].as_f64()),
            (Some("done"), Some(1.0)),
            "{t}"
        );
    }
    for s in progress["sessions"].as_array().unwrap() {
        assert_eq!(s["status"], "completed", "{s}");
        assert_eq!(s["sub_items_done"], s["sub_items_total"], "{s}");
    }
    assert!(
        end["graph"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["status"] == "done")
    );
    assert_eq!(edges(&end), edges(&mid));
    assert_eq!(end["sessions"][0]["children"][0]["status"], "completed");
    let events = end["events"].as_array().unwrap();
    assert_eq!(events.len(), 50, "a run this size has more than 50 events");
    assert_recent_events(&app, id, &end).await;
    app.shutdown().await;
}

#[tokio::test]
async fn overview_and_progress_of_an_unknown_task_are_404() {
    let app = scripted_app(|_| {}).await;
    for route in ["overview", "progress"] {
        let (status, body) = app.get(&format!("/api/v1/spec-tasks/999/{route}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    // A task that never got to implementation has an overview too, with no plan.
    let project = app.project().await;
    let id = app.task(project, "Not yet").await;
    let (status, body) = app.get(&format!("/api/v1/spec-tasks/{id}/overview")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["progress"]["tasks"], json!([]));
    assert_eq!(body["graph"], json!({ "nodes": [], "edges": [] }));
    assert_eq!(body["events"][0]["kind"], "spec_task.created");
    app.shutdown().await;
}

/// `spectask task watch` with the real binary against the app.
fn watch_cmd(app: &TestApp, dir: &std::path::Path, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("--data-dir")
        .arg(dir)
        .args(["--url", &app.url, "--token", &app.token, "task", "watch"])
        .args(args)
        .env_remove("SPECTASK_URL")
        .env_remove("SPECTASK_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_watch_follows_a_run_to_implementation_review_and_exits_0() {
    let app = scripted_app(|_| {}).await;
    let (project, repo) = app.project_with_repo().await;
    commit_templates(&repo, &[("implementation.md", "{{details}}\n")]);
    let id = approved_plan(
        &app,
        project,
        "Watched",
        "- [ ] 1. One\n  - write one.txt one\n  - [ ] 1.1 Part\n- [ ] 2. Two\n  - write two.txt two\n",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = watch_cmd(&app, dir.path(), &[&id.to_string()])
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    // Nothing runs (not even the step that makes the plan) until the watch has drawn
    // its first block.
    let header = format!("task {id} [implementing]: 0/0 tasks, 0 sessions running");
    tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let first = line == header;
            printed.push(line);
            if first {
                return;
            }
        }
        panic!("the watch ended early: {printed:?}");
    })
    .await
    .expect("the first block");
    let driver = drive(&app);
    let status = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            printed.push(line);
        }
        child.wait().await.unwrap()
    })
    .await
    .unwrap_or_else(|_| panic!("the watch did not end: {printed:?}"));
    driver.abort();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    let text = printed.join("\n");
    assert!(status.success(), "{status}: {text}\n{stderr}");
    let full = format!(
        "overall{} [{}] 100%  2/2 tasks",
        " ".repeat(25),
        "#".repeat(20)
    );
    assert!(text.contains(&format!("  {full}")), "{text}");
    assert!(
        text.contains(&format!(
            "overall{} [{}]   0%  0/0 tasks",
            " ".repeat(25),
            "-".repeat(20)
        )),
        "{text}"
    );
    assert!(
        text.ends_with(&format!("task {id} is implementation_review")),
        "{text}"
    );
    assert!(
        !text.contains('\x1b'),
        "no cursor movement into a pipe: {text:?}"
    );
    // Blocks are printed only when the figures change: no two in a row are equal.
    let blocks: Vec<&str> = text.split("\n\n").collect();
    assert!(blocks.len() >= 2, "{text}");
    assert!(blocks.windows(2).all(|w| w[0] != w[1]), "{text}");

    // Once it is over, `--json` prints the one final snapshot and exits 0 at once.
    let out = watch_cmd(&app, dir.path(), &[&id.to_string(), "--json"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let snapshots: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(snapshots.len(), 1, "{stdout}");
    assert_eq!(snapshots[0]["status"], "implementation_review");
    assert_eq!(snapshots[0]["fraction"], 1.0);
    assert_eq!(snapshots[0]["tasks_done"], 2);

    // A task that ends badly makes the watch exit 1.
    let other = app.task(project, "Dropped").await;
    let (status, _) = app
        .post(&format!("/api/v1/spec-tasks/{other}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let out = watch_cmd(&app, dir.path(), &[&other.to_string()])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("task {other} ended cancelled")),
        "{out:?}"
    );
    app.shutdown().await;
}
