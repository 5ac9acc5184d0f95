//! Agent tools end to end: the real `spectask serve` runs a plan whose scripted
//! agent calls spectask's tools from inside its sessions (the test agent's `mcp`
//! command), over stdio (`spectask mcp`) and over HTTP. A session reads its
//! context, answers a sibling's request through the inbox, spawns a child that
//! starts only after it, hands over a summary; a person opens a thread on the task's
//! agent. Afterwards no session token appears in any transcript, history file, event
//! or log of the run.

mod common;
// Shared with tests/runs.rs; this test uses part of it.
#[allow(dead_code)]
#[path = "runs/server.rs"]
mod server;

use std::path::Path;
use std::time::Duration;

use common::app::git;
use reqwest::Method;
use serde_json::{Value, json};
use server::{Api, Server};

const AGENT: &str = env!("CARGO_BIN_EXE_spectask-test-agent");
const WAIT: Duration = Duration::from_secs(60);

/// Task 1 waits for task 2's request, answers it, spawns a child that depends on
/// task 1 itself, ticks its sub-item and hands over a summary. Task 2 (parallel)
/// asks and reads the answer.
const PLAN: &str = r#"# Implementation Plan

- [ ] 1. Serve the API
  - mcp spectask_context {}
  - mcp read_inbox {"wait_secs": 60}
  - mcp ack {"id": {{last:/messages/0/id}}}
  - mcp send_message {"kind": "response", "to": "task:2", "message": "Port 8080", "in_reply_to": {{last:/acknowledged}}}
  - mcp spawn_session {"name": "Changelog", "prompt": "write changelog.txt served on 8080", "depends_on": ["1"]}
  - mcp report_progress {"item": "1.1", "done": true}
  - mcp complete {"summary": "The API listens on port 8080."}
  - write api.txt api
  - [ ] 1.1 Listen
- [ ] 2. Write the client (P)
  - mcp send_message {"kind": "request", "to": "task:1", "message": "Which port does the API use?"}
  - mcp read_inbox {"wait_secs": 60}
  - mcp ack {"id": {{last:/messages/0/id}}}
  - write client.txt client
"#;

/// Waits, on the event log's long poll, until `check` gives a value.
async fn until<T>(api: &Api, what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut after = 0i64;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out waiting for {what}\n{}", dump(api).await);
        }
        let page = api
            .get(&format!("/events?after={after}&wait=5&limit=500"))
            .await
            .unwrap();
        after = page["last_id"].as_i64().unwrap_or(after);
    }
}

/// The task's sessions and their transcripts, for a failure's message.
async fn dump(api: &Api) -> String {
    let mut out = String::new();
    let sessions = api.get("/spec-tasks/1/sessions").await.unwrap_or_default();
    for s in sessions.as_array().cloned().unwrap_or_default() {
        out.push_str(&format!(
            "session {} {} {} {}\n",
            s["id"], s["name"], s["status"], s["failure_reason"]
        ));
        let t = api
            .get(&format!("/sessions/{}/transcript", s["id"]))
            .await
            .unwrap_or_default();
        for e in t.as_array().cloned().unwrap_or_default() {
            out.push_str(&format!(
                "  {} {}\n",
                e["kind"],
                e["content"]
                    .as_str()
                    .unwrap_or("")
                    .chars()
                    .take(300)
                    .collect::<String>()
            ));
        }
    }
    out
}

/// Every file under `dir`, with its text (binary files lossily).
fn files_under(dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            files_under(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((
                path.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
}

async fn run(transport: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let agent_state = dir.path().join("agent-state");
    std::fs::create_dir_all(&data).unwrap();
    let mut args = vec!["--state-dir".to_string(), agent_state.display().to_string()];
    if transport == "http" {
        args.push("--mcp-http".into());
    }
    std::fs::write(
        data.join("spectask.toml"),
        // The agent keeps its state (and the config it was given) outside its task's
        // folder, so its sandbox lets it write there, as a real agent's profile does.
        format!(
            "default_agent = \"test\"\n\n[agents.test]\ncommand = {AGENT:?}\nargs = {args:?}\n\n[agents.test.sandbox]\nwrite = [{:?}]\n",
            agent_state.display().to_string()
        ),
    )
    .unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main", "."]);
    std::fs::create_dir_all(repo.join(".spectask")).unwrap();
    std::fs::write(repo.join(".spectask/implementation.md"), "{{details}}\n").unwrap();
    std::fs::write(repo.join("README.md"), "tools\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "initial"]);

    let server = Server::start(&data).await.expect("spectask serve starts");
    let api = server.api.clone();
    let project = api
        .ok(
            Method::POST,
            "/projects",
            Some(json!({ "path": repo, "max_parallel_sessions": 3 })),
        )
        .await
        .unwrap();
    let pid = project["id"].as_i64().unwrap();
    let task = api
        .ok(
            Method::POST,
            "/spec-tasks/import",
            Some(json!({
                "project_id": pid,
                "title": "Agent tools",
                "files": {
                    "requirements.md": common::spec::REQUIREMENTS,
                    "design.md": common::spec::DESIGN,
                    "tasks.md": PLAN,
                },
            })),
        )
        .await
        .unwrap();
    let id = task["id"].as_i64().unwrap();
    api.ok(
        Method::POST,
        &format!("/spec-tasks/{id}/approve"),
        Some(json!({})),
    )
    .await
    .unwrap();

    // While task 1 runs, a person opens a thread on the task's agent.
    until(&api, "task 1's session", async || {
        let sessions = api.get(&format!("/spec-tasks/{id}/sessions")).await.ok()?;
        sessions
            .as_array()?
            .iter()
            .find(|s| s["kind"] == "implementation")
            .cloned()
    })
    .await;
    let thread = api
        .ok(
            Method::POST,
            &format!("/spec-tasks/{id}/threads"),
            Some(json!({ "name": "Notes", "prompt": "mcp spectask_context {}\nwrite notes.txt opened by a person" })),
        )
        .await
        .unwrap();
    assert_eq!(thread["kind"], "ad_hoc");

    let done = until(&api, "the run's end", async || {
        let t = api.get(&format!("/spec-tasks/{id}")).await.ok()?;
        matches!(
            t["status"].as_str(),
            Some("implementation_review" | "failed" | "done")
        )
        .then_some(t)
    })
    .await;
    let sessions = api
        .get(&format!("/spec-tasks/{id}/sessions"))
        .await
        .unwrap();
    assert_eq!(
        done["status"],
        "implementation_review",
        "{done}\n{sessions:#}\n{}",
        server.log()
    );
    let sessions = sessions.as_array().unwrap().clone();
    let by_name = |name: &str| {
        sessions
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no session {name}: {sessions:#?}"))
    };
    let first = by_name("1. Serve the API");
    let second = by_name("2. Write the client");
    let child = by_name("Changelog");
    assert_eq!(child["kind"], "spawned");
    assert_eq!(
        child["parent_id"], first["id"],
        "the child is under the session that spawned it"
    );
    for s in &sessions {
        assert_eq!(s["status"], "completed", "{s}");
    }
    assert_eq!(
        sessions.len(),
        4,
        "two plan tasks, the spawned child, the person's thread: {sessions:#?}"
    );

    // Every piece of work is merged, once.
    let task_branch = done["branch"].as_str().unwrap().to_string();
    for file in ["api.txt", "client.txt", "changelog.txt", "notes.txt"] {
        let shown = git(&repo, &["show", &format!("{task_branch}:{file}")]);
        assert!(!shown.is_empty(), "{file} is on the task branch");
    }
    let log = git(&repo, &["log", "--format=%s", &task_branch]);
    for s in &sessions {
        let merges = log
            .lines()
            .filter(|l| l.contains(&format!("session {}", s["id"])))
            .count();
        assert!(merges >= 1, "session {} merged: {log}", s["id"]);
    }

    // The child started only after its parent's task was done.
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let page = api
            .get(&format!("/events?after={after}&limit=500&spec_task={id}"))
            .await
            .unwrap();
        let items = page["items"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            break;
        }
        after = page["next_after"].as_i64().unwrap();
        events.extend(items);
    }
    let position = |check: &dyn Fn(&Value) -> bool| events.iter().position(check);
    let parent_done = position(&|e| {
        e["entity"] == "implementation_task" && e["data"]["key"] == "1" && e["data"]["to"] == "done"
    });
    let child_started = position(&|e| {
        e["entity"] == "work_session"
            && e["entity_id"] == child["id"]
            && e["data"]["to"] == "running"
    });
    assert!(
        matches!((parent_done, child_started), (Some(p), Some(c)) if p < c),
        "parent done at {parent_done:?}, child running at {child_started:?}"
    );
    // Each session's token said which transport it was for.
    let issued: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "session.token_issued")
        .collect();
    assert!(issued.len() >= 4, "{issued:?}");
    assert!(
        issued.iter().all(|e| e["data"]["transport"] == transport),
        "{issued:?}"
    );

    // The request and its response, both acknowledged by their receivers.
    let coordination = api
        .get(&format!("/spec-tasks/{id}/coordination"))
        .await
        .unwrap();
    let coordination = coordination.as_array().unwrap();
    let request = coordination
        .iter()
        .find(|e| e["kind"] == "request")
        .expect("the request");
    assert_eq!(
        (
            request["from_session_id"].clone(),
            request["to_session_id"].clone()
        ),
        (second["id"].clone(), first["id"].clone())
    );
    assert_eq!(request["acknowledged_by"], first["id"]);
    let response = coordination
        .iter()
        .find(|e| e["kind"] == "response")
        .expect("the response");
    assert_eq!(response["payload"]["in_reply_to"], request["id"]);
    assert_eq!(response["acknowledged_by"], second["id"]);
    // The summary the parent handed over is what its completion says.
    let completion = coordination
        .iter()
        .find(|e| {
            e["kind"] == "completion"
                && e["from_session_id"] == first["id"]
                && e["payload"]["merge_commit"].is_string()
        })
        .expect("the parent's completion");
    assert!(
        completion["message"]
            .as_str()
            .unwrap()
            .contains("port 8080"),
        "{completion}"
    );

    // The tool calls are in the transcripts and the history files.
    let transcript = api
        .get(&format!("/sessions/{}/transcript", first["id"]))
        .await
        .unwrap();
    let titles: Vec<&str> = transcript
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["data"]["title"].as_str())
        .collect();
    for tool in [
        "spectask_context",
        "read_inbox",
        "spawn_session",
        "complete",
    ] {
        assert!(
            titles.contains(&format!("spectask: {tool}").as_str()),
            "{tool} in {titles:?}"
        );
    }
    let spec = format!("specs/{}", done["spec_dir_name"].as_str().unwrap());
    let history = git(
        &repo,
        &[
            "show",
            &format!("{task_branch}:{spec}/history/session-{}-1.md", first["id"]),
        ],
    );
    assert!(history.contains("spectask: spawn_session"), "{history}");
    assert!(
        git(&repo, &["ls-tree", "-r", "--name-only", &task_branch])
            .contains(&format!("session-{}-", thread["id"])),
        "the thread's history is written"
    );

    // No session token anywhere: transcripts, history files, events, the log, the
    // data dir, the repository.
    let mut tokens = Vec::new();
    let mut state = Vec::new();
    files_under(&agent_state, &mut state);
    for (_, text) in &state {
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("st_") && word.len() == 67 {
                tokens.push(word.to_string());
            }
        }
    }
    tokens.sort();
    tokens.dedup();
    assert!(
        tokens.len() >= 4,
        "the agent was given a token per session: {tokens:?}"
    );
    let mut haystack = Vec::new();
    files_under(&data, &mut haystack);
    haystack.push(("events".into(), serde_json::to_string(&events).unwrap()));
    for s in &sessions {
        let t = api
            .get(&format!("/sessions/{}/transcript", s["id"]))
            .await
            .unwrap();
        haystack.push((format!("transcript {}", s["id"]), t.to_string()));
    }
    let all = git(&repo, &["log", "--all", "-p"]);
    haystack.push(("the repository's history".into(), all));
    for (name, text) in &haystack {
        for token in &tokens {
            assert!(
                !text.contains(token.as_str()) && !text.contains(&token[3..]),
                "a session token is in {name}"
            );
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_coordinate_through_their_tools_over_stdio() {
    run("stdio").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_coordinate_through_their_tools_over_http() {
    run("http").await;
}
