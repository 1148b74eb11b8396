//! A file change as the journal keeps it for undo: the file's stamp after the change and,
//! instead of a whole copy, only the bytes that differ from before — so a session that
//! edits a large file again and again stays as small as its edits. Undo checks that the
//! file still matches the stamp, then puts the old bytes back.

use super::disk::Stamp;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One `write` or `edit`, journaled before the file is touched.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub path: PathBuf,
    /// The file as the change leaves it.
    pub after: Stamp,
    /// What it held before; `None` when the change creates it.
    pub before: Option<Before>,
    /// Directories the change creates for the file, outermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub made_dirs: Vec<PathBuf>,
}

/// The old content, as a patch on the new: `after[at..at + len]` was `text`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Before {
    pub stamp: Stamp,
    pub at: usize,
    pub len: usize,
    pub text: String,
}

/// Where a file stands relative to a change.
#[derive(Debug, PartialEq, Eq)]
pub enum State {
    /// As the change left it: undo can go ahead.
    After,
    /// As it was before: the change never took effect, or was already reverted.
    Before,
    /// Something else changed it.
    Other,
}

impl Change {
    /// The change from `before` (`None`: no file) to `after`, both UTF-8 text.
    pub fn new(
        path: PathBuf,
        before: Option<&str>,
        after: &str,
        made_dirs: Vec<PathBuf>,
    ) -> Change {
        let before = before.map(|old| {
            let (at, old_end, new_end) = differing(old, after);
            Before {
                stamp: Stamp::of(old.as_bytes()),
                at,
                len: new_end - at,
                text: old[at..old_end].to_string(),
            }
        });
        Change {
            path,
            after: Stamp::of(after.as_bytes()),
            before,
            made_dirs,
        }
    }

    /// Where `now` (the file's content, `None` when missing) stands.
    pub fn state(&self, now: Option<&[u8]>) -> State {
        let now = now.map(Stamp::of);
        match (&now, &self.before) {
            (Some(stamp), _) if *stamp == self.after => State::After,
            (None, None) => State::Before,
            (Some(stamp), Some(before)) if *stamp == before.stamp => State::Before,
            _ => State::Other,
        }
    }

    /// The content before the change, rebuilt from `now` (which is in the `After`
    /// state); `None` when the change created the file. An error means the journal
    /// record is damaged.
    pub fn undone(&self, now: &[u8]) -> Option<Result<Vec<u8>, String>> {
        let before = self.before.as_ref()?;
        let end = before.at.checked_add(before.len);
        let parts = end.and_then(|end| Some((now.get(..before.at)?, now.get(end..)?)));
        let Some((head, tail)) = parts else {
            return Some(Err("the journal's record of it is damaged".into()));
        };
        Some(Ok([head, before.text.as_bytes(), tail].concat()))
    }
}

/// The byte range where `old` and `new` differ: `(start, end in old, end in new)`,
/// on character boundaries of both.
fn differing(old: &str, new: &str) -> (usize, usize, usize) {
    let (a, b) = (old.as_bytes(), new.as_bytes());
    let mut start = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    while !(old.is_char_boundary(start) && new.is_char_boundary(start)) {
        start -= 1;
    }
    let room = a.len().min(b.len()) - start;
    let mut tail = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(room)
        .take_while(|(x, y)| x == y)
        .count();
    while !(old.is_char_boundary(a.len() - tail) && new.is_char_boundary(b.len() - tail)) {
        tail -= 1;
    }
    (start, a.len() - tail, b.len() - tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(old: &str, new: &str, expected_text: &str) {
        let change = Change::new(PathBuf::from("f"), Some(old), new, Vec::new());
        let before = change.before.as_ref().unwrap();
        assert_eq!(before.text, expected_text, "{old:?} -> {new:?}");
        assert_eq!(change.state(Some(new.as_bytes())), State::After);
        assert_eq!(change.state(Some(old.as_bytes())), State::Before);
        assert_eq!(change.state(Some(b"third")), State::Other);
        let undone = change.undone(new.as_bytes()).unwrap().unwrap();
        assert_eq!(String::from_utf8(undone).unwrap(), old);
    }

    #[test]
    fn a_patch_keeps_only_what_differs_and_undoes_exactly() {
        check("a\nb\nc\n", "a\nB\nc\n", "b");
        check("same", "same and more", "");
        check("prefix gone", "gone", "prefix ");
        check("", "new", "");
        check("old", "", "old");
        check("aaaa", "aa", "aa");
        // Characters that share leading bytes are kept whole.
        check("café", "cafè", "é");
        check("ééé", "éè", "éé");
        let created = Change::new(PathBuf::from("f"), None, "x", Vec::new());
        assert_eq!(created.state(None), State::Before);
        assert_eq!(created.state(Some(b"x")), State::After);
        assert!(created.undone(b"x").is_none());
    }

    #[test]
    fn a_damaged_record_is_an_error_not_a_panic() {
        let mut change = Change::new(PathBuf::from("f"), Some("abc"), "abd", Vec::new());
        change.before.as_mut().unwrap().at = 99;
        assert!(change.undone(b"abd").unwrap().is_err());
    }
}
