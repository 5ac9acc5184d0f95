//! A cluster rig for the tests and the bench: one fresh PostgreSQL database, one user
//! repository, and `spectask serve --cluster` replicas as child processes, each with
//! its own data dir; plans of the scripted agent submitted through any replica.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::common::db::{Backend, TestDb};
use super::server::{self, Api, Server};

/// The longest a follower waits for what it expects.
pub const WAIT: Duration = Duration::from_secs(240);

pub struct Rig {
    pub dir: tempfile::TempDir,
    pub db: TestDb,
    pub repo: PathBuf,
    /// Every replica's lease.
    pub ttl_ms: u64,
}

pub struct Task {
    pub id: i64,
    pub branch: String,
    pub keys: Vec<String>,
}

impl Rig {
    pub async fn new(ttl_ms: u64) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let repo = super::common::plan::script_repo(dir.path());
        Rig {
            dir,
            db: TestDb::new(Backend::Postgres).await,
            repo,
            ttl_ms,
        }
    }

    /// Every replica's log, for a failure's message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for name in ["a", "b"] {
            let log =
                std::fs::read_to_string(self.data(name).join("server.log")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            out.push_str(&format!(
                "--- replica {name}\n{}\n",
                lines[lines.len().saturating_sub(30)..].join("\n")
            ));
        }
        out
    }

    pub fn data(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub async fn replica(&self, name: &str, max_agents: usize) -> Server {
        let data = self.data(name);
        server::configure(&data);
        let args: Vec<String> = [
            "--cluster",
            "--replica-id",
            name,
            "--lease-ttl-ms",
            &self.ttl_ms.to_string(),
            "--max-agents",
            &max_agents.to_string(),
            "--database-url",
            self.db.url(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Server::start_with(&data, &args).await.unwrap()
    }

    pub async fn project(&self, api: &Api) -> i64 {
        let p = api
            .ok(
                Method::POST,
                "/projects",
                Some(json!({ "path": self.repo, "max_parallel_sessions": 2 })),
            )
            .await
            .unwrap();
        p["id"].as_i64().unwrap()
    }

    /// Imports and approves plan `n` (one of four shapes: one task, a chain of two,
    /// two in parallel and one after both, a chain of three), each step writing its
    /// own file after `sleep_ms`.
    pub async fn submit(&self, api: &Api, project: i64, n: usize, sleep_ms: u64) -> Task {
        let step = |key: &str| {
            format!("  - sleep {sleep_ms}\n  - write p{n}-{key}.txt {n}-{key}\n  - sh pwd\n")
        };
        let mut plan = String::from("# Implementation Plan\n\n");
        let keys: Vec<&str> = match n % 4 {
            0 => vec!["1"],
            1 => vec!["1", "2"],
            2 => vec!["1", "2", "3"],
            _ => vec!["1", "2", "3"],
        };
        for key in &keys {
            let parallel = if n % 4 == 2 && *key != "3" {
                " (P)"
            } else {
                ""
            };
            plan.push_str(&format!("- [ ] {key}. Step {key}{parallel}\n"));
            plan.push_str(&step(key));
            if n % 4 == 2 && *key == "3" {
                plan.push_str("  - _Depends: 1, 2_\n");
            }
        }
        let files = json!({
            "requirements.md": super::common::spec::REQUIREMENTS,
            "design.md": super::common::spec::DESIGN,
            "tasks.md": plan,
        });
        let task = api
            .ok(
                Method::POST,
                "/spec-tasks/import",
                Some(
                    json!({ "project_id": project, "title": format!("Plan {n}"), "files": files }),
                ),
            )
            .await
            .unwrap();
        let id = task["id"].as_i64().unwrap();
        api.ok(
            Method::POST,
            &format!("/spec-tasks/{id}/approve"),
            Some(json!({})),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
        Task {
            id,
            branch: task["branch"].as_str().unwrap().to_string(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
        }
    }
}

/// Follows the event log through `api` (long polls) until `done` holds for the
/// events seen so far; returns them.
pub async fn follow_until(api: &Api, mut done: impl FnMut(&[Value]) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    let mut after = 0;
    tokio::time::timeout(WAIT, async {
        loop {
            let page = api
                .get(&format!("/events?after={after}&wait=5&limit=1000"))
                .await
                .unwrap();
            seen.extend(page["items"].as_array().unwrap().iter().cloned());
            after = page["next_after"].as_i64().unwrap();
            if done(&seen) {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("waited too long; {} events seen", seen.len()));
    seen
}

pub fn finished(events: &[Value], task: i64) -> bool {
    events.iter().any(|e| {
        e["spec_task_id"] == task
            && e["kind"] == "spec_task.status_changed"
            && e["data"]["to"] == "implementation_review"
    })
}

pub fn leases_of(events: &[Value], task: i64) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["spec_task_id"] == task && e["kind"] == "spec_task.lease_taken")
        .collect()
}

/// Every event the log holds now, through `api`.
pub async fn all_events(api: &Api) -> Vec<Value> {
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = api
            .get(&format!("/events?after={after}&limit=1000"))
            .await
            .unwrap();
        let items = page["items"].as_array().unwrap();
        if items.is_empty() {
            return seen;
        }
        seen.extend(items.iter().cloned());
        after = page["next_after"].as_i64().unwrap();
    }
}
