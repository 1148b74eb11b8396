//! Sessions as a user sees them: the listing (`nib sessions`, the resume picker) and
//! undoing file changes (`nib undo`). Reads journals through `journal.rs`.

use crate::journal::{self, Entry, Journal, Record, Totals};
use crate::model::Usage;
use crate::tools::change::{Change, State};
use crate::tools::disk::{self, Links};
use serde::Serialize;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::SystemTime;

/// How much of a journal's start a listing reads: the meta record and first prompt.
const HEAD_BYTES: u64 = 16 * 1024;
/// How much of its end: the last `end` record with the session totals.
const TAIL_BYTES: u64 = 8 * 1024;

/// One line of `nib sessions`.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub id: String,
    pub cwd: PathBuf,
    pub model: String,
    pub provider: String,
    pub started: String,
    /// Seconds since the journal was last written.
    pub age_secs: u64,
    pub first_prompt: String,
    pub turns: u32,
    pub cost_usd: f64,
    pub usage: Usage,
    #[serde(skip)]
    pub path: PathBuf,
    /// When the journal was last written, for ordering (finer than `age_secs`).
    #[serde(skip)]
    pub modified: Option<SystemTime>,
}

/// Summaries of the sessions of `cwd` (or all), newest first.
pub fn list(root: &Path, cwd: Option<&Path>) -> Vec<Summary> {
    let files = match cwd {
        Some(cwd) => journal::files_for(root, cwd),
        None => journal::read_dirs(root)
            .iter()
            .flat_map(|d| journal::read_dirs_files(d))
            .collect(),
    };
    let mut out: Vec<Summary> = files.iter().filter_map(|p| summarize(p)).collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.modified));
    out
}

/// Reads only a journal's head and tail.
fn summarize(path: &Path) -> Option<Summary> {
    let mut file = File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    let modified = meta.modified().ok();
    let age_secs = modified
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .map_or(0, |d| d.as_secs());
    let mut head = BufReader::new((&mut file).take(HEAD_BYTES));
    let mut first = String::new();
    head.read_line(&mut first).ok()?;
    let Record::Meta(m) = serde_json::from_str::<Entry>(&first).ok()?.record else {
        return None;
    };
    let first_prompt = head
        .lines()
        .map_while(Result::ok)
        .find_map(|l| match serde_json::from_str::<Entry>(&l).ok()?.record {
            Record::User { text } => Some(text),
            _ => None,
        })
        .unwrap_or_default();
    let totals = last_totals(&mut file, meta.len()).unwrap_or_default();
    Some(Summary {
        id: m.id,
        cwd: m.cwd,
        model: m.model,
        provider: m.provider,
        started: m.started,
        age_secs,
        first_prompt,
        turns: totals.turns,
        cost_usd: totals.cost_usd,
        usage: totals.usage,
        path: path.to_path_buf(),
        modified,
    })
}

/// The totals of the last `end` record, from the journal's tail.
fn last_totals(file: &mut File, len: u64) -> Option<Totals> {
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut tail = Vec::new();
    file.take(TAIL_BYTES).read_to_end(&mut tail).ok()?;
    let mut lines = tail.split(|b| *b == b'\n').rev();
    lines.find_map(|line| serde_json::from_slice::<Entry>(line).ok()?.record.totals())
}

/// One line for people: id prefix, age, turns, model, first prompt (not sanitised).
pub fn row(s: &Summary) -> String {
    let id: String = s.id.chars().take(8).collect();
    let model: String = s.model.chars().take(16).collect();
    let first_line = s.first_prompt.lines().next().unwrap_or("");
    let prompt: String = first_line.chars().take(60).collect();
    let (age, turns) = (age(s.age_secs), s.turns);
    format!("{id}  {age:>4}  {turns:>3} turns  {model:<16}  {prompt}")
}

/// "3m", "2h", "5d": how long ago.
pub fn age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// What `nib undo` did, or why it did not.
#[derive(Debug, PartialEq)]
pub enum Undone {
    Restored(PathBuf),
    Deleted(PathBuf),
}

/// Reverts the last `count` file changes of the session in `path`, newest first, if it
/// was started in `cwd`. A file that changed since nib wrote it is refused and stops
/// the undo there.
pub fn undo(path: &Path, cwd: &Path, count: usize) -> Result<Vec<Undone>, String> {
    let meta = journal::load(path).map_err(|e| e.to_string())?.meta;
    if meta.cwd != cwd {
        return Err(format!(
            "session {} was started in {}, not here; run nib undo there",
            meta.id,
            meta.cwd.display()
        ));
    }
    let mut journal = Journal::reopen(path, &meta.id).map_err(|e| e.to_string())?;
    undo_in(&mut journal, count)
}

/// `undo` on a journal this process has open (the REPL's `/undo`). Each file is put back
/// atomically (`disk::save`); its `undo` record is journaled once it is back. A change
/// that never took effect (its write failed, or nib died first) is passed over.
pub fn undo_in(journal: &mut Journal, count: usize) -> Result<Vec<Undone>, String> {
    let loaded = journal::load(&journal.path).map_err(|e| e.to_string())?;
    let changes = changes(&loaded.entries);
    if changes.is_empty() {
        return Err("nothing to undo: this session changed no files (or all were undone)".into());
    }
    let never = AtomicBool::new(false); // undo reads are not cancelled
    let mut done = Vec::new();
    for (id, change) in changes.iter().rev() {
        if done.len() == count {
            break;
        }
        let shown = change.path.display();
        let now = disk::read_capped(&change.path, &never)
            .map_err(|e| format!("cannot read {shown}: {e}; not undone"))?;
        let what = match change.state(now.as_deref()) {
            State::Before => None,
            State::After => Some(restore(change, now.as_deref().unwrap_or_default())?),
            State::Other => {
                let msg =
                    format!("{shown} changed since nib wrote it; not undone (nor anything older)");
                return if done.is_empty() { Err(msg) } else { Ok(done) };
            }
        };
        let undo = Record::Undo {
            id: id.clone(),
            path: change.path.clone(),
        };
        journal.append(undo).map_err(|e| e.to_string())?;
        done.extend(what);
    }
    journal.sync().map_err(|e| e.to_string())?;
    Ok(done)
}

/// The session's file changes not yet undone, oldest first: `change` records, and the
/// whole copies in `tool_result` records of journals written before format 2.
fn changes(entries: &[Entry]) -> Vec<(String, Change)> {
    let undone: Vec<&str> = entries
        .iter()
        .filter_map(|e| match &e.record {
            Record::Undo { id, .. } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    entries
        .iter()
        .filter_map(|e| match &e.record {
            Record::Change { id, change } => Some((id, change.clone())),
            Record::ToolResult {
                id,
                change: Some(old),
                ..
            } => {
                let before = old.before.as_deref();
                Some((
                    id,
                    Change::new(old.path.clone(), before, &old.after, Vec::new()),
                ))
            }
            _ => None,
        })
        .filter(|(id, _)| !undone.contains(&id.as_str()))
        .map(|(id, change)| (id.clone(), change))
        .collect()
}

/// Puts back what `change` replaced, given the file's content `now`; a file the change
/// created is removed, with the directories it created when they are empty.
fn restore(change: &Change, now: &[u8]) -> Result<Undone, String> {
    let path = change.path.display();
    let fail = |e: &dyn std::fmt::Display| {
        format!("cannot restore {path}: {e}; it is left as nib wrote it")
    };
    match change.undone(now) {
        Some(Ok(before)) => {
            disk::save(&change.path, &before, Links::InPlace).map_err(|e| fail(&e))?;
            Ok(Undone::Restored(change.path.clone()))
        }
        Some(Err(e)) => Err(fail(&e)),
        None => {
            std::fs::remove_file(&change.path).map_err(|e| fail(&e))?;
            for dir in change.made_dirs.iter().rev() {
                if std::fs::remove_dir(dir).is_err() {
                    break; // not empty: something else lives there now
                }
            }
            Ok(Undone::Deleted(change.path.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    #[test]
    fn a_row_is_id_prefix_age_turns_model_and_first_prompt_line() {
        let summary = Summary {
            id: "0123456789abcdef".into(),
            cwd: PathBuf::from("/w"),
            model: "a-model-name-longer-than-sixteen".into(),
            provider: "openai".into(),
            started: String::new(),
            age_secs: 7200,
            first_prompt: format!("{}\nsecond line", "p".repeat(70)),
            turns: 3,
            cost_usd: 0.0,
            usage: Usage::default(),
            path: PathBuf::new(),
            modified: None,
        };
        let expected = format!(
            "01234567    2h    3 turns  a-model-name-lon  {}",
            "p".repeat(60)
        );
        assert_eq!(row(&summary), expected);
        let short = Summary {
            model: "m".into(),
            first_prompt: "fix it".into(),
            ..summary
        };
        assert_eq!(
            row(&short),
            "01234567    2h    3 turns  m                 fix it"
        );
    }

    #[test]
    fn ages() {
        let check = |secs: u64, expected: &str| assert_eq!(age(secs), expected, "{secs}");
        check(0, "0s");
        check(59, "59s");
        check(60, "1m");
        check(3599, "59m");
        check(7200, "2h");
        check(3 * 86_400 + 5, "3d");
    }

    #[test]
    fn a_listing_reads_the_first_prompt_and_the_last_totals() {
        let tmp = TempDir::new("sessions");
        let root = tmp.path().to_path_buf();
        let cwd = Path::new("/work/project");
        let mut j = Journal::create(&root, crate::testing::meta("s1", cwd)).unwrap();
        let end = |turns: u32| Record::End {
            subtype: "success".into(),
            turns: 1,
            usage: Usage::default(),
            cost_usd: 0.5,
            session_turns: turns,
        };
        j.append(Record::User {
            text: "first".into(),
        })
        .unwrap();
        j.append(end(1)).unwrap();
        // A long middle the listing must not need.
        for _ in 0..200 {
            let text = "x".repeat(1000);
            j.append(Record::User { text }).unwrap();
        }
        j.append(end(7)).unwrap();
        drop(j);
        let list = list(&root, Some(cwd));
        assert_eq!(list.len(), 1);
        assert_eq!((list[0].first_prompt.as_str(), list[0].turns), ("first", 7));
        assert!(super::list(&root, Some(Path::new("/elsewhere"))).is_empty());
    }

    #[test]
    fn undo_acts_only_in_the_directory_of_the_session() {
        let tmp = TempDir::new("undo-cwd");
        let root = tmp.path().to_path_buf();
        let cwd = tmp.join("proj.v2");
        let file = tmp.put("proj.v2/a.txt", "after");
        let mut j = Journal::create(&root, crate::testing::meta("s1", &cwd)).unwrap();
        j.append(Record::ToolResult {
            id: "c1".into(),
            name: "write".into(),
            content: "ok".into(),
            is_error: false,
            change: Some(crate::tools::FileChange {
                path: file.clone(),
                before: Some("before".into()),
                after: "after".into(),
            }),
        })
        .unwrap();
        drop(j);
        let path = crate::testing::latest_for(&root, &cwd).unwrap();
        let elsewhere = undo(&path, &tmp.join("proj_v2"), 1).unwrap_err();
        assert!(elsewhere.contains("was started in"), "{elsewhere}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "after");
        assert_eq!(
            undo(&path, &cwd, 1),
            Ok(vec![Undone::Restored(file.clone())])
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "before");
    }
}
