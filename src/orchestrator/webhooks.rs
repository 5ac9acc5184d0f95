//! Webhooks: each step queues every notification a webhook wants and has not had
//! (one delivery row per pair, so once), then starts every attempt that is due, each
//! on its own task with a timeout: a receiver that hangs or fails delays nothing but
//! its own delivery. A failed attempt is made again after a doubling backoff, up to
//! the configured number of attempts; then the delivery is `failed`, on record where
//! the dashboard shows it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::inbox;
use crate::config::WebhookSettings;
use crate::domain::*;
use crate::store::{AttemptOutcome, ClaimedDelivery, Store, StoreError};

/// The header carrying `sha256=<hex HMAC-SHA256 of the body, keyed by the secret>`.
pub const SIGNATURE_HEADER: &str = "x-spectask-signature";
/// The least time between two steps, so a burst of events (a streaming transcript)
/// computes the notification list a few times a second, not once per event.
const MIN_STEP_GAP: Duration = Duration::from_millis(200);
/// Attempts started at once by one step.
const CLAIM_BATCH: i64 = 32;

pub struct Notifier {
    store: Arc<dyn Store>,
    settings: WebhookSettings,
    /// The dashboard's base URL, for links (no trailing slash).
    base_url: String,
    client: reqwest::Client,
    /// (webhook, notification key) pairs already queued by this process: skips the
    /// insert the unique key would refuse anyway.
    queued: Mutex<HashSet<(i64, String)>>,
}

impl Notifier {
    pub fn new(store: Arc<dyn Store>, settings: WebhookSettings, base_url: String) -> Arc<Self> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("spectask-webhook/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client with a timeout builds");
        Arc::new(Notifier {
            store,
            base_url: base_url.trim_end_matches('/').to_string(),
            settings,
            client,
            queued: Mutex::default(),
        })
    }

    /// One step: queues what is new, starts what is due. Returns the attempts it
    /// started (tests wait on them; the loop does not).
    pub async fn run_once(
        self: &Arc<Self>,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, StoreError> {
        let hooks = self.store.list_webhooks().await?;
        if !hooks.is_empty() {
            let notes = inbox::notifications(self.store.as_ref()).await?;
            let mut current = HashSet::new();
            for n in &notes {
                for hook in hooks.iter().filter(|h| h.wants(n)) {
                    let pair = (hook.id, n.key.clone());
                    current.insert(pair.clone());
                    if self.queued.lock().unwrap().contains(&pair) {
                        continue;
                    }
                    let body = payload(hook.format, n, &self.base_url);
                    self.store.queue_delivery(hook.id, n, &body).await?;
                    self.queued.lock().unwrap().insert(pair);
                }
            }
            // What is no longer listed cannot be queued again: forget it.
            self.queued.lock().unwrap().retain(|p| current.contains(p));
        }
        let lease = chrono::Utc::now()
            + chrono::Duration::from_std(self.settings.timeout + Duration::from_secs(5))
                .unwrap_or_default();
        let claimed = self.store.claim_due_deliveries(lease, CLAIM_BATCH).await?;
        Ok(claimed
            .into_iter()
            .map(|c| {
                let me = self.clone();
                tokio::spawn(async move { me.attempt(c).await })
            })
            .collect())
    }

    /// Runs a step on every committed event, when an attempt falls due, and at least
    /// every few seconds.
    pub fn spawn_loop(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        super::step_loop(self.store.subscribe_events(), MIN_STEP_GAP, move || {
            let me = me.clone();
            async move {
                if let Err(e) = me.run_once().await {
                    tracing::error!(error = %e, "webhook step");
                }
                match me.store.next_delivery_due().await {
                    Ok(Some(due)) => (due - chrono::Utc::now())
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                        .min(super::RECONCILE_EVERY),
                    _ => super::RECONCILE_EVERY,
                }
            }
        })
    }

    async fn attempt(&self, c: ClaimedDelivery) {
        let d = &c.delivery;
        let result = self
            .client
            .post(&c.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature(&c.secret, c.payload.as_bytes()))
            .header("x-spectask-delivery", d.id.to_string())
            .header("x-spectask-event", d.kind.as_str())
            .header("x-spectask-attempt", d.attempts.to_string())
            .body(c.payload.clone())
            .send()
            .await;
        let (ok, http_status, error) = match result {
            Ok(r) if r.status().is_success() => (true, Some(r.status().as_u16() as i64), None),
            Ok(r) => (
                false,
                Some(r.status().as_u16() as i64),
                Some(format!("the receiver answered {}", r.status())),
            ),
            // Without the URL: a webhook URL can itself be a credential.
            Err(e) if e.is_timeout() => (
                false,
                None,
                Some(format!(
                    "no answer within {} ms",
                    self.settings.timeout.as_millis()
                )),
            ),
            Err(e) => (false, None, Some(error_chain(e.without_url()))),
        };
        let status = DeliveryStatus::after_attempt(ok, d.attempts, self.settings.max_attempts);
        let next_attempt_at = (status == DeliveryStatus::Pending).then(|| {
            chrono::Utc::now()
                + chrono::Duration::from_std(delivery_backoff(
                    self.settings.backoff,
                    d.attempts - 1,
                ))
                .unwrap_or_default()
        });
        if status != DeliveryStatus::Delivered {
            tracing::warn!(
                delivery = d.id,
                webhook = d.webhook_id,
                attempts = d.attempts,
                error = error.as_deref().unwrap_or(""),
                "webhook attempt failed"
            );
        }
        let outcome = AttemptOutcome {
            status,
            http_status,
            error,
            next_attempt_at,
        };
        if let Err(e) = self.store.record_attempt(d.id, outcome).await {
            // The claim's lease runs out and the attempt is made again.
            tracing::error!(error = %e, delivery = d.id, "recording a webhook attempt");
        }
    }
}

/// An error with its causes ("error sending request: client error (Connect): tcp
/// connect error: Connection refused"), which say what went wrong; the URL is not in
/// them once `without_url` took it out.
fn error_chain(e: reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    text
}

/// `sha256=` and the hex HMAC-SHA256 of `body` keyed by `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any size");
    mac.update(body);
    format!("sha256={}", crate::auth::hex(&mac.finalize().into_bytes()))
}

/// The body a webhook of this format receives for a notification.
pub fn payload(format: WebhookFormat, n: &Notification, base_url: &str) -> String {
    let link = format!("{base_url}{}", n.link);
    let value = match format {
        WebhookFormat::Generic => json!({
            "type": "notification",
            "kind": n.kind,
            "key": n.key,
            "title": n.title,
            "message": n.message,
            "link": link,
            "project_id": n.project_id,
            "task": { "id": n.spec_task_id, "title": n.spec_task_title },
            "session_id": n.session_id,
            "permission_id": n.permission_id,
            "coordination_id": n.coordination_id,
            "task_key": n.task_key,
            "since": n.since,
        }),
        // Slack's incoming webhooks: mrkdwn text with a link.
        WebhookFormat::Slack => json!({
            "text": format!("*{}*\n{}\n<{link}|Open in spectask>", slack_escape(&n.title), slack_escape(&n.message)),
        }),
        // Discord's: at most 2000 characters, and no pings from what an agent wrote.
        WebhookFormat::Discord => {
            let mut content = format!("**{}**\n{}", n.title, n.message);
            let room = 1990usize.saturating_sub(link.chars().count());
            if content.chars().count() > room {
                content = content
                    .chars()
                    .take(room.saturating_sub(1))
                    .collect::<String>()
                    + "…";
            }
            json!({
                "content": format!("{content}\n{link}"),
                "allowed_mentions": { "parse": [] },
            })
        }
    };
    value.to_string()
}

fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note() -> Notification {
        Notification {
            key: "conflict:session:4:1".into(),
            kind: NotificationKind::Conflict,
            project_id: ProjectId(1),
            spec_task_id: SpecTaskId(2),
            spec_task_title: "Add <sessions>".into(),
            session_id: Some(WorkSessionId(4)),
            permission_id: None,
            coordination_id: None,
            task_key: Some("2".into()),
            title: "Merge conflict: session 4 in Add <sessions>".into(),
            message: "retry it".into(),
            link: "/sessions/4".into(),
            since: chrono::Utc::now(),
        }
    }

    #[test]
    fn the_signature_is_the_hmac_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn payloads_link_into_the_dashboard_in_each_format() {
        let n = note();
        let generic: serde_json::Value =
            serde_json::from_str(&payload(WebhookFormat::Generic, &n, "http://h:1")).unwrap();
        assert_eq!(generic["link"], "http://h:1/sessions/4");
        assert_eq!(generic["kind"], "conflict");
        assert_eq!(generic["task"]["id"], 2);
        let slack: serde_json::Value =
            serde_json::from_str(&payload(WebhookFormat::Slack, &n, "http://h:1")).unwrap();
        let text = slack["text"].as_str().unwrap();
        assert!(
            text.contains("&lt;sessions&gt;")
                && text.ends_with("<http://h:1/sessions/4|Open in spectask>")
        );
        let mut long = n.clone();
        long.message = "x".repeat(5000);
        let discord: serde_json::Value =
            serde_json::from_str(&payload(WebhookFormat::Discord, &long, "http://h:1")).unwrap();
        let content = discord["content"].as_str().unwrap();
        assert!(content.chars().count() <= 2000 && content.ends_with("http://h:1/sessions/4"));
        assert_eq!(discord["allowed_mentions"]["parse"], json!([]));
    }
}
