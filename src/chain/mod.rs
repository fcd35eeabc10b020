//! The chain boundary: what the trap needs of a guarded block producer, whatever its chain.
//!
//! The trap's loop (`crate::trap`) and the service (`crate::service`) know only the [`Producer`] trait.
//! Behind it each chain family keeps what is its own: what a reading is, what arming records (its
//! [`Producer::Baseline`], persisted in the state file), how misses are counted from it (a counter the
//! chain keeps, as on Hive and Steem, or misses the producer counts itself from blocks, as Antelope needs),
//! how a crossing is corroborated, how a swap is built, fenced, executed and confirmed, and the checks made
//! before arming. A family lives in its own module with its RPC client; its byte-level protocol is a
//! workspace crate without I/O (`graphene-protocol` for [`graphene`]).
//!
//! The trap asks, in order: [`Producer::preflight`] (before arming), [`Producer::observe`] (each look),
//! [`Producer::corroborate`] (a crossing), then for the swap [`Producer::prepare`] → (the trap persists the
//! attempt) → [`Producer::fence`] → [`Producer::execute`] → [`Producer::status`] until confirmed or expired.

pub mod antelope;
pub mod body;
pub mod graphene;
pub mod solana;
pub mod time;

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use time::ChainTime;

/// The chain families the trap can guard; settings name one (`CHAIN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainKind {
    /// Hive and Steem (and their testnets).
    Graphene,
    /// EOS, WAX, Telos, Jungle and any other Antelope chain.
    Antelope,
    /// Solana-family validators (Agave, Jito, Firedancer, forks).
    Solana,
}

/// Who is guarded, for logs, the state file and alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The producer's account (a Hive/Steem witness).
    pub producer: String,
    /// The chain's name ("hive", "steem", a testnet's name).
    pub chain: String,
}

/// What arming records and misses are counted from; persisted in the state file under `baseline`.
pub trait Baseline: Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The chain's own cumulative missed-block counter at arming, where the chain keeps one: an absolute
    /// `THRESHOLD` needs it. `None` where the trap counts misses itself.
    fn counter(&self) -> Option<u64>;
    /// The baseline of a version-1 state file, which recorded only `baseline_missed`.
    fn from_legacy_counter(counter: u64) -> Option<Self>;
}

/// One honest reading, reduced to what the trap decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// Misses since arming, as this chain counts them.
    pub misses: u64,
    /// The chain's cumulative counter (`total_missed`), where it keeps one; it never decreases on chain,
    /// so a lower value than one read before is distrusted.
    pub counter: Option<u64>,
    /// Chain height the reading was taken at.
    pub height: u64,
    /// Chain time of the reading (head block time).
    pub chain_time: ChainTime,
    /// Where it came from (an endpoint URL without credentials), for the log.
    pub source: String,
    /// Which of the producer's sources gave it (corroboration must come from another one).
    pub source_index: usize,
    /// The key the chain expects the producer to sign with now, as text.
    pub current_key: String,
}

/// What one look at the chain gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// At least one source gave a fresh, well-formed reading; this is the most pessimistic honest one.
    Reading(Evidence),
    /// No source could be trusted this time; the reason names each.
    Blind(String),
}

/// The answer to "is this crossing real?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Corroboration {
    /// An independent reading also shows the misses at or past what is allowed.
    Confirmed(Evidence),
    /// An independent fresh reading shows fewer misses: the first one is distrusted.
    Contradicted(Evidence),
    /// No independent fresh reading could be had.
    Blind(String),
}

/// A swap attempt, built and signed, ready to execute; the trap persists it before [`Producer::fence`] and
/// [`Producer::execute`], so a restart can re-send the very same attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapAttempt {
    /// The attempt's id as the chain shows it (a transaction id).
    pub id: String,
    /// Chain time after which the attempt can no longer take effect.
    pub expires_at: ChainTime,
    /// What kind of swap, for the log, `status` and the state file; never compared by the trap.
    pub label: String,
    /// The signed action, opaque to the trap (public data: signatures are not secrets).
    pub payload: serde_json::Value,
}

/// Where a swap stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwapStatus {
    /// The chain now expects the backup key: the attempt `id` is in a block and a second source agrees, or
    /// (`id: None`) the key was found in place with no attempt of this trap in a block (an earlier run's).
    InEffect { id: Option<String> },
    /// Not yet; the attempt may still take effect.
    Pending,
    /// The attempt can no longer take effect.
    Expired,
    /// The chain could not be read this time.
    Unknown(String),
}

/// Why a swap step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwapError {
    /// No key the trap holds can authorise the swap right now (e.g. the on-chain key is the null key and
    /// there is no active key). May be one endpoint's stale view: retried until the fire timeout.
    #[error("no usable key: {0}")]
    NoUsableKey(String),
    /// The chain could not be read or written this time; retrying may help.
    #[error("{0}")]
    Transient(String),
    /// The swap can never be made this way (every endpoint refused it for good, or it would be invalid).
    #[error("rejected: {0}")]
    Rejected(String),
}

/// What a pre-arming finding is about; `config::check` names the variable behind each for the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// The producer account.
    Producer,
    /// One endpoint (its URL without credentials), or all of them (empty).
    Endpoint(String),
    /// The least powerful key that can swap (Hive/Steem: the current signing key).
    SwapKey,
    /// The fallback key (Hive/Steem: the active key).
    FallbackKey,
    /// The key the swap moves to.
    Target,
    /// The network (`CHAIN`): an endpoint serves another chain id.
    Chain,
    /// A custom chain id (`CHAIN_ID`): an endpoint serves another.
    ChainId,
    /// The permission the swap is signed by (Antelope's `FAILOVER_PERMISSION`).
    Permission,
    /// The backup finalizer key (Antelope's `BACKUP_FINALIZER_KEY`).
    FinalizerKey,
    /// A node agent (`AGENT_URLS`, `SWAP=producer-api`).
    Agent,
}

/// One finding of [`Producer::preflight`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub subject: Subject,
    /// An error stops arming; a warning is only reported.
    pub fatal: bool,
    pub message: String,
    pub fix: String,
}

/// How one endpoint answered during the pre-arming check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointHealth {
    pub url: String,
    /// `Ok(head height)` or why it was skipped.
    pub health: Result<u64, String>,
}

/// Where the producer stands in the schedule now, for a planned switch (`witness-trap switch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turns {
    /// The head block's number and time.
    pub head: u64,
    pub head_time: ChainTime,
    /// Blocks since the producer's last turn in this schedule (0: the head's slot was its turn).
    pub since_last: Option<u64>,
    /// Blocks until its next turn in this schedule; `None`: not before the schedule may change.
    pub until_next: Option<u64>,
    /// Blocks until the schedule may change (no turn past it can be known yet).
    pub until_reshuffle: u64,
    /// Consecutive blocks a turn is (Hive/Steem 1, Antelope 12).
    pub turn_blocks: u64,
}

/// How one endpoint answered its last read, for the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStat {
    /// The URL without credentials.
    pub url: String,
    /// Its last answer was fresh and trusted enough to use.
    pub up: bool,
    /// How long its read took, if it was read since the last report.
    pub latency: Option<Duration>,
}

/// Everything the chain said before arming.
#[derive(Debug, Clone)]
pub struct Preflight<B> {
    /// The reading arming would start from, if the chain could be read.
    pub reading: Option<(Evidence, B)>,
    pub findings: Vec<Finding>,
    pub endpoints: Vec<EndpointHealth>,
    /// One line for the operator when everything is in order ("@alice's on-chain key … total_missed 7").
    pub summary: Option<String>,
}

/// A block producer the trap guards.
pub trait Producer: Send {
    /// What arming records; see [`Baseline`].
    type Baseline: Baseline;

    fn identity(&self) -> Identity;
    /// The key the swap moves to, as text; the state file records it and a restart never swaps elsewhere.
    fn target(&self) -> String;
    /// The chain's block interval: the natural pause between two looks while firing.
    fn block_interval(&self) -> Duration;

    /// Every check that can be made against the chain before arming, and the reading to arm from.
    fn preflight(&mut self) -> impl Future<Output = Preflight<Self::Baseline>> + Send;
    /// Build and sign the swap from live data without executing it (`fire --dry-run`).
    fn dry_run(&mut self) -> impl Future<Output = Result<SwapAttempt, SwapError>> + Send;

    /// Read every source; misses are counted from `baseline`.
    fn observe(&mut self, baseline: &Self::Baseline) -> impl Future<Output = Observation> + Send;
    /// Confirm that `first` (at or past `allowed` misses) is real, right away.
    fn corroborate(
        &mut self,
        first: &Evidence,
        baseline: &Self::Baseline,
        allowed: u64,
    ) -> impl Future<Output = Corroboration> + Send;

    /// Build and sign a swap from the current head (fresh TaPoS and expiration).
    fn prepare(&mut self) -> impl Future<Output = Result<SwapAttempt, SwapError>> + Send;
    /// A step the producer must take before the action, after the trap has persisted the attempt (pausing a
    /// primary before resuming a backup, say). Nothing on Hive/Steem.
    fn fence(&mut self, _attempt: &SwapAttempt) -> impl Future<Output = Result<(), SwapError>> + Send {
        async { Ok(()) }
    }
    /// Send the attempt (to every healthy source); a duplicate counts as accepted.
    fn execute(&mut self, attempt: &SwapAttempt) -> impl Future<Output = Result<(), SwapError>> + Send;
    /// Whether the swap is in effect, pending, or expired. `attempts` are the ids of every attempt made so far
    /// (any of them may be the one in a block); `expires_at` is that of the attempt still pending, if any.
    fn status(&mut self, attempts: &[String], expires_at: Option<ChainTime>)
        -> impl Future<Output = SwapStatus> + Send;

    /// Chain time at which the next look would be most informative (right after the producer's next turn
    /// becomes visible), or `None` to poll. The trap looks at the earlier of this and its poll interval.
    fn next_look(&self) -> Option<ChainTime> {
        None
    }
    /// How the producer is being watched now, for `status` (e.g. "slots: next slot at …").
    fn watch_note(&self) -> String {
        "poll".into()
    }
    /// How the counter is described to an operator ("total_missed").
    fn counter_name(&self) -> &'static str {
        "misses"
    }
    /// What the producer noticed since the last call that the operator must hear of (an endpoint dropped
    /// for serving another chain, one marked untrusted, sources that disagree on data a swap would send).
    /// The trap logs and alerts each, once.
    fn take_notices(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// Standing problems that make the trap unhealthy while they last (an untrusted endpoint), for
    /// `health` and `status`.
    fn troubles(&self) -> Vec<String> {
        Vec::new()
    }
    /// Where the producer stands in the schedule, read fresh (a planned switch times itself by it).
    fn turns(&mut self) -> impl Future<Output = Result<Turns, String>> + Send {
        async { Err("this chain does not plan switches yet".to_string()) }
    }
    /// Every configured endpoint, in order: whether its last read was usable and, if it was read since the
    /// last call, how long that took (so each read's latency is counted once). For the metrics.
    fn take_endpoint_stats(&mut self) -> Vec<EndpointStat> {
        Vec::new()
    }
    /// Every configured endpoint (URL without credentials), so the metrics know them from start-up.
    fn endpoint_urls(&self) -> Vec<String> {
        Vec::new()
    }
    /// Where the move to the target key stands on chain, for `status`, where the chain adopts a new key
    /// some time after the swap (Antelope's schedule latency): `None` where it takes effect at once.
    fn key_progress(&mut self) -> impl Future<Output = Option<String>> + Send {
        async { None }
    }
    /// RPC calls made so far (the benchmark's cost figure).
    fn calls(&self) -> u64 {
        0
    }
    /// `text` written as this chain writes keys in `target` and the settings (Antelope: `PUB_K1_…` and `EOS…`
    /// are one key), so keys compare as text.
    fn canonical_key(&self, text: &str) -> String {
        text.to_string()
    }
    /// Guard other keys than the configured ones (after `switch --swap-roles`): `current` is on chain, a fire
    /// moves to `backup`. An error says why the producer cannot (no key to sign the swap back), naming what to set.
    fn assume_roles(&mut self, _current: &str, _backup: &str) -> Result<(), String> {
        Err("this chain cannot guard swapped roles".into())
    }
    /// Whether the chain now produces with the target key (Antelope: the active schedule carries it, one to two
    /// rounds after the swap is in effect). `Ok(true)` where a swap in effect is in effect at once.
    fn target_active(&mut self) -> impl Future<Output = Result<bool, String>> + Send {
        async { Ok(true) }
    }
}
