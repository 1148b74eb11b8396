//! What files a shell word names, found the way the shell and the kernel would find
//! them: `~`, `~user`, `~+` and `~-` expanded, unquoted globs matched against the
//! directories as they are, symlinks and `..` resolved. Also walks the directories a
//! recursive command would descend, noting the symlinks that lead out.
//!
//! It only reads the filesystem (lists directories, resolves links); which rule a
//! path meets is `mod.rs`'s job.

use crate::paths::{canonical_prefix, normalize};
use std::collections::HashSet;
use std::ffi::CStr;
use std::path::{Path, PathBuf};

/// A glob that matches more paths than this is not expanded: it counts as unknown
/// (no real command line names this many files one by one).
const MAX_GLOB_PATHS: usize = 4096;

/// A recursive walk stops after this many entries and counts as incomplete: a large
/// repository's tree, walked in well under a second (about 10 µs an entry).
const MAX_WALK_ENTRIES: usize = 50_000;

/// A word that may name files, as the shell will see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// The value with quotes removed.
    pub text: String,
    /// Has unquoted `*`, `?` or `[` (the shell matches it against file names).
    pub glob: bool,
    /// Part of it is computed when the command runs (`$X`, `$(…)`).
    pub dynamic: bool,
    /// From a command nib knows nothing about: what it cannot know is not held
    /// against the command (it may not be a file at all).
    pub loose: bool,
}

/// The files a word names.
#[derive(Clone, Debug, PartialEq)]
pub enum Named {
    /// Absolute paths, symlinks resolved (both the kernel's and the lexical reading
    /// of `..` when they differ).
    Paths(Vec<PathBuf>),
    /// Not knowable before the command runs; the string says why.
    Unknown(String),
}

/// Expands `arg` in `cwd` the way bash would, then resolves each path.
pub fn expand(arg: &Arg, cwd: &Path, home: Option<&Path>) -> Named {
    let text = match arg.dynamic {
        true => match known_variables(&arg.text, cwd, home) {
            Some(text) => text,
            None => return Named::Unknown(format!("{} is computed when it runs", arg.text)),
        },
        false => arg.text.clone(),
    };
    let text = match expand_tilde(&text, cwd, home) {
        Ok(text) => text,
        Err(why) => return Named::Unknown(why),
    };
    let paths = match arg.glob && has_glob(&text) {
        true => match glob(&text, cwd, MAX_GLOB_PATHS) {
            Ok(paths) => paths,
            Err(why) => return Named::Unknown(why),
        },
        false => vec![cwd.join(&text)],
    };
    let mut out = Vec::new();
    for path in paths {
        for resolved in resolve(&path) {
            if !out.contains(&resolved) {
                out.push(resolved);
            }
        }
    }
    Named::Paths(out)
}

/// `$HOME/…` and `$PWD/…` (also `${HOME}`, `${PWD}`), the variables every command
/// nib runs has as nib knows them; `None` for anything else computed.
fn known_variables(text: &str, cwd: &Path, home: Option<&Path>) -> Option<String> {
    let known = [
        ("${HOME}", home),
        ("$HOME", home),
        ("${PWD}", Some(cwd)),
        ("$PWD", Some(cwd)),
    ];
    let (value, rest) = known
        .iter()
        .find_map(|(name, value)| Some(((*value)?, text.strip_prefix(name)?)))?;
    let plain = !rest.contains(['$', '`']) && (rest.is_empty() || rest.starts_with('/'));
    plain.then(|| format!("{}{rest}", value.display()))
}

/// The path as the kernel opens it (symlinks, then `..`), and as written with `..`
/// taken lexically; one path when both agree.
pub fn resolve(path: &Path) -> Vec<PathBuf> {
    let physical = normalize(Path::new("/"), None, &canonical_prefix(path));
    let lexical = canonical_prefix(&normalize(Path::new("/"), None, path));
    match physical == lexical {
        true => vec![physical],
        false => vec![physical, lexical],
    }
}

/// `~/x` → home, `~+/x` → cwd, `~user/x` → that user's home; `~-` is unknowable
/// (`$OLDPWD` when it runs). A `~user` with no such user stays as written.
fn expand_tilde(text: &str, cwd: &Path, home: Option<&Path>) -> Result<String, String> {
    let Some(rest) = text.strip_prefix('~') else {
        return Ok(text.to_string());
    };
    let (prefix, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let base = match prefix {
        "" => home.map(Path::to_path_buf),
        "+" => Some(cwd.to_path_buf()),
        "-" => return Err(format!("`{text}` names the previous directory ($OLDPWD)")),
        user => user_home(user),
    };
    Ok(match base {
        Some(base) => format!("{}{tail}", base.display()),
        None => text.to_string(),
    })
}

/// The home directory of `user` from the password database.
fn user_home(user: &str) -> Option<PathBuf> {
    let name = std::ffi::CString::new(user).ok()?;
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; `found` is null or points to `entry`,
    // whose strings live in `buf`.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut entry,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() || entry.pw_dir.is_null() {
        return None;
    }
    // SAFETY: `pw_dir` is a NUL-terminated string inside `buf`.
    let dir = unsafe { CStr::from_ptr(entry.pw_dir) };
    Some(PathBuf::from(dir.to_string_lossy().into_owned()))
}

fn has_glob(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// The paths a glob matches, component by component, as bash (without `dotglob`)
/// would; the word itself when nothing matches. A directory that cannot be listed
/// makes the result unknown.
fn glob(pattern: &str, cwd: &Path, limit: usize) -> Result<Vec<PathBuf>, String> {
    let start = match pattern.starts_with('/') {
        true => PathBuf::from("/"),
        false => cwd.to_path_buf(),
    };
    let mut bases = vec![start];
    for part in pattern.split('/').filter(|p| !p.is_empty()) {
        if !has_glob(part) {
            bases.iter_mut().for_each(|b| b.push(part));
            continue;
        }
        let mut next = Vec::new();
        for base in &bases {
            for name in list(base)? {
                if fnmatch(part, &name) {
                    next.push(base.join(&name));
                }
            }
            if next.len() > limit {
                return Err(format!("`{pattern}` matches too many files to check"));
            }
        }
        bases = next;
    }
    Ok(match bases.is_empty() {
        true => vec![cwd.join(pattern)],
        false => bases,
    })
}

/// The names in a directory, with `.` and `..` (which `.*` matches in older bash);
/// nothing when it does not exist or is not a directory.
fn list(dir: &Path) -> Result<Vec<String>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
            return Ok(Vec::new());
        }
        Err(e) => return Err(format!("nib cannot list {} ({e})", dir.display())),
    };
    let mut names = vec![".".to_string(), "..".to_string()];
    for entry in entries {
        let entry = entry.map_err(|e| format!("nib cannot list {} ({e})", dir.display()))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

/// Shell pattern matching of one file name: `*`, `?`, `[…]` (`!` or `^` negates),
/// `\` escapes; a leading `.` must be matched by a literal `.`.
pub fn fnmatch(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    matches_from(&p, &n)
}

/// Matches with one backtrack point (the last `*`), so a pattern full of stars
/// costs time linear in the name times the pattern, never exponential.
fn matches_from(p: &[char], n: &[char]) -> bool {
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if p.get(pi) == Some(&'*') {
            star = Some((pi, ni));
            pi += 1;
            continue;
        }
        if let Some(len) = p.get(pi).and_then(|_| one(&p[pi..], n[ni])) {
            pi += len;
            ni += 1;
            continue;
        }
        let Some((sp, sn)) = star else {
            return false;
        };
        star = Some((sp, sn + 1));
        pi = sp + 1;
        ni = sn + 1;
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// When the pattern element at the start of `p` (not `*`) matches `c`: how many
/// pattern characters it spans.
fn one(p: &[char], c: char) -> Option<usize> {
    match p[0] {
        '?' => Some(1),
        '[' => match class(p) {
            Some((set, negated, len)) => (in_class(&set, c) != negated).then_some(len),
            None => (c == '[').then_some(1),
        },
        '\\' if p.len() > 1 => (p[1] == c).then_some(2),
        x => (x == c).then_some(1),
    }
}

/// A bracket class at the start of `p`: its characters, whether negated, and how many
/// pattern characters it spans; `None` when unclosed (then `[` is literal).
fn class(p: &[char]) -> Option<(Vec<char>, bool, usize)> {
    let mut i = 1;
    let negated = matches!(p.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let start = i;
    while i < p.len() && (p[i] != ']' || i == start) {
        i += bracket_expression(&p[i..]).unwrap_or(1);
    }
    (i < p.len()).then(|| (p[start..i].to_vec(), negated, i + 1))
}

/// The length of `[:name:]`, `[=c=]` or `[.c.]` at the start of `p`, if one is there.
fn bracket_expression(p: &[char]) -> Option<usize> {
    let kind = *p.get(1).filter(|k| matches!(k, ':' | '=' | '.'))?;
    if p[0] != '[' {
        return None;
    }
    let end = (2..p.len().saturating_sub(1)).find(|&j| p[j] == kind && p[j + 1] == ']')?;
    Some(end + 2)
}

/// Whether `c` is in the POSIX class `name` (`alpha`, `digit`, …) in the C locale.
fn in_named_class(name: &str, c: char) -> bool {
    match name {
        "alpha" => c.is_ascii_alphabetic(),
        "digit" => c.is_ascii_digit(),
        "alnum" => c.is_ascii_alphanumeric(),
        "upper" => c.is_ascii_uppercase(),
        "lower" => c.is_ascii_lowercase(),
        "space" => c.is_ascii_whitespace(),
        "blank" => c == ' ' || c == '\t',
        "punct" => c.is_ascii_punctuation(),
        "xdigit" => c.is_ascii_hexdigit(),
        "print" => c.is_ascii_graphic() || c == ' ',
        "graph" => c.is_ascii_graphic(),
        "cntrl" => c.is_ascii_control(),
        "word" => c.is_ascii_alphanumeric() || c == '_',
        _ => false,
    }
}

fn in_class(set: &[char], c: char) -> bool {
    let mut i = 0;
    while i < set.len() {
        if let Some(len) = bracket_expression(&set[i..]) {
            let inner: String = set[i + 2..i + len - 2].iter().collect();
            let hit = match set[i + 1] {
                ':' => in_named_class(&inner, c),
                _ => inner.chars().eq([c]),
            };
            if hit {
                return true;
            }
            i += len;
        } else if i + 2 < set.len() && set[i + 1] == '-' {
            if set[i] <= c && c <= set[i + 2] {
                return true;
            }
            i += 3;
        } else {
            if set[i] == c {
                return true;
            }
            i += 1;
        }
    }
    false
}

/// What a recursive command would meet below its starting points, as far as a walk
/// needed to look.
#[derive(Debug, Default)]
pub struct Walk {
    /// The first file it would open that the walk was looking for.
    pub found: Option<PathBuf>,
    /// A followed symlink that leads out of the places it may read: (link, target).
    pub escape: Option<(PathBuf, PathBuf)>,
    /// False when the walk gave up (too many entries, an unreadable directory).
    pub complete: bool,
}

/// What a walk looks for; it stops at the first.
pub enum Looking<'a> {
    /// A file the predicate holds for (a file a deny rule covers).
    For(&'a dyn Fn(&Path) -> bool),
    /// A symlink that leads out.
    ForEscape,
}

/// Walks `starts` (resolved paths) as `grep -r` or `find` would. With `follow`, a
/// symlink met on the way is followed when `inside(target)`, and noted as an escape
/// otherwise; without it, symlinks are skipped.
pub fn walk(
    starts: &[PathBuf],
    follow: bool,
    inside: &dyn Fn(&Path) -> bool,
    looking: Looking,
) -> Walk {
    walk_at_most(starts, follow, inside, looking, MAX_WALK_ENTRIES)
}

fn walk_at_most(
    starts: &[PathBuf],
    follow: bool,
    inside: &dyn Fn(&Path) -> bool,
    looking: Looking,
    limit: usize,
) -> Walk {
    let mut out = Walk {
        complete: true,
        ..Walk::default()
    };
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut entries = 0;
    let file = |path: PathBuf, out: &mut Walk| {
        if let Looking::For(wanted) = &looking
            && out.found.is_none()
            && wanted(&path)
        {
            out.found = Some(path);
        }
    };
    for start in starts {
        if !start.is_dir() {
            file(start.clone(), &mut out);
        }
    }
    let done = |out: &Walk| match &looking {
        Looking::For(_) => out.found.is_some(),
        Looking::ForEscape => out.escape.is_some(),
    };
    let mut stack: Vec<PathBuf> = starts.iter().filter(|s| s.is_dir()).cloned().collect();
    while let Some(dir) = stack.pop() {
        if done(&out) {
            return out;
        }
        if !seen.insert(dir.clone()) {
            continue;
        }
        let Ok(children) = std::fs::read_dir(&dir) else {
            out.complete = false;
            continue;
        };
        for child in children.flatten() {
            entries += 1;
            if entries > limit {
                out.complete = false;
                return out;
            }
            let Ok(kind) = child.file_type() else {
                continue;
            };
            let path = child.path();
            if kind.is_dir() {
                stack.push(path);
            } else if !kind.is_symlink() {
                file(path, &mut out);
            } else if follow {
                match path.canonicalize() {
                    Ok(target) if !inside(&target) => {
                        out.escape = out.escape.take().or(Some((path, target)))
                    }
                    Ok(target) if target.is_dir() => stack.push(target),
                    Ok(target) => file(target, &mut out),
                    Err(_) => {}
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    #[test]
    fn shell_patterns() {
        let cases = [
            (".en?", ".env", true),
            (".e*", ".env", true),
            (".[e]nv", ".env", true),
            ("*", ".env", false),
            ("?env", ".env", false),
            ("[.]env", ".env", false),
            ("*.rs", "main.rs", true),
            ("*.rs", "main.rsx", false),
            ("[!a]x", "bx", true),
            ("[!a]x", "ax", false),
            ("[^a]x", "ax", false),
            ("[a-c]", "b", true),
            ("[a-c]", "d", false),
            ("[]]", "]", true),
            ("a[", "a[", true),
            ("\\*", "*", true),
            ("\\*", "x", false),
            (".*", "..", true),
            (".[[:alpha:]]nv", ".env", true),
            (".[[:digit:]]nv", ".env", false),
            (".[![:digit:]]nv", ".env", true),
            (".[[:alpha:][:digit:]]n[v]", ".env", true),
            (".[[=e=]]nv", ".env", true),
            (".[[.e.]]nv", ".env", true),
            ("[[:upper:]]*", "Readme", true),
            ("*a*b", "xaxaxb", true),
            ("*a*b", "xaxax", false),
            ("a*", "a", true),
            ("*", "", true),
            ("?", "", false),
            ("**x", "ax", true),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(fnmatch(pattern, name), expected, "{pattern} vs {name}");
        }
    }

    #[test]
    fn many_stars_do_not_take_exponential_time() {
        let pattern = "*a".repeat(40) + "b";
        let name = "a".repeat(250);
        let started = std::time::Instant::now();
        assert!(!fnmatch(&pattern, &name));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    fn arg(text: &str) -> Arg {
        Arg {
            text: text.into(),
            glob: has_glob(text),
            dynamic: false,
            loose: false,
        }
    }

    #[test]
    fn words_name_the_files_the_shell_would_open() {
        let tmp = TempDir::new("expand");
        tmp.put("ws/.env", "x");
        tmp.put("ws/src/a.rs", "x");
        tmp.put("ws/src/b.rs", "x");
        tmp.put("out/secret", "x");
        tmp.put("home/.ssh/id_rsa", "x");
        let root = tmp.path().canonicalize().unwrap();
        let ws = root.join("ws");
        std::os::unix::fs::symlink(root.join("out"), ws.join("link")).unwrap();
        let home = root.join("home");
        let paths = |text: &str| match expand(&arg(text), &ws, Some(&home)) {
            Named::Paths(p) => p,
            Named::Unknown(why) => panic!("{text}: {why}"),
        };
        assert_eq!(paths(".en?"), [ws.join(".env")]);
        assert_eq!(paths("./.e*"), [ws.join(".env")]);
        assert_eq!(paths(".[e]nv"), [ws.join(".env")]);
        assert_eq!(paths("src/*.rs").len(), 2);
        assert_eq!(paths("nothing*"), [ws.join("nothing*")]);
        assert_eq!(paths("~/.ssh/id_rsa"), [home.join(".ssh/id_rsa")]);
        assert_eq!(paths("~+/../home"), vec![home.clone()]);
        assert_eq!(paths("~root"), [PathBuf::from("/root")]);
        assert_eq!(paths("~no-such-user-x/a"), [ws.join("~no-such-user-x/a")]);
        assert_eq!(paths("link/secret"), [root.join("out/secret")]);
        // The kernel follows `link` before `..`; the lexical reading differs.
        let both = paths("link/../ws/.env");
        assert!(both.contains(&root.join("ws/.env")), "{both:?}");
        assert!(paths("li*/sec*").contains(&root.join("out/secret")));
        assert!(paths(".*/out/secret").contains(&root.join("out/secret")));
        for unknown in ["~-/x", "~-"] {
            let got = expand(&arg(unknown), &ws, Some(&home));
            assert!(matches!(got, Named::Unknown(_)), "{unknown}: {got:?}");
        }
        let computed = |text: &str| Arg {
            dynamic: true,
            ..arg(text)
        };
        for unknown in ["$F", "$HOMEX/a", "$HOME$X", "${HOME:-/}x", "$(pwd)"] {
            let got = expand(&computed(unknown), &ws, Some(&home));
            assert!(matches!(got, Named::Unknown(_)), "{unknown}: {got:?}");
        }
        let known = |text: &str| match expand(&computed(text), &ws, Some(&home)) {
            Named::Paths(p) => p,
            Named::Unknown(why) => panic!("{text}: {why}"),
        };
        assert_eq!(known("$HOME/.ssh/id_rsa"), [home.join(".ssh/id_rsa")]);
        assert_eq!(known("${PWD}/.en?"), [ws.join(".env")]);
    }

    #[test]
    fn an_unlistable_directory_makes_a_glob_unknown() {
        let tmp = TempDir::new("unlistable");
        tmp.put("ws/closed/.env", "x");
        let ws = tmp.path().canonicalize().unwrap().join("ws");
        let closed = ws.join("closed");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o311)).unwrap();
        let listable = std::fs::read_dir(&closed).is_ok();
        let got = expand(&arg("closed/.e*"), &ws, None);
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o755)).unwrap();
        if !listable {
            assert!(matches!(got, Named::Unknown(_)), "{got:?}");
        }
    }

    #[test]
    fn too_many_matches_or_entries_are_unknown() {
        let tmp = TempDir::new("limits");
        let ws = tmp.path().join("ws");
        std::fs::create_dir_all(&ws).unwrap();
        for i in 0..12 {
            std::fs::write(ws.join(format!("f{i}")), "").unwrap();
        }
        assert_eq!(glob("f*", &ws, 12).unwrap().len(), 12);
        assert!(glob("f*", &ws, 11).is_err());
        assert_eq!(glob("f1*", &ws, 11).unwrap().len(), 3);
        let inside = |_: &Path| true;
        let starts = std::slice::from_ref(&ws);
        let none = |_: &Path| false;
        assert!(walk(starts, false, &inside, Looking::For(&none)).complete);
        assert!(walk_at_most(starts, false, &inside, Looking::For(&none), 12).complete);
        assert!(!walk_at_most(starts, false, &inside, Looking::For(&none), 11).complete);
    }

    #[test]
    fn walks_follow_links_only_inside() {
        let tmp = TempDir::new("walk");
        tmp.put("ws/a/b.txt", "x");
        tmp.put("ws/c.txt", "x");
        tmp.put("out/key", "x");
        let root = tmp.path().canonicalize().unwrap();
        let ws = root.join("ws");
        std::os::unix::fs::symlink(root.join("out"), ws.join("a/ssh")).unwrap();
        std::os::unix::fs::symlink(ws.join("c.txt"), ws.join("inner")).unwrap();
        let inside = |p: &Path| p.starts_with(&ws);
        let starts = std::slice::from_ref(&ws);
        let plain = walk(starts, false, &inside, Looking::ForEscape);
        assert!(plain.complete && plain.escape.is_none());
        let follow = walk(starts, true, &inside, Looking::ForEscape);
        assert_eq!(follow.escape.map(|e| e.1), Some(root.join("out")));
        // Files are found through links inside, never through links out.
        let key = |p: &Path| p.ends_with("key");
        assert_eq!(walk(starts, true, &inside, Looking::For(&key)).found, None);
        let c = |p: &Path| p.ends_with("c.txt");
        let found = walk(starts, true, &inside, Looking::For(&c)).found;
        assert_eq!(found, Some(ws.join("c.txt")));
    }
}
