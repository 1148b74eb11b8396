use super::screen::{MAX_LISTING_ROWS, layout, listing_rows};
use super::state::{History, Input};
use super::*;
use crate::testing::TempDir;
use Command::*;
use crossterm::event::{KeyCode, KeyModifiers};

/// Parses `text` with `|` marking the cursor.
fn input(marked: &str) -> Input {
    let cursor = marked
        .chars()
        .position(|c| c == '|')
        .expect("cursor marker");
    Input {
        chars: marked.chars().filter(|&c| c != '|').collect(),
        cursor,
        killed: String::new(),
    }
}

fn marked(input: &Input) -> String {
    let mut s: String = input.chars[..input.cursor].iter().collect();
    s.push('|');
    s.extend(&input.chars[input.cursor..]);
    s
}

fn run(history: &[&str], start: &str, commands: Vec<Command>) -> (State, Vec<Step>) {
    let mut state = State::new(history.iter().map(|s| s.to_string()).collect());
    state.input = input(start);
    let steps = commands.into_iter().map(|c| state.apply(c)).collect();
    (state, steps)
}

fn check(start: &str, commands: Vec<Command>, expected: &str) {
    let (state, _) = run(&[], start, commands.clone());
    assert_eq!(
        marked(&state.input),
        expected,
        "{start:?} after {commands:?}"
    );
}

#[test]
fn insert_and_move() {
    check("|", vec![Insert("héllo".into())], "héllo|");
    check("ab|cd", vec![Insert("中".into())], "ab中|cd");
    check("abc|", vec![Left, Left, Insert("X".into())], "aX|bc");
    check("|abc", vec![Left, Right, Right], "ab|c");
    check("abc|", vec![Right], "abc|");
    check("ab|c", vec![LineStart], "|abc");
    check("a|bc", vec![LineEnd], "abc|");
}

#[test]
fn word_jumps() {
    check("hello big_world.rs|", vec![WordLeft], "hello big_world.|rs");
    check(
        "hello big_world.rs|",
        vec![WordLeft, WordLeft],
        "hello |big_world.rs",
    );
    check("|  foo-bar baz", vec![WordRight], "  foo|-bar baz");
    check(
        "|  foo-bar baz",
        vec![WordRight, WordRight],
        "  foo-bar| baz",
    );
    check("foo  |", vec![WordLeft], "|foo  ");
}

#[test]
fn deleting() {
    check("ab|c", vec![Backspace], "a|c");
    check("|abc", vec![Backspace], "|abc");
    check("ab|c", vec![Delete], "ab|");
    check("abc|", vec![Delete], "abc|");
    check("ab|c", vec![EofOrDelete], "ab|");
}

#[test]
fn kill_and_yank() {
    check("one two|", vec![KillToStart], "|");
    check("one t|wo", vec![KillToEnd], "one t|");
    check("cat src/main.rs|", vec![KillBigWordBack], "cat |");
    check("cat src/main.rs|", vec![KillWordBack], "cat src/main.|");
    check("|foo bar", vec![KillWordForward], "| bar");
    check(
        "one two|",
        vec![KillBigWordBack, LineStart, Yank],
        "two|one ",
    );
    check("one\ntw|o\nthree", vec![KillToStart], "one\n|o\nthree");
    check("one|\ntwo", vec![KillToEnd], "one|two");
    check("one\nt|wo", vec![KillToEnd], "one\nt|");
}

#[test]
fn multi_line_cursor_movement() {
    check("one\ntwo|", vec![Up], "one|\ntwo");
    check("longer\nt|w", vec![Up], "l|onger\ntw");
    check("ab\nlong|er", vec![Up], "ab|\nlonger");
    check("a|b\nc", vec![Down], "ab\nc|");
    check("one\n|two", vec![LineEnd], "one\ntwo|");
    check("one\ntw|o", vec![LineStart], "one\n|two");
    check("x|", vec![Newline, Insert("y".into())], "x\ny|");
    check("one\ntwo|", vec![Up, Up], "one|\ntwo");
}

#[test]
fn trailing_backslash_continues_the_line() {
    let (state, steps) = run(&[], "ls \\|", vec![Enter]);
    assert_eq!(steps, vec![Step::Continue]);
    assert_eq!(marked(&state.input), "ls \n|");
    let (_, steps) = run(&[], "a\\b|", vec![Enter]);
    assert_eq!(steps, vec![Step::Done(ReadResult::Line("a\\b".into()))]);
}

#[test]
fn results() {
    let (_, steps) = run(&[], "|", vec![EofOrDelete]);
    assert_eq!(steps, vec![Step::Done(ReadResult::Eof)]);
    let (_, steps) = run(&[], "half|", vec![Interrupt]);
    assert_eq!(steps, vec![Step::Done(ReadResult::Interrupted)]);
    let (_, steps) = run(&[], "one\n|two", vec![Enter]);
    assert_eq!(steps, vec![Step::Done(ReadResult::Line("one\ntwo".into()))]);
}

#[test]
fn history_keeps_the_line_being_typed() {
    let history = ["first", "two\nlines", "third"];
    let table: Vec<(Vec<Command>, &str)> = vec![
        (vec![Up], "third|"),
        (vec![Up, Up], "two|\nlines"),
        (vec![Up, Up, Up], "first|"),
        (vec![Up, Up, Up, Up], "first|"),
        (vec![Up, Up, Down], "two\nlin|es"),
        (vec![Up, Up, Down, Down], "third|"),
        (vec![Up, Down], "draft|"),
        (vec![Down], "dra|ft"),
    ];
    for (commands, expected) in table {
        let (state, _) = run(&history, "dra|ft", commands.clone());
        assert_eq!(marked(&state.input), expected, "after {commands:?}");
    }
}

#[test]
fn history_push_skips_blanks_and_repeats() {
    let mut h = History::new(vec!["a".into()]);
    assert!(!h.push("a"));
    assert!(!h.push("  "));
    assert!(h.push("b"));
    assert_eq!(h.entries, vec!["a", "b"]);
}

#[test]
fn completion() {
    fn check(start: &str, candidates: &[&str], expected: &str, listed: usize) {
        let mut input = input(start);
        let candidates: Vec<String> = candidates.iter().map(|s| s.to_string()).collect();
        let listing = input.complete(&candidates);
        assert_eq!(marked(&input), expected, "{start:?} with {candidates:?}");
        assert_eq!(listing.len(), listed);
    }
    check("/he|", &["/help"], "/help|", 0);
    check("read src/ma| x", &["src/main.rs"], "read src/main.rs| x", 0);
    check("/m|", &["/model", "/models"], "/model|", 2);
    check("/m|", &["/model", "/mode"], "/mode|", 2);
    check("x|", &["apple", "banana"], "x|", 2);
    check("x|", &[], "x|", 0);
    check("é|", &["éa", "éb"], "é|", 2);
}

#[test]
fn completion_gets_byte_cursor() {
    assert_eq!(input("中|x").byte_cursor(), 3);
}

#[test]
fn keys_decode() {
    fn check(code: KeyCode, modifiers: KeyModifiers, expected: Command) {
        assert_eq!(
            decode(KeyEvent::new(code, modifiers)),
            expected,
            "{code:?} {modifiers:?}"
        );
    }
    let none = KeyModifiers::NONE;
    let ctrl = KeyModifiers::CONTROL;
    let alt = KeyModifiers::ALT;
    check(KeyCode::Char('x'), none, Insert("x".into()));
    check(KeyCode::Char('X'), KeyModifiers::SHIFT, Insert("X".into()));
    check(KeyCode::Char('a'), ctrl, LineStart);
    check(KeyCode::Char('c'), ctrl, Interrupt);
    check(KeyCode::Char('j'), ctrl, Newline);
    check(KeyCode::Char('b'), alt, WordLeft);
    check(KeyCode::Char('f'), alt, WordRight);
    check(KeyCode::Left, ctrl, WordLeft);
    check(KeyCode::Right, ctrl, WordRight);
    check(KeyCode::Enter, none, Enter);
    check(KeyCode::Enter, alt, Newline);
    check(KeyCode::Backspace, alt, KillWordBack);
    check(KeyCode::Tab, none, Complete);
    check(KeyCode::Char('q'), alt, Nothing);
}

#[test]
fn paste_line_breaks() {
    assert_eq!(normalize_paste("a\r\nb\rc\n"), "a\nb\nc\n");
}

#[test]
fn layout_wraps_like_a_terminal() {
    fn check(marked_text: &str, width: usize, cursor: (usize, usize), end: (usize, usize)) {
        let inp = input(marked_text);
        let lay = layout("> ", &inp.chars, inp.cursor, width);
        let got = ((lay.cursor.row, lay.cursor.col), (lay.end.row, lay.end.col));
        assert_eq!(got, (cursor, end), "{marked_text:?} at width {width}");
    }
    check("abc|", 10, (0, 5), (0, 5));
    check("a|bc", 10, (0, 3), (0, 5));
    // Exactly full row: the cursor shows on the next row.
    check("abcdefgh|", 10, (1, 0), (1, 0));
    check("abcdefghi|", 10, (1, 1), (1, 1));
    check("abc\nde|", 10, (1, 4), (1, 4));
    // A wide char that does not fit moves whole to the next row.
    check("abcdefg中|", 10, (1, 2), (1, 2));
    check("abcdefg|中", 10, (1, 0), (1, 2));
    check("a\tb|", 10, (0, 8), (0, 8));
    // A pasted escape is drawn as `^[`, two columns.
    check("a\x1b|", 10, (0, 5), (0, 5));
}

#[test]
fn layout_reports_pending_wrap() {
    let inp = input("abcdefgh|");
    assert!(layout("> ", &inp.chars, inp.cursor, 10).end_wrapped);
    let inp = input("abcdefg|");
    assert!(!layout("> ", &inp.chars, inp.cursor, 10).end_wrapped);
}

#[test]
fn listing_fits_the_width() {
    let names: Vec<String> = ["/help", "/model", "/clear"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(listing_rows(&names, 80), vec!["/help   /model  /clear"]);
    assert_eq!(listing_rows(&names, 18), vec!["/help   /model", "/clear"]);
    let many: Vec<String> = (0..40).map(|i| format!("item{i:02}")).collect();
    let rows = listing_rows(&many, 16);
    assert_eq!(rows.len(), MAX_LISTING_ROWS);
    assert_eq!(rows.last().unwrap(), "… and 33 more");
}

#[test]
fn history_file_round_trip() {
    let dir = TempDir::new("history");
    let path = dir.join("sub").join("history");
    assert_eq!(load_history(&path).unwrap(), Vec::<String>::new());
    append_history(&path, "one").unwrap();
    append_history(&path, "two\nlines \"quoted\"").unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 2, "one line per entry: {text:?}");
    fs::write(&path, format!("{text}hand written\n")).unwrap();
    let loaded = load_history(&path).unwrap();
    assert_eq!(loaded, vec!["one", "two\nlines \"quoted\"", "hand written"]);
}

#[test]
fn history_file_keeps_the_newest_and_compacts() {
    let dir = TempDir::new("history-big");
    let path = dir.join("history");
    let text: String = (0..HISTORY_COMPACT_AT)
        .map(|i| format!("\"e{i}\"\n"))
        .collect();
    fs::write(&path, text).unwrap();
    let loaded = load_history(&path).unwrap();
    assert_eq!(loaded.len(), HISTORY_LIMIT);
    assert_eq!(
        loaded[0],
        format!("e{}", HISTORY_COMPACT_AT - HISTORY_LIMIT)
    );
    let lines = fs::read_to_string(&path).unwrap().lines().count();
    assert_eq!(lines, HISTORY_LIMIT);
}
