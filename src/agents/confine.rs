//! Confining an agent's file access to its session's worktree. A path is resolved
//! the way the operating system would (`..`, symlinks anywhere along it, including a
//! symlink as the last component) before it is compared with the worktree root, so
//! no spelling of a path reaches outside.

use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfineError {
    #[error("path {0:?} is not absolute (ACP paths are absolute)")]
    NotAbsolute(String),
    #[error("path {path:?} is outside the session's worktree {root:?}")]
    Outside { path: String, root: String },
    #[error("cannot resolve {path:?}: {reason}")]
    Unresolvable { path: String, reason: String },
}

/// Removes `.` and `..` lexically (`..` at the root stays at the root).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Resolves symlinks in `path` even when its tail does not exist yet: the deepest
/// existing ancestor is canonicalized and the rest appended. A dangling symlink is
/// followed to where it points.
fn resolve(path: &Path, depth: u32) -> Result<PathBuf, String> {
    if depth > 40 {
        return Err("too many levels of symbolic links".into());
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_symlink() {
            return match std::fs::canonicalize(path) {
                Ok(p) => Ok(p),
                // Dangling: resolve its target, relative to the link's folder.
                Err(_) => {
                    let target = std::fs::read_link(path).map_err(|e| e.to_string())?;
                    let base = path.parent().unwrap_or(Path::new("/"));
                    resolve(&normalize(&base.join(target)), depth + 1)
                }
            };
        }
        return std::fs::canonicalize(path).map_err(|e| e.to_string());
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok(resolve(parent, depth + 1)?.join(name)),
        _ => Ok(path.to_path_buf()),
    }
}

/// The real location of `path` if it lies inside `root`, else why not.
pub fn confine(root: &Path, path: &str) -> Result<PathBuf, ConfineError> {
    let raw = Path::new(path);
    if !raw.is_absolute() {
        return Err(ConfineError::NotAbsolute(path.to_string()));
    }
    let root = std::fs::canonicalize(root).map_err(|e| ConfineError::Unresolvable {
        path: root.display().to_string(),
        reason: e.to_string(),
    })?;
    let resolved = resolve(&normalize(raw), 0).map_err(|reason| ConfineError::Unresolvable {
        path: path.to_string(),
        reason,
    })?;
    if resolved.starts_with(&root) {
        Ok(resolved)
    } else {
        Err(ConfineError::Outside {
            path: path.to_string(),
            root: root.display().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_outside_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("wt");
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir(dir.path().join("outside")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside"), root.join("escape")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside/new.txt"), root.join("dangling"))
            .unwrap();
        std::os::unix::fs::symlink(root.join("src"), root.join("inner")).unwrap();
        let r = |p: &str| confine(&root, p);
        let root_s = root.display().to_string();

        assert!(r(&format!("{root_s}/src/main.rs")).is_ok());
        assert!(r(&format!("{root_s}/new/deep/file.txt")).is_ok());
        assert!(r(&format!("{root_s}/src/../ok.txt")).is_ok());
        assert!(
            r(&format!("{root_s}/inner/x.rs"))
                .unwrap()
                .starts_with(root.canonicalize().unwrap())
        );
        for bad in [
            format!("{root_s}/../x"),
            format!("{root_s}/src/../../x"),
            "/etc/passwd".to_string(),
            format!("{root_s}/escape/x.txt"),
            format!("{root_s}/escape"),
            format!("{root_s}/dangling"),
            format!("{root_s}2/sibling-with-same-prefix"),
        ] {
            assert!(
                matches!(r(&bad), Err(ConfineError::Outside { .. })),
                "{bad}: {:?}",
                r(&bad)
            );
        }
        assert!(matches!(r("relative/x"), Err(ConfineError::NotAbsolute(_))));
    }
}
