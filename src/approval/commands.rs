//! The commands a command line runs, as the gate sees them: each simple command with
//! the commands nested in it (wrappers, `sh -c` and `eval` strings, substitutions,
//! `find -exec`), the words that may name files, and the text deny and ask rules are
//! matched against. Which verdict follows is `mod.rs`'s job.

use super::files::Arg;
use super::lexer::{self, Redirect, Simple, Word};
use super::readers;
use super::rules::{Rule, Spec};
use super::shell;
use crate::tools::Tool;

/// Deepest nesting of wrappers, `sh -c` strings and substitutions we look into; deeper
/// than this a deny rule is assumed to match (no real command nests this far).
const MAX_NESTING: usize = 8;

/// A command line as deny and ask rules see it.
pub enum Form {
    /// Every word is known.
    Known(String),
    /// Only the start is known; the rest is computed when it runs.
    Partial(String),
    /// Nothing is known (an unparsable nested string, nesting too deep).
    Unknown,
}

/// One command nib can see inside a part: its words and redirections.
pub struct Seen {
    pub words: Vec<Word>,
    pub redirects: Vec<Redirect>,
    /// More arguments are added when it runs (`xargs cat`, `find -exec cat {} ;`).
    pub fed: bool,
}

/// Every command a part runs that nib can see: the part itself, what wrappers run,
/// `sh -c` / `eval` strings, substitutions, `find -exec`. `None` stands for a command
/// nib cannot see (a computed string, nesting deeper than `MAX_NESTING`).
pub fn commands_in(part: &Simple) -> Vec<Option<Seen>> {
    let mut out = Vec::new();
    visit_part(part, 0, &mut out);
    out
}

fn visit_part(part: &Simple, depth: usize, out: &mut Vec<Option<Seen>>) {
    visit_words(&part.words, &part.redirects, false, depth, out);
    for nested in &part.nested {
        visit_string(nested, depth + 1, out);
    }
}

fn visit_words(
    words: &[Word],
    redirects: &[Redirect],
    fed: bool,
    depth: usize,
    out: &mut Vec<Option<Seen>>,
) {
    if words.is_empty() && redirects.is_empty() {
        return;
    }
    if depth > MAX_NESTING {
        out.push(None);
        return;
    }
    out.push(Some(Seen {
        words: words.to_vec(),
        redirects: redirects.to_vec(),
        fed,
    }));
    if let Some(inner) = shell::unwrap(words) {
        let feeds = shell::basename(&words[0].text) == "xargs";
        visit_words(inner, &[], fed || feeds, depth + 1, out);
    }
    for string in shell::command_strings(words) {
        match string {
            Some(s) => visit_string(&s, depth + 1, out),
            None => out.push(None),
        }
    }
    for command in shell::find_exec_commands(words) {
        visit_words(command, &[], true, depth + 1, out);
    }
}

fn visit_string(command: &str, depth: usize, out: &mut Vec<Option<Seen>>) {
    if depth > MAX_NESTING {
        out.push(None);
        return;
    }
    match lexer::parse(command) {
        Ok(parts) => parts.iter().for_each(|p| visit_part(p, depth, out)),
        Err(_) => out.push(None),
    }
}

/// The words of `seen` that may name files, with the tool whose rules apply: `< f`
/// reads, `> f` writes; a read-only command's file arguments are reads; any other
/// command's arguments may be either. A computed command name may open anything.
pub fn named_args(seen: &Seen) -> Vec<(Tool, Arg)> {
    let word_arg = |w: &Word| Arg {
        text: w.text.clone(),
        glob: w.glob,
        dynamic: w.dynamic,
        loose: false,
    };
    let mut out: Vec<(Tool, Arg)> = seen
        .redirects
        .iter()
        .filter_map(|r| match r {
            Redirect::Read(w) => Some((Tool::Read, word_arg(w))),
            Redirect::Write(w) => Some((Tool::Edit, word_arg(w))),
            _ => None,
        })
        .collect();
    let Some(first) = seen.words.first() else {
        return out;
    };
    if first.dynamic || first.glob || seen.fed {
        let unknown = word_arg(&Word {
            dynamic: true,
            text: format!("what {} is given", first.text),
            ..first.clone()
        });
        out.push((Tool::Read, unknown.clone()));
        out.push((Tool::Edit, unknown));
        return out;
    }
    match readers::only_reads(&seen.words) {
        true => out.extend(
            readers::read_args(&seen.words)
                .into_iter()
                .map(|a| (Tool::Read, a)),
        ),
        false => {
            for arg in readers::other_args(&seen.words) {
                out.push((Tool::Read, arg.clone()));
                out.push((Tool::Edit, arg));
            }
        }
    }
    out
}

/// Every way a deny or ask rule should see a part: each command in it as written,
/// and with argv[0]'s basename.
pub fn part_forms(part: &Simple, out: &mut Vec<Form>) {
    for seen in commands_in(part) {
        let Some(seen) = seen else {
            out.push(Form::Unknown);
            continue;
        };
        let Some(first) = seen.words.first() else {
            continue;
        };
        out.push(form_of(&seen.words, &first.text));
        let base = shell::basename(&first.text);
        if base != first.text {
            out.push(form_of(&seen.words, base));
        }
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

pub fn form_matches(rule: &Rule, form: &Form) -> bool {
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
