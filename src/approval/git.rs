//! What a repository's own git configuration would make git run while it only reads:
//! filter drivers (`git status` and `git diff` run a `clean` filter on changed files),
//! diff drivers (`textconv`, `command`), `diff.external`, and includes nib does not follow. nib's
//! environment defuses the settings it can name (`tools/shell.rs`); drivers have names
//! the repository chooses, so where a config defines one, git is not read-only.

use std::fs;
use std::path::{Path, PathBuf};

/// Sections that run programs or pull in other files, whatever their subsection.
const RUNS_CODE: &[&str] = &["filter", "include", "includeif"];
/// Sections that run programs when they name a driver (`[diff "x"]`, not `[diff]`).
const DRIVERS: &[&str] = &["diff", "merge"];

/// Why git run in `dir` could run a program its repository's config names, if it could.
pub fn runs_repository_code(dir: &Path) -> Option<String> {
    let git = dir
        .ancestors()
        .map(|d| d.join(".git"))
        .find(|git| fs::symlink_metadata(git).is_ok())?;
    configs(&git).into_iter().find_map(|config| {
        let what = risky(&fs::read_to_string(&config).ok()?)?;
        Some(format!(
            "git needs approval here: {} sets {what}, a program git would run",
            config.display()
        ))
    })
}

/// The config files of the repository whose `.git` (folder, or file naming one) is `git`.
fn configs(git: &Path) -> Vec<PathBuf> {
    let dir = match fs::read_to_string(git) {
        Ok(text) => match (text.strip_prefix("gitdir:"), git.parent()) {
            (Some(target), Some(parent)) => parent.join(target.trim()),
            _ => return Vec::new(),
        },
        Err(_) => git.to_path_buf(),
    };
    let common = fs::read_to_string(dir.join("commondir"))
        .ok()
        .map(|c| dir.join(c.trim()));
    [Some(dir), common]
        .into_iter()
        .flatten()
        .flat_map(|d| [d.join("config"), d.join("config.worktree")])
        .collect()
}

/// The first setting of a config text that runs code: `[filter "x"]`, `diff.external`.
fn risky(text: &str) -> Option<String> {
    let mut section = String::new();
    for line in text.lines() {
        let mut line = line.trim();
        if let Some((header, rest)) = line.strip_prefix('[').and_then(|h| h.split_once(']')) {
            let header = header.trim();
            if risky_section(header) {
                return Some(format!("[{header}]"));
            }
            section = header.to_ascii_lowercase();
            line = rest.trim();
        }
        let key = line.split(['=', ' ', '\t']).next().unwrap_or("");
        if section == "diff" && key.eq_ignore_ascii_case("external") {
            return Some("diff.external".to_string());
        }
    }
    None
}

/// Whether a section header (`filter "x"`, `diff.x`) runs code.
fn risky_section(header: &str) -> bool {
    let (name, driver) = match header.split_once([' ', '\t', '.']) {
        Some((name, _)) => (name, true),
        None => (header, false),
    };
    let name = name.to_ascii_lowercase();
    RUNS_CODE.contains(&name.as_str()) || (driver && DRIVERS.contains(&name.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    #[test]
    fn drivers_and_includes_run_code_plain_settings_do_not() {
        for text in [
            "[filter \"lfs\"]\n\tclean = x",
            "\t[diff \"evil\"]",
            "[merge \"m\"]",
            "[include]\n\tpath = other",
            "[includeIf \"gitdir:~/x\"]",
            "[FILTER.x]",
            "[diff]\n\texternal = evil",
            "[diff] external=evil",
            "[core]\n[Diff]\n\tExternal\t= evil",
        ] {
            assert!(risky(text).is_some(), "{text}");
        }
        for text in [
            "[core]\n\tbare = false",
            "[diff]\n\talgorithm = patience",
            "[remote \"origin\"]\n\turl = x",
            "[core]\n\texternal = x",
            "[branch \"main\"]",
        ] {
            assert_eq!(risky(text), None, "{text}");
        }
    }

    #[test]
    fn the_repository_is_found_above_and_through_a_gitdir_file() {
        let tmp = TempDir::new("git-config");
        let repo = tmp.path().join("repo");
        fs::create_dir_all(repo.join(".git")).unwrap();
        fs::create_dir_all(repo.join("src/deep")).unwrap();
        fs::write(repo.join(".git/config"), "[core]\n\tbare = false\n").unwrap();
        assert_eq!(runs_repository_code(&repo.join("src/deep")), None);
        fs::write(repo.join(".git/config"), "[filter \"x\"]\n\tclean = evil\n").unwrap();
        assert!(runs_repository_code(&repo.join("src/deep")).is_some());
        // A worktree: `.git` is a file naming the real folder.
        let tree = tmp.path().join("tree");
        fs::create_dir_all(&tree).unwrap();
        fs::write(
            tree.join(".git"),
            format!("gitdir: {}\n", repo.join(".git").display()),
        )
        .unwrap();
        assert!(runs_repository_code(&tree).is_some());
        assert_eq!(runs_repository_code(tmp.path()), None, "no repository");
    }
}
