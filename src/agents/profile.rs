//! Agent profiles: how to start an ACP agent. spectask knows the common ones; the
//! config file (`[agents.NAME]` in spectask.toml) adds or overrides them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentProfile {
    /// The program to run (looked up on PATH).
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables for the agent process.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The `authenticate` method to use when the agent asks for authentication.
    #[serde(default)]
    pub auth_method: Option<String>,
    /// What the agent may touch beyond its spec task's folder when it runs in the
    /// sandbox.
    #[serde(default)]
    pub sandbox: SandboxPaths,
    /// How the agent reaches spectask's tools (`auto`: over HTTP when it says it
    /// can, else over stdio through `spectask mcp`).
    #[serde(default)]
    pub mcp: McpTransport,
}

/// `mcp = "auto" | "http" | "stdio" | "off"` in a profile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum McpTransport {
    #[default]
    Auto,
    Http,
    Stdio,
    /// The agent gets no spectask tools.
    Off,
}

/// `[agents.NAME.sandbox]`: folders the agent writes besides its task's folder (its
/// own state and caches). `~/` is the user's home; a missing folder is made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxPaths {
    #[serde(default)]
    pub write: Vec<String>,
}

impl SandboxPaths {
    /// The folders, with `~/` expanded; relative paths (which would depend on where
    /// the server was started) are left out.
    pub fn write_dirs(&self) -> Vec<std::path::PathBuf> {
        let home = dirs::home_dir();
        self.write
            .iter()
            .filter_map(|p| match (p.strip_prefix("~/"), &home) {
                (Some(rest), Some(home)) => Some(home.join(rest)),
                (Some(_), None) => None,
                (None, _) => Some(std::path::PathBuf::from(p)).filter(|p| p.is_absolute()),
            })
            .collect()
    }
}

impl AgentProfile {
    pub fn new(command: &str, args: &[&str]) -> AgentProfile {
        AgentProfile {
            command: command.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: BTreeMap::new(),
            auth_method: None,
            sandbox: SandboxPaths::default(),
            mcp: McpTransport::default(),
        }
    }

    /// The profile with these folders (`~/` for the home) writable in the sandbox.
    pub fn writing(mut self, dirs: &[&str]) -> AgentProfile {
        self.sandbox.write = dirs.iter().map(|d| d.to_string()).collect();
        self
    }
}

/// The profile used when a SpecTask names none.
pub const DEFAULT_PROFILE: &str = "claude";

/// The ACP agents spectask knows how to start out of the box.
pub fn builtin_profiles() -> BTreeMap<String, AgentProfile> {
    [
        // Each writes its own state folder (sessions, settings, logs) and caches.
        (
            "claude",
            AgentProfile::new("claude-agent-acp", &[]).writing(&["~/.claude", "~/.cache/claude"]),
        ),
        (
            "gemini",
            AgentProfile::new("gemini", &["--acp"]).writing(&["~/.gemini", "~/.cache/gemini"]),
        ),
        (
            "codex",
            AgentProfile::new("codex-acp", &[]).writing(&["~/.codex"]),
        ),
        (
            "opencode",
            AgentProfile::new("opencode", &["acp"]).writing(&[
                "~/.config/opencode",
                "~/.local/share/opencode",
                "~/.local/state/opencode",
                "~/.cache/opencode",
            ]),
        ),
        (
            "goose",
            AgentProfile::new("goose", &["acp"]).writing(&[
                "~/.config/goose",
                "~/.local/share/goose",
                "~/.local/state/goose",
            ]),
        ),
        (
            "qwen",
            // In its default ACP mode qwen asks nothing: `default` sends its writes and
            // commands to spectask as permission requests, so the project's policy decides.
            AgentProfile::new("qwen", &["--acp", "--approval-mode", "default"])
                .writing(&["~/.qwen"]),
        ),
    ]
    .into_iter()
    .map(|(name, p)| (name.to_string(), p))
    .collect()
}

/// The built-in profiles with the configured ones laid over them.
pub fn profiles(configured: &BTreeMap<String, AgentProfile>) -> BTreeMap<String, AgentProfile> {
    let mut all = builtin_profiles();
    all.extend(configured.iter().map(|(k, v)| (k.clone(), v.clone())));
    all
}
