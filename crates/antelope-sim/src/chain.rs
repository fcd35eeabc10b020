//! The simulated Antelope chain as a pure state machine: slots, blocks, misses, the producer schedule, the
//! `producers` table, accounts and permissions, the finalizer tables, the transaction pool and chain-wide forks.
//!
//! Nothing here touches sockets or clocks: [`Chain::advance_to`] is told the time (unix ms) and processes every
//! slot that has begun, so unit tests drive it with plain numbers. The HTTP layer (`server.rs`) reads it through a
//! `view::View`, the push checks (`validate.rs`) decide what may enter the pool, and `lib.rs` owns the timer.
//!
//! The rules follow antelope-chain.md §1.3–1.4: slot = (unix_ms − epoch) / 500; the producer of slot `s` is
//! `producers[(s mod 12·N) div 12]` of the *active* schedule; a slot without a block is a gap between two
//! consecutive block timestamps. `onblock` credits `unpaid_blocks` to the *parent's* producer and re-proposes the
//! schedule at most every `proposal_interval_slots` when a key differs; the proposal is `pending` at once and
//! becomes `active` at the `rounds_to_activate`-th round boundary after it (1–2 rounds with the default 2).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use antelope_protocol::keys::PublicKey;
use antelope_protocol::name::Name;
use antelope_protocol::schedule;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use thiserror::Error;

/// TaPoS reaches back over this many blocks (`ref_block_num` is 16 bits; spring `validate_tapos`).
pub const TAPOS_RING: usize = 1 << 16;

/// Recent blocks kept for `get_block_info`; far more than any client looks back.
const BLOCK_HISTORY: usize = 8192;

/// Blocks made before the first head, so LIB and TaPoS have something to name from the start.
const INITIAL_HISTORY: u32 = 64;

/// Events kept for inspection; older ones are dropped (a long benchmark run would otherwise grow forever).
const EVENT_LOG: usize = 500_000;

/// The other producers' accounts: `produceraaa`, `produceraab`, … (valid names, stable across runs).
fn other_names(watched: &str) -> Vec<String> {
    let mut out = Vec::new();
    for a in b'a'..=b'z' {
        for b in b'a'..=b'z' {
            let n = format!("producer{}{}{}", 'a', a as char, b as char);
            if n != watched {
                out.push(n);
            }
            if out.len() == 20 {
                return out;
            }
        }
    }
    out
}

/// Which node signed a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// The watched producer's primary node (holds the primary key).
    Primary,
    /// The watched producer's backup node (holds the backup key).
    Backup,
    /// One of the other producers' nodes.
    Other,
}

/// A `block_signing_authority_v0`: the weights of the keys present must reach the threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningAuthority {
    pub threshold: u32,
    pub keys: Vec<(PublicKey, u16)>,
}

impl SigningAuthority {
    /// One key of weight 1, threshold 1 (what `regproducer` makes).
    pub fn single(key: PublicKey) -> Self {
        Self { threshold: 1, keys: vec![(key, 1)] }
    }

    /// Can a node holding only `key` sign with this authority?
    pub fn satisfied_by(&self, key: &PublicKey) -> bool {
        let w: u64 = self.keys.iter().filter(|(k, _)| k == key).map(|(_, w)| u64::from(*w)).sum();
        w >= u64::from(self.threshold)
    }

    /// `is_valid()` of the contract: a non-zero threshold the weights can reach.
    pub fn is_valid(&self) -> bool {
        let total: u64 = self.keys.iter().map(|(_, w)| u64::from(*w)).sum();
        self.threshold > 0 && total >= u64::from(self.threshold)
    }
}

/// One producer of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleEntry {
    pub producer: Name,
    pub authority: SigningAuthority,
}

/// A producer schedule (proposer policy) with its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerSchedule {
    pub version: u32,
    pub producers: Vec<ScheduleEntry>,
}

impl ProducerSchedule {
    /// The authority this schedule lists for `producer`.
    pub fn authority_of(&self, producer: Name) -> Option<&SigningAuthority> {
        self.producers.iter().find(|e| e.producer == producer).map(|e| &e.authority)
    }
}

/// A proposed schedule on its way to becoming active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSchedule {
    pub schedule: ProducerSchedule,
    pub proposed_in_block: u32,
    pub proposed_slot: u64,
    /// The first slot produced under it (a round boundary).
    pub activates_at_slot: u64,
}

/// A row of `eosio`/`eosio`/`producers` (reference-contracts `producer_info`).
#[derive(Debug, Clone, PartialEq)]
pub struct ProducerRow {
    pub owner: Name,
    /// Integer part of the vote weight (the chain prints a double with 17 decimals).
    pub total_votes: u128,
    /// `None` is the null key a multi-key `regproducer2` leaves (antelope-protocol.md §0.10).
    pub producer_key: Option<PublicKey>,
    pub is_active: bool,
    pub url: String,
    pub unpaid_blocks: u32,
    pub last_claim_time_ms: u64,
    pub location: u16,
    pub authority: SigningAuthority,
}

/// A permission of an account (key authorities only: the sim's accounts need no account or wait weights).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub name: Name,
    /// `None` for `owner`.
    pub parent: Option<Name>,
    pub threshold: u32,
    pub keys: Vec<(PublicKey, u16)>,
}

/// A `linkauth`: actions `code::action` (or every action of `code` when `action` is `None`) need `permission`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedAction {
    pub code: Name,
    pub action: Option<Name>,
    pub permission: Name,
}

/// CPU or NET of an account, as `get_account` reports them (µs or bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    pub used: i64,
    pub available: i64,
    pub max: i64,
}

/// An account with its permission tree and links.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub name: Name,
    pub created_ms: u64,
    pub permissions: Vec<Permission>,
    pub links: Vec<LinkedAction>,
    pub cpu: Resource,
    pub net: Resource,
}

impl Account {
    pub fn permission(&self, name: Name) -> Option<&Permission> {
        self.permissions.iter().find(|p| p.name == name)
    }

    /// The least permission that may authorize `code::action` (spring `lookup_minimum_permission`): a link for
    /// the action, else a link for the whole contract, else `active`.
    pub fn minimum_permission(&self, code: Name, action: Name) -> Name {
        self.links
            .iter()
            .find(|l| l.code == code && l.action == Some(action))
            .or_else(|| self.links.iter().find(|l| l.code == code && l.action.is_none()))
            .map(|l| l.permission)
            .unwrap_or_else(|| name("active"))
    }

    /// Does `declared` satisfy `required`, i.e. is it `required` or one of its ancestors? A child permission
    /// does not satisfy its parent (antelope-chain.md §1.4).
    pub fn satisfies(&self, declared: Name, required: Name) -> bool {
        let mut cur = Some(required);
        let mut steps = 0;
        while let Some(p) = cur {
            if p == declared {
                return true;
            }
            steps += 1;
            if steps > 32 {
                return false;
            }
            cur = self.permission(p).and_then(|p| p.parent);
        }
        false
    }
}

/// A registered BLS finalizer key (`finkeys` row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinKey {
    pub id: u64,
    pub finalizer: Name,
    /// `PUB_BLS_…` text.
    pub key: String,
}

/// A `finalizers` row: the finalizer's active key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalizerRow {
    pub finalizer: Name,
    pub active_key_id: u64,
    pub key_count: u32,
}

/// One block of the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockRecord {
    pub num: u32,
    pub id: [u8; 32],
    pub previous: [u8; 32],
    pub slot: u64,
    pub time_ms: u64,
    pub producer: Name,
    pub signer: Signer,
    pub schedule_version: u32,
    pub txids: Vec<[u8; 32]>,
}

/// Something that happened on the simulated chain, for narrators and tests.
#[derive(Debug, Clone, PartialEq)]
pub enum SimEvent {
    /// A block was added to the chain.
    BlockProduced {
        num: u32,
        id: [u8; 32],
        slot: u64,
        time_ms: u64,
        producer: String,
        signer: Signer,
        txids: Vec<[u8; 32]>,
    },
    /// A slot passed without a block; `block_num` is the number of the block that will follow the gap (the one
    /// whose timestamp shows it).
    SlotMissed { producer: String, slot: u64, block_num: u32 },
    /// A pushed transaction passed every check and entered the pool of the real chain.
    TxAccepted { txid: [u8; 32], endpoint: usize, block_num: u32 },
    /// A pooled transaction was applied in a block.
    TxIncluded { txid: [u8; 32], block_num: u32 },
    /// A pooled transaction could not be applied by the time of its block (expired, or a contract check failed).
    TxDropped { txid: [u8; 32], reason: String },
    /// A push to an endpoint on a minority fork was answered as accepted but never reaches the chain.
    TxLostOnFork { txid: [u8; 32], endpoint: usize },
    /// A `regproducer`/`regproducer2` changed a producer row.
    ProducerRegistered { producer: String, authority: SigningAuthority, block_num: u32 },
    /// An `unregprod` cleared `is_active`.
    ProducerUnregistered { producer: String, block_num: u32 },
    /// `actfinkey` changed a finalizer's active key.
    FinalizerKeyActivated { finalizer: String, key: String, block_num: u32 },
    /// A new schedule is pending.
    ScheduleProposed { version: u32, block_num: u32, activates_at_slot: u64 },
    /// A pending schedule became active; `block_num` is the first block produced under it.
    ScheduleActivated { version: u32, block_num: u32 },
    /// The watched producer's block was signed by its backup node after a block that was not.
    BackupProducing { block_num: u32, slot: u64 },
    /// The watched producer's block was signed by its primary node after a block that was not.
    PrimaryProducing { block_num: u32, slot: u64 },
    /// A node was switched off or on (`node`: "primary", "backup" or another producer's name).
    NodeSwitched { node: String, up: bool },
    /// Same-key nodes: a node's production was paused or resumed (`producer_api`).
    NodePaused { node: String, paused: bool },
    /// Same-key nodes: both nodes were unpaused and up with the producer's key, the fault a pause/resume
    /// failover must never cause. Recorded when it starts (`block_num` the next block) and in each of the
    /// producer's slots while it lasts.
    DoubleProduction { slot: u64, block_num: u32 },
    /// The last `depth` blocks were replaced by blocks with other ids (same slots and producers).
    Microfork { depth: u32, first_block: u32, head_block: u32 },
    /// The watched producer's block for `slot` was held back: the slot shows as a gap for now.
    LateBlockHeld { slot: u64, block_num: u32 },
    /// The chain switched to the fork containing the held block: the miss of `slot` is undone.
    MissUndone { producer: String, slot: u64, block_num: u32, head_block: u32 },
}

/// An event with its sequence number and the chain time (unix ms) at which it was recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub seq: u64,
    pub time_ms: u64,
    pub event: SimEvent,
}

/// Errors constructing a chain.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ChainError {
    #[error("{what} {text:?} is not a valid Antelope name (up to 12 of a-z 1-5 and ., normalized)")]
    BadName { what: &'static str, text: String },
    #[error("the primary and the backup key are the same key\nuse two different keys")]
    SameKeys,
    #[error("producer position {0} is outside the 21-producer schedule")]
    BadPosition(usize),
    #[error("rounds_to_activate must be at least 1")]
    ZeroRounds,
}

/// Contract-level failures (`check(…)` in the system contract): run at push and again at inclusion.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ContractError {
    #[error("url too long")]
    UrlTooLong,
    #[error("invalid producer authority")]
    BadAuthority,
    #[error("producer not found")]
    UnknownProducer,
    #[error("finalizer {0} has not registered any finalizer keys")]
    NoFinalizer(String),
    #[error("finalizer key was not registered: {0}")]
    UnknownFinKey(String),
    #[error("finalizer key was not registered by the finalizer")]
    NotOwnFinKey,
    #[error("finalizer key was already active")]
    AlreadyActive,
    #[error("unknown action")]
    UnknownAction,
}

/// A state change requested by an accepted action, decoded by `validate.rs`.
#[derive(Debug, Clone, PartialEq)]
pub enum ChainOp {
    /// `regproducer` (one key) or `regproducer2` (`producer_key` is `None` with more than one key).
    RegProducer {
        producer: Name,
        producer_key: Option<PublicKey>,
        authority: SigningAuthority,
        url: String,
        location: u16,
    },
    UnregProd {
        producer: Name,
    },
    ActFinKey {
        finalizer: Name,
        key: String,
    },
}

/// A transaction that passed the push checks.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingTx {
    pub txid: [u8; 32],
    pub expiration_ms: u64,
    pub ops: Vec<ChainOp>,
}

/// Where a transaction is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxStatus {
    Unknown,
    /// Accepted, waiting for the next block.
    Pending,
    /// In block `n`, above LIB.
    Reversible(u32),
    /// In block `n`, at or below LIB.
    Irreversible(u32),
    /// Accepted but not applied (the reason).
    Dropped(String),
}

/// The watched producer's least-privilege permission (antelope-chain.md §1.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverPermission {
    /// Permission name (`failover`), child of `active`.
    pub name: String,
    pub key: PublicKey,
    /// Linked actions as (code, action); an empty action links the whole contract.
    pub links: Vec<(String, String)>,
}

impl FailoverPermission {
    /// `failover` holding `key`, linked to `eosio::regproducer` only.
    pub fn new(key: PublicKey) -> Self {
        Self { name: "failover".into(), key, links: vec![("eosio".into(), "regproducer".into())] }
    }
}

/// Everything needed to build a chain.
#[derive(Debug, Clone)]
pub struct ChainParams {
    /// Seeds block ids, the other producers' keys and votes: same seed, same run.
    pub seed: u64,
    /// The watched producer.
    pub producer: String,
    /// Its index in the schedule; `None` sorts it among the others by name, as the chain does.
    pub producer_position: Option<usize>,
    pub producer_url: String,
    pub producer_location: u16,
    pub primary_key: PublicKey,
    pub backup_key: PublicKey,
    pub owner_key: PublicKey,
    pub active_key: PublicKey,
    pub failover: Option<FailoverPermission>,
    /// Also put the failover key into `active` (a set-up the trap must refuse).
    pub failover_key_in_active: bool,
    /// Savanna: `finkeys`/`finalizers` tables and `actfinkey`.
    pub savanna: bool,
    pub primary_finalizer_key: String,
    pub backup_finalizer_key: String,
    /// Blocks between head and LIB.
    pub lib_lag: u32,
    /// `onblock` runs `update_elected_producers` at most this often (120 slots = 60 s on the real chains).
    pub proposal_interval_slots: u64,
    /// A proposal becomes active at this round boundary after it (2: 1–2 rounds later, as under Savanna).
    pub rounds_to_activate: u64,
    /// Number of the head block at start.
    pub initial_block_num: u32,
    /// Both nodes hold `primary_key`; exactly one should be unpaused (`producer_api` pause/resume failover).
    pub same_key_nodes: bool,
    /// Same-key nodes: a node that comes back up starts paused (nodeos `--pause-on-startup`).
    pub pause_on_startup: bool,
}

#[derive(Debug, Clone, Copy)]
struct Included {
    block_num: u32,
    expiration_ms: u64,
}

/// The late-block scenario's state.
#[derive(Debug, Clone, Copy, PartialEq)]
enum LatePlan {
    /// Hold the watched producer's next block; switch to the fork containing it after `after` more blocks.
    Armed {
        after: u32,
    },
    Held {
        slot: u64,
        signer: Signer,
        base_num: u32,
        remaining: u32,
    },
}

/// The simulated chain.
#[derive(Clone)]
pub struct Chain {
    params: ChainParams,
    watched: Name,
    rng: StdRng,
    order: Vec<Name>,
    rows: BTreeMap<Name, ProducerRow>,
    accounts: BTreeMap<Name, Account>,
    active: ProducerSchedule,
    pending: Option<PendingSchedule>,
    last_update_slot: u64,
    head: BlockRecord,
    blocks: VecDeque<BlockRecord>,
    /// TaPoS ring: id of the last block whose number has these low 16 bits (zeros: never written).
    ring: Vec<[u8; 32]>,
    processed_slot: u64,
    pool: Vec<PendingTx>,
    included: HashMap<[u8; 32], Included>,
    dropped: HashMap<[u8; 32], String>,
    primary_up: bool,
    backup_up: bool,
    /// Same-key nodes: whether each node's production is paused.
    primary_paused: bool,
    backup_paused: bool,
    /// Same-key nodes: up and answering, but not producing (a stalled nodeos).
    primary_stalled: bool,
    backup_stalled: bool,
    /// Every double production recorded (the event log is bounded; this is not).
    double_productions: u64,
    down: BTreeSet<Name>,
    last_watched_signer: Option<Signer>,
    finkeys: Vec<FinKey>,
    finalizers: BTreeMap<Name, FinalizerRow>,
    late: Option<LatePlan>,
    events: VecDeque<EventRecord>,
    fresh: Vec<EventRecord>,
    seq: u64,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("head_num", &self.head.num)
            .field("head_slot", &self.head.slot)
            .field("schedule_version", &self.active.version)
            .finish_non_exhaustive()
    }
}

/// A name known to be valid (constants of this file).
pub(crate) fn name(text: &str) -> Name {
    Name::new(text).unwrap_or_default()
}

fn parse_name(what: &'static str, text: &str) -> Result<Name, ChainError> {
    Name::new(text).map_err(|_| ChainError::BadName { what, text: text.to_string() })
}

/// A throwaway secp256k1 public key drawn from the simulation's RNG (the other producers' keys).
fn throwaway_key(rng: &mut StdRng) -> PublicKey {
    thread_local! {
        static SECP: secp256k1::Secp256k1<secp256k1::SignOnly> = secp256k1::Secp256k1::signing_only();
    }
    loop {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        // Fails only for 0 or ≥ n, probability ~2^-128: draw again.
        if let Ok(sk) = secp256k1::SecretKey::from_slice(&bytes) {
            let pk = SECP.with(|secp| secp256k1::PublicKey::from_secret_key(secp, &sk));
            if let Ok(k) = PublicKey::from_bytes(pk.serialize()) {
                return k;
            }
        }
    }
}

/// A fake `PUB_BLS_…` text of the real length (142 characters) drawn from the RNG.
pub fn fake_bls_key(rng: &mut impl RngCore) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut s = String::from("PUB_BLS_");
    while s.len() < 142 {
        s.push(ALPHABET[(rng.next_u32() % 64) as usize] as char);
    }
    s
}

fn key_permission(name_text: &str, parent: Option<&str>, keys: Vec<PublicKey>) -> Permission {
    Permission {
        name: name(name_text),
        parent: parent.map(name),
        threshold: 1,
        keys: keys.into_iter().map(|k| (k, 1)).collect(),
    }
}

fn block_id(num: u32, rng: &mut StdRng) -> [u8; 32] {
    let mut id = [0u8; 32];
    id[..4].copy_from_slice(&num.to_be_bytes());
    rng.fill_bytes(&mut id[4..]);
    id
}

impl Chain {
    /// A chain whose head block sits in the slot containing `now_ms`, with [`INITIAL_HISTORY`] blocks before it.
    pub fn new(params: ChainParams, now_ms: u64) -> Result<Self, ChainError> {
        let watched = parse_name("producer", &params.producer)?;
        if params.primary_key == params.backup_key {
            return Err(ChainError::SameKeys);
        }
        if params.rounds_to_activate == 0 {
            return Err(ChainError::ZeroRounds);
        }
        let failover_name = match &params.failover {
            Some(f) => Some(parse_name("failover permission", &f.name)?),
            None => None,
        };
        let mut links = Vec::new();
        if let (Some(f), Some(perm)) = (&params.failover, failover_name) {
            for (code, action) in &f.links {
                let code = parse_name("linked contract", code)?;
                let action = if action.is_empty() { None } else { Some(parse_name("linked action", action)?) };
                links.push(LinkedAction { code, action, permission: perm });
            }
        }

        let mut rng = StdRng::seed_from_u64(params.seed);
        let others = other_names(&params.producer);
        let mut order: Vec<Name> = others.iter().map(|n| name(n)).collect();
        match params.producer_position {
            Some(p) if p > order.len() => return Err(ChainError::BadPosition(p)),
            Some(p) => order.insert(p, watched),
            None => {
                order.push(watched);
                order.sort();
            }
        }

        let start_slot = schedule::slot_of_unix_ms(now_ms);
        let created_ms = now_ms.saturating_sub(86_400_000 * 365 * 3);
        let mut rows = BTreeMap::new();
        let mut accounts = BTreeMap::new();
        let mut finkeys = Vec::new();
        let mut finalizers = BTreeMap::new();
        for (i, &owner) in order.iter().enumerate() {
            let is_watched = owner == watched;
            let (key, url, location) = if is_watched {
                (params.primary_key, params.producer_url.clone(), params.producer_location)
            } else {
                (throwaway_key(&mut rng), format!("https://{owner}.example"), 840)
            };
            rows.insert(
                owner,
                ProducerRow {
                    owner,
                    total_votes: 300_000_000_000_000_000_000u128 - (i as u128) * 1_000_000_000_000_000_000
                        + u128::from(rng.gen::<u32>()),
                    producer_key: Some(key),
                    is_active: true,
                    url,
                    unpaid_blocks: rng.gen_range(0..5000),
                    last_claim_time_ms: now_ms.saturating_sub(rng.gen_range(3_600_000..86_400_000)),
                    location,
                    authority: SigningAuthority::single(key),
                },
            );
            let account = if is_watched {
                let mut active_keys = vec![params.active_key];
                if params.failover_key_in_active {
                    if let Some(f) = &params.failover {
                        active_keys.push(f.key);
                    }
                }
                let mut permissions = vec![
                    key_permission("owner", None, vec![params.owner_key]),
                    key_permission("active", Some("owner"), active_keys),
                ];
                if let (Some(f), Some(perm)) = (&params.failover, failover_name) {
                    let mut p = key_permission("active", Some("active"), vec![f.key]);
                    p.name = perm;
                    permissions.push(p);
                }
                Account {
                    name: owner,
                    created_ms,
                    permissions,
                    links: links.clone(),
                    cpu: Resource { used: 1_200, available: 250_000, max: 251_200 },
                    net: Resource { used: 900, available: 1_000_000, max: 1_000_900 },
                }
            } else {
                let k = throwaway_key(&mut rng);
                Account {
                    name: owner,
                    created_ms,
                    permissions: vec![
                        key_permission("owner", None, vec![k]),
                        key_permission("active", Some("owner"), vec![k]),
                    ],
                    links: Vec::new(),
                    cpu: Resource { used: 500, available: 100_000, max: 100_500 },
                    net: Resource { used: 300, available: 500_000, max: 500_300 },
                }
            };
            accounts.insert(owner, account);
            if params.savanna {
                let keys: Vec<String> = if is_watched {
                    vec![params.primary_finalizer_key.clone(), params.backup_finalizer_key.clone()]
                } else {
                    vec![fake_bls_key(&mut rng)]
                };
                let first_id = finkeys.len() as u64;
                for k in &keys {
                    finkeys.push(FinKey { id: finkeys.len() as u64, finalizer: owner, key: k.clone() });
                }
                finalizers.insert(
                    owner,
                    FinalizerRow { finalizer: owner, active_key_id: first_id, key_count: keys.len() as u32 },
                );
            }
        }

        let active = ProducerSchedule {
            version: 1,
            producers: order
                .iter()
                .map(|p| ScheduleEntry {
                    producer: *p,
                    authority: SigningAuthority::single(rows[p].authority.keys[0].0),
                })
                .collect(),
        };
        let head_num = params.initial_block_num.max(INITIAL_HISTORY + 1);
        let placeholder = BlockRecord {
            num: head_num - INITIAL_HISTORY - 1,
            id: [0; 32],
            previous: [0; 32],
            slot: start_slot - u64::from(INITIAL_HISTORY) - 1,
            time_ms: 0,
            producer: watched,
            signer: Signer::Other,
            schedule_version: 1,
            txids: Vec::new(),
        };
        let mut chain = Chain {
            watched,
            rng,
            order,
            rows,
            accounts,
            active,
            pending: None,
            last_update_slot: start_slot,
            head: placeholder.clone(),
            blocks: VecDeque::new(),
            ring: vec![[0; 32]; TAPOS_RING],
            processed_slot: start_slot,
            pool: Vec::new(),
            included: HashMap::new(),
            dropped: HashMap::new(),
            primary_up: true,
            backup_up: true,
            primary_paused: false,
            backup_paused: params.same_key_nodes,
            primary_stalled: false,
            backup_stalled: false,
            double_productions: 0,
            down: BTreeSet::new(),
            last_watched_signer: None,
            finkeys,
            finalizers,
            late: None,
            events: VecDeque::new(),
            fresh: Vec::new(),
            seq: 0,
            params,
        };
        chain.head.id = block_id(chain.head.num, &mut chain.rng);
        // The history before the start: every slot filled, by whoever was scheduled.
        for slot in start_slot - u64::from(INITIAL_HISTORY)..=start_slot {
            let producer = chain.scheduled_at(slot);
            let signer = if producer == watched { Signer::Primary } else { Signer::Other };
            chain.push_record(slot, producer, signer, Vec::new());
        }
        Ok(chain)
    }

    // ---- time ----

    /// Process every slot that has begun by `now_ms` and return the events this caused.
    pub fn advance_to(&mut self, now_ms: u64) -> Vec<EventRecord> {
        let target = schedule::slot_of_unix_ms(now_ms);
        while self.processed_slot < target {
            let slot = self.processed_slot + 1;
            self.processed_slot = slot;
            self.step_slot(slot);
        }
        std::mem::take(&mut self.fresh)
    }

    /// Unix ms at which the next slot begins (when `advance_to` may next have work).
    pub fn next_slot_ms(&self) -> u64 {
        schedule::unix_ms_of_slot(self.processed_slot + 1)
    }

    /// The producer the active schedule names for `slot`.
    pub fn scheduled_at(&self, slot: u64) -> Name {
        let n = self.active.producers.len();
        if n == 0 {
            return Name::default();
        }
        self.active.producers[schedule::scheduled_index(slot, n)].producer
    }

    fn step_slot(&mut self, slot: u64) {
        let time_ms = schedule::unix_ms_of_slot(slot);
        if let Some(p) = &self.pending {
            if slot >= p.activates_at_slot {
                let p = self.pending.take().map(|p| p.schedule);
                if let Some(s) = p {
                    let version = s.version;
                    self.active = s;
                    self.log(time_ms, SimEvent::ScheduleActivated { version, block_num: self.head.num + 1 });
                }
            }
        }
        let n = self.active.producers.len();
        if n == 0 {
            return;
        }
        let entry = self.active.producers[schedule::scheduled_index(slot, n)].clone();
        if entry.producer == self.watched && self.both_live() && entry.authority.satisfied_by(&self.params.primary_key)
        {
            self.double_productions += 1;
            let block_num = self.head.num + 1;
            self.log(time_ms, SimEvent::DoubleProduction { slot, block_num });
        }
        let signer = self.signer_for(&entry);
        let producer_text = entry.producer.to_string();
        match signer {
            Some(signer) => {
                if entry.producer == self.watched {
                    if let Some(LatePlan::Armed { after }) = self.late {
                        let base_num = self.head.num;
                        self.late = Some(LatePlan::Held { slot, signer, base_num, remaining: after.max(1) });
                        self.log(
                            time_ms,
                            SimEvent::SlotMissed { producer: producer_text, slot, block_num: base_num + 1 },
                        );
                        self.log(time_ms, SimEvent::LateBlockHeld { slot, block_num: base_num + 1 });
                        return;
                    }
                }
                self.apply_block(slot, entry.producer, signer);
                if let Some(LatePlan::Held { slot: held, signer: s, base_num, remaining }) = self.late {
                    if remaining <= 1 {
                        self.late = None;
                        self.switch_to_late_fork(held, s, base_num);
                    } else {
                        self.late = Some(LatePlan::Held { slot: held, signer: s, base_num, remaining: remaining - 1 });
                    }
                }
            }
            None => {
                let block_num = self.head.num + 1;
                self.log(time_ms, SimEvent::SlotMissed { producer: producer_text, slot, block_num });
            }
        }
    }

    /// Which node signs `entry`'s slot now, or `None` if it will be missed.
    fn signer_for(&self, entry: &ScheduleEntry) -> Option<Signer> {
        if entry.producer == self.watched {
            if self.params.same_key_nodes && entry.authority.satisfied_by(&self.params.primary_key) {
                return match (self.live(true), self.live(false)) {
                    (true, _) => Some(Signer::Primary),
                    (false, true) => Some(Signer::Backup),
                    (false, false) => None,
                };
            }
            if self.primary_up && entry.authority.satisfied_by(&self.params.primary_key) {
                Some(Signer::Primary)
            } else if self.backup_up && entry.authority.satisfied_by(&self.params.backup_key) {
                Some(Signer::Backup)
            } else {
                None
            }
        } else if self.down.contains(&entry.producer) {
            None
        } else {
            Some(Signer::Other)
        }
    }

    /// Append a block at `slot` after the head: number, id, TaPoS ring, history, inclusion index.
    fn push_record(&mut self, slot: u64, producer: Name, signer: Signer, txids: Vec<[u8; 32]>) -> BlockRecord {
        let num = self.head.num + 1;
        let id = block_id(num, &mut self.rng);
        let record = BlockRecord {
            num,
            id,
            previous: self.head.id,
            slot,
            time_ms: schedule::unix_ms_of_slot(slot),
            producer,
            signer,
            schedule_version: self.active.version,
            txids,
        };
        for t in &record.txids {
            if let Some(i) = self.included.get_mut(t) {
                i.block_num = num;
            }
        }
        self.ring[(num & 0xffff) as usize] = id;
        self.blocks.push_back(record.clone());
        while self.blocks.len() > BLOCK_HISTORY {
            self.blocks.pop_front();
        }
        self.head = record.clone();
        record
    }

    fn apply_block(&mut self, slot: u64, producer: Name, signer: Signer) {
        let num = self.head.num + 1;
        let time_ms = schedule::unix_ms_of_slot(slot);

        // onblock carries the parent's header: the parent's producer is credited now (antelope-chain.md §1.3).
        let parent = self.head.producer;
        if let Some(r) = self.rows.get_mut(&parent) {
            r.unpaid_blocks = r.unpaid_blocks.wrapping_add(1);
        }
        self.maybe_propose(slot, num, time_ms);

        // The pool in arrival order; a transaction that expired or whose contract check no longer holds (a
        // second actfinkey of the same key) is dropped, as a producing node would.
        let pool = std::mem::take(&mut self.pool);
        let mut txids = Vec::new();
        for tx in pool {
            if tx.expiration_ms < time_ms {
                self.dropped.insert(tx.txid, "expired".into());
                self.log(time_ms, SimEvent::TxDropped { txid: tx.txid, reason: "expired".into() });
                continue;
            }
            if let Err(e) = self.check_ops(&tx.ops) {
                self.dropped.insert(tx.txid, e.to_string());
                self.log(time_ms, SimEvent::TxDropped { txid: tx.txid, reason: e.to_string() });
                continue;
            }
            for op in &tx.ops {
                self.apply_op(op, num, time_ms);
            }
            txids.push(tx.txid);
            self.included.insert(tx.txid, Included { block_num: num, expiration_ms: tx.expiration_ms });
            self.log(time_ms, SimEvent::TxIncluded { txid: tx.txid, block_num: num });
        }

        let record = self.push_record(slot, producer, signer, txids);
        self.log(
            time_ms,
            SimEvent::BlockProduced {
                num,
                id: record.id,
                slot,
                time_ms,
                producer: producer.to_string(),
                signer,
                txids: record.txids,
            },
        );
        if producer == self.watched {
            let before = self.last_watched_signer.replace(signer);
            if signer == Signer::Backup && before != Some(Signer::Backup) {
                self.log(time_ms, SimEvent::BackupProducing { block_num: num, slot });
            }
            if signer == Signer::Primary && before.is_some() && before != Some(Signer::Primary) {
                self.log(time_ms, SimEvent::PrimaryProducing { block_num: num, slot });
            }
        }
    }

    /// `update_elected_producers`: the active producers with their current keys, proposed when they differ from
    /// the latest schedule (pending, else active).
    fn maybe_propose(&mut self, slot: u64, num: u32, time_ms: u64) {
        if slot.saturating_sub(self.last_update_slot) < self.params.proposal_interval_slots {
            return;
        }
        self.last_update_slot = slot;
        let desired: Vec<ScheduleEntry> = self
            .order
            .iter()
            .filter_map(|p| self.rows.get(p))
            .filter(|r| r.is_active)
            .map(|r| ScheduleEntry { producer: r.owner, authority: r.authority.clone() })
            .collect();
        let latest = self.pending.as_ref().map(|p| &p.schedule).unwrap_or(&self.active);
        if desired.is_empty() || desired == latest.producers {
            return;
        }
        let version = latest.version + 1;
        let round = schedule::BLOCKS_PER_TURN * self.active.producers.len().max(1) as u64;
        let activates_at_slot = (slot / round + self.params.rounds_to_activate) * round;
        self.pending = Some(PendingSchedule {
            schedule: ProducerSchedule { version, producers: desired },
            proposed_in_block: num,
            proposed_slot: slot,
            activates_at_slot,
        });
        self.log(time_ms, SimEvent::ScheduleProposed { version, block_num: num, activates_at_slot });
    }

    /// The late block arrives: drop the blocks after its base, put it in its slot, and re-link the dropped
    /// blocks after it (one number higher, new ids).
    fn switch_to_late_fork(&mut self, slot: u64, signer: Signer, base_num: u32) {
        let Some(front) = self.blocks.front().map(|b| b.num) else { return };
        let Some(idx) = base_num.checked_sub(front).map(|i| i as usize + 1) else { return };
        if idx > self.blocks.len() {
            return;
        }
        let tail: Vec<BlockRecord> = self.blocks.drain(idx..).collect();
        let Some(base) = self.blocks.back().cloned() else { return };
        self.head = base;
        let held = self.push_record(slot, self.watched, signer, Vec::new());
        for b in tail {
            self.push_record(b.slot, b.producer, b.signer, b.txids);
        }
        if let Some(r) = self.rows.get_mut(&self.watched) {
            r.unpaid_blocks = r.unpaid_blocks.wrapping_add(1);
        }
        self.last_watched_signer = Some(signer);
        let (held_num, head_num) = (held.num, self.head.num);
        self.log(
            held.time_ms,
            SimEvent::MissUndone {
                producer: self.watched.to_string(),
                slot,
                block_num: held_num,
                head_block: head_num,
            },
        );
    }

    /// Contract checks of the actions (`check(…)`), without changing anything.
    pub fn check_ops(&self, ops: &[ChainOp]) -> Result<(), ContractError> {
        for op in ops {
            match op {
                ChainOp::RegProducer { url, authority, .. } => {
                    if url.len() >= 512 {
                        return Err(ContractError::UrlTooLong);
                    }
                    if !authority.is_valid() {
                        return Err(ContractError::BadAuthority);
                    }
                }
                ChainOp::UnregProd { producer } => {
                    if !self.rows.contains_key(producer) {
                        return Err(ContractError::UnknownProducer);
                    }
                }
                ChainOp::ActFinKey { finalizer, key } => {
                    if !self.params.savanna {
                        return Err(ContractError::UnknownAction);
                    }
                    let row = self
                        .finalizers
                        .get(finalizer)
                        .ok_or_else(|| ContractError::NoFinalizer(finalizer.to_string()))?;
                    let fk = self
                        .finkeys
                        .iter()
                        .find(|k| k.key == *key)
                        .ok_or_else(|| ContractError::UnknownFinKey(key.clone()))?;
                    if fk.finalizer != *finalizer {
                        return Err(ContractError::NotOwnFinKey);
                    }
                    if fk.id == row.active_key_id {
                        return Err(ContractError::AlreadyActive);
                    }
                }
            }
        }
        Ok(())
    }

    fn apply_op(&mut self, op: &ChainOp, block_num: u32, time_ms: u64) {
        match op {
            ChainOp::RegProducer { producer, producer_key, authority, url, location } => {
                if let Some(r) = self.rows.get_mut(producer) {
                    r.producer_key = *producer_key;
                    r.authority = authority.clone();
                    r.url = url.clone();
                    r.location = *location;
                    r.is_active = true;
                    let ev = SimEvent::ProducerRegistered {
                        producer: producer.to_string(),
                        authority: authority.clone(),
                        block_num,
                    };
                    self.log(time_ms, ev);
                }
            }
            ChainOp::UnregProd { producer } => {
                if let Some(r) = self.rows.get_mut(producer) {
                    r.is_active = false;
                    self.log(time_ms, SimEvent::ProducerUnregistered { producer: producer.to_string(), block_num });
                }
            }
            ChainOp::ActFinKey { finalizer, key } => {
                let id = self.finkeys.iter().find(|k| k.key == *key).map(|k| k.id);
                if let (Some(id), Some(row)) = (id, self.finalizers.get_mut(finalizer)) {
                    row.active_key_id = id;
                    let ev = SimEvent::FinalizerKeyActivated {
                        finalizer: finalizer.to_string(),
                        key: key.clone(),
                        block_num,
                    };
                    self.log(time_ms, ev);
                }
            }
        }
    }

    fn log(&mut self, time_ms: u64, event: SimEvent) {
        self.seq += 1;
        let rec = EventRecord { seq: self.seq, time_ms, event };
        self.fresh.push(rec.clone());
        self.events.push_back(rec);
        if self.events.len() > EVENT_LOG {
            self.events.pop_front();
        }
    }

    /// Record an event that did not come from block production (node switches, accepted pushes).
    pub fn record(&mut self, event: SimEvent) -> EventRecord {
        self.seq += 1;
        let rec = EventRecord { seq: self.seq, time_ms: self.head.time_ms, event };
        self.events.push_back(rec.clone());
        if self.events.len() > EVENT_LOG {
            self.events.pop_front();
        }
        rec
    }

    /// Take the events not yet handed out (after a switch that logged through the block path).
    pub fn take_fresh(&mut self) -> Vec<EventRecord> {
        std::mem::take(&mut self.fresh)
    }

    /// A copy of the chain without the event log, for an endpoint that freezes at this state.
    pub fn snapshot(&self) -> Chain {
        let mut copy = Chain { events: VecDeque::new(), fresh: Vec::new(), ..self.clone() };
        copy.events.clear();
        copy
    }

    // ---- switches ----

    pub fn set_primary_up(&mut self, up: bool) -> EventRecord {
        if up && !self.primary_up && self.params.same_key_nodes {
            self.primary_paused = self.params.pause_on_startup;
        }
        self.primary_up = up;
        let rec = self.record(SimEvent::NodeSwitched { node: "primary".into(), up });
        self.check_double_start();
        rec
    }

    pub fn set_backup_up(&mut self, up: bool) -> EventRecord {
        if up && !self.backup_up && self.params.same_key_nodes {
            self.backup_paused = self.params.pause_on_startup;
        }
        self.backup_up = up;
        let rec = self.record(SimEvent::NodeSwitched { node: "backup".into(), up });
        self.check_double_start();
        rec
    }

    /// Same-key nodes: pause (`true`) or resume one node's production, as `producer_api` does.
    pub fn set_paused(&mut self, primary: bool, paused: bool) -> Option<EventRecord> {
        let flag = if primary { &mut self.primary_paused } else { &mut self.backup_paused };
        if *flag == paused {
            return None;
        }
        *flag = paused;
        let node = if primary { "primary" } else { "backup" };
        let rec = self.record(SimEvent::NodePaused { node: node.into(), paused });
        self.check_double_start();
        Some(rec)
    }

    /// Whether node `primary` (else the backup) is up and producing with the primary key (same-key nodes).
    fn live(&self, primary: bool) -> bool {
        if primary {
            self.primary_up && !self.primary_paused && !self.primary_stalled
        } else {
            self.backup_up && !self.backup_paused && !self.backup_stalled
        }
    }

    /// Same-key nodes: a node that stays up (its API answers) but stops producing, or starts again.
    pub fn set_stalled(&mut self, primary: bool, stalled: bool) -> EventRecord {
        if primary {
            self.primary_stalled = stalled;
        } else {
            self.backup_stalled = stalled;
        }
        let node = if primary { "primary" } else { "backup" };
        let rec = self.record(SimEvent::NodeSwitched { node: format!("{node} (stalled)"), up: !stalled });
        self.check_double_start();
        rec
    }

    fn both_live(&self) -> bool {
        self.params.same_key_nodes && self.live(true) && self.live(false)
    }

    /// The moment two same-key nodes become live is a double production already, before any slot.
    fn check_double_start(&mut self) {
        if self.both_live() {
            self.double_productions += 1;
            let slot = self.processed_slot + 1;
            let block_num = self.head.num + 1;
            self.record(SimEvent::DoubleProduction { slot, block_num });
        }
    }

    pub fn paused(&self, primary: bool) -> bool {
        if primary {
            self.primary_paused
        } else {
            self.backup_paused
        }
    }

    pub fn double_productions(&self) -> u64 {
        self.double_productions
    }

    /// Switch another producer's node off or on (its slots are then missed). Unknown names are recorded too.
    pub fn set_producer_up(&mut self, producer: &str, up: bool) -> EventRecord {
        if let Ok(n) = Name::new(producer) {
            if up {
                self.down.remove(&n);
            } else {
                self.down.insert(n);
            }
        }
        self.record(SimEvent::NodeSwitched { node: producer.to_string(), up })
    }

    /// Set an account's available CPU (0 makes its pushes fail with `tx_cpu_usage_exceeded`).
    pub fn set_cpu_available(&mut self, account: &str, available: i64) -> bool {
        match Name::new(account).ok().and_then(|n| self.accounts.get_mut(&n)) {
            Some(a) => {
                a.cpu.available = available;
                a.cpu.max = a.cpu.used + available.max(0);
                true
            }
            None => false,
        }
    }

    /// Replace the last `depth` blocks (at most the history) with blocks of other ids; returns the depth used.
    /// Beyond LIB this is a finality violation no real chain shows; tests keep it within `lib_lag`.
    pub fn microfork(&mut self, depth: u32) -> EventRecord {
        let len = self.blocks.len();
        let depth = (depth as usize).min(len.saturating_sub(1));
        for i in len - depth..len {
            let num = self.blocks[i].num;
            let id = block_id(num, &mut self.rng);
            let previous = self.blocks[i - 1].id;
            self.blocks[i].id = id;
            self.blocks[i].previous = previous;
            self.ring[(num & 0xffff) as usize] = id;
        }
        if let Some(h) = self.blocks.back() {
            self.head = h.clone();
        }
        let head_block = self.head.num;
        self.record(SimEvent::Microfork { depth: depth as u32, first_block: head_block + 1 - depth as u32, head_block })
    }

    /// Arm the late-block scenario: the watched producer's next block is held (its slot is a gap), and after
    /// `after` more blocks the chain switches to the fork that contains it.
    pub fn arm_late_block(&mut self, after: u32) {
        self.late = Some(LatePlan::Armed { after: after.max(1) });
    }

    // ---- pool ----

    /// Is this id pending, or included and not yet expired (nodeos keeps it until expiration)?
    pub fn is_known_tx(&self, txid: &[u8; 32]) -> bool {
        self.pool.iter().any(|p| p.txid == *txid)
            || self.included.get(txid).is_some_and(|i| i.expiration_ms >= self.head.time_ms)
    }

    /// Put a checked transaction into the pool (applied in the next block).
    pub fn push_pending(&mut self, tx: PendingTx) {
        self.pool.push(tx);
    }

    pub fn tx_status(&self, txid: &[u8; 32]) -> TxStatus {
        if self.pool.iter().any(|p| p.txid == *txid) {
            return TxStatus::Pending;
        }
        if let Some(i) = self.included.get(txid) {
            return if i.block_num <= self.lib_num() {
                TxStatus::Irreversible(i.block_num)
            } else {
                TxStatus::Reversible(i.block_num)
            };
        }
        match self.dropped.get(txid) {
            Some(r) => TxStatus::Dropped(r.clone()),
            None => TxStatus::Unknown,
        }
    }

    // ---- reading ----

    pub fn params(&self) -> &ChainParams {
        &self.params
    }
    /// The watched producer.
    pub fn watched(&self) -> Name {
        self.watched
    }
    pub fn head(&self) -> &BlockRecord {
        &self.head
    }
    /// LIB: `lib_lag` behind the head, and not past the base of a held late block (that fork is undecided).
    pub fn lib_num(&self) -> u32 {
        let lib = self.head.num.saturating_sub(self.params.lib_lag);
        match self.late {
            Some(LatePlan::Held { base_num, .. }) => lib.min(base_num),
            _ => lib,
        }
    }
    /// A recent block by number (`None` if older than the history or above the head).
    pub fn block(&self, num: u32) -> Option<&BlockRecord> {
        let first = self.blocks.front()?.num;
        let idx = num.checked_sub(first)? as usize;
        self.blocks.get(idx)
    }
    /// Blocks with a number above `num`, oldest first.
    pub fn blocks_after(&self, num: u32) -> impl Iterator<Item = &BlockRecord> {
        let first = self.blocks.front().map(|b| b.num).unwrap_or(0);
        let skip = num.saturating_add(1).saturating_sub(first) as usize;
        self.blocks.iter().skip(skip)
    }
    /// The TaPoS ring entry for `ref_block_num`, if a block with those low bits was ever made.
    pub fn ring_id(&self, ref_block_num: u16) -> Option<[u8; 32]> {
        let id = self.ring[usize::from(ref_block_num)];
        (id != [0; 32]).then_some(id)
    }
    pub fn producer_row(&self, name: Name) -> Option<&ProducerRow> {
        self.rows.get(&name)
    }
    /// Producer rows by owner (the table's primary key order).
    pub fn producer_rows(&self) -> impl Iterator<Item = &ProducerRow> {
        self.rows.values()
    }
    pub fn active_schedule(&self) -> &ProducerSchedule {
        &self.active
    }
    pub fn pending_schedule(&self) -> Option<&PendingSchedule> {
        self.pending.as_ref()
    }
    pub fn account(&self, name: Name) -> Option<&Account> {
        self.accounts.get(&name)
    }
    pub fn finkeys(&self) -> &[FinKey] {
        &self.finkeys
    }
    pub fn finalizers(&self) -> impl Iterator<Item = &FinalizerRow> {
        self.finalizers.values()
    }
    pub fn primary_up(&self) -> bool {
        self.primary_up
    }
    pub fn backup_up(&self) -> bool {
        self.backup_up
    }
    pub fn events(&self) -> impl Iterator<Item = &EventRecord> {
        self.events.iter()
    }
    /// Events with a sequence number above `seq`, oldest first.
    pub fn events_since(&self, seq: u64) -> impl Iterator<Item = &EventRecord> {
        let start = self.events.partition_point(|e| e.seq <= seq);
        self.events.range(start..)
    }
    pub fn last_seq(&self) -> u64 {
        self.seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2025-01-01T00:00:00.000, a slot boundary and a round boundary of 21 producers? (only a slot boundary)
    const T0: u64 = 1_735_689_600_000;

    fn key(b: u8) -> PublicKey {
        let secp = secp256k1::Secp256k1::signing_only();
        let sk = secp256k1::SecretKey::from_slice(&[b; 32]).unwrap();
        PublicKey::from_bytes(secp256k1::PublicKey::from_secret_key(&secp, &sk).serialize()).unwrap()
    }

    fn params() -> ChainParams {
        ChainParams {
            seed: 7,
            producer: "alice".into(),
            producer_position: Some(3),
            producer_url: "https://alice.example".into(),
            producer_location: 840,
            primary_key: key(1),
            backup_key: key(2),
            owner_key: key(3),
            active_key: key(4),
            failover: Some(FailoverPermission::new(key(5))),
            failover_key_in_active: false,
            savanna: true,
            primary_finalizer_key: "PUB_BLS_primary".into(),
            backup_finalizer_key: "PUB_BLS_backup".into(),
            lib_lag: 3,
            proposal_interval_slots: 12,
            rounds_to_activate: 1,
            initial_block_num: 1000,
            same_key_nodes: false,
            pause_on_startup: true,
        }
    }

    fn produced(ev: &[EventRecord]) -> Vec<(u32, String)> {
        ev.iter()
            .filter_map(|e| match &e.event {
                SimEvent::BlockProduced { num, producer, .. } => Some((*num, producer.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn starts_with_history_and_the_watched_producer_at_its_position() {
        let c = Chain::new(params(), T0 + 100).unwrap();
        assert_eq!(c.active_schedule().producers.len(), 21);
        assert_eq!(c.active_schedule().producers[3].producer, name("alice"));
        assert_eq!(c.head().num, 1000);
        assert_eq!(c.head().time_ms, T0);
        assert_eq!(&c.head().id[..4], &1000u32.to_be_bytes());
        assert_eq!(c.lib_num(), 997);
        assert!(c.block(997).is_some());
        assert_eq!(c.ring_id(1000), Some(c.head().id));
        assert_eq!(c.block(999).unwrap().id, c.head().previous);
    }

    #[test]
    fn one_block_per_slot_and_twelve_per_turn() {
        let mut c = Chain::new(params(), T0).unwrap();
        let ev = c.advance_to(T0 + 252 * 500);
        let p = produced(&ev);
        assert_eq!(p.len(), 252);
        let alice = p.iter().filter(|(_, n)| n == "alice").count();
        assert_eq!(alice, 12);
        assert!(!ev.iter().any(|e| matches!(e.event, SimEvent::SlotMissed { .. })));
        assert!(c.advance_to(T0 + 252 * 500 + 499).is_empty());
    }

    #[test]
    fn primary_down_makes_gaps_in_the_watched_slots() {
        let mut c = Chain::new(params(), T0).unwrap();
        c.set_primary_up(false);
        let ev = c.advance_to(T0 + 252 * 500);
        let missed: Vec<_> = ev
            .iter()
            .filter_map(|e| match &e.event {
                SimEvent::SlotMissed { producer, slot, .. } => Some((producer.clone(), *slot)),
                _ => None,
            })
            .collect();
        assert_eq!(missed.len(), 12);
        assert!(missed.iter().all(|(p, s)| p == "alice" && c.scheduled_at(*s) == name("alice")));
        assert_eq!(produced(&ev).len(), 240);
    }

    #[test]
    fn a_key_change_is_proposed_then_activated_at_a_round_boundary() {
        let mut c = Chain::new(params(), T0).unwrap();
        c.set_primary_up(false);
        c.push_pending(PendingTx {
            txid: [9; 32],
            expiration_ms: T0 + 600_000,
            ops: vec![ChainOp::RegProducer {
                producer: name("alice"),
                producer_key: Some(key(2)),
                authority: SigningAuthority::single(key(2)),
                url: "https://alice.example".into(),
                location: 840,
            }],
        });
        let ev = c.advance_to(T0 + 3 * 252 * 500);
        let mut order = Vec::new();
        for e in &ev {
            match &e.event {
                SimEvent::TxIncluded { .. } => order.push("included"),
                SimEvent::ScheduleProposed { version: 2, .. } => order.push("proposed"),
                SimEvent::ScheduleActivated { version: 2, .. } => order.push("activated"),
                SimEvent::BackupProducing { .. } => order.push("backup"),
                _ => {}
            }
        }
        assert_eq!(order, vec!["included", "proposed", "activated", "backup"]);
        assert_eq!(c.producer_row(name("alice")).unwrap().producer_key, Some(key(2)));
        assert_eq!(c.active_schedule().version, 2);
        assert!(c.pending_schedule().is_none());
        assert!(matches!(c.tx_status(&[9; 32]), TxStatus::Irreversible(_)));
    }

    #[test]
    fn unpaid_blocks_are_credited_in_the_next_block() {
        let mut c = Chain::new(params(), T0).unwrap();
        let before = c.producer_row(name("alice")).unwrap().unpaid_blocks;
        c.advance_to(T0 + 252 * 500);
        assert_eq!(c.producer_row(name("alice")).unwrap().unpaid_blocks, before + 12);
    }

    #[test]
    fn microfork_changes_ids_not_numbers() {
        let mut c = Chain::new(params(), T0).unwrap();
        c.advance_to(T0 + 10 * 500);
        let old: Vec<_> = (1005..=1010).map(|n| c.block(n).unwrap().clone()).collect();
        c.microfork(3);
        assert_eq!(c.block(1007).unwrap().id, old[2].id);
        for (i, n) in (1008..=1010).enumerate() {
            let b = c.block(n).unwrap();
            assert_ne!(b.id, old[3 + i].id);
            assert_eq!(b.slot, old[3 + i].slot);
            assert_eq!(b.previous, c.block(n - 1).unwrap().id);
        }
        assert_eq!(c.ring_id(1010), Some(c.head().id));
    }

    #[test]
    fn a_late_block_is_first_a_gap_then_undone() {
        let mut c = Chain::new(params(), T0).unwrap();
        c.arm_late_block(2);
        let ev = c.advance_to(T0 + 252 * 500);
        let held = ev
            .iter()
            .find_map(|e| match e.event {
                SimEvent::LateBlockHeld { slot, .. } => Some(slot),
                _ => None,
            })
            .unwrap();
        let undone = ev
            .iter()
            .find_map(|e| match e.event {
                SimEvent::MissUndone { slot, block_num, .. } => Some((slot, block_num)),
                _ => None,
            })
            .unwrap();
        assert_eq!(undone.0, held);
        let b = c.block(undone.1).unwrap();
        assert_eq!((b.slot, b.producer), (held, name("alice")));
        // Every slot of the turn has a block now.
        let slots: Vec<u64> = c.blocks_after(1000).map(|b| b.slot).collect();
        assert!(slots.windows(2).all(|w| w[1] == w[0] + 1), "no gaps left");
    }
}
