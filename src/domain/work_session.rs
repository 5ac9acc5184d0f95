//! A WorkSession: one agent working on one thing (an implementation task, a planning
//! round, a merge-conflict fix, or a session a person or an agent spawned).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ids::*;
use super::lifecycle::{Lifecycle, TransitionError, status_enum};

status_enum!(
    WorkSessionStatus {
        Pending => "pending",
        Running => "running",
        Blocked => "blocked",
        Interrupted => "interrupted",
        Verifying => "verifying",
        Merging => "merging",
        Conflicted => "conflicted",
        Completed => "completed",
        Failed => "failed",
        Skipped => "skipped",
        Cancelled => "cancelled",
    }
);

status_enum!(
    WorkSessionKind {
        Planning => "planning",
        Implementation => "implementation",
        MergeConflict => "merge_conflict",
        Spawned => "spawned",
        /// A thread a person opened on a running task's agent.
        AdHoc => "ad_hoc",
    }
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkSessionEvent {
    /// Its thread got a prompt (first attempt, or a retry after an interruption).
    Start,
    /// A `blocking` coordination event holds it.
    Block,
    Unblock,
    /// Its agent process died or its thread was lost.
    Interrupt,
    /// Its turn ended; the work is committed and checked.
    TurnEnded,
    /// Verification failed and the agent gets a follow-up turn.
    VerifyFailed,
    VerifyPassed,
    Merged,
    Conflict,
    /// A conflict-fixing session or a person resolved the conflict.
    ConflictResolved,
    Fail,
    Retry,
    Skip,
    Cancel,
}

impl WorkSessionEvent {
    fn name(&self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Block => "block",
            Self::Unblock => "unblock",
            Self::Interrupt => "interrupt",
            Self::TurnEnded => "end the turn of",
            Self::VerifyFailed => "fail verification of",
            Self::VerifyPassed => "pass verification of",
            Self::Merged => "merge",
            Self::Conflict => "record a conflict for",
            Self::ConflictResolved => "resolve the conflict of",
            Self::Fail => "fail",
            Self::Retry => "retry",
            Self::Skip => "skip",
            Self::Cancel => "cancel",
        }
    }

    pub const ALL: &'static [WorkSessionEvent] = &[
        Self::Start,
        Self::Block,
        Self::Unblock,
        Self::Interrupt,
        Self::TurnEnded,
        Self::VerifyFailed,
        Self::VerifyPassed,
        Self::Merged,
        Self::Conflict,
        Self::ConflictResolved,
        Self::Fail,
        Self::Retry,
        Self::Skip,
        Self::Cancel,
    ];
}

impl WorkSessionStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Skipped | Self::Cancelled)
    }
}

impl Lifecycle for WorkSessionStatus {
    type Event = WorkSessionEvent;
    const NAME: &'static str = "work session";

    fn status_name(&self) -> &'static str {
        self.as_str()
    }

    fn apply(self, event: WorkSessionEvent) -> Result<Self, TransitionError> {
        use WorkSessionEvent as E;
        use WorkSessionStatus as S;
        Ok(match (self, &event) {
            (S::Pending | S::Interrupted, E::Start) => S::Running,
            (S::Running, E::Block) => S::Blocked,
            (S::Blocked, E::Unblock) => S::Running,
            (S::Running | S::Blocked | S::Verifying, E::Interrupt) => S::Interrupted,
            (S::Running, E::TurnEnded) => S::Verifying,
            (S::Verifying, E::VerifyFailed) => S::Running,
            (S::Verifying, E::VerifyPassed) => S::Merging,
            (S::Merging, E::Merged) => S::Completed,
            (S::Merging, E::Conflict) => S::Conflicted,
            (S::Conflicted, E::ConflictResolved) => S::Merging,
            (
                S::Running
                | S::Blocked
                | S::Interrupted
                | S::Verifying
                | S::Merging
                | S::Conflicted,
                E::Fail,
            ) => S::Failed,
            (S::Failed | S::Interrupted | S::Cancelled, E::Retry) => S::Pending,
            (S::Pending | S::Blocked | S::Interrupted | S::Conflicted | S::Failed, E::Skip) => {
                S::Skipped
            }
            (s, E::Cancel) if !s.is_terminal() => S::Cancelled,
            _ => return Err(self.refuse(event.name())),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkSession {
    #[schema(value_type = i64)]
    pub id: WorkSessionId,
    #[schema(value_type = i64)]
    pub spec_task_id: SpecTaskId,
    #[schema(value_type = Option<i64>)]
    pub parent_id: Option<WorkSessionId>,
    #[schema(value_type = Option<i64>)]
    pub implementation_task_id: Option<ImplementationTaskId>,
    pub kind: WorkSessionKind,
    pub name: String,
    pub prompt: String,
    pub status: WorkSessionStatus,
    pub failure_reason: Option<String>,
    pub attempt: i64,
    pub branch: Option<String>,
    pub worktree_path: Option<String>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle::testing::check_table;

    #[test]
    fn every_legal_transition_and_no_other() {
        use WorkSessionEvent as E;
        use WorkSessionStatus as S;
        let mut legal = vec![
            (S::Pending, E::Start, S::Running),
            (S::Interrupted, E::Start, S::Running),
            (S::Running, E::Block, S::Blocked),
            (S::Blocked, E::Unblock, S::Running),
            (S::Running, E::Interrupt, S::Interrupted),
            (S::Blocked, E::Interrupt, S::Interrupted),
            (S::Verifying, E::Interrupt, S::Interrupted),
            (S::Running, E::TurnEnded, S::Verifying),
            (S::Verifying, E::VerifyFailed, S::Running),
            (S::Verifying, E::VerifyPassed, S::Merging),
            (S::Merging, E::Merged, S::Completed),
            (S::Merging, E::Conflict, S::Conflicted),
            (S::Conflicted, E::ConflictResolved, S::Merging),
        ];
        for s in [
            S::Running,
            S::Blocked,
            S::Interrupted,
            S::Verifying,
            S::Merging,
            S::Conflicted,
        ] {
            legal.push((s, E::Fail, S::Failed));
        }
        for s in [S::Failed, S::Interrupted, S::Cancelled] {
            legal.push((s, E::Retry, S::Pending));
        }
        for s in [
            S::Pending,
            S::Blocked,
            S::Interrupted,
            S::Conflicted,
            S::Failed,
        ] {
            legal.push((s, E::Skip, S::Skipped));
        }
        for s in S::ALL.iter().filter(|s| !s.is_terminal()) {
            legal.push((*s, E::Cancel, S::Cancelled));
        }
        check_table(S::ALL, WorkSessionEvent::ALL, &legal);
    }
}
