//! The parts of ACP (protocol version 1) spectask speaks, as our own small types.
//! Reading is lenient: unknown fields are ignored and unknown update kinds become
//! [`AgentUpdate::Other`], as the protocol asks of clients.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub const PROTOCOL_VERSION: i64 = 1;

/// The `initialize` request we send: we serve file reads and writes and terminals.
pub fn initialize_params() -> Value {
    json!({
        "protocolVersion": PROTOCOL_VERSION,
        "clientCapabilities": {
            "fs": { "readTextFile": true, "writeTextFile": true },
            "terminal": true
        },
        "clientInfo": { "name": "spectask", "version": env!("CARGO_PKG_VERSION") }
    })
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentInfo {
    pub name: Option<String>,
    pub version: Option<String>,
    pub protocol_version: i64,
    pub load_session: bool,
    /// The agent's capabilities as it sent them.
    #[schema(value_type = Object)]
    pub capabilities: Value,
    /// Ids of the authentication methods the agent offers.
    pub auth_methods: Vec<String>,
}

impl AgentInfo {
    pub fn from_initialize(result: &Value) -> AgentInfo {
        let caps = result
            .get("agentCapabilities")
            .cloned()
            .unwrap_or(Value::Null);
        let info = result.get("agentInfo");
        let text = |v: Option<&Value>, k: &str| {
            v.and_then(|v| v.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        AgentInfo {
            name: text(info, "name").or_else(|| text(info, "title")),
            version: text(info, "version"),
            protocol_version: result
                .get("protocolVersion")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            load_session: caps
                .get("loadSession")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            auth_methods: result
                .get("authMethods")
                .and_then(Value::as_array)
                .map(|methods| {
                    methods
                        .iter()
                        .filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            capabilities: caps,
        }
    }
}

/// Why a turn ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    MaxTurnRequests,
    Refusal,
    Cancelled,
    #[serde(other)]
    Other,
}

pub fn prompt_params(session_id: &str, text: &str) -> Value {
    json!({ "sessionId": session_id, "prompt": [{ "type": "text", "text": text }] })
}

pub fn stop_reason(result: &Value) -> StopReason {
    result
        .get("stopReason")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or(StopReason::Other)
}

/// One `session/update`, reduced to what spectask records.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentUpdate {
    Message(String),
    Thought(String),
    UserMessage(String),
    ToolCall {
        id: String,
        data: Value,
    },
    ToolCallUpdate {
        id: String,
        data: Value,
    },
    Plan(Value),
    Usage {
        used: i64,
        size: i64,
        cost: Option<f64>,
    },
    Other(String),
}

fn chunk_text(update: &Value) -> String {
    let content = update.get("content");
    match content.and_then(|c| c.get("type")).and_then(Value::as_str) {
        Some("text") => content
            .and_then(|c| c.get("text"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        Some(other) => format!("[{other}]"),
        None => String::new(),
    }
}

/// Parses the params of a `session/update` into its session id and update.
pub fn parse_update(params: &Value) -> Option<(String, AgentUpdate)> {
    let session_id = params.get("sessionId")?.as_str()?.to_string();
    let update = params.get("update")?;
    let kind = update.get("sessionUpdate")?.as_str()?;
    let id = || {
        update
            .get("toolCallId")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let parsed = match kind {
        "agent_message_chunk" => AgentUpdate::Message(chunk_text(update)),
        "agent_thought_chunk" => AgentUpdate::Thought(chunk_text(update)),
        "user_message_chunk" => AgentUpdate::UserMessage(chunk_text(update)),
        "tool_call" => AgentUpdate::ToolCall {
            id: id(),
            data: update.clone(),
        },
        "tool_call_update" => AgentUpdate::ToolCallUpdate {
            id: id(),
            data: update.clone(),
        },
        "plan" => AgentUpdate::Plan(update.get("entries").cloned().unwrap_or(Value::Null)),
        "usage_update" => AgentUpdate::Usage {
            used: update.get("used").and_then(Value::as_i64).unwrap_or(0),
            size: update.get("size").and_then(Value::as_i64).unwrap_or(0),
            cost: update
                .get("cost")
                .and_then(|c| c.get("amount"))
                .and_then(Value::as_f64),
        },
        other => AgentUpdate::Other(other.to_string()),
    };
    Some((session_id, parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_updates_leniently() {
        let p = json!({"sessionId": "s", "update": {"sessionUpdate": "agent_message_chunk",
                       "content": {"type": "text", "text": "hi"}, "extra": 1}});
        assert_eq!(
            parse_update(&p),
            Some(("s".into(), AgentUpdate::Message("hi".into())))
        );
        let p = json!({"sessionId": "s", "update": {"sessionUpdate": "usage_update", "used": 5, "size": 10,
                       "cost": {"amount": 0.5, "currency": "USD"}}});
        assert_eq!(
            parse_update(&p).unwrap().1,
            AgentUpdate::Usage {
                used: 5,
                size: 10,
                cost: Some(0.5)
            }
        );
        let p = json!({"sessionId": "s", "update": {"sessionUpdate": "brand_new_thing"}});
        assert_eq!(
            parse_update(&p).unwrap().1,
            AgentUpdate::Other("brand_new_thing".into())
        );
        assert_eq!(parse_update(&json!({"nope": 1})), None);
        assert_eq!(
            stop_reason(&json!({"stopReason": "cancelled"})),
            StopReason::Cancelled
        );
        assert_eq!(
            stop_reason(&json!({"stopReason": "weird"})),
            StopReason::Other
        );
    }

    #[test]
    fn reads_initialize_results() {
        let info = AgentInfo::from_initialize(&json!({
            "protocolVersion": 1,
            "agentCapabilities": {"loadSession": true},
            "authMethods": [{"id": "token", "name": "Token"}],
            "agentInfo": {"name": "x", "version": "1.2"}
        }));
        assert_eq!(info.name.as_deref(), Some("x"));
        assert!(info.load_session);
        assert_eq!(info.auth_methods, ["token"]);
    }
}
