//! The approval gate end to end: a battery of attacks proposed by the fake model to nib
//! running headless with typical allow rules (from flags, the project's and the user's
//! Claude Code settings) never runs anything the rules did not allow; deny rules beat
//! `--yes` through wrappers; the permission modes; and no configured key reaches a
//! command, the journal or stream-json output.

use crate::support::fake::Call;
use crate::support::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// The allow rules a typical user has: harmless commands only.
const TYPICAL_RULES: [&str; 3] = ["Bash(echo *)", "Bash(git status)", "Bash(ls *)"];

/// What a file read outside the workspace holds; it must never reach the model.
const SENTINEL: &str = "PRIVATE-KEY-SENTINEL-5f1e";

/// Where an attack would leave its trace.
#[derive(Clone, Copy)]
enum Target {
    /// Relative to the workspace.
    Work(&'static str),
    /// Relative to HOME.
    Home(&'static str),
    /// Relative to the sandbox root, next to the workspace (outside it).
    Outside(&'static str),
    /// Nothing is written: the attack reads `SENTINEL`.
    Read,
}

/// One attack: a tool call whose `{m}` placeholders name the target.
struct Attack {
    tool: &'static str,
    args: Value,
    target: Target,
}

fn bash(command: &'static str, target: Target) -> Attack {
    Attack {
        tool: "bash",
        args: json!({ "command": command }),
        target,
    }
}

fn tool(tool: &'static str, args: Value, target: Target) -> Attack {
    Attack { tool, args, target }
}

/// Each attack's marker has its own name, so a failure says which one got through.
fn attacks() -> Vec<Attack> {
    use Target::*;
    vec![
        bash("echo x; touch {m}", Work("m-semicolon")),
        bash("echo x && touch {m}", Work("m-and")),
        bash("false || touch {m}", Work("m-or")),
        bash("echo x & touch {m}", Work("m-background")),
        bash("echo $(touch {m})", Work("m-subst")),
        bash("echo `touch {m}`", Work("m-backticks")),
        bash("echo \"$(touch {m})\"", Work("m-quoted-subst")),
        bash("echo x > {m}", Work("m-redirect")),
        bash("echo x >| {m}", Work("m-clobber")),
        bash("ls 2> {m}", Work("m-stderr")),
        bash("ls &> {m}", Work("m-both")),
        bash("echo x | tee {m}", Work("m-tee")),
        bash("echo x |& tee {m}", Work("m-pipe-both")),
        bash("echo x\ntouch {m}", Work("m-newline")),
        bash("ls # c\ntouch {m}", Work("m-comment-newline")),
        bash("ls; touch {m}", Work("m-ls-semicolon")),
        bash("ls -la $(touch {m})", Work("m-ls-subst")),
        bash("ls <(touch {m})", Work("m-proc-subst")),
        bash("git status; touch {m}", Work("m-git-semicolon")),
        bash("git status > {m}", Work("m-git-redirect")),
        bash(
            "git -c core.fsmonitor='touch {m}; true' status",
            Work("m-fsmonitor"),
        ),
        bash("git -c alias.st='!touch {m}' st", Work("m-alias")),
        bash(
            "find . -maxdepth 0 -exec touch {m} \\;",
            Work("m-find-exec"),
        ),
        bash("find . -maxdepth 0 -fprint {m}", Work("m-find-fprint")),
        bash(
            "sed -i.m-sed-i s/alpha/beta/ seed.txt",
            Work("seed.txt.m-sed-i"),
        ),
        bash("sed -n 'w {m}' seed.txt", Work("m-sed-w")),
        bash("sort -o {m} seed.txt", Work("m-sort-o")),
        bash("sort --outp={m} seed.txt", Work("m-sort-abbrev")),
        bash("sort --o={m} seed.txt", Work("m-sort-abbrev-short")),
        bash("bash -c 'touch {m}'", Work("m-bash-c")),
        bash("echo 'touch {m}' | sh", Work("m-pipe-sh")),
        bash("echo {m} | xargs touch", Work("m-xargs")),
        bash("eval touch {m}", Work("m-eval")),
        bash("env touch {m}", Work("m-env")),
        bash("timeout 5 touch {m}", Work("m-timeout")),
        bash("command touch {m}", Work("m-command")),
        bash("\\touch {m}", Work("m-backslash")),
        bash("./touch {m}", Work("m-dot-slash")),
        bash("(touch {m})", Work("m-subshell")),
        bash("{ touch {m}; }", Work("m-braces")),
        bash("X=1 touch {m}", Work("m-assignment")),
        bash("$(echo touch) {m}", Work("m-computed-name")),
        bash("cat <<EOF > {m}\nx\nEOF", Work("m-heredoc")),
        bash("bash <<EOF\ntouch {m}\nEOF", Work("m-heredoc-bash")),
        bash("echo x >> {m}", Home(".bashrc")),
        bash("echo x > {m}", Outside("escape-redirect.txt")),
        tool(
            "write",
            json!({"path": ".git/hooks/pre-commit", "content": "#!/bin/sh\n"}),
            Work(".git/hooks/pre-commit"),
        ),
        tool(
            "write",
            json!({"path": ".claude/settings.local.json", "content": "{}"}),
            Work(".claude/settings.local.json"),
        ),
        tool(
            "write",
            json!({"path": "../escape.txt", "content": "x"}),
            Outside("escape.txt"),
        ),
        tool(
            "write",
            json!({"path": "{m}", "content": "x"}),
            Outside("absolute.txt"),
        ),
        tool(
            "write",
            json!({"path": "link/through.txt", "content": "x"}),
            Outside("elsewhere/through.txt"),
        ),
        tool("read", json!({"path": "~/.ssh/id_rsa"}), Read),
        tool("read", json!({"path": "{home}/.ssh/id_rsa"}), Read),
        tool("read", json!({"path": "link/secret.txt"}), Read),
        tool(
            "grep",
            json!({"pattern": "SENTINEL", "path": "~/.ssh"}),
            Read,
        ),
        bash("cat ~/.ssh/id_rsa", Read),
        bash("cat ../elsewhere/secret.txt", Read),
        bash("cat link/secret.txt", Read),
        bash("ls; cat < ~/.ssh/id_rsa", Read),
    ]
}

/// Commands the typical rules allow, with a word their output must contain.
const CONTROLS: &[(&str, &str)] = &[
    ("echo control-echo", "control-echo"),
    ("ls -la", "seed.txt"),
    ("git status", "branch"),
    ("echo a && ls", "seed.txt"),
    ("echo quiet > /dev/null; echo loud", "loud"),
    ("sort seed.txt | head -n 1", "alpha-seed"),
];

/// The workspace the attacks run against: a git repository with a seed file, a fake
/// `./touch`, a symlink to a directory outside, and a private key in HOME.
fn prepare(nib: &Nib) {
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args(args)
            .current_dir(nib.work())
            .env("HOME", nib.home())
            .status()
            .expect("run git");
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    nib.put("seed.txt", "alpha-seed\n");
    nib.put("touch", "#!/bin/sh\ntouch \"$@\"\n");
    fs::set_permissions(nib.work().join("touch"), fs::Permissions::from_mode(0o755)).unwrap();
    let elsewhere = outside(nib).join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::write(elsewhere.join("secret.txt"), SENTINEL).unwrap();
    std::os::unix::fs::symlink(&elsewhere, nib.work().join("link")).unwrap();
    fs::create_dir_all(nib.home().join(".ssh")).unwrap();
    fs::write(nib.home().join(".ssh/id_rsa"), SENTINEL).unwrap();
}

/// The sandbox directory that holds the workspace.
fn outside(nib: &Nib) -> PathBuf {
    nib.work().parent().unwrap().to_path_buf()
}

fn target_path(nib: &Nib, target: Target) -> Option<PathBuf> {
    match target {
        Target::Work(rel) => Some(nib.work().join(rel)),
        Target::Home(rel) => Some(nib.home().join(rel)),
        Target::Outside(rel) => Some(outside(nib).join(rel)),
        Target::Read => None,
    }
}

/// The call with `{m}` replaced by how the command names its target, `{home}` by HOME.
fn render(nib: &Nib, attack: &Attack, id: &str) -> Call {
    let m = match attack.target {
        Target::Work(rel) => rel.to_string(),
        Target::Home(rel) => format!("~/{rel}"),
        Target::Outside(_) => target_path(nib, attack.target)
            .unwrap()
            .display()
            .to_string(),
        Target::Read => String::new(),
    };
    let home = nib.home().display().to_string();
    let text = attack
        .args
        .to_string()
        .replace("{m}", &m)
        .replace("{home}", &home);
    call(attack.tool, serde_json::from_str(&text).unwrap()).id(id)
}

/// What one battery run left behind.
struct Battery {
    nib: Nib,
    server: FakeServer,
    out: Output,
    attack_ids: BTreeSet<String>,
}

impl Battery {
    /// Every attack and control in one reply, then a closing answer.
    fn run(server: FakeServer, extra: &[&str], setup: impl FnOnce(&Nib)) -> Battery {
        let nib = Nib::against(&server, Protocol::OpenAi);
        setup(&nib);
        prepare(&nib);
        let attacks = attacks();
        let mut calls: Vec<Call> = attacks
            .iter()
            .enumerate()
            .map(|(i, a)| render(&nib, a, &format!("attack-{i}")))
            .collect();
        let controls = CONTROLS.iter().enumerate();
        calls
            .extend(controls.map(|(i, (c, _))| {
                call("bash", json!({"command": c})).id(&format!("control-{i}"))
            }));
        server.push(Reply::calls(calls));
        server.push(Reply::text("Finished."));
        let nib = nib
            .args(["-p", "attack", "--output-format", "json"])
            .args(extra)
            .timeout(120);
        let out = nib.run();
        let attack_ids = (0..attacks.len()).map(|i| format!("attack-{i}")).collect();
        Battery {
            nib,
            server,
            out,
            attack_ids,
        }
    }

    /// The tool results the model received, by call id.
    fn results(&self) -> Vec<(String, String)> {
        let reqs = self.server.chat_requests();
        assert_eq!(reqs.len(), 2, "one tool round\n{}", self.out);
        let results = reqs[1].tool_results();
        results.into_iter().map(|r| (r.id, r.content)).collect()
    }

    fn denied_ids(&self) -> BTreeSet<String> {
        let v = self.out.json();
        let denials = v["permission_denials"]
            .as_array()
            .expect("permission_denials");
        denials
            .iter()
            .map(|d| d["tool_use_id"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// Nothing the rules did not allow ran; every allowed control did.
    fn assert_held(&self) {
        assert_eq!(self.out.code(), 0, "{}", self.out);
        for (i, attack) in attacks().iter().enumerate() {
            if let Some(path) = target_path(&self.nib, attack.target) {
                assert!(
                    !path.exists(),
                    "attack {i} ({}) got through: {} exists\n{}",
                    attack.args,
                    path.display(),
                    self.out
                );
            }
        }
        let bashrc = self.nib.home().join(".bashrc");
        assert!(!bashrc.exists(), "~/.bashrc untouched");
        assert_eq!(self.nib.read("seed.txt").as_deref(), Some("alpha-seed\n"));
        let results = self.results();
        for (id, content) in &results {
            assert!(
                !content.contains(SENTINEL),
                "{id} leaked the key: {content}"
            );
            if self.attack_ids.contains(id) {
                assert!(content.starts_with("denied"), "{id}: {content}");
                assert!(
                    content.contains("The user can allow it with --allowedTools")
                        || content.contains("No rule can allow it"),
                    "{id}: the model is told how the user could allow it: {content}"
                );
            }
        }
        for (i, (command, expected)) in CONTROLS.iter().enumerate() {
            let id = format!("control-{i}");
            let content = &results
                .iter()
                .find(|(r, _)| *r == id)
                .expect("a control result")
                .1;
            assert!(
                content.starts_with("exit status: 0") && content.contains(expected),
                "allowed control `{command}` ran: {content}"
            );
        }
        assert_eq!(self.denied_ids(), self.attack_ids, "{}", self.out);
    }
}

/// The hint in a denial names a rule that really allows the call, or says none can.
#[test]
fn denials_say_how_to_allow() {
    let server = FakeServer::start(Vec::new());
    let battery = Battery::run(server, &["--allowedTools", "Bash(echo *)"], |_| {});
    let results = battery.results();
    let hint = |needle: &str| {
        let i = attacks()
            .iter()
            .position(|a| a.args.to_string().contains(needle));
        let id = format!("attack-{}", i.expect("an attack with this text"));
        results.iter().find(|(r, _)| *r == id).unwrap().1.clone()
    };
    let cases = [
        ("echo x; touch", "--allowedTools Bash or"),
        ("timeout 5 touch", "--allowedTools \"Bash(timeout 5 *)\""),
        ("echo x >> {m}", "No rule can allow it"),
        (".git/hooks/pre-commit", "No rule can allow it"),
        ("../escape.txt", "--allowedTools \"Edit(//"),
        ("\"~/.ssh/id_rsa\"", "--allowedTools \"Read(//"),
    ];
    for (needle, expected) in cases {
        let text = hint(needle);
        assert!(text.contains(expected), "{needle}: {text}");
    }
    // Following the hint lets the call run.
    let server = FakeServer::start(Vec::new());
    let battery = Battery::run(server, &["--allowedTools", "Bash"], |_| {});
    assert!(
        battery.nib.work().join("m-semicolon").exists(),
        "{}",
        battery.out
    );
    assert!(
        !battery.nib.home().join(".bashrc").exists(),
        "{}",
        battery.out
    );
}

fn settings_json(allow: &[&str]) -> String {
    json!({"permissions": {"allow": allow}}).to_string()
}

#[test]
fn attacks_are_armed_under_yes() {
    // The same battery with everything allowed and no sandbox: each attack really does
    // what it claims, so the runs below that find no marker prove the gate stopped it.
    let battery = Battery::run(
        FakeServer::start(Vec::new()),
        &["--yes", "--sandbox", "off"],
        |_| {},
    );
    assert_eq!(battery.out.code(), 0, "{}", battery.out);
    for (i, attack) in attacks().iter().enumerate() {
        if let Some(path) = target_path(&battery.nib, attack.target) {
            assert!(
                path.exists(),
                "attack {i} ({}) is not armed: {} missing\n{:?}",
                attack.args,
                path.display(),
                battery.results()
            );
        }
    }
    let leaked = battery
        .results()
        .iter()
        .filter(|(_, c)| c.contains(SENTINEL))
        .count();
    let reads = attacks()
        .iter()
        .filter(|a| matches!(a.target, Target::Read))
        .count();
    assert_eq!(leaked, reads, "every read attack reads the key under --yes");
    assert!(battery.denied_ids().is_empty());
}

#[test]
fn attacks_fail_with_allowed_tools_flags() {
    let mut flags = vec!["--allowedTools"];
    flags.extend(TYPICAL_RULES);
    Battery::run(FakeServer::start(Vec::new()), &flags, |_| {}).assert_held();
}

#[test]
fn attacks_fail_with_project_settings() {
    let settings = settings_json(&TYPICAL_RULES);
    let put = |nib: &Nib| nib.put(".claude/settings.json", &settings);
    Battery::run(FakeServer::start(Vec::new()), &[], put).assert_held();
}

#[test]
fn attacks_fail_with_user_settings() {
    let put = |nib: &Nib| {
        let path = nib.home().join(".claude/settings.json");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, settings_json(&TYPICAL_RULES)).unwrap();
    };
    Battery::run(FakeServer::start(Vec::new()), &[], put).assert_held();
}

/// One reply of calls (ids `c0`, `c1`, …), then a closing answer, run headless.
struct Run {
    nib: Nib,
    server: FakeServer,
    out: Output,
}

impl Run {
    fn new(flags: &[&str], calls: Vec<Call>) -> Run {
        Run::with(flags, |nib| nib, |_| calls)
    }

    /// `prepare` sets up the sandbox (and may add environment), `calls` may name it.
    fn with(
        flags: &[&str],
        prepare: impl FnOnce(Nib) -> Nib,
        calls: impl FnOnce(&Nib) -> Vec<Call>,
    ) -> Run {
        let server = FakeServer::start(Vec::new());
        let mut nib = Nib::against(&server, Protocol::OpenAi).args(["-p", "go"]);
        if !flags.contains(&"--output-format") {
            nib = nib.args(["--output-format", "json"]);
        }
        nib.put("seed.txt", "alpha-seed\n");
        let nib = prepare(nib.args(flags).timeout(60));
        let calls = calls(&nib).into_iter().enumerate();
        let calls = calls.map(|(i, c)| c.id(&format!("c{i}"))).collect();
        server.push(Reply::calls(calls));
        server.push(Reply::text("Finished."));
        let out = nib.run();
        assert_eq!(out.code(), 0, "{out}");
        Run { nib, server, out }
    }

    fn result(&self, id: &str) -> String {
        let reqs = self.server.chat_requests();
        assert_eq!(reqs.len(), 2, "one tool round\n{}", self.out);
        let results = reqs[1].tool_results();
        let found = results.into_iter().find(|r| r.id == id);
        found
            .unwrap_or_else(|| panic!("no result {id}\n{}", self.out))
            .content
    }

    fn denied(&self) -> Vec<String> {
        let v = self.out.json();
        let denials = v["permission_denials"]
            .as_array()
            .expect("permission_denials");
        let ids = denials
            .iter()
            .map(|d| d["tool_use_id"].as_str().unwrap_or(""));
        ids.map(str::to_string).collect()
    }

    fn exists(&self, rel: &str) -> bool {
        self.nib.work().join(rel).exists()
    }

    /// Everything the journals on disk hold.
    fn journals(&self) -> String {
        let files = self.nib.journal_files();
        assert!(!files.is_empty(), "a journal was written\n{}", self.out);
        files
            .iter()
            .map(|f| fs::read_to_string(f).unwrap())
            .collect()
    }
}

fn sh(command: &str) -> Call {
    call("bash", json!({ "command": command }))
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("c{i}")).collect()
}

/// Every way of reaching `curl` the deny battery tries.
const CURL_ATTACKS: &[&str] = &[
    "curl x",
    "timeout 3 curl x",
    "ls && curl x",
    "echo x; curl x",
    "env curl x",
    "nice -n 5 curl x",
    "command curl x",
    "time curl x",
    "\\curl x",
    "c''url x",
    "{bin}/curl x",
    "\"$(command -v curl)\" x",
    "bash -c 'curl x'",
    "sh -c \"timeout 3 curl x\"",
    "eval 'curl x'",
    "echo $(curl x)",
    "echo x | xargs curl",
    "find . -maxdepth 0 -exec curl {} \\;",
];

/// Runs every curl attack and one control, with a fake `curl` first on PATH that
/// appends a line to `curl.log` next to the workspace; returns the log's lines.
fn curl_run(flags: &[&str], project_settings: Option<&Value>) -> (Run, usize) {
    let bin = |nib: &Nib| outside(nib).join("bin");
    let prepare = |nib: Nib| {
        let log = outside(&nib).join("curl.log");
        fs::create_dir_all(bin(&nib)).unwrap();
        let script = format!("#!/bin/sh\necho \"$@\" >> {}\n", log.display());
        let curl = bin(&nib).join("curl");
        fs::write(&curl, script).unwrap();
        fs::set_permissions(&curl, fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::var("PATH").unwrap_or_default();
        let path = format!("{}:{path}", bin(&nib).display());
        if let Some(settings) = project_settings {
            nib.put(".claude/settings.json", &settings.to_string());
        }
        nib.env("PATH", path)
    };
    let calls = |nib: &Nib| {
        let bin = bin(nib).display().to_string();
        let mut calls: Vec<Call> = CURL_ATTACKS
            .iter()
            .map(|c| sh(&c.replace("{bin}", &bin)))
            .collect();
        calls.push(sh("echo control"));
        calls
    };
    let run = Run::with(flags, prepare, calls);
    let log = fs::read_to_string(outside(&run.nib).join("curl.log")).unwrap_or_default();
    (run, log.lines().count())
}

#[test]
fn curl_attacks_are_armed_under_yes() {
    let (run, ran) = curl_run(&["--yes", "--sandbox", "off"], None);
    assert_eq!(
        ran,
        CURL_ATTACKS.len(),
        "every attack reaches curl\n{}",
        run.out
    );
}

#[test]
fn deny_rules_beat_yes_through_wrappers() {
    let (run, ran) = curl_run(&["--yes", "--disallowedTools", "Bash(curl *)"], None);
    assert_eq!(ran, 0, "curl never ran\n{}", run.out);
    assert_eq!(run.denied(), ids(0..CURL_ATTACKS.len()));
    assert!(
        run.result("c0").contains("Bash(curl *)"),
        "{}",
        run.result("c0")
    );
    let control = run.result(&format!("c{}", CURL_ATTACKS.len()));
    assert!(control.contains("control"), "{control}");
}

#[test]
fn deny_rules_from_settings_beat_allow_rules() {
    let settings = json!({"permissions": {"allow": ["Bash"], "deny": ["Bash(curl:*)"]}});
    let (run, ran) = curl_run(&["--allowedTools", "Bash(curl *)"], Some(&settings));
    assert_eq!(ran, 0, "curl never ran\n{}", run.out);
    assert_eq!(run.denied(), ids(0..CURL_ATTACKS.len()));
}

fn write(path: &str) -> Call {
    call("write", json!({"path": path, "content": "new\n"}))
}

fn edit_seed() -> Call {
    call(
        "edit",
        json!({"path": "seed.txt", "old": "alpha", "new": "beta"}),
    )
}

fn user_settings(nib: &Nib, settings: &Value) {
    let path = nib.home().join(".claude/settings.json");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, settings.to_string()).unwrap();
}

#[test]
fn plan_mode_reads_but_never_writes() {
    let run = Run::new(
        &["--permission-mode", "plan"],
        vec![
            write("new.txt"),
            edit_seed(),
            sh("touch m"),
            sh("echo x > m2"),
            sh("ls -la && git status; cat seed.txt"),
            call("read", json!({"path": "seed.txt"})),
        ],
    );
    assert!(!run.exists("new.txt") && !run.exists("m") && !run.exists("m2"));
    assert_eq!(run.nib.read("seed.txt").as_deref(), Some("alpha-seed\n"));
    assert_eq!(run.denied(), ids(0..4));
    assert!(
        run.result("c0").contains("plan mode"),
        "{}",
        run.result("c0")
    );
    assert!(
        run.result("c4").contains("alpha-seed"),
        "{}",
        run.result("c4")
    );
    assert!(
        run.result("c5").contains("alpha-seed"),
        "{}",
        run.result("c5")
    );
}

#[test]
fn accept_edits_mode_edits_the_workspace_only() {
    let run = Run::new(
        &["--permission-mode", "acceptEdits"],
        vec![
            write("src/new.txt"),
            call("read", json!({"path": "seed.txt"})),
            edit_seed(),
            write(".claude/settings.json"),
            write("../outside.txt"),
            sh("touch m"),
        ],
    );
    assert_eq!(run.nib.read("src/new.txt").as_deref(), Some("new\n"));
    assert_eq!(run.nib.read("seed.txt").as_deref(), Some("beta-seed\n"));
    assert!(!run.exists(".claude/settings.json") && !run.exists("m"));
    assert!(!outside(&run.nib).join("outside.txt").exists());
    assert_eq!(run.denied(), ids(3..6));
    assert!(run.result("c3").contains(".claude/ always need approval"));
}

#[test]
fn dont_ask_mode_denies_what_is_not_allowed() {
    let run = Run::new(
        &[
            "--permission-mode",
            "dontAsk",
            "--allowedTools",
            "Bash(touch ok *)",
        ],
        vec![
            sh("touch ok yes"),
            sh("touch m"),
            write("new.txt"),
            sh("ls"),
        ],
    );
    assert!(run.exists("ok") && run.exists("yes"));
    assert!(!run.exists("m") && !run.exists("new.txt"));
    assert_eq!(run.denied(), ids(1..3));
    assert!(run.result("c1").contains("dontAsk"), "{}", run.result("c1"));
}

#[test]
fn bypass_mode_runs_everything_but_deny_rules() {
    let run = Run::new(
        &[
            "--permission-mode",
            "bypassPermissions",
            "--disallowedTools",
            "Bash(rm *)",
        ],
        vec![sh("touch m"), write(".git/hooks/x"), sh("rm seed.txt")],
    );
    assert!(run.exists("m") && run.exists(".git/hooks/x") && run.exists("seed.txt"));
    assert_eq!(run.denied(), ids(2..3));
}

#[test]
fn settings_default_mode() {
    let calls = || vec![write("new.txt"), sh("ls")];
    let accept = json!({"permissions": {"defaultMode": "acceptEdits"}});
    let put = |nib: Nib| {
        nib.put(".claude/settings.json", &accept.to_string());
        nib
    };
    let run = Run::with(&[], put, |_| calls());
    assert!(run.exists("new.txt"), "{}", run.out);
    assert!(run.denied().is_empty());

    // The user's file says plan; the flag beats the file.
    let plan = json!({"permissions": {"defaultMode": "plan"}});
    let put = |nib: Nib| {
        user_settings(&nib, &plan);
        nib
    };
    let run = Run::with(&[], put, |_| calls());
    assert!(!run.exists("new.txt") && run.result("c0").contains("plan mode"));
    let put = |nib: Nib| {
        user_settings(&nib, &plan);
        nib
    };
    let run = Run::with(&["--permission-mode", "acceptEdits"], put, |_| calls());
    assert!(run.exists("new.txt"), "{}", run.out);

    // A repository cannot put nib in bypass mode.
    let bypass = json!({"permissions": {"defaultMode": "bypassPermissions"}});
    let put = |nib: Nib| {
        nib.put(".claude/settings.json", &bypass.to_string());
        nib
    };
    let run = Run::with(&[], put, |_| vec![sh("touch m")]);
    assert!(!run.exists("m") && run.out.stderr.contains("bypassPermissions"));
}

#[test]
fn a_saved_project_rule_allows_the_command_next_run() {
    let calls = || vec![sh("touch m here"), sh("touch other")];
    let run = Run::new(&[], calls());
    assert!(!run.exists("m") && run.denied().len() == 2);
    // What a "p" answer saves (see approval::save_project_rule).
    let saved = json!({"permissions": {"allow": ["Bash(touch m *)"]}});
    let put = |nib: Nib| {
        nib.put(".claude/settings.local.json", &saved.to_string());
        nib
    };
    let run = Run::with(&[], put, |_| calls());
    assert!(run.exists("m") && !run.exists("other"), "{}", run.out);
    assert_eq!(run.denied(), ids(1..2));
}

#[test]
fn claude_code_settings_behave_the_same() {
    let settings = json!({"permissions": {
        "allow": ["Bash(git diff:*)", "Bash(touch ok-*)", "Read(~/notes/**)"],
        "ask": ["Bash(touch ok-ask:*)"],
        "deny": ["Read(./.env)", "Bash(curl:*)"],
    }});
    let put = |nib: Nib| {
        user_settings(&nib, &settings);
        nib.put(".env", "TOKEN=from-dotenv\n");
        fs::create_dir_all(nib.home().join("notes")).unwrap();
        fs::write(nib.home().join("notes/a.md"), "note-text\n").unwrap();
        nib
    };
    let calls = |_: &Nib| {
        vec![
            sh("touch ok-1"),
            sh("git diff --stat"),
            call("read", json!({"path": "~/notes/a.md"})),
            sh("touch ok-2; touch bad"),
            sh("touch ok-ask"),
            call("read", json!({"path": ".env"})),
            sh("cat .env"),
            sh("curl x"),
        ]
    };
    let run = Run::with(&[], put, calls);
    assert!(run.exists("ok-1") && !run.exists("ok-2") && !run.exists("ok-ask"));
    assert!(
        run.result("c2").contains("note-text"),
        "{}",
        run.result("c2")
    );
    assert_eq!(run.denied(), ids(3..8));
    for id in ["c5", "c6"] {
        let text = run.result(id);
        assert!(
            !text.contains("from-dotenv") && text.contains("Read(./.env)"),
            "{text}"
        );
    }
}

/// Keys and secrets in nib's environment (values that look real to the redactor).
const SECRETS: &[(&str, &str)] = &[
    (
        "ANTHROPIC_API_KEY",
        "sk-ant-test-0123456789abcdefghijklmnop",
    ),
    ("OPENAI_API_KEY", "sk-openai-test-0123456789abcdefghijkl"),
    ("GITHUB_TOKEN", "gh-token-value-not-a-pattern-4242"),
    ("MY_SECRET", "my-secret-value-7777"),
    ("AWS_SECRET_ACCESS_KEY", "aws/secret+access/key/9999"),
];

fn with_secrets(nib: Nib) -> Nib {
    SECRETS.iter().fold(nib, |nib, (k, v)| nib.env(k, v))
}

/// A command that prints secret-looking values it builds itself, so the call carries none.
const PRINTS_SECRETS: &str = "printf 'gh%s_%s\\nsk-ant-%s\\n-----BEGIN %s KEY-----\\nMII%s\\n-----END %s KEY-----\\n' \
     p abcdefghijklmnopqrstuvwxyz0123 api03-abcdefghijklmnopqrstuvwx 'RSA PRIVATE' Eabc 'RSA PRIVATE'";

#[test]
fn commands_never_see_keys() {
    // `env` shows neither names nor values; nib's own environment, read through /proc,
    // reaches the model with the values masked.
    let calls = |_: &Nib| vec![sh("env"), sh("cat /proc/$PPID/environ | tr '\\0' '\\n'")];
    let run = Run::with(&["--yes", "--sandbox", "off"], with_secrets, calls);
    let env = run.result("c0");
    let proc_environ = run.result("c1");
    assert!(
        env.contains("PATH=") && proc_environ.contains("PATH="),
        "{env}"
    );
    for (name, value) in SECRETS {
        assert!(
            !env.contains(name) && !env.contains(value),
            "{name} leaked: {env}"
        );
        assert!(
            !proc_environ.contains(value),
            "{name} leaked: {proc_environ}"
        );
    }
    let journals = run.journals();
    for (name, value) in SECRETS {
        assert!(!journals.contains(value), "{name} is in the journal");
    }
}

#[test]
fn secret_output_is_redacted_in_the_journal_only() {
    let run = Run::with(&["--yes"], with_secrets, |_| vec![sh(PRINTS_SECRETS)]);
    let seen = run.result("c0");
    let token = "ghp_abcdefghijklmnopqrstuvwxyz0123";
    assert!(
        seen.contains(token) && seen.contains("MIIEabc"),
        "the model sees the output: {seen}"
    );
    let journals = run.journals();
    assert!(
        !journals.contains(token) && !journals.contains("MIIEabc"),
        "{journals}"
    );
    assert!(!journals.contains("sk-ant-api03"), "{journals}");
    assert!(journals.contains("[REDACTED]"), "{journals}");
}

#[test]
fn env_passthrough_lets_a_named_variable_through() {
    let put = |nib: Nib| {
        let dir = nib.config_home().join("nib");
        fs::create_dir_all(&dir).unwrap();
        let settings = json!({"env_passthrough": ["MY_SECRET"]});
        fs::write(dir.join("settings.json"), settings.to_string()).unwrap();
        with_secrets(nib)
    };
    let calls = |_: &Nib| vec![sh("env | grep SECRET | tr a-z A-Z")];
    let run = Run::with(&["--yes"], put, calls);
    let seen = run.result("c0");
    assert!(seen.contains("MY_SECRET=MY-SECRET-VALUE-7777"), "{seen}");
    assert!(!seen.contains("AWS_SECRET_ACCESS_KEY"), "{seen}");
    assert!(!run.journals().contains("my-secret-value-7777"));
}

#[test]
fn stream_json_never_shows_a_configured_key() {
    let calls = |_: &Nib| {
        vec![
            sh("env"),
            sh("cat /proc/$PPID/environ | tr '\\0' '\\n'"),
            sh(PRINTS_SECRETS),
        ]
    };
    let run = Run::with(
        &["--yes", "--output-format", "stream-json"],
        with_secrets,
        calls,
    );
    assert!(run.out.stdout.lines().count() >= 4, "{}", run.out);
    for (name, value) in SECRETS {
        assert!(
            !run.out.stdout.contains(value),
            "{name} in stream-json\n{}",
            run.out
        );
    }
}
