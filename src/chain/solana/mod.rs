//! Solana-family validators (Agave, Jito, Firedancer, the `huione-validator` fork): watched off-host through
//! the cluster's JSON-RPC, failed over through the node agents, which move the staked identity with the
//! validator's own admin socket. The trap holds no Solana key.
//!
//! | module | job |
//! | --- | --- |
//! | [`rpc`] | one cluster JSON-RPC endpoint: `getGenesisHash`, `getSlot`, `getHealth`, `getVoteAccounts`, `getBalance`, `getBlockProduction` |
//! | [`look`] | one look decided: voting, down, disagreeing, unstaked, broke, blind (pure, table-tested) |
//! | [`producer`] | [`SolanaProducer`]: the looks over every endpoint, the streak of down looks, the pre-arming checks |
//! | [`promotion`] | the failover: demote the primary through its agent (or wait `TOWER_SAFE_SLOTS`), move the tower, promote the backup, confirm by its votes |
//!
//! The "keys" the trap records are node names (`node:backup`), as for Antelope's pause/resume: every node
//! uses the same staked identity in turn, so what moves is which node holds it.

pub mod look;
pub mod producer;
pub mod promotion;
pub mod rpc;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use producer::SolanaProducer;

use crate::agent::keys::AgentSigningKey;
use crate::chain::antelope::pause_resume::AgentNode;

/// A known cluster and its genesis hash ("chain id").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cluster {
    pub name: &'static str,
    pub genesis_hash: &'static str,
}

/// The presets of `SOLANA_CLUSTER` (genesis hashes as `getGenesisHash` answers them).
pub const CLUSTERS: &[Cluster] = &[
    Cluster { name: "mainnet-beta", genesis_hash: "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d" },
    Cluster { name: "testnet", genesis_hash: "4uhcVJyU9pJkvQyS88uRDiswHXSCkY3zQawwpjk2NsNY" },
    Cluster { name: "devnet", genesis_hash: "EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG" },
];

/// A slot's length on every cluster of the family (400 ms target).
pub const SLOT: Duration = Duration::from_millis(400);

/// What a fire does when the primary's agent cannot demote it (`UNREACHABLE_PRIMARY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnreachablePrimary {
    /// Promote once the cluster has seen no vote from the staked identity for `TOWER_SAFE_SLOTS`.
    Wait,
    /// Never promote without a confirmed demotion: alert and stop.
    Refuse,
}

/// Everything the Solana trap needs.
#[derive(Clone)]
pub struct SolanaSettings {
    /// The cluster's name (a preset's, or `solana` for a custom genesis hash).
    pub cluster: String,
    pub genesis_hash: String,
    pub urls: Vec<String>,
    pub timeout: Duration,
    pub vote_account: String,
    /// The staked identity's public key (the vote account's `nodePubkey`).
    pub identity: String,
    pub max_lag: u64,
    pub tower_safe_slots: u64,
    pub unreachable_primary: UnreachablePrimary,
    /// The primary first, then the backups in order (`AGENT_URLS`).
    pub nodes: Vec<AgentNode>,
    pub client_key: Arc<AgentSigningKey>,
    pub ca_pem: Option<Vec<u8>>,
    /// How long one agent request may take (a hung promotion is this, then an alert and a retry).
    pub agent_timeout: Duration,
}

impl std::fmt::Debug for SolanaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SolanaSettings")
            .field("cluster", &self.cluster)
            .field("vote_account", &self.vote_account)
            .field("identity", &self.identity)
            .field("nodes", &self.nodes)
            .finish()
    }
}

/// What arming records: the slot and the last vote seen then. Misses are not counted from it (the trap
/// counts consecutive down looks), it tells `status` and the log where the watch began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SolanaBaseline {
    pub vote_account: String,
    pub slot: u64,
    pub last_vote: u64,
}

impl crate::chain::Baseline for SolanaBaseline {
    fn counter(&self) -> Option<u64> {
        None
    }
    fn from_legacy_counter(_counter: u64) -> Option<Self> {
        None
    }
}

/// Whether `text` is a base58 public key (32 bytes).
pub fn is_pubkey(text: &str) -> bool {
    bs58::decode(text).into_vec().is_ok_and(|b| b.len() == 32)
}
