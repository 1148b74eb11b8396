//! Commands that run or write something: shells and evaluators, wrappers that run
//! the command after them (`timeout`, `env`, `nice`…), flags that execute or write,
//! `sed` scripts that do, `cd` forms that move later commands, and words rendered back
//! into the line a rule matches. Works on the words `lexer.rs` produced; it never runs
//! anything and never decides a verdict.

use super::files::Arg;
use super::lexer::{Redirect, Simple, Word};
use super::readers::{arg, read_only_row};

/// Flags that make many tools write a file or run a program, whatever the tool.
const EXECUTING_FLAGS: &[&str] = &[
    "--output",
    "--ext-diff",
    "--exec",
    "--upload-pack",
    "--receive-pack",
    "--textconv",
    "--open-files-in-pager",
];

/// Shells: with `-c` they run a string as a command.
const SHELLS: &[&str] = &[
    "sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish", "csh", "tcsh", "busybox",
];

/// Commands that run their arguments (or a file) as shell code.
const EVALUATORS: &[&str] = &[
    "eval", "exec", "source", ".", "xargs", "builtin", "trap", "watch",
];

/// Commands that run the rest of their words as a command: (name, options taking a
/// value, positional words before the command).
const WRAPPERS: &[(&str, &[&str], usize)] = &[
    ("timeout", &["-s", "--signal", "-k", "--kill-after"], 1),
    ("nice", &["-n", "--adjustment"], 0),
    ("nohup", &[], 0),
    (
        "env",
        &["-u", "--unset", "-C", "--chdir", "-S", "--split-string"],
        0,
    ),
    ("command", &[], 0),
    ("builtin", &[], 0),
    ("exec", &["-a"], 0),
    ("time", &["-f", "--format", "-o", "--output"], 0),
    (
        "stdbuf",
        &["-i", "-o", "-e", "--input", "--output", "--error"],
        0,
    ),
    (
        "xargs",
        &[
            "-I",
            "-i",
            "-n",
            "-P",
            "-d",
            "-E",
            "-L",
            "-s",
            "-a",
            "--max-args",
            "--max-procs",
            "--delimiter",
            "--arg-file",
            "--replace",
            "--max-lines",
            "--max-chars",
        ],
        0,
    ),
    (
        "sudo",
        &["-u", "-g", "-C", "-D", "-h", "-p", "-U", "-r", "-t", "-T"],
        0,
    ),
    ("doas", &["-u", "-C"], 0),
    ("setsid", &[], 0),
    ("chroot", &["--userspec", "--groups"], 1),
    ("taskset", &[], 1),
    ("chrt", &[], 1),
    (
        "flock",
        &["-w", "--timeout", "-E", "--conflict-exit-code"],
        1,
    ),
    ("unshare", &[], 0),
    ("nsenter", &["-t", "--target"], 0),
    ("strace", &["-o", "-e", "-p", "-s", "-u"], 0),
    ("ltrace", &["-o", "-e", "-p", "-s", "-u"], 0),
    ("fakeroot", &[], 0),
    ("proxychains", &["-f"], 0),
    ("torsocks", &[], 0),
    ("pkexec", &["--user"], 0),
    ("runuser", &["-u", "-g", "-G"], 0),
    ("ionice", &["-c", "-n", "-p", "-t"], 0),
    ("watch", &["-n", "--interval", "-d", "--differences"], 0),
    ("caffeinate", &["-t", "-w"], 0),
];

/// The last path component of a command name: `/bin/rm` → `rm`.
pub fn basename(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// Why no rule may allow this simple command, if anything makes it unsafe.
pub fn unsafe_reason(simple: &Simple) -> Option<String> {
    if let Some(issue) = simple.issues.first() {
        return Some(issue.clone());
    }
    if let Some(a) = simple.assignments.first() {
        return Some(format!(
            "a leading variable assignment ({}) needs approval",
            a.raw
        ));
    }
    for redirect in &simple.redirects {
        if let Redirect::Write(target) = redirect {
            return Some(format!(
                "redirection to a file (> {}) needs approval",
                target.raw
            ));
        }
    }
    let first = simple.words.first()?;
    if first.dynamic || first.glob {
        return Some(format!(
            "the command name is computed when it runs ({}) and needs approval",
            first.raw
        ));
    }
    if let Some(w) = simple.words.iter().find(|w| w.leading_glob) {
        return Some(format!(
            "the glob {} could expand to a flag; write ./{} instead",
            w.raw, w.raw
        ));
    }
    // What a wrapper runs is judged like the wrapper itself: `command sh -c …`.
    let mut words = simple.words.as_slice();
    loop {
        if let Some(reason) = command_reason(words) {
            return Some(reason);
        }
        words = unwrap(words)?;
        if words[0].dynamic || words[0].glob {
            return Some(format!(
                "the command run by `{}` is computed when it runs ({}) and needs approval",
                basename(&simple.words[0].text),
                words[0].raw
            ));
        }
    }
}

/// Commands that run another command (given as words, a string or a file) besides
/// the wrappers, shells and evaluators above: no rule prefix may end at one.
const OTHER_RUNNERS: &[&str] = &[
    "su",
    "script",
    "parallel",
    "run-parts",
    "firejail",
    "systemd-run",
    "setpriv",
    "prlimit",
    "cpulimit",
    "trickle",
    "catchsegv",
    "valgrind",
    "gdb",
    "rr",
    "perf",
    "dbus-run-session",
];

/// True when `name` runs other commands: a wrapper (`timeout`, `env`, `sudo`, …), a
/// shell, an evaluator (`eval`, `xargs`, `exec`, …).
pub fn runs_commands(name: &str) -> bool {
    let base = basename(name);
    WRAPPERS.iter().any(|(n, _, _)| *n == base)
        || SHELLS.contains(&base)
        || EVALUATORS.contains(&base)
        || OTHER_RUNNERS.contains(&base)
}

/// Command-specific reasons: shells with `-c`, `eval`, `find -exec`, `sed -i`, ...
pub fn command_reason(words: &[Word]) -> Option<String> {
    let name = words[0].text.as_str();
    let base = basename(name);
    let args = &words[1..];
    if EVALUATORS.contains(&base) {
        return Some(format!("`{base}` runs other commands and needs approval"));
    }
    if SHELLS.contains(&base) && args.iter().any(|w| is_short_flag_with(&w.text, 'c')) {
        return Some(format!(
            "`{base} -c` runs a command string and needs approval"
        ));
    }
    if !command_strings(words).is_empty() {
        return Some(format!("`{base}` runs a command string and needs approval"));
    }
    if let Some(w) = args.iter().find(|w| has_flag(&w.text, EXECUTING_FLAGS)) {
        return Some(format!("the flag {} writes or runs something", w.text));
    }
    let flag = match base {
        "find" => find_flag(args),
        "sed" => sed_reason(args),
        "git" => git_global_flag(args),
        _ => None,
    };
    flag.or_else(|| table_flag(base, args))
        .map(|f| format!("`{base} {f}` writes or runs something and needs approval"))
}

fn find_flag(args: &[Word]) -> Option<String> {
    let forbidden = read_only_row("find")?.unsafe_flags;
    args.iter()
        .find(|w| forbidden.iter().any(|f| w.text.starts_with(f)))
        .map(|w| w.text.clone())
}

/// `git -c …` and other global options that change what git runs.
fn git_global_flag(args: &[Word]) -> Option<String> {
    for w in args {
        if !w.text.starts_with('-') {
            return None;
        }
        let t = w.text.as_str();
        if t == "-c" || t.starts_with("--config-env") || t.starts_with("--exec-path") {
            return Some(t.to_string());
        }
    }
    None
}

fn table_flag(base: &str, args: &[Word]) -> Option<String> {
    let forbidden = read_only_row(base)?.unsafe_flags;
    if base == "find" {
        return None;
    }
    args.iter()
        .find(|w| has_flag(&w.text, forbidden) || abbreviates(&w.text, forbidden))
        .map(|w| w.text.clone())
}

/// True when `word` could be a GNU-style abbreviation of one of the long `flags`:
/// `sort --outp=f` is `sort --output=f`, since getopt takes any unambiguous prefix.
pub fn abbreviates(word: &str, flags: &[&str]) -> bool {
    let name = word.split('=').next().unwrap_or(word);
    name.len() > 2 && name.starts_with("--") && flags.iter().any(|f| f.starts_with(name))
}

/// True when `word` is one of `flags`: `--long`, `--long=value`, or a short flag
/// (also inside a bundle like `-ro`).
pub fn has_flag(word: &str, flags: &[&str]) -> bool {
    flags.iter().any(|f| match f.strip_prefix("--") {
        Some(_) => word == *f || word.strip_prefix(f).is_some_and(|r| r.starts_with('=')),
        None => f
            .chars()
            .nth(1)
            .is_some_and(|letter| f.len() == 2 && is_short_flag_with(word, letter)),
    })
}

/// True for `-x`, or a bundle of short flags containing `x` (`-lc`).
fn is_short_flag_with(word: &str, letter: char) -> bool {
    word.starts_with('-') && !word.starts_with("--") && word[1..].contains(letter)
}

/// `sed -i`, `--in-place`, `-f script`, or a script with an `e`, `w` or `W` command.
fn sed_reason(args: &[Word]) -> Option<String> {
    let mut scripts = Vec::new();
    let mut explicit = false;
    let mut i = 0;
    while i < args.len() {
        let t = args[i].text.as_str();
        if t.starts_with("--in-place") || (is_short_flag_with(t, 'i') && !t.starts_with("-e")) {
            return Some(t.to_string());
        }
        if t == "-f" || t.starts_with("--file") || (t.starts_with("-f") && t.len() > 2) {
            return Some(t.to_string());
        }
        if t == "-e" || t == "--expression" {
            explicit = true;
            scripts.extend(args.get(i + 1).map(|w| w.text.as_str()));
            i += 1;
        } else if let Some(s) = t.strip_prefix("--expression=") {
            explicit = true;
            scripts.push(s);
        } else if !t.starts_with('-') && !explicit && scripts.is_empty() {
            scripts.push(t);
        }
        i += 1;
    }
    scripts
        .into_iter()
        .find(|s| sed_script_runs(s))
        .map(|s| format!("'{s}'"))
}

/// True when a sed script has a command that runs (`e`) or writes (`w`, `W`), or
/// when it is too odd to tell.
fn sed_script_runs(script: &str) -> bool {
    let chars: Vec<char> = script.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        i = skip_sed_address(&chars, i);
        let Some(&cmd) = chars.get(i) else {
            return false;
        };
        i += 1;
        match cmd {
            'e' | 'w' | 'W' => return true,
            's' | 'y' => match skip_sed_arguments(&chars, i) {
                Some((next, flags)) => {
                    if cmd == 's' && (flags.contains('e') || flags.contains('w')) {
                        return true;
                    }
                    i = next;
                }
                None => return true,
            },
            'a' | 'i' | 'c' | 'r' | 'R' | 'b' | 't' | 'T' | ':' | 'q' | 'Q' | 'l' | 'L' => {
                while i < chars.len() && chars[i] != '\n' && chars[i] != ';' {
                    i += 1;
                }
            }
            _ => {}
        }
        while i < chars.len() && matches!(chars[i], ';' | '\n' | ' ' | '}' | '{' | '!') {
            i += 1;
        }
    }
    false
}

fn skip_sed_address(chars: &[char], mut i: usize) -> usize {
    loop {
        match chars.get(i) {
            Some(c) if c.is_ascii_digit() || matches!(c, '$' | ',' | ' ' | '~' | '+' | '!') => {
                i += 1
            }
            Some('/') => {
                i += 1;
                while i < chars.len() && chars[i] != '/' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            _ => return i,
        }
    }
}

/// After `s` or `y`: skips `/re/repl/` and returns the index after the flags, and the flags.
fn skip_sed_arguments(chars: &[char], mut i: usize) -> Option<(usize, String)> {
    let delimiter = *chars.get(i)?;
    if delimiter == '\\' || delimiter == '\n' {
        return None;
    }
    i += 1;
    for _ in 0..2 {
        while *chars.get(i)? != delimiter {
            i += if chars[i] == '\\' { 2 } else { 1 };
        }
        i += 1;
    }
    let start = i;
    while i < chars.len() && !matches!(chars[i], ';' | '\n' | '}') {
        i += 1;
    }
    Some((i, chars[start..i].iter().collect()))
}

/// Where a command moves the shell: `cd DIR`, `pushd DIR`, `env -C DIR …`. `None`:
/// it does not; `Some(None)`: somewhere only known at run time (`cd -`, `popd`).
pub fn changes_dir(words: &[Word]) -> Option<Option<Arg>> {
    let name = basename(&words.first()?.text);
    let args = &words[1..];
    let target = match name {
        "cd" | "pushd" => args
            .iter()
            .find(|w| !w.text.starts_with('-') || w.text == "-"),
        "popd" => return Some(None),
        "env" => return env_chdir(args),
        _ => return None,
    };
    match target {
        None => Some(Some(arg(&Word::default(), "~"))),
        Some(w) if w.text == "-" => Some(None),
        Some(w) => Some(Some(arg(w, &w.text))),
    }
}

/// `env -C DIR`, `-CDIR`, `--chdir DIR`, `--chdir=DIR`.
fn env_chdir(args: &[Word]) -> Option<Option<Arg>> {
    let at = args
        .iter()
        .position(|w| w.text.starts_with("-C") || w.text.starts_with("--chdir"))?;
    let t = args[at].text.as_str();
    let attached = t.strip_prefix("--chdir=").or(t.strip_prefix("-C"));
    match attached.filter(|dir| !dir.is_empty()) {
        Some(dir) => Some(Some(arg(&args[at], dir))),
        None => Some(args.get(at + 1).map(|w| arg(w, &w.text))),
    }
}

/// The command a wrapper runs (`timeout 5 rm x` → `rm x`), if `words` start with one.
pub fn unwrap(words: &[Word]) -> Option<&[Word]> {
    let name = basename(&words.first()?.text);
    let (_, value_opts, positionals) = WRAPPERS.iter().find(|(n, _, _)| *n == name)?;
    let mut i = 1;
    let mut left = *positionals;
    while i < words.len() {
        let t = words[i].text.as_str();
        if t == "--" {
            i += 1;
            break;
        }
        if value_opts.contains(&t) {
            i += 2;
        } else if t.starts_with('-') || (name == "env" && words[i].assignment) {
            i += 1;
        } else if left > 0 {
            left -= 1;
            i += 1;
        } else {
            break;
        }
    }
    (i < words.len()).then(|| &words[i..])
}

/// Command strings a command runs itself: `sh -c STR`, `eval WORDS`, `env -S STR`.
/// `None` in the list means a string computed at run time.
pub fn command_strings(words: &[Word]) -> Vec<Option<String>> {
    let Some(first) = words.first() else {
        return Vec::new();
    };
    let base = basename(&first.text);
    let args = &words[1..];
    let literal = |w: &Word| (!w.dynamic).then(|| w.text.clone());
    if SHELLS.contains(&base) {
        let c = args.iter().position(|w| is_short_flag_with(&w.text, 'c'));
        return c
            .and_then(|c| args[c + 1..].iter().find(|w| !w.text.starts_with('-')))
            .map(|w| vec![literal(w)])
            .unwrap_or_default();
    }
    // `watch` hands its words to `sh -c`, joined like `eval` joins them.
    let joined = match base {
        "eval" | "trap" if !args.is_empty() => Some(args),
        "watch" => unwrap(words),
        _ => None,
    };
    if let Some(args) = joined {
        let dynamic = args.iter().any(|w| w.dynamic);
        let joined = args.iter().map(|w| w.text.as_str()).collect::<Vec<_>>();
        return vec![(!dynamic).then(|| joined.join(" "))];
    }
    let (short, long) = match base {
        "env" => ('S', "--split-string"),
        "su" | "flock" => ('c', "--command"),
        _ => return Vec::new(),
    };
    let mut out = Vec::new();
    for (i, w) in args.iter().enumerate() {
        let t = w.text.as_str();
        let next = || args.get(i + 1).map(literal);
        let value = match t.split_once('=') {
            Some((name, value)) if name.len() > 2 && long.starts_with(name) => {
                Some((!w.dynamic).then(|| value.to_string()))
            }
            _ if t.len() > 2 && long.starts_with(t) => next(),
            _ if t.starts_with('-') && !t.starts_with("--") => match t.find(short) {
                Some(at) if at + 1 < t.len() => Some((!w.dynamic).then(|| t[at + 1..].to_string())),
                Some(_) => next(),
                None => None,
            },
            _ => None,
        };
        out.extend(value);
    }
    out
}

/// Commands `find -exec … ;` (and `-execdir`, `-ok`, `-okdir`) would run.
pub fn find_exec_commands(words: &[Word]) -> Vec<&[Word]> {
    if words.first().map(|w| basename(&w.text)) != Some("find") {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut i = 1;
    while i < words.len() {
        if matches!(
            words[i].text.as_str(),
            "-exec" | "-execdir" | "-ok" | "-okdir"
        ) {
            let start = i + 1;
            let end = (start..words.len())
                .find(|&j| words[j].text == ";" || words[j].text == "+")
                .unwrap_or(words.len());
            if start < end {
                out.push(&words[start..end]);
            }
            i = end;
        }
        i += 1;
    }
    out
}

/// The words as one line a rule can match exactly: plain words as they are, others
/// single-quoted, globs as written.
pub fn render(words: &[Word]) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,^~".contains(c);
    words
        .iter()
        .map(|w| {
            if !w.text.is_empty() && w.text.chars().all(plain) {
                w.text.clone()
            } else if w.glob || w.dynamic {
                w.raw.clone()
            } else {
                format!("'{}'", w.text.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::lexer::parse;

    #[test]
    fn records_what_makes_a_part_unsafe() {
        let cases = [
            ("ls", None),
            ("ls 2>/dev/null", None),
            ("echo $HOME", None),
            ("echo ${HOME}", None),
            ("ls > out", Some("redirection")),
            ("ls $(pwd)", Some("command substitution")),
            ("echo ${x@P}", Some("parameter expansion")),
            ("A=1 ls", Some("assignment")),
            ("$X", Some("command name")),
            ("sh -c ls", Some("-c")),
            ("zsh -xc ls", Some("-c")),
            ("git -c a=b log", Some("-c")),
            ("sort -o f", Some("-o")),
            ("cat *", Some("glob")),
        ];
        for (command, expected) in cases {
            let parts = parse(command).unwrap();
            let reason = unsafe_reason(&parts[0]);
            match expected {
                None => assert_eq!(reason, None, "{command}"),
                Some(word) => {
                    let reason = reason.unwrap_or_else(|| panic!("{command}: no reason"));
                    assert!(reason.contains(word), "{command}: {reason}");
                }
            }
        }
    }

    #[test]
    fn nested_commands_and_wrappers_are_found() {
        let parts = parse("echo $(rm a) `rm b` <(rm c)").unwrap();
        assert_eq!(parts[0].nested, ["rm a", "rm b", "rm c"]);
        let parts = parse("timeout -k 1 5 nice -n 3 rm x").unwrap();
        let inner = unwrap(&parts[0].words).unwrap();
        assert_eq!(inner[0].text, "nice");
        assert_eq!(unwrap(inner).unwrap()[0].text, "rm");
        let parts = parse("find . -name x -exec rm {} \\; -execdir cat {} +").unwrap();
        let found = find_exec_commands(&parts[0].words);
        assert_eq!(found.len(), 2);
        assert_eq!(render(found[0]), "rm '{}'");
        let parts = parse("bash -c 'rm x'").unwrap();
        assert_eq!(command_strings(&parts[0].words), [Some("rm x".to_string())]);
    }

    #[test]
    fn renders_words_so_rules_see_argv() {
        let parts = parse("git commit -m \"fix it\" 'a'\\''b'").unwrap();
        assert_eq!(render(&parts[0].words), r"git commit -m 'fix it' 'a'\''b'");
    }
}
