//! The boundary between the trap and a chain: what a guarded block producer must offer.
//!
//! The trap's loop (`crate::trap`) knows only this trait: an [`Observation`] of a missed-block counter, a
//! corroboration, and a key swap in three steps (prepare, broadcast, status) so that the trap can persist
//! every attempt before it goes out. What a reading is on a given chain, how freshness is judged, which key
//! signs and how a transaction is built all live behind it. Hive and Steem share one implementation,
//! [`graphene`]; another chain (Antelope, Solana) would add a sibling module, not touch the trap.

pub mod graphene;

use std::future::Future;
use std::time::Duration;

/// One honest reading of the producer's missed-block counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// The chain's cumulative missed-block counter (`total_missed` on Hive/Steem).
    pub missed: u64,
    /// Chain height the reading was taken at.
    pub height: u64,
    /// Chain time of the reading, seconds since the epoch.
    pub chain_time: u64,
    /// Where it came from (an endpoint URL without credentials), for the log.
    pub source: String,
    /// Which of the producer's sources gave it (corroboration must come from another one).
    pub source_index: usize,
    /// The key the chain currently expects the producer to sign blocks with, as text.
    pub current_key: String,
}

/// What one look at the chain gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// At least one source gave a fresh, well-formed reading; this is the most advanced one.
    Reading(Reading),
    /// No source could be trusted this time; the reason names each.
    Blind(String),
}

/// The answer to "is this crossing real?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Corroboration {
    /// An independent reading also shows the counter at or past the threshold.
    Confirmed(Reading),
    /// An independent fresh reading shows the counter below the threshold: the first one is distrusted.
    Contradicted(Reading),
    /// No independent fresh reading could be had.
    Blind(String),
}

/// A signed swap, ready to broadcast; `id` and `expires_at` are persisted before it goes out.
#[derive(Debug, Clone)]
pub struct PreparedSwap {
    /// Transaction id as the chain shows it.
    pub id: String,
    /// Chain time after which the transaction can no longer be included.
    pub expires_at: u64,
    /// What kind of swap (the operation's name), for the log and the state file.
    pub action: String,
    /// The signed transaction, opaque to the trap.
    pub payload: serde_json::Value,
}

/// Where a swap attempt stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwapStatus {
    /// The chain now expects the backup key.
    InEffect,
    /// Not yet; the attempt may still be included.
    Pending,
    /// The attempt can no longer be included.
    Expired,
    /// The chain could not be read this time.
    Unknown(String),
}

/// Why a swap step failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SwapError {
    /// No key the trap holds can authorise the swap right now (e.g. the on-chain key is the null key and
    /// there is no active key). Final.
    #[error("no usable key: {0}")]
    NoUsableKey(String),
    /// The chain could not be read or written this time; retrying may help.
    #[error("{0}")]
    Transient(String),
    /// Every endpoint refused the transaction for a reason retrying the same transaction cannot fix.
    #[error("rejected: {0}")]
    Rejected(String),
}

/// A block producer the trap guards.
pub trait Producer: Send {
    /// Who and where, for logs and the SMS: (producer name, chain name).
    fn identity(&self) -> (String, String);
    /// The key the swap moves to, as text; the state file records it.
    fn target(&self) -> String;
    /// The chain's block interval: the natural pause between two looks.
    fn block_interval(&self) -> Duration;
    /// Read the counter from every source.
    fn observe(&mut self) -> impl Future<Output = Observation> + Send;
    /// Confirm that `first` (at or past `threshold`) is real, right away: from an independent source if there
    /// is one, else from the same source one block later.
    fn corroborate(&mut self, first: &Reading, threshold: u64) -> impl Future<Output = Corroboration> + Send;
    /// Build and sign the swap from the current head (fresh TaPoS and expiration from chain time).
    fn prepare_swap(&mut self) -> impl Future<Output = Result<PreparedSwap, SwapError>> + Send;
    /// Send the swap to every healthy source; a duplicate counts as accepted.
    fn broadcast(&mut self, swap: &PreparedSwap) -> impl Future<Output = Result<(), SwapError>> + Send;
    /// Whether the swap is in effect, still pending, or expired (`expires_at` of the last attempt).
    fn swap_status(&mut self, expires_at: Option<u64>) -> impl Future<Output = SwapStatus> + Send;
    /// Chain time at which the next look would be most informative (right after the producer's next
    /// slot becomes visible on chain), or `None` to just poll periodically. The trap looks at the earlier
    /// of this and its poll interval.
    fn next_look(&self) -> Option<u64> {
        None
    }
    /// How the producer is being watched now, for `status` and the state file (e.g. "slots: next slot at …").
    fn watch_note(&self) -> String {
        "poll".into()
    }
}
