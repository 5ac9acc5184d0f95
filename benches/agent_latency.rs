//! `cargo bench --bench agent_latency`: what spectask's ACP client costs, each figure
//! against a baseline measured in the same run.
//!
//! 1. Time from asking for a thread (`open_thread` + a prompt) to the first
//!    `session/update` seen by spectask, median over 100 threads, against a bare
//!    client (raw JSON lines, no store) doing `session/new` + `session/prompt` on
//!    the same scripted agent binary.
//! 2. Time per `session/update` message through spectask's client (JSON-RPC
//!    dispatch, update parsing, transcript coalescing and storage), against the same
//!    agent read by a bare line reader, and against a plain pipe echo (`cat`).

#[path = "../tests/common/db.rs"]
#[allow(dead_code)]
mod db;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use db::{Backend, TestDb};
use serde_json::{Value, json};
use spectask::agents::profile::AgentProfile;
use spectask::config::ServeConfig;
use spectask::domain::{Priority, ProjectSettings, TaskType, WorkSessionKind};
use spectask::store::{NewProject, NewSpecTask, NewWorkSession};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const AGENT: &str = env!("CARGO_BIN_EXE_spectask-test-agent");
const THREADS: usize = 100;
const CHUNKS: usize = 5000;
const ROUNDS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A bare ACP client: the scripted agent over raw JSON lines, nothing recorded.
struct Bare {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    next: i64,
}

impl Bare {
    async fn start(cwd: &Path) -> Bare {
        let mut child = tokio::process::Command::new(AGENT)
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut bare = Bare {
            child,
            stdin,
            lines,
            next: 0,
        };
        bare.call(
            "initialize",
            spectask::agents::protocol::initialize_params(),
        )
        .await;
        bare
    }

    async fn send(&mut self, method: &str, params: Value) -> i64 {
        self.next += 1;
        let msg = json!({ "jsonrpc": "2.0", "id": self.next, "method": method, "params": params });
        self.stdin
            .write_all(format!("{msg}\n").as_bytes())
            .await
            .unwrap();
        self.next
    }

    /// Reads lines until the response to `id`, calling `each` on every other line.
    async fn until_response(&mut self, id: i64, mut each: impl FnMut(&str)) -> Value {
        loop {
            let line = self.lines.next_line().await.unwrap().unwrap();
            if line.contains("\"result\"") || line.contains("\"error\"") {
                let v: Value = serde_json::from_str(&line).unwrap();
                if v["id"] == id {
                    return v["result"].clone();
                }
            }
            each(&line);
        }
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params).await;
        self.until_response(id, |_| {}).await
    }
}

async fn bare_first_update(cwd: &Path) -> Vec<Duration> {
    let mut bare = Bare::start(cwd).await;
    let mut times = Vec::new();
    for _ in 0..THREADS {
        let start = Instant::now();
        let session = bare
            .call("session/new", json!({ "cwd": cwd, "mcpServers": [] }))
            .await;
        let sid = session["sessionId"].as_str().unwrap().to_string();
        let id = bare
            .send(
                "session/prompt",
                json!({ "sessionId": sid, "prompt": [{ "type": "text", "text": "say hi" }] }),
            )
            .await;
        let mut first = None;
        bare.until_response(id, |line| {
            if first.is_none() && line.contains("session/update") {
                first = Some(start.elapsed());
            }
        })
        .await;
        times.push(first.unwrap());
    }
    let _ = bare.child.kill().await;
    times
}

async fn bare_per_message(cwd: &Path, prompt: &str) -> Vec<Duration> {
    let mut bare = Bare::start(cwd).await;
    let session = bare
        .call("session/new", json!({ "cwd": cwd, "mcpServers": [] }))
        .await;
    let sid = session["sessionId"].as_str().unwrap().to_string();
    let mut times = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let id = bare
            .send(
                "session/prompt",
                json!({ "sessionId": sid, "prompt": [{ "type": "text", "text": prompt }] }),
            )
            .await;
        let mut n = 0;
        bare.until_response(id, |_| n += 1).await;
        assert!(n >= CHUNKS);
        times.push(start.elapsed() / CHUNKS as u32);
    }
    let _ = bare.child.kill().await;
    times
}

/// Plain pipe echo: the same number of update-sized lines through `cat`.
async fn cat_per_message() -> Vec<Duration> {
    let line = json!({ "jsonrpc": "2.0", "method": "session/update", "params": { "sessionId": "sess-1",
        "update": { "sessionUpdate": "agent_message_chunk", "content": { "type": "text", "text": "x" } } } })
    .to_string()
        + "\n";
    let mut times = Vec::new();
    for _ in 0..ROUNDS {
        let mut child = tokio::process::Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let payload = line.repeat(CHUNKS);
        let start = Instant::now();
        let writer = tokio::spawn(async move {
            stdin.write_all(payload.as_bytes()).await.unwrap();
        });
        for _ in 0..CHUNKS {
            let l = lines.next_line().await.unwrap().unwrap();
            let _: Value = serde_json::from_str(&l).unwrap();
        }
        times.push(start.elapsed() / CHUNKS as u32);
        writer.await.unwrap();
    }
    times
}

async fn run() {
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::new("127.0.0.1:0", dir.path().join("data"));
    config.database_url = Some(db.url().to_string());
    config
        .agent_profiles
        .insert("test".into(), AgentProfile::new(AGENT, &[]));
    config.default_agent = "test".into();
    let app = spectask::app::build(&config).await.unwrap();
    let store = app.store();
    let agents = app.agents();
    let settings = ProjectSettings {
        base_branch: "main".into(),
        spec_folder: "specs".into(),
        verification_command: None,
        planning_wip_limit: None,
        implementation_wip_limit: None,
        max_parallel_sessions: 3,
        permission_policy: Default::default(),
        ..Default::default()
    };
    let project = store
        .create_project(
            NewProject {
                name: "bench".into(),
                path: "/bench".into(),
                settings,
            },
            "bench",
        )
        .await
        .unwrap();
    let task = store
        .create_spec_task(
            NewSpecTask {
                project_id: project.id,
                title: "bench".into(),
                description: String::new(),
                prompt: "bench".into(),
                priority: Priority::Medium,
                task_type: TaskType::Feature,
                max_parallel_sessions: None,
                agent_profile: None,
            },
            "bench",
        )
        .await
        .unwrap();
    let wt = dir.path().join("wt");
    std::fs::create_dir_all(&wt).unwrap();
    let rt = agents.runtime(task.id).await.unwrap();
    rt.start().await.unwrap();
    let mut live = agents.subscribe();
    let new_session = |name: String| NewWorkSession {
        spec_task_id: task.id,
        parent_id: None,
        implementation_task_id: None,
        kind: WorkSessionKind::Implementation,
        name,
        prompt: String::new(),
    };

    // 1. Asking for a thread to the first session/update.
    let mut ours = Vec::new();
    for i in 0..THREADS {
        let ws = store
            .create_work_session(new_session(format!("s{i}")), "bench")
            .await
            .unwrap()
            .id;
        let start = Instant::now();
        rt.open_thread(ws, wt.clone()).await.unwrap();
        let r = rt.clone();
        let turn = tokio::spawn(async move { r.prompt(ws, "say hi").await });
        loop {
            let update = live.recv().await.unwrap();
            if update.work_session_id == ws {
                break;
            }
        }
        ours.push(start.elapsed());
        turn.await.unwrap().unwrap();
    }
    let bare = bare_first_update(&wt).await;
    let (o, b) = (median(ours), median(bare));
    println!(
        "thread to first session/update (median of {THREADS}): spectask {:.3} ms | bare client {:.3} ms | ratio {:.1}x",
        ms(o),
        ms(b),
        o.as_secs_f64() / b.as_secs_f64()
    );

    // 2. Per message.
    let prompt = format!("stream {CHUNKS} {}", "x".repeat(CHUNKS));
    let ws = store
        .create_work_session(new_session("stream".into()), "bench")
        .await
        .unwrap()
        .id;
    rt.open_thread(ws, wt.clone()).await.unwrap();
    let mut ours = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        rt.prompt(ws, &prompt).await.unwrap();
        ours.push(start.elapsed() / CHUNKS as u32);
    }
    let bare = bare_per_message(&wt, &prompt).await;
    let echo = cat_per_message().await;
    let (o, b, e) = (median(ours), median(bare), median(echo));
    println!(
        "per session/update message (median of {ROUNDS} turns of {CHUNKS}): spectask {:.2} us | same agent, bare reader {:.2} us \
         | plain pipe echo (cat) {:.2} us | spectask overhead over the bare reader {:.2} us/message ({:.2}x)",
        us(o),
        us(b),
        us(e),
        us(o.saturating_sub(b)),
        o.as_secs_f64() / b.as_secs_f64()
    );
    rt.stop().await.unwrap();
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}
