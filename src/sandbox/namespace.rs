//! User and mount namespaces for the child: the same ids inside as outside, and bind
//! mounts of paths onto themselves, read-only or just pinned. What runs in the child
//! (after fork, before exec) only makes system calls on memory prepared before.

use super::check;
use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Forks a child that tries `unshare`; the only way to know (sysctls, LSMs and
/// container runtimes each can forbid it).
pub fn works() -> bool {
    // SAFETY: the child only calls unshare and _exit, both async-signal-safe.
    unsafe {
        match libc::fork() {
            -1 => false,
            0 => {
                let ok = libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) == 0;
                libc::_exit(if ok { 0 } else { 1 })
            }
            pid => {
                let mut status = 0;
                libc::waitpid(pid, &mut status, 0) == pid
                    && libc::WIFEXITED(status)
                    && libc::WEXITSTATUS(status) == 0
            }
        }
    }
}

/// The uid and gid maps of the new user namespace: the same ids inside as outside.
pub struct Maps {
    uid: Vec<u8>,
    gid: Vec<u8>,
}

impl Maps {
    pub fn current() -> Maps {
        // SAFETY: getuid and getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Maps {
            uid: format!("{uid} {uid} 1").into_bytes(),
            gid: format!("{gid} {gid} 1").into_bytes(),
        }
    }

    /// In the child.
    pub fn write(&self) -> io::Result<()> {
        write_file(c"/proc/self/setgroups", b"deny")?;
        write_file(c"/proc/self/uid_map", &self.uid)?;
        write_file(c"/proc/self/gid_map", &self.gid)
    }
}

fn write_file(path: &CStr, bytes: &[u8]) -> io::Result<()> {
    // SAFETY: open/write/close on a valid C string and buffer; async-signal-safe.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::close(fd);
        match n {
            n if n == bytes.len() as isize => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }
}

/// One bind mount of a path onto itself, read-only or just pinned.
pub struct Mount {
    path: CString,
    read_only: bool,
    /// Flags of the mount the path is on, which a remount in a user namespace must
    /// keep (they are locked).
    locked: libc::c_ulong,
}

impl Mount {
    pub fn new(path: &Path, read_only: bool) -> io::Result<Mount> {
        let path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: statvfs writes into the zeroed struct; path is a valid C string.
        let flags = unsafe {
            let mut st: libc::statvfs = std::mem::zeroed();
            check(libc::statvfs(path.as_ptr(), &mut st))?;
            st.f_flag
        };
        let keep = [
            (libc::ST_NOSUID, libc::MS_NOSUID),
            (libc::ST_NODEV, libc::MS_NODEV),
            (libc::ST_NOEXEC, libc::MS_NOEXEC),
            (libc::ST_NOATIME, libc::MS_NOATIME),
            (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
            (libc::ST_RELATIME, libc::MS_RELATIME),
        ];
        let locked = keep
            .iter()
            .filter(|(st, _)| flags & st != 0)
            .fold(0, |acc, (_, ms)| acc | ms);
        Ok(Mount {
            path,
            read_only,
            locked,
        })
    }

    /// In the child.
    pub fn apply(&self) -> io::Result<()> {
        let p = self.path.as_ptr();
        let (none, data) = (std::ptr::null(), std::ptr::null());
        // SAFETY: mount on valid C strings.
        unsafe {
            check(libc::mount(p, p, none, libc::MS_BIND | libc::MS_REC, data))?;
            if self.read_only {
                let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | self.locked;
                check(libc::mount(none, p, none, flags, data))?;
            }
        }
        Ok(())
    }
}
