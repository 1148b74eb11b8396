//! The shell lexer: splits a command line into simple commands the way a POSIX shell
//! would (quotes, escapes, comments, operators, here-docs), says which words are
//! plain literals and which ones compute their value at run time, and records the
//! syntax that makes a part unsafe to allow by rule (substitutions, subshells, control
//! structures, here-docs). It never runs anything and knows no command by name:
//! `shell.rs` does.

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
    fn unparsable_input_is_an_error() {
        for command in [
            "'a", "\"a", "$(a", "`a", "${a", "a |", "a &&", "a )", "(a", "$'a",
        ] {
            assert!(parse(command).is_err(), "{command}");
        }
    }
}
