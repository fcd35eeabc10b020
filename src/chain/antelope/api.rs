//! The nodeos chain API calls the trap makes, and their answers reduced to typed values
//! (antelope-protocol.md §6, antelope-chain.md §1.3).
//!
//! Every answer is checked before it is believed: ids are 32 bytes of hex, times parse, names and keys are
//! short, lists are bounded ([`MAX_PRODUCERS`], [`MAX_KEYS`], [`MAX_PERMISSIONS`]). A value out of range is a
//! malformed answer of that endpoint, never a panic and never a number the trap decides on.

use serde::Deserialize;
use serde_json::{json, Value};

use super::rpc::{Nodeos, NodeosError};
use antelope_protocol::schedule::parse_block_time;

/// The most producers a schedule may list: 21 on every public chain; room for a testnet, and a bound
/// for a hostile answer.
pub const MAX_PRODUCERS: usize = 125;
/// The most keys an authority may list in an answer we read.
pub const MAX_KEYS: usize = 32;
/// The most permissions an account may show in an answer we read.
pub const MAX_PERMISSIONS: usize = 64;
const MAX_NAME: usize = 13;
const MAX_KEY_TEXT: usize = 200;
/// `regproducer` refuses a url of 512 bytes or more (voting.cpp).
pub const MAX_URL: usize = 511;

/// `get_info`, reduced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub chain_id: String,
    pub head_num: u64,
    pub head_id: [u8; 32],
    /// Head block time, Unix milliseconds.
    pub head_time_ms: u64,
    pub head_producer: String,
    pub lib_num: u64,
    pub lib_id: [u8; 32],
    pub server_version: String,
}

/// One block header (`get_block_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub num: u64,
    pub id: [u8; 32],
    pub previous: [u8; 32],
    /// Block time (its slot), Unix milliseconds.
    pub time_ms: u64,
    pub producer: String,
}

/// One entry of a producer schedule: the producer and its block signing keys, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    pub producer: String,
    pub keys: Vec<String>,
}

/// A producer schedule (`active`, `pending` or `proposed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub version: u32,
    pub producers: Vec<Scheduled>,
}

impl Schedule {
    /// The producer's keys in this schedule, if it is listed.
    pub fn keys_of(&self, producer: &str) -> Option<&[String]> {
        self.producers.iter().find(|p| p.producer == producer).map(|p| p.keys.as_slice())
    }

    pub fn position(&self, producer: &str) -> Option<usize> {
        self.producers.iter().position(|p| p.producer == producer)
    }
}

/// `get_producer_schedule`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedules {
    pub active: Schedule,
    pub pending: Option<Schedule>,
    pub proposed: Option<Schedule>,
}

/// The producer's row of `eosio`'s `producers` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRow {
    pub owner: String,
    pub producer_key: String,
    pub is_active: bool,
    pub url: String,
    pub location: u16,
    /// The keys of `producer_authority` (empty where the row has none).
    pub authority_keys: Vec<String>,
}

/// One permission of an account (`get_account`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub name: String,
    pub parent: String,
    pub threshold: u32,
    pub keys: Vec<(String, u16)>,
    /// Accounts and waits in the authority (a failover permission should have neither).
    pub others: usize,
    /// `(contract, action)` pairs linked to it; an empty action means the whole contract.
    pub linked: Vec<(String, String)>,
}

/// `get_account`, reduced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    /// `cpu_limit.available` and `net_limit.available` (µs and bytes; negative means none).
    pub cpu_available: i64,
    pub net_available: i64,
    pub permissions: Vec<Permission>,
}

impl Account {
    pub fn permission(&self, name: &str) -> Option<&Permission> {
        self.permissions.iter().find(|p| p.name == name)
    }
}

/// What `send_transaction2` (or a fallback) said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub transaction_id: String,
}

fn short<'a>(what: &str, s: &'a str, max: usize) -> Result<&'a str, String> {
    if s.len() > max {
        Err(format!("{what} is {} bytes long (at most {max})", s.len()))
    } else {
        Ok(s)
    }
}

fn id32(what: &str, hex_text: &str) -> Result<[u8; 32], String> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(short(what, hex_text, 64)?, &mut out).map_err(|_| format!("{what} is not 32 bytes of hex"))?;
    Ok(out)
}

fn time_ms(what: &str, text: &str) -> Result<u64, String> {
    parse_block_time(short(what, text, 40)?).map_err(|e| format!("{what} {text:?}: {e}"))
}

fn from<T: for<'de> Deserialize<'de>>(v: Value) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| e.to_string())
}

/// A u64 that nodeos may send as a number or as a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Num {
    N(u64),
    S(String),
}

impl Num {
    fn get(&self, what: &str) -> Result<u64, String> {
        match self {
            Num::N(n) => Ok(*n),
            Num::S(s) => {
                s.parse().map_err(|_| format!("{what} {:?} is not a number", crate::chain::body::bounded_text(s)))
            }
        }
    }
}

pub fn parse_info(v: Value) -> Result<Info, String> {
    #[derive(Deserialize)]
    struct Raw {
        chain_id: String,
        head_block_num: Num,
        head_block_id: String,
        head_block_time: String,
        #[serde(default)]
        head_block_producer: String,
        last_irreversible_block_num: Num,
        last_irreversible_block_id: String,
        #[serde(default)]
        server_version_string: String,
    }
    let r: Raw = from(v)?;
    let chain_id = hex::encode(id32("chain_id", &r.chain_id)?);
    let info = Info {
        chain_id,
        head_num: r.head_block_num.get("head_block_num")?,
        head_id: id32("head_block_id", &r.head_block_id)?,
        head_time_ms: time_ms("head_block_time", &r.head_block_time)?,
        head_producer: short("head_block_producer", &r.head_block_producer, MAX_NAME)?.to_string(),
        lib_num: r.last_irreversible_block_num.get("last_irreversible_block_num")?,
        lib_id: id32("last_irreversible_block_id", &r.last_irreversible_block_id)?,
        server_version: short("server_version_string", &r.server_version_string, 100)?.to_string(),
    };
    if info.lib_num > info.head_num {
        return Err(format!("last irreversible block {} is above the head {}", info.lib_num, info.head_num));
    }
    // A block id begins with its number, big-endian (antelope-chain.md §1.3).
    for (what, num, id) in [("head", info.head_num, &info.head_id), ("last irreversible", info.lib_num, &info.lib_id)] {
        if u64::from(u32::from_be_bytes([id[0], id[1], id[2], id[3]])) != num {
            return Err(format!("the {what} block id does not begin with its number {num}"));
        }
    }
    Ok(info)
}

pub fn parse_header(v: Value, asked: u64) -> Result<Header, String> {
    #[derive(Deserialize)]
    struct Raw {
        block_num: Num,
        id: String,
        previous: String,
        timestamp: String,
        producer: String,
    }
    let r: Raw = from(v)?;
    let h = Header {
        num: r.block_num.get("block_num")?,
        id: id32("id", &r.id)?,
        previous: id32("previous", &r.previous)?,
        time_ms: time_ms("timestamp", &r.timestamp)?,
        producer: short("producer", &r.producer, MAX_NAME)?.to_string(),
    };
    if h.num != asked {
        return Err(format!("asked for block {asked}, got block {}", h.num));
    }
    if u64::from(u32::from_be_bytes([h.id[0], h.id[1], h.id[2], h.id[3]])) != h.num {
        return Err(format!("block {}'s id does not begin with its number", h.num));
    }
    Ok(h)
}

/// `["block_signing_authority_v0", {"threshold", "keys": [{"key", "weight"}]}]` → its keys.
fn authority_keys(v: &Value) -> Result<Vec<String>, String> {
    let keys = v
        .get(1)
        .and_then(|a| a.get("keys"))
        .and_then(Value::as_array)
        .ok_or("an authority is not [\"block_signing_authority_v0\", {keys}]")?;
    if keys.len() > MAX_KEYS {
        return Err(format!("an authority lists {} keys (at most {MAX_KEYS})", keys.len()));
    }
    keys.iter()
        .map(|k| {
            k.get("key")
                .and_then(Value::as_str)
                .ok_or_else(|| "a key of an authority is not text".to_string())
                .and_then(|s| short("a key", s, MAX_KEY_TEXT).map(str::to_string))
        })
        .collect()
}

fn parse_schedule(v: &Value) -> Result<Schedule, String> {
    let version = v.get("version").and_then(Value::as_u64).ok_or("a schedule has no version")?;
    let producers = v.get("producers").and_then(Value::as_array).ok_or("a schedule has no producers")?;
    if producers.len() > MAX_PRODUCERS {
        return Err(format!("a schedule lists {} producers (at most {MAX_PRODUCERS})", producers.len()));
    }
    let producers = producers
        .iter()
        .map(|p| {
            let name = p.get("producer_name").and_then(Value::as_str).ok_or("a scheduled producer has no name")?;
            // Pre-2.0 nodes give `block_signing_key`; current ones an `authority` variant.
            let keys = match (p.get("authority"), p.get("block_signing_key").and_then(Value::as_str)) {
                (Some(a), _) => authority_keys(a)?,
                (None, Some(k)) => vec![short("block_signing_key", k, MAX_KEY_TEXT)?.to_string()],
                (None, None) => return Err(format!("scheduled producer {name:?} has no key")),
            };
            Ok(Scheduled { producer: short("producer_name", name, MAX_NAME)?.to_string(), keys })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Schedule { version: u32::try_from(version).map_err(|_| "a schedule version is out of range")?, producers })
}

pub fn parse_schedules(v: Value) -> Result<Schedules, String> {
    let optional = |name: &str| -> Result<Option<Schedule>, String> {
        match v.get(name) {
            None | Some(Value::Null) => Ok(None),
            // nodeos shows an empty proposal as a schedule with no producers.
            Some(s) if s.get("producers").and_then(Value::as_array).is_some_and(Vec::is_empty) => Ok(None),
            Some(s) => parse_schedule(s).map(Some),
        }
    };
    Ok(Schedules {
        active: parse_schedule(v.get("active").ok_or("no active schedule")?)?,
        pending: optional("pending")?,
        proposed: optional("proposed")?,
    })
}

pub fn parse_producer_rows(v: Value, owner: &str) -> Result<Option<ProducerRow>, String> {
    let rows = v.get("rows").and_then(Value::as_array).ok_or("no rows")?;
    let Some(row) = rows.iter().find(|r| r.get("owner").and_then(Value::as_str) == Some(owner)) else {
        return Ok(None);
    };
    let text = |k: &str, max: usize| -> Result<String, String> {
        let s = row.get(k).and_then(Value::as_str).ok_or_else(|| format!("the producer row has no {k}"))?;
        short(k, s, max).map(str::to_string)
    };
    let is_active = match row.get("is_active") {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_u64() == Some(1),
        _ => return Err("the producer row has no is_active".into()),
    };
    let location = row.get("location").and_then(Value::as_u64).ok_or("the producer row has no location")?;
    Ok(Some(ProducerRow {
        owner: owner.to_string(),
        producer_key: text("producer_key", MAX_KEY_TEXT)?,
        is_active,
        url: text("url", MAX_URL)?,
        location: u16::try_from(location).map_err(|_| "location is out of range")?,
        authority_keys: match row.get("producer_authority") {
            Some(a) if !a.is_null() => authority_keys(a)?,
            _ => Vec::new(),
        },
    }))
}

pub fn parse_account(v: Value) -> Result<Account, String> {
    let name = v.get("account_name").and_then(Value::as_str).ok_or("no account_name")?;
    let available = |k: &str| -> i64 { v.pointer(&format!("/{k}/available")).and_then(Value::as_i64).unwrap_or(-1) };
    let perms = v.get("permissions").and_then(Value::as_array).ok_or("no permissions")?;
    if perms.len() > MAX_PERMISSIONS {
        return Err(format!("{} permissions (at most {MAX_PERMISSIONS})", perms.len()));
    }
    let permissions = perms
        .iter()
        .map(|p| {
            let s = |k: &str| -> Result<String, String> {
                let t = p.get(k).and_then(Value::as_str).ok_or_else(|| format!("a permission has no {k}"))?;
                short(k, t, MAX_NAME).map(str::to_string)
            };
            let auth = p.get("required_auth").ok_or("a permission has no required_auth")?;
            let keys = auth.get("keys").and_then(Value::as_array).ok_or("an authority has no keys")?;
            if keys.len() > MAX_KEYS {
                return Err(format!("an authority lists {} keys", keys.len()));
            }
            let keys = keys
                .iter()
                .map(|k| {
                    let key = k.get("key").and_then(Value::as_str).ok_or("a key has no text")?;
                    let weight = k.get("weight").and_then(Value::as_u64).ok_or("a key has no weight")?;
                    Ok((short("key", key, MAX_KEY_TEXT)?.to_string(), u16::try_from(weight).unwrap_or(u16::MAX)))
                })
                .collect::<Result<Vec<_>, String>>()?;
            let count = |k: &str| auth.get(k).and_then(Value::as_array).map_or(0, Vec::len);
            let linked = match p.get("linked_actions").and_then(Value::as_array) {
                None => Vec::new(),
                Some(l) if l.len() > MAX_PERMISSIONS => return Err("too many linked actions".into()),
                Some(l) => l
                    .iter()
                    .map(|a| {
                        let account = a.get("account").and_then(Value::as_str).unwrap_or_default();
                        let action = a.get("action").and_then(Value::as_str).unwrap_or_default();
                        Ok((
                            short("account", account, MAX_NAME)?.to_string(),
                            short("action", action, MAX_NAME)?.to_string(),
                        ))
                    })
                    .collect::<Result<Vec<_>, String>>()?,
            };
            Ok(Permission {
                name: s("perm_name")?,
                parent: s("parent").unwrap_or_default(),
                threshold: auth
                    .get("threshold")
                    .and_then(Value::as_u64)
                    .and_then(|t| u32::try_from(t).ok())
                    .unwrap_or(1),
                keys,
                others: count("accounts") + count("waits"),
                linked,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Account {
        name: short("account_name", name, MAX_NAME)?.to_string(),
        cpu_available: available("cpu_limit"),
        net_available: available("net_limit"),
        permissions,
    })
}

/// `send_transaction2`'s answer: accepted only when the trace shows `executed` and no exception
/// (with `return_failure_trace` a failure can come back as a 202).
pub fn parse_pushed(v: Value) -> Result<Result<Pushed, String>, String> {
    let id = v.get("transaction_id").and_then(Value::as_str).ok_or("no transaction_id")?;
    let processed = v.get("processed").ok_or("no processed trace")?;
    if let Some(except) = processed.get("except").filter(|e| !e.is_null()) {
        let name = except.get("name").and_then(Value::as_str).unwrap_or("exception");
        let detail = except
            .pointer("/stack/0/format")
            .or_else(|| except.pointer("/details/0/message"))
            .or_else(|| except.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("");
        return Ok(Err(crate::chain::body::bounded_text(&format!("{name}: {detail}"))));
    }
    match processed.pointer("/receipt/status").and_then(Value::as_str) {
        Some("executed") => Ok(Ok(Pushed { transaction_id: short("transaction_id", id, 64)?.to_string() })),
        Some(other) => {
            Ok(Err(format!("the transaction's receipt says {:?}, not executed", short("status", other, 30)?)))
        }
        None => Err("the trace has no receipt status".into()),
    }
}

// The calls.

pub async fn info(ep: &Nodeos) -> Result<Info, NodeosError> {
    let v = ep.call("get_info", &json!({})).await?;
    parse_info(v).map_err(|d| ep.malformed("get_info", d))
}

pub async fn header(ep: &Nodeos, num: u64) -> Result<Header, NodeosError> {
    let v = ep.call("get_block_info", &json!({ "block_num": num })).await?;
    parse_header(v, num).map_err(|d| ep.malformed("get_block_info", d))
}

pub async fn schedules(ep: &Nodeos) -> Result<Schedules, NodeosError> {
    let v = ep.call("get_producer_schedule", &json!({})).await?;
    parse_schedules(v).map_err(|d| ep.malformed("get_producer_schedule", d))
}

pub async fn producer_row(ep: &Nodeos, owner: &str) -> Result<Option<ProducerRow>, NodeosError> {
    let body = json!({"json": true, "code": "eosio", "scope": "eosio", "table": "producers",
        "lower_bound": owner, "upper_bound": owner, "limit": 1});
    let v = ep.call("get_table_rows", &body).await?;
    parse_producer_rows(v, owner).map_err(|d| ep.malformed("get_table_rows", d))
}

/// The rows of a Savanna finalizer table (`finalizers` or `finkeys`) for `finalizer`, raw (small).
pub async fn finalizer_rows(ep: &Nodeos, table: &str, finalizer: &str) -> Result<Vec<Value>, NodeosError> {
    let body = json!({"json": true, "code": "eosio", "scope": "eosio", "table": table, "limit": 1000});
    let v = ep.call("get_table_rows", &body).await?;
    let rows =
        v.get("rows").and_then(Value::as_array).ok_or_else(|| ep.malformed("get_table_rows", "no rows".into()))?;
    Ok(rows.iter().filter(|r| r.get("finalizer_name").and_then(Value::as_str) == Some(finalizer)).cloned().collect())
}

pub async fn account(ep: &Nodeos, name: &str) -> Result<Account, NodeosError> {
    let v = ep.call("get_account", &json!({ "account_name": name })).await?;
    parse_account(v).map_err(|d| ep.malformed("get_account", d))
}

/// Push a signed transaction: `send_transaction2`, falling back to `send_transaction` where the node lacks
/// it. `Ok(Err(why))` is a trace with an exception: a rejection.
pub async fn push(ep: &Nodeos, packed: &Value) -> Result<Result<Pushed, String>, NodeosError> {
    let body = json!({"return_failure_trace": true, "retry_trx": false, "transaction": packed});
    let v = match ep.call("send_transaction2", &body).await {
        Err(e) if e.is_missing_api() => ep.call("send_transaction", packed).await?,
        other => other?,
    };
    parse_pushed(v).map_err(|d| ep.malformed("send_transaction2", d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(num: u32) -> String {
        format!("{num:08x}{}", "ab".repeat(28))
    }

    #[test]
    fn info_is_checked_before_it_is_believed() {
        let good = json!({"chain_id": "aca376f206b8fc25a6ed44dbdc66547c36c6c33e3a119ffbeaef943642f0e906",
            "head_block_num": 400, "head_block_id": id(400), "head_block_time": "2025-01-01T00:00:01.500",
            "head_block_producer": "alice", "last_irreversible_block_num": 397, "last_irreversible_block_id": id(397),
            "server_version_string": "v1.2.2"});
        let info = parse_info(good.clone()).expect("good");
        assert_eq!((info.head_num, info.lib_num, info.head_time_ms % 1000), (400, 397, 500));
        let mut bad = good.clone();
        bad["head_block_id"] = json!(id(401));
        assert!(parse_info(bad).unwrap_err().contains("begin with its number"));
        let mut bad = good.clone();
        bad["last_irreversible_block_num"] = json!(401);
        bad["last_irreversible_block_id"] = json!(id(401));
        assert!(parse_info(bad).unwrap_err().contains("above the head"));
        let mut bad = good;
        bad["head_block_time"] = json!("yesterday");
        assert!(parse_info(bad).is_err());
    }

    #[test]
    fn schedules_read_both_key_shapes_and_bound_the_list() {
        let s = json!({"active": {"version": 3, "producers": [
            {"producer_name": "alice", "authority": ["block_signing_authority_v0", {"threshold": 1,
              "keys": [{"key": "EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV", "weight": 1}]}]},
            {"producer_name": "bob", "block_signing_key": "EOS5"}]},
            "pending": null, "proposed": {"version": 0, "producers": []}});
        let s = parse_schedules(s).expect("schedules");
        assert_eq!(s.active.position("bob"), Some(1));
        assert_eq!(s.active.keys_of("alice").map(<[String]>::len), Some(1));
        assert!(s.pending.is_none() && s.proposed.is_none());
        let many: Vec<Value> =
            (0..200).map(|i| json!({"producer_name": format!("p{i}"), "block_signing_key": "k"})).collect();
        assert!(parse_schedules(json!({"active": {"version": 1, "producers": many}})).is_err());
    }

    #[test]
    fn a_trace_with_an_exception_is_a_rejection() {
        let ok = json!({"transaction_id": "ab", "processed": {"receipt": {"status": "executed"}, "except": null}});
        assert_eq!(parse_pushed(ok).expect("parsed"), Ok(Pushed { transaction_id: "ab".into() }));
        let failed = json!({"transaction_id": "ab", "processed": {"receipt": null,
            "except": {"name": "eosio_assert_message_exception", "stack": [{"format": "url too long"}]}}});
        assert!(parse_pushed(failed).expect("parsed").unwrap_err().contains("url too long"));
    }
}
