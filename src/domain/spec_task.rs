//! The SpecTask: one unit of feature work, and its lifecycle.
//!
//! ```text
//! backlog → planning → spec_review ─approve→ implementing → implementation_review → done
//!               ↑           │                     │
//!               └─ changes ─┘                     └→ failed (phase, reason)
//! any live state → cancelled; spec_review → rejected; a WIP limit holds a task in
//! planning_queued or implementation_queued until a slot frees.
//! ```

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ids::*;
use super::lifecycle::{Lifecycle, TransitionError, status_enum};

status_enum!(
    /// The stored, field-less form of a SpecTask's state.
    SpecTaskStatus {
        Backlog => "backlog",
        PlanningQueued => "planning_queued",
        Planning => "planning",
        SpecReview => "spec_review",
        ImplementationQueued => "implementation_queued",
        Implementing => "implementing",
        ImplementationReview => "implementation_review",
        Done => "done",
        Failed => "failed",
        Rejected => "rejected",
        Cancelled => "cancelled",
    }
);

status_enum!(
    /// The phase a SpecTask failed in; `retry` goes back to its start.
    Phase {
        Planning => "planning",
        Implementation => "implementation",
    }
);

status_enum!(
    Priority {
        Low => "low",
        Medium => "medium",
        High => "high",
        Critical => "critical",
    }
);

status_enum!(
    TaskType {
        Feature => "feature",
        Bugfix => "bugfix",
        Refactor => "refactor",
    }
);

/// Whether the project's WIP limits leave room in each phase. Events that move a task
/// into a phase carry it, so `apply` decides between running and queuing without
/// reading anything itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capacity {
    pub planning_full: bool,
    pub implementation_full: bool,
}

impl Capacity {
    pub const FREE: Capacity = Capacity {
        planning_full: false,
        implementation_full: false,
    };

    /// Computes capacity from the tasks currently in each phase and the limits.
    pub fn from_usage(
        planning: i64,
        implementing: i64,
        planning_limit: Option<i64>,
        implementation_limit: Option<i64>,
    ) -> Capacity {
        Capacity {
            planning_full: planning_limit.is_some_and(|l| planning >= l),
            implementation_full: implementation_limit.is_some_and(|l| implementing >= l),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecTaskState {
    Backlog,
    PlanningQueued,
    Planning,
    SpecReview,
    ImplementationQueued,
    Implementing,
    ImplementationReview,
    Done,
    Failed { phase: Phase, reason: String },
    Rejected,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecTaskEvent {
    /// A person (or the planning WIP scheduler) starts planning.
    StartPlanning(Capacity),
    /// A slot freed up: a queued task moves into its phase.
    Admit(Capacity),
    /// The planning agent's spec validated and was committed as a version.
    SpecWritten,
    /// A person approves the spec (or, in implementation review, the work).
    Approve(Capacity),
    /// A person asks for changes: back to planning (or implementing) for a revision.
    RequestChanges(Capacity),
    /// A person rejects the spec; the task is archived and its branch kept.
    Reject,
    /// Every implementation task is done and merged.
    ImplementationFinished {
        review_gate: bool,
    },
    /// The running phase failed.
    Fail {
        reason: String,
    },
    /// A person retries a failed task from the start of the phase it failed in.
    Retry(Capacity),
    /// An existing spec (Kiro, spec-kit) was imported as version 1: straight to review.
    Imported,
    Cancel,
}

impl SpecTaskEvent {
    pub fn name(&self) -> &'static str {
        match self {
            SpecTaskEvent::StartPlanning(_) => "start planning",
            SpecTaskEvent::Admit(_) => "admit",
            SpecTaskEvent::SpecWritten => "record a spec for",
            SpecTaskEvent::Approve(_) => "approve",
            SpecTaskEvent::RequestChanges(_) => "request changes on",
            SpecTaskEvent::Reject => "reject",
            SpecTaskEvent::ImplementationFinished { .. } => "finish implementing",
            SpecTaskEvent::Fail { .. } => "fail",
            SpecTaskEvent::Retry(_) => "retry",
            SpecTaskEvent::Imported => "import a spec into",
            SpecTaskEvent::Cancel => "cancel",
        }
    }
}

impl SpecTaskState {
    pub fn status(&self) -> SpecTaskStatus {
        match self {
            SpecTaskState::Backlog => SpecTaskStatus::Backlog,
            SpecTaskState::PlanningQueued => SpecTaskStatus::PlanningQueued,
            SpecTaskState::Planning => SpecTaskStatus::Planning,
            SpecTaskState::SpecReview => SpecTaskStatus::SpecReview,
            SpecTaskState::ImplementationQueued => SpecTaskStatus::ImplementationQueued,
            SpecTaskState::Implementing => SpecTaskStatus::Implementing,
            SpecTaskState::ImplementationReview => SpecTaskStatus::ImplementationReview,
            SpecTaskState::Done => SpecTaskStatus::Done,
            SpecTaskState::Failed { .. } => SpecTaskStatus::Failed,
            SpecTaskState::Rejected => SpecTaskStatus::Rejected,
            SpecTaskState::Cancelled => SpecTaskStatus::Cancelled,
        }
    }

    /// Rebuilds the state from its stored columns.
    pub fn from_parts(
        status: SpecTaskStatus,
        failed_phase: Option<Phase>,
        failure_reason: Option<String>,
    ) -> SpecTaskState {
        match status {
            SpecTaskStatus::Backlog => SpecTaskState::Backlog,
            SpecTaskStatus::PlanningQueued => SpecTaskState::PlanningQueued,
            SpecTaskStatus::Planning => SpecTaskState::Planning,
            SpecTaskStatus::SpecReview => SpecTaskState::SpecReview,
            SpecTaskStatus::ImplementationQueued => SpecTaskState::ImplementationQueued,
            SpecTaskStatus::Implementing => SpecTaskState::Implementing,
            SpecTaskStatus::ImplementationReview => SpecTaskState::ImplementationReview,
            SpecTaskStatus::Done => SpecTaskState::Done,
            SpecTaskStatus::Failed => SpecTaskState::Failed {
                phase: failed_phase.unwrap_or(Phase::Planning),
                reason: failure_reason.unwrap_or_default(),
            },
            SpecTaskStatus::Rejected => SpecTaskState::Rejected,
            SpecTaskStatus::Cancelled => SpecTaskState::Cancelled,
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            SpecTaskState::Done | SpecTaskState::Rejected | SpecTaskState::Cancelled
        )
    }
}

fn enter_planning(capacity: Capacity) -> SpecTaskState {
    if capacity.planning_full {
        SpecTaskState::PlanningQueued
    } else {
        SpecTaskState::Planning
    }
}

fn enter_implementation(capacity: Capacity) -> SpecTaskState {
    if capacity.implementation_full {
        SpecTaskState::ImplementationQueued
    } else {
        SpecTaskState::Implementing
    }
}

impl Lifecycle for SpecTaskState {
    type Event = SpecTaskEvent;
    const NAME: &'static str = "spec task";

    fn status_name(&self) -> &'static str {
        self.status().as_str()
    }

    fn apply(self, event: SpecTaskEvent) -> Result<SpecTaskState, TransitionError> {
        use SpecTaskEvent as E;
        use SpecTaskState as S;
        let refused = self.refuse(event.name());
        let next = match (self, event) {
            (S::Backlog, E::StartPlanning(c)) => enter_planning(c),
            (S::PlanningQueued, E::Admit(c)) => match enter_planning(c) {
                S::PlanningQueued => return Err(no_slot(refused)),
                next => next,
            },
            (S::ImplementationQueued, E::Admit(c)) => match enter_implementation(c) {
                S::ImplementationQueued => return Err(no_slot(refused)),
                next => next,
            },
            (S::Planning, E::SpecWritten) => S::SpecReview,
            (S::Backlog, E::Imported) => S::SpecReview,
            (S::SpecReview, E::Approve(c)) => enter_implementation(c),
            (S::SpecReview, E::RequestChanges(c)) => enter_planning(c),
            (S::SpecReview, E::Reject) => S::Rejected,
            (S::Implementing, E::ImplementationFinished { review_gate: true }) => {
                S::ImplementationReview
            }
            (S::Implementing, E::ImplementationFinished { review_gate: false }) => S::Done,
            (S::ImplementationReview, E::Approve(_)) => S::Done,
            (S::ImplementationReview, E::RequestChanges(c)) => enter_implementation(c),
            (S::Planning, E::Fail { reason }) => S::Failed {
                phase: Phase::Planning,
                reason,
            },
            (S::Implementing, E::Fail { reason }) => S::Failed {
                phase: Phase::Implementation,
                reason,
            },
            (
                S::Failed {
                    phase: Phase::Planning,
                    ..
                },
                E::Retry(c),
            ) => enter_planning(c),
            (
                S::Failed {
                    phase: Phase::Implementation,
                    ..
                },
                E::Retry(c),
            ) => enter_implementation(c),
            (state, E::Cancel) if !state.is_terminal() => S::Cancelled,
            _ => return Err(refused),
        };
        Ok(next)
    }
}

fn no_slot(mut err: TransitionError) -> TransitionError {
    err.reason = Some("the project's WIP limit is reached");
    err
}

/// Turns free text into a branch- and path-safe slug: lowercase ASCII letters,
/// digits and single dashes, at most 40 characters, never empty.
pub fn slugify(text: &str) -> String {
    let mut slug = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-').to_string();
    if slug.is_empty() {
        "task".to_string()
    } else {
        slug
    }
}

/// A title from a prompt when the person gave none: its first line, shortened.
pub fn title_from_prompt(prompt: &str) -> String {
    let line = prompt
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut title: String = line.chars().take(80).collect();
    if line.chars().count() > 80 {
        title.push('…');
    }
    title
}

/// A SpecTask as stored. The branch and spec folder name derive from the id and the
/// slug fixed at creation, so renaming a task never moves its branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SpecTask {
    #[schema(value_type = i64)]
    pub id: SpecTaskId,
    #[schema(value_type = i64)]
    pub project_id: ProjectId,
    pub title: String,
    pub description: String,
    pub prompt: String,
    pub priority: Priority,
    pub task_type: TaskType,
    pub status: SpecTaskStatus,
    /// Set when `status` is `failed`: the phase that failed.
    pub failed_phase: Option<Phase>,
    /// Set when `status` is `failed`: why.
    pub failure_reason: Option<String>,
    pub slug: String,
    /// The task branch, `spectask/<id>-<slug>`.
    pub branch: String,
    /// The folder name of its spec under the project's spec folder, `<id>-<slug>`.
    pub spec_dir_name: String,
    pub max_parallel_sessions: Option<i64>,
    pub agent_profile: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl SpecTask {
    pub fn state(&self) -> SpecTaskState {
        SpecTaskState::from_parts(self.status, self.failed_phase, self.failure_reason.clone())
    }

    pub fn branch_name(id: SpecTaskId, slug: &str) -> String {
        format!("spectask/{id}-{slug}")
    }

    pub fn spec_dir_name(id: SpecTaskId, slug: &str) -> String {
        format!("{id}-{slug}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle::testing::check_table;

    fn failed(phase: Phase) -> SpecTaskState {
        SpecTaskState::Failed {
            phase,
            reason: "agent crashed".into(),
        }
    }

    #[test]
    fn every_legal_transition_and_no_other() {
        use SpecTaskEvent as E;
        use SpecTaskState as S;
        let free = Capacity::FREE;
        let pfull = Capacity {
            planning_full: true,
            implementation_full: false,
        };
        let ifull = Capacity {
            planning_full: false,
            implementation_full: true,
        };
        let fail = || E::Fail {
            reason: "agent crashed".into(),
        };
        let states = vec![
            S::Backlog,
            S::PlanningQueued,
            S::Planning,
            S::SpecReview,
            S::ImplementationQueued,
            S::Implementing,
            S::ImplementationReview,
            S::Done,
            failed(Phase::Planning),
            failed(Phase::Implementation),
            S::Rejected,
            S::Cancelled,
        ];
        let events = vec![
            E::StartPlanning(free),
            E::StartPlanning(pfull),
            E::Admit(free),
            E::Admit(pfull),
            E::Admit(ifull),
            E::SpecWritten,
            E::Approve(free),
            E::Approve(ifull),
            E::RequestChanges(free),
            E::RequestChanges(pfull),
            E::RequestChanges(ifull),
            E::Reject,
            E::ImplementationFinished { review_gate: true },
            E::ImplementationFinished { review_gate: false },
            fail(),
            E::Retry(free),
            E::Retry(pfull),
            E::Retry(ifull),
            E::Imported,
            E::Cancel,
        ];
        let mut legal = vec![
            (S::Backlog, E::StartPlanning(free), S::Planning),
            (S::Backlog, E::StartPlanning(pfull), S::PlanningQueued),
            (S::PlanningQueued, E::Admit(free), S::Planning),
            (S::PlanningQueued, E::Admit(ifull), S::Planning),
            (S::ImplementationQueued, E::Admit(free), S::Implementing),
            (S::ImplementationQueued, E::Admit(pfull), S::Implementing),
            (S::Planning, E::SpecWritten, S::SpecReview),
            (S::Backlog, E::Imported, S::SpecReview),
            (S::SpecReview, E::Approve(free), S::Implementing),
            (S::SpecReview, E::Approve(ifull), S::ImplementationQueued),
            (S::SpecReview, E::RequestChanges(free), S::Planning),
            (S::SpecReview, E::RequestChanges(ifull), S::Planning),
            (S::SpecReview, E::RequestChanges(pfull), S::PlanningQueued),
            (S::SpecReview, E::Reject, S::Rejected),
            (
                S::Implementing,
                E::ImplementationFinished { review_gate: true },
                S::ImplementationReview,
            ),
            (
                S::Implementing,
                E::ImplementationFinished { review_gate: false },
                S::Done,
            ),
            (S::ImplementationReview, E::Approve(free), S::Done),
            (S::ImplementationReview, E::Approve(ifull), S::Done),
            (
                S::ImplementationReview,
                E::RequestChanges(free),
                S::Implementing,
            ),
            (
                S::ImplementationReview,
                E::RequestChanges(pfull),
                S::Implementing,
            ),
            (
                S::ImplementationReview,
                E::RequestChanges(ifull),
                S::ImplementationQueued,
            ),
            (S::Planning, fail(), failed(Phase::Planning)),
            (S::Implementing, fail(), failed(Phase::Implementation)),
            (failed(Phase::Planning), E::Retry(free), S::Planning),
            (failed(Phase::Planning), E::Retry(ifull), S::Planning),
            (failed(Phase::Planning), E::Retry(pfull), S::PlanningQueued),
            (
                failed(Phase::Implementation),
                E::Retry(free),
                S::Implementing,
            ),
            (
                failed(Phase::Implementation),
                E::Retry(pfull),
                S::Implementing,
            ),
            (
                failed(Phase::Implementation),
                E::Retry(ifull),
                S::ImplementationQueued,
            ),
        ];
        for state in &states {
            if !state.is_terminal() {
                legal.push((state.clone(), E::Cancel, S::Cancelled));
            }
        }
        check_table(&states, &events, &legal);
    }

    #[test]
    fn refusals_explain_themselves() {
        let err = SpecTaskState::Backlog
            .apply(SpecTaskEvent::Approve(Capacity::FREE))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot approve a spec task that is backlog"
        );
        let err = SpecTaskState::PlanningQueued
            .apply(SpecTaskEvent::Admit(Capacity {
                planning_full: true,
                implementation_full: false,
            }))
            .unwrap_err();
        assert!(err.to_string().contains("WIP limit"), "{err}");
    }

    #[test]
    fn failed_state_round_trips_through_its_stored_parts() {
        let state = failed(Phase::Implementation);
        let SpecTaskState::Failed { phase, reason } = state.clone() else {
            unreachable!()
        };
        assert_eq!(
            SpecTaskState::from_parts(state.status(), Some(phase), Some(reason)),
            state
        );
        for status in SpecTaskStatus::ALL {
            assert_eq!(status.as_str().parse::<SpecTaskStatus>().unwrap(), *status);
        }
    }

    #[test]
    fn capacity_respects_limits() {
        let c = Capacity::from_usage(2, 0, Some(2), None);
        assert!(c.planning_full);
        assert!(!c.implementation_full);
        assert_eq!(Capacity::from_usage(5, 5, None, None), Capacity::FREE);
    }

    #[test]
    fn slugs_are_safe_for_branches_and_paths() {
        assert_eq!(
            slugify("Add login: OAuth/GitHub!"),
            "add-login-oauth-github"
        );
        assert_eq!(slugify("../../etc/passwd"), "etc-passwd");
        assert_eq!(slugify("日本語"), "task");
        assert!(slugify(&"x".repeat(200)).len() <= 40);
        assert_eq!(title_from_prompt("\n  Fix the bug\nmore"), "Fix the bug");
    }
}
