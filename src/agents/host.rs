//! The client side of ACP: what spectask does when an agent sends it something.
//! It records `session/update`s as transcripts (coalescing chunks), serves file
//! reads and writes and terminals confined to the session's worktree, and answers
//! permission requests by the project's policy.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Mutex, broadcast, oneshot, watch};

use super::confine::{ConfineError, confine};
use super::protocol::{AgentUpdate, parse_update};
use super::rpc::{Handler, HandlerError};
use super::sandbox::Sandbox;
use super::terminals::{CreateTerminal, Terminals};
use crate::domain::ids::*;
use crate::domain::{NewEvent, PermissionEvent, PermissionPolicy, TranscriptKind};
use crate::store::{NewPermissionRequest, NewTranscriptEntry, Store};

/// A coalesced run of message or thought chunks is written out once it is this big,
/// this old (a timer per run, so a message followed by a long silence is not held
/// back: the session page shows it within this), or when something else interrupts it.
const FLUSH_BYTES: usize = 16 * 1024;
const FLUSH_AGE: Duration = Duration::from_millis(30);

/// One ACP session served by this host: a thread of a work session.
pub struct SessionCtx {
    pub work_session_id: WorkSessionId,
    pub spec_task_id: SpecTaskId,
    pub project_id: ProjectId,
    /// The session's worktree: every path it touches must resolve inside it.
    pub cwd: PathBuf,
    /// Set when a person cancels the turn; pending permission waits give up.
    pub cancelled: watch::Sender<bool>,
    /// The run of chunks not written yet. Held while a run is written, so entries
    /// are stored in the order they arrived.
    buffer: Mutex<Option<Pending>>,
    runs: std::sync::atomic::AtomicU64,
}

struct Pending {
    /// Which run this is, for its timer.
    run: u64,
    kind: TranscriptKind,
    text: String,
}

impl SessionCtx {
    pub fn new(
        work_session_id: WorkSessionId,
        spec_task_id: SpecTaskId,
        project_id: ProjectId,
        cwd: PathBuf,
    ) -> SessionCtx {
        SessionCtx {
            work_session_id,
            spec_task_id,
            project_id,
            cwd,
            cancelled: watch::channel(false).0,
            buffer: Mutex::new(None),
            runs: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

/// A live view of what agents do, for whoever listens (tests, the dashboard later).
#[derive(Debug, Clone)]
pub struct LiveUpdate {
    pub work_session_id: WorkSessionId,
    pub update: AgentUpdate,
}

/// The answers waiting for a person, by permission request id.
#[derive(Default)]
pub struct PermissionBroker {
    waiting: Mutex<HashMap<PermissionRequestId, oneshot::Sender<Option<String>>>>,
}

impl PermissionBroker {
    /// Hands a person's answer (`None`: cancelled) to the agent waiting for it.
    pub async fn deliver(
        &self,
        request_id: PermissionRequestId,
        option_id: Option<String>,
    ) -> bool {
        match self.waiting.lock().await.remove(&request_id) {
            Some(tx) => tx.send(option_id).is_ok(),
            None => false,
        }
    }
}

pub struct Host {
    pub store: Arc<dyn Store>,
    pub sessions: Mutex<HashMap<String, Arc<SessionCtx>>>,
    pub terminals: Terminals,
    pub policy: PermissionPolicy,
    pub permissions: Arc<PermissionBroker>,
    pub live: broadcast::Sender<LiveUpdate>,
    /// The agent process's sandbox, which its terminals run in too (`None`:
    /// unconfined, as the runtime recorded).
    pub sandbox: std::sync::Mutex<Option<Sandbox>>,
}

impl Host {
    pub fn set_sandbox(&self, sandbox: Option<Sandbox>) {
        *self.sandbox.lock().unwrap_or_else(|e| e.into_inner()) = sandbox;
    }

    fn sandbox(&self) -> Option<Sandbox> {
        self.sandbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn param<'a>(params: &'a Value, key: &str) -> Result<&'a str, HandlerError> {
    params
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| HandlerError::invalid_params(format!("missing {key}")))
}

async fn append_entry(
    store: &dyn Store,
    ctx: &SessionCtx,
    kind: TranscriptKind,
    content: String,
    data: Value,
) {
    let entry = NewTranscriptEntry {
        work_session_id: ctx.work_session_id,
        kind,
        content,
        data,
    };
    if let Err(e) = store.append_transcript(entry).await {
        tracing::error!(error = %e, "writing a transcript entry");
    }
}

impl Host {
    async fn session(&self, params: &Value) -> Result<(String, Arc<SessionCtx>), HandlerError> {
        let id = param(params, "sessionId")?.to_string();
        let ctx = self.sessions.lock().await.get(&id).cloned();
        ctx.map(|c| (id.clone(), c))
            .ok_or_else(|| HandlerError::not_found(format!("unknown session {id}")))
    }

    /// Resolves a path inside the session's worktree; anything else is refused,
    /// recorded as a security event, and never touched.
    async fn confined(
        &self,
        ctx: &SessionCtx,
        method: &str,
        path: &str,
    ) -> Result<PathBuf, HandlerError> {
        match confine(&ctx.cwd, path) {
            Ok(p) => Ok(p),
            Err(err) => {
                if matches!(err, ConfineError::Outside { .. }) {
                    let event = NewEvent {
                        project_id: Some(ctx.project_id),
                        spec_task_id: Some(ctx.spec_task_id),
                        entity: "work_session",
                        entity_id: Some(ctx.work_session_id.0),
                        kind: "agent.access_refused",
                        data: json!({ "method": method, "path": path, "worktree": ctx.cwd }),
                    };
                    if let Err(e) = self.store.record_event(event, "system").await {
                        tracing::error!(error = %e, "recording a refused access");
                    }
                    tracing::warn!(
                        method,
                        path,
                        session = ctx.work_session_id.0,
                        "refused access outside the worktree"
                    );
                }
                Err(HandlerError::invalid_params(err.to_string()))
            }
        }
    }

    async fn append(&self, ctx: &SessionCtx, kind: TranscriptKind, content: String, data: Value) {
        append_entry(self.store.as_ref(), ctx, kind, content, data).await;
    }

    /// Writes out the coalesced chunks of a session, if any.
    pub async fn flush(&self, ctx: &SessionCtx) {
        let mut buffer = ctx.buffer.lock().await;
        if let Some(p) = buffer.take() {
            self.append(ctx, p.kind, p.text, Value::Null).await;
        }
    }

    /// Records one entry in the session's transcript, after any buffered chunks.
    pub async fn record(
        &self,
        ctx: &SessionCtx,
        kind: TranscriptKind,
        content: String,
        data: Value,
    ) {
        self.flush(ctx).await;
        self.append(ctx, kind, content, data).await;
    }

    async fn on_update(&self, ctx: &Arc<SessionCtx>, update: AgentUpdate) {
        let chunk = match &update {
            AgentUpdate::Message(t) => Some((TranscriptKind::Message, t.clone())),
            AgentUpdate::Thought(t) => Some((TranscriptKind::Thought, t.clone())),
            _ => None,
        };
        if let Some((kind, text)) = chunk {
            let mut buffer = ctx.buffer.lock().await;
            match buffer.as_mut() {
                Some(p) if p.kind == kind => p.text.push_str(&text),
                _ => {
                    if let Some(p) = buffer.take() {
                        self.append(ctx, p.kind, p.text, Value::Null).await;
                    }
                    let run = ctx.runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    *buffer = Some(Pending { run, kind, text });
                    // The run is written when it is FLUSH_AGE old, if nothing wrote it.
                    let (store, ctx) = (self.store.clone(), ctx.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(FLUSH_AGE).await;
                        let mut buffer = ctx.buffer.lock().await;
                        if buffer.as_ref().is_some_and(|p| p.run == run)
                            && let Some(p) = buffer.take()
                        {
                            append_entry(store.as_ref(), &ctx, p.kind, p.text, Value::Null).await;
                        }
                    });
                }
            }
            if buffer.as_ref().is_some_and(|p| p.text.len() >= FLUSH_BYTES)
                && let Some(p) = buffer.take()
            {
                self.append(ctx, p.kind, p.text, Value::Null).await;
            }
            return;
        }
        let (kind, content, data) = match &update {
            AgentUpdate::UserMessage(t) => (TranscriptKind::UserMessage, t.clone(), Value::Null),
            AgentUpdate::ToolCall { data, .. } => (
                TranscriptKind::ToolCall,
                data.get("title")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                data.clone(),
            ),
            AgentUpdate::ToolCallUpdate { id, data } => {
                (TranscriptKind::ToolCallUpdate, id.clone(), data.clone())
            }
            AgentUpdate::Plan(entries) => (TranscriptKind::Plan, String::new(), entries.clone()),
            AgentUpdate::Usage { used, size, cost } => (
                TranscriptKind::Usage,
                format!("{used}/{size}"),
                json!({ "used": used, "size": size, "cost": cost }),
            ),
            // Mode changes, command lists and the like are not part of the record.
            _ => return,
        };
        self.record(ctx, kind, content, data).await;
    }

    async fn read_text_file(&self, params: Value) -> Result<Value, HandlerError> {
        let (_, ctx) = self.session(&params).await?;
        let path = self
            .confined(&ctx, "fs/read_text_file", param(&params, "path")?)
            .await?;
        let text = tokio::fs::read_to_string(&path)
            .await
            .map_err(|e| HandlerError::not_found(format!("cannot read {}: {e}", path.display())))?;
        let line = params
            .get("line")
            .and_then(Value::as_u64)
            .unwrap_or(1)
            .max(1) as usize;
        let limit = params
            .get("limit")
            .and_then(Value::as_u64)
            .map(|l| l as usize);
        let content = if line == 1 && limit.is_none() {
            text
        } else {
            let lines = text.split_inclusive('\n').skip(line - 1);
            match limit {
                Some(n) => lines.take(n).collect(),
                None => lines.collect(),
            }
        };
        Ok(json!({ "content": content }))
    }

    async fn write_text_file(&self, params: Value) -> Result<Value, HandlerError> {
        let (_, ctx) = self.session(&params).await?;
        let path = self
            .confined(&ctx, "fs/write_text_file", param(&params, "path")?)
            .await?;
        let content = param(&params, "content")?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| {
                HandlerError::internal(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        tokio::fs::write(&path, content)
            .await
            .map_err(|e| HandlerError::internal(format!("cannot write {}: {e}", path.display())))?;
        Ok(Value::Null)
    }

    async fn terminal(&self, method: &str, params: Value) -> Result<Value, HandlerError> {
        let (session_id, ctx) = self.session(&params).await?;
        if method == "terminal/create" {
            let cwd = match params.get("cwd").and_then(Value::as_str) {
                Some(dir) => self.confined(&ctx, method, dir).await?,
                None => ctx.cwd.clone(),
            };
            let args = params
                .get("args")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let env = params
                .get("env")
                .and_then(Value::as_array)
                .map(|vars| {
                    vars.iter()
                        .filter_map(|v| {
                            Some((
                                v.get("name")?.as_str()?.to_string(),
                                v.get("value")?.as_str()?.to_string(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let request = CreateTerminal {
                session_id: &session_id,
                command: param(&params, "command")?,
                args,
                env,
                cwd: &cwd,
                output_limit: params
                    .get("outputByteLimit")
                    .and_then(Value::as_u64)
                    .map(|n| n as usize),
                sandbox: self.sandbox(),
            };
            let id =
                self.terminals.create(request).await.map_err(|e| {
                    HandlerError::internal(format!("cannot start the command: {e}"))
                })?;
            return Ok(json!({ "terminalId": id }));
        }
        let id = param(&params, "terminalId")?;
        let unknown = || HandlerError::not_found(format!("unknown terminal {id}"));
        match method {
            "terminal/output" => self
                .terminals
                .output(&session_id, id)
                .await
                .ok_or_else(unknown),
            "terminal/wait_for_exit" => self
                .terminals
                .wait_for_exit(&session_id, id)
                .await
                .ok_or_else(unknown),
            "terminal/kill" => match self.terminals.kill(&session_id, id).await {
                true => Ok(json!({})),
                false => Err(unknown()),
            },
            _ => match self.terminals.release(&session_id, id).await {
                true => Ok(json!({})),
                false => Err(unknown()),
            },
        }
    }

    async fn request_permission(&self, params: Value) -> Result<Value, HandlerError> {
        let (_, ctx) = self.session(&params).await?;
        let options = params.get("options").cloned().unwrap_or_else(|| json!([]));
        let tool_call = params.get("toolCall").cloned().unwrap_or(Value::Null);
        let asked = tool_call.clone();
        let title = tool_call
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or("(untitled)")
            .to_string();
        let pick = |kinds: &[&str]| {
            options.as_array().and_then(|opts| {
                kinds.iter().find_map(|k| {
                    opts.iter()
                        .find(|o| o.get("kind").and_then(Value::as_str) == Some(k))
                        .and_then(|o| {
                            o.get("optionId")
                                .and_then(Value::as_str)
                                .map(str::to_string)
                        })
                })
            })
        };
        let allow = || pick(&["allow_once", "allow_always"]);
        let reject = || pick(&["reject_once", "reject_always"]);
        let chosen = match self.policy {
            PermissionPolicy::Deny => reject(),
            PermissionPolicy::Auto => {
                let inside = tool_call
                    .get("locations")
                    .and_then(Value::as_array)
                    .is_none_or(|locs| {
                        locs.iter().all(|l| {
                            l.get("path")
                                .and_then(Value::as_str)
                                .is_some_and(|p| confine(&ctx.cwd, p).is_ok())
                        })
                    });
                if inside { allow() } else { reject() }
            }
            PermissionPolicy::Ask => {
                self.ask(&ctx, title.clone(), tool_call, options.clone())
                    .await?
            }
        };
        let outcome = match &chosen {
            Some(id) => json!({ "outcome": "selected", "optionId": id }),
            None => json!({ "outcome": "cancelled" }),
        };
        let shown = chosen.clone().unwrap_or_else(|| "cancelled".into());
        // The tool call it asked about goes with the answer: some agents say what
        // the call is (title, paths, diff) only in their permission request.
        let mut entry = outcome.clone();
        entry["toolCall"] = asked;
        self.record(
            &ctx,
            TranscriptKind::Permission,
            format!("{title}: {shown}"),
            entry,
        )
        .await;
        Ok(json!({ "outcome": outcome }))
    }

    /// Waits for a person's answer, or for the turn to be cancelled.
    async fn ask(
        &self,
        ctx: &SessionCtx,
        title: String,
        tool_call: Value,
        options: Value,
    ) -> Result<Option<String>, HandlerError> {
        let new = NewPermissionRequest {
            work_session_id: ctx.work_session_id,
            title,
            tool_call,
            options,
        };
        let request = self
            .store
            .create_permission_request(new)
            .await
            .map_err(|e| HandlerError::internal(e.to_string()))?;
        let (tx, rx) = oneshot::channel();
        self.permissions.waiting.lock().await.insert(request.id, tx);
        let mut cancelled = ctx.cancelled.subscribe();
        let answer = tokio::select! {
            answer = rx => answer.ok().flatten(),
            _ = cancelled.wait_for(|c| *c) => None,
        };
        if answer.is_none() {
            self.permissions.waiting.lock().await.remove(&request.id);
            // Cancelled by the turn: record it unless a person answered meanwhile.
            let _ = self
                .store
                .resolve_permission_request(request.id, PermissionEvent::Cancel, None, "system")
                .await;
        }
        Ok(answer)
    }
}

#[async_trait::async_trait]
impl Handler for Host {
    async fn request(&self, method: &str, params: Value) -> Result<Value, HandlerError> {
        match method {
            "fs/read_text_file" => self.read_text_file(params).await,
            "fs/write_text_file" => self.write_text_file(params).await,
            "session/request_permission" => self.request_permission(params).await,
            m if m.starts_with("terminal/") => self.terminal(m, params).await,
            other => Err(HandlerError {
                code: -32601,
                message: format!("method not found: {other}"),
            }),
        }
    }

    async fn notification(&self, method: &str, params: Value) {
        if method != "session/update" {
            return;
        }
        let Some((session_id, update)) = parse_update(&params) else {
            return;
        };
        let ctx = self.sessions.lock().await.get(&session_id).cloned();
        let Some(ctx) = ctx else { return };
        let _ = self.live.send(LiveUpdate {
            work_session_id: ctx.work_session_id,
            update: update.clone(),
        });
        self.on_update(&ctx, update).await;
    }
}
