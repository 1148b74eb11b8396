//! The kernel sandbox from outside: commands nib runs headless (allowed without asking,
//! approved with `--yes`, or run by `--auto`) try to read, write and connect where they
//! may not. Each attack has a control: the same command under `--sandbox off` does
//! what it tried, so no test passes because the command was broken to begin with.
//!
//! On a kernel without Landlock or user namespaces these tests skip with one line;
//! on the machines nib is built on they always run.

use crate::support::*;
use serde_json::json;
use std::fs;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

/// What a file outside the reach of a command holds; it must never reach the model.
const SECRET: &str = "SANDBOX-SECRET-8c2d";

/// Set by `scripts/test`: a kernel without the sandbox fails the suite instead of
/// skipping, so these tests cannot silently stop running where they should run.
const REQUIRE_VAR: &str = "NIB_REQUIRE_SANDBOX";

/// True when this kernel has what the sandbox needs; else says why, once per test.
fn supported() -> bool {
    // SAFETY: the version query of landlock_create_ruleset takes no attribute.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    let userns =
        fs::read_to_string("/proc/sys/user/max_user_namespaces").is_ok_and(|n| n.trim() != "0");
    // Ubuntu's AppArmor leaves unprivileged user namespaces without capabilities.
    let restricted = fs::read_to_string("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
        .is_ok_and(|n| n.trim() == "1");
    // SAFETY: geteuid cannot fail.
    let userns = userns && !(restricted && unsafe { libc::geteuid() } != 0);
    if abi >= 4 && userns {
        return true;
    }
    let why = "skipped: this kernel has no Landlock ABI 4+ or no user namespaces";
    assert!(
        std::env::var_os(REQUIRE_VAR).is_none(),
        "{why} ({REQUIRE_VAR} is set)"
    );
    eprintln!("{why}");
    false
}

/// One nib with its own temp dir (so the test's HOME, under the system temp dir, is
/// outside everything a command may write).
fn nib(server: &FakeServer) -> Nib {
    let nib = Nib::against(server, Protocol::OpenAi).timeout(60);
    let tmp = nib.home().with_file_name("tmp");
    fs::create_dir_all(&tmp).unwrap();
    nib.env("TMPDIR", tmp)
}

/// Runs `command` as the model's one bash call with `flags`; the tool result.
fn bash(command: &str, flags: &[&str], prepare: impl FnOnce(&Nib)) -> (Nib, String) {
    let server = FakeServer::start(vec![
        Reply::tool_call("bash", json!({ "command": command })),
        Reply::text("Finished."),
    ]);
    let nib = nib(&server).args(["-p", "go"]).args(flags);
    prepare(&nib);
    let out = nib.run();
    let reqs = server.chat_requests();
    assert_eq!(reqs.len(), 2, "one tool round\n{out}");
    let results = reqs[1].tool_results();
    (nib, results[0].content.clone())
}

/// The same command confined (`flags`) and under `--sandbox off` (with `flags` too):
/// both results.
fn with_control(
    command: &str,
    flags: &[&str],
    prepare: impl Fn(&Nib),
) -> ((Nib, String), (Nib, String)) {
    let confined = bash(command, flags, &prepare);
    let off: Vec<&str> = flags.iter().copied().chain(["--sandbox", "off"]).collect();
    let control = bash(command, &off, &prepare);
    (confined, control)
}

#[test]
fn an_approved_command_writes_the_workspace_and_nothing_outside() {
    if !supported() {
        return;
    }
    let command = "touch inside; touch ../home/outside; echo done";
    let ((nib, result), (control, _)) = with_control(command, &["--yes"], |_| {});
    assert!(nib.work().join("inside").exists(), "{result}");
    assert!(!nib.home().join("outside").exists(), "{result}");
    assert!(result.contains("Permission denied"), "{result}");
    assert!(control.home().join("outside").exists());
}

#[test]
fn a_failed_write_tells_the_model_it_was_the_sandbox() {
    if !supported() {
        return;
    }
    let (_, result) = bash("touch ../home/outside", &["--yes"], |_| {});
    assert!(result.starts_with("exit status: 1\n"), "{result}");
    assert!(result.contains("note: nib's sandbox"), "{result}");
    assert!(result.contains("--sandbox off"), "{result}");
}

#[test]
fn an_approved_command_cannot_read_ssh_keys() {
    if !supported() {
        return;
    }
    let put_key = |nib: &Nib| {
        fs::create_dir_all(nib.home().join(".ssh")).unwrap();
        fs::write(nib.home().join(".ssh/id_ed25519"), SECRET).unwrap();
    };
    let ((_, result), (_, control)) = with_control("cat ~/.ssh/id_ed25519", &["--yes"], put_key);
    assert!(!result.contains(SECRET), "{result}");
    assert!(result.contains("Permission denied"), "{result}");
    assert!(control.contains(SECRET), "{control}");
}

#[test]
fn an_unasked_read_through_a_symlink_cannot_leave_the_workspace() {
    if !supported() {
        return;
    }
    // grep -R follows every symlink: the gate walks `.`, finds the link out and asks,
    // which headless is a refusal, with the sandbox on or off.
    let link_home = |nib: &Nib| {
        fs::write(nib.home().join("notes.txt"), SECRET).unwrap();
        std::os::unix::fs::symlink(nib.home(), nib.work().join("link")).unwrap();
    };
    let command = format!("grep -R {SECRET} .");
    let ((_, result), (_, off)) = with_control(&command, &[], link_home);
    for refused in [&result, &off] {
        assert!(!refused.contains(&format!(":{SECRET}")), "{refused}");
        assert!(refused.contains("follows the symlink"), "{refused}");
    }
    // Control: approved and unconfined, it reads through the link.
    let (_, control) = bash(&command, &["--yes", "--sandbox", "off"], link_home);
    assert!(
        control.contains(&format!("link/notes.txt:{SECRET}")),
        "{control}"
    );
}

#[test]
fn an_approved_command_cannot_write_git_hooks_or_config() {
    if !supported() {
        return;
    }
    let git_dir = |nib: &Nib| {
        fs::create_dir_all(nib.work().join(".git/hooks")).unwrap();
        fs::write(nib.work().join(".git/config"), "[core]\n").unwrap();
    };
    let command = "echo evil > .git/hooks/pre-commit; echo '[core] fsmonitor = evil' >> .git/config; \
                   mv .git moved; echo done";
    let ((nib, result), (control, _)) = with_control(command, &["--yes"], git_dir);
    assert!(
        !nib.work().join(".git/hooks/pre-commit").exists(),
        "{result}"
    );
    assert_eq!(
        nib.read(".git/config").as_deref(),
        Some("[core]\n"),
        "{result}"
    );
    assert!(nib.work().join(".git").is_dir(), "{result}");
    assert!(result.contains("Read-only file system"), "{result}");
    assert!(control.work().join("moved/hooks/pre-commit").exists());
}

#[test]
fn auto_runs_what_would_ask_without_network() {
    if !supported() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = listener.local_addr().unwrap().port();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    let command = format!(
        "touch made; echo datagram > /dev/udp/127.0.0.1/{udp_port}; \
         (exec 3<>/dev/tcp/127.0.0.1/{tcp}) && echo CONNECTED"
    );
    let received = |udp: &UdpSocket| udp.recv(&mut [0; 64]).is_ok();
    let (nib, result) = bash(&command, &["--auto"], |_| {});
    assert!(nib.work().join("made").exists(), "--auto ran it: {result}");
    assert!(!result.contains("CONNECTED"), "{result}");
    assert!(!received(&udp), "a datagram left: {result}");
    assert!(result.contains("reach no network"), "{result}");
    // Control: unconfined, both get through.
    let (_, control) = bash(&command, &["--yes", "--sandbox", "off"], |_| {});
    assert!(control.contains("CONNECTED"), "{control}");
    assert!(received(&udp), "{control}");
}

#[test]
fn auto_still_refuses_deny_rules_ask_rules_and_protected_paths() {
    if !supported() {
        return;
    }
    let deny = ["--auto", "--disallowedTools", "Bash(touch *)"];
    let (nib, result) = bash("touch denied", &deny, |_| {});
    assert!(result.contains("denied"), "{result}");
    assert!(!nib.work().join("denied").exists());
    let ask_rule = |nib: &Nib| {
        nib.put(
            ".claude/settings.json",
            r#"{"permissions": {"ask": ["Bash(touch *)"]}}"#,
        )
    };
    let (nib, result) = bash("touch asked", &["--auto"], ask_rule);
    assert!(result.contains("denied"), "{result}");
    assert!(!nib.work().join("asked").exists());
    let (nib, result) = bash("mkdir -p .claude && touch .claude/x", &["--auto"], |_| {});
    assert!(!nib.work().join(".claude/x").exists(), "{result}");
    // Control: the same call with --yes in an unconfined run goes through.
    let (nib, _) = bash(
        "mkdir -p .claude && touch .claude/x",
        &["--yes", "--sandbox", "off"],
        |_| {},
    );
    assert!(nib.work().join(".claude/x").exists());
}

#[test]
fn a_confined_command_cannot_create_what_runs_code_later() {
    if !supported() {
        return;
    }
    // Spelled so the gate cannot see the paths: only the sandbox stands in the way. A
    // repository without .git/hooks, and no .claude/ or .mcp.json yet.
    let command = "d=.cl; mkdir -p ${d}aude && echo '{}' > ${d}aude/settings.local.json; \
                   h=.git/ho; mkdir -p ${h}oks && echo evil > ${h}oks/pre-commit; \
                   m=.mc; echo '{}' > ${m}p.json; echo done";
    let repository = |nib: &Nib| fs::create_dir_all(nib.work().join(".git")).unwrap();
    let ((nib, result), (control, _)) = with_control(command, &["--auto"], repository);
    for made in [
        ".claude/settings.local.json",
        ".git/hooks/pre-commit",
        ".mcp.json",
    ] {
        assert!(!nib.work().join(made).exists(), "{made}: {result}");
    }
    assert!(result.contains("removed .mcp.json"), "{result}");
    // Control: unconfined, with the same answer (--auto, sandbox off, asks: so --yes).
    for made in [
        ".claude/settings.local.json",
        ".git/hooks/pre-commit",
        ".mcp.json",
    ] {
        assert!(
            !control.work().join(made).exists(),
            "{made}: --auto never runs unconfined"
        );
    }
    let (control, _) = bash(command, &["--yes", "--sandbox", "off"], repository);
    for made in [
        ".claude/settings.local.json",
        ".git/hooks/pre-commit",
        ".mcp.json",
    ] {
        assert!(control.work().join(made).exists(), "{made}");
    }
}

#[test]
fn writing_mcp_json_always_asks() {
    // An allow rule for the command does not cover .mcp.json: headless, it is refused.
    let allowed = ["--allowedTools", "Bash(cp *)"];
    let source = |nib: &Nib| nib.put("servers.json", "{}");
    let (nib, result) = bash("cp servers.json .mcp.json", &allowed, source);
    assert!(!nib.work().join(".mcp.json").exists(), "{result}");
    assert!(
        result.contains(".mcp.json always need approval"),
        "{result}"
    );
    // Control: the same rule writes another file.
    let (nib, result) = bash("cp servers.json other.json", &allowed, source);
    assert!(nib.work().join("other.json").exists(), "{result}");
}

/// A repository whose own config runs a script that leaves `marker` in HOME.
fn hostile_repo(nib: &Nib) -> PathBuf {
    let marker = nib.home().join("marker");
    let script = nib.work().join("monitor.sh");
    fs::write(&script, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(nib.work())
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["config", "core.fsmonitor", &script.to_string_lossy()]);
    marker
}

#[test]
fn an_unasked_git_status_runs_nothing_from_the_repository() {
    if !supported() {
        return;
    }
    // Unconfined, so only the defusing can stop it.
    let (nib, result) = bash("git status", &["--sandbox", "off"], |n| {
        hostile_repo(n);
    });
    assert!(result.starts_with("exit status: 0"), "{result}");
    assert!(!nib.home().join("marker").exists(), "{result}");
    // Control: the same git approved by --yes (not nib's read-only set) runs it.
    let (nib, _) = bash("sh -c 'git status'", &["--yes", "--sandbox", "off"], |n| {
        hostile_repo(n);
    });
    assert!(nib.home().join("marker").exists());
}

/// A repository with a changed file whose attributes name a filter and a diff driver
/// that the repository's own config defines (when `drivers`): programs that leave a
/// marker in HOME.
fn repo_with_drivers(nib: &Nib, drivers: bool) {
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .current_dir(nib.work())
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    nib.put("f.txt", "one\n");
    git(&["add", "f.txt"]);
    git(&["commit", "-qm", "one"]);
    nib.put("f.txt", "two\n");
    nib.put(".gitattributes", "* filter=evil diff=evil\n");
    if drivers {
        let marker = nib.home().join("marker");
        let run = format!("sh -c 'touch {}; cat'", marker.display());
        git(&["config", "filter.evil.clean", &run]);
        git(&["config", "diff.evil.textconv", &format!("{run} <")]);
    }
}

#[test]
fn unasked_git_never_runs_a_driver_the_repository_defines() {
    // Unconfined, so only the gate can stop it: `git diff` is in the read-only set,
    // but not where the repository's config names programs.
    let (nib, result) = bash("git diff", &["--sandbox", "off"], |n| {
        repo_with_drivers(n, true)
    });
    assert!(!nib.home().join("marker").exists(), "{result}");
    assert!(result.contains("git needs approval here"), "{result}");
    assert!(result.contains("filter \"evil\""), "{result}");
    // Control: approved, the same call runs the repository's filter.
    let (nib, _) = bash("git diff", &["--yes", "--sandbox", "off"], |n| {
        repo_with_drivers(n, true)
    });
    assert!(nib.home().join("marker").exists());
    // Control: without drivers in its config, the repository's git diff runs unasked.
    let (_, result) = bash("git diff", &["--sandbox", "off"], |n| {
        repo_with_drivers(n, false)
    });
    assert!(
        result.starts_with("exit status: 0") && result.contains("+two"),
        "{result}"
    );
}

#[test]
fn bad_levels_are_usage_errors() {
    let out = Nib::new().args(["--sandbox", "bogus", "-p", "x"]).run();
    assert_eq!(out.code(), 2, "{out}");
    assert!(
        out.stderr.contains("read-only, workspace-write or off"),
        "{out}"
    );
    let nib = Nib::new().args(["-p", "x"]);
    fs::create_dir_all(nib.config_home().join("nib")).unwrap();
    let settings = json!({"sandbox": {"level": "workspace-write", "network": "no"}});
    fs::write(
        nib.config_home().join("nib/settings.json"),
        settings.to_string(),
    )
    .unwrap();
    let out = nib.run();
    assert_eq!(out.code(), 1, "{out}");
    assert!(out.stderr.contains("sandbox.network"), "{out}");
}

/// nib's key in the tests below: it must not appear in any form.
const KEY: &str = "sk-ant-test-KeepThisKeyOutOfReach0123";

/// Letters shifted by one, as a script would to get past redaction.
fn rot1(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='y' | 'A'..='Y' => (c as u8 + 1) as char,
            'z' => 'a',
            'Z' => 'A',
            c => c,
        })
        .collect()
}

/// A project script the user allowed by a rule: it prints nib's environment and
/// command line with letters shifted, and keeps a copy of what it printed.
const ENVIRON_SCRIPT: &str = "#!/bin/sh\nfor f in /proc/$PPID/environ /proc/$PPID/cmdline; do\n  \
    tr '\\0A-Za-z' '\\nB-ZAb-za' < $f\ndone 2>&1 | tee out.txt\n";

/// The same through nib's memory: every writable mapping, shifted.
const MEMORY_SCRIPT: &str = "#!/usr/bin/env python3\nimport os, re\npid = os.getppid()\nout = []\ntry:\n    \
    mem = open(f'/proc/{pid}/mem', 'rb')\n    for line in open(f'/proc/{pid}/maps'):\n        \
    span, perms = line.split()[:2]\n        if 'rw' not in perms: continue\n        \
    lo, hi = (int(x, 16) for x in span.split('-'))\n        try:\n            mem.seek(lo)\n            \
    out += re.findall(rb'[ -~]{8,}', mem.read(hi - lo))\n        except OSError: pass\nexcept OSError as e:\n    \
    out.append(str(e).encode())\nshift = bytes.maketrans(b'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', \
    b'BCDEFGHIJKLMNOPQRSTUVWXYZAbcdefghijklmnopqrstuvwxyza')\n\
    open('out.txt', 'wb').write(b'\\n'.join(s.translate(shift) for s in out))\nprint(len(out))\n";

/// Runs `script` as `./keys.sh`, allowed by a rule; what it printed, and everything
/// that left nib (requests to the model, stdout, stderr) with it.
fn keys_run(script: &str, flags: &[&str]) -> (String, String) {
    let server = FakeServer::start(vec![
        Reply::tool_call("bash", json!({ "command": "./keys.sh" })),
        Reply::text("Finished."),
    ]);
    let nib = Nib::against(&server, Protocol::Anthropic)
        .env("ANTHROPIC_API_KEY", KEY)
        .env("NIB_VISIBLE_MARKER", "plainvalue")
        .args(["-p", "go", "--allowedTools", "Bash(./keys.sh *)"])
        .args(flags);
    nib.put("keys.sh", script);
    fs::set_permissions(
        nib.work().join("keys.sh"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let out = nib.run();
    let bodies: String = server
        .requests()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.raw_body).into_owned())
        .collect();
    let printed = nib.read("out.txt").unwrap_or_default();
    (format!("{printed}\n{bodies}\n{out}"), printed)
}

fn key_forms() -> [String; 3] {
    [KEY.to_string(), rot1(KEY), rot1("KeepThisKeyOutOfReach")]
}

#[test]
fn no_command_finds_nibs_key_in_its_environment() {
    if !supported() {
        return;
    }
    for flags in [&[][..], &["--sandbox", "off"]] {
        let (everything, printed) = keys_run(ENVIRON_SCRIPT, flags);
        for form in key_forms() {
            assert!(
                !everything.contains(&form),
                "{flags:?}: {form} found\n{printed}"
            );
        }
        match flags.is_empty() {
            true => assert!(printed.contains("Permission denied"), "{everything}"),
            // Control: unconfined, the script does read nib's environment.
            false => assert!(printed.contains(&rot1("plainvalue")), "{everything}"),
        }
    }
}

#[test]
fn a_confined_command_cannot_read_nibs_memory() {
    if !supported() {
        return;
    }
    let (everything, printed) = keys_run(MEMORY_SCRIPT, &[]);
    for form in key_forms() {
        assert!(!everything.contains(&form), "{form} found\n{printed}");
    }
    assert!(printed.contains(&rot1("Permission denied")), "{everything}");
    // Control: unconfined, root reads any memory (the key is there: it is in use);
    // anyone else is stopped by nib being non-dumpable.
    let (everything, _) = keys_run(MEMORY_SCRIPT, &["--sandbox", "off"]);
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    assert_eq!(everything.contains(&rot1(KEY)), root, "root: {root}");
}

#[test]
fn read_only_level_writes_nothing_and_connects_nowhere_even_when_approved() {
    if !supported() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let command = format!("touch inside; (exec 3<>/dev/tcp/127.0.0.1/{port}) && echo CONNECTED");
    let flags = ["--yes", "--sandbox", "read-only"];
    let ((nib, result), (control, output)) = with_control(&command, &flags, |_| {});
    assert!(!nib.work().join("inside").exists(), "{result}");
    assert!(!result.contains("CONNECTED"), "{result}");
    assert!(control.work().join("inside").exists());
    assert!(output.contains("CONNECTED"), "{output}");
}

#[test]
fn the_users_settings_set_the_level_and_a_project_cannot_lower_it() {
    if !supported() {
        return;
    }
    let settings = |level: &'static str| {
        move |nib: &Nib| {
            fs::create_dir_all(nib.config_home().join("nib")).unwrap();
            let user = json!({ "sandbox": { "level": level } }).to_string();
            fs::write(nib.config_home().join("nib/settings.json"), user).unwrap();
            nib.put(
                ".claude/settings.json",
                r#"{"sandbox": "off", "permissions": {}}"#,
            );
        }
    };
    let (nib, result) = bash("touch inside", &["--yes"], settings("read-only"));
    assert!(!nib.work().join("inside").exists(), "{result}");
    // Control: the same files with the user's level at workspace-write.
    let (nib, result) = bash("touch inside", &["--yes"], settings("workspace-write"));
    assert!(nib.work().join("inside").exists(), "{result}");
}

#[test]
fn auto_never_runs_unconfined() {
    if !supported() {
        return;
    }
    let (nib, result) = bash("touch made", &["--auto", "--sandbox", "off"], |_| {});
    assert!(result.contains("denied"), "{result}");
    assert!(!nib.work().join("made").exists());
    // Control: inside the sandbox --auto runs it.
    let (nib, result) = bash("touch made", &["--auto"], |_| {});
    assert!(nib.work().join("made").exists(), "{result}");
}
