//! One `session/prompt` turn: runs the script's commands in order, streaming
//! `session/update` notifications and sending requests to the client.
//!
//! Every wait (a client request, `sleep`, `hang`) races the turn's cancel switch,
//! so a `session/cancel` ends the turn promptly with `stopReason: "cancelled"`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};

use crate::App;
use crate::mcp;
use crate::rpc::{RpcError, RpcResult};
use crate::script::{self, Command};
use crate::session::Cancel;

/// The turn was cancelled while waiting.
struct Cancelled;

type Step = Result<(), Cancelled>;

pub struct Turn {
    pub app: Arc<App>,
    pub session_id: String,
    pub cwd: PathBuf,
    pub cancel: Cancel,
    /// Set by `exit-after-turn`.
    pub exit_after: bool,
}

impl Turn {
    /// Runs the commands of `text` (or echoes `prompt` if it has none) and
    /// returns the stop reason.
    pub async fn run(&mut self, text: &str, prompt: &str) -> &'static str {
        let outcome = match script::parse(text) {
            None => {
                self.say(&format!("echo: {prompt}"));
                Ok(())
            }
            Some(commands) => self.run_all(commands).await,
        };
        if outcome.is_err() || self.cancel.is_cancelled() {
            "cancelled"
        } else {
            "end_turn"
        }
    }

    async fn run_all(&mut self, commands: Vec<Command>) -> Step {
        for command in commands {
            if self.cancel.is_cancelled() {
                return Err(Cancelled);
            }
            self.exec(command).await?;
        }
        Ok(())
    }

    async fn exec(&mut self, command: Command) -> Step {
        match command {
            Command::Say(text) => self.say(&text),
            Command::Stream(n, text) => {
                for piece in script::chunks(&text, n) {
                    self.say(&piece);
                }
            }
            Command::Think(text) => self.update(json!({
                "sessionUpdate": "agent_thought_chunk",
                "content": {"type": "text", "text": text},
            })),
            Command::Plan(entries) => {
                let entries: Vec<Value> = entries
                    .iter()
                    .enumerate()
                    .map(|(i, content)| {
                        let status = if i == 0 { "in_progress" } else { "pending" };
                        json!({"content": content, "priority": "medium", "status": status})
                    })
                    .collect();
                self.update(json!({"sessionUpdate": "plan", "entries": entries}));
            }
            Command::Tool(title) => {
                let id = self.tool_call(&title, "other", "in_progress");
                self.tool_done(&id, None);
            }
            Command::Write { path, content } => self.write(&path, &content).await?,
            Command::WriteDirect { path, content } => {
                self.write_direct("write-direct", &path, &content, false)
            }
            Command::AppendDirect { path, content } => {
                self.write_direct("append-direct", &path, &content, true)
            }
            Command::Read(path) => self.read(&path).await?,
            Command::Run { command, args } => self.run_command(&command, &args).await?,
            Command::Ask(title) => self.ask(&title).await?,
            Command::Sh(script) => {
                let id = self.tool_call(&format!("sh {script}"), "execute", "in_progress");
                let out = tokio::process::Command::new("sh")
                    .arg("-c")
                    .arg(&script)
                    .current_dir(&self.cwd)
                    .stdin(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .output();
                let text = match self.until_cancelled(out).await? {
                    Ok(out) => {
                        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
                        text.push_str(&String::from_utf8_lossy(&out.stderr));
                        let code = out.status.code().unwrap_or(-1);
                        format!("sh: exit {code}: {}", text.trim())
                    }
                    Err(e) => format!("error: sh: {e}"),
                };
                self.tool_done(&id, result_error(&text));
                self.say(&text);
            }
            Command::Usage { used, size, cost } => {
                let mut update =
                    json!({"sessionUpdate": "usage_update", "used": used, "size": size});
                if let Some(amount) = cost {
                    update["cost"] = json!({"amount": amount, "currency": "USD"});
                }
                self.update(update);
            }
            Command::Sleep(ms) => {
                self.until_cancelled(tokio::time::sleep(Duration::from_millis(ms)))
                    .await?
            }
            Command::Stamp {
                count,
                every_ms,
                as_tool,
            } => {
                for i in 1..=count {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis());
                    let text = format!("stamp {i} {now}");
                    if as_tool {
                        self.tool_call(&text, "other", "completed");
                    } else {
                        self.say(&text);
                    }
                    if i < count && every_ms > 0 {
                        self.until_cancelled(tokio::time::sleep(Duration::from_millis(every_ms)))
                            .await?;
                    }
                }
            }
            Command::Repeat { count, script } => {
                for i in 1..=count {
                    let round = script.replace("{i}", &i.to_string());
                    for command in script::parse(&round).unwrap_or_default() {
                        if self.cancel.is_cancelled() {
                            return Err(Cancelled);
                        }
                        Box::pin(self.exec(command)).await?;
                    }
                }
            }
            Command::Mcp { tool, arguments } => self.mcp(&tool, &arguments).await?,
            Command::McpList => self.mcp_list().await?,
            Command::Hang(ms) => {
                self.cancel.cancelled().await;
                // An agent slow to answer a cancel (OpenCode takes ~100 ms).
                tokio::time::sleep(Duration::from_millis(ms)).await;
                return Err(Cancelled);
            }
            Command::Crash(code) => {
                self.app.peer.flush(Duration::from_millis(500)).await;
                mcp::kill_all();
                eprintln!("crashing as asked");
                std::process::exit(code);
            }
            Command::Garbage => self.app.peer.raw("this is not json"),
            Command::ExitAfterTurn => self.exit_after = true,
            Command::Once { path, command } => {
                let marker = self.resolve(&path);
                if marker.exists() {
                    self.say(&format!("once {path}: done before, skipped"));
                } else {
                    let created = marker
                        .parent()
                        .map_or(Ok(()), std::fs::create_dir_all)
                        .and_then(|()| std::fs::write(&marker, b""));
                    match created {
                        Ok(()) => return Box::pin(self.exec(*command)).await,
                        Err(e) => self.say(&format!("error: once {path}: {e}")),
                    }
                }
            }
            Command::Invalid { command, problem } => {
                self.say(&format!("error: {command}: {problem}"))
            }
            Command::Unknown(word) => self.say(&format!("error: unknown command {word}")),
        }
        Ok(())
    }

    async fn write(&mut self, path: &str, content: &str) -> Step {
        // The edit as ACP shows it: the file it touches and its diff (oldText null
        // for a new file; read here, as an agent reads before it edits).
        let target = self.resolve(path);
        let old = std::fs::read_to_string(&target).ok();
        let id = self.tool_call_with(
            &format!("write {path}"),
            "edit",
            "in_progress",
            json!({
                "locations": [{"path": target}],
                "content": [{"type": "diff", "path": target, "oldText": old, "newText": content}],
            }),
        );
        let result = if self.app.client_caps().write_text_file {
            let params = json!({"sessionId": self.session_id, "path": target, "content": content});
            self.request("fs/write_text_file", params).await?
        } else {
            Err(unsupported("fs/write_text_file"))
        };
        let message = match result {
            Ok(_) => format!("wrote {path}"),
            Err(e) => format!("error: write {path}: {}", e.message),
        };
        self.tool_done(&id, result_error(&message));
        self.say(&message);
        Ok(())
    }

    async fn read(&mut self, path: &str) -> Step {
        let id = self.tool_call(&format!("read {path}"), "read", "in_progress");
        let result = if self.app.client_caps().read_text_file {
            let params = json!({"sessionId": self.session_id, "path": self.resolve(path)});
            self.request("fs/read_text_file", params).await?
        } else {
            Err(unsupported("fs/read_text_file"))
        };
        let message = match result {
            Ok(v) => format!(
                "read {path}: {}",
                v.get("content").and_then(Value::as_str).unwrap_or("")
            ),
            Err(e) => format!("error: read {path}: {}", e.message),
        };
        self.tool_done(&id, result_error(&message));
        self.say(&message);
        Ok(())
    }

    async fn run_command(&mut self, command: &str, args: &[String]) -> Step {
        let id = self.tool_call(&format!("run {command}"), "execute", "in_progress");
        let message = match self.terminal(command, args).await? {
            Ok(text) => text,
            Err(e) => format!("error: run {command}: {}", e.message),
        };
        match result_error(&message) {
            // What the command printed, as the call's text content.
            None => self.update(json!({
                "sessionUpdate": "tool_call_update", "toolCallId": id, "status": "completed",
                "content": [{"type": "content", "content": {"type": "text", "text": message}}],
            })),
            failure => self.tool_done(&id, failure),
        }
        self.say(&message);
        Ok(())
    }

    /// create, wait_for_exit, output, release. Returns the `ran ...` message.
    async fn terminal(
        &mut self,
        command: &str,
        args: &[String],
    ) -> Result<Result<String, RpcError>, Cancelled> {
        if !self.app.client_caps().terminal {
            return Ok(Err(unsupported("terminals")));
        }
        let params = json!({
            "sessionId": self.session_id, "command": command, "args": args,
            "cwd": self.cwd, "outputByteLimit": 65536,
        });
        let terminal_id = match self.request("terminal/create", params).await? {
            Ok(v) => v.get("terminalId").cloned().unwrap_or(Value::Null),
            Err(e) => return Ok(Err(e)),
        };
        let ids = json!({"sessionId": self.session_id, "terminalId": terminal_id});
        let outcome = async {
            let exit = self.request("terminal/wait_for_exit", ids.clone()).await?;
            let output = self.request("terminal/output", ids.clone()).await?;
            Ok::<_, Cancelled>(exit.and_then(|exit| output.map(|output| (exit, output))))
        }
        .await;
        let (app, kill) = (self.app.clone(), outcome.is_err());
        let release = async move {
            if kill {
                let _ = app.peer.request("terminal/kill", ids.clone()).await;
            }
            let _ = app.peer.request("terminal/release", ids).await;
        };
        let (exit, output) = match outcome {
            Ok(Ok(pair)) => {
                release.await;
                pair
            }
            Ok(Err(e)) => {
                release.await;
                return Ok(Err(e));
            }
            Err(Cancelled) => {
                // Clean up in the background: the cancelled turn answers at once.
                tokio::spawn(release);
                return Err(Cancelled);
            }
        };
        let code = match (
            exit.get("exitCode").and_then(Value::as_i64),
            exit.get("signal").and_then(Value::as_str),
        ) {
            (Some(code), _) => code.to_string(),
            (None, Some(signal)) => format!("signal {signal}"),
            (None, None) => "unknown".to_string(),
        };
        let text = output
            .get("output")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim();
        Ok(Ok(format!("ran {command}: exit {code}: {text}")))
    }

    async fn ask(&mut self, title: &str) -> Step {
        let id = self.tool_call(title, "other", "pending");
        let params = json!({
            "sessionId": self.session_id,
            "toolCall": {"toolCallId": id, "title": title, "kind": "other"},
            "options": [
                {"optionId": "allow", "name": "Allow", "kind": "allow_once"},
                {"optionId": "reject", "name": "Reject", "kind": "reject_once"},
            ],
        });
        let Ok(result) = self.request("session/request_permission", params).await else {
            self.tool_done(&id, Some("cancelled".into()));
            self.say("permission: cancelled");
            return Err(Cancelled);
        };
        let choice = match &result {
            Ok(v) if v["outcome"]["outcome"] == "selected" => {
                v["outcome"]["optionId"].as_str().unwrap_or("").to_string()
            }
            Ok(_) => "cancelled".to_string(),
            Err(e) => {
                let message = format!("error: ask {title}: {}", e.message);
                self.tool_done(&id, Some(message.clone()));
                self.say(&message);
                return Ok(());
            }
        };
        let failure = (choice != "allow").then(|| format!("permission: {choice}"));
        self.tool_done(&id, failure);
        self.say(&format!("permission: {choice}"));
        Ok(())
    }

    /// `mcp TOOL JSON`: a `tool_call`, the MCP `tools/call`, its `tool_call_update`
    /// with the result text, then the message `mcp TOOL -> TEXT` (or `error:`).
    async fn mcp(&mut self, tool: &str, arguments: &str) -> Step {
        let label = format!("mcp {tool}");
        let session = self.app.sessions.mcp(&self.session_id);
        let arguments = session.substitute(arguments).and_then(|text| {
            let text = if text.trim().is_empty() { "{}" } else { &text };
            match serde_json::from_str::<Value>(text) {
                Ok(v) if v.is_object() => Ok(v),
                Ok(_) => Err(format!("the arguments must be a JSON object: {text}")),
                Err(e) => Err(format!("the arguments are not JSON ({e}): {text}")),
            }
        });
        let arguments = match arguments {
            Ok(arguments) => arguments,
            Err(problem) => {
                self.say(&format!("{label} error: {problem}"));
                return Ok(());
            }
        };
        let id = self.tool_call_with(
            &label,
            "other",
            "in_progress",
            json!({"rawInput": arguments}),
        );
        let cwd = self.cwd.clone();
        let call = async {
            let client = session.client(&cwd).await?;
            client.call_tool(tool, arguments).await
        };
        let outcome = match self.mcp_limited(call).await {
            Ok(outcome) => outcome,
            Err(Cancelled) => {
                self.tool_done(&id, Some("cancelled".into()));
                return Err(Cancelled);
            }
        };
        let (text, failed) = match &outcome {
            Ok(result) => mcp::result_text(result),
            Err(e) => (e.clone(), true),
        };
        session.set_last(match outcome {
            Ok(_) => serde_json::from_str(&text)
                .map_err(|_| format!("the result of mcp {tool} is not JSON: {text}")),
            Err(e) => Err(format!("mcp {tool} failed: {e}")),
        });
        let status = if failed { "failed" } else { "completed" };
        self.update(json!({
            "sessionUpdate": "tool_call_update", "toolCallId": id, "status": status,
            "content": [{"type": "content", "content": {"type": "text", "text": text}}],
        }));
        if failed {
            self.say(&format!("{label} error: {text}"));
        } else {
            self.say(&format!("{label} -> {text}"));
        }
        Ok(())
    }

    /// `mcp-list`: the message `tools: a, b, c`.
    async fn mcp_list(&mut self) -> Step {
        let session = self.app.sessions.mcp(&self.session_id);
        let cwd = self.cwd.clone();
        let list = async { session.client(&cwd).await?.list_tools().await };
        match self.mcp_limited(list).await? {
            Ok(names) => self.say(&format!("tools: {}", names.join(", "))),
            Err(e) => self.say(&format!("mcp-list error: {e}")),
        }
        Ok(())
    }

    /// An MCP exchange, given at most [`mcp::CALL_LIMIT`] and ended by a cancel.
    async fn mcp_limited<T>(
        &self,
        work: impl Future<Output = Result<T, String>>,
    ) -> Result<Result<T, String>, Cancelled> {
        let limited = tokio::time::timeout(mcp::CALL_LIMIT, work);
        Ok(self
            .until_cancelled(limited)
            .await?
            .unwrap_or_else(|_| Err(format!("no answer within {} s", mcp::CALL_LIMIT.as_secs()))))
    }

    fn write_direct(&mut self, command: &str, path: &str, content: &str, append: bool) {
        let target = self.resolve(path);
        let written = (|| {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.create(true).write(true);
            if append {
                options.append(true)
            } else {
                options.truncate(true)
            };
            std::io::Write::write_all(&mut options.open(&target)?, content.as_bytes())
        })();
        match written {
            Ok(()) => self.say(&format!("wrote-direct {path}")),
            Err(e) => self.say(&format!("error: {command} {path}: {e}")),
        }
    }

    /// Sends a request to the client, unless the turn is cancelled first.
    async fn request(&self, method: &str, params: Value) -> Result<RpcResult, Cancelled> {
        self.until_cancelled(self.app.peer.request(method, params))
            .await
    }

    async fn until_cancelled<T>(&self, work: impl Future<Output = T>) -> Result<T, Cancelled> {
        tokio::select! {
            value = work => Ok(value),
            _ = self.cancel.cancelled() => Err(Cancelled),
        }
    }

    /// Relative paths are joined to the session's cwd (not normalized: `..`
    /// stays, so a client must resolve it before checking confinement).
    fn resolve(&self, path: &str) -> PathBuf {
        resolve(&self.cwd, path)
    }

    fn say(&self, text: &str) {
        self.app.sessions.record_agent(&self.session_id, text);
        self.update(json!({
            "sessionUpdate": "agent_message_chunk",
            "content": {"type": "text", "text": text},
        }));
    }

    fn update(&self, update: Value) {
        let params = json!({"sessionId": self.session_id, "update": update});
        self.app.peer.notify("session/update", params);
    }

    fn tool_call(&self, title: &str, kind: &str, status: &str) -> String {
        self.tool_call_with(title, kind, status, json!({}))
    }

    /// A `tool_call` with more fields (`content`, `locations`, …).
    fn tool_call_with(&self, title: &str, kind: &str, status: &str, more: Value) -> String {
        let id = format!(
            "tool-{}",
            self.app.next_tool.fetch_add(1, Ordering::Relaxed)
        );
        let mut update = json!({
            "sessionUpdate": "tool_call", "toolCallId": id,
            "title": title, "kind": kind, "status": status,
        });
        if let (Some(update), Some(more)) = (update.as_object_mut(), more.as_object()) {
            update.extend(more.clone());
        }
        self.update(update);
        id
    }

    /// Completes a tool call, or fails it with `failure` as its text content.
    fn tool_done(&self, id: &str, failure: Option<String>) {
        let mut update =
            json!({"sessionUpdate": "tool_call_update", "toolCallId": id, "status": "completed"});
        if let Some(text) = failure {
            update["status"] = json!("failed");
            update["content"] =
                json!([{"type": "content", "content": {"type": "text", "text": text}}]);
        }
        self.update(update);
    }
}

/// The error for a request the client did not declare in `initialize`.
fn unsupported(what: &str) -> RpcError {
    RpcError::new(-32601, format!("client does not support {what}"))
}

/// `Some(message)` when the message reports an error.
fn result_error(message: &str) -> Option<String> {
    message.starts_with("error: ").then(|| message.to_string())
}

/// `$TMPDIR/…` is in the agent's temporary folder (a place outside the worktree the
/// sandbox lets it write, and that outlives an attempt).
fn resolve(cwd: &Path, path: &str) -> PathBuf {
    match (path.strip_prefix("$TMPDIR/"), std::env::var_os("TMPDIR")) {
        (Some(rest), Some(tmp)) => PathBuf::from(tmp).join(rest),
        _ => cwd.join(path),
    }
}
