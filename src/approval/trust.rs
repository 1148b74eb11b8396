//! Folder trust: whether the user let a folder's own settings (`.claude/settings.json`,
//! `.claude/settings.local.json`) grant permissions. Kept in nib's data directory,
//! where a repository cannot write it, one entry per folder: the answer, and the
//! rules the user saved there themselves with "always in this project" (those apply
//! even in a folder not trusted, since the user wrote them).

use crate::paths::canonical_prefix;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file, under `<data dir>/nib/`.
const FILE: &str = "trusted-folders.json";

#[derive(Default, Serialize, Deserialize)]
struct Store {
    #[serde(default)]
    folders: BTreeMap<String, Entry>,
}

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Entry {
    /// `Some(true)` trusted, `Some(false)` the user said no, `None` never asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted: Option<bool>,
    /// Allow rules the user saved in this folder's settings themselves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub saved: Vec<String>,
}

fn path(data: &Path) -> PathBuf {
    data.join(FILE)
}

fn read(data: &Path) -> Result<Store, String> {
    let path = path(data);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            format!(
                "{} is not valid ({e}); fix it or remove it (folders will ask again)",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Store::default()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// What the user said about `folder` (canonical).
pub fn entry(data: &Path, folder: &Path) -> Result<Entry, String> {
    let store = read(data)?;
    Ok(store
        .folders
        .get(&folder.to_string_lossy().into_owned())
        .cloned()
        .unwrap_or_default())
}

/// Records the answer for `folder`.
pub fn answer(data: &Path, folder: &Path, trusted: bool) -> Result<(), String> {
    update(data, folder, |e| e.trusted = Some(trusted))
}

/// Remembers that the user saved `rule` in `folder`'s settings.
pub fn saved(data: &Path, folder: &Path, rule: &str) -> Result<(), String> {
    update(data, folder, |e| {
        if !e.saved.iter().any(|r| r == rule) {
            e.saved.push(rule.to_string());
        }
    })
}

fn update(data: &Path, folder: &Path, change: impl FnOnce(&mut Entry)) -> Result<(), String> {
    let mut store = read(data)?;
    let key = folder.to_string_lossy().into_owned();
    change(store.folders.entry(key).or_default());
    let text = serde_json::to_string_pretty(&store).map_err(|e| e.to_string())? + "\n";
    let file = path(data);
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", file.display());
    std::fs::create_dir_all(data).map_err(fail)?;
    let tmp = data.join(format!("{FILE}.tmp"));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &file))
        .map_err(fail)
}

/// `nib trust`: records that the user trusts `folder` (canonical) with its own settings.
pub fn trust_folder(nib_data: &Path, folder: &Path) -> Result<(), String> {
    answer(nib_data, folder, true)
}

/// Whether the user trusted `root` (`nib trust`, or yes in the REPL): its own files may
/// then grant permissions and run hooks, MCP servers and commands.
pub fn folder_trusted(nib_data: &Path, root: &Path) -> bool {
    entry(nib_data, &canonical_prefix(root)).is_ok_and(|e| e.trusted == Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    #[test]
    fn answers_and_saved_rules_are_kept_per_folder() {
        let tmp = TempDir::new("trust");
        let data = tmp.join("data/nib");
        let a = Path::new("/work/a");
        let b = Path::new("/work/a.b");
        assert_eq!(entry(&data, a).unwrap().trusted, None);
        answer(&data, a, true).unwrap();
        saved(&data, b, "Bash(make *)").unwrap();
        saved(&data, b, "Bash(make *)").unwrap();
        assert_eq!(entry(&data, a).unwrap().trusted, Some(true));
        let b_entry = entry(&data, b).unwrap();
        assert_eq!(b_entry.trusted, None);
        assert_eq!(b_entry.saved, ["Bash(make *)"]);
        answer(&data, a, false).unwrap();
        assert_eq!(entry(&data, a).unwrap().trusted, Some(false));
        std::fs::write(data.join(FILE), "{oops").unwrap();
        let err = entry(&data, a).err().unwrap();
        assert!(
            err.contains("trusted-folders.json") && err.contains("remove it"),
            "{err}"
        );
    }
}
