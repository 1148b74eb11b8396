//! Files on disk, carefully: opening only regular files (never blocking on a FIFO,
//! never reading a device), reading them capped and cancellable, stamping their content,
//! and replacing one so that a crash or a full disk leaves the old content or the new,
//! with its mode, owner, extended attributes and hard links kept.
//!
//! What a file change means (the journal, undo) is left to `change.rs` and the callers.

use serde::{Deserialize, Serialize};
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Largest file `write`, `edit` and undo take: each holds the file twice in memory
/// (before and after); anything bigger is data, better changed with bash.
pub const MAX_FILE: u64 = 128 << 20;

/// Bytes per read, between looks at the cancel flag.
const CHUNK: usize = 64 << 10;

/// What nib knows of a file's content without keeping it: its length and SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub len: u64,
    pub sha256: String,
}

impl Stamp {
    pub fn of(bytes: &[u8]) -> Stamp {
        let mut hasher = Hasher::new();
        hasher.update(bytes);
        hasher.finish()
    }
}

/// A `Stamp` built from pieces.
pub struct Hasher {
    context: ring::digest::Context,
    len: u64,
}

impl Hasher {
    pub fn new() -> Hasher {
        Hasher {
            context: ring::digest::Context::new(&ring::digest::SHA256),
            len: 0,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.context.update(bytes);
        self.len += bytes.len() as u64;
    }

    pub fn finish(self) -> Stamp {
        let digest = self.context.finish();
        let sha256 = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        Stamp {
            len: self.len,
            sha256,
        }
    }
}

/// Why a path could not be opened as a regular file.
#[derive(Debug)]
pub enum OpenError {
    Missing,
    /// A symlink whose target does not exist.
    Dangling(PathBuf),
    /// A directory, FIFO, device or socket; says which.
    Special(&'static str),
    Io(io::Error),
}

/// Opens `path` for reading if it is a regular file. A FIFO or device is refused from
/// its metadata, before any `open` that could block or have side effects; the file is
/// opened non-blocking and checked again in case it was swapped in between.
pub fn open_regular(path: &Path) -> Result<(File, Metadata), OpenError> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(match fs::read_link(path) {
                Ok(target) => OpenError::Dangling(target),
                Err(_) => OpenError::Missing,
            });
        }
        Err(e) => return Err(OpenError::Io(e)),
    };
    if !meta.is_file() {
        return Err(OpenError::Special(kind(&meta)));
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(OpenError::Io)?;
    let meta = file.metadata().map_err(OpenError::Io)?;
    match meta.is_file() {
        true => Ok((file, meta)),
        false => Err(OpenError::Special(kind(&meta))),
    }
}

/// What kind of non-regular file `meta` describes, for a message.
fn kind(meta: &Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    match () {
        _ if t.is_dir() => "a directory",
        _ if t.is_fifo() => "a FIFO (named pipe)",
        _ if t.is_char_device() || t.is_block_device() => "a device",
        _ if t.is_socket() => "a socket",
        _ => "not a regular file",
    }
}

/// Wraps a reader so that a set `cancel` flag ends it with an error.
pub struct Cancellable<'a, R> {
    pub inner: R,
    pub cancel: &'a AtomicBool,
}

impl<R: Read> Read for Cancellable<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("interrupted by the user"));
        }
        let n = buf.len().min(CHUNK);
        self.inner.read(&mut buf[..n])
    }
}

/// Why `read_capped` gave nothing.
#[derive(Debug)]
pub enum ReadError {
    Open(OpenError),
    TooBig(u64),
    Io(io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Open(OpenError::Missing) => write!(f, "no such file"),
            ReadError::Open(OpenError::Dangling(target)) => {
                write!(f, "a symlink to {}, which does not exist", target.display())
            }
            ReadError::Open(OpenError::Special(kind)) => write!(f, "{kind}, not a regular file"),
            ReadError::Open(OpenError::Io(e)) | ReadError::Io(e) => write!(f, "{e}"),
            ReadError::TooBig(len) => write!(
                f,
                "{len} bytes, more than nib changes ({} MiB)",
                MAX_FILE >> 20
            ),
        }
    }
}

/// A regular file's bytes (`None` when it does not exist), at most `MAX_FILE` of them.
pub fn read_capped(path: &Path, cancel: &AtomicBool) -> Result<Option<Vec<u8>>, ReadError> {
    let (file, meta) = match open_regular(path) {
        Ok(opened) => opened,
        Err(OpenError::Missing) => return Ok(None),
        Err(e) => return Err(ReadError::Open(e)),
    };
    if meta.len() > MAX_FILE {
        return Err(ReadError::TooBig(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    let inner = file.take(MAX_FILE + 1);
    Cancellable { inner, cancel }
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    match bytes.len() as u64 > MAX_FILE {
        true => Err(ReadError::TooBig(bytes.len() as u64)),
        false => Ok(Some(bytes)),
    }
}

/// The ancestors of `dir` that do not exist yet, outermost first.
pub fn missing_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && fs::symlink_metadata(d).is_err())
        .map(Path::to_path_buf)
        .collect();
    missing.reverse();
    missing
}

/// Whether a file with several hard links may be rewritten in place (its old content
/// is safe elsewhere); without that, such a file is refused rather than split from its
/// other names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Links {
    InPlace,
    Refuse,
}

/// Puts `bytes` at `path`. A new file or one with a single link: a temp file in the same
/// directory, written, given the old file's mode, owner (where permitted) and extended
/// attributes, `fsync`ed, then renamed over `path` and the directory `fsync`ed, so
/// readers and crashes see the old file or the new one, never a mix. A file with several
/// hard links is rewritten in place (space reserved first, so a full disk fails before
/// any byte changes), when `links` allows it.
pub fn save(path: &Path, bytes: &[u8], links: Links) -> io::Result<()> {
    let old = match fs::metadata(path) {
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    if let Some(meta) = &old {
        if meta.permissions().mode() & 0o222 == 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the file is read-only",
            ));
        }
        if meta.nlink() > 1 {
            return match links {
                Links::InPlace => rewrite_in_place(path, bytes),
                Links::Refuse => Err(io::Error::other(format!(
                    "it has {} hard links and this session keeps no journal to restore it from",
                    meta.nlink()
                ))),
            };
        }
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::other("not a file path"));
    };
    let temp = dir.join(format!(
        ".{}.nib-{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    // A temp file by this name is a leftover of an earlier nib with this pid.
    let _ = fs::remove_file(&temp);
    let like = old.as_ref().map(|meta| (path, meta));
    let result = write_temp(&temp, bytes, like).and_then(|()| fs::rename(&temp, path));
    if result.is_err() {
        let _ = fs::remove_file(&temp);
        return result;
    }
    // The rename is done; making it durable is best effort (some filesystems refuse
    // to sync a directory), and no reason to report the write as failed.
    let _ = File::open(dir).and_then(|d| d.sync_all());
    Ok(())
}

/// Writes the temp file, made like `old` (the file it will replace) when there is one.
fn write_temp(temp: &Path, bytes: &[u8], old: Option<(&Path, &Metadata)>) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(temp)?;
    file.write_all(bytes)?;
    if let Some((path, old)) = old {
        let mine = file.metadata()?;
        if (mine.uid(), mine.gid()) != (old.uid(), old.gid()) {
            match std::os::unix::fs::fchown(&file, Some(old.uid()), Some(old.gid())) {
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
                other => other?,
            }
        }
        // After chown, which may drop some attributes and set-id bits.
        copy_xattrs(path, &file)?;
        file.set_permissions(old.permissions())?;
    }
    file.sync_all()
}

/// Rewrites a hard-linked file in place: space first, then the bytes, then the length.
fn rewrite_in_place(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).open(path)?;
    reserve(&file, bytes.len() as u64)?;
    file.write_all(bytes)?;
    file.set_len(bytes.len() as u64)?;
    file.sync_all()
}

/// Reserves `len` bytes for `file`, where the filesystem can.
#[cfg(target_os = "linux")]
fn reserve(file: &File, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let Ok(len) = libc::off_t::try_from(len) else {
        return Err(io::Error::other("file too large"));
    };
    if len == 0 {
        return Ok(());
    }
    // SAFETY: a valid open descriptor and a non-negative length.
    match unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) } {
        0 | libc::EOPNOTSUPP | libc::EINVAL => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

#[cfg(not(target_os = "linux"))]
fn reserve(_file: &File, _len: u64) -> io::Result<()> {
    Ok(())
}

/// Copies the extended attributes of `from` (ACLs, SELinux labels, `user.*`) onto `to`.
/// Attributes this process may not set (EPERM, ENOTSUP) are skipped.
#[cfg(target_os = "linux")]
fn copy_xattrs(from: &Path, to: &File) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let path = CString::new(from.as_os_str().as_bytes())?;
    let names = xattr_buf(|buf, len| {
        // SAFETY: `buf` has room for `len` bytes (or is null with `len` 0).
        unsafe { libc::listxattr(path.as_ptr(), buf.cast(), len) }
    })?;
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = CString::new(name)?;
        let value = xattr_buf(|buf, len| {
            // SAFETY: as above.
            unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), buf.cast(), len) }
        })?;
        // SAFETY: `value` is a live buffer of `value.len()` bytes.
        let r = unsafe {
            libc::fsetxattr(
                to.as_raw_fd(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            if !matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOTSUP)) {
                return Err(e);
            }
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn copy_xattrs(_from: &Path, _to: &File) -> io::Result<()> {
    Ok(())
}

/// Calls a size-then-fill xattr function twice; a filesystem without xattrs gives nothing.
#[cfg(target_os = "linux")]
fn xattr_buf(call: impl Fn(*mut u8, usize) -> isize) -> io::Result<Vec<u8>> {
    let size = call(std::ptr::null_mut(), 0);
    if size < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOTSUP | libc::ENODATA) => Ok(Vec::new()),
            _ => Err(e),
        };
    }
    let mut buf = vec![0u8; size as usize];
    let got = call(buf.as_mut_ptr(), buf.len());
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(got as usize);
    Ok(buf)
}
