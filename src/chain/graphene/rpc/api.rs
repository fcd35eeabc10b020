//! The calls the trap makes, typed (protocol.md §5.2-§5.7).
//!
//! Only the fields the trap uses are declared, and each is required with its exact type: an answer that
//! lacks `total_missed` or gives it as a string is garbage from a broken or lying node, not a zero.
//! These are the condenser (legacy JSON) forms, served alike by Hive and Steem.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::client::{Endpoint, RpcError};

/// `condenser_api.get_dynamic_global_properties` (§5.3), the fields we use.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct GlobalProperties {
    pub head_block_number: u32,
    pub head_block_id: String,
    /// Head block time, `YYYY-MM-DDTHH:MM:SS` UTC: the node's "now".
    pub time: String,
    pub last_irreversible_block_num: u32,
    #[serde(default)]
    pub current_aslot: Option<u64>,
}

/// `condenser_api.get_witness_by_account` (§5.2), the fields we use.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Witness {
    pub owner: String,
    pub url: String,
    pub total_missed: u64,
    pub signing_key: String,
    /// Kept whole: `witness_update` must send back url and props unchanged; the interest-rate field is
    /// named by chain (`hbd_`/`sbd_interest_rate`).
    pub props: Map<String, Value>,
    #[serde(default)]
    pub running_version: Option<String>,
}

/// An authority as `condenser_api.get_accounts` shows it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Authority {
    pub weight_threshold: u32,
    /// `[["STM…", weight], …]`
    pub key_auths: Vec<(String, u32)>,
}

/// `condenser_api.get_accounts`, the fields we use.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub active: Authority,
}

/// `database_api.get_version` (§5.6).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Version {
    pub chain_id: String,
    #[serde(default)]
    pub blockchain_version: Option<String>,
}

/// `condenser_api.get_witness_schedule` (§5.4), the fields we use.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct WitnessSchedule {
    pub current_shuffled_witnesses: Vec<String>,
    pub num_scheduled_witnesses: u32,
    pub next_shuffle_block_num: u32,
}

pub async fn global_properties(ep: &Endpoint) -> Result<GlobalProperties, RpcError> {
    ep.call("condenser_api.get_dynamic_global_properties", json!([])).await
}

/// `None` if the account is not a witness.
pub async fn witness(ep: &Endpoint, account: &str) -> Result<Option<Witness>, RpcError> {
    ep.call("condenser_api.get_witness_by_account", json!([account])).await
}

/// `None` if the account does not exist.
pub async fn account(ep: &Endpoint, name: &str) -> Result<Option<Account>, RpcError> {
    let accounts: Vec<Account> = ep.call("condenser_api.get_accounts", json!([[name]])).await?;
    Ok(accounts.into_iter().find(|a| a.name == name))
}

pub async fn version(ep: &Endpoint) -> Result<Version, RpcError> {
    ep.call("database_api.get_version", json!({})).await
}

/// The block interval in seconds from `condenser_api.get_config` (`HIVE_BLOCK_INTERVAL` or
/// `STEEM_BLOCK_INTERVAL`), so a simulated chain may run a faster clock.
pub async fn block_interval(ep: &Endpoint) -> Result<u64, RpcError> {
    let config: Value = ep.call_value("condenser_api.get_config", json!([])).await?;
    ["HIVE_BLOCK_INTERVAL", "STEEM_BLOCK_INTERVAL"]
        .iter()
        .find_map(|k| config.get(*k).and_then(Value::as_u64))
        .filter(|v| *v > 0)
        .ok_or_else(|| RpcError::Garbage {
            endpoint: ep.url().to_string(),
            method: "condenser_api.get_config".into(),
            detail: "no HIVE_BLOCK_INTERVAL or STEEM_BLOCK_INTERVAL".into(),
        })
}

pub async fn witness_schedule(ep: &Endpoint) -> Result<WitnessSchedule, RpcError> {
    ep.call("condenser_api.get_witness_schedule", json!([])).await
}

/// `condenser_api.broadcast_transaction [signed_tx]`: `{}` once the node put it in its pending pool.
pub async fn broadcast(ep: &Endpoint, signed_tx: &Value) -> Result<(), RpcError> {
    ep.call_value("condenser_api.broadcast_transaction", json!([signed_tx])).await.map(|_| ())
}
