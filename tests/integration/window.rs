//! Staying inside the context window: tool results capped to a share of a small
//! window, compaction that clears old results to one-line stubs and cuts the latest
//! before it summarises (so a session stuck on a huge result resumes), a request that
//! cannot fit refused before it is sent, and `--verbose` showing the window fill.

use crate::support::*;
use serde_json::{Value, json};

/// `seq 1 5000`: 23,893 bytes of digits, about a token a byte for many tokenizers.
const SEQ: &str = "seq 1 5000";
const SEQ_BYTES: usize = 23_893;

fn run_seq() -> Reply {
    Reply::tool_call("bash", json!({ "command": SEQ }))
}

fn window(nib: &Nib, tokens: u64) {
    nib.settings(&json!({ "context_window": tokens }));
}

/// The total a clip marker gives, if the text has one.
fn marker_total(text: &str) -> Option<usize> {
    let line = text.lines().find(|l| l.starts_with("[… "))?;
    line.split(' ').nth(5)?.parse().ok()
}

fn journal(nib: &Nib) -> Vec<Value> {
    let files = nib.journal_files();
    assert_eq!(files.len(), 1, "{files:?}");
    parse_json_lines(&std::fs::read_to_string(&files[0]).unwrap())
}

both_protocols! {
    fn a_result_takes_at_most_a_share_of_a_small_window(p: Protocol) {
        for (tokens, cap) in [(8192, 3932), (100_000, 12_288)] {
            let server = FakeServer::start(vec![run_seq(), Reply::text("ok")]);
            let nib = Nib::against(&server, p).args(["-p", "count", "--yes"]);
            window(&nib, tokens);
            let out = nib.run();
            assert_eq!(out.code(), 0, "{out}");
            let result = &server.chat_requests()[1].tool_results()[0].content;
            assert!(result.len() <= cap && result.len() > cap - 100, "{tokens}: {}", result.len());
            assert!(result.starts_with("exit status: 0\n1\n2\n3\n"), "{result}");
            assert!(result.ends_with("4999\n5000\n"), "{result}");
            assert_eq!(marker_total(result), Some(SEQ_BYTES), "{result}");
            assert!(result.contains("grep, head, tail or sed -n; read with an offset"));
        }
    }

    fn a_session_stuck_on_a_huge_result_resumes(p: Protocol) {
        // A session that took a 12 KB result of digits while the window seemed large.
        let server = FakeServer::start(vec![run_seq(), Reply::text("counted")]);
        let nib = Nib::against(&server, p).args(["--yes", "--verbose"]);
        window(&nib, 100_000);
        assert_eq!(nib.run_with(["-p", "count"]).code(), 0);
        let big = server.chat_requests()[1].tool_results()[0].content.len();
        assert!(big > 12_000, "{big}");

        // Control: on a large window, resuming sends the result as it was.
        server.push(Reply::text("still here"));
        let out = nib.run_with(["-c", "-p", "go on"]);
        assert_eq!(out.code(), 0, "{out}");
        let sent = server.chat_requests().pop().unwrap();
        assert_eq!(sent.tool_results()[0].content.len(), big);

        // On an 8k window (12k tokens of digits would not fit) the result is cut to fit.
        window(&nib, 8192);
        server.push(Reply::text("answered"));
        let out = nib.run_with(["-c", "-p", "go on"]);
        assert_eq!(out.code(), 0, "{out}");
        assert!(out.stdout.contains("answered"), "{out}");
        assert!(out.stderr.contains("cut the latest 1 to fit the context window"), "{}", out.stderr);
        let sent = server.chat_requests().pop().unwrap();
        let result = &sent.tool_results()[0].content;
        assert!(result.len() <= 8192 * 80 / 100, "{}", result.len());
        assert_eq!(marker_total(result), Some(SEQ_BYTES), "one marker, the first total");
        assert_eq!(result.matches("bytes omitted").count(), 1);
        assert!(sent.tool_names().len() > 1, "no summary was needed");
        let compacted: Vec<Value> = journal(&nib).into_iter().filter(|r| r["type"] == "compacted").collect();
        assert_eq!(compacted.len(), 1);
        assert_eq!(compacted[0]["replaced"], 0);
    }

    fn old_results_become_stubs_before_anything_is_summarised(p: Protocol) {
        // Six results of 1,100 bytes on a 2,500-token window: the sixth request crosses 80%.
        let print = |c: char| {
            let command = format!("head -c 1100 /dev/zero | tr '\\0' {c}");
            Reply::tool_call("bash", json!({ "command": command }))
        };
        for (tokens, stubs) in [(2500, true), (100_000, false)] {
            let mut script: Vec<Reply> = "ABCDEF".chars().map(print).collect();
            script.push(Reply::text("Finished."));
            let server = FakeServer::start(script);
            let nib = Nib::against(&server, p).args(["-p", "do it", "--yes"]);
            window(&nib, tokens);
            let out = nib.run();
            assert_eq!(out.code(), 0, "{out}");
            let requests = server.chat_requests();
            assert_eq!(requests.len(), 7, "no summary request");
            let last = requests.last().unwrap().tool_results();
            assert_eq!(last.len(), 6);
            assert!(last[5].content.contains(&"F".repeat(1100)), "the latest stays");
            let cleared = last
                .iter()
                .filter(|r| r.content.starts_with("[result cleared to save context: bash {\"command\":\"head -c 1100"))
                .count();
            match stubs {
                true => {
                    assert!(cleared >= 1, "{last:?}");
                    assert!(last[0].content.ends_with("bytes; run it again if you need them]"), "{last:?}");
                }
                false => assert_eq!(cleared, 0),
            }
        }
    }

    fn a_request_that_cannot_fit_is_refused_before_it_is_sent(p: Protocol) {
        let prompt = "Please review this paragraph carefully. ".repeat(200);
        for (tokens, refused) in [(Some(1000), true), (Some(100_000), false), (None, false)] {
            let server = FakeServer::start(vec![Reply::text("reviewed")]);
            let nib = Nib::against(&server, p).args(["-p", &prompt]);
            if let Some(tokens) = tokens {
                window(&nib, tokens);
            }
            let out = nib.run();
            match refused {
                true => {
                    assert_eq!(out.code(), 1, "{out}");
                    assert!(server.chat_requests().is_empty(), "never sent");
                    let line = out.stderr.lines().next().unwrap();
                    assert!(line.starts_with("nib: the conversation needs about "), "{line}");
                    assert!(line.contains("more than the model's context window of 1000"), "{line}");
                    assert!(line.contains("settings \"context_window\""), "{line}");
                }
                // A window nobody stated is a guess: nib does not refuse on a guess.
                false => assert_eq!(out.code(), 0, "{tokens:?}: {out}"),
            }
        }
    }

    fn verbose_shows_the_window_fill_before_each_request(p: Protocol) {
        let server = FakeServer::start(vec![run_seq(), Reply::text("ok")]);
        let nib = Nib::against(&server, p).args(["-p", "count", "--yes", "--verbose"]);
        window(&nib, 8192);
        let out = nib.run();
        assert_eq!(out.code(), 0, "{out}");
        let fills: Vec<(u64, u64)> = out
            .stderr
            .lines()
            .filter_map(|l| l.strip_prefix("nib: context: "))
            .map(|l| {
                let words: Vec<&str> = l.split(' ').collect();
                assert_eq!(&words[2..4], ["8192", "tokens"], "{l}");
                (words[0].parse().unwrap(), words[4].trim_matches(['(', '%', ')']).parse().unwrap())
            })
            .collect();
        assert_eq!(fills.len(), 2, "{}", out.stderr);
        assert!(fills[1].0 > fills[0].0 + 1000, "the digits weigh: {fills:?}");
        assert_eq!(fills[1].1, fills[1].0 * 100 / 8192);
        // Without --verbose (and no terminal) nothing is printed.
        let server = FakeServer::start(vec![Reply::text("ok")]);
        let out = Nib::against(&server, p).args(["-p", "hi"]).run();
        assert!(!out.stderr.contains("context:"), "{}", out.stderr);
    }
}
