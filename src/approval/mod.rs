//! The approval gate: permission rules and modes → a `Verdict` for each action.
//!
//! It reads settings files when built (`load`), then decides without changing the
//! system (it only resolves symlinks in paths). Asking the user is the UI's job; this
//! module only says that it must ask. Shell parsing lives in `shell.rs`, rule syntax
//! in `rules.rs`.

mod rules;
mod shell;

use crate::tools::{Action, Tool, Workspace, canonical_prefix};
use rules::{Anchors, Rule, RuleTool, Spec};
use serde_json::{Map, Value};
use shell::{Redirect, Simple, Word};
use std::path::{Path, PathBuf};

/// How much runs without asking (`--permission-mode`, settings `defaultMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Ask for bash and writes.
    Default,
    /// File edits inside the workspace run.
    AcceptEdits,
    /// Read-only: no writes; bash only for read-only commands.
    Plan,
    /// Deny whatever is not allowed.
    DontAsk,
    /// Everything runs (`--dangerously-skip-permissions`).
    Bypass,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "default" => Some(Mode::Default),
            "acceptEdits" => Some(Mode::AcceptEdits),
            "plan" => Some(Mode::Plan),
            "dontAsk" => Some(Mode::DontAsk),
            "bypassPermissions" => Some(Mode::Bypass),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Default => "default",
            Mode::AcceptEdits => "acceptEdits",
            Mode::Plan => "plan",
            Mode::DontAsk => "dontAsk",
            Mode::Bypass => "bypassPermissions",
        }
    }
}

/// What the gate says about one action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// A person must decide; the string says why (for the prompt).
    Ask(String),
    /// Refused; the string says why (for the model).
    Deny(String),
}

/// Rules as written by users, before they are compiled.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    pub allow: Vec<String>,
    pub ask: Vec<String>,
    pub deny: Vec<String>,
}

/// Deepest nesting of wrappers, `sh -c` strings and substitutions we look into; deeper
/// than this a deny rule is assumed to match (no real command nests this far).
const MAX_NESTING: usize = 8;

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

/// Package runners whose `run` takes a script name: `npm run test` is the prefix.
const SCRIPT_RUNNERS: &[&str] = &["npm", "pnpm", "yarn", "bun"];

/// Commands that destroy or send data: an "always" answer allows the exact command
/// only, never a prefix.
const EXACT_ONLY: &[&str] = &[
    "rm", "rmdir", "mv", "cp", "dd", "chmod", "chown", "ln", "kill", "pkill", "killall", "curl",
    "wget", "ssh", "scp", "rsync", "sudo", "doas", "truncate", "shred",
];

/// Where rules came from; malformed allow and ask rules in settings files are
/// skipped with a warning, anything else malformed is an error.
struct Source {
    name: String,
    rules: RuleSet,
    strict: bool,
}

/// The gate: compiled rules, the mode, the workspace.
#[derive(Clone)]
pub struct Gate {
    mode: Mode,
    /// Canonical workspace root.
    root: PathBuf,
    home: Option<PathBuf>,
    /// nib's own settings and data directories.
    nib_dirs: Vec<PathBuf>,
    /// Outside the workspace, directories read without asking (skill folders).
    read_dirs: Vec<PathBuf>,
    /// More directories that count as the workspace (`--add-dir`, `additionalDirectories`).
    extra_roots: Vec<PathBuf>,
    allow: Vec<Rule>,
    ask: Vec<Rule>,
    deny: Vec<Rule>,
    warnings: Vec<String>,
}

/// Reads the settings files (`~/.claude/settings.json`, `<nib_config_dir>/settings.json`,
/// `.claude/settings.json`, `.claude/settings.local.json` in the workspace) and adds
/// the CLI rules. `nib_config_dir` is nib's own directory (`<config_dir>/nib`). The
/// CLI mode beats `defaultMode` from the files; later files beat earlier ones.
pub fn load(
    cli: RuleSet,
    mode: Option<Mode>,
    workspace: Workspace,
    home: Option<PathBuf>,
    nib_config_dir: Option<PathBuf>,
) -> Result<Gate, String> {
    let root = workspace.root.clone();
    let mut files: Vec<(PathBuf, bool)> = Vec::new();
    if let Some(home) = &home {
        files.push((home.join(".claude/settings.json"), false));
    }
    if let Some(dir) = &nib_config_dir {
        files.push((dir.join("settings.json"), false));
    }
    files.push((root.join(".claude/settings.json"), true));
    files.push((root.join(".claude/settings.local.json"), true));

    let mut sources = Vec::new();
    let mut warnings = Vec::new();
    let mut file_mode = None;
    for (path, in_project) in files {
        let name = display_path(&path, home.as_deref());
        let Some(settings) = read_settings(&path, &name)? else {
            continue;
        };
        match settings.mode.as_deref().map(|m| (m, Mode::parse(m))) {
            Some((_, Some(Mode::Bypass))) if in_project => warnings.push(format!(
                "{name}: defaultMode bypassPermissions is ignored in project files; \
                 pass --permission-mode bypassPermissions to use it"
            )),
            Some((_, Some(m))) => file_mode = Some(m),
            Some((m, None)) => warnings.push(format!(
                "{name}: unknown defaultMode `{m}` is ignored; use default, acceptEdits, \
                 plan, dontAsk or bypassPermissions"
            )),
            None => {}
        }
        sources.push(Source {
            name,
            rules: settings.rules,
            strict: false,
        });
    }
    sources.push(Source {
        name: "the command line".into(),
        rules: cli,
        strict: true,
    });
    let mut nib_dirs: Vec<PathBuf> = nib_config_dir.into_iter().collect();
    nib_dirs.extend(dirs::data_dir().map(|d| d.join("nib")));
    let mode = mode.or(file_mode).unwrap_or(Mode::Default);
    let mut gate = Gate::build(sources, mode, workspace, home, nib_dirs)?;
    warnings.append(&mut gate.warnings);
    gate.warnings = warnings;
    Ok(gate)
}

/// What one settings file says about permissions.
struct Settings {
    rules: RuleSet,
    mode: Option<String>,
}

/// `Ok(None)` when the file does not exist.
fn read_settings(path: &Path, name: &str) -> Result<Option<Settings>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {name}: {e}")),
    };
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{name} is not valid JSON ({e}); fix it or move it aside"))?;
    let Some(permissions) = value.get("permissions") else {
        return Ok(Some(Settings {
            rules: RuleSet::default(),
            mode: None,
        }));
    };
    let list = |key: &str| -> Result<Vec<String>, String> {
        match permissions.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or(format!(
                    "{name}: permissions.{key} must be a list of strings"
                )),
            Some(_) => Err(format!(
                "{name}: permissions.{key} must be a list of strings"
            )),
        }
    };
    Ok(Some(Settings {
        rules: RuleSet {
            allow: list("allow")?,
            ask: list("ask")?,
            deny: list("deny")?,
        },
        mode: permissions
            .get("defaultMode")
            .and_then(Value::as_str)
            .map(str::to_string),
    }))
}

/// `~/.claude/settings.json` rather than `/home/ann/.claude/settings.json`.
fn display_path(path: &Path, home: Option<&Path>) -> String {
    match home.and_then(|h| path.strip_prefix(h).ok()) {
        Some(rest) => format!("~/{}", rest.display()),
        None => path.display().to_string(),
    }
}

/// The three lists of one source, tagged with their kind.
fn lists(rules: &RuleSet) -> [(Kind, &Vec<String>); 3] {
    [
        (Kind::Deny, &rules.deny),
        (Kind::Ask, &rules.ask),
        (Kind::Allow, &rules.allow),
    ]
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Allow,
    Ask,
    Deny,
}

/// A command line as deny and ask rules see it.
enum Form {
    /// Every word is known.
    Known(String),
    /// Only the start is known; the rest is computed when it runs.
    Partial(String),
    /// Nothing is known (an unparsable nested string, nesting too deep).
    Unknown,
}

impl Gate {
    /// Builds the gate from CLI rules and mode, reading no files. Malformed rules are
    /// errors that name the rule.
    #[cfg(test)]
    pub fn new(rules: RuleSet, mode: Mode, workspace: Workspace) -> Result<Gate, String> {
        let source = Source {
            name: "the command line".into(),
            rules,
            strict: true,
        };
        Gate::build(vec![source], mode, workspace, dirs::home_dir(), Vec::new())
    }

    fn build(
        sources: Vec<Source>,
        mode: Mode,
        workspace: Workspace,
        home: Option<PathBuf>,
        nib_dirs: Vec<PathBuf>,
    ) -> Result<Gate, String> {
        let root = canonical_prefix(&workspace.root);
        let mut gate = Gate {
            mode,
            root,
            home,
            nib_dirs: nib_dirs.iter().map(|d| canonical_prefix(d)).collect(),
            read_dirs: Vec::new(),
            extra_roots: Vec::new(),
            allow: Vec::new(),
            ask: Vec::new(),
            deny: Vec::new(),
            warnings: Vec::new(),
        };
        for source in &sources {
            for (kind, texts) in lists(&source.rules) {
                for text in texts {
                    gate.add(
                        kind,
                        text,
                        &source.name,
                        source.strict || kind == Kind::Deny,
                    )?;
                }
            }
        }
        Ok(gate)
    }

    fn anchors(&self) -> Anchors<'_> {
        Anchors {
            root: &self.root,
            home: self.home.as_deref(),
        }
    }

    fn add(&mut self, kind: Kind, text: &str, source: &str, strict: bool) -> Result<(), String> {
        let rule = match rules::parse(text, source, self.anchors()) {
            Ok(Some(rule)) => rule,
            Ok(None) => return Ok(()),
            Err(e) if strict => return Err(format!("{e}; fix or remove it")),
            Err(e) => {
                self.warnings.push(format!("{e}; the rule is ignored"));
                return Ok(());
            }
        };
        match kind {
            Kind::Allow => self.allow.push(rule),
            Kind::Ask => self.ask.push(rule),
            Kind::Deny => self.deny.push(rule),
        }
        Ok(())
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Problems found while loading (malformed allow/ask rules, ignored settings).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

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

    /// The rule an "always" answer would add for this action, e.g. `Bash(npm test *)`;
    /// `None` when no safe rule exists (compound or unsafe commands, protected paths).
    pub fn suggest_rule(&self, action: &Action) -> Option<String> {
        match action {
            Action::Bash { command, .. } => suggest_bash(command),
            Action::Mcp { name, .. } => Some(name.clone()),
            Action::Glob { pattern, path } => {
                let path = self.resolve(&glob_base(path.as_deref(), pattern));
                Some(format!("Read({})", self.rule_path(&path)))
            }
            _ => {
                let path = self.resolve(action.path().unwrap_or(Path::new(".")));
                match action.tool() {
                    Tool::Write | Tool::Edit if self.protected(&path).is_some() => None,
                    Tool::Write | Tool::Edit => Some(format!("Edit({})", self.rule_path(&path))),
                    _ => Some(format!("Read({})", self.rule_path(&path))),
                }
            }
        }
    }

    /// A rule that would let `action` run: `suggestion` (from `suggest_rule`), else the
    /// bare tool rule when that would do, else `None` (only bypassing would).
    pub fn allowing_rule(&self, action: &Action, suggestion: Option<&str>) -> Option<String> {
        let candidates = suggestion.into_iter().chain([action.tool().rule_name()]);
        candidates.map(str::to_string).find(|rule| {
            let mut gate = self.clone();
            gate.allow(rule).is_ok() && gate.check(action) == Verdict::Allow
        })
    }

    /// Adds an allow rule for the rest of this session.
    pub fn allow(&mut self, rule: &str) -> Result<(), String> {
        let before = self.allow.len();
        self.add(Kind::Allow, rule, "this session", true)?;
        if self.allow.len() == before {
            return Err(format!(
                "`{rule}` names a tool nib does not have; use Bash, Read, Edit, Write, Glob or Grep"
            ));
        }
        Ok(())
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

    /// Lets reads (file tools and read-only commands) under `dir` run without asking,
    /// as inside the workspace; deny and ask rules still apply, writes are unchanged.
    pub fn allow_read_dir(&mut self, dir: &Path) {
        self.read_dirs.push(canonical_prefix(dir));
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

    /// Makes `dir` part of the workspace: reads and edits there are judged as inside it.
    pub fn add_root(&mut self, dir: &Path) {
        self.extra_roots.push(canonical_prefix(dir));
    }

    /// Whether a resolved path may be read as if it were inside the workspace.
    fn readable(&self, resolved: &Path) -> bool {
        self.contains(resolved) || self.read_dirs.iter().any(|d| resolved.starts_with(d))
    }

    /// `./src/main.rs` inside the workspace, `//etc/hosts` outside.
    fn rule_path(&self, path: &Path) -> String {
        match path.strip_prefix(&self.root) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".into(),
            Ok(rel) => format!("./{}", rel.display()),
            Err(_) => format!("/{}", path.display()),
        }
    }

    fn resolve(&self, path: &Path) -> PathBuf {
        canonical_prefix(&rules::normalize(&self.root, self.home.as_deref(), path))
    }

    fn contains(&self, resolved: &Path) -> bool {
        resolved.starts_with(&self.root) || self.extra_roots.iter().any(|d| resolved.starts_with(d))
    }

    /// Why writing `path` always asks, if it is protected.
    fn protected(&self, path: &Path) -> Option<String> {
        let under_root = path.strip_prefix(&self.root).unwrap_or(path);
        for c in under_root.components() {
            let name = c.as_os_str().to_string_lossy();
            if PROTECTED_DIRS.contains(&name.as_ref()) {
                return Some(format!("writes to {name}/ always need approval"));
            }
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
        let shown = path.display();
        let writes = matches!(tool, Tool::Write | Tool::Edit);
        if let Some(rule) = self.path_rule(&self.deny, tool, &path) {
            return Verdict::Deny(format!(
                "{} {shown} is denied by {}",
                tool.name(),
                rule.describe()
            ));
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
            return Verdict::Ask(format!(
                "{} {shown} matches {}",
                tool.name(),
                rule.describe()
            ));
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
            return Verdict::Ask(format!("{} {shown} is outside the workspace", tool.name()));
        }
        if !writes || self.mode == Mode::AcceptEdits {
            return Verdict::Allow;
        }
        Verdict::Ask(format!(
            "{} {} needs approval",
            tool.name(),
            self.rule_path(&path)
        ))
    }

    fn check_bash(&self, command: &str) -> Verdict {
        let parts = match shell::parse(command) {
            Ok(parts) => parts,
            Err(e) if self.has_bash_rules(&self.deny) => {
                return Verdict::Deny(format!(
                    "the command does not parse ({e}), so deny rules cannot be checked"
                ));
            }
            Err(_) if self.mode == Mode::Bypass => return Verdict::Allow,
            Err(e) => return Verdict::Ask(format!("the command does not parse ({e})")),
        };
        if let Some(deny) = self.denied(&parts) {
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
        parts
            .iter()
            .find_map(|p| self.part_needs_approval(p))
            .map_or(Verdict::Allow, Verdict::Ask)
    }

    fn has_bash_rules(&self, rules: &[Rule]) -> bool {
        rules.iter().any(|r| r.tool == RuleTool::Bash)
    }

    /// A deny verdict when any rule could match any part, nested commands included, or
    /// when a part reads a file a `Read` deny rule covers.
    fn denied(&self, parts: &[Simple]) -> Option<Verdict> {
        if let Some(rule) = self.bash_rule(&self.deny, parts) {
            return Some(Verdict::Deny(format!(
                "the command is denied by {}",
                rule.describe()
            )));
        }
        for path in parts.iter().flat_map(|p| self.reads(p)) {
            let resolved = self.resolve(Path::new(&path));
            if let Some(rule) = self.path_rule(&self.deny, Tool::Read, &resolved) {
                return Some(Verdict::Deny(format!(
                    "reading {} is denied by {}",
                    resolved.display(),
                    rule.describe()
                )));
            }
        }
        None
    }

    /// The first bash rule that matches (or might match) some part.
    fn bash_rule<'r>(&self, rules: &'r [Rule], parts: &[Simple]) -> Option<&'r Rule> {
        let bash: Vec<&Rule> = rules.iter().filter(|r| r.tool == RuleTool::Bash).collect();
        if bash.is_empty() {
            return None;
        }
        let mut forms = Vec::new();
        for part in parts {
            part_forms(part, 0, &mut forms);
        }
        bash.into_iter()
            .find(|rule| forms.iter().any(|f| form_matches(rule, f)))
    }

    /// Files a part reads that the gate can name: `< file`, and the path arguments of
    /// built-in read-only commands.
    fn reads(&self, part: &Simple) -> Vec<String> {
        let mut out: Vec<String> = part
            .redirects
            .iter()
            .filter_map(|r| match r {
                Redirect::Read(w) => Some(w.text.clone()),
                _ => None,
            })
            .collect();
        if shell::is_read_only(&part.words) {
            out.extend(shell::path_args(&part.words));
        }
        out
    }

    /// Why one part of an allowed-so-far command needs approval, if it does.
    fn part_needs_approval(&self, part: &Simple) -> Option<String> {
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
        if let Some(why) = self.reads_need_approval(part) {
            return Some(why);
        }
        if self
            .allow
            .iter()
            .any(|r| r.tool == RuleTool::Bash && matches!(r.spec, Spec::Any))
        {
            return self.touches_protected(part);
        }
        if let Some(reason) = shell::unsafe_reason(part) {
            return Some(reason);
        }
        if part.words.is_empty() || shell::is_read_only(&part.words) {
            return None;
        }
        let text = shell::render(&part.words);
        let allowed = self.allow.iter().any(|r| match &r.spec {
            Spec::Command(p) => r.tool == RuleTool::Bash && p.matches(&text),
            _ => false,
        });
        match allowed {
            true => self.touches_protected(part),
            false => Some(format!("`{text}` needs approval")),
        }
    }

    /// Reads outside the workspace, or covered by a `Read` ask rule, need approval.
    fn reads_need_approval(&self, part: &Simple) -> Option<String> {
        for path in self.reads(part) {
            let resolved = self.resolve(Path::new(&path));
            if !self.readable(&resolved) {
                return Some(format!(
                    "reads {}, outside the workspace",
                    resolved.display()
                ));
            }
            if let Some(rule) = self.path_rule(&self.ask, Tool::Read, &resolved) {
                return Some(format!("reading {path} matches {}", rule.describe()));
            }
        }
        None
    }

    /// An allowed command that names a protected path still asks.
    fn touches_protected(&self, part: &Simple) -> Option<String> {
        let args = match shell::is_read_only(&part.words) {
            true => &[][..],
            false => part.words.get(1..).unwrap_or_default(),
        };
        let targets = part.redirects.iter().filter_map(|r| match r {
            Redirect::Write(w) => Some(w),
            _ => None,
        });
        args.iter()
            .chain(targets)
            .filter(|w| !w.dynamic)
            .flat_map(|w| [w.text.as_str(), w.text.split_once('=').map_or("", |s| s.1)])
            .filter(|t| !t.is_empty() && !t.starts_with('-'))
            .find_map(|t| self.protected(&self.resolve(Path::new(t))))
    }
}

/// Plan mode runs only built-in read-only commands.
fn plan_denies(parts: &[Simple]) -> Option<Verdict> {
    let writer = parts.iter().find(|p| {
        let read_only = p.words.is_empty() || shell::is_read_only(&p.words);
        !read_only || shell::unsafe_reason(p).is_some()
    })?;
    Some(Verdict::Deny(format!(
        "plan mode runs only read-only commands, and `{}` is not one",
        shell::render(&writer.words)
    )))
}

/// Every way a deny or ask rule should see a part: as written, with argv[0]'s
/// basename, after wrappers, and the commands nested in it.
fn part_forms(part: &Simple, depth: usize, out: &mut Vec<Form>) {
    word_forms(&part.words, depth, out);
    for nested in &part.nested {
        string_forms(nested, depth + 1, out);
    }
}

fn word_forms(words: &[Word], depth: usize, out: &mut Vec<Form>) {
    if words.is_empty() {
        return;
    }
    if depth > MAX_NESTING {
        out.push(Form::Unknown);
        return;
    }
    out.push(form_of(words, &words[0].text));
    let base = shell::basename(&words[0].text);
    if base != words[0].text {
        out.push(form_of(words, base));
    }
    if let Some(inner) = shell::unwrap(words) {
        word_forms(inner, depth + 1, out);
    }
    for string in shell::command_strings(words) {
        match string {
            Some(s) => string_forms(&s, depth + 1, out),
            None => out.push(Form::Unknown),
        }
    }
    for command in shell::find_exec_commands(words) {
        word_forms(command, depth + 1, out);
    }
}

fn string_forms(command: &str, depth: usize, out: &mut Vec<Form>) {
    if depth > MAX_NESTING {
        out.push(Form::Unknown);
        return;
    }
    match shell::parse(command) {
        Ok(parts) => parts.iter().for_each(|p| part_forms(p, depth, out)),
        Err(_) => out.push(Form::Unknown),
    }
}

/// The words joined with spaces (argv[0] replaced by `name`), cut at the first part
/// known only at run time.
fn form_of(words: &[Word], name: &str) -> Form {
    let mut text = String::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            text.push(' ');
        }
        let value = if i == 0 { name } else { w.text.as_str() };
        if w.dynamic || w.glob {
            let known = match w.dynamic {
                true => w.literal_prefix.as_str(),
                false => value.split(['*', '?', '[']).next().unwrap_or(""),
            };
            text.push_str(if i == 0 && name != w.text { "" } else { known });
            return Form::Partial(text);
        }
        text.push_str(value);
    }
    Form::Known(text)
}

fn form_matches(rule: &Rule, form: &Form) -> bool {
    let pattern = match &rule.spec {
        Spec::Command(p) => p,
        _ => return true,
    };
    match form {
        Form::Known(s) => pattern.matches(s),
        Form::Partial(s) => {
            pattern.could_match_from(s) || (s.ends_with(' ') && pattern.matches(s.trim_end()))
        }
        Form::Unknown => true,
    }
}

/// A prefix rule for one plain command (`Bash(cargo test *)`), the exact command for
/// one word or a destructive command, `None` for anything compound or unsafe.
fn suggest_bash(command: &str) -> Option<String> {
    let parts = shell::parse(command).ok()?;
    let [part] = parts.as_slice() else {
        return None;
    };
    let words = &part.words;
    if shell::unsafe_reason(part).is_some()
        || words.is_empty()
        || words
            .iter()
            .any(|w| w.dynamic || w.glob || w.text.contains('*'))
    {
        return None;
    }
    let name = words[0].text.as_str();
    if words.len() == 1 || EXACT_ONLY.contains(&shell::basename(name)) {
        return Some(format!("Bash({})", shell::render(words)));
    }
    let subcommand = |w: &Word| {
        let t = w.text.as_str();
        t.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c))
    };
    let mut prefix = vec![shell::render(&words[..1])];
    if subcommand(&words[1]) {
        prefix.push(words[1].text.clone());
        let runs_script = SCRIPT_RUNNERS.contains(&name) && words[1].text == "run";
        if let Some(script) = words.get(2).filter(|w| runs_script && subcommand(w)) {
            prefix.push(script.text.clone());
        }
    }
    Some(format!("Bash({} *)", prefix.join(" ")))
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
fn glob_base(path: Option<&Path>, pattern: &str) -> PathBuf {
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

/// Appends an allow rule to `<root>/.claude/settings.local.json` (created if needed),
/// keeping the other keys; a rule already there is not added twice.
pub fn save_project_rule(root: &Path, rule: &str) -> Result<(), String> {
    let anchors = Anchors {
        root,
        home: Some(Path::new("/")),
    };
    match rules::parse(rule, "the answer", anchors)? {
        Some(_) => {}
        None => return Err(format!("`{rule}` names a tool nib does not have")),
    }
    let dir = root.join(".claude");
    let path = dir.join("settings.local.json");
    let shown = path.display();
    let mut value = match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().is_empty() => Value::Object(Map::new()),
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| format!("{shown} is not valid JSON ({e}); fix it by hand"))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Value::Object(Map::new()),
        Err(e) => return Err(format!("cannot read {shown}: {e}")),
    };
    let not_object =
        || format!("{shown}: expected an object with permissions.allow; fix it by hand");
    let permissions = value
        .as_object_mut()
        .ok_or_else(not_object)?
        .entry("permissions")
        .or_insert_with(|| Value::Object(Map::new()));
    let allow = permissions
        .as_object_mut()
        .ok_or_else(not_object)?
        .entry("allow")
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or_else(not_object)?;
    if allow.iter().any(|v| v.as_str() == Some(rule)) {
        return Ok(());
    }
    allow.push(Value::String(rule.to_string()));
    let text = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())? + "\n";
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let tmp = dir.join("settings.local.json.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("cannot write {shown}: {e}"))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;
    use std::time::Duration;

    const ROOT: &str = "/nib-test-ws";
    const HOME: &str = "/nib-test-home";

    fn workspace() -> Workspace {
        Workspace {
            root: PathBuf::from(ROOT),
        }
    }

    fn rule_set(allow: &[&str], ask: &[&str], deny: &[&str]) -> RuleSet {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        RuleSet {
            allow: own(allow),
            ask: own(ask),
            deny: own(deny),
        }
    }

    fn gate_with(rules: RuleSet, mode: Mode) -> Gate {
        let source = Source {
            name: "test".into(),
            rules,
            strict: true,
        };
        let nib = vec![PathBuf::from(HOME).join(".config/nib")];
        Gate::build(vec![source], mode, workspace(), Some(HOME.into()), nib).unwrap()
    }

    /// The gate most cases run against.
    fn standard(mode: Mode) -> Gate {
        let rules = rule_set(
            &[
                "Bash(npm run test *)",
                "Bash(git commit *)",
                "Bash(cargo test:*)",
                "Bash(make)",
                "Bash(sed *)",
                "Bash(./build.sh)",
                "Edit(docs/**)",
                "Read(~/notes)",
                "Read(//opt/shared/**)",
                "WebFetch(domain:example.com)",
            ],
            &["Bash(git push *)", "Read(./private)"],
            &[
                "Bash(rm *)",
                "Bash(curl:*)",
                "Bash(git push --force *)",
                "Read(./.env)",
                "Edit(/locked)",
                "mcp__server__tool",
            ],
        );
        gate_with(rules, mode)
    }

    fn bash(command: &str) -> Action {
        Action::Bash {
            command: command.into(),
            timeout: Duration::from_secs(1),
        }
    }

    fn short(v: &Verdict) -> char {
        match v {
            Verdict::Allow => 'A',
            Verdict::Ask(_) => 'Q',
            Verdict::Deny(_) => 'D',
        }
    }

    fn check(gate: &Gate, action: &Action, expected: char) {
        let verdict = gate.check(action);
        assert_eq!(short(&verdict), expected, "{action:?} → {verdict:?}");
        if let Verdict::Ask(why) | Verdict::Deny(why) = &verdict {
            assert!(
                !why.contains('\n') && !why.is_empty(),
                "one-line reason: {why:?}"
            );
        }
    }

    fn check_table(gate: &Gate, cases: &[(&str, char)]) {
        for (command, expected) in cases {
            check(gate, &bash(command), *expected);
        }
    }

    #[test]
    fn bash_commands_in_default_mode() {
        let cases: &[(&str, char)] = &[
            // Built-in read-only commands and their safe combinations.
            ("ls", 'A'),
            ("ls -la src", 'A'),
            ("cat src/main.rs", 'A'),
            ("head -n 5 README.md", 'A'),
            ("git status", 'A'),
            ("git log --oneline -5", 'A'),
            ("git diff HEAD~1", 'A'),
            ("git show HEAD:src/main.rs", 'A'),
            ("git branch", 'A'),
            ("git branch -a", 'A'),
            ("git remote -v", 'A'),
            ("ls && pwd", 'A'),
            ("cat a | grep x | wc -l", 'A'),
            ("echo hi; echo there", 'A'),
            ("echo a && echo b || echo c", 'A'),
            ("ls &", 'A'),
            ("cat a |& grep b", 'A'),
            ("ls\npwd", 'A'),
            ("echo $HOME", 'A'),
            ("grep -rn foo src", 'A'),
            ("rg foo src", 'A'),
            ("find . -name '*.rs'", 'A'),
            ("sort -k2 file", 'A'),
            ("wc -l < src/main.rs", 'A'),
            ("ls # a comment", 'A'),
            ("ls # && rm -rf /", 'A'),
            ("ls 2>&1", 'A'),
            ("ls >/dev/null 2>&1", 'A'),
            ("ls 2>/dev/null", 'A'),
            ("ls &>/dev/null", 'A'),
            ("echo done >&2", 'A'),
            ("ec\"h\"o hi", 'A'),
            ("'ls'", 'A'),
            ("\\ls", 'A'),
            ("echo rm -rf /", 'A'),
            ("ls ./*.rs", 'A'),
            ("diff a b", 'A'),
            // Allow rules: prefix at a word boundary, legacy `:*`, exact.
            ("npm run test", 'A'),
            ("npm run test -- --watch", 'A'),
            ("npm run testing", 'Q'),
            ("npm run build", 'Q'),
            ("cargo test", 'A'),
            ("cargo test -p nib", 'A'),
            ("cargo testx", 'Q'),
            ("cargo build", 'Q'),
            ("make", 'A'),
            ("make install", 'Q'),
            ("git commit -m 'fix: rm -rf, really'", 'A'),
            ("git commit -m \"$(cat msg)\"", 'Q'),
            ("./build.sh", 'A'),
            ("build.sh", 'Q'),
            ("sed -n 1p file", 'A'),
            ("sed s/hello/world/g file", 'A'),
            ("lsof", 'Q'),
            ("./cat file", 'Q'),
            ("/bin/cat file", 'Q'),
            ("timeout 5 ls", 'Q'),
            // Compound: every part must be allowed.
            ("git status; npm run build", 'Q'),
            ("npm run test && cargo test", 'A'),
            ("npm run test && make install", 'Q'),
            // Reads outside the workspace.
            ("cat /etc/passwd", 'Q'),
            ("cat ../secret", 'Q'),
            ("cat src/../../secret", 'Q'),
            ("cat ~/.ssh/id_rsa", 'Q'),
            ("cat < /etc/passwd", 'Q'),
            ("grep --file=/etc/shadow x", 'Q'),
            ("ls $'\\x2fetc'", 'Q'),
            ("cat private/notes.txt", 'Q'),
            // Never allowed by a rule.
            ("ls $(pwd)", 'Q'),
            ("ls `pwd`", 'Q'),
            ("$CMD", 'D'),
            ("echo ${HOME:-x}", 'Q'),
            ("echo $((1+2))", 'Q'),
            ("cat <(ls)", 'Q'),
            ("echo hi > out.txt", 'Q'),
            ("echo hi >> out.txt", 'Q'),
            ("ls >&out", 'Q'),
            ("ls 2>err.log", 'Q'),
            ("FOO=bar ls", 'Q'),
            ("(ls)", 'Q'),
            ("{ ls; }", 'Q'),
            ("eval ls", 'Q'),
            ("exec ls", 'Q'),
            ("source x.sh", 'Q'),
            (". x.sh", 'Q'),
            ("sh -c 'ls'", 'Q'),
            ("bash -lc ls", 'Q'),
            ("xargs ls", 'Q'),
            ("find . -exec ls {} \\;", 'Q'),
            ("find . -execdir ls {} +", 'Q'),
            ("find . -delete", 'Q'),
            ("find . -fprint out", 'Q'),
            ("find . -fls out", 'Q'),
            ("sed -i s/a/b/ f", 'Q'),
            ("sed -i.bak s/a/b/ f", 'Q'),
            ("sed --in-place s/a/b/ f", 'Q'),
            ("sed -ni p f", 'Q'),
            ("sed 's/a/b/e' f", 'Q'),
            ("sed 's/a/b/w out' f", 'Q'),
            ("sed 'w out' f", 'Q'),
            ("sed -e 1p -e '1e ls' f", 'Q'),
            ("sed -f script.sed f", 'Q'),
            ("rg --pre cat foo", 'Q'),
            ("rg --pre=cat foo", 'Q'),
            ("git -c core.pager=x log", 'Q'),
            ("git diff --output=x", 'Q'),
            ("git diff --ext-diff", 'Q'),
            ("git log --exec=x", 'Q'),
            ("git fetch --upload-pack=x", 'Q'),
            ("git push origin main", 'Q'),
            ("git branch -D x", 'Q'),
            ("git branch newb", 'Q'),
            ("git remote add o url", 'Q'),
            ("sort -o out in", 'Q'),
            ("sort -ro out in", 'Q'),
            // GNU tools take any unambiguous prefix of a long option.
            ("sort --outp=out in", 'Q'),
            ("sort --o=out in", 'Q'),
            ("sort --compress-prog=sh in", 'Q'),
            ("sort --reverse in", 'A'),
            ("sort -- in", 'A'),
            ("tree -o out", 'Q'),
            ("uniq a b", 'Q'),
            ("ls *", 'Q'),
            ("cat *.rs", 'Q'),
            ("for f in a; do echo $f; done", 'Q'),
            ("if true; then ls; fi", 'Q'),
            ("echo {a,b}", 'Q'),
            ("cat <<EOF\nhi\nEOF", 'Q'),
            ("cat <<< hi", 'Q'),
            ("env", 'Q'),
            ("printenv", 'Q'),
            ("less file", 'Q'),
            ("rmdir x", 'Q'),
            // Deny rules on every part, through wrappers, quoting and nesting.
            ("rm -rf /", 'D'),
            ("rm", 'D'),
            ("/bin/rm x", 'D'),
            ("\\rm x", 'D'),
            ("'rm' x", 'D'),
            ("r\"m\" x", 'D'),
            ("$'\\x72m' x", 'D'),
            ("$'\\162m' x", 'D'),
            ("ls && rm x", 'D'),
            ("ls; rm x", 'D'),
            ("ls\nrm x", 'D'),
            ("ls | xargs rm", 'D'),
            ("ls | xargs -I{} rm {}", 'D'),
            ("timeout 5 rm x", 'D'),
            ("timeout -s KILL 5 rm x", 'D'),
            ("nice -n 5 rm x", 'D'),
            ("nohup rm x", 'D'),
            ("env FOO=1 rm x", 'D'),
            ("env -S 'rm x'", 'D'),
            ("command rm x", 'D'),
            ("time rm x", 'D'),
            ("stdbuf -o0 rm x", 'D'),
            ("sudo rm x", 'D'),
            ("watch rm x", 'D'),
            ("echo $(rm x)", 'D'),
            ("echo \"$(rm x)\"", 'D'),
            ("echo `rm x`", 'D'),
            ("echo $(echo $(rm x))", 'D'),
            ("cat <(rm x)", 'D'),
            ("echo ${X:-$(rm x)}", 'D'),
            ("sh -c 'rm x'", 'D'),
            ("bash -c \"ls; rm x\"", 'D'),
            ("/bin/sh -c 'timeout 1 rm x'", 'D'),
            ("eval 'rm x'", 'D'),
            ("find . -exec rm {} \\;", 'D'),
            ("FOO=1 rm x", 'D'),
            ("(rm x)", 'D'),
            ("{ rm x; }", 'D'),
            ("if true; then rm x; fi", 'D'),
            ("{rm,-rf,x}", 'D'),
            ("r$X x", 'D'),
            ("rm$X x", 'D'),
            ("r* x", 'D'),
            ("sh -c \"$CMD\"", 'D'),
            ("curl http://x", 'D'),
            ("curl", 'D'),
            ("git push --force origin", 'D'),
            ("git push \"--force\" origin", 'D'),
            ("cat .env", 'D'),
            ("cat < .env", 'D'),
            ("grep KEY .env", 'D'),
            ("echo 'unterminated", 'D'),
        ];
        assert!(cases.len() > 150);
        check_table(&standard(Mode::Default), cases);
    }

    #[test]
    fn unparseable_input_asks_without_deny_rules() {
        let gate = gate_with(RuleSet::default(), Mode::Default);
        check_table(
            &gate,
            &[
                ("echo 'unterminated", 'Q'),
                ("echo \"x", 'Q'),
                ("echo $(ls", 'Q'),
                ("echo `ls", 'Q'),
                ("ls |", 'Q'),
                ("ls &&", 'Q'),
                ("ls )", 'Q'),
                ("(ls", 'Q'),
                ("$CMD", 'Q'),
                ("ls", 'A'),
            ],
        );
        let bypass = gate_with(RuleSet::default(), Mode::Bypass);
        check(&bypass, &bash("echo 'unterminated"), 'A');
    }

    #[test]
    fn bare_bash_allow_runs_everything_but_denies_and_protected_paths() {
        let gate = gate_with(rule_set(&["Bash"], &[], &["Bash(rm *)"]), Mode::Default);
        check_table(
            &gate,
            &[
                ("npm install", 'A'),
                ("echo $(date) > out.txt", 'A'),
                ("sh -c 'make'", 'A'),
                ("rm x", 'D'),
                ("echo x >> ~/.bashrc", 'Q'),
                ("cp hook .git/hooks/pre-commit", 'Q'),
                ("cat .git/HEAD", 'A'),
            ],
        );
    }

    #[test]
    fn an_allow_rule_does_not_reach_protected_paths() {
        let gate = gate_with(rule_set(&["Bash(cp *)"], &[], &[]), Mode::Default);
        check(&gate, &bash("cp a b"), 'A');
        check(&gate, &bash("cp a .claude/settings.json"), 'Q');
        check(&gate, &bash("cp a --target-directory=.git"), 'Q');
    }

    fn read(path: &str) -> Action {
        Action::Read {
            path: path.into(),
            offset: None,
            limit: None,
        }
    }

    fn write(path: &str) -> Action {
        Action::Write {
            path: path.into(),
            content: String::new(),
        }
    }

    fn edit(path: &str) -> Action {
        Action::Edit {
            path: path.into(),
            old: String::new(),
            new: String::new(),
            replace_all: false,
        }
    }

    fn glob(pattern: &str, path: Option<&str>) -> Action {
        Action::Glob {
            pattern: pattern.into(),
            path: path.map(PathBuf::from),
        }
    }

    fn grep(path: Option<&str>) -> Action {
        Action::Grep {
            pattern: "x".into(),
            path: path.map(PathBuf::from),
            glob: None,
            ignore_case: false,
        }
    }

    #[test]
    fn file_tools_by_mode() {
        // (action, default, acceptEdits, plan, dontAsk, bypass)
        let cases: Vec<(Action, &str)> = vec![
            (read("src/main.rs"), "AAAAA"),
            (read("./src/../README.md"), "AAAAA"),
            (read("/etc/hosts"), "QQQDA"),
            (read("../other/x"), "QQQDA"),
            (read(".env"), "DDDDD"),
            (read("sub/.env"), "AAAAA"),
            (read("private/a"), "QQQDA"),
            (read("~/notes/todo.md"), "AAAAA"),
            (read("~/other.md"), "QQQDA"),
            (read("/opt/shared/lib/x"), "AAAAA"),
            (grep(None), "AAAAA"),
            (grep(Some("/etc")), "QQQDA"),
            (glob("**/*.rs", None), "AAAAA"),
            (glob("../../*", None), "QQQDA"),
            (glob("/etc/*.conf", None), "QQQDA"),
            (write("src/a.rs"), "QADDA"),
            (edit("src/a.rs"), "QADDA"),
            (write("docs/guide/intro.md"), "AADAA"),
            (write("docsx/a.md"), "QADDA"),
            (write("locked"), "DDDDD"),
            (edit("locked/inner.txt"), "DDDDD"),
            (write("sub/locked"), "QADDA"),
            (write(".git/config"), "QQDDA"),
            (edit("sub/.git/hooks/pre-commit"), "QQDDA"),
            (write(".claude/settings.local.json"), "QQDDA"),
            (write("~/.bashrc"), "QQDDA"),
            (write("~/.ssh/authorized_keys"), "QQDDA"),
            (write("~/.config/fish/config.fish"), "QQDDA"),
            (write("~/.config/nib/settings.json"), "QQDDA"),
            (write("/tmp/elsewhere.txt"), "QQDDA"),
        ];
        let modes = [
            Mode::Default,
            Mode::AcceptEdits,
            Mode::Plan,
            Mode::DontAsk,
            Mode::Bypass,
        ];
        for (mode, index) in modes.into_iter().zip(0..) {
            let gate = standard(mode);
            for (action, expected) in &cases {
                let want = expected.chars().nth(index).unwrap();
                let verdict = gate.check(action);
                assert_eq!(short(&verdict), want, "{mode:?} {action:?} → {verdict:?}");
            }
        }
    }

    #[test]
    fn protected_paths_ask_even_with_an_allow_rule() {
        let rules = rule_set(&["Edit", "Edit(//nib-test-home/**)"], &[], &[]);
        let gate = gate_with(rules, Mode::AcceptEdits);
        check(&gate, &write("src/x.rs"), 'A');
        check(&gate, &write("/nib-test-home/project/x"), 'A');
        check(&gate, &write("/nib-test-home/.zshrc"), 'Q');
        check(&gate, &write(".git/HEAD"), 'Q');
        // A bare `Edit` rule covers the workspace only.
        check(&gate, &write("/tmp/x"), 'Q');
    }

    #[test]
    fn bash_by_mode() {
        // (command, default, acceptEdits, plan, dontAsk, bypass)
        let cases = [
            ("ls -la", "AAAAA"),
            ("cat /etc/hosts", "QQQDA"),
            ("npm run test", "AADAA"),
            ("npm install", "QQDDA"),
            ("echo x > f", "QQDDA"),
            ("rm -rf x", "DDDDD"),
            ("git push origin", "QQDDA"),
            ("echo $(rm x)", "DDDDD"),
        ];
        let modes = [
            Mode::Default,
            Mode::AcceptEdits,
            Mode::Plan,
            Mode::DontAsk,
            Mode::Bypass,
        ];
        for (mode, index) in modes.into_iter().zip(0..) {
            let gate = standard(mode);
            for (command, expected) in cases {
                check(&gate, &bash(command), expected.chars().nth(index).unwrap());
            }
        }
    }

    #[test]
    fn deny_beats_allow_wherever_each_is() {
        let gate = gate_with(
            rule_set(
                &["Bash(git *)", "Read"],
                &[],
                &["Bash(git push *)", "Read(*.pem)"],
            ),
            Mode::Default,
        );
        check(&gate, &bash("git pull"), 'A');
        check(&gate, &bash("git push"), 'D');
        check(&gate, &read("certs/server.pem"), 'D');
        check(&gate, &read("certs/server.crt"), 'A');
        let ask_first = gate_with(
            rule_set(&["Bash(git *)"], &["Bash(git push *)"], &[]),
            Mode::Default,
        );
        check(&ask_first, &bash("git push"), 'Q');
        check(&ask_first, &bash("git status && git push"), 'Q');
    }

    #[test]
    fn searches_leave_out_files_deny_and_ask_rules_cover() {
        let ws = Path::new(ROOT);
        let rules = rule_set(&[], &["Read(./private/**)"], &["Grep(./logs/**)"]);
        let (default, bypass) = (standard(Mode::Default), standard(Mode::Bypass));
        let own = gate_with(rules, Mode::Default);
        let (top, private) = (grep(None), grep(Some("private")));
        let cases: [(&Gate, Action, &str, bool); 13] = [
            (&default, top.clone(), ".env", false),
            (&default, glob("**", None), "sub/../.env", false),
            (&bypass, top.clone(), ".env", false),
            (&default, top.clone(), "private", false),
            (&bypass, top.clone(), "private", true),
            (&default, top.clone(), "src/main.rs", true),
            (&default, top.clone(), ".env.example", true),
            (&own, top.clone(), "logs/a", false),
            (&own, glob("*", Some("logs")), "logs/a", true),
            (&own, top.clone(), "private/a", false),
            (&own, private.clone(), "private/a", false),
            // An ask rule the search's own path passed (someone said yes) lets it read.
            (&default, private, "private/a", true),
            (&default, glob("private/*", None), "private/a", true),
        ];
        for (gate, action, path, expected) in cases {
            let got = gate.may_search(&action, &ws.join(path));
            assert_eq!(got, expected, "{action:?} {path}");
        }
    }

    #[test]
    fn rule_syntax() {
        let cases: &[(&str, Option<bool>)] = &[
            // Some(true): a rule nib uses; Some(false): ignored; None: malformed.
            ("Bash", Some(true)),
            ("Bash(ls)", Some(true)),
            ("Bash(git diff:*)", Some(true)),
            ("Bash(*)", Some(true)),
            ("Read(./.env)", Some(true)),
            ("Read(//etc/**)", Some(true)),
            ("Read(~/x)", Some(true)),
            ("Edit(/src/**/*.rs)", Some(true)),
            ("Write(*.md)", Some(true)),
            ("Glob", Some(true)),
            ("Grep(src)", Some(true)),
            ("WebFetch(domain:example.com)", Some(false)),
            ("mcp__server__tool", Some(true)),
            ("mcp__server", Some(true)),
            ("mcp__server__*", Some(true)),
            ("mcp__server(x)", None),
            ("Task", Some(false)),
            ("Bash(ls", None),
            ("Bash()", None),
            ("bash(ls)", None),
            ("read", None),
            ("Read([abc)", None),
            ("Read(../x)", None),
            ("Ba sh", None),
            ("(ls)", None),
            ("Bash ls)", None),
        ];
        let anchors = Anchors {
            root: Path::new(ROOT),
            home: Some(Path::new(HOME)),
        };
        for (text, expected) in cases {
            let got = rules::parse(text, "test", anchors);
            let got = got.as_ref().ok().map(Option::is_some);
            assert_eq!(got, *expected, "{text}");
        }
    }

    #[test]
    fn mcp_tools_ask_unless_a_rule_allows() {
        let call = |name: &str| Action::Mcp {
            name: name.into(),
            input: serde_json::json!({}),
        };
        let gate = gate_with(
            rule_set(
                &["mcp__fs", "mcp__web__fetch"],
                &["mcp__fs__write"],
                &["mcp__db__*"],
            ),
            Mode::Default,
        );
        check_table_actions(
            &gate,
            &[
                (call("mcp__fs__read"), 'A'),
                (call("mcp__fs__write"), 'Q'),
                (call("mcp__fsx__read"), 'Q'),
                (call("mcp__web__fetch"), 'A'),
                (call("mcp__web__search"), 'Q'),
                (call("mcp__db__drop"), 'D'),
            ],
        );
        let bypass = gate_with(rule_set(&[], &[], &["mcp__db"]), Mode::Bypass);
        check(&bypass, &call("mcp__web__fetch"), 'A');
        check(&bypass, &call("mcp__db__drop"), 'D');
    }

    fn check_table_actions(gate: &Gate, cases: &[(Action, char)]) {
        for (action, expected) in cases {
            check(gate, action, *expected);
        }
    }

    #[test]
    fn command_patterns() {
        let cases = [
            ("ls *", "ls", true),
            ("ls *", "ls -la", true),
            ("ls *", "lsof", false),
            ("ls*", "lsof", true),
            ("git diff:*", "git diff", true),
            ("git diff:*", "git diff HEAD", true),
            ("git diff:*", "git diffx", false),
            ("npm run build", "npm run build", true),
            ("npm run build", "npm run build --prod", false),
            ("git * main", "git push origin main", true),
            ("git * main", "git push origin dev", false),
            ("*--force*", "git push --force", true),
        ];
        for (pattern, command, expected) in cases {
            let p = rules::CommandPattern::new(pattern);
            assert_eq!(p.matches(command), expected, "{pattern} vs {command}");
        }
        let p = rules::CommandPattern::new("rm -rf *");
        assert!(p.could_match_from("rm "));
        assert!(!p.could_match_from("ls "));
    }

    #[test]
    fn path_anchors() {
        let anchors = Anchors {
            root: Path::new("/proj"),
            home: Some(Path::new("/home/u")),
        };
        let cases = [
            ("//etc/hosts", "/etc/hosts", true),
            ("//etc/hosts", "/proj/etc/hosts", false),
            ("~/notes/*.md", "/home/u/notes/a.md", true),
            ("~/notes/*.md", "/home/u/notes/sub/a.md", false),
            ("/src/**", "/proj/src/a/b.rs", true),
            ("/src/**", "/other/src/a.rs", false),
            ("./.env", "/proj/.env", true),
            ("./.env", "/proj/sub/.env", false),
            (".env", "/proj/sub/.env", true),
            ("*.pem", "/proj/a/b/c.pem", true),
            ("*.pem", "/elsewhere/c.pem", false),
            ("src/*.rs", "/proj/src/main.rs", true),
            ("src/*.rs", "/proj/src/sub/main.rs", false),
            ("src/**/*.rs", "/proj/src/main.rs", true),
            ("src/**/*.rs", "/proj/src/a/b/main.rs", true),
            ("docs", "/proj/docs/a/b.md", true),
            ("docs/", "/proj/docs/a.md", true),
            ("docs", "/proj/docsx/a.md", false),
            ("/docs", "/proj/docsx", false),
            ("file?.txt", "/proj/file1.txt", true),
            ("[ab].txt", "/proj/a.txt", true),
            ("[!ab].txt", "/proj/a.txt", false),
            (".", "/proj/anything", true),
        ];
        for (spec, path, expected) in cases {
            let pattern = rules::PathPattern::new(spec, anchors).unwrap();
            assert_eq!(
                pattern.matches(Path::new(path)),
                expected,
                "{spec} vs {path}"
            );
        }
    }

    #[test]
    fn suggestions() {
        let gate = gate_with(RuleSet::default(), Mode::Default);
        let cases = [
            ("npm run test -- --watch", Some("Bash(npm run test *)")),
            ("git commit -m 'x y'", Some("Bash(git commit *)")),
            ("cargo test", Some("Bash(cargo test *)")),
            ("make", Some("Bash(make)")),
            ("ls -la", Some("Bash(ls *)")),
            (
                "python3 script.py --fast",
                Some("Bash(python3 script.py *)"),
            ),
            ("rm -rf build", Some("Bash(rm -rf build)")),
            ("ls && pwd", None),
            ("echo $(date)", None),
            ("echo x > f", None),
            ("FOO=1 make", None),
            ("sh -c make", None),
            ("'unterminated", None),
        ];
        for (command, expected) in cases {
            let got = gate.suggest_rule(&bash(command));
            assert_eq!(got.as_deref(), expected, "{command}");
            if let Some(rule) = got {
                let mut gate = gate_with(RuleSet::default(), Mode::Default);
                gate.allow(&rule).unwrap();
                check(&gate, &bash(command), 'A');
            }
        }
        assert_eq!(
            gate.suggest_rule(&write("src/a.rs")).as_deref(),
            Some("Edit(./src/a.rs)")
        );
        assert_eq!(gate.suggest_rule(&write(".git/config")), None);
        assert_eq!(
            gate.suggest_rule(&read("/etc/hosts")).as_deref(),
            Some("Read(//etc/hosts)")
        );
        let mut session = gate_with(RuleSet::default(), Mode::Default);
        check(&session, &write("src/a.rs"), 'Q');
        session.allow("Edit(./src/a.rs)").unwrap();
        check(&session, &write("src/a.rs"), 'A');
        check(&session, &write("src/b.rs"), 'Q');
        assert!(session.allow("Bash(ls").is_err());
        assert!(session.allow("WebFetch").is_err());
    }

    #[test]
    fn allowing_rules() {
        let gate = gate_with(rule_set(&["Bash(echo *)"], &[], &[]), Mode::Default);
        let cases: &[(Action, Option<&str>)] = &[
            (bash("touch m"), Some("Bash(touch m *)")),
            (bash("echo x; touch m"), Some("Bash")),
            (bash("echo x > m"), Some("Bash")),
            (bash("echo x >> ~/.bashrc"), None),
            (bash("cat /etc/hosts"), None),
            (write("src/a.rs"), Some("Edit(./src/a.rs)")),
            (write("/tmp/x"), Some("Edit(//tmp/x)")),
            (write(".git/hooks/pre-commit"), None),
            (read("/etc/hosts"), Some("Read(//etc/hosts)")),
        ];
        for (action, expected) in cases {
            let suggestion = gate.suggest_rule(action);
            let got = gate.allowing_rule(action, suggestion.as_deref());
            assert_eq!(got.as_deref(), *expected, "{action:?}");
        }
    }

    #[test]
    fn cli_rules_malformed_are_errors() {
        let bad = rule_set(&["Bash(ls"], &[], &[]);
        let err = Gate::new(bad, Mode::Default, workspace()).err().unwrap();
        assert!(err.contains("Bash(ls"), "{err}");
        let ok = rule_set(&["WebFetch", "Bash(ls *)"], &[], &[]);
        assert!(Gate::new(ok, Mode::Default, workspace()).is_ok());
    }

    #[test]
    fn tool_lists() {
        let cases: &[(&str, &[&str])] = &[
            ("Bash(git *),Read", &["Bash(git *)", "Read"]),
            (
                "Bash(git diff *) Read  Edit",
                &["Bash(git diff *)", "Read", "Edit"],
            ),
            ("Bash(a, b), Write", &["Bash(a, b)", "Write"]),
            ("", &[]),
            (" , ", &[]),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_tool_list(input), *expected, "{input}");
        }
    }

    fn load_from(tmp: &TempDir, cli: RuleSet, mode: Option<Mode>) -> Result<Gate, String> {
        let root = tmp.join("proj");
        std::fs::create_dir_all(&root).unwrap();
        let ws = Workspace { root };
        load(
            cli,
            mode,
            ws,
            Some(tmp.join("home")),
            Some(tmp.join("config/nib")),
        )
    }

    #[test]
    fn settings_files_merge_and_deny_wins() {
        let tmp = TempDir::new("merge");
        tmp.put(
            "home/.claude/settings.json",
            r#"{"permissions":{"allow":["Bash(npm test *)","Bash(make *)"],"defaultMode":"acceptEdits"}}"#,
        );
        tmp.put(
            "config/nib/settings.json",
            r#"{"permissions":{"allow":["Bash(just *)"]}}"#,
        );
        tmp.put(
            "proj/.claude/settings.json",
            r#"{"permissions":{"deny":["Bash(make deploy *)"],"ask":["Bash(just release *)"],"defaultMode":"bypassPermissions"},"model":"x"}"#,
        );
        tmp.put(
            "proj/.claude/settings.local.json",
            r#"{"permissions":{"allow":["Bash(cargo run *)","Bash(oops"]}}"#,
        );
        let gate = load_from(
            &tmp,
            rule_set(&[], &[], &["Bash(npm test --update *)"]),
            None,
        )
        .unwrap();
        assert_eq!(gate.mode(), Mode::AcceptEdits);
        check_table(
            &gate,
            &[
                ("npm test", 'A'),
                ("npm test --update x", 'D'),
                ("make all", 'A'),
                ("make deploy now", 'D'),
                ("just build", 'A'),
                ("just release", 'Q'),
                ("cargo run", 'A'),
            ],
        );
        let warnings = gate.warnings().join("\n");
        assert!(warnings.contains("bypassPermissions"), "{warnings}");
        assert!(warnings.contains("Bash(oops") && warnings.contains("settings.local.json"));
        let cli_mode = load_from(&tmp, RuleSet::default(), Some(Mode::Plan)).unwrap();
        assert_eq!(cli_mode.mode(), Mode::Plan);
    }

    #[test]
    fn settings_errors_are_reported() {
        let tmp = TempDir::new("errors");
        tmp.put(
            "proj/.claude/settings.json",
            r#"{"permissions":{"deny":["Bash(rm *"]}}"#,
        );
        let err = load_from(&tmp, RuleSet::default(), None).err().unwrap();
        assert!(
            err.contains(".claude/settings.json") && err.contains("Bash(rm *"),
            "{err}"
        );
        tmp.put("proj/.claude/settings.json", "{not json");
        let err = load_from(&tmp, RuleSet::default(), None).err().unwrap();
        assert!(err.contains("not valid JSON"), "{err}");
        tmp.put(
            "proj/.claude/settings.json",
            r#"{"permissions":{"allow":"Bash"}}"#,
        );
        assert!(load_from(&tmp, RuleSet::default(), None).is_err());
        tmp.put(
            "proj/.claude/settings.json",
            r#"{"permissions":{"allow":["WebFetch"]}}"#,
        );
        let gate = load_from(&tmp, RuleSet::default(), None).unwrap();
        assert!(gate.warnings().is_empty());
    }

    #[test]
    fn saving_project_rules() {
        let tmp = TempDir::new("save");
        let root = tmp.path().to_path_buf();
        save_project_rule(&root, "Bash(npm test *)").unwrap();
        save_project_rule(&root, "Bash(npm test *)").unwrap();
        let path = root.join(".claude/settings.local.json");
        let value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            value["permissions"]["allow"],
            serde_json::json!(["Bash(npm test *)"])
        );
        tmp.put(
            ".claude/settings.local.json",
            r#"{"env":{"A":"1"},"permissions":{"deny":["Read(.env)"],"allow":["Read"]}}"#,
        );
        save_project_rule(&root, "Edit(./src/a.rs)").unwrap();
        let value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(value["env"]["A"], "1");
        assert_eq!(
            value["permissions"]["deny"],
            serde_json::json!(["Read(.env)"])
        );
        assert_eq!(
            value["permissions"]["allow"],
            serde_json::json!(["Read", "Edit(./src/a.rs)"])
        );
        assert!(save_project_rule(&root, "Bash(oops").is_err());
        tmp.put(".claude/settings.local.json", "[1]");
        assert!(save_project_rule(&root, "Read").is_err());
    }
}
