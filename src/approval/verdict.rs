//! Verdicts: what the gate says about one action. File tools by their resolved path
//! (deny, protected paths, ask, the workspace, the mode), bash by each simple command
//! a line runs (its rules, the read-only table, unsafe syntax, the files it names or
//! walks), MCP tools by name. It reads directories and resolves symlinks to see what a
//! command would open; it changes nothing.

use super::commands::{Seen, commands_in, form_matches, named_args, part_forms};
use super::files::{self, Arg, Looking, Named};
use super::git;
use super::lexer::{self, Redirect, Simple, Word};
use super::readers::{self, Descent};
use super::rules::{self, Rule, RuleTool, Spec};
use super::shell;
use super::{Gate, Mode, Verdict};
use crate::paths::{canonical_prefix, normalize};
use crate::tools::{Action, Tool};
use std::path::{Path, PathBuf};

/// Files and directories under home that run code or hold credentials: writing them
/// always asks.
const PROTECTED_IN_HOME: &[&str] = &[
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".profile",
    ".zshrc",
    ".zprofile",
    ".zshenv",
    ".zlogin",
    ".zlogout",
    ".config/fish",
    ".ssh",
    ".gnupg",
    ".aws",
    ".netrc",
    ".gitconfig",
    ".config/git",
    ".inputrc",
    ".npmrc",
    ".pypirc",
    ".docker",
    ".kube",
    ".config/autostart",
    ".config/systemd",
];

/// Directory names that are protected wherever they are.
const PROTECTED_DIRS: &[&str] = &[".git", ".claude"];
/// File names that are protected wherever they are: `.mcp.json` starts commands when
/// nib next starts in a trusted folder.
const PROTECTED_FILES: &[&str] = &[".mcp.json"];

impl Gate {
    /// Decides one action.
    pub fn check(&self, action: &Action) -> Verdict {
        let verdict = match action {
            Action::Bash { command, .. } => self.check_bash(command),
            // Loads text nib already holds; reading the skill's folder is checked apart.
            Action::Skill { .. } => Verdict::Allow,
            Action::Mcp { name, .. } => self.check_mcp(name),
            _ => self.check_file(action.tool(), &search_base(action)),
        };
        match (self.mode, verdict) {
            (Mode::DontAsk, Verdict::Ask(why)) => {
                Verdict::Deny(format!("{why} (dontAsk mode denies what is not allowed)"))
            }
            (_, verdict) => verdict,
        }
    }

    /// Whether `action` is allowed by nib's built-in read-only set alone, with no rule,
    /// answer or mode behind it (the sandbox confines such commands more tightly).
    pub fn allows_unasked(&self, action: &Action) -> bool {
        let mut plain = self.clone();
        plain.allow.clear();
        plain.mode = Mode::Default;
        plain.check(action) == Verdict::Allow
    }

    /// Whether `search` (a grep or glob the gate let run) may show `path`, one of the
    /// files it walked: no deny rule covers it, nor an ask rule that the search's own
    /// path did not already pass (a search cannot stop to ask about each file).
    pub fn may_search(&self, search: &Action, path: &Path) -> bool {
        let tool = search.tool();
        let mut rules = self.deny.iter().chain(&self.ask);
        if !rules.any(|r| r.tool.covers(tool)) {
            return true;
        }
        let path = self.resolve(path);
        if self.path_rule(&self.deny, tool, &path).is_some() {
            return false;
        }
        let base = self.resolve(&search_base(search));
        self.mode == Mode::Bypass
            || !self
                .ask
                .iter()
                .any(|r| covers(r, tool, &path) && !covers(r, tool, &base))
    }

    /// An MCP tool asks unless a rule allows it (`mcp__server`, `mcp__server__tool`,
    /// `mcp__server__*`); deny and ask rules win as for any tool.
    fn check_mcp(&self, name: &str) -> Verdict {
        let find = |rules: &[Rule]| -> Option<String> {
            let rule = rules.iter().find(|r| rules::mcp_matches(r, name))?;
            Some(rule.describe())
        };
        if let Some(rule) = find(&self.deny) {
            return Verdict::Deny(format!("{name} is denied by {rule}"));
        }
        if let Some(rule) = find(&self.ask) {
            return Verdict::Ask(format!("{name} needs approval by {rule}"));
        }
        match (find(&self.allow), self.mode) {
            (Some(_), _) | (None, Mode::Bypass) => Verdict::Allow,
            _ => Verdict::Ask(format!("{name} is an MCP server's tool")),
        }
    }

    /// Whether a resolved path may be read as if it were inside the workspace.
    fn readable(&self, resolved: &Path) -> bool {
        self.contains(resolved) || self.read_dirs.iter().any(|d| resolved.starts_with(d))
    }

    /// `./src/main.rs` inside the workspace, `//etc/hosts` outside.
    pub fn rule_path(&self, path: &Path) -> String {
        match path.strip_prefix(&self.root) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".into(),
            Ok(rel) => format!("./{}", rel.display()),
            Err(_) => format!("/{}", path.display()),
        }
    }

    pub fn resolve(&self, path: &Path) -> PathBuf {
        canonical_prefix(&normalize(&self.root, self.home.as_deref(), path))
    }

    fn contains(&self, resolved: &Path) -> bool {
        resolved.starts_with(&self.root) || self.extra_roots.iter().any(|d| resolved.starts_with(d))
    }

    /// Why writing `path` always asks, if it is protected.
    pub fn protected(&self, path: &Path) -> Option<String> {
        let under_root = path.strip_prefix(&self.root).unwrap_or(path);
        for c in under_root.components() {
            let name = c.as_os_str().to_string_lossy();
            if PROTECTED_DIRS.contains(&name.as_ref()) {
                return Some(format!("writes to {name}/ always need approval"));
            }
        }
        let name = under_root.file_name().unwrap_or_default().to_string_lossy();
        if PROTECTED_FILES.contains(&name.as_ref()) {
            return Some(format!("writes to {name} always need approval"));
        }
        if self.nib_dirs.iter().any(|d| path.starts_with(d)) {
            return Some("writes to nib's own settings and data always need approval".into());
        }
        let rel = path.strip_prefix(self.home.as_deref()?).ok()?;
        PROTECTED_IN_HOME
            .iter()
            .find(|p| rel.starts_with(p))
            .map(|p| format!("writes to ~/{p} always need approval"))
    }

    fn path_rule<'r>(&self, rules: &'r [Rule], tool: Tool, path: &Path) -> Option<&'r Rule> {
        rules.iter().find(|r| covers(r, tool, path))
    }

    fn check_file(&self, tool: Tool, path: &Path) -> Verdict {
        let path = self.resolve(path);
        let (name, shown) = (tool.name(), path.display());
        let writes = matches!(tool, Tool::Write | Tool::Edit);
        if let Some(rule) = self.path_rule(&self.deny, tool, &path) {
            return Verdict::Deny(format!("{name} {shown} is denied by {}", rule.describe()));
        }
        if self.mode == Mode::Bypass {
            return Verdict::Allow;
        }
        if writes && self.mode == Mode::Plan {
            return Verdict::Deny("plan mode is read-only: no writes".into());
        }
        if let Some(why) = writes.then(|| self.protected(&path)).flatten() {
            return Verdict::Ask(why);
        }
        if let Some(rule) = self.path_rule(&self.ask, tool, &path) {
            return Verdict::Ask(format!("{name} {shown} matches {}", rule.describe()));
        }
        let inside = match writes {
            true => self.contains(&path),
            false => self.readable(&path),
        };
        // A bare `Read`/`Edit` rule covers the workspace; leaving it needs a path rule.
        let reach = |r: &&Rule| inside || !matches!(r.spec, Spec::Any);
        let allowed: Vec<Rule> = self.allow.iter().filter(reach).cloned().collect();
        if self.path_rule(&allowed, tool, &path).is_some() {
            return Verdict::Allow;
        }
        if !inside {
            return Verdict::Ask(format!("{name} {shown} is outside the workspace"));
        }
        if !writes || self.mode == Mode::AcceptEdits {
            return Verdict::Allow;
        }
        Verdict::Ask(format!("{name} {} needs approval", self.rule_path(&path)))
    }

    fn check_bash(&self, command: &str) -> Verdict {
        let parts = match lexer::parse(command) {
            Ok(parts) => parts,
            Err(e) if self.deny.iter().any(|r| r.tool == RuleTool::Bash) => {
                return Verdict::Deny(format!(
                    "the command does not parse ({e}), so deny rules cannot be checked"
                ));
            }
            Err(_) if self.mode == Mode::Bypass => return Verdict::Allow,
            Err(e) => return Verdict::Ask(format!("the command does not parse ({e})")),
        };
        if let Some(deny) = self.denied(command, &parts) {
            return deny;
        }
        if self.mode == Mode::Bypass {
            return Verdict::Allow;
        }
        if let Some(deny) = (self.mode == Mode::Plan)
            .then(|| plan_denies(&parts))
            .flatten()
        {
            return deny;
        }
        if let Some(rule) = self.bash_rule(&self.ask, &parts) {
            return Verdict::Ask(format!("the command matches {}", rule.describe()));
        }
        let mut cwd = self.start_dir(command);
        for part in &parts {
            if let Some(why) = self.part_needs_approval(part, &cwd) {
                return Verdict::Ask(why);
            }
            for seen in commands_in(part).into_iter().flatten() {
                self.moved(&mut cwd, &seen.words);
            }
        }
        Verdict::Allow
    }

    /// Where a command line starts: the workspace. A line that may change what globs
    /// match (`shopt -s dotglob`, `bash -O globstar`, `GLOBIGNORE=…`, a `BASH_ENV`
    /// script) leaves its globs unknown.
    fn start_dir(&self, command: &str) -> Cwd {
        let changes_globs = ["glob", "GLOBIGNORE", "BASH_ENV"];
        Cwd {
            dirs: vec![self.root.clone()],
            unknown: false,
            globs_unknown: changes_globs.iter().any(|w| command.contains(w)),
        }
    }

    /// After `cd DIR` (or `pushd`, `env -C`), later commands may run in DIR too.
    fn moved(&self, cwd: &mut Cwd, words: &[Word]) {
        match shell::changes_dir(words) {
            None => {}
            Some(None) => cwd.unknown = true,
            Some(Some(target)) => match self.expand(&target, cwd) {
                Named::Paths(paths) => cwd.dirs.extend(paths),
                Named::Unknown(_) => cwd.unknown = true,
            },
        }
    }

    /// A deny verdict when any rule could match any part, nested commands included, or
    /// when a command nib can see would open a file a path deny rule covers.
    fn denied(&self, command: &str, parts: &[Simple]) -> Option<Verdict> {
        if let Some(rule) = self.bash_rule(&self.deny, parts) {
            return Some(Verdict::Deny(format!(
                "the command is denied by {}",
                rule.describe()
            )));
        }
        let path_rules = |tool| {
            self.deny
                .iter()
                .find(|r| r.tool.covers(tool) && r.tool != RuleTool::Bash)
        };
        if path_rules(Tool::Read).is_none() && path_rules(Tool::Edit).is_none() {
            return None;
        }
        let mut cwd = self.start_dir(command);
        for seen in parts.iter().flat_map(commands_in) {
            let Some(seen) = seen else {
                let rule = path_rules(Tool::Read).or(path_rules(Tool::Edit))?;
                return Some(Verdict::Deny(format!(
                    "part of the command is computed when it runs, so it may open what {} denies",
                    rule.describe()
                )));
            };
            if let Some(deny) = self.opens_denied(&seen, &cwd) {
                return Some(deny);
            }
            self.moved(&mut cwd, &seen.words);
        }
        None
    }

    /// A deny verdict when a file `seen` names, or one its recursion would open, is
    /// covered by a path deny rule; an unknowable one counts as covered.
    fn opens_denied(&self, seen: &Seen, cwd: &Cwd) -> Option<Verdict> {
        for (tool, arg) in named_args(seen) {
            let Some(rule) = self.deny.iter().find(|r| r.tool.covers(tool)) else {
                continue;
            };
            match self.expand(&arg, cwd) {
                Named::Unknown(_) if arg.loose => {}
                Named::Unknown(why) => {
                    return Some(Verdict::Deny(format!(
                        "{why}, so it may open what {} denies",
                        rule.describe()
                    )));
                }
                Named::Paths(paths) => {
                    for path in paths {
                        if let Some(rule) = self.path_rule(&self.deny, tool, &path) {
                            return Some(Verdict::Deny(format!(
                                "{} {} is denied by {}",
                                tool.name(),
                                path.display(),
                                rule.describe()
                            )));
                        }
                    }
                }
            }
        }
        let descent = readers::walk_of(&seen.words).filter(|d| d.reads)?;
        let rule = self.deny.iter().find(|r| r.tool.covers(Tool::Read))?;
        let denied = |file: &Path| self.path_rule(&self.deny, Tool::Read, file).is_some();
        let walk = self.walk(&descent, cwd, Looking::For(&denied));
        let name = shell::basename(&seen.words[0].text);
        if let Some(file) = walk.found {
            let rule = self
                .path_rule(&self.deny, Tool::Read, &file)
                .unwrap_or(rule);
            return Some(Verdict::Deny(format!(
                "`{name}` would read {} below its directories, denied by {}; name the files instead",
                file.display(),
                rule.describe()
            )));
        }
        (!walk.complete).then(|| {
            Verdict::Deny(format!(
                "`{name}` would read more files than nib can check against {}",
                rule.describe()
            ))
        })
    }

    /// Every file `arg` names, in every directory the command may run in.
    fn expand(&self, arg: &Arg, cwd: &Cwd) -> Named {
        let relative = !arg.text.starts_with(['/', '~']);
        if cwd.unknown && relative {
            return Named::Unknown(format!(
                "{} is relative to a directory an earlier cd chose at run time",
                arg.text
            ));
        }
        if cwd.globs_unknown && arg.glob {
            return Named::Unknown(format!(
                "the glob {} may match more than usual after the shell options this command sets",
                arg.text
            ));
        }
        let mut out = Vec::new();
        for dir in &cwd.dirs {
            match files::expand(arg, dir, self.home.as_deref()) {
                Named::Paths(paths) => out.extend(paths),
                unknown => return unknown,
            }
        }
        out.dedup();
        Named::Paths(out)
    }

    /// Walks where a recursive command starts; incomplete when a start is unknowable.
    fn walk(&self, descent: &Descent, cwd: &Cwd, looking: Looking) -> files::Walk {
        let mut paths = Vec::new();
        for start in &descent.starts {
            match self.expand(start, cwd) {
                Named::Paths(p) => paths.extend(p),
                Named::Unknown(_) => return files::Walk::default(),
            }
        }
        files::walk(&paths, descent.follows, &|p| self.readable(p), looking)
    }

    /// The first bash rule that matches (or might match) some part.
    fn bash_rule<'r>(&self, rules: &'r [Rule], parts: &[Simple]) -> Option<&'r Rule> {
        let bash: Vec<&Rule> = rules.iter().filter(|r| r.tool == RuleTool::Bash).collect();
        if bash.is_empty() {
            return None;
        }
        let mut forms = Vec::new();
        for part in parts {
            part_forms(part, &mut forms);
        }
        bash.into_iter()
            .find(|rule| forms.iter().any(|f| form_matches(rule, f)))
    }

    /// Why one part of an allowed-so-far command needs approval, if it does.
    fn part_needs_approval(&self, part: &Simple, cwd: &Cwd) -> Option<String> {
        for r in &part.redirects {
            if let Redirect::Read(w) = r
                && w.dynamic
            {
                return Some(format!(
                    "input from a computed path ({}) needs approval",
                    w.raw
                ));
            }
        }
        if let Some(why) = self.reads_need_approval(part, cwd) {
            return Some(why);
        }
        if self
            .allow
            .iter()
            .any(|r| r.tool == RuleTool::Bash && matches!(r.spec, Spec::Any))
        {
            return self.touches_protected(part, cwd);
        }
        if let Some(reason) = shell::unsafe_reason(part) {
            return Some(reason);
        }
        if part.words.is_empty() || readers::is_read_only(&part.words) {
            return match part.words.first().is_some_and(|w| w.text == "git") {
                true => cwd.dirs.iter().find_map(|d| git::runs_repository_code(d)),
                false => None,
            };
        }
        let text = shell::render(&part.words);
        let allowed = self.allow.iter().any(|r| match &r.spec {
            Spec::Command(p) => r.tool == RuleTool::Bash && p.matches(&text),
            _ => false,
        });
        match allowed {
            true => self.touches_protected(part, cwd),
            false => Some(format!("`{text}` needs approval")),
        }
    }

    /// Reads outside the workspace, files an ask rule covers, computed file names and
    /// recursion through symlinks that leave the workspace need approval.
    fn reads_need_approval(&self, part: &Simple, cwd: &Cwd) -> Option<String> {
        let seen = Seen {
            words: part.words.clone(),
            redirects: part.redirects.clone(),
            fed: false,
        };
        let read_only = readers::is_read_only(&part.words);
        for (tool, arg) in named_args(&seen) {
            let checks_place = read_only && tool == Tool::Read;
            let paths = match self.expand(&arg, cwd) {
                Named::Unknown(why) if checks_place => {
                    return Some(format!("{why}, so it needs approval"));
                }
                Named::Unknown(_) => continue,
                Named::Paths(paths) => paths,
            };
            for path in paths {
                if checks_place && !self.readable(&path) {
                    return Some(format!("reads {}, outside the workspace", path.display()));
                }
                if let Some(rule) = self.path_rule(&self.ask, tool, &path) {
                    return Some(format!(
                        "{} {} matches {}",
                        tool.name(),
                        path.display(),
                        rule.describe()
                    ));
                }
            }
        }
        let descent = readers::walk_of(&part.words).filter(|d| d.follows)?;
        let name = &part.words[0].text;
        let walk = self.walk(&descent, cwd, Looking::ForEscape);
        if let Some((link, target)) = walk.escape {
            return Some(format!(
                "`{name}` follows the symlink {} to {}, outside the workspace",
                link.display(),
                target.display()
            ));
        }
        (!walk.complete)
            .then(|| format!("`{name}` follows symlinks through more than nib can check"))
    }

    /// An allowed command that writes a protected path nib can see (through wrappers,
    /// nested strings, globs and `~`) still asks.
    fn touches_protected(&self, part: &Simple, cwd: &Cwd) -> Option<String> {
        let seen = commands_in(part).into_iter().flatten();
        let mut writes = seen
            .flat_map(|s| named_args(&s))
            .filter(|(tool, _)| *tool == Tool::Edit);
        writes.find_map(|(_, arg)| match self.expand(&arg, cwd) {
            Named::Paths(paths) => paths.iter().find_map(|p| self.protected(p)),
            Named::Unknown(_) => None,
        })
    }
}

/// The directories a command may run in, after the `cd`s before it.
struct Cwd {
    dirs: Vec<PathBuf>,
    /// A `cd` went somewhere only known at run time.
    unknown: bool,
    /// The command line may change what globs match.
    globs_unknown: bool,
}

/// Plan mode runs only built-in read-only commands.
fn plan_denies(parts: &[Simple]) -> Option<Verdict> {
    let writer = parts.iter().find(|p| {
        let read_only = p.words.is_empty() || readers::is_read_only(&p.words);
        !read_only || shell::unsafe_reason(p).is_some()
    })?;
    Some(Verdict::Deny(format!(
        "plan mode runs only read-only commands, and `{}` is not one",
        shell::render(&writer.words)
    )))
}

/// Whether `rule` covers `tool` on the resolved `path`.
fn covers(rule: &Rule, tool: Tool, path: &Path) -> bool {
    rule.tool.covers(tool)
        && match &rule.spec {
            Spec::Any => true,
            Spec::Path(p) => p.matches(path),
            Spec::Command(_) => false,
        }
}

/// The path a file tool acts on; for a glob, where its search starts.
fn search_base(action: &Action) -> PathBuf {
    match action {
        Action::Glob { pattern, path } => glob_base(path.as_deref(), pattern),
        _ => action.path().unwrap_or(Path::new(".")).to_path_buf(),
    }
}

/// Where a glob search starts: its path joined with the pattern's literal directories
/// (`../../*` searches two levels up).
pub fn glob_base(path: Option<&Path>, pattern: &str) -> PathBuf {
    let mut base = path.map_or(PathBuf::from("."), Path::to_path_buf);
    let dirs: Vec<&str> = pattern.split('/').collect();
    for (i, part) in dirs.iter().enumerate() {
        if i + 1 == dirs.len() || part.contains(['*', '?', '[', '{']) {
            break;
        }
        base.push(if part.is_empty() && i == 0 { "/" } else { part });
    }
    base
}
