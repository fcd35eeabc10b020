//! witness-trap's coordination through etcd v3, so that of several traps on different hosts exactly one fires.
//!
//! Each replica opens a [`Session`]: one etcd lease, renewed in the background, that it stops trusting a
//! third of the TTL before etcd would let it expire. With it the replica campaigns for the trap's lock (a key
//! bound to its lease, [`Session::try_acquire`]) and writes the trap's state only through
//! [`Session::commit`]: one transaction guarded by the lock key still carrying this replica's lease and by
//! the state's revision being the one it last read. That transaction is the fence: a replica that was
//! stopped past its TTL and wakes up finds its lease gone, the lock another's or nobody's, and its commit
//! refused, whatever it believes. [`Coordinator`] is the part without a lease (read the state, clear it with
//! a compare on its revision, list the replicas and the lock holder), for `status` and `rearm`.
//!
//! The key layout under `ETCD_PREFIX` (default `/witness-trap/`), per trap scope (`chain/account`):
//! `<prefix><scope>/lock` (the holder's replica name, leased), `<prefix><scope>/trap` (the state, not
//! leased: it outlives every replica), `<prefix><scope>/replicas/<name>` (each replica's last poll, leased).
//!
//! Nothing here knows the trap: values are opaque text (the service writes JSON).

mod check;
mod coordinator;
mod error;
mod options;
mod session;
#[doc(hidden)]
pub mod testing;

pub use check::{check_endpoints, check_prefix, check_reachable};
pub use coordinator::{Coordinator, Record, Replica};
pub use error::CoordError;
pub use options::{EtcdOptions, TlsFiles};
pub use session::Session;
