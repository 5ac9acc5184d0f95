//! `cargo bench --bench mcp_roundtrip`: the round trip of an agent's tool call over
//! MCP (agent → spectask → store → agent): `tools/call get_state` POSTed to `/mcp`
//! with a session token (the token checked in the database, the state read, the call
//! recorded in the session's transcript), 1,000 times, against a baseline measured in
//! the same run: `GET /healthz` on the same server with the same client.
//!
//! Prints p50 and p99 for each and the ratio of the p50s (goal: tool call p50 ≤ 5 ms).

#[path = "../tests/common/db.rs"]
mod db;

use std::time::{Duration, Instant};

use db::{Backend, TestDb};
use serde_json::json;
use spectask::auth::{generate_token, hash_token};
use spectask::config::ServeConfig;
use spectask::domain::{Priority, ProjectSettings, TaskType, WorkSessionKind};
use spectask::store::{NewProject, NewSpecTask, NewWorkSession};

const WARMUP: usize = 50;
const SAMPLES: usize = 1000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn timed(mut one: impl AsyncFnMut()) -> Vec<Duration> {
    let mut times = Vec::with_capacity(SAMPLES);
    for i in 0..WARMUP + SAMPLES {
        let start = Instant::now();
        one().await;
        if i >= WARMUP {
            times.push(start.elapsed());
        }
    }
    times.sort();
    times
}

async fn bench(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::new("127.0.0.1:0", dir.path().join("data"));
    config.database_url = Some(db.url().to_string());
    config.background = false;
    let app = spectask::app::build(&config).await.unwrap();
    let store = app.store();
    let project = store
        .create_project(
            NewProject {
                name: "bench".into(),
                path: "/bench".into(),
                settings: ProjectSettings::default(),
            },
            "bench",
        )
        .await
        .unwrap();
    let task = store
        .create_spec_task(
            NewSpecTask {
                project_id: project.id,
                title: "Bench".into(),
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
    let session = store
        .create_work_session(
            NewWorkSession {
                spec_task_id: task.id,
                parent_id: None,
                implementation_task_id: None,
                kind: WorkSessionKind::Spawned,
                name: "bench".into(),
                prompt: "bench".into(),
            },
            "bench",
        )
        .await
        .unwrap();
    let token = generate_token();
    store
        .issue_session_token(session.id, &hash_token(&token), "http", "bench")
        .await
        .unwrap();
    store
        .put_shared_state(task.id, "bench/key", &json!({"answer": 42}), 0, "bench")
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(listener, async {
        rx.await.ok();
    }));
    let client = reqwest::Client::new();
    let health = timed(async || {
        let r = client.get(format!("{base}/healthz")).send().await.unwrap();
        assert!(r.status().is_success());
        r.bytes().await.unwrap();
    })
    .await;
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "get_state", "arguments": {"key": "bench/key"}}});
    let tool = timed(async || {
        let r = client
            .post(format!("{base}/mcp"))
            .bearer_auth(&token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&call)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(
            body["result"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains("42"),
            "{body}"
        );
    })
    .await;
    let (h50, t50) = (percentile(&health, 0.5), percentile(&tool, 0.5));
    println!(
        "{:<10} MCP tools/call get_state ({SAMPLES} calls): p50 {:>7.3} ms  p99 {:>7.3} ms | \
         baseline GET /healthz: p50 {:>6.3} ms  p99 {:>6.3} ms | ratio p50 {:.1}x | goal p50 <= 5 ms: {}",
        format!("{backend:?}"),
        ms(t50),
        ms(percentile(&tool, 0.99)),
        ms(h50),
        ms(percentile(&health, 0.99)),
        t50.as_secs_f64() / h50.as_secs_f64(),
        if ms(t50) <= 5.0 { "met" } else { "NOT met" },
    );
    tx.send(()).ok();
    server.await.unwrap().unwrap();
}

fn main() {
    // `cargo test --benches` runs benches without `--bench`: measure only when asked.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        bench(Backend::Sqlite).await;
        bench(Backend::Postgres).await;
    });
}
