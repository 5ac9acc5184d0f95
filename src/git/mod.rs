//! Git, through the `git` command. spectask never touches the user's checked-out
//! branch or uncommitted files: it creates its own branches with `git branch` (which
//! moves no HEAD), works in worktrees of its own under the data dir, and commits there
//! as its own author.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{0} does not exist")]
    Missing(String),
    #[error("{0} is not a git repository")]
    NotARepository(String),
    #[error("could not run git: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("git {command} failed: {stderr}")]
    Failed { command: String, stderr: String },
}

/// The author and committer of every spectask commit.
pub const AUTHOR_NAME: &str = "spectask";
pub const AUTHOR_EMAIL: &str = "spectask@localhost";

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn run(dir: &Path, args: &[&str]) -> Result<Output, GitError> {
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", AUTHOR_NAME)
        .env("GIT_AUTHOR_EMAIL", AUTHOR_EMAIL)
        .env("GIT_COMMITTER_NAME", AUTHOR_NAME)
        .env("GIT_COMMITTER_EMAIL", AUTHOR_EMAIL)
        .output()
        .await?;
    Ok(Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// Runs git and returns its trimmed output, or `None` when it exits non-zero.
async fn git(dir: &Path, args: &[&str]) -> Result<Option<String>, GitError> {
    let out = run(dir, args).await?;
    Ok(out.ok.then(|| out.stdout.trim().to_string()))
}

/// Runs git and fails with its stderr when it exits non-zero.
async fn git_ok(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    let out = run(dir, args).await?;
    if out.ok {
        Ok(out.stdout)
    } else {
        Err(GitError::Failed {
            command: args.join(" "),
            stderr: out.stderr,
        })
    }
}

/// Git's worktree bookkeeping (`.git/worktrees/<name>`) is not safe against itself:
/// a `worktree add` in progress leaves a folder without its `commondir` for a
/// moment, and another add, a prune, or a fetch that checks which branches are
/// checked out reads it and fails ("failed to read .../commondir"), or a prune
/// deletes it. Every spectask operation that writes or reads that list in a
/// repository holds that repository's lock, so two tasks of one project starting
/// together take turns.
///
/// Cluster replicas are other processes on the same repository, so the lock is also
/// an `flock` on a file in its git dir: two `git worktree add` of folders with one
/// name (`<task>/worktree` in two data dirs) would otherwise pick the same entry
/// under `.git/worktrees/`.
async fn worktree_lock(repo: &Path) -> RepoLock {
    repo_lock(repo, "spectask-worktrees.lock").await
}

/// A lock on one branch of a repository, shared by every process (replica) on it:
/// for writers that read the branch tip, decide, and commit, such as the approval's
/// `spec.json` record, which both the approving replica and the task's owner may
/// make.
pub async fn branch_lock(repo: &Path, branch: &str) -> RepoLock {
    let name: String = branch
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    repo_lock(repo, &format!("spectask-branch-{name}.lock")).await
}

/// This process's mutex on `repo` and `file`, then an `flock` on `file` in the
/// repository's git dir (other processes).
async fn repo_lock(repo: &Path, file: &str) -> RepoLock {
    let canonical = std::fs::canonicalize(repo).unwrap_or_else(|_| repo.to_path_buf());
    let mutex = process_lock(&canonical.join(file)).await;
    let git_dir = if repo.join(".git").is_dir() {
        Some(repo.join(".git"))
    } else if repo.join("HEAD").is_file() {
        Some(repo.to_path_buf())
    } else {
        None
    };
    let file = file.to_string();
    let file = match git_dir {
        Some(dir) => tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(dir.join(file))
                .ok()?;
            use std::os::fd::AsRawFd;
            // SAFETY: a valid open file descriptor; the lock ends when it closes.
            let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0;
            locked.then_some(file)
        })
        .await
        .ok()
        .flatten(),
        None => None,
    };
    RepoLock {
        _mutex: mutex,
        _file: file,
    }
}

/// Held while a repository's worktree list or a branch may change (see
/// [`worktree_lock`], [`branch_lock`]).
pub struct RepoLock {
    _mutex: tokio::sync::OwnedMutexGuard<()>,
    _file: Option<std::fs::File>,
}

async fn process_lock(repo: &Path) -> tokio::sync::OwnedMutexGuard<()> {
    use std::collections::HashMap;
    use std::sync::{Arc, LazyLock, Mutex};
    static LOCKS: LazyLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> =
        LazyLock::new(Default::default);
    let key = std::fs::canonicalize(repo).unwrap_or_else(|_| repo.to_path_buf());
    let lock = LOCKS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .entry(key)
        .or_default()
        .clone();
    lock.lock_owned().await
}

/// The top-level directory of the work tree that contains `path`.
pub async fn repo_root(path: &Path) -> Result<PathBuf, GitError> {
    let shown = path.display().to_string();
    if !path.is_dir() {
        return Err(GitError::Missing(shown));
    }
    match git(path, &["rev-parse", "--show-toplevel"]).await? {
        Some(root) if !root.is_empty() => Ok(PathBuf::from(root)),
        _ => Err(GitError::NotARepository(shown)),
    }
}

/// The branch HEAD points at (also in a repository with no commits yet), if any.
pub async fn current_branch(root: &Path) -> Result<Option<String>, GitError> {
    git(root, &["symbolic-ref", "--quiet", "--short", "HEAD"]).await
}

/// The commit a branch points at, if the branch exists.
pub async fn branch_head(repo: &Path, branch: &str) -> Result<Option<String>, GitError> {
    git(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ],
    )
    .await
}

/// Creates `branch` at the tip of `base` unless it exists. No HEAD moves and no
/// file in the user's checkout changes.
pub async fn ensure_branch(repo: &Path, branch: &str, base: &str) -> Result<(), GitError> {
    if branch_head(repo, branch).await?.is_some() {
        return Ok(());
    }
    if branch_head(repo, base).await?.is_none() {
        return Err(GitError::Failed {
            command: format!("branch {branch} {base}"),
            stderr: format!("the base branch {base:?} does not exist or has no commits yet"),
        });
    }
    git_ok(repo, &["branch", "--no-track", branch, base]).await?;
    Ok(())
}

/// A worktree of `branch` at `path`, created if missing (also after the folder was
/// deleted by hand: stale registrations are pruned first).
pub async fn ensure_worktree(repo: &Path, path: &Path, branch: &str) -> Result<(), GitError> {
    if path.join(".git").exists() {
        return Ok(());
    }
    let _turn = worktree_lock(repo).await;
    git_ok(repo, &["worktree", "prune"]).await?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let path_text = path.to_string_lossy();
    let added = run(repo, &["worktree", "add", "--quiet", &path_text, branch]).await?;
    if added.ok {
        return Ok(());
    }
    // Another cluster replica's worktree of the same task holds the branch (its own
    // data dir, same relative place): this replica has the task now, so it takes
    // the branch too. Any other holder (the user's own checkout) is respected.
    if held_by_twin(repo, path, branch).await? {
        git_ok(
            repo,
            &["worktree", "add", "--quiet", "--force", &path_text, branch],
        )
        .await?;
        return Ok(());
    }
    git_ok(repo, &["worktree", "add", "--quiet", &path_text, branch]).await?;
    Ok(())
}

/// Whether `branch` is checked out in a worktree whose last two path components
/// are `path`'s (`<task id>/worktree`) but that is not `path`.
async fn held_by_twin(repo: &Path, path: &Path, branch: &str) -> Result<bool, GitError> {
    let list = git_ok(repo, &["worktree", "list", "--porcelain"]).await?;
    let tail = |p: &Path| -> Vec<std::ffi::OsString> {
        p.components()
            .rev()
            .take(2)
            .map(|c| c.as_os_str().to_os_string())
            .collect()
    };
    let mine = tail(path);
    let wanted = format!("branch refs/heads/{branch}");
    Ok(list.split("\n\n").any(|entry| {
        let holder = entry
            .lines()
            .find_map(|l| l.strip_prefix("worktree "))
            .map(Path::new);
        holder.is_some_and(|h| h != path && tail(h) == mine) && entry.lines().any(|l| l == wanted)
    }))
}

/// Makes a spectask worktree's files what its branch holds now: another replica may
/// have moved the branch (merges) while this copy sat still. Uncommitted leftovers,
/// a half-done merge included, go.
pub async fn refresh_worktree(path: &Path) -> Result<(), GitError> {
    if !path.join(".git").exists() {
        return Ok(());
    }
    git_ok(path, &["reset", "--hard", "--quiet", "HEAD"]).await?;
    Ok(())
}

/// A spec task's own repository: bare, in the task's folder, reading the user's
/// objects through `objects/info/alternates` (nothing is copied). Session worktrees
/// are worktrees of it, so everything git writes while an agent works (refs, index,
/// objects, locks) is inside the task's folder, which the sandbox lets the agent
/// write, and the user's `.git` stays read-only to it. spectask moves branches
/// between the two repositories with [`copy_branch`].
pub async fn ensure_task_repo(user_repo: &Path, task_repo: &Path) -> Result<(), GitError> {
    let complete =
        || task_repo.join("HEAD").exists() && task_repo.join("objects/info/alternates").exists();
    if complete() {
        return Ok(());
    }
    // Sessions of one task start side by side: one makes the repository, the others
    // wait for it (two `git init` in one folder race on its template files).
    let _made_once = worktree_lock(user_repo).await;
    if complete() {
        return Ok(());
    }
    let common = git_ok(
        user_repo,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    )
    .await?;
    let objects = Path::new(common.trim()).join("objects");
    std::fs::create_dir_all(task_repo)?;
    git_ok(task_repo, &["init", "--quiet", "--bare"]).await?;
    let info = task_repo.join("objects/info");
    std::fs::create_dir_all(&info)?;
    // Written last and atomically: its presence means the repository is complete.
    let tmp = info.join("alternates.tmp");
    std::fs::write(&tmp, format!("{}\n", objects.display()))?;
    std::fs::rename(&tmp, info.join("alternates"))?;
    Ok(())
}

/// Makes `branch` in `to` what it is in `from` (objects `to` lacks are copied).
/// Nothing happens when `from` has no such branch.
pub async fn copy_branch(from: &Path, to: &Path, branch: &str) -> Result<(), GitError> {
    fetch_branch(from, to, branch, true).await
}

/// [`copy_branch`] only when it moves `to`'s branch forward (or makes it): a copy
/// that is behind, or went another way, is refused, so a writer that lost its
/// claim on the branch (a paused replica) cannot take it back in time.
pub async fn copy_branch_forward(from: &Path, to: &Path, branch: &str) -> Result<(), GitError> {
    fetch_branch(from, to, branch, false).await
}

async fn fetch_branch(from: &Path, to: &Path, branch: &str, force: bool) -> Result<(), GitError> {
    if branch_head(from, branch).await?.is_none() {
        return Ok(());
    }
    let from_text = from.to_string_lossy();
    let plus = if force { "+" } else { "" };
    let spec = format!("{plus}refs/heads/{branch}:refs/heads/{branch}");
    let _turn = worktree_lock(to).await;
    git_ok(
        to,
        &[
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            &from_text,
            &spec,
        ],
    )
    .await?;
    Ok(())
}

/// Stages everything under `paths` in a worktree and commits it. Returns the new
/// commit, or `None` when there was nothing to commit.
pub async fn commit_paths(
    worktree: &Path,
    paths: &[&str],
    message: &str,
) -> Result<Option<String>, GitError> {
    let mut add = vec!["add", "--all", "--"];
    add.extend_from_slice(paths);
    git_ok(worktree, &add).await?;
    let mut staged = vec!["diff", "--cached", "--quiet", "--"];
    staged.extend_from_slice(paths);
    if run(worktree, &staged).await?.ok {
        return Ok(None);
    }
    let mut commit = vec!["commit", "--quiet", "--no-verify", "-m", message, "--"];
    commit.extend_from_slice(paths);
    git_ok(worktree, &commit).await?;
    Ok(Some(
        git_ok(worktree, &["rev-parse", "HEAD"])
            .await?
            .trim()
            .to_string(),
    ))
}

/// A new worktree at `path` on a new branch `branch` cut from `from`'s tip (or on
/// `branch` if it exists already, as when a session is resumed). The common case is
/// one git process: this runs once per work session, so it is on the hot path.
pub async fn add_branch_worktree(
    repo: &Path,
    path: &Path,
    branch: &str,
    from: &str,
) -> Result<(), GitError> {
    if path.join(".git").exists() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let path_text = path.to_string_lossy();
    let _turn = worktree_lock(repo).await;
    if run(
        repo,
        &["worktree", "add", "--quiet", "-b", branch, &path_text, from],
    )
    .await?
    .ok
    {
        return Ok(());
    }
    // The branch exists, or a stale registration of the folder does: prune and reuse.
    git_ok(repo, &["worktree", "prune"]).await?;
    git_ok(repo, &["worktree", "add", "--quiet", &path_text, branch]).await?;
    Ok(())
}

/// Commits everything in a worktree (new, changed and deleted files).
pub async fn commit_all(worktree: &Path, message: &str) -> Result<Option<String>, GitError> {
    commit_paths(worktree, &["."], message).await
}

/// What a merge did.
#[derive(Debug, Clone, PartialEq)]
pub enum Merge {
    /// Merged as this commit.
    Merged(String),
    /// The branches conflict in these files; the merge was aborted, nothing changed.
    Conflict(Vec<String>),
}

/// Merges `branch` into the branch checked out in `worktree` with a merge commit.
/// A conflict is never resolved here: the merge is aborted and reported.
pub async fn merge(worktree: &Path, branch: &str, message: &str) -> Result<Merge, GitError> {
    merge_with(worktree, branch, message, &[]).await
}

/// [`merge`], where the hunks that conflict take the checked-out branch's side
/// (`-X ours`); the rest of `branch` merges as usual.
pub async fn merge_preferring_ours(
    worktree: &Path,
    branch: &str,
    message: &str,
) -> Result<Merge, GitError> {
    merge_with(worktree, branch, message, &["-X", "ours"]).await
}

async fn merge_with(
    worktree: &Path,
    branch: &str,
    message: &str,
    options: &[&str],
) -> Result<Merge, GitError> {
    // A merge a killed process left half-done is abandoned first; it is redone below.
    if git(worktree, &["rev-parse", "-q", "--verify", "MERGE_HEAD"])
        .await?
        .is_some()
    {
        git_ok(worktree, &["merge", "--abort"]).await?;
    }
    let mut args = vec!["merge", "--no-ff", "--no-edit"];
    args.extend_from_slice(options);
    args.extend_from_slice(&["-m", message, branch]);
    let out = run(worktree, &args).await?;
    if out.ok {
        let head = git_ok(worktree, &["rev-parse", "HEAD"]).await?;
        return Ok(Merge::Merged(head.trim().to_string()));
    }
    let conflicted = git_ok(worktree, &["diff", "--name-only", "--diff-filter=U"]).await?;
    let files: Vec<String> = conflicted.lines().map(str::to_string).collect();
    let _ = run(worktree, &["merge", "--abort"]).await;
    if files.is_empty() {
        return Err(GitError::Failed {
            command: format!("merge {branch}"),
            stderr: out.stderr,
        });
    }
    Ok(Merge::Conflict(files))
}

/// A merge whose commit was made by a git that was killed before it cleaned up
/// (MERGE_HEAD left beside a HEAD that already is the merge) is concluded as it is;
/// any other half-done merge is aborted.
pub async fn settle_interrupted_merge(worktree: &Path) -> Result<(), GitError> {
    let Some(merge_head) = git(worktree, &["rev-parse", "-q", "--verify", "MERGE_HEAD"]).await?
    else {
        return Ok(());
    };
    let second = git(worktree, &["rev-parse", "-q", "--verify", "HEAD^2"]).await?;
    if second.as_deref() == Some(merge_head.as_str()) {
        git_ok(worktree, &["merge", "--quit"]).await?;
    } else {
        git_ok(worktree, &["merge", "--abort"]).await?;
    }
    Ok(())
}

/// How many commits `branch` has that the worktree's HEAD does not: 0 means a merge
/// would change nothing (the session made no commit, or its branch was reset back).
pub async fn commits_ahead(worktree: &Path, branch: &str) -> Result<usize, GitError> {
    let out = git_ok(
        worktree,
        &["rev-list", "--count", &format!("HEAD..refs/heads/{branch}")],
    )
    .await?;
    out.trim().parse().map_err(|_| GitError::Failed {
        command: format!("rev-list --count HEAD..{branch}"),
        stderr: format!("unexpected output {out:?}"),
    })
}

/// The merge commit on HEAD's first-parent line whose second parent is `branch`'s
/// tip: the branch was merged already (by a process that died before recording it).
pub async fn merge_of(worktree: &Path, branch: &str) -> Result<Option<String>, GitError> {
    let Some(tip) = git(
        worktree,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ],
    )
    .await?
    else {
        return Ok(None);
    };
    let list = git_ok(
        worktree,
        &[
            "rev-list",
            "--first-parent",
            "--merges",
            "--parents",
            "HEAD",
        ],
    )
    .await?;
    Ok(list.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        let commit = parts.next()?;
        let _first = parts.next()?;
        (parts.next()? == tip).then(|| commit.to_string())
    }))
}

/// Whether `commit` is a merge (has a second parent).
pub async fn is_merge(repo: &Path, commit: &str) -> Result<bool, GitError> {
    Ok(git(
        repo,
        &["rev-parse", "--verify", "--quiet", &format!("{commit}^2")],
    )
    .await?
    .is_some())
}

/// Starts merging `branch` into the worktree's branch and leaves any conflict in
/// place (markers in the files) for someone to resolve. Returns the conflicted files;
/// empty when the merge went through on its own.
pub async fn merge_for_resolution(
    worktree: &Path,
    branch: &str,
    message: &str,
) -> Result<Vec<String>, GitError> {
    let out = run(
        worktree,
        &["merge", "--no-ff", "--no-edit", "-m", message, branch],
    )
    .await?;
    if out.ok {
        return Ok(Vec::new());
    }
    let conflicted = git_ok(worktree, &["diff", "--name-only", "--diff-filter=U"]).await?;
    Ok(conflicted.lines().map(str::to_string).collect())
}

/// Whether any of `files` still holds conflict markers.
pub fn has_conflict_markers(worktree: &Path, files: &[String]) -> bool {
    files.iter().any(|f| {
        std::fs::read_to_string(worktree.join(f))
            .map(|t| {
                t.lines()
                    .any(|l| l.starts_with("<<<<<<<") || l.starts_with(">>>>>>>"))
            })
            .unwrap_or(false)
    })
}

/// Concludes a merge whose conflicts were resolved in the working tree.
pub async fn conclude_merge(worktree: &Path) -> Result<String, GitError> {
    git_ok(worktree, &["add", "--all"]).await?;
    git_ok(worktree, &["commit", "--quiet", "--no-verify", "--no-edit"]).await?;
    Ok(git_ok(worktree, &["rev-parse", "HEAD"])
        .await?
        .trim()
        .to_string())
}

/// Removes a worktree unless it holds uncommitted work (then it stays and `false`).
pub async fn remove_worktree(repo: &Path, path: &Path) -> Result<bool, GitError> {
    let status = git_ok(path, &["status", "--porcelain"]).await?;
    if !status.trim().is_empty() {
        return Ok(false);
    }
    let path_text = path.to_string_lossy();
    let _turn = worktree_lock(repo).await;
    git_ok(repo, &["worktree", "remove", &path_text]).await?;
    Ok(true)
}

/// Removes a worktree with whatever it holds, and its registration: for a copy
/// that is known to be stale (its branch moved on elsewhere).
pub async fn discard_worktree(repo: &Path, path: &Path) -> Result<(), GitError> {
    let path_text = path.to_string_lossy();
    let _turn = worktree_lock(repo).await;
    if !run(
        repo,
        &["worktree", "remove", "--force", "--force", &path_text],
    )
    .await?
    .ok && path.exists()
    {
        std::fs::remove_dir_all(path)?;
    }
    git_ok(repo, &["worktree", "prune"]).await?;
    Ok(())
}

/// A file's content at a commit, if it exists there.
pub async fn show(repo: &Path, commit: &str, path: &str) -> Result<Option<String>, GitError> {
    let out = run(repo, &["show", &format!("{commit}:{path}")]).await?;
    Ok(out.ok.then_some(out.stdout))
}

/// The unified diff of `path` between two commits.
pub async fn diff(repo: &Path, from: &str, to: &str, path: &str) -> Result<String, GitError> {
    git_ok(repo, &["diff", "--no-color", from, to, "--", path]).await
}

/// The files that differ between two commits.
pub async fn changed_files(repo: &Path, from: &str, to: &str) -> Result<Vec<String>, GitError> {
    Ok(git_ok(repo, &["diff", "--name-only", from, to])
        .await?
        .lines()
        .map(str::to_string)
        .collect())
}

/// The subject lines of the commits in `range` (`base..branch`), oldest first.
pub async fn subjects(repo: &Path, range: &str) -> Result<Vec<String>, GitError> {
    Ok(git_ok(repo, &["log", "--reverse", "--format=%s", range])
        .await?
        .lines()
        .map(str::to_string)
        .collect())
}

/// The files a diff range (`a...b`: what b changed since it forked from a) touches.
pub async fn files_in_range(repo: &Path, range: &str) -> Result<Vec<String>, GitError> {
    Ok(git_ok(repo, &["diff", "--name-only", range])
        .await?
        .lines()
        .map(str::to_string)
        .collect())
}

/// The commits in `range` (`base..branch`), oldest first, as (sha, subject).
pub async fn commits(repo: &Path, range: &str) -> Result<Vec<(String, String)>, GitError> {
    Ok(
        git_ok(repo, &["log", "--reverse", "--format=%H%x00%s", range])
            .await?
            .lines()
            .filter_map(|l| l.split_once('\0'))
            .map(|(sha, subject)| (sha.to_string(), subject.to_string()))
            .collect(),
    )
}

/// The subject line of a commit.
pub async fn subject(repo: &Path, commit: &str) -> Result<String, GitError> {
    Ok(git_ok(repo, &["log", "-1", "--format=%s", commit])
        .await?
        .trim()
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, args: &[&str]) {
        let ok = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .status()
            .unwrap();
        assert!(ok.success(), "git {args:?}");
    }

    /// A repository on `main` with one commit of `a.txt`, in a folder of its own.
    fn repo_with_a_commit() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        sh(
            dir.path(),
            &["init", "-q", "-b", "main", repo.to_str().unwrap()],
        );
        std::fs::write(repo.join("a.txt"), "a").unwrap();
        sh(&repo, &["add", "a.txt"]);
        sh(&repo, &["commit", "-qm", "first"]);
        (dir, repo)
    }

    #[tokio::test]
    async fn finds_the_root_and_refuses_other_folders() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::create_dir(&plain).unwrap();
        assert!(matches!(
            repo_root(&plain).await,
            Err(GitError::NotARepository(_))
        ));
        assert!(matches!(
            repo_root(&dir.path().join("nope")).await,
            Err(GitError::Missing(_))
        ));

        let repo = dir.path().join("repo");
        std::fs::create_dir_all(repo.join("src")).unwrap();
        let ok = std::process::Command::new("git")
            .args(["init", "-q", "-b", "trunk"])
            .arg(&repo)
            .status()
            .unwrap();
        assert!(ok.success());
        let root = repo_root(&repo.join("src")).await.unwrap();
        assert_eq!(root.canonicalize().unwrap(), repo.canonicalize().unwrap());
        assert_eq!(
            current_branch(&root).await.unwrap().as_deref(),
            Some("trunk")
        );
    }

    /// Many tasks of one project start at once: each adds a worktree whose folder is
    /// named `worktree` (git names the registration after it) while branches are
    /// copied into the same repository. Unserialized, git fails on the other's
    /// half-made registration ("failed to read .../commondir") or prunes it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn worktrees_of_one_repository_added_at_once_all_succeed() {
        let (dir, repo) = repo_with_a_commit();
        let other = dir.path().join("other.git");
        ensure_task_repo(&repo, &other).await.unwrap();
        copy_branch(&repo, &other, "main").await.unwrap();
        sh(&other, &["branch", "copied", "main"]);
        let mut jobs = tokio::task::JoinSet::new();
        for n in 0..12 {
            let (repo, other) = (repo.clone(), other.clone());
            let wt = dir.path().join(format!("tasks/{n}/worktree"));
            jobs.spawn(async move {
                let branch = format!("spectask/{n}-x");
                ensure_branch(&repo, &branch, "main").await?;
                ensure_worktree(&repo, &wt, &branch).await?;
                copy_branch(&other, &repo, "copied").await?;
                add_branch_worktree(
                    &repo,
                    &wt.with_file_name("session"),
                    &format!("{branch}-s"),
                    &branch,
                )
                .await
            });
        }
        while let Some(done) = jobs.join_next().await {
            done.unwrap().unwrap();
        }
        let list = git_ok(&repo, &["worktree", "list", "--porcelain"])
            .await
            .unwrap();
        assert_eq!(list.matches("\nworktree ").count() + 1, 25, "{list}");
    }

    /// A task that went to another replica and came back: this replica's task
    /// repository still has the session branch checked out in the worktree it
    /// left, behind what the other replica published. The copy is refused until
    /// that stale worktree is discarded; then the worktree is made again at the
    /// published tip.
    #[tokio::test]
    async fn a_stale_session_worktree_is_discarded_so_the_published_branch_comes_in() {
        let (dir, user) = repo_with_a_commit();
        let ours = dir.path().join("ours.git");
        ensure_task_repo(&user, &ours).await.unwrap();
        copy_branch(&user, &ours, "main").await.unwrap();
        let wt = dir.path().join("sessions/1");
        add_branch_worktree(&ours, &wt, "s", "main").await.unwrap();
        std::fs::write(wt.join("half.txt"), "a turn cut short").unwrap();
        // The other replica's work on the branch, published to the user's repo.
        sh(&user, &["branch", "s", "main"]);
        let theirs = dir.path().join("theirs");
        sh(
            &user,
            &["worktree", "add", "-q", theirs.to_str().unwrap(), "s"],
        );
        std::fs::write(theirs.join("b.txt"), "b").unwrap();
        commit_all(&theirs, "their turn").await.unwrap().unwrap();
        // (Their worktree is in their own task repository, not the user's.)
        sh(&user, &["worktree", "remove", theirs.to_str().unwrap()]);

        assert!(
            copy_branch(&user, &ours, "s").await.is_err(),
            "refused while checked out"
        );
        discard_worktree(&ours, &wt).await.unwrap();
        assert!(!wt.exists());
        copy_branch(&user, &ours, "s").await.unwrap();
        add_branch_worktree(&ours, &wt, "s", "main").await.unwrap();
        assert_eq!(std::fs::read_to_string(wt.join("b.txt")).unwrap(), "b");
        assert!(!wt.join("half.txt").exists());

        // A copy that is behind the published branch cannot move it back.
        let behind = dir.path().join("behind.git");
        ensure_task_repo(&user, &behind).await.unwrap();
        sh(&behind, &["fetch", "-q", user.to_str().unwrap(), "main:s"]);
        assert!(copy_branch_forward(&behind, &user, "s").await.is_err());
        std::fs::write(wt.join("c.txt"), "c").unwrap();
        commit_all(&wt, "our next turn").await.unwrap().unwrap();
        copy_branch_forward(&ours, &user, "s").await.unwrap();
        assert_eq!(
            branch_head(&user, "s").await.unwrap(),
            branch_head(&ours, "s").await.unwrap()
        );
    }

    #[tokio::test]
    async fn branches_worktrees_and_commits_leave_the_checkout_alone() {
        let (dir, repo) = repo_with_a_commit();
        std::fs::write(repo.join("a.txt"), "uncommitted").unwrap();

        assert!(ensure_branch(&repo, "spectask/1-x", "nope").await.is_err());
        ensure_branch(&repo, "spectask/1-x", "main").await.unwrap();
        ensure_branch(&repo, "spectask/1-x", "main").await.unwrap();
        let wt = dir.path().join("wt");
        ensure_worktree(&repo, &wt, "spectask/1-x").await.unwrap();
        ensure_worktree(&repo, &wt, "spectask/1-x").await.unwrap();
        std::fs::create_dir_all(wt.join("specs/1-x")).unwrap();
        std::fs::write(wt.join("specs/1-x/tasks.md"), "- [ ] 1. Do it\n").unwrap();
        std::fs::write(wt.join("stray.txt"), "not committed").unwrap();
        let sha = commit_paths(&wt, &["specs/1-x"], "spectask #1: spec v1")
            .await
            .unwrap()
            .unwrap();
        assert!(
            commit_paths(&wt, &["specs/1-x"], "again")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(subject(&repo, &sha).await.unwrap(), "spectask #1: spec v1");
        assert_eq!(
            show(&repo, &sha, "specs/1-x/tasks.md")
                .await
                .unwrap()
                .as_deref(),
            Some("- [ ] 1. Do it\n")
        );
        assert_eq!(show(&repo, &sha, "stray.txt").await.unwrap(), None);
        std::fs::write(wt.join("specs/1-x/tasks.md"), "- [x] 1. Do it\n").unwrap();
        let sha2 = commit_paths(&wt, &["specs/1-x"], "v2")
            .await
            .unwrap()
            .unwrap();
        let d = diff(&repo, &sha, &sha2, "specs/1-x").await.unwrap();
        assert!(
            d.contains("-- [ ] 1. Do it") && d.contains("+- [x] 1. Do it"),
            "{d}"
        );

        // The user's checkout is as it was: same branch, same uncommitted change.
        assert_eq!(
            current_branch(&repo).await.unwrap().as_deref(),
            Some("main")
        );
        assert_eq!(
            std::fs::read_to_string(repo.join("a.txt")).unwrap(),
            "uncommitted"
        );
        assert!(!repo.join("specs").exists());
    }
}
