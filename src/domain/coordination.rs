//! Messages between sessions (CoordinationEvent) and the notes they share
//! (SharedStateEntry).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ids::*;
use super::lifecycle::status_enum;

status_enum!(
    CoordinationKind {
        Handoff => "handoff",
        Blocking => "blocking",
        Unblocked => "unblocked",
        Notification => "notification",
        Request => "request",
        Response => "response",
        Broadcast => "broadcast",
        Completion => "completion",
        Spawn => "spawn",
        Conflict => "conflict",
    }
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CoordinationEvent {
    #[schema(value_type = i64)]
    pub id: CoordinationEventId,
    #[schema(value_type = i64)]
    pub spec_task_id: SpecTaskId,
    pub kind: CoordinationKind,
    /// The sending session; none when a person sent it.
    #[schema(value_type = Option<i64>)]
    pub from_session_id: Option<WorkSessionId>,
    /// The receiving session; none for everyone in the SpecTask.
    #[schema(value_type = Option<i64>)]
    pub to_session_id: Option<WorkSessionId>,
    pub message: String,
    pub payload: serde_json::Value,
    pub acknowledged_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The session that acknowledged it; none when a person did.
    #[schema(value_type = Option<i64>)]
    pub acknowledged_by: Option<WorkSessionId>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The markers spectask's own messages carry in their payload, read in one place.
impl CoordinationEvent {
    /// Addressed to a person (an agent's `ask_person`, or `send_message` to
    /// "person") rather than to sessions.
    pub fn is_for_person(&self) -> bool {
        self.payload
            .get("to_person")
            .and_then(serde_json::Value::as_bool)
            == Some(true)
    }

    /// The plan task a message waits for when it was sent before that task had a
    /// session: whichever session works on the task receives it.
    pub fn for_task(&self) -> Option<&str> {
        self.payload
            .get("to_task")
            .and_then(serde_json::Value::as_str)
    }

    /// A completion an agent posted itself (its `complete` tool), not the merge's.
    pub fn is_summary(&self) -> bool {
        self.payload
            .get("summary")
            .and_then(serde_json::Value::as_bool)
            == Some(true)
    }

    /// Whether the message is for `session`, which works on the plan task `key`.
    pub fn is_addressed_to(&self, session: WorkSessionId, key: Option<&str>) -> bool {
        self.to_session_id == Some(session)
            || (self.to_session_id.is_none() && key.is_some() && self.for_task() == key)
    }

    /// Whether the message goes to every session of the task but its sender.
    pub fn is_broadcast_for(&self, session: WorkSessionId) -> bool {
        self.to_session_id.is_none()
            && self.from_session_id != Some(session)
            && !self.is_for_person()
            && self.for_task().is_none()
    }
}

/// A key/value note shared by every session of a SpecTask. Writes are a
/// compare-and-set on `version`, so two sessions never silently overwrite each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SharedStateEntry {
    #[schema(value_type = i64)]
    pub spec_task_id: SpecTaskId,
    pub key: String,
    pub value: serde_json::Value,
    /// 1 on creation, +1 on every write.
    pub version: i64,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// Keys are short and printable so they can appear in prompts and URLs.
pub fn validate_state_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key.len() <= 128
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "key {key:?} must be 1-128 characters of letters, digits and - _ . : /"
        ))
    }
}
