//! Coordination between sessions: delivering messages into turns and holding a
//! session while a `blocking` event stands.

use super::*;
use crate::agents::runtime::AgentRuntime;

impl Implementer {
    /// Coordination messages waiting for a session, as text for its prompt: those
    /// addressed to it (acknowledged now, by it) and the task's broadcasts.
    pub(super) async fn deliver(
        &self,
        spec_task_id: SpecTaskId,
        session_id: WorkSessionId,
    ) -> Result<String, ImplError> {
        let mut text = String::new();
        let session = self.store.get_work_session(session_id).await?;
        let key = match session.implementation_task_id {
            Some(tid) => self
                .store
                .list_implementation_tasks(spec_task_id)
                .await?
                .into_iter()
                .find(|t| t.id == tid)
                .map(|t| t.key),
            None => None,
        };
        for e in self.store.list_coordination_events(spec_task_id).await? {
            // Addressed to it, or to its plan task before it had a session.
            let addressed = e.is_addressed_to(session_id, key.as_deref());
            // A message to a person (an agent's `ask_person` or `send_message` to
            // "person") or to one task is not for everyone's turn.
            let broadcast = e.is_broadcast_for(session_id);
            // Holding and releasing are acted on, not read; a completion summary goes
            // to the sessions that depend on its sender (see `handoffs`), not to all.
            let waiting = e.acknowledged_at.is_none()
                && !matches!(
                    e.kind,
                    CoordinationKind::Blocking | CoordinationKind::Unblocked
                )
                && !(broadcast && e.kind == CoordinationKind::Completion);
            if !(waiting && (addressed || broadcast)) {
                continue;
            }
            let from = e
                .from_session_id
                .map_or("a person".to_string(), |s| format!("session {s}"));
            text.push_str(&format!("\n[{} from {from}] {}", e.kind, e.message));
            if addressed {
                self.store
                    .acknowledge_coordination_event(spec_task_id, e.id, Some(session_id), "system")
                    .await?;
            }
        }
        if text.is_empty() {
            return Ok(text);
        }
        Ok(format!(
            "\n\nMessages for you from the other sessions and people:{text}\n"
        ))
    }

    /// Whether the latest `blocking` / `unblocked` event addressed to a session is a
    /// `blocking` one.
    pub(super) async fn is_blocked(
        &self,
        spec_task_id: SpecTaskId,
        session_id: WorkSessionId,
    ) -> Result<bool, ImplError> {
        let latest = self
            .store
            .list_coordination_events(spec_task_id)
            .await?
            .into_iter()
            .rfind(|e| {
                e.to_session_id == Some(session_id)
                    && matches!(
                        e.kind,
                        CoordinationKind::Blocking | CoordinationKind::Unblocked
                    )
            });
        Ok(latest.is_some_and(|e| e.kind == CoordinationKind::Blocking))
    }

    /// A `blocking` event holds its receiver (status `blocked`, nothing merged)
    /// until an `unblocked` event for it arrives. A message for it that arrives
    /// meanwhile starts a turn, since the session is idle.
    pub(super) async fn hold_while_blocked(
        &self,
        session_id: WorkSessionId,
        runtime: &Arc<AgentRuntime>,
    ) -> Result<(), ImplError> {
        let session = self.store.get_work_session(session_id).await?;
        let mut events = self.store.subscribe_events();
        if !self.is_blocked(session.spec_task_id, session_id).await? {
            return Ok(());
        }
        self.store
            .transition_work_session(session_id, WorkSessionEvent::Block, None, "system")
            .await?;
        while self.is_blocked(session.spec_task_id, session_id).await? {
            let waiting = self.deliver(session.spec_task_id, session_id).await?;
            if !waiting.is_empty() {
                let text = format!(
                    "You are on hold until another session unblocks you; meanwhile these messages arrived.{waiting}\n\
                     Answer or act on them if you can without leaving your task's scope."
                );
                if let Err(e) = runtime.prompt(session_id, &text).await {
                    tracing::warn!(session = session_id.0, error = %e, "a turn while blocked");
                }
                continue;
            }
            if events.changed().await.is_err() {
                return Err(ImplError::Other(
                    "the store closed while a session was blocked".into(),
                ));
            }
            // A cancelled task releases its blocked sessions into cancellation.
            if self.store.get_work_session(session_id).await?.status != WorkSessionStatus::Blocked {
                return Err(ImplError::Other(format!(
                    "session {session_id} left `blocked` while held"
                )));
            }
        }
        self.store
            .transition_work_session(session_id, WorkSessionEvent::Unblock, None, "system")
            .await?;
        Ok(())
    }
}
