//! The process environment, read once in `main` and passed down: the variables as nib
//! started with them (after `secrets::hide_keys` put its keys back), looked up by name.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

/// A snapshot of the environment: nib reads its variables only through this.
#[derive(Clone, Debug, Default)]
pub struct Env {
    vars: Vec<(OsString, OsString)>,
}

impl Env {
    /// The environment of this process, now.
    pub fn read() -> Env {
        Env {
            vars: std::env::vars_os().collect(),
        }
    }

    /// Every variable, names and values as the OS gives them.
    pub fn vars_os(&self) -> &[(OsString, OsString)] {
        &self.vars
    }

    /// The variables whose name and value are UTF-8 (what child processes get).
    pub fn vars(&self) -> Vec<(String, String)> {
        let utf8 = |(k, v): &(OsString, OsString)| Some((k.to_str()?.into(), v.to_str()?.into()));
        self.vars.iter().filter_map(utf8).collect()
    }

    /// The value of `name` as the OS gives it.
    pub fn var_os(&self, name: &str) -> Option<&OsStr> {
        let found = self.vars.iter().rev().find(|(k, _)| k == name);
        found.map(|(_, v)| v.as_os_str())
    }

    /// Whether `name` is set at all (empty included).
    pub fn has(&self, name: &str) -> bool {
        self.var_os(name).is_some()
    }

    /// The value of `name` when it is UTF-8 (empty included).
    pub fn var(&self, name: &str) -> Option<String> {
        self.var_os(name)?.to_str().map(str::to_string)
    }

    /// The value of `name` when it is UTF-8 and not empty: empty counts as unset.
    pub fn non_empty(&self, name: &str) -> Option<String> {
        self.var(name).filter(|v| !v.is_empty())
    }

    /// `$TMPDIR` when it names a directory (not empty).
    pub fn tmpdir(&self) -> Option<PathBuf> {
        let temp = self.var_os("TMPDIR").filter(|t| !t.is_empty());
        temp.map(PathBuf::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Env {
        /// An environment of the given variables.
        fn of(vars: &[(&str, &str)]) -> Env {
            let vars = vars.iter().map(|(k, v)| (k.into(), v.into())).collect();
            Env { vars }
        }
    }

    #[test]
    fn empty_values_are_set_but_not_non_empty() {
        let env = Env::of(&[("A", ""), ("B", "b"), ("TMPDIR", "")]);
        assert!(env.has("A") && !env.has("C"));
        assert_eq!(env.var("A").as_deref(), Some(""));
        assert_eq!(env.non_empty("A"), None);
        assert_eq!(env.non_empty("B").as_deref(), Some("b"));
        assert_eq!(env.tmpdir(), None, "an empty TMPDIR names no directory");
        let env = Env::of(&[("TMPDIR", "/var/tmp")]);
        assert_eq!(env.tmpdir(), Some(PathBuf::from("/var/tmp")));
    }
}
