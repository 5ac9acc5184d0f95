//! JSON-RPC 2.0 over stdio, one message per line.
//!
//! Everything the agent writes goes through one writer task fed by a channel, so
//! lines from concurrent turns never interleave. Requests the agent sends to the
//! client get ids from a counter; the reader loop hands each response to
//! [`Peer::deliver`], which wakes the task waiting for it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

/// A JSON-RPC error object, as received from the client or sent to it.
#[derive(Debug, Clone)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
        }
    }

    pub fn method_not_found(method: &str) -> Self {
        RpcError::new(-32601, format!("method not found: {method}"))
    }

    pub fn invalid_params(message: impl Into<String>) -> Self {
        RpcError::new(-32602, message)
    }

    fn from_value(error: &Value) -> Self {
        RpcError {
            code: error.get("code").and_then(Value::as_i64).unwrap_or(-32603),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("error without a message")
                .to_string(),
        }
    }
}

pub type RpcResult = Result<Value, RpcError>;

enum Out {
    Line(String),
    Flush(oneshot::Sender<()>),
}

/// The agent's side of the connection: sends anything, and matches responses to
/// the requests it sent.
pub struct Peer {
    out: mpsc::UnboundedSender<Out>,
    next_id: AtomicU64,
    /// Waiters by request id; `None` once stdin is closed and no answer can come.
    pending: Mutex<Option<HashMap<u64, oneshot::Sender<RpcResult>>>>,
}

impl Peer {
    /// Creates the peer and starts the task that owns stdout.
    pub fn start() -> Self {
        let (out, mut rx) = mpsc::unbounded_channel::<Out>();
        tokio::spawn(async move {
            let mut stdout = tokio::io::stdout();
            while let Some(item) = rx.recv().await {
                match item {
                    Out::Line(mut line) => {
                        line.push('\n');
                        if stdout.write_all(line.as_bytes()).await.is_err() {
                            break;
                        }
                        // Flush once the queue is drained, not after every line.
                        if rx.is_empty() && stdout.flush().await.is_err() {
                            break;
                        }
                    }
                    Out::Flush(done) => {
                        let _ = stdout.flush().await;
                        let _ = done.send(());
                    }
                }
            }
        });
        Peer {
            out,
            next_id: AtomicU64::new(1),
            pending: Mutex::new(Some(HashMap::new())),
        }
    }

    /// Queues one line exactly as given (used to break the protocol on purpose).
    pub fn raw(&self, line: &str) {
        let _ = self.out.send(Out::Line(line.to_string()));
    }

    fn send(&self, message: Value) {
        self.raw(&message.to_string());
    }

    pub fn notify(&self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    pub fn respond(&self, id: Value, result: RpcResult) {
        match result {
            Ok(result) => self.send(json!({"jsonrpc": "2.0", "id": id, "result": result})),
            Err(e) => self.send(json!({
                "jsonrpc": "2.0",
                "id": id,
                "error": {"code": e.code, "message": e.message},
            })),
        }
    }

    /// Sends a request to the client and waits for its response. Dropping the
    /// future (e.g. when the turn is cancelled) forgets the request.
    pub async fn request(&self, method: &str, params: Value) -> RpcResult {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        match self.pending.lock().unwrap().as_mut() {
            Some(pending) => pending.insert(id, tx),
            None => return Err(closed()),
        };
        let _forget = Forget { peer: self, id };
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        rx.await.unwrap_or_else(|_| Err(closed()))
    }

    /// Routes a response from the client to the task waiting for it.
    pub fn deliver(&self, message: &Value) {
        let Some(id) = message.get("id").and_then(Value::as_u64) else {
            eprintln!("[test-agent] response with an id I never sent: {message}");
            return;
        };
        let waiter = self
            .pending
            .lock()
            .unwrap()
            .as_mut()
            .and_then(|p| p.remove(&id));
        let Some(waiter) = waiter else {
            eprintln!("[test-agent] response to unknown or abandoned request {id}");
            return;
        };
        let result = match message.get("error") {
            Some(error) if !error.is_null() => Err(RpcError::from_value(error)),
            _ => Ok(message.get("result").cloned().unwrap_or(Value::Null)),
        };
        let _ = waiter.send(result);
    }

    /// The client is gone: requests waiting for an answer, and later ones, fail.
    pub fn close(&self) {
        self.pending.lock().unwrap().take();
    }

    /// Waits until everything queued so far is written and flushed, or `limit`
    /// has passed.
    pub async fn flush(&self, limit: Duration) {
        let (tx, rx) = oneshot::channel();
        if self.out.send(Out::Flush(tx)).is_ok() {
            let _ = tokio::time::timeout(limit, rx).await;
        }
    }
}

fn closed() -> RpcError {
    RpcError::new(-32603, "connection closed")
}

/// Removes a pending request when its waiter goes away.
struct Forget<'a> {
    peer: &'a Peer,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if let Some(pending) = self.peer.pending.lock().unwrap().as_mut() {
            pending.remove(&self.id);
        }
    }
}
