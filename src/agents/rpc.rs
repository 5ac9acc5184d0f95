//! JSON-RPC 2.0 over an agent's stdio, one message per line: the transport under
//! ACP. Requests we send wait for their response with a timeout; requests and
//! notifications the agent sends are handed to a [`Handler`], each request in a
//! task of its own so a handler may wait (for a person's permission answer, say)
//! without stopping the read loop.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{Mutex, mpsc, oneshot, watch};

/// The largest line we accept from an agent; a longer one is a protocol violation.
const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RpcError {
    /// The agent answered with a JSON-RPC error.
    #[error("{message} (code {code})")]
    Remote { code: i64, message: String },
    #[error("the agent did not answer {method} within {seconds}s")]
    Timeout { method: String, seconds: u64 },
    /// The connection is gone: the process exited or broke the protocol.
    #[error("the agent connection closed: {0}")]
    Closed(String),
}

/// An error we answer an agent's request with.
#[derive(Debug, Clone)]
pub struct HandlerError {
    pub code: i64,
    pub message: String,
}

impl HandlerError {
    pub fn invalid_params(message: impl Into<String>) -> HandlerError {
        HandlerError {
            code: -32602,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> HandlerError {
        HandlerError {
            code: -32002,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> HandlerError {
        HandlerError {
            code: -32603,
            message: message.into(),
        }
    }
}

/// What the client side does with the agent's messages.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn request(&self, method: &str, params: Value) -> Result<Value, HandlerError>;
    async fn notification(&self, method: &str, params: Value);
}

type Pending = Arc<Mutex<HashMap<i64, oneshot::Sender<Result<Value, RpcError>>>>>;

/// One JSON-RPC connection. Cloning shares it.
#[derive(Clone)]
pub struct Connection {
    out: mpsc::UnboundedSender<String>,
    pending: Pending,
    next_id: Arc<AtomicI64>,
    /// `Some(reason)` once the connection is closed.
    closed: watch::Receiver<Option<String>>,
    closed_tx: Arc<watch::Sender<Option<String>>>,
}

impl Connection {
    /// Starts the read and write loops over the given streams.
    pub fn start<R, W>(reader: R, writer: W, handler: Arc<dyn Handler>) -> Connection
    where
        R: tokio::io::AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (out, mut out_rx) = mpsc::unbounded_channel::<String>();
        let pending: Pending = Arc::default();
        let (closed_tx, closed) = watch::channel(None);
        let closed_tx = Arc::new(closed_tx);

        let mut writer = writer;
        let close_on_write = closed_tx.clone();
        tokio::spawn(async move {
            while let Some(mut line) = out_rx.recv().await {
                line.push('\n');
                if let Err(e) = writer.write_all(line.as_bytes()).await {
                    close(&close_on_write, format!("writing to the agent failed: {e}"));
                    break;
                }
                let _ = writer.flush().await;
            }
        });

        let conn = Connection {
            out: out.clone(),
            pending: pending.clone(),
            next_id: Arc::new(AtomicI64::new(1)),
            closed,
            closed_tx: closed_tx.clone(),
        };
        tokio::spawn(read_loop(reader, out, pending, closed_tx, handler));
        conn
    }

    /// Sends a request and waits for its result.
    pub async fn request(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, RpcError> {
        if let Some(reason) = self.closed.borrow().clone() {
            return Err(RpcError::Closed(reason));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().await.insert(id, tx);
        let msg = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        if self.out.send(msg.to_string()).is_err() {
            self.pending.lock().await.remove(&id);
            return Err(RpcError::Closed("the writer stopped".into()));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(RpcError::Closed(self.close_reason())),
            Err(_) => {
                self.pending.lock().await.remove(&id);
                Err(RpcError::Timeout {
                    method: method.to_string(),
                    seconds: timeout.as_secs(),
                })
            }
        }
    }

    pub fn notify(&self, method: &str, params: Value) {
        let msg = json!({ "jsonrpc": "2.0", "method": method, "params": params });
        let _ = self.out.send(msg.to_string());
    }

    /// Closes the connection from our side: the process it spoke to is gone even
    /// if its pipes are not (a launcher that re-executed its child leaves the child
    /// holding them). Everyone waiting learns why at once.
    pub async fn shut(&self, reason: String) {
        close(&self.closed_tx, reason.clone());
        for (_, tx) in self.pending.lock().await.drain() {
            let _ = tx.send(Err(RpcError::Closed(reason.clone())));
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.borrow().is_some()
    }

    fn close_reason(&self) -> String {
        self.closed
            .borrow()
            .clone()
            .unwrap_or_else(|| "closed".to_string())
    }

    /// Resolves when the connection closes, with the reason.
    pub async fn closed(&self) -> String {
        let mut rx = self.closed.clone();
        loop {
            if let Some(reason) = rx.borrow().clone() {
                return reason;
            }
            if rx.changed().await.is_err() {
                return "closed".into();
            }
        }
    }
}

fn close(tx: &watch::Sender<Option<String>>, reason: String) {
    tx.send_if_modified(|current| {
        if current.is_none() {
            *current = Some(reason);
            true
        } else {
            false
        }
    });
}

async fn read_loop<R>(
    reader: R,
    out: mpsc::UnboundedSender<String>,
    pending: Pending,
    closed_tx: Arc<watch::Sender<Option<String>>>,
    handler: Arc<dyn Handler>,
) where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    let mut lines = BufReader::with_capacity(64 * 1024, reader);
    let mut buf = Vec::new();
    let reason = loop {
        buf.clear();
        match lines.read_until(b'\n', &mut buf).await {
            Ok(0) => break "the agent closed its output (process exited)".to_string(),
            Err(e) => break format!("reading from the agent failed: {e}"),
            Ok(_) => {}
        }
        if buf.len() > MAX_LINE_BYTES {
            break format!("the agent sent a line over {MAX_LINE_BYTES} bytes");
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let msg: Value = match serde_json::from_str(line) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                let shown: String = line.chars().take(200).collect();
                break format!(
                    "the agent wrote something that is not JSON-RPC to stdout: {shown:?}"
                );
            }
        };
        dispatch(msg, &out, &pending, &handler).await;
    };
    close(&closed_tx, reason.clone());
    // Everyone still waiting learns why at once instead of at their timeout.
    for (_, tx) in pending.lock().await.drain() {
        let _ = tx.send(Err(RpcError::Closed(reason.clone())));
    }
}

async fn dispatch(
    msg: Value,
    out: &mpsc::UnboundedSender<String>,
    pending: &Pending,
    handler: &Arc<dyn Handler>,
) {
    let method = msg
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_string);
    let id = msg.get("id").cloned().filter(|v| !v.is_null());
    match (method, id) {
        // A response to one of our requests.
        (None, Some(id)) => {
            let Some(id) = id.as_i64() else { return };
            if let Some(tx) = pending.lock().await.remove(&id) {
                let result = match msg.get("error") {
                    Some(err) => Err(RpcError::Remote {
                        code: err.get("code").and_then(Value::as_i64).unwrap_or(-32603),
                        message: err
                            .get("message")
                            .and_then(Value::as_str)
                            .unwrap_or("unknown error")
                            .to_string(),
                    }),
                    None => Ok(msg.get("result").cloned().unwrap_or(Value::Null)),
                };
                let _ = tx.send(result);
            }
        }
        // A request from the agent: answer it from its own task.
        (Some(method), Some(id)) => {
            let params = msg.get("params").cloned().unwrap_or(Value::Null);
            let handler = handler.clone();
            let out = out.clone();
            tokio::spawn(async move {
                let reply = match handler.request(&method, params).await {
                    Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
                    Err(e) => json!({ "jsonrpc": "2.0", "id": id,
                                       "error": { "code": e.code, "message": e.message } }),
                };
                let _ = out.send(reply.to_string());
            });
        }
        (Some(method), None) => {
            let params = msg.get("params").cloned().unwrap_or(Value::Null);
            handler.notification(&method, params).await;
        }
        (None, None) => {}
    }
}
