//! Guards against a model going round in circles, the way small local models do: a
//! reply whose text falls into a loop (`Repetition`, fed the stream as it arrives), and
//! the same tool call made again and again (`Calls`). Pure: the agent stops the stream,
//! answers the call or ends the task.

use crate::model::ToolCall;

/// A block of lines counts as a loop once it appears this many times in a row. Seen
/// with SmolLM2-135M: loops of 1–11 lines that go on until the output cap; legitimate
/// answers (tables, file lists, code) never repeat a whole block four times running.
const LOOP_REPEATS: usize = 4;
/// The longest block (in lines) looked for: the longest loop seen was 11 lines (two
/// Python functions and blank lines between them).
const MAX_LOOP_LINES: usize = 16;
/// A block must hold at least this many letters or digits, so runs of blank lines,
/// `}` or `---` (code and tables) never count.
const MIN_LOOP_ALNUM: usize = 8;
/// Within one line (no newline coming), a span repeated for this many bytes in a row
/// is a loop ("the the the …"): longer than any legitimate run of a word.
const LINE_LOOP_BYTES: usize = 400;
/// The longest span looked for within a line.
const MAX_SPAN_BYTES: usize = 100;
/// A span must hold at least this many letters or digits (not `0, 0, 0` or `|---|`).
const MIN_SPAN_ALNUM: usize = 3;
/// How often (bytes of new text) an unfinished line is checked: cheap enough per token.
const LINE_CHECK_EVERY: usize = 64;

/// Why a reply was cut, as the turn's `stop_reason`.
pub const REPETITION_STOP: &str = "repetition";

/// Watches a reply's text as it streams.
#[derive(Debug, Default)]
pub struct Repetition {
    text: String,
    /// Where each complete line starts in `text`, and the end of the last one.
    starts: Vec<usize>,
    /// Length of `text` at the last check of the unfinished line.
    line_checked: usize,
    /// Set once a loop is found: the bytes of `text` to keep.
    cut: Option<usize>,
}

impl Repetition {
    pub fn new() -> Repetition {
        Repetition {
            starts: vec![0],
            ..Repetition::default()
        }
    }

    /// Adds streamed text. Returns the bytes of the reply to keep (the text before the
    /// loop and the repeated block once) when it has fallen into a loop.
    pub fn push(&mut self, piece: &str) -> Option<usize> {
        if self.cut.is_some() {
            return self.cut;
        }
        let from = self.text.len();
        self.text.push_str(piece);
        for (i, _) in piece.match_indices('\n') {
            self.starts.push(from + i + 1);
            if let Some(keep) = self.line_loop() {
                self.cut = Some(keep);
                return self.cut;
            }
        }
        if self.text.len() >= self.line_checked + LINE_CHECK_EVERY {
            self.line_checked = self.text.len();
            self.cut = self.span_loop();
        }
        self.cut
    }

    /// The line `i` (without its newline).
    fn line(&self, i: usize) -> &str {
        &self.text[self.starts[i]..self.starts[i + 1] - 1]
    }

    /// A block of complete lines repeated `LOOP_REPEATS` times at the end.
    fn line_loop(&self) -> Option<usize> {
        let n = self.starts.len() - 1;
        for p in 1..=MAX_LOOP_LINES.min(n / LOOP_REPEATS) {
            let same = |i: usize| self.line(i) == self.line(i + p);
            if !(n - LOOP_REPEATS * p..n - p).all(same) {
                continue;
            }
            let alnum: usize = (n - p..n).map(|i| alnum(self.line(i))).sum();
            if alnum < MIN_LOOP_ALNUM {
                continue;
            }
            // Go back to where the repetition began; keep up to the end of its first block.
            let mut start = n - LOOP_REPEATS * p;
            while start > 0 && same(start - 1) {
                start -= 1;
            }
            return Some(self.starts[start + p]);
        }
        None
    }

    /// A span repeated within the unfinished last line for `LINE_LOOP_BYTES`.
    fn span_loop(&self) -> Option<usize> {
        let line = &self.text.as_bytes()[*self.starts.last()?..];
        if line.len() < LINE_LOOP_BYTES {
            return None;
        }
        let tail = &line[line.len() - LINE_LOOP_BYTES..];
        let q = (1..=MAX_SPAN_BYTES).find(|&q| (q..tail.len()).all(|i| tail[i] == tail[i - q]))?;
        let span = String::from_utf8_lossy(&tail[tail.len() - q..]);
        if alnum(&span) < MIN_SPAN_ALNUM {
            return None;
        }
        let mut start = line.len() - LINE_LOOP_BYTES;
        while start > 0 && line[start - 1] == line[start - 1 + q] {
            start -= 1;
        }
        let mut keep = self.text.len() - line.len() + start + q;
        while !self.text.is_char_boundary(keep) {
            keep -= 1;
        }
        Some(keep)
    }
}

fn alnum(s: &str) -> usize {
    s.chars().filter(|c| c.is_alphanumeric()).count()
}

/// A call may run this many times in a row with the same arguments (a test re-run
/// after a wait can differ); after that it is answered from the last result.
const CALL_RUNS: u32 = 2;
/// After this many identical calls in a row the task ends: the model is stuck.
const CALL_STOP: u32 = 5;
/// Bytes of the earlier result repeated to the model in the reminder.
const REMINDER_RESULT_BYTES: usize = 2000;
/// Bytes of a call's arguments shown when the task stops: enough to recognise the call.
const SHOWN_ARGS_BYTES: usize = 200;

/// What to do with a tool call.
#[derive(Debug, PartialEq)]
pub enum CallCheck {
    Run,
    /// Do not run it: answer with this text.
    Remind(String),
    /// End the task with this reason.
    Stop(String),
}

/// Watches consecutive tool calls for the same call with the same arguments.
#[derive(Debug, Default)]
pub struct Calls {
    /// The last call's name and arguments, its result, and how many times in a row it came.
    last: Option<(String, String)>,
    result: String,
    count: u32,
}

impl Calls {
    /// Checks the next call.
    pub fn check(&mut self, call: &ToolCall) -> CallCheck {
        let key = (call.name.clone(), call.input.to_string());
        if self.last.as_ref() == Some(&key) {
            self.count += 1;
        } else {
            self.last = Some(key);
            self.count = 1;
            self.result.clear();
        }
        let args = clip_chars(&call.input.to_string(), SHOWN_ARGS_BYTES);
        let shown = format!("{} {args}", call.name);
        if self.count >= CALL_STOP {
            return CallCheck::Stop(format!(
                "the model made the same call {} times in a row ({shown}); nib stopped the task. \
                 Rephrase the request or use a larger model",
                self.count
            ));
        }
        if self.count > CALL_RUNS {
            return CallCheck::Remind(format!(
                "not run: you already made this exact call {} times in a row and it returned \
                 the same thing each time. Do not call it again with the same arguments: use \
                 the result below, change the arguments, or answer the user.\nIt returned:\n{}",
                self.count - 1,
                clip_chars(&self.result, REMINDER_RESULT_BYTES)
            ));
        }
        CallCheck::Run
    }

    /// The result of the call just checked and run.
    pub fn ran(&mut self, content: &str) {
        self.result = content.to_string();
    }
}

/// The first `max` bytes of `s` at a character boundary, marked when cut.
fn clip_chars(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let end = crate::tools::clip::cut(s.as_bytes(), max).len();
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Feeds `text` in pieces of `chunk` bytes; the kept text when a loop was found.
    fn feed(text: &str, chunk: usize) -> Option<String> {
        let mut guard = Repetition::new();
        let chars: Vec<char> = text.chars().collect();
        for piece in chars.chunks(chunk) {
            let piece: String = piece.iter().collect();
            if let Some(keep) = guard.push(&piece) {
                return Some(guard.text[..keep].to_string());
            }
        }
        None
    }

    #[test]
    fn a_looping_list_is_cut_after_the_block_once() {
        // SmolLM2-135M's answer to README's first command.
        let mut text =
            "The files in this repo are:\n\n- `scripts/test`\n- `scripts/test`\n".to_string();
        text.push_str("- `tools/test`\n- `tools/test`\n- `tools/test`\n");
        for _ in 0..50 {
            text.push_str("- `scripts/test`\n- `scripts/test`\n- `tools/test`\n- `tools/test`\n");
        }
        for chunk in [1, 3, 7, 100] {
            let kept = feed(&text, chunk).expect("loop found");
            assert!(kept.starts_with("The files in this repo are:\n"));
            for line in kept.lines() {
                let n = kept.lines().filter(|l| *l == line).count();
                assert!(
                    n <= 4 || line.is_empty(),
                    "{line:?} kept {n} times:\n{kept}"
                );
            }
            assert!(kept.len() < 200, "{kept}");
        }
    }

    #[test]
    fn a_looping_code_block_is_cut() {
        let f = "def print_list_of_files(file_path):\n    with open(file_path, \"w\") as f:\n        print(f)\n\n";
        let g = "def reverse_list(lst):\n    return [x[::-1] for x in lst[::-1]]\n\n";
        let text = format!("```python\n{}", format!("{f}{f}{g}").repeat(10));
        let kept = feed(&text, 5).expect("loop found");
        assert_eq!(kept.matches("def reverse_list").count(), 1, "{kept}");
    }

    #[test]
    fn a_word_loop_within_a_line_is_cut() {
        let text = format!("I think {}", "the answer is ".repeat(100));
        let kept = feed(&text, 4).expect("loop found");
        assert_eq!(kept.trim_end(), "I think the answer is");
    }

    #[test]
    fn legitimate_repetition_passes() {
        let table = format!(
            "| n | square |\n|---|---|\n{}",
            (1..60)
                .map(|i| format!("| {i} | {} |\n", i * i))
                .collect::<String>()
        );
        let files: String = (1..60).map(|i| format!("- `src/file{i}.rs`\n")).collect();
        let code = "fn main() {\n    let a = 1;\n    let b = 2;\n    let c = 3;\n}\n}\n}\n}\n}\n"
            .repeat(3);
        let rule = format!("{}\n{}\n", "=".repeat(2000), "-".repeat(2000));
        let zeros = format!("let v = [{}];\n", "0, ".repeat(500));
        let blank = format!("a\n{}b\n", "\n".repeat(100));
        let three = "- `scripts/test`\n".repeat(3) + "done\n";
        for text in [table, files, code, rule, zeros, blank, three] {
            assert_eq!(feed(&text, 3), None, "{text}");
        }
    }

    /// Replies of SmolLM2-135M (temperature 0) to nib prompts, capped at 700 tokens.
    const REAL_LOOPS: [&str; 5] = [
        include_str!("../tests/fixtures/smollm2/loop-files.txt"),
        include_str!("../tests/fixtures/smollm2/loop-code.txt"),
        include_str!("../tests/fixtures/smollm2/loop-prose.txt"),
        include_str!("../tests/fixtures/smollm2/loop-tags.txt"),
        include_str!("../tests/fixtures/smollm2/loop-list.txt"),
    ];
    const REAL_FINE: [&str; 3] = [
        include_str!("../tests/fixtures/smollm2/fine-python.txt"),
        include_str!("../tests/fixtures/smollm2/fine-tcp.txt"),
        include_str!("../tests/fixtures/smollm2/fine-rust.txt"),
    ];

    #[test]
    fn real_model_loops_are_cut_and_its_answers_pass() {
        for text in REAL_LOOPS {
            let kept = feed(text, 4).unwrap_or_else(|| panic!("no loop found in:\n{text}"));
            assert!(kept.len() * 2 < text.len(), "{kept}");
            for line in kept.lines().filter(|l| !l.trim().is_empty()) {
                let n = kept.lines().filter(|l| *l == line).count();
                assert!(n <= LOOP_REPEATS, "{line:?} kept {n} times:\n{kept}");
            }
        }
        for text in REAL_FINE {
            assert_eq!(feed(text, 4), None, "{text}");
        }
    }

    fn call(command: &str) -> ToolCall {
        ToolCall {
            id: "c".into(),
            name: "bash".into(),
            input: json!({ "command": command }),
            invalid: None,
        }
    }

    #[test]
    fn the_same_call_runs_twice_then_is_answered_then_stops() {
        let mut calls = Calls::default();
        let ls = call("ls");
        for _ in 0..CALL_RUNS {
            assert_eq!(calls.check(&ls), CallCheck::Run);
            calls.ran("a.txt\nb.txt");
        }
        for _ in CALL_RUNS + 1..CALL_STOP {
            match calls.check(&ls) {
                CallCheck::Remind(text) => assert!(text.ends_with("It returned:\na.txt\nb.txt")),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(calls.check(&ls), CallCheck::Stop(why) if why.contains("5 times")));
    }

    #[test]
    fn a_different_call_in_between_resets_the_count() {
        let mut calls = Calls::default();
        for _ in 0..10 {
            assert_eq!(calls.check(&call("ls")), CallCheck::Run);
            calls.ran("x");
            assert_eq!(calls.check(&call("ls -a")), CallCheck::Run);
            calls.ran("y");
        }
    }
}
