//! The cluster RPC methods the off-host trap reads, with Agave's parameter and result shapes (camelCase, as
//! `rpc-client-api`'s serde renames them): `getGenesisHash`, `getSlot`, `getHealth`, `getVoteAccounts`,
//! `getBalance`, `getBlockProduction` and `getEpochInfo`.
//!
//! Each answer is computed from the cluster state at the requested commitment (processed = the current slot,
//! confirmed = one behind, finalized = 32 behind; finalized is the default, as in Agave), then through the
//! endpoint's [`View`] (behind, unhealthy, another genesis, a frozen vote).

use serde_json::{json, Map, Value};

use crate::jsonrpc::{self, RpcError, INVALID_PARAMS, NODE_UNHEALTHY};
use crate::state::{State, ROOT_DISTANCE};
use crate::{keys, Shared};

/// The `apiVersion` of response contexts.
pub const API_VERSION: &str = "2.2.0";

/// `DELINQUENT_VALIDATOR_SLOT_DISTANCE`.
pub const DELINQUENT_SLOT_DISTANCE: u64 = 128;

/// How one endpoint distorts the cluster.
pub(crate) struct View<'a> {
    pub genesis: &'a str,
    /// Slots the node is behind the cluster.
    pub behind: u64,
    pub unhealthy: bool,
    /// `Some(v)`: the vote account's last vote is stuck at `v`.
    pub frozen: Option<Option<u64>>,
}

impl<'a> View<'a> {
    pub fn honest(genesis: &'a str) -> Self {
        Self { genesis, behind: 0, unhealthy: false, frozen: None }
    }
}

/// How far a commitment level lags the processed slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commitment {
    Processed,
    Confirmed,
    Finalized,
}

impl Commitment {
    fn depth(self) -> u64 {
        match self {
            Commitment::Processed => 0,
            Commitment::Confirmed => 1,
            Commitment::Finalized => 32,
        }
    }
}

/// The `commitment` field of a config (the deprecated spellings Agave still accepts included).
fn commitment(cfg: &Map<String, Value>) -> Result<Commitment, RpcError> {
    match jsonrpc::opt_field(cfg, "commitment", |v| v.as_str().map(str::to_string))?.as_deref() {
        None | Some("finalized" | "root" | "max") => Ok(Commitment::Finalized),
        Some("confirmed" | "single" | "singleGossip") => Ok(Commitment::Confirmed),
        Some("processed" | "recent") => Ok(Commitment::Processed),
        Some(other) => Err(RpcError::invalid_params(format!(
            "unknown variant `{other}`, expected one of `processed`, `confirmed`, `finalized`"
        ))),
    }
}

/// The slot of the bank this endpoint answers from.
fn bank_slot(shared: &Shared, st: &State, c: Commitment, view: &View) -> u64 {
    st.slot.saturating_sub(c.depth()).saturating_sub(view.behind).max(shared.first_slot)
}

fn pubkey_param(v: &Value) -> Result<String, RpcError> {
    let s = v
        .as_str()
        .ok_or_else(|| RpcError::invalid_params(format!("invalid type: {}, expected a string", jsonrpc::kind(v))))?;
    if !keys::is_pubkey(s) {
        return Err(RpcError::new(INVALID_PARAMS, "Invalid param: Invalid"));
    }
    Ok(s.to_string())
}

fn context(slot: u64) -> Value {
    json!({"slot": slot, "apiVersion": API_VERSION})
}

/// Answer `method` with `params` through `view`.
pub(crate) fn call(shared: &Shared, view: &View, method: &str, params: &Value) -> Result<Value, RpcError> {
    let params = jsonrpc::positional(params)?;
    match method {
        "getGenesisHash" => Ok(view.genesis.into()),
        "getHealth" => health(view),
        "getSlot" => {
            let c = commitment(&jsonrpc::config(params, 0)?)?;
            let st = shared.now();
            Ok(bank_slot(shared, &st, c, view).into())
        }
        "getVoteAccounts" => vote_accounts(shared, view, params),
        "getBalance" => {
            let who = pubkey_param(params.first().unwrap_or(&Value::Null))?;
            let c = commitment(&jsonrpc::config(params, 1)?)?;
            let st = shared.now();
            let lamports = if who == shared.staked.pubkey() { st.identity_balance } else { 0 };
            Ok(json!({"context": context(bank_slot(shared, &st, c, view)), "value": lamports}))
        }
        "getBlockProduction" => block_production(shared, view, params),
        "getEpochInfo" => {
            let c = commitment(&jsonrpc::config(params, 0)?)?;
            let st = shared.now();
            let slot = bank_slot(shared, &st, c, view);
            let skipped = st.skipped.range(..=slot).count() as u64;
            Ok(json!({
                "absoluteSlot": slot,
                "blockHeight": slot.saturating_sub(shared.first_slot / 20).saturating_sub(skipped),
                "epoch": st.p.epoch(slot),
                "slotIndex": slot % st.p.slots_per_epoch,
                "slotsInEpoch": st.p.slots_per_epoch,
                "transactionCount": slot.saturating_mul(1_200),
            }))
        }
        _ => Err(RpcError::method_not_found()),
    }
}

/// `getHealth`: the answering node's own health (`RpcCustomError::NodeUnhealthy`).
fn health(view: &View) -> Result<Value, RpcError> {
    if view.behind > 0 {
        let n = view.behind;
        let mut e = RpcError::new(NODE_UNHEALTHY, format!("Node is behind by {n} slots"));
        e.data = Some(json!({"numSlotsBehind": n}));
        return Err(e);
    }
    if view.unhealthy {
        let mut e = RpcError::new(NODE_UNHEALTHY, "Node is unhealthy");
        e.data = Some(json!({}));
        return Err(e);
    }
    Ok("ok".into())
}

fn vote_accounts(shared: &Shared, view: &View, params: &[Value]) -> Result<Value, RpcError> {
    let cfg = jsonrpc::config(params, 0)?;
    let c = commitment(&cfg)?;
    let filter = match cfg.get("votePubkey") {
        None | Some(Value::Null) => None,
        Some(v) => Some(pubkey_param(v)?),
    };
    let keep_unstaked = jsonrpc::opt_field(&cfg, "keepUnstakedDelinquents", Value::as_bool)?.unwrap_or(false);
    let distance =
        jsonrpc::opt_field(&cfg, "delinquentSlotDistance", Value::as_u64)?.unwrap_or(DELINQUENT_SLOT_DISTANCE);

    let st = shared.now();
    let slot = bank_slot(shared, &st, c, view);
    let last_vote = view.frozen.unwrap_or_else(|| st.last_vote_at(slot));
    let empty = || json!({"current": [], "delinquent": []});
    if filter.as_ref().is_some_and(|f| *f != shared.vote_account) {
        return Ok(empty());
    }
    // Agave reports a never-voted account with lastVote 0.
    let lv = last_vote.unwrap_or(0);
    let delinquent = lv <= slot.saturating_sub(distance);
    if delinquent && st.stake == 0 && !keep_unstaked {
        return Ok(empty());
    }
    let credits: Vec<Value> = st.credits.iter().map(|(e, (c, p))| json!([e, c, p])).collect();
    let entry = json!({
        "votePubkey": shared.vote_account,
        "nodePubkey": shared.staked.pubkey(),
        "activatedStake": st.stake,
        "epochVoteAccount": st.stake > 0,
        "commission": 5,
        "lastVote": lv,
        "rootSlot": lv.saturating_sub(ROOT_DISTANCE),
        "epochCredits": credits,
    });
    Ok(if delinquent {
        json!({"current": [], "delinquent": [entry]})
    } else {
        json!({"current": [entry], "delinquent": []})
    })
}

fn block_production(shared: &Shared, view: &View, params: &[Value]) -> Result<Value, RpcError> {
    let cfg = jsonrpc::config(params, 0)?;
    let c = commitment(&cfg)?;
    let identity = match cfg.get("identity") {
        None | Some(Value::Null) => None,
        Some(v) => Some(pubkey_param(v)?),
    };
    let st = shared.now();
    let slot = bank_slot(shared, &st, c, view);
    let (first, last) = match cfg.get("range") {
        None | Some(Value::Null) => (slot - slot % st.p.slots_per_epoch, slot),
        Some(Value::Object(r)) => {
            let first = jsonrpc::opt_field(r, "firstSlot", Value::as_u64)?
                .ok_or_else(|| RpcError::invalid_params("missing field `firstSlot`"))?;
            let last = jsonrpc::opt_field(r, "lastSlot", Value::as_u64)?.unwrap_or(slot);
            if last < first {
                return Err(RpcError::invalid_params(format!(
                    "lastSlot, {last}, cannot be less than firstSlot, {first}"
                )));
            }
            // Slots the bank has not reached have no blocks yet.
            (first, last.min(slot))
        }
        Some(other) => {
            return Err(RpcError::invalid_params(format!("invalid type: {}, expected a range", jsonrpc::kind(other))))
        }
    };
    let staked = shared.staked.pubkey();
    let leader = st.p.leader_slots(first, last);
    let skipped = if last >= first { st.skipped.range(first..=last).count() as u64 } else { 0 };
    let mut by_identity = Map::new();
    if leader > 0 && identity.as_ref().is_none_or(|i| *i == staked) {
        by_identity.insert(staked, json!([leader, leader - skipped]));
    }
    Ok(json!({
        "context": context(slot),
        "value": {"byIdentity": by_identity, "range": {"firstSlot": first, "lastSlot": last}},
    }))
}
