//! The terminals spectask runs for agents (`terminal/*`): commands started in the
//! session's worktree, in a process group of their own so kill and release end the
//! whole tree, with output kept up to the agent's byte limit (oldest bytes dropped).

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::sync::{Mutex, watch};

const DEFAULT_OUTPUT_LIMIT: usize = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Exit {
    code: Option<i32>,
    signal: Option<i32>,
}

impl Exit {
    fn to_json(self) -> Value {
        json!({ "exitCode": self.code, "signal": self.signal.map(signal_name) })
    }
}

fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGINT => "SIGINT".into(),
        other => format!("signal {other}"),
    }
}

struct Output {
    bytes: Vec<u8>,
    truncated: bool,
    limit: usize,
}

impl Output {
    fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend_from_slice(chunk);
        if self.bytes.len() > self.limit {
            let mut cut = self.bytes.len() - self.limit;
            // Never split a UTF-8 character.
            while cut < self.bytes.len() && (self.bytes[cut] & 0b1100_0000) == 0b1000_0000 {
                cut += 1;
            }
            self.bytes.drain(..cut);
            self.truncated = true;
        }
    }
}

struct Terminal {
    session_id: String,
    pgid: i32,
    output: Arc<Mutex<Output>>,
    exit: watch::Receiver<Option<Exit>>,
}

#[derive(Default)]
pub struct Terminals {
    next: AtomicU64,
    map: Mutex<HashMap<String, Arc<Terminal>>>,
}

pub struct CreateTerminal<'a> {
    pub session_id: &'a str,
    pub command: &'a str,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: &'a Path,
    pub output_limit: Option<usize>,
    /// The agent's sandbox: a command runs as confined as the agent asking for it.
    pub sandbox: Option<super::sandbox::Sandbox>,
}

impl Terminals {
    pub async fn create(&self, req: CreateTerminal<'_>) -> std::io::Result<String> {
        let mut cmd = tokio::process::Command::new(req.command);
        cmd.args(&req.args)
            .envs(req.env.iter().map(|(k, v)| (k, v)))
            .current_dir(req.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        match &req.sandbox {
            Some(sandbox) => sandbox.confine(&mut cmd),
            None => super::sandbox::scrub_env(&mut cmd),
        }
        let mut child = cmd.spawn()?;
        let pgid = child.id().map(|p| p as i32).unwrap_or(0);
        let output = Arc::new(Mutex::new(Output {
            bytes: Vec::new(),
            truncated: false,
            limit: req.output_limit.unwrap_or(DEFAULT_OUTPUT_LIMIT),
        }));
        let mut readers = Vec::new();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let output = output.clone();
            readers.push(tokio::spawn(async move {
                let mut stream = stream;
                let mut buf = [0u8; 8192];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    output.lock().await.push(&buf[..n]);
                }
            }));
        }
        let (exit_tx, exit) = watch::channel(None);
        tokio::spawn(async move {
            let status = child.wait().await;
            // The exit is reported once all output has been read.
            for r in readers {
                let _ = r.await;
            }
            use std::os::unix::process::ExitStatusExt;
            let exit = match status {
                Ok(s) => Exit {
                    code: s.code(),
                    signal: s.signal(),
                },
                Err(_) => Exit {
                    code: None,
                    signal: None,
                },
            };
            let _ = exit_tx.send(Some(exit));
        });
        let id = format!("term-{}", self.next.fetch_add(1, Ordering::Relaxed) + 1);
        let terminal = Arc::new(Terminal {
            session_id: req.session_id.to_string(),
            pgid,
            output,
            exit,
        });
        self.map.lock().await.insert(id.clone(), terminal);
        Ok(id)
    }

    async fn get(&self, session_id: &str, id: &str) -> Option<Arc<Terminal>> {
        let map = self.map.lock().await;
        map.get(id).filter(|t| t.session_id == session_id).cloned()
    }

    pub async fn output(&self, session_id: &str, id: &str) -> Option<Value> {
        let t = self.get(session_id, id).await?;
        let out = t.output.lock().await;
        let exit = *t.exit.borrow();
        Some(json!({
            "output": String::from_utf8_lossy(&out.bytes),
            "truncated": out.truncated,
            "exitStatus": exit.map(Exit::to_json),
        }))
    }

    pub async fn wait_for_exit(&self, session_id: &str, id: &str) -> Option<Value> {
        let t = self.get(session_id, id).await?;
        let mut rx = t.exit.clone();
        let exit = loop {
            if let Some(exit) = *rx.borrow() {
                break exit;
            }
            if rx.changed().await.is_err() {
                break Exit {
                    code: None,
                    signal: None,
                };
            }
        };
        Some(exit.to_json())
    }

    pub async fn kill(&self, session_id: &str, id: &str) -> bool {
        match self.get(session_id, id).await {
            Some(t) => {
                kill_group(t.pgid);
                true
            }
            None => false,
        }
    }

    pub async fn release(&self, session_id: &str, id: &str) -> bool {
        let removed = {
            let mut map = self.map.lock().await;
            match map.get(id) {
                Some(t) if t.session_id == session_id => map.remove(id),
                _ => None,
            }
        };
        match removed {
            Some(t) => {
                if t.exit.borrow().is_none() {
                    kill_group(t.pgid);
                }
                true
            }
            None => false,
        }
    }

    /// Ends every terminal of a session (on cancel) or of all sessions (`None`).
    pub async fn kill_all(&self, session_id: Option<&str>) {
        let mut map = self.map.lock().await;
        map.retain(|_, t| {
            let hit = session_id.is_none_or(|s| s == t.session_id);
            if hit && t.exit.borrow().is_none() {
                kill_group(t.pgid);
            }
            !hit
        });
    }
}

/// Sends SIGKILL to a whole process group.
pub fn kill_group(pgid: i32) {
    if pgid > 0 {
        // SAFETY: killpg only sends a signal; a stale group id fails with ESRCH.
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
    }
}
