//! Atomic, durable files, for the file store: the trap's state must survive a crash or a `docker restart` at any instant.
//!
//! A write goes to a temporary file in the same directory, is flushed with `sync_all`, renamed over the
//! target, and the directory is synced so the rename itself is durable (style.md "State and persistence";
//! `tempfile::persist` and tmkms skip the syncs, we do not). Every error names the path.

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
}

/// Take the lock of `path` without waiting.
pub fn lock(path: &Path) -> Result<FileLock, LockError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock = PathBuf::from(name);
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

/// Write `bytes` to `path` atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PersistError> {
    let err = |source| PersistError::Write { path: path.to_path_buf(), source };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "state".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
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

    #[test]
    fn unwritable_directory_is_an_error_naming_the_path() {
        let path = Path::new("/nonexistent-dir-for-test/s.json");
        let e = save_json(path, &1u8).unwrap_err().to_string();
        assert!(e.contains("/nonexistent-dir-for-test/s.json"), "{e}");
    }
}
