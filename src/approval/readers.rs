//! The built-in read-only commands, one row each: the flags that would make them
//! write or run, the options whose value is a file they read, whether their other
//! words are files, and how they descend directories. From a row: whether a command
//! line only reads, and every word of it that may name a file.
//!
//! Parsing is `shell.rs`'s job; matching the files against rules is `mod.rs`'s.

use super::files::Arg;
use super::lexer::Word;
use super::shell::{abbreviates, basename, command_reason, has_flag};
use Operands::{Files, NotFiles};

/// One built-in read-only command: what it must not be given, which of its words name
/// files it reads, and how it descends directories. The whole of what nib knows about
/// a command is in its row; README lists the commands.
pub struct ReadOnly {
    pub name: &'static str,
    /// Flags that make it write or run something (GNU abbreviations count too).
    pub unsafe_flags: &'static [&'static str],
    /// Options whose value is a file it reads (`grep -f FILE`, `date --file=FILE`), in
    /// every spelling: separate, attached (`-fFILE`), `--opt=FILE`, abbreviated.
    pub file_options: &'static [&'static str],
    /// Whether its other arguments are files (`cat x`) or not (`echo x`).
    pub operands: Operands,
    /// How it descends into directories.
    pub walk: Walk,
    /// Whether it opens the files it walks past (`grep -r`), not only lists them (`find`).
    pub reads_walked: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Operands {
    Files,
    NotFiles,
}

/// When a command descends into directories, and when it follows symlinks there.
#[derive(Clone, Copy)]
pub struct Walk {
    /// Flags that make it recurse; `None`: never, `Some(&[])`: always.
    pub when: Option<&'static [&'static str]>,
    /// Flags that make it follow the symlinks it meets (for `diff`, its recursion flags).
    pub follows: &'static [&'static str],
}

const FLAT: Walk = Walk {
    when: None,
    follows: &[],
};

/// A command that reads its file operands and has nothing unsafe.
const fn plain(name: &'static str) -> ReadOnly {
    row(name, &[], &[], Operands::Files)
}

const fn row(
    name: &'static str,
    unsafe_flags: &'static [&'static str],
    file_options: &'static [&'static str],
    operands: Operands,
) -> ReadOnly {
    ReadOnly {
        name,
        unsafe_flags,
        file_options,
        operands,
        walk: FLAT,
        reads_walked: false,
    }
}

const fn walking(base: ReadOnly, walk: Walk, reads_walked: bool) -> ReadOnly {
    ReadOnly {
        walk,
        reads_walked,
        ..base
    }
}

/// Commands that only read. `git` is further checked by `git_is_read_only`.
pub const READ_ONLY: &[ReadOnly] = &[
    walking(
        plain("ls"),
        Walk {
            when: Some(&["-R", "--recursive"]),
            follows: &["-L", "--dereference"],
        },
        false,
    ),
    plain("cat"),
    plain("head"),
    plain("tail"),
    row("wc", &[], &["--files0-from"], Files),
    walking(
        row("grep", &[], &["-f", "--file", "--exclude-from"], Files),
        Walk {
            // `-d recurse` (`--directories=recurse`) recurses too.
            when: Some(&[
                "-r",
                "-R",
                "--recursive",
                "--dereference-recursive",
                "-d",
                "--directories",
            ]),
            follows: &["-R", "--dereference-recursive"],
        },
        true,
    ),
    walking(
        row(
            "rg",
            &["--pre", "--hostname-bin", "--search-zip", "-z"],
            &["-f", "--file", "--ignore-file"],
            Files,
        ),
        Walk {
            when: Some(&[]),
            follows: &["-L", "--follow"],
        },
        true,
    ),
    row("pwd", &[], &[], NotFiles),
    row("echo", &[], &[], NotFiles),
    row("which", &[], &[], NotFiles),
    plain("stat"),
    row(
        "file",
        &["-C", "--compile"],
        &["-f", "--files-from", "-m", "--magic-file"],
        Files,
    ),
    walking(
        row("tree", &["-o", "--fromfile"], &[], Files),
        Walk {
            when: Some(&[]),
            follows: &["-l"],
        },
        false,
    ),
    walking(
        row("du", &[], &["--files0-from", "-X", "--exclude-from"], Files),
        Walk {
            when: Some(&[]),
            follows: &["-L", "--dereference"],
        },
        false,
    ),
    plain("df"),
    row("basename", &[], &[], NotFiles),
    row("dirname", &[], &[], NotFiles),
    row(
        "realpath",
        &[],
        &["--relative-to", "--relative-base"],
        Files,
    ),
    plain("readlink"),
    row(
        "sort",
        // `-T DIR` writes temporary files there.
        &[
            "-o",
            "--output",
            "--compress-program",
            "-T",
            "--temporary-directory",
        ],
        &["--files0-from", "--random-source"],
        Files,
    ),
    plain("uniq"),
    plain("cut"),
    row("tr", &[], &[], NotFiles),
    walking(
        row(
            "diff",
            &[],
            &["--from-file", "--to-file", "-X", "--exclude-from"],
            Files,
        ),
        Walk {
            when: Some(&["-r", "--recursive"]),
            follows: &["-r", "--recursive"],
        },
        true,
    ),
    plain("cmp"),
    row("true", &[], &[], NotFiles),
    row("false", &[], &[], NotFiles),
    row(
        "date",
        &["-s", "--set"],
        &["-f", "--file", "-r", "--reference"],
        NotFiles,
    ),
    row("whoami", &[], &[], NotFiles),
    row("uname", &[], &[], NotFiles),
    plain("nl"),
    walking(
        row(
            "find",
            &[
                "-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint", "-fls",
            ],
            &["-newer", "-anewer", "-cnewer", "-samefile", "-files0-from"],
            Files,
        ),
        Walk {
            when: Some(&[]),
            follows: &["-L", "-follow"],
        },
        false,
    ),
    row(
        "git",
        &[],
        &[
            "-C",
            "--git-dir",
            "--work-tree",
            "-S",
            "--contents",
            "--ignore-revs-file",
            "-O",
        ],
        Files,
    ),
];

/// The row of a built-in read-only command.
pub fn read_only_row(name: &str) -> Option<&'static ReadOnly> {
    READ_ONLY.iter().find(|r| r.name == name)
}

/// `git` subcommands that only read; `branch` and `remote` are limited further.
const GIT_READ_ONLY: &[&str] = &[
    "status",
    "log",
    "diff",
    "show",
    "branch",
    "rev-parse",
    "ls-files",
    "blame",
    "remote",
];

/// `git branch` flags that only list branches.
const GIT_BRANCH_LIST_FLAGS: &[&str] = &[
    "-a",
    "-r",
    "-v",
    "-vv",
    "-l",
    "--list",
    "--all",
    "--remotes",
    "--show-current",
    "--verbose",
    "--no-color",
    "--color",
    "--contains",
    "--merged",
    "--no-merged",
    "--points-at",
    "--sort",
    "--format",
    "--no-abbrev",
];

/// True when the words are a built-in read-only command used without flags that
/// write or run. Every word must be literal (only `echo` may print variables).
pub fn is_read_only(words: &[Word]) -> bool {
    let Some(first) = words.first() else {
        return false;
    };
    let name = first.text.as_str();
    if read_only_row(name).is_none() || (name != "echo" && words.iter().any(|w| w.dynamic)) {
        return false;
    }
    match name {
        "git" => git_is_read_only(&words[1..]),
        "uniq" => positional(&words[1..]).count() <= 1,
        _ => true,
    }
}

/// True when the words run a built-in read-only command in a way that only reads,
/// however its name is spelled (`/bin/cat`) and whatever its words compute: its
/// row then says which words are files.
pub fn only_reads(words: &[Word]) -> bool {
    let Some(first) = words.first() else {
        return false;
    };
    let literal = Word {
        text: basename(&first.text).to_string(),
        ..Word::default()
    };
    let mut plain: Vec<Word> = words
        .iter()
        .map(|w| Word {
            dynamic: false,
            ..w.clone()
        })
        .collect();
    plain[0] = literal;
    is_read_only(&plain) && command_reason(&plain).is_none()
}

fn git_is_read_only(args: &[Word]) -> bool {
    let Some(sub) = args.first() else {
        return false;
    };
    if !GIT_READ_ONLY.contains(&sub.text.as_str()) {
        return false;
    }
    let rest = &args[1..];
    match sub.text.as_str() {
        "remote" => rest.iter().all(|w| w.text == "-v" || w.text == "--verbose"),
        "branch" => git_branch_lists(rest),
        _ => true,
    }
}

fn git_branch_lists(args: &[Word]) -> bool {
    let flags_ok = args.iter().filter(|w| w.text.starts_with('-')).all(|w| {
        let name = w.text.split('=').next().unwrap_or("");
        GIT_BRANCH_LIST_FLAGS.contains(&name)
    });
    let takes_args = args.iter().any(|w| {
        matches!(
            w.text.as_str(),
            "-l" | "--list" | "--contains" | "--merged" | "--no-merged" | "--points-at"
        )
    });
    flags_ok && (takes_args || positional(args).count() == 0)
}

fn positional(args: &[Word]) -> impl Iterator<Item = &Word> {
    args.iter()
        .filter(|w| !w.text.starts_with('-') || w.text == "-")
}

/// The words of a built-in read-only command that may name files it reads, in every
/// spelling its row allows: operands, `--opt=FILE`, `--opt FILE` (abbreviated too),
/// `-fFILE`, and for commands whose operands are files, whatever follows a short
/// flag's letter (`-xFILE`, when `x` might take a value). Empty for other commands.
pub fn read_args(words: &[Word]) -> Vec<Arg> {
    let Some(row) = words.first().and_then(|w| read_only_row(basename(&w.text))) else {
        return Vec::new();
    };
    let files = row.operands == Operands::Files;
    let mut pattern = pattern_first(row, words);
    let mut out = Vec::new();
    let mut operands_only = false;
    let mut i = 1;
    while i < words.len() {
        let w = &words[i];
        let t = w.text.as_str();
        i += 1;
        if operands_only || !t.starts_with('-') || t == "-" {
            // `<(…)` is a pipe from a command checked on its own.
            let pipe = w.raw.starts_with("<(") || w.raw.starts_with(">(");
            // Words that are not files still list directories when they are globs.
            let named = files || w.glob;
            if named && t != "-" && !pipe && !std::mem::take(&mut pattern) {
                out.push(arg(w, t));
            }
            // `git show HEAD:path` reads `path` as committed.
            if let Some((_, path)) = t.split_once(':').filter(|_| row.name == "git") {
                out.push(arg(w, path));
            }
            continue;
        }
        if t == "--" {
            operands_only = true;
            continue;
        }
        let (name, value) = match t.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (t, None),
        };
        let names_file = row.file_options.contains(&name) || abbreviates(name, row.file_options);
        match value {
            Some(value) if files || names_file => out.push(arg(w, value)),
            Some(_) => {}
            None if names_file => out.extend(words.get(i).map(|next| arg(next, &next.text))),
            None if !t.starts_with("--") => out.extend(attached_values(row, w, files)),
            None => {}
        }
        if value.is_none() && names_file {
            i += 1;
        }
    }
    out
}

/// Values attached to short flags: `-fFILE` when `-f` reads a file; with file
/// operands, every tail after a flag letter (an unknown flag may take a value).
fn attached_values(row: &ReadOnly, w: &Word, files: bool) -> Vec<Arg> {
    let t = w.text.as_str();
    let mut out = Vec::new();
    for (j, c) in t.char_indices().skip(1) {
        let tail = &t[j + c.len_utf8()..];
        if tail.is_empty() {
            break;
        }
        let flag = format!("-{c}");
        if row.file_options.contains(&flag.as_str()) {
            out.push(arg(w, tail));
            break;
        }
        if files {
            out.push(arg(w, tail));
        }
    }
    out
}

/// A part of a word as a file argument: a glob only if the part has the glob
/// characters, computed if the word is.
pub fn arg(w: &Word, text: &str) -> Arg {
    Arg {
        text: text.to_string(),
        glob: w.glob && text.contains(['*', '?', '[']),
        dynamic: w.dynamic,
        loose: false,
    }
}

/// The arguments of any other command that look like files (operands and `=` values):
/// best effort (`loose`), for deny rules and protected paths.
pub fn other_args(words: &[Word]) -> Vec<Arg> {
    let values = words.iter().skip(1).filter_map(|w| {
        let t = w.text.as_str();
        match t.split_once('=') {
            Some((name, value)) if name.starts_with('-') || w.assignment => Some(arg(w, value)),
            _ if t.starts_with('-') => None,
            _ => Some(arg(w, t)),
        }
    });
    let loose = values.map(|a| Arg { loose: true, ..a });
    loose.filter(|a| !a.text.is_empty()).collect()
}

/// Commands that copy or archive whole trees: with one of the flags (always, when
/// none are listed), every file below a directory operand is read.
const TREE_COPIERS: &[(&str, &[&str])] = &[
    ("cp", &["-r", "-R", "-a", "--recursive", "--archive"]),
    ("tar", &[]),
    ("zip", &["-r", "--recurse-paths"]),
    ("rsync", &[]),
    ("scp", &["-r"]),
];

/// How a command descends directories.
pub struct Descent {
    /// Where it starts (its directory operands, `.` when it has none).
    pub starts: Vec<Arg>,
    /// It follows the symlinks it meets.
    pub follows: bool,
    /// It opens the files it meets (`grep -r`), not only lists them (`find`).
    pub reads: bool,
}

/// `walk_of` for the commands in `TREE_COPIERS` (every operand is a start, links are
/// not followed) and `git grep` outside the index.
fn copies_tree(name: &str, words: &[Word]) -> Option<Descent> {
    if name == "git" {
        return git_grep_outside_the_index(words);
    }
    let (_, flags) = TREE_COPIERS.iter().find(|(n, _)| *n == name)?;
    let recursive = flags.is_empty()
        || words[1..]
            .iter()
            .any(|w| has_flag(&w.text, flags) || abbreviates(&w.text, flags));
    let starts = positional(&words[1..]).map(|w| arg(w, &w.text)).collect();
    recursive.then_some(Descent {
        starts,
        follows: false,
        reads: true,
    })
}

/// `git grep --no-index` and `--untracked` read files git does not track, below `.`.
fn git_grep_outside_the_index(words: &[Word]) -> Option<Descent> {
    let flags = ["--no-index", "--untracked"];
    let outside = words.iter().any(|w| abbreviates(&w.text, &flags));
    (words.get(1)?.text == "grep" && outside).then(|| Descent {
        starts: vec![arg(&Word::default(), ".")],
        follows: false,
        reads: true,
    })
}

/// True when the first operand is a pattern, not a file: `grep PATTERN FILE…` and
/// `rg`, unless the pattern is given by `-e` or `-f`.
fn pattern_first(row: &ReadOnly, words: &[Word]) -> bool {
    let flags = ["-e", "--regexp", "-f", "--file"];
    let given = words[1..]
        .iter()
        .any(|w| has_flag(&w.text, &flags) || abbreviates(&w.text, &flags));
    matches!(row.name, "grep" | "rg") && !given
}

/// How a command would descend directories; `None` when it does not.
pub fn walk_of(words: &[Word]) -> Option<Descent> {
    let name = basename(&words.first()?.text);
    if let Some(descent) = copies_tree(name, words) {
        return Some(descent);
    }
    let row = read_only_row(name)?;
    let triggers = row.walk.when?;
    let uses = |flags: &[&str]| {
        words[1..].iter().any(|w| {
            let t = w.text.as_str();
            flags.contains(&t) || has_flag(t, flags) || abbreviates(t, flags)
        })
    };
    if !triggers.is_empty() && !uses(triggers) {
        return None;
    }
    let operands = positional(&words[1..]).filter(|w| w.text != "-");
    let mut starts: Vec<Arg> = operands
        .skip(usize::from(pattern_first(row, words)))
        .map(|w| arg(w, &w.text))
        .collect();
    if starts.is_empty() {
        starts.push(arg(&Word::default(), "."));
    }
    Some(Descent {
        starts,
        follows: uses(row.walk.follows),
        reads: row.reads_walked,
    })
}
