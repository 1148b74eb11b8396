//! Instruction files (AGENTS.md, CLAUDE.md, …): the user's own, then the repository's
//! from its root down to the working directory, `@path` imports followed, the total
//! capped; and those of a subdirectory, once, when the model first touches a file there.
//!
//! Their text is data the user wrote for the model: it goes into the prompt as written.
//! Nothing in it is ever run, and nothing in it changes what the approval gate allows.
//! A repository's file that resolves outside the repository, or to a `.env` file, is
//! left out with a warning, whether it is found by name or imported.

use super::Part;
use crate::paths::{Workspace, normalize, short_path};
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The files read in every directory, in this order.
const NAMES: [&str; 5] = [
    "AGENTS.md",
    "AGENT.md",
    "CLAUDE.md",
    ".claude/CLAUDE.md",
    "CLAUDE.local.md",
];
/// Instruction text kept at most (Codex's cap): more would crowd out the task itself.
pub const TOTAL_MAX: usize = 32 * 1024;
/// `@path` imports are followed at most this many hops deep (Claude Code's limit).
const IMPORT_HOPS: usize = 4;

/// Who wrote a file, which decides what it may import.
#[derive(Clone, Copy)]
enum Scope<'a> {
    /// The user's own files: any file.
    User,
    /// A repository's files: only files inside its root, and never `.env` files, so a
    /// cloned repository cannot pull the user's secrets into the prompt.
    Project(&'a Path),
}

impl Scope<'_> {
    /// Why the file at canonical path `real` may not be read, if it may not.
    fn refuses(self, real: &Path) -> Option<&'static str> {
        let Scope::Project(root) = self else {
            return None;
        };
        let name = real.file_name().unwrap_or_default().to_string_lossy();
        if !real.starts_with(root) {
            Some("it resolves outside the repository")
        } else if name.starts_with(".env") {
            Some("it is a .env file")
        } else {
            None
        }
    }
}

/// What was found: the parts for the prompt, and one line per file left out.
#[derive(Debug, Default)]
pub struct Found {
    pub parts: Vec<Part>,
    pub warnings: Vec<String>,
}

/// The nearest ancestor of `cwd` (itself included) that holds `.git`; `cwd` when none.
pub fn repo_root(cwd: &Path) -> PathBuf {
    cwd.ancestors()
        .find(|d| d.join(".git").exists())
        .unwrap_or(cwd)
        .to_path_buf()
}

/// `cwd` and its parents up to `root` (itself included), nearest first.
pub fn up_to_root<'a>(cwd: &'a Path, root: &Path) -> Vec<&'a Path> {
    let mut dirs = Vec::new();
    for dir in cwd.ancestors() {
        dirs.push(dir);
        if dir == root {
            break;
        }
    }
    dirs
}

/// One part per file, each under a line naming it: the user's files, then the
/// repository's from its root down to `cwd` (nearest last), each followed by what it
/// imports. Over `TOTAL_MAX`, the rest is cut with a note.
pub fn load(cwd: &Path, home: Option<&Path>, nib_config: Option<&Path>) -> Found {
    let root = repo_root(cwd);
    let mut files = Files::new(home);
    let user = [
        home.map(|h| h.join(".claude/CLAUDE.md")),
        home.map(|h| h.join(".codex/AGENTS.md")),
        nib_config.map(|c| c.join("AGENT.md")),
    ];
    for path in user.iter().flatten() {
        files.add(path, Scope::User, 0);
    }
    for dir in up_to_root(cwd, &root).into_iter().rev() {
        for name in NAMES {
            files.add(&dir.join(name), Scope::Project(&root), 0);
        }
    }
    let labelled = files.found.into_iter().map(|(path, text)| {
        let label = short_path(&path, home);
        (label.clone(), format!("# {label}\n{text}"))
    });
    Found {
        parts: cap(labelled.collect()),
        warnings: files.refused,
    }
}

/// The instruction files of the subdirectories of the workspace that hold `path` and
/// are not in `added` yet, as text to append to a tool result (with the files left
/// out); marks those directories added.
pub fn for_path(
    workspace: &Workspace,
    path: &Path,
    added: &mut HashSet<PathBuf>,
) -> (String, Vec<String>) {
    let root = &workspace.root;
    let Ok(rel) = path.strip_prefix(root) else {
        return Default::default();
    };
    let depth = rel
        .components()
        .count()
        .saturating_sub(usize::from(!path.is_dir()));
    let mut dir = root.to_path_buf();
    let mut fresh = Vec::new();
    for part in rel.components().take(depth) {
        dir.push(part);
        if added.insert(dir.clone()) {
            fresh.push(dir.clone());
        }
    }
    if fresh.is_empty() {
        return Default::default();
    }
    let repo = repo_root(root);
    let mut files = Files::new(workspace.home.as_deref());
    for dir in fresh {
        for name in NAMES {
            files.add(&dir.join(name), Scope::Project(&repo), 0);
        }
    }
    let labelled = files.found.into_iter().map(|(path, text)| {
        let label = path.strip_prefix(root).unwrap_or(&path).display();
        let label = label.to_string();
        let text = format!("\n\n[instructions from {label}]\n{text}");
        (label, text)
    });
    let parts = cap(labelled.collect());
    (parts.into_iter().map(|p| p.text).collect(), files.refused)
}

/// The files found so far, each once (by canonical path), in order.
#[derive(Default)]
struct Files<'a> {
    home: Option<&'a Path>,
    seen: HashSet<PathBuf>,
    found: Vec<(PathBuf, String)>,
    /// One line per file left out because its scope refuses it.
    refused: Vec<String>,
}

impl<'a> Files<'a> {
    fn new(home: Option<&'a Path>) -> Files<'a> {
        Files {
            home,
            ..Files::default()
        }
    }

    /// Adds `path` if it is a readable text file not seen before that its scope
    /// permits, then what it imports.
    fn add(&mut self, path: &Path, scope: Scope, hops: usize) {
        let Ok(real) = path.canonicalize() else {
            return;
        };
        if !real.is_file() || self.seen.contains(&real) {
            return;
        }
        if let Some(why) = scope.refuses(&real) {
            let shown = short_path(path, self.home);
            self.refused.push(format!(
                "instruction file {shown} is left out: {why} ({})",
                short_path(&real, self.home)
            ));
            return;
        }
        let Some(text) = read_text(&real) else {
            return;
        };
        self.seen.insert(real);
        let imports = match hops < IMPORT_HOPS {
            true => imports(&text),
            false => Vec::new(),
        };
        self.found
            .push((path.to_path_buf(), text.trim_end().to_string()));
        let base = path.parent().unwrap_or(Path::new("/"));
        for import in imports {
            let target = normalize(base, self.home, Path::new(&import));
            self.add(&target, scope, hops + 1);
        }
    }
}

/// The file as text, read no further than the cap; `None` for binary files.
fn read_text(path: &Path) -> Option<String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(TOTAL_MAX as u64 + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    let text = String::from_utf8_lossy(&bytes);
    (!text.contains('\0')).then(|| text.into_owned())
}

/// Keeps (label, text) pairs while they fit in `TOTAL_MAX`; the one that does not is cut,
/// with a note saying so, and the rest are dropped.
fn cap(files: Vec<(String, String)>) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut left = TOTAL_MAX;
    let count = files.len();
    for (i, (label, text)) in files.into_iter().enumerate() {
        if text.len() <= left {
            left -= text.len();
            parts.push(Part { label, text });
            continue;
        }
        let mut cut = left;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let more = match count - i - 1 {
            0 => String::new(),
            n => format!(" and {n} more file(s)"),
        };
        let text = format!(
            "{}\n[nib: instruction files are capped at {} KiB; the rest of {label}{more} was left out]",
            &text[..cut],
            TOTAL_MAX / 1024
        );
        parts.push(Part { label, text });
        break;
    }
    parts
}

/// The `@path` imports of a text, outside code spans and fenced blocks, in order.
fn imports(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let run = |c: char| trimmed.chars().take_while(|&x| x == c).count();
        let marker = ['`', '~']
            .into_iter()
            .map(|c| (c, run(c)))
            .find(|m| m.1 >= 3);
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some((c, n)), Some((d, m))) if c == d && m >= n && trimmed[m..].trim().is_empty() => {
                fence = None
            }
            _ => {}
        }
        if fence.is_some() || marker.is_some() {
            continue;
        }
        let words = without_code_spans(line);
        for word in words.split_whitespace() {
            let word = word.trim_start_matches(['(', '[', '"', '\'']);
            let Some(path) = word.strip_prefix('@') else {
                continue;
            };
            let path = path.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '"', '\'']);
            if !path.is_empty() && !path.starts_with('@') {
                out.push(path.to_string());
            }
        }
    }
    out
}

/// The line with each inline code span (`` `x` ``, ``` ``x`` ```) replaced by a space.
fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(open) = rest.find('`') {
        out.push_str(&rest[..open]);
        let ticks = backticks(&rest[open..]);
        let after = &rest[open + ticks..];
        match closing(after, ticks) {
            Some(end) => {
                out.push(' ');
                rest = &after[end..];
            }
            None => {
                out.push_str(&rest[open..open + ticks]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn backticks(text: &str) -> usize {
    text.bytes().take_while(|&b| b == b'`').count()
}

/// The end of the first run of exactly `ticks` backticks in `text`.
fn closing(text: &str, ticks: usize) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].find('`') {
        let start = from + at;
        let run = backticks(&text[start..]);
        if run == ticks {
            return Some(start + run);
        }
        from = start + run;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_skip_code() {
        let check = |text: &str, expected: &[&str]| {
            assert_eq!(imports(text), expected, "{text:?}");
        };
        check(
            "See @README.md and @docs/a.md.",
            &["README.md", "docs/a.md"],
        );
        check("@~/x.md\n- also (@b.md)", &["~/x.md", "b.md"]);
        check("mail a@b.c or @ alone or @@x", &[]);
        check(
            "`@span.md` and ``@two `ticks`.md`` but @yes.md",
            &["yes.md"],
        );
        check("unclosed ` @open.md", &["open.md"]);
        check("```\n@fenced.md\n```\n@after.md", &["after.md"]);
        check("~~~sh\n@in.md\n```\n@still.md\n~~~\n@out.md", &["out.md"]);
        check("````\n```\n@in.md\n```\n````\n@out.md", &["out.md"]);
    }

    #[test]
    fn cap_cuts_with_a_note() {
        let big = "x".repeat(TOTAL_MAX - 10);
        let parts = cap(vec![
            ("a".into(), big.clone()),
            ("b".into(), "é".repeat(20)),
            ("c".into(), "never".into()),
        ]);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].text, big);
        assert!(parts[1].text.starts_with("ééééé\n[nib: instruction files are capped at 32 KiB; the rest of b and 1 more file(s) was left out]"), "{}", parts[1].text);
        let small = cap(vec![("a".into(), "short".into())]);
        assert_eq!(small[0].text, "short");
    }
}
