//! Crash recovery with the real binary: the server is killed with SIGKILL in the
//! middle of an implementation run and started again on the same data; the run
//! completes, and every task's work is merged exactly once.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::app::git;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_spectask");
const AGENT: &str = env!("CARGO_BIN_EXE_spectask-test-agent");
const WAIT: Duration = Duration::from_secs(60);

struct Server {
    child: tokio::process::Child,
    url: String,
}

/// Starts `spectask serve` on port 0 and waits for the line with its address.
async fn serve(data: &Path) -> Server {
    let mut child = tokio::process::Command::new(BIN)
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "serve",
            "--bind",
            "127.0.0.1:0",
        ])
        .env_remove("SPECTASK_BIND")
        .stdout(Stdio::piped())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(data.join("server.log"))
                .unwrap(),
        )
        .env("RUST_LOG", "spectask=info")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("spectask is listening on ") {
                return url.to_string();
            }
        }
        panic!("serve exited before listening");
    })
    .await
    .expect("serve starts");
    // Keep reading so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Server { child, url }
}

struct Api {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// Long-polls the event log until `pred` holds for an event; returns its id.
    async fn wait_for(&self, task: i64, pred: impl Fn(&Value) -> bool) -> i64 {
        let mut after = 0;
        tokio::time::timeout(WAIT, async {
            loop {
                let page = self
                    .call(
                        reqwest::Method::GET,
                        &format!("/events?spec_task={task}&after={after}&wait=10&limit=1000"),
                        None,
                    )
                    .await;
                for e in page["items"].as_array().unwrap() {
                    if pred(e) {
                        return e["id"].as_i64().unwrap();
                    }
                }
                after = page["next_after"].as_i64().unwrap();
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the event never came"))
    }
}

fn status_to(e: &Value, kind: &str, key_or_status: &str, to: &str) -> bool {
    e["kind"] == kind
        && (e["data"]["key"] == key_or_status || key_or_status.is_empty())
        && e["data"]["to"] == to
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_run_finishes_it_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("spectask.toml"),
        format!("default_agent = \"test\"\n\n[agents.test]\ncommand = {AGENT:?}\n"),
    )
    .unwrap();
    let repo = common::plan::script_repo(dir.path());

    let server = serve(&data).await;
    let api = Api {
        http: reqwest::Client::new(),
        url: server.url.clone(),
        token: std::fs::read_to_string(data.join("token"))
            .unwrap()
            .trim()
            .to_string(),
    };
    let project = api
        .call(
            reqwest::Method::POST,
            "/projects",
            Some(json!({ "path": repo, "max_parallel_sessions": 1 })),
        )
        .await;
    let mut plan = String::from("# Implementation Plan\n\n");
    for n in 1..=4 {
        plan.push_str(&format!(
            "- [ ] {n}. Step {n}\n  - write f{n}.txt {n}\n  - sleep 400\n"
        ));
    }
    let files = json!({
        "requirements.md": common::spec::REQUIREMENTS,
        "design.md": common::spec::DESIGN,
        "tasks.md": plan,
    });
    let task = api
        .call(
            reqwest::Method::POST,
            "/spec-tasks/import",
            Some(json!({ "project_id": project["id"], "title": "Steps", "files": files })),
        )
        .await;
    let id = task["id"].as_i64().unwrap();
    let branch = task["branch"].as_str().unwrap().to_string();
    api.call(
        reqwest::Method::POST,
        &format!("/spec-tasks/{id}/approve"),
        Some(json!({})),
    )
    .await;

    // Kill the server while task 2 is being worked on (task 1 merged before it).
    let second_started = api
        .wait_for(id, |e| {
            status_to(e, "implementation_task.status_changed", "2", "in_progress")
        })
        .await;
    // With one session at a time, the next thread to get a prompt is task 2's: the
    // kill lands in the middle of its turn.
    api.wait_for(id, |e| {
        e["id"].as_i64().unwrap() > second_started
            && status_to(e, "agent_thread.status_changed", "", "prompting")
    })
    .await;
    let mut first = server;
    first.child.start_kill().unwrap();
    first.child.wait().await.unwrap();

    let second = serve(&data).await;
    let api = Api {
        url: second.url.clone(),
        ..api
    };
    let finished = tokio::spawn({
        let api = Api {
            http: api.http.clone(),
            url: api.url.clone(),
            token: api.token.clone(),
        };
        async move {
            api.wait_for(id, |e| {
                status_to(e, "spec_task.status_changed", "", "implementation_review")
            })
            .await
        }
    })
    .await;
    assert!(
        finished.is_ok(),
        "the run did not finish after the restart; server log:\n{}",
        std::fs::read_to_string(data.join("server.log")).unwrap_or_default()
    );

    for n in 1..=4 {
        assert_eq!(
            git(&repo, &["show", &format!("{branch}:f{n}.txt")]),
            n.to_string()
        );
    }
    let log = git(&repo, &["log", "--format=%s", &branch]);
    for n in 1..=4 {
        let merges = log
            .lines()
            .filter(|l| l.contains(&format!("merge task {n} (session")))
            .count();
        assert_eq!(merges, 1, "task {n} is merged exactly once:\n{log}");
    }
    let spec = format!("specs/{}", task["spec_dir_name"].as_str().unwrap());
    let tasks_md = git(&repo, &["show", &format!("{branch}:{spec}/tasks.md")]);
    assert_eq!(tasks_md.matches("- [x] ").count(), 4, "{tasks_md}");
    let sessions = api
        .call(
            reqwest::Method::GET,
            &format!("/spec-tasks/{id}/sessions"),
            None,
        )
        .await;
    let resumed = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str().unwrap().starts_with("2."))
        .unwrap();
    assert_eq!(resumed["status"], "completed");
    assert_eq!(
        resumed["attempt"], 2,
        "the interrupted session was resumed, not started anew"
    );
    drop(second);
}
