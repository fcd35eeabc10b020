//! What can go wrong talking to etcd, and the two refusals the fence gives.

/// An etcd operation that did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    /// etcd did not answer (down, unreachable, no leader, timed out, refused our credentials).
    #[error("etcd unavailable: {0}")]
    Unavailable(String),
    /// This replica's lease was not renewed in time: it must not act, whatever it last knew.
    #[error("this replica's etcd lease is not live (not renewed within LEASE_TTL_SECS): it does not act")]
    NotLive,
    /// The lock is not this replica's (another holds it, or nobody): the write was refused.
    #[error("fenced: the trap's lock is held by {holder}, not by this replica")]
    Fenced {
        /// The holder's replica name, or `nobody`.
        holder: String,
    },
    /// The record changed since it was read (another replica, or `rearm`): read it again.
    #[error("the trap's record in etcd changed (revision {found}, expected {expected})")]
    Conflict { expected: i64, found: i64 },
    /// A TLS file could not be read, or the settings cannot make a client.
    #[error("{0}")]
    Settings(String),
}

impl From<etcd_client::Error> for CoordError {
    fn from(e: etcd_client::Error) -> Self {
        CoordError::Unavailable(e.to_string())
    }
}
