//! Spec versions and the reviews people give them. Planning (a later issue) fills
//! these; the types are here so the store and API shapes are settled from the start.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ids::*;
use super::lifecycle::status_enum;

/// One planning round's output, committed on the task branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SpecVersion {
    pub id: i64,
    #[schema(value_type = i64)]
    pub spec_task_id: SpecTaskId,
    /// 1, 2, 3, … per SpecTask.
    pub number: i64,
    pub commit_sha: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

status_enum!(
    Verdict {
        Approved => "approved",
        ChangesRequested => "changes_requested",
        Rejected => "rejected",
    }
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Review {
    pub id: i64,
    pub spec_version_id: i64,
    pub reviewer: String,
    pub verdict: Verdict,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A comment anchored to one document of a spec version, by line range or quote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReviewComment {
    pub id: i64,
    pub spec_version_id: i64,
    pub author: String,
    /// `requirements.md`, `design.md` or `tasks.md`.
    pub document: String,
    pub line_start: Option<i64>,
    pub line_end: Option<i64>,
    pub quote: Option<String>,
    pub body: String,
    pub resolved: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
}
