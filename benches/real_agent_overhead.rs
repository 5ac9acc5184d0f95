//! `cargo bench --bench real_agent_overhead` (after `scripts/install-agents`): what
//! spectask adds to a real agent's sessions, against the same agent (qwen-code, as
//! pinned) driven by a bare ACP client in the same run, on the same scripted model.
//!
//! 1. Approval to every session prompted: a plan of three parallel tasks is approved
//!    (the agent runs since planning) and the clock runs until the model has each
//!    task's first request. Baseline: a bare client starts the agent and has one
//!    turn with it (as planning is), then opens three sessions and prompts them at
//!    once; the same clock, from the end of that first turn.
//! 2. `session/update` handling: each task's answer streams as CHUNKS deltas; the
//!    time from the model's first request of a task to the end of its turn
//!    (spectask: its `stop_reason` entry is stored; bare: the prompt's answer read).
//!    Their difference over the updates the agent sent is spectask's cost per update.
//!
//! Medians over ROUNDS, alternating spectask and bare. Both read the endpoint's wall
//! clock (`at` in its request log), so they share one measure.

#[path = "../tests/real_agents/agents.rs"]
#[allow(dead_code)]
mod agents;
#[path = "../tests/runs/server.rs"]
#[allow(dead_code)]
mod server;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agents::{Endpoint, QWEN};
use reqwest::Method;
use serde_json::{Value, json};
use server::Server;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const ROUNDS: usize = 5;
const CHUNKS: usize = 400;
const BOUND: Duration = Duration::from_secs(240);

const REQUIREMENTS: &str = "# Requirements Document\n\n## Introduction\n\nAnswers.\n\n## Requirements\n\n### Requirement 1: Answers\n\n**User Story:** As a reader, I want answers, so that I know.\n\n#### Acceptance Criteria\n\n1. The system SHALL answer the first question\n2. The system SHALL answer the second question\n3. The system SHALL answer the third question\n";
const DESIGN: &str = "# Design\n\n## Overview\n\nThree answers.\n";
const PLAN: &str = "# Implementation Plan\n\n- [ ] 1. Answer one (P)\n  - _Requirements: 1.1_\n- [ ] 2. Answer two (P)\n  - _Requirements: 1.2_\n- [ ] 3. Answer three (P)\n  - _Requirements: 1.3_\n";

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The words each task's answer streams, one delta per word.
fn answer(key: usize) -> String {
    (0..CHUNKS).map(|i| format!("a{key}w{i} ")).collect()
}

fn script() -> Value {
    let mut scenarios = vec![
        json!({"name": "planning", "match": "Write exactly these three files", "steps": [
            {"write": {"path": "{{spec_dir}}/requirements.md", "content": REQUIREMENTS}},
            {"write": {"path": "{{spec_dir}}/design.md", "content": DESIGN}},
            {"write": {"path": "{{spec_dir}}/tasks.md", "content": PLAN}},
            {"say": "The spec is written."}
        ]}),
    ];
    for key in 1..=3 {
        scenarios.push(
            json!({"name": format!("task {key}"), "match": format!("Task {key}: "),
            "steps": [{"say": answer(key), "chunks": CHUNKS}]}),
        );
    }
    json!({"vars": {"spec_dir": "in the folder (\\S+) and nothing else"}, "scenarios": scenarios})
}

/// When the model first heard from each task, by scenario name.
fn first_requests(endpoint: &Endpoint) -> Vec<(String, f64)> {
    let mut firsts: Vec<(String, f64)> = Vec::new();
    for r in endpoint.requests() {
        let Some(name) = r["scenario"].as_str().filter(|n| n.starts_with("task ")) else {
            continue;
        };
        if !firsts.iter().any(|(n, _)| n == name) {
            firsts.push((name.to_string(), r["at"].as_f64().unwrap()));
        }
    }
    firsts.sort_by(|a, b| a.0.cmp(&b.0));
    firsts
}

struct Round {
    /// Seconds from the start to the model's first request of the last task.
    prompted: f64,
    /// Per task: seconds from its first request to its turn's end.
    turns: Vec<f64>,
    /// The `session/update` messages the agent sent (counted by the bare client).
    updates: usize,
}

async fn spectask_round() -> Round {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = Endpoint::start(dir.path(), &script()).await;
    let agents::Served {
        server, project, ..
    } = agents::serve(
        &QWEN,
        dir.path(),
        &endpoint.url,
        json!({ "permission_policy": "auto", "max_parallel_sessions": 3 }),
    )
    .await;
    let api = &server.api;
    let task = api
        .ok(
            Method::POST,
            "/spec-tasks",
            Some(json!({ "prompt": "Answer three questions", "project_id": project })),
        )
        .await
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    api.ok(
        Method::POST,
        &format!("/spec-tasks/{task}/start-planning"),
        Some(json!({})),
    )
    .await
    .unwrap();
    wait_status(&server, task, &["spec_review"]).await;
    let start = now();
    api.ok(
        Method::POST,
        &format!("/spec-tasks/{task}/approve"),
        Some(json!({})),
    )
    .await
    .unwrap();
    wait_status(&server, task, &["implementation_review", "done"]).await;
    let firsts = first_requests(&endpoint);
    assert_eq!(firsts.len(), 3, "{firsts:?}\n{}", server.log());
    let sessions = api
        .ok(Method::GET, &format!("/spec-tasks/{task}/sessions"), None)
        .await
        .unwrap();
    let mut turns = Vec::new();
    for s in sessions.as_array().unwrap() {
        if s["kind"] != "implementation" {
            continue;
        }
        let transcript = api
            .ok(
                Method::GET,
                &format!("/sessions/{}/transcript", s["id"]),
                None,
            )
            .await
            .unwrap();
        let entries = transcript.as_array().unwrap();
        let message: String = entries
            .iter()
            .filter(|e| e["kind"] == "message")
            .filter_map(|e| e["content"].as_str())
            .collect();
        let key = (1..=3)
            .find(|k| message.contains(&format!("a{k}w0 ")))
            .unwrap_or_else(|| panic!("no task's answer in {message:?}"));
        assert!(
            message.contains(answer(key).trim()),
            "task {key}'s answer is whole"
        );
        let ended = entries
            .iter()
            .find(|e| e["kind"] == "stop_reason")
            .expect("the turn ended");
        let at = chrono::DateTime::parse_from_rfc3339(ended["created_at"].as_str().unwrap())
            .unwrap()
            .timestamp_micros() as f64
            / 1e6;
        let asked = firsts[key - 1].1;
        turns.push(at - asked);
    }
    server.stop().await;
    Round {
        prompted: firsts.iter().map(|(_, at)| at - start).fold(0.0, f64::max),
        turns,
        updates: 0,
    }
}

async fn wait_status(server: &Server, task: i64, wanted: &[&str]) {
    let deadline = Instant::now() + BOUND;
    let mut after = 0;
    loop {
        let t = server
            .api
            .ok(Method::GET, &format!("/spec-tasks/{task}"), None)
            .await
            .unwrap();
        let status = t["status"].as_str().unwrap_or("");
        if wanted.contains(&status) {
            return;
        }
        assert!(
            !["failed", "cancelled"].contains(&status) && Instant::now() < deadline,
            "task {task} is {status}, waiting for {wanted:?}\n{}",
            server.log()
        );
        let page = server
            .api
            .ok(
                Method::GET,
                &format!("/events?after={after}&wait=2&limit=500"),
                None,
            )
            .await
            .unwrap();
        after = page["last_id"].as_i64().unwrap_or(after).max(after);
    }
}

/// The agent as its profile starts it, without spectask: its command, args and env.
fn agent_command(url: &str, home: &Path) -> (String, Vec<String>, Vec<(String, String)>) {
    let profile: toml::Table = (QWEN.profile)(url, home).parse().unwrap();
    let command = profile["command"].as_str().unwrap().to_string();
    let args = profile["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let env = profile["env"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    (command, args, env)
}

async fn send(stdin: &mut tokio::process::ChildStdin, msg: Value) {
    stdin
        .write_all(format!("{msg}\n").as_bytes())
        .await
        .unwrap();
}

/// A bare ACP client: raw JSON lines, three sessions prompted at once, nothing stored.
async fn bare_round() -> Round {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = Endpoint::start(dir.path(), &script()).await;
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let (command, args, env) = agent_command(&endpoint.url, &home);
    let mut start = now();
    let mut child = tokio::process::Command::new(command)
        .args(args)
        .envs(env)
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": 1,
            "clientCapabilities": {"fs": {"readTextFile": true, "writeTextFile": true}, "terminal": false}}}),
    )
    .await;
    let mut sessions: Vec<(usize, String)> = Vec::new();
    let mut turns = [0.0; 3];
    let mut ended = 0;
    let mut updates = 0;
    let deadline = tokio::time::Instant::now() + BOUND;
    while ended < 3 {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .expect("the bare run ends in time")
            .unwrap()
            .expect("the agent keeps its stdout open");
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        match (msg["id"].as_i64(), msg.get("method")) {
            // A first session and turn, as spectask's planning is: the clock starts
            // with the agent running and warm, as spectask's does at approval.
            (Some(0), None) => {
                send(
                    &mut stdin,
                    json!({"jsonrpc": "2.0", "id": 50, "method": "session/new",
                    "params": {"cwd": dir.path(), "mcpServers": []}}),
                )
                .await;
            }
            (Some(50), None) => {
                let sid = msg["result"]["sessionId"].as_str().unwrap();
                send(&mut stdin, json!({"jsonrpc": "2.0", "id": 51, "method": "session/prompt",
                    "params": {"sessionId": sid, "prompt": [{"type": "text", "text": "Warm up."}]}}))
                .await;
            }
            (Some(51), None) => {
                start = now();
                updates = 0;
                for key in 1..=3 {
                    let cwd = dir.path().join(format!("work{key}"));
                    std::fs::create_dir_all(&cwd).unwrap();
                    send(
                        &mut stdin,
                        json!({"jsonrpc": "2.0", "id": key, "method": "session/new",
                        "params": {"cwd": cwd, "mcpServers": []}}),
                    )
                    .await;
                }
            }
            (Some(key @ 1..=3), None) => {
                let sid = msg["result"]["sessionId"].as_str().unwrap().to_string();
                sessions.push((key as usize, sid.clone()));
                let text = format!("Task {key}: answer question {key}.");
                send(
                    &mut stdin,
                    json!({"jsonrpc": "2.0", "id": 100 + key, "method": "session/prompt",
                    "params": {"sessionId": sid, "prompt": [{"type": "text", "text": text}]}}),
                )
                .await;
            }
            (Some(id @ 101..=103), None) => {
                turns[(id - 101) as usize] = now();
                ended += 1;
            }
            (_, Some(method)) if method == "session/update" => updates += 1,
            (Some(id), Some(_)) => {
                // Nothing else is expected of a scripted answer; refuse, never hang.
                send(
                    &mut stdin,
                    json!({"jsonrpc": "2.0", "id": id,
                    "error": {"code": -32601, "message": "not served by the bare client"}}),
                )
                .await;
            }
            _ => {}
        }
    }
    let firsts = first_requests(&endpoint);
    assert_eq!(firsts.len(), 3, "{firsts:?}");
    let _ = child.kill().await;
    Round {
        prompted: firsts.iter().map(|(_, at)| at - start).fold(0.0, f64::max),
        turns: (0..3).map(|i| turns[i] - firsts[i].1).collect(),
        updates,
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let (mut prompted, mut bare_prompted) = (Vec::new(), Vec::new());
    let (mut turns, mut bare_turns) = (Vec::new(), Vec::new());
    let mut updates = 0;
    for round in 0..ROUNDS {
        let s = spectask_round().await;
        let b = bare_round().await;
        eprintln!(
            "round {round}: prompted {:.0} ms vs bare {:.0} ms; turns {:?} vs bare {:?} (s)",
            s.prompted * 1e3,
            b.prompted * 1e3,
            s.turns,
            b.turns
        );
        prompted.push(s.prompted);
        bare_prompted.push(b.prompted);
        turns.extend(s.turns);
        bare_turns.extend(b.turns);
        updates = b.updates / 3;
    }
    let (p, bp) = (median(prompted), median(bare_prompted));
    let (t, bt) = (median(turns), median(bare_turns));
    println!("real agent: qwen-code {}", agents::bin("qwen"));
    println!(
        "approval → 3 sessions prompted: spectask {:.0} ms, bare ACP client {:.0} ms (warm agent, sessions opened and prompted): spectask adds {:.0} ms ({:.2}×)",
        p * 1e3,
        bp * 1e3,
        (p - bp) * 1e3,
        p / bp
    );
    println!(
        "a turn of {updates} session/update messages: spectask {:.0} ms, bare {:.0} ms: {:+.3} ms per update ({:.2}×)",
        t * 1e3,
        bt * 1e3,
        (t - bt) * 1e3 / updates.max(1) as f64,
        t / bt
    );
}
