//! Permission rules as Claude Code writes them (`Bash(npm run test *)`, `Read(./.env)`,
//! `Edit`): parsing one rule string and matching it against a command line or a path.
//!
//! Which rule wins, and what modes mean, is `mod.rs`'s job.

use crate::tools::Tool;
use regex::Regex;
use std::path::{Path, PathBuf};

/// The tools a rule can name. `Write` rules mean the same as `Edit` rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleTool {
    Bash,
    /// Covers every tool that reads files: read, grep, glob.
    Read,
    /// Covers every tool that writes files: write, edit.
    Edit,
    Glob,
    Grep,
    /// `mcp__server` or `mcp__server__tool` (the rule's text says which).
    Mcp,
}

impl RuleTool {
    /// Rule names exactly as Claude Code spells them; other names are not ours.
    fn from_rule_name(name: &str) -> Option<RuleTool> {
        match name {
            "Bash" => Some(RuleTool::Bash),
            "Read" => Some(RuleTool::Read),
            "Edit" | "Write" => Some(RuleTool::Edit),
            "Glob" => Some(RuleTool::Glob),
            "Grep" => Some(RuleTool::Grep),
            _ => None,
        }
    }

    pub fn covers(self, tool: Tool) -> bool {
        match self {
            RuleTool::Bash => tool == Tool::Bash,
            RuleTool::Read => matches!(tool, Tool::Read | Tool::Grep | Tool::Glob),
            RuleTool::Edit => matches!(tool, Tool::Write | Tool::Edit),
            RuleTool::Glob => tool == Tool::Glob,
            RuleTool::Grep => tool == Tool::Grep,
            RuleTool::Mcp => false,
        }
    }
}

/// What a rule's specifier says.
#[derive(Clone, Debug)]
pub enum Spec {
    /// No specifier: every use of the tool.
    Any,
    Command(CommandPattern),
    Path(PathPattern),
}

/// One compiled rule, with where it came from for messages.
#[derive(Clone, Debug)]
pub struct Rule {
    pub text: String,
    pub source: String,
    pub tool: RuleTool,
    pub spec: Spec,
}

impl Rule {
    /// `Bash(rm *) (from ~/.claude/settings.json)`, for verdict reasons.
    pub fn describe(&self) -> String {
        format!("{} (from {})", self.text, self.source)
    }
}

/// What relative rule paths are anchored to.
#[derive(Clone, Copy, Debug)]
pub struct Anchors<'a> {
    /// The project root (`/p`) and the working directory (`p`, `./p`).
    pub root: &'a Path,
    /// Home for `~/p`.
    pub home: Option<&'a Path>,
}

/// Parses one rule. `Ok(None)` for tools nib does not have (`WebFetch`, `mcp__x`):
/// users share settings files with other tools.
pub fn parse(text: &str, source: &str, anchors: Anchors) -> Result<Option<Rule>, String> {
    let malformed = |why: &str| format!("{source}: malformed rule `{text}`: {why}");
    let trimmed = text.trim();
    let (name, spec) = match trimmed.find('(') {
        Some(open) => {
            let Some(inner) = trimmed[open + 1..].strip_suffix(')') else {
                return Err(malformed("it must end with `)`"));
            };
            (&trimmed[..open], Some(inner))
        }
        None if trimmed.contains(')') => return Err(malformed("unbalanced `)`")),
        None => (trimmed, None),
    };
    let rule = |tool, spec| Rule {
        text: trimmed.to_string(),
        source: source.to_string(),
        tool,
        spec,
    };
    if name.starts_with("mcp__") {
        if spec.is_some() && !trimmed.ends_with("__*") {
            return Err(malformed(
                "MCP rules take no specifier: mcp__server or mcp__server__tool",
            ));
        }
        return Ok(Some(rule(RuleTool::Mcp, Spec::Any)));
    }
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(malformed("a rule is `Tool` or `Tool(specifier)`"));
    }
    let Some(tool) = RuleTool::from_rule_name(name) else {
        let known = ["Bash", "Read", "Edit", "Write", "Glob", "Grep"];
        if let Some(k) = known.iter().find(|k| k.eq_ignore_ascii_case(name)) {
            return Err(malformed(&format!(
                "tool names are case-sensitive: write {k}"
            )));
        }
        return Ok(None);
    };
    let spec = match spec.map(str::trim) {
        None | Some("*") | Some("**") if tool == RuleTool::Bash => Spec::Any,
        None => Spec::Any,
        Some("") => return Err(malformed("the specifier is empty; write the tool alone")),
        Some(s) if tool == RuleTool::Bash => Spec::Command(CommandPattern::new(s)),
        Some(s) => Spec::Path(PathPattern::new(s, anchors).map_err(|e| malformed(&e))?),
    };
    Ok(Some(rule(tool, spec)))
}

/// Whether an MCP rule covers the tool the model calls `name` (`mcp__s__t`): the server
/// rule `mcp__s`, `mcp__s__*`, or the tool itself.
pub fn mcp_matches(rule: &Rule, name: &str) -> bool {
    let text = rule.text.strip_suffix("__*").unwrap_or(&rule.text);
    rule.tool == RuleTool::Mcp
        && (name == text
            || name
                .strip_prefix(text)
                .is_some_and(|rest| rest.starts_with("__")))
}

/// A `Bash(…)` specifier: `*` matches any text; a trailing ` *` also matches the
/// bare prefix (`ls *` matches `ls` and `ls -la`, not `lsof`); `git diff:*` is the
/// legacy spelling of `git diff *`.
#[derive(Clone, Debug)]
pub struct CommandPattern {
    glob: Vec<char>,
    /// With a trailing ` *`: the length of the part before it.
    prefix_len: Option<usize>,
}

impl CommandPattern {
    pub fn new(spec: &str) -> CommandPattern {
        let spec = match spec.strip_suffix(":*") {
            Some(prefix) => format!("{} *", prefix.trim_end()),
            None => spec.to_string(),
        };
        let glob: Vec<char> = spec.chars().collect();
        let prefix_len = spec
            .strip_suffix(" *")
            .map(|p| p.trim_end().chars().count());
        CommandPattern { glob, prefix_len }
    }

    /// True when the whole command line matches.
    pub fn matches(&self, command: &str) -> bool {
        let end = self.glob.len();
        let states = run_glob(&self.glob, command);
        states[end]
            || self.prefix_len.is_some_and(|n| {
                let prefix = &self.glob[..n];
                run_glob(prefix, command)[n]
            })
    }

    /// True when some command line starting with `start` could match: used when the
    /// rest of a command is only known at run time.
    pub fn could_match_from(&self, start: &str) -> bool {
        run_glob(&self.glob, start).iter().any(|&s| s)
    }
}

/// Runs the glob as an automaton over `text`; returns which pattern positions are
/// reachable after all of it (index `len` = the whole pattern matched).
fn run_glob(glob: &[char], text: &str) -> Vec<bool> {
    let mut states = vec![false; glob.len() + 1];
    states[0] = true;
    close_stars(glob, &mut states);
    for c in text.chars() {
        let mut next = vec![false; glob.len() + 1];
        for i in 0..glob.len() {
            if !states[i] {
                continue;
            }
            if glob[i] == '*' {
                next[i] = true;
            } else if glob[i] == c {
                next[i + 1] = true;
            }
        }
        close_stars(glob, &mut next);
        if !next.iter().any(|&s| s) {
            return next;
        }
        states = next;
    }
    states
}

/// A `*` may match nothing: being before it means being after it too.
fn close_stars(glob: &[char], states: &mut [bool]) {
    for i in 0..glob.len() {
        if states[i] && glob[i] == '*' {
            states[i + 1] = true;
        }
    }
}

/// A gitignore-style path specifier, compiled against absolute paths.
#[derive(Clone, Debug)]
pub struct PathPattern {
    regex: Regex,
}

impl PathPattern {
    /// `//abs`, `~/p` (home), `/p` (project root), `./p` or `p` (working directory).
    /// A pattern without a slash (`*.env`) matches at any depth below its anchor; a
    /// directory matches everything in it.
    pub fn new(spec: &str, anchors: Anchors) -> Result<PathPattern, String> {
        let (base, body) = split_anchor(spec, anchors)?;
        let anchored = spec.starts_with(['/', '~']) || spec.starts_with("./");
        let anywhere = !anchored && !body.trim_end_matches('/').contains('/');
        let body = body.trim_end_matches('/');
        let base = base.to_string_lossy();
        let base = base.trim_end_matches('/');
        let mut re = format!("^{}", regex::escape(base));
        if !body.is_empty() {
            re.push_str(if anywhere { "/(?:.*/)?" } else { "/" });
            re.push_str(&glob_to_regex(body)?);
        }
        re.push_str("(?:/.*)?$");
        let regex = Regex::new(&re).map_err(|e| format!("bad pattern: {e}"))?;
        Ok(PathPattern { regex })
    }

    pub fn matches(&self, path: &Path) -> bool {
        self.regex.is_match(&path.to_string_lossy())
    }
}

/// Splits a specifier into the directory it is anchored to and the pattern below it.
fn split_anchor<'s>(spec: &'s str, anchors: Anchors) -> Result<(PathBuf, &'s str), String> {
    if let Some(abs) = spec.strip_prefix("//") {
        return Ok((PathBuf::from("/"), abs));
    }
    if spec == "~" || spec.starts_with("~/") {
        let home = anchors
            .home
            .ok_or("`~` needs a home directory, and none is known")?;
        return Ok((home.to_path_buf(), spec[1..].trim_start_matches('/')));
    }
    if let Some(rel) = spec.strip_prefix('/') {
        return Ok((anchors.root.to_path_buf(), rel));
    }
    let rel = spec.strip_prefix("./").unwrap_or(spec);
    let rel = if rel == "." { "" } else { rel };
    if rel.split('/').any(|c| c == "..") {
        return Err("`..` is not allowed in rule paths; write `//absolute/path`".into());
    }
    Ok((anchors.root.to_path_buf(), rel))
}

/// `**` any directories, `*` within one component, `?` one character, `[…]` a class.
fn glob_to_regex(glob: &str) -> Result<String, String> {
    let chars: Vec<char> = glob.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                let slash = chars.get(i + 2) == Some(&'/');
                out.push_str(if slash { "(?:.*/)?" } else { ".*" });
                i += if slash { 3 } else { 2 };
                continue;
            }
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '[' => {
                let close = chars[i + 1..]
                    .iter()
                    .skip(1)
                    .position(|&c| c == ']')
                    .map(|p| i + 2 + p)
                    .ok_or("unclosed `[` in the pattern")?;
                let class: String = chars[i + 1..close].iter().collect();
                let class = class
                    .strip_prefix('!')
                    .map_or(class.clone(), |c| format!("^{c}"));
                out.push('[');
                out.push_str(&class.replace('\\', r"\\").replace('[', r"\["));
                out.push(']');
                i = close;
            }
            '\\' if i + 1 < chars.len() => {
                out.push_str(&regex::escape(&chars[i + 1].to_string()));
                i += 1;
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    Ok(out)
}

/// Splits a CLI tool list: commas or spaces separate rules, except inside parentheses
/// (`"Bash(git diff *),Read"` → `Bash(git diff *)`, `Read`).
pub fn parse_tool_list(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' | ' ' | '\t' | '\n' if depth == 0 => {
                out.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    out.push(current);
    out.into_iter()
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .collect()
}
