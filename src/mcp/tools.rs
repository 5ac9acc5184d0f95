//! The tools a session's agent gets: their names, JSON schemas and descriptions
//! (written for models), and what each does. Every call acts as the session its
//! token was issued to, inside that session's spec task only; a refusal is a tool
//! error with a reason the model can act on, never a crash.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::domain::tasks_md::{self, Mark};
use crate::domain::*;
use crate::orchestrator::implementation::{ImplError, Implementer, SpawnRequest};
use crate::orchestrator::{progress, spec_files};
use crate::store::{NewCoordinationEvent, NewTranscriptEntry, SessionGrant, Store, StoreError};

/// The longest `ask_person` or `read_inbox` waits.
pub const MAX_WAIT_SECS: u64 = 3600;
/// What `ask_person` waits when the call names no timeout.
pub const DEFAULT_ASK_SECS: u64 = 600;

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The arguments do not fit the tool's schema or its rules.
    #[error("invalid arguments: {0}")]
    Invalid(String),
    /// The call is understood but not allowed now.
    #[error("{0}")]
    Refused(String),
    #[error("no tool {0:?}; call tools/list for the tools spectask offers")]
    Unknown(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ImplError> for ToolError {
    fn from(e: ImplError) -> ToolError {
        match e {
            ImplError::Store(e) => ToolError::Store(e),
            ImplError::Invalid(m) => ToolError::Invalid(m),
            ImplError::Refused(m) | ImplError::Other(m) => ToolError::Refused(m),
            ImplError::Git(e) => ToolError::Refused(format!("git: {e}")),
        }
    }
}

impl ToolError {
    /// What the agent is told. A database failure is logged, not described.
    pub fn for_agent(&self) -> String {
        match self {
            ToolError::Store(StoreError::Database(e)) => {
                tracing::error!(error = %e, "an agent tool call failed in the database");
                "spectask could not complete the call (an internal error); try again later".into()
            }
            ToolError::Store(StoreError::Corrupt(e)) => {
                tracing::error!(error = %e, "an agent tool call read a corrupt row");
                "spectask could not complete the call (an internal error)".into()
            }
            other => other.to_string(),
        }
    }
}

/// One tool as `tools/list` shows it.
pub struct ToolDef {
    pub name: &'static str,
    pub description: &'static str,
    pub schema: Value,
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// Every tool, in the order `tools/list` gives them.
pub fn definitions() -> Vec<ToolDef> {
    let kinds = [
        "handoff",
        "request",
        "response",
        "notification",
        "broadcast",
        "blocking",
        "unblocked",
    ];
    vec![
        ToolDef {
            name: "spectask_context",
            description: "Your place in the plan: your task's key, title, details and sub-items, the requirements it implements, its dependencies and their status, your worktree and branch, and the plan's other tasks and sessions with their status. Call it first.",
            schema: object(json!({}), &[]),
        },
        ToolDef {
            name: "spawn_session",
            description: "Start a new session under yours, with its own worktree, thread and merge. Use it for a separable piece of work. `depends_on` lists task keys (\"2\") or sessions (\"session:12\") that must be done before it starts; name your own session to have it start after you are merged. Limited per spec task.",
            schema: object(
                json!({
                    "name": {"type": "string", "description": "A short name for the session."},
                    "prompt": {"type": "string", "description": "What the session should do, in full: it does not see your conversation."},
                    "depends_on": {"type": "array", "items": {"type": "string"}, "description": "Task keys or session:<id> it waits for."},
                }),
                &["name", "prompt"],
            ),
        },
        ToolDef {
            name: "send_message",
            description: "Send a coordination message. `to` is a session id (\"12\" or \"session:12\"), a task key (\"task:2\"), \"everyone\", or \"person\" (a human sees it in their notifications). Kinds: request (expects a response), response (set in_reply_to), handoff, notification, broadcast (to everyone), blocking (holds the receiver until unblocked), unblocked.",
            schema: object(
                json!({
                    "kind": {"type": "string", "enum": kinds},
                    "to": {"type": "string"},
                    "message": {"type": "string"},
                    "payload": {"description": "Optional data for the receiver."},
                    "in_reply_to": {"type": "integer", "description": "The id of the message a response answers."},
                }),
                &["kind", "to", "message"],
            ),
        },
        ToolDef {
            name: "read_inbox",
            description: "Messages for you that nobody acknowledged yet: those addressed to you and the task's broadcasts. With wait_secs, waits up to that long for one to arrive. Acknowledge each one you handled with `ack`.",
            schema: object(
                json!({"wait_secs": {"type": "integer", "minimum": 0, "maximum": MAX_WAIT_SECS}}),
                &[],
            ),
        },
        ToolDef {
            name: "ack",
            description: "Acknowledge a message from your inbox by its id, so it is not delivered again.",
            schema: object(json!({"id": {"type": "integer"}}), &["id"]),
        },
        ToolDef {
            name: "get_state",
            description: "Read a key of the spec task's shared state (shared by every session). Returns its value and version; version 0 and value null when the key does not exist.",
            schema: object(json!({"key": {"type": "string"}}), &["key"]),
        },
        ToolDef {
            name: "set_state",
            description: "Write a key of the shared state with compare-and-set: expected_version is the version you read (0 to create the key). If someone wrote in between, the write is refused and nothing changes: read again and retry.",
            schema: object(
                json!({
                    "key": {"type": "string"},
                    "value": {"description": "Any JSON value."},
                    "expected_version": {"type": "integer", "minimum": 0},
                }),
                &["key", "value", "expected_version"],
            ),
        },
        ToolDef {
            name: "report_progress",
            description: "Tick (done: true) or untick one of your task's sub-items in tasks.md by its key (\"2.1\"), so people see your progress at once.",
            schema: object(
                json!({"item": {"type": "string"}, "done": {"type": "boolean"}}),
                &["item", "done"],
            ),
        },
        ToolDef {
            name: "complete",
            description: "Say what you did, for the sessions that depend on your task: this summary is handed to them instead of your last message. Call it when your work is finished.",
            schema: object(json!({"summary": {"type": "string"}}), &["summary"]),
        },
        ToolDef {
            name: "ask_person",
            description: "Ask a person a question and wait for the answer (up to timeout_secs, default 600). Offer choices when the answer is one of a few. Returns the answer, or timed_out: true so you can decide without one.",
            schema: object(
                json!({
                    "question": {"type": "string"},
                    "choices": {"type": "array", "items": {"type": "string"}},
                    "timeout_secs": {"type": "integer", "minimum": 1, "maximum": MAX_WAIT_SECS},
                }),
                &["question"],
            ),
        },
    ]
}

/// What the tools act on.
#[derive(Clone)]
pub struct Tools {
    pub store: Arc<dyn Store>,
    pub implementer: Arc<Implementer>,
    pub tasks_dir: PathBuf,
    /// Becomes `true` when the server shuts down: a waiting tool returns.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

fn args<T: DeserializeOwned>(value: Value) -> Result<T, ToolError> {
    let value = if value.is_null() { json!({}) } else { value };
    serde_json::from_value(value).map_err(|e| ToolError::Invalid(e.to_string()))
}

fn not_blank(field: &str, text: &str) -> Result<(), ToolError> {
    if text.trim().is_empty() {
        return Err(ToolError::Invalid(format!("{field} must not be empty")));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spawn {
    name: String,
    prompt: String,
    #[serde(default)]
    depends_on: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Send {
    kind: CoordinationKind,
    to: String,
    message: String,
    #[serde(default)]
    payload: Value,
    in_reply_to: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wait {
    #[serde(default)]
    wait_secs: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ack {
    id: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Key {
    key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetState {
    key: String,
    value: Value,
    expected_version: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgressArgs {
    item: String,
    done: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Complete {
    summary: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ask {
    question: String,
    #[serde(default)]
    choices: Vec<String>,
    timeout_secs: Option<u64>,
}

/// A message's receiver, as `send_message` resolves it.
enum To {
    Everyone,
    Session(WorkSessionId),
    /// A plan task without a session yet: its session reads it once it starts.
    Task(String),
}

impl Tools {
    /// Runs one tool call and records it in the session's transcript. The result is
    /// JSON text for the agent; `Err` is a tool error (the agent sees its text).
    pub async fn call(
        &self,
        grant: &SessionGrant,
        name: &str,
        arguments: Value,
    ) -> Result<String, String> {
        let outcome = self
            .dispatch(grant, name, arguments.clone())
            .await
            .map(|v| serde_json::to_string_pretty(&v).unwrap_or_default())
            .map_err(|e| e.for_agent());
        self.record(grant, name, &arguments, &outcome).await;
        outcome
    }

    async fn record(
        &self,
        grant: &SessionGrant,
        name: &str,
        arguments: &Value,
        outcome: &Result<String, String>,
    ) {
        let (status, text) = match outcome {
            Ok(t) => ("completed", t.as_str()),
            Err(t) => ("failed", t.as_str()),
        };
        let entry = NewTranscriptEntry {
            work_session_id: grant.work_session_id,
            kind: TranscriptKind::ToolCall,
            content: format!("spectask tool {name}"),
            data: json!({
                "toolCallId": format!("spectask-{}", uuid_like()),
                "title": format!("spectask: {name}"),
                "kind": "other",
                "status": status,
                "rawInput": arguments,
                "content": [{"type": "content", "content": {"type": "text", "text": text}}],
                "source": "spectask",
            }),
        };
        if let Err(e) = self.store.append_transcript(entry).await {
            tracing::warn!(session = grant.work_session_id.0, error = %e, "recording an agent tool call");
        }
    }

    async fn dispatch(
        &self,
        grant: &SessionGrant,
        name: &str,
        arguments: Value,
    ) -> Result<Value, ToolError> {
        let me = format!("session:{}", grant.work_session_id);
        match name {
            "spectask_context" => {
                if !(arguments.is_null() || arguments.as_object().is_some_and(|o| o.is_empty())) {
                    return Err(ToolError::Invalid(
                        "spectask_context takes no arguments".into(),
                    ));
                }
                self.context(grant).await
            }
            "spawn_session" => self.spawn(grant, args(arguments)?, &me).await,
            "send_message" => self.send(grant, args(arguments)?, &me).await,
            "read_inbox" => {
                let a: Wait = args(arguments)?;
                self.inbox(grant, a.wait_secs.min(MAX_WAIT_SECS)).await
            }
            "ack" => {
                let a: Ack = args(arguments)?;
                let e = self
                    .store
                    .acknowledge_coordination_event(
                        grant.spec_task_id,
                        CoordinationEventId(a.id),
                        Some(grant.work_session_id),
                        &me,
                    )
                    .await?;
                Ok(json!({"acknowledged": e.id}))
            }
            "get_state" => {
                let a: Key = args(arguments)?;
                validate_state_key(&a.key).map_err(ToolError::Invalid)?;
                match self
                    .store
                    .get_shared_state(grant.spec_task_id, &a.key)
                    .await
                {
                    Ok(e) => Ok(json!({"key": e.key, "value": e.value, "version": e.version})),
                    Err(StoreError::NotFound { .. }) => {
                        Ok(json!({"key": a.key, "value": null, "version": 0}))
                    }
                    Err(e) => Err(e.into()),
                }
            }
            "set_state" => {
                let a: SetState = args(arguments)?;
                validate_state_key(&a.key).map_err(ToolError::Invalid)?;
                if a.expected_version < 0 {
                    return Err(ToolError::Invalid(
                        "expected_version must be 0 or more".into(),
                    ));
                }
                let e = self
                    .store
                    .put_shared_state(
                        grant.spec_task_id,
                        &a.key,
                        &a.value,
                        a.expected_version,
                        &me,
                    )
                    .await
                    .map_err(|e| match e {
                        StoreError::Conflict(m) => ToolError::Refused(format!(
                            "{m}; nothing was written: read the key again with get_state and retry"
                        )),
                        other => other.into(),
                    })?;
                Ok(json!({"key": e.key, "value": e.value, "version": e.version}))
            }
            "report_progress" => self.report_progress(grant, args(arguments)?).await,
            "complete" => self.complete(grant, args(arguments)?, &me).await,
            "ask_person" => self.ask_person(grant, args(arguments)?, &me).await,
            other => Err(ToolError::Unknown(other.to_string())),
        }
    }

    /// The session, its plan task (if any) and the task's plan.
    async fn mine(
        &self,
        grant: &SessionGrant,
    ) -> Result<
        (
            WorkSession,
            Option<ImplementationTask>,
            Vec<ImplementationTask>,
        ),
        ToolError,
    > {
        let session = self.store.get_work_session(grant.work_session_id).await?;
        let plan = self
            .store
            .list_implementation_tasks(grant.spec_task_id)
            .await?;
        let item = plan
            .iter()
            .find(|t| Some(t.id) == session.implementation_task_id)
            .cloned();
        Ok((session, item, plan))
    }

    async fn context(&self, grant: &SessionGrant) -> Result<Value, ToolError> {
        let (session, item, plan) = self.mine(grant).await?;
        let spec = self.store.get_spec_task(grant.spec_task_id).await?;
        let project = self.store.get_project(grant.project_id).await?;
        let sessions = self.store.list_work_sessions(grant.spec_task_id).await?;
        let sub_items = match (&item, &session.worktree_path) {
            (Some(item), Some(worktree)) => {
                let path = PathBuf::from(worktree).join(spec_files::tasks_md_rel(&project, &spec));
                match tokio::fs::read_to_string(&path).await {
                    Ok(text) => progress::sub_items(&tasks_md::parse(&text), &item.key),
                    Err(_) => Vec::new(),
                }
            }
            _ => Vec::new(),
        };
        let status_of = |key: &str| plan.iter().find(|t| t.key == key).map(|t| t.status);
        Ok(json!({
            "spec_task": {"id": spec.id, "title": spec.title, "status": spec.status},
            "session": {
                "id": session.id, "name": session.name, "kind": session.kind,
                "status": session.status, "attempt": session.attempt, "parent_id": session.parent_id,
                "branch": session.branch, "worktree": session.worktree_path,
            },
            "task": item.as_ref().map(|t| json!({
                "key": t.key, "title": t.title, "details": t.details, "status": t.status,
                "requirements": t.requirements,
                "sub_items": sub_items,
                "depends_on": t.depends_on.iter().map(|d| json!({"key": d, "status": status_of(d)})).collect::<Vec<_>>(),
            })),
            "plan": plan.iter().map(|t| json!({"key": t.key, "title": t.title, "status": t.status, "depends_on": t.depends_on})).collect::<Vec<_>>(),
            "sessions": sessions.iter().map(|s| json!({
                "id": s.id, "name": s.name, "kind": s.kind, "status": s.status, "parent_id": s.parent_id,
                "task_key": plan.iter().find(|t| Some(t.id) == s.implementation_task_id).map(|t| t.key.clone()),
            })).collect::<Vec<_>>(),
        }))
    }

    async fn spawn(&self, grant: &SessionGrant, a: Spawn, me: &str) -> Result<Value, ToolError> {
        not_blank("name", &a.name)?;
        not_blank("prompt", &a.prompt)?;
        let project = self.store.get_project(grant.project_id).await?;
        let sessions = self.store.list_work_sessions(grant.spec_task_id).await?;
        let spawned = sessions
            .iter()
            .filter(|s| s.kind == WorkSessionKind::Spawned)
            .count() as i64;
        let limit = project.settings.max_spawned_sessions;
        if spawned >= limit {
            return Err(ToolError::Refused(format!(
                "this spec task already has {spawned} spawned sessions, its limit (max_spawned_sessions = {limit}); nothing was spawned. Do the work in your own session."
            )));
        }
        // Depth: how many spawned sessions stand between the caller and the root.
        let mut depth = 1;
        let mut at = sessions.iter().find(|s| s.id == grant.work_session_id);
        while let Some(s) = at.filter(|s| s.kind == WorkSessionKind::Spawned) {
            depth += 1;
            at = s
                .parent_id
                .and_then(|p| sessions.iter().find(|x| x.id == p));
        }
        if depth > MAX_SPAWN_DEPTH {
            return Err(ToolError::Refused(format!(
                "a spawned session may not nest deeper than {MAX_SPAWN_DEPTH} levels; nothing was spawned"
            )));
        }
        let session = self
            .implementer
            .spawn(
                grant.spec_task_id,
                SpawnRequest {
                    name: a.name,
                    prompt: a.prompt,
                    parent_id: Some(grant.work_session_id),
                    depends_on: a.depends_on,
                },
                me,
            )
            .await?;
        let key = self
            .store
            .list_implementation_tasks(grant.spec_task_id)
            .await?
            .into_iter()
            .find(|t| Some(t.id) == session.implementation_task_id)
            .map(|t| t.key);
        Ok(json!({"session_id": session.id, "task_key": key, "status": session.status}))
    }

    /// The session a `to` names, within the caller's spec task.
    async fn recipient(&self, grant: &SessionGrant, to: &str) -> Result<To, ToolError> {
        let to = to.trim();
        if to == "everyone" {
            return Ok(To::Everyone);
        }
        let sessions = self.store.list_work_sessions(grant.spec_task_id).await?;
        if let Some(key) = to.strip_prefix("task:") {
            let plan = self
                .store
                .list_implementation_tasks(grant.spec_task_id)
                .await?;
            let task = plan.iter().find(|t| t.key == key).ok_or_else(|| {
                ToolError::Invalid(format!("to: no task {key:?} in this spec task's plan"))
            })?;
            let session = sessions
                .iter()
                .rev()
                .find(|s| s.implementation_task_id == Some(task.id));
            return Ok(match session {
                Some(s) => To::Session(s.id),
                None if matches!(
                    task.status,
                    ImplementationTaskStatus::Done
                        | ImplementationTaskStatus::Skipped
                        | ImplementationTaskStatus::Cancelled
                ) =>
                {
                    return Err(ToolError::Refused(format!(
                        "task {key} is {} and had no session to receive it",
                        task.status
                    )));
                }
                None => To::Task(task.key.clone()),
            });
        }
        let id: i64 = to
            .strip_prefix("session:")
            .unwrap_or(to)
            .parse()
            .map_err(|_| {
                ToolError::Invalid(format!(
                    "to: {to:?} is not a session id, task:<key>, \"everyone\" or \"person\""
                ))
            })?;
        if !sessions.iter().any(|s| s.id == WorkSessionId(id)) {
            return Err(ToolError::Invalid(format!(
                "to: session {id} is not in this spec task"
            )));
        }
        Ok(To::Session(WorkSessionId(id)))
    }

    async fn send(&self, grant: &SessionGrant, a: Send, me: &str) -> Result<Value, ToolError> {
        not_blank("message", &a.message)?;
        if matches!(
            a.kind,
            CoordinationKind::Completion | CoordinationKind::Spawn | CoordinationKind::Conflict
        ) {
            return Err(ToolError::Invalid(format!(
                "kind {} is spectask's own; use handoff, request, response, notification, broadcast, blocking or unblocked",
                a.kind
            )));
        }
        let person = a.to.trim() == "person";
        let recipient = if person || a.kind == CoordinationKind::Broadcast {
            To::Everyone
        } else {
            self.recipient(grant, &a.to).await?
        };
        let mut payload = serde_json::Map::new();
        let to = match recipient {
            To::Everyone => None,
            To::Session(id) if id == grant.work_session_id => {
                return Err(ToolError::Invalid("to: that is your own session".into()));
            }
            To::Session(id) => Some(id),
            To::Task(key) => {
                payload.insert("to_task".into(), json!(key));
                None
            }
        };
        if !a.payload.is_null() {
            payload.insert("data".into(), a.payload);
        }
        if let Some(id) = a.in_reply_to {
            payload.insert("in_reply_to".into(), json!(id));
        }
        if person {
            payload.insert("to_person".into(), json!(true));
        }
        let e = self
            .store
            .post_coordination_event(
                NewCoordinationEvent {
                    spec_task_id: grant.spec_task_id,
                    kind: a.kind,
                    from_session_id: Some(grant.work_session_id),
                    to_session_id: to,
                    message: a.message,
                    payload: Value::Object(payload),
                },
                me,
            )
            .await?;
        Ok(json!({"id": e.id, "kind": e.kind, "to_session_id": e.to_session_id}))
    }

    /// Unacknowledged messages for the session: addressed to it, or broadcast by others.
    async fn waiting(&self, grant: &SessionGrant) -> Result<Vec<CoordinationEvent>, ToolError> {
        let me = grant.work_session_id;
        let (_, item, _) = self.mine(grant).await?;
        let key = item.as_ref().map(|t| t.key.as_str());
        Ok(self
            .store
            .list_coordination_events(grant.spec_task_id)
            .await?
            .into_iter()
            .filter(|e| {
                let broadcast = e.is_broadcast_for(me) && e.kind != CoordinationKind::Completion;
                e.acknowledged_at.is_none() && (e.is_addressed_to(me, key) || broadcast)
            })
            .collect())
    }

    async fn inbox(&self, grant: &SessionGrant, wait_secs: u64) -> Result<Value, ToolError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(wait_secs);
        let mut events = self.store.subscribe_events();
        loop {
            let waiting = self.waiting(grant).await?;
            if !waiting.is_empty() || tokio::time::Instant::now() >= deadline {
                let messages: Vec<Value> = waiting
                    .iter()
                    .map(|e| {
                        json!({
                            "id": e.id, "kind": e.kind,
                            "from": e.from_session_id.map_or("person".to_string(), |s| format!("session:{s}")),
                            "to": e.to_session_id.map_or("everyone".to_string(), |s| format!("session:{s}")),
                            "message": e.message, "payload": e.payload,
                        })
                    })
                    .collect();
                return Ok(json!({"messages": messages}));
            }
            // Each commit wakes this; the list is read again (other replicas' events
            // arrive by the same read).
            self.wait_for_change(&mut events, deadline).await?;
        }
    }

    async fn report_progress(
        &self,
        grant: &SessionGrant,
        a: ProgressArgs,
    ) -> Result<Value, ToolError> {
        let (session, item, _) = self.mine(grant).await?;
        let item = item.ok_or_else(|| {
            ToolError::Refused("your session works on no plan task, so it has no sub-items".into())
        })?;
        let worktree = session
            .worktree_path
            .ok_or_else(|| ToolError::Refused("your session has no worktree".into()))?;
        let spec = self.store.get_spec_task(grant.spec_task_id).await?;
        let project = self.store.get_project(grant.project_id).await?;
        let path = PathBuf::from(worktree).join(spec_files::tasks_md_rel(&project, &spec));
        let text = tokio::fs::read_to_string(&path)
            .await
            .map_err(|e| ToolError::Refused(format!("reading tasks.md in your worktree: {e}")))?;
        let doc = tasks_md::parse(&text);
        let mine = progress::sub_items(&doc, &item.key);
        if !mine.iter().any(|s| s.key == a.item) {
            let keys: Vec<&str> = mine.iter().map(|s| s.key.as_str()).collect();
            return Err(ToolError::Invalid(format!(
                "item: {:?} is not a sub-item of your task {} (its sub-items: {})",
                a.item,
                item.key,
                if keys.is_empty() {
                    "none".to_string()
                } else {
                    keys.join(", ")
                }
            )));
        }
        let line = doc.get(&a.item).map(|i| i.line).unwrap_or_default();
        let mark = if a.done { Mark::Done } else { Mark::Pending };
        let next = tasks_md::set_mark(&text, line, mark)
            .map_err(|e| ToolError::Refused(format!("updating tasks.md: {e}")))?;
        // Written whole through a temporary file, so a reader never sees half of it.
        let tmp = path.with_extension("md.spectask-tmp");
        tokio::fs::write(&tmp, &next)
            .await
            .and(tokio::fs::rename(&tmp, &path).await)
            .map_err(|e| ToolError::Refused(format!("writing tasks.md: {e}")))?;
        let after = progress::sub_items(&tasks_md::parse(&next), &item.key);
        Ok(json!({
            "task": item.key, "item": a.item, "done": a.done,
            "sub_items_done": after.iter().filter(|s| s.done).count(),
            "sub_items_total": after.len(),
        }))
    }

    async fn complete(
        &self,
        grant: &SessionGrant,
        a: Complete,
        me: &str,
    ) -> Result<Value, ToolError> {
        not_blank("summary", &a.summary)?;
        let (_, item, _) = self.mine(grant).await?;
        let e = self
            .store
            .post_coordination_event(
                NewCoordinationEvent {
                    spec_task_id: grant.spec_task_id,
                    kind: CoordinationKind::Completion,
                    from_session_id: Some(grant.work_session_id),
                    to_session_id: None,
                    message: a.summary,
                    payload: json!({"summary": true, "task_key": item.map(|t| t.key)}),
                },
                me,
            )
            .await?;
        Ok(
            json!({"id": e.id, "recorded": "your summary goes to the sessions that depend on your task once it is merged"}),
        )
    }

    async fn ask_person(&self, grant: &SessionGrant, a: Ask, me: &str) -> Result<Value, ToolError> {
        not_blank("question", &a.question)?;
        if a.choices.iter().any(|c| c.trim().is_empty()) {
            return Err(ToolError::Invalid(
                "choices must not be empty strings".into(),
            ));
        }
        let secs = a.timeout_secs.unwrap_or(DEFAULT_ASK_SECS);
        if !(1..=MAX_WAIT_SECS).contains(&secs) {
            return Err(ToolError::Invalid(format!(
                "timeout_secs must be between 1 and {MAX_WAIT_SECS}"
            )));
        }
        let mut events = self.store.subscribe_events();
        let asked = self
            .store
            .post_coordination_event(
                NewCoordinationEvent {
                    spec_task_id: grant.spec_task_id,
                    kind: CoordinationKind::Request,
                    from_session_id: Some(grant.work_session_id),
                    to_session_id: None,
                    message: a.question,
                    payload: json!({"to_person": true, "ask_person": true, "choices": a.choices}),
                },
                me,
            )
            .await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let all = self
                .store
                .list_coordination_events(grant.spec_task_id)
                .await?;
            let answer = all.iter().find(|e| {
                e.kind == CoordinationKind::Response
                    && e.to_session_id == Some(grant.work_session_id)
                    && e.payload.get("in_reply_to").and_then(Value::as_i64) == Some(asked.id.0)
            });
            if let Some(answer) = answer {
                if answer.acknowledged_at.is_none() {
                    // Read here, so it is not delivered again as a message.
                    let _ = self
                        .store
                        .acknowledge_coordination_event(
                            grant.spec_task_id,
                            answer.id,
                            Some(grant.work_session_id),
                            me,
                        )
                        .await;
                }
                return Ok(
                    json!({"answered": true, "answer": answer.message, "request_id": asked.id}),
                );
            }
            let dismissed = all
                .iter()
                .any(|e| e.id == asked.id && e.acknowledged_at.is_some());
            if dismissed {
                return Ok(
                    json!({"answered": false, "dismissed": true, "request_id": asked.id,
                    "note": "a person acknowledged the question without answering it; decide on your own"}),
                );
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(
                    json!({"answered": false, "timed_out": true, "request_id": asked.id,
                    "note": "no person answered in time; decide on your own, or ask again later"}),
                );
            }
            self.wait_for_change(&mut events, deadline).await?;
        }
    }
}

impl Tools {
    /// Waits for the next committed event or the deadline; refuses once the server
    /// shuts down, so no call outlives it.
    async fn wait_for_change(
        &self,
        events: &mut tokio::sync::watch::Receiver<i64>,
        deadline: tokio::time::Instant,
    ) -> Result<(), ToolError> {
        let mut shutdown = self.shutdown.clone();
        if *shutdown.borrow() {
            return Err(ToolError::Refused("spectask is shutting down".into()));
        }
        tokio::select! {
            changed = events.changed() => changed
                .map_err(|_| ToolError::Refused("spectask is shutting down".into())),
            _ = shutdown.changed() => Err(ToolError::Refused("spectask is shutting down".into())),
            _ = tokio::time::sleep_until(deadline) => Ok(()),
        }
    }
}

/// A random id for a recorded tool call.
fn uuid_like() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    crate::auth::hex(&bytes)
}
