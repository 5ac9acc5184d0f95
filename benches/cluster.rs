//! `cargo bench --bench cluster`: the figures of a cluster of real replicas
//! (`spectask serve --cluster` binaries, each with its own data dir) on one fresh
//! PostgreSQL database, running the scripted agent. Each figure has its baseline
//! measured in the same run:
//!
//! - **Takeover after SIGKILL** (median of 5 rounds): the time from killing the
//!   replica that runs a task (mid-turn) to the other replica's lease on it, against
//!   the lease itself (`SPECTASK_BENCH_LEASE_TTL_MS`, default the default 15 s): a
//!   takeover cannot come before the lease expires, so the excess is what the
//!   cluster adds.
//! - **Event latency, replica A → a client of replica B**: a WebSocket client on
//!   each replica while A runs tasks; per event, the time from its commit (its
//!   `created_at`, in milliseconds) to each client, and B's client against A's own
//!   for the same event (both clocks in this process, so that difference is exact).
//! - **Session starts per second** with one and with two replicas: 24 one-step
//!   plans imported, then approved at once; the time from the first approval to
//!   the last session's prompt, the one-replica run being the baseline.

#[path = "../tests/common/mod.rs"]
#[allow(dead_code)]
mod common;
#[path = "../tests/cluster/rig.rs"]
#[allow(dead_code)]
mod rig;
#[path = "../tests/runs/server.rs"]
#[allow(dead_code)]
mod server;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::Method;
use rig::{Rig, follow_until, leases_of};
use serde_json::{Value, json};
use server::Api;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const ROUNDS: usize = 5;
const STARTS: usize = 24;

fn lease_ttl_ms() -> u64 {
    std::env::var("SPECTASK_BENCH_LEASE_TTL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15_000)
}

fn prompting(e: &Value, task: i64) -> bool {
    e["spec_task_id"] == task
        && e["kind"] == "agent_thread.status_changed"
        && e["data"]["to"] == "prompting"
}

fn percentile(sorted: &[f64], p: usize) -> f64 {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// One round: the replica running a task (mid-turn) is SIGKILLed; returns the time
/// until the survivor's lease on the task reaches the survivor's client.
async fn takeover(ttl_ms: u64) -> Duration {
    let rig = Rig::new(ttl_ms).await;
    let mut replicas = vec![rig.replica("a", 4).await, rig.replica("b", 4).await];
    let project = rig.project(&replicas[0].api).await;
    let task = rig.submit(&replicas[0].api, project, 0, 600_000).await;
    let seen = follow_until(&replicas[1].api, |s| {
        s.iter().any(|e| prompting(e, task.id))
    })
    .await;
    let owner = leases_of(&seen, task.id).last().unwrap()["data"]["replica"]
        .as_str()
        .unwrap()
        .to_string();
    let (dead, survivor) = if owner == "a" { (0, 1) } else { (1, 0) };
    replicas[dead].kill().await;
    let killed = Instant::now();
    follow_until(&replicas[survivor].api, |s| {
        leases_of(s, task.id)
            .iter()
            .any(|l| l["data"]["from"] == owner.as_str())
    })
    .await;
    let took = killed.elapsed();
    for r in replicas {
        r.stop().await;
    }
    took
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn ws_of(api: &Api) -> Ws {
    let addr = api.url().trim_start_matches("http://").to_string();
    let mut request = format!("ws://{addr}/api/v1/events/ws")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", api.token()).parse().unwrap(),
    );
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();
    // Live from here on.
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let f: Value = serde_json::from_str(&t).unwrap();
                if f["type"] == "caught_up" {
                    return ws;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("the WebSocket ended: {other:?}"),
        }
    }
}

/// Reads `ws` until the event log shows every task in `tasks` finished; returns
/// each event's id with its `created_at` (ms), the wall clock (ms, fractional) and
/// the instant it arrived.
fn collect(mut ws: Ws, tasks: Vec<i64>) -> tokio::task::JoinHandle<Vec<(i64, i64, f64, Instant)>> {
    tokio::spawn(async move {
        let mut out = Vec::new();
        let mut left = tasks;
        while !left.is_empty() {
            let msg = tokio::time::timeout(rig::WAIT, ws.next())
                .await
                .expect("events in time");
            let Some(Ok(Message::Text(t))) = msg else {
                continue;
            };
            let now = Instant::now();
            let wall = chrono::Utc::now().timestamp_micros() as f64 / 1000.0;
            let f: Value = serde_json::from_str(&t).unwrap();
            if f["type"] != "event" {
                continue;
            }
            let e = &f["event"];
            let created = chrono::DateTime::parse_from_rfc3339(e["created_at"].as_str().unwrap())
                .unwrap()
                .timestamp_millis();
            out.push((e["id"].as_i64().unwrap(), created, wall, now));
            if e["kind"] == "spec_task.status_changed" && e["data"]["to"] == "implementation_review"
            {
                left.retain(|t| *t != e["spec_task_id"].as_i64().unwrap());
            }
        }
        out
    })
}

/// Replica A runs six plans (chains of three steps) while a client on each replica
/// watches; returns (A's client, B's client, B − A) latencies in ms, sorted.
async fn event_latency(ttl_ms: u64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let rig = Rig::new(ttl_ms).await;
    let a = rig.replica("a", 8).await;
    let project = rig.project(&a.api).await;
    let mut tasks = Vec::new();
    for n in 0..6 {
        tasks.push(rig.submit(&a.api, project, 4 * n + 3, 1500).await.id);
    }
    let all = tasks.clone();
    // A holds every task before B exists, so every event of the run is A's.
    follow_until(&a.api, |s| all.iter().all(|t| !leases_of(s, *t).is_empty())).await;
    let b = rig.replica("b", 8).await;
    let on_a = collect(ws_of(&a.api).await, tasks.clone());
    let on_b = collect(ws_of(&b.api).await, tasks.clone());
    let on_a = on_a.await.unwrap();
    let on_b = on_b.await.unwrap();
    let seen_by_a: HashMap<i64, Instant> = on_a.iter().map(|(id, _, _, at)| (*id, *at)).collect();
    let from_commit = |v: &[(i64, i64, f64, Instant)]| {
        let mut l: Vec<f64> = v.iter().map(|(_, c, w, _)| w - *c as f64).collect();
        l.sort_by(f64::total_cmp);
        l
    };
    let mut extra: Vec<f64> = on_b
        .iter()
        .filter_map(|(id, _, _, at)| {
            seen_by_a.get(id).map(|a_at| {
                if *at >= *a_at {
                    (*at - *a_at).as_secs_f64() * 1e3
                } else {
                    -((*a_at - *at).as_secs_f64() * 1e3)
                }
            })
        })
        .collect();
    extra.sort_by(f64::total_cmp);
    let leases = a.api.get("/cluster").await.unwrap();
    assert!(
        leases["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "b"),
        "B is part of the cluster: {leases}"
    );
    a.stop().await;
    b.stop().await;
    (from_commit(&on_a), from_commit(&on_b), extra)
}

/// `STARTS` one-step plans imported, then approved all at once (through the
/// replicas in turn); returns the time from the first approval to the last
/// session's prompt, and how many tasks each replica took.
async fn session_starts(ttl_ms: u64, replicas: usize) -> (Duration, HashMap<String, usize>) {
    let rig = Rig::new(ttl_ms).await;
    let mut servers = Vec::new();
    for name in ["a", "b"].iter().take(replicas) {
        servers.push(rig.replica(name, STARTS).await);
    }
    let project = rig.project(&servers[0].api).await;
    let mut ids = Vec::new();
    for n in 0..STARTS {
        let plan = "# Implementation Plan\n\n- [ ] 1. Wait\n  - sleep 600000\n";
        let files = json!({
            "requirements.md": common::spec::REQUIREMENTS,
            "design.md": common::spec::DESIGN,
            "tasks.md": plan,
        });
        let task = servers[0]
            .api
            .ok(
                Method::POST,
                "/spec-tasks/import",
                Some(
                    json!({ "project_id": project, "title": format!("Start {n}"), "files": files }),
                ),
            )
            .await
            .unwrap();
        ids.push(task["id"].as_i64().unwrap());
    }
    let started = Instant::now();
    let approvals = ids.iter().enumerate().map(|(i, id)| {
        let api = servers[i % servers.len()].api.clone();
        let id = *id;
        async move {
            api.ok(
                Method::POST,
                &format!("/spec-tasks/{id}/approve"),
                Some(json!({})),
            )
            .await
            .unwrap()
        }
    });
    futures::future::join_all(approvals).await;
    let seen = follow_until(&servers[0].api, |s| {
        ids.iter().all(|t| s.iter().any(|e| prompting(e, *t)))
    })
    .await;
    let took = started.elapsed();
    let mut shares = HashMap::new();
    for t in &ids {
        let owner = leases_of(&seen, *t).last().unwrap()["data"]["replica"]
            .as_str()
            .unwrap()
            .to_string();
        *shares.entry(owner).or_default() += 1;
    }
    for s in servers {
        s.stop().await;
    }
    (took, shares)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let ttl = lease_ttl_ms();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut rounds = Vec::new();
            for _ in 0..ROUNDS {
                let took = takeover(ttl).await;
                println!("takeover after SIGKILL: {} ms", took.as_millis());
                rounds.push(took);
            }
            rounds.sort();
            let median = rounds[ROUNDS / 2];
            println!(
                "takeover after SIGKILL, median of {ROUNDS}: {} ms with a {ttl} ms lease \
                 (ratio {:.3}; lease + {} ms; rounds {:?} ms)",
                median.as_millis(),
                median.as_secs_f64() * 1e3 / ttl as f64,
                median.as_millis() as i64 - ttl as i64,
                rounds.iter().map(|r| r.as_millis()).collect::<Vec<_>>()
            );

            let (own, other, extra) = event_latency(ttl).await;
            println!(
                "event latency, commit → a client of replica A (the one that ran the task), {} events: \
                 p50 {:.1} ms, p99 {:.1} ms",
                own.len(),
                percentile(&own, 50),
                percentile(&own, 99)
            );
            println!(
                "event latency, commit on A → a client of replica B, {} events: p50 {:.1} ms, p99 {:.1} ms \
                 (B's client after A's, same event: p50 {:.2} ms, p99 {:.2} ms)",
                other.len(),
                percentile(&other, 50),
                percentile(&other, 99),
                percentile(&extra, 50),
                percentile(&extra, 99)
            );

            let (one, shares_one) = session_starts(ttl, 1).await;
            let (two, shares_two) = session_starts(ttl, 2).await;
            let rate = |d: Duration| STARTS as f64 / d.as_secs_f64();
            println!(
                "session starts, {STARTS} plans approved at once: one replica {:.1}/s ({} ms, {shares_one:?}), \
                 two replicas {:.1}/s ({} ms, {shares_two:?}); ratio two/one {:.2}",
                rate(one),
                one.as_millis(),
                rate(two),
                two.as_millis(),
                rate(two) / rate(one)
            );
        });
}
