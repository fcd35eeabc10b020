//! A store in memory: the trap's unit tests use it, and it is the smallest complete [`StateStore`] (what a
//! new store, such as etcd, must do: revisions that change on every write, and compare-and-swap on them).

use std::sync::Mutex;

use super::{Revision, StateStore, StoreError, StoreFuture, Stored};

/// The state and the instance facts in memory; revisions count writes.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    shared: Option<Stored>,
    instance: Option<Vec<u8>>,
    writes: u64,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared state as stored now (tests look at it).
    pub fn shared(&self) -> Option<Vec<u8>> {
        self.lock().shared.as_ref().map(|s| s.bytes.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the data half-written: every update is one assignment.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl StateStore for MemoryStore {
    fn describe(&self) -> String {
        "memory".into()
    }

    fn load(&self) -> StoreFuture<'_, Option<Stored>> {
        Box::pin(async move { Ok(self.lock().shared.clone()) })
    }

    fn compare_and_swap<'a>(&'a self, expected: Option<Revision>, bytes: &'a [u8]) -> StoreFuture<'a, Revision> {
        Box::pin(async move {
            let mut inner = self.lock();
            let found = inner.shared.as_ref().map(|s| s.revision);
            if found != expected {
                return Err(StoreError::Conflict { store: "memory".into(), expected, found });
            }
            inner.writes += 1;
            let revision = Revision(inner.writes);
            inner.shared = Some(Stored { bytes: bytes.to_vec(), revision });
            Ok(revision)
        })
    }

    fn put_instance<'a>(&'a self, bytes: &'a [u8]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.lock().instance = Some(bytes.to_vec());
            Ok(())
        })
    }

    fn load_instance(&self) -> StoreFuture<'_, Option<Vec<u8>>> {
        Box::pin(async move { Ok(self.lock().instance.clone()) })
    }
}
