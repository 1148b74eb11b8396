//! The cancel bridge: what the worker thread sends (`Wire`), and the caller's side of
//! it, which waits in short ticks so it can notice `Client::cancel`, tell once that the
//! server has gone quiet, and give up at the idle limit. `Body` hands the reply to the
//! protocol readers as a `BufRead`.

use super::{Client, Error, Event};
use std::cell::RefCell;
use std::io::{self, BufRead, Read};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How often a waiting caller looks at the cancel flag: prompt enough for a keypress.
pub const TICK: Duration = Duration::from_millis(100);
/// Silence after which the caller hears, once, that nib is still waiting (half the idle
/// limit when that is shorter): a long wait should not look like a hang.
const STALL_NOTICE: Duration = Duration::from_secs(30);

/// What the worker tells the caller: first the head, then the body in chunks. The
/// channel closing after `Open` is the end of the body.
pub enum Wire {
    Open,
    Status {
        code: u16,
        after: Option<Duration>,
        message: String,
        /// The body says the account is out of credit (`insufficient_quota`).
        billing: bool,
    },
    Unreachable {
        detail: String,
        transient: bool,
    },
    /// A success status whose body is a document (JSON, HTML), not an event stream: a
    /// wrong base URL or a server that ignored `stream: true`. What it said, on one line.
    NotStream {
        content_type: String,
        message: String,
    },
    Chunk(Vec<u8>),
    Broken(String),
}

/// The caller's end of one request's channel.
pub struct Waiter<'a> {
    pub rx: Receiver<Wire>,
    pub client: &'a Client,
    pub url: &'a str,
    pub on_event: RefCell<&'a mut dyn FnMut(Event)>,
}

impl Waiter<'_> {
    /// The worker's next message; `None` once it has finished. A cancel is `Interrupted`,
    /// silence past the idle limit a `Timeout`; past the stall notice the caller hears of
    /// it once.
    pub fn next(&self) -> Result<Option<Wire>, Error> {
        let limit = self.client.limits.idle_timeout;
        let start = Instant::now();
        let mut told = false;
        loop {
            if self.client.cancel.load(Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            match self.rx.recv_timeout(TICK) {
                Ok(wire) => return Ok(Some(wire)),
                Err(RecvTimeoutError::Disconnected) => return Ok(None),
                Err(RecvTimeoutError::Timeout) if start.elapsed() >= limit => {
                    return Err(Error::Timeout {
                        url: self.url.to_string(),
                        secs: limit.as_secs(),
                    });
                }
                Err(RecvTimeoutError::Timeout) => {
                    if !told && start.elapsed() >= stall_notice(limit) {
                        told = true;
                        let silent = stall_notice(limit);
                        (*self.on_event.borrow_mut())(Event::Stalled { silent, limit });
                    }
                }
            }
        }
    }
}

fn stall_notice(idle_timeout: Duration) -> Duration {
    STALL_NOTICE.min(idle_timeout / 2)
}

/// A response body arriving over the worker's channel, as a `BufRead`. When the wait
/// stops (a cancel, the idle limit) the reader sees an I/O error and `halt` says why.
pub struct Body<'w, 'a> {
    waiter: &'w Waiter<'a>,
    chunk: Vec<u8>,
    pos: usize,
    ended: bool,
    pub halt: Option<Error>,
}

impl<'w, 'a> Body<'w, 'a> {
    pub fn new(waiter: &'w Waiter<'a>) -> Self {
        Body {
            waiter,
            chunk: Vec::new(),
            pos: 0,
            ended: false,
            halt: None,
        }
    }
}

impl Read for Body<'_, '_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Body<'_, '_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.chunk.len() && !self.ended {
            match self.waiter.next() {
                Err(halt) => {
                    let e = io::Error::other(halt.to_string());
                    self.halt = Some(halt);
                    return Err(e);
                }
                Ok(Some(Wire::Chunk(chunk))) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Ok(Some(Wire::Broken(e))) => {
                    return Err(io::Error::new(io::ErrorKind::ConnectionReset, e));
                }
                Ok(_) => self.ended = true,
            }
        }
        Ok(&self.chunk[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.chunk.len());
    }
}
