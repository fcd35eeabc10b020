//! The replicas' store (`COORDINATION=etcd`): the shared trap state in etcd, written only through the
//! session's fenced commit (the lock key must still carry this replica's lease, the state's revision must
//! be the one last read), so a replica that lost its lease can never record a fire, and so never sign one.
//!
//! A copy of the state and this replica's facts stay in `STATE_FILE` and `<STATE_FILE>.instance.json`, so
//! that `health` (docker's HEALTHCHECK) still needs no network. The copy is only ever written from what etcd
//! holds, never read back as the truth.

use std::path::PathBuf;
use std::sync::Arc;

use coordination::{CoordError, Session};

use super::{atomic, FileStore, Revision, StateStore, StoreError, StoreFuture, Stored};

/// The shared state in etcd, behind one replica's session.
pub struct EtcdStore {
    session: Arc<Session>,
    /// Where the local copy goes (`STATE_FILE`), and the instance facts beside it.
    local: FileStore,
    copy: PathBuf,
}

impl EtcdStore {
    pub fn new(session: Arc<Session>, state_file: &std::path::Path) -> Self {
        Self { session, local: FileStore::open_shared(state_file), copy: state_file.to_path_buf() }
    }

    /// The copy for `health`: a failure to write it is only bookkeeping.
    fn keep_copy(&self, bytes: &[u8]) {
        if let Err(e) = atomic::write_atomic(&self.copy, bytes) {
            tracing::warn!(error = %e, "cannot keep the local copy of the etcd state (health reads it)");
        }
    }
}

impl From<CoordError> for StoreError {
    fn from(e: CoordError) -> Self {
        match e {
            CoordError::Conflict { expected, found } => StoreError::Conflict {
                store: "etcd".into(),
                expected: (expected > 0).then_some(Revision(expected as u64)),
                found: (found > 0).then_some(Revision(found as u64)),
            },
            other => StoreError::Coordination(other),
        }
    }
}

impl StateStore for EtcdStore {
    fn describe(&self) -> String {
        format!("etcd (replica {})", self.session.coordinator().replica())
    }

    fn load(&self) -> StoreFuture<'_, Option<Stored>> {
        Box::pin(async move {
            let record = self.session.coordinator().read().await?;
            Ok(record.map(|r| {
                self.keep_copy(r.value.as_bytes());
                Stored { bytes: r.value.into_bytes(), revision: Revision(r.revision.max(0) as u64) }
            }))
        })
    }

    fn compare_and_swap<'a>(&'a self, expected: Option<Revision>, bytes: &'a [u8]) -> StoreFuture<'a, Revision> {
        Box::pin(async move {
            let text = std::str::from_utf8(bytes)
                .map_err(|e| StoreError::Coordination(CoordError::Settings(format!("the state is not text: {e}"))))?;
            let expected = expected.map_or(0, |r| r.0 as i64);
            let revision = self.session.commit(expected, text).await?;
            self.keep_copy(bytes);
            Ok(Revision(revision.max(0) as u64))
        })
    }

    fn put_instance<'a>(&'a self, bytes: &'a [u8]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.local.put_instance(bytes).await?;
            let text = String::from_utf8_lossy(bytes);
            Ok(self.session.report(&text).await?)
        })
    }

    fn load_instance(&self) -> StoreFuture<'_, Option<Vec<u8>>> {
        self.local.load_instance()
    }
}

/// The trap's record for the commands a person runs (`status`, `rearm`): no lease, no lock; a write is a
/// compare on the record's revision only, so a `rearm` works while no replica runs and never overwrites a
/// state that changed since it was read.
pub struct EtcdAdmin {
    coord: coordination::Coordinator,
}

impl EtcdAdmin {
    pub fn new(coord: coordination::Coordinator) -> Self {
        Self { coord }
    }

    pub fn coordinator(&self) -> &coordination::Coordinator {
        &self.coord
    }
}

impl StateStore for EtcdAdmin {
    fn describe(&self) -> String {
        "etcd".into()
    }

    fn load(&self) -> StoreFuture<'_, Option<Stored>> {
        Box::pin(async move {
            let record = self.coord.read().await?;
            Ok(record.map(|r| Stored { bytes: r.value.into_bytes(), revision: Revision(r.revision.max(0) as u64) }))
        })
    }

    fn compare_and_swap<'a>(&'a self, expected: Option<Revision>, bytes: &'a [u8]) -> StoreFuture<'a, Revision> {
        Box::pin(async move {
            let text = std::str::from_utf8(bytes)
                .map_err(|e| StoreError::Coordination(CoordError::Settings(format!("the state is not text: {e}"))))?;
            let revision = self.coord.replace(expected.map_or(0, |r| r.0 as i64), text).await?;
            Ok(Revision(revision.max(0) as u64))
        })
    }

    fn put_instance<'a>(&'a self, _bytes: &'a [u8]) -> StoreFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    fn load_instance(&self) -> StoreFuture<'_, Option<Vec<u8>>> {
        Box::pin(async { Ok(None) })
    }
}
