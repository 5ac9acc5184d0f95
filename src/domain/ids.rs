//! Typed ids: one newtype per table whose rows are passed around by id, so the
//! compiler refuses a work session's id where an agent instance's is meant.
//!
//! Each is an `i64` underneath and on the wire (`#[serde(transparent)]`: JSON keeps
//! plain integers), and in the database (the store implements sqlx's traits for
//! them, in `store/ids.rs`, so the domain stays free of sqlx).
//!
//! They deliberately do not implement utoipa's `ToSchema`: a derived schema would
//! reference them as components of their own, changing the OpenAPI document. A
//! field of an API type says `#[schema(value_type = i64)]` (or `Option<i64>`,
//! `Vec<i64>`) instead, and forgetting it is a compile error rather than a change
//! of the document.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Defines each id type: a transparent `i64` newtype with `Display`, `FromStr` and
/// the conversion back to `i64`.
macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = std::num::ParseIntError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }
    )*};
}

ids! {
    /// A registered project (`projects.id`).
    ProjectId;
    /// A spec task (`spec_tasks.id`).
    SpecTaskId;
    /// A work session (`work_sessions.id`).
    WorkSessionId;
    /// A spec task's agent process (`agent_instances.id`).
    AgentInstanceId;
    /// A work session's thread on its agent (`agent_threads.id`).
    AgentThreadId;
    /// A task of an approved plan (`implementation_tasks.id`).
    ImplementationTaskId;
    /// A permission request an agent made (`permission_requests.id`).
    PermissionRequestId;
    /// A coordination event between sessions (`coordination_events.id`).
    CoordinationEventId;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_its_integer_on_the_wire_and_in_text() {
        let id = WorkSessionId(42);
        assert_eq!(serde_json::to_string(&id).unwrap(), "42");
        assert_eq!(serde_json::from_str::<WorkSessionId>("42").unwrap(), id);
        assert_eq!(
            serde_json::to_string(&Some(SpecTaskId(7))).unwrap(),
            "7",
            "an Option of an id is a nullable integer"
        );
        assert_eq!(id.to_string(), "42");
        assert_eq!("42".parse::<WorkSessionId>().unwrap(), id);
        assert_eq!(i64::from(id), 42);
    }
}
