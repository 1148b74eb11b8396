//! Settings, reach and the blocked-command note, table-tested.

use super::*;
use serde_json::json;

#[test]
fn settings_are_read_strictly() {
    let home = Path::new("/home/u");
    let check = |value: serde_json::Value, expected: Result<Option<Level>, &str>| {
        let got = from_settings(Some(&value), Some(home)).map(|(level, _)| level);
        match (got, expected) {
            (Ok(level), Ok(want)) => assert_eq!(level, want, "{value}"),
            (Err(e), Err(key)) => assert!(e.contains(key), "{value}: {e}"),
            (got, want) => panic!("{value}: got {got:?}, want {want:?}"),
        }
    };
    check(json!("read-only"), Ok(Some(Level::ReadOnly)));
    check(json!({"level": "off"}), Ok(Some(Level::Off)));
    check(json!({"network": false}), Ok(None));
    check(
        json!("none"),
        Err("sandbox must be read-only, workspace-write or off"),
    );
    check(json!({"level": 1}), Err("sandbox.level"));
    check(json!({"network": "no"}), Err("sandbox.network"));
    check(json!({"writable": "~/x"}), Err("sandbox.writable"));
    check(json!({"deny_read": ["relative"]}), Err("sandbox.deny_read"));
    check(json!({"enabled": true}), Err("sandbox.enabled"));
    check(json!(true), Err("sandbox must be"));
    let (_, options) = from_settings(
        Some(&json!({"writable": ["~/.cache", "/opt/x"]})),
        Some(home),
    )
    .unwrap();
    assert_eq!(
        options.writable,
        [PathBuf::from("/home/u/.cache"), PathBuf::from("/opt/x")]
    );
}

#[test]
fn reach_by_level_and_grant() {
    let sandbox = |level| {
        let mut s = Sandbox::off(Path::new("/w"));
        s.level = level;
        s.support.landlock = 4;
        s
    };
    let write = Reach::Write { network: true };
    let cases = [
        (Level::WorkspaceWrite, Grant::Unasked, Reach::Read),
        (Level::WorkspaceWrite, Grant::Approved, write),
        (
            Level::WorkspaceWrite,
            Grant::Auto,
            Reach::Write { network: false },
        ),
        (Level::ReadOnly, Grant::Approved, Reach::Read),
        (Level::ReadOnly, Grant::Auto, Reach::Read),
        (Level::Off, Grant::Unasked, Reach::All),
    ];
    for (level, grant, reach) in cases {
        assert_eq!(sandbox(level).reach(grant), reach, "{level:?} {grant:?}");
    }
    // No Landlock: no sandbox, whatever the level.
    let mut none = sandbox(Level::ReadOnly);
    none.support.landlock = 0;
    assert_eq!(none.reach(Grant::Unasked), Reach::All);
    assert!(none.describe().starts_with("no sandbox"));
}

#[test]
fn blocked_commands_get_a_note() {
    let write = Reach::Write { network: true };
    let note = |reach, failed, out| blocked_note(reach, failed, out).is_some();
    assert!(note(
        write,
        true,
        "touch: cannot touch 'x': Permission denied"
    ));
    assert!(note(Reach::Read, true, "x: Read-only file system"));
    assert!(!note(write, false, "Permission denied"));
    assert!(!note(Reach::All, true, "Permission denied"));
    assert!(!note(write, true, "no such file"));
}
