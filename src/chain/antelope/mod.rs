//! Antelope producers (EOS, WAX, Telos, Jungle): misses counted slot-exactly from block headers, and the
//! swap of the producer's key with `eosio::regproducer`, signed by a permission linked to it alone.
//!
//! Reading (`watch.rs`): every endpoint's `get_info` (chain id, a fresh and advancing head); the freshest
//! trusted endpoint leads, and the [`follow::Follower`] walks its headers where the producer has slots.
//! A crossing is corroborated by asking another endpoint for the very blocks around each gap (or the same
//! endpoint a block later). Swapping (`swap.rs`): `regproducer` with the row's `url` and `location` sent
//! back unchanged (plus `actfinkey` for a Savanna finalizer key), TaPoS from the last irreversible block,
//! expiration from head time, verified by recovery, pushed with `send_transaction2`; confirmed first in
//! the producers row, then in the schedule. Checks before arming: `preflight.rs`. Bytes:
//! the `antelope-protocol` crate.

pub mod api;
pub mod follow;
pub mod pause_resume;
mod preflight;
pub mod rpc;
mod swap;
pub mod turns;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    Baseline, ChainTime, Corroboration, EndpointStat, Evidence, Identity, Observation, Preflight, Producer,
    SwapAttempt, SwapError, SwapStatus,
};
use antelope_protocol::chain::ChainId;
use antelope_protocol::keys::{PrivateKey, PublicKey};
use chain_clock::SharedClock;
use rpc::{Nodeos, NodeosError};

/// What an Antelope trap records at arming: where the chain was. Misses are counted by the trap itself
/// from there (the chain keeps no counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AntelopeBaseline {
    pub head_block: u64,
    /// Head block time at arming, Unix milliseconds.
    pub head_time_ms: u64,
}

impl Baseline for AntelopeBaseline {
    fn counter(&self) -> Option<u64> {
        None
    }
    fn from_legacy_counter(_: u64) -> Option<Self> {
        None
    }
}

/// What the Antelope producer needs.
pub struct AntelopeSettings {
    /// The network's name as configured (`eos`, `wax`, `telos`, `jungle`, or `antelope` for `CHAIN_ID`).
    pub network: String,
    pub chain_id: ChainId,
    /// `CHAIN=antelope` with a `CHAIN_ID`: a chain-id mismatch then names `CHAIN_ID`.
    pub custom_chain: bool,
    pub urls: Vec<String>,
    pub timeout: Duration,
    pub max_head_age: Duration,
    /// `PRODUCER_ACCOUNT`.
    pub producer: String,
    /// `BACKUP_SIGNING_KEY`: the key the trap moves the producer to (the first of `backups`).
    pub backup_key: PublicKey,
    /// Every backup key in order (`BACKUP_SIGNING_KEYS`).
    pub backups: Vec<PublicKey>,
    /// `FAILOVER_PERMISSION` (default `failover`).
    pub permission: String,
    /// `FAILOVER_WIF`: that permission's key (`None` with `SWAP=producer-api`, which signs nothing on chain).
    pub failover_key: Option<PrivateKey>,
    /// `BACKUP_FINALIZER_KEY` (`PUB_BLS_…`): the swap then also carries `actfinkey`.
    pub backup_finalizer_key: Option<String>,
    /// Expiration of the swap transaction after head block time.
    pub tx_expiration: Duration,
    /// `SWAP=producer-api`: the pause/resume failover through the node agents instead of `regproducer`
    /// (`pause_resume.rs`); the regproducer settings above are then unused.
    pub pause_resume: Option<pause_resume::PauseResumeSettings>,
}

/// What the trap knows of one endpoint.
#[derive(Debug, Clone, Default)]
struct View {
    info: Option<api::Info>,
    /// Why its last answer was not used.
    problem: Option<String>,
    latency: Option<Duration>,
    /// Left out of reading until this poll, and why (refuted by another endpoint's blocks, or blocks
    /// that could not be followed).
    distrusted_until: u64,
    distrust_reason: String,
    /// Told the operator it serves another chain.
    wrong_chain_noticed: bool,
}

/// The Antelope implementation of [`Producer`].
pub struct AntelopeProducer {
    settings: AntelopeSettings,
    clock: SharedClock,
    endpoints: Vec<Arc<Nodeos>>,
    views: Vec<View>,
    polls: u64,
    leader: Option<usize>,
    follower: follow::Follower,
    schedules: Option<api::Schedules>,
    schedules_at: Option<ChainTime>,
    next_look: Option<ChainTime>,
    watch_note: String,
    notices: Vec<String>,
    /// A dispute between endpoints while it lasts (for `health`).
    dispute: Option<String>,
    /// The id of the attempt an endpoint accepted, for the confirmation.
    accepted: Option<String>,
    /// Time (Unix ms) of the latest block signed by the producer that a look saw.
    last_produced_ms: Option<u64>,
    /// Chain time (Unix ms) of the first poll: blocks before it were never looked at.
    watching_since_ms: Option<u64>,
}

impl AntelopeProducer {
    pub fn new(settings: AntelopeSettings, clock: SharedClock) -> Result<Self, NodeosError> {
        let endpoints = settings
            .urls
            .iter()
            .map(|u| Nodeos::new(u, settings.timeout).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            views: vec![View::default(); endpoints.len()],
            endpoints,
            settings,
            clock,
            polls: 0,
            leader: None,
            follower: follow::Follower::default(),
            schedules: None,
            schedules_at: None,
            next_look: None,
            watch_note: "slots: no reading yet".into(),
            notices: Vec::new(),
            dispute: None,
            accepted: None,
            last_produced_ms: None,
            watching_since_ms: None,
        })
    }

    pub fn settings(&self) -> &AntelopeSettings {
        &self.settings
    }

    /// Time (Unix ms) of the latest block of the producer seen by a look (headers followed, heads polled).
    pub fn last_produced_ms(&self) -> Option<u64> {
        self.last_produced_ms
    }

    /// The latest moment the producer may have produced as far as this process knows: its last block seen,
    /// or, if none was seen, when watching began (nothing before it was looked at). `None` before any poll.
    pub fn last_possible_block_ms(&self) -> Option<u64> {
        self.last_produced_ms.or(self.watching_since_ms)
    }

    fn saw_block_of_producer(&mut self, producer: &str, time_ms: u64) {
        if producer == self.settings.producer && self.last_produced_ms.is_none_or(|t| t < time_ms) {
            self.last_produced_ms = Some(time_ms);
        }
    }

    fn now(&self) -> ChainTime {
        ChainTime::now(self.clock.as_ref())
    }

    /// The producer's keys in `keys` include the backup key (texts compared as 33 bytes).
    fn has_backup(&self, keys: &[String]) -> bool {
        keys.iter().any(|k| PublicKey::from_text(k).is_ok_and(|k| k == self.settings.backup_key))
    }
}

impl Producer for AntelopeProducer {
    type Baseline = AntelopeBaseline;

    fn identity(&self) -> Identity {
        Identity { producer: self.settings.producer.clone(), chain: self.settings.network.clone() }
    }

    fn target(&self) -> String {
        self.settings.backup_key.to_legacy()
    }

    async fn turns(&mut self) -> Result<crate::chain::Turns, String> {
        self.turns_now().await
    }

    async fn target_active(&mut self) -> Result<bool, String> {
        self.target_in_active_schedule().await
    }

    fn canonical_key(&self, text: &str) -> String {
        PublicKey::from_text(text).map_or_else(|_| text.to_string(), |k| k.to_legacy())
    }

    fn assume_roles(&mut self, _current: &str, backup: &str) -> Result<(), String> {
        // FAILOVER_WIF signs regproducer whatever the key on chain: only the target changes.
        self.settings.backup_key = PublicKey::from_text(backup)
            .map_err(|e| format!("the state's backup key {backup:?} is not an Antelope key: {e}"))?;
        Ok(())
    }

    fn block_interval(&self) -> Duration {
        Duration::from_millis(antelope_protocol::schedule::BLOCK_INTERVAL_MS)
    }

    async fn preflight(&mut self) -> Preflight<AntelopeBaseline> {
        self.check_chain().await
    }

    async fn dry_run(&mut self) -> Result<SwapAttempt, SwapError> {
        self.prepare_swap().await
    }

    async fn observe(&mut self, baseline: &AntelopeBaseline) -> Observation {
        self.look(baseline).await
    }

    async fn corroborate(&mut self, first: &Evidence, _: &AntelopeBaseline, allowed: u64) -> Corroboration {
        self.corroborate_gaps(first, allowed).await
    }

    async fn prepare(&mut self) -> Result<SwapAttempt, SwapError> {
        self.prepare_swap().await
    }

    async fn execute(&mut self, attempt: &SwapAttempt) -> Result<(), SwapError> {
        self.push_swap(attempt).await
    }

    async fn status(&mut self, attempts: &[String], expires_at: Option<ChainTime>) -> SwapStatus {
        self.confirm(attempts, expires_at).await
    }

    fn next_look(&self) -> Option<ChainTime> {
        self.next_look
    }

    fn watch_note(&self) -> String {
        self.watch_note.clone()
    }

    fn counter_name(&self) -> &'static str {
        "missed slots"
    }

    fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    fn troubles(&self) -> Vec<String> {
        let mut t: Vec<String> = self
            .views
            .iter()
            .zip(&self.endpoints)
            .filter(|(v, _)| v.distrusted_until > self.polls)
            .map(|(v, e)| format!("{} is distrusted: {}", e.url(), v.distrust_reason))
            .collect();
        t.extend(self.dispute.clone());
        t
    }

    fn take_endpoint_stats(&mut self) -> Vec<EndpointStat> {
        self.views
            .iter_mut()
            .zip(&self.endpoints)
            .map(|(v, e)| EndpointStat {
                url: e.url().to_string(),
                up: v.problem.is_none() && v.info.is_some(),
                latency: v.latency.take(),
            })
            .collect()
    }

    fn endpoint_urls(&self) -> Vec<String> {
        self.endpoints.iter().map(|e| e.url().to_string()).collect()
    }

    async fn key_progress(&mut self) -> Option<String> {
        Some(self.describe_key_progress().await)
    }

    fn calls(&self) -> u64 {
        self.endpoints.iter().map(|e| e.calls()).sum()
    }
}
