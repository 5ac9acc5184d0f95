//! Two replicas on one PostgreSQL database, each with its own data dir: what one
//! commits, the other's clients see at once (`LISTEN`/`NOTIFY` wakes its event hub;
//! the event table stays the truth). B commits nothing here, so nothing but A's
//! notifications can wake its hub.

mod common;

use std::time::{Duration, Instant};

use common::app::{TestApp, spawn_app, spawn_replica_of};
use common::db::Backend;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Far longer than a notification takes, far shorter than any poll would hide.
const WAIT: Duration = Duration::from_secs(5);

async fn ws_of(app: &TestApp) -> Ws {
    let addr = app.url.trim_start_matches("http://");
    let mut request = format!("ws://{addr}/api/v1/events/ws")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", app.token).parse().unwrap(),
    );
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap()
        .0
}

/// The next JSON frame, within [`WAIT`].
async fn frame(ws: &mut Ws) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a frame in time")
        {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("the WebSocket ended: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_one_replica_sees_what_another_commits_live() {
    let a = spawn_app(Backend::Postgres).await;
    let b = spawn_replica_of(&a, |_| {}).await;
    let mut ws = ws_of(&b).await;
    while frame(&mut ws).await["type"] != "caught_up" {}
    // Each of A's commits reaches B's client, in order, without B doing anything.
    let mut latencies = Vec::new();
    let project = a.project().await;
    for i in 0..100 {
        let started = Instant::now();
        let task = a.task(project, &format!("made on replica A, {i}")).await;
        let seen = loop {
            let f = frame(&mut ws).await;
            if f["type"] == "event"
                && f["event"]["kind"] == "spec_task.created"
                && f["event"]["spec_task_id"] == task
            {
                break f;
            }
        };
        latencies.push(started.elapsed());
        assert_eq!(seen["event"]["spec_task_id"], task);
    }
    latencies.sort();
    eprintln!(
        "replica A's commit (the API call that makes a task) → B's WebSocket client, {} events: p50 {:?}, p99 {:?}",
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 99 / 100]
    );
    let (status, _) = a
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/projects/{project}"),
            Some(json!({ "name": "renamed on A" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // And B reads A's work as its own.
    let (_, project_on_b) = b.get(&format!("/api/v1/projects/{project}")).await;
    assert_eq!(project_on_b["name"], "renamed on A");
    b.shutdown().await;
    a.shutdown().await;
}
