//! Agent Skills: finding `SKILL.md` folders, reading their frontmatter leniently (by
//! hand, no YAML crate), the compact `<available_skills>` listing for the system prompt,
//! and a skill's text when the model or the user invokes it.
//!
//! Whether reading a skill's folder needs approval is the gate's business.

use super::instructions::up_to_root;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Skills shipped inside the binary: (folder name, SKILL.md).
const BUNDLED: [(&str, &str); 4] = [
    (
        "commit-message",
        include_str!("../../skills/commit-message/SKILL.md"),
    ),
    ("fix-tests", include_str!("../../skills/fix-tests/SKILL.md")),
    ("review", include_str!("../../skills/review/SKILL.md")),
    ("terse", include_str!("../../skills/terse/SKILL.md")),
];
/// The Agent Skills spec's limit; a longer description is cut to this in the listing.
const DESCRIPTION_MAX: usize = 1024;
/// Skills listed at most: the listing is paid for on every request.
const SKILLS_MAX: usize = 100;
/// A SKILL.md larger than this is not a skill but a mistake; it is skipped.
const FILE_MAX: u64 = 256 * 1024;

/// One skill nib can offer.
#[derive(Clone, Debug, PartialEq)]
pub struct Skill {
    pub name: String,
    pub description: String,
    /// The instructions after the frontmatter.
    pub body: String,
    /// The skill's folder (for `scripts/`, `references/`); `None` when bundled.
    pub dir: Option<PathBuf>,
}

/// The skill directories to search, most important first: the project's (working
/// directory up to the repository root), then the user's.
pub fn search_dirs(
    cwd: &Path,
    repo_root: &Path,
    home: Option<&Path>,
    nib_config: Option<&Path>,
) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for dir in up_to_root(cwd, repo_root) {
        dirs.push(dir.join(".claude/skills"));
        dirs.push(dir.join(".agents/skills"));
    }
    if let Some(home) = home {
        dirs.push(home.join(".claude/skills"));
        dirs.push(home.join(".agents/skills"));
    }
    dirs.extend(nib_config.map(|c| c.join("skills")));
    dirs
}

/// The skills in `dirs` and the bundled ones; the first skill of a name wins (project
/// beats user beats bundled). Also returns warnings about skipped skills.
pub fn discover(dirs: &[PathBuf]) -> (Vec<Skill>, Vec<String>) {
    let mut skills: Vec<Skill> = Vec::new();
    let mut warnings = Vec::new();
    let mut names = HashSet::new();
    let found = dirs.iter().flat_map(|d| folders(d));
    let bundled = BUNDLED.iter().map(|(name, text)| {
        let front = parse(text);
        (name.to_string(), front, None)
    });
    for (folder, front, dir) in found.chain(bundled) {
        let file = match &dir {
            Some(d) => format!("{}", Path::new(d).join("SKILL.md").display()),
            None => format!("bundled skill {folder}"),
        };
        let Some(description) = front.description.filter(|d| !d.trim().is_empty()) else {
            warnings.push(format!(
                "skipped {file}: it has no description; add `description: …` to its frontmatter"
            ));
            continue;
        };
        let name = front.name.filter(|n| !n.is_empty()).unwrap_or(folder);
        if names.insert(name.clone()) && skills.len() < SKILLS_MAX {
            skills.push(Skill {
                name,
                description: one_line(&description, DESCRIPTION_MAX),
                body: front.body,
                dir,
            });
        }
    }
    skills.sort_by(|a, b| a.name.cmp(&b.name));
    (skills, warnings)
}

/// The skill folders in one directory, by folder name: (folder, frontmatter, folder path).
fn folders(dir: &Path) -> Vec<(String, Front, Option<PathBuf>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|path| {
            let file = path.join("SKILL.md");
            let small = std::fs::metadata(&file).is_ok_and(|m| m.is_file() && m.len() <= FILE_MAX);
            let text = small.then(|| std::fs::read_to_string(&file).ok())??;
            let folder = path.file_name()?.to_string_lossy().into_owned();
            Some((folder, parse(&text), Some(path)))
        })
        .collect()
}

/// Whitespace collapsed to single spaces, cut to `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(max) {
        Some((cut, _)) => joined[..cut].to_string(),
        None => joined,
    }
}

/// The system prompt's listing: name, description and folder of each skill; `None`
/// when there are no skills.
pub fn listing(skills: &[Skill], home: Option<&Path>) -> Option<String> {
    if skills.is_empty() {
        return None;
    }
    let mut out = String::from("<available_skills>\n");
    for s in skills {
        out.push_str(&format!("- {}: {}", s.name, s.description));
        if let Some(dir) = &s.dir {
            out.push_str(&format!(" [{}]", crate::paths::short_path(dir, home)));
        }
        out.push('\n');
    }
    out.push_str("</available_skills>");
    Some(out)
}

/// What the `skill` tool returns: the body (no arguments: `$ARGUMENTS` is dropped), and
/// the folder its files are in.
pub fn invoke(skills: &[Skill], name: &str) -> Result<String, String> {
    let Some(skill) = skills.iter().find(|s| s.name == name.trim()) else {
        let names: Vec<&str> = skills.iter().map(|s| s.name.as_str()).collect();
        return Err(format!(
            "no skill named `{name}`; the skills are: {}",
            names.join(", ")
        ));
    };
    let body = skill.body.replace("$ARGUMENTS", "");
    Ok(match &skill.dir {
        Some(dir) => format!(
            "{body}\n\n[skill folder: {} — read its files from there]",
            dir.display()
        ),
        None => body,
    })
}

/// A prompt `/name args` naming a skill becomes that skill's instructions, with
/// `$ARGUMENTS` replaced by args (or args added at the end); `None` for other prompts.
pub fn expand(skills: &[Skill], prompt: &str) -> Option<String> {
    let rest = prompt.trim_start().strip_prefix('/')?;
    let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let skill = skills.iter().find(|s| s.name == name)?;
    let args = args.trim();
    let body = match (skill.body.contains("$ARGUMENTS"), args.is_empty()) {
        (true, _) => skill.body.replace("$ARGUMENTS", args),
        (false, true) => skill.body.clone(),
        (false, false) => format!("{}\n\nARGUMENTS: {args}", skill.body),
    };
    let folder = match &skill.dir {
        Some(dir) => format!(" (folder {})", dir.display()),
        None => String::new(),
    };
    Some(format!("[the user invoked skill {name}{folder}]\n\n{body}"))
}

/// What the frontmatter says, and the body after it.
#[derive(Debug, Default, PartialEq)]
struct Front {
    name: Option<String>,
    description: Option<String>,
    body: String,
}

/// Reads SKILL.md leniently: `---` delimited `key: value` lines; quoted values,
/// unquoted values with colons, folded (`>`) and literal (`|`) blocks, CRLF, a BOM.
/// Unknown keys (and their nested maps or lists) are ignored. No frontmatter: all body.
fn parse(text: &str) -> Front {
    let (fields, body) = frontmatter(text);
    // A key given twice: the last one counts.
    let last = |key: &str| fields.iter().rev().find(|(k, _)| k == key);
    Front {
        name: last("name").map(|(_, v)| v.clone()),
        description: last("description").map(|(_, v)| v.clone()),
        body,
    }
}

/// The `key: value` fields of a Markdown file's frontmatter and the body after it (all
/// body when there is none). Also read by custom commands.
pub fn frontmatter(text: &str) -> (Vec<(String, String)>, String) {
    let text = text
        .strip_prefix('\u{feff}')
        .unwrap_or(text)
        .replace("\r\n", "\n");
    let lines: Vec<&str> = text.split('\n').collect();
    if lines.first().map(|l| l.trim_end()) != Some("---") {
        return (Vec::new(), text.trim().to_string());
    }
    let Some(end) = lines[1..]
        .iter()
        .position(|l| matches!(l.trim_end(), "---" | "..."))
    else {
        return (Vec::new(), text.trim().to_string());
    };
    let body = lines[end + 2..].join("\n").trim().to_string();
    (fields(&lines[1..end + 1]), body)
}

/// Top-level `key: value` pairs; each value with the indented lines that follow it.
fn fields(lines: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        if follows(line) || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let more = lines[i..].iter().take_while(|l| follows(l)).count();
        let key = key.trim().trim_matches(['"', '\'']).to_string();
        out.push((key, scalar(value.trim(), &lines[i..i + more])));
        i += more;
    }
    out
}

/// Whether a line belongs to the key above it: indented, blank, or a list item.
fn follows(line: &str) -> bool {
    line.starts_with([' ', '\t']) || line.trim().is_empty() || line.starts_with("- ")
}

/// One value: block, quoted or plain; `more` are the indented lines after it.
fn scalar(value: &str, more: &[&str]) -> String {
    let plain = strip_comment(value);
    let is_block = plain.starts_with(['>', '|'])
        && plain[1..]
            .chars()
            .all(|c| matches!(c, '-' | '+') || c.is_ascii_digit());
    if is_block {
        return block(plain.starts_with('>'), more);
    }
    match value.chars().next() {
        // Nothing on the key's line: a nested map or list, which nib does not read.
        None => String::new(),
        Some(quote @ ('"' | '\'')) => {
            let joined = join_lines(value, more.iter().map(|l| l.trim()));
            unquote(&joined[1..], quote)
        }
        Some(_) => join_lines(plain, more.iter().map(|l| strip_comment(l.trim()))),
    }
}

/// `first` and the `rest` that are not empty, joined by spaces.
fn join_lines<'a>(first: &'a str, rest: impl Iterator<Item = &'a str>) -> String {
    let lines = std::iter::once(first).chain(rest).filter(|l| !l.is_empty());
    lines.collect::<Vec<_>>().join(" ")
}

/// A plain value without its ` # comment`.
fn strip_comment(value: &str) -> &str {
    match value.find(" #") {
        Some(at) => value[..at].trim_end(),
        None if value.starts_with('#') => "",
        None => value,
    }
}

/// A `>` (folded: lines joined by spaces, blank lines kept as breaks) or `|` (literal)
/// block, its common indentation removed.
fn block(folded: bool, lines: &[&str]) -> String {
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let lines: Vec<&str> = lines
        .iter()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect();
    if !folded {
        return lines.join("\n").trim().to_string();
    }
    let mut out = String::new();
    for line in lines {
        match (line.is_empty(), out.is_empty() || out.ends_with('\n')) {
            (true, _) => out.push('\n'),
            (false, true) => out.push_str(line),
            (false, false) => {
                out.push(' ');
                out.push_str(line);
            }
        }
    }
    out.trim().to_string()
}

/// The inside of a quoted value (opening quote already gone): up to the closing quote,
/// with `\"`-style escapes for `"` and `''` for `'`.
fn unquote(text: &str, quote: char) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\'', '\'') if chars.peek() == Some(&'\'') => {
                chars.next();
                out.push('\'');
            }
            ('\\', '"') => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            },
            (c, q) if c == q => break,
            (c, _) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    fn check(text: &str, name: Option<&str>, description: Option<&str>, body: &str) {
        let expected = Front {
            name: name.map(String::from),
            description: description.map(String::from),
            body: body.to_string(),
        };
        assert_eq!(parse(text), expected, "{text:?}");
    }

    #[test]
    fn frontmatter_simple_and_quoted() {
        check(
            "---\nname: pdf-processing\ndescription: Extract text from PDFs.\n---\nBody.\n",
            Some("pdf-processing"),
            Some("Extract text from PDFs."),
            "Body.",
        );
        check(
            "---\nname: 'it''s'\ndescription: \"say \\\"hi\\\": now\" # why\n---\nB",
            Some("it's"),
            Some("say \"hi\": now"),
            "B",
        );
        check(
            "---\nname: x   # required\ndescription: Use when: the user asks for it\n---\n",
            Some("x"),
            Some("Use when: the user asks for it"),
            "",
        );
        check(
            "---\ndescription: \"a long quoted\n  value on two lines\"\n---\nB",
            None,
            Some("a long quoted value on two lines"),
            "B",
        );
    }

    #[test]
    fn frontmatter_blocks() {
        check(
            "---\nname: caveman\ndescription: >\n  Talk like caveman.\n  Few words.\n\n  New para.\nlicense: MIT\n---\nUgh.",
            Some("caveman"),
            Some("Talk like caveman. Few words.\nNew para."),
            "Ugh.",
        );
        check(
            "---\ndescription: >-\n    Folded and\n    stripped.\n---\n",
            None,
            Some("Folded and stripped."),
            "",
        );
        check(
            "---\ndescription: |\n  line one\n    indented\n  line three\nname: lit\n---\nB",
            Some("lit"),
            Some("line one\n  indented\nline three"),
            "B",
        );
        check(
            "---\ndescription: plain that\n  continues here\n---\nB",
            None,
            Some("plain that continues here"),
            "B",
        );
    }

    #[test]
    fn frontmatter_unknown_keys_crlf_bom_and_broken() {
        // Shaped like published skills: license, metadata maps, allowed-tools lists.
        check(
            "\u{feff}---\r\nname: pdf\r\ndescription: Fill PDF forms. Use when the user names a PDF.\r\nlicense: Proprietary. See LICENSE.txt\r\nmetadata:\r\n  author: someone\r\n  version: \"1.0\"\r\nallowed-tools:\r\n  - Bash\r\n  - Read\r\n---\r\n# PDF\r\nSteps.\r\n",
            Some("pdf"),
            Some("Fill PDF forms. Use when the user names a PDF."),
            "# PDF\nSteps.",
        );
        check(
            "---\nallowed-tools:\n- Bash\n- Read\nname: lists\ndescription: d\n---\nB",
            Some("lists"),
            Some("d"),
            "B",
        );
        check(
            "---\nname: a\nallowed-tools: [Bash, Read]\ndescription: d\n---\n",
            Some("a"),
            Some("d"),
            "",
        );
        check(
            "# no frontmatter\ntext",
            None,
            None,
            "# no frontmatter\ntext",
        );
        check(
            "---\nname: open\nno end",
            None,
            None,
            "---\nname: open\nno end",
        );
        check("---\nname: n\n---\nbody", Some("n"), None, "body");
        check("---\ndescription:\n---\nbody", None, Some(""), "body");
    }

    fn skill_md(name: &str, description: &str) -> String {
        format!("---\nname: {name}\ndescription: {description}\n---\nbody of {description}")
    }

    #[test]
    fn bundled_skills_are_valid() {
        let (skills, warnings) = discover(&[]);
        assert_eq!(warnings, Vec::<String>::new());
        let names: Vec<&str> = skills.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["commit-message", "fix-tests", "review", "terse"]);
        for (folder, text) in BUNDLED {
            let front = parse(text);
            assert_eq!(front.name.as_deref(), Some(folder));
            assert!(
                folder
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            );
            let description = front.description.unwrap();
            assert!(!description.is_empty() && description.len() <= 1024);
            assert!(
                front.body.len() < 1536,
                "{folder}: {} bytes",
                front.body.len()
            );
        }
    }

    #[test]
    fn discovery_order_and_clashes() {
        let tmp = TempDir::new("discover");
        let (repo, home, config) = (tmp.join("repo"), tmp.join("home"), tmp.join("cfg"));
        let cwd = repo.join("sub");
        let skill = |rel: &str, text: &str| tmp.put(&format!("{rel}/SKILL.md"), text);
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        skill(
            "repo/sub/.claude/skills/near",
            &skill_md("near", "cwd claude"),
        );
        skill("repo/.agents/skills/near", &skill_md("near", "root agents"));
        skill(
            "repo/.agents/skills/review",
            &skill_md("review", "project review"),
        );
        skill(
            "home/.claude/skills/review",
            &skill_md("review", "user review"),
        );
        skill("home/.claude/skills/mine", &skill_md("mine", "user claude"));
        skill(
            "home/.agents/skills/folder-name",
            "---\ndescription: >\n  no name\n---\nb",
        );
        skill(
            "cfg/skills/broken",
            "---\nname: broken\n---\nno description",
        );
        skill("cfg/skills/terse", &skill_md("terse", "config terse"));
        skill(
            ".claude/skills/outside",
            &skill_md("outside", "above the repo"),
        );
        let dirs = search_dirs(&cwd, &repo, Some(&home), Some(&config));
        let (skills, warnings) = discover(&dirs);
        let got: Vec<(&str, &str, bool)> = skills
            .iter()
            .map(|s| (s.name.as_str(), s.description.as_str(), s.dir.is_some()))
            .collect();
        assert_eq!(
            got,
            [
                ("commit-message", got[0].1, false),
                ("fix-tests", got[1].1, false),
                ("folder-name", "no name", true),
                ("mine", "user claude", true),
                ("near", "cwd claude", true),
                ("review", "project review", true),
                ("terse", "config terse", true),
            ]
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("cfg/skills/broken/SKILL.md"),
            "{warnings:?}"
        );
        assert!(warnings[0].contains("no description"), "{warnings:?}");
        let near = skills.iter().find(|s| s.name == "near").unwrap();
        assert_eq!(
            near.dir.as_deref(),
            Some(cwd.join(".claude/skills/near").as_path())
        );
        assert_eq!(near.body, "body of cwd claude");
    }

    #[test]
    fn listing_invoke_and_expand() {
        let skills = vec![
            Skill {
                name: "a".into(),
                description: "Does A.".into(),
                body: "Do A with $ARGUMENTS now.".into(),
                dir: Some(PathBuf::from("/s/a")),
            },
            Skill {
                name: "b".into(),
                description: "Does B.".into(),
                body: "Do B.".into(),
                dir: None,
            },
        ];
        assert_eq!(listing(&[], None), None);
        assert_eq!(
            listing(&skills, None).unwrap(),
            "<available_skills>\n\
             - a: Does A. [/s/a]\n- b: Does B.\n</available_skills>"
        );
        assert_eq!(
            invoke(&skills, "a"),
            Ok("Do A with  now.\n\n[skill folder: /s/a — read its files from there]".into())
        );
        assert_eq!(invoke(&skills, "b"), Ok("Do B.".into()));
        assert_eq!(
            invoke(&skills, "c"),
            Err("no skill named `c`; the skills are: a, b".into())
        );
        let check = |prompt: &str, expected: Option<&str>| {
            assert_eq!(expand(&skills, prompt).as_deref(), expected, "{prompt}");
        };
        check(
            "/a x y",
            Some("[the user invoked skill a (folder /s/a)]\n\nDo A with x y now."),
        );
        check("/b", Some("[the user invoked skill b]\n\nDo B."));
        check(
            "/b\nmore",
            Some("[the user invoked skill b]\n\nDo B.\n\nARGUMENTS: more"),
        );
        check("/c", None);
        check("/a/b", None);
        check("a", None);
        assert_eq!(one_line(" x\n  y ", 10), "x y");
        assert_eq!(one_line("héllo", 2), "hé");
    }
}
