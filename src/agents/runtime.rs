//! One AgentInstance at run time: the agent process serving a SpecTask, and its
//! threads (one ACP session per work session). It starts and initializes the
//! process, opens, prompts and cancels threads, notices when the process dies
//! (marking its threads interrupted with the tail of its stderr), restarts it by
//! policy, samples its resource use, and stops its whole process tree.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Mutex, watch};

use super::host::{Host, SessionCtx};
use super::profile::AgentProfile;
use super::protocol::{self, AgentInfo, StopReason};
use super::rpc::{Connection, RpcError};
use super::sample::Sampler;
use super::sandbox::{self, Prepared};
use super::terminals::kill_group;
use crate::domain::ids::*;
use crate::domain::{
    AgentInstanceEvent, AgentInstanceStatus, AgentThreadEvent, AgentThreadStatus, NewEvent,
    TranscriptKind,
};
use crate::store::{InstanceReport, Store, StoreError};

/// How long spectask waits for an agent before calling it hung.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub initialize: Duration,
    /// Any request but a prompt: `session/new`, `session/load`, `authenticate`.
    pub request: Duration,
    /// One whole turn.
    pub turn: Duration,
    /// How often the process tree's CPU and memory are recorded.
    pub sample_every: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            initialize: Duration::from_secs(20),
            request: Duration::from_secs(60),
            turn: Duration::from_secs(60 * 60),
            sample_every: Duration::from_secs(5),
        }
    }
}

/// Restarts after a crash: at most `max_restarts` in a row, waiting `backoff`,
/// then twice as long each time.
#[derive(Debug, Clone, Copy)]
pub struct RestartPolicy {
    pub max_restarts: u32,
    pub backoff: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            max_restarts: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("the agent command {0:?} is not installed (not found on PATH)")]
    NotInstalled(String),
    #[error("the agent could not be started: {0}")]
    Spawn(String),
    #[error("the agent needs authentication: {0}")]
    NeedsAuthentication(String),
    #[error("{0}")]
    Agent(String),
    #[error("the agent was interrupted: {0}")]
    Interrupted(String),
    #[error("{0}")]
    Timeout(String),
    #[error(
        "the agent was not started: {0}; set the project's sandbox to best_effort or off to run it unconfined"
    )]
    Sandbox(String),
    #[error("work session {0} has no thread in this agent instance")]
    NoThread(WorkSessionId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<RpcError> for AgentError {
    fn from(err: RpcError) -> AgentError {
        match err {
            RpcError::Closed(reason) => AgentError::Interrupted(reason),
            t @ RpcError::Timeout { .. } => AgentError::Timeout(t.to_string()),
            remote => AgentError::Agent(remote.to_string()),
        }
    }
}

/// Everything an instance needs to run.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub spec_task_id: SpecTaskId,
    pub project_id: ProjectId,
    pub profile_name: String,
    pub profile: AgentProfile,
    /// The process's working directory (the task's folder in the data dir).
    pub workdir: PathBuf,
    pub timeouts: Timeouts,
    pub restart: RestartPolicy,
    /// The kernel sandbox the process (and its terminals) run in.
    pub sandbox: sandbox::Plan,
    /// Where its sessions reach spectask's agent tools (set once the server listens).
    pub mcp: crate::mcp::servers::SharedEndpoint,
}

struct Live {
    conn: Connection,
    pid: i32,
    generation: u64,
    info: AgentInfo,
}

/// The thread of a work session, as this runtime knows it.
struct ThreadRef {
    cwd: PathBuf,
    /// The ACP session id and the process generation it lives in.
    acp: Option<(String, u64)>,
    /// The last turn failed: the next one starts in a new ACP session.
    renew: bool,
}

const STDERR_TAIL_LINES: usize = 20;

/// Why nothing starts on an agent a person stopped.
pub const HELD: &str = "the agent was stopped by a person; restart it to go on";

pub struct AgentRuntime {
    config: RuntimeConfig,
    store: Arc<dyn Store>,
    host: Arc<Host>,
    instance_id: AtomicU64,
    live: Mutex<Option<Live>>,
    threads: Mutex<HashMap<WorkSessionId, ThreadRef>>,
    generation: AtomicU64,
    stopping: AtomicBool,
    /// Set when the task's run is over: `start` refuses from then on.
    retired: AtomicBool,
    restarts: AtomicU32,
    stderr_tail: Arc<std::sync::Mutex<VecDeque<String>>>,
    status: watch::Sender<AgentInstanceStatus>,
    /// `session/prompt` requests awaiting their answer.
    turns: watch::Sender<usize>,
}

/// How long a retiring agent has to end the turns it was told to cancel, so they
/// end `cancelled` with the agent's own answer rather than cut off by the stop
/// (OpenCode answers a cancel in about 100 ms).
const CANCEL_GRACE: Duration = Duration::from_secs(2);

/// Counts a turn in flight for as long as it lives, even when its future is dropped.
struct TurnInFlight<'a>(&'a watch::Sender<usize>);

impl<'a> TurnInFlight<'a> {
    fn new(turns: &'a watch::Sender<usize>) -> Self {
        turns.send_modify(|n| *n += 1);
        TurnInFlight(turns)
    }
}

impl Drop for TurnInFlight<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

fn ensure_ok<T>(result: Result<T, StoreError>) {
    if let Err(e) = result {
        tracing::error!(error = %e, "recording agent state");
    }
}

impl AgentRuntime {
    pub fn new(config: RuntimeConfig, store: Arc<dyn Store>, host: Arc<Host>) -> Arc<AgentRuntime> {
        Arc::new(AgentRuntime {
            config,
            store,
            host,
            instance_id: AtomicU64::new(0),
            live: Mutex::new(None),
            threads: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            restarts: AtomicU32::new(0),
            stderr_tail: Arc::default(),
            status: watch::channel(AgentInstanceStatus::Stopped).0,
            turns: watch::channel(0).0,
        })
    }

    pub fn host(&self) -> &Arc<Host> {
        &self.host
    }

    /// Follows the instance's status as it changes (starting, ready, crashed, …).
    pub fn watch_status(&self) -> watch::Receiver<AgentInstanceStatus> {
        self.status.subscribe()
    }

    fn instance_id(&self) -> AgentInstanceId {
        AgentInstanceId(self.instance_id.load(Ordering::SeqCst) as i64)
    }

    fn stderr_tail(&self) -> String {
        let tail = self
            .stderr_tail
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"));
        tail.unwrap_or_default()
    }

    async fn set_status(&self, event: AgentInstanceEvent, report: InstanceReport) {
        let result = self
            .store
            .transition_agent_instance(self.instance_id(), event, report, "system")
            .await;
        if let Ok(instance) = &result {
            self.status.send_replace(instance.status);
        }
        ensure_ok(result);
    }

    /// Starts the agent process if it is not running, and initializes it.
    pub async fn start(self: &Arc<Self>) -> Result<AgentInfo, AgentError> {
        let mut live = self.live.lock().await;
        // A retired runtime never starts again: a session still finishing its last
        // step after the task ended cannot bring the agent back.
        if self.retired.load(Ordering::SeqCst) {
            return Err(AgentError::Interrupted(
                "the spec task's run is over; its agent is stopped".into(),
            ));
        }
        if let Some(l) = live.as_ref().filter(|l| !l.conn.is_closed()) {
            return Ok(l.info.clone());
        }
        // A person stopped it: only a person's restart (which ends the hold) starts it.
        if let Ok(i) = self
            .store
            .get_agent_instance(self.config.spec_task_id)
            .await
            && i.held_at.is_some()
        {
            return Err(AgentError::Interrupted(HELD.into()));
        }
        let instance = self
            .store
            .start_agent_instance(
                self.config.spec_task_id,
                &self.config.profile_name,
                "system",
            )
            .await?;
        self.instance_id
            .store(instance.id.0 as u64, Ordering::SeqCst);
        self.status.send_replace(instance.status);
        // `ready` here is left from a server that is gone: its process went with it.
        if instance.status == AgentInstanceStatus::Ready {
            self.set_status(AgentInstanceEvent::Restart, InstanceReport::default())
                .await;
        }
        // A new process holds none of the old one's sessions: threads still marked
        // open (left by a server that was killed) are interrupted, so the next use
        // resumes them (`session/load` where the agent can) instead of failing.
        for thread in self
            .store
            .list_agent_threads(self.config.spec_task_id)
            .await?
        {
            if matches!(
                thread.status,
                AgentThreadStatus::Opening | AgentThreadStatus::Idle | AgentThreadStatus::Prompting
            ) {
                ensure_ok(
                    self.store
                        .transition_agent_thread(
                            thread.id,
                            AgentThreadEvent::Interrupt,
                            None,
                            Some("the agent process was replaced"),
                            "system",
                        )
                        .await,
                );
            }
        }
        let profile = &self.config.profile;
        std::fs::create_dir_all(&self.config.workdir).map_err(|e| {
            AgentError::Spawn(format!("creating {}: {e}", self.config.workdir.display()))
        })?;
        let mut command = tokio::process::Command::new(&profile.command);
        command
            .args(&profile.args)
            .envs(&profile.env)
            .current_dir(&self.config.workdir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        self.confine(&mut command).await?;
        let spawned = command.spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let err = if e.kind() == std::io::ErrorKind::NotFound {
                    AgentError::NotInstalled(profile.command.clone())
                } else {
                    AgentError::Spawn(e.to_string())
                };
                return Err(self.not_started(err).await);
            }
        };
        let pid = child.id().unwrap_or(0) as i32;
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let stderr_reader = child.stderr.take().map(|stderr| {
            let tail = self.stderr_tail.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(mut t) = tail.lock() {
                        if t.len() == STDERR_TAIL_LINES {
                            t.pop_front();
                        }
                        t.push_back(line);
                    }
                }
            })
        });
        let (stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
        let conn = Connection::start(stdout, stdin, self.host.clone());
        // Watch the process: an exit we did not ask for is a crash.
        let watcher = Arc::downgrade(self);
        let watched = conn.clone();
        tokio::spawn(async move {
            let reason = tokio::select! {
                status = child.wait() => {
                    let reason = match status {
                        Ok(s) => format!("the agent process exited ({s})"),
                        Err(e) => format!("the agent process was lost: {e}"),
                    };
                    // What it started may live on with its pipes (qwen's launcher
                    // re-executes itself as a child): end the rest of its group, and
                    // the connection with it, so its turns fail now, not at a timeout.
                    kill_group(pid);
                    watched.shut(reason.clone()).await;
                    reason
                }
                reason = watched.closed() => {
                    // A protocol violation with the process still running: end it.
                    kill_group(pid);
                    let _ = child.wait().await;
                    reason
                }
            };
            // Its last words on stderr explain the exit: read them to the end first
            // (briefly: a grandchild may still hold the pipe open).
            if let Some(reader) = stderr_reader {
                let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
            }
            if let Some(runtime) = watcher.upgrade() {
                runtime.on_exit(generation, reason).await;
            }
        });

        let init = conn
            .request(
                "initialize",
                protocol::initialize_params(),
                self.config.timeouts.initialize,
            )
            .await;
        let info = match init {
            Ok(result) => AgentInfo::from_initialize(&result),
            Err(e) => {
                kill_group(pid);
                let reason = match e {
                    RpcError::Closed(r) => format!("{r}; stderr: {}", self.stderr_tail()),
                    other => other.to_string(),
                };
                self.set_status(
                    AgentInstanceEvent::Crash,
                    InstanceReport {
                        pid: Some(pid as i64),
                        last_error: Some(reason.clone()),
                        ..Default::default()
                    },
                )
                .await;
                return Err(AgentError::Agent(format!("initialize failed: {reason}")));
            }
        };
        self.set_status(
            AgentInstanceEvent::Initialized,
            InstanceReport {
                pid: Some(pid as i64),
                agent_name: info.name.clone(),
                agent_version: info.version.clone(),
                ..Default::default()
            },
        )
        .await;
        *live = Some(Live {
            conn,
            pid,
            generation,
            info: info.clone(),
        });
        self.spawn_sampler(pid, generation);
        Ok(info)
    }

    /// Records a process that could not be started as a crash of the instance.
    async fn not_started(&self, err: AgentError) -> AgentError {
        self.set_status(
            AgentInstanceEvent::Crash,
            InstanceReport {
                last_error: Some(err.to_string()),
                ..Default::default()
            },
        )
        .await;
        err
    }

    /// Puts the next process in the sandbox (the host's terminals too), or says in
    /// an event why it runs without one; refuses when the sandbox is required and
    /// cannot be had.
    async fn confine(&self, command: &mut tokio::process::Command) -> Result<(), AgentError> {
        let prepared = match self.config.sandbox.prepare() {
            Ok(p) => p,
            Err(e) => {
                let err = AgentError::Sandbox(e.to_string());
                tracing::error!(spec_task = self.config.spec_task_id.0, error = %e, "agent not started: no sandbox");
                return Err(self.not_started(err).await);
            }
        };
        match &prepared {
            Prepared::Confined(sandbox) => {
                sandbox.confine(command);
                tracing::info!(
                    spec_task = self.config.spec_task_id.0,
                    abi = sandbox.abi(),
                    rules = sandbox.rules,
                    "agent confined by Landlock"
                );
            }
            Prepared::Unconfined(reason) => {
                sandbox::scrub_env(command);
                tracing::warn!(
                    spec_task = self.config.spec_task_id.0,
                    reason,
                    "agent runs unconfined"
                );
                let event = NewEvent {
                    project_id: Some(self.config.project_id),
                    spec_task_id: Some(self.config.spec_task_id),
                    entity: "spec_task",
                    entity_id: Some(self.config.spec_task_id.0),
                    kind: "agent.unconfined",
                    data: serde_json::json!({ "profile": self.config.profile_name, "reason": reason }),
                };
                if let Err(e) = self.store.record_event(event, "system").await {
                    tracing::error!(error = %e, "recording an unconfined agent");
                }
            }
        }
        self.host.set_sandbox(match prepared {
            Prepared::Confined(s) => Some(s),
            Prepared::Unconfined(_) => None,
        });
        Ok(())
    }

    fn spawn_sampler(self: &Arc<Self>, pid: i32, generation: u64) {
        let runtime = Arc::downgrade(self);
        let every = self.config.timeouts.sample_every;
        tokio::spawn(async move {
            let mut sampler = Sampler::new(pid);
            let mut ticker = tokio::time::interval(every);
            loop {
                ticker.tick().await;
                let Some(rt) = runtime.upgrade() else { return };
                if rt.generation.load(Ordering::SeqCst) != generation {
                    return;
                }
                let Some((cpu, rss)) = sampler.sample() else {
                    return;
                };
                // No page resident yet (an image just exec'd): not a figure to chart.
                if rss == 0 {
                    continue;
                }
                ensure_ok(
                    rt.store
                        .record_instance_sample(rt.instance_id(), cpu, rss)
                        .await,
                );
            }
        });
    }

    /// The process of `generation` is gone. Unless we stopped it, that is a crash:
    /// threads are interrupted with the reason, and the instance restarts by policy.
    /// (Boxed: a restart calls `start`, which watches the new process with this.)
    fn on_exit(
        self: Arc<Self>,
        generation: u64,
        reason: String,
    ) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(async move {
            {
                let mut live = self.live.lock().await;
                match live.as_ref() {
                    Some(l) if l.generation == generation => *live = None,
                    _ => return,
                }
            }
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            let tail = self.stderr_tail();
            let reason = if tail.is_empty() {
                reason
            } else {
                format!("{reason}; stderr: {tail}")
            };
            tracing::warn!(spec_task = self.config.spec_task_id.0, %reason, "agent crashed");
            self.set_status(
                AgentInstanceEvent::Crash,
                InstanceReport {
                    last_error: Some(reason.clone()),
                    ..Default::default()
                },
            )
            .await;
            self.interrupt_threads(&reason).await;
            let attempt = self.restarts.fetch_add(1, Ordering::SeqCst);
            if attempt < self.config.restart.max_restarts {
                let delay = self.config.restart.backoff * 2u32.saturating_pow(attempt);
                let runtime = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Err(e) = runtime.start().await {
                        tracing::warn!(error = %e, "restarting the agent failed");
                    }
                });
            }
        })
    }

    async fn interrupt_threads(&self, reason: &str) {
        let sessions: Vec<Arc<SessionCtx>> = self
            .host
            .sessions
            .lock()
            .await
            .drain()
            .map(|(_, c)| c)
            .collect();
        self.host.terminals.kill_all(None).await;
        for ctx in sessions {
            self.host.flush(&ctx).await;
            let thread = self.store.get_agent_thread(ctx.work_session_id).await;
            // Only a turn (or an opening) in progress was interrupted: a thread whose
            // work is finished gets no error in its transcript when its agent stops.
            if thread.as_ref().is_ok_and(|t| {
                matches!(
                    t.status,
                    AgentThreadStatus::Prompting | AgentThreadStatus::Opening
                )
            }) {
                self.host
                    .record(
                        &ctx,
                        TranscriptKind::Error,
                        format!("interrupted: {reason}"),
                        Value::Null,
                    )
                    .await;
            }
            if let Ok(thread) = thread
                && thread.status != AgentThreadStatus::Closed
                && thread.status != AgentThreadStatus::Interrupted
            {
                ensure_ok(
                    self.store
                        .transition_agent_thread(
                            thread.id,
                            AgentThreadEvent::Interrupt,
                            None,
                            Some(reason),
                            "system",
                        )
                        .await,
                );
            }
        }
    }

    async fn connection(self: &Arc<Self>) -> Result<(Connection, u64, AgentInfo), AgentError> {
        self.start().await?;
        let live = self.live.lock().await;
        let l = live
            .as_ref()
            .ok_or_else(|| AgentError::Interrupted("the agent stopped while starting".into()))?;
        Ok((l.conn.clone(), l.generation, l.info.clone()))
    }

    /// Opens (or re-opens after a restart) the thread of a work session, with `cwd`
    /// as its worktree. Returns the ACP session id.
    pub async fn open_thread(
        self: &Arc<Self>,
        work_session_id: WorkSessionId,
        cwd: PathBuf,
    ) -> Result<String, AgentError> {
        let (conn, generation, info) = self.connection().await?;
        let mut renew = false;
        if let Some(t) = self.threads.lock().await.get(&work_session_id) {
            if let Some((id, g)) = &t.acp
                && *g == generation
            {
                return Ok(id.clone());
            }
            renew = t.renew;
        }
        let thread = self
            .store
            .open_agent_thread(self.instance_id(), work_session_id, "system")
            .await?;
        let session = self.store.get_work_session(work_session_id).await?;
        let timeout = self.config.timeouts.request;
        let cwd_text = cwd.display().to_string();
        let mcp_servers = self.mcp_servers(&session, &info).await?;
        // A thread that lived in an earlier process is loaded when the agent can;
        // one whose turn failed is not (see `discard_failed_session`).
        let mut acp_id = None;
        if let Some(old) = thread
            .acp_session_id
            .clone()
            .filter(|_| info.load_session && !renew)
        {
            let params = json!({ "sessionId": old, "cwd": cwd_text, "mcpServers": mcp_servers });
            if conn.request("session/load", params, timeout).await.is_ok() {
                acp_id = Some(old);
            }
        }
        let acp_id = match acp_id {
            Some(id) => id,
            None => self.new_session(&conn, &cwd_text, &mcp_servers).await?,
        };
        let ctx = SessionCtx::new(
            work_session_id,
            session.spec_task_id,
            self.config.project_id,
            cwd.clone(),
        );
        self.host
            .sessions
            .lock()
            .await
            .insert(acp_id.clone(), Arc::new(ctx));
        self.store
            .transition_agent_thread(
                thread.id,
                AgentThreadEvent::Opened,
                Some(&acp_id),
                None,
                "system",
            )
            .await?;
        self.threads.lock().await.insert(
            work_session_id,
            ThreadRef {
                cwd,
                acp: Some((acp_id.clone(), generation)),
                renew: false,
            },
        );
        Ok(acp_id)
    }

    /// spectask's tool server for a session's thread, with a token issued for it
    /// alone (none for a planning session, or before the server listens).
    async fn mcp_servers(
        &self,
        session: &crate::domain::WorkSession,
        info: &AgentInfo,
    ) -> Result<Value, AgentError> {
        let Some(endpoint) = self.config.mcp.get() else {
            return Ok(json!([]));
        };
        if session.kind == crate::domain::WorkSessionKind::Planning {
            return Ok(json!([]));
        }
        Ok(crate::mcp::servers::for_session(
            self.store.as_ref(),
            endpoint,
            self.config.profile.mcp,
            crate::mcp::servers::speaks_http(&info.capabilities),
            session.id,
        )
        .await?)
    }

    async fn new_session(
        &self,
        conn: &Connection,
        cwd: &str,
        mcp_servers: &Value,
    ) -> Result<String, AgentError> {
        let timeout = self.config.timeouts.request;
        let params = json!({ "cwd": cwd, "mcpServers": mcp_servers });
        let result = match conn.request("session/new", params.clone(), timeout).await {
            Err(RpcError::Remote {
                code: -32000,
                message,
            }) => {
                let Some(method) = self.config.profile.auth_method.clone() else {
                    return Err(AgentError::NeedsAuthentication(format!(
                        "{message}; set auth_method in the agent profile {:?}",
                        self.config.profile_name
                    )));
                };
                conn.request("authenticate", json!({ "methodId": method }), timeout)
                    .await
                    .map_err(|e| AgentError::NeedsAuthentication(e.to_string()))?;
                conn.request("session/new", params, timeout).await?
            }
            other => other?,
        };
        result
            .get("sessionId")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| AgentError::Agent("session/new answered without a sessionId".into()))
    }

    /// Sends one prompt to a work session's thread and waits for the turn to end.
    /// A thread interrupted by a crash is re-opened first (loaded when possible).
    pub async fn prompt(
        self: &Arc<Self>,
        work_session_id: WorkSessionId,
        text: &str,
    ) -> Result<StopReason, AgentError> {
        self.prompt_within(work_session_id, text, self.config.timeouts.turn)
            .await
    }

    /// [`Self::prompt`] with a limit of its own (a project's turn timeout, capped by
    /// the instance's): past it the turn gets `session/cancel` and fails with
    /// [`AgentError::Timeout`], so an agent that never answers cannot hold a session.
    pub async fn prompt_within(
        self: &Arc<Self>,
        work_session_id: WorkSessionId,
        text: &str,
        limit: Duration,
    ) -> Result<StopReason, AgentError> {
        let limit = limit.min(self.config.timeouts.turn);
        let cwd = self
            .threads
            .lock()
            .await
            .get(&work_session_id)
            .map(|t| t.cwd.clone())
            .ok_or(AgentError::NoThread(work_session_id))?;
        let acp_id = self.open_thread(work_session_id, cwd).await?;
        let (conn, _, _) = self.connection().await?;
        let ctx = self
            .host
            .sessions
            .lock()
            .await
            .get(&acp_id)
            .cloned()
            .ok_or(AgentError::NoThread(work_session_id))?;
        let thread = self.store.get_agent_thread(work_session_id).await?;
        self.store
            .transition_agent_thread(thread.id, AgentThreadEvent::Prompt, None, None, "system")
            .await?;
        ctx.cancelled.send_replace(false);
        self.host
            .record(&ctx, TranscriptKind::Prompt, text.to_string(), Value::Null)
            .await;
        let in_flight = TurnInFlight::new(&self.turns);
        let result = conn
            .request(
                "session/prompt",
                protocol::prompt_params(&acp_id, text),
                limit,
            )
            .await;
        drop(in_flight);
        self.host.flush(&ctx).await;
        match result {
            Ok(result) => {
                let reason = protocol::stop_reason(&result);
                self.host
                    .record(
                        &ctx,
                        TranscriptKind::StopReason,
                        format!("{reason:?}"),
                        result,
                    )
                    .await;
                self.end_turn(thread.id).await;
                self.restarts.store(0, Ordering::SeqCst);
                Ok(reason)
            }
            Err(RpcError::Closed(reason)) => Err(AgentError::Interrupted(reason)),
            Err(e) => {
                let err = if matches!(e, RpcError::Timeout { .. }) {
                    ctx.cancelled.send_replace(true);
                    conn.notify("session/cancel", json!({ "sessionId": acp_id }));
                    AgentError::Timeout(format!("{e}: the turn was cancelled"))
                } else {
                    e.into()
                };
                self.host
                    .record(&ctx, TranscriptKind::Error, err.to_string(), Value::Null)
                    .await;
                self.discard_failed_session(work_session_id, &acp_id, thread.id, &err)
                    .await;
                Err(err)
            }
        }
    }

    /// After a turn the agent failed (an error answer, or a timeout and its
    /// cancel), its ACP session is left behind: the agent may still hold that turn
    /// (Claude Code answers the next prompt on it with the failed turn's end, at
    /// once and having done nothing). The thread is interrupted and its next turn
    /// opens a new ACP session; late updates of the old one are dropped.
    async fn discard_failed_session(
        &self,
        work_session_id: WorkSessionId,
        acp_id: &str,
        thread_id: AgentThreadId,
        err: &AgentError,
    ) {
        if let Some(t) = self.threads.lock().await.get_mut(&work_session_id) {
            t.acp = None;
            t.renew = true;
        }
        self.host.sessions.lock().await.remove(acp_id);
        let reason = format!("the turn failed: {err}");
        if self
            .store
            .transition_agent_thread(
                thread_id,
                AgentThreadEvent::Interrupt,
                None,
                Some(&reason),
                "system",
            )
            .await
            .is_err()
        {
            // Interrupted meanwhile (the agent stopped): nothing is left to end.
            self.end_turn(thread_id).await;
        }
    }

    async fn end_turn(&self, thread_id: AgentThreadId) {
        // The thread may have been interrupted meanwhile; then there is no turn to end.
        let _ = self
            .store
            .transition_agent_thread(thread_id, AgentThreadEvent::TurnEnded, None, None, "system")
            .await;
    }

    /// Cancels the running turn of a work session (`session/cancel`); a permission
    /// request it is waiting on is answered `cancelled`.
    pub async fn cancel(&self, work_session_id: WorkSessionId) -> Result<(), AgentError> {
        let acp = self
            .threads
            .lock()
            .await
            .get(&work_session_id)
            .and_then(|t| t.acp.clone())
            .ok_or(AgentError::NoThread(work_session_id))?;
        if let Some(ctx) = self.host.sessions.lock().await.get(&acp.0) {
            ctx.cancelled.send_replace(true);
        }
        if let Some(l) = self.live.lock().await.as_ref() {
            l.conn
                .notify("session/cancel", json!({ "sessionId": acp.0 }));
        }
        Ok(())
    }

    /// Sends `session/cancel` for every thread and answers their pending permission
    /// requests `cancelled`.
    pub async fn cancel_all(&self) {
        let sessions: Vec<WorkSessionId> = self.threads.lock().await.keys().copied().collect();
        for ws in sessions {
            let _ = self.cancel(ws).await;
        }
    }

    /// Stops the agent: its whole process group ends, its threads are interrupted
    /// (they resume on the next prompt), and it is not restarted.
    pub async fn stop(&self) -> Result<(), AgentError> {
        self.stopping.store(true, Ordering::SeqCst);
        let live = self.live.lock().await.take();
        if let Some(l) = live {
            // SAFETY: killpg only sends a signal to the agent's own group.
            unsafe {
                libc::killpg(l.pid, libc::SIGTERM);
            }
            if tokio::time::timeout(Duration::from_secs(2), l.conn.closed())
                .await
                .is_err()
            {
                kill_group(l.pid);
            }
            kill_group(l.pid);
            self.interrupt_threads("the agent instance was stopped")
                .await;
        }
        if self.instance_id() != AgentInstanceId(0) {
            // The record says stopped once the process is gone: a write that lost a
            // race with another change of the instance (a sample, a crash report) is
            // made again on what is there now.
            for _ in 0..5 {
                let current = self
                    .store
                    .get_agent_instance(self.config.spec_task_id)
                    .await?;
                if current.status == AgentInstanceStatus::Stopped {
                    break;
                }
                let result = self
                    .store
                    .transition_agent_instance(
                        self.instance_id(),
                        AgentInstanceEvent::Stop,
                        InstanceReport::default(),
                        "system",
                    )
                    .await;
                if let Ok(instance) = &result {
                    self.status.send_replace(instance.status);
                    break;
                }
            }
        }
        self.stopping.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Stops the agent for good: the task's run ended (finished or cancelled). The
    /// manager forgets this runtime, so a later phase gets a fresh one.
    pub async fn retire(&self) -> Result<(), AgentError> {
        self.retired.store(true, Ordering::SeqCst);
        if *self.turns.borrow() > 0 {
            self.cancel_all().await;
            let mut turns = self.turns.subscribe();
            let _ = tokio::time::timeout(CANCEL_GRACE, turns.wait_for(|n| *n == 0)).await;
        }
        self.stop().await
    }

    /// Stops and starts again, with a fresh crash budget.
    pub async fn restart(self: &Arc<Self>) -> Result<AgentInfo, AgentError> {
        self.stop().await?;
        self.restarts.store(0, Ordering::SeqCst);
        self.start().await
    }

    /// The process id of the running agent, if any.
    pub async fn pid(&self) -> Option<i32> {
        self.live.lock().await.as_ref().map(|l| l.pid)
    }
}
