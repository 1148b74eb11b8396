//! Real components the MCP tests start: the reference servers from npm and a server
//! written with the official Python SDK. `scripts/test-deps` installs them (the first
//! test that needs them runs it); a test skips, saying why, only when that fails.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// Where the components are.
pub struct Deps {
    /// `mcp-server-everything` (run it with the argument `stdio`).
    pub everything: PathBuf,
    /// `mcp-server-filesystem DIR...`
    pub filesystem: PathBuf,
    /// The venv's python, with the `mcp` package.
    pub python: PathBuf,
    /// `tests/fixtures/mcp_server.py`.
    pub server_py: PathBuf,
}

/// The components, installed on first use; `None` (with the reason printed once) when
/// they cannot be installed here.
pub fn deps() -> Option<&'static Deps> {
    static DEPS: OnceLock<Result<Deps, String>> = OnceLock::new();
    let found = DEPS.get_or_init(|| {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let dir = std::env::var_os("NIB_TEST_DEPS")
            .map_or_else(|| repo.join("target/test-deps"), PathBuf::from);
        let status = Command::new(repo.join("scripts/test-deps"))
            .env("NIB_TEST_DEPS", &dir)
            .status()
            .map_err(|e| format!("cannot run scripts/test-deps: {e}"))?;
        if !status.success() {
            return Err(format!("scripts/test-deps failed ({status})"));
        }
        let bin = dir.join("npm/node_modules/.bin");
        Ok(Deps {
            everything: bin.join("mcp-server-everything"),
            filesystem: bin.join("mcp-server-filesystem"),
            python: dir.join("py/bin/python"),
            server_py: repo.join("tests/fixtures/mcp_server.py"),
        })
    });
    match found {
        Ok(deps) => Some(deps),
        Err(why) => {
            eprintln!("skipped: the MCP test servers cannot be installed: {why}");
            None
        }
    }
}
