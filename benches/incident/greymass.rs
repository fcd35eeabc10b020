//! greymass/eosio-failover's rule, re-implemented for the incident benchmark (antelope-chain.md §4 and §1.3;
//! `src/app.ts` of that project), so the trap can be compared with it on the same simulated chain.
//!
//! Every `round_timer` (126 s) it reads `get_info`, `get_producers` (top 21) and `get_producer_schedule` from one
//! API endpoint. A check where the producer is in the active schedule and its `unpaid_blocks` did not grow is a
//! missed round; at `rounds_missed_threshold` (2) missed rounds it sends `eosio::regproducer` with the next key
//! of its list, and `unregprod` when the list is empty or the regproducer fails. It skips (and forgets its
//! baseline) while the pending or proposed schedule carries another key for the producer, and takes a drop of
//! `unpaid_blocks` for a claim. The checks run at a fixed rate from the start, as `setInterval` does.
//!
//! One deliberate difference: the original reads `block_signing_key` from the schedule entries, the pre-2.0
//! shape; on current nodes that field is gone and the key is in `authority[1].keys[*].key` (§1.3), which is
//! what this one reads. Read literally, the original would never see the pending key change (both sides
//! undefined) and would count the rounds until the new schedule is active as more missed rounds.
//!
//! The transaction is built as eosjs's `transact({…}, {blocksBehind: 3, expireSeconds: 60})` builds it: TaPoS
//! from the block three behind head (`get_block_info`), expiration 60 s after that block's time, signed with
//! the `regproducer_key`, sent with `push_transaction`. eosjs's ABI fetch is left out (the action is packed
//! by `antelope_protocol`), so a firing check costs two reads fewer than eosjs would make.

use std::time::Duration;

use antelope_protocol::action::{Action, PermissionLevel, RegProducer, UnregProd};
use antelope_protocol::chain::ChainId;
use antelope_protocol::keys::{PrivateKey, PublicKey};
use antelope_protocol::name::Name;
use antelope_protocol::schedule::parse_block_time;
use antelope_protocol::transaction::{packed_transaction_json, Tapos, Transaction};
use serde_json::{json, Value};

/// `round_timer` default: 126 s, one round of 21 × 12 × 0.5 s.
pub const ROUND_TIMER: Duration = Duration::from_secs(126);
/// `rounds_missed_threshold` of `config/default.toml`.
pub const ROUNDS_MISSED_THRESHOLD: u32 = 2;
/// `total_producers` default: the `limit` of `get_producers`.
const TOTAL_PRODUCERS: u64 = 21;
/// eosjs `blocksBehind` and `expireSeconds` as greymass passes them.
const BLOCKS_BEHIND: u64 = 3;
const EXPIRE_SECONDS: u64 = 60;

/// What greymass's `config/*.toml` holds.
pub struct Config {
    pub api: String,
    pub chain_id: ChainId,
    pub producer: String,
    pub permission: String,
    pub website: String,
    pub location: u16,
    pub signing_pubkeys: Vec<PublicKey>,
    pub regproducer_key: PrivateKey,
}

pub struct Greymass {
    cfg: Config,
    http: reqwest::Client,
    signing_pubkeys: Vec<PublicKey>,
    rounds_missed: u32,
    last_unpaid: i64,
    /// Checks that could not read the chain.
    pub stuck_counter: u64,
    /// What it sent: `regproducer KEY → txid`, `unregprod → txid`, or why a send failed.
    pub sent: Vec<String>,
}

impl Greymass {
    pub fn new(cfg: Config) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("http client");
        let signing_pubkeys = cfg.signing_pubkeys.clone();
        Self { cfg, http, signing_pubkeys, rounds_missed: 0, last_unpaid: -1, stuck_counter: 0, sent: Vec::new() }
    }

    async fn rpc(&self, method: &str, body: Value) -> Result<Value, String> {
        let url = format!("{}/v1/chain/{method}", self.cfg.api.trim_end_matches('/'));
        let resp = self.http.post(url).json(&body).send().await.map_err(|e| format!("{method}: {e}"))?;
        let status = resp.status();
        let v: Value = resp.json().await.map_err(|e| format!("{method}: {e}"))?;
        if !status.is_success() {
            let what = v.pointer("/error/what").and_then(Value::as_str).unwrap_or("error");
            return Err(format!("{method}: HTTP {status}: {what}"));
        }
        Ok(v)
    }

    /// The first key of the producer's entry in `schedule[state]`, if it has one.
    fn scheduled_key(&self, schedule: &Value) -> Option<PublicKey> {
        let entry = schedule.get("producers")?.as_array()?.iter().find(|p| p["producer_name"] == self.cfg.producer)?;
        let key = entry.pointer("/authority/1/keys/0/key")?.as_str()?;
        PublicKey::from_text(key).ok()
    }

    /// `incomingSigningKeyChange`: `schedule[state]` lists another key than the active one (and a key of the
    /// list found there is taken off the list).
    fn incoming_signing_key_change(&mut self, current: &PublicKey, schedule: &Value, state: &str) -> bool {
        let Some(scheduled) = schedule.get(state).and_then(|s| self.scheduled_key(s)) else { return false };
        self.signing_pubkeys.retain(|k| *k != scheduled);
        scheduled != *current
    }

    /// One `check()` of app.ts.
    pub async fn check(&mut self) {
        let Ok(_state) = self.rpc("get_info", json!({})).await else {
            self.stuck_counter += 1;
            return;
        };
        let Ok(producers) =
            self.rpc("get_producers", json!({"json": true, "lower_bound": "", "limit": TOTAL_PRODUCERS})).await
        else {
            self.stuck_counter += 1;
            return;
        };
        let Ok(schedule) = self.rpc("get_producer_schedule", json!({})).await else {
            self.stuck_counter += 1;
            return;
        };
        let row = producers
            .get("rows")
            .and_then(Value::as_array)
            .and_then(|rows| rows.iter().find(|r| r["owner"] == self.cfg.producer).cloned());
        let Some(row) = row else { return }; // not an active producer
        let Some(current) = schedule.get("active").and_then(|a| self.scheduled_key(a)) else { return }; // not scheduled
        self.signing_pubkeys.retain(|k| *k != current);
        if self.incoming_signing_key_change(&current, &schedule, "proposed")
            || self.incoming_signing_key_change(&current, &schedule, "pending")
        {
            self.last_unpaid = -1;
            return;
        }
        let unpaid = row.get("unpaid_blocks").and_then(Value::as_i64).unwrap_or(0);
        // First run (-1): initialise; a drop: a claim reset the count. Either way take it as the baseline.
        if self.last_unpaid == -1 || unpaid < self.last_unpaid {
            self.last_unpaid = unpaid;
            return;
        } else if unpaid > self.last_unpaid {
            self.last_unpaid = unpaid;
            self.rounds_missed = 0;
        } else {
            self.rounds_missed += 1;
        }
        if self.rounds_missed >= ROUNDS_MISSED_THRESHOLD {
            let result = if self.signing_pubkeys.is_empty() {
                self.unregister().await
            } else {
                let next = self.signing_pubkeys.remove(0);
                self.failover(next).await.map(|txid| format!("regproducer {} → {txid}", next.to_legacy()))
            };
            match result {
                Ok(what) => self.sent.push(what),
                Err(e) => {
                    self.sent.push(format!("failed: {e}"));
                    let again = self.unregister().await;
                    self.sent.push(again.unwrap_or_else(|e| format!("failed: {e}")));
                }
            }
        }
    }

    fn auth(&self) -> Result<(Name, Vec<PermissionLevel>), String> {
        let producer = Name::new(&self.cfg.producer).map_err(|e| e.to_string())?;
        let permission = Name::new(&self.cfg.permission).map_err(|e| e.to_string())?;
        Ok((producer, vec![PermissionLevel { actor: producer, permission }]))
    }

    async fn failover(&self, key: PublicKey) -> Result<String, String> {
        let (producer, auth) = self.auth()?;
        let reg =
            RegProducer { producer, producer_key: key, url: self.cfg.website.clone(), location: self.cfg.location };
        let action = Action::new(eosio("eosio"), eosio("regproducer"), auth, &reg);
        self.transact(action).await
    }

    async fn unregister(&self) -> Result<String, String> {
        let (producer, auth) = self.auth()?;
        let action = Action::new(eosio("eosio"), eosio("unregprod"), auth, &UnregProd { producer });
        self.transact(action).await.map(|txid| format!("unregprod → {txid}"))
    }

    /// eosjs `transact` with `blocksBehind: 3, expireSeconds: 60`, pushed with `push_transaction`.
    async fn transact(&self, action: Action) -> Result<String, String> {
        let info = self.rpc("get_info", json!({})).await?;
        let head = info.get("head_block_num").and_then(Value::as_u64).ok_or("get_info: no head_block_num")?;
        let block = self.rpc("get_block_info", json!({"block_num": head.saturating_sub(BLOCKS_BEHIND)})).await?;
        let id = block.get("id").and_then(Value::as_str).ok_or("get_block_info: no id")?;
        let tapos = Tapos::from_block_id_hex(id).map_err(|e| format!("block id: {e}"))?;
        let time = block.get("timestamp").and_then(Value::as_str).ok_or("get_block_info: no timestamp")?;
        let ref_ms = parse_block_time(time).map_err(|e| format!("block time: {e:?}"))?;
        let expiration = u32::try_from(ref_ms / 1000 + EXPIRE_SECONDS).map_err(|_| "expiration out of range")?;
        let tx = Transaction {
            expiration,
            ref_block_num: tapos.ref_block_num,
            ref_block_prefix: tapos.ref_block_prefix,
            max_net_usage_words: 0,
            max_cpu_usage_ms: 0,
            delay_sec: 0,
            context_free_actions: Vec::new(),
            actions: vec![action],
            transaction_extensions: Vec::new(),
        };
        let sig = tx.sign(&self.cfg.chain_id, &self.cfg.regproducer_key).map_err(|e| format!("sign: {e}"))?;
        let v = self.rpc("push_transaction", packed_transaction_json(&tx, &[sig])).await?;
        if let Some(except) = v.pointer("/processed/except").filter(|e| !e.is_null()) {
            return Err(format!("push_transaction: {except}"));
        }
        Ok(v.get("transaction_id").and_then(Value::as_str).unwrap_or("?").to_string())
    }
}

fn eosio(text: &str) -> Name {
    Name::new(text).expect("a valid name")
}
