//! Room in the context window: how many tokens the next request takes (the server's
//! count when it gives one, else a calibrated estimate), refusing one that cannot fit,
//! and making room when the window fills (old results stubbed, the latest cut, the
//! older conversation summarised). Where to cut is `compact.rs`'s.

use super::{Agent, Event, Stop, Ui};
use crate::compact;
use crate::mcp::spec_bytes;
use crate::model::{self, Message, Request};
use crate::price;
use std::time::Duration;

/// Asking a local server for its context window: it answers in milliseconds or not at all.
const WINDOW_PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// Output room a request must leave in the window, else it is refused rather than
/// sent to fail: a few words of answer (compaction aims far lower, at 80%).
const MIN_REPLY_TOKENS: u64 = 32;
/// Compaction halves the latest result until the request fits, down to this size.
const MIN_CUT_BYTES: usize = 512;

impl Agent {
    /// Refuses a request that cannot fit the window even after compaction, rather
    /// than sending it to fail on the server; otherwise reports how full it is.
    pub(super) fn too_big(&mut self, ui: &mut dyn Ui) -> Option<Stop> {
        let used = self.input_tokens();
        let window = self.window_tokens();
        ui.event(Event::Context { used, window });
        let known = self.parts.window.is_known(&probe);
        (known && used + MIN_REPLY_TOKENS > window).then(|| {
            Stop::Error(format!(
                "the conversation needs about {used} tokens, more than the model's context window \
                 of {window} even after compacting; start a new conversation (/clear, or nib \
                 without -c), shorten the prompt, or give the model a larger window (llama.cpp \
                 --ctx-size, settings \"context_window\")"
            ))
        })
    }

    /// The system prompt and tool schemas, estimated.
    pub(super) fn fixed_tokens(&self) -> u64 {
        let specs: usize = self.parts.specs.iter().map(spec_bytes).sum();
        price::estimate_bytes(self.parts.system.len() + specs)
    }

    /// Input tokens of the next request: the server's count when it can give one (a
    /// llama.cpp on this machine answers in milliseconds; Anthropic is asked only when
    /// the request might come near the compaction mark, which the upper bound of a
    /// token a byte tells), else the last count plus a calibrated estimate of the rest.
    pub fn input_tokens(&mut self) -> u64 {
        let fixed = self.fixed_tokens();
        let estimate = self.tally.tokens(&self.session.messages, fixed);
        if self.tally.is_exact(&self.session.messages) || self.tally.no_counts {
            return estimate;
        }
        let worst = price::most_tokens(&self.session.messages) + fixed * 4;
        let endpoint = &self.parts.client.endpoint;
        let local =
            endpoint.provider == model::Provider::OpenAi && model::is_loopback(&endpoint.base_url);
        if !local && !self.parts.window.is_full(worst, &probe) {
            return estimate;
        }
        let request = self.request();
        match self.parts.client.count_tokens(&request) {
            Some(tokens) => {
                self.tally.record(tokens, &self.session.messages, fixed);
                tokens
            }
            None => {
                self.tally.no_counts = true;
                estimate
            }
        }
    }

    /// The context window, in tokens (a local server is asked once).
    pub fn window_tokens(&mut self) -> u64 {
        self.parts.window.tokens(&probe)
    }

    pub(super) fn window_full(&mut self) -> bool {
        let used = self.input_tokens();
        self.parts.window.is_full(used, &probe)
    }

    /// Makes room in the context window, cheapest loss first: old tool results become
    /// one-line stubs, then the latest results are cut until the request fits under the
    /// compaction mark; if it still does not (or `summarise` asks for it), the older
    /// part of the conversation becomes a summary written by the model, recent prompts
    /// and the latest tool exchange kept verbatim. When the summary request fails, the
    /// older part is dropped with a note (`/compact` asks for the summary). Returns how
    /// many messages changed, 0 when nothing was worth it.
    pub fn make_room(&mut self, ui: &mut dyn Ui, summarise: bool) -> Result<usize, Stop> {
        let mark = self.parts.window.mark(&probe);
        let cleared = compact::clear_old_results(&mut self.session.messages);
        let mut cut = 0;
        let mut max = compact::latest_result_bytes(&self.session.messages);
        self.tally.forget();
        while max > MIN_CUT_BYTES && self.input_tokens() > mark {
            max = (max / 2).max(MIN_CUT_BYTES);
            cut = compact::cut_latest_results(&mut self.session.messages, max).max(cut);
            self.tally.forget();
        }
        if cleared + cut > 0 {
            ui.event(Event::Trimmed { cleared, cut });
        }
        let replaced = if summarise || self.input_tokens() > mark {
            self.summarise_older(ui)?
        } else {
            0
        };
        if replaced == 0 && cleared + cut > 0 {
            let kept = self.session.messages.clone();
            self.compacted(ui, String::new(), 0, kept);
        }
        Ok(cleared + cut + replaced)
    }

    /// The older part of the conversation becomes a summary (or is dropped with a
    /// note when summarising fails). Returns how many messages were replaced.
    fn summarise_older(&mut self, ui: &mut dyn Ui) -> Result<usize, Stop> {
        let window = self.window_tokens();
        let Some(plan) = compact::plan(&self.session.messages, window) else {
            return Ok(0);
        };
        let (summary, summarised) = match self.summarise(plan.head, window, ui) {
            Ok(summary) => (summary, true),
            Err(model::Error::Interrupted) => return Err(Stop::Interrupted),
            Err(e) => {
                ui.event(Event::Warning(format!(
                    "could not summarise the conversation ({e}); dropping its older part instead"
                )));
                (compact::dropped_note(plan.head), false)
            }
        };
        let replaced = plan.head;
        self.compacted(ui, summary, replaced, plan.kept);
        self.tally.forget();
        ui.event(Event::Compacted {
            replaced,
            summarised,
        });
        Ok(replaced)
    }

    /// The session takes the compacted conversation; a warning if the journal failed.
    fn compacted(&mut self, ui: &mut dyn Ui, summary: String, replaced: usize, kept: Vec<Message>) {
        if let Some(warning) = self.session.compacted(summary, replaced, kept) {
            ui.event(Event::Warning(warning));
        }
        self.sync(ui);
    }

    /// Asks the model, without tools, to summarise `messages[..head]`.
    fn summarise(
        &mut self,
        head: usize,
        window: u64,
        ui: &mut dyn Ui,
    ) -> Result<String, model::Error> {
        let messages = [compact::summary_request(
            &self.session.messages[..head],
            window,
        )];
        let request = Request {
            model: &self.parts.client.endpoint.model,
            system: compact::SUMMARISE_SYSTEM,
            messages: &messages,
            tools: &[],
            max_tokens: compact::summary_tokens(window),
        };
        let reply = self.parts.client.send(&request, &mut |event| {
            if let model::Event::Retry(retry) = event {
                ui.event(Event::Retry(&retry));
            }
        })?;
        let usage = reply.usage.unwrap_or_else(|| {
            let input = price::estimate_tokens(&messages);
            price::estimate_usage(input, &reply)
        });
        self.charge(&usage);
        match reply.text.trim() {
            "" => Err(model::Error::malformed("the summary was empty".into())),
            text => Ok(text.to_string()),
        }
    }
}

/// The context window the model server reports, asked once and briefly.
fn probe(base_url: &str) -> Option<u64> {
    model::server_window(base_url, WINDOW_PROBE_TIMEOUT)
}
