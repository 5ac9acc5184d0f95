//! The agent process serving a SpecTask (AgentInstance, one per SpecTask) and the
//! conversations inside it (AgentThread, one per WorkSession).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ids::*;
use super::lifecycle::{Lifecycle, TransitionError, status_enum};

status_enum!(
    AgentInstanceStatus {
        Starting => "starting",
        Ready => "ready",
        Stopped => "stopped",
        Crashed => "crashed",
    }
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentInstanceEvent {
    /// `initialize` (and `authenticate`, if needed) succeeded.
    Initialized,
    Stop,
    /// The process exited on its own or never answered.
    Crash,
    /// Start it again, after a stop or a crash, or on a person's request.
    Restart,
}

impl AgentInstanceEvent {
    pub const ALL: &'static [Self] = &[Self::Initialized, Self::Stop, Self::Crash, Self::Restart];

    fn name(self) -> &'static str {
        match self {
            Self::Initialized => "initialize",
            Self::Stop => "stop",
            Self::Crash => "crash",
            Self::Restart => "restart",
        }
    }
}

impl Lifecycle for AgentInstanceStatus {
    type Event = AgentInstanceEvent;
    const NAME: &'static str = "agent instance";

    fn status_name(&self) -> &'static str {
        self.as_str()
    }

    fn apply(self, event: AgentInstanceEvent) -> Result<Self, TransitionError> {
        use AgentInstanceEvent as E;
        use AgentInstanceStatus as S;
        Ok(match (self, event) {
            (S::Starting, E::Initialized) => S::Ready,
            (S::Starting | S::Ready | S::Crashed, E::Stop) => S::Stopped,
            (S::Starting | S::Ready, E::Crash) => S::Crashed,
            (S::Ready | S::Stopped | S::Crashed, E::Restart) => S::Starting,
            _ => return Err(self.refuse(event.name())),
        })
    }
}

status_enum!(
    AgentThreadStatus {
        Opening => "opening",
        Idle => "idle",
        Prompting => "prompting",
        Interrupted => "interrupted",
        Closed => "closed",
    }
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentThreadEvent {
    /// `session/new` or `session/load` answered.
    Opened,
    /// A `session/prompt` was sent: a turn is running.
    Prompt,
    /// The prompt was answered (any stop reason, including `cancelled`).
    TurnEnded,
    /// The agent process died under it.
    Interrupt,
    /// Open it again in a restarted instance.
    Resume,
    Close,
}

impl AgentThreadEvent {
    pub const ALL: &'static [Self] = &[
        Self::Opened,
        Self::Prompt,
        Self::TurnEnded,
        Self::Interrupt,
        Self::Resume,
        Self::Close,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Opened => "open",
            Self::Prompt => "prompt",
            Self::TurnEnded => "end the turn of",
            Self::Interrupt => "interrupt",
            Self::Resume => "resume",
            Self::Close => "close",
        }
    }
}

impl Lifecycle for AgentThreadStatus {
    type Event = AgentThreadEvent;
    const NAME: &'static str = "agent thread";

    fn status_name(&self) -> &'static str {
        self.as_str()
    }

    fn apply(self, event: AgentThreadEvent) -> Result<Self, TransitionError> {
        use AgentThreadEvent as E;
        use AgentThreadStatus as S;
        Ok(match (self, event) {
            (S::Opening, E::Opened) => S::Idle,
            (S::Idle, E::Prompt) => S::Prompting,
            (S::Prompting, E::TurnEnded) => S::Idle,
            (S::Opening | S::Idle | S::Prompting, E::Interrupt) => S::Interrupted,
            (S::Interrupted, E::Resume) => S::Opening,
            (S::Opening | S::Idle | S::Prompting | S::Interrupted, E::Close) => S::Closed,
            _ => return Err(self.refuse(event.name())),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentInstance {
    #[schema(value_type = i64)]
    pub id: AgentInstanceId,
    #[schema(value_type = i64)]
    pub spec_task_id: SpecTaskId,
    pub profile: String,
    pub status: AgentInstanceStatus,
    pub pid: Option<i64>,
    /// Why it last stopped or crashed (the tail of the agent's stderr, or a timeout).
    pub last_error: Option<String>,
    /// What the agent called itself in `initialize`.
    pub agent_name: Option<String>,
    pub agent_version: Option<String>,
    /// How many times spectask restarted it after a crash.
    pub restarts: i64,
    /// The latest sample of its process tree: CPU (percent of one core) and memory.
    pub cpu_percent: Option<f64>,
    pub rss_bytes: Option<i64>,
    pub sampled_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When a person stopped it: until a person restarts it, the orchestrator starts
    /// nothing on it (its sessions wait, interrupted).
    pub held_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// One CPU and memory reading of an agent instance's process tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentSample {
    /// Percent of one core.
    pub cpu_percent: f64,
    pub rss_bytes: i64,
    pub at: chrono::DateTime<chrono::Utc>,
}

status_enum!(
    /// What a transcript entry holds.
    TranscriptKind {
        Prompt => "prompt",
        Message => "message",
        Thought => "thought",
        UserMessage => "user_message",
        ToolCall => "tool_call",
        ToolCallUpdate => "tool_call_update",
        Plan => "plan",
        Usage => "usage",
        Permission => "permission",
        StopReason => "stop_reason",
        Error => "error",
    }
);

/// One entry of a session's transcript. Consecutive message (or thought) chunks
/// are coalesced into one entry, so a long answer is one row, not one per token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TranscriptEntry {
    pub id: i64,
    #[schema(value_type = i64)]
    pub spec_task_id: SpecTaskId,
    #[schema(value_type = i64)]
    pub work_session_id: WorkSessionId,
    pub kind: TranscriptKind,
    pub content: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

status_enum!(
    PermissionStatus {
        Pending => "pending",
        Answered => "answered",
        Cancelled => "cancelled",
    }
);

/// What ends a permission request: a person (or the policy) picks an option, or the
/// request goes away unanswered (the turn was cancelled, the agent is gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionEvent {
    Answer,
    Cancel,
}

impl PermissionEvent {
    pub const ALL: &'static [Self] = &[Self::Answer, Self::Cancel];

    fn name(self) -> &'static str {
        match self {
            Self::Answer => "answer",
            Self::Cancel => "cancel",
        }
    }
}

/// A request is answered or cancelled once: both ends are final, so a second
/// answer (or an answer after the cancel) is refused.
impl Lifecycle for PermissionStatus {
    type Event = PermissionEvent;
    const NAME: &'static str = "permission request";

    fn status_name(&self) -> &'static str {
        self.as_str()
    }

    fn apply(self, event: PermissionEvent) -> Result<Self, TransitionError> {
        use PermissionEvent as E;
        use PermissionStatus as S;
        Ok(match (self, event) {
            (S::Pending, E::Answer) => S::Answered,
            (S::Pending, E::Cancel) => S::Cancelled,
            _ => return Err(self.refuse(event.name())),
        })
    }
}

/// An agent's `session/request_permission`, when the project's policy is `ask`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PermissionRequest {
    #[schema(value_type = i64)]
    pub id: PermissionRequestId,
    #[schema(value_type = i64)]
    pub spec_task_id: SpecTaskId,
    #[schema(value_type = i64)]
    pub work_session_id: WorkSessionId,
    pub title: String,
    #[schema(value_type = Object)]
    pub tool_call: serde_json::Value,
    /// The options the agent offers: `[{optionId, name, kind}]`.
    #[schema(value_type = Vec<Object>)]
    pub options: serde_json::Value,
    pub status: PermissionStatus,
    /// The option chosen, when answered.
    pub option_id: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub resolved_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentThread {
    #[schema(value_type = i64)]
    pub id: AgentThreadId,
    #[schema(value_type = i64)]
    pub agent_instance_id: AgentInstanceId,
    #[schema(value_type = i64)]
    pub work_session_id: WorkSessionId,
    /// The ACP session id the agent gave for this thread.
    pub acp_session_id: Option<String>,
    pub status: AgentThreadStatus,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle::testing::check_table;

    #[test]
    fn instance_transitions() {
        use AgentInstanceEvent as E;
        use AgentInstanceStatus as S;
        let legal = [
            (S::Starting, E::Initialized, S::Ready),
            (S::Starting, E::Stop, S::Stopped),
            (S::Ready, E::Stop, S::Stopped),
            (S::Crashed, E::Stop, S::Stopped),
            (S::Starting, E::Crash, S::Crashed),
            (S::Ready, E::Crash, S::Crashed),
            (S::Ready, E::Restart, S::Starting),
            (S::Stopped, E::Restart, S::Starting),
            (S::Crashed, E::Restart, S::Starting),
        ];
        check_table(S::ALL, AgentInstanceEvent::ALL, &legal);
    }

    #[test]
    fn thread_transitions() {
        use AgentThreadEvent as E;
        use AgentThreadStatus as S;
        let legal = [
            (S::Opening, E::Opened, S::Idle),
            (S::Idle, E::Prompt, S::Prompting),
            (S::Prompting, E::TurnEnded, S::Idle),
            (S::Opening, E::Interrupt, S::Interrupted),
            (S::Idle, E::Interrupt, S::Interrupted),
            (S::Prompting, E::Interrupt, S::Interrupted),
            (S::Interrupted, E::Resume, S::Opening),
            (S::Opening, E::Close, S::Closed),
            (S::Idle, E::Close, S::Closed),
            (S::Prompting, E::Close, S::Closed),
            (S::Interrupted, E::Close, S::Closed),
        ];
        check_table(S::ALL, AgentThreadEvent::ALL, &legal);
    }

    #[test]
    fn permission_transitions() {
        use PermissionEvent as E;
        use PermissionStatus as S;
        let legal = [
            (S::Pending, E::Answer, S::Answered),
            (S::Pending, E::Cancel, S::Cancelled),
        ];
        check_table(S::ALL, PermissionEvent::ALL, &legal);
    }
}
