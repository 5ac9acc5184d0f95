//! The notification center: what needs a person across every open spec task, as one
//! list (`GET /notifications`, `spectask inbox`, the dashboard's bell, webhooks).
//! Computed, never stored: an entry is there while what it is about waits, and gone
//! once a person (or the run) handled it. Each entry has a stable `key`, so a webhook
//! delivers a notification once however often the list is computed.

use std::collections::HashMap;

use super::attention::{self, AttentionKind};
use crate::domain::*;
use crate::store::{Store, StoreError};

/// Every notification of every open spec task, oldest first.
pub async fn notifications(store: &dyn Store) -> Result<Vec<Notification>, StoreError> {
    let tasks = store.list_open_spec_tasks().await?;
    let mut permissions: HashMap<SpecTaskId, Vec<PermissionRequest>> = HashMap::new();
    for p in store
        .list_permission_requests(Some(PermissionStatus::Pending), None)
        .await?
    {
        permissions.entry(p.spec_task_id).or_default().push(p);
    }
    let mut out = Vec::new();
    for task in &tasks {
        let plan = store.list_implementation_tasks(task.id).await?;
        let sessions = store.list_work_sessions(task.id).await?;
        let coordination = store.list_coordination_events(task.id).await?;
        let asked = permissions.remove(&task.id).unwrap_or_default();
        let needs = attention::needs(task, &plan, &sessions, &asked, &coordination);
        out.extend(for_task(task, &sessions, &asked, &coordination, needs));
    }
    out.sort_by(|a, b| a.since.cmp(&b.since).then(a.key.cmp(&b.key)));
    Ok(out)
}

/// The notifications of one spec task, from what [`attention::needs`] found plus the
/// requests its sessions addressed to a person.
pub fn for_task(
    task: &SpecTask,
    sessions: &[WorkSession],
    permissions: &[PermissionRequest],
    coordination: &[CoordinationEvent],
    needs: attention::Needs,
) -> Vec<Notification> {
    let session =
        |id: Option<WorkSessionId>| id.and_then(|id| sessions.iter().find(|s| s.id == id));
    let base =
        |kind, key: String, title: String, message: String, link: String, since| Notification {
            key,
            kind,
            project_id: task.project_id,
            spec_task_id: task.id,
            spec_task_title: task.title.clone(),
            session_id: None,
            permission_id: None,
            coordination_id: None,
            task_key: None,
            title,
            message,
            link,
            since,
        };
    let stamp = task.updated_at.timestamp_millis();
    let mut out = Vec::new();
    for need in needs.needs_person {
        let s = session(need.session_id);
        let session_link = need
            .session_id
            .map(|id| format!("/sessions/{id}"))
            .unwrap_or_else(|| format!("/tasks/{}/implementation", task.id));
        let what = |s: Option<&WorkSession>| {
            s.map(|s| match &need.task_key {
                Some(k) => format!("session {} ({}, task {k})", s.id, s.name),
                None => format!("session {} ({})", s.id, s.name),
            })
            .unwrap_or_default()
        };
        let mut n = match need.kind {
            AttentionKind::TaskFailed => base(
                NotificationKind::TaskFailed,
                format!("task_failed:task:{}:{stamp}", task.id),
                format!("Task failed: {}", task.title),
                need.message.clone(),
                format!("/tasks/{}", task.id),
                task.updated_at,
            ),
            AttentionKind::Review if task.status == SpecTaskStatus::SpecReview => base(
                NotificationKind::SpecReview,
                format!("spec_review:task:{}:{stamp}", task.id),
                format!("Spec ready for review: {}", task.title),
                "the planning agent wrote the spec; approve it, request changes or reject it"
                    .into(),
                format!("/tasks/{}/spec", task.id),
                task.updated_at,
            ),
            AttentionKind::Review => base(
                NotificationKind::ImplementationReview,
                format!("implementation_review:task:{}:{stamp}", task.id),
                format!("Implementation ready for review: {}", task.title),
                "every task of the plan is merged; review the work and accept or reopen it".into(),
                format!("/tasks/{}/implementation", task.id),
                task.updated_at,
            ),
            AttentionKind::SessionFailed | AttentionKind::Conflict | AttentionKind::Blocked => {
                let (kind, title) = match need.kind {
                    AttentionKind::SessionFailed => {
                        (NotificationKind::SessionFailed, "Session failed")
                    }
                    AttentionKind::Conflict => (NotificationKind::Conflict, "Merge conflict"),
                    _ => (NotificationKind::Blocked, "Session blocked"),
                };
                let attempt = s.map(|s| s.attempt).unwrap_or_default();
                base(
                    kind,
                    format!(
                        "{kind}:session:{}:{attempt}",
                        need.session_id.map_or(0, i64::from)
                    ),
                    format!("{title}: {} in {}", what(s), task.title),
                    need.message.clone(),
                    session_link,
                    s.map(|s| s.updated_at).unwrap_or(task.updated_at),
                )
            }
            // The person who stopped it knows; the agent panel and the task say so.
            AttentionKind::AgentStopped => continue,
            AttentionKind::Permission => {
                let p = permissions
                    .iter()
                    .find(|p| Some(p.id) == need.permission_id);
                base(
                    NotificationKind::Permission,
                    format!("permission:{}", need.permission_id.map_or(0, i64::from)),
                    format!(
                        "Permission asked: {}",
                        p.map(|p| p.title.as_str()).unwrap_or("")
                    ),
                    need.message.clone(),
                    session_link,
                    p.map(|p| p.created_at).unwrap_or(task.updated_at),
                )
            }
        };
        n.session_id = need.session_id;
        n.permission_id = need.permission_id;
        n.task_key = need.task_key;
        out.push(n);
    }
    // A session's request to nobody in particular is a question for a person; it is
    // answered by acknowledging it (with a `response`, or on its own).
    for e in coordination.iter().filter(|e| {
        e.kind == CoordinationKind::Request
            && e.to_session_id.is_none()
            && e.for_task().is_none()
            && e.from_session_id.is_some()
            && e.acknowledged_at.is_none()
    }) {
        let from = e.from_session_id.unwrap_or(WorkSessionId(0));
        let mut n = base(
            NotificationKind::Request,
            format!("request:coordination:{}", e.id),
            format!("Request from session {from}: {}", first_line(&e.message)),
            e.message.clone(),
            format!("/sessions/{from}"),
            e.created_at,
        );
        n.session_id = Some(from);
        n.coordination_id = Some(e.id);
        out.push(n);
    }
    out
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > 120 {
        format!("{}…", line.chars().take(119).collect::<String>())
    } else {
        line.to_string()
    }
}
