//! The gate's decisions as tables: bash commands, file tools and modes against rules
//! anchored in a workspace that need not exist, rule syntax, suggestions and MCP
//! tools. Attacks against a workspace on disk are in `class_tests.rs`, settings files
//! and folder trust in `settings_tests.rs`.

use super::rules::parse_tool_list;
use super::*;
use crate::tools::Action;
use std::time::Duration;

impl Gate {
    /// Builds the gate from CLI rules and mode, reading no files (for tests across
    /// nib). Malformed rules are errors that name the rule.
    pub fn new(rules: RuleSet, mode: Mode, workspace: Workspace) -> Result<Gate, String> {
        let source = Source {
            name: "the command line".into(),
            rules,
            strict: true,
        };
        Gate::build(vec![source], mode, workspace, Vec::new())
    }
}

const ROOT: &str = "/nib-test-ws";
const HOME: &str = "/nib-test-home";

fn workspace() -> Workspace {
    Workspace {
        root: PathBuf::from(ROOT),
        home: Some(PathBuf::from(HOME)),
    }
}

pub fn rule_set(allow: &[&str], ask: &[&str], deny: &[&str]) -> RuleSet {
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
    Gate::build(vec![source], mode, workspace(), nib).unwrap()
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

pub fn check_table(gate: &Gate, cases: &[(&str, char)]) {
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(command, expected)| {
            let verdict = gate.check(&bash(command));
            (short(&verdict) != *expected)
                .then(|| format!("{command} → {verdict:?}, expected {expected}"))
        })
        .collect();
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
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
        ("ls $(pwd)", 'D'),
        ("ls `pwd`", 'D'),
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
        ("xargs ls", 'D'),
        ("find . -exec ls {} \\;", 'D'),
        ("find . -execdir ls {} +", 'D'),
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
        ("sort -T scratch in", 'Q'),
        ("sort --temporary-directory=scratch in", 'Q'),
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
            ("ls $(pwd)", 'Q'),
            ("cat `echo .env`", 'Q'),
            ("xargs cat", 'Q'),
            ("find . -exec cat {} \\;", 'Q'),
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
        ("ls -la", Some("Bash(ls -la)")),
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
