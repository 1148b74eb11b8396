//! Helpers for unit tests: scratch directories (each test gets its own, removed when the
//! test ends), what a tool runs with, journal fixtures.

use crate::paths::Workspace;
use crate::sandbox::{Grant, Sandbox};
use crate::tools::{Context, fs::Seen};
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// A fresh, empty directory under the system temp dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `nib-<name>-<pid>-<n>` with the first `n` not already taken, so tests running
    /// in parallel never share a directory. The path kept is canonical (symlinks resolved).
    pub fn new(name: &str) -> TempDir {
        let pid = std::process::id();
        let mut n = 0;
        loop {
            let dir = std::env::temp_dir().join(format!("nib-{name}-{pid}-{n}"));
            match fs::create_dir(&dir) {
                Ok(()) => return TempDir(dir.canonicalize().unwrap()),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => n += 1,
                Err(e) => panic!("cannot create {}: {e}", dir.display()),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.0.join(rel)
    }

    /// Writes `bytes` to `rel`, creating parent directories; returns the full path.
    pub fn put(&self, rel: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
        path
    }

    /// A workspace rooted at this directory.
    pub fn workspace(&self) -> Workspace {
        Workspace {
            root: self.0.clone(),
            home: dirs::home_dir(),
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// What a tool runs with, owned: a scratch workspace, nothing seen yet, no sandbox and
/// no environment unless a test sets one.
pub struct Surroundings {
    pub dir: TempDir,
    pub ws: Workspace,
    pub cancel: AtomicBool,
    pub env: Vec<(String, String)>,
    pub seen: Seen,
    pub sandbox: Sandbox,
}

impl Surroundings {
    pub fn new(name: &str) -> Surroundings {
        let dir = TempDir::new(name);
        let ws = dir.workspace();
        let sandbox = Sandbox::off(&ws.root);
        Surroundings {
            dir,
            ws,
            cancel: AtomicBool::new(false),
            env: Vec::new(),
            seen: Seen::default(),
            sandbox,
        }
    }

    /// The context of an approved action that may read whatever it finds.
    pub fn ctx(&self) -> Context<'_> {
        Context {
            workspace: &self.ws,
            cancel: &self.cancel,
            env: &self.env,
            sandbox: &self.sandbox,
            grant: Grant::Approved,
            may_read: &|_| true,
            seen: &self.seen,
        }
    }
}

/// A journal's meta record with placeholder model and times.
pub fn meta(id: &str, cwd: &Path) -> crate::journal::Meta {
    crate::journal::Meta {
        id: id.into(),
        cwd: cwd.into(),
        model: "m".into(),
        provider: "openai".into(),
        nib: "0".into(),
        started: crate::journal::rfc3339(0),
        format: crate::journal::FORMAT,
        forked_from: None,
    }
}

/// The most recently written session of `cwd`. For tests: nib itself picks through
/// `sessions::list`, which also passes over sessions without a message.
pub fn latest_for(root: &Path, cwd: &Path) -> Option<PathBuf> {
    crate::journal::files_for(root, cwd)
        .into_iter()
        .filter_map(|p| {
            let modified = p.metadata().and_then(|m| m.modified()).ok()?;
            Some((modified, p))
        })
        .max_by_key(|(m, _)| *m)
        .map(|(_, p)| p)
}

/// A `bash` call running `ls`, with this id.
pub fn call(id: &str) -> crate::model::ToolCall {
    crate::model::ToolCall {
        id: id.into(),
        name: "bash".into(),
        input: serde_json::json!({"command": "ls"}),
        invalid: None,
    }
}
