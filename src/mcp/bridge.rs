//! `spectask mcp`: the stdio transport of the agent tools. An agent without HTTP MCP
//! starts this process (it is named in `mcpServers` with the server's URL and the
//! session token in its environment); it relays each JSON-RPC message from its stdin
//! to the server's `/mcp` endpoint and writes the answers to its stdout, one per
//! line. Requests run concurrently, so a tool that waits (`ask_person`) holds up
//! nothing else. The token never appears in what it prints.

use std::sync::Arc;

use anyhow::Context;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;

use super::{PATH, TOKEN_ENV, URL_ENV};

struct Relay {
    http: reqwest::Client,
    url: String,
    token: String,
    /// The protocol version `initialize` negotiated, sent on every later request.
    version: Mutex<Option<String>>,
}

/// Runs the bridge until stdin closes and every request in flight is answered.
pub async fn run() -> anyhow::Result<()> {
    let base = std::env::var(URL_ENV).with_context(|| format!("{URL_ENV} is not set"))?;
    let token = std::env::var(TOKEN_ENV).with_context(|| format!("{TOKEN_ENV} is not set"))?;
    let relay = Arc::new(Relay {
        http: reqwest::Client::builder()
            .build()
            .context("building the HTTP client")?,
        url: format!("{}{PATH}", base.trim_end_matches('/')),
        token,
        version: Mutex::new(None),
    });
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(line) = out_rx.recv().await {
            if stdout.write_all(line.as_bytes()).await.is_err()
                || stdout.write_all(b"\n").await.is_err()
                || stdout.flush().await.is_err()
            {
                break;
            }
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut in_flight = JoinSet::new();
    while let Some(line) = lines.next_line().await.context("reading stdin")? {
        if line.trim().is_empty() {
            continue;
        }
        let message: Value = match serde_json::from_str(&line) {
            Ok(m) => m,
            Err(e) => {
                let _ = out_tx.send(
                    json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": format!("parse error: {e}")}})
                        .to_string(),
                );
                continue;
            }
        };
        let relay = relay.clone();
        let out = out_tx.clone();
        let is_initialize = message.get("method").and_then(Value::as_str) == Some("initialize");
        let task = async move {
            for answer in relay.send(&message).await {
                let _ = out.send(answer.to_string());
            }
        };
        // `initialize` is answered before anything else is sent, so every later
        // request carries the negotiated version.
        if is_initialize {
            task.await;
        } else {
            in_flight.spawn(task);
        }
    }
    while in_flight.join_next().await.is_some() {}
    drop(out_tx);
    let _ = writer.await;
    Ok(())
}

impl Relay {
    /// Posts one message; returns what goes back to the agent (nothing for a
    /// notification or a response).
    async fn send(&self, message: &Value) -> Vec<Value> {
        let id = message.get("id").cloned();
        let is_request = message.get("method").is_some() && id.is_some();
        let mut req = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("accept", "application/json, text/event-stream")
            .json(message);
        if let Some(v) = self.version.lock().await.clone() {
            req = req.header("mcp-protocol-version", v);
        }
        let failure = |why: String| {
            if is_request {
                vec![json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32000, "message": why}})]
            } else {
                Vec::new()
            }
        };
        let response = match req.send().await {
            Ok(r) => r,
            Err(e) => return failure(format!("spectask is not reachable: {}", e.without_url())),
        };
        let status = response.status();
        let sse = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !status.is_success() {
            let detail = response.text().await.unwrap_or_default();
            return failure(format!(
                "spectask refused the call (HTTP {status}): {}",
                detail.trim()
            ));
        }
        let answers = if sse {
            // The stream may stay open after the answer: read up to the message that
            // answers this request (passing on what comes before it).
            match read_events(response, id.as_ref()).await {
                Ok(a) => a,
                Err(e) => return failure(format!("reading spectask's answer: {e}")),
            }
        } else {
            let body = match response.text().await {
                Ok(b) => b,
                Err(e) => {
                    return failure(format!("reading spectask's answer: {}", e.without_url()));
                }
            };
            if body.trim().is_empty() {
                Vec::new()
            } else {
                match serde_json::from_str(&body) {
                    Ok(v) => vec![v],
                    Err(e) => {
                        return failure(format!(
                            "spectask answered something that is not JSON: {e}"
                        ));
                    }
                }
            }
        };
        if message.get("method").and_then(Value::as_str) == Some("initialize")
            && let Some(v) = answers
                .iter()
                .find_map(|a| a.pointer("/result/protocolVersion").and_then(Value::as_str))
        {
            *self.version.lock().await = Some(v.to_string());
        }
        answers
    }
}

/// The messages of an SSE answer, up to the one whose id is `id` (all of them, to
/// the stream's end, when `id` is `None`).
async fn read_events(
    mut response: reqwest::Response,
    id: Option<&Value>,
) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    let mut pending = String::new();
    loop {
        let chunk = response
            .chunk()
            .await
            .map_err(|e| e.without_url().to_string())?;
        let Some(chunk) = chunk else { return Ok(out) };
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = pending.find('\n') {
            let line: String = pending.drain(..=end).collect();
            let Some(data) = line.trim_end().strip_prefix("data:") else {
                continue;
            };
            let Ok(message) = serde_json::from_str::<Value>(data.trim()) else {
                continue;
            };
            let done = id.is_some() && message.get("id") == id && message.get("method").is_none();
            out.push(message);
            if done {
                return Ok(out);
            }
        }
    }
}
