//! The trap's state: `armed` → `firing` → `fired`, and nothing else moves it back but `rearm`.
//!
//! A trap that fired stays fired across restarts; one that was firing finishes the same swap. Each
//! transition is stored (compare-and-swap, `crate::store`) before the action it announces: `firing` with the
//! attempt before it is executed, `fired` with every alert channel pending before any is sent (tmkms writes
//! its state before it signs, for the same reason).
//!
//! The layout is version 2: the chain's own [`Baseline`] under `baseline`, the misses allowed since arming
//! under `allowed`, chain times in seconds with millisecond decimals, a delivery per alert channel. A
//! version-1 file (the Hive/Steem-only release) is migrated when read: `witness` becomes `producer`,
//! `baseline_missed` the baseline's counter, `threshold` and `trigger_missed` counts since arming, and the one
//! SMS alert the `twilio` channel's delivery. The next write stores version 2. This process's last poll is
//! not part of it: it is an instance fact ([`InstanceFacts`]), stored apart.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::alert::{Deliveries, Delivery};
use crate::chain::{Baseline, ChainTime, Identity};

/// The layout written by this version.
pub const STATE_VERSION: u32 = 2;

/// The shared state of one trap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "B: Baseline")]
pub struct TrapState<B> {
    pub version: u32,
    /// The producer this state belongs to; a state of another producer or chain is refused.
    pub producer: String,
    pub chain: String,
    /// Chain time at arming.
    pub armed_at: ChainTime,
    /// What arming recorded (Hive/Steem: `{"total_missed": N}`).
    pub baseline: B,
    /// Misses allowed since arming; the trap fires when they are reached. Fixed at arming: a changed
    /// trigger needs `rearm`.
    pub allowed: u64,
    /// The keys this trap guards when a planned switch swapped them (`switch --swap-roles`); `None`: the
    /// configured ones (the signing key's and `BACKUP_SIGNING_KEY`). `rearm` returns to the configured ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Roles>,
    /// Keys a fire moved away from in this incident (ordered backups): never moved back to until `rearm`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub abandoned: Vec<String>,
    #[serde(flatten)]
    pub phase: Phase,
}

/// The keys a trap guards after `switch --swap-roles`: it watches `current` and swaps to `backup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roles {
    /// The key on chain at re-arming (the switch's new key).
    pub current: String,
    /// The key a fire moves to (the key the switch moved away from).
    pub backup: String,
}

/// Where the trap is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Phase {
    Armed,
    Firing {
        /// The only key this trap will ever swap to.
        target: String,
        /// When the crossing was first seen (before corroboration).
        seen_at: ChainTime,
        /// When firing began (after corroboration).
        started_at: ChainTime,
        /// Misses since arming that fired the trap.
        trigger_misses: u64,
        attempts: Vec<Attempt>,
        /// The key on chain when the crossing was confirmed (the one given up).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
    },
    Fired {
        target: String,
        seen_at: ChainTime,
        trigger_misses: u64,
        fired_at: ChainTime,
        outcome: Outcome,
        /// Each alert channel's delivery; a restart sends those still pending.
        alerts: Deliveries,
        attempts: Vec<Attempt>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// Ordered backups: the key the trap moves on to if `target` misses too. The trap then guards
        /// `target` again (once the alerts are out); `None`: it stays disarmed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    /// Disarmed by a planned switch (`witness-trap switch` without `--swap-roles`): the key moved by an
    /// operator's choice; like a fired trap, it neither polls nor signs until `rearm`.
    Switched {
        /// The key the switch moved to.
        to: String,
        txid: String,
        switched_at: ChainTime,
    },
}

impl Phase {
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Armed => "armed",
            Phase::Firing { .. } => "firing",
            Phase::Fired { .. } => "fired",
            Phase::Switched { .. } => "switched",
        }
    }

    /// The trap neither polls nor signs until `rearm` (it fired, or a switch disarmed it).
    pub fn is_disarmed(&self) -> bool {
        matches!(self, Phase::Fired { .. } | Phase::Switched { .. })
    }
}

/// One swap attempt, recorded before it was executed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub txid: String,
    /// The swap's kind, as the producer labels it (for people; never compared).
    pub action: String,
    pub expires_at: ChainTime,
    pub at: ChainTime,
    /// The signed action (public data: signatures are not secrets), so a restart can re-send the very same
    /// attempt instead of waiting for it to expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
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

/// What one trap process knows of itself, kept apart from the shared state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceFacts {
    pub last_poll: Option<LastPoll>,
}

/// The outcome of the last poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastPoll {
    pub at: ChainTime,
    /// A fresh reading was had.
    pub healthy: bool,
    /// Misses since arming.
    pub misses: Option<u64>,
    /// The chain's counter, where it keeps one (`total_missed`).
    pub counter: Option<u64>,
    pub height: Option<u64>,
    pub current_key: Option<String>,
    /// How the producer is watched (slot-aware or plain polling, and why).
    pub watch: Option<String>,
    pub note: String,
    /// Standing problems that make the trap unhealthy (the state cannot be stored, an endpoint untrusted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

impl LastPoll {
    /// The poll of one observation at `at`: a reading's figures, or blind with its reason. `note` is the
    /// line `status` shows after them.
    pub fn of(at: ChainTime, observation: &crate::chain::Observation, watch: Option<String>, note: String) -> Self {
        match observation {
            crate::chain::Observation::Reading(e) => LastPoll {
                at,
                healthy: true,
                misses: Some(e.misses),
                counter: e.counter,
                height: Some(e.height),
                current_key: Some(e.current_key.clone()),
                watch,
                note,
                problems: Vec::new(),
            },
            crate::chain::Observation::Blind(_) => LastPoll {
                at,
                healthy: false,
                misses: None,
                counter: None,
                height: None,
                current_key: None,
                watch,
                note,
                problems: Vec::new(),
            },
        }
    }
}

/// Failure to use the state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{origin} is not a valid state file: {reason}")]
    Parse { origin: String, reason: String },
    #[error("{origin} has state version {found}; this witness-trap understands 1 and {STATE_VERSION}")]
    Version { origin: String, found: u64 },
    #[error("{origin} belongs to @{found_producer} on {found_chain}, not @{producer} on {chain}")]
    Foreign { origin: String, found_producer: String, found_chain: String, producer: String, chain: String },
    #[error("{origin}: {reason}; run `witness-trap rearm`")]
    Legacy { origin: String, reason: String },
}

impl<B: Baseline> TrapState<B> {
    pub fn armed(identity: &Identity, at: ChainTime, baseline: B, allowed: u64) -> Self {
        Self {
            version: STATE_VERSION,
            producer: identity.producer.clone(),
            chain: identity.chain.clone(),
            armed_at: at,
            baseline,
            allowed,
            roles: None,
            abandoned: Vec::new(),
            phase: Phase::Armed,
        }
    }

    /// Pretty JSON and a newline, as stored.
    pub fn encode(&self) -> Result<Vec<u8>, StateError> {
        let mut bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| StateError::Parse { origin: "state".into(), reason: e.to_string() })?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Decode stored bytes of either version. `origin` names the store in errors.
    pub fn decode(bytes: &[u8], origin: &str) -> Result<Self, StateError> {
        let parse = |e: serde_json::Error| StateError::Parse { origin: origin.to_string(), reason: e.to_string() };
        let value: Value = serde_json::from_slice(bytes).map_err(parse)?;
        match value.get("version").and_then(Value::as_u64) {
            Some(1) => {
                let v1: V1State = serde_json::from_value(value).map_err(parse)?;
                v1.migrate(origin)
            }
            Some(2) => serde_json::from_value(value).map_err(parse),
            Some(found) => Err(StateError::Version { origin: origin.to_string(), found }),
            None => Err(StateError::Parse { origin: origin.to_string(), reason: "no version".into() }),
        }
    }

    /// Refuse a state that belongs to another producer or chain.
    pub fn check_owner(&self, identity: &Identity, origin: &str) -> Result<(), StateError> {
        if self.producer != identity.producer || self.chain != identity.chain {
            return Err(StateError::Foreign {
                origin: origin.to_string(),
                found_producer: self.producer.clone(),
                found_chain: self.chain.clone(),
                producer: identity.producer.clone(),
                chain: identity.chain.clone(),
            });
        }
        Ok(())
    }

    /// The attempts of a firing or fired trap.
    pub fn attempts(&self) -> &[Attempt] {
        match &self.phase {
            Phase::Firing { attempts, .. } | Phase::Fired { attempts, .. } => attempts,
            Phase::Armed | Phase::Switched { .. } => &[],
        }
    }

    /// The chain counter value this trap fires at, where the chain keeps one.
    pub fn threshold_counter(&self) -> Option<u64> {
        self.baseline.counter().map(|c| c.saturating_add(self.allowed))
    }
}

/// Any chain's state, read without knowing its baseline type (`health`, `status`, the benchmark).
pub type AnyState = TrapState<Value>;

impl Baseline for Value {
    fn counter(&self) -> Option<u64> {
        self.get("total_missed").and_then(Value::as_u64)
    }
    fn from_legacy_counter(counter: u64) -> Option<Self> {
        Some(serde_json::json!({ "total_missed": counter }))
    }
}

impl InstanceFacts {
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
    /// Facts that cannot be read are no facts: they are bookkeeping, never a reason to stop.
    pub fn decode(bytes: &[u8]) -> Self {
        serde_json::from_slice(bytes).unwrap_or_default()
    }
}

/// Read a state file directly, whatever its chain (tests, the benchmark, `health`).
pub fn read_file(path: &std::path::Path) -> Result<Option<AnyState>, StateError> {
    match std::fs::read(path) {
        Ok(bytes) => AnyState::decode(&bytes, &path.display().to_string()).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateError::Parse { origin: path.display().to_string(), reason: e.to_string() }),
    }
}

/// Read the instance facts beside a state file (`<STATE_FILE>.instance.json`).
pub fn read_instance_file(path: &std::path::Path) -> InstanceFacts {
    std::fs::read(crate::store::file::instance_path(path)).map(|b| InstanceFacts::decode(&b)).unwrap_or_default()
}

// ---- version 1 (witness-trap 0.1 for Hive and Steem), read only ----

#[derive(Deserialize)]
struct V1State {
    witness: String,
    chain: String,
    armed_at: ChainTime,
    baseline_missed: u64,
    #[serde(default)]
    threshold: Option<u64>,
    #[serde(flatten)]
    phase: V1Phase,
}

#[derive(Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum V1Phase {
    Armed,
    Firing {
        target: String,
        #[serde(default)]
        seen_at: ChainTime,
        started_at: ChainTime,
        trigger_missed: u64,
        attempts: Vec<Attempt>,
    },
    Fired {
        target: String,
        #[serde(default)]
        seen_at: ChainTime,
        trigger_missed: u64,
        fired_at: ChainTime,
        outcome: Outcome,
        alert: V1Alert,
        attempts: Vec<Attempt>,
    },
}

#[derive(Deserialize)]
#[serde(tag = "alert", rename_all = "snake_case")]
enum V1Alert {
    Pending,
    Sent,
    Failed { reason: String },
    NotConfigured,
}

impl V1State {
    fn migrate<B: Baseline>(self, origin: &str) -> Result<TrapState<B>, StateError> {
        let legacy = |reason: &str| StateError::Legacy { origin: origin.to_string(), reason: reason.to_string() };
        let baseline =
            B::from_legacy_counter(self.baseline_missed).ok_or_else(|| legacy("a version-1 state of another chain"))?;
        let since = |counter: u64| counter.saturating_sub(self.baseline_missed);
        let allowed = match (self.threshold, &self.phase) {
            (Some(t), _) => since(t),
            // Firing and fired traps no longer need their trigger; an armed one must know it.
            (None, V1Phase::Firing { trigger_missed, .. } | V1Phase::Fired { trigger_missed, .. }) => {
                since(*trigger_missed)
            }
            (None, V1Phase::Armed) => return Err(legacy("this armed state was written without a fixed threshold")),
        };
        // The only channel of version 1 was the Twilio SMS.
        let twilio = |d: Delivery| Deliveries::from([("twilio".to_string(), d)]);
        let phase = match self.phase {
            V1Phase::Armed => Phase::Armed,
            V1Phase::Firing { target, seen_at, started_at, trigger_missed, attempts } => Phase::Firing {
                target,
                seen_at,
                started_at,
                trigger_misses: since(trigger_missed),
                attempts,
                from: None,
            },
            V1Phase::Fired { target, seen_at, trigger_missed, fired_at, outcome, alert, attempts } => Phase::Fired {
                target,
                seen_at,
                trigger_misses: since(trigger_missed),
                fired_at,
                outcome,
                alerts: match alert {
                    V1Alert::Pending => twilio(Delivery::Pending),
                    V1Alert::Sent => twilio(Delivery::Sent),
                    V1Alert::Failed { reason } => twilio(Delivery::Failed { reason }),
                    V1Alert::NotConfigured => Deliveries::new(),
                },
                attempts,
                from: None,
                next: None,
            },
        };
        Ok(TrapState {
            version: STATE_VERSION,
            producer: self.witness,
            chain: self.chain,
            armed_at: self.armed_at,
            baseline,
            allowed,
            roles: None,
            abandoned: Vec::new(),
            phase,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::graphene::GrapheneBaseline;

    fn alice() -> Identity {
        Identity { producer: "alice".into(), chain: "hive".into() }
    }

    #[test]
    fn json_shape_is_flat_and_round_trips() {
        let mut s = TrapState::armed(
            &alice(),
            ChainTime::from_secs(100),
            GrapheneBaseline { total_missed: 7, head_time: None },
            1,
        );
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["state"], "armed");
        assert_eq!(v["version"], 2);
        assert_eq!(v["baseline"]["total_missed"], 7);
        assert_eq!(v["allowed"], 1);
        s.phase = Phase::Fired {
            target: "STM1".into(),
            seen_at: ChainTime::from_millis(110_500),
            trigger_misses: 1,
            fired_at: ChainTime::from_secs(120),
            outcome: Outcome::Swapped { txid: Some("ab".into()) },
            alerts: Deliveries::from([("twilio".to_string(), Delivery::Pending)]),
            attempts: vec![],
            from: None,
            next: None,
        };
        let bytes = s.encode().unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["state"], "fired");
        assert_eq!(v["seen_at"], 110.5);
        assert_eq!(v["outcome"]["result"], "swapped");
        assert_eq!(v["alerts"]["twilio"]["delivery"], "pending");
        assert_eq!(TrapState::<GrapheneBaseline>::decode(&bytes, "s").unwrap(), s);
        assert_eq!(s.threshold_counter(), Some(8));
    }

    #[test]
    fn swapped_roles_and_a_switched_phase_round_trip_and_older_files_have_neither() {
        let mut s = TrapState::armed(
            &alice(),
            ChainTime::from_secs(100),
            GrapheneBaseline { total_missed: 7, head_time: None },
            1,
        );
        let plain = serde_json::to_value(&s).unwrap();
        assert!(plain.get("roles").is_none(), "configured roles are not written: {plain}");
        s.roles = Some(Roles { current: "STM2".into(), backup: "STM1".into() });
        let v: Value = serde_json::from_slice(&s.encode().unwrap()).unwrap();
        assert_eq!(v["roles"]["current"], "STM2");
        assert_eq!(v["roles"]["backup"], "STM1");
        assert_eq!(TrapState::<GrapheneBaseline>::decode(&s.encode().unwrap(), "s").unwrap(), s);
        s.phase = Phase::Switched { to: "STM2".into(), txid: "cd".into(), switched_at: ChainTime::from_secs(130) };
        let v: Value = serde_json::from_slice(&s.encode().unwrap()).unwrap();
        assert_eq!(v["state"], "switched");
        assert_eq!(v["to"], "STM2");
        assert!(s.phase.is_disarmed() && s.attempts().is_empty());
        assert_eq!(TrapState::<GrapheneBaseline>::decode(&s.encode().unwrap(), "s").unwrap(), s);
    }

    #[test]
    fn foreign_and_unknown_versions_are_refused() {
        let s = TrapState::armed(
            &alice(),
            ChainTime::from_secs(1),
            GrapheneBaseline { total_missed: 0, head_time: None },
            1,
        );
        let bob = Identity { producer: "bob".into(), chain: "hive".into() };
        let e = s.check_owner(&bob, "s.json").unwrap_err().to_string();
        assert!(e.contains("@alice") && e.contains("@bob"), "{e}");
        let e = TrapState::<GrapheneBaseline>::decode(br#"{"version": 9}"#, "s.json").unwrap_err().to_string();
        assert!(e.contains("version 9"), "{e}");
        assert!(TrapState::<GrapheneBaseline>::decode(b"{not json", "s.json").is_err());
    }

    #[test]
    fn version_one_armed_state_without_threshold_asks_for_rearm() {
        let v1 = br#"{"version":1,"witness":"alice","chain":"hive","armed_at":1,"baseline_missed":3,"state":"armed"}"#;
        let e = TrapState::<GrapheneBaseline>::decode(v1, "s.json").unwrap_err().to_string();
        assert!(e.contains("rearm"), "{e}");
    }
}
