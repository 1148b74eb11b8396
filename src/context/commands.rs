//! Claude Code's custom slash commands: Markdown files in `.claude/commands/` (the
//! project's, in a trusted folder) and `~/.claude/commands/`, named by their path
//! (`fixit.md` is `/fixit`, `frontend/test.md` is `/frontend:test`), with frontmatter
//! `description`, `argument-hint`, `allowed-tools` and `model`.
//!
//! Expanding one fills in `$ARGUMENTS` and `$1`…`$9`, attaches `@file`s the gate lets
//! the model read, and runs `` !`command` `` lines only when the gate allows them.

use super::instructions::up_to_root;
use super::skills::frontmatter;
use crate::approval::{Gate, Verdict};
use crate::sandbox::Grant;
use crate::tools::{self, Action, Context, clip};
use std::path::{Path, PathBuf};

/// A command file larger than this is a mistake, not a prompt; it is skipped.
const FILE_MAX: u64 = 256 * 1024;

/// Folder depth searched below `commands/` (namespaces are one or two levels in practice).
const DEPTH_MAX: usize = 4;

/// Commands read at most from one folder tree.
const COMMANDS_MAX: usize = 200;

/// How long a `` !`command` `` line may run.
const SHELL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// One custom command.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    /// Without the slash: `fixit`, `frontend:test`.
    pub name: String,
    pub description: String,
    pub argument_hint: Option<String>,
    /// Permission rules that hold while the command runs (`Bash(git add:*)`).
    pub allowed_tools: Vec<String>,
    pub model: Option<String>,
    pub body: String,
    pub path: PathBuf,
}

/// The command folders, most important first: the project's (working directory up to
/// the repository root, when trusted), then the user's.
pub fn search_dirs(
    cwd: &Path,
    repo_root: &Path,
    home: Option<&Path>,
    trusted: bool,
) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if trusted {
        let project = up_to_root(cwd, repo_root).into_iter();
        dirs.extend(project.map(|dir| dir.join(".claude/commands")));
    }
    dirs.extend(home.map(|h| h.join(".claude/commands")));
    dirs
}

/// The commands in `dirs`; the first of a name wins.
pub fn discover(dirs: &[PathBuf]) -> Vec<Command> {
    let mut commands: Vec<Command> = Vec::new();
    for dir in dirs {
        let mut files = Vec::new();
        walk(dir, 0, &mut files);
        files.sort();
        for path in files.into_iter().take(COMMANDS_MAX) {
            let Some(command) = read(dir, &path) else {
                continue;
            };
            if !commands.iter().any(|c| c.name == command.name) {
                commands.push(command);
            }
        }
    }
    commands.sort_by(|a, b| a.name.cmp(&b.name));
    commands
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        if path.is_dir() && depth < DEPTH_MAX {
            walk(&path, depth + 1, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

fn read(dir: &Path, path: &Path) -> Option<Command> {
    let small = std::fs::metadata(path).is_ok_and(|m| m.len() <= FILE_MAX);
    let text = small.then(|| std::fs::read_to_string(path).ok())??;
    let rel = path.strip_prefix(dir).ok()?.with_extension("");
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let (fields, body) = frontmatter(&text);
    let field = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let first_line = body.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    Some(Command {
        name: parts.join(":"),
        description: field("description")
            .unwrap_or_else(|| first_line.trim_start_matches('#').trim().to_string()),
        argument_hint: field("argument-hint"),
        allowed_tools: field("allowed-tools")
            .map(|t| crate::approval::rules::parse_tool_list(&t))
            .unwrap_or_default(),
        model: field("model"),
        body,
        path: path.to_path_buf(),
    })
}

/// The command a prompt `/name args` names, and its arguments.
pub fn find<'c>(commands: &'c [Command], prompt: &'c str) -> Option<(&'c Command, &'c str)> {
    let rest = prompt.trim_start().strip_prefix('/')?;
    let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let command = commands.iter().find(|c| c.name == name)?;
    Some((command, args.trim()))
}

/// `$ARGUMENTS` and `$1`…`$9` filled in; arguments the body does not use are added at
/// the end, so none is lost.
pub fn fill(body: &str, args: &str) -> String {
    let words = split_args(args);
    let mut text = body.replace("$ARGUMENTS", args);
    let mut used = text.len() != body.len() || body.contains("$ARGUMENTS");
    for n in (1..=9).rev() {
        let key = format!("${n}");
        if text.contains(&key) {
            used = true;
            text = text.replace(&key, words.get(n - 1).map_or("", String::as_str));
        }
    }
    match used || args.is_empty() {
        true => text,
        false => format!("{text}\n\nARGUMENTS: {args}"),
    }
}

/// Words, with "double" or 'single' quotes grouping.
fn split_args(args: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    for c in args.chars() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            (_, c) => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// A command ready to send: the prompt, and a line for each thing left out.
pub struct Expanded {
    pub prompt: String,
    pub notes: Vec<String>,
}

/// The command's prompt: arguments filled in, `` !`command` `` output and `@file`
/// contents inserted where `gate` allows them.
pub fn expand(command: &Command, args: &str, gate: &Gate, ctx: &Context) -> Expanded {
    let mut notes = Vec::new();
    let mut prompt = run_shell_lines(&fill(&command.body, args), gate, ctx, &mut notes);
    prompt = format!("[the user ran the command /{}]\n\n{prompt}", command.name);
    let mut attached = Vec::new();
    for word in command.body.split_whitespace() {
        let Some(path) = word
            .strip_prefix('@')
            .map(|p| p.trim_end_matches(['.', ',', ')']))
        else {
            continue;
        };
        if path.is_empty() || attached.contains(&path) {
            continue;
        }
        attached.push(path);
        let read = Action::Read {
            path: PathBuf::from(path),
            offset: None,
            limit: None,
        };
        match gate.check(&read) {
            Verdict::Allow => match std::fs::read(ctx.workspace.resolve(Path::new(path))) {
                Ok(bytes) => prompt.push_str(&format!(
                    "\n\n<file path=\"{path}\">\n{}\n</file>",
                    clip::clip(&bytes)
                )),
                Err(e) => notes.push(format!("/{}: @{path} not attached: {e}", command.name)),
            },
            Verdict::Ask(why) | Verdict::Deny(why) => {
                notes.push(format!("/{}: @{path} not attached: {why}", command.name))
            }
        }
    }
    Expanded { prompt, notes }
}

/// Each `` !`command` `` replaced by its output when the gate allows it, else by a
/// note saying it was not run.
fn run_shell_lines(text: &str, gate: &Gate, ctx: &Context, notes: &mut Vec<String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("!`") {
        let Some(len) = rest[start + 2..].find('`') else {
            break;
        };
        let command = &rest[start + 2..start + 2 + len];
        out.push_str(&rest[..start]);
        let action = Action::Bash {
            command: command.to_string(),
            timeout: SHELL_TIMEOUT,
        };
        match gate.check(&action) {
            Verdict::Allow => {
                let grant = match gate.allows_unasked(&action) {
                    true => Grant::Unasked,
                    false => Grant::Approved,
                };
                let outcome = tools::execute(&action, &Context { grant, ..*ctx });
                let text = outcome
                    .content
                    .strip_prefix("exit status: 0\n")
                    .unwrap_or(&outcome.content);
                out.push_str(text.trim_end());
            }
            Verdict::Ask(why) | Verdict::Deny(why) => {
                notes.push(format!("`{command}` was not run: {why}"));
                out.push_str(&format!("[`{command}` was not run: {why}]"));
            }
        }
        rest = &rest[start + 3 + len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    #[test]
    fn arguments_fill_in() {
        let check = |body: &str, args: &str, expected: &str| {
            assert_eq!(fill(body, args), expected, "{body:?} {args:?}");
        };
        check(
            "Fix issue $ARGUMENTS now",
            "#12 fast",
            "Fix issue #12 fast now",
        );
        check(
            "Review $1 for $2",
            "src/a.rs \"memory leaks\"",
            "Review src/a.rs for memory leaks",
        );
        check("Missing $3.", "a", "Missing .");
        check(
            "No placeholders.",
            "extra words",
            "No placeholders.\n\nARGUMENTS: extra words",
        );
        check("No placeholders.", "", "No placeholders.");
    }

    #[test]
    fn names_come_from_paths_and_project_beats_user() {
        let dir = TempDir::new("commands");
        dir.put("p/fixit.md", b"---\ndescription: Fix it\nargument-hint: [issue]\nallowed-tools: Bash(git add:*), Read\nmodel: small\n---\nFix $ARGUMENTS");
        dir.put("p/frontend/test.md", b"# Run the frontend tests\nnpm test");
        dir.put("u/fixit.md", b"user version");
        dir.put("u/other.txt", b"not a command");
        let found = discover(&[dir.path().join("p"), dir.path().join("u")]);
        let names: Vec<&str> = found.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["fixit", "frontend:test"]);
        assert_eq!(found[0].description, "Fix it");
        assert_eq!(found[0].argument_hint.as_deref(), Some("[issue]"));
        assert_eq!(found[0].allowed_tools, ["Bash(git add:*)", "Read"]);
        assert_eq!(found[0].model.as_deref(), Some("small"));
        assert_eq!(found[1].description, "Run the frontend tests");
        let (cmd, args) = find(&found, "/frontend:test  now ").unwrap();
        assert_eq!((cmd.name.as_str(), args), ("frontend:test", "now"));
        assert!(find(&found, "/nope").is_none());
    }
}
