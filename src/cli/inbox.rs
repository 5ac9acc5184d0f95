//! `spectask inbox` (what waits for a person) and `spectask webhook …` (where those
//! notifications are also sent).

use clap::Subcommand;
use serde_json::{Value, json};

use super::client::Client;
use super::output;
use crate::domain::{Notification, Webhook, WebhookDelivery};

#[derive(Debug, Subcommand)]
pub enum WebhookCmd {
    /// Send notifications to a URL (POST, JSON, signed with HMAC-SHA256 in
    /// X-Spectask-Signature); prints the secret once
    Add {
        url: String,
        /// Only this project's notifications [default: every project's]
        #[arg(long)]
        project: Option<i64>,
        /// Only these kinds (repeatable): spec_review, implementation_review,
        /// permission, conflict, task_failed, session_failed, blocked, request
        /// [default: every kind]
        #[arg(long = "kind")]
        kinds: Vec<String>,
        /// generic, slack or discord
        #[arg(long, default_value = "generic")]
        format: String,
        #[arg(long)]
        json: bool,
    },
    /// List webhooks (never their secrets)
    List {
        #[arg(long)]
        json: bool,
    },
    /// Stop sending to a webhook
    Remove { id: i64 },
    /// A webhook's deliveries, newest first: status, attempts, last answer
    Deliveries {
        id: i64,
        #[arg(long)]
        json: bool,
    },
}

pub async fn inbox(client: &Client, json: bool) -> anyhow::Result<()> {
    let items: Vec<Notification> = client.get("/notifications").await?;
    if json {
        return output::json(&items);
    }
    if items.is_empty() {
        println!("nothing waits for you");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|n| {
            vec![
                n.since.format("%Y-%m-%d %H:%M").to_string(),
                n.kind.to_string(),
                format!("#{}", n.spec_task_id),
                n.title.clone(),
                format!("{}{}", client.base(), n.link),
            ]
        })
        .collect();
    output::table(&["SINCE", "KIND", "TASK", "WHAT", "WHERE"], &rows);
    Ok(())
}

pub async fn webhook(client: &Client, cmd: WebhookCmd) -> anyhow::Result<()> {
    match cmd {
        WebhookCmd::Add {
            url,
            project,
            kinds,
            format,
            json,
        } => {
            let body =
                json!({ "url": url, "project_id": project, "kinds": kinds, "format": format });
            let created: Value = client.post("/webhooks", &body).await?;
            if json {
                return output::json(&created);
            }
            println!(
                "added webhook {}. Its signing secret is shown only this once:",
                created["webhook"]["id"]
            );
            println!("{}", created["secret"].as_str().unwrap_or_default());
        }
        WebhookCmd::List { json } => {
            let hooks: Vec<Webhook> = client.get("/webhooks").await?;
            if json {
                return output::json(&hooks);
            }
            let rows: Vec<Vec<String>> = hooks
                .iter()
                .map(|h| {
                    vec![
                        h.id.to_string(),
                        h.project_id.map_or("all".into(), |p| p.to_string()),
                        h.format.to_string(),
                        if h.kinds.is_empty() {
                            "all".into()
                        } else {
                            h.kinds
                                .iter()
                                .map(|k| k.as_str())
                                .collect::<Vec<_>>()
                                .join(",")
                        },
                        h.url.clone(),
                    ]
                })
                .collect();
            output::table(&["ID", "PROJECT", "FORMAT", "KINDS", "URL"], &rows);
        }
        WebhookCmd::Remove { id } => {
            client
                .send::<Value>(
                    reqwest::Method::DELETE,
                    &format!("/webhooks/{id}"),
                    None::<&Value>,
                )
                .await?;
            println!("removed webhook {id}");
        }
        WebhookCmd::Deliveries { id, json } => {
            let list: Vec<WebhookDelivery> =
                client.get(&format!("/webhooks/{id}/deliveries")).await?;
            if json {
                return output::json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|d| {
                    vec![
                        d.id.to_string(),
                        d.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                        d.kind.to_string(),
                        d.status.to_string(),
                        d.attempts.to_string(),
                        d.last_error
                            .clone()
                            .or(d.last_status.map(|s| format!("HTTP {s}")))
                            .unwrap_or_default(),
                    ]
                })
                .collect();
            output::table(
                &["ID", "QUEUED", "KIND", "STATUS", "ATTEMPTS", "LAST"],
                &rows,
            );
        }
    }
    Ok(())
}
