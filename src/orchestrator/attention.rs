//! What needs a person in a spec task, and whether anything is still moving on its
//! own. Pure: computed from the task, its plan, its sessions and its pending
//! permission requests; shown in the overview and by `spectask task show`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::*;

/// Why a person is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttentionKind {
    /// The spec task failed (a phase failed, or a step kept failing): `retry` it.
    TaskFailed,
    /// A spec or finished work waits for a review.
    Review,
    /// A session failed; its task waits: retry, skip or cancel it.
    SessionFailed,
    /// A merge conflict no fixer is working on: retry (a fixer), skip or cancel.
    Conflict,
    /// A session is held by a `blocking` message until `unblocked`.
    Blocked,
    /// An agent waits for an answer to a permission request.
    Permission,
    /// A person stopped the task's agent: nothing moves until it is restarted.
    AgentStopped,
}

/// One thing a person is asked to act on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Attention {
    pub kind: AttentionKind,
    #[schema(value_type = Option<i64>)]
    pub session_id: Option<WorkSessionId>,
    pub task_key: Option<String>,
    #[schema(value_type = Option<i64>)]
    pub permission_id: Option<PermissionRequestId>,
    pub message: String,
}

/// What needs a person, and whether nothing is moving without one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Needs {
    pub needs_person: Vec<Attention>,
    /// True when no session of the task is working and no plan task can start: the
    /// run goes on only when a person acts (or it has ended).
    pub idle: bool,
}

/// A person's stop holds the task's agent: nothing moves until a restart, and the
/// person is told so.
pub fn held(needs: &mut Needs) {
    needs.needs_person.push(Attention {
        kind: AttentionKind::AgentStopped,
        session_id: None,
        task_key: None,
        permission_id: None,
        message: "the agent was stopped by a person; restart it to go on".into(),
    });
    needs.idle = true;
}

pub fn needs(
    task: &SpecTask,
    plan: &[ImplementationTask],
    sessions: &[WorkSession],
    permissions: &[PermissionRequest],
    coordination: &[CoordinationEvent],
) -> Needs {
    // Sessions whose latest blocking/unblocked message is `blocking`.
    let held = |id: WorkSessionId| {
        coordination
            .iter()
            .rfind(|e| {
                e.to_session_id == Some(id)
                    && matches!(
                        e.kind,
                        CoordinationKind::Blocking | CoordinationKind::Unblocked
                    )
            })
            .is_some_and(|e| e.kind == CoordinationKind::Blocking)
    };
    let mut out = Vec::new();
    match task.status {
        SpecTaskStatus::Failed => out.push(Attention {
            kind: AttentionKind::TaskFailed,
            session_id: None,
            task_key: None,
            permission_id: None,
            message: format!(
                "the task failed in {}: {}; retry it or cancel it",
                task.failed_phase.map(|p| p.to_string()).unwrap_or_default(),
                task.failure_reason.as_deref().unwrap_or("")
            ),
        }),
        SpecTaskStatus::SpecReview | SpecTaskStatus::ImplementationReview => out.push(Attention {
            kind: AttentionKind::Review,
            session_id: None,
            task_key: None,
            permission_id: None,
            message: format!("the task waits in {} for a review", task.status),
        }),
        _ => {}
    }
    let key_of = |s: &WorkSession| {
        s.implementation_task_id
            .and_then(|id| plan.iter().find(|t| t.id == id))
            .map(|t| t.key.clone())
    };
    let fixing = |id: WorkSessionId| {
        sessions.iter().any(|f| {
            f.parent_id == Some(id)
                && f.kind == WorkSessionKind::MergeConflict
                && !f.status.is_terminal()
                && f.status != WorkSessionStatus::Failed
        })
    };
    for s in sessions {
        let task_failed = s
            .implementation_task_id
            .and_then(|id| plan.iter().find(|t| t.id == id))
            .is_some_and(|t| t.status == ImplementationTaskStatus::Failed);
        let newest_of_task = !sessions.iter().any(|o| {
            o.id > s.id
                && o.implementation_task_id == s.implementation_task_id
                && o.kind != WorkSessionKind::MergeConflict
        });
        let (kind, what) = match s.status {
            WorkSessionStatus::Failed
                if s.kind != WorkSessionKind::MergeConflict && task_failed && newest_of_task =>
            {
                (
                    AttentionKind::SessionFailed,
                    format!(
                        "failed: {}; retry, skip or cancel it",
                        s.failure_reason.as_deref().unwrap_or("no reason given")
                    ),
                )
            }
            WorkSessionStatus::Conflicted if !fixing(s.id) => (
                AttentionKind::Conflict,
                "has a merge conflict; retry it (a conflict-fixing session), skip or cancel it"
                    .to_string(),
            ),
            WorkSessionStatus::Blocked => (
                AttentionKind::Blocked,
                "is held by a blocking message until it is unblocked".to_string(),
            ),
            WorkSessionStatus::Pending if held(s.id) => (
                AttentionKind::Blocked,
                "waits to start: a blocking message holds it until it is unblocked".to_string(),
            ),
            _ => continue,
        };
        out.push(Attention {
            kind,
            session_id: Some(s.id),
            task_key: key_of(s),
            permission_id: None,
            message: format!("session {} ({}) {what}", s.id, s.name),
        });
    }
    for p in permissions
        .iter()
        .filter(|p| p.status == PermissionStatus::Pending)
    {
        out.push(Attention {
            kind: AttentionKind::Permission,
            session_id: Some(p.work_session_id),
            task_key: None,
            permission_id: Some(p.id),
            message: format!(
                "session {} asks permission: {} (spectask permissions answer {})",
                p.work_session_id, p.title, p.id
            ),
        });
    }
    let working = sessions.iter().any(|s| {
        matches!(
            s.status,
            WorkSessionStatus::Running
                | WorkSessionStatus::Verifying
                | WorkSessionStatus::Merging
                | WorkSessionStatus::Interrupted
        )
    });
    let finished = |key: &str| {
        plan.iter().any(|t| {
            t.key == key
                && matches!(
                    t.status,
                    ImplementationTaskStatus::Done | ImplementationTaskStatus::Skipped
                )
        })
    };
    let implementing = task.status == SpecTaskStatus::Implementing;
    let can_start = implementing
        && plan.iter().any(|t| {
            t.status == ImplementationTaskStatus::Pending
                && t.depends_on.iter().all(|d| finished(d))
                && !sessions.iter().any(|s| {
                    s.implementation_task_id == Some(t.id)
                        && s.status == WorkSessionStatus::Pending
                        && held(s.id)
                })
        });
    // A plan all finished or cancelled is about to end the task.
    let ending = implementing
        && !plan.is_empty()
        && plan.iter().all(|t| {
            matches!(
                t.status,
                ImplementationTaskStatus::Done
                    | ImplementationTaskStatus::Skipped
                    | ImplementationTaskStatus::Cancelled
            )
        });
    let moving = matches!(
        task.status,
        SpecTaskStatus::Planning
            | SpecTaskStatus::PlanningQueued
            | SpecTaskStatus::ImplementationQueued
    ) || (implementing && plan.is_empty());
    Needs {
        needs_person: out,
        idle: !(working || can_start || ending || moving),
    }
}
