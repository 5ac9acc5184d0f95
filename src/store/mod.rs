//! Storage: one trait, [`Store`], with one SQL implementation that runs on SQLite (the
//! embedded default) and on PostgreSQL. The backend-specific parts (connecting,
//! pragmas, migrations, event ordering) live in `sqlite.rs` and `postgres.rs`.
//!
//! Invariants every method keeps:
//! - a state change and its [`Event`] row are written in one transaction: every write
//!   is a `write_tx::WriteTx`, which commits only with its events or with a named
//!   `Unrecorded` reason for having none;
//! - a status change is a compare-and-set on the stored status, decided by the
//!   domain's transition function, so concurrent changes give exactly one winner;
//! - every write transaction starts with a write, so SQLite takes its write lock at
//!   once (waiting on `busy_timeout`) instead of failing on a stale read snapshot.

mod agents;
mod browser;
pub mod cluster;
mod ids;
mod implementation;
mod ops;
mod postgres;
mod reviews;
mod rows;
mod session_tokens;
mod sql;
mod sqlite;
mod transition;
pub mod webhooks;
mod write_tx;

use async_trait::async_trait;

use crate::auth::ApiToken;
use crate::domain::*;

pub use sql::SqlStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{entity} {id} not found")]
    NotFound { entity: &'static str, id: String },
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The state changed under the caller (a lost compare-and-set).
    #[error("{0}")]
    Conflict(String),
    /// The request breaks a rule on its own (e.g. an empty name): 422.
    #[error("{0}")]
    Invalid(String),
    /// The request names something that does not exist where it says (e.g. a
    /// session of another task): 404.
    #[error("{0}")]
    Missing(String),
    #[error(transparent)]
    InvalidSetting(#[from] InvalidSetting),
    /// A stored value the code does not understand: a bug or a newer schema.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// This replica wrote for a spec task whose lease another replica has taken.
    #[error(
        "spec task {0} is run by another replica now: this replica's lease on it was taken over"
    )]
    Fenced(SpecTaskId),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A transition the caller expects may be refused (the entity moved on meanwhile:
/// cancelled, already ended, or changed under it between the read and the
/// compare-and-set). `try_transition` ignores that refusal and only that: a
/// database error still comes back, where `let _ =` dropped both.
pub trait TryTransition<T> {
    /// `Ok(None)` when the lifecycle refused the transition.
    fn try_transition(self) -> Result<Option<T>>;
}

impl<T> TryTransition<T> for Result<T> {
    fn try_transition(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(StoreError::Transition(_) | StoreError::Conflict(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

pub fn not_found(entity: &'static str, id: impl ToString) -> StoreError {
    StoreError::NotFound {
        entity,
        id: id.to_string(),
    }
}

#[derive(Debug, Clone)]
pub struct NewProject {
    pub name: String,
    pub path: String,
    pub settings: ProjectSettings,
}

#[derive(Debug, Clone)]
pub struct NewSpecTask {
    pub project_id: ProjectId,
    pub title: String,
    pub description: String,
    pub prompt: String,
    pub priority: Priority,
    pub task_type: TaskType,
    pub max_parallel_sessions: Option<i64>,
    pub agent_profile: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpecTaskPatch {
    /// Not blank; at most 200 characters.
    #[schema(max_length = 200)]
    pub title: Option<String>,
    pub description: Option<String>,
    pub priority: Option<Priority>,
}

#[derive(Debug, Clone, Default)]
pub struct SpecTaskFilter {
    pub project_id: Option<ProjectId>,
    pub status: Option<SpecTaskStatus>,
    /// Only tasks with an id below this (the previous page's `next_cursor`).
    pub before_id: Option<i64>,
    pub limit: i64,
}

#[derive(Debug, Clone)]
pub struct NewWorkSession {
    pub spec_task_id: SpecTaskId,
    pub parent_id: Option<WorkSessionId>,
    pub implementation_task_id: Option<ImplementationTaskId>,
    pub kind: WorkSessionKind,
    pub name: String,
    pub prompt: String,
}

#[derive(Debug, Clone)]
pub struct NewCoordinationEvent {
    pub spec_task_id: SpecTaskId,
    pub kind: CoordinationKind,
    pub from_session_id: Option<WorkSessionId>,
    pub to_session_id: Option<WorkSessionId>,
    pub message: String,
    pub payload: serde_json::Value,
}

/// Who made a change, as recorded in its event.
pub type Actor<'a> = &'a str;

/// Builds the event for a transition closure from the capacity the store computed
/// inside its transaction (see [`Store::transition_spec_task`]).
pub type MakeEvent<'a> = &'a (dyn Fn(Capacity) -> SpecTaskEvent + Send + Sync);

pub use agents::{
    AgentStore, InstanceReport, KEPT_SAMPLES, NewPermissionRequest, NewTranscriptEntry,
};
pub use browser::{BrowserSession, BrowserStore};
pub use cluster::{ClusterStore, Fences};
pub use implementation::{ImplementationStore, NewImplementationTask, StartSession};
pub use ops::{AgentUsage, OpsSnapshot, OpsStore};
pub use reviews::{NewReviewComment, ReviewStore};
pub use session_tokens::{SessionGrant, SessionTokenStore};
pub use webhooks::{AttemptOutcome, ClaimedDelivery, NewWebhook, WebhookStore};

#[async_trait]
pub trait Store:
    AgentStore
    + ReviewStore
    + ImplementationStore
    + BrowserStore
    + WebhookStore
    + SessionTokenStore
    + OpsStore
    + ClusterStore
    + Send
    + Sync
    + 'static
{
    /// Closes the pool; in-flight queries finish first.
    async fn close(&self);

    /// Changes whenever this process commits events, to the newest id: wait on it
    /// instead of polling the log. (Other replicas' events arrive by reading it.)
    fn subscribe_events(&self) -> tokio::sync::watch::Receiver<i64>;
    /// The newest event's id (0 when there is none), by any process.
    async fn last_event_id(&self) -> Result<i64>;

    async fn create_token(
        &self,
        name: &str,
        token_hash: &str,
        actor: Actor<'_>,
    ) -> Result<ApiToken>;
    async fn list_tokens(&self) -> Result<Vec<ApiToken>>;
    async fn revoke_token(&self, id: i64, actor: Actor<'_>) -> Result<ApiToken>;
    /// The active (not revoked) token with this hash.
    async fn find_active_token(&self, token_hash: &str) -> Result<Option<ApiToken>>;

    async fn create_project(&self, new: NewProject, actor: Actor<'_>) -> Result<Project>;
    async fn list_projects(&self) -> Result<Vec<Project>>;
    async fn get_project(&self, id: ProjectId) -> Result<Project>;
    /// Applies the patch through [`ProjectSettings::patched`]; invalid settings change nothing.
    async fn update_project(
        &self,
        id: ProjectId,
        patch: &ProjectSettingsPatch,
        actor: Actor<'_>,
    ) -> Result<Project>;

    async fn create_spec_task(&self, new: NewSpecTask, actor: Actor<'_>) -> Result<SpecTask>;
    /// Newest first. Returns the page and the cursor of the next one.
    async fn list_spec_tasks(
        &self,
        filter: &SpecTaskFilter,
    ) -> Result<(Vec<SpecTask>, Option<i64>)>;
    async fn get_spec_task(&self, id: SpecTaskId) -> Result<SpecTask>;
    /// Every spec task a person may still be asked about: not done, cancelled or
    /// rejected; oldest first.
    async fn list_open_spec_tasks(&self) -> Result<Vec<SpecTask>>;
    async fn update_spec_task(
        &self,
        id: SpecTaskId,
        patch: &SpecTaskPatch,
        actor: Actor<'_>,
    ) -> Result<SpecTask>;
    /// Changes a SpecTask's status. Inside one transaction that serializes the
    /// project's transitions: computes the WIP capacity, builds the event with
    /// `make_event`, applies the domain transition, writes it as a compare-and-set,
    /// records the event, and admits the oldest queued task if a slot freed up.
    async fn transition_spec_task(
        &self,
        id: SpecTaskId,
        make_event: MakeEvent<'_>,
        actor: Actor<'_>,
    ) -> Result<SpecTask>;

    async fn create_work_session(
        &self,
        new: NewWorkSession,
        actor: Actor<'_>,
    ) -> Result<WorkSession>;
    async fn list_work_sessions(&self, spec_task_id: SpecTaskId) -> Result<Vec<WorkSession>>;
    async fn get_work_session(&self, id: WorkSessionId) -> Result<WorkSession>;
    async fn transition_work_session(
        &self,
        id: WorkSessionId,
        event: WorkSessionEvent,
        reason: Option<String>,
        actor: Actor<'_>,
    ) -> Result<WorkSession>;

    async fn post_coordination_event(
        &self,
        new: NewCoordinationEvent,
        actor: Actor<'_>,
    ) -> Result<CoordinationEvent>;
    async fn list_coordination_events(
        &self,
        spec_task_id: SpecTaskId,
    ) -> Result<Vec<CoordinationEvent>>;
    async fn acknowledge_coordination_event(
        &self,
        spec_task_id: SpecTaskId,
        id: CoordinationEventId,
        by_session: Option<WorkSessionId>,
        actor: Actor<'_>,
    ) -> Result<CoordinationEvent>;

    async fn list_shared_state(&self, spec_task_id: SpecTaskId) -> Result<Vec<SharedStateEntry>>;
    async fn get_shared_state(
        &self,
        spec_task_id: SpecTaskId,
        key: &str,
    ) -> Result<SharedStateEntry>;
    /// Writes `value` if the entry's version is `expected_version` (0: it must not exist).
    async fn put_shared_state(
        &self,
        spec_task_id: SpecTaskId,
        key: &str,
        value: &serde_json::Value,
        expected_version: i64,
        actor: Actor<'_>,
    ) -> Result<SharedStateEntry>;

    /// Events with an id above `after`, oldest first.
    async fn list_events(
        &self,
        after: i64,
        spec_task_id: Option<SpecTaskId>,
        limit: i64,
    ) -> Result<Vec<Event>>;
    /// A spec task's newest `limit` events, oldest first.
    async fn latest_events(&self, spec_task_id: SpecTaskId, limit: i64) -> Result<Vec<Event>>;
    /// The newest event of this kind about one entity, if any.
    async fn latest_event_of(
        &self,
        entity: &str,
        entity_id: i64,
        kind: &str,
    ) -> Result<Option<Event>>;
}

/// Opens the store a database URL names (`sqlite://…` or `postgres://…`), creating the
/// SQLite file if needed and applying pending migrations.
pub async fn connect(database_url: &str) -> anyhow::Result<SqlStore> {
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        postgres::connect(database_url).await
    } else if database_url.starts_with("sqlite:") {
        sqlite::connect(database_url).await
    } else {
        anyhow::bail!(
            "unsupported database URL {database_url:?}: use sqlite://PATH or postgres://…"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{StoreError, TryTransition};
    use crate::domain::lifecycle::TransitionError;

    #[test]
    fn try_transition_ignores_a_refusal_and_nothing_else() {
        let ok: super::Result<i32> = Ok(1);
        assert_eq!(ok.try_transition().unwrap(), Some(1));
        let refused: super::Result<i32> = Err(StoreError::Transition(TransitionError {
            lifecycle: "work session",
            from: "completed",
            event: "cancel",
            reason: None,
        }));
        assert_eq!(refused.try_transition().unwrap(), None);
        let broken: super::Result<i32> = Err(StoreError::Database(sqlx::Error::PoolClosed));
        assert!(matches!(
            broken.try_transition(),
            Err(StoreError::Database(sqlx::Error::PoolClosed))
        ));
        // A lost compare-and-set is a refusal found late.
        let lost: super::Result<i32> = Err(StoreError::Conflict("moved".into()));
        assert_eq!(lost.try_transition().unwrap(), None);
        let gone: super::Result<i32> = Err(StoreError::NotFound {
            entity: "work session",
            id: "7".into(),
        });
        assert!(gone.try_transition().is_err());
    }
}
