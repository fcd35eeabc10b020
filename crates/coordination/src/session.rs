//! One replica's lease, renewed in the background, and everything that needs it: the lock campaign, the
//! fenced commit of the trap's record, the replica's report.
//!
//! The session trusts its lease only until a third of the TTL before it would expire, counted from when
//! the last renewal that etcd answered was *sent* (so a slow answer never stretches it), on the monotonic
//! clock (which keeps counting while the process is stopped: a replica woken from SIGSTOP sees its lease as
//! dead at once). etcd keeps the real fence: every commit compares the lock key's lease with ours.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::coordinator::found_revision;
use crate::{CoordError, Coordinator, EtcdOptions};

/// A replica's lease on one trap's keys.
#[derive(Debug)]
pub struct Session {
    coord: Coordinator,
    lease: i64,
    /// Until when the lease may be trusted; `None` once etcd said it is gone.
    trusted_until: Arc<Mutex<Option<Instant>>>,
    stop: CancellationToken,
}

impl Session {
    /// Grant a lease of `LEASE_TTL_SECS` and start renewing it.
    pub async fn open(options: EtcdOptions, scope: &str) -> Result<Self, CoordError> {
        let coord = Coordinator::connect(options, scope).await?;
        let ttl = coord.options.lease_ttl;
        let sent = Instant::now();
        let mut c = coord.client.clone();
        let grant = coord.bounded(c.lease_grant(ttl.as_secs() as i64, None)).await?;
        let trusted_until = Arc::new(Mutex::new(Some(sent + trust(Duration::from_secs(grant.ttl().max(0) as u64)))));
        let stop = CancellationToken::new();
        tokio::spawn(renew(coord.clone(), grant.id(), trusted_until.clone(), stop.clone()));
        tracing::info!(replica = %coord.options.replica, lease = grant.id(), ttl_secs = ttl.as_secs(), "etcd lease granted");
        Ok(Self { coord, lease: grant.id(), trusted_until, stop })
    }

    pub fn coordinator(&self) -> &Coordinator {
        &self.coord
    }

    pub fn lease_id(&self) -> i64 {
        self.lease
    }

    /// Whether this replica may still act on its lease.
    pub fn is_live(&self) -> bool {
        self.trusted_until.lock().map(|u| u.is_some_and(|u| Instant::now() < u)).unwrap_or(false)
    }

    /// Whether etcd said the lease is gone: the session is over, open a new one.
    pub fn is_expired(&self) -> bool {
        self.trusted_until.lock().map(|u| u.is_none()).unwrap_or(true)
    }

    /// Take the lock if nobody holds it. `Ok(None)`: this replica holds it; `Ok(Some(name))`: another does.
    pub async fn try_acquire(&self) -> Result<Option<String>, CoordError> {
        match self.claim(self.coord.lock_key()).await? {
            Claimed::Now => {
                tracing::info!(replica = %self.coord.options.replica, "took the trap's lock");
                Ok(None)
            }
            Claimed::Held { lease, .. } if lease == self.lease => Ok(None),
            Claimed::Held { name, .. } => Ok(Some(name)),
            // Released between the compare and the get: try again at the next look.
            Claimed::Gone => Ok(Some("nobody".into())),
        }
    }

    /// Put `key` = this replica's name under its lease if the key does not exist; else say who has it.
    async fn claim(&self, key: String) -> Result<Claimed, CoordError> {
        if !self.is_live() {
            return Err(CoordError::NotLive);
        }
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key.clone(),
                self.coord.options.replica.as_str(),
                Some(PutOptions::new().with_lease(self.lease)),
            )])
            .or_else([TxnOp::get(key, None)]);
        let mut c = self.coord.client.clone();
        let resp = self.coord.bounded(c.txn(txn)).await?;
        if resp.succeeded() {
            return Ok(Claimed::Now);
        }
        let held = resp.op_responses().into_iter().find_map(|op| match op {
            etcd_client::TxnOpResponse::Get(g) => g
                .kvs()
                .first()
                .map(|kv| Claimed::Held { lease: kv.lease(), name: String::from_utf8_lossy(kv.value()).into_owned() }),
            _ => None,
        });
        Ok(held.unwrap_or(Claimed::Gone))
    }

    /// Whether this replica holds the lock now (asks etcd).
    pub async fn holds_lock(&self) -> Result<bool, CoordError> {
        let mut c = self.coord.client.clone();
        let resp = self.coord.bounded(c.get(self.coord.lock_key(), None)).await?;
        Ok(self.is_live() && resp.kvs().first().is_some_and(|kv| kv.lease() == self.lease))
    }

    /// Write the trap's record, replacing the one read at `expected` (0: none yet), only while this replica
    /// holds the lock: one transaction, the fence. Returns the new revision.
    pub async fn commit(&self, expected: i64, value: &str) -> Result<i64, CoordError> {
        if !self.is_live() {
            return Err(CoordError::NotLive);
        }
        let (lock, record) = (self.coord.lock_key(), self.coord.record_key());
        let txn = Txn::new()
            .when([
                Compare::lease(lock.clone(), CompareOp::Equal, self.lease),
                Compare::mod_revision(record.clone(), CompareOp::Equal, expected),
            ])
            .and_then([TxnOp::put(record.clone(), value, None)])
            .or_else([TxnOp::get(record, None), TxnOp::get(lock, None)]);
        let mut c = self.coord.client.clone();
        let resp = self.coord.bounded(c.txn(txn)).await?;
        if resp.succeeded() {
            return Ok(resp.header().map_or(0, |h| h.revision()));
        }
        let mut gets = resp.op_responses().into_iter().filter_map(|op| match op {
            etcd_client::TxnOpResponse::Get(g) => Some(g),
            _ => None,
        });
        let lock_kv = gets.next_back().and_then(|g| g.kvs().first().map(|kv| (kv.lease(), kv.value().to_vec())));
        match lock_kv {
            Some((lease, _)) if lease == self.lease => {
                Err(CoordError::Conflict { expected, found: found_revision(&resp) })
            }
            Some((_, name)) => Err(CoordError::Fenced { holder: String::from_utf8_lossy(&name).into_owned() }),
            None => Err(CoordError::Fenced { holder: "nobody".into() }),
        }
    }

    /// Ask the holder to step aside (a planned switch), bound to this session's lease: one request at a
    /// time. `Ok(None)`: asked; `Ok(Some(name))`: `name` asked already.
    pub async fn request_switch(&self) -> Result<Option<String>, CoordError> {
        match self.claim(self.coord.switch_key()).await? {
            Claimed::Now => Ok(None),
            Claimed::Held { name, .. } => Ok(Some(name)),
            Claimed::Gone => Ok(Some("a switch that just ended".into())),
        }
    }

    /// This replica's last poll, for `status` (bound to the lease: it disappears with the replica).
    pub async fn report(&self, report: &str) -> Result<(), CoordError> {
        let key = self.coord.replica_key(&self.coord.options.replica);
        let mut c = self.coord.client.clone();
        self.coord.bounded(c.put(key, report, Some(PutOptions::new().with_lease(self.lease)))).await?;
        Ok(())
    }

    /// Give the lock up (and the report) now rather than at the TTL: revoke the lease. The session is over.
    pub async fn close(&self) {
        self.stop.cancel();
        let mut c = self.coord.client.clone();
        let _ = self.coord.bounded(c.lease_revoke(self.lease)).await;
    }

    /// Stop renewing without revoking, as a stopped process would: the lease runs out at its TTL. For the
    /// tests of the fence.
    #[doc(hidden)]
    pub fn stop_renewing(&self) {
        self.stop.cancel();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// What [`Session::claim`] found.
enum Claimed {
    /// The key is ours now.
    Now,
    /// Someone has it (maybe this session, by its lease).
    Held { lease: i64, name: String },
    /// It existed at the compare and was gone at the get.
    Gone,
}

/// How long past a renewal's send time the lease is trusted: two thirds of the TTL etcd granted.
fn trust(ttl: Duration) -> Duration {
    ttl * 2 / 3
}

/// Renew every third of the TTL; each answered renewal extends the trust from when it was sent.
async fn renew(coord: Coordinator, lease: i64, trusted_until: Arc<Mutex<Option<Instant>>>, stop: CancellationToken) {
    let every = coord.options.lease_ttl / 3;
    let mut stream = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let sent = Instant::now();
        if stream.is_none() {
            let mut c = coord.client.clone();
            match coord.bounded(c.lease_keep_alive(lease)).await {
                Ok(s) => stream = Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot renew the etcd lease");
                    continue;
                }
            }
        }
        let Some((keeper, answers)) = stream.as_mut() else { continue };
        let answered = coord
            .bounded(async {
                keeper.keep_alive().await?;
                answers.message().await
            })
            .await;
        match answered {
            Ok(Some(a)) if a.ttl() > 0 => {
                if let Ok(mut u) = trusted_until.lock() {
                    if u.is_some() {
                        *u = Some(sent + trust(Duration::from_secs(a.ttl() as u64)));
                    }
                }
            }
            Ok(Some(_)) => {
                tracing::warn!(lease, "the etcd lease expired: this replica stops acting");
                if let Ok(mut u) = trusted_until.lock() {
                    *u = None;
                }
                return;
            }
            Ok(None) | Err(_) => {
                tracing::warn!(lease, "the etcd lease renewal got no answer; retrying");
                stream = None;
            }
        }
    }
}
