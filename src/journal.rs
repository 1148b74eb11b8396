//! Sessions on disk: an append-only JSONL journal per session, loading it back for
//! resume, and finding sessions by directory or id prefix.
//!
//! Layout: `<data_dir>/nib/sessions/<cwd-slug>-<hash>/<id>.jsonl`, directories 0700, files
//! 0600. The first record is `meta`; the rest are provider-neutral (`user`,
//! `assistant`, `tool_result`, `decision`, `change`, `seen`, `compacted`, `end`), so a session
//! continues on any provider. Each record is one `write` of one line; a torn last line (a
//! crash mid-write) is skipped on load and the next append starts on a fresh line; a
//! record that could not be written whole (a full disk) is cut off again.

use crate::model::{Block, Message, Opaque, StopReason, ToolCall, Usage, stable_hash};
use crate::secrets::Redactor;
use crate::tools::FileChange;
use crate::tools::change::Change;
use crate::tools::disk::Stamp;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Journal format version, in every meta record. 2: file changes are `change` records
/// (a patch, journaled before the file is touched), no longer copies in `tool_result`.
pub const FORMAT: u32 = 2;
/// Longest id `--session-id` takes: a UUID is 36; room for other schemes, short of
/// any file-name limit.
const MAX_ID: usize = 128;
/// Characters of a directory's path kept in its sessions folder name: readable, and
/// short of the 255-byte file-name limit with the hash after it.
const MAX_SLUG: usize = 200;
/// The most of a journal read to find its meta record: one line, a few hundred bytes.
const MAX_META: u64 = 64 * 1024;

/// The first record of every journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub id: String,
    pub cwd: PathBuf,
    pub model: String,
    pub provider: String,
    pub nib: String,
    pub started: String,
    #[serde(default)]
    pub format: u32,
    /// The session this one was forked from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forked_from: Option<String>,
}

/// One line of the journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    Meta(Meta),
    User {
        text: String,
    },
    Assistant {
        text: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        calls: Vec<ToolCall>,
        stop: StopReason,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
        model: String,
        /// The reply was cut short by the user.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        interrupted: bool,
        /// Provider data that goes back with this reply (reasoning, signatures), as
        /// received: never redacted, since one changed byte voids a signature.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        opaque: Vec<Opaque>,
    },
    ToolResult {
        id: String,
        name: String,
        content: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        change: Option<FileChange>,
    },
    /// A permission decision: who decided what about which call.
    Decision {
        id: String,
        tool: String,
        allowed: bool,
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule: Option<String>,
    },
    /// A hook ran (Claude Code's `hooks` settings): its event, command and how it ended.
    Hook {
        event: String,
        command: String,
        /// `None` when it did not start, timed out or was killed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<i32>,
        ms: u64,
    },
    /// A file change tool call `id` is about to make, journaled (and synced) before the
    /// file is touched: undo's copy of what was there.
    Change {
        id: String,
        change: Change,
    },
    /// The model read or wrote `path`, which then held `stamp`.
    Seen {
        path: PathBuf,
        stamp: Stamp,
    },
    /// A `nib undo` that reverted the file change of tool call `id`.
    Undo {
        id: String,
        path: PathBuf,
    },
    /// The conversation before this point was compacted: `summary` replaced the first
    /// `replaced` messages, `kept` follows it verbatim. Resume starts from here; the
    /// records before it stay on disk.
    Compacted {
        summary: String,
        replaced: usize,
        kept: Vec<Message>,
    },
    /// The end of one task. `usage`, `cost_usd` and `session_turns` are totals for the
    /// whole session so far, so a listing reads only the journal's tail.
    End {
        subtype: String,
        turns: u32,
        usage: Usage,
        cost_usd: f64,
        #[serde(default)]
        session_turns: u32,
    },
}

impl Record {
    /// The session's totals, when this is the `End` record of a task.
    pub fn totals(&self) -> Option<Totals> {
        match self {
            Record::End {
                usage,
                cost_usd,
                session_turns,
                ..
            } => Some(Totals {
                usage: *usage,
                cost_usd: *cost_usd,
                turns: *session_turns,
            }),
            _ => None,
        }
    }
}

/// Tokens, dollars and model replies over the whole session, as its last `End`
/// record holds them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Totals {
    pub usage: Usage,
    pub cost_usd: f64,
    pub turns: u32,
}

/// A record with its time (milliseconds since the epoch).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub ts: u64,
    #[serde(flatten)]
    pub record: Record,
}

/// An open journal, appending.
pub struct Journal {
    pub path: PathBuf,
    file: File,
    _lock: Lock,
}

/// Errors from the journal: always with the path, always saying what to do.
#[derive(Debug)]
pub enum JournalError {
    Io {
        path: PathBuf,
        err: io::Error,
    },
    NotFound(String),
    Ambiguous(String, Vec<String>),
    Locked {
        id: String,
        pid: u32,
    },
    /// `--session-id` named an id a journal already has.
    Taken(String),
}

impl std::fmt::Display for JournalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JournalError::Io { path, err } => {
                write!(f, "session journal {}: {err}", path.display())
            }
            JournalError::NotFound(id) => write!(f, "No conversation found with session ID: {id}"),
            JournalError::Ambiguous(id, all) => write!(
                f,
                "session ID {id} is ambiguous ({}); give more characters",
                all.join(", ")
            ),
            JournalError::Locked { id, pid } => write!(
                f,
                "session {id} is in use by another nib (pid {pid}); wait for it to finish or use --fork-session"
            ),
            JournalError::Taken(id) => write!(
                f,
                "session ID {id} is already in use; continue it with nib -r {id} or pick another ID"
            ),
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> JournalError + '_ {
    move |err| JournalError::Io {
        path: path.to_path_buf(),
        err,
    }
}

/// `<data_dir>/nib/sessions`.
pub fn sessions_root(data_dir: &Path) -> PathBuf {
    data_dir.join("nib").join("sessions")
}

/// The folder for sessions started in `cwd`: its path with every non-alphanumeric
/// character turned into `-` (as Claude Code names its project folders), then a hash
/// of the whole path, so that two directories (`proj.v2`, `proj_v2`) never share one.
pub fn project_dir(root: &Path, cwd: &Path) -> PathBuf {
    let slug: String = slug(cwd).chars().take(MAX_SLUG).collect();
    let hash = stable_hash(cwd.as_os_str().as_bytes());
    root.join(format!("{slug}-{hash:016x}"))
}

/// The folder older versions of nib used: the slug alone, which two directories can
/// share. Its journals are only used where their `meta.cwd` says so.
fn shared_dir(root: &Path, cwd: &Path) -> PathBuf {
    root.join(slug(cwd))
}

fn slug(cwd: &Path) -> String {
    cwd.to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// The journals of sessions started in `cwd`: those in its folder and in the folder
/// older versions used, whose `meta.cwd` is `cwd`.
pub fn files_for(root: &Path, cwd: &Path) -> Vec<PathBuf> {
    [project_dir(root, cwd), shared_dir(root, cwd)]
        .iter()
        .flat_map(|dir| read_dirs_files(dir))
        .filter(|path| read_meta(path).is_some_and(|m| m.cwd == cwd))
        .collect()
}

/// A journal's meta record, read from its first line alone.
pub fn read_meta(path: &Path) -> Option<Meta> {
    let mut line = String::new();
    let file = File::open(path).ok()?.take(MAX_META);
    io::BufReader::new(file).read_line(&mut line).ok()?;
    match serde_json::from_str::<Entry>(&line).ok()?.record {
        Record::Meta(meta) => Some(meta),
        _ => None,
    }
}

impl Journal {
    /// Starts a new journal with its meta record.
    pub fn create(root: &Path, meta: Meta) -> Result<Journal, JournalError> {
        let dir = project_dir(root, &meta.cwd);
        make_private_dir(&dir)?;
        let path = dir.join(format!("{}.jsonl", meta.id));
        if exists(root, &meta.id) {
            return Err(JournalError::Taken(meta.id));
        }
        let lock = Lock::take(&path, &meta.id)?;
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|err| match err.kind() {
                io::ErrorKind::AlreadyExists => JournalError::Taken(meta.id.clone()),
                _ => io_err(&path)(err),
            })?;
        // The new name must survive a crash too, not only what is written to it.
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&dir))?;
        let mut journal = Journal {
            path,
            file,
            _lock: lock,
        };
        // A journal without its meta record is no journal: remove it.
        if let Err(e) = journal
            .append(Record::Meta(meta))
            .and_then(|()| journal.sync())
        {
            let _ = fs::remove_file(&journal.path);
            return Err(e);
        }
        Ok(journal)
    }

    /// Opens an existing journal to append to it (after `load`).
    pub fn reopen(path: &Path, id: &str) -> Result<Journal, JournalError> {
        let lock = Lock::take(path, id)?;
        let mut file = OpenOptions::new()
            .append(true)
            .read(true)
            .open(path)
            .map_err(io_err(path))?;
        // A torn last line: start the next record on a line of its own.
        let len = file.metadata().map_err(io_err(path))?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1)).map_err(io_err(path))?;
            file.read_exact(&mut last).map_err(io_err(path))?;
            if last[0] != b'\n' {
                file.write_all(b"\n").map_err(io_err(path))?;
            }
        }
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            _lock: lock,
        })
    }

    /// Appends one record as one line, in one `write`. A line that could not be written
    /// whole is cut off again, so the journal stays as it was.
    pub fn append(&mut self, record: Record) -> Result<(), JournalError> {
        let entry = Entry {
            ts: now_ms(),
            record,
        };
        let mut line = serde_json::to_vec(&entry).expect("journal records always serialise");
        line.push(b'\n');
        let len = self.file.metadata().map_err(io_err(&self.path))?.len();
        self.file.write_all(&line).map_err(|err| {
            let _ = self.file.set_len(len);
            io_err(&self.path)(err)
        })
    }

    /// Makes everything written so far durable (end of a turn).
    pub fn sync(&mut self) -> Result<(), JournalError> {
        self.file.sync_data().map_err(io_err(&self.path))
    }
}

/// A journal read back.
#[derive(Debug)]
pub struct Loaded {
    pub meta: Meta,
    pub entries: Vec<Entry>,
    /// Lines that could not be read (torn or malformed), for a warning.
    pub skipped: Vec<String>,
}

/// Reads a journal. Bad lines are skipped and reported, never fatal.
/// The whole file is read at once: the records end up in memory anyway, and one read
/// beats a line-by-line reader on a long session.
pub fn load(path: &Path) -> Result<Loaded, JournalError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    let mut meta = None;
    for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Entry>(line) {
            Ok(Entry {
                record: Record::Meta(m),
                ..
            }) if meta.is_none() => meta = Some(m),
            Ok(entry) => entries.push(entry),
            Err(e) => skipped.push(format!("{}:{}: {e}", path.display(), n + 1)),
        }
    }
    let meta = meta.ok_or_else(|| io::Error::other("no meta record; not a nib journal"));
    let meta = meta.map_err(io_err(path))?;
    Ok(Loaded {
        meta,
        entries,
        skipped,
    })
}

/// Removes configured keys and secret-looking values from what a record stores.
pub fn redact_record(mut record: Record, redactor: &Redactor) -> Record {
    let clean = |s: &mut String| *s = redactor.redact(s).into_owned();
    match &mut record {
        Record::User { text } => clean(text),
        Record::ToolResult { content, .. } => clean(content),
        Record::Assistant { text, calls, .. } => {
            clean(text);
            calls.iter_mut().for_each(|c| redact_input(c, &clean));
        }
        Record::Compacted { summary, kept, .. } => {
            clean(summary);
            kept.iter_mut().for_each(|m| redact_message(m, &clean));
        }
        _ => {}
    }
    record
}

fn redact_message(m: &mut Message, clean: &dyn Fn(&mut String)) {
    for block in &mut m.content {
        match block {
            Block::Text { text } => clean(text),
            Block::ToolResult { content, .. } => clean(content),
            Block::ToolCall(c) => redact_input(c, clean),
            // Signatures and encrypted reasoning must go back byte for byte.
            Block::Opaque(_) => {}
        }
    }
}

/// A call's arguments, cleaned as JSON text; left alone if the cleaning broke the JSON.
fn redact_input(call: &mut ToolCall, clean: &dyn Fn(&mut String)) {
    let mut text = call.input.to_string();
    clean(&mut text);
    if let Ok(input) = serde_json::from_str(&text) {
        call.input = input;
    }
}

/// Finds a session by id or unique id prefix, in any directory.
pub fn find_by_prefix(root: &Path, prefix: &str) -> Result<PathBuf, JournalError> {
    let mut hits = Vec::new();
    for dir in read_dirs(root) {
        for file in read_dirs_files(&dir) {
            let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned());
            let Some(stem) = stem.filter(|s| s.starts_with(prefix)) else {
                continue;
            };
            if read_meta(&file).is_none() {
                continue; // a journal whose start failed is no session
            }
            if stem == prefix {
                return Ok(file); // an exact id wins over prefixes
            }
            hits.push(file);
        }
    }
    match hits.len() {
        0 => Err(JournalError::NotFound(prefix.to_string())),
        1 => Ok(hits.remove(0)),
        _ => Err(JournalError::Ambiguous(
            prefix.to_string(),
            hits.iter()
                .filter_map(|p| p.file_stem())
                .map(|s| s.to_string_lossy().into_owned())
                .collect(),
        )),
    }
}

/// Whether any directory holds a journal with exactly this id.
pub fn exists(root: &Path, id: &str) -> bool {
    let name = format!("{id}.jsonl");
    read_dirs(root).iter().any(|d| d.join(&name).exists())
}

/// An id nib accepts from the user: it becomes a file name, so only letters, digits,
/// `-` and `_`, at most `MAX_ID` of them.
pub fn valid_id(id: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    (1..=MAX_ID).contains(&id.len()) && id.chars().all(allowed)
}

/// All session folders under `root`.
pub fn read_dirs(root: &Path) -> Vec<PathBuf> {
    paths_in(root, |p| p.is_dir())
}

/// The `.jsonl` files in one session folder.
pub fn read_dirs_files(dir: &Path) -> Vec<PathBuf> {
    paths_in(dir, |p| p.extension().is_some_and(|x| x == "jsonl"))
}

/// The entries of `dir` that `keep` accepts; none when it cannot be read.
fn paths_in(dir: &Path, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let paths = entries.filter_map(Result::ok).map(|e| e.path());
    paths.filter(|p| keep(p)).collect()
}

fn make_private_dir(dir: &Path) -> Result<(), JournalError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir))
}

/// Keeps two nib processes from appending to one session: `<id>.lock` holds the pid.
struct Lock {
    path: PathBuf,
}

impl Lock {
    fn take(journal: &Path, id: &str) -> Result<Lock, JournalError> {
        let path = journal.with_extension("lock");
        for _ in 0..2 {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(mut f) => {
                    let _ = write!(f, "{}", std::process::id());
                    return Ok(Lock { path });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let pid = fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| s.trim().parse::<u32>().ok());
                    if let Some(pid) = pid.filter(|pid| pid_alive(*pid)) {
                        let id = id.to_string();
                        return Err(JournalError::Locked { id, pid });
                    }
                    // Stale: its owner died (kill -9). Take it over.
                    let _ = fs::remove_file(&path);
                }
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
        let failed = io::Error::other("could not take the session lock");
        Err(io_err(&path)(failed))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A new random session id, UUID-shaped (version 4).
pub fn new_id() -> String {
    let mut b = [0u8; 16];
    let filled = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if filled.is_err() {
        // No /dev/urandom: time and pid are unique enough for a file name.
        let seed = (now_ms() as u128) << 32 | std::process::id() as u128;
        b = (seed ^ (seed << 64)).to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    [&h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]].join("-")
}

/// RFC 3339 UTC time for a unix time in milliseconds.
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (hour, min, sec) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!("{y:04}-{m:02}-{d:02}T{hour:02}:{min:02}:{sec:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TempDir, call, meta};

    #[test]
    fn redaction_reaches_every_text_a_record_keeps_but_signatures() {
        const KEY: &str = "sk-journal-test-0123456789abcdef";
        let redactor = Redactor::new(&[KEY.to_string()]);
        let mut with_key = call("c1");
        with_key.input = serde_json::json!({"command": format!("curl -H {KEY}")});
        let opaque = Opaque {
            family: "anthropic".into(),
            call: None,
            data: serde_json::json!({"signature": KEY}),
        };
        let kept = Message {
            role: crate::model::Role::Assistant,
            content: vec![
                Block::Text {
                    text: format!("said {KEY}"),
                },
                Block::ToolCall(with_key.clone()),
                Block::ToolResult {
                    id: "c1".into(),
                    content: format!("printed {KEY}"),
                    is_error: false,
                },
                Block::Opaque(opaque.clone()),
            ],
        };
        let records = [
            Record::User {
                text: format!("my key {KEY}"),
            },
            Record::ToolResult {
                id: "c1".into(),
                name: "bash".into(),
                content: format!("out {KEY}"),
                is_error: false,
                change: None,
            },
            Record::Assistant {
                text: format!("use {KEY}"),
                calls: vec![with_key],
                stop: StopReason::EndTurn,
                usage: None,
                model: "m".into(),
                interrupted: false,
                opaque: vec![opaque],
            },
            Record::Compacted {
                summary: format!("summary {KEY}"),
                replaced: 2,
                kept: vec![kept],
            },
        ];
        for record in records {
            let signed = matches!(record, Record::Assistant { .. } | Record::Compacted { .. });
            let json = serde_json::to_string(&redact_record(record, &redactor)).unwrap();
            // Signatures go back byte for byte: the only key left is the opaque one.
            let signatures = json.matches(&format!("\"signature\":\"{KEY}\"")).count();
            assert_eq!(signatures, usize::from(signed), "{json}");
            assert_eq!(json.matches(KEY).count(), signatures, "{json}");
            assert!(json.contains("[REDACTED]"), "{json}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn ids_are_unique_and_uuid_shaped() {
        let a = new_id();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, new_id());
    }

    #[test]
    fn write_then_load_round_trips_and_survives_a_torn_line() {
        let tmp = TempDir::new("rt");
        let root = tmp.path().to_path_buf();
        let cwd = Path::new("/some/project");
        let mut j = Journal::create(&root, meta("abc", cwd)).unwrap();
        j.append(Record::User { text: "hi".into() }).unwrap();
        j.append(Record::Assistant {
            text: "".into(),
            calls: vec![call("c1"), call("c2")],
            stop: StopReason::ToolUse,
            usage: None,
            model: "m".into(),
            interrupted: false,
            opaque: Vec::new(),
        })
        .unwrap();
        j.append(Record::ToolResult {
            id: "c1".into(),
            name: "bash".into(),
            content: "exit status: 0".into(),
            is_error: false,
            change: None,
        })
        .unwrap();
        let path = j.path.clone();
        drop(j);
        // kill -9 mid-write: half a record, no newline.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"ts":1,"type":"tool_res"#).unwrap();
        drop(f);

        let loaded = load(&path).unwrap();
        assert_eq!(loaded.meta.id, "abc");
        assert_eq!(loaded.entries.len(), 3);
        assert_eq!(loaded.skipped.len(), 1);
        let msgs = crate::session::conversation(&loaded.entries);
        // user, assistant(2 calls), user(result c1 + interrupted c2)
        assert_eq!(msgs.len(), 3);
        match &msgs[2].content[1] {
            Block::ToolResult { id, is_error, .. } => {
                assert_eq!(id, "c2");
                assert!(is_error);
            }
            other => panic!("{other:?}"),
        }

        // Appending after the torn line starts a fresh line.
        let mut j = Journal::reopen(&path, "abc").unwrap();
        j.append(Record::User {
            text: "again".into(),
        })
        .unwrap();
        drop(j);
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.entries.len(), 4);
        assert!(matches!(&loaded.entries[3].record, Record::User { text } if text == "again"));
    }

    #[test]
    fn a_live_lock_refuses_a_second_writer() {
        let tmp = TempDir::new("lock");
        let root = tmp.path().to_path_buf();
        let j = Journal::create(&root, meta("lk", Path::new("/p"))).unwrap();
        let err = Journal::reopen(&j.path, "lk").err().expect("locked");
        assert!(err.to_string().contains("in use"), "{err}");
        let path = j.path.clone();
        drop(j);
        assert!(Journal::reopen(&path, "lk").is_ok());
    }

    #[test]
    fn ids_from_the_user_must_be_file_name_safe() {
        let check = |id: &str, expected: bool| assert_eq!(valid_id(id), expected, "{id:?}");
        check("0f0f0f0f-1111-4222-8333-444444444444", true);
        check("my_session-2", true);
        check("", false);
        check("../x", false);
        check("a/b", false);
        check("a.b", false);
        check("é", false);
        check(&"a".repeat(MAX_ID + 1), false);
    }

    #[test]
    fn an_id_in_use_anywhere_is_not_created_again() {
        let tmp = TempDir::new("taken");
        let root = tmp.path().to_path_buf();
        let j = Journal::create(&root, meta("same", Path::new("/one"))).unwrap();
        drop(j);
        assert!(exists(&root, "same"));
        assert!(!exists(&root, "sam"));
        let err = Journal::create(&root, meta("same", Path::new("/two")))
            .err()
            .expect("taken");
        assert!(matches!(err, JournalError::Taken(_)), "{err}");
        assert!(err.to_string().contains("nib -r same"), "{err}");
    }

    #[test]
    fn a_malformed_line_in_the_middle_costs_only_itself() {
        let tmp = TempDir::new("mid");
        let root = tmp.path().to_path_buf();
        let mut j = Journal::create(&root, meta("mid", Path::new("/p"))).unwrap();
        j.append(Record::User { text: "one".into() }).unwrap();
        let path = j.path.clone();
        drop(j);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{not json}\n").unwrap();
        drop(f);
        let mut j = Journal::reopen(&path, "mid").unwrap();
        j.append(Record::User { text: "two".into() }).unwrap();
        drop(j);
        let loaded = load(&path).unwrap();
        let texts: Vec<&str> = loaded
            .entries
            .iter()
            .filter_map(|e| match &e.record {
                Record::User { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(texts, ["one", "two"]);
        assert_eq!(loaded.skipped.len(), 1);
        assert!(loaded.skipped[0].contains(":3:"), "{:?}", loaded.skipped);
    }

    #[test]
    fn finds_by_prefix() {
        let tmp = TempDir::new("find");
        let root = tmp.path().to_path_buf();
        let a = Journal::create(&root, meta("aaa111", Path::new("/x"))).unwrap();
        let b = Journal::create(&root, meta("aab222", Path::new("/y"))).unwrap();
        assert_eq!(find_by_prefix(&root, "aaa").unwrap(), a.path);
        assert!(matches!(
            find_by_prefix(&root, "aa"),
            Err(JournalError::Ambiguous(..))
        ));
        let err = find_by_prefix(&root, "zz").unwrap_err().to_string();
        assert_eq!(err, "No conversation found with session ID: zz");
        assert_eq!(
            crate::testing::latest_for(&root, Path::new("/y")),
            Some(b.path.clone())
        );
        assert_eq!(crate::testing::latest_for(&root, Path::new("/z")), None);
        // A newer file without a meta record (a journal whose start failed) is no session.
        std::thread::sleep(std::time::Duration::from_millis(10));
        let empty = b.path.with_file_name("aab333.jsonl");
        fs::write(&empty, "").unwrap();
        assert_eq!(
            crate::testing::latest_for(&root, Path::new("/y")),
            Some(b.path.clone())
        );
        assert_eq!(find_by_prefix(&root, "aab").unwrap(), b.path);
    }

    #[test]
    fn each_directory_has_its_own_folder() {
        let root = Path::new("/data");
        let dir = |cwd: &str| project_dir(root, Path::new(cwd));
        assert_ne!(dir("/w/proj.v2"), dir("/w/proj_v2"));
        assert_ne!(dir("/w/a-b"), dir("/w/a/b"));
        assert_eq!(dir("/w/proj.v2"), dir("/w/proj.v2"));
        // The documented form: the slug, `-`, 16 hex digits of FNV-1a 64 over the path.
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        let named = format!("-w-proj-v2-{:016x}", stable_hash(b"/w/proj.v2"));
        assert_eq!(dir("/w/proj.v2"), root.join(named));
        let long = format!("/{}", "x".repeat(1000));
        let name = dir(&long).file_name().unwrap().len();
        assert_eq!(name, MAX_SLUG + 17);
    }

    #[test]
    fn journals_of_the_shared_folder_count_where_their_cwd_says() {
        let tmp = TempDir::new("shared");
        let root = tmp.path().to_path_buf();
        let (dot, under) = (Path::new("/w/proj.v2"), Path::new("/w/proj_v2"));
        let shared = shared_dir(&root, dot);
        assert_eq!(shared, shared_dir(&root, under));
        // Journals as an older nib wrote them: both directories in one folder.
        let old = |id: &str, cwd: &Path| {
            let mut journal = Journal::create(&root, meta(id, cwd)).unwrap();
            let new_path = shared.join(format!("{id}.jsonl"));
            fs::create_dir_all(&shared).unwrap();
            fs::rename(&journal.path, &new_path).unwrap();
            journal.path = new_path.clone();
            new_path
        };
        let old_dot = old("old-dot", dot);
        let old_under = old("old-under", under);
        let new_dot = Journal::create(&root, meta("new-dot", dot)).unwrap().path;
        fs::write(shared.join("no-meta.jsonl"), "").unwrap();
        let mut found = files_for(&root, dot);
        found.sort();
        let mut expected = vec![new_dot, old_dot];
        expected.sort();
        assert_eq!(found, expected);
        assert_eq!(files_for(&root, under), vec![old_under.clone()]);
        assert_eq!(crate::testing::latest_for(&root, under), Some(old_under));
        assert_eq!(
            crate::testing::latest_for(&root, Path::new("/w/other")),
            None
        );
    }
}
