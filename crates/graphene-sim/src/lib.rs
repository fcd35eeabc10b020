//! A simulated Hive/Steem node on 127.0.0.1, for the demo, the end-to-end tests and the incident benchmark.
//!
//! [`SimNode::start`] builds a [`chain::Chain`] (21 witnesses, one of them watched, with a primary node that
//! can be failed and a backup node that signs once the on-chain key is the backup key), drives it from a
//! [`SharedClock`] so a 3 s block can pass in 150 ms of wall time, and serves it over one or more JSON-RPC
//! endpoints (`server.rs`) that check broadcasts as a node does (`validate.rs`). Each endpoint has its own
//! fault switch so a test can pair a healthy node with a stale, failing or lying one. [`sms::SmsSink`] is the
//! matching fake Twilio. The sim imports only `protocol` (through `proto.rs`) and `clock` from the crate.
//!
//! ```no_run
//! # async fn demo(cfg: graphene_sim::SimConfig) -> Result<(), graphene_sim::SimError> {
//! use graphene_sim::{SimNode, SimEvent};
//! let node = SimNode::start(cfg).await?;
//! node.fail_primary();
//! let missed = node
//!     .wait_for_event(0, std::time::Duration::from_secs(30), |e| matches!(e, SimEvent::SlotMissed { .. }))
//!     .await?;
//! # Ok(()) }
//! ```

pub mod chain;
pub mod control;
pub mod fc_error;
pub mod proto;
pub mod server;
pub mod sms;
pub mod text;
pub mod validate;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use thiserror::Error;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use chain_clock::{ScaledClock, SharedClock};

pub use chain::{
    Account, BlockRecord, Chain, ChainError, EventRecord, Signer, SimEvent, TxStatus, Witness, WitnessProps,
};
pub use proto::{ChainSpec, PublicKey};
pub use sms::{SmsMessage, SmsSink, SmsSinkError};
pub use validate::Limits;

/// Errors of the simulated node's handle.
#[derive(Debug, Error)]
pub enum SimError {
    #[error("invalid simulation settings: {0}")]
    Chain(#[from] ChainError),
    #[error("a simulated node needs at least one endpoint")]
    NoEndpoints,
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("{ports} ports given for {endpoints} endpoints")]
    Ports { endpoints: usize, ports: usize },
    #[error("no endpoint {0} (this node has {1})")]
    NoSuchEndpoint(usize, usize),
    #[error("no matching event within {0:?}")]
    Timeout(Duration),
}

/// Settings of a simulated node. [`SimConfig::new`] fills the defaults: 3 s blocks, real-time speed, seed 1,
/// one endpoint, block number 90 000 000.
#[derive(Clone)]
pub struct SimConfig {
    pub chain: ChainSpec,
    /// Chain seconds per block (3 on the real chains, §6.1).
    pub block_interval_secs: u32,
    /// Chain seconds per wall second; used only when `clock` is `None`.
    pub speedup: f64,
    /// Seeds schedule shuffles, block ids and the other witnesses' keys.
    pub seed: u64,
    /// The watched witness (also an account with `active_key` as its active authority).
    pub witness: String,
    pub witness_url: String,
    /// Key of the primary node: the on-chain signing key at start.
    pub primary_key: PublicKey,
    /// Key of the backup node: it signs the witness's slots once this is the on-chain key.
    pub backup_key: PublicKey,
    /// Keys of further backup nodes, each signing once its key is on chain (none by default).
    pub standby_keys: Vec<PublicKey>,
    /// Active key of the witness account (authority for op 11).
    pub active_key: PublicKey,
    pub initial_total_missed: u32,
    pub initial_block_num: u32,
    /// Blocks behind the head at which the witness's nodes see its signing key (see
    /// [`chain::ChainParams::key_view_lag`]); 0, the default, at once.
    pub key_view_lag: u32,
    /// Number of HTTP endpoints serving the same chain.
    pub endpoints: usize,
    /// The clock driving the chain; `None` starts a `ScaledClock` at the current wall time with `speedup`.
    pub clock: Option<SharedClock>,
    /// Broadcast limits; `None` takes the family's (see [`Limits::for_chain`]).
    pub limits: Option<Limits>,
    /// Ports of 127.0.0.1 for the endpoints, in order; empty (the default) takes ephemeral ones.
    pub ports: Vec<u16>,
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("chain", &self.chain.name)
            .field("block_interval_secs", &self.block_interval_secs)
            .field("speedup", &self.speedup)
            .field("seed", &self.seed)
            .field("witness", &self.witness)
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

impl SimConfig {
    /// Defaults for everything but the chain, the witness and its three keys.
    pub fn new(
        chain: ChainSpec,
        witness: &str,
        primary_key: PublicKey,
        backup_key: PublicKey,
        active_key: PublicKey,
    ) -> Self {
        Self {
            chain,
            block_interval_secs: 3,
            speedup: 1.0,
            seed: 1,
            witness: witness.to_string(),
            witness_url: format!("https://{witness}.example"),
            primary_key,
            backup_key,
            standby_keys: Vec::new(),
            active_key,
            initial_total_missed: 0,
            initial_block_num: 90_000_000,
            key_view_lag: 0,
            endpoints: 1,
            clock: None,
            limits: None,
            ports: Vec::new(),
        }
    }
}

/// Replacement for the total_missed value a lying endpoint reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lie {
    /// Always report this value.
    Fixed(u32),
    /// Report the true value plus this much.
    Add(u32),
}

/// How one endpoint misbehaves. One fault at a time per endpoint; `None` is healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Answer every read from the chain state frozen at the moment the fault is set (old head, old witness);
    /// broadcasts are checked against that state and never relayed.
    StaleHead,
    /// HTTP 503 with a proxy's text body.
    Http503,
    /// Hold the request for [`server::HANG`] (30 s real time), longer than any client timeout.
    Hang,
    /// HTTP 200 with a body that is not valid JSON.
    GarbageJson,
    /// `get_witness_by_account` reports a false `total_missed`.
    LyingMissed(Lie),
    /// `get_version` / `get_config` report this chain id.
    WrongChainId([u8; 32]),
}

/// A fault as the server applies it (the stale state captured).
#[derive(Debug, Clone)]
pub(crate) enum ActiveFault {
    None,
    StaleHead(Arc<Chain>),
    Http503,
    Hang,
    GarbageJson,
    LyingMissed(Lie),
    WrongChainId([u8; 32]),
}

/// Per-endpoint switches and counters.
#[derive(Debug)]
pub(crate) struct Endpoint {
    fault: Mutex<ActiveFault>,
    calls: Mutex<BTreeMap<String, u64>>,
    broadcasts: AtomicU64,
}

impl Endpoint {
    fn new() -> Self {
        Self { fault: Mutex::new(ActiveFault::None), calls: Mutex::new(BTreeMap::new()), broadcasts: AtomicU64::new(0) }
    }
    pub(crate) fn fault(&self) -> ActiveFault {
        self.fault.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    pub(crate) fn count_call(&self, method: &str) {
        *self.calls.lock().unwrap_or_else(|p| p.into_inner()).entry(method.to_string()).or_default() += 1;
    }
    pub(crate) fn count_broadcast(&self) {
        self.broadcasts.fetch_add(1, Ordering::Relaxed);
    }
    fn calls(&self) -> BTreeMap<String, u64> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// State shared by the block timer and every endpoint.
pub(crate) struct Shared {
    pub(crate) spec: ChainSpec,
    pub(crate) limits: Limits,
    chain: Mutex<Chain>,
    clock: SharedClock,
    events_tx: broadcast::Sender<EventRecord>,
    /// Sequence number of the last published event; waiters watch it and then read the log.
    seq_tx: watch::Sender<u64>,
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) shutdown: CancellationToken,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Chain> {
        // Chain methods do not panic on input; a poisoned lock means a bug already reported by that panic.
        self.chain.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The chain, first advanced to now: a read sees every block whose slot has begun even when the block
    /// timer runs late (a loaded machine), as a real node's head would.
    pub(crate) fn caught_up(&self) -> MutexGuard<'_, Chain> {
        let now = self.clock.now();
        let mut chain = self.lock();
        let events = chain.advance_to(now.as_secs());
        self.publish(events);
        chain
    }

    /// Announce events (call while holding the chain lock so subscribers see them in order).
    pub(crate) fn publish(&self, events: Vec<EventRecord>) {
        if let Some(last) = events.last() {
            let seq = last.seq;
            for e in events {
                // No subscribers is fine: the log keeps everything.
                let _ = self.events_tx.send(e);
            }
            self.seq_tx.send_replace(seq);
        }
    }

    /// The node's "now" as JSON writes it (for error timestamps).
    pub(crate) fn now_text(&self) -> String {
        text::time_text(self.clock.now_secs())
    }

    /// The first event after `after_seq` matching `pred`; `None` on timeout or shutdown.
    pub(crate) async fn wait_for(
        &self,
        after_seq: u64,
        timeout: Option<Duration>,
        pred: impl Fn(&SimEvent) -> bool,
    ) -> Option<EventRecord> {
        let mut rx = self.seq_tx.subscribe();
        let mut scanned = after_seq;
        let search = async {
            loop {
                {
                    let chain = self.lock();
                    for r in chain.events_since(scanned) {
                        if pred(&r.event) {
                            return Some(r.clone());
                        }
                        scanned = r.seq;
                    }
                }
                tokio::select! {
                    changed = rx.changed() => if changed.is_err() { return None },
                    _ = self.shutdown.cancelled() => return None,
                }
            }
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, search).await.ok().flatten(),
            None => search.await,
        }
    }
}

/// A running simulated node. Dropping it stops the block timer and the endpoints.
pub struct SimNode {
    shared: Arc<Shared>,
    urls: Vec<String>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for SimNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimNode").field("urls", &self.urls).finish_non_exhaustive()
    }
}

impl SimNode {
    /// Build the chain, start the block timer and listen on `cfg.endpoints` ephemeral ports of 127.0.0.1.
    pub async fn start(cfg: SimConfig) -> Result<SimNode, SimError> {
        if cfg.endpoints == 0 {
            return Err(SimError::NoEndpoints);
        }
        if !cfg.ports.is_empty() && cfg.ports.len() != cfg.endpoints {
            return Err(SimError::Ports { endpoints: cfg.endpoints, ports: cfg.ports.len() });
        }
        let clock: SharedClock = cfg.clock.clone().unwrap_or_else(|| Arc::new(ScaledClock::starting_now(cfg.speedup)));
        let params = chain::ChainParams {
            block_interval: cfg.block_interval_secs,
            seed: cfg.seed,
            witness: cfg.witness.clone(),
            witness_url: cfg.witness_url.clone(),
            primary_key: cfg.primary_key,
            backup_key: cfg.backup_key,
            standby_keys: cfg.standby_keys.clone(),
            active_key: cfg.active_key,
            initial_total_missed: cfg.initial_total_missed,
            initial_block_num: cfg.initial_block_num,
            key_view_lag: cfg.key_view_lag,
        };
        let chain = Chain::new(params, clock.now_secs())?;
        let shared = Arc::new(Shared {
            limits: cfg.limits.unwrap_or_else(|| Limits::for_chain(&cfg.chain)),
            spec: cfg.chain,
            chain: Mutex::new(chain),
            clock,
            events_tx: broadcast::channel(4096).0,
            seq_tx: watch::channel(0).0,
            endpoints: (0..cfg.endpoints).map(|_| Endpoint::new()).collect(),
            shutdown: CancellationToken::new(),
        });

        let mut urls = Vec::new();
        let mut tasks = Vec::new();
        for idx in 0..cfg.endpoints {
            let port = cfg.ports.get(idx).copied().unwrap_or(0);
            let (url, task) =
                server::spawn(shared.clone(), idx, port).await.map_err(|source| SimError::Bind { port, source })?;
            urls.push(url);
            tasks.push(task);
        }
        tasks.push(tokio::spawn(run_blocks(shared.clone())));
        Ok(SimNode { shared, urls, tasks })
    }

    /// Base URLs of the endpoints ("http://127.0.0.1:PORT"), in index order.
    pub fn urls(&self) -> Vec<String> {
        self.urls.clone()
    }

    /// The clock the chain runs on; give the same clock to the trap.
    pub fn clock(&self) -> SharedClock {
        self.shared.clock.clone()
    }

    pub fn chain_spec(&self) -> &ChainSpec {
        &self.shared.spec
    }

    /// Stop the watched witness's primary node: its slots are missed until the backup key is on chain.
    pub fn fail_primary(&self) {
        self.switch(|c| c.set_primary_up(false));
    }
    pub fn restore_primary(&self) {
        self.switch(|c| c.set_primary_up(true));
    }
    pub fn fail_backup(&self) {
        self.switch(|c| c.set_backup_up(false));
    }
    pub fn restore_backup(&self) {
        self.switch(|c| c.set_backup_up(true));
    }
    /// Switch standby node `i` (of `SimConfig::standby_keys`) off or on.
    pub fn set_standby_up(&self, i: usize, up: bool) {
        self.switch(|c| c.set_standby_up(i, up));
    }

    /// Take another witness's node down (`up = false`) or bring it back.
    pub fn set_witness_up(&self, witness: &str, up: bool) {
        self.switch(|c| c.set_witness_up(witness, up));
    }

    fn switch(&self, f: impl FnOnce(&mut Chain) -> EventRecord) {
        let mut chain = self.shared.lock();
        let rec = f(&mut chain);
        self.shared.publish(vec![rec]);
    }

    /// Make endpoint `idx` misbehave (or `Fault::None` to heal it).
    pub fn set_fault(&self, idx: usize, fault: Fault) -> Result<(), SimError> {
        let endpoint = self.shared.endpoints.get(idx).ok_or(SimError::NoSuchEndpoint(idx, self.urls.len()))?;
        let active = match fault {
            Fault::None => ActiveFault::None,
            Fault::StaleHead => ActiveFault::StaleHead(Arc::new(self.shared.lock().snapshot())),
            Fault::Http503 => ActiveFault::Http503,
            Fault::Hang => ActiveFault::Hang,
            Fault::GarbageJson => ActiveFault::GarbageJson,
            Fault::LyingMissed(l) => ActiveFault::LyingMissed(l),
            Fault::WrongChainId(id) => ActiveFault::WrongChainId(id),
        };
        *endpoint.fault.lock().unwrap_or_else(|p| p.into_inner()) = active;
        Ok(())
    }

    /// The watched witness as the chain has it now.
    pub fn witness(&self) -> Witness {
        self.shared.lock().watched().clone()
    }

    /// Any witness by name.
    pub fn witness_named(&self, name: &str) -> Option<Witness> {
        self.shared.lock().witness(name).cloned()
    }

    pub fn head(&self) -> BlockRecord {
        self.shared.lock().head().clone()
    }

    /// Read anything else from the chain under its lock (keep `f` short: the block timer waits for it).
    pub fn with_chain<R>(&self, f: impl FnOnce(&Chain) -> R) -> R {
        f(&self.shared.lock())
    }

    /// Events from now on, as they happen (a narrator's feed). Slow readers may lag; the log keeps all.
    pub fn subscribe(&self) -> broadcast::Receiver<EventRecord> {
        self.shared.events_tx.subscribe()
    }

    /// The event log so far.
    pub fn events(&self) -> Vec<EventRecord> {
        self.shared.lock().events().cloned().collect()
    }

    /// Sequence number of the latest event; pass it to `wait_for_event` to wait only for later ones.
    pub fn last_seq(&self) -> u64 {
        self.shared.lock().last_seq()
    }

    /// Wait (real time) for the first event after `after_seq` that matches `pred`.
    pub async fn wait_for_event(
        &self,
        after_seq: u64,
        timeout: Duration,
        pred: impl Fn(&SimEvent) -> bool,
    ) -> Result<EventRecord, SimError> {
        self.shared.wait_for(after_seq, Some(timeout), pred).await.ok_or(SimError::Timeout(timeout))
    }

    /// JSON-RPC requests received per method, summed over endpoints.
    pub fn rpc_calls(&self) -> BTreeMap<String, u64> {
        let mut all = BTreeMap::new();
        for e in &self.shared.endpoints {
            for (m, n) in e.calls() {
                *all.entry(m).or_default() += n;
            }
        }
        all
    }

    /// JSON-RPC requests received per method by endpoint `idx`.
    pub fn rpc_calls_at(&self, idx: usize) -> BTreeMap<String, u64> {
        self.shared.endpoints.get(idx).map(Endpoint::calls).unwrap_or_default()
    }

    /// Broadcast requests received (accepted or not), summed over endpoints.
    pub fn broadcasts_received(&self) -> u64 {
        self.shared.endpoints.iter().map(|e| e.broadcasts.load(Ordering::Relaxed)).sum()
    }

    /// Stop the block timer and the endpoints (hanging requests are released).
    pub fn shutdown(self) {}
}

impl Drop for SimNode {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The block timer: produce every due block, then sleep (in chain time) until the next slot.
async fn run_blocks(shared: Arc<Shared>) {
    loop {
        let now = shared.clock.now();
        let next = {
            let mut chain = shared.lock();
            let events = chain.advance_to(now.as_secs());
            shared.publish(events);
            chain.next_slot_time(now.as_secs())
        };
        // At least a millisecond of chain time, so a clock read just short of the boundary cannot spin.
        let wait = Duration::from_secs(next).saturating_sub(shared.clock.now()).max(Duration::from_millis(1));
        tokio::select! {
            _ = shared.clock.sleep(wait) => {}
            _ = shared.shutdown.cancelled() => return,
        }
    }
}
