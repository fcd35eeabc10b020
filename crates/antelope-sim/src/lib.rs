//! A simulated Antelope chain (EOS, WAX, Telos, Jungle) served as nodeos's HTTP chain API on 127.0.0.1, for the
//! demo, the end-to-end tests and the benchmark.
//!
//! [`SimNode::start`] builds a [`chain::Chain`] (21 producers, one of them watched, with a primary node that can
//! be failed and a backup node that signs once the *active schedule* lists the backup key), drives it from a
//! [`SharedClock`] so a 0.5 s block can pass in a few ms of wall time, and serves it on one or more endpoints
//! (`server.rs`) that check pushes as nodeos does (`validate.rs`). Each endpoint has its own fault switch
//! ([`Fault`]) so a test can pair a healthy node with a stale, failing, lagging or forked one. The sim imports
//! only `antelope-protocol` and `chain-clock` of the workspace, never the trap.
//!
//! ```no_run
//! # async fn demo(cfg: antelope_sim::SimConfig) -> Result<(), antelope_sim::SimError> {
//! use antelope_sim::{SimNode, SimEvent};
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
pub mod producer_api;
pub mod server;
pub mod text;
pub mod validate;
pub mod view;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use antelope_protocol::chain::ChainId;
use antelope_protocol::keys::PublicKey;
use rand::SeedableRng;
use thiserror::Error;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use chain_clock::{ScaledClock, SharedClock};

pub use chain::{
    Account, BlockRecord, Chain, ChainError, EventRecord, FailoverPermission, ProducerRow, ProducerSchedule, Signer,
    SigningAuthority, SimEvent, TxStatus,
};
use view::ForkState;

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
    #[error("no account {0}")]
    NoSuchAccount(String),
    #[error("no matching event within {0:?}")]
    Timeout(Duration),
}

/// Settings of a simulated node. [`SimConfig::new`] fills the defaults (Jungle-like Savanna chain, Spring 1.x key
/// text, real-time speed, LIB 3 behind, 120-slot proposal interval, activation at the second round boundary).
#[derive(Clone)]
pub struct SimConfig {
    /// Network name for display ("jungle", "eos", …).
    pub network: String,
    pub chain_id: ChainId,
    /// Core token symbol of `get_account` ("EOS", "WAX", "TLOS").
    pub core_symbol: String,
    /// `server_version_string` of `get_info`.
    pub server_version: String,
    /// Print keys as `PUB_K1_…` (Spring 2.0) instead of `EOS…` (Spring 1.x), in every reply.
    pub k1_text: bool,
    /// Chain seconds per wall second; used only when `clock` is `None`.
    pub speedup: f64,
    /// The clock driving the chain; `None` starts a `ScaledClock` at the current wall time with `speedup`.
    pub clock: Option<SharedClock>,
    /// Seeds block ids and the other producers' keys.
    pub seed: u64,
    /// The watched producer (also an account with owner, active and the failover permission).
    pub producer: String,
    /// Its index in the 21-producer schedule; `None` sorts it by name among `produceraaa`… as the chain does.
    pub producer_position: Option<usize>,
    pub producer_url: String,
    pub producer_location: u16,
    /// Key of the primary node: the producer key at start.
    pub primary_key: PublicKey,
    /// Key of the backup node: it signs once the active schedule lists this key.
    pub backup_key: PublicKey,
    pub owner_key: PublicKey,
    pub active_key: PublicKey,
    /// The least-privilege permission (default: `failover` under `active`, linked to `eosio::regproducer`).
    pub failover: Option<FailoverPermission>,
    /// Put the failover key into `active` too (a set-up the trap must refuse to arm on).
    pub failover_key_in_active: bool,
    /// Savanna finalizer tables and `actfinkey`.
    pub savanna: bool,
    pub primary_finalizer_key: String,
    pub backup_finalizer_key: String,
    /// Blocks between head and LIB.
    pub lib_lag: u32,
    /// `update_elected_producers` at most every this many slots (120 = 60 s on the real chains).
    pub proposal_interval_slots: u64,
    /// A proposal is active from this round boundary after it on (2: 1–2 rounds later).
    pub rounds_to_activate: u64,
    pub initial_block_num: u32,
    /// `max_transaction_lifetime` (3600 s by default).
    pub max_transaction_lifetime_secs: u32,
    /// Number of HTTP endpoints serving the same chain.
    pub endpoints: usize,
    /// Ports of 127.0.0.1 for the endpoints, in order; empty (the default) takes ephemeral ones.
    pub ports: Vec<u16>,
    /// Same-key nodes driven through a fake `producer_api` each (`producer_api.rs`): both hold `primary_key`,
    /// the primary starts unpaused and the backup paused; two live at once is a `DoubleProduction`.
    pub producer_api: bool,
    /// With `producer_api`: a node that comes back up starts paused (nodeos `--pause-on-startup`).
    pub pause_on_startup: bool,
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("network", &self.network)
            .field("producer", &self.producer)
            .field("speedup", &self.speedup)
            .field("seed", &self.seed)
            .field("k1_text", &self.k1_text)
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

impl SimConfig {
    /// Defaults for everything but the chain id, the producer and its keys. `failover_key` becomes the
    /// `failover` permission linked to `eosio::regproducer`.
    pub fn new(
        chain_id: ChainId,
        producer: &str,
        primary_key: PublicKey,
        backup_key: PublicKey,
        active_key: PublicKey,
        failover_key: PublicKey,
    ) -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x05ee_db15);
        Self {
            network: antelope_protocol::chain::network_by_id(&chain_id)
                .map(|n| n.name.to_string())
                .unwrap_or_else(|| "antelope".into()),
            chain_id,
            core_symbol: "EOS".into(),
            server_version: "v1.2.2".into(),
            k1_text: false,
            speedup: 1.0,
            clock: None,
            seed: 1,
            producer: producer.to_string(),
            producer_position: None,
            producer_url: format!("https://{producer}.example"),
            producer_location: 840,
            primary_key,
            backup_key,
            owner_key: active_key,
            active_key,
            failover: Some(FailoverPermission::new(failover_key)),
            failover_key_in_active: false,
            savanna: true,
            primary_finalizer_key: chain::fake_bls_key(&mut rng),
            backup_finalizer_key: chain::fake_bls_key(&mut rng),
            lib_lag: 3,
            proposal_interval_slots: 120,
            rounds_to_activate: 2,
            initial_block_num: 400_000_000,
            max_transaction_lifetime_secs: 3600,
            endpoints: 1,
            ports: Vec::new(),
            producer_api: false,
            pause_on_startup: true,
        }
    }
}

/// How one endpoint misbehaves. One fault at a time per endpoint; `None` is healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Answer every read from the chain as it was when the fault was set; pushes are checked against that
    /// state, answered as accepted and never relayed.
    StaleHead,
    /// HTTP 503 with a proxy's text body.
    Http503,
    /// Hold the request for [`server::HANG`] (30 s real time), longer than any client timeout.
    Hang,
    /// HTTP 200 with a body that is not valid JSON.
    GarbageJson,
    /// `get_info` reports this chain id.
    WrongChainId([u8; 32]),
    /// Head, LIB and blocks `n` blocks behind the chain, still advancing; pushes are relayed.
    Lagging(u32),
    /// A minority fork from this moment: the watched producer's later blocks are missing (gaps), ids differ, LIB
    /// stays put; pushes are answered as accepted and never reach the real chain.
    Fork,
}

/// A fault as the server applies it (the captured state).
#[derive(Debug, Clone)]
pub(crate) enum ActiveFault {
    None,
    StaleHead(Arc<Chain>),
    Http503,
    Hang,
    GarbageJson,
    WrongChainId([u8; 32]),
    Lagging(u32),
    Fork(Arc<Mutex<ForkState>>),
}

/// Per-endpoint switches and counters.
#[derive(Debug)]
pub(crate) struct Endpoint {
    fault: Mutex<ActiveFault>,
    calls: Mutex<BTreeMap<String, u64>>,
    tx_received: AtomicU64,
    tx_accepted: AtomicU64,
}

impl Endpoint {
    fn new() -> Self {
        Self {
            fault: Mutex::new(ActiveFault::None),
            calls: Mutex::new(BTreeMap::new()),
            tx_received: AtomicU64::new(0),
            tx_accepted: AtomicU64::new(0),
        }
    }
    pub(crate) fn fault(&self) -> ActiveFault {
        self.fault.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    pub(crate) fn count_call(&self, method: &str) {
        *self.calls.lock().unwrap_or_else(|p| p.into_inner()).entry(method.to_string()).or_default() += 1;
    }
    pub(crate) fn count_received(&self) {
        self.tx_received.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn count_accepted(&self) {
        self.tx_accepted.fetch_add(1, Ordering::Relaxed);
    }
    fn calls(&self) -> BTreeMap<String, u64> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What the server needs of the configuration.
#[derive(Debug, Clone)]
pub(crate) struct NodeInfo {
    pub(crate) chain_id: ChainId,
    pub(crate) core_symbol: String,
    pub(crate) server_version: String,
    pub(crate) k1: bool,
    pub(crate) max_lifetime_secs: u32,
}

/// State shared by the block timer and every endpoint.
pub(crate) struct Shared {
    pub(crate) info: NodeInfo,
    chain: Mutex<Chain>,
    clock: SharedClock,
    events_tx: broadcast::Sender<EventRecord>,
    /// Sequence number of the last published event; waiters watch it and then read the log.
    seq_tx: watch::Sender<u64>,
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) shutdown: CancellationToken,
    /// Same-key nodes: each node's `producer_api` fault and calls (primary, backup).
    pub(crate) api_faults: [Mutex<ApiFault>; 2],
    pub(crate) api_calls: [Mutex<BTreeMap<String, u64>>; 2],
    /// Same-key nodes: how many blocks behind the chain each node's local head is.
    pub(crate) api_lag: [AtomicU64; 2],
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Chain> {
        // Chain methods do not panic on input; a poisoned lock means a bug already reported by that panic.
        self.chain.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Pause or resume a same-key node, publishing what it recorded.
    pub(crate) fn set_paused(&self, node: ApiNode, paused: bool) {
        let mut chain = self.lock();
        let before = chain.last_seq();
        chain.set_paused(node == ApiNode::Primary, paused);
        let recs: Vec<EventRecord> = chain.events_since(before).cloned().collect();
        self.publish(recs);
    }

    /// The chain, first advanced to now: a read sees every block whose slot has begun even when the block
    /// timer runs late (a loaded machine), as a real node's head would.
    pub(crate) fn caught_up(&self) -> MutexGuard<'_, Chain> {
        let now = self.clock.now();
        let mut chain = self.lock();
        let events = chain.advance_to(now.as_millis() as u64);
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

    /// The first event after `after_seq` matching `pred`; `None` on timeout or shutdown.
    pub(crate) async fn wait_for(
        &self,
        after_seq: u64,
        timeout: Duration,
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
        tokio::time::timeout(timeout, search).await.ok().flatten()
    }
}

/// A running simulated node. Dropping it stops the block timer and the endpoints.
pub struct SimNode {
    shared: Arc<Shared>,
    urls: Vec<String>,
    tasks: Vec<JoinHandle<()>>,
    /// With `producer_api`: the primary's and the backup's fake `producer_api`.
    api_urls: Vec<String>,
}

/// One of the watched producer's two nodes (same-key mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiNode {
    Primary,
    Backup,
}

/// How a node's fake `producer_api` misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiFault {
    None,
    /// Read the request, never answer.
    Hang,
    /// HTTP 500 with an fc-style error; nothing changes.
    Http500,
}

impl std::fmt::Debug for SimNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimNode").field("urls", &self.urls).finish_non_exhaustive()
    }
}

impl SimNode {
    /// Build the chain, start the block timer and listen on `cfg.endpoints` ports of 127.0.0.1.
    pub async fn start(cfg: SimConfig) -> Result<SimNode, SimError> {
        if cfg.endpoints == 0 {
            return Err(SimError::NoEndpoints);
        }
        if !cfg.ports.is_empty() && cfg.ports.len() != cfg.endpoints {
            return Err(SimError::Ports { endpoints: cfg.endpoints, ports: cfg.ports.len() });
        }
        let clock: SharedClock = cfg.clock.clone().unwrap_or_else(|| Arc::new(ScaledClock::starting_now(cfg.speedup)));
        let params = chain::ChainParams {
            seed: cfg.seed,
            producer: cfg.producer.clone(),
            producer_position: cfg.producer_position,
            producer_url: cfg.producer_url.clone(),
            producer_location: cfg.producer_location,
            primary_key: cfg.primary_key,
            backup_key: cfg.backup_key,
            owner_key: cfg.owner_key,
            active_key: cfg.active_key,
            failover: cfg.failover.clone(),
            failover_key_in_active: cfg.failover_key_in_active,
            savanna: cfg.savanna,
            primary_finalizer_key: cfg.primary_finalizer_key.clone(),
            backup_finalizer_key: cfg.backup_finalizer_key.clone(),
            lib_lag: cfg.lib_lag,
            proposal_interval_slots: cfg.proposal_interval_slots,
            rounds_to_activate: cfg.rounds_to_activate,
            initial_block_num: cfg.initial_block_num,
            same_key_nodes: cfg.producer_api,
            pause_on_startup: cfg.pause_on_startup,
        };
        let chain = Chain::new(params, clock.now().as_millis() as u64)?;
        let shared = Arc::new(Shared {
            info: NodeInfo {
                chain_id: cfg.chain_id,
                core_symbol: cfg.core_symbol.clone(),
                server_version: cfg.server_version.clone(),
                k1: cfg.k1_text,
                max_lifetime_secs: cfg.max_transaction_lifetime_secs,
            },
            chain: Mutex::new(chain),
            clock,
            events_tx: broadcast::channel(4096).0,
            seq_tx: watch::channel(0).0,
            endpoints: (0..cfg.endpoints).map(|_| Endpoint::new()).collect(),
            shutdown: CancellationToken::new(),
            api_faults: [Mutex::new(ApiFault::None), Mutex::new(ApiFault::None)],
            api_calls: [Mutex::new(BTreeMap::new()), Mutex::new(BTreeMap::new())],
            api_lag: [AtomicU64::new(0), AtomicU64::new(0)],
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
        let mut api_urls = Vec::new();
        if cfg.producer_api {
            for node in [ApiNode::Primary, ApiNode::Backup] {
                let (url, task) = producer_api::spawn(shared.clone(), node)
                    .await
                    .map_err(|source| SimError::Bind { port: 0, source })?;
                api_urls.push(url);
                tasks.push(task);
            }
        }
        tasks.push(tokio::spawn(run_blocks(shared.clone())));
        Ok(SimNode { shared, urls, tasks, api_urls })
    }

    /// Base URLs of the endpoints ("http://127.0.0.1:PORT"), in index order.
    pub fn urls(&self) -> Vec<String> {
        self.urls.clone()
    }

    /// The clock the chain runs on; give the same clock to the trap.
    pub fn clock(&self) -> SharedClock {
        self.shared.clock.clone()
    }

    pub fn chain_id(&self) -> ChainId {
        self.shared.info.chain_id
    }

    /// Stop the watched producer's primary node: its slots are gaps while the active schedule lists its key.
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
    /// With `producer_api`: the node's fake `producer_api` base URL (`http://127.0.0.1:PORT`).
    pub fn producer_api_url(&self, node: ApiNode) -> Option<String> {
        self.api_urls.get(node as usize).cloned()
    }

    /// Pause or resume a node directly (an operator on the host), as `producer_api` would.
    pub fn set_paused(&self, node: ApiNode, paused: bool) {
        self.shared.set_paused(node, paused);
    }

    /// Same-key nodes: the node stays up and its API answers, but it produces nothing (a stalled nodeos).
    pub fn set_stalled(&self, node: ApiNode, stalled: bool) {
        self.switch(|c| c.set_stalled(node == ApiNode::Primary, stalled));
    }

    pub fn paused(&self, node: ApiNode) -> bool {
        self.shared.lock().paused(node == ApiNode::Primary)
    }

    /// Every double production recorded since start.
    pub fn double_productions(&self) -> u64 {
        self.shared.lock().double_productions()
    }

    /// Make a node's `producer_api` misbehave (`ApiFault::None` heals it).
    pub fn set_api_fault(&self, node: ApiNode, fault: ApiFault) {
        *self.shared.api_faults[node as usize].lock().unwrap_or_else(|p| p.into_inner()) = fault;
    }

    /// Make a node's local head (its `get_info`) `blocks` behind the chain: a node still syncing.
    pub fn set_node_lag(&self, node: ApiNode, blocks: u32) {
        self.shared.api_lag[node as usize].store(u64::from(blocks), Ordering::Relaxed);
    }

    /// Calls to a node's `producer_api`, by path.
    pub fn producer_api_calls(&self, node: ApiNode) -> BTreeMap<String, u64> {
        self.shared.api_calls[node as usize].lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Take another producer's node down (`up = false`) or bring it back.
    pub fn set_producer_up(&self, producer: &str, up: bool) {
        self.switch(|c| c.set_producer_up(producer, up));
    }

    /// Replace the last `depth` blocks of the chain with blocks of other ids (same producers and slots).
    pub fn microfork(&self, depth: u32) -> EventRecord {
        let mut chain = self.shared.lock();
        let rec = chain.microfork(depth);
        self.shared.publish(vec![rec.clone()]);
        rec
    }

    /// Arm the late-block scenario: the watched producer's next block is first a gap; `after` blocks later the
    /// chain switches to the fork that contains it (`SimEvent::LateBlockHeld`, then `SimEvent::MissUndone`).
    pub fn late_block(&self, after: u32) {
        self.shared.lock().arm_late_block(after);
    }

    /// Set an account's available CPU (0: its pushes fail with `tx_cpu_usage_exceeded`).
    pub fn set_cpu_available(&self, account: &str, available: i64) -> Result<(), SimError> {
        if self.shared.lock().set_cpu_available(account, available) {
            Ok(())
        } else {
            Err(SimError::NoSuchAccount(account.to_string()))
        }
    }

    fn switch(&self, f: impl FnOnce(&mut Chain) -> EventRecord) {
        let mut chain = self.shared.lock();
        let before = chain.last_seq();
        f(&mut chain);
        // The switch may have recorded more than its own event (a double production it started).
        let recs: Vec<EventRecord> = chain.events_since(before).cloned().collect();
        self.shared.publish(recs);
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
            Fault::WrongChainId(id) => ActiveFault::WrongChainId(id),
            Fault::Lagging(n) => ActiveFault::Lagging(n),
            Fault::Fork => {
                let chain = self.shared.lock();
                let salt = chain.last_seq() ^ (idx as u64).rotate_left(40) ^ 0xf04c;
                ActiveFault::Fork(Arc::new(Mutex::new(ForkState::new(&chain, salt))))
            }
        };
        *endpoint.fault.lock().unwrap_or_else(|p| p.into_inner()) = active;
        Ok(())
    }

    pub fn head(&self) -> BlockRecord {
        self.shared.lock().head().clone()
    }

    pub fn lib_num(&self) -> u32 {
        self.shared.lock().lib_num()
    }

    /// A producer row by owner name.
    pub fn producer_row(&self, producer: &str) -> Option<ProducerRow> {
        let n = antelope_protocol::name::Name::new(producer).ok()?;
        self.shared.lock().producer_row(n).cloned()
    }

    /// The active schedule and the pending one, if any.
    pub fn schedule(&self) -> (ProducerSchedule, Option<ProducerSchedule>) {
        let chain = self.shared.lock();
        (chain.active_schedule().clone(), chain.pending_schedule().map(|p| p.schedule.clone()))
    }

    /// Where a pushed transaction is.
    pub fn tx_status(&self, txid: &[u8; 32]) -> TxStatus {
        self.shared.lock().tx_status(txid)
    }

    /// Read anything else from the chain under its lock (keep `f` short: the block timer waits for it).
    pub fn with_chain<R>(&self, f: impl FnOnce(&Chain) -> R) -> R {
        f(&self.shared.lock())
    }

    /// Events from now on, as they happen. Slow readers may lag; the log keeps all.
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
        self.shared.wait_for(after_seq, timeout, pred).await.ok_or(SimError::Timeout(timeout))
    }

    /// Requests received per endpoint name (`get_info`, `send_transaction2`, …), summed over endpoints.
    pub fn rpc_calls(&self) -> BTreeMap<String, u64> {
        let mut all = BTreeMap::new();
        for e in &self.shared.endpoints {
            for (m, n) in e.calls() {
                *all.entry(m).or_default() += n;
            }
        }
        all
    }

    /// Requests received per endpoint name by endpoint `idx`.
    pub fn rpc_calls_at(&self, idx: usize) -> BTreeMap<String, u64> {
        self.shared.endpoints.get(idx).map(Endpoint::calls).unwrap_or_default()
    }

    /// Push requests received (accepted or not), summed over endpoints.
    pub fn transactions_received(&self) -> u64 {
        self.shared.endpoints.iter().map(|e| e.tx_received.load(Ordering::Relaxed)).sum()
    }

    /// Push requests answered as accepted (including those a stale or forked endpoint never relays).
    pub fn transactions_accepted(&self) -> u64 {
        self.shared.endpoints.iter().map(|e| e.tx_accepted.load(Ordering::Relaxed)).sum()
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

/// The block timer: process every slot that has begun, then sleep (in chain time) until the next one.
async fn run_blocks(shared: Arc<Shared>) {
    loop {
        let now = shared.clock.now();
        let next = {
            let mut chain = shared.lock();
            let events = chain.advance_to(now.as_millis() as u64);
            shared.publish(events);
            chain.next_slot_ms()
        };
        // At least a millisecond of chain time, so a clock read just short of the boundary cannot spin.
        let wait = Duration::from_millis(next).saturating_sub(shared.clock.now()).max(Duration::from_millis(1));
        tokio::select! {
            _ = shared.clock.sleep(wait) => {}
            _ = shared.shutdown.cancelled() => return,
        }
    }
}
