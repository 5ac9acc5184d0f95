//! The real agents' profiles and the scripted model endpoint they talk to, shared
//! by tests/real_agents.rs and benches/real_agent_overhead.rs.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

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
