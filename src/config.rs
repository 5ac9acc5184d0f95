//! Configuration: flags over `SPECTASK_*` environment variables (both handled by
//! clap) over `spectask.toml` in the data dir over defaults.

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use anyhow::Context;
use serde::Deserialize;

use crate::agents::profile::{AgentProfile, DEFAULT_PROFILE};
use crate::agents::runtime::{RestartPolicy, Timeouts};

pub const DEFAULT_BIND: &str = "127.0.0.1:7420";
pub const CONFIG_FILE: &str = "spectask.toml";
/// Where `serve` writes the admin token for the CLI (mode 0600).
pub const TOKEN_FILE: &str = "token";
/// Where `serve` writes the URL it listens on, so the CLI can find it.
pub const URL_FILE: &str = "url";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `spectask.toml`. Every key is optional; unknown keys are an error so a typo is
/// not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub bind: Option<String>,
    pub database_url: Option<String>,
    pub log_format: Option<LogFormat>,
    /// The server URL the CLI talks to.
    pub url: Option<String>,
    /// The agent profile of a SpecTask that names none (default `claude`).
    pub default_agent: Option<String>,
    /// Agent profiles: `[agents.NAME]` with `command`, `args`, `env`, `auth_method`.
    #[serde(default)]
    pub agents: BTreeMap<String, AgentProfile>,
}

impl FileConfig {
    pub fn load(data_dir: &Path) -> anyhow::Result<FileConfig> {
        let path = data_dir.join(CONFIG_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("reading {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileConfig::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
}

/// The platform's data dir, e.g. `~/.local/share/spectask` on Linux.
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .or_else(|| dirs::home_dir().map(|h| h.join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("spectask")
}

/// What `spectask serve` runs with, once every source is merged.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub bind: String,
    pub data_dir: PathBuf,
    /// `None`: the embedded SQLite file in the data dir.
    pub database_url: Option<String>,
    pub agent_profiles: BTreeMap<String, AgentProfile>,
    pub default_agent: String,
    pub agent_timeouts: Timeouts,
    pub agent_restart: RestartPolicy,
    /// Run the orchestrator's background loops (planning). Tests of the API alone
    /// turn them off so nothing moves tasks under them.
    pub background: bool,
    pub web: WebSettings,
    pub webhooks: WebhookSettings,
    /// The `spectask` executable agents start for the stdio transport of their tools
    /// (`spectask mcp`); by default this process's own. Tests that run the server
    /// inside a test binary name the real one.
    pub exe: Option<PathBuf>,
    /// Run as one replica of a cluster on PostgreSQL (`serve --cluster`): work is
    /// split by task leases. `None`: this server runs every task's work.
    pub cluster: Option<ClusterSettings>,
}

/// One replica of a cluster: who it is, how long its leases last, how much it takes.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// Stable across restarts (kept in the data dir), so a replica that comes back
    /// takes its own tasks again at once.
    pub replica_id: String,
    /// A lease not renewed for this long may be taken by another replica.
    pub lease_ttl: std::time::Duration,
    /// The most spec tasks (so agent processes) it runs at once.
    pub max_agents: usize,
}

pub const DEFAULT_LEASE_TTL_MS: u64 = 15_000;
pub const DEFAULT_MAX_AGENTS: usize = 8;
const REPLICA_ID_FILE: &str = "replica-id";

/// This data dir's replica id: made once (host name and a random suffix) and kept.
pub fn replica_id(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join(REPLICA_ID_FILE);
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if valid_replica_id(id) {
            return Ok(id.to_string());
        }
    }
    std::fs::create_dir_all(data_dir)?;
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(32)
        .collect();
    let suffix = format!("{:08x}", rand::random::<u32>());
    let id = if host.is_empty() {
        format!("replica-{suffix}")
    } else {
        format!("{host}-{suffix}")
    };
    std::fs::write(&path, format!("{id}\n"))?;
    Ok(id)
}

/// A replica id is 1–64 letters, digits, `-`, `_` or `.`.
pub fn valid_replica_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Sending notifications to webhooks.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// How long one attempt may take (env `SPECTASK_WEBHOOK_TIMEOUT_MS`).
    pub timeout: std::time::Duration,
    /// The wait after the first failed attempt, doubled after each further one
    /// (env `SPECTASK_WEBHOOK_BACKOFF_MS`).
    pub backoff: std::time::Duration,
    /// Attempts before a delivery is given up as failed (env `SPECTASK_WEBHOOK_ATTEMPTS`).
    pub max_attempts: i64,
    /// The dashboard's address as receivers should see it, for the links in payloads
    /// (env `SPECTASK_PUBLIC_URL`); by default the address the server listens on.
    pub public_url: Option<String>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            timeout: std::time::Duration::from_secs(10),
            backoff: std::time::Duration::from_secs(2),
            max_attempts: 8,
            public_url: None,
        }
    }
}

impl WebhookSettings {
    /// The defaults, with what the environment overrides.
    pub fn from_env() -> anyhow::Result<WebhookSettings> {
        let mut s = WebhookSettings::default();
        if let Some(ms) = env_number(
            "SPECTASK_WEBHOOK_TIMEOUT_MS",
            |ms: &u64| *ms >= 10,
            "milliseconds, at least 10",
        )? {
            s.timeout = std::time::Duration::from_millis(ms);
        }
        if let Some(ms) = env_number(
            "SPECTASK_WEBHOOK_BACKOFF_MS",
            |ms: &u64| *ms >= 1,
            "milliseconds, at least 1",
        )? {
            s.backoff = std::time::Duration::from_millis(ms);
        }
        if let Some(n) = env_number(
            "SPECTASK_WEBHOOK_ATTEMPTS",
            |n: &i64| (1..=100).contains(n),
            "a number of attempts from 1 to 100",
        )? {
            s.max_attempts = n;
        }
        if let Ok(url) = std::env::var("SPECTASK_PUBLIC_URL") {
            let url = url.trim_end_matches('/').to_string();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                anyhow::bail!("SPECTASK_PUBLIC_URL: an http:// or https:// URL, not {url:?}");
            }
            s.public_url = Some(url);
        }
        Ok(s)
    }
}

/// Browser sign-in and the live event stream.
#[derive(Debug, Clone, Copy)]
pub struct WebSettings {
    /// How long a browser stays signed in (env `SPECTASK_SESSION_TTL_SECS`).
    pub session_ttl: std::time::Duration,
    /// How long a sign-in link works, once.
    pub link_ttl: std::time::Duration,
    /// Events a WebSocket client may fall behind the newest before it is told to
    /// reconnect (env `SPECTASK_WS_BUFFER`).
    pub ws_buffer: usize,
    /// How often the server pings each WebSocket; two missed pongs close it.
    pub ws_heartbeat: std::time::Duration,
    /// The kernel's send buffer per connection, in bytes (env `SPECTASK_SOCKET_SNDBUF`);
    /// `None` leaves it to the kernel's autotuning. A small one makes a client that stops
    /// reading fall behind, and be told so, sooner.
    pub socket_send_buffer: Option<u32>,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            session_ttl: std::time::Duration::from_secs(7 * 24 * 3600),
            link_ttl: std::time::Duration::from_secs(3600),
            ws_buffer: 1024,
            ws_heartbeat: std::time::Duration::from_secs(20),
            socket_send_buffer: None,
        }
    }
}

impl WebSettings {
    /// The defaults, with what the environment overrides.
    pub fn from_env() -> anyhow::Result<WebSettings> {
        let mut web = WebSettings::default();
        if let Some(secs) = env_number(
            "SPECTASK_SESSION_TTL_SECS",
            |s: &u64| *s > 0,
            "a number of seconds above 0",
        )? {
            web.session_ttl = std::time::Duration::from_secs(secs);
        }
        if let Some(n) = env_number(
            "SPECTASK_WS_BUFFER",
            |n| (1..=1_000_000).contains(n),
            "a number of events from 1 to 1000000",
        )? {
            web.ws_buffer = n;
        }
        if let Some(ms) = env_number(
            "SPECTASK_WS_HEARTBEAT_MS",
            |ms: &u64| *ms >= 10,
            "milliseconds, at least 10",
        )? {
            web.ws_heartbeat = std::time::Duration::from_millis(ms);
        }
        if let Some(bytes) = env_number(
            "SPECTASK_SOCKET_SNDBUF",
            |b: &u32| *b >= 4096,
            "bytes, at least 4096",
        )? {
            web.socket_send_buffer = Some(bytes);
        }
        Ok(web)
    }
}

/// The number in environment variable `name`, if it is set; an error naming `what`
/// it must be when it does not parse or `valid` refuses it.
fn env_number<T: std::str::FromStr>(
    name: &str,
    valid: impl Fn(&T) -> bool,
    what: &str,
) -> anyhow::Result<Option<T>> {
    let Ok(v) = std::env::var(name) else {
        return Ok(None);
    };
    match v.parse::<T>() {
        Ok(n) if valid(&n) => Ok(Some(n)),
        _ => anyhow::bail!("{name}: {what}, not {v:?}"),
    }
}

impl ServeConfig {
    /// A config with defaults for everything but where it listens and keeps data.
    pub fn new(bind: &str, data_dir: PathBuf) -> ServeConfig {
        ServeConfig {
            bind: bind.to_string(),
            data_dir,
            database_url: None,
            agent_profiles: BTreeMap::new(),
            default_agent: DEFAULT_PROFILE.to_string(),
            agent_timeouts: Timeouts::default(),
            agent_restart: RestartPolicy::default(),
            background: true,
            web: WebSettings::default(),
            webhooks: WebhookSettings::default(),
            exe: None,
            cluster: None,
        }
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("spectask.db").display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_config_reads_and_rejects_typos() {
        let dir = tempfile::tempdir().unwrap();
        assert!(FileConfig::load(dir.path()).unwrap().bind.is_none());
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "bind = \"0.0.0.0:9000\"\nlog_format = \"json\"\n",
        )
        .unwrap();
        let c = FileConfig::load(dir.path()).unwrap();
        assert_eq!(c.bind.as_deref(), Some("0.0.0.0:9000"));
        assert_eq!(c.log_format, Some(LogFormat::Json));
        std::fs::write(dir.path().join(CONFIG_FILE), "bnid = \"x\"\n").unwrap();
        let err = FileConfig::load(dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("bnid"), "{err:#}");
    }
}
