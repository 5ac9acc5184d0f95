//! An ImplementationTask: one top-level item of an approved `tasks.md`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ids::*;
use super::lifecycle::{Lifecycle, TransitionError, status_enum};

status_enum!(
    ImplementationTaskStatus {
        Pending => "pending",
        InProgress => "in_progress",
        Done => "done",
        Failed => "failed",
        Blocked => "blocked",
        Skipped => "skipped",
        Cancelled => "cancelled",
    }
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImplementationTaskEvent {
    Start,
    Complete,
    Fail,
    /// A dependency failed: this task cannot start until a person decides.
    Block,
    /// The failed dependency was retried or skipped.
    Unblock,
    Retry,
    /// A person marks it done without merging anything.
    Skip,
    Cancel,
}

impl ImplementationTaskEvent {
    pub const ALL: &'static [ImplementationTaskEvent] = &[
        Self::Start,
        Self::Complete,
        Self::Fail,
        Self::Block,
        Self::Unblock,
        Self::Retry,
        Self::Skip,
        Self::Cancel,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Complete => "complete",
            Self::Fail => "fail",
            Self::Block => "block",
            Self::Unblock => "unblock",
            Self::Retry => "retry",
            Self::Skip => "skip",
            Self::Cancel => "cancel",
        }
    }
}

impl Lifecycle for ImplementationTaskStatus {
    type Event = ImplementationTaskEvent;
    const NAME: &'static str = "implementation task";

    fn status_name(&self) -> &'static str {
        self.as_str()
    }

    fn apply(self, event: ImplementationTaskEvent) -> Result<Self, TransitionError> {
        use ImplementationTaskEvent as E;
        use ImplementationTaskStatus as S;
        Ok(match (self, event) {
            (S::Pending, E::Start) => S::InProgress,
            (S::InProgress, E::Complete) => S::Done,
            (S::InProgress, E::Fail) => S::Failed,
            (S::Pending, E::Block) => S::Blocked,
            (S::Blocked, E::Unblock) => S::Pending,
            (S::Failed, E::Retry) => S::Pending,
            // An in-progress task is skipped or cancelled through its session, which
            // must be stopped or stuck (failed, conflicted) for that to be allowed.
            (S::Pending | S::InProgress | S::Failed | S::Blocked, E::Skip) => S::Skipped,
            (S::Pending | S::InProgress | S::Failed | S::Blocked, E::Cancel) => S::Cancelled,
            _ => return Err(self.refuse(event.name())),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ImplementationTask {
    #[schema(value_type = i64)]
    pub id: ImplementationTaskId,
    #[schema(value_type = i64)]
    pub spec_task_id: SpecTaskId,
    /// The key in `tasks.md`: `1`, `2.1`, `T003`.
    pub key: String,
    pub title: String,
    pub details: String,
    pub status: ImplementationTaskStatus,
    pub depends_on: Vec<String>,
    pub requirements: Vec<String>,
    pub optional: bool,
    pub parallel: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle::testing::check_table;

    #[test]
    fn every_legal_transition_and_no_other() {
        use ImplementationTaskEvent as E;
        use ImplementationTaskStatus as S;
        let legal = [
            (S::Pending, E::Start, S::InProgress),
            (S::InProgress, E::Complete, S::Done),
            (S::InProgress, E::Fail, S::Failed),
            (S::Pending, E::Block, S::Blocked),
            (S::Blocked, E::Unblock, S::Pending),
            (S::Failed, E::Retry, S::Pending),
            (S::Pending, E::Skip, S::Skipped),
            (S::Failed, E::Skip, S::Skipped),
            (S::Blocked, E::Skip, S::Skipped),
            (S::InProgress, E::Skip, S::Skipped),
            (S::Failed, E::Cancel, S::Cancelled),
            (S::Pending, E::Cancel, S::Cancelled),
            (S::InProgress, E::Cancel, S::Cancelled),
            (S::Blocked, E::Cancel, S::Cancelled),
        ];
        check_table(S::ALL, ImplementationTaskEvent::ALL, &legal);
    }
}
