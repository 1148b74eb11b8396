//! The Landlock ABI (linux/landlock.h) by hand: three system calls, the access
//! rights nib uses, and which ABI version handles what.

use super::check;
use std::io;

const CREATE_RULESET_VERSION: u32 = 1;
const RULE_PATH_BENEATH: libc::c_int = 1;

const EXECUTE: u64 = 1 << 0;
const WRITE_FILE: u64 = 1 << 1;
const READ_FILE: u64 = 1 << 2;
const READ_DIR: u64 = 1 << 3;
/// Every right of ABI 1 (bits 0–12).
const ABI1: u64 = (1 << 13) - 1;
const REFER: u64 = 1 << 13;
const TRUNCATE: u64 = 1 << 14;
const IOCTL_DEV: u64 = 1 << 15;
/// The first ABI that handles TCP.
pub const NET_ABI: u32 = 4;
const NET_BIND_TCP: u64 = 1 << 0;
const NET_CONNECT_TCP: u64 = 1 << 1;
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;

/// Reading and running files and listing directories.
pub const READ: u64 = EXECUTE | READ_FILE | READ_DIR;
/// Rights that make sense on a file (not a directory).
pub const FILE: u64 = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV;
/// What a device like /dev/null needs.
pub const DEVICE: u64 = READ_FILE | WRITE_FILE | TRUNCATE | IOCTL_DEV;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// The ABI version, 0 without Landlock.
pub fn abi() -> u32 {
    // SAFETY: the version query takes no attribute.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    u32::try_from(v).unwrap_or(0)
}

/// The filesystem rights this ABI handles.
pub fn handled_fs(abi: u32) -> u64 {
    let mut rights = ABI1;
    for (since, right) in [(2, REFER), (3, TRUNCATE), (5, IOCTL_DEV)] {
        if abi >= since {
            rights |= right;
        }
    }
    rights
}

/// A ruleset that denies every handled right until rules allow it; with
/// `no_network` (ABI 4+) TCP bind and connect are denied too, and (ABI 6+)
/// signals and abstract sockets outside the sandbox are out of reach.
pub fn create(abi: u32, no_network: bool) -> io::Result<libc::c_int> {
    let net = match (no_network, abi >= NET_ABI) {
        (true, true) => NET_BIND_TCP | NET_CONNECT_TCP,
        _ => 0,
    };
    let scoped = match abi >= 6 {
        true if no_network => SCOPE_SIGNAL | SCOPE_ABSTRACT_UNIX_SOCKET,
        true => SCOPE_SIGNAL,
        false => 0,
    };
    let attr = RulesetAttr {
        handled_access_fs: handled_fs(abi),
        handled_access_net: net,
        scoped,
    };
    // SAFETY: attr is a valid ruleset attribute of the given size.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr,
            std::mem::size_of::<RulesetAttr>(),
            0u32,
        )
    };
    match fd {
        -1 => Err(io::Error::last_os_error()),
        fd => Ok(fd as libc::c_int),
    }
}

pub fn add_path(ruleset: libc::c_int, parent: libc::c_int, access: u64) -> io::Result<()> {
    if access == 0 {
        return Ok(());
    }
    let attr = PathBeneathAttr {
        allowed_access: access,
        parent_fd: parent,
    };
    // SAFETY: attr is a valid path-beneath attribute; both fds are open.
    check(unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset,
            RULE_PATH_BENEATH,
            &attr,
            0u32,
        )
    })
}

/// In the child: async-signal-safe.
pub fn restrict(ruleset: libc::c_int) -> io::Result<()> {
    // SAFETY: a plain system call on an open descriptor.
    check(unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32) })
}
