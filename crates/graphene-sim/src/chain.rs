//! The simulated chain as a pure state machine: blocks, the 21-slot schedule, missed slots, the pending pool.
//!
//! Nothing here touches sockets or clocks: [`Chain::advance_to`] is told the chain time and produces every
//! block whose slot has come, so unit tests drive it with plain numbers. The RPC layer (`server.rs`) reads it,
//! the broadcast checks (`validate.rs`) decide what may enter the pool, and `mod.rs` owns the timer.
//!
//! The rules mirror protocol.md §6: one slot every `block_interval` seconds numbered from the epoch
//! (`get_slot_at_time`), a round of 21 shuffled names recomputed when `head_block_num % 21 == 0` (§6.1), and
//! `total_missed` incremented for each skipped slot's scheduled witness only when the next block is applied
//! (§6.2). A block is checked against the signing key as of the state *before* it (§6.4), so which node of the
//! watched witness produces a slot is decided before the block's transactions are applied.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use thiserror::Error;

use super::proto::{is_valid_account_name, public_key_from_secret, PublicKey};

/// Slots per round: `HIVE_MAX_WITNESSES` / `STEEM_MAX_WITNESSES` (§6.1).
pub const ROUND: u32 = 21;

/// Size of hived's `block_summary` ring used for TaPoS (§3.3): `ref_block_num` is 16 bits.
const SUMMARY_RING: usize = 1 << 16;

/// Recent blocks kept for `get_block_header` and inclusion lookups; far more than any client looks back.
const BLOCK_HISTORY: usize = 8192;

/// Events kept for inspection; older ones are dropped (a long benchmark run would otherwise grow forever).
const EVENT_LOG: usize = 500_000;

/// Blocks between the head and the last irreversible block. Hive's fast confirmation makes a block
/// irreversible within a few blocks (§6.4); a constant keeps the simulation simple.
pub const IRREVERSIBLE_LAG: u32 = 2;

/// Names given to the 20 other witnesses (valid account names, stable across runs).
const OTHER_NAMES: [&str; 21] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima",
    "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform",
];

/// Which node signed a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// The watched witness's primary node (holds the primary key).
    Primary,
    /// The watched witness's backup node (holds the backup key).
    Backup,
    /// A further backup node of the watched witness (holds `standby_keys[i]`), for ordered backups.
    Standby(usize),
    /// The node of one of the other 20 witnesses.
    Other,
}

/// Something that happened on the simulated chain, for narrators and tests.
#[derive(Debug, Clone, PartialEq)]
pub enum SimEvent {
    /// A block was applied.
    BlockProduced {
        num: u32,
        id: [u8; 20],
        /// Block timestamp (chain seconds) = slot × interval.
        time: u64,
        aslot: u64,
        witness: String,
        producer: Signer,
        /// Transactions included, in order.
        txids: Vec<[u8; 20]>,
    },
    /// A skipped slot was counted against its witness while applying block `counted_in_block` (§6.2).
    SlotMissed { aslot: u64, slot_time: u64, witness: String, total_missed: u32, counted_in_block: u32 },
    /// A broadcast passed every check and entered the pending pool.
    TxAccepted { txid: [u8; 20], endpoint: usize, expiration: u32 },
    /// A pending transaction was applied in a block.
    TxIncluded { txid: [u8; 20], block_num: u32, trx_num: u32 },
    /// A pending transaction could not be applied (expired, or its evaluator check failed by then).
    TxDropped { txid: [u8; 20], reason: String },
    /// A witness's on-chain signing key changed (by op 11 or op 42).
    SigningKeyChanged { witness: String, old: PublicKey, new: PublicKey, block_num: u32 },
    /// A new round order was computed after block `block_num`.
    Reshuffled { block_num: u32, order: Vec<String> },
    /// A node was switched off or on (`node` is "primary", "backup" or another witness's name).
    NodeSwitched { node: String, up: bool },
}

/// An event with its sequence number and the chain time at which it was recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub seq: u64,
    pub time: u64,
    pub event: SimEvent,
}

/// Errors constructing a chain.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ChainError {
    #[error("block interval must be at least 1 second")]
    ZeroInterval,
    #[error("witness name {0:?} is not a valid account name (3-16 chars, a-z 0-9 - and .)")]
    BadWitnessName(String),
    #[error("the primary and the backup key are the same key\nuse two different keys (protocol.md §6.4)")]
    SameKeys,
}

/// Evaluator-level failures: checks that need chain state, run at broadcast and again at inclusion.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EvalError {
    #[error("'key' does not match witness signing key.")]
    KeyMismatch,
    #[error("witness {0} does not exist")]
    UnknownWitness(String),
    #[error("account {0} does not exist")]
    UnknownAccount(String),
}

/// The chain-properties triple every witness votes on (§4.1 `legacy_chain_properties`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WitnessProps {
    /// In thousandths of HIVE/STEEM.
    pub account_creation_fee: i64,
    pub maximum_block_size: u32,
    /// `hbd_interest_rate` on Hive, `sbd_interest_rate` on Steem (basis points).
    pub interest_rate: u16,
}

impl Default for WitnessProps {
    fn default() -> Self {
        Self { account_creation_fee: 3000, maximum_block_size: 65536, interest_rate: 1000 }
    }
}

/// A witness object as the chain stores it (the fields `get_witness_by_account` reports).
#[derive(Debug, Clone, PartialEq)]
pub struct Witness {
    pub id: u32,
    pub owner: String,
    pub url: String,
    pub signing_key: PublicKey,
    pub props: WitnessProps,
    pub total_missed: u32,
    pub last_aslot: u64,
    pub last_confirmed_block_num: u32,
    /// Creation time, chain seconds.
    pub created: u64,
    pub votes: u128,
}

/// The keys of an account's authorities (each a 1-of-1 key authority here).
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: u32,
    pub name: String,
    pub owner: PublicKey,
    pub active: PublicKey,
    pub posting: PublicKey,
    pub memo: PublicKey,
}

/// One applied block.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockRecord {
    pub num: u32,
    pub id: [u8; 20],
    pub previous: [u8; 20],
    pub time: u64,
    pub aslot: u64,
    pub witness: String,
    pub producer: Signer,
    pub txids: Vec<[u8; 20]>,
}

/// A state change requested by an accepted operation, already decoded from the wire form by `validate.rs`.
#[derive(Debug, Clone, PartialEq)]
pub enum ChainOp {
    /// Op 11: overwrites url, key and all three props (§4.1).
    WitnessUpdate { owner: String, url: String, signing_key: PublicKey, props: WitnessProps },
    /// Op 42: changes only the props present; `key` must equal the on-chain key (§4.2).
    SetProperties {
        owner: String,
        key: PublicKey,
        new_signing_key: Option<PublicKey>,
        url: Option<String>,
        account_creation_fee: Option<i64>,
        maximum_block_size: Option<u32>,
        interest_rate: Option<u16>,
    },
}

/// A transaction that passed the broadcast checks.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingTx {
    pub txid: [u8; 20],
    pub expiration: u32,
    pub ops: Vec<ChainOp>,
}

/// Where a transaction is, for `transaction_status_api.find_transaction` (§5.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    Unknown,
    WithinMempool,
    WithinReversibleBlock(u32),
    WithinIrreversibleBlock(u32),
    ExpiredReversible,
    ExpiredIrreversible,
}

impl TxStatus {
    /// The `status` string of `find_transaction`.
    pub fn as_str(&self) -> &'static str {
        match self {
            TxStatus::Unknown => "unknown",
            TxStatus::WithinMempool => "within_mempool",
            TxStatus::WithinReversibleBlock(_) => "within_reversible_block",
            TxStatus::WithinIrreversibleBlock(_) => "within_irreversible_block",
            TxStatus::ExpiredReversible => "expired_reversible",
            TxStatus::ExpiredIrreversible => "expired_irreversible",
        }
    }
}

/// Everything needed to build a chain.
#[derive(Debug, Clone)]
pub struct ChainParams {
    /// Seconds per slot (3 on the real chains).
    pub block_interval: u32,
    /// Seeds the shuffles, block ids and the other witnesses' keys: same seed, same run.
    pub seed: u64,
    /// The watched witness.
    pub witness: String,
    pub witness_url: String,
    pub primary_key: PublicKey,
    pub backup_key: PublicKey,
    /// Keys of further backup nodes (ordered backups): each signs once its key is on chain.
    pub standby_keys: Vec<PublicKey>,
    /// The watched witness account's active key (authority for op 11).
    pub active_key: PublicKey,
    pub initial_total_missed: u32,
    /// Number of the block that is head when the chain starts.
    pub initial_block_num: u32,
    /// How many blocks behind the head the watched witness's nodes see its signing key (0: at once). With
    /// 1, a node producing block N+1 decides by the key after block N−1: a key change landing in the block
    /// right before the witness's slot makes that slot missed (the old node signs with a key no longer on
    /// chain, the new one does not know yet), as on a real network where the block has not reached it.
    pub key_view_lag: u32,
}

#[derive(Debug, Clone, Copy)]
struct Included {
    block_num: u32,
    expiration: u32,
}

/// The simulated chain.
#[derive(Clone)]
pub struct Chain {
    params: ChainParams,
    rng: StdRng,
    head: BlockRecord,
    blocks: VecDeque<BlockRecord>,
    /// `block_summary`: id of the last block whose number has these low 16 bits (§3.3).
    summary: Vec<[u8; 20]>,
    witnesses: BTreeMap<String, Witness>,
    accounts: BTreeMap<String, Account>,
    schedule: Vec<String>,
    next_shuffle_block_num: u32,
    /// One bit per recent slot, 1 = filled (hived `recent_slots_filled`).
    recent_slots_filled: u128,
    pending: Vec<PendingTx>,
    included: HashMap<[u8; 20], Included>,
    primary_up: bool,
    backup_up: bool,
    /// Whether each standby node is up.
    standby_up: Vec<bool>,
    down: BTreeSet<String>,
    /// The watched witness's signing keys, each with the block after which it is on chain (the first: 0).
    key_log: Vec<(u32, PublicKey)>,
    events: VecDeque<EventRecord>,
    /// Events produced since the last `advance_to`/`record` returned them.
    fresh: Vec<EventRecord>,
    seq: u64,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("head_num", &self.head.num)
            .field("head_time", &self.head.time)
            .field("schedule", &self.schedule)
            .finish_non_exhaustive()
    }
}

/// A throwaway secp256k1 public key drawn from the simulation's RNG (the other witnesses' keys).
fn throwaway_key(rng: &mut StdRng) -> PublicKey {
    loop {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        // Fails only for 0 or ≥ n, probability ~2^-128: draw again.
        if let Some(k) = public_key_from_secret(&bytes) {
            return k;
        }
    }
}

impl Chain {
    /// A chain whose head block sits in the last slot at or before `now` (chain seconds).
    pub fn new(params: ChainParams, now: u64) -> Result<Self, ChainError> {
        let standbys = params.standby_keys.len();
        let primary_key = params.primary_key;
        if params.block_interval == 0 {
            return Err(ChainError::ZeroInterval);
        }
        if !is_valid_account_name(&params.witness) {
            return Err(ChainError::BadWitnessName(params.witness.clone()));
        }
        if params.primary_key == params.backup_key {
            return Err(ChainError::SameKeys);
        }
        let mut rng = StdRng::seed_from_u64(params.seed);
        let interval = u64::from(params.block_interval);
        let aslot = now / interval;
        let created = now.saturating_sub(86_400 * 365);

        let mut names: Vec<String> =
            OTHER_NAMES.iter().filter(|n| **n != params.witness).take(20).map(|n| n.to_string()).collect();
        names.push(params.witness.clone());
        names.sort();

        let mut witnesses = BTreeMap::new();
        let mut accounts = BTreeMap::new();
        for (i, name) in names.iter().enumerate() {
            let id = i as u32 + 1;
            let watched = *name == params.witness;
            let (signing_key, active, url, total_missed) = if watched {
                (params.primary_key, params.active_key, params.witness_url.clone(), params.initial_total_missed)
            } else {
                let k = throwaway_key(&mut rng);
                let a = throwaway_key(&mut rng);
                (k, a, format!("https://{name}.example"), rng.gen_range(0..500))
            };
            witnesses.insert(
                name.clone(),
                Witness {
                    id,
                    owner: name.clone(),
                    url,
                    signing_key,
                    props: WitnessProps::default(),
                    total_missed,
                    last_aslot: 0,
                    last_confirmed_block_num: 0,
                    created,
                    votes: 100_000_000_000_000_000u128 + u128::from(rng.gen::<u32>()),
                },
            );
            accounts.insert(
                name.clone(),
                Account { id: id + 1000, name: name.clone(), owner: active, active, posting: active, memo: active },
            );
        }

        let num = params.initial_block_num.max(1);
        let mut head = BlockRecord {
            num,
            id: [0; 20],
            previous: [0; 20],
            time: aslot * interval,
            aslot,
            witness: String::new(),
            producer: Signer::Other,
            txids: Vec::new(),
        };
        head.id = block_id(num, &mut rng);
        head.previous = block_id(num - 1, &mut rng);

        let mut chain = Chain {
            params,
            rng,
            head,
            blocks: VecDeque::new(),
            summary: vec![[0; 20]; SUMMARY_RING],
            witnesses,
            accounts,
            schedule: Vec::new(),
            next_shuffle_block_num: 0,
            recent_slots_filled: u128::MAX,
            pending: Vec::new(),
            included: HashMap::new(),
            primary_up: true,
            key_log: vec![(0, primary_key)],
            backup_up: true,
            standby_up: vec![true; standbys],
            down: BTreeSet::new(),
            events: VecDeque::new(),
            fresh: Vec::new(),
            seq: 0,
        };
        chain.shuffle();
        chain.next_shuffle_block_num = (num / ROUND + 1) * ROUND;
        chain.head.witness = chain.scheduled_at(aslot).to_string();
        let (hn, hid) = (chain.head.num, chain.head.id);
        chain.summary[(hn & 0xffff) as usize] = hid;
        chain.head.producer = chain.producer_kind(&chain.head.witness.clone());
        if let Some(w) = chain.witnesses.get_mut(&chain.head.witness) {
            w.last_aslot = aslot;
            w.last_confirmed_block_num = hn;
        }
        chain.blocks.push_back(chain.head.clone());
        Ok(chain)
    }

    /// Produce every block whose slot time is ≤ `now`, and return the events this caused.
    pub fn advance_to(&mut self, now: u64) -> Vec<EventRecord> {
        let interval = u64::from(self.params.block_interval);
        let target = now / interval;
        let mut slot = self.head.aslot + 1;
        while slot <= target {
            let witness = self.scheduled_at(slot).to_string();
            if let Some(producer) = self.produces(&witness) {
                self.apply_block(slot, witness, producer);
            }
            slot += 1;
        }
        std::mem::take(&mut self.fresh)
    }

    /// Chain time of the next slot after the head (when `advance_to` may next have work).
    pub fn next_slot_time(&self, now: u64) -> u64 {
        let interval = u64::from(self.params.block_interval);
        (now / interval + 1) * interval
    }

    /// Who would sign in `witness`'s slot right now, or `None` if the slot will be missed.
    fn produces(&self, witness: &str) -> Option<Signer> {
        let w = self.witnesses.get(witness)?;
        if w.signing_key.is_null() {
            return None;
        }
        if witness == self.params.witness {
            // A node signs only when its private key matches the on-chain key as it sees it (§6.1
            // `no_private_key`); a block signed with a key no longer on chain is invalid: the slot is missed.
            let seen = self.key_seen_by_nodes().unwrap_or(w.signing_key);
            let node = if self.primary_up && seen == self.params.primary_key {
                Some((Signer::Primary, self.params.primary_key))
            } else if self.backup_up && seen == self.params.backup_key {
                Some((Signer::Backup, self.params.backup_key))
            } else {
                self.params
                    .standby_keys
                    .iter()
                    .enumerate()
                    .find(|(i, k)| **k == seen && self.standby_up.get(*i) == Some(&true))
                    .map(|(i, k)| (Signer::Standby(i), *k))
            };
            node.filter(|(_, key)| *key == w.signing_key).map(|(signer, _)| signer)
        } else if self.down.contains(witness) {
            None
        } else {
            Some(Signer::Other)
        }
    }

    /// The watched witness's signing key as its nodes see it, `key_view_lag` blocks behind the head.
    fn key_seen_by_nodes(&self) -> Option<PublicKey> {
        if self.params.key_view_lag == 0 {
            return None;
        }
        let seen_block = self.head.num.saturating_sub(self.params.key_view_lag);
        self.key_log.iter().rev().find(|(after, _)| *after <= seen_block).map(|(_, key)| *key)
    }

    fn producer_kind(&self, witness: &str) -> Signer {
        self.produces(witness).unwrap_or(Signer::Other)
    }

    /// `get_scheduled_witness` (§5.4): the shuffled name for absolute slot `aslot`.
    pub fn scheduled_at(&self, aslot: u64) -> &str {
        let n = self.schedule.len().max(1) as u64;
        self.schedule.get((aslot % n) as usize).map(String::as_str).unwrap_or("")
    }

    fn apply_block(&mut self, aslot: u64, witness: String, producer: Signer) {
        let num = self.head.num + 1;
        let interval = u64::from(self.params.block_interval);
        let time = aslot * interval;

        // §6.2: each skipped slot's witness gets +1, unless it is the producer of this block.
        let missed = aslot - self.head.aslot - 1;
        for i in 1..=missed {
            let s = self.head.aslot + i;
            let sw = self.scheduled_at(s).to_string();
            if sw == witness {
                continue;
            }
            if let Some(w) = self.witnesses.get_mut(&sw) {
                w.total_missed = w.total_missed.wrapping_add(1);
                let total_missed = w.total_missed;
                self.log(
                    time,
                    SimEvent::SlotMissed {
                        aslot: s,
                        slot_time: s * interval,
                        witness: sw,
                        total_missed,
                        counted_in_block: num,
                    },
                );
            }
        }
        // hived shifts in a 0 per missed slot and a 1 for this block.
        for _ in 0..missed.min(128) {
            self.recent_slots_filled <<= 1;
        }
        self.recent_slots_filled = (self.recent_slots_filled << 1) | 1;

        let id = block_id(num, &mut self.rng);
        let previous = self.head.id;

        // The pending pool is applied in arrival order; a transaction that expired or whose evaluator check
        // no longer holds (e.g. a second key change racing the first) is dropped, as a node does.
        let pending = std::mem::take(&mut self.pending);
        let mut txids = Vec::new();
        for tx in pending {
            if u64::from(tx.expiration) <= time {
                self.log(time, SimEvent::TxDropped { txid: tx.txid, reason: "expired".into() });
                continue;
            }
            if let Err(e) = self.check_ops(&tx.ops) {
                self.log(time, SimEvent::TxDropped { txid: tx.txid, reason: e.to_string() });
                continue;
            }
            for op in &tx.ops {
                self.apply_op(op, num, time);
            }
            let trx_num = txids.len() as u32;
            txids.push(tx.txid);
            self.included.insert(tx.txid, Included { block_num: num, expiration: tx.expiration });
            self.log(time, SimEvent::TxIncluded { txid: tx.txid, block_num: num, trx_num });
        }

        if let Some(w) = self.witnesses.get_mut(&witness) {
            w.last_aslot = aslot;
            w.last_confirmed_block_num = num;
        }
        let record = BlockRecord { num, id, previous, time, aslot, witness: witness.clone(), producer, txids };
        self.summary[(num & 0xffff) as usize] = id;
        self.blocks.push_back(record.clone());
        while self.blocks.len() > BLOCK_HISTORY {
            self.blocks.pop_front();
        }
        self.head = record.clone();
        self.log(time, SimEvent::BlockProduced { num, id, time, aslot, witness, producer, txids: record.txids });
        if num.is_multiple_of(ROUND) {
            self.shuffle();
            self.next_shuffle_block_num = num + ROUND;
            let order = self.schedule.clone();
            self.log(time, SimEvent::Reshuffled { block_num: num, order });
        }
    }

    /// Shuffle the witnesses with a non-null key (hived skips disabled witnesses since HF14, §6.1).
    fn shuffle(&mut self) {
        let mut names: Vec<String> =
            self.witnesses.values().filter(|w| !w.signing_key.is_null()).map(|w| w.owner.clone()).collect();
        names.shuffle(&mut self.rng);
        self.schedule = names;
    }

    /// Stateful checks of the operations (the evaluators' asserts), without changing anything.
    pub fn check_ops(&self, ops: &[ChainOp]) -> Result<(), EvalError> {
        for op in ops {
            match op {
                ChainOp::WitnessUpdate { owner, .. } => {
                    if !self.accounts.contains_key(owner) {
                        return Err(EvalError::UnknownAccount(owner.clone()));
                    }
                }
                ChainOp::SetProperties { owner, key, .. } => {
                    let w = self.witnesses.get(owner).ok_or_else(|| EvalError::UnknownWitness(owner.clone()))?;
                    if w.signing_key != *key {
                        return Err(EvalError::KeyMismatch);
                    }
                }
            }
        }
        Ok(())
    }

    fn apply_op(&mut self, op: &ChainOp, block_num: u32, time: u64) {
        let (owner, new_key) = match op {
            ChainOp::WitnessUpdate { owner, url, signing_key, props } => {
                // A witness_update creates the witness object if there is none (§4.1); the sim's accounts
                // are all witnesses already, so this only overwrites.
                if let Some(w) = self.witnesses.get_mut(owner) {
                    w.url = url.clone();
                    w.props = *props;
                }
                (owner, Some(*signing_key))
            }
            ChainOp::SetProperties {
                owner,
                new_signing_key,
                url,
                account_creation_fee,
                maximum_block_size,
                interest_rate,
                ..
            } => {
                if let Some(w) = self.witnesses.get_mut(owner) {
                    if let Some(u) = url {
                        w.url = u.clone();
                    }
                    if let Some(f) = account_creation_fee {
                        w.props.account_creation_fee = *f;
                    }
                    if let Some(m) = maximum_block_size {
                        w.props.maximum_block_size = *m;
                    }
                    if let Some(r) = interest_rate {
                        w.props.interest_rate = *r;
                    }
                }
                (owner, *new_signing_key)
            }
        };
        if let (Some(new), Some(w)) = (new_key, self.witnesses.get_mut(owner)) {
            let old = w.signing_key;
            w.signing_key = new;
            if old != new {
                let witness = owner.clone();
                if witness == self.params.witness {
                    self.key_log.push((block_num, new));
                }
                self.log(time, SimEvent::SigningKeyChanged { witness, old, new, block_num });
            }
        }
    }

    fn log(&mut self, time: u64, event: SimEvent) {
        self.seq += 1;
        let rec = EventRecord { seq: self.seq, time, event };
        self.fresh.push(rec.clone());
        self.events.push_back(rec);
        if self.events.len() > EVENT_LOG {
            self.events.pop_front();
        }
    }

    /// Record an event that did not come from block production (node switches, accepted broadcasts).
    pub fn record(&mut self, time: u64, event: SimEvent) -> EventRecord {
        self.log(time, event);
        // Handed to the caller here rather than through advance_to.
        self.fresh.pop().expect("log() pushes the record it was given")
    }

    /// A copy of the chain without the event log, for an endpoint that freezes at this state.
    pub fn snapshot(&mut self) -> Chain {
        let events = std::mem::take(&mut self.events);
        let copy = self.clone();
        self.events = events;
        copy
    }

    // ---- switches ----

    /// Switch the watched witness's primary node off (`false`) or on.
    pub fn set_primary_up(&mut self, up: bool) -> EventRecord {
        self.primary_up = up;
        self.record(self.head.time, SimEvent::NodeSwitched { node: "primary".into(), up })
    }

    /// Switch the watched witness's backup node off or on.
    pub fn set_backup_up(&mut self, up: bool) -> EventRecord {
        self.backup_up = up;
        self.record(self.head.time, SimEvent::NodeSwitched { node: "backup".into(), up })
    }

    /// Switch the watched witness's standby node `i` off or on (unknown indexes are recorded only).
    pub fn set_standby_up(&mut self, i: usize, up: bool) -> EventRecord {
        if let Some(u) = self.standby_up.get_mut(i) {
            *u = up;
        }
        self.record(self.head.time, SimEvent::NodeSwitched { node: format!("standby{i}"), up })
    }

    /// Switch another witness's node off or on (its slots are then missed).
    pub fn set_witness_up(&mut self, witness: &str, up: bool) -> EventRecord {
        if up {
            self.down.remove(witness);
        } else {
            self.down.insert(witness.to_string());
        }
        self.record(self.head.time, SimEvent::NodeSwitched { node: witness.to_string(), up })
    }

    // ---- pool ----

    /// Is this id pending, or included and not yet expired (hived keeps it until expiration)?
    pub fn is_known_tx(&self, txid: &[u8; 20]) -> bool {
        self.pending.iter().any(|p| p.txid == *txid)
            || self.included.get(txid).is_some_and(|i| u64::from(i.expiration) > self.head.time)
    }

    /// Put a checked transaction into the pending pool (applied in the next block).
    pub fn push_pending(&mut self, tx: PendingTx) {
        self.pending.push(tx);
    }

    /// Status for `find_transaction`; `expiration` (if the caller gave one) separates "expired" from "unknown".
    pub fn tx_status(&self, txid: &[u8; 20], expiration: Option<u64>) -> TxStatus {
        if self.pending.iter().any(|p| p.txid == *txid) {
            return TxStatus::WithinMempool;
        }
        if let Some(i) = self.included.get(txid) {
            return if i.block_num <= self.last_irreversible_block_num() {
                TxStatus::WithinIrreversibleBlock(i.block_num)
            } else {
                TxStatus::WithinReversibleBlock(i.block_num)
            };
        }
        match expiration {
            Some(exp) if exp <= self.lib_time() => TxStatus::ExpiredIrreversible,
            Some(exp) if exp <= self.head.time => TxStatus::ExpiredReversible,
            _ => TxStatus::Unknown,
        }
    }

    // ---- reading ----

    pub fn params(&self) -> &ChainParams {
        &self.params
    }
    pub fn head(&self) -> &BlockRecord {
        &self.head
    }
    pub fn block_interval(&self) -> u32 {
        self.params.block_interval
    }
    pub fn last_irreversible_block_num(&self) -> u32 {
        self.head.num.saturating_sub(IRREVERSIBLE_LAG)
    }
    fn lib_time(&self) -> u64 {
        self.block(self.last_irreversible_block_num()).map(|b| b.time).unwrap_or(0)
    }
    /// A recent block by number.
    pub fn block(&self, num: u32) -> Option<&BlockRecord> {
        let first = self.blocks.front()?.num;
        let idx = num.checked_sub(first)? as usize;
        self.blocks.get(idx)
    }
    /// The id in the TaPoS ring for `ref_block_num` (zeros if that slot was never written).
    pub fn summary_id(&self, ref_block_num: u16) -> [u8; 20] {
        self.summary[usize::from(ref_block_num)]
    }
    pub fn witness(&self, name: &str) -> Option<&Witness> {
        self.witnesses.get(name)
    }
    pub fn watched(&self) -> &Witness {
        // Chain::new always creates the watched witness and nothing removes witnesses.
        self.witnesses.get(&self.params.witness).expect("the watched witness exists from construction on")
    }
    pub fn witnesses(&self) -> impl Iterator<Item = &Witness> {
        self.witnesses.values()
    }
    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.get(name)
    }
    pub fn schedule(&self) -> &[String] {
        &self.schedule
    }
    pub fn next_shuffle_block_num(&self) -> u32 {
        self.next_shuffle_block_num
    }
    pub fn recent_slots_filled(&self) -> u128 {
        self.recent_slots_filled
    }
    pub fn participation_count(&self) -> u32 {
        self.recent_slots_filled.count_ones()
    }
    pub fn pending(&self) -> &[PendingTx] {
        &self.pending
    }
    pub fn primary_up(&self) -> bool {
        self.primary_up
    }
    pub fn backup_up(&self) -> bool {
        self.backup_up
    }
    /// The recorded events (the most recent 500 000).
    pub fn events(&self) -> impl Iterator<Item = &EventRecord> {
        self.events.iter()
    }
    /// Events with a sequence number above `seq`, oldest first.
    pub fn events_since(&self, seq: u64) -> impl Iterator<Item = &EventRecord> {
        let start = self.events.partition_point(|e| e.seq <= seq);
        self.events.range(start..)
    }
    /// Sequence number of the last event (0 before any).
    pub fn last_seq(&self) -> u64 {
        self.seq
    }
}

/// A block id: number big-endian in bytes 0..4 (§3.3), pseudo-random rest.
fn block_id(num: u32, rng: &mut StdRng) -> [u8; 20] {
    let mut id = [0u8; 20];
    id[..4].copy_from_slice(&num.to_be_bytes());
    rng.fill_bytes(&mut id[4..]);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_750_000_000 - (1_750_000_000 % 3);

    fn key(b: u8) -> PublicKey {
        public_key_from_secret(&[b; 32]).unwrap()
    }

    fn params() -> ChainParams {
        ChainParams {
            block_interval: 3,
            seed: 7,
            witness: "watched".into(),
            witness_url: "https://watched.example".into(),
            primary_key: key(1),
            backup_key: key(2),
            standby_keys: Vec::new(),
            active_key: key(3),
            initial_total_missed: 10,
            initial_block_num: 1000,
            key_view_lag: 0,
        }
    }

    /// The next absolute slot after `from` that belongs to `witness` under the current schedule.
    fn next_slot_of(c: &Chain, witness: &str, from: u64) -> u64 {
        (from + 1..from + 1 + u64::from(ROUND)).find(|s| c.scheduled_at(*s) == witness).unwrap()
    }

    /// Advance until a round has just been shuffled, so the next 21 slots use the current schedule.
    fn to_round_start(c: &mut Chain) {
        while !c.head().num.is_multiple_of(ROUND) {
            let t = c.next_slot_time(c.head().time);
            c.advance_to(t);
        }
    }

    #[test]
    fn rejects_bad_params() {
        let mut p = params();
        p.block_interval = 0;
        assert_eq!(Chain::new(p, T0).unwrap_err(), ChainError::ZeroInterval);
        let mut p = params();
        p.witness = "Bad_Name".into();
        assert!(matches!(Chain::new(p, T0).unwrap_err(), ChainError::BadWitnessName(_)));
        let mut p = params();
        p.backup_key = p.primary_key;
        assert_eq!(Chain::new(p, T0).unwrap_err(), ChainError::SameKeys);
    }

    #[test]
    fn starts_with_21_witnesses_and_a_head_at_the_current_slot() {
        let c = Chain::new(params(), T0 + 1).unwrap();
        assert_eq!(c.schedule().len(), 21);
        assert_eq!(c.head().num, 1000);
        assert_eq!(c.head().time, T0);
        assert_eq!(c.head().aslot, T0 / 3);
        assert_eq!(&c.head().id[..4], &1000u32.to_be_bytes());
        assert_eq!(c.summary_id(1000), c.head().id);
        assert_eq!(c.watched().total_missed, 10);
        assert_eq!(c.watched().signing_key, key(1));
        assert_eq!(c.next_shuffle_block_num(), 1008);
    }

    #[test]
    fn same_seed_same_run() {
        let mut a = Chain::new(params(), T0).unwrap();
        let mut b = Chain::new(params(), T0).unwrap();
        a.advance_to(T0 + 300);
        b.advance_to(T0 + 300);
        assert_eq!(a.head(), b.head());
        assert_eq!(a.schedule(), b.schedule());
    }

    #[test]
    fn a_block_every_interval_when_everyone_produces() {
        let mut c = Chain::new(params(), T0).unwrap();
        let ev = c.advance_to(T0 + 30);
        let blocks = ev.iter().filter(|e| matches!(e.event, SimEvent::BlockProduced { .. })).count();
        assert_eq!(blocks, 10);
        assert_eq!(c.head().num, 1010);
        assert_eq!(c.head().time, T0 + 30);
        assert!(!ev.iter().any(|e| matches!(e.event, SimEvent::SlotMissed { .. })));
        // Nothing new until the next slot.
        assert!(c.advance_to(T0 + 32).is_empty());
        // Previous links and TaPoS ring.
        let b = c.block(1005).unwrap();
        assert_eq!(b.previous, c.block(1004).unwrap().id);
        assert_eq!(c.summary_id(1005), b.id);
    }

    #[test]
    fn reshuffles_when_head_num_is_a_multiple_of_21() {
        let mut c = Chain::new(params(), T0).unwrap();
        let ev = c.advance_to(T0 + 3 * 50);
        let shuffles: Vec<u32> = ev
            .iter()
            .filter_map(|e| match &e.event {
                SimEvent::Reshuffled { block_num, order } => {
                    assert_eq!(order.len(), 21);
                    Some(*block_num)
                }
                _ => None,
            })
            .collect();
        assert_eq!(shuffles, vec![1008, 1029, 1050]);
        assert_eq!(c.next_shuffle_block_num(), 1071);
    }

    #[test]
    fn total_missed_moves_only_when_the_next_block_arrives() {
        let mut c = Chain::new(params(), T0).unwrap();
        to_round_start(&mut c);
        c.set_primary_up(false);
        let head = c.head().aslot;
        let slot = next_slot_of(&c, "watched", head);
        // Stop just after the watched witness's slot: no block there, counter unchanged.
        c.advance_to(slot * 3);
        assert_eq!(c.head().aslot, slot - 1);
        assert_eq!(c.watched().total_missed, 10);
        // The next block discovers the gap: +1, exactly once.
        let ev = c.advance_to((slot + 1) * 3);
        assert_eq!(c.watched().total_missed, 11);
        let missed: Vec<_> = ev
            .iter()
            .filter_map(|e| match &e.event {
                SimEvent::SlotMissed { aslot, witness, total_missed, counted_in_block, .. } => {
                    Some((*aslot, witness.clone(), *total_missed, *counted_in_block))
                }
                _ => None,
            })
            .collect();
        assert_eq!(missed, vec![(slot, "watched".to_string(), 11, c.head().num)]);
    }

    #[test]
    fn one_increment_per_missed_slot_over_several_rounds() {
        let mut c = Chain::new(params(), T0).unwrap();
        c.set_primary_up(false);
        let ev = c.advance_to(T0 + 3 * 21 * 5);
        let misses = ev.iter().filter(|e| matches!(e.event, SimEvent::SlotMissed { .. })).count() as u32;
        assert!(misses >= 4, "at least one slot per full round, got {misses}");
        assert_eq!(c.watched().total_missed, 10 + misses);
        assert!(ev.iter().all(|e| match &e.event {
            SimEvent::SlotMissed { witness, .. } => witness == "watched",
            SimEvent::BlockProduced { witness, .. } => witness != "watched",
            _ => true,
        }));
        assert!(c.participation_count() < 128);
    }

    #[test]
    fn several_consecutive_misses_counted_in_one_block() {
        let mut c = Chain::new(params(), T0).unwrap();
        to_round_start(&mut c);
        // Take down the next three scheduled witnesses: the fourth block counts three misses.
        let head = c.head().aslot;
        let names: Vec<String> = (1..=3).map(|i| c.scheduled_at(head + i).to_string()).collect();
        if names.iter().any(|n| n == "watched") {
            c.set_primary_up(false);
        }
        for n in &names {
            c.set_witness_up(n, false);
        }
        let before: Vec<u32> = names.iter().map(|n| c.witness(n).unwrap().total_missed).collect();
        c.advance_to((head + 3) * 3);
        assert_eq!(c.head().aslot, head);
        c.advance_to((head + 4) * 3);
        assert_eq!(c.head().aslot, head + 4);
        for (n, b) in names.iter().zip(before) {
            assert_eq!(c.witness(n).unwrap().total_missed, b + 1, "{n}");
        }
    }

    #[test]
    fn backup_produces_once_the_key_is_the_backup_key() {
        let mut c = Chain::new(params(), T0).unwrap();
        c.set_primary_up(false);
        c.push_pending(PendingTx {
            txid: [9; 20],
            expiration: (T0 + 600) as u32,
            ops: vec![ChainOp::SetProperties {
                owner: "watched".into(),
                key: key(1),
                new_signing_key: Some(key(2)),
                url: None,
                account_creation_fee: None,
                maximum_block_size: None,
                interest_rate: None,
            }],
        });
        let ev = c.advance_to(T0 + 3 * 63);
        let mut included_in = None;
        let mut first_backup = None;
        for e in &ev {
            match &e.event {
                SimEvent::TxIncluded { txid, block_num, trx_num } => {
                    assert_eq!((*txid, *trx_num), ([9; 20], 0));
                    included_in = Some(*block_num);
                }
                SimEvent::SigningKeyChanged { old, new, .. } => {
                    assert_eq!((*old, *new), (key(1), key(2)))
                }
                SimEvent::BlockProduced { num, producer: Signer::Backup, .. } if first_backup.is_none() => {
                    first_backup = Some(*num)
                }
                SimEvent::BlockProduced { producer: Signer::Primary, .. } => panic!("primary is down"),
                _ => {}
            }
        }
        let included_in = included_in.unwrap();
        assert!(first_backup.unwrap() > included_in);
        assert_eq!(c.watched().signing_key, key(2));
        assert_eq!(c.tx_status(&[9; 20], None), TxStatus::WithinIrreversibleBlock(included_in));
    }

    #[test]
    fn primary_stops_when_the_key_moves_away() {
        let mut c = Chain::new(params(), T0).unwrap();
        c.set_backup_up(false);
        c.push_pending(PendingTx {
            txid: [8; 20],
            expiration: (T0 + 600) as u32,
            ops: vec![ChainOp::WitnessUpdate {
                owner: "watched".into(),
                url: "https://new.example".into(),
                signing_key: key(2),
                props: WitnessProps { account_creation_fee: 1, maximum_block_size: 70000, interest_rate: 0 },
            }],
        });
        let ev = c.advance_to(T0 + 3 * 63);
        assert!(!ev.iter().any(|e| matches!(e.event, SimEvent::BlockProduced { producer: Signer::Primary, .. })));
        assert!(ev.iter().any(|e| matches!(&e.event, SimEvent::SlotMissed { witness, .. } if witness == "watched")));
        let w = c.watched();
        assert_eq!(w.url, "https://new.example");
        assert_eq!(w.props.maximum_block_size, 70000);
    }

    #[test]
    fn a_stale_key_change_is_dropped_at_inclusion() {
        let mut c = Chain::new(params(), T0).unwrap();
        let op = |k: u8, n: u8| ChainOp::SetProperties {
            owner: "watched".into(),
            key: key(k),
            new_signing_key: Some(key(n)),
            url: None,
            account_creation_fee: None,
            maximum_block_size: None,
            interest_rate: None,
        };
        c.push_pending(PendingTx { txid: [1; 20], expiration: (T0 + 60) as u32, ops: vec![op(1, 2)] });
        c.push_pending(PendingTx { txid: [2; 20], expiration: (T0 + 60) as u32, ops: vec![op(1, 4)] });
        let ev = c.advance_to(T0 + 3);
        assert!(ev.iter().any(|e| matches!(&e.event, SimEvent::TxDropped { txid, .. } if *txid == [2; 20])));
        assert_eq!(c.watched().signing_key, key(2));
        assert!(c.is_known_tx(&[1; 20]));
        assert!(!c.is_known_tx(&[2; 20]));
    }

    #[test]
    fn tx_status_and_duplicate_memory_follow_expiration() {
        let mut c = Chain::new(params(), T0).unwrap();
        let exp = (T0 + 9) as u32;
        c.push_pending(PendingTx { txid: [5; 20], expiration: exp, ops: vec![] });
        assert_eq!(c.tx_status(&[5; 20], None), TxStatus::WithinMempool);
        assert!(c.is_known_tx(&[5; 20]));
        c.advance_to(T0 + 3);
        assert_eq!(c.tx_status(&[5; 20], None), TxStatus::WithinReversibleBlock(1001));
        c.advance_to(T0 + 12);
        assert_eq!(c.tx_status(&[5; 20], None), TxStatus::WithinIrreversibleBlock(1001));
        assert!(!c.is_known_tx(&[5; 20]), "forgotten for duplicate checks after expiration");
        assert_eq!(c.tx_status(&[6; 20], Some(T0 + 100)), TxStatus::Unknown);
        assert_eq!(c.tx_status(&[6; 20], Some(T0 + 11)), TxStatus::ExpiredReversible);
        assert_eq!(c.tx_status(&[6; 20], Some(T0 + 3)), TxStatus::ExpiredIrreversible);
    }
}
