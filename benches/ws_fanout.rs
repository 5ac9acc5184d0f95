//! `cargo bench --bench ws_fanout`: an event committed to the store, and the time
//! until each of 100 WebSocket clients of `/api/v1/events/ws` has it, p50 and p99
//! over 200 events. Measured in the same run against two baselines with the same
//! clients and the same frame size:
//! - a bare `tokio::sync::broadcast` to 100 in-process receivers (no network);
//! - the same broadcast forwarded to 100 WebSockets by a minimal axum server (the
//!   transport alone): spectask's figure is divided by this one (goal ≤ 2, and
//!   p99 ≤ 10 ms).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message as AxMessage, WebSocketUpgrade};
use futures::StreamExt;
use spectask::config::ServeConfig;
use tokio::sync::{broadcast, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const CLIENTS: usize = 100;
const EVENTS: usize = 200;

/// Connects `CLIENTS` WebSockets to `url`; each reports `(event number, arrival)`
/// for every text frame whose JSON has a numeric `seq` (ours: the token name).
async fn clients(
    url: &str,
    auth: Option<&str>,
    seq_of: fn(&str) -> Option<usize>,
) -> mpsc::UnboundedReceiver<(usize, Instant)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut ready = Vec::new();
    for _ in 0..CLIENTS {
        let mut request = url.into_client_request().unwrap();
        if let Some(a) = auth {
            request
                .headers_mut()
                .insert("authorization", a.parse().unwrap());
        }
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        ready.push(ready_rx);
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut ready_tx = Some(ready_tx);
            while let Some(Ok(message)) = ws.next().await {
                if let Message::Text(text) = message {
                    let now = Instant::now();
                    if text.contains("\"caught_up\"") || text.contains("\"hello\"") {
                        if let Some(r) = ready_tx.take() {
                            let _ = r.send(());
                        }
                    } else if let Some(seq) = seq_of(&text) {
                        let _ = tx.send((seq, now));
                    }
                }
            }
        });
    }
    for r in ready {
        r.await.unwrap();
    }
    rx
}

fn our_seq(text: &str) -> Option<usize> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    v["event"]["data"]["name"]
        .as_str()?
        .strip_prefix("bench-")?
        .parse()
        .ok()
}

fn bare_seq(text: &str) -> Option<usize> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    v["seq"].as_u64().map(|s| s as usize)
}

/// Waits for all `CLIENTS` arrivals of event `seq`; returns each one's latency from `sent`.
async fn collect(
    rx: &mut mpsc::UnboundedReceiver<(usize, Instant)>,
    seq: usize,
    sent: Instant,
    out: &mut Vec<Duration>,
) {
    let mut got = 0;
    while got < CLIENTS {
        let (s, at) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("every client gets every event")
            .unwrap();
        assert_eq!(s, seq, "events arrive in order, once");
        out.push(at.saturating_duration_since(sent));
        got += 1;
    }
}

fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1000.0;
    (at(0.50), at(0.99))
}

async fn spectask_run() -> Vec<Duration> {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::new("127.0.0.1:0", dir.path().join("data"));
    config.background = false;
    let app = spectask::app::build(&config).await.unwrap();
    let token = std::fs::read_to_string(app.token_file()).unwrap();
    let store = app.store();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(listener, async {
        stopped.await.ok();
    }));
    let auth = format!("Bearer {}", token.trim());
    let mut rx = clients(
        &format!("ws://{addr}/api/v1/events/ws?after=0"),
        Some(&auth),
        our_seq,
    )
    .await;
    let mut latencies = Vec::new();
    for seq in 0..EVENTS {
        // An event whose commit is the one measured: the clock starts when it returns.
        store
            .create_token(&format!("bench-{seq}"), &format!("hash-{seq}"), "bench")
            .await
            .unwrap();
        let sent = Instant::now();
        collect(&mut rx, seq, sent, &mut latencies).await;
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    latencies
}

/// A frame the size of spectask's `token.created` event frame.
fn bare_frame(seq: usize) -> String {
    serde_json::json!({ "type": "event", "seq": seq, "event": {
        "id": seq, "project_id": null, "spec_task_id": null, "entity": "token", "entity_id": seq,
        "kind": "token.created", "data": { "name": format!("bench-{seq}") }, "actor": "bench",
        "created_at": "2026-12-02T00:00:00.000Z" } })
    .to_string()
}

async fn bare_ws_run() -> Vec<Duration> {
    let (tx, _) = broadcast::channel::<axum::extract::ws::Utf8Bytes>(1024);
    let sender = tx.clone();
    let app = axum::Router::new().route(
        "/ws",
        axum::routing::get(move |upgrade: WebSocketUpgrade| {
            let mut rx = sender.subscribe();
            async move {
                upgrade.on_upgrade(move |mut socket| async move {
                    let hello = AxMessage::Text(r#"{"type":"hello"}"#.into());
                    if socket.send(hello).await.is_err() {
                        return;
                    }
                    while let Ok(frame) = rx.recv().await {
                        if socket.send(AxMessage::Text(frame)).await.is_err() {
                            return;
                        }
                    }
                })
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let mut rx = clients(&format!("ws://{addr}/ws"), None, bare_seq).await;
    let mut latencies = Vec::new();
    for seq in 0..EVENTS {
        let sent = Instant::now();
        tx.send(bare_frame(seq).into()).unwrap();
        collect(&mut rx, seq, sent, &mut latencies).await;
    }
    server.abort();
    latencies
}

async fn in_process_run() -> Vec<Duration> {
    let (tx, _) = broadcast::channel::<Arc<String>>(1024);
    let (arrived, mut rx) = mpsc::unbounded_channel();
    let mut ready = Vec::new();
    for _ in 0..CLIENTS {
        let mut sub = tx.subscribe();
        let arrived = arrived.clone();
        ready.push(());
        tokio::spawn(async move {
            while let Ok(frame) = sub.recv().await {
                let now = Instant::now();
                if let Some(seq) = bare_seq(&frame) {
                    let _ = arrived.send((seq, now));
                }
            }
        });
    }
    let mut latencies = Vec::new();
    for seq in 0..EVENTS {
        let sent = Instant::now();
        tx.send(Arc::new(bare_frame(seq))).unwrap();
        collect(&mut rx, seq, sent, &mut latencies).await;
    }
    latencies
}

fn main() {
    // `cargo test --benches` runs benches with `--bench` absent: only check it builds.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (in_p50, in_p99) = percentiles(in_process_run().await);
        let (bare_p50, bare_p99) = percentiles(bare_ws_run().await);
        let (ours_p50, ours_p99) = percentiles(spectask_run().await);
        println!("event → each of {CLIENTS} clients, {EVENTS} events:");
        println!("  in-process broadcast (no network): p50 {in_p50:.3} ms  p99 {in_p99:.3} ms");
        println!(
            "  bare broadcast → {CLIENTS} WebSockets:  p50 {bare_p50:.3} ms  p99 {bare_p99:.3} ms"
        );
        println!("  spectask /api/v1/events/ws:        p50 {ours_p50:.3} ms  p99 {ours_p99:.3} ms");
        println!(
            "  spectask / bare WebSockets: p50 {:.2}×  p99 {:.2}×   (goal: p99 ≤ 10 ms and ≤ 2×)",
            ours_p50 / bare_p50,
            ours_p99 / bare_p99
        );
    });
}
