//! Shell analysis: splits a command line into simple commands the way a POSIX shell
//! would (quotes, escapes, comments, operators, here-docs) and says which parts are
//! plain literal words, which ones compute their words at run time, and which ones
//! are known to write or run something.
//!
//! It never runs anything and never decides a verdict: `mod.rs` matches the result
//! against rules and modes.

use super::files::Arg;
use super::readers::{arg, read_only_row};

/// One word of a simple command after quote removal.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Word {
    /// The value with quotes removed; expansions are kept as written (`$HOME`).
    pub text: String,
    /// The word as written in the command line.
    pub raw: String,
    /// Part of the value is computed when the command runs (`$X`, `$(…)`, `` `…` ``).
    pub dynamic: bool,
    /// The value up to the first part computed at run time.
    pub literal_prefix: String,
    /// Contains an unquoted `*`, `?` or `[`: the shell expands it to file names.
    pub glob: bool,
    /// Starts with an unquoted glob, so it may expand to a name like `-rf`.
    pub leading_glob: bool,
    /// Any part was quoted or escaped (so it is not a keyword or an assignment).
    pub quoted: bool,
    /// Written `NAME=value` with an unquoted name.
    pub assignment: bool,
}

/// Where a redirection sends or takes data.
#[derive(Clone, Debug, PartialEq)]
pub enum Redirect {
    /// `< file`: reads the file.
    Read(Word),
    /// `> file`, `>> file`, `&> file`, `<> file`: writes the file.
    Write(Word),
    /// `2>&1`, `>&2`, `>/dev/null` and the like: harmless.
    Harmless,
    /// `<<EOF` or `<<<word`.
    HereDoc,
}

/// One simple command: words, redirections, and what makes it unsafe to allow by rule.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Simple {
    /// The words after leading assignments and shell keywords are stripped.
    pub words: Vec<Word>,
    /// Leading `NAME=value` words.
    pub assignments: Vec<Word>,
    pub redirects: Vec<Redirect>,
    /// Command text found in `$(…)`, backticks and `<(…)`, for deny checks.
    pub nested: Vec<String>,
    /// Why no rule may allow this command (one line each).
    pub issues: Vec<String>,
}

/// What a syntax the shell would expand or run means for approval.
const CMD_SUBST: &str = "command substitution $(…) needs approval";
const BACKTICKS: &str = "command substitution `…` needs approval";
const PROC_SUBST: &str = "process substitution <(…) needs approval";
const PARAM_EXPANSION: &str = "parameter expansion ${…} needs approval";
const ARITH: &str = "arithmetic expansion $((…)) needs approval";
const SUBSHELL: &str = "a subshell ( … ) needs approval";
const BRACES: &str = "a brace group { … } needs approval";
const CONTROL: &str = "shell control structures (if, for, while, …) need approval";
const HERE_DOC: &str = "a here-doc needs approval";
const BRACE_EXPANSION: &str = "brace expansion {a,b} needs approval";

/// Words that begin shell control structures; a command starting with one is stripped
/// of it (so deny rules still see what follows) and needs approval.
const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for", "case", "esac",
    "select", "function", "!", "[[", "]]", "coproc",
];

/// Splits `command` into simple commands. An error means the shell would not parse it
/// the way we think (unterminated quote, unbalanced parenthesis).
pub fn parse(command: &str) -> Result<Vec<Simple>, String> {
    let mut lexer = Lexer {
        chars: command.chars().collect(),
        pos: 0,
        depth: 0,
        pending_heredocs: Vec::new(),
    };
    lexer.commands()
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    /// Open `(` groups: commands inside are in a subshell.
    depth: usize,
    /// Here-doc delimiters whose bodies start after the next newline: (word, strip tabs).
    pending_heredocs: Vec<(String, bool)>,
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn starts_with(&self, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(i, c)| self.peek_at(i) == Some(c))
    }

    fn commands(&mut self) -> Result<Vec<Simple>, String> {
        let mut out = Vec::new();
        let mut current = Simple::default();
        let mut dangling: Option<&str> = None;
        loop {
            while matches!(self.peek(), Some(' ' | '\t')) || self.starts_with("\\\n") {
                self.pos += if self.peek() == Some('\\') { 2 } else { 1 };
            }
            let Some(c) = self.peek() else { break };
            match c {
                '\n' => {
                    self.pos += 1;
                    finish(&mut out, &mut current, self.depth);
                    self.skip_heredoc_bodies();
                    dangling = None;
                    continue;
                }
                '#' => {
                    while !matches!(self.peek(), None | Some('\n')) {
                        self.pos += 1;
                    }
                    continue;
                }
                ';' | '|' | '&' if !self.starts_with("&>") => {
                    dangling = self.operator();
                    finish(&mut out, &mut current, self.depth);
                    continue;
                }
                '(' => {
                    self.pos += 1;
                    finish(&mut out, &mut current, self.depth);
                    self.depth += 1;
                }
                ')' => {
                    self.pos += 1;
                    finish(&mut out, &mut current, self.depth);
                    if self.depth == 0 {
                        return Err("unbalanced `)`".into());
                    }
                    self.depth -= 1;
                }
                '<' | '>' if self.peek_at(1) == Some('(') => {
                    let word = self.process_substitution(&mut current)?;
                    current.words.push(word);
                }
                '<' | '>' => self.redirect(&mut current)?,
                '&' => self.redirect(&mut current)?,
                _ => {
                    let word = self.word(&mut current)?;
                    let is_fd = !word.quoted && word.text.chars().all(|c| c.is_ascii_digit());
                    if is_fd && matches!(self.peek(), Some('<' | '>')) {
                        self.redirect(&mut current)?;
                    } else {
                        current.words.push(word);
                    }
                }
            }
            dangling = None;
        }
        finish(&mut out, &mut current, self.depth);
        if self.depth > 0 {
            return Err("unbalanced `(`".into());
        }
        if let Some(op) = dangling {
            return Err(format!("the command ends with `{op}`"));
        }
        Ok(out)
    }

    /// Consumes a control operator; returns it when a command must follow.
    fn operator(&mut self) -> Option<&'static str> {
        for (op, needs_more) in [
            ("&&", true),
            ("||", true),
            ("|&", true),
            (";;", false),
            ("|", true),
            ("&", false),
            (";", false),
        ] {
            if self.starts_with(op) {
                self.pos += op.len();
                return needs_more.then_some(op);
            }
        }
        None
    }

    fn skip_heredoc_bodies(&mut self) {
        for (delimiter, strip_tabs) in std::mem::take(&mut self.pending_heredocs) {
            while self.pos < self.chars.len() {
                let start = self.pos;
                while !matches!(self.peek(), None | Some('\n')) {
                    self.pos += 1;
                }
                let line: String = self.chars[start..self.pos].iter().collect();
                self.pos = (self.pos + 1).min(self.chars.len());
                let line = if strip_tabs {
                    line.trim_start_matches('\t')
                } else {
                    &line
                };
                if line == delimiter {
                    break;
                }
            }
        }
    }

    fn redirect(&mut self, current: &mut Simple) -> Result<(), String> {
        let ops = [
            "&>>", "<<<", "<<-", "<<", ">>", ">&", "<&", "&>", ">|", "<>", "<", ">",
        ];
        let op = ops
            .into_iter()
            .find(|op| self.starts_with(op))
            .ok_or("unexpected `&`")?;
        self.pos += op.len();
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
        if matches!(
            self.peek(),
            None | Some('\n' | ';' | '|' | '&' | '<' | '>' | '(' | ')')
        ) {
            return Err(format!("`{op}` needs a target"));
        }
        let target = self.word(current)?;
        let redirect = match op {
            "<<<" => Redirect::HereDoc,
            "<<" | "<<-" => {
                self.pending_heredocs
                    .push((target.text.clone(), op == "<<-"));
                Redirect::HereDoc
            }
            ">&" | "<&" if is_fd_target(&target) => Redirect::Harmless,
            "<" => Redirect::Read(target),
            // `<>` opens for reading and writing.
            "<>" => {
                current.redirects.push(Redirect::Read(target.clone()));
                Redirect::Write(target)
            }
            _ if !target.dynamic && target.text == "/dev/null" => Redirect::Harmless,
            _ => Redirect::Write(target),
        };
        if redirect == Redirect::HereDoc {
            current.issues.push(HERE_DOC.into());
        }
        current.redirects.push(redirect);
        Ok(())
    }

    fn process_substitution(&mut self, current: &mut Simple) -> Result<Word, String> {
        let start = self.pos;
        self.pos += 2;
        let inner = self.capture_parens()?;
        current.nested.push(inner);
        current.issues.push(PROC_SUBST.into());
        let raw: String = self.chars[start..self.pos].iter().collect();
        Ok(Word {
            text: raw.clone(),
            raw,
            dynamic: true,
            ..Word::default()
        })
    }

    /// Reads one word up to an unquoted blank or operator character.
    fn word(&mut self, current: &mut Simple) -> Result<Word, String> {
        let start = self.pos;
        let mut w = Word::default();
        let mut name_so_far = true;
        let mut unquoted_braces = String::new();
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\n' | ';' | '|' | '&' | '<' | '>' | '(' | ')' => break,
                '\\' => {
                    self.pos += 1;
                    match self.peek() {
                        Some('\n') => self.pos += 1,
                        Some(next) => {
                            self.pos += 1;
                            w.quoted = true;
                            push_literal(&mut w, next);
                        }
                        None => push_literal(&mut w, '\\'),
                    }
                    name_so_far = false;
                }
                '\'' => {
                    self.pos += 1;
                    let s = self.until_quote('\'')?;
                    w.quoted = true;
                    name_so_far = false;
                    s.chars().for_each(|ch| push_literal(&mut w, ch));
                }
                '"' => {
                    self.pos += 1;
                    w.quoted = true;
                    name_so_far = false;
                    self.double_quoted(&mut w, current)?;
                }
                '$' => {
                    name_so_far = false;
                    self.dollar(&mut w, current)?;
                }
                '`' => {
                    name_so_far = false;
                    self.backticks(&mut w, current)?;
                }
                '=' if name_so_far && !w.text.is_empty() && !w.quoted => {
                    self.pos += 1;
                    w.assignment = true;
                    name_so_far = false;
                    push_literal(&mut w, '=');
                }
                _ => {
                    self.pos += 1;
                    if matches!(c, '*' | '?' | '[') {
                        w.leading_glob |= w.text.is_empty();
                        w.glob = true;
                    }
                    if matches!(c, '{' | '}' | ',') || (c == '.' && !unquoted_braces.is_empty()) {
                        unquoted_braces.push(c);
                    }
                    let name_char = c.is_ascii_alphanumeric() || c == '_';
                    name_so_far &= name_char && !(w.text.is_empty() && c.is_ascii_digit());
                    push_literal(&mut w, c);
                }
            }
        }
        w.raw = self.chars[start..self.pos].iter().collect();
        if is_brace_expansion(&unquoted_braces) {
            let before = w.literal_prefix.find('{').unwrap_or(0);
            w.literal_prefix.truncate(before);
            w.dynamic = true;
            current.issues.push(BRACE_EXPANSION.into());
        }
        Ok(w)
    }

    fn until_quote(&mut self, quote: char) -> Result<String, String> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == quote {
                let s = self.chars[start..self.pos].iter().collect();
                self.pos += 1;
                return Ok(s);
            }
            self.pos += 1;
        }
        Err(format!("unterminated {quote} quote"))
    }

    fn double_quoted(&mut self, w: &mut Word, current: &mut Simple) -> Result<(), String> {
        while let Some(c) = self.peek() {
            match c {
                '"' => {
                    self.pos += 1;
                    return Ok(());
                }
                '\\' => {
                    self.pos += 1;
                    match self.peek() {
                        Some('\n') => self.pos += 1,
                        Some(next @ ('$' | '`' | '"' | '\\')) => {
                            self.pos += 1;
                            push_literal(w, next);
                        }
                        _ => push_literal(w, '\\'),
                    }
                }
                '$' if self.peek_at(1) == Some('\'') => {
                    // `$'` is not special inside double quotes.
                    self.pos += 1;
                    push_literal(w, '$');
                }
                '$' => self.dollar(w, current)?,
                '`' => self.backticks(w, current)?,
                _ => {
                    self.pos += 1;
                    push_literal(w, c);
                }
            }
        }
        Err("unterminated \" quote".into())
    }

    /// Handles `$…` at the cursor: ANSI-C strings, substitutions and parameters.
    fn dollar(&mut self, w: &mut Word, current: &mut Simple) -> Result<(), String> {
        let start = self.pos;
        self.pos += 1;
        match self.peek() {
            Some('\'') => {
                self.pos += 1;
                w.quoted = true;
                let value = self.ansi_c()?;
                value.chars().for_each(|ch| push_literal(w, ch));
                return Ok(());
            }
            Some('"') => {
                self.pos += 1;
                w.quoted = true;
                return self.double_quoted(w, current);
            }
            Some('(') if self.peek_at(1) == Some('(') => {
                self.pos += 1;
                let inner = self.capture_parens()?;
                if inner.contains("$(") || inner.contains('`') {
                    current.nested.push(inner);
                }
                current.issues.push(ARITH.into());
            }
            Some('(') => {
                self.pos += 1;
                let inner = self.capture_parens()?;
                current.nested.push(inner);
                current.issues.push(CMD_SUBST.into());
            }
            Some('{') => {
                self.pos += 1;
                let inner = self.capture_braces()?;
                if !is_name(&inner) && !is_special_param(&inner) {
                    current.issues.push(PARAM_EXPANSION.into());
                }
                if inner.contains("$(") || inner.contains('`') {
                    current.nested.push(inner);
                }
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == '_') {
                    self.pos += 1;
                }
            }
            Some(c) if c.is_ascii_digit() || "@*#?$!-".contains(c) => self.pos += 1,
            _ => {
                push_literal(w, '$');
                return Ok(());
            }
        }
        let written: String = self.chars[start..self.pos].iter().collect();
        w.dynamic = true;
        w.text.push_str(&written);
        Ok(())
    }

    fn backticks(&mut self, w: &mut Word, current: &mut Simple) -> Result<(), String> {
        self.pos += 1;
        let mut inner = String::new();
        loop {
            match self.peek() {
                None => return Err("unterminated ` quote".into()),
                Some('`') => break,
                Some('\\') if matches!(self.peek_at(1), Some('`' | '\\' | '$')) => {
                    inner.push(self.peek_at(1).unwrap_or('\\'));
                    self.pos += 2;
                }
                Some(c) => {
                    inner.push(c);
                    self.pos += 1;
                }
            }
        }
        self.pos += 1;
        w.dynamic = true;
        w.text.push_str(&format!("`{inner}`"));
        current.nested.push(inner);
        current.issues.push(BACKTICKS.into());
        Ok(())
    }

    /// After `(`: returns the text up to the matching `)`, honouring quotes.
    fn capture_parens(&mut self) -> Result<String, String> {
        self.capture_until('(', ')', true, "unterminated $( or <(")
    }

    /// After `${`: returns the text up to the matching `}`.
    fn capture_braces(&mut self) -> Result<String, String> {
        self.capture_until('{', '}', false, "unterminated ${")
    }

    /// The text up to the `close` that matches an `open` already read, skipping quoted
    /// parts (and backquoted ones when `backticks`); `unterminated` at the end of input.
    fn capture_until(
        &mut self,
        open: char,
        close: char,
        backticks: bool,
        unterminated: &str,
    ) -> Result<String, String> {
        let start = self.pos;
        let mut depth = 1;
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                '\\' => self.pos += 1,
                '\'' => {
                    self.until_quote('\'')?;
                }
                '`' if backticks => {
                    self.until_quote('`')?;
                }
                '"' => self.skip_double_quoted()?,
                c if c == open => depth += 1,
                c if c == close => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(self.chars[start..self.pos - 1].iter().collect());
                    }
                }
                _ => {}
            }
        }
        Err(unterminated.into())
    }

    fn skip_double_quoted(&mut self) -> Result<(), String> {
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                '\\' => self.pos += 1,
                '"' => return Ok(()),
                _ => {}
            }
        }
        Err("unterminated \" quote".into())
    }

    /// After `$'`: decodes an ANSI-C quoted string up to its closing quote.
    fn ansi_c(&mut self) -> Result<String, String> {
        let mut out = String::new();
        loop {
            let c = self.peek().ok_or("unterminated $' quote")?;
            self.pos += 1;
            match c {
                '\'' => return Ok(out),
                '\\' => {
                    let e = self.peek().ok_or("unterminated $' quote")?;
                    self.pos += 1;
                    out.push(self.ansi_escape(e));
                }
                _ => out.push(c),
            }
        }
    }

    fn ansi_escape(&mut self, e: char) -> char {
        match e {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'a' => '\x07',
            'b' => '\x08',
            'e' | 'E' => '\x1b',
            'f' => '\x0c',
            'v' => '\x0b',
            'x' => self.number(16, 2).unwrap_or('x'),
            'u' => self.number(16, 4).unwrap_or('u'),
            'U' => self.number(16, 8).unwrap_or('U'),
            '0'..='7' => {
                self.pos -= 1;
                self.number(8, 3).unwrap_or('0')
            }
            other => other,
        }
    }

    fn number(&mut self, radix: u32, max_digits: usize) -> Option<char> {
        let start = self.pos;
        while self.pos - start < max_digits && self.peek().is_some_and(|c| c.is_digit(radix)) {
            self.pos += 1;
        }
        let digits: String = self.chars[start..self.pos].iter().collect();
        u32::from_str_radix(&digits, radix)
            .ok()
            .and_then(char::from_u32)
    }
}

fn push_literal(w: &mut Word, c: char) {
    w.text.push(c);
    if !w.dynamic {
        w.literal_prefix.push(c);
    }
}

fn is_fd_target(w: &Word) -> bool {
    !w.dynamic && (w.text == "-" || w.text.chars().all(|c| c.is_ascii_digit()))
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_special_param(s: &str) -> bool {
    s.len() == 1 && "@*#?$!-0123456789".contains(s)
}

/// True when the unquoted `{`, `}`, `,` and `.` characters of a word form `{a,b}` or
/// `{1..3}`.
fn is_brace_expansion(marks: &str) -> bool {
    let Some(open) = marks.find('{') else {
        return false;
    };
    let rest = &marks[open..];
    let Some(close) = rest.find('}') else {
        return false;
    };
    let inside = &rest[..close];
    inside.contains(',') || inside.contains("..")
}

/// Ends the current simple command: strips keywords and assignments and records why.
fn finish(out: &mut Vec<Simple>, current: &mut Simple, depth: usize) {
    let mut simple = std::mem::take(current);
    if depth > 0 {
        simple.issues.push(SUBSHELL.into());
    }
    while let Some(first) = simple.words.first() {
        if first.quoted || first.dynamic {
            break;
        }
        if first.assignment {
            let word = simple.words.remove(0);
            simple.assignments.push(word);
        } else if first.text == "{" || first.text == "}" {
            simple.words.remove(0);
            simple.issues.push(BRACES.into());
        } else if KEYWORDS.contains(&first.text.as_str()) {
            simple.words.remove(0);
            simple.issues.push(CONTROL.into());
        } else {
            break;
        }
    }
    if simple
        .words
        .last()
        .is_some_and(|w| !w.quoted && w.text == "}")
    {
        simple.words.pop();
        simple.issues.push(BRACES.into());
    }
    let empty = simple.words.is_empty()
        && simple.assignments.is_empty()
        && simple.redirects.is_empty()
        && simple.issues.is_empty();
    if !empty {
        out.push(simple);
    }
}

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

    /// Parses `command` and renders each part's words joined by `|`, parts by ` ; `.
    fn check(command: &str, expected: &str) {
        let parts = parse(command).unwrap_or_else(|e| panic!("{command}: {e}"));
        let got = parts
            .iter()
            .map(|p| {
                let words: Vec<&str> = p.words.iter().map(|w| w.text.as_str()).collect();
                words.join("|")
            })
            .collect::<Vec<_>>()
            .join(" ; ");
        assert_eq!(got, expected, "{command}");
    }

    #[test]
    fn splits_and_unquotes() {
        let cases = [
            ("ls -la", "ls|-la"),
            ("ec\"h\"o hi", "echo|hi"),
            ("'rm' -rf", "rm|-rf"),
            ("\\rm x", "rm|x"),
            ("$'\\x72m' x", "rm|x"),
            ("$'a\\'b'", "a'b"),
            ("echo \"a b\" 'c d'", "echo|a b|c d"),
            ("echo \"a\\\"b\"", "echo|a\"b"),
            ("a && b || c; d | e |& f & g", "a ; b ; c ; d ; e ; f ; g"),
            ("a\nb", "a ; b"),
            ("echo a#b # comment ; rm", "echo|a#b"),
            ("echo 'a;b' \"c|d\"", "echo|a;b|c|d"),
            ("ls \\\n -la", "ls|-la"),
            ("FOO=1 BAR=2 env", "env"),
            ("if true; then ls; fi", "true ; ls ; "),
            ("cat <<EOF\nrm -rf /\nEOF\nls", "cat ; ls"),
            ("cat <<-'X'\n\trm\n\tX\nls", "cat ; ls"),
            ("ls 2>&1 >/dev/null", "ls"),
            ("(a; b)", "a ; b"),
            ("echo $(a; b) `c`", "echo|$(a; b)|`c`"),
        ];
        for (command, expected) in cases {
            check(command, expected);
        }
    }

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
    fn unparsable_input_is_an_error() {
        for command in [
            "'a", "\"a", "$(a", "`a", "${a", "a |", "a &&", "a )", "(a", "$'a",
        ] {
            assert!(parse(command).is_err(), "{command}");
        }
    }

    #[test]
    fn renders_words_so_rules_see_argv() {
        let parts = parse("git commit -m \"fix it\" 'a'\\''b'").unwrap();
        assert_eq!(render(&parts[0].words), r"git commit -m 'fix it' 'a'\''b'");
    }
}
