//! Transactions as nodeos and eosjs write them in JSON, and back (antelope-protocol.md §3, §4).
//!
//! Action data is JSON for the six `eosio` actions of a failover (`regproducer`, `regproducer2`,
//! `actfinkey`, `unregprod`, `updateauth`, `linkauth`) and hex for anything else. A problem names the
//! field's path (`actions[0].data.url`).

use serde_json::{json, Map, Value};
use thiserror::Error;

use crate::action::*;
use crate::keys::PublicKey;
use crate::name::Name;
use crate::pack::{Pack, Unpack};
use crate::schedule::{format_block_time, parse_block_time};
use crate::transaction::{Tapos, Transaction};

/// A field that does not describe a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{path}: {message}")]
pub struct JsonError {
    pub path: String,
    pub message: String,
}

fn err<T>(path: &str, message: impl Into<String>) -> Result<T, JsonError> {
    Err(JsonError { path: path.to_string(), message: message.into() })
}

fn field<'a>(v: &'a Value, path: &str, key: &str) -> Result<&'a Value, JsonError> {
    match v.get(key) {
        Some(x) => Ok(x),
        None => err(&format!("{path}.{key}"), "is missing"),
    }
}

fn text<'a>(v: &'a Value, path: &str, key: &str) -> Result<&'a str, JsonError> {
    field(v, path, key)?.as_str().map_or_else(|| err(&format!("{path}.{key}"), "must be a string"), Ok)
}

fn uint(v: &Value, path: &str, key: &str, max: u64) -> Result<u64, JsonError> {
    let p = format!("{path}.{key}");
    let x = field(v, path, key)?;
    let n = match x {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    match n {
        Some(n) if n <= max => Ok(n),
        _ => err(&p, format!("must be a whole number from 0 to {max}")),
    }
}

fn opt_uint(v: &Value, path: &str, key: &str, max: u64) -> Result<u64, JsonError> {
    if v.get(key).is_none_or(Value::is_null) {
        Ok(0)
    } else {
        uint(v, path, key, max)
    }
}

fn name(v: &Value, path: &str, key: &str) -> Result<Name, JsonError> {
    let t = text(v, path, key)?;
    Name::new(t).map_err(|e| JsonError { path: format!("{path}.{key}"), message: format!("{t:?}: {e}") })
}

fn opt_name(v: &Value, path: &str, key: &str) -> Result<Option<Name>, JsonError> {
    if v.get(key).is_none_or(Value::is_null) {
        Ok(None)
    } else {
        name(v, path, key).map(Some)
    }
}

fn key(v: &Value, path: &str, k: &str) -> Result<PublicKey, JsonError> {
    let t = text(v, path, k)?;
    PublicKey::from_text(t).map_err(|e| JsonError { path: format!("{path}.{k}"), message: e.to_string() })
}

fn array<'a>(v: &'a Value, path: &str, key: &str) -> Result<&'a Vec<Value>, JsonError> {
    field(v, path, key)?.as_array().map_or_else(|| err(&format!("{path}.{key}"), "must be an array"), Ok)
}

fn opt_array<'a>(v: &'a Value, path: &str, key: &str) -> Result<Vec<&'a Value>, JsonError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => Ok(a.iter().collect()),
        Some(_) => err(&format!("{path}.{key}"), "must be an array"),
    }
}

fn key_weights(v: &Value, path: &str) -> Result<Vec<KeyWeight>, JsonError> {
    array(v, path, "keys")?
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let p = format!("{path}.keys[{i}]");
            Ok(KeyWeight { key: key(k, &p, "key")?, weight: uint(k, &p, "weight", u64::from(u16::MAX))? as u16 })
        })
        .collect()
}

fn authority(v: &Value, path: &str) -> Result<Authority, JsonError> {
    let accounts = array(v, path, "accounts")?
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let p = format!("{path}.accounts[{i}]");
            let perm = field(a, &p, "permission")?;
            let pp = format!("{p}.permission");
            Ok(PermissionLevelWeight {
                permission: PermissionLevel {
                    actor: name(perm, &pp, "actor")?,
                    permission: name(perm, &pp, "permission")?,
                },
                weight: uint(a, &p, "weight", u64::from(u16::MAX))? as u16,
            })
        })
        .collect::<Result<Vec<_>, JsonError>>()?;
    let waits = array(v, path, "waits")?
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let p = format!("{path}.waits[{i}]");
            Ok(WaitWeight {
                wait_sec: uint(w, &p, "wait_sec", u64::from(u32::MAX))? as u32,
                weight: uint(w, &p, "weight", u64::from(u16::MAX))? as u16,
            })
        })
        .collect::<Result<Vec<_>, JsonError>>()?;
    Ok(Authority {
        threshold: uint(v, path, "threshold", u64::from(u32::MAX))? as u32,
        keys: key_weights(v, path)?,
        accounts,
        waits,
    })
}

fn signing_authority(v: &Value, path: &str) -> Result<BlockSigningAuthority, JsonError> {
    let (Some(tag), Some(inner)) = (v.get(0).and_then(Value::as_str), v.get(1)) else {
        return err(path, "must be [\"block_signing_authority_v0\", {threshold, keys}]");
    };
    if tag != "block_signing_authority_v0" {
        return err(&format!("{path}[0]"), format!("{tag:?} is not block_signing_authority_v0"));
    }
    let p = format!("{path}[1]");
    Ok(BlockSigningAuthority {
        threshold: uint(inner, &p, "threshold", u64::from(u32::MAX))? as u32,
        keys: key_weights(inner, &p)?,
    })
}

/// The packed data of `account::action` from its JSON (`path` is the data's path).
fn action_data(account: Name, action: Name, data: &Value, path: &str) -> Result<Vec<u8>, JsonError> {
    if let Some(h) = data.as_str() {
        return hex::decode(h).map_err(|_| JsonError {
            path: path.into(),
            message: "must be hex (or JSON for the eosio failover actions)".into(),
        });
    }
    if !data.is_object() {
        return err(path, "must be an object or a hex string");
    }
    let d = data;
    let p = path;
    let packed = match (account.to_string().as_str(), action.to_string().as_str()) {
        ("eosio", "regproducer") => RegProducer {
            producer: name(d, p, "producer")?,
            producer_key: key(d, p, "producer_key")?,
            url: text(d, p, "url")?.to_string(),
            location: uint(d, p, "location", u64::from(u16::MAX))? as u16,
        }
        .packed(),
        ("eosio", "regproducer2") => RegProducer2 {
            producer: name(d, p, "producer")?,
            producer_authority: signing_authority(
                field(d, p, "producer_authority")?,
                &format!("{p}.producer_authority"),
            )?,
            url: text(d, p, "url")?.to_string(),
            location: uint(d, p, "location", u64::from(u16::MAX))? as u16,
        }
        .packed(),
        ("eosio", "actfinkey") => ActFinKey {
            finalizer_name: name(d, p, "finalizer_name")?,
            finalizer_key: text(d, p, "finalizer_key")?.to_string(),
        }
        .packed(),
        ("eosio", "unregprod") => UnregProd { producer: name(d, p, "producer")? }.packed(),
        ("eosio", "updateauth") => UpdateAuth {
            account: name(d, p, "account")?,
            permission: name(d, p, "permission")?,
            parent: name(d, p, "parent")?,
            auth: authority(field(d, p, "auth")?, &format!("{p}.auth"))?,
            authorized_by: opt_name(d, p, "authorized_by")?,
        }
        .packed(),
        ("eosio", "linkauth") => LinkAuth {
            account: name(d, p, "account")?,
            code: name(d, p, "code")?,
            type_: name(d, p, "type")?,
            requirement: name(d, p, "requirement")?,
            authorized_by: opt_name(d, p, "authorized_by")?,
        }
        .packed(),
        (a, n) => return err(path, format!("{a}::{n} has no JSON form here: give its data as hex")),
    };
    Ok(packed)
}

fn action(v: &Value, path: &str) -> Result<Action, JsonError> {
    let account = name(v, path, "account")?;
    let act = name(v, path, "name")?;
    let authorization = array(v, path, "authorization")?
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let p = format!("{path}.authorization[{i}]");
            Ok(PermissionLevel { actor: name(a, &p, "actor")?, permission: name(a, &p, "permission")? })
        })
        .collect::<Result<Vec<_>, JsonError>>()?;
    let data = action_data(account, act, field(v, path, "data")?, &format!("{path}.data"))?;
    Ok(Action { account, name: act, authorization, data })
}

/// `2025-06-11T03:24:25` (".000" and "Z" tolerated) → Unix seconds.
pub fn parse_time(text: &str) -> Result<u32, JsonError> {
    let ms = parse_block_time(text).map_err(|e| JsonError { path: "expiration".into(), message: e.to_string() })?;
    if ms % 1000 != 0 {
        return err("expiration", "must be a whole second");
    }
    u32::try_from(ms / 1000).map_or_else(|_| err("expiration", "is out of range"), Ok)
}

/// Unix seconds → `2025-06-11T03:24:25`.
pub fn format_time(secs: u32) -> String {
    let t = format_block_time(u64::from(secs) * 1000);
    t.strip_suffix(".000").unwrap_or(&t).to_string()
}

/// A transaction from nodeos/eosjs JSON.
pub fn transaction_from_json(v: &Value) -> Result<Transaction, JsonError> {
    if !v.is_object() {
        return err("transaction", "must be a JSON object");
    }
    let expiration =
        parse_time(text(v, "transaction", "expiration").map_err(|e| JsonError { path: "expiration".into(), ..e })?)?;
    let from_id = match v.get("block_id").filter(|b| !b.is_null()) {
        None => None,
        Some(b) => match b.as_str().map(Tapos::from_block_id_hex) {
            Some(Ok(t)) => Some(t),
            _ => return err("block_id", "must be a block id (64 hex characters)"),
        },
    };
    let has_refs = v.get("ref_block_num").is_some() || v.get("ref_block_prefix").is_some();
    let (ref_block_num, ref_block_prefix) = match (from_id, has_refs) {
        (Some(t), false) => (t.ref_block_num, t.ref_block_prefix),
        (tapos, _) => {
            let num = uint(v, "", "ref_block_num", u64::from(u16::MAX))
                .map_err(|e| JsonError { path: "ref_block_num".into(), ..e })? as u16;
            let prefix = uint(v, "", "ref_block_prefix", u64::from(u32::MAX))
                .map_err(|e| JsonError { path: "ref_block_prefix".into(), ..e })? as u32;
            if let Some(t) = tapos {
                if (t.ref_block_num, t.ref_block_prefix) != (num, prefix) {
                    return err("block_id", "does not match ref_block_num and ref_block_prefix: give one or the other");
                }
            }
            (num, prefix)
        }
    };
    let top = |k: &str, max: u64| opt_uint(v, "", k, max).map_err(|e| JsonError { path: k.into(), ..e });
    let actions_of = |k: &str| -> Result<Vec<Action>, JsonError> {
        opt_array(v, "", k)
            .map_err(|e| JsonError { path: k.into(), ..e })?
            .iter()
            .enumerate()
            .map(|(i, a)| action(a, &format!("{k}[{i}]")))
            .collect()
    };
    let actions = actions_of("actions")?;
    if actions.is_empty() {
        return err("actions", "must hold at least one action");
    }
    if !opt_array(v, "", "transaction_extensions")
        .map_err(|e| JsonError { path: "transaction_extensions".into(), ..e })?
        .is_empty()
    {
        return err("transaction_extensions", "are not supported here (none of the failover actions needs one)");
    }
    Ok(Transaction {
        expiration,
        ref_block_num,
        ref_block_prefix,
        max_net_usage_words: top("max_net_usage_words", u64::from(u32::MAX))? as u32,
        max_cpu_usage_ms: top("max_cpu_usage_ms", u64::from(u8::MAX))? as u8,
        delay_sec: top("delay_sec", u64::from(u32::MAX))? as u32,
        context_free_actions: actions_of("context_free_actions")?,
        actions,
        transaction_extensions: Vec::new(),
    })
}

fn kw_json(k: &[KeyWeight]) -> Value {
    Value::Array(k.iter().map(|k| json!({"key": k.key.to_legacy(), "weight": k.weight})).collect())
}

fn pl_json(p: &PermissionLevel) -> Value {
    json!({"actor": p.actor.to_string(), "permission": p.permission.to_string()})
}

/// The data of an action as JSON (the six failover actions), or hex.
pub fn action_data_to_json(a: &Action) -> Value {
    let hex = || Value::String(hex::encode(&a.data));
    if a.account.to_string() != "eosio" {
        return hex();
    }
    let d = &a.data[..];
    let decoded = match a.name.to_string().as_str() {
        "regproducer" => RegProducer::unpack_all(d).map(|r| {
            json!({"producer": r.producer.to_string(), "producer_key": r.producer_key.to_legacy(), "url": r.url, "location": r.location})
        }),
        "regproducer2" => RegProducer2::unpack_all(d).map(|r| {
            json!({"producer": r.producer.to_string(),
                "producer_authority": ["block_signing_authority_v0", {"threshold": r.producer_authority.threshold, "keys": kw_json(&r.producer_authority.keys)}],
                "url": r.url, "location": r.location})
        }),
        "actfinkey" => ActFinKey::unpack_all(d).map(|r| json!({"finalizer_name": r.finalizer_name.to_string(), "finalizer_key": r.finalizer_key})),
        "unregprod" => UnregProd::unpack_all(d).map(|r| json!({"producer": r.producer.to_string()})),
        "updateauth" => UpdateAuth::unpack_all(d).map(|u| {
            let mut m = json!({"account": u.account.to_string(), "permission": u.permission.to_string(), "parent": u.parent.to_string(),
                "auth": {"threshold": u.auth.threshold, "keys": kw_json(&u.auth.keys),
                    "accounts": u.auth.accounts.iter().map(|x| json!({"permission": pl_json(&x.permission), "weight": x.weight})).collect::<Vec<_>>(),
                    "waits": u.auth.waits.iter().map(|w| json!({"wait_sec": w.wait_sec, "weight": w.weight})).collect::<Vec<_>>()}});
            if let Some(b) = u.authorized_by {
                m["authorized_by"] = json!(b.to_string());
            }
            m
        }),
        "linkauth" => LinkAuth::unpack_all(d).map(|l| {
            let mut m = json!({"account": l.account.to_string(), "code": l.code.to_string(), "type": l.type_.to_string(), "requirement": l.requirement.to_string()});
            if let Some(b) = l.authorized_by {
                m["authorized_by"] = json!(b.to_string());
            }
            m
        }),
        _ => return hex(),
    };
    decoded.unwrap_or_else(|_| hex())
}

fn action_to_json(a: &Action) -> Value {
    json!({
        "account": a.account.to_string(),
        "name": a.name.to_string(),
        "authorization": a.authorization.iter().map(pl_json).collect::<Vec<_>>(),
        "data": action_data_to_json(a),
    })
}

/// A transaction as nodeos/eosjs JSON.
pub fn transaction_to_json(tx: &Transaction) -> Value {
    let mut m = Map::new();
    m.insert("expiration".into(), json!(format_time(tx.expiration)));
    m.insert("ref_block_num".into(), json!(tx.ref_block_num));
    m.insert("ref_block_prefix".into(), json!(tx.ref_block_prefix));
    m.insert("max_net_usage_words".into(), json!(tx.max_net_usage_words));
    m.insert("max_cpu_usage_ms".into(), json!(tx.max_cpu_usage_ms));
    m.insert("delay_sec".into(), json!(tx.delay_sec));
    m.insert("context_free_actions".into(), Value::Array(tx.context_free_actions.iter().map(action_to_json).collect()));
    m.insert("actions".into(), Value::Array(tx.actions.iter().map(action_to_json).collect()));
    m.insert("transaction_extensions".into(), json!([]));
    Value::Object(m)
}
