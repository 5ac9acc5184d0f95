//! Storage for webhooks and their deliveries. A delivery row exists at most once per
//! (webhook, notification key), so a notification is queued once however often the
//! list is computed; an attempt is claimed by one `UPDATE` that moves its due time
//! past the attempt's timeout, so two loops never send the same attempt at once, and
//! an attempt a crash cut short is made again when that time passes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::Row;

use super::rows::{self, now_ms};
use super::sql::{Bind, SqlStore};
use super::write_tx::Unrecorded;
use super::{Actor, Result, StoreError};
use crate::domain::*;

#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub project_id: Option<ProjectId>,
    pub url: String,
    pub kinds: Vec<NotificationKind>,
    pub format: WebhookFormat,
    pub secret: String,
}

/// An attempt this process claimed: what to send, where, signed with what.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub delivery: WebhookDelivery,
    pub url: String,
    pub secret: String,
    pub payload: String,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub status: DeliveryStatus,
    pub http_status: Option<i64>,
    pub error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    async fn create_webhook(&self, hook: NewWebhook, actor: Actor<'_>) -> Result<Webhook>;
    /// The webhooks not deleted, oldest first.
    async fn list_webhooks(&self) -> Result<Vec<Webhook>>;
    async fn get_webhook(&self, id: i64) -> Result<Webhook>;
    /// Deletes a webhook: nothing more is sent to it, and it and its deliveries are
    /// gone from the API (the rows stay, for the record).
    async fn delete_webhook(&self, id: i64, actor: Actor<'_>) -> Result<()>;
    /// Queues a notification for a webhook; `None` when it was queued before.
    async fn queue_delivery(
        &self,
        webhook_id: i64,
        notification: &Notification,
        payload: &str,
    ) -> Result<Option<WebhookDelivery>>;
    /// Claims up to `limit` pending attempts due now; each one's due time moves to
    /// `lease_until` and its attempt count goes up by one.
    async fn claim_due_deliveries(
        &self,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>>;
    /// Records how a claimed attempt ended, with its event.
    async fn record_attempt(&self, id: i64, outcome: AttemptOutcome) -> Result<WebhookDelivery>;
    /// A webhook's deliveries, newest first (not found once it is deleted).
    async fn list_deliveries(&self, webhook_id: i64, limit: i64) -> Result<Vec<WebhookDelivery>>;
    /// When the earliest pending attempt of a live webhook is due.
    async fn next_delivery_due(&self) -> Result<Option<DateTime<Utc>>>;
}

const WEBHOOK_COLUMNS: &str = "id, project_id, url, kinds, format, created_at";
const DELIVERY_COLUMNS: &str = "id, webhook_id, notification_key, kind, spec_task_id, status, attempts, \
     last_status, last_error, next_attempt_at, created_at, delivered_at";

fn webhook(row: &sqlx::any::AnyRow) -> Result<Webhook> {
    let kinds: String = row.try_get("kinds")?;
    let kinds: Vec<NotificationKind> =
        serde_json::from_str(&kinds).map_err(|e| StoreError::Corrupt(format!("kinds: {e}")))?;
    let format: String = row.try_get("format")?;
    Ok(Webhook {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        url: row.try_get("url")?,
        kinds,
        format: format
            .parse()
            .map_err(|e: UnknownValue| StoreError::Corrupt(e.to_string()))?,
        created_at: rows::time(row, "created_at")?,
    })
}

fn delivery(row: &sqlx::any::AnyRow) -> Result<WebhookDelivery> {
    let parse = |col: &str| -> Result<String> { Ok(row.try_get::<String, _>(col)?) };
    let opt_time = |col: &str| -> Result<Option<DateTime<Utc>>> {
        Ok(row.try_get::<Option<i64>, _>(col)?.map(rows::ts))
    };
    Ok(WebhookDelivery {
        id: row.try_get("id")?,
        webhook_id: row.try_get("webhook_id")?,
        notification_key: row.try_get("notification_key")?,
        kind: parse("kind")?
            .parse()
            .map_err(|e: UnknownValue| StoreError::Corrupt(e.to_string()))?,
        spec_task_id: row.try_get("spec_task_id")?,
        status: parse("status")?
            .parse()
            .map_err(|e: UnknownValue| StoreError::Corrupt(e.to_string()))?,
        attempts: row.try_get("attempts")?,
        last_status: row.try_get("last_status")?,
        last_error: row.try_get("last_error")?,
        next_attempt_at: opt_time("next_attempt_at")?,
        created_at: rows::time(row, "created_at")?,
        delivered_at: opt_time("delivered_at")?,
    })
}

/// The host a URL points at, for events and logs: a webhook URL (Slack's, Discord's)
/// is itself a credential, so its path never leaves the database.
pub fn url_host(url: &str) -> String {
    url.split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""))
        .map(|h| h.rsplit('@').next().unwrap_or(h).to_string())
        .unwrap_or_default()
}

#[async_trait]
impl WebhookStore for SqlStore {
    async fn create_webhook(&self, hook: NewWebhook, actor: Actor<'_>) -> Result<Webhook> {
        if let Some(p) = hook.project_id {
            crate::store::Store::get_project(self, p).await?;
        }
        let mut tx = self.begin().await?;
        let kinds = serde_json::to_string(&hook.kinds).expect("kinds serialize");
        let sql = format!(
            "INSERT INTO webhooks (project_id, url, kinds, format, secret, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {WEBHOOK_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(hook.project_id)
            .bind(&hook.url)
            .bind(kinds)
            .bind(hook.format.as_str())
            .bind(&hook.secret)
            .bind(now_ms())
            .fetch_one(&mut *tx)
            .await?;
        let created = webhook(&row)?;
        let event = NewEvent {
            project_id: created.project_id,
            spec_task_id: None,
            entity: "webhook",
            entity_id: Some(created.id),
            kind: "webhook.created",
            data: json!({ "host": url_host(&created.url), "kinds": created.kinds, "format": created.format }),
        };
        self.commit_with(tx, event, actor).await?;
        Ok(created)
    }

    async fn list_webhooks(&self) -> Result<Vec<Webhook>> {
        let sql =
            format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE deleted_at IS NULL ORDER BY id");
        self.fetch_rows(&sql, Vec::new())
            .await?
            .iter()
            .map(webhook)
            .collect()
    }

    async fn get_webhook(&self, id: i64) -> Result<Webhook> {
        let sql =
            format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1 AND deleted_at IS NULL");
        let rows = self.fetch_rows(&sql, vec![Bind::Int(id)]).await?;
        rows.first()
            .map(webhook)
            .transpose()?
            .ok_or(StoreError::NotFound {
                entity: "webhook",
                id: id.to_string(),
            })
    }

    async fn delete_webhook(&self, id: i64, actor: Actor<'_>) -> Result<()> {
        let hook = self.get_webhook(id).await?;
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE webhooks SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL")
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let event = NewEvent {
            project_id: hook.project_id,
            spec_task_id: None,
            entity: "webhook",
            entity_id: Some(id),
            kind: "webhook.deleted",
            data: json!({ "host": url_host(&hook.url) }),
        };
        self.commit_with(tx, event, actor).await
    }

    async fn queue_delivery(
        &self,
        webhook_id: i64,
        n: &Notification,
        payload: &str,
    ) -> Result<Option<WebhookDelivery>> {
        let mut tx = self.begin().await?;
        let now = now_ms();
        let sql = format!(
            "INSERT INTO webhook_deliveries (webhook_id, notification_key, kind, spec_task_id, payload, \
             status, attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6) \
             ON CONFLICT (webhook_id, notification_key) DO NOTHING RETURNING {DELIVERY_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(webhook_id)
            .bind(&n.key)
            .bind(n.kind.as_str())
            .bind(n.spec_task_id)
            .bind(payload)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let queued = delivery(&row)?;
        let event = NewEvent {
            project_id: Some(n.project_id),
            spec_task_id: Some(n.spec_task_id),
            entity: "webhook_delivery",
            entity_id: Some(queued.id),
            kind: "webhook_delivery.queued",
            data: json!({ "webhook_id": webhook_id, "notification_key": n.key, "kind": n.kind }),
        };
        self.commit_with(tx, event, "system").await?;
        Ok(Some(queued))
    }

    async fn claim_due_deliveries(
        &self,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>> {
        let now = now_ms();
        let due = self
            .fetch_rows(
                "SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
                 WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND w.deleted_at IS NULL \
                 ORDER BY d.next_attempt_at, d.id LIMIT $2",
                vec![Bind::Int(now), Bind::Int(limit)],
            )
            .await?;
        let mut claimed = Vec::new();
        for row in due {
            let id: i64 = row.try_get("id")?;
            // The UPDATE is the claim: a row another loop took first is skipped.
            let sql = format!(
                "UPDATE webhook_deliveries SET next_attempt_at = $1, attempts = attempts + 1 \
                 WHERE id = $2 AND status = 'pending' AND next_attempt_at <= $3 RETURNING {DELIVERY_COLUMNS}, payload"
            );
            let mut tx = self.begin().await?;
            let Some(row) = sqlx::query(&sql)
                .bind(lease_until.timestamp_millis())
                .bind(id)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?
            else {
                continue;
            };
            tx.commit_without_events(Unrecorded::DeliveryClaim).await?;
            let d = delivery(&row)?;
            let payload: String = row.try_get("payload")?;
            let hook = sqlx::query("SELECT url, secret FROM webhooks WHERE id = $1")
                .bind(d.webhook_id)
                .fetch_one(&self.pool)
                .await?;
            claimed.push(ClaimedDelivery {
                url: hook.try_get("url")?,
                secret: hook.try_get("secret")?,
                payload,
                delivery: d,
            });
        }
        Ok(claimed)
    }

    async fn record_attempt(&self, id: i64, outcome: AttemptOutcome) -> Result<WebhookDelivery> {
        let mut tx = self.begin().await?;
        let now = now_ms();
        let delivered_at = (outcome.status == DeliveryStatus::Delivered).then_some(now);
        let sql = format!(
            "UPDATE webhook_deliveries SET status = $1, last_status = $2, last_error = $3, \
             next_attempt_at = $4, delivered_at = $5 WHERE id = $6 RETURNING {DELIVERY_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(outcome.status.as_str())
            .bind(outcome.http_status)
            .bind(outcome.error.clone())
            .bind(outcome.next_attempt_at.map(|t| t.timestamp_millis()))
            .bind(delivered_at)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound {
                entity: "webhook delivery",
                id: id.to_string(),
            })?;
        let d = delivery(&row)?;
        let project_id = self.task_project(d.spec_task_id).await.ok();
        let kind = match d.status {
            DeliveryStatus::Delivered => "webhook_delivery.delivered",
            DeliveryStatus::Failed => "webhook_delivery.failed",
            DeliveryStatus::Pending => "webhook_delivery.retrying",
        };
        let event = NewEvent {
            project_id,
            spec_task_id: Some(d.spec_task_id),
            entity: "webhook_delivery",
            entity_id: Some(d.id),
            kind,
            data: json!({ "webhook_id": d.webhook_id, "attempts": d.attempts,
                          "http_status": d.last_status, "error": d.last_error }),
        };
        self.commit_with(tx, event, "system").await?;
        Ok(d)
    }

    async fn list_deliveries(&self, webhook_id: i64, limit: i64) -> Result<Vec<WebhookDelivery>> {
        let exists = self
            .fetch_rows(
                "SELECT id FROM webhooks WHERE id = $1 AND deleted_at IS NULL",
                vec![Bind::Int(webhook_id)],
            )
            .await?;
        if exists.is_empty() {
            return Err(StoreError::NotFound {
                entity: "webhook",
                id: webhook_id.to_string(),
            });
        }
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2"
        );
        self.fetch_rows(&sql, vec![Bind::Int(webhook_id), Bind::Int(limit)])
            .await?
            .iter()
            .map(delivery)
            .collect()
    }

    async fn next_delivery_due(&self) -> Result<Option<DateTime<Utc>>> {
        let rows = self
            .fetch_rows(
                "SELECT MIN(d.next_attempt_at) AS due FROM webhook_deliveries d \
                 JOIN webhooks w ON w.id = d.webhook_id WHERE d.status = 'pending' AND w.deleted_at IS NULL",
                Vec::new(),
            )
            .await?;
        Ok(rows
            .first()
            .map(|r| r.try_get::<Option<i64>, _>("due"))
            .transpose()?
            .flatten()
            .map(rows::ts))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_host_of_a_webhook_url_is_shown() {
        use super::url_host;
        assert_eq!(
            url_host("https://hooks.slack.com/services/T0/B0/secret"),
            "hooks.slack.com"
        );
        assert_eq!(url_host("http://user:pw@127.0.0.1:9/x?y"), "127.0.0.1:9");
        assert_eq!(url_host("nonsense"), "");
    }
}
