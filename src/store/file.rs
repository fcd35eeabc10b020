//! The single-host store: the shared state in `STATE_FILE`, this instance's facts beside it in
//! `<STATE_FILE>.instance.json`, both written atomically and durably ([`super::atomic`]).
//!
//! A writer opens the store with [`FileStore::open_exclusive`], which takes the advisory lock
//! `<STATE_FILE>.lock` for as long as the store lives, so two processes never drive one trap. A revision is
//! a digest of the file's bytes: compare-and-swap re-reads the file and refuses to write over bytes it did
//! not expect (a file edited by hand while the trap ran).

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
    /// Open for writing: takes the lock beside the file, or fails at once if another process holds it.
    pub fn open_exclusive(path: &Path) -> Result<Self, StoreError> {
        let lock = atomic::lock(path)?;
        Ok(Self { path: path.to_path_buf(), instance: instance_path(path), _lock: Some(lock) })
    }

    /// Open for reading (`health`, `status`); writes are still atomic but unguarded by the lock.
    pub fn open_shared(path: &Path) -> Self {
        Self { path: path.to_path_buf(), instance: instance_path(path), _lock: None }
    }

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

/// `<STATE_FILE>.instance.json`.
pub fn instance_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".instance.json");
    PathBuf::from(name)
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
}
