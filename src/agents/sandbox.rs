//! The agent sandbox: the kernel (Landlock) confines an agent process, and
//! everything it starts, to writing inside its spec task's folder, its own
//! temporary folder and the state folders its profile declares; it reads and runs
//! everything else except spectask's data dir outside that task's folder (the
//! database, token files, `spectask.toml`, other tasks). Landlock only allows, so
//! "everything but the data dir" is written as every entry beside each folder on the
//! way down to it.
//!
//! A [`Sandbox`] is built in the server (paths opened, rules added to a ruleset) and
//! applied between fork and exec with two system calls (`prctl(NO_NEW_PRIVS)` and
//! `landlock_restrict_self`): nothing in the child allocates. The same sandbox is
//! applied to the terminals spectask runs for the agent.

use std::collections::HashSet;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::domain::SandboxMode;
use landlock::{
    ABI, Access, AccessFs, BitFlags, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr,
    Scope,
};

/// The oldest Landlock ABI that confines what we promise: 2 brings `REFER` (so a
/// file cannot be linked or moved out), 3 brings `TRUNCATE` (so a file outside
/// cannot be emptied).
pub const MIN_ABI: i32 = 3;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    #[error("the kernel cannot confine agents: {0}")]
    Unsupported(String),
    #[error("building the sandbox failed: {0}")]
    Build(String),
}

/// What the kernel offers, as `spectask agents check` and the server log say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// Landlock with this ABI version.
    Landlock(i32),
    Unsupported(String),
}

impl Support {
    pub fn describe(&self) -> String {
        match self {
            Support::Landlock(abi) => format!("confined (Landlock ABI {abi})"),
            Support::Unsupported(why) => format!("not confined: {why}"),
        }
    }
}

/// The running kernel's Landlock ABI, if it has one we can use.
pub fn support() -> Support {
    if !cfg!(target_os = "linux") {
        return Support::Unsupported("Landlock needs Linux".into());
    }
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute and size 0 this call only returns the ABI version.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if abi < 0 {
        let err = std::io::Error::last_os_error();
        return Support::Unsupported(match err.raw_os_error() {
            Some(libc::ENOSYS) => "this kernel has no Landlock".into(),
            Some(libc::EOPNOTSUPP) => {
                "Landlock is disabled on this kernel (boot with lsm=…,landlock)".into()
            }
            _ => format!("Landlock is not available: {err}"),
        });
    }
    let abi = abi as i32;
    if abi < MIN_ABI {
        return Support::Unsupported(format!(
            "Landlock ABI {abi} is too old (spectask needs {MIN_ABI}: kernel 6.2 or later)"
        ));
    }
    Support::Landlock(abi)
}

/// What one agent instance may touch.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The spec task's folder: its worktree, session worktrees, its repository and
    /// the agent's temporary folder. Read and written.
    pub task_dir: PathBuf,
    /// More folders the agent writes (its profile's state folders). Made if missing.
    pub write: Vec<PathBuf>,
    /// Folders nothing in the sandbox reads, except `task_dir` (the data dir).
    pub hidden: Vec<PathBuf>,
}

/// A built sandbox: cheap to clone, applied to each process the agent gets.
#[derive(Clone)]
pub struct Sandbox {
    ruleset: Arc<OwnedFd>,
    abi: i32,
    /// The agent's own temporary folder (its `TMPDIR`), inside the task's folder.
    pub tmpdir: PathBuf,
    /// How many path rules it holds (for the log).
    pub rules: usize,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("abi", &self.abi)
            .field("tmpdir", &self.tmpdir)
            .field("rules", &self.rules)
            .finish()
    }
}

/// Device files every program expects to open for writing.
const DEVICES: [&str; 9] = [
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/ptmx",
    "/dev/pts",
    "/dev/shm",
];

impl Sandbox {
    pub fn build(policy: &Policy) -> Result<Sandbox, SandboxError> {
        let abi_version = match support() {
            Support::Landlock(abi) => abi,
            Support::Unsupported(why) => return Err(SandboxError::Unsupported(why)),
        };
        let abi = ABI::from(abi_version);
        let build = |e: &dyn std::fmt::Display| SandboxError::Build(e.to_string());
        std::fs::create_dir_all(&policy.task_dir).map_err(|e| build(&e))?;
        let task_dir = policy.task_dir.canonicalize().map_err(|e| build(&e))?;
        let tmpdir = task_dir.join("tmp");
        std::fs::create_dir_all(&tmpdir).map_err(|e| build(&e))?;
        let hidden: Vec<PathBuf> = policy
            .hidden
            .iter()
            .filter_map(|h| h.canonicalize().ok())
            .collect();

        let all = AccessFs::from_all(abi);
        let read = AccessFs::from_read(abi);
        let file_read = read & AccessFs::from_file(abi);
        let device = AccessFs::from_file(abi) & !AccessFs::Execute;
        let mut ruleset = Ruleset::default()
            .handle_access(all)
            .map_err(|e| build(&e))?;
        if abi_version >= 6 {
            // Nor may it signal a process outside the sandbox (spectask itself).
            ruleset = ruleset.scope(Scope::Signal).map_err(|e| build(&e))?;
        }
        let mut created = ruleset.create().map_err(|e| build(&e))?;
        let mut rules = 0;
        let mut add = |path: &Path, access: BitFlags<AccessFs>| -> Result<(), SandboxError> {
            // A path that went away since it was listed has nothing to grant.
            let Ok(fd) = PathFd::new(path) else {
                return Ok(());
            };
            let access = if path.is_dir() {
                access
            } else {
                access & AccessFs::from_file(abi)
            };
            created
                .as_mut()
                .add_rule(PathBeneath::new(fd, access))
                .map_err(|e| build(&e))?;
            rules += 1;
            Ok(())
        };
        for path in readable(&hidden) {
            let access = if path.is_dir() { read } else { file_read };
            add(&path, access)?;
        }
        for device_path in DEVICES {
            add(Path::new(device_path), device)?;
        }
        add(&task_dir, all)?;
        for dir in &policy.write {
            std::fs::create_dir_all(dir).map_err(|e| build(&format!("{}: {e}", dir.display())))?;
            add(dir, all)?;
        }
        let fd: Option<OwnedFd> = created.into();
        let ruleset = fd.ok_or_else(|| SandboxError::Unsupported("no ruleset was made".into()))?;
        Ok(Sandbox {
            ruleset: Arc::new(ruleset),
            abi: abi_version,
            tmpdir,
            rules,
        })
    }

    pub fn abi(&self) -> i32 {
        self.abi
    }

    /// Confines the process `cmd` will start (and its whole tree): its temporary
    /// folder is ours, and spectask's own settings are not in its environment.
    pub fn confine(&self, cmd: &mut tokio::process::Command) {
        // CLAUDE_CODE_TMPDIR: Claude Code's shell tool ignores TMPDIR and writes
        // under /tmp unless told otherwise, which the sandbox refuses.
        for var in ["TMPDIR", "TMP", "TEMP", "CLAUDE_CODE_TMPDIR"] {
            cmd.env(var, &self.tmpdir);
        }
        scrub_env(cmd);
        // The closure owns a reference: the ruleset stays open until the command is
        // dropped, even if this sandbox goes first.
        let ruleset = self.ruleset.clone();
        // Written in the child to map its own ids into its user namespace; made here
        // because the child must not allocate.
        // SAFETY: geteuid and getegid cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let uid_map = format!("{uid} {uid} 1");
        let gid_map = format!("{gid} {gid} 1");
        // SAFETY: between fork and exec this makes only system calls (no allocation,
        // no lock), on memory prepared before the fork.
        unsafe {
            cmd.pre_exec(move || {
                // A user namespace of its own (ids mapped to themselves) leaves the
                // agent no capability in the server's namespace, so even an agent
                // running as root cannot read the non-dumpable server's memory,
                // environment or descriptors through /proc. Best effort: where user
                // namespaces are off, Landlock still confines the file system.
                if libc::unshare(libc::CLONE_NEWUSER) == 0 {
                    write_proc(c"/proc/self/setgroups", b"deny");
                    write_proc(c"/proc/self/uid_map", uid_map.as_bytes());
                    write_proc(c"/proc/self/gid_map", gid_map.as_bytes());
                }
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

/// What a runtime starts its agent with: the project's mode and the policy.
#[derive(Debug, Clone)]
pub struct Plan {
    pub mode: SandboxMode,
    pub policy: Policy,
}

/// How the next agent process runs.
#[derive(Debug, Clone)]
pub enum Prepared {
    Confined(Sandbox),
    /// Unconfined, and why (said in an `agent.unconfined` event).
    Unconfined(String),
}

impl Plan {
    /// The sandbox for the next process, or why it runs without one; an error when
    /// the mode is `required` and the kernel cannot confine it.
    pub fn prepare(&self) -> Result<Prepared, SandboxError> {
        if self.mode == SandboxMode::Off {
            return Ok(Prepared::Unconfined(
                "the project's sandbox setting is off".into(),
            ));
        }
        match Sandbox::build(&self.policy) {
            Ok(sandbox) => Ok(Prepared::Confined(sandbox)),
            Err(e) if self.mode == SandboxMode::BestEffort => Ok(Prepared::Unconfined(format!(
                "{e} (the project's sandbox setting is best_effort)"
            ))),
            Err(e) => Err(e),
        }
    }
}

/// Writes `bytes` to a /proc file; for the child between fork and exec (system
/// calls only, errors ignored: the namespace works unmapped too).
unsafe fn write_proc(path: &std::ffi::CStr, bytes: &[u8]) {
    // SAFETY: a valid C string and buffer; the descriptor is closed here.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd >= 0 {
            libc::write(fd, bytes.as_ptr().cast(), bytes.len());
            libc::close(fd);
        }
    }
}

/// Makes the server process non-dumpable: its /proc entries (memory, environment,
/// open files) are then readable only with `CAP_SYS_PTRACE` in its user namespace,
/// which no sandboxed agent has (it runs in a user namespace of its own), even as
/// the same user, even as root. Called once at start.
pub fn protect_server() {
    // SAFETY: a plain prctl on this process.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "could not make the server non-dumpable");
    }
}

/// Leaves spectask's own variables (its token, database URL, data dir) out of an
/// agent's environment, sandboxed or not.
pub fn scrub_env(cmd: &mut tokio::process::Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SPECTASK_") {
            cmd.env_remove(&name);
        }
    }
}

/// Every path to grant read access beneath so that all of the file system is
/// readable except what lies in `hidden`: the root when nothing is hidden, else the
/// entries beside each folder on the way down to a hidden one. Symlinks are
/// followed, so a link into a hidden folder grants nothing.
fn readable(hidden: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    visit(Path::new("/"), hidden, &mut out, &mut seen);
    out
}

fn visit(path: &Path, hidden: &[PathBuf], out: &mut Vec<PathBuf>, seen: &mut HashSet<PathBuf>) {
    if !seen.insert(path.to_path_buf()) {
        return;
    }
    if hidden.iter().any(|h| path.starts_with(h)) {
        return;
    }
    if !hidden.iter().any(|h| h.starts_with(path)) {
        out.push(path.to_path_buf());
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    for entry in entries.flatten() {
        if let Ok(real) = entry.path().canonicalize() {
            visit(&real, hidden, out, seen);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_is_readable_but_the_hidden_folders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        for d in ["a/data/tasks/1", "a/data/tasks/2", "a/other", "b"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("a/file"), "x").unwrap();
        std::os::unix::fs::symlink(root.join("a/data"), root.join("b/link-in")).unwrap();
        let hidden = vec![root.join("a/data")];
        let granted = readable(&hidden);
        for yes in ["a/other", "a/file", "b"] {
            assert!(granted.contains(&root.join(yes)), "{yes}: {granted:?}");
        }
        assert!(granted.iter().all(|p| !p.starts_with(root.join("a/data"))));
        // The folders on the way down are listed through, never granted whole.
        for no in ["", "a"] {
            assert!(!granted.contains(&root.join(no)), "{no}");
        }
        assert!(!granted.contains(&PathBuf::from("/")));
        assert_eq!(readable(&[]), vec![PathBuf::from("/")]);
    }
}
