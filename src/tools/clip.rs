//! The 12 KB cap on what a tool shows the model: head + tail, never split inside a
//! UTF-8 character, with a marker that gives the original size. Also the bounded
//! `Capture` a running command writes into, and the sanitising that keeps binary
//! output from breaking JSON or a terminal (invalid UTF-8 and control characters other
//! than `\n` and `\t` become U+FFFD; `\r\n` becomes `\n`, a lone `\r` a line break).

use std::collections::VecDeque;

/// Most bytes of tool output the model ever sees (12 KB, as README promises).
pub const LIMIT: usize = 12_288;

/// A tool result takes at most this share of the context window (percent, at four
/// bytes a token): 4 KB on an 8k window, the whole 12 KB from a 24k window up. Digits
/// can be a token a byte, so compaction still cuts the latest result when it must.
const WINDOW_SHARE_PERCENT: u64 = 12;
/// No window makes a result smaller than this: a page of output is always worth it.
const MIN_LIMIT: usize = 1024;

/// Bytes a `Capture` keeps from the start of the output: half the limit, so the head
/// the model sees is never starved by a long tail.
pub const CAPTURE_HEAD: usize = LIMIT / 2;

/// Bytes a `Capture` keeps from the end of the output: the other half (errors and exit
/// summaries are printed last).
pub const CAPTURE_TAIL: usize = LIMIT / 2;

/// Longest UTF-8 encoding of one character: a cut lands at most this far inside one.
const MAX_CHAR_LEN: usize = 4;

/// Shown for invalid UTF-8 and for control characters.
const REPLACEMENT: &str = "\u{FFFD}";

/// `bytes` as the model sees it: sanitised, and if too long, head + marker + tail,
/// at most `LIMIT` bytes in all.
pub fn clip(bytes: &[u8]) -> String {
    clip_with("", bytes)
}

/// Like `clip`, with `prefix` (e.g. a status line) kept whole at the start and counted
/// in the limit.
pub fn clip_with(prefix: &str, bytes: &[u8]) -> String {
    let (whole, used) = take_front(bytes, LIMIT.saturating_sub(prefix.len()));
    if used == bytes.len() {
        return format!("{prefix}{whole}");
    }
    let total = bytes.len() as u64;
    let room = room(prefix, total);
    let (head, head_used) = take_front(bytes, room / 2);
    let (tail, tail_used) = take_back(&bytes[head_used..], room - head.len());
    let omitted = (bytes.len() - head_used - tail_used) as u64;
    join(prefix, &head, &tail, omitted, total)
}

/// The cap on a tool result for a context window of `tokens`: `min(LIMIT, a share of
/// the window)`.
pub fn limit_for_window(tokens: u64) -> usize {
    let share = tokens.saturating_mul(4 * WINDOW_SHARE_PERCENT) / 100;
    usize::try_from(share)
        .unwrap_or(LIMIT)
        .clamp(MIN_LIMIT, LIMIT)
}

/// A result (already sanitised, maybe already clipped) cut to at most `max` bytes, in
/// the same head + marker + tail shape; an earlier marker's total is kept.
pub fn shrink(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let (head, tail, total) = match find_marker(text) {
        Some((start, end, total)) => (&text[..start], &text[end..], total),
        None => (text, "", text.len() as u64),
    };
    let room = max.saturating_sub(marker(total, total).len() + 2);
    let (head_text, _) = take_front(head.as_bytes(), room / 2);
    let tail_source = if tail.is_empty() {
        &head[head_text.len()..]
    } else {
        tail
    };
    let (tail_text, _) = take_back(tail_source.as_bytes(), room - head_text.len());
    let omitted = total.saturating_sub((head_text.len() + tail_text.len()) as u64);
    join("", &head_text, &tail_text, omitted, total)
}

/// Where a marker line is in `text` (its start, the end of its newline) and the
/// total it gives.
fn find_marker(text: &str) -> Option<(usize, usize, u64)> {
    let start = text
        .match_indices("[… ")
        .map(|(i, _)| i)
        .find(|&i| i == 0 || text.as_bytes()[i - 1] == b'\n')?;
    let line_end = text[start..].find('\n').map_or(text.len(), |n| start + n);
    let total = text[start..line_end].split(' ').nth(5)?.parse().ok()?;
    Some((start, (line_end + 1).min(text.len()), total))
}

/// Every byte sanitised, nothing cut: for callers that bound the size themselves.
pub fn sanitize(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    decode(bytes, |_, text| {
        out.push_str(text);
        true
    });
    out
}

/// The longest prefix of `bytes` of at most `max` bytes that does not end inside a
/// UTF-8 character.
pub fn cut(bytes: &[u8], max: usize) -> &[u8] {
    if bytes.len() <= max {
        return bytes;
    }
    whole_chars(&bytes[..max])
}

/// What a command printed, in bounded memory however much that is: the first
/// `CAPTURE_HEAD` bytes, the last `CAPTURE_TAIL` bytes, and the total count.
#[derive(Debug, Default)]
pub struct Capture {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: u64,
    /// Line breaks pushed so far, and whether the last byte was one.
    newlines: u64,
    ends_in_newline: bool,
}

impl Capture {
    pub fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        self.newlines += newlines(bytes);
        if let Some(&last) = bytes.last() {
            self.ends_in_newline = last == b'\n';
        }
        let to_head = (CAPTURE_HEAD - self.head.len()).min(bytes.len());
        self.head.extend_from_slice(&bytes[..to_head]);
        bytes = &bytes[to_head..];
        if bytes.len() > CAPTURE_TAIL {
            bytes = &bytes[bytes.len() - CAPTURE_TAIL..];
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(CAPTURE_TAIL);
        self.tail.drain(..overflow);
        self.tail.extend(bytes);
    }

    /// Bytes pushed so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Lines pushed so far (a last line without a line break counts), however many
    /// were kept.
    pub fn lines(&self) -> u64 {
        self.newlines + u64::from(self.total > 0 && !self.ends_in_newline)
    }

    /// The capture as the model sees it, after `prefix`; at most `LIMIT` bytes.
    pub fn render(&self, prefix: &str) -> String {
        let (a, b) = self.tail.as_slices();
        let mut tail = Vec::with_capacity(self.tail.len());
        tail.extend_from_slice(a);
        tail.extend_from_slice(b);
        if self.total == (self.head.len() + tail.len()) as u64 {
            let mut whole = self.head.clone();
            whole.extend_from_slice(&tail);
            return clip_with(prefix, &whole);
        }
        let room = room(prefix, self.total);
        let (head, head_used) = take_front(whole_chars(&self.head), room / 2);
        let (tail_text, tail_used) = take_back(&tail, room - head.len());
        let omitted = self.total - (head_used + tail_used) as u64;
        join(prefix, &head, &tail_text, omitted, self.total)
    }
}

/// Line breaks in `bytes`, eight bytes at a time: a command may print gigabytes, and a
/// byte loop is slow in debug builds.
fn newlines(bytes: &[u8]) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const BREAKS: u64 = 0x0a0a_0a0a_0a0a_0a0a;
    let (words, rest) = bytes.as_chunks::<8>();
    let mut n = 0;
    for word in words {
        // A zero byte of `x` (a `\n` of the word) is the only one whose high bit stays clear.
        let x = u64::from_ne_bytes(*word) ^ BREAKS;
        let zeros = !(((x & LOW7) + LOW7) | x | LOW7);
        n += u64::from(zeros.count_ones());
    }
    n + rest.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Bytes left for head and tail once the prefix and the marker line are paid for.
fn room(prefix: &str, total: u64) -> usize {
    // The marker for `total` is at least as long as any real one; +2 for the newlines.
    LIMIT.saturating_sub(prefix.len() + marker(total, total).len() + 2)
}

fn marker(omitted: u64, total: u64) -> String {
    format!(
        "[… {omitted} bytes omitted of {total} …] (for the rest: grep, head, tail or sed -n; \
         read with an offset)"
    )
}

fn join(prefix: &str, head: &str, tail: &str, omitted: u64, total: u64) -> String {
    let mut out = String::with_capacity(LIMIT);
    out.push_str(prefix);
    out.push_str(head);
    if !head.is_empty() && !head.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&marker(omitted, total));
    out.push('\n');
    out.push_str(tail);
    out
}

/// The sanitised start of `bytes` that fits in `budget` bytes, and how many input
/// bytes it covers.
fn take_front(bytes: &[u8], budget: usize) -> (String, usize) {
    let mut out = String::new();
    let mut used = 0;
    decode(bytes, |len, text| {
        if out.len() + text.len() > budget {
            return false;
        }
        out.push_str(text);
        used += len;
        true
    });
    (out, used)
}

/// The sanitised end of `bytes` that fits in `budget` bytes, and how many input bytes
/// it covers. A window that starts inside a character skips that character's rest.
fn take_back(bytes: &[u8], budget: usize) -> (String, usize) {
    let start = bytes.len().saturating_sub(budget);
    let partial = bytes[start..]
        .iter()
        .take(MAX_CHAR_LEN - 1)
        .take_while(|&&b| is_continuation(b))
        .count();
    let window = &bytes[start + partial..];
    let mut text = String::new();
    // Where each unit starts: (input offset, output offset).
    let mut starts = Vec::new();
    let mut pos = 0;
    decode(window, |len, piece| {
        starts.push((pos, text.len()));
        pos += len;
        text.push_str(piece);
        true
    });
    match starts.iter().find(|&&(_, out)| text.len() - out <= budget) {
        Some(&(input, out)) => (text[out..].to_string(), window.len() - input),
        None => (String::new(), 0),
    }
}

/// Calls `each(input_len, text)` for every character of `bytes` as the model sees it,
/// until `each` returns false.
fn decode(bytes: &[u8], mut each: impl FnMut(usize, &str) -> bool) {
    let mut pos = 0;
    let mut buf = [0; MAX_CHAR_LEN];
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            pos += c.len_utf8();
            let text = match c {
                '\r' if bytes.get(pos) == Some(&b'\n') => "",
                '\r' => "\n",
                '\n' | '\t' => c.encode_utf8(&mut buf),
                c if c.is_control() => REPLACEMENT,
                c => c.encode_utf8(&mut buf),
            };
            if !each(c.len_utf8(), text) {
                return;
            }
        }
        let invalid = chunk.invalid();
        pos += invalid.len();
        if !invalid.is_empty() && !each(invalid.len(), REPLACEMENT) {
            return;
        }
    }
}

fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

/// `bytes` without a last character that was cut short.
pub fn whole_chars(bytes: &[u8]) -> &[u8] {
    let floor = bytes.len().saturating_sub(MAX_CHAR_LEN);
    let Some(start) = (floor..bytes.len())
        .rev()
        .find(|&i| !is_continuation(bytes[i]))
    else {
        return bytes;
    };
    let needed = match bytes[start] {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    };
    if start + needed > bytes.len() {
        &bytes[..start]
    } else {
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_counted_whatever_was_kept() {
        let texts: [&[u8]; 5] = [
            b"",
            b"a",
            b"a\n",
            b"\n\n\n",
            b"0123456789\n0123456\n\x0a\x8a\x0b",
        ];
        for text in texts {
            let want = text.iter().filter(|&&b| b == b'\n').count() as u64;
            assert_eq!(newlines(text), want, "{text:?}");
        }
        let mut capture = Capture::default();
        for _ in 0..10_000 {
            capture.push(b"line\n");
        }
        capture.push(b"last, unended");
        assert_eq!(capture.lines(), 10_001);
        assert!(capture.render("").len() <= LIMIT);
    }

    fn check(input: &[u8], expected: &str) {
        assert_eq!(clip(input), expected, "input {input:?}");
    }

    /// Invariants every clipped text must keep.
    fn assert_sane(out: &str) {
        assert!(out.len() <= LIMIT, "{} bytes", out.len());
        let bad = out
            .chars()
            .find(|&c| c.is_control() && c != '\n' && c != '\t');
        assert_eq!(bad, None, "control character left in output");
    }

    fn marker_in(out: &str) -> Option<(u64, u64)> {
        let line = out.lines().find(|l| l.starts_with("[… "))?;
        let words: Vec<&str> = line.split(' ').collect();
        Some((words[1].parse().ok()?, words[5].parse().ok()?))
    }

    #[test]
    fn short_text_is_kept_and_sanitised() {
        check(b"", "");
        check(b"hello\n", "hello\n");
        check("tab\tok é € 😀".as_bytes(), "tab\tok é € 😀");
        check(b"a\0b", "a\u{FFFD}b");
        check(b"\x1b[31mred", "\u{FFFD}[31mred");
        check(b"dos\r\nline\r\n", "dos\nline\n");
        check(b"10%\r20%", "10%\n20%");
        check(b"bad \xff byte", "bad \u{FFFD} byte");
        check(b"cut \xe2\x82", "cut \u{FFFD}");
        check(
            "c1 \u{9b} del \u{7f}".as_bytes(),
            "c1 \u{FFFD} del \u{FFFD}",
        );
    }

    #[test]
    fn exactly_limit_is_untouched() {
        let input = vec![b'a'; LIMIT];
        let out = clip(&input);
        assert_eq!(out.len(), LIMIT);
        assert_eq!(marker_in(&out), None);
    }

    #[test]
    fn one_over_limit_gets_head_tail_and_marker() {
        let mut input = vec![b'h'; LIMIT / 2];
        input.extend(vec![b't'; LIMIT / 2 + 1]);
        let out = clip(&input);
        assert_sane(&out);
        assert!(out.starts_with("hhhh"));
        assert!(out.ends_with("tttt"));
        let (omitted, total) = marker_in(&out).expect("marker");
        assert_eq!(total, LIMIT as u64 + 1);
        let kept = out.len() - out.lines().find(|l| l.starts_with("[… ")).unwrap().len() - 2;
        assert_eq!(omitted as usize + kept, LIMIT + 1);
    }

    #[test]
    fn multibyte_characters_straddling_the_cut_are_never_split() {
        for ch in ["é", "€", "😀"] {
            for shift in 0..4 {
                let mut input = "x".repeat(shift);
                input.push_str(&ch.repeat(2 * LIMIT / ch.len()));
                let out = clip(input.as_bytes());
                assert_sane(&out);
                assert!(!out.contains('\u{FFFD}'), "split {ch} at shift {shift}");
                assert!(out.ends_with(ch));
                assert_eq!(marker_in(&out).unwrap().1, input.len() as u64);
            }
        }
    }

    #[test]
    fn all_binary_input_is_bounded_and_harmless() {
        let input: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let out = clip(&input);
        assert_sane(&out);
        assert_eq!(marker_in(&out).unwrap().1, 100_000);
        // Short binary that expands threefold when replaced must still be clipped.
        let expanding = vec![0xffu8; LIMIT - 10];
        let out = clip(&expanding);
        assert_sane(&out);
        assert!(marker_in(&out).is_some());
    }

    #[test]
    fn prefix_is_kept_and_counted() {
        let out = clip_with("exit status: 1\n", &vec![b'z'; 3 * LIMIT]);
        assert_sane(&out);
        assert!(out.starts_with("exit status: 1\nzzz"));
        let out = clip_with("exit status: 0\n", &vec![b'z'; LIMIT - 15]);
        assert_eq!(out.len(), LIMIT);
        assert_eq!(marker_in(&out), None);
    }

    #[test]
    fn cut_stops_before_a_partial_character() {
        let text = "ab€".as_bytes();
        assert_eq!(cut(text, 10), text);
        assert_eq!(cut(text, 4), b"ab");
        assert_eq!(cut(text, 5), text);
        assert_eq!(cut(text, 2), b"ab");
    }

    #[test]
    fn small_capture_equals_clip_of_the_whole() {
        let mut capture = Capture::default();
        for part in ["a€".as_bytes(), &"€".as_bytes()[..1], &"€".as_bytes()[1..]] {
            capture.push(part);
        }
        assert_eq!(capture.render("p\n"), "p\na€€");
    }

    #[test]
    fn large_capture_stays_bounded_and_keeps_both_ends() {
        let mut capture = Capture::default();
        capture.push(b"first line\n");
        let chunk = "é-é\n".repeat(10_000);
        for _ in 0..100 {
            capture.push(chunk.as_bytes());
            assert!(capture.head.len() <= CAPTURE_HEAD);
            assert!(capture.tail.len() <= CAPTURE_TAIL);
        }
        capture.push(b"last line\n");
        let out = capture.render("exit status: 0\n");
        assert_sane(&out);
        assert!(out.starts_with("exit status: 0\nfirst line\n"));
        assert!(out.ends_with("é-é\nlast line\n"));
        assert!(!out.contains('\u{FFFD}'));
        let expected_total = 11 + 100 * chunk.len() as u64 + 10;
        assert_eq!(capture.total(), expected_total);
        assert_eq!(marker_in(&out).unwrap().1, expected_total);
    }

    #[test]
    fn capture_of_binary_is_bounded() {
        let mut capture = Capture::default();
        let noise: Vec<u8> = (0..65_536u32).map(|i| (i * 131 % 251) as u8).collect();
        for _ in 0..20 {
            capture.push(&noise);
        }
        let out = capture.render("exit status: 0\n");
        assert_sane(&out);
        assert_eq!(marker_in(&out).unwrap().1, 20 * 65_536);
    }

    #[test]
    fn the_cap_is_a_share_of_small_windows() {
        assert_eq!(limit_for_window(8192), 3932);
        assert_eq!(limit_for_window(2048), MIN_LIMIT);
        assert_eq!(limit_for_window(32_768), LIMIT);
        assert_eq!(limit_for_window(u64::MAX), LIMIT);
    }

    #[test]
    fn shrink_keeps_the_shape_and_the_first_total() {
        let digits: String = (1..5000).map(|i| format!("{i}\n")).collect();
        let clipped = clip(digits.as_bytes());
        for text in [digits.as_str(), clipped.as_str()] {
            let out = shrink(text, 2000);
            assert_sane(&out);
            assert!(out.len() <= 2000, "{}", out.len());
            assert!(out.starts_with("1\n2\n3\n"), "{out}");
            assert!(out.ends_with("4998\n4999\n"), "{out}");
            assert_eq!(out.matches("bytes omitted").count(), 1, "{out}");
            assert_eq!(marker_in(&out).unwrap().1, digits.len() as u64);
            assert!(out.contains("read with an offset"));
        }
        // Short enough: untouched.
        assert_eq!(shrink("abc", 10), "abc");
    }
}
