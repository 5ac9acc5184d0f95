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
}

impl AgentProfile {
    pub fn new(command: &str, args: &[&str]) -> AgentProfile {
        AgentProfile {
            command: command.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: BTreeMap::new(),
            auth_method: None,
        }
    }
}

/// The profile used when a SpecTask names none.
pub const DEFAULT_PROFILE: &str = "claude";

/// The ACP agents spectask knows how to start out of the box.
pub fn builtin_profiles() -> BTreeMap<String, AgentProfile> {
    [
        ("claude", AgentProfile::new("claude-agent-acp", &[])),
        ("gemini", AgentProfile::new("gemini", &["--acp"])),
        ("codex", AgentProfile::new("codex-acp", &[])),
        ("opencode", AgentProfile::new("opencode", &["acp"])),
        ("goose", AgentProfile::new("goose", &["acp"])),
        ("qwen", AgentProfile::new("qwen", &["--acp"])),
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
