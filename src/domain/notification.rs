//! Notifications: what a person is asked to act on, as the notification center,
//! `spectask inbox` and webhooks show it. Computed by `orchestrator::inbox`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ids::*;
use super::lifecycle::status_enum;

status_enum!(
    /// What a notification asks of a person.
    NotificationKind {
        SpecReview => "spec_review",
        ImplementationReview => "implementation_review",
        Permission => "permission",
        Conflict => "conflict",
        TaskFailed => "task_failed",
        SessionFailed => "session_failed",
        Blocked => "blocked",
        Request => "request",
    }
);

/// One thing that waits for a person, with where it is handled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    /// Stable while the same thing waits (e.g. `conflict:session:42:1`); a new key
    /// when it happens again (a new attempt, a new failure).
    pub key: String,
    pub kind: NotificationKind,
    #[schema(value_type = i64)]
    pub project_id: ProjectId,
    #[schema(value_type = i64)]
    pub spec_task_id: SpecTaskId,
    pub spec_task_title: String,
    #[schema(value_type = Option<i64>)]
    pub session_id: Option<WorkSessionId>,
    #[schema(value_type = Option<i64>)]
    pub permission_id: Option<PermissionRequestId>,
    #[schema(value_type = Option<i64>)]
    pub coordination_id: Option<CoordinationEventId>,
    pub task_key: Option<String>,
    /// One line for a list or a chat message.
    pub title: String,
    /// What happened and what a person can do.
    pub message: String,
    /// The dashboard path where it is handled, e.g. `/sessions/42`.
    pub link: String,
    pub since: DateTime<Utc>,
}

impl NotificationKind {
    /// The notification kinds a webhook may list, as a comma-separated text.
    pub fn names() -> String {
        Self::ALL
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

status_enum!(
    /// The body a webhook receives: spectask's own JSON, or what Slack's or Discord's
    /// incoming webhooks accept.
    WebhookFormat {
        Generic => "generic",
        Slack => "slack",
        Discord => "discord",
    }
);

status_enum!(
    /// Where one delivery of one notification to one webhook stands.
    DeliveryStatus {
        /// Not sent yet, or sent and failed with attempts left (see `next_attempt_at`).
        Pending => "pending",
        /// The receiver answered 2xx.
        Delivered => "delivered",
        /// Every attempt failed; nothing more is tried.
        Failed => "failed",
    }
);

impl DeliveryStatus {
    /// The status after an attempt: delivered on success; pending while attempts are
    /// left; failed after the last one.
    pub fn after_attempt(ok: bool, attempts: i64, max_attempts: i64) -> DeliveryStatus {
        if ok {
            DeliveryStatus::Delivered
        } else if attempts >= max_attempts {
            DeliveryStatus::Failed
        } else {
            DeliveryStatus::Pending
        }
    }
}

/// A URL spectask POSTs notifications to. Its HMAC secret is never part of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Webhook {
    pub id: i64,
    /// Only this project's notifications; `null`: every project's.
    #[schema(value_type = Option<i64>)]
    pub project_id: Option<ProjectId>,
    pub url: String,
    /// The kinds it wants; empty: every kind.
    pub kinds: Vec<NotificationKind>,
    pub format: WebhookFormat,
    pub created_at: DateTime<Utc>,
}

impl Webhook {
    pub fn wants(&self, n: &Notification) -> bool {
        self.project_id.is_none_or(|p| p == n.project_id)
            && (self.kinds.is_empty() || self.kinds.contains(&n.kind))
    }
}

/// One notification sent (or to be sent) to one webhook: at most one per pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookDelivery {
    pub id: i64,
    pub webhook_id: i64,
    pub notification_key: String,
    pub kind: NotificationKind,
    #[schema(value_type = i64)]
    pub spec_task_id: SpecTaskId,
    pub status: DeliveryStatus,
    pub attempts: i64,
    /// The HTTP status of the last answer, if there was one.
    pub last_status: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// The backoff before attempt `attempts + 1`: `base` doubled per failed attempt,
/// at most five minutes.
pub fn delivery_backoff(base: std::time::Duration, attempts: i64) -> std::time::Duration {
    let factor = 1u32 << attempts.clamp(0, 16) as u32;
    base.saturating_mul(factor)
        .min(std::time::Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_is_pending_until_it_succeeds_or_runs_out_of_attempts() {
        assert_eq!(
            DeliveryStatus::after_attempt(true, 1, 3),
            DeliveryStatus::Delivered
        );
        assert_eq!(
            DeliveryStatus::after_attempt(false, 2, 3),
            DeliveryStatus::Pending
        );
        assert_eq!(
            DeliveryStatus::after_attempt(false, 3, 3),
            DeliveryStatus::Failed
        );
        assert_eq!(
            DeliveryStatus::after_attempt(true, 3, 3),
            DeliveryStatus::Delivered
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = std::time::Duration::from_millis(100);
        assert_eq!(delivery_backoff(base, 1).as_millis(), 200);
        assert_eq!(delivery_backoff(base, 3).as_millis(), 800);
        assert_eq!(delivery_backoff(base, 60).as_secs(), 300);
    }
}
