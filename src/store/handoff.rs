//! How a planned switch asks a running trap to step aside: a request file beside the state file
//! (`<STATE_FILE>.switch.json`), and the state file's lock.
//!
//! The switch creates the request (exclusively: a second switch finds it and is refused at once), keeps it
//! fresh while it lives, and waits for the lock. The trap looks for a request between two looks; while
//! armed it stops, releases the lock and waits. The switch takes the lock, marks the request as holding
//! it, does its work, removes the request, and releases the lock; the trap then takes the lock back and
//! reopens the state the switch left. Only the lock holder signs, so the two never sign at once.
//!
//! A switch that dies leaves a request behind: one not refreshed for [`STALE_AFTER`] is ignored, and one
//! that says it holds the lock while the lock is free belongs to a switch that is gone (the kernel released
//! its lock). Times are wall-clock (the two processes share no other clock), in Unix milliseconds.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::atomic;

/// The request file is `<STATE_FILE>` with this suffix.
pub const SUFFIX: &str = ".switch.json";
/// A request not refreshed for this long belongs to a switch that is gone.
pub const STALE_AFTER: Duration = Duration::from_secs(30);
/// How often a living switch refreshes its request.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// What the request file says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The switch's process id and host, for the operator.
    pub pid: u32,
    pub host: String,
    pub requested_at_ms: u64,
    /// Last refreshed.
    pub alive_at_ms: u64,
    /// The switch holds the state file's lock.
    pub holds_lock: bool,
}

/// Why a request could not be made.
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    #[error("another switch (pid {pid} on {host}) is already waiting on {path}")]
    AlreadyRequested { path: PathBuf, pid: u32, host: String },
    #[error("cannot write the switch request {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a trap sees when it looks for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// No request, or only a stale one.
    Nothing,
    /// A living switch waits for the lock.
    Waiting(Request),
    /// A switch says it holds the lock.
    HoldsLock(Request),
}

/// The request file of the state file `state_file` (symlinks resolved, as the lock is).
pub fn request_path(state_file: &Path) -> PathBuf {
    let real = atomic::resolve(state_file).unwrap_or_else(|_| state_file.to_path_buf());
    atomic::with_suffix(&real, SUFFIX)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn read(path: &Path) -> Option<Request> {
    std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok())
}

fn is_fresh(r: &Request, now: u64) -> bool {
    now.saturating_sub(r.alive_at_ms) <= STALE_AFTER.as_millis() as u64
}

/// Look for a living request beside `state_file`.
pub fn look(state_file: &Path) -> Seen {
    match read(&request_path(state_file)) {
        Some(r) if is_fresh(&r, now_ms()) && r.holds_lock => Seen::HoldsLock(r),
        Some(r) if is_fresh(&r, now_ms()) => Seen::Waiting(r),
        _ => Seen::Nothing,
    }
}

/// Remove a request left by a switch that is gone.
pub fn clear(state_file: &Path) {
    let _ = std::fs::remove_file(request_path(state_file));
}

/// The switch's side: its request, removed when dropped.
#[derive(Debug)]
pub struct Claim {
    path: PathBuf,
    request: Request,
    refresher: Option<tokio::task::JoinHandle<()>>,
}

impl Claim {
    /// Make the request. A living request of another switch refuses it; a stale one is replaced.
    pub fn create(state_file: &Path) -> Result<Self, HandoffError> {
        let path = request_path(state_file);
        let now = now_ms();
        let host = hostname();
        let request =
            Request { pid: std::process::id(), host, requested_at_ms: now, alive_at_ms: now, holds_lock: false };
        let bytes = serde_json::to_vec(&request).unwrap_or_default();
        let io = |source| HandoffError::Io { path: path.clone(), source };
        for _ in 0..2 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    use std::io::Write as _;
                    f.write_all(&bytes).map_err(io)?;
                    let mut made = Self { path: path.clone(), request, refresher: None };
                    made.start_refreshing();
                    return Ok(made);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match read(&path) {
                    Some(r) if is_fresh(&r, now) => {
                        return Err(HandoffError::AlreadyRequested { path, pid: r.pid, host: r.host })
                    }
                    // Stale or unreadable: a switch that is gone left it.
                    _ => std::fs::remove_file(&path).map_err(io)?,
                },
                Err(e) => return Err(io(e)),
            }
        }
        Err(io(std::io::Error::other("the request file keeps reappearing")))
    }

    /// Say that this switch holds the lock now.
    pub fn mark_holds_lock(&mut self) {
        self.request.holds_lock = true;
        self.start_refreshing();
    }

    /// (Re)start the task that keeps the request fresh, writing the current request at once.
    fn start_refreshing(&mut self) {
        if let Some(t) = self.refresher.take() {
            t.abort();
        }
        let (path, mut request) = (self.path.clone(), self.request.clone());
        let write = move |r: &mut Request| {
            r.alive_at_ms = now_ms();
            if let Ok(bytes) = serde_json::to_vec(r) {
                // A failed refresh only makes the request look stale sooner; the lock is what guards.
                let _ = atomic::write_atomic(&path, &bytes);
            }
        };
        let mut first = request.clone();
        write(&mut first);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            self.refresher = Some(handle.spawn(async move {
                loop {
                    tokio::time::sleep(REFRESH_EVERY).await;
                    write(&mut request);
                }
            }));
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(t) = self.refresher.take() {
            t.abort();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_request_at_a_time_and_it_goes_with_the_switch() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        assert_eq!(look(&state), Seen::Nothing);
        let mut first = Claim::create(&state).unwrap();
        assert!(matches!(look(&state), Seen::Waiting(r) if r.pid == std::process::id()));
        let e = Claim::create(&state).unwrap_err().to_string();
        assert!(e.contains("already waiting"), "{e}");
        first.mark_holds_lock();
        assert!(matches!(look(&state), Seen::HoldsLock(_)));
        drop(first);
        assert_eq!(look(&state), Seen::Nothing);
        assert!(!request_path(&state).exists());
    }

    #[tokio::test]
    async fn a_stale_request_is_ignored_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let old = Request {
            pid: 1,
            host: "gone".into(),
            requested_at_ms: 1,
            alive_at_ms: now_ms() - STALE_AFTER.as_millis() as u64 - 1000,
            holds_lock: true,
        };
        std::fs::write(request_path(&state), serde_json::to_vec(&old).unwrap()).unwrap();
        assert_eq!(look(&state), Seen::Nothing, "a switch that stopped refreshing is gone");
        let fresh = Claim::create(&state).unwrap();
        assert!(matches!(look(&state), Seen::Waiting(r) if r.pid == std::process::id()));
        drop(fresh);
        std::fs::write(request_path(&state), b"{garbage").unwrap();
        assert_eq!(look(&state), Seen::Nothing);
        let replaced = Claim::create(&state).unwrap();
        drop(replaced);
        clear(&state);
    }
}
