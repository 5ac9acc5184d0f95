//! `cargo bench --bench list_latency`: the latency of `GET /api/v1/spec-tasks` (the
//! default page of 50, newest first) with 1,000 tasks stored, on SQLite and on
//! PostgreSQL, against a baseline measured in the same run: `GET /healthz` on the
//! same server (same HTTP stack and client, no auth and no database).
//!
//! Prints p50 and p95 for each and the ratio of the p50s. Set SPECTASK_TEST_PG_URL
//! to use another PostgreSQL server.

#[path = "../tests/common/db.rs"]
mod db;

use std::time::{Duration, Instant};

use db::{Backend, TestDb};
use spectask::config::ServeConfig;
use spectask::domain::{Priority, ProjectSettings, TaskType};
use spectask::store::{NewProject, NewSpecTask};

const TASKS: usize = 1000;
const WARMUP: usize = 50;
const SAMPLES: usize = 500;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn measure(client: &reqwest::Client, url: &str, token: &str) -> Vec<Duration> {
    let mut times = Vec::with_capacity(SAMPLES);
    for i in 0..WARMUP + SAMPLES {
        let start = Instant::now();
        let resp = client.get(url).bearer_auth(token).send().await.unwrap();
        assert!(resp.status().is_success(), "{url}: {}", resp.status());
        let body = resp.bytes().await.unwrap();
        let elapsed = start.elapsed();
        assert!(!body.is_empty());
        if i >= WARMUP {
            times.push(elapsed);
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
    let app = spectask::app::build(&config).await.unwrap();
    let token = std::fs::read_to_string(app.token_file())
        .unwrap()
        .trim()
        .to_string();
    let store = app.store();
    let project = store
        .create_project(
            NewProject {
                name: "bench".into(),
                path: "/bench".into(),
                settings: ProjectSettings {
                    base_branch: "main".into(),
                    spec_folder: "specs".into(),
                    verification_command: None,
                    planning_wip_limit: None,
                    implementation_wip_limit: None,
                    max_parallel_sessions: 3,
                    permission_policy: Default::default(),
                    ..Default::default()
                },
            },
            "bench",
        )
        .await
        .unwrap();
    for i in 0..TASKS {
        let new = NewSpecTask {
            project_id: project.id,
            title: format!("Task number {i}: do something useful"),
            description: "A description of moderate length, as people write them.".into(),
            prompt: "Implement the feature described in the ticket, with tests.\n".repeat(5),
            priority: Priority::Medium,
            task_type: TaskType::Feature,
            max_parallel_sessions: None,
            agent_profile: None,
        };
        store.create_spec_task(new, "bench").await.unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(listener, async {
        rx.await.ok();
    }));
    let client = reqwest::Client::new();
    let health = measure(&client, &format!("{base}/healthz"), &token).await;
    let list = measure(&client, &format!("{base}/api/v1/spec-tasks"), &token).await;
    let (h50, l50) = (percentile(&health, 0.5), percentile(&list, 0.5));
    println!(
        "{:<10} GET /api/v1/spec-tasks ({TASKS} tasks, page of 50): p50 {:>8.3} ms  p95 {:>8.3} ms | \
         baseline GET /healthz: p50 {:>6.3} ms  p95 {:>6.3} ms | ratio p50 {:.1}x",
        format!("{backend:?}"),
        l50.as_secs_f64() * 1e3,
        percentile(&list, 0.95).as_secs_f64() * 1e3,
        h50.as_secs_f64() * 1e3,
        percentile(&health, 0.95).as_secs_f64() * 1e3,
        l50.as_secs_f64() / h50.as_secs_f64(),
    );
    tx.send(()).ok();
    server.await.unwrap().unwrap();
}

fn main() {
    // `cargo test --benches` runs benches with `--bench` absent; only measure when
    // asked to, so the test suite stays quick.
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
