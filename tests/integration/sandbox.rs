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
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// What a file outside the reach of a command holds; it must never reach the model.
const SECRET: &str = "SANDBOX-SECRET-8c2d";

/// True when this kernel has what the sandbox needs; else says why, once per test.
fn supported() -> bool {
    let landlock = fs::read_to_string("/sys/kernel/security/lsm")
        .is_ok_and(|lsm| lsm.split(',').any(|m| m.trim() == "landlock"));
    let userns =
        fs::read_to_string("/proc/sys/user/max_user_namespaces").is_ok_and(|n| n.trim() != "0");
    if !(landlock && userns) {
        eprintln!("skipped: this kernel has no Landlock or no user namespaces");
    }
    landlock && userns
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
    // grep -R follows every symlink: the gate sees `.` and lets it run unasked.
    let link_home = |nib: &Nib| {
        fs::write(nib.home().join("notes.txt"), SECRET).unwrap();
        std::os::unix::fs::symlink(nib.home(), nib.work().join("link")).unwrap();
    };
    let command = format!("grep -R {SECRET} .");
    let ((_, result), (_, control)) = with_control(&command, &[], link_home);
    assert!(!result.contains(&format!(":{SECRET}")), "{result}");
    assert!(result.contains("Permission denied"), "{result}");
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
    let port = listener.local_addr().unwrap().port();
    let command = format!("touch made; (exec 3<>/dev/tcp/127.0.0.1/{port}) && echo CONNECTED");
    let ((nib, result), (_, control)) = with_control(&command, &["--auto"], |_| {});
    assert!(nib.work().join("made").exists(), "--auto ran it: {result}");
    assert!(!result.contains("CONNECTED"), "{result}");
    assert!(control.contains("CONNECTED"), "{control}");
}

#[test]
fn auto_still_refuses_deny_rules_and_protected_paths() {
    if !supported() {
        return;
    }
    let deny = ["--auto", "--disallowedTools", "Bash(touch *)"];
    let (nib, result) = bash("touch denied", &deny, |_| {});
    assert!(result.contains("denied"), "{result}");
    assert!(!nib.work().join("denied").exists());
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
