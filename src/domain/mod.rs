//! The domain: spectask's types, their lifecycles and the rules between them.
//!
//! Nothing here knows about sqlx, axum or processes; every function is pure so the
//! rules can be tested exhaustively and reused by the store, the API and the CLI.

pub mod agent;
pub mod coordination;
pub mod event;
pub mod ids;
pub mod implementation_task;
pub mod lifecycle;
pub mod notification;
pub mod project;
pub mod requirements;
pub mod review;
pub mod spec_report;
pub mod spec_task;
pub mod tasks_md;
pub mod transcript;
pub mod work_session;

pub use agent::*;
pub use coordination::*;
pub use event::*;
pub use ids::*;
pub use implementation_task::*;
pub use lifecycle::{Lifecycle, TransitionError};
pub use notification::*;
pub use project::*;
pub use review::*;
pub use spec_task::*;
pub use work_session::*;

/// A stored or submitted string that is not one of the values its field allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}; expected one of: {}", expected.join(", "))]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
    pub expected: &'static [&'static str],
}
