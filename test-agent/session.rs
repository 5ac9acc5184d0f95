//! Sessions: their working directory, their history (replayed by `session/load`),
//! and the cancel switches of their running turns.
//!
//! With `--state-dir DIR` every session is also written to `DIR/<sessionId>.jsonl`
//! (one line for the session, then one per user prompt or agent message), so a new
//! agent process can load sessions an earlier process created.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::mcp::{Server, SessionMcp};

/// One line of a session's history.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// The first line of a state file.
    Session { cwd: PathBuf },
    /// The text of a user prompt.
    User { text: String },
    /// One agent message chunk.
    Agent { text: String },
}

struct Session {
    cwd: PathBuf,
    history: Vec<Entry>,
    /// Cancel switches of the turns running now, by turn number.
    turns: HashMap<u64, watch::Sender<bool>>,
    /// The `mcpServers` of `session/new` or the latest `session/load`, and the
    /// connection to the first (not kept in the state dir: a load brings them).
    mcp: Arc<SessionMcp>,
}

/// A started turn: what it needs to know about its session.
pub struct TurnStart {
    pub turn: u64,
    /// How many prompts this session had before this one (0 for the first).
    pub index: usize,
    pub cwd: PathBuf,
    pub cancel: Cancel,
}

/// Becomes "cancelled" when `session/cancel` names the turn's session.
#[derive(Clone)]
pub struct Cancel(watch::Receiver<bool>);

impl Cancel {
    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the turn is cancelled (never, if it is not).
    pub async fn cancelled(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(|c| *c).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

struct Inner {
    sessions: HashMap<String, Session>,
    next_session: u64,
    next_turn: u64,
}

pub struct Sessions {
    inner: Mutex<Inner>,
    state_dir: Option<PathBuf>,
}

impl Sessions {
    /// With a state dir, session numbers continue after the highest file present.
    pub fn new(state_dir: Option<PathBuf>) -> std::io::Result<Self> {
        let mut next_session = 1;
        if let Some(dir) = &state_dir {
            fs::create_dir_all(dir)?;
            for entry in fs::read_dir(dir)? {
                let name = entry?.file_name().to_string_lossy().into_owned();
                let number = name
                    .strip_prefix("sess-")
                    .and_then(|n| n.strip_suffix(".jsonl"))
                    .and_then(|n| n.parse::<u64>().ok());
                if let Some(n) = number {
                    next_session = next_session.max(n + 1);
                }
            }
        }
        Ok(Sessions {
            inner: Mutex::new(Inner {
                sessions: HashMap::new(),
                next_session,
                next_turn: 1,
            }),
            state_dir,
        })
    }

    pub fn create(&self, cwd: PathBuf, mcp_servers: Vec<Server>) -> String {
        let mut inner = self.inner.lock().unwrap();
        let id = format!("sess-{}", inner.next_session);
        inner.next_session += 1;
        self.persist(&id, &Entry::Session { cwd: cwd.clone() });
        inner.sessions.insert(
            id.clone(),
            Session {
                cwd,
                history: Vec::new(),
                turns: HashMap::new(),
                mcp: Arc::new(SessionMcp::new(mcp_servers)),
            },
        );
        id
    }

    /// The session's history, loading it from the state dir if this process has
    /// not seen it yet. A `cwd` given by the client replaces the stored one; so
    /// do `mcpServers` (a different list drops the connection to the old first
    /// server, which stops a stdio one).
    pub fn load(
        &self,
        id: &str,
        cwd: Option<PathBuf>,
        mcp_servers: Vec<Server>,
    ) -> Option<Vec<Entry>> {
        let mut inner = self.inner.lock().unwrap();
        let session = self.find(&mut inner, id)?;
        if let Some(cwd) = cwd {
            session.cwd = cwd;
        }
        if session.mcp.servers != mcp_servers {
            session.mcp = Arc::new(session.mcp.replaced(mcp_servers));
        }
        Some(session.history.clone())
    }

    /// The session's MCP side (an empty one for an unknown session).
    pub fn mcp(&self, id: &str) -> Arc<SessionMcp> {
        let inner = self.inner.lock().unwrap();
        match inner.sessions.get(id) {
            Some(session) => session.mcp.clone(),
            None => Arc::new(SessionMcp::default()),
        }
    }

    /// Records the user's prompt and registers a cancel switch for the turn.
    pub fn begin_turn(&self, id: &str, prompt: &str) -> Option<TurnStart> {
        let mut inner = self.inner.lock().unwrap();
        let turn = inner.next_turn;
        inner.next_turn += 1;
        let session = self.find(&mut inner, id)?;
        let index = session
            .history
            .iter()
            .filter(|e| matches!(e, Entry::User { .. }))
            .count();
        let (tx, rx) = watch::channel(false);
        session.turns.insert(turn, tx);
        let entry = Entry::User {
            text: prompt.to_string(),
        };
        session.history.push(entry.clone());
        let cwd = session.cwd.clone();
        self.persist(id, &entry);
        Some(TurnStart {
            turn,
            index,
            cwd,
            cancel: Cancel(rx),
        })
    }

    pub fn end_turn(&self, id: &str, turn: u64) {
        if let Some(session) = self.inner.lock().unwrap().sessions.get_mut(id) {
            session.turns.remove(&turn);
        }
    }

    /// Records one agent message chunk in the session's history.
    pub fn record_agent(&self, id: &str, text: &str) {
        let mut inner = self.inner.lock().unwrap();
        if let Some(session) = inner.sessions.get_mut(id) {
            let entry = Entry::Agent {
                text: text.to_string(),
            };
            session.history.push(entry.clone());
            self.persist(id, &entry);
        }
    }

    /// Cancels every running turn of the session; unknown sessions are ignored.
    pub fn cancel(&self, id: &str) {
        if let Some(session) = self.inner.lock().unwrap().sessions.get(id) {
            for switch in session.turns.values() {
                let _ = switch.send(true);
            }
        }
    }

    /// Cancels every running turn of every session.
    pub fn cancel_all(&self) {
        for session in self.inner.lock().unwrap().sessions.values() {
            for switch in session.turns.values() {
                let _ = switch.send(true);
            }
        }
    }

    fn find<'a>(&self, inner: &'a mut Inner, id: &str) -> Option<&'a mut Session> {
        if !inner.sessions.contains_key(id) {
            let session = self.read_state(id)?;
            inner.sessions.insert(id.to_string(), session);
        }
        inner.sessions.get_mut(id)
    }

    fn state_file(&self, id: &str) -> Option<PathBuf> {
        let safe = !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        let dir = self.state_dir.as_ref()?;
        safe.then(|| dir.join(format!("{id}.jsonl")))
    }

    fn read_state(&self, id: &str) -> Option<Session> {
        let text = fs::read_to_string(self.state_file(id)?).ok()?;
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let Ok(Entry::Session { cwd }) = serde_json::from_str(lines.next()?) else {
            eprintln!("[test-agent] state file of {id} does not start with its session line");
            return None;
        };
        let history = lines
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|e| !matches!(e, Entry::Session { .. }))
            .collect();
        Some(Session {
            cwd,
            history,
            turns: HashMap::new(),
            mcp: Arc::new(SessionMcp::default()),
        })
    }

    /// With `--state-dir`, appends the `mcpServers` a `session/new` or
    /// `session/load` gave to `DIR/<sessionId>.mcp-servers.jsonl`, as an agent's own
    /// state folder keeps its config: tests look there for the credentials it got.
    pub fn note_mcp_servers(&self, id: &str, servers: &serde_json::Value) {
        let Some(path) = self
            .state_file(id)
            .map(|p| p.with_extension("mcp-servers.jsonl"))
        else {
            return;
        };
        if let Err(e) = append_line(&path, &servers.to_string()) {
            eprintln!("[test-agent] cannot write {}: {e}", path.display());
        }
    }

    fn persist(&self, id: &str, entry: &Entry) {
        let Some(path) = self.state_file(id) else {
            return;
        };
        if let Err(e) = append_line(&path, &serde_json::to_string(entry).unwrap()) {
            eprintln!("[test-agent] cannot write {}: {e}", path.display());
        }
    }
}

fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(format!("{line}\n").as_bytes())
}
