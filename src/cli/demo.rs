//! `spectask demo`: a whole run on a sample repository with the scripted agent —
//! prompt, planning, approval, parallel implementation, merge — so a newcomer sees
//! spectask work before configuring a real agent.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::agents::profile::AgentProfile;
use crate::app;
use crate::config::ServeConfig;
use crate::orchestrator::progress::Progress;

const PLANNING: &str = "write {{spec_dir}}/requirements.md # Requirements Document\\n\\n### Requirement 1: Greeting\\n\\n**User Story:** As a visitor, I want a greeting, so that I feel welcome.\\n\\n#### Acceptance Criteria\\n\\n1. WHEN the page loads THEN the system SHALL show a greeting\\n2. The system SHALL sign the greeting\\n
write {{spec_dir}}/design.md # Design\\n\\nA text file per part of the page.\\n
write {{spec_dir}}/tasks.md # Implementation Plan\\n\\n- [ ] 1. Write the greeting\\n  - write greeting.txt Hello from spectask\\n  - sleep 300\\n  - _Requirements: 1.1_\\n- [ ] 2. Write the signature (P)\\n  - write signature.txt -- the demo\\n  - sleep 300\\n  - _Requirements: 1.2_\\n- [ ] 3. Write the page\\n  - write page.txt greeting + signature\\n  - _Requirements: 1.1, 1.2_\\n  - _Depends: 1, 2_\\n
say The spec is written.
";

const IMPLEMENTATION: &str = "{{details}}\nsay Task {{key}} is done.\n";

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let ok = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "demo")
        .env("GIT_AUTHOR_EMAIL", "demo@localhost")
        .env("GIT_COMMITTER_NAME", "demo")
        .env("GIT_COMMITTER_EMAIL", "demo@localhost")
        .output()
        .context("running git")?;
    if !ok.status.success() {
        bail!("git {args:?}: {}", String::from_utf8_lossy(&ok.stderr));
    }
    Ok(())
}

fn sample_repo(dir: &Path) -> anyhow::Result<PathBuf> {
    let repo = dir.join("sample-repo");
    std::fs::create_dir_all(repo.join(".spectask"))?;
    git(&repo, &["init", "-q", "-b", "main"])?;
    std::fs::write(
        repo.join("README.md"),
        "# A sample project for the spectask demo\n",
    )?;
    // The scripted agent does what its prompt says, so the demo's prompts are scripts.
    std::fs::write(repo.join(".spectask/planning.md"), PLANNING)?;
    std::fs::write(repo.join(".spectask/implementation.md"), IMPLEMENTATION)?;
    git(&repo, &["add", "."])?;
    git(&repo, &["commit", "-qm", "sample project"])?;
    Ok(repo)
}

struct Api {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        if !status.is_success() {
            bail!("{path}: {}", body["error"]["message"]);
        }
        Ok(body)
    }

    /// Follows the task's events (long poll) after `after` until its status is
    /// `target`, printing progress on the way; returns where it stopped.
    async fn follow(&self, task: i64, target: &str, mut after: i64) -> anyhow::Result<i64> {
        loop {
            let page = self
                .call(
                    reqwest::Method::GET,
                    &format!("/events?spec_task={task}&after={after}&wait=20&limit=1000"),
                    None,
                )
                .await?;
            for e in page["items"].as_array().into_iter().flatten() {
                let kind = e["kind"].as_str().unwrap_or("");
                let data = &e["data"];
                match kind {
                    "spec_task.status_changed" => {
                        println!("  task is now {}", data["to"].as_str().unwrap_or(""));
                        if data["to"] == "failed" {
                            bail!("the task failed: {}", data["reason"]);
                        }
                        if data["to"] == target {
                            return Ok(e["id"].as_i64().unwrap_or(after));
                        }
                    }
                    "spec_version.created" => {
                        println!("  spec version {} committed", data["number"])
                    }
                    "implementation_task.status_changed" => {
                        let progress: Progress = serde_json::from_value(
                            self.call(
                                reqwest::Method::GET,
                                &format!("/spec-tasks/{task}/progress"),
                                None,
                            )
                            .await?,
                        )?;
                        println!(
                            "  {}  task {} {}",
                            super::watch::overall(&progress),
                            data["key"].as_str().unwrap_or(""),
                            data["to"].as_str().unwrap_or("").replace('_', " ")
                        );
                    }
                    _ => {}
                }
            }
            after = page["next_after"].as_i64().unwrap_or(after);
        }
    }
}

pub async fn run(once: bool) -> anyhow::Result<()> {
    let agent = std::env::current_exe()?.with_file_name("spectask-test-agent");
    if !agent.exists() {
        bail!(
            "the scripted agent {} is missing: build it with `cargo build` (it ships with spectask)",
            agent.display()
        );
    }
    let dir = tempfile::Builder::new()
        .prefix("spectask-demo-")
        .tempdir()?
        .keep();
    let repo = sample_repo(&dir)?;
    let data_dir = dir.join("data");
    let mut config = ServeConfig::new("127.0.0.1:0", data_dir.clone());
    config.agent_profiles.insert(
        "scripted".into(),
        AgentProfile::new(&agent.to_string_lossy(), &[]),
    );
    config.default_agent = "scripted".into();
    let built = app::build(&config).await?;
    let sign_in = built.sign_in_link().await?;
    let token = std::fs::read_to_string(built.token_file())?
        .trim()
        .to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = app::shutdown_signal()?;
    let server = tokio::spawn(built.run(listener, async move {
        tokio::select! {
            _ = stopped => {},
            _ = shutdown => {},
        }
    }));
    let api = Api {
        http: reqwest::Client::new(),
        url: url.clone(),
        token,
    };
    println!("spectask demo: a sample repository at {}", repo.display());
    println!("The agent in this demo is SCRIPTED (spectask-test-agent): it follows the prompts in");
    println!(
        "{}/.spectask/ instead of thinking. See the README for a real agent.\n",
        repo.display()
    );
    let project = api
        .call(
            reqwest::Method::POST,
            "/projects",
            Some(json!({ "path": repo, "max_parallel_sessions": 2 })),
        )
        .await?;
    let task = api
        .call(
            reqwest::Method::POST,
            "/spec-tasks",
            Some(
                json!({ "project_id": project["id"], "title": "Greet visitors",
                         "prompt": "Show visitors a signed greeting." }),
            ),
        )
        .await?;
    let id = task["id"].as_i64().unwrap_or(0);
    println!("1. created task {id}; planning…");
    api.call(
        reqwest::Method::POST,
        &format!("/spec-tasks/{id}/start-planning"),
        Some(json!({})),
    )
    .await?;
    let seen = api.follow(id, "spec_review", 0).await?;
    println!(
        "2. the spec is ready for review; approving it (you would review it first: `spectask task review {id}`)"
    );
    api.call(
        reqwest::Method::POST,
        &format!("/spec-tasks/{id}/approve"),
        Some(json!({})),
    )
    .await?;
    println!("3. implementing, two sessions at a time:");
    api.follow(id, "implementation_review", seen).await?;
    let branch = task["branch"].as_str().unwrap_or("");
    println!(
        "\nDone. Everything is on branch {branch} of {}:",
        repo.display()
    );
    let log = Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["log", "--oneline", branch])
        .output()?;
    print!("{}", String::from_utf8_lossy(&log.stdout));
    println!("\nLook around:");
    println!("  git -C {} log --stat {branch}", repo.display());
    println!(
        "  spectask --data-dir {} --url {url} task show {id}",
        data_dir.display()
    );
    println!(
        "  the API at {url}/api/v1 with the token in {}/token",
        data_dir.display()
    );
    println!("To use a real agent, add it to spectask.toml in your data dir, e.g.:");
    println!(
        "  default_agent = \"claude\"   # claude-agent-acp must be installed; `spectask agents check`"
    );
    println!("\nSee the run in the dashboard (a one-time sign-in link, valid for an hour):");
    println!("  {url}{sign_in}");
    println!(
        "  a fresh one: spectask --data-dir {} --url {url} dashboard",
        data_dir.display()
    );
    if once {
        let _ = stop.send(());
        server.await??;
        return Ok(());
    }
    println!("\nThe server keeps running at {url}; Ctrl-C stops it.");
    server.await??;
    drop(stop);
    Ok(())
}
