//! Git, through the `git` command. spectask never touches the user's checked-out
//! branch or uncommitted files; this issue only needs to inspect repositories.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{0} does not exist")]
    Missing(String),
    #[error("{0} is not a git repository")]
    NotARepository(String),
    #[error("could not run git: {0}")]
    Spawn(#[from] std::io::Error),
}

async fn git(dir: &Path, args: &[&str]) -> Result<Option<String>, GitError> {
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .await?;
    Ok(out
        .status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
