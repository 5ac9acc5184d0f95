//! The real `spectask serve` for one run: started on port 0 on a data dir of its own,
//! SIGKILLed and started again on the same data, and a small API client.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_spectask");
const AGENT: &str = env!("CARGO_BIN_EXE_spectask-test-agent");

pub struct Server {
    child: tokio::process::Child,
    pub data: PathBuf,
    pub api: Api,
    /// `serve`'s flags beyond the data dir and the address (kept for a restart).
    args: Vec<String>,
}

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    url: String,
    token: String,
}

/// Writes the data dir's config: the scripted agent is the default.
pub fn configure(data: &Path) {
    std::fs::create_dir_all(data).unwrap();
    std::fs::write(
        data.join("spectask.toml"),
        format!("default_agent = \"test\"\n\n[agents.test]\ncommand = {AGENT:?}\n"),
    )
    .unwrap();
}

impl Server {
    pub async fn start(data: &Path) -> Result<Server, String> {
        Server::start_with(data, &[]).await
    }

    /// `serve` with more flags (e.g. a cluster replica's).
    pub async fn start_with(data: &Path, args: &[String]) -> Result<Server, String> {
        let mut child = tokio::process::Command::new(BIN)
            .args([
                "--data-dir",
                data.to_str().unwrap(),
                "serve",
                "--bind",
                "127.0.0.1:0",
            ])
            .args(args)
            .env_remove("SPECTASK_BIND")
            // The harness polls all the time: its request lines would push what the
            // orchestrator said out of the log tail a failure prints.
            .env("RUST_LOG", "spectask=info,spectask::http=warn")
            .stdout(Stdio::piped())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(data.join("server.log"))
                    .unwrap(),
            )
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("spectask is listening on ") {
                    return Some(url.to_string());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .ok_or("serve did not start")?;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let token = std::fs::read_to_string(data.join("token"))
            .map_err(|e| e.to_string())?
            .trim()
            .to_string();
        Ok(Server {
            child,
            args: args.to_vec(),
            data: data.to_path_buf(),
            api: Api {
                http: reqwest::Client::new(),
                url,
                token,
            },
        })
    }

    /// SIGKILL, then a new server on the same data.
    pub async fn crash_and_restart(&mut self) -> Result<(), String> {
        self.child.start_kill().map_err(|e| e.to_string())?;
        self.child.wait().await.map_err(|e| e.to_string())?;
        *self = Server::start_with(&self.data, &self.args).await?;
        Ok(())
    }

    /// The server's process id (for signals).
    #[allow(dead_code)]
    pub fn pid(&self) -> i32 {
        self.child.id().map_or(0, |p| p as i32)
    }

    /// SIGKILL, and the exit reaped.
    #[allow(dead_code)]
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    pub fn log(&self) -> String {
        let log = std::fs::read_to_string(self.data.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Api {
    #[allow(dead_code)]
    pub fn url(&self) -> &str {
        &self.url
    }

    #[allow(dead_code)]
    pub fn token(&self) -> &str {
        &self.token
    }

    /// A request; a 5xx or a transport error is an `Err` (an invariant violation).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), String> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}/api/v1{path}", self.url))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(30));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_server_error() {
            return Err(format!("{method} {path}: {status} {body}"));
        }
        Ok((status, body))
    }

    /// A request that must succeed.
    pub async fn ok(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let (status, body) = self.call(method.clone(), path, body).await?;
        if !status.is_success() {
            return Err(format!("{method} {path}: {status} {body}"));
        }
        Ok(body)
    }

    pub async fn get(&self, path: &str) -> Result<Value, String> {
        self.ok(Method::GET, path, None).await
    }
}
