//! The gate against a real workspace on disk, one table per class of attack: globs and
//! `~` forms that walk past deny rules, file names hidden in option values, recursion
//! through symlinks, rules rooted at wrappers, and writes to protected paths through
//! nested strings. Each table has controls: the same calls run when nothing forbids
//! them, so no "held" is vacuous.

use super::*;
use crate::testing::TempDir;
use crate::tools::Action;
use std::time::Duration;

/// A workspace with `.env`, a subdirectory, and a HOME beside it holding a key.
struct Place {
    tmp: TempDir,
}

impl Place {
    fn new(name: &str) -> Place {
        let tmp = TempDir::new(name);
        tmp.put("ws/.env", "TOKEN=x\n");
        tmp.put("ws/seed.txt", "alpha\n");
        tmp.put("ws/patterns.txt", "alpha\n");
        tmp.put("ws/src/main.rs", "fn main() {}\n");
        tmp.put("ws/.git/HEAD", "ref: refs/heads/main\n");
        tmp.put("ws/.claude/settings.json", "{}");
        tmp.put("home/.ssh/id_rsa", "KEY\n");
        Place { tmp }
    }

    fn ws(&self) -> PathBuf {
        self.tmp.join("ws")
    }

    fn home(&self) -> PathBuf {
        self.tmp.join("home")
    }

    /// Links `ws/<link>` to `target` (absolute).
    fn link(&self, link: &str, target: &Path) {
        std::os::unix::fs::symlink(target, self.ws().join(link)).unwrap();
    }

    fn gate(&self, allow: &[&str], deny: &[&str]) -> Gate {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        let source = Source {
            name: "test".into(),
            rules: RuleSet {
                allow: own(allow),
                ask: Vec::new(),
                deny: own(deny),
            },
            strict: true,
        };
        let workspace = Workspace {
            root: self.ws(),
            home: Some(self.home()),
        };
        let nib = vec![self.home().join(".config/nib")];
        Gate::build(vec![source], Mode::Default, workspace, nib).unwrap()
    }
}

fn bash(command: &str) -> Action {
    Action::Bash {
        command: command.into(),
        timeout: Duration::from_secs(1),
    }
}

fn letter(v: &Verdict) -> char {
    match v {
        Verdict::Allow => 'A',
        Verdict::Ask(_) => 'Q',
        Verdict::Deny(_) => 'D',
    }
}

/// Each command gets the first verdict from `gate` and the second from `control`.
fn check(gate: &Gate, control: &Gate, cases: &[(&str, &str)]) {
    let mut wrong = Vec::new();
    for (command, expected) in cases {
        let got: String = [gate, control]
            .iter()
            .map(|g| letter(&g.check(&bash(command))))
            .collect();
        if got != *expected {
            let why = gate.check(&bash(command));
            wrong.push(format!(
                "{command}: got {got}, expected {expected} ({why:?})"
            ));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

#[test]
fn deny_rules_see_what_globs_and_tildes_open() {
    let place = Place::new("class-glob");
    let denied = place.gate(&[], &["Read(./.env)"]);
    let control = place.gate(&[], &[]);
    // (command, with the deny rule / without it)
    check(
        &denied,
        &control,
        &[
            ("cat .en?", "DA"),
            ("cat ./.e*", "DA"),
            ("head .[e]nv", "DA"),
            ("cat .e[!x]v", "DA"),
            ("tail -n 1 src/../.en?", "DA"),
            ("cat ~+/.env", "DA"),
            ("cat ~+/.e*", "DA"),
            ("grep TOKEN .e*", "DA"),
            ("cat < .en?", "DA"),
            ("wc -l seed.txt .en?", "DA"),
            ("/bin/cat .en?", "DQ"),
            ("timeout 3 cat .en?", "DQ"),
            ("sh -c 'cat .en?'", "DQ"),
            ("echo $(cat .e*)", "DQ"),
            ("cp .en? leak.txt", "DQ"),
            // A word nib cannot know counts as matching the rule.
            ("cat $(echo .env)", "DQ"),
            ("cat \"$F\"", "DQ"),
            ("cat ~-/x", "DQ"),
            ("$CMD .env", "DQ"),
            ("bash -c \"$X\"", "DQ"),
            ("ls -a | xargs cat", "DQ"),
            ("find . -name '.e*' -exec cat {} \\;", "DQ"),
            // POSIX classes, and shell options that widen globs.
            ("cat .[[:alpha:]]nv", "DA"),
            ("cat .[![:digit:]]n[[:lower:]]", "DA"),
            ("shopt -s dotglob; cat *", "DQ"),
            ("bash -O dotglob -c 'cat *'", "DQ"),
            ("GLOBIGNORE=x; cat *", "DQ"),
            ("shopt -s globstar; cat **/.e*", "DQ"),
            ("git show HEAD:.env", "DA"),
            ("setsid cat .en?", "DQ"),
            ("flock /tmp/l cat .en?", "DQ"),
            ("watch cat .env", "DQ"),
            ("watch 'cat .env'", "DQ"),
            ("watch -n 1 'cat .e*'", "DQ"),
            ("cat <>.env", "DQ"),
            ("cat $PWD/.env", "DQ"),
            ("env -S'cat .env'", "DQ"),
            ("env --split-string='cat .e*'", "DQ"),
            ("cp -r . /tmp/nib-copy-test", "DQ"),
            ("tar cf - .", "DQ"),
            ("cp -r src /tmp/nib-copy-test", "QQ"),
            // The shell opens names relative to where `cd` took it.
            ("cd src && cat ../.en?", "DQ"),
            ("cd .. && cat ws/.env", "DQ"),
            ("cd - && cat .env", "DQ"),
            ("env -C src cat ../.env", "DQ"),
            ("env --chdir=src cat ../.e*", "DQ"),
            ("pushd src; cat ../.env", "DQ"),
            // Controls: other files, quoted patterns that name no file.
            ("cat seed.txt", "AA"),
            ("cat s*.txt", "AA"),
            ("cat '.en?'", "AA"),
            ("cat src/*.rs", "AA"),
            ("git commit -m \"$(cat seed.txt)\"", "QQ"),
            // A grep pattern is not a file; the files after it are.
            ("grep .env .gitignore", "AA"),
            ("grep -n .env seed.txt", "AA"),
            ("grep .env seed.txt .en?", "DA"),
            ("grep -e x .env", "DA"),
            ("grep -ex .env", "DA"),
            ("grep --regexp=x .env", "DA"),
            ("grep -- x .env", "DA"),
        ],
    );
}

#[test]
fn edit_deny_rules_see_what_any_command_names() {
    let place = Place::new("class-edit-deny");
    place.tmp.put("ws/locked/a.txt", "x");
    let gate = place.gate(&[], &["Edit(./locked)"]);
    let control = place.gate(&[], &[]);
    check(
        &gate,
        &control,
        &[
            ("cp seed.txt locked/a.txt", "DQ"),
            ("cp seed.txt lo*/a.txt", "DQ"),
            ("echo x > locked/a.txt", "DQ"),
            ("echo x > ./lock?d/a.txt", "DQ"),
            ("sh -c 'rm locked/a.txt'", "DQ"),
            // Reading is not editing.
            ("cat locked/a.txt", "AA"),
        ],
    );
}

#[test]
fn option_values_are_files_in_every_spelling() {
    let place = Place::new("class-options");
    let gate = place.gate(&[], &["Read(./.env)"]);
    let control = place.gate(&[], &[]);
    let key = place.home().join(".ssh/id_rsa");
    let key = key.display();
    let cases = [
        // Attached short values, `--opt=v`, abbreviations, per-command options.
        (format!("file -f{key}"), "QQ"),
        (format!("grep -f{key} x"), "QQ"),
        (format!("grep -if{key} x seed.txt"), "QQ"),
        (format!("git blame -S{key} seed.txt"), "QQ"),
        (format!("date -f {key}"), "QQ"),
        (format!("date -f{key}"), "QQ"),
        (format!("date --file={key}"), "QQ"),
        (format!("date --fi={key}"), "QQ"),
        (format!("date --fil {key}"), "QQ"),
        (format!("date -r {key}"), "QQ"),
        (format!("sort --files0-from={key}"), "QQ"),
        ("cat ~/.ssh/id_rsa".into(), "QQ"),
        ("cat ~+/../home/.ssh/id_rsa".into(), "QQ"),
        ("cat ~root/.profile".into(), "QQ"),
        ("cat ~-/x".into(), "DQ"),
        ("echo ~/.ssh/*".into(), "QQ"),
        ("echo /*".into(), "QQ"),
        ("echo src/*".into(), "AA"),
        ("cd / && cat etc/passwd".into(), "QQ"),
        ("cd .. && cat home/.ssh/id_rsa".into(), "QQ"),
        ("grep -f.env x seed.txt".into(), "DA"),
        ("grep --file=.e* x seed.txt".into(), "DA"),
        ("date -f .env".into(), "DA"),
        ("date --file .env".into(), "DA"),
        ("file -m.env seed.txt".into(), "DA"),
        // Controls: the same options on files in the workspace, and non-files.
        ("date -f seed.txt".into(), "AA"),
        ("date --file=seed.txt".into(), "AA"),
        ("grep -fpatterns.txt seed.txt".into(), "AA"),
        ("git blame -Spatterns.txt seed.txt".into(), "AA"),
        ("date +%s".into(), "AA"),
        ("date -d tomorrow".into(), "AA"),
        ("echo /etc/passwd".into(), "AA"),
        ("head -n5 seed.txt".into(), "AA"),
    ];
    let cases: Vec<(&str, &str)> = cases.iter().map(|(c, e)| (c.as_str(), *e)).collect();
    check(&gate, &control, &cases);
    // With `cd` allowed, reads after it are judged where the shell will be.
    let cd = place.gate(&["Bash(cd *)"], &[]);
    let mut bypass = place.gate(&[], &[]);
    bypass.mode = Mode::Bypass;
    check(
        &cd,
        &bypass,
        &[
            ("cd / && cat etc/passwd", "QA"),
            ("cd .. && cat home/.ssh/id_rsa", "QA"),
            ("cd ~ && cat .ssh/id_rsa", "QA"),
            ("cd src && cat main.rs", "AA"),
        ],
    );
}

#[test]
fn recursion_that_follows_symlinks_asks_when_a_link_leads_out() {
    let place = Place::new("class-links");
    place.tmp.put("ws/a/x.txt", "x");
    place.tmp.put("ws/b/x.txt", "y");
    let linked = Place::new("class-links-control");
    linked.tmp.put("ws/a/x.txt", "x");
    linked.tmp.put("ws/b/x.txt", "y");
    // A committed symlink to ~/.ssh in one workspace, a link inside in the other.
    place.link("a/keys", &place.home().join(".ssh"));
    linked.link("a/keys", &linked.ws().join("src"));
    let gate = place.gate(&[], &[]);
    let control = linked.gate(&[], &[]);
    check(
        &gate,
        &control,
        &[
            ("grep -R KEY .", "QA"),
            ("grep -R KEY", "QA"),
            ("grep --dereference-recursive KEY a", "QA"),
            ("grep -rR KEY a", "QA"),
            ("rg -L KEY", "QA"),
            ("rg --follow KEY .", "QA"),
            ("find -L .", "QA"),
            ("find . -follow", "QA"),
            ("diff -r a b", "QA"),
            ("ls -RL a", "QA"),
            ("du -L a", "QA"),
            ("tree -l", "QA"),
            // Controls: recursion that does not follow links, and a link not walked.
            ("grep -r KEY .", "AA"),
            ("rg KEY", "AA"),
            ("find .", "AA"),
            ("ls -R", "AA"),
            ("grep -R KEY src", "AA"),
            ("cat a/keys/id_rsa", "QA"),
        ],
    );
}

#[test]
fn recursion_does_not_read_what_a_deny_rule_covers() {
    let place = Place::new("class-recurse-deny");
    let gate = place.gate(&[], &["Read(./.env)"]);
    let control = place.gate(&[], &[]);
    check(
        &gate,
        &control,
        &[
            ("grep -r TOKEN .", "DA"),
            ("grep -r TOKEN", "DA"),
            ("rg TOKEN", "DA"),
            ("diff -r . src", "DA"),
            ("grep -d recurse TOKEN .", "DA"),
            ("grep --directories=recurse TOKEN", "DA"),
            ("git grep --no-index TOKEN", "DQ"),
            ("git grep --untracked TOKEN", "DQ"),
            ("git grep TOKEN", "QQ"),
            // Controls: a directory without the file, tools that only list names.
            ("grep -r TOKEN src", "AA"),
            ("rg TOKEN src", "AA"),
            ("find . -name '*.rs'", "AA"),
            ("ls -R", "AA"),
        ],
    );
}

#[test]
fn suggestions_are_never_rooted_at_wrappers_or_bare_options() {
    let place = Place::new("class-suggest");
    let gate = place.gate(&[], &[]);
    let cases: &[(&str, Option<&str>)] = &[
        ("command -v git", None),
        ("timeout 60 cargo test", None),
        ("env FOO=1 cargo test", None),
        ("nice -n 5 make", None),
        ("nohup make", None),
        ("stdbuf -o0 make", None),
        ("sudo make install", None),
        ("builtin echo x", None),
        ("exec make", None),
        ("bash build.sh", None),
        ("xargs -n1 echo", None),
        ("git --no-pager log", Some("Bash(git --no-pager log)")),
        ("git -C src status", Some("Bash(git -C src status)")),
        ("make -j4", Some("Bash(make -j4)")),
        ("cargo test", Some("Bash(cargo test *)")),
        ("npm run build", Some("Bash(npm run build *)")),
    ];
    for (command, expected) in cases {
        let got = gate.suggest_rule(&bash(command));
        assert_eq!(got.as_deref(), *expected, "{command}");
    }
    // `git --no-pager log` once allowed does not reach other git commands.
    let mut allowed = place.gate(&[], &[]);
    allowed.allow("Bash(git --no-pager log)").unwrap();
    assert_eq!(letter(&allowed.check(&bash("git --no-pager log"))), 'A');
    let fsmonitor = bash("git config core.fsmonitor 'touch x'");
    assert_eq!(letter(&allowed.check(&fsmonitor)), 'Q');
}

#[test]
fn allow_rules_on_wrappers_do_not_reach_what_they_run() {
    let place = Place::new("class-unwrap");
    let gate = place.gate(
        &[
            "Bash(command *)",
            "Bash(timeout *)",
            "Bash(env *)",
            "Bash(nice *)",
            "Bash(stdbuf *)",
            "Bash(nohup *)",
            "Bash(sudo *)",
        ],
        &[],
    );
    let bare = place.gate(&["Bash"], &[]);
    check(
        &gate,
        &bare,
        &[
            ("command sh -c 'touch x'", "QA"),
            ("command -p bash -c 'touch x'", "QA"),
            ("timeout 60 sh -c 'touch x'", "QA"),
            ("timeout 5 eval touch x", "QA"),
            ("env bash -c 'touch x'", "QA"),
            ("env FOO=1 eval 'touch x'", "QA"),
            ("nice -n 5 sh -c 'touch x'", "QA"),
            ("stdbuf -o0 sh -c 'touch x'", "QA"),
            ("nohup xargs touch", "QA"),
            ("sudo sh -c 'touch x'", "QA"),
            ("timeout 5 $CMD", "QA"),
            ("command find . -exec touch x \\;", "QA"),
            ("timeout 5 git -c core.pager=x log", "QA"),
            ("env -S 'sh -c x'", "QA"),
            ("env -S'touch x'", "QA"),
            ("env --split-string='touch x'", "QA"),
            // Controls: the wrappers running plain commands.
            ("command -v git", "AA"),
            ("timeout 60 cargo test", "AA"),
            ("env FOO=1 make", "AA"),
            ("nice -n 5 make", "AA"),
        ],
    );
}

#[test]
fn a_bare_bash_rule_still_asks_before_writing_protected_paths() {
    let place = Place::new("class-protected");
    let bare = place.gate(&["Bash"], &[]);
    let gate_dirs = bare.clone();
    let mut control = place.gate(&["Bash"], &[]);
    control.mode = Mode::Bypass;
    check(
        &gate_dirs,
        &control,
        &[
            ("sh -c 'echo x > .git/hooks/pre-commit'", "QA"),
            ("bash -c \"cp a .claude/settings.json\"", "QA"),
            ("eval 'cp a .git/config'", "QA"),
            ("cp a .gi?/config", "QA"),
            ("cp a .cl*/settings.json", "QA"),
            ("cp a ./.[g]it/hooks/post-checkout", "QA"),
            ("timeout 5 cp a .git/config", "QA"),
            ("echo $(cp a .git/config)", "QA"),
            ("find . -exec cp {} .git/config \\;", "QA"),
            ("echo x > ~/.config/nib/settings.json", "QA"),
            ("echo x >> ~/.bashrc", "QA"),
            ("echo x > ~+/.git/config", "QA"),
            ("sort -o .git/config seed.txt", "QA"),
            ("tee .cl*/settings.local.json < seed.txt", "QA"),
            ("cd .git && echo x > config", "QA"),
            ("echo x >> $HOME/.bashrc", "QA"),
            ("cp seed.txt \"$PWD/.git/config\"", "QA"),
            ("cat <>.git/config", "QA"),
            // Controls: ordinary writes, and reads of protected paths.
            ("cp a b", "AA"),
            ("sh -c 'echo x > out.txt'", "AA"),
            ("cat .git/HEAD", "AA"),
            ("cat .gi?/HEAD", "AA"),
        ],
    );
}
