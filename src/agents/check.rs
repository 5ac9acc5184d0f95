//! `spectask agents check`: start a profile's agent, run `initialize` (and, to find
//! out whether it needs authentication, `session/new` in a scratch folder), and
//! report what it said or exactly why it could not.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use super::profile::AgentProfile;
use super::protocol::{self, AgentInfo};
use super::rpc::{Connection, Handler, HandlerError, RpcError};
use super::sandbox;
use super::terminals::kill_group;

#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub profile: String,
    pub command: String,
    /// `ok`, `not_installed`, `needs_authentication`, `bad_output`, `timeout` or `failed`.
    pub status: &'static str,
    pub agent: Option<AgentInfo>,
    pub error: Option<String>,
    /// How the agent ran in this check, as it runs in a spec task: `confined
    /// (Landlock ABI N)` with the folders it may write, or `not confined: <why>`.
    pub sandbox: String,
    /// Whether it can resume a session after a restart (`session/load`).
    pub load_session: bool,
    /// Whether it takes spectask's tools over HTTP (`mcpCapabilities.http`); if
    /// not, they reach it over stdio through `spectask mcp`.
    pub mcp_http: bool,
    /// Whether its prompts may carry images (`promptCapabilities.image`).
    pub images: bool,
    /// The folders it keeps its own state in (its profile's sandbox `write`).
    pub state_folders: Vec<String>,
}

/// Answers nothing: a check never serves files or terminals.
struct Refuse;

#[async_trait::async_trait]
impl Handler for Refuse {
    async fn request(&self, method: &str, _: Value) -> Result<Value, HandlerError> {
        Err(HandlerError::internal(format!(
            "{method} is not served during a check"
        )))
    }
    async fn notification(&self, _: &str, _: Value) {}
}

fn classify(err: &RpcError) -> &'static str {
    match err {
        RpcError::Timeout { .. } => "timeout",
        RpcError::Closed(reason) if reason.contains("not JSON-RPC") => "bad_output",
        _ => "failed",
    }
}

/// `hidden`: what the agent must not read (the data dir), as in a spec task.
pub async fn check(
    name: &str,
    profile: &AgentProfile,
    timeout: Duration,
    hidden: &[std::path::PathBuf],
) -> CheckReport {
    let mut report = CheckReport {
        profile: name.to_string(),
        command: std::iter::once(profile.command.clone())
            .chain(profile.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
        status: "ok",
        agent: None,
        error: None,
        sandbox: String::new(),
        load_session: false,
        mcp_http: false,
        images: false,
        state_folders: profile
            .sandbox
            .write_dirs()
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
    };
    let scratch = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            report.status = "failed";
            report.error = Some(format!("cannot create a scratch folder: {e}"));
            return report;
        }
    };
    let mut command = tokio::process::Command::new(&profile.command);
    command
        .args(&profile.args)
        .envs(&profile.env)
        .current_dir(scratch.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // The scratch folder stands for the task's folder: an agent that cannot start
    // confined shows it here, not in its first task.
    let write = profile.sandbox.write_dirs();
    let policy = sandbox::Policy {
        task_dir: scratch.path().to_path_buf(),
        write: write.clone(),
        hidden: hidden.to_vec(),
    };
    match sandbox::Sandbox::build(&policy) {
        Ok(sb) => {
            sb.confine(&mut command);
            let writes: Vec<String> = write.iter().map(|p| p.display().to_string()).collect();
            report.sandbox = format!(
                "confined (Landlock ABI {}); writes its task's folder{}",
                sb.abi(),
                if writes.is_empty() {
                    String::new()
                } else {
                    format!(", {}", writes.join(", "))
                }
            );
        }
        Err(e) => {
            sandbox::scrub_env(&mut command);
            report.sandbox = format!("not confined: {e}");
        }
    }
    let spawned = command.spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            report.status = "not_installed";
            report.error = Some(format!(
                "{} is not installed (not found on PATH)",
                profile.command
            ));
            return report;
        }
        Err(e) => {
            report.status = "failed";
            report.error = Some(format!("cannot start {}: {e}", profile.command));
            return report;
        }
    };
    let pid = child.id().unwrap_or(0) as i32;
    let mut stderr = child.stderr.take();
    let conn = Connection::start(
        child.stdout.take().unwrap(),
        child.stdin.take().unwrap(),
        Arc::new(Refuse),
    );
    let outcome = async {
        let init = conn
            .request("initialize", protocol::initialize_params(), timeout)
            .await?;
        let info = AgentInfo::from_initialize(&init);
        let params = json!({ "cwd": scratch.path(), "mcpServers": [] });
        match conn.request("session/new", params.clone(), timeout).await {
            Err(RpcError::Remote {
                code: -32000,
                message,
            }) => match &profile.auth_method {
                Some(method) => {
                    conn.request("authenticate", json!({ "methodId": method }), timeout)
                        .await?;
                    conn.request("session/new", params, timeout).await?;
                    Ok((info, None))
                }
                None => Ok((info, Some(message))),
            },
            Err(e) => Err(e),
            Ok(_) => Ok((info, None)),
        }
    }
    .await;
    match outcome {
        Ok((info, auth)) => {
            if let Some(message) = auth {
                report.status = "needs_authentication";
                report.error = Some(format!(
                    "{message}; it offers {:?}: log in with the agent's own tool or set auth_method",
                    info.auth_methods
                ));
            }
            report.load_session = info.load_session;
            report.mcp_http = crate::mcp::servers::speaks_http(&info.capabilities);
            report.images = info
                .capabilities
                .pointer("/promptCapabilities/image")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            report.agent = Some(info);
        }
        Err(err) => {
            report.status = classify(&err);
            kill_group(pid);
            let mut tail = String::new();
            if let Some(mut s) = stderr.take() {
                use tokio::io::AsyncReadExt;
                let _ =
                    tokio::time::timeout(Duration::from_secs(1), s.read_to_string(&mut tail)).await;
            }
            let tail = tail.trim();
            report.error = Some(if tail.is_empty() {
                err.to_string()
            } else {
                format!(
                    "{err}; stderr: {}",
                    tail.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
                )
            });
        }
    }
    kill_group(pid);
    let _ = child.wait().await;
    report
}
