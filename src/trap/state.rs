//! The trap's state on disk: `armed` → `firing` → `fired`, and nothing else moves it back but `rearm`.
//!
//! A trap that fired stays fired across restarts; one that was firing finishes the same swap. Each
//! transition is persisted (atomically, `crate::persist`) before the action it announces: `firing` with
//! the attempt's txid before the broadcast, `fired` with the alert pending before the SMS (tmkms writes
//! its state before it signs, for the same reason).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::persist::{self, PersistError};

/// Bumped when the layout changes incompatibly.
pub const STATE_VERSION: u32 = 1;

/// The whole state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrapState {
    pub version: u32,
    /// The producer this state belongs to; a state file of another witness or chain is refused.
    pub witness: String,
    pub chain: String,
    /// Chain time (s since epoch) at arming.
    pub armed_at: u64,
    /// The counter at arming: `MISSED_BLOCKS_ALLOWED` counts from here, across restarts.
    pub baseline_missed: u64,
    /// The absolute counter value this trap fires at, fixed at arming; a changed trigger needs `rearm`.
    #[serde(default)]
    pub threshold: Option<u64>,
    #[serde(flatten)]
    pub phase: Phase,
    /// The last poll, for `status` and `health`.
    #[serde(default)]
    pub last_poll: Option<LastPoll>,
}

/// Where the trap is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Phase {
    Armed,
    Firing {
        /// The only key this trap will ever swap to.
        target: String,
        /// When the crossing was first seen (before corroboration), chain-clock seconds.
        #[serde(default)]
        seen_at: u64,
        /// When firing began (after corroboration).
        started_at: u64,
        trigger_missed: u64,
        attempts: Vec<Attempt>,
    },
    Fired {
        target: String,
        /// When the crossing was first seen (chain-clock seconds).
        #[serde(default)]
        seen_at: u64,
        trigger_missed: u64,
        fired_at: u64,
        outcome: Outcome,
        alert: AlertState,
        attempts: Vec<Attempt>,
    },
}

impl Phase {
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Armed => "armed",
            Phase::Firing { .. } => "firing",
            Phase::Fired { .. } => "fired",
        }
    }
}

/// One signed swap transaction, recorded before it was broadcast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub txid: String,
    pub action: String,
    pub expires_at: u64,
    pub at: u64,
    /// The signed transaction (public data: signatures are not secrets), so a restart can re-broadcast
    /// the very same attempt instead of waiting for it to expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
}

/// How firing ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// The chain shows the backup key; `txid` is the attempt that was pending when it did (if any).
    Swapped { txid: Option<String> },
    /// Not confirmed within the fire timeout, or no key could authorise the swap.
    Failed { reason: String },
}

/// Whether the operator has been told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "alert", rename_all = "snake_case")]
pub enum AlertState {
    Pending,
    Sent,
    Failed { reason: String },
    NotConfigured,
}

/// The outcome of the last poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastPoll {
    /// Chain-clock time of the poll.
    pub at: u64,
    /// A fresh reading was had.
    pub healthy: bool,
    pub missed: Option<u64>,
    pub height: Option<u64>,
    pub current_key: Option<String>,
    /// How the producer is watched (slot-aware or plain polling, and why).
    #[serde(default)]
    pub watch: Option<String>,
    pub note: String,
}

/// Failure to use the state file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Persist(#[from] PersistError),
    #[error("{path} has state version {found}; this witness-trap understands {STATE_VERSION}")]
    Version { path: String, found: u32 },
    #[error("{path} belongs to @{found_witness} on {found_chain}, not @{witness} on {chain}")]
    Foreign { path: String, found_witness: String, found_chain: String, witness: String, chain: String },
}

impl TrapState {
    pub fn armed(witness: &str, chain: &str, at: u64, baseline_missed: u64) -> Self {
        Self {
            version: STATE_VERSION,
            witness: witness.to_string(),
            chain: chain.to_string(),
            armed_at: at,
            baseline_missed,
            threshold: None,
            phase: Phase::Armed,
            last_poll: None,
        }
    }

    /// Load the state of `witness` on `chain`; `None` if there is no state file yet.
    pub fn load(path: &Path, witness: &str, chain: &str) -> Result<Option<Self>, StateError> {
        let Some(state): Option<TrapState> = persist::load_json(path)? else { return Ok(None) };
        if state.version != STATE_VERSION {
            return Err(StateError::Version { path: path.display().to_string(), found: state.version });
        }
        if state.witness != witness || state.chain != chain {
            return Err(StateError::Foreign {
                path: path.display().to_string(),
                found_witness: state.witness,
                found_chain: state.chain,
                witness: witness.to_string(),
                chain: chain.to_string(),
            });
        }
        Ok(Some(state))
    }

    /// Load without checking whose state it is (for `health`).
    pub fn load_any(path: &Path) -> Result<Option<Self>, StateError> {
        Ok(persist::load_json(path)?)
    }

    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        Ok(persist::save_json(path, self)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_is_flat_and_round_trips() {
        let mut s = TrapState::armed("alice", "hive", 100, 7);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["state"], "armed");
        assert_eq!(v["baseline_missed"], 7);
        s.phase = Phase::Fired {
            target: "STM1".into(),
            seen_at: 110,
            trigger_missed: 8,
            fired_at: 120,
            outcome: Outcome::Swapped { txid: Some("ab".into()) },
            alert: AlertState::Pending,
            attempts: vec![],
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["state"], "fired");
        assert_eq!(v["outcome"]["result"], "swapped");
        assert_eq!(v["alert"]["alert"], "pending");
        let back: TrapState = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn foreign_state_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        TrapState::armed("alice", "hive", 1, 0).save(&path).unwrap();
        assert!(TrapState::load(&path, "alice", "hive").unwrap().is_some());
        let e = TrapState::load(&path, "bob", "hive").unwrap_err().to_string();
        assert!(e.contains("@alice") && e.contains("@bob"), "{e}");
    }
}
