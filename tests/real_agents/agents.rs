//! The real agents' profiles, the scripted model endpoint they talk to, and a
//! server set up to run them, shared by tests/real_agents.rs and
//! benches/real_agent_overhead.rs (both declare `mod server`, tests/runs/server.rs).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::server::Server;

/// How a real agent is started against the endpoint at `url`, with `home` as its HOME.
pub struct Agent {
    pub name: &'static str,
    /// Files it needs in its HOME before it starts.
    pub setup: fn(home: &Path),
    /// Whether its tool calls report a command's exit status (Claude Code's do not).
    pub exit_status: bool,
    pub profile: fn(url: &str, home: &Path) -> String,
}

pub fn bin(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/agents/node_modules/.bin")
        .join(name);
    assert!(
        path.exists(),
        "{} is not installed: run scripts/install-agents",
        path.display()
    );
    path.display().to_string()
}

pub fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

pub const QWEN: Agent = Agent {
    name: "qwen",
    setup: |_| {},
    exit_status: true,
    profile: |url, home| {
        format!(
            "command = {}\nargs = [\"--acp\", \"--approval-mode\", \"default\", \"--auth-type\", \"openai\", \"--openai-base-url\", {}, \"-m\", \"scripted\"]\nenv = {{ HOME = {}, OPENAI_API_KEY = \"scripted\" }}\nsandbox = {{ write = [{}] }}\n",
            toml_str(&bin("qwen")),
            toml_str(&format!("{url}/v1")),
            toml_str(&home.display().to_string()),
            toml_str(&home.display().to_string()),
        )
    },
};

pub const CLAUDE: Agent = Agent {
    name: "claude",
    setup: |_| {},
    exit_status: false,
    profile: |url, home| {
        // IS_SANDBOX=1: as root, Claude Code refuses to start unless told it is
        // sandboxed (spectask's sandbox is what makes that true).
        // CLAUDE_CODE_MAX_RETRIES=1: its own backoff on a failing model (ten tries by
        // default, minutes apart at the end) outlasts a test's bound.
        format!(
            "command = {}\nenv = {{ HOME = {}, ANTHROPIC_BASE_URL = {}, ANTHROPIC_API_KEY = \"scripted\", IS_SANDBOX = \"1\", CLAUDE_CODE_MAX_RETRIES = \"1\", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC = \"1\", DISABLE_TELEMETRY = \"1\", DISABLE_AUTOUPDATER = \"1\", DISABLE_ERROR_REPORTING = \"1\" }}\nsandbox = {{ write = [{}] }}\n",
            toml_str(&bin("claude-agent-acp")),
            toml_str(&home.display().to_string()),
            toml_str(url),
            toml_str(&home.display().to_string()),
        )
    },
};

pub const OPENCODE: Agent = Agent {
    name: "opencode",
    exit_status: true,
    setup: |home| {
        // OpenCode installs its plugin package from npm at each start unless its
        // config folder says it is there.
        let config = home.join(".config/opencode");
        std::fs::create_dir_all(config.join("node_modules")).unwrap();
        std::fs::write(
            config.join("package.json"),
            r#"{"dependencies":{"@opencode-ai/plugin":"*"}}"#,
        )
        .unwrap();
        std::fs::write(
            config.join("package-lock.json"),
            r#"{"lockfileVersion":3,"packages":{"":{"dependencies":{"@opencode-ai/plugin":"*"}}}}"#,
        )
        .unwrap();
    },
    profile: |url, home| {
        // permission ask: its edits and commands go to spectask's policy.
        let config = json!({
            "model": "scripted/scripted", "small_model": "scripted/scripted",
            "autoupdate": false, "share": "disabled", "lsp": false, "formatter": false,
            "permission": {"edit": "ask", "bash": "ask"},
            "provider": {"scripted": {
                "npm": "@ai-sdk/openai-compatible", "name": "Scripted",
                "options": {"baseURL": format!("{url}/v1"), "apiKey": "scripted"},
                "models": {"scripted": {"name": "scripted", "tool_call": true,
                                        "limit": {"context": 128000, "output": 8192}}}}}
        });
        let h = home.display().to_string();
        format!(
            "command = {}\nargs = [\"acp\"]\nenv = {{ HOME = {}, XDG_CONFIG_HOME = {}, XDG_DATA_HOME = {}, XDG_CACHE_HOME = {}, XDG_STATE_HOME = {}, OPENCODE_DISABLE_MODELS_FETCH = \"1\", OPENCODE_DISABLE_AUTOUPDATE = \"1\", OPENCODE_DISABLE_LSP_DOWNLOAD = \"1\", OPENCODE_DISABLE_SHARE = \"1\", OPENCODE_CONFIG_CONTENT = {} }}\nsandbox = {{ write = [{}] }}\n",
            toml_str(&bin("opencode")),
            toml_str(&h),
            toml_str(&format!("{h}/.config")),
            toml_str(&format!("{h}/.local/share")),
            toml_str(&format!("{h}/.cache")),
            toml_str(&format!("{h}/.local/state")),
            toml_str(&config.to_string()),
            toml_str(&h),
        )
    },
};

/// The scripted model: a separate process speaking the model APIs.
pub struct Endpoint {
    _child: tokio::process::Child,
    pub url: String,
    pub log: PathBuf,
}

impl Endpoint {
    pub async fn start(dir: &Path, script: &Value) -> Endpoint {
        let script_path = dir.join("script.json");
        std::fs::write(&script_path, serde_json::to_vec_pretty(script).unwrap()).unwrap();
        let log = dir.join("requests.jsonl");
        let mut child = tokio::process::Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/model/endpoint.py"))
            .arg("--script")
            .arg(&script_path)
            .arg("--log")
            .arg(&log)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs the model endpoint");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the endpoint starts")
            .unwrap()
            .unwrap();
        let url = line.strip_prefix("listening on ").unwrap().to_string();
        Endpoint {
            _child: child,
            url,
            log,
        }
    }

    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// A real `spectask serve` whose default agent is `agent`, and its project.
pub struct Served {
    pub server: Server,
    pub repo: PathBuf,
    pub project: i64,
}

/// Starts `spectask serve` with its data in `dir/data`, `agent` (its HOME in
/// `dir/home`) pointed at the model at `url`, and a project with `settings` on a
/// fresh repository in `dir/repo`.
pub async fn serve(agent: &Agent, dir: &Path, url: &str, settings: Value) -> Served {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    (agent.setup)(&home);
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("spectask.toml"),
        format!(
            "default_agent = \"{0}\"\n\n[agents.{0}]\n{1}",
            agent.name,
            (agent.profile)(url, &home)
        ),
    )
    .unwrap();
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("README.md"), "# a project\n").unwrap();
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "."],
        &["commit", "-qm", "first"],
    ] {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .env("GIT_AUTHOR_NAME", "user")
            .env("GIT_AUTHOR_EMAIL", "user@example.com")
            .env("GIT_COMMITTER_NAME", "user")
            .env("GIT_COMMITTER_EMAIL", "user@example.com")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    }
    let server = Server::start(&data).await.expect("spectask serve starts");
    let project = server
        .api
        .ok(Method::POST, "/projects", Some(json!({ "path": repo })))
        .await
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    server
        .api
        .ok(
            Method::PATCH,
            &format!("/projects/{project}"),
            Some(settings),
        )
        .await
        .unwrap();
    Served {
        server,
        repo,
        project,
    }
}
