//! Paths as nib understands them: the workspace (the directory nib works in, and the
//! home `~/` stands for), paths resolved by their text (`.`, `..`, `~`), the longest
//! existing prefix canonicalised, and paths shortened for people. It reads no
//! environment: the home comes from whoever builds the `Workspace`.

use std::path::{Component, Path, PathBuf};

/// The directory nib works in; file paths are resolved against it.
#[derive(Clone, Debug)]
pub struct Workspace {
    /// Canonical path of the working directory.
    pub root: PathBuf,
    /// What `~` stands for; `None` when no home is known (then `~/x` is a name).
    pub home: Option<PathBuf>,
}

impl Workspace {
    /// Resolves `path` against the workspace root (absolute paths stay absolute; `~/`
    /// is the home directory). `..` is resolved by the text first; then the longest
    /// existing prefix is canonicalised (symlinks followed), so it works for files that
    /// do not exist yet.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        canonical_prefix(&normalize(&self.root, self.home.as_deref(), path))
    }

    /// `path` as people and the model see it: relative to the root when inside it
    /// (`.` for the root itself), else absolute.
    pub fn display(&self, path: &Path) -> String {
        match path.strip_prefix(&self.root) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
            Ok(rel) => rel.display().to_string(),
            Err(_) => path.display().to_string(),
        }
    }
}

/// `path` made absolute against `base` (`~/` is `home`), with `.` and `..` resolved by
/// the text alone (`/..` stays `/`).
pub fn normalize(base: &Path, home: Option<&Path>, path: &Path) -> PathBuf {
    let text = path.to_string_lossy();
    let joined = match (text.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ if text == "~" && home.is_some() => home.map(Path::to_path_buf).unwrap_or_default(),
        _ => base.join(path),
    };
    let mut out = PathBuf::from("/");
    for part in joined.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => out.push(name),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// The canonical form of the longest existing prefix of `path`, plus the rest: follows
/// symlinks even for files that do not exist yet.
pub fn canonical_prefix(path: &Path) -> PathBuf {
    let mut missing = Vec::new();
    let mut base = path;
    loop {
        if let Ok(real) = base.canonicalize() {
            return missing.iter().rev().fold(real, |p, name| p.join(name));
        }
        match (base.parent(), base.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name);
                base = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// `~/x` for paths under home, others as they are.
pub fn short_path(path: &Path, home: Option<&Path>) -> String {
    match home.and_then(|h| path.strip_prefix(h).ok()) {
        Some(rel) => format!("~/{}", rel.display()),
        None => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    #[test]
    fn resolve_and_contains() {
        let tmp = TempDir::new("resolve");
        let root = tmp.join("repo");
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(tmp.join("repo2")).unwrap();
        std::fs::create_dir_all(tmp.join("outside")).unwrap();
        std::os::unix::fs::symlink(tmp.join("outside"), root.join("link")).unwrap();
        std::fs::create_dir_all(tmp.join("home")).unwrap();
        let home = tmp.join("home").canonicalize().unwrap();
        let ws = Workspace {
            root: root.clone(),
            home: Some(home.clone()),
        };
        let cases: [(&str, PathBuf, bool); 9] = [
            ("src/main.rs", root.join("src/main.rs"), true),
            ("./src/../src/x/y.rs", root.join("src/x/y.rs"), true),
            (".", root.clone(), true),
            ("..", tmp.path().to_path_buf(), false),
            ("../repo2/a", tmp.join("repo2/a"), false),
            ("src/../../repo/a", root.join("a"), true),
            ("link/new.txt", tmp.join("outside/new.txt"), false),
            ("link/../src", root.join("src"), true),
            ("/etc/../etc/hosts", PathBuf::from("/etc/hosts"), false),
        ];
        for (input, resolved, inside) in cases {
            assert_eq!(ws.resolve(Path::new(input)), resolved, "{input}");
            assert_eq!(resolved.starts_with(&root), inside, "{input}");
        }
        assert_eq!(ws.resolve(Path::new("~/x")), home.join("x"));
        assert_eq!(ws.resolve(Path::new("~")), home);
        assert_eq!(ws.display(&root.join("src/a.rs")), "src/a.rs");
        assert_eq!(ws.display(&root), ".");
        assert_eq!(ws.display(Path::new("/etc/hosts")), "/etc/hosts");
    }
}
