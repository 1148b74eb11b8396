//! The approval gate: permission rules and modes → a `Verdict` for each action.
//!
//! It reads settings files and folder trust when built (`load`), then decides without
//! changing the system (it lists directories and resolves symlinks to see what a
//! command would open). Asking the user is the UI's job; this module only says that it
//! must ask. Shell parsing lives in `shell.rs`, the read-only command table in
//! `readers.rs`, the commands nested in a line in `commands.rs`, glob and path
//! resolution in `files.rs`, trusted folders in `trust.rs`, rule syntax in `rules.rs`.

#[cfg(test)]
mod class_tests;
mod commands;
mod files;
mod readers;
mod rules;
mod shell;
mod trust;

use crate::paths::{Workspace, canonical_prefix, normalize, short_path};
use crate::tools::{Action, Tool};
use commands::{Seen, commands_in, form_matches, named_args, part_forms};
use files::{Arg, Looking, Named};
use readers::Descent;
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
    /// Project rules and mode waiting for the folder's trust.
    held: Vec<Held>,
    /// The user already said whether they trust this folder.
    trust_answered: bool,
    /// The mode was chosen on the command line (or in nib's settings): trusting a
    /// folder does not change it.
    explicit_mode: bool,
    /// nib's data directory (folder trust).
    nib_data: Option<PathBuf>,
}

/// Where the gate's files are besides the workspace and home: nib's config directory
/// (`<config_dir>/nib`) and nib's data directory (`<data_dir>/nib`, where folder trust
/// is kept).
pub struct Places {
    pub nib_config: Option<PathBuf>,
    pub nib_data: Option<PathBuf>,
}

/// Allow rules and `defaultMode` of a project file that wait for the folder's trust.
#[derive(Clone, Debug)]
pub struct Held {
    /// The file, as shown to the user.
    pub file: String,
    pub allow: Vec<String>,
    pub mode: Option<String>,
}

/// Reads the settings files (`~/.claude/settings.json`, `<nib_config>/settings.json`,
/// `.claude/settings.json`, `.claude/settings.local.json` in the workspace) and adds
/// the CLI rules. The CLI mode beats `defaultMode` from the files; later files beat
/// earlier ones. The project's own allow rules and `defaultMode` apply only in a
/// trusted folder (else they are `held`, except rules the user saved there); its
/// deny and ask rules always apply.
pub fn load(
    cli: RuleSet,
    mode: Option<Mode>,
    workspace: Workspace,
    places: Places,
) -> Result<Gate, String> {
    let Places {
        nib_config,
        nib_data,
    } = places;
    let (root, home) = (workspace.root.clone(), workspace.home.clone());
    let mut files: Vec<(PathBuf, bool)> = Vec::new();
    if let Some(home) = &home {
        files.push((home.join(".claude/settings.json"), false));
    }
    if let Some(dir) = &nib_config {
        files.push((dir.join("settings.json"), false));
    }
    files.push((root.join(".claude/settings.json"), true));
    files.push((root.join(".claude/settings.local.json"), true));
    let folder = canonical_prefix(&root);
    let trust = match &nib_data {
        Some(data) => trust::entry(data, &folder)?,
        None => trust::Entry::default(),
    };
    let trusted = trust.trusted == Some(true);

    let mut sources = Vec::new();
    let mut warnings = Vec::new();
    let mut held = Vec::new();
    let mut file_mode = None;
    for (path, in_project) in files {
        let name = short_path(&path, home.as_deref());
        let Some(mut settings) = read_settings(&path, &name)? else {
            continue;
        };
        if in_project && !trusted {
            let allow = std::mem::take(&mut settings.rules.allow);
            let (own, waiting) = allow.into_iter().partition(|r| trust.saved.contains(r));
            settings.rules.allow = own;
            let mode = settings.mode.take();
            if !waiting.is_empty() || mode.is_some() {
                held.push(Held {
                    file: name.clone(),
                    allow: waiting,
                    mode,
                });
            }
        }
        if let Some(m) = settings.mode.as_deref() {
            file_mode = settings_mode(&name, m, in_project, &mut warnings).or(file_mode);
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
    let nib_dirs: Vec<PathBuf> = nib_config.into_iter().chain(nib_data.clone()).collect();
    let explicit_mode = mode.is_some();
    let mode = mode.or(file_mode).unwrap_or(Mode::Default);
    let mut gate = Gate::build(sources, mode, workspace, nib_dirs)?;
    warnings.append(&mut gate.warnings);
    gate.warnings = warnings;
    gate.held = held;
    gate.trust_answered = trust.trusted.is_some();
    gate.explicit_mode = explicit_mode;
    gate.nib_data = nib_data;
    Ok(gate)
}

/// The mode a settings file's `defaultMode` asks for, if nib honours it there.
fn settings_mode(
    name: &str,
    mode: &str,
    in_project: bool,
    warnings: &mut Vec<String>,
) -> Option<Mode> {
    match Mode::parse(mode) {
        Some(Mode::Bypass) if in_project => {
            warnings.push(format!(
                "{name}: defaultMode bypassPermissions is ignored in project files; \
                 pass --permission-mode bypassPermissions to use it"
            ));
            None
        }
        Some(m) => Some(m),
        None => {
            warnings.push(format!(
                "{name}: unknown defaultMode `{mode}` is ignored; use default, acceptEdits, \
                 plan, dontAsk or bypassPermissions"
            ));
            None
        }
    }
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
        Gate::build(vec![source], mode, workspace, Vec::new())
    }

    fn build(
        sources: Vec<Source>,
        mode: Mode,
        workspace: Workspace,
        nib_dirs: Vec<PathBuf>,
    ) -> Result<Gate, String> {
        let root = canonical_prefix(&workspace.root);
        let mut gate = Gate {
            mode,
            root,
            home: workspace.home,
            nib_dirs: nib_dirs.iter().map(|d| canonical_prefix(d)).collect(),
            read_dirs: Vec::new(),
            extra_roots: Vec::new(),
            allow: Vec::new(),
            ask: Vec::new(),
            deny: Vec::new(),
            warnings: Vec::new(),
            held: Vec::new(),
            trust_answered: false,
            explicit_mode: false,
            nib_data: None,
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

    /// Switches the mode (the REPL's Shift-Tab and `/permissions MODE`).
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }

    /// Problems found while loading (malformed allow/ask rules, ignored settings).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The project's allow rules and `defaultMode` that wait for the folder's trust,
    /// when the user has not been asked yet (empty otherwise).
    pub fn trust_question(&self) -> &[Held] {
        match self.trust_answered {
            true => &[],
            false => &self.held,
        }
    }

    /// One line saying which files' rules are ignored and how to apply them, when
    /// some are.
    pub fn untrusted_notice(&self) -> Option<String> {
        let files: Vec<&str> = self.held.iter().map(|h| h.file.as_str()).collect();
        (!files.is_empty()).then(|| {
            format!(
                "ignoring the allow rules and defaultMode of {} because this folder is not \
                 trusted; run `nib trust` here to apply them",
                files.join(" and ")
            )
        })
    }

    /// Records the user's answer for this folder; on yes, the held rules and mode apply
    /// from now on.
    pub fn answer_trust(&mut self, trusted: bool) -> Result<(), String> {
        if let Some(data) = &self.nib_data {
            trust::answer(data, &self.root, trusted)?;
        }
        self.trust_answered = true;
        if !trusted {
            return Ok(());
        }
        for held in std::mem::take(&mut self.held) {
            for rule in &held.allow {
                self.add(Kind::Allow, rule, &held.file, false)?;
            }
            let mode = held.mode.as_deref();
            let mode = mode.and_then(|m| settings_mode(&held.file, m, true, &mut self.warnings));
            if let Some(mode) = mode.filter(|_| !self.explicit_mode) {
                self.mode = mode;
            }
        }
        Ok(())
    }

    /// Every rule in force, deny first, each with the file (or flag, or session) it
    /// came from: `deny: Read(./.env) (from ~/.claude/settings.json)`.
    pub fn rules_in_force(&self) -> Vec<String> {
        let kinds = [
            ("deny", &self.deny),
            ("ask", &self.ask),
            ("allow", &self.allow),
        ];
        kinds
            .iter()
            .flat_map(|(kind, rules)| {
                rules
                    .iter()
                    .map(move |r| format!("{kind}: {}", r.describe()))
            })
            .collect()
    }

    /// Allows `rule` for the rest of this session and saves it to the project's
    /// `.claude/settings.local.json`; remembered as the user's own, so it applies in
    /// this folder even before the folder is trusted.
    pub fn save_project_rule(&mut self, rule: &str) -> Result<(), String> {
        self.allow(rule)?;
        write_project_rule(&self.root, rule)?;
        match &self.nib_data {
            Some(data) => trust::saved(data, &self.root, rule),
            None => Ok(()),
        }
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
        canonical_prefix(&normalize(&self.root, self.home.as_deref(), path))
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

    fn has_bash_rules(&self, rules: &[Rule]) -> bool {
        rules.iter().any(|r| r.tool == RuleTool::Bash)
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
            return None;
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

/// A prefix rule for one plain command (`Bash(cargo test *)`); the exact command for
/// one word, a destructive command, or a program followed by options
/// (`git --no-pager log`); `None` for anything compound or unsafe, and for commands
/// that run other commands (`timeout`, `env`, `command`, shells…), whose prefix would
/// allow whatever they run.
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
    if shell::runs_commands(name) {
        return None;
    }
    let subcommand = |w: &Word| {
        let t = w.text.as_str();
        t.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c))
    };
    if words.len() == 1 || EXACT_ONLY.contains(&shell::basename(name)) || !subcommand(&words[1]) {
        return Some(format!("Bash({})", shell::render(words)));
    }
    let mut prefix = vec![shell::render(&words[..1]), words[1].text.clone()];
    let runs_script = SCRIPT_RUNNERS.contains(&name) && words[1].text == "run";
    if let Some(script) = words.get(2).filter(|w| runs_script && subcommand(w)) {
        prefix.push(script.text.clone());
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

/// `nib trust`: records that the user trusts `folder` (canonical) with its own settings.
pub fn trust_folder(nib_data: &Path, folder: &Path) -> Result<(), String> {
    trust::answer(nib_data, folder, true)
}

/// Appends an allow rule to `<root>/.claude/settings.local.json` (created if needed),
/// keeping the other keys; a rule already there is not added twice.
fn write_project_rule(root: &Path, rule: &str) -> Result<(), String> {
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

/// Whether the user trusted `root` (`nib trust`, or yes in the REPL): its own files may
/// then grant permissions and run hooks, MCP servers and commands.
pub fn folder_trusted(nib_data: &Path, root: &Path) -> bool {
    trust::entry(nib_data, &canonical_prefix(root)).is_ok_and(|e| e.trusted == Some(true))
}

#[cfg(test)]
mod tests;
