//! The single-host store: the shared state in `STATE_FILE`, this instance's facts beside it in
//! `<STATE_FILE>.instance.json`, both written atomically and durably ([`super::atomic`]).
//!
//! A writer opens the store with [`FileStore::open_exclusive`], which takes the advisory lock
//! `<STATE_FILE>.lock` for as long as the store lives, so two processes never drive one trap. A revision is
//! a digest of the file's bytes: compare-and-swap re-reads the file and refuses to write over bytes it did
//! not expect (a file edited by hand while the trap ran).
//!
//! `STATE_FILE` is resolved to the file it reaches ([`atomic::resolve`]: symlinks and symlinked
//! directories followed) before anything is locked or written, so every path to one state file shares one
//! lock and one `.instance.json`, and a save never turns a symlink into a second state file.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::atomic::{self, FileLock, PersistError};
use super::{Revision, StateStore, StoreError, StoreFuture, Stored};

/// The state file store.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    instance: PathBuf,
    _lock: Option<FileLock>,
}

impl FileStore {
    /// Open for writing: takes the lock beside the file `path` reaches, or fails at once if another
    /// process holds it (whatever path it was given).
    pub fn open_exclusive(path: &Path) -> Result<Self, StoreError> {
        let real =
            atomic::resolve(path).map_err(|source| atomic::LockError::Resolve { path: path.to_path_buf(), source })?;
        let lock = atomic::lock(&real)?;
        Ok(Self { instance: atomic::with_suffix(&real, INSTANCE_SUFFIX), path: real, _lock: Some(lock) })
    }

    /// Open for reading (`health`, `status`); writes are still atomic but unguarded by the lock. A path
    /// that cannot be resolved (its directory is missing) is used as given: reading it finds nothing.
    pub fn open_shared(path: &Path) -> Self {
        let real = resolved_or_given(path);
        Self { instance: atomic::with_suffix(&real, INSTANCE_SUFFIX), path: real, _lock: None }
    }

    /// The state file itself (symlinks resolved).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<Option<Stored>, StoreError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                let revision = revision_of(&bytes);
                Ok(Some(Stored { bytes, revision }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(PersistError::Read { path: self.path.clone(), source }.into()),
        }
    }
}

const INSTANCE_SUFFIX: &str = ".instance.json";

fn resolved_or_given(path: &Path) -> PathBuf {
    atomic::resolve(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `<STATE_FILE>.instance.json`, beside the file `path` reaches (symlinks resolved, as the store writes it);
/// beside `path` as given if it cannot be resolved.
pub fn instance_path(path: &Path) -> PathBuf {
    atomic::with_suffix(&resolved_or_given(path), INSTANCE_SUFFIX)
}

fn revision_of(bytes: &[u8]) -> Revision {
    let digest = Sha256::digest(bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    Revision(u64::from_be_bytes(first))
}

impl StateStore for FileStore {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn load(&self) -> StoreFuture<'_, Option<Stored>> {
        Box::pin(async move { self.read() })
    }

    fn compare_and_swap<'a>(&'a self, expected: Option<Revision>, bytes: &'a [u8]) -> StoreFuture<'a, Revision> {
        Box::pin(async move {
            let found = self.read()?.map(|s| s.revision);
            if found != expected {
                return Err(StoreError::Conflict { store: self.describe(), expected, found });
            }
            atomic::write_atomic(&self.path, bytes)?;
            Ok(revision_of(bytes))
        })
    }

    fn put_instance<'a>(&'a self, bytes: &'a [u8]) -> StoreFuture<'a, ()> {
        Box::pin(async move { Ok(atomic::write_atomic(&self.instance, bytes)?) })
    }

    fn load_instance(&self) -> StoreFuture<'_, Option<Vec<u8>>> {
        Box::pin(async move {
            match std::fs::read(&self.instance) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(PersistError::Read { path: self.instance.clone(), source }.into()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn compare_and_swap_refuses_a_stale_revision() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let store = FileStore::open_exclusive(&path).unwrap();
        assert!(store.load().await.unwrap().is_none());
        let r1 = store.compare_and_swap(None, b"one").await.unwrap();
        assert!(matches!(store.compare_and_swap(None, b"again").await, Err(StoreError::Conflict { .. })));
        let r2 = store.compare_and_swap(Some(r1), b"two").await.unwrap();
        assert_ne!(r1, r2);
        assert!(matches!(store.compare_and_swap(Some(r1), b"three").await, Err(StoreError::Conflict { .. })));
        let loaded = store.load().await.unwrap().unwrap();
        assert_eq!((loaded.bytes.as_slice(), loaded.revision), (&b"two"[..], r2));
        // A person editing the file is a conflict too, never silently overwritten.
        std::fs::write(&path, b"edited").unwrap();
        let e = store.compare_and_swap(Some(r2), b"four").await.unwrap_err().to_string();
        assert!(e.contains("s.json") && e.contains("changed"), "{e}");
    }

    #[tokio::test]
    async fn a_second_writer_is_refused_and_instance_facts_live_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let store = FileStore::open_exclusive(&path).unwrap();
        assert!(matches!(FileStore::open_exclusive(&path), Err(StoreError::Locked(_))));
        store.put_instance(b"{\"poll\":1}").await.unwrap();
        assert!(store.load().await.unwrap().is_none(), "instance facts are not the shared state");
        let reader = FileStore::open_shared(&path);
        assert_eq!(reader.load_instance().await.unwrap().as_deref(), Some(&b"{\"poll\":1}"[..]));
        drop(store);
        assert!(FileStore::open_exclusive(&path).is_ok());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn one_writer_whatever_path_reaches_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("s.json");
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        // The state file does not exist yet (first arming): the dangling link still leads to it.
        let first = FileStore::open_exclusive(&real).unwrap();
        match FileStore::open_exclusive(&link) {
            Err(StoreError::Locked(atomic::LockError::Held { .. })) => {}
            other => panic!("a second writer through a symlink was not refused: {other:?}"),
        }
        drop(first);
        let first = FileStore::open_exclusive(&link).unwrap();
        assert!(matches!(FileStore::open_exclusive(&real), Err(StoreError::Locked(_))), "and the other way round");
        drop(first);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn saves_through_a_symlink_land_in_the_target_and_the_link_stays() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("s.json");
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink("s.json", &link).unwrap();
        let store = FileStore::open_exclusive(&link).unwrap();
        let r1 = store.compare_and_swap(None, b"one").await.unwrap();
        store.compare_and_swap(Some(r1), b"two").await.unwrap();
        store.put_instance(b"{}").await.unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link is still a link");
        assert_eq!(std::fs::read(&real).unwrap(), b"two");
        // The instance facts sit beside the real file, and are found through either path.
        assert!(dir.path().join("s.json.instance.json").is_file());
        assert!(!dir.path().join("link.json.instance.json").exists());
        assert_eq!(instance_path(&link), instance_path(&real));
        assert_eq!(FileStore::open_shared(&link).load_instance().await.unwrap().as_deref(), Some(&b"{}"[..]));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_symlinked_directory_is_the_same_store() {
        let dir = tempfile::tempdir().unwrap();
        let real_dir = dir.path().join("real");
        let alias = dir.path().join("alias");
        std::fs::create_dir(&real_dir).unwrap();
        std::os::unix::fs::symlink(&real_dir, &alias).unwrap();
        let store = FileStore::open_exclusive(&alias.join("s.json")).unwrap();
        assert!(matches!(FileStore::open_exclusive(&real_dir.join("s.json")), Err(StoreError::Locked(_))));
        assert_eq!(store.path(), std::fs::canonicalize(&real_dir).unwrap().join("s.json"));
        store.compare_and_swap(None, b"armed").await.unwrap();
        store.put_instance(b"{}").await.unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&real_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["s.json", "s.json.instance.json", "s.json.lock"]);
        assert!(std::fs::symlink_metadata(&alias).unwrap().file_type().is_symlink());
    }
}
