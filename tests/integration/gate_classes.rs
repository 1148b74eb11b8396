//! The gate's parser end to end, one test per class of attack: the fake model proposes
//! the calls, nib runs headless in a test sandbox whose HOME holds a fake
//! `~/.ssh/id_rsa`, and nothing outside the rules runs or leaks. nib's kernel sandbox is
//! off (`--sandbox off`), so what holds is the parser alone. Each class has a control:
//! the same calls under `--yes` (or with the rule that allows them) really do what the
//! attack claims, so a "held" result cannot pass by accident.

use crate::support::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::fs;

/// What the fake key holds; it must never reach the model when the gate holds.
const KEY: &str = "PRIVATE-KEY-SENTINEL-77a1";
/// What `.env` holds.
const DOTENV: &str = "DOTENV-SENTINEL-3c9d";

/// One headless run: a reply of bash calls `c0`, `c1`, … then a closing answer.
struct Trial {
    nib: Nib,
    server: FakeServer,
    out: Output,
}

impl Trial {
    /// Sets up the sandbox (a git repository with `seed.txt` and `.env`, the key in
    /// HOME), lets `setup` add to it, then runs `commands` (`{home}` and `{config}` are
    /// replaced) with `flags`.
    fn run(flags: &[&str], setup: impl FnOnce(&mut Nib), commands: &[&str]) -> Trial {
        let server = FakeServer::start(Vec::new());
        let mut nib = Nib::against(&server, Protocol::OpenAi)
            .args(["-p", "go", "--output-format", "json", "--sandbox", "off"])
            .args(flags)
            .timeout(60);
        prepare(&nib);
        setup(&mut nib);
        let home = nib.home().display().to_string();
        let config = nib.config_home().display().to_string();
        let calls = commands.iter().enumerate().map(|(i, c)| {
            let command = c.replace("{home}", &home).replace("{config}", &config);
            call("bash", json!({ "command": command })).id(&format!("c{i}"))
        });
        server.push(Reply::calls(calls.collect()));
        server.push(Reply::text("Finished."));
        let out = nib.run();
        assert_eq!(out.code(), 0, "{out}");
        Trial { nib, server, out }
    }

    fn results(&self) -> Vec<(String, String)> {
        let reqs = self.server.chat_requests();
        assert_eq!(reqs.len(), 2, "one tool round\n{}", self.out);
        let results = reqs[1].tool_results().into_iter();
        results.map(|r| (r.id, r.content)).collect()
    }

    fn result(&self, id: &str) -> String {
        let found = self.results().into_iter().find(|(r, _)| r == id);
        found
            .unwrap_or_else(|| panic!("no result {id}\n{}", self.out))
            .1
    }

    fn denied(&self) -> BTreeSet<String> {
        let v = self.out.json();
        let denials = v["permission_denials"]
            .as_array()
            .expect("permission_denials");
        let ids = denials
            .iter()
            .map(|d| d["tool_use_id"].as_str().unwrap_or(""));
        ids.map(str::to_string).collect()
    }

    /// Every call was refused and nothing secret reached the model.
    fn assert_all_held(&self, count: usize) {
        assert_eq!(self.denied(), ids(count), "{}", self.out);
        for (id, content) in self.results() {
            assert!(
                !content.contains(KEY) && !content.contains(DOTENV),
                "{id} leaked: {content}"
            );
        }
    }

    /// Every call ran, and the output of each shows what it reached (`expect`).
    fn assert_all_reached(&self, count: usize, expect: &[&str]) {
        assert!(self.denied().is_empty(), "{}", self.out);
        for i in 0..count {
            let content = self.result(&format!("c{i}"));
            assert!(
                expect.iter().any(|e| content.contains(e)),
                "c{i} is not armed (expected one of {expect:?}): {content}"
            );
        }
    }
}

fn ids(count: usize) -> BTreeSet<String> {
    (0..count).map(|i| format!("c{i}")).collect()
}

fn prepare(nib: &Nib) {
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args(["-c", "user.email=t@t", "-c", "user.name=t"])
            .args(args)
            .current_dir(nib.work())
            .env("HOME", nib.home())
            .status()
            .expect("run git");
        assert!(status.success(), "git {args:?}");
    };
    nib.put("seed.txt", "alpha-seed\n");
    git(&["init", "-q"]);
    git(&["add", "seed.txt"]);
    git(&["commit", "-qm", "seed"]);
    nib.put(".env", &format!("TOKEN={DOTENV}\n"));
    fs::create_dir_all(nib.home().join(".ssh")).unwrap();
    fs::write(nib.home().join(".ssh/id_rsa"), format!("{KEY}\n")).unwrap();
    fs::create_dir_all(nib.config_home().join("nib")).unwrap();
}

fn nothing(_: &mut Nib) {}

/// Globs and `~` forms that name `.env` without spelling it.
const GLOB_ATTACKS: &[&str] = &[
    "cat .en?",
    "cat ./.e*",
    "head .[e]nv",
    "tail -n 5 ~+/.e[n]v",
    "grep -r TOKEN .",
    "cat $(echo .env)",
    "sh -c 'cat .e*'",
    "timeout 5 cat .en?",
    "cp .en? leak.txt && cat leak.txt",
    "cd .git && cat ../.env",
    "ls -a | xargs cat",
    "find . -maxdepth 1 -name '.e*' -exec cat {} \\;",
    "cat <>.env",
    "cat $PWD/.env",
    "env -S'cat .env'",
    "tar cf - . | tar xOf - ./.env",
    "cat .[[:alpha:]]nv",
    "shopt -s dotglob; cat *",
];

#[test]
fn deny_rules_hold_against_globs_and_tildes() {
    let deny = ["--yes", "--disallowedTools", "Read(./.env)"];
    let held = Trial::run(&deny, nothing, GLOB_ATTACKS);
    held.assert_all_held(GLOB_ATTACKS.len());
    assert!(held.nib.read("leak.txt").is_none());
    let why = held.result("c0");
    assert!(why.contains("Read(./.env)"), "{why}");
    // Control: without the rule every one of them prints `.env`.
    let armed = Trial::run(&["--yes"], nothing, GLOB_ATTACKS);
    armed.assert_all_reached(GLOB_ATTACKS.len(), &[DOTENV]);
}

/// File names hidden in option values, per-command options and `~` forms.
const OPTION_ATTACKS: &[&str] = &[
    "date -f {home}/.ssh/id_rsa",
    "date -f{home}/.ssh/id_rsa",
    "date --file={home}/.ssh/id_rsa",
    "date --fi={home}/.ssh/id_rsa",
    "date --fil {home}/.ssh/id_rsa",
    "file -f{home}/.ssh/id_rsa",
    "git blame -S{home}/.ssh/id_rsa seed.txt",
    "cat ~+/../home/.ssh/id_rsa",
];

#[test]
fn option_values_outside_the_workspace_ask() {
    let held = Trial::run(&[], nothing, OPTION_ATTACKS);
    held.assert_all_held(OPTION_ATTACKS.len());
    let armed = Trial::run(&["--yes"], nothing, OPTION_ATTACKS);
    armed.assert_all_reached(OPTION_ATTACKS.len(), &[KEY]);
    // Control: the same options on a file in the workspace run without a question.
    let inside = Trial::run(&[], nothing, &["date -f seed.txt", "file -fseed.txt"]);
    assert!(inside.denied().is_empty(), "{}", inside.out);
    assert!(inside.result("c0").contains("alpha-seed"), "{}", inside.out);
}

/// Recursion that follows a committed symlink to `~/.ssh`.
const LINK_ATTACKS: &[&str] = &[
    "grep -R PRIVATE .",
    "grep -R PRIVATE vendor",
    "find -L . -name id_rsa",
    "diff -r vendor vendor2",
    "ls -RL vendor",
    "du -aL vendor",
];

fn committed_link(nib: &mut Nib) {
    fs::create_dir_all(nib.work().join("vendor")).unwrap();
    fs::create_dir_all(nib.work().join("vendor2/keys")).unwrap();
    std::os::unix::fs::symlink(nib.home().join(".ssh"), nib.work().join("vendor/keys")).unwrap();
}

#[test]
fn recursion_through_a_symlink_out_asks() {
    let held = Trial::run(&[], committed_link, LINK_ATTACKS);
    held.assert_all_held(LINK_ATTACKS.len());
    let why = held.result("c0");
    assert!(why.contains("follows the symlink"), "{why}");
    let armed = Trial::run(&["--yes"], committed_link, LINK_ATTACKS);
    armed.assert_all_reached(LINK_ATTACKS.len(), &[KEY, "id_rsa"]);
    // Control: recursion that does not follow links runs, and does not reach the key.
    let plain = Trial::run(
        &[],
        committed_link,
        &["grep -r alpha .", "find . -name '*.txt'"],
    );
    assert!(plain.denied().is_empty(), "{}", plain.out);
    assert!(plain.result("c0").contains("alpha-seed"));
    assert!(!plain.result("c0").contains(KEY));
}

/// Allow rules on wrappers, and what the wrappers would run.
const WRAPPER_RULES: &[&str] = &[
    "--allowedTools",
    "Bash(command *)",
    "Bash(timeout *)",
    "Bash(env *)",
    "Bash(nice *)",
    "Bash(stdbuf *)",
];
const WRAPPER_ATTACKS: &[&str] = &[
    "command sh -c 'touch m1'",
    "timeout 5 sh -c 'touch m2'",
    "env bash -c 'touch m3'",
    "nice -n 5 sh -c 'touch m4'",
    "stdbuf -o0 sh -c 'touch m5'",
];

#[test]
fn allow_rules_on_wrappers_do_not_reach_shells() {
    let held = Trial::run(WRAPPER_RULES, nothing, WRAPPER_ATTACKS);
    held.assert_all_held(WRAPPER_ATTACKS.len());
    for m in ["m1", "m2", "m3", "m4", "m5"] {
        assert!(held.nib.read(m).is_none(), "{m} was created\n{}", held.out);
    }
    // Control: the rules do allow the wrappers around plain commands…
    let plain = Trial::run(
        WRAPPER_RULES,
        nothing,
        &["command -v git", "timeout 5 touch ok"],
    );
    assert!(
        plain.denied().is_empty() && plain.nib.read("ok").is_some(),
        "{}",
        plain.out
    );
    // …and under --yes every attack runs.
    let armed = Trial::run(&["--yes"], nothing, WRAPPER_ATTACKS);
    for m in ["m1", "m2", "m3", "m4", "m5"] {
        assert!(
            armed.nib.read(m).is_some(),
            "{m} is not armed\n{}",
            armed.out
        );
    }
}

#[test]
fn suggested_rules_are_never_broader_than_the_command() {
    let commands = [
        "git --no-pager log",
        "command -v nosuch",
        "timeout 5 touch x",
    ];
    let trial = Trial::run(&[], nothing, &commands);
    let hint = trial.result("c0");
    assert!(
        hint.contains("--allowedTools \"Bash(git --no-pager log)\""),
        "{hint}"
    );
    for id in ["c0", "c1", "c2"] {
        let text = trial.result(id);
        for broad in ["Bash(git *)", "Bash(command", "Bash(timeout"] {
            assert!(!text.contains(broad), "{id} suggests {broad}: {text}");
        }
    }
    // Control: the suggested rule lets exactly that command run.
    let rule = ["--allowedTools", "Bash(git --no-pager log)"];
    let allowed = Trial::run(
        &rule,
        nothing,
        &["git --no-pager log", "git config core.x y"],
    );
    assert!(allowed.result("c0").contains("seed"), "{}", allowed.out);
    assert_eq!(allowed.denied(), ["c1".to_string()].into());
}

/// Writes a bare `Bash` rule must not make to protected paths.
const PROTECTED_ATTACKS: &[&str] = &[
    "sh -c 'echo x > .git/hooks/pre-commit'",
    "cp seed.txt .gi?/description",
    "bash -c 'echo {} > .claude/settings.local.json'",
    "cp seed.txt .cl*/settings.json",
    "echo '{}' > {config}/nib/settings.json",
    "timeout 5 cp seed.txt .git/info/exclude",
];

fn claude_dir(nib: &mut Nib) {
    nib.put(".claude/settings.json", "{}\n");
}

#[test]
fn a_bare_bash_rule_does_not_write_protected_paths() {
    let before = |nib: &Nib| {
        let files = [
            nib.work().join(".git/hooks/pre-commit"),
            nib.work().join(".git/description"),
            nib.work().join(".claude/settings.local.json"),
            nib.work().join(".claude/settings.json"),
            nib.config_home().join("nib/settings.json"),
            nib.work().join(".git/info/exclude"),
        ];
        files.map(|f| fs::read_to_string(f).ok())
    };
    let bare = ["--allowedTools", "Bash"];
    let held = Trial::run(&bare, claude_dir, PROTECTED_ATTACKS);
    assert_eq!(held.denied(), ids(PROTECTED_ATTACKS.len()), "{}", held.out);
    let fresh = Trial::run(&[], claude_dir, &[]);
    assert_eq!(
        before(&held.nib),
        before(&fresh.nib),
        "protected files changed"
    );
    let armed = Trial::run(&["--yes"], claude_dir, PROTECTED_ATTACKS);
    let (now, then) = (before(&armed.nib), before(&fresh.nib));
    for (i, (a, b)) in now.iter().zip(&then).enumerate() {
        assert_ne!(a, b, "attack {i} is not armed\n{}", armed.out);
    }
}

fn repository_settings(nib: &mut Nib) {
    let settings = json!({"permissions": {
        "allow": ["Bash"],
        "deny": ["Bash(rm *)"],
        "defaultMode": "acceptEdits",
    }});
    nib.put(".claude/settings.json", &settings.to_string());
}

const TRUST_CALLS: &[&str] = &["touch m", "rm seed.txt"];

#[test]
fn a_repository_allows_nothing_until_its_folder_is_trusted() {
    let mut trial = Trial::run(&[], repository_settings, TRUST_CALLS);
    assert!(trial.nib.read("m").is_none(), "{}", trial.out);
    assert_eq!(trial.denied(), ids(2));
    assert!(
        trial.result("c1").contains("Bash(rm *)"),
        "deny rules apply untrusted"
    );
    let notices: Vec<&str> = trial
        .out
        .stderr
        .lines()
        .filter(|l| l.starts_with("nib: warning:") && l.contains("trust"))
        .collect();
    assert_eq!(notices.len(), 1, "{}", trial.out.stderr);
    assert!(
        notices[0].contains(".claude/settings.json") && notices[0].contains("`nib trust`"),
        "{}",
        notices[0]
    );

    // Control: once trusted, the same calls run as the file says (deny still wins).
    let trusted = trial.nib.run_alone(&["trust"]);
    assert_eq!(trusted.code(), 0, "{trusted}");
    assert!(trusted.stdout.contains("trusted"), "{trusted}");
    trial.server.push(Reply::calls(vec![
        call("bash", json!({"command": "touch m"})).id("t0"),
        call("bash", json!({"command": "rm seed.txt"})).id("t1"),
        call("write", json!({"path": "new.txt", "content": "x"})).id("t2"),
    ]));
    trial.server.push(Reply::text("Finished."));
    let again = trial.nib.run();
    assert_eq!(again.code(), 0, "{again}");
    assert!(
        trial.nib.read("m").is_some() && trial.nib.read("new.txt").is_some(),
        "{again}"
    );
    assert!(trial.nib.read("seed.txt").is_some(), "{again}");
    assert!(!again.stderr.contains("not trusted"), "{}", again.stderr);
}

#[test]
fn a_broken_trust_file_stops_nib_before_anything_runs() {
    let server = FakeServer::start(Vec::new());
    let mut nib = Nib::against(&server, Protocol::OpenAi).args(["-p", "go"]);
    let file = nib.data_home().join("nib/trusted-folders.json");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::write(&file, "{not json").unwrap();
    server.push(Reply::calls(vec![call(
        "bash",
        json!({"command": "touch m"}),
    )]));
    let out = nib.run();
    assert_eq!(out.code(), 1, "{out}");
    let err = out.stderr.trim();
    assert!(
        !err.contains('\n') && err.contains("trusted-folders.json"),
        "{err}"
    );
    assert!(err.contains("fix it or remove it"), "{err}");
    assert!(server.chat_requests().is_empty() && nib.read("m").is_none());
    assert_eq!(nib.run_alone(&["trust"]).code(), 1);
    // Control: with the file fixed, the same run reaches the model.
    fs::remove_file(&file).unwrap();
    server.push(Reply::text("Finished."));
    assert_eq!(nib.run().code(), 0);
}

#[test]
fn malformed_settings_and_rules_stop_nib_before_anything_runs() {
    let cases: &[(&str, Option<&str>, &[&str], &str)] = &[
        // (what, project settings, flags, expected in the one line)
        (
            "not json",
            Some("{not json"),
            &[],
            "fix it or move it aside",
        ),
        (
            "deny rule",
            Some(r#"{"permissions":{"deny":["Bash(rm *"]}}"#),
            &[],
            "fix or remove it",
        ),
        (
            "not a list",
            Some(r#"{"permissions":{"allow":"Bash"}}"#),
            &[],
            "must be a list of strings",
        ),
        (
            "flag rule",
            None,
            &["--allowedTools", "Bash(ls"],
            "fix or remove it",
        ),
    ];
    for (what, settings, flags, expected) in cases {
        let server = FakeServer::start(Vec::new());
        let nib = Nib::against(&server, Protocol::OpenAi)
            .args(["-p", "go"])
            .args(*flags);
        if let Some(text) = settings {
            nib.put(".claude/settings.json", text);
        }
        server.push(Reply::calls(vec![call(
            "bash",
            json!({"command": "touch m"}),
        )]));
        server.push(Reply::text("Finished."));
        let out = nib.run();
        assert_ne!(out.code(), 0, "{what}: {out}");
        let err = out.stderr.trim();
        assert!(
            !err.contains('\n') && err.contains(expected),
            "{what}: {err}"
        );
        assert!(
            server.chat_requests().is_empty() && nib.read("m").is_none(),
            "{what}"
        );
    }
    // Control: a well-formed file with the same rule runs the call.
    let server = FakeServer::start(Vec::new());
    let nib = Nib::against(&server, Protocol::OpenAi).args(["-p", "go", "--yes"]);
    nib.put(
        ".claude/settings.json",
        r#"{"permissions":{"deny":["Bash(rm *)"]}}"#,
    );
    server.push(Reply::calls(vec![call(
        "bash",
        json!({"command": "touch m"}),
    )]));
    server.push(Reply::text("Finished."));
    assert_eq!(nib.run().code(), 0);
    assert!(nib.read("m").is_some());
}
