//! The agent's MCP client, for the script commands `mcp TOOL JSON` and `mcp-list`.
//!
//! A session remembers the `mcpServers` of `session/new` / `session/load`; the first
//! one is connected on first use and kept for the session: a stdio server is a child
//! process (JSON-RPC 2.0, one message per line, its stderr is ours), an HTTP server
//! is spoken to with Streamable HTTP (MCP 2025-06-18: one POST per message, the
//! answer as `application/json` or as a `text/event-stream`). Connecting is
//! `initialize`, then `notifications/initialized`. Failures are `Err(String)`, for
//! the turn to report; nothing here panics on what a server sends.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

/// The MCP revision the client asks for in `initialize`.
pub const PROTOCOL_VERSION: &str = "2025-06-18";
/// How long one `mcp` / `mcp-list` command may take, connecting included (a tool
/// may long-poll).
pub const CALL_LIMIT: Duration = Duration::from_secs(120);

/// One entry of ACP's `mcpServers` (the `sse` kind is not supported and skipped).
#[derive(Debug, Clone, PartialEq)]
pub enum Server {
    Stdio {
        name: String,
        command: String,
        args: Vec<String>,
        env: Vec<(String, String)>,
    },
    Http {
        name: String,
        url: String,
        headers: Vec<(String, String)>,
    },
}

impl Server {
    /// The servers of an `mcpServers` value; `sse` and malformed entries are
    /// skipped (and logged).
    pub fn parse_list(value: &Value) -> Vec<Server> {
        let mut servers = Vec::new();
        for entry in value.as_array().into_iter().flatten() {
            let name = entry["name"].as_str().unwrap_or("").to_string();
            let server = match entry["type"].as_str() {
                Some("http") => entry["url"].as_str().map(|url| Server::Http {
                    name,
                    url: url.to_string(),
                    headers: pairs(&entry["headers"]),
                }),
                None | Some("stdio") => entry["command"].as_str().map(|command| Server::Stdio {
                    name,
                    command: command.to_string(),
                    args: entry["args"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect(),
                    env: pairs(&entry["env"]),
                }),
                Some(_) => None,
            };
            match server {
                Some(server) => servers.push(server),
                None => eprintln!("[test-agent] ignoring MCP server entry {entry}"),
            }
        }
        servers
    }

    pub fn name(&self) -> &str {
        match self {
            Server::Stdio { name, .. } | Server::Http { name, .. } => name,
        }
    }
}

/// `[{name, value}]` as pairs.
fn pairs(value: &Value) -> Vec<(String, String)> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["name"].as_str()?.into(), p["value"].as_str()?.into())))
        .collect()
}

/// A session's MCP side: its servers, the connection to the first one (made on
/// first use, remade if it died), and the result of its last `mcp` call.
#[derive(Default)]
pub struct SessionMcp {
    pub servers: Vec<Server>,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
    /// The last call's result text parsed as JSON, or why there is none.
    last: Mutex<Option<Result<Value, String>>>,
}

impl SessionMcp {
    pub fn new(servers: Vec<Server>) -> Self {
        SessionMcp {
            servers,
            ..SessionMcp::default()
        }
    }

    /// New servers (and no connection), keeping the last call's result.
    pub fn replaced(&self, servers: Vec<Server>) -> Self {
        SessionMcp {
            servers,
            client: Default::default(),
            last: Mutex::new(self.last.lock().unwrap().clone()),
        }
    }

    /// The connection to the session's first server, connecting if need be.
    pub async fn client(&self, cwd: &Path) -> Result<Arc<Client>, String> {
        let server = self
            .servers
            .first()
            .ok_or("the session has no MCP server (its mcpServers list is empty)")?;
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        *slot = None;
        let client = Arc::new(Client::connect(server, cwd).await?);
        *slot = Some(client.clone());
        Ok(client)
    }

    pub fn set_last(&self, last: Result<Value, String>) {
        *self.last.lock().unwrap() = Some(last);
    }

    /// Replaces each `{{last:POINTER}}` in `text` with the JSON of the value at
    /// that JSON pointer in the last call's result.
    pub fn substitute(&self, text: &str) -> Result<String, String> {
        substitute(text, self.last.lock().unwrap().as_ref())
    }
}

fn substitute(text: &str, last: Option<&Result<Value, String>>) -> Result<String, String> {
    const OPEN: &str = "{{last:";
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len()..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("unclosed {OPEN}...}}}}"))?;
        let pointer = &after[..end];
        let result = match last {
            None => return Err(format!("{OPEN}{pointer}}}}}: no mcp call before this one")),
            Some(Err(why)) => return Err(format!("{OPEN}{pointer}}}}}: {why}")),
            Some(Ok(result)) => result,
        };
        let value = result.pointer(pointer).ok_or_else(|| {
            format!("{OPEN}{pointer}}}}}: the last mcp result has nothing at {pointer:?}: {result}")
        })?;
        out.push_str(&value.to_string());
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// What a `tools/call` result says: the first text content block (the whole
/// result as JSON when there is none), and whether it is an error.
pub fn result_text(result: &Value) -> (String, bool) {
    let text = result["content"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|block| block["type"] == "text")
        .and_then(|block| block["text"].as_str())
        .map_or_else(|| result.to_string(), String::from);
    (text, result["isError"] == true)
}

/// A connected MCP server.
pub struct Client {
    conn: Conn,
}

enum Conn {
    Stdio(StdioConn),
    Http(HttpConn),
}

impl Client {
    /// Starts (stdio) or reaches (HTTP) the server and initializes the connection.
    pub async fn connect(server: &Server, cwd: &Path) -> Result<Client, String> {
        let conn = match server {
            Server::Stdio {
                name,
                command,
                args,
                env,
            } => Conn::Stdio(StdioConn::spawn(name, command, args, env, cwd)?),
            Server::Http { url, headers, .. } => Conn::Http(HttpConn::new(url, headers)?),
        };
        let client = Client { conn };
        let params = json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": crate::NAME, "version": crate::VERSION},
        });
        let init = client
            .request("initialize", params)
            .await
            .map_err(|e| format!("initialize {}: {e}", server.name()))?;
        let version = init["protocolVersion"].as_str().unwrap_or(PROTOCOL_VERSION);
        if let Conn::Http(http) = &client.conn {
            *http.version.lock().unwrap() = Some(version.to_string());
        }
        client
            .notify("notifications/initialized")
            .await
            .map_err(|e| format!("notifications/initialized {}: {e}", server.name()))?;
        eprintln!(
            "[test-agent] MCP server {} connected (protocol {version})",
            server.name()
        );
        Ok(client)
    }

    pub fn is_closed(&self) -> bool {
        match &self.conn {
            Conn::Stdio(c) => c.pending.lock().unwrap().is_none(),
            Conn::Http(c) => c.closed.load(Ordering::SeqCst),
        }
    }

    /// `tools/call`: the call's result object.
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Result<Value, String> {
        self.request("tools/call", json!({"name": name, "arguments": arguments}))
            .await
    }

    /// `tools/list`, every page: the tools' names.
    pub async fn list_tools(&self) -> Result<Vec<String>, String> {
        let mut names = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let page = self.request("tools/list", params).await?;
            names.extend(
                page["tools"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t["name"].as_str())
                    .map(String::from),
            );
            match page["nextCursor"].as_str() {
                Some(next) if !next.is_empty() => cursor = Some(next.to_string()),
                _ => break,
            }
        }
        Ok(names)
    }

    async fn request(&self, method: &str, params: Value) -> Result<Value, String> {
        match &self.conn {
            Conn::Stdio(c) => c.request(method, params).await,
            Conn::Http(c) => c.request(method, params).await,
        }
    }

    async fn notify(&self, method: &str) -> Result<(), String> {
        let message = json!({"jsonrpc": "2.0", "method": method});
        match &self.conn {
            Conn::Stdio(c) => c.send(message),
            Conn::Http(c) => c.notify(&message).await,
        }
    }
}

/// A JSON-RPC response as this module's result: `result`, or the error as text.
fn answer(message: &Value) -> Result<Value, String> {
    match message.get("error") {
        Some(error) if !error.is_null() => Err(format!(
            "error {}: {}",
            error["code"],
            error["message"].as_str().unwrap_or("(no message)")
        )),
        _ => Ok(message.get("result").cloned().unwrap_or(Value::Null)),
    }
}

/// The reply to a request the server sends us: `ping` is answered, nothing else
/// is offered (the client declares no capabilities).
fn reply_to_server(message: &Value) -> Value {
    let id = message["id"].clone();
    if message["method"] == "ping" {
        json!({"jsonrpc": "2.0", "id": id, "result": {}})
    } else {
        json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "method not found"}})
    }
}

/// An error and its causes, on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

// ---- stdio ----

/// Pids of the stdio servers alive now, killed by [`kill_all`] when the agent exits.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Kills every stdio server (for the agent's exit paths, which skip destructors).
pub fn kill_all() {
    for pid in CHILDREN.lock().unwrap().drain(..) {
        // SAFETY: kill only sends a signal, to a child this process started and
        // has not reaped yet (it is removed from the list when dropped).
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
        }
    }
}

type Waiters = HashMap<u64, oneshot::Sender<Result<Value, String>>>;

struct StdioConn {
    /// Killed when dropped.
    _child: tokio::process::Child,
    pid: Option<u32>,
    /// Lines for the writer task, which owns the server's stdin.
    out: mpsc::UnboundedSender<String>,
    next_id: AtomicU64,
    /// Waiters by request id; `None` once the server's stdout has closed.
    pending: Arc<Mutex<Option<Waiters>>>,
    reader: tokio::task::JoinHandle<()>,
    writer: tokio::task::JoinHandle<()>,
}

impl StdioConn {
    fn spawn(
        name: &str,
        command: &str,
        args: &[String],
        env: &[(String, String)],
        cwd: &Path,
    ) -> Result<StdioConn, String> {
        let mut child = tokio::process::Command::new(command)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {command} (in {}): {e}", cwd.display()))?;
        let pid = child.id();
        if let Some(pid) = pid {
            CHILDREN.lock().unwrap().push(pid);
        }
        let (mut stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
        let (out, mut lines_out) = mpsc::unbounded_channel::<String>();
        let writer = tokio::spawn(async move {
            while let Some(mut line) = lines_out.recv().await {
                line.push('\n');
                if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
                    break;
                }
            }
        });
        let pending = Arc::new(Mutex::new(Some(Waiters::new())));
        let reader = tokio::spawn(read_stdio(
            name.to_string(),
            stdout,
            pending.clone(),
            out.clone(),
        ));
        eprintln!("[test-agent] started MCP server {name}: {command} {args:?}");
        Ok(StdioConn {
            _child: child,
            pid,
            out,
            next_id: AtomicU64::new(1),
            pending,
            reader,
            writer,
        })
    }

    fn send(&self, message: Value) -> Result<(), String> {
        self.out
            .send(message.to_string())
            .map_err(|_| "the MCP server's stdin is closed".to_string())
    }

    async fn request(&self, method: &str, params: Value) -> Result<Value, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        match self.pending.lock().unwrap().as_mut() {
            Some(waiters) => waiters.insert(id, tx),
            None => return Err(stdio_closed()),
        };
        let _forget = Forget {
            pending: &self.pending,
            id,
        };
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send(message)?;
        rx.await.unwrap_or_else(|_| Err(stdio_closed()))
    }
}

impl Drop for StdioConn {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
        if let Some(pid) = self.pid {
            CHILDREN.lock().unwrap().retain(|p| *p != pid);
        }
    }
}

fn stdio_closed() -> String {
    "the MCP server exited (its stdout closed)".to_string()
}

/// Routes the server's responses to their waiters and answers its requests.
async fn read_stdio(
    name: String,
    stdout: tokio::process::ChildStdout,
    pending: Arc<Mutex<Option<Waiters>>>,
    out: mpsc::UnboundedSender<String>,
) {
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            eprintln!("[test-agent] MCP server {name} wrote a line that is not JSON: {line}");
            continue;
        };
        match (message.get("method"), message.get("id")) {
            (Some(_), Some(_)) => {
                let _ = out.send(reply_to_server(&message).to_string());
            }
            (Some(_), None) => {}
            (None, Some(id)) => {
                let waiter = id
                    .as_u64()
                    .and_then(|id| pending.lock().unwrap().as_mut()?.remove(&id));
                match waiter {
                    Some(waiter) => {
                        let _ = waiter.send(answer(&message));
                    }
                    None => eprintln!("[test-agent] MCP server {name}: unexpected {message}"),
                }
            }
            (None, None) => eprintln!("[test-agent] MCP server {name}: unexpected {message}"),
        }
    }
    eprintln!("[test-agent] MCP server {name} closed its stdout");
    // Dropping the waiters fails their requests.
    pending.lock().unwrap().take();
}

/// Removes a pending request when its waiter goes away (cancelled, timed out).
struct Forget<'a> {
    pending: &'a Mutex<Option<Waiters>>,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if let Some(waiters) = self.pending.lock().unwrap().as_mut() {
            waiters.remove(&self.id);
        }
    }
}

// ---- Streamable HTTP ----

struct HttpConn {
    http: reqwest::Client,
    url: String,
    headers: Vec<(String, String)>,
    /// `Mcp-Session-Id` from the `initialize` response, sent on every later request.
    session: Mutex<Option<String>>,
    /// The negotiated protocol version, sent as `MCP-Protocol-Version` after `initialize`.
    version: Mutex<Option<String>>,
    next_id: AtomicU64,
    /// The server forgot our session (404): the next command connects again.
    closed: AtomicBool,
}

impl HttpConn {
    fn new(url: &str, headers: &[(String, String)]) -> Result<HttpConn, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("building the HTTP client: {}", chain(&e)))?;
        Ok(HttpConn {
            http,
            url: url.to_string(),
            headers: headers.to_vec(),
            session: Mutex::new(None),
            version: Mutex::new(None),
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
        })
    }

    /// POSTs one message; a non-2xx status is an error (with the body's start).
    async fn post(&self, message: &Value) -> Result<reqwest::Response, String> {
        let mut request = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                reqwest::header::ACCEPT,
                "application/json, text/event-stream",
            );
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(version) = self.version.lock().unwrap().clone() {
            request = request.header("MCP-Protocol-Version", version);
        }
        let session = self.session.lock().unwrap().clone();
        if let Some(session) = &session {
            request = request.header("Mcp-Session-Id", session.as_str());
        }
        let response = request
            .body(message.to_string())
            .send()
            .await
            .map_err(|e| format!("POST {}: {}", self.url, chain(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        if status == reqwest::StatusCode::NOT_FOUND && session.is_some() {
            self.closed.store(true, Ordering::SeqCst);
        }
        let body = response.text().await.unwrap_or_default();
        let body: String = body.trim().chars().take(500).collect();
        Err(format!("POST {}: HTTP {status}: {body}", self.url))
    }

    async fn notify(&self, message: &Value) -> Result<(), String> {
        self.post(message).await.map(drop)
    }

    async fn request(&self, method: &str, params: Value) -> Result<Value, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut response = self.post(&message).await?;
        if method == "initialize" {
            let session = response
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            *self.session.lock().unwrap() = session;
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.starts_with("text/event-stream") {
            let mut events = Sse::default();
            loop {
                let chunk = response
                    .chunk()
                    .await
                    .map_err(|e| format!("reading the event stream: {}", chain(&e)))?;
                let done = chunk.is_none();
                for data in events.feed(chunk.as_deref().unwrap_or(b"\n\n")) {
                    if let Some(result) = self.on_message(&data, id).await {
                        return result;
                    }
                }
                if done {
                    return Err(format!(
                        "the event stream ended without an answer to {method}"
                    ));
                }
            }
        }
        if response.status() == reqwest::StatusCode::ACCEPTED {
            return Err(format!("the server accepted {method} without answering it"));
        }
        let body = response
            .text()
            .await
            .map_err(|e| format!("reading the answer to {method}: {}", chain(&e)))?;
        let messages = match serde_json::from_str::<Value>(&body) {
            Ok(Value::Array(batch)) => batch,
            Ok(message) => vec![message],
            Err(e) => {
                let body: String = body.chars().take(500).collect();
                return Err(format!("the answer to {method} is not JSON ({e}): {body}"));
            }
        };
        messages
            .iter()
            .find(|m| m["id"] == id && m.get("method").is_none())
            .map(answer)
            .unwrap_or_else(|| Err(format!("no answer to {method} in {body}")))
    }

    /// One message of an event stream: `Some` when it answers request `id`; a
    /// request from the server is answered, notifications are ignored.
    async fn on_message(&self, data: &str, id: u64) -> Option<Result<Value, String>> {
        let message = serde_json::from_str::<Value>(data).ok()?;
        if message.get("method").is_some() {
            if message.get("id").is_some() {
                let _ = self.post(&reply_to_server(&message)).await;
            }
            return None;
        }
        (message["id"] == id).then(|| answer(&message))
    }
}

impl Drop for HttpConn {
    /// Ends the server's session (`DELETE`), in the background.
    fn drop(&mut self) {
        let Some(session) = self.session.lock().unwrap().take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut request = self
            .http
            .delete(&self.url)
            .header("Mcp-Session-Id", session);
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        runtime.spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), request.send()).await;
        });
    }
}

/// An incremental `text/event-stream` parser that yields each event's data.
#[derive(Default)]
struct Sse {
    buffer: Vec<u8>,
    data: Option<String>,
}

impl Sse {
    fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
            let raw: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                events.extend(self.data.take());
            } else if let Some(value) = line.strip_prefix("data:") {
                let value = value.strip_prefix(' ').unwrap_or(value);
                match &mut self.data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => self.data = Some(value.to_string()),
                }
            }
            // `event:`, `id:`, `retry:` and `:` comments do not matter here.
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution_uses_the_last_result() {
        let last = Ok(json!({"id": 7, "name": "x", "list": [{"a": true}]}));
        assert_eq!(
            substitute(
                r#"{"id": {{last:/id}}, "n": {{last:/name}}, "a": {{last:/list/0}}}"#,
                Some(&last)
            )
            .unwrap(),
            r#"{"id": 7, "n": "x", "a": {"a":true}}"#
        );
        assert_eq!(substitute("{}", None).unwrap(), "{}");
        let missing = substitute("{{last:/nope}}", Some(&last)).unwrap_err();
        assert!(missing.contains("nothing at \"/nope\""), "{missing}");
        assert!(
            substitute("{{last:/id}}", None)
                .unwrap_err()
                .contains("no mcp call")
        );
        let failed = Err("the last mcp result is not JSON: hi".to_string());
        assert!(
            substitute("{{last:/id}}", Some(&failed))
                .unwrap_err()
                .contains("not JSON")
        );
        assert!(
            substitute("{{last:/id", Some(&last))
                .unwrap_err()
                .contains("unclosed")
        );
    }

    #[test]
    fn sse_events_are_split_across_chunks() {
        let mut sse = Sse::default();
        assert!(sse.feed(b"event: message\nid: 1\nda").is_empty());
        assert_eq!(
            sse.feed(b"ta: {\"a\":\r\ndata: 1}\r\n\r\n: c\n\ndata:x\n"),
            ["{\"a\":\n1}"]
        );
        assert_eq!(sse.feed(b"\n"), ["x"]);
    }

    #[test]
    fn servers_parse_and_sse_is_skipped() {
        let list = json!([
            {"type": "sse", "name": "s", "url": "http://x", "headers": []},
            {"type": "http", "name": "h", "url": "http://y/mcp", "headers": [{"name": "A", "value": "b"}]},
            {"name": "c", "command": "node", "args": ["x.js"], "env": [{"name": "K", "value": "v"}]},
        ]);
        assert_eq!(
            Server::parse_list(&list),
            [
                Server::Http {
                    name: "h".into(),
                    url: "http://y/mcp".into(),
                    headers: vec![("A".into(), "b".into())]
                },
                Server::Stdio {
                    name: "c".into(),
                    command: "node".into(),
                    args: vec!["x.js".into()],
                    env: vec![("K".into(), "v".into())]
                },
            ]
        );
    }
}
