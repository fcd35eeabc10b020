//! Atomic, durable files, for the file store: the trap's state must survive a crash or a `docker restart` at any instant.
//!
//! A write goes to a temporary file in the same directory, is flushed with `sync_all`, renamed over the
//! target, and the directory is synced so the rename itself is durable (style.md "State and persistence";
//! `tempfile::persist` and tmkms skip the syncs, we do not). Every error names the path.
//!
//! A path is first [`resolve`]d to the file it reaches (symlinks followed, its directory canonical), so the
//! lock and the rename act on the real file whatever path names it: two paths to one state file share one
//! lock, and a save through a symlink replaces the target, never the link.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Failure to read or write a persisted file.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("{path} is not a valid state file: {source}")]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error("cannot encode state for {path}: {source}")]
    Encode { path: PathBuf, source: serde_json::Error },
}

/// An exclusive advisory lock beside a state file (`<path>.lock`), held for as long as this value lives,
/// so two processes never drive the same trap (two `run`s would both fire; a `rearm` under a running trap
/// would be overwritten by its next poll).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

/// Why a lock was not had.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another witness-trap process is using {path} (lock {lock})")]
    Held { path: PathBuf, lock: PathBuf },
    #[error("cannot lock {lock}: {source}")]
    Io { lock: PathBuf, source: io::Error },
    #[error("cannot find the file {path} names: {source}")]
    Resolve { path: PathBuf, source: io::Error },
}

/// At most this many symbolic links are followed (Linux's own limit), so a loop is an error, not a hang.
const MAX_LINKS: usize = 40;

/// The file `path` reaches: an absolute path whose directory is canonical (symlinked directories
/// resolved) and whose last component is not a symlink (a symlink, even a dangling one, is followed to
/// its target, relative to the link's directory). The file itself need not exist (first arming), but its
/// directory must.
pub fn resolve(path: &Path) -> io::Result<PathBuf> {
    let mut path = path.to_path_buf();
    for _ in 0..=MAX_LINKS {
        let Some(name) = path.file_name().map(|n| n.to_os_string()) else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file"));
        };
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = fs::canonicalize(dir)?;
        let full = dir.join(name);
        match fs::symlink_metadata(&full) {
            Ok(m) if m.file_type().is_symlink() => path = dir.join(fs::read_link(&full)?),
            Ok(_) => return Ok(full),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(full),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!("more than {MAX_LINKS} symbolic links")))
}

/// `path` with `suffix` appended to its last component (`s.json` → `s.json.lock`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Take the lock of the file `path` reaches ([`resolve`]) without waiting: `<real file>.lock`.
pub fn lock(path: &Path) -> Result<FileLock, LockError> {
    let real = resolve(path).map_err(|source| LockError::Resolve { path: path.to_path_buf(), source })?;
    let lock = with_suffix(&real, ".lock");
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock)
        .map_err(|source| LockError::Io { lock: lock.clone(), source })?;
    match file.try_lock() {
        Ok(()) => Ok(FileLock { _file: file }),
        Err(fs::TryLockError::WouldBlock) => Err(LockError::Held { path: path.to_path_buf(), lock }),
        Err(fs::TryLockError::Error(source)) => Err(LockError::Io { lock, source }),
    }
}

/// Write `bytes` to the file `path` reaches ([`resolve`]) atomically and durably: a symlink stays a link.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PersistError> {
    let err = |source| PersistError::Write { path: path.to_path_buf(), source };
    let real = resolve(path).map_err(err)?;
    // `resolve` returns an absolute path with a file name.
    let dir = real.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let name = real.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "state".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        // `create_new`: never write through a symlink someone left at the temporary name.
        let _ = fs::remove_file(&tmp);
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &real)?;
        // Make the rename durable; some filesystems refuse to open a directory, which is not fatal.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// Serialize `value` as pretty JSON and write it atomically.
pub fn save_json<T: Serialize>(path: &Path, value: &T) -> Result<(), PersistError> {
    let mut bytes =
        serde_json::to_vec_pretty(value).map_err(|source| PersistError::Encode { path: path.to_path_buf(), source })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Read JSON from `path`; `Ok(None)` if the file does not exist.
pub fn load_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, PersistError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| PersistError::Parse { path: path.to_path_buf(), source }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PersistError::Read { path: path.to_path_buf(), source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        assert_eq!(load_json::<Vec<u32>>(&path).unwrap(), None);
        save_json(&path, &vec![1u32, 2, 3]).unwrap();
        assert_eq!(load_json::<Vec<u32>>(&path).unwrap(), Some(vec![1, 2, 3]));
        save_json(&path, &vec![4u32]).unwrap();
        assert_eq!(load_json::<Vec<u32>>(&path).unwrap(), Some(vec![4]));
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn corrupt_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        fs::write(&path, b"{not json").unwrap();
        let e = load_json::<Vec<u32>>(&path).unwrap_err().to_string();
        assert!(e.contains("s.json"), "{e}");
    }

    #[test]
    fn a_held_lock_is_refused_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let held = lock(&path).unwrap();
        assert!(matches!(lock(&path), Err(LockError::Held { .. })));
        drop(held);
        assert!(lock(&path).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn a_save_through_a_symlink_writes_the_target_and_keeps_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        let link = dir.path().join("link.json");
        // Dangling at first (nothing armed yet): the first save creates the target.
        std::os::unix::fs::symlink("real.json", &link).unwrap();
        save_json(&link, &vec![1u32]).unwrap();
        save_json(&link, &vec![2u32]).unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link is still a link");
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("real.json"));
        assert_eq!(load_json::<Vec<u32>>(&real).unwrap(), Some(vec![2]));
        assert_eq!(load_json::<Vec<u32>>(&link).unwrap(), Some(vec![2]));
        // Only the link and its target: no temporary file left, no second state file.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn resolve_follows_links_and_symlinked_directories() {
        let dir = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(dir.path()).unwrap();
        fs::create_dir(base.join("real-dir")).unwrap();
        std::os::unix::fs::symlink(base.join("real-dir"), base.join("dir-link")).unwrap();
        // A link (relative to its own directory) to a link through a symlinked directory.
        std::os::unix::fs::symlink("../dir-link/s.json", base.join("real-dir/hop.json")).unwrap();
        std::os::unix::fs::symlink("real-dir/hop.json", base.join("top.json")).unwrap();
        let want = base.join("real-dir/s.json");
        assert_eq!(resolve(&base.join("dir-link/s.json")).unwrap(), want);
        assert_eq!(resolve(&base.join("top.json")).unwrap(), want);
        assert_eq!(resolve(&base.join("real-dir/s.json")).unwrap(), want);
        // A loop is an error, not a hang.
        std::os::unix::fs::symlink("b", base.join("a")).unwrap();
        std::os::unix::fs::symlink("a", base.join("b")).unwrap();
        let e = resolve(&base.join("a")).unwrap_err().to_string();
        assert!(e.contains("symbolic links"), "{e}");
        // A missing directory is an error.
        assert_eq!(resolve(&base.join("missing/s.json")).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[cfg(unix)]
    #[test]
    fn a_lock_through_a_symlinked_directory_is_the_same_lock() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("alias")).unwrap();
        let held = lock(&dir.path().join("real/s.json")).unwrap();
        match lock(&dir.path().join("alias/s.json")) {
            Err(LockError::Held { lock, .. }) => {
                assert_eq!(lock, fs::canonicalize(dir.path()).unwrap().join("real/s.json.lock"))
            }
            other => panic!("the second lock was not refused: {other:?}"),
        }
        drop(held);
        assert!(lock(&dir.path().join("alias/s.json")).is_ok());
    }

    #[test]
    fn unwritable_directory_is_an_error_naming_the_path() {
        let path = Path::new("/nonexistent-dir-for-test/s.json");
        let e = save_json(path, &1u8).unwrap_err().to_string();
        assert!(e.contains("/nonexistent-dir-for-test/s.json"), "{e}");
    }
}
