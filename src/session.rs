//! The conversation: its messages, its journal, its totals (tokens, dollars, model
//! replies), what the model has read, and the redactor that keeps secrets out of the
//! journal. New, resume (the conversation rebuilt from the journal), fork, clear and
//! compaction's result happen here; nobody else builds a `Meta` or a `Redactor`. What
//! the loop does with a conversation is `agent.rs`'s business.

use crate::cli::{Args, Resume};
use crate::compact;
use crate::journal::{self, Entry, Journal, JournalError, Meta, Record, Totals};
use crate::model::{self, Block, Endpoint, Message, Role, StopReason, Usage};
use crate::secrets::Redactor;
use crate::sessions;
use crate::tools::change::Change;
use crate::tools::fs::Seen;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Why a session could not be opened.
#[derive(Debug)]
pub enum Error {
    /// Bad usage (exit 2): an id nib cannot use, or flags that do not go together.
    Usage(String),
    /// Anything else: no such session, a journal that cannot be read or written.
    Failed(String),
}

impl From<JournalError> for Error {
    fn from(e: JournalError) -> Error {
        Error::Failed(e.to_string())
    }
}

/// What every session of one run shares, whichever way it is opened.
pub struct Origin {
    /// Where journals live (`<data>/nib/sessions`).
    pub root: PathBuf,
    /// The directory the session works in.
    pub cwd: PathBuf,
    /// Values of secret-named environment variables, masked in the journal.
    pub env_secrets: Vec<String>,
    /// `--no-session-persistence`: no journal is written.
    pub persist: bool,
}

/// A session not written yet: its journal is created with the first prompt, so
/// starting nib and leaving leaves no empty session behind.
struct NewSession {
    meta: Meta,
    /// Records of the session it forks, copied in when it is created.
    carried: Vec<Record>,
}

/// A write or edit the journal could not take: the file is left alone.
pub struct Unsaved {
    /// Why the journal is not written.
    pub why: String,
    /// A warning to show, when the journal failed just now.
    pub warning: Option<String>,
}

/// One conversation and its journal.
pub struct Session {
    id: String,
    origin: Origin,
    /// The conversation as the model sees it; every change to it is journaled.
    pub messages: Vec<Message>,
    journal: Option<Journal>,
    pending: Option<NewSession>,
    /// Why the journal stopped being written, once it has: from then on no file is
    /// changed, since no change could be undone.
    unsaved: Option<String>,
    totals: Totals,
    /// Masks keys and secret-looking values before they reach the journal, and nib's
    /// own keys in tool output before the model or the UI sees it.
    redactor: Redactor,
    /// What the model has read or written (rebuilt from the journal on resume).
    seen: Seen,
    /// Subdirectories whose instruction files were already added to a tool result.
    instructed: HashSet<PathBuf>,
}

impl Session {
    /// The session `-c` / `-r ID` names (forked with `--fork-session`), or a new one to
    /// create with the first prompt; with the warnings loading it gave.
    pub fn open(
        args: &Args,
        origin: Origin,
        endpoint: &Endpoint,
    ) -> Result<(Session, Vec<String>), Error> {
        check_id(args)?;
        let previous = args.resume.as_ref().map(|r| find(r, &origin)).transpose()?;
        let mut session = Session::empty(origin, endpoint);
        if let Some(id) = &args.session_id {
            session.name(id.clone(), endpoint)?;
        }
        let Some(path) = previous else {
            return Ok((session, Vec::new()));
        };
        let loaded = journal::load(&path)?;
        let warnings = loaded
            .skipped
            .iter()
            .map(|s| format!("skipped an unreadable journal line: {s}"));
        let warnings = warnings.collect();
        session.adopt(&loaded.entries);
        if !args.fork_session {
            session.pending = None;
            // Not persisted, it runs under a new id: nothing is written under the old one.
            if session.origin.persist {
                session.journal = Some(Journal::reopen(&path, &loaded.meta.id)?);
                session.id = loaded.meta.id;
            }
            return Ok((session, warnings));
        }
        if let Some(new) = session.pending.as_mut() {
            new.meta.forked_from = Some(loaded.meta.id.clone());
            new.carried = loaded.entries.into_iter().map(|e| e.record).collect();
        }
        Ok((session, warnings))
    }

    /// A fresh session with a new id, written with its first prompt.
    fn empty(origin: Origin, endpoint: &Endpoint) -> Session {
        let redactor = redactor(endpoint, &origin.env_secrets);
        let mut session = Session {
            id: String::new(),
            origin,
            messages: Vec::new(),
            journal: None,
            pending: None,
            unsaved: None,
            totals: Totals::default(),
            redactor,
            seen: Seen::default(),
            instructed: HashSet::new(),
        };
        session.start_new(journal::new_id(), endpoint);
        session
    }

    /// `--session-id`: the new session takes this id, unless a journal has it.
    fn name(&mut self, id: String, endpoint: &Endpoint) -> Result<(), Error> {
        if self.origin.persist && journal::exists(&self.origin.root, &id) {
            return Err(JournalError::Taken(id).into());
        }
        self.start_new(id, endpoint);
        Ok(())
    }

    /// The session becomes a new one, `id`, not written until its first prompt.
    fn start_new(&mut self, id: String, endpoint: &Endpoint) {
        let meta = Meta {
            id: id.clone(),
            cwd: self.origin.cwd.clone(),
            model: endpoint.model.clone(),
            provider: endpoint.provider.name().to_string(),
            nib: env!("CARGO_PKG_VERSION").to_string(),
            started: journal::rfc3339(journal::now_ms()),
            format: journal::FORMAT,
            forked_from: None,
        };
        let carried = Vec::new();
        self.pending = self.origin.persist.then_some(NewSession { meta, carried });
        self.id = id;
    }

    /// `/clear`: a fresh session, empty conversation, zero totals, a new id.
    pub fn clear(&mut self, endpoint: &Endpoint) {
        self.journal = None;
        self.start_new(journal::new_id(), endpoint);
        self.adopt(&[]);
    }

    /// `/resume`: continues the session journaled at `path`.
    pub fn resume(&mut self, path: &Path) -> Result<(), String> {
        let loaded = journal::load(path).map_err(|e| e.to_string())?;
        if loaded.meta.id == self.id {
            return Err(format!("already in session {}", self.id));
        }
        self.journal = match self.origin.persist {
            true => Some(Journal::reopen(path, &loaded.meta.id).map_err(|e| e.to_string())?),
            false => None,
        };
        self.pending = None;
        self.id = loaded.meta.id;
        self.adopt(&loaded.entries);
        Ok(())
    }

    /// The conversation, totals and what was seen, as the journal's `entries` left them.
    fn adopt(&mut self, entries: &[Entry]) {
        self.instructed.clear();
        self.messages = conversation(entries);
        self.seen = Seen::default();
        for e in entries {
            if let Record::Seen { path, stamp } = &e.record {
                self.seen.note(path, stamp.clone());
            }
        }
        let last = entries.iter().rev().find_map(|e| e.record.totals());
        self.totals = last.unwrap_or_default();
    }

    /// Creates the journal of a session not written yet (new, forked, or cleared).
    /// A failure leaves the session unsaved: it goes on, changing no files.
    pub fn begin(&mut self) -> Result<(), JournalError> {
        let Some(new) = self.pending.take() else {
            return Ok(());
        };
        let created = Journal::create(&self.origin.root, new.meta).and_then(|mut journal| {
            new.carried
                .into_iter()
                .try_for_each(|r| journal.append(r))?;
            Ok(journal)
        });
        let journal = created.inspect_err(|e| self.unsaved = Some(e.to_string()))?;
        self.journal = Some(journal);
        Ok(())
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where journals live.
    pub fn root(&self) -> &Path {
        &self.origin.root
    }

    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    pub fn journal_mut(&mut self) -> Option<&mut Journal> {
        self.journal.as_mut()
    }

    /// Where the journal is, or will be once the first prompt creates it.
    pub fn transcript_path(&self) -> Option<PathBuf> {
        if let Some(journal) = &self.journal {
            return Some(journal.path.clone());
        }
        let new = self.pending.as_ref()?;
        let dir = journal::project_dir(&self.origin.root, &new.meta.cwd);
        Some(dir.join(format!("{}.jsonl", new.meta.id)))
    }

    /// Why no file may be changed, while the journal cannot take changes.
    pub fn unsaved(&self) -> Option<&str> {
        self.unsaved.as_deref().filter(|_| self.journal.is_none())
    }

    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// Adds one model request's tokens and dollars.
    pub fn charge(&mut self, usage: &Usage, cost_usd: f64) {
        self.totals.usage.add(usage);
        self.totals.cost_usd += cost_usd;
    }

    /// Counts one model reply.
    pub fn count_turn(&mut self) {
        self.totals.turns += 1;
    }

    /// `text` with nib's own keys masked, for tool output before the model or the UI sees it.
    pub fn redact(&self, text: &str) -> String {
        self.redactor.redact_known(text).into_owned()
    }

    /// `/model`: the new endpoint's key is masked from now on, in place of the old one.
    pub fn mask_key(&mut self, endpoint: &Endpoint) {
        self.redactor = redactor(endpoint, &self.origin.env_secrets);
    }

    /// Subdirectories whose instruction files this conversation already holds, for
    /// `context::instructions::for_path` to add to.
    pub fn instructed(&mut self) -> &mut HashSet<PathBuf> {
        &mut self.instructed
    }

    pub fn seen(&self) -> &Seen {
        &self.seen
    }

    /// Appends to the journal, secrets masked; a journal that fails is dropped, and
    /// the warning to show is returned.
    pub fn record(&mut self, record: Record) -> Option<String> {
        let journal = self.journal.as_mut()?;
        let record = journal::redact_record(record, &self.redactor);
        let failed = journal.append(record).err()?;
        Some(self.lose(failed.to_string()))
    }

    /// Compaction, journaled so a resume rebuilds the same conversation: the first
    /// `replaced` messages became `summary`, and `kept` follows it. With none replaced
    /// the conversation was only trimmed where it stands, and `kept` is a copy of it.
    /// Returns a warning when the journal failed.
    pub fn compacted(
        &mut self,
        summary: String,
        replaced: usize,
        kept: Vec<Message>,
    ) -> Option<String> {
        if replaced > 0 {
            self.messages = compact::rebuild(&summary, &kept);
        }
        self.record(Record::Compacted {
            summary,
            replaced,
            kept,
        })
    }

    /// Journals a file change, synced, before the file is touched. `Ok(true)`: the
    /// journal holds it; `Ok(false)`: this session keeps no journal (run without one).
    pub fn save_change(&mut self, id: &str, change: &Change) -> Result<bool, Unsaved> {
        let Some(journal) = self.journal.as_mut() else {
            let why = self.unsaved.clone();
            return why.map_or(Ok(false), |why| Err(Unsaved { why, warning: None }));
        };
        let record = Record::Change {
            id: id.to_string(),
            change: change.clone(),
        };
        match journal.append(record).and_then(|()| journal.sync()) {
            Ok(()) => Ok(true),
            Err(e) => Err(Unsaved {
                why: e.to_string(),
                warning: Some(self.lose(e.to_string())),
            }),
        }
    }

    /// Stops writing the journal; returns the warning to show.
    fn lose(&mut self, why: String) -> String {
        let warning =
            format!("{why}; this session is no longer being saved, and nib changes no more files");
        self.journal = None;
        self.unsaved = Some(why);
        warning
    }

    /// Flushes the journal to disk.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        self.journal.as_mut().map_or(Ok(()), Journal::sync)
    }
}

/// Masks the endpoint's key and the secret values of the environment, and whatever
/// else looks like a secret.
fn redactor(endpoint: &Endpoint, env_secrets: &[String]) -> Redactor {
    let mut known: Vec<String> = endpoint.api_key.iter().cloned().collect();
    known.extend(env_secrets.iter().cloned());
    Redactor::new(&known)
}

/// `--session-id` must be a file name nib can use, and a resumed session keeps its own.
fn check_id(args: &Args) -> Result<(), Error> {
    let Some(id) = &args.session_id else {
        return Ok(());
    };
    if !journal::valid_id(id) {
        return Err(Error::Usage(format!(
            "--session-id {id:?}: use letters, digits, - and _ only (a UUID is best)"
        )));
    }
    if args.resume.is_some() && !args.fork_session {
        return Err(Error::Usage(
            "--session-id with -c or -r needs --fork-session: a resumed session keeps its ID"
                .into(),
        ));
    }
    Ok(())
}

/// The journal `-c` or `-r ID` names.
fn find(resume: &Resume, origin: &Origin) -> Result<PathBuf, Error> {
    match resume {
        // The latest session with a conversation: an empty one has nothing to go on with.
        Resume::Latest => sessions::list(&origin.root, Some(&origin.cwd))
            .into_iter()
            .find(|s| !s.first_prompt.is_empty())
            .map(|s| s.path)
            .ok_or_else(|| {
                Error::Failed(
                    "no previous session in this directory: start one with nib -p \"task\"".into(),
                )
            }),
        Resume::Id(id) => Ok(journal::find_by_prefix(&origin.root, id)?),
        Resume::Pick => Err(Error::Usage(
            "-r needs a session ID when nib runs headless; list them with nib sessions".into(),
        )),
    }
}

/// Rebuilds the conversation from journal records, starting over at each compaction. A tool call whose result was never
/// written (nib died while it ran) gets an "interrupted" result, so every provider
/// accepts the history. A refused exchange is replaced by notes (`withhold_refusal`).
pub fn conversation(entries: &[Entry]) -> Vec<Message> {
    let mut messages: Vec<Message> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    for entry in entries {
        match &entry.record {
            Record::User { text } => {
                close_pending(&mut messages, &mut pending);
                let block = Block::Text { text: text.clone() };
                push_block(&mut messages, Role::User, block);
            }
            Record::Assistant {
                text,
                calls,
                opaque,
                stop,
                ..
            } => {
                close_pending(&mut messages, &mut pending);
                let mut content: Vec<Block> = opaque.iter().cloned().map(Block::Opaque).collect();
                if !text.is_empty() {
                    content.push(Block::Text { text: text.clone() });
                }
                content.extend(calls.iter().cloned().map(Block::ToolCall));
                if text.is_empty() && calls.is_empty() {
                    content.push(Block::Text {
                        text: "(no answer)".into(),
                    });
                }
                pending = calls.iter().map(|c| c.id.clone()).collect();
                messages.push(Message {
                    role: Role::Assistant,
                    content,
                });
                if *stop == StopReason::Refusal {
                    model::withhold_refusal(&mut messages);
                }
            }
            Record::Compacted { summary, kept, .. } => {
                pending.clear();
                messages = compact::rebuild(summary, kept);
            }
            Record::ToolResult {
                id,
                content,
                is_error,
                ..
            } => {
                let Some(pos) = pending.iter().position(|p| p == id) else {
                    continue; // a result for a call we do not have: drop it
                };
                pending.remove(pos);
                let block = Block::ToolResult {
                    id: id.clone(),
                    content: content.clone(),
                    is_error: *is_error,
                };
                push_block(&mut messages, Role::User, block);
            }
            _ => {}
        }
    }
    close_pending(&mut messages, &mut pending);
    messages
}

/// Answers calls left without a result.
fn close_pending(messages: &mut Vec<Message>, pending: &mut Vec<String>) {
    for id in pending.drain(..) {
        let block = Block::ToolResult {
            id,
            content: "killed: nib was stopped while this tool call ran, and a command it ran \
                      was killed with it; check what it did before running it again"
                .into(),
            is_error: true,
        };
        push_block(messages, Role::User, block);
    }
}

/// Adds a block to the last message when it has this role, else starts a message.
fn push_block(messages: &mut Vec<Message>, role: Role, block: Block) {
    match messages.last_mut() {
        Some(m) if m.role == role => m.content.push(block),
        _ => messages.push(Message {
            role,
            content: vec![block],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ToolCall;
    use crate::testing::call;

    fn entry(record: Record) -> Entry {
        Entry { ts: 0, record }
    }

    fn assistant(text: &str, calls: Vec<ToolCall>) -> Record {
        Record::Assistant {
            text: text.into(),
            calls,
            stop: StopReason::EndTurn,
            usage: None,
            model: "m".into(),
            interrupted: false,
            opaque: Vec::new(),
        }
    }

    fn result(id: &str, content: &str) -> Record {
        Record::ToolResult {
            id: id.into(),
            name: "bash".into(),
            content: content.into(),
            is_error: false,
            change: None,
        }
    }

    #[test]
    fn conversation_starts_over_at_the_latest_compaction() {
        let kept = vec![
            Message::user_text("task"),
            Message {
                role: Role::Assistant,
                content: vec![Block::ToolCall(call("b"))],
            },
            Message {
                role: Role::User,
                content: vec![Block::ToolResult {
                    id: "b".into(),
                    content: "B".into(),
                    is_error: false,
                }],
            },
        ];
        let entries: Vec<Entry> = [
            Record::User {
                text: "task".into(),
            },
            assistant("", vec![call("a")]),
            result("a", "OLD"),
            assistant("", vec![call("b")]),
            result("b", "B"),
            Record::Compacted {
                summary: "S".into(),
                replaced: 3,
                kept: kept.clone(),
            },
            assistant("done", vec![]),
            Record::User {
                text: "more".into(),
            },
        ]
        .into_iter()
        .map(entry)
        .collect();
        let messages = conversation(&entries);
        let mut expected = crate::compact::rebuild("S", &kept);
        expected.push(Message {
            role: Role::Assistant,
            content: vec![Block::Text {
                text: "done".into(),
            }],
        });
        expected.push(Message::user_text("more"));
        assert_eq!(messages, expected);
        // The record round-trips through JSON.
        let line = serde_json::to_string(&entries[5]).unwrap();
        assert!(line.contains(r#""type":"compacted""#), "{line}");
        assert_eq!(serde_json::from_str::<Entry>(&line).unwrap(), entries[5]);
    }

    const KEY: &str = "sk-test-0123456789abcdef0123";

    fn endpoint() -> Endpoint {
        Endpoint {
            provider: crate::model::Provider::OpenAi,
            base_url: "http://127.0.0.1:1/v1".into(),
            api_key: Some(KEY.into()),
            model: "m".into(),
        }
    }

    fn origin(root: &Path) -> Origin {
        Origin {
            root: root.to_path_buf(),
            cwd: PathBuf::from("/some/project"),
            env_secrets: Vec::new(),
            persist: true,
        }
    }

    /// A written session with one prompt, one answer and its totals.
    fn written(root: &Path) -> Session {
        let (mut s, _) = Session::open(&Args::default(), origin(root), &endpoint()).unwrap();
        s.begin().unwrap();
        s.record(Record::User {
            text: format!("my key is {KEY}"),
        });
        s.record(assistant("hello", vec![]));
        let usage = Usage {
            input_tokens: 7,
            ..Usage::default()
        };
        s.record(Record::End {
            subtype: "success".into(),
            turns: 1,
            usage,
            cost_usd: 0.5,
            session_turns: 1,
        });
        s.sync().unwrap();
        s
    }

    #[test]
    fn resume_takes_the_conversation_and_totals_and_clear_drops_them() {
        let tmp = crate::testing::TempDir::new("session");
        let first = written(tmp.path());
        let path = first.journal().unwrap().path.clone();
        let journal = std::fs::read_to_string(&path).unwrap();
        assert!(
            !journal.contains(KEY),
            "the key in use never reaches the journal"
        );
        assert!(journal.contains("my key is"), "the rest of the prompt does");
        let id = first.id().to_string();
        drop(first);

        let (mut s, _) = Session::open(&Args::default(), origin(tmp.path()), &endpoint()).unwrap();
        assert!(s.messages.is_empty() && s.totals().turns == 0);
        s.resume(&path).unwrap();
        assert_eq!(s.id(), id);
        assert_eq!(s.messages.len(), 2);
        assert_eq!((s.totals().cost_usd, s.totals().turns), (0.5, 1));
        assert_eq!(s.resume(&path), Err(format!("already in session {id}")));

        s.clear(&endpoint());
        assert_ne!(s.id(), id);
        assert!(s.messages.is_empty() && s.journal().is_none());
        assert_eq!((s.totals().cost_usd, s.totals().turns), (0.0, 0));
        let next = s.transcript_path().unwrap();
        assert!(next.ends_with(format!("{}.jsonl", s.id())), "{next:?}");
    }

    #[test]
    fn a_session_id_in_use_is_refused_and_a_free_one_taken() {
        let tmp = crate::testing::TempDir::new("session-id");
        let taken = written(tmp.path()).id().to_string();
        let args = |id: &str| Args {
            session_id: Some(id.into()),
            ..Args::default()
        };
        let refused = Session::open(&args(&taken), origin(tmp.path()), &endpoint());
        assert!(matches!(refused, Err(Error::Failed(_))));
        let (s, _) = Session::open(&args("free-id"), origin(tmp.path()), &endpoint()).unwrap();
        assert_eq!(s.id(), "free-id");
        let bad = Session::open(&args("a/b"), origin(tmp.path()), &endpoint());
        assert!(matches!(bad, Err(Error::Usage(_))));
    }
}
