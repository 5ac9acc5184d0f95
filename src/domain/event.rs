//! The append-only record of every change. Each state change writes one Event in the
//! same transaction, so the events are a complete, ordered history (the outbox that
//! live updates, audit and replay read from).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ids::{ProjectId, SpecTaskId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// Strictly increasing per database, in commit order: a reader that has seen id N
    /// will never later find a new event with an id at or below N.
    pub id: i64,
    #[schema(value_type = Option<i64>)]
    pub project_id: Option<ProjectId>,
    #[schema(value_type = Option<i64>)]
    pub spec_task_id: Option<SpecTaskId>,
    /// What changed: `project`, `spec_task`, `work_session`, `coordination_event`,
    /// `shared_state`, `token`.
    pub entity: String,
    pub entity_id: Option<i64>,
    /// What happened, e.g. `spec_task.created`, `spec_task.status_changed`.
    pub kind: String,
    pub data: serde_json::Value,
    /// Who did it: `token:<id>` for a person through the API, `system` for spectask.
    pub actor: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// An event about to be written, inside the transaction of the change it records.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub project_id: Option<ProjectId>,
    pub spec_task_id: Option<SpecTaskId>,
    pub entity: &'static str,
    pub entity_id: Option<i64>,
    pub kind: &'static str,
    pub data: serde_json::Value,
}
