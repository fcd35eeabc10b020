//! Where the trap's state lives: behind [`StateStore`], so a file today and a store shared by several
//! replicas (etcd) tomorrow are the same to the trap.
//!
//! The store holds two things, kept apart:
//! - the **shared trap state** (armed / firing / fired, the baseline, the attempts, the alerts): one value
//!   with a [`Revision`], changed only by compare-and-swap, so a writer that read an old revision can never
//!   overwrite a newer state (with etcd: a transaction comparing the key's mod revision);
//! - **per-instance facts** (this process's last poll, for `health` and `status`): written freely, never
//!   part of the trap's decisions, and a failure to write them is only bookkeeping.
//!
//! Values are bytes: the typed layer (`trap::state`) encodes and decodes them, so a store never needs to
//! know a chain's types. [`file::FileStore`] is the single-host store; `etcd::EtcdStore` (with `--features
//! etcd`) the replicas' one.

pub mod atomic;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod file;
pub mod handoff;
pub mod memory;

use std::future::Future;
use std::pin::Pin;

pub use file::FileStore;
pub use memory::MemoryStore;

/// A version of the shared state, as the store counts them; compare-and-swap compares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Revision(pub u64);

/// The shared state as stored, with its revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub bytes: Vec<u8>,
    pub revision: Revision,
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The state changed since it was read (another writer, or a person editing the file).
    #[error("{store}: the state changed since it was read (expected revision {expected:?}, found {found:?}); not overwriting it")]
    Conflict { store: String, expected: Option<Revision>, found: Option<Revision> },
    /// Another process holds the store for writing.
    #[error(transparent)]
    Locked(#[from] atomic::LockError),
    #[error(transparent)]
    Io(#[from] atomic::PersistError),
    /// etcd refused or could not take the write (`COORDINATION=etcd`): fenced, not live, or unavailable.
    /// Never guarded from memory: a replica that cannot record a step must not take it.
    #[cfg(feature = "etcd")]
    #[error(transparent)]
    Coordination(coordination::CoordError),
}

/// A boxed future, so that stores can be used as `dyn StateStore` (an etcd store's calls are async).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A place to keep the trap's state.
pub trait StateStore: Send + Sync {
    /// Where the state is, for messages ("/state/witness-trap-state.json").
    fn describe(&self) -> String;
    /// The shared state and its revision; `None` if nothing was ever stored.
    fn load(&self) -> StoreFuture<'_, Option<Stored>>;
    /// Replace the shared state if its revision is still `expected` (`None`: only if nothing is stored yet).
    /// Returns the new revision.
    fn compare_and_swap<'a>(&'a self, expected: Option<Revision>, bytes: &'a [u8]) -> StoreFuture<'a, Revision>;
    /// Write this instance's facts (its last poll).
    fn put_instance<'a>(&'a self, bytes: &'a [u8]) -> StoreFuture<'a, ()>;
    /// This instance's facts, if any were written.
    fn load_instance(&self) -> StoreFuture<'_, Option<Vec<u8>>>;
}
