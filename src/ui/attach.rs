//! `@path` in a message: the file's content attached to it, read only when the read
//! tool could read it too (the gate's Read check: deny rules, the workspace, symlinks
//! resolved); and Tab completion of slash commands and of paths, which skips files git
//! ignores and files a deny rule covers.

use super::term::{plural, sanitize};
use crate::approval::{Gate, Verdict};
use crate::tools::Action;
use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

/// An `@file` brings at most this much: the same 12 KB a tool result may.
const ATTACH_LIMIT: usize = 12 * 1024;
/// Path completions offered at once; a directory with more is narrowed by typing.
const COMPLETION_LIMIT: usize = 200;

/// What became of one `@path` in a message.
#[derive(Debug, PartialEq)]
pub enum Attachment {
    Attached {
        path: String,
        bytes: usize,
        total: u64,
    },
    Refused {
        path: String,
        why: String,
    },
}

impl Attachment {
    pub fn describe(&self) -> String {
        match self {
            Attachment::Attached { path, bytes, total } if (*bytes as u64) < *total => format!(
                "attached {} (first {} of {} bytes)",
                sanitize(path),
                bytes,
                total
            ),
            Attachment::Attached { path, bytes, .. } => {
                format!("attached {} ({})", sanitize(path), plural(*bytes, "byte"))
            }
            Attachment::Refused { path, why } => {
                format!("not attached: {} {why}", sanitize(path))
            }
        }
    }
}

/// The message with the content of each `@path` file appended, and what was attached.
pub fn attach(message: &str, root: &Path, gate: &Gate) -> (String, Vec<Attachment>) {
    let mut text = message.to_string();
    let mut seen: Vec<String> = Vec::new();
    let mut notes = Vec::new();
    for word in message.split_whitespace() {
        let Some(raw) = word.strip_prefix('@').filter(|r| !r.is_empty()) else {
            continue;
        };
        let trimmed = raw.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '"', '\'']);
        let name = match root.join(raw).exists() {
            true => raw,
            false => trimmed,
        };
        if name.is_empty() || seen.iter().any(|s| s == name) {
            continue;
        }
        seen.push(name.to_string());
        match readable(gate, root, name)
            .and_then(|path| read_attachment(&path).map_err(String::from))
        {
            Ok((content, total)) => {
                text.push_str(&format!("\n\n<file path=\"{name}\">\n{content}"));
                if (content.len() as u64) < total {
                    text.push_str(&format!(
                        "\n[nib: only the first {} of {total} bytes are attached; read the file for the rest]",
                        content.len()
                    ));
                }
                text.push_str("\n</file>");
                notes.push(Attachment::Attached {
                    path: name.to_string(),
                    bytes: content.len(),
                    total,
                });
            }
            Err(why) => notes.push(Attachment::Refused {
                path: name.to_string(),
                why,
            }),
        }
    }
    (text, notes)
}

/// A file's text, up to `ATTACH_LIMIT` bytes, and its full size. Binary files are refused.
fn read_attachment(path: &Path) -> Result<(String, u64), &'static str> {
    let meta = fs::metadata(path).map_err(|_| "does not exist; sent as text")?;
    if meta.is_dir() {
        return Err("is a directory; name a file");
    }
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|f| f.take(ATTACH_LIMIT as u64).read_to_end(&mut bytes))
        .map_err(|_| "cannot be read")?;
    if bytes.contains(&0) {
        return Err("is binary");
    }
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        // Cut inside a character at the limit: keep the whole characters before it.
        Err(e) if e.utf8_error().error_len().is_none() => {
            let valid = e.utf8_error().valid_up_to();
            let mut bytes = e.into_bytes();
            bytes.truncate(valid);
            String::from_utf8(bytes).map_err(|_| "is binary")?
        }
        Err(_) => return Err("is binary"),
    };
    Ok((text, meta.len()))
}

/// Tab: slash commands at the start of the line, workspace paths after `@`.
pub fn complete(
    buffer: &str,
    cursor: usize,
    root: &Path,
    gate: &Gate,
    commands: &[&str],
) -> Vec<String> {
    let before = &buffer[..cursor.min(buffer.len())];
    let start = before
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_whitespace())
        .map_or(0, |(i, c)| i + c.len_utf8());
    let word = &before[start..];
    if start == 0 && word.starts_with('/') {
        return commands
            .iter()
            .map(|name| name.to_string())
            .filter(|name| name.starts_with(word) && name != "/?")
            .collect();
    }
    match word.strip_prefix('@') {
        Some(partial) => complete_path(partial, root, gate)
            .into_iter()
            .map(|p| format!("@{p}"))
            .collect(),
        None => Vec::new(),
    }
}

/// Entries of the directory `partial` names that start with its last part; directories
/// end in `/`. Hidden entries only when asked for with a leading dot; never what git
/// ignores or a deny rule keeps from the read tool.
fn complete_path(partial: &str, root: &Path, gate: &Gate) -> Vec<String> {
    let (dir, prefix) = match partial.rfind('/') {
        Some(i) => (&partial[..=i], &partial[i + 1..]),
        None => ("", partial),
    };
    let base = root.join(dir);
    let walk = ignore::WalkBuilder::new(&base)
        .max_depth(Some(1))
        .hidden(!prefix.starts_with('.'))
        .require_git(false)
        .build();
    let mut found: Vec<String> = walk
        .filter_map(Result::ok)
        .filter(|e| e.depth() == 1)
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let denied = matches!(gate.check(&read(e.path())), Verdict::Deny(_));
            let slash = if e.path().is_dir() { "/" } else { "" };
            (name.starts_with(prefix) && !denied).then(|| format!("{dir}{name}{slash}"))
        })
        .take(COMPLETION_LIMIT)
        .collect();
    found.sort();
    found
}

fn read(path: &Path) -> Action {
    Action::Read {
        path: path.to_path_buf(),
        offset: None,
        limit: None,
    }
}

/// The path to read for `@name` when the read tool could read it without asking; else
/// why not.
fn readable(gate: &Gate, root: &Path, name: &str) -> Result<std::path::PathBuf, String> {
    let path = root.join(name);
    match gate.check(&read(&path)) {
        Verdict::Allow => Ok(path),
        Verdict::Deny(why) => Err(format!("is refused: {why}")),
        Verdict::Ask(why) => Err(format!(
            "needs approval to read ({why}); ask the model to read it"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::{Mode, RuleSet};
    use crate::testing::TempDir;

    fn gate(dir: &TempDir, deny: &[&str]) -> Gate {
        let rules = RuleSet {
            allow: Vec::new(),
            ask: Vec::new(),
            deny: deny.iter().map(|r| r.to_string()).collect(),
        };
        Gate::new(rules, Mode::Default, dir.workspace()).unwrap()
    }

    #[test]
    fn completes_commands_and_paths() {
        let dir = TempDir::new("complete");
        dir.put("src/main.rs", b"");
        dir.put("src/model.rs", b"");
        dir.put("README.md", b"");
        dir.put(".hidden", b"");
        let gate = gate(&dir, &[]);
        let commands = ["/help", "/clear", "/cost", "/compact", "/context", "/?"];
        let check = |buffer: &str, expected: &[&str]| {
            let got = complete(buffer, buffer.len(), dir.path(), &gate, &commands);
            assert_eq!(got, expected, "{buffer:?}");
        };
        check("/he", &["/help"]);
        check("/c", &["/clear", "/cost", "/compact", "/context"]);
        check("look at /he", &[]);
        check("see @s", &["@src/"]);
        check("see @src/m", &["@src/main.rs", "@src/model.rs"]);
        check("@src/ma", &["@src/main.rs"]);
        check("@", &["@README.md", "@src/"]);
        check("@.h", &["@.hidden"]);
        check("@nope/x", &[]);
        check("plain wor", &[]);
    }

    #[test]
    fn attaches_named_files() {
        let dir = TempDir::new("attach");
        dir.put("a.txt", b"alpha\n");
        dir.put("bin.dat", b"\x00\x01\x02");
        dir.put("big.txt", vec![b'x'; ATTACH_LIMIT + 100]);
        let gate = gate(&dir, &[]);
        let (text, notes) = attach("check @a.txt, @a.txt and @bin.dat", dir.path(), &gate);
        assert_eq!(
            text,
            "check @a.txt, @a.txt and @bin.dat\n\n<file path=\"a.txt\">\nalpha\n\n</file>"
        );
        assert_eq!(
            notes,
            vec![
                Attachment::Attached {
                    path: "a.txt".into(),
                    bytes: 6,
                    total: 6
                },
                Attachment::Refused {
                    path: "bin.dat".into(),
                    why: "is binary".into()
                },
            ]
        );
        let (text, notes) = attach("@big.txt", dir.path(), &gate);
        assert!(text.contains(&format!(
            "only the first {ATTACH_LIMIT} of {} bytes",
            ATTACH_LIMIT + 100
        )));
        assert_eq!(
            notes[0].describe(),
            format!(
                "attached big.txt (first {ATTACH_LIMIT} of {} bytes)",
                ATTACH_LIMIT + 100
            )
        );
        let (text, notes) = attach("mail me@example.com or @ghost", dir.path(), &gate);
        assert_eq!(text, "mail me@example.com or @ghost");
        assert_eq!(
            notes[0].describe(),
            "not attached: ghost does not exist; sent as text"
        );
    }

    #[test]
    fn attachment_cut_inside_a_character_keeps_whole_characters() {
        let dir = TempDir::new("utf8");
        let mut content = vec![b'a'; ATTACH_LIMIT - 1];
        content.extend("é and more".as_bytes());
        dir.put("u.txt", &content);
        let (text, _) = read_attachment(&dir.join("u.txt")).unwrap();
        assert_eq!(text.len(), ATTACH_LIMIT - 1);
    }

    #[test]
    fn denied_and_ignored_files_are_neither_attached_nor_completed() {
        let dir = TempDir::new("denied");
        dir.put("secrets.txt", b"TOKEN=1\n");
        dir.put("notes.txt", b"hello\n");
        dir.put("build.log", b"log\n");
        dir.put(".gitignore", b"*.log\n");
        let denying = gate(&dir, &["Read(./secrets.txt)"]);
        let (text, notes) = attach("explain @secrets.txt", dir.path(), &denying);
        assert_eq!(text, "explain @secrets.txt", "nothing attached");
        assert!(notes[0].describe().contains("refused"), "{:?}", notes);
        // The control: without the rule, the same file is attached.
        let open = gate(&dir, &[]);
        let (text, _) = attach("explain @secrets.txt", dir.path(), &open);
        assert!(text.contains("TOKEN=1"), "{text}");
        // Completion: the denied file and the ignored one are not offered.
        let got = complete("@", 1, dir.path(), &denying, &[]);
        assert_eq!(got, ["@notes.txt"]);
        let got = complete("@", 1, dir.path(), &open, &[]);
        assert_eq!(got, ["@notes.txt", "@secrets.txt"]);
    }
}
