//! A Project: a local git repository spectask works on, with its settings.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ids::*;
use super::lifecycle::status_enum;

status_enum!(
    /// How an agent's `session/request_permission` is answered.
    PermissionPolicy {
        /// Allow every edit and command: the agent sandbox confines what they can
        /// touch (see `sandbox`). A request whose locations lie outside the
        /// session's worktree is still refused.
        Auto => "auto",
        /// Wait for a person to answer through the API.
        Ask => "ask",
        /// Refuse every request.
        Deny => "deny",
    }
);

// The macro derives a fixed set of traits, so Default is written by hand.
#[allow(clippy::derivable_impls)]
impl Default for PermissionPolicy {
    fn default() -> Self {
        PermissionPolicy::Auto
    }
}

status_enum!(
    /// Whether agents run in the kernel sandbox (Landlock): writes only inside
    /// their spec task's folder, no reads of spectask's data dir.
    SandboxMode {
        /// Agents start only confined; where the kernel cannot confine them, they
        /// do not start and the agent reports why.
        Required => "required",
        /// Confined where the kernel can; elsewhere they run unconfined and an
        /// `agent.unconfined` event says so.
        BestEffort => "best_effort",
        /// Never confined (an `agent.unconfined` event says so at each start).
        Off => "off",
    }
);

#[allow(clippy::derivable_impls)]
impl Default for SandboxMode {
    fn default() -> Self {
        SandboxMode::Required
    }
}

status_enum!(
    /// What happens when a session's branch conflicts with the task branch.
    ConflictPolicy {
        /// A conflict-fixing session resolves it in the session's worktree.
        Fix => "fix",
        /// The session waits, `conflicted`, for a person to resolve it and retry.
        Wait => "wait",
    }
);

status_enum!(
    /// What a session whose turn ended with no change to merge gets.
    EmptySessionPolicy {
        /// It completes with nothing merged: `tasks.md` is ticked, its history
        /// written, its dependents start.
        Done => "done",
        /// It fails with the reason "made no change", for a person to skip (accept it)
        /// or retry; its dependents wait.
        Review => "review",
    }
);

#[allow(clippy::derivable_impls)]
impl Default for EmptySessionPolicy {
    fn default() -> Self {
        EmptySessionPolicy::Done
    }
}

#[allow(clippy::derivable_impls)]
impl Default for ConflictPolicy {
    fn default() -> Self {
        ConflictPolicy::Fix
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Project {
    #[schema(value_type = i64)]
    pub id: ProjectId,
    pub name: String,
    /// Absolute path of the repository's top-level directory.
    pub path: String,
    #[serde(flatten)]
    pub settings: ProjectSettings,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProjectSettings {
    /// The branch task branches are cut from.
    pub base_branch: String,
    /// Where specs live in the repository, relative to its root.
    pub spec_folder: String,
    /// Run in a session's worktree before its work is merged, if set.
    pub verification_command: Option<String>,
    /// At most this many tasks plan at once; more wait in `planning_queued`.
    pub planning_wip_limit: Option<i64>,
    /// At most this many tasks implement at once; more wait in `implementation_queued`.
    pub implementation_wip_limit: Option<i64>,
    /// Default number of work sessions one task runs in parallel.
    pub max_parallel_sessions: i64,
    /// How agents' permission requests are answered (default `auto`).
    #[serde(default)]
    pub permission_policy: PermissionPolicy,
    /// What a merge conflict gets (default `fix`).
    #[serde(default)]
    pub conflict_policy: ConflictPolicy,
    /// Whether a task whose plan is all merged waits in `implementation_review`
    /// (default) or goes straight to `done`.
    #[serde(default = "yes")]
    pub review_implementation: bool,
    /// Attempts a session gets when its agent crashes or its thread is interrupted
    /// before it fails (default 2).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: i64,
    /// What a session that changed nothing gets (default `done`).
    #[serde(default)]
    pub empty_session: EmptySessionPolicy,
    /// Seconds a turn may take before it is cancelled and counts as a failed attempt
    /// (an agent that never answers).
    #[serde(default = "default_turn_timeout")]
    pub turn_timeout_secs: i64,
    /// Seconds the verification command may run before it counts as failed.
    #[serde(default = "default_verify_timeout")]
    pub verify_timeout_secs: i64,
    /// Whether agents run confined by the kernel (default `required`).
    #[serde(default)]
    pub sandbox: SandboxMode,
    /// How many sessions the agents of one spec task may spawn with their
    /// `spawn_session` tool (default 10), so a looping agent cannot fork without end.
    #[serde(default = "default_max_spawned")]
    pub max_spawned_sessions: i64,
}

fn default_max_spawned() -> i64 {
    DEFAULT_MAX_SPAWNED_SESSIONS
}

pub const DEFAULT_MAX_SPAWNED_SESSIONS: i64 = 10;
pub const MAX_SPAWNED_SESSIONS_CEILING: i64 = 100;
/// How deep spawned sessions may nest under the session that spawned the first.
pub const MAX_SPAWN_DEPTH: usize = 3;

fn default_turn_timeout() -> i64 {
    DEFAULT_TURN_TIMEOUT_SECS
}

fn default_verify_timeout() -> i64 {
    DEFAULT_VERIFY_TIMEOUT_SECS
}

pub const DEFAULT_TURN_TIMEOUT_SECS: i64 = 1800;
pub const DEFAULT_VERIFY_TIMEOUT_SECS: i64 = 600;
/// A day: the longest a turn or a verification may be allowed to take.
pub const TIMEOUT_CEILING_SECS: i64 = 86_400;

fn yes() -> bool {
    true
}

fn default_max_attempts() -> i64 {
    DEFAULT_MAX_ATTEMPTS
}

pub const DEFAULT_MAX_ATTEMPTS: i64 = 2;
pub const MAX_ATTEMPTS_CEILING: i64 = 10;

impl Default for ProjectSettings {
    /// What a project gets when its registration says nothing else.
    fn default() -> Self {
        ProjectSettings {
            base_branch: "main".into(),
            spec_folder: DEFAULT_SPEC_FOLDER.into(),
            verification_command: None,
            planning_wip_limit: None,
            implementation_wip_limit: None,
            max_parallel_sessions: DEFAULT_MAX_PARALLEL_SESSIONS,
            permission_policy: PermissionPolicy::default(),
            conflict_policy: ConflictPolicy::default(),
            review_implementation: true,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            empty_session: EmptySessionPolicy::default(),
            turn_timeout_secs: DEFAULT_TURN_TIMEOUT_SECS,
            verify_timeout_secs: DEFAULT_VERIFY_TIMEOUT_SECS,
            sandbox: SandboxMode::default(),
            max_spawned_sessions: DEFAULT_MAX_SPAWNED_SESSIONS,
        }
    }
}

pub const DEFAULT_SPEC_FOLDER: &str = "specs";
pub const DEFAULT_MAX_PARALLEL_SESSIONS: i64 = 3;
pub const MAX_PARALLEL_SESSIONS_CEILING: i64 = 64;

/// A change to some of a project's settings. `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectSettingsPatch {
    /// Not blank.
    pub name: Option<String>,
    /// A valid git branch name (`git check-ref-format --branch`).
    pub base_branch: Option<String>,
    /// A relative folder inside the repository, without `..`.
    pub spec_folder: Option<String>,
    /// `null` or blank: none.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub verification_command: Option<Option<String>>,
    /// At least 1; `null`: no limit.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>, minimum = 1)]
    pub planning_wip_limit: Option<Option<i64>>,
    /// At least 1; `null`: no limit.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>, minimum = 1)]
    pub implementation_wip_limit: Option<Option<i64>>,
    #[schema(minimum = 1, maximum = 64)]
    pub max_parallel_sessions: Option<i64>,
    pub permission_policy: Option<PermissionPolicy>,
    pub conflict_policy: Option<ConflictPolicy>,
    pub review_implementation: Option<bool>,
    #[schema(minimum = 1, maximum = 10)]
    pub max_attempts: Option<i64>,
    pub empty_session: Option<EmptySessionPolicy>,
    #[schema(minimum = 1, maximum = 86400)]
    pub turn_timeout_secs: Option<i64>,
    #[schema(minimum = 1, maximum = 86400)]
    pub verify_timeout_secs: Option<i64>,
    pub sandbox: Option<SandboxMode>,
    #[schema(minimum = 0, maximum = 100)]
    pub max_spawned_sessions: Option<i64>,
}

/// Distinguishes a field set to `null` (clear it) from a field left out (keep it).
fn double_option<'de, T, D>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// A setting a person gave that spectask cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidSetting {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> InvalidSetting {
    InvalidSetting {
        field,
        message: message.into(),
    }
}

impl ProjectSettings {
    /// Applies a patch and checks the result; on error `self` is unchanged.
    pub fn patched(&self, patch: &ProjectSettingsPatch) -> Result<ProjectSettings, InvalidSetting> {
        let mut next = self.clone();
        if let Some(b) = &patch.base_branch {
            next.base_branch = b.clone();
        }
        if let Some(f) = &patch.spec_folder {
            next.spec_folder = f.clone();
        }
        if let Some(v) = &patch.verification_command {
            next.verification_command = v.clone().filter(|c| !c.trim().is_empty());
        }
        if let Some(v) = patch.planning_wip_limit {
            next.planning_wip_limit = v;
        }
        if let Some(v) = patch.implementation_wip_limit {
            next.implementation_wip_limit = v;
        }
        if let Some(v) = patch.max_parallel_sessions {
            next.max_parallel_sessions = v;
        }
        if let Some(v) = patch.permission_policy {
            next.permission_policy = v;
        }
        if let Some(v) = patch.conflict_policy {
            next.conflict_policy = v;
        }
        if let Some(v) = patch.review_implementation {
            next.review_implementation = v;
        }
        if let Some(v) = patch.max_attempts {
            next.max_attempts = v;
        }
        if let Some(v) = patch.empty_session {
            next.empty_session = v;
        }
        if let Some(v) = patch.turn_timeout_secs {
            next.turn_timeout_secs = v;
        }
        if let Some(v) = patch.verify_timeout_secs {
            next.verify_timeout_secs = v;
        }
        if let Some(v) = patch.sandbox {
            next.sandbox = v;
        }
        if let Some(v) = patch.max_spawned_sessions {
            next.max_spawned_sessions = v;
        }
        next.validate()?;
        Ok(next)
    }

    pub fn validate(&self) -> Result<(), InvalidSetting> {
        validate_branch_name(&self.base_branch).map_err(|m| invalid("base_branch", m))?;
        validate_relative_folder(&self.spec_folder).map_err(|m| invalid("spec_folder", m))?;
        for (field, limit) in [
            ("planning_wip_limit", self.planning_wip_limit),
            ("implementation_wip_limit", self.implementation_wip_limit),
        ] {
            if limit.is_some_and(|l| l < 1) {
                return Err(invalid(field, "must be at least 1 (or null for no limit)"));
            }
        }
        if !(1..=MAX_PARALLEL_SESSIONS_CEILING).contains(&self.max_parallel_sessions) {
            return Err(invalid(
                "max_parallel_sessions",
                format!("must be between 1 and {MAX_PARALLEL_SESSIONS_CEILING}"),
            ));
        }
        if !(1..=MAX_ATTEMPTS_CEILING).contains(&self.max_attempts) {
            return Err(invalid(
                "max_attempts",
                format!("must be between 1 and {MAX_ATTEMPTS_CEILING}"),
            ));
        }
        if !(0..=MAX_SPAWNED_SESSIONS_CEILING).contains(&self.max_spawned_sessions) {
            return Err(invalid(
                "max_spawned_sessions",
                format!("must be between 0 and {MAX_SPAWNED_SESSIONS_CEILING}"),
            ));
        }
        for (field, secs) in [
            ("turn_timeout_secs", self.turn_timeout_secs),
            ("verify_timeout_secs", self.verify_timeout_secs),
        ] {
            if !(1..=TIMEOUT_CEILING_SECS).contains(&secs) {
                return Err(invalid(
                    field,
                    format!("must be between 1 and {TIMEOUT_CEILING_SECS} seconds"),
                ));
            }
        }
        Ok(())
    }
}

/// The rules of `git check-ref-format --branch`, checked without running git so bad
/// input is refused before anything touches the repository.
pub fn validate_branch_name(name: &str) -> Result<(), String> {
    let bad = name.is_empty()
        || name.chars().count() > 200
        || name.starts_with(['-', '/', '.'])
        || name.ends_with(['/', '.'])
        || name.ends_with(".lock")
        || name.contains("..")
        || name.contains("//")
        || name.contains("@{")
        || name == "@"
        || name
            .split('/')
            .any(|part| part.starts_with('.') || part.ends_with(".lock"))
        || name
            .chars()
            .any(|c| c.is_control() || c == ' ' || "~^:?*[\\".contains(c));
    if bad {
        Err(format!("{name:?} is not a valid git branch name"))
    } else {
        Ok(())
    }
}

/// A folder inside the repository: relative, no `..`, not empty, not in `.git`
/// (git never commits there).
pub fn validate_relative_folder(path: &str) -> Result<(), String> {
    let p = std::path::Path::new(path);
    let ok = !path.trim().is_empty()
        && p.is_relative()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(n) if n != ".git"));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{path:?} must be a relative folder inside the repository, without `..`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ProjectSettings {
        ProjectSettings {
            base_branch: "main".into(),
            spec_folder: "specs".into(),
            verification_command: None,
            planning_wip_limit: None,
            implementation_wip_limit: None,
            max_parallel_sessions: 3,
            permission_policy: PermissionPolicy::Auto,
            ..Default::default()
        }
    }

    #[test]
    fn patch_applies_and_clears() {
        let mut s = settings();
        s.verification_command = Some("cargo test".into());
        let patch: ProjectSettingsPatch = serde_json::from_str(
            r#"{"verification_command": null, "planning_wip_limit": 2, "spec_folder": ".kiro/specs"}"#,
        )
        .unwrap();
        let next = s.patched(&patch).unwrap();
        assert_eq!(next.verification_command, None);
        assert_eq!(next.planning_wip_limit, Some(2));
        assert_eq!(next.spec_folder, ".kiro/specs");
    }

    #[test]
    fn bad_settings_are_refused() {
        let s = settings();
        for (json, field) in [
            (r#"{"base_branch": "bad..name"}"#, "base_branch"),
            (r#"{"base_branch": "has space"}"#, "base_branch"),
            (r#"{"spec_folder": "../outside"}"#, "spec_folder"),
            (r#"{"spec_folder": "/abs"}"#, "spec_folder"),
            (r#"{"spec_folder": "a/.git"}"#, "spec_folder"),
            (r#"{"spec_folder": ".git/specs"}"#, "spec_folder"),
            (r#"{"planning_wip_limit": 0}"#, "planning_wip_limit"),
            (r#"{"turn_timeout_secs": 0}"#, "turn_timeout_secs"),
            (r#"{"verify_timeout_secs": 100000}"#, "verify_timeout_secs"),
            (r#"{"max_parallel_sessions": 0}"#, "max_parallel_sessions"),
            (
                r#"{"max_parallel_sessions": 1000}"#,
                "max_parallel_sessions",
            ),
        ] {
            let patch: ProjectSettingsPatch = serde_json::from_str(json).unwrap();
            assert_eq!(s.patched(&patch).unwrap_err().field, field, "{json}");
        }
        assert!(serde_json::from_str::<ProjectSettingsPatch>(r#"{"bogus": 1}"#).is_err());
    }

    #[test]
    fn branch_names() {
        for ok in ["main", "release/1.2", "feature_x"] {
            assert!(validate_branch_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "-x", "a..b", "a b", "x.lock", "a/.b", "a:b", "a//b", "@",
        ] {
            assert!(validate_branch_name(bad).is_err(), "{bad}");
        }
    }
}
