//! Keeping secrets away from the model: the environment child processes get (provider
//! keys and secret-named variables removed) and redaction of secret-looking values in
//! text the model or the journal would see.
//!
//! Deciding what may run is `approval`'s job; this module only filters and masks.

use regex::Regex;
use std::borrow::Cow;

/// API keys of model providers nib may talk to: never passed to a command.
const PROVIDER_KEYS: &[&str] = &[
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "OPENAI_API_KEY",
    "NIB_API_KEY",
    "OPENROUTER_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GROQ_API_KEY",
    "MISTRAL_API_KEY",
    "DEEPSEEK_API_KEY",
    "TOGETHER_API_KEY",
    "XAI_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "HF_TOKEN",
];

/// Parts of a variable name that mark its value as secret (compared in upper case).
const SECRET_NAME_PARTS: &[&str] = &[
    "KEY",
    "SECRET",
    "TOKEN",
    "PASSWORD",
    "PASSWD",
    "CREDENTIAL",
    "AUTH",
];

/// Words that contain a secret part but name no secret (`GIT_AUTHOR_NAME`).
const NOT_SECRET_WORDS: &[&str] = &["AUTHOR"];

/// Known secret values shorter than this are not redacted: they would mask ordinary
/// words.
const MIN_KNOWN_VALUE: usize = 8;

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// Secret-looking values, one alternation so text is scanned once.
const SECRET_PATTERNS: &[&str] = &[
    // Anthropic (`sk-ant-…`), OpenAI (`sk-…`, `sk-proj-…`) and compatible keys.
    r"\bsk-[A-Za-z0-9_\-]{20,}",
    // GitHub tokens: personal, OAuth, user, server, refresh.
    r"\bgh[pousr]_[A-Za-z0-9]{20,}",
    r"\bgithub_pat_[A-Za-z0-9_]{20,}",
    // AWS access key ids.
    r"\bAKIA[0-9A-Z]{16}\b",
    // Slack tokens.
    r"\bxox[abpr]-[A-Za-z0-9\-]{10,}",
    // PEM private keys, also when the end was cut off.
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)",
];

/// True when a variable with this name must not reach child processes.
pub fn is_secret_name(name: &str) -> bool {
    let mut upper = name.to_ascii_uppercase();
    if PROVIDER_KEYS.contains(&upper.as_str()) {
        return true;
    }
    for word in NOT_SECRET_WORDS {
        upper = upper.replace(word, "");
    }
    SECRET_NAME_PARTS.iter().any(|part| upper.contains(part))
}

/// The environment `vars` minus the model providers' keys and the variables named in
/// `also` (the `api_key_env` setting): what MCP servers start with, as in Claude Code,
/// where a server's own tokens (`GITHUB_TOKEN`) are the user's to pass.
pub fn without_provider_keys(
    vars: Vec<(String, String)>,
    also: &[String],
) -> Vec<(String, String)> {
    vars.into_iter()
        .filter(|(k, _)| !PROVIDER_KEYS.contains(&k.as_str()) && !also.contains(k))
        .collect()
}

/// Tells a re-executed nib which descriptor holds the variables it was started with.
const KEYS_FD_VAR: &str = "NIB_KEYS_FD";

/// Keeps nib's keys out of its own `/proc/<pid>/environ`, which any process of the same
/// user can read: nib re-executes itself without secret-named variables and hands them
/// over in an anonymous memory file; the new nib puts them back into its environment
/// (its heap, not the kernel's copy shown in /proc). Either way nib ends non-dumpable,
/// so other processes of the user cannot read its memory either.
///
/// Call first thing in `main`, while nib has one thread, with its environment `vars`.
/// Returns why the keys could not be hidden, if they could not.
pub fn hide_keys(vars: &[(std::ffi::OsString, std::ffi::OsString)]) -> Option<String> {
    // SAFETY: prctl with constant arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if let Some((_, fd)) = vars.iter().find(|(k, _)| k == KEYS_FD_VAR) {
        return take_keys(&fd.to_string_lossy()).err();
    }
    let secret = |k: &std::ffi::OsStr| is_secret_name(&k.to_string_lossy());
    let keys: Vec<_> = vars.iter().filter(|(k, _)| secret(k)).cloned().collect();
    if keys.is_empty() {
        return None;
    }
    let err = reexec_without(&keys);
    Some(format!(
        "cannot keep keys out of /proc ({err}); they stay visible to your own processes"
    ))
}

/// Re-executes nib with `keys` passed in a memory file; returns only on failure.
fn reexec_without(keys: &[(std::ffi::OsString, std::ffi::OsString)]) -> std::io::Error {
    use std::io::{Seek, Write};
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    // No close-on-exec: the descriptor must survive into the new nib.
    // SAFETY: memfd_create with a valid C string; the fd is owned by `file` below.
    let fd = unsafe { libc::memfd_create(c"nib-keys".as_ptr(), 0) };
    if fd < 0 {
        return std::io::Error::last_os_error();
    }
    // SAFETY: fd is a fresh descriptor nothing else owns.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut payload = Vec::new();
    for (k, v) in keys {
        payload.extend_from_slice(k.as_bytes());
        payload.push(b'=');
        payload.extend_from_slice(v.as_bytes());
        payload.push(0);
    }
    if let Err(e) = file.write_all(&payload).and_then(|()| file.rewind()) {
        return e;
    }
    let mut args = std::env::args_os();
    let mut cmd = std::process::Command::new("/proc/self/exe");
    if let Some(argv0) = args.next() {
        cmd.arg0(argv0);
    }
    for (k, _) in keys {
        cmd.env_remove(k);
    }
    cmd.args(args)
        .env(KEYS_FD_VAR, file.as_raw_fd().to_string())
        .exec()
}

/// In the re-executed nib: the variables back from the memory file, which is closed.
fn take_keys(fd: &str) -> Result<(), String> {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: single-threaded (first thing in main), as set_var and remove_var need.
    unsafe { std::env::remove_var(KEYS_FD_VAR) };
    let fd: i32 = fd
        .parse()
        .map_err(|_| format!("{KEYS_FD_VAR} is not a descriptor"))?;
    // SAFETY: the previous nib left this descriptor open for us; we own it now.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut payload = Vec::new();
    file.read_to_end(&mut payload)
        .map_err(|e| format!("cannot read the keys back: {e}"))?;
    for entry in payload.split(|&b| b == 0).filter(|e| !e.is_empty()) {
        let Some(eq) = entry.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (k, v) = (&entry[..eq], &entry[eq + 1..]);
        // SAFETY: single-threaded, see above.
        unsafe {
            std::env::set_var(
                std::ffi::OsStr::from_bytes(k),
                std::ffi::OsStr::from_bytes(v),
            )
        };
    }
    Ok(())
}

/// The environment `vars` minus secrets, except the names in `passthrough`.
pub fn child_env(vars: Vec<(String, String)>, passthrough: &[String]) -> Vec<(String, String)> {
    vars.into_iter()
        .filter(|(name, _)| passthrough.contains(name) || !is_secret_name(name))
        .collect()
}

/// Values of secret-named variables in `vars`, long enough to redact safely.
pub fn secret_values(vars: impl Iterator<Item = (String, String)>) -> Vec<String> {
    vars.filter(|(name, value)| is_secret_name(name) && value.len() >= MIN_KNOWN_VALUE)
        .map(|(_, value)| value)
        .collect()
}

/// Masks secret-looking values in text with `[REDACTED]`, in one pass.
pub struct Redactor {
    regex: Regex,
    /// Only the known values: nib's own keys, which not even the model needs to see.
    known: Option<Regex>,
}

impl Redactor {
    /// Builds the redactor; `known` values (e.g. the API key in use) are masked too,
    /// when at least `MIN_KNOWN_VALUE` bytes long.
    pub fn new(known: &[String]) -> Redactor {
        let mut alternatives: Vec<String> = known
            .iter()
            .filter(|k| k.len() >= MIN_KNOWN_VALUE)
            .map(|k| regex::escape(k))
            .collect();
        // Longer literals first, so a key is not half-masked by one of its prefixes.
        alternatives.sort_by_key(|k| std::cmp::Reverse(k.len()));
        let known = match alternatives.is_empty() {
            true => None,
            false => Regex::new(&alternatives.join("|")).ok(),
        };
        alternatives.extend(SECRET_PATTERNS.iter().map(|p| p.to_string()));
        let regex = Regex::new(&alternatives.join("|")).unwrap_or_else(|_| {
            Regex::new(&SECRET_PATTERNS.join("|")).expect("built-in secret patterns compile")
        });
        Redactor { regex, known }
    }

    /// The text with secrets replaced; borrowed when nothing matched.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        self.regex.replace_all(text, REDACTED)
    }

    /// The text with only the known values replaced (for what the model and the
    /// screen see: secret-looking output may be what the user asked for, nib's own
    /// keys never are).
    pub fn redact_known<'t>(&self, text: &'t str) -> Cow<'t, str> {
        self.replace_known(text, REDACTED)
    }

    /// The text with only the known values replaced by `mask`.
    pub fn replace_known<'t>(&self, text: &'t str, mask: &str) -> Cow<'t, str> {
        match &self.known {
            Some(regex) => regex.replace_all(text, mask),
            None => Cow::Borrowed(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Masks secret-looking values in `text`.
    fn redact(text: &str) -> Cow<'_, str> {
        Redactor::new(&[]).redact(text)
    }

    fn check_name(name: &str, secret: bool) {
        assert_eq!(is_secret_name(name), secret, "{name}");
    }

    #[test]
    fn secret_names() {
        for name in [
            "ANTHROPIC_API_KEY",
            "OPENAI_API_KEY",
            "NIB_API_KEY",
            "OPENROUTER_API_KEY",
            "HF_TOKEN",
            "GITHUB_TOKEN",
            "aws_secret_access_key",
            "DB_PASSWORD",
            "MYSQL_PWD_PASSWD",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "NPM_AUTH",
            "SSH_AUTH_SOCK",
            "my_api_key",
        ] {
            check_name(name, true);
        }
        for name in ["PATH", "HOME", "GIT_AUTHOR_NAME", "LANG", "TERM", "EDITOR"] {
            check_name(name, false);
        }
    }

    #[test]
    fn child_env_filters_and_passes_through() {
        let vars = [
            ("PATH", "/bin"),
            ("OPENAI_API_KEY", "sk-x"),
            ("GITHUB_TOKEN", "ghp_x"),
            ("HOME", "/home/u"),
            ("NPM_TOKEN", "t"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let kept = child_env(vars.to_vec(), &["NPM_TOKEN".to_string()]);
        let names: Vec<&str> = kept.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["PATH", "HOME", "NPM_TOKEN"]);
        let real = child_env(std::env::vars().collect(), &[]);
        assert!(real.iter().all(|(k, _)| !is_secret_name(k)));
    }

    fn check(text: &str, expected: &str) {
        let redactor = Redactor::new(&["hunter2hunter2".to_string(), "short".to_string()]);
        assert_eq!(redactor.redact(text), expected, "{text}");
    }

    #[test]
    fn redacts_secret_looking_values() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----";
        let cases = [
            (
                "key sk-ant-api03-abcdefghijklmnopqrstuv end",
                "key [REDACTED] end",
            ),
            ("sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX", "[REDACTED]"),
            (
                "token=ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                "token=[REDACTED]",
            ),
            ("gho_abcdefghijklmnopqrstuvwxyz", "[REDACTED]"),
            ("github_pat_11ABCDEFG0123456789_abcdefghij", "[REDACTED]"),
            ("id AKIAIOSFODNN7EXAMPLE.", "id [REDACTED]."),
            ("xoxb-1234567890-abcdef", "[REDACTED]"),
            ("password is hunter2hunter2!", "password is [REDACTED]!"),
            ("short stays", "short stays"),
            (
                "disk-usage-report-generator-tool",
                "disk-usage-report-generator-tool",
            ),
            ("sk-short", "sk-short"),
            ("AKIA1234", "AKIA1234"),
            ("plain text", "plain text"),
        ];
        for (text, expected) in cases {
            check(text, expected);
        }
        check(&format!("a\n{pem}\nb"), "a\n[REDACTED]\nb");
        check(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nabc (cut)",
            "[REDACTED]",
        );
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn known_values_only() {
        let redactor = Redactor::new(&["hunter2hunter2".to_string()]);
        let text = "pw hunter2hunter2 token ghp_abcdefghijklmnopqrstuvwxyz0123";
        assert_eq!(
            redactor.redact_known(text),
            "pw [REDACTED] token ghp_abcdefghijklmnopqrstuvwxyz0123"
        );
        let none = Redactor::new(&[]);
        assert!(matches!(none.redact_known(text), Cow::Borrowed(_)));
    }

    #[test]
    fn redaction_is_fast_on_large_input() {
        let mut text = "lorem ipsum dolor sit amet sk- ghp_ AKIA ".repeat(100_000);
        text.push_str("sk-ant-abcdefghijklmnopqrstuvwxyz");
        let start = std::time::Instant::now();
        let out = Redactor::new(&[]).redact(&text);
        assert!(out.ends_with(REDACTED));
        // Linear work takes well under a second; only a quadratic scan (hours on 4 MB)
        // comes near this bound, however busy the machine.
        assert!(start.elapsed() < std::time::Duration::from_secs(60));
    }
}
