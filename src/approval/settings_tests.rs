//! Settings files and folder trust: files merged with deny winning, the project's
//! allow rules and mode held until the folder is trusted, errors named by file, and
//! "always in this project" answers written beside the other keys.

use super::*;
use crate::approval::tests::{check_table, rule_set};
use crate::approval::trust::trust_folder;
use crate::testing::TempDir;
use serde_json::Value;

fn load_from(tmp: &TempDir, cli: RuleSet, mode: Option<Mode>) -> Result<Gate, String> {
    let root = tmp.join("proj");
    std::fs::create_dir_all(&root).unwrap();
    let ws = Workspace {
        root,
        home: Some(tmp.join("home")),
    };
    let places = Places {
        nib_config: Some(tmp.join("config/nib")),
        nib_data: Some(tmp.join("data/nib")),
    };
    load(cli, mode, ws, places)
}

#[test]
fn settings_files_merge_and_deny_wins() {
    let tmp = TempDir::new("merge");
    tmp.put(
        "home/.claude/settings.json",
        r#"{"permissions":{"allow":["Bash(npm test *)","Bash(make *)"],"defaultMode":"acceptEdits"}}"#,
    );
    tmp.put(
        "config/nib/settings.json",
        r#"{"permissions":{"allow":["Bash(just *)"]}}"#,
    );
    tmp.put(
        "proj/.claude/settings.json",
        r#"{"permissions":{"deny":["Bash(make deploy *)"],"ask":["Bash(just release *)"],"defaultMode":"bypassPermissions"},"model":"x"}"#,
    );
    tmp.put(
        "proj/.claude/settings.local.json",
        r#"{"permissions":{"allow":["Bash(cargo run *)","Bash(oops"]}}"#,
    );
    let cli = || rule_set(&[], &[], &["Bash(npm test --update *)"]);
    trust_folder(&tmp.join("data/nib"), &tmp.join("proj")).unwrap();
    let gate = load_from(&tmp, cli(), None).unwrap();
    assert_eq!(gate.mode(), Mode::AcceptEdits);
    check_table(
        &gate,
        &[
            ("npm test", 'A'),
            ("npm test --update x", 'D'),
            ("make all", 'A'),
            ("make deploy now", 'D'),
            ("just build", 'A'),
            ("just release", 'Q'),
            ("cargo run", 'A'),
        ],
    );
    let warnings = gate.warnings().join("\n");
    assert!(warnings.contains("bypassPermissions"), "{warnings}");
    assert!(warnings.contains("Bash(oops") && warnings.contains("settings.local.json"));
    let cli_mode = load_from(&tmp, RuleSet::default(), Some(Mode::Plan)).unwrap();
    assert_eq!(cli_mode.mode(), Mode::Plan);
}

#[test]
fn project_allow_rules_and_mode_wait_for_trust() {
    let tmp = TempDir::new("trust-gate");
    tmp.put(
        "proj/.claude/settings.json",
        r#"{"permissions":{"allow":["Bash"],"deny":["Bash(curl *)"],"ask":["Bash(git push *)"],"defaultMode":"acceptEdits"}}"#,
    );
    tmp.put(
        "proj/.claude/settings.local.json",
        r#"{"permissions":{"allow":["Bash(make *)"]}}"#,
    );
    let untrusted = load_from(&tmp, RuleSet::default(), None).unwrap();
    assert_eq!(untrusted.mode(), Mode::Default);
    // Deny and ask rules apply in any folder; the allow rules do not.
    let cases = [
        ("touch x", 'Q'),
        ("make all", 'Q'),
        ("curl x", 'D'),
        ("git push", 'Q'),
    ];
    check_table(&untrusted, &cases);
    assert_eq!(untrusted.trust_question().len(), 2);
    let notice = untrusted.untrusted_notice().unwrap();
    assert!(
        notice.contains(".claude/settings.json")
            && notice.contains("settings.local.json")
            && notice.contains("nib trust"),
        "{notice}"
    );
    let listed = untrusted.rules_in_force().join("\n");
    assert!(listed.contains("deny: Bash(curl *) (from "), "{listed}");
    assert!(!listed.contains("allow: Bash"), "{listed}");

    // Saying yes applies them now and is remembered.
    let mut gate = untrusted.clone();
    gate.answer_trust(true).unwrap();
    assert_eq!(gate.mode(), Mode::AcceptEdits);
    let trusted = [
        ("touch x", 'A'),
        ("make all", 'A'),
        ("curl x", 'D'),
        ("git push", 'Q'),
    ];
    check_table(&gate, &trusted);
    assert!(
        gate.rules_in_force()
            .iter()
            .any(|r| r.starts_with("allow: Bash (from "))
    );
    let again = load_from(&tmp, RuleSet::default(), None).unwrap();
    assert!(again.trust_question().is_empty() && again.untrusted_notice().is_none());
    check_table(&again, &trusted);
    // A mode on the command line stays.
    let cli_mode = load_from(&tmp, RuleSet::default(), Some(Mode::Plan)).unwrap();
    assert_eq!(cli_mode.mode(), Mode::Plan);

    // Saying no is remembered too; rules the user saved apply without trust.
    let tmp2 = TempDir::new("trust-saved");
    tmp2.put(
        "proj/.claude/settings.json",
        r#"{"permissions":{"allow":["Bash(touch *)"]}}"#,
    );
    let mut gate = load_from(&tmp2, RuleSet::default(), None).unwrap();
    gate.answer_trust(false).unwrap();
    gate.save_project_rule("Bash(make *)").unwrap();
    let next = load_from(&tmp2, RuleSet::default(), None).unwrap();
    check_table(&next, &[("make all", 'A'), ("touch x", 'Q')]);
    assert_eq!(next.held[0].allow, ["Bash(touch *)"]);
    assert!(next.trust_question().is_empty() && next.untrusted_notice().is_some());
}

#[test]
fn settings_errors_are_reported() {
    let tmp = TempDir::new("errors");
    tmp.put(
        "proj/.claude/settings.json",
        r#"{"permissions":{"deny":["Bash(rm *"]}}"#,
    );
    let err = load_from(&tmp, RuleSet::default(), None).err().unwrap();
    assert!(
        err.contains(".claude/settings.json") && err.contains("Bash(rm *"),
        "{err}"
    );
    tmp.put("proj/.claude/settings.json", "{not json");
    let err = load_from(&tmp, RuleSet::default(), None).err().unwrap();
    assert!(err.contains("not valid JSON"), "{err}");
    tmp.put(
        "proj/.claude/settings.json",
        r#"{"permissions":{"allow":"Bash"}}"#,
    );
    assert!(load_from(&tmp, RuleSet::default(), None).is_err());
    tmp.put(
        "proj/.claude/settings.json",
        r#"{"permissions":{"allow":["WebFetch"]}}"#,
    );
    let gate = load_from(&tmp, RuleSet::default(), None).unwrap();
    assert!(gate.warnings().is_empty());
}

#[test]
fn saving_project_rules() {
    let tmp = TempDir::new("save");
    let root = tmp.path().to_path_buf();
    write_project_rule(&root, "Bash(npm test *)").unwrap();
    write_project_rule(&root, "Bash(npm test *)").unwrap();
    let path = root.join(".claude/settings.local.json");
    let value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        value["permissions"]["allow"],
        serde_json::json!(["Bash(npm test *)"])
    );
    tmp.put(
        ".claude/settings.local.json",
        r#"{"env":{"A":"1"},"permissions":{"deny":["Read(.env)"],"allow":["Read"]}}"#,
    );
    write_project_rule(&root, "Edit(./src/a.rs)").unwrap();
    let value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(value["env"]["A"], "1");
    assert_eq!(
        value["permissions"]["deny"],
        serde_json::json!(["Read(.env)"])
    );
    assert_eq!(
        value["permissions"]["allow"],
        serde_json::json!(["Read", "Edit(./src/a.rs)"])
    );
    assert!(write_project_rule(&root, "Bash(oops").is_err());
    tmp.put(".claude/settings.local.json", "[1]");
    assert!(write_project_rule(&root, "Read").is_err());
}
