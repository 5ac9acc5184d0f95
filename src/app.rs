//! Startup you can test: [`build`] turns a config into an [`App`] (data dir, store,
//! migrations, admin token, router) and [`App::run`] serves it on a listener until a
//! shutdown future resolves. Tests build apps on port 0 with fresh databases.

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::agents::manager::{AgentManager, AgentSettings};
use crate::agents::sandbox;
use crate::api::{self, AppState};
use crate::auth::{generate_token, hash_token};
use crate::config::{ServeConfig, TOKEN_FILE};
use crate::orchestrator::cluster::Cluster;
use crate::orchestrator::implementation::Implementer;
use crate::orchestrator::planning::Planner;
use crate::orchestrator::review::Reviewer;
use crate::orchestrator::webhooks::Notifier;
use crate::store::{self, Store};

pub struct App {
    store: Arc<dyn Store>,
    agents: Arc<AgentManager>,
    planner: Arc<Planner>,
    implementer: Arc<Implementer>,
    cluster: Option<Arc<Cluster>>,
    background: bool,
    router: axum::Router,
    token_file: PathBuf,
    state: AppState,
    hub_task: tokio::task::JoinHandle<()>,
    shutdown: tokio::sync::watch::Sender<bool>,
    webhooks: crate::config::WebhookSettings,
    exe: Option<PathBuf>,
}

pub async fn build(config: &ServeConfig) -> anyhow::Result<App> {
    create_private_dir(&config.data_dir)?;
    // Agents must not read this process's memory or environment (see the sandbox).
    sandbox::protect_server();
    match sandbox::support() {
        sandbox::Support::Landlock(abi) => {
            tracing::info!(abi, "agents run confined by Landlock")
        }
        sandbox::Support::Unsupported(why) => tracing::warn!(
            reason = why,
            "agents cannot be confined here: projects with sandbox = \"required\" (the default) will not start them"
        ),
    }
    let store: Arc<dyn Store> = Arc::new(store::connect(&config.database_url()).await?);
    let token_file = config.data_dir.join(TOKEN_FILE);
    ensure_admin_token(store.as_ref(), &token_file).await?;
    let settings = AgentSettings {
        profiles: config.agent_profiles.clone(),
        default_profile: config.default_agent.clone(),
        tasks_dir: config.data_dir.join("tasks"),
        timeouts: config.agent_timeouts,
        restart: config.agent_restart,
    };
    let agents = Arc::new(AgentManager::new(store.clone(), settings));
    let tasks_dir = config.data_dir.join("tasks");
    let cluster = match &config.cluster {
        Some(settings) => {
            if !config.database_url().starts_with("postgres") {
                anyhow::bail!(
                    "--cluster needs PostgreSQL (--database-url postgres://…): replicas share its database"
                );
            }
            Some(Cluster::new(
                store.clone(),
                agents.clone(),
                settings.clone(),
            ))
        }
        // Alone on its database, no agent of ours survived the last process: what
        // the database says runs is reconciled now. (A replica does it per task it
        // takes: the others' agents are alive.)
        None => {
            agents
                .reconcile()
                .await
                .context("reconciling agent state")?;
            None
        }
    };
    let planner = Planner::new(store.clone(), agents.clone(), tasks_dir.clone());
    let implementer = Implementer::new(store.clone(), agents.clone(), tasks_dir.clone());
    let reviewer = Arc::new(Reviewer::new(store.clone(), tasks_dir.clone()));
    let (hub, hub_task) = api::ws::EventHub::start(store.clone(), config.web.ws_buffer);
    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    let loops = Arc::new(api::ready::Loops::default());
    loops.watch("event_hub", &hub_task);
    let state = AppState {
        store: store.clone(),
        agents: agents.clone(),
        reviewer,
        implementer: implementer.clone(),
        tasks_dir,
        web: config.web,
        hub,
        shutdown: shutdown_rx,
        metrics: Default::default(),
        loops,
        cluster: cluster.clone(),
    };
    let router = api::router(state.clone());
    Ok(App {
        exe: config.exe.clone(),
        store,
        agents,
        planner,
        implementer,
        cluster,
        background: config.background,
        router,
        token_file,
        state,
        hub_task,
        shutdown,
        webhooks: config.webhooks.clone(),
    })
}

impl App {
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    pub fn agents(&self) -> Arc<AgentManager> {
        self.agents.clone()
    }

    pub fn token_file(&self) -> &Path {
        &self.token_file
    }

    pub fn planner(&self) -> Arc<Planner> {
        self.planner.clone()
    }

    pub fn implementer(&self) -> Arc<Implementer> {
        self.implementer.clone()
    }

    /// A new one-time link that signs a browser in as the admin token: the path
    /// (`/sign-in#code=…`) to append to the server's URL.
    pub async fn sign_in_link(&self) -> anyhow::Result<String> {
        let token = std::fs::read_to_string(&self.token_file).context("reading the admin token")?;
        let admin = self
            .store
            .find_active_token(&hash_token(token.trim()))
            .await?
            .context("the admin token is not active")?;
        let link = api::make_link(&self.state, admin.id)
            .await
            .map_err(|e| anyhow::anyhow!("making a sign-in link: {e}"))?;
        Ok(link.path)
    }

    /// Serves until `shutdown` resolves: then stops accepting, lets requests in
    /// flight finish, stops the agents, and closes the database.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // Links in webhook payloads point at the dashboard as configured, else at
        // the address this server answers on.
        let base_url = match (&self.webhooks.public_url, listener.local_addr()) {
            (Some(url), _) => url.clone(),
            (None, Ok(addr)) => format!("http://{addr}"),
            (None, Err(_)) => String::new(),
        };
        let notifier = Notifier::new(self.store.clone(), self.webhooks.clone(), base_url);
        // Agents run on this machine: they reach the server on loopback when it
        // listens on every address.
        if let Ok(mut addr) = listener.local_addr() {
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            match self
                .exe
                .clone()
                .map(Ok)
                .unwrap_or_else(std::env::current_exe)
            {
                Ok(exe) => self.agents.set_mcp_endpoint(crate::mcp::servers::Endpoint {
                    url: format!("http://{addr}"),
                    exe,
                }),
                Err(e) => {
                    tracing::warn!(error = %e, "agents get no spectask tools: this executable's path is unknown")
                }
            }
        }
        let mut loops = Vec::new();
        if let Some(cluster) = &self.cluster {
            // Registered, and its leases taken, before the loops that work on them.
            let address = listener
                .local_addr()
                .map(|a| format!("http://{a}"))
                .unwrap_or_default();
            cluster
                .register(&address)
                .await
                .context("registering this replica")?;
            if self.background {
                if let Err(e) = cluster.run_once().await {
                    tracing::warn!(error = %e, "first cluster step");
                }
                loops.push(("cluster", cluster.spawn_loop()));
            }
        }
        loops.extend(if self.background {
            vec![
                ("planner", self.planner.spawn_loop()),
                ("implementer", self.implementer.spawn_loop()),
                ("notifier", notifier.spawn_loop()),
            ]
        } else {
            Vec::new()
        });
        // Registered before the listener serves, so `/readyz` never sees them missing.
        if let Some((_, task)) = loops.iter().find(|(n, _)| *n == "cluster") {
            self.state.loops.watch("cluster", task);
        }
        for name in ["planner", "implementer", "notifier"] {
            match loops.iter().find(|(n, _)| *n == name) {
                Some((_, task)) => self.state.loops.watch(name, task),
                None => self.state.loops.disabled(name),
            }
        }
        // WebSockets outlive the HTTP exchange that opened them: tell them to close.
        let closing = self.shutdown.clone();
        let shutdown = async move {
            shutdown.await;
            let _ = closing.send(true);
        };
        let send_buffer = self.state.web.socket_send_buffer;
        let listener = axum::serve::ListenerExt::tap_io(listener, move |tcp| {
            // Events go out as they commit: no Nagle delay.
            let _ = tcp.set_nodelay(true);
            if let Some(bytes) = send_buffer {
                set_send_buffer(tcp, bytes);
            }
        });
        axum::serve(listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP")?;
        self.hub_task.abort();
        // The loops stop before the agents and the database they use.
        for (_, l) in loops {
            l.abort();
        }
        self.implementer.close();
        self.agents.shutdown().await;
        // Its tasks go back at once: another replica need not wait for expiry.
        if let Some(cluster) = &self.cluster {
            cluster.hand_back().await;
        }
        self.store.close().await;
        Ok(())
    }
}

#[cfg(unix)]
fn set_send_buffer(tcp: &tokio::net::TcpStream, bytes: u32) {
    use std::os::fd::AsRawFd;
    let value = bytes as libc::c_int;
    // SAFETY: a valid socket fd and a c_int option value of the stated size.
    let rc = unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "setting SO_SNDBUF failed");
    }
}

#[cfg(not(unix))]
fn set_send_buffer(_tcp: &tokio::net::TcpStream, _bytes: u32) {}

/// Makes sure `<data-dir>/token` holds a token the database accepts. On first start
/// (or after the database was replaced, or the token revoked) it creates an `admin`
/// token, stores its hash and writes the token to the file, readable by its owner only.
async fn ensure_admin_token(store: &dyn Store, token_file: &Path) -> anyhow::Result<()> {
    if let Ok(existing) = std::fs::read_to_string(token_file) {
        let existing = existing.trim();
        if !existing.is_empty()
            && store
                .find_active_token(&hash_token(existing))
                .await?
                .is_some()
        {
            return Ok(());
        }
    }
    let token = generate_token();
    store
        .create_token("admin", &hash_token(&token), "system")
        .await?;
    write_private_file(token_file, &format!("{token}\n"))?;
    tracing::info!(path = %token_file.display(), "created the admin token");
    Ok(())
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("creating data dir {}", dir.display()))
}

/// Writes a file with mode 0600 through a temporary file and a rename, so a reader
/// never sees it half-written and it is never readable by others, not even briefly.
pub fn write_private_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// A future that resolves on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed
/// when this is called, not when the future is first polled, so a signal that arrives
/// right after startup is a clean shutdown rather than the default abrupt exit.
#[cfg(unix)]
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
        tracing::info!("shutting down: finishing requests in flight");
    })
}

#[cfg(not(unix))]
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    Ok(async {
        tokio::signal::ctrl_c().await.ok();
        tracing::info!("shutting down: finishing requests in flight");
    })
}
