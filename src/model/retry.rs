//! The retry policy of a model request: which failures are worth another attempt, how
//! long to wait (exponential back-off with jitter, at least the server's `retry-after`),
//! and when to give up. One attempt is `http::attempt`'s job.

use super::body::TICK;
use super::http::{self, Post};
use super::{Client, Error, Event, Reply, Retry, random};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The first back-off wait; each retry doubles it.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// A server that refuses connections is most likely not running: try a few times (it
/// may be restarting), then say so, instead of backing off for half a minute.
pub const UNREACHABLE_ATTEMPTS: u32 = 3;

/// Sends `post`, retrying what is worth retrying, up to `limits.max_attempts` times.
/// Every error and retry reason comes out with the key masked.
pub fn send(client: &Client, post: &Post, on_event: &mut dyn FnMut(Event)) -> Result<Reply, Error> {
    let mut attempt = 1;
    loop {
        let (error, after) = match http::attempt(client, post, on_event) {
            Ok(reply) => return Ok(reply),
            Err(failed) => failed,
        };
        let error = error.redacted(client.endpoint.api_key.as_deref());
        if !worth_retrying(&error) {
            return Err(error);
        }
        if let (Some(wait), Error::Status { code, url, .. }) = (after, &error)
            && wait > client.limits.max_backoff
        {
            return Err(Error::Later {
                url: url.clone(),
                code: *code,
                wait: wait.as_secs(),
                max: client.limits.max_backoff.as_secs(),
            });
        }
        let unreachable = matches!(error, Error::Connect { .. });
        if attempt >= client.limits.max_attempts || (unreachable && attempt >= UNREACHABLE_ATTEMPTS)
        {
            return Err(error);
        }
        let wait = backoff(attempt, after, client.limits.max_backoff, random());
        on_event(Event::Retry(Retry {
            attempt,
            wait,
            reason: reason(&error),
        }));
        pause(client, wait)?;
        attempt += 1;
    }
}

/// A connection that may come back, a stream that broke in passing, a rate limit or
/// an overloaded server; never a bad request, a bad key or an empty account.
fn worth_retrying(error: &Error) -> bool {
    match error {
        Error::Connect { retry, .. } | Error::Stream { retry, .. } => *retry,
        Error::Status { code, .. } => matches!(code, 429 | 500 | 502 | 503 | 504 | 529),
        Error::Billing { .. } | Error::Timeout { .. } | Error::Later { .. } => false,
        Error::Interrupted => false,
    }
}

/// What the user is told a retry is for.
fn reason(error: &Error) -> String {
    match error {
        Error::Connect { detail, .. } => format!("cannot connect: {detail}"),
        Error::Status { code, body, .. } => format!("the server answered {code}: {body}"),
        Error::Stream { detail, .. } => detail.clone(),
        other => other.to_string(),
    }
}

/// The wait before attempt `attempt + 1`: exponential with ±25% jitter (from `noise`),
/// at least what the server asked for, at most `cap`.
fn backoff(attempt: u32, server: Option<Duration>, cap: Duration, noise: u64) -> Duration {
    let doubled = BACKOFF_FIRST.saturating_mul(1 << attempt.saturating_sub(1).min(16));
    let jitter = 0.75 + 0.5 * (noise % 1001) as f64 / 1000.0;
    doubled
        .mul_f64(jitter)
        .max(server.unwrap_or_default())
        .min(cap)
}

/// Sleeps `wait`, or less if the user cancels.
fn pause(client: &Client, wait: Duration) -> Result<(), Error> {
    let end = Instant::now() + wait;
    loop {
        if client.cancel.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        thread::sleep(left.min(TICK));
    }
}

/// How long the server asked us to wait: `retry-after-ms`, else `retry-after` in
/// seconds or as an HTTP date.
pub fn retry_after(ms: Option<&str>, value: Option<&str>, now: SystemTime) -> Option<Duration> {
    let ms = ms.and_then(|v| v.trim().parse::<f64>().ok());
    if let Some(wait) = ms.and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok()) {
        return Some(wait);
    }
    let value = value?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let date = http_date(value)?;
    Some(date.duration_since(now).unwrap_or_default())
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only form servers still send.
fn http_date(text: &str) -> Option<SystemTime> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let secs = u64::try_from(days * 86_400 + h * 3600 + m * 60 + s).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_grows_honours_the_server_and_is_capped() {
        let cap = Duration::from_secs(60);
        let secs = |attempt, server, noise| backoff(attempt, server, cap, noise).as_secs_f64();
        assert_eq!(secs(1, None, 500), 1.0);
        assert_eq!(secs(3, None, 500), 4.0);
        assert_eq!(secs(1, None, 0), 0.75);
        assert_eq!(secs(1, None, 1000), 1.25);
        assert_eq!(secs(1, Some(Duration::from_secs(3)), 500), 3.0);
        assert_eq!(secs(1, Some(Duration::from_millis(10)), 500), 1.0);
        assert_eq!(secs(10, None, 500), 60.0);
        assert_eq!(secs(1, Some(Duration::from_secs(600)), 500), 60.0);
        assert_eq!(secs(u32::MAX, None, 500), 60.0);
    }

    #[test]
    fn retry_after_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        let check = |ms: Option<&str>, value: Option<&str>, expected: Option<f64>| {
            let got = retry_after(ms, value, now).map(|d| d.as_secs_f64());
            assert_eq!(got, expected, "{ms:?} {value:?}");
        };
        check(None, Some("7"), Some(7.0));
        check(None, Some(" 1.5 "), Some(1.5));
        check(Some("250"), Some("7"), Some(0.25));
        check(None, Some("Sun, 06 Nov 1994 08:50:07 GMT"), Some(30.0));
        check(None, Some("Sun, 06 Nov 1994 08:49:00 GMT"), Some(0.0));
        check(
            None,
            Some("Tue, 01 Mar 2000 00:00:00 GMT"),
            Some(951_868_800.0 - 784_111_777.0),
        );
        check(None, Some("-3"), None);
        check(None, Some("soon"), None);
        check(None, None, None);
    }
}
