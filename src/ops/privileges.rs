//! Dropping root (`--user NAME`), as NSD and Unbound do: the process starts as root to
//! bind port 53, opens its logs, then becomes `NAME` (its primary group and its
//! supplementary groups) for the rest of its life, so that a flaw in a parser hands an
//! attacker an unprivileged account rather than the machine.
//!
//! Written on `libc` (already a dependency) rather than the `nix` crate: it is four
//! calls — `getpwnam_r`, `initgroups`, `setgid`, `setuid` — in the order that leaves no
//! way back (groups first, then the user id). glibc's `setgid`/`setuid` change every
//! thread of the process, so the server threads already running are dropped too.

use std::ffi::{CStr, CString};
use std::path::Path;

use crate::error::{ConfigError, Error};

/// A user looked up in the password database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// Whether the process runs as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Looks `name` up (`getpwnam_r`).
pub fn lookup(name: &str) -> Result<User, Error> {
    let unknown = || {
        Error::from(ConfigError::NoSuchUser {
            name: name.to_owned(),
        })
    };
    let c_name = CString::new(name).map_err(|_| unknown())?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: a zeroed passwd is a valid out-parameter; getpwnam_r fills it, pointing
    // its strings into `buf`, which outlives every read of them below.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    let rc = unsafe {
        libc::getpwnam_r(
            c_name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return Err(unknown());
    }
    // SAFETY: set by a successful getpwnam_r, pointing into `buf`.
    let name = unsafe { CStr::from_ptr(pwd.pw_name) }
        .to_string_lossy()
        .into_owned();
    Ok(User {
        name,
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
    })
}

/// Becomes `user` for good: its groups, its group id, then its user id; then checks
/// that root cannot be had back.
pub fn drop_to(user: &User) -> Result<(), Error> {
    let fail = |what: &str| {
        Error::io(
            format!("--user {}: {what} failed", user.name),
            std::io::Error::last_os_error(),
        )
    };
    // SAFETY: getuid has no preconditions and cannot fail.
    if !is_root() && unsafe { libc::getuid() } == user.uid {
        log::info!("running as user {} already", user.name);
        return Ok(());
    }
    let c_name = CString::new(user.name.as_str()).map_err(|_| fail("the name"))?;
    // SAFETY: plain system calls on values we own; each result is checked.
    unsafe {
        if libc::initgroups(c_name.as_ptr(), user.gid as _) != 0 {
            return Err(fail("initgroups"));
        }
        if libc::setgid(user.gid) != 0 {
            return Err(fail("setgid"));
        }
        if libc::setuid(user.uid) != 0 {
            return Err(fail("setuid"));
        }
        if user.uid != 0 && libc::setuid(0) == 0 {
            return Err(Error::io(
                format!("--user {}: root could be taken back", user.name),
                std::io::Error::from(std::io::ErrorKind::PermissionDenied),
            ));
        }
    }
    log::info!(
        "running as user {} (uid {}, gid {})",
        user.name,
        user.uid,
        user.gid
    );
    Ok(())
}

/// Gives `paths` (those that exist: the files dnsd made in its log directory while it
/// was root) to `user`, so that it can go on writing them once it is that user.
pub fn give(user: &User, paths: &[std::path::PathBuf]) -> Result<(), Error> {
    for path in paths.iter().filter(|p| p.exists()) {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
            .map_err(|e| Error::io(format!("--user {}: chown {}", user.name, path.display()), e))?;
    }
    Ok(())
}

/// Whether the process (as it now is) may create files in `dir` and write the files it
/// names that exist (`access(2)` with the real ids, which after [`drop_to`] are the
/// user's).
pub fn check_writable(user: &User, dir: &Path, files: &[&Path]) -> Result<(), Error> {
    let writable = |path: &Path, mode: libc::c_int| {
        let Ok(c_path) = CString::new(path.as_os_str().as_encoded_bytes()) else {
            return false;
        };
        // SAFETY: a valid C string; access only reads it.
        unsafe { libc::access(c_path.as_ptr(), mode) == 0 }
    };
    let mut problems = Vec::new();
    if !writable(dir, libc::W_OK | libc::X_OK) {
        problems.push(dir.display().to_string());
    }
    for file in files {
        if file.exists() && !writable(file, libc::W_OK) {
            problems.push(file.display().to_string());
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::LogsNotWritable {
            user: user.name.clone(),
            paths: problems.join(", "),
        }
        .into())
    }
}
