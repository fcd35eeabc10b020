//! The condenser ("legacy") JSON form of transactions and the two operations (protocol.md §1.3, §4.1,
//! §4.2), both directions, on `serde_json::Value`.
//!
//! Twist: the node's own JSON parser silently fills a missing or misspelt field with a default and then
//! hashes bytes nobody signed (§0 item 5). Here every field is required (except `signatures`), unknown
//! fields are errors, numbers must be JSON integers in range, and the names follow the chain
//! (`hbd_interest_rate`/`HIVE` on Hive, `sbd_interest_rate`/`STEEM` on Steem). Errors name the field path,
//! e.g. `operations[0][1].props.hbd_interest_rate: missing field`. The appbase `{type, value}` form is not
//! accepted.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use thiserror::Error;

use super::asset::{Asset, AssetError};
use super::chain::ChainSpec;
use super::keys::{KeyError, PublicKey};
use super::operation::{LegacyChainProperties, Operation, WitnessSetProperties, WitnessUpdate};
use super::sign::{SignError, Signature};
use super::transaction::{SignedTransaction, TimePointSec, Transaction, TransactionError};

/// What is wrong at a JSON path.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum JsonProblem {
    /// A required field is absent.
    #[error("missing field")]
    MissingField,
    /// A required field is absent and the other chain's spelling is present (§0 item 5).
    #[error("missing field ({0} is the other chain's name for it)")]
    OtherChainName(&'static str),
    /// A field this type does not have.
    #[error("unknown field")]
    UnknownField,
    /// Wrong JSON type.
    #[error("expected {0}")]
    Expected(&'static str),
    /// An integer outside the field's type.
    #[error("integer out of range for {0}")]
    OutOfRange(&'static str),
    /// An operation name other than the two supported.
    #[error("unknown operation {0:?} (supported: witness_update, witness_set_properties)")]
    UnknownOperation(String),
    /// `extensions` must be `[]`.
    #[error("extensions must be empty")]
    NonEmptyExtensions,
    /// A `witness_set_properties` prop named twice.
    #[error("duplicate prop {0:?}")]
    DuplicateProp(String),
    /// A prop value that is not hex.
    #[error("prop value must be hex")]
    NotHex,
    /// A public key that does not parse.
    #[error("{0}")]
    Key(KeyError),
    /// An asset that does not parse.
    #[error("{0}")]
    Asset(AssetError),
    /// A time that does not parse.
    #[error("{0}")]
    Time(TransactionError),
    /// A signature that does not parse.
    #[error("{0}")]
    Signature(SignError),
}

/// A JSON decoding error: where and what. One line.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{path}: {problem}")]
pub struct JsonError {
    /// Field path, e.g. `operations[0][1].props.hbd_interest_rate`.
    pub path: String,
    /// What is wrong there.
    pub problem: JsonProblem,
}

fn err<T>(path: &str, problem: JsonProblem) -> Result<T, JsonError> {
    Err(JsonError { path: path.to_string(), problem })
}

/// `parent.key`, or `parent["odd key"]` when the key (from input) is not a plain identifier, so that
/// an error line stays one line.
fn child(parent: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.len() <= 64 && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => {
            let short: String = key.chars().take(40).collect();
            format!("{parent}[{short:?}]")
        }
    }
}

fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// An object whose fields are taken one by one; [`Fields::finish`] rejects the rest.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: String,
    taken: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    fn new(v: &'a Value, path: &str, root: &str) -> Result<Self, JsonError> {
        match v {
            Value::Object(map) => Ok(Self { map, path: path.to_string(), taken: Vec::new() }),
            _ => err(if path.is_empty() { root } else { path }, JsonProblem::Expected("an object")),
        }
    }

    fn path_of(&self, name: &str) -> String {
        child(&self.path, name)
    }

    fn optional(&mut self, name: &'static str) -> Option<&'a Value> {
        self.taken.push(name);
        self.map.get(name)
    }

    fn take(&mut self, name: &'static str) -> Result<&'a Value, JsonError> {
        match self.optional(name) {
            Some(v) => Ok(v),
            None => err(&self.path_of(name), JsonProblem::MissingField),
        }
    }

    fn finish(self) -> Result<(), JsonError> {
        match self.map.keys().find(|k| !self.taken.contains(&k.as_str())) {
            Some(extra) => err(&child(&self.path, extra), JsonProblem::UnknownField),
            None => Ok(()),
        }
    }
}

fn as_str<'a>(v: &'a Value, path: &str) -> Result<&'a str, JsonError> {
    v.as_str().map_or_else(|| err(path, JsonProblem::Expected("a string")), Ok)
}

fn as_array<'a>(v: &'a Value, path: &str) -> Result<&'a Vec<Value>, JsonError> {
    v.as_array().map_or_else(|| err(path, JsonProblem::Expected("an array")), Ok)
}

fn as_uint<T: TryFrom<u64>>(v: &Value, path: &str, ty: &'static str) -> Result<T, JsonError> {
    let Some(n) = v.as_u64() else {
        return err(path, JsonProblem::Expected("an unsigned integer"));
    };
    T::try_from(n).map_or_else(|_| err(path, JsonProblem::OutOfRange(ty)), Ok)
}

fn empty_extensions(v: &Value, path: &str) -> Result<(), JsonError> {
    if as_array(v, path)?.is_empty() {
        Ok(())
    } else {
        err(path, JsonProblem::NonEmptyExtensions)
    }
}

fn public_key(v: &Value, path: &str, chain: &ChainSpec) -> Result<PublicKey, JsonError> {
    PublicKey::from_text(as_str(v, path)?, &chain.key_prefix).or_else(|e| err(path, JsonProblem::Key(e)))
}

fn asset(v: &Value, path: &str, chain: &ChainSpec) -> Result<Asset, JsonError> {
    Asset::from_legacy_str(as_str(v, path)?, chain).or_else(|e| err(path, JsonProblem::Asset(e)))
}

/// Condenser JSON of one operation: `["name", {fields}]`.
pub fn operation_to_json(op: &Operation, chain: &ChainSpec) -> Value {
    let body = match op {
        Operation::WitnessUpdate(w) => {
            let mut props = Map::new();
            props.insert("account_creation_fee".into(), json!(w.props.account_creation_fee.to_legacy_string(chain)));
            props.insert("maximum_block_size".into(), json!(w.props.maximum_block_size));
            props.insert(chain.interest_rate_field().into(), json!(w.props.interest_rate));
            json!({
                "owner": w.owner,
                "url": w.url,
                "block_signing_key": w.block_signing_key.to_text(&chain.key_prefix),
                "props": props,
                "fee": w.fee.to_legacy_string(chain),
            })
        }
        Operation::WitnessSetProperties(w) => {
            let props: Vec<Value> = w.props.iter().map(|(k, v)| json!([k, hex::encode(v)])).collect();
            json!({ "owner": w.owner, "props": props, "extensions": [] })
        }
    };
    json!([op.name(), body])
}

/// Parses `["name", {fields}]`.
pub fn operation_from_json(v: &Value, chain: &ChainSpec) -> Result<Operation, JsonError> {
    parse_operation(v, "operation", chain)
}

fn parse_operation(v: &Value, path: &str, chain: &ChainSpec) -> Result<Operation, JsonError> {
    let pair = match v.as_array() {
        Some(a) if a.len() == 2 => a,
        _ => return err(path, JsonProblem::Expected("[\"operation_name\", {fields}] (condenser form)")),
    };
    let name_path = index(path, 0);
    let body_path = index(path, 1);
    let name = as_str(&pair[0], &name_path)?;
    match name {
        "witness_update" => parse_witness_update(&pair[1], &body_path, chain).map(Operation::WitnessUpdate),
        "witness_set_properties" => parse_set_properties(&pair[1], &body_path).map(Operation::WitnessSetProperties),
        other => err(&name_path, JsonProblem::UnknownOperation(other.chars().take(64).collect())),
    }
}

fn parse_witness_update(v: &Value, path: &str, chain: &ChainSpec) -> Result<WitnessUpdate, JsonError> {
    let mut f = Fields::new(v, path, "operation")?;
    let owner = as_str(f.take("owner")?, &f.path_of("owner"))?.to_string();
    let url = as_str(f.take("url")?, &f.path_of("url"))?.to_string();
    let block_signing_key = public_key(f.take("block_signing_key")?, &f.path_of("block_signing_key"), chain)?;
    let props_path = f.path_of("props");
    let props = parse_chain_props(f.take("props")?, &props_path, chain)?;
    let fee = asset(f.take("fee")?, &f.path_of("fee"), chain)?;
    f.finish()?;
    Ok(WitnessUpdate { owner, url, block_signing_key, props, fee })
}

fn parse_chain_props(v: &Value, path: &str, chain: &ChainSpec) -> Result<LegacyChainProperties, JsonError> {
    let mut f = Fields::new(v, path, "props")?;
    let fee_path = f.path_of("account_creation_fee");
    let account_creation_fee = asset(f.take("account_creation_fee")?, &fee_path, chain)?;
    let size_path = f.path_of("maximum_block_size");
    let maximum_block_size = as_uint(f.take("maximum_block_size")?, &size_path, "u32")?;
    let (rate_name, other_name) = match chain.interest_rate_field() {
        "hbd_interest_rate" => ("hbd_interest_rate", "sbd_interest_rate"),
        _ => ("sbd_interest_rate", "hbd_interest_rate"),
    };
    let rate_path = f.path_of(rate_name);
    let Some(rate) = f.optional(rate_name) else {
        if f.map.contains_key(other_name) {
            return err(&rate_path, JsonProblem::OtherChainName(other_name));
        }
        return err(&rate_path, JsonProblem::MissingField);
    };
    let interest_rate = as_uint(rate, &rate_path, "u16")?;
    f.finish()?;
    Ok(LegacyChainProperties { account_creation_fee, maximum_block_size, interest_rate })
}

fn parse_set_properties(v: &Value, path: &str) -> Result<WitnessSetProperties, JsonError> {
    let mut f = Fields::new(v, path, "operation")?;
    let owner = as_str(f.take("owner")?, &f.path_of("owner"))?.to_string();
    let props_path = f.path_of("props");
    let list = as_array(f.take("props")?, &props_path)?;
    let mut props = BTreeMap::new();
    for (i, item) in list.iter().enumerate() {
        let item_path = index(&props_path, i);
        let pair = match item.as_array() {
            Some(p) if p.len() == 2 => p,
            _ => return err(&item_path, JsonProblem::Expected("a [\"name\", \"hex\"] pair")),
        };
        let name_path = index(&item_path, 0);
        let name = as_str(&pair[0], &name_path)?;
        let value_path = index(&item_path, 1);
        let bytes = hex::decode(as_str(&pair[1], &value_path)?).or_else(|_| err(&value_path, JsonProblem::NotHex))?;
        if props.insert(name.to_string(), bytes).is_some() {
            return err(&name_path, JsonProblem::DuplicateProp(name.chars().take(64).collect()));
        }
    }
    let ext_path = f.path_of("extensions");
    empty_extensions(f.take("extensions")?, &ext_path)?;
    f.finish()?;
    Ok(WitnessSetProperties { owner, props })
}

fn transaction_fields(tx: &Transaction, chain: &ChainSpec) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("ref_block_num".into(), json!(tx.ref_block_num));
    m.insert("ref_block_prefix".into(), json!(tx.ref_block_prefix));
    m.insert("expiration".into(), json!(tx.expiration.to_string()));
    let ops: Vec<Value> = tx.operations.iter().map(|op| operation_to_json(op, chain)).collect();
    m.insert("operations".into(), Value::Array(ops));
    m.insert("extensions".into(), json!([]));
    m
}

/// Condenser JSON of a signed transaction, as `condenser_api.broadcast_transaction` takes it (§5.7).
pub fn transaction_to_json(tx: &SignedTransaction, chain: &ChainSpec) -> Value {
    let mut m = transaction_fields(&tx.transaction, chain);
    let sigs: Vec<Value> = tx.signatures.iter().map(|s| json!(s.to_hex())).collect();
    m.insert("signatures".into(), Value::Array(sigs));
    Value::Object(m)
}

/// Condenser JSON of an unsigned transaction (no `signatures` field).
pub fn unsigned_transaction_to_json(tx: &Transaction, chain: &ChainSpec) -> Value {
    Value::Object(transaction_fields(tx, chain))
}

/// Parses condenser JSON. `signatures` is optional (absent = none); every other field is required.
pub fn transaction_from_json(v: &Value, chain: &ChainSpec) -> Result<SignedTransaction, JsonError> {
    let mut f = Fields::new(v, "", "transaction")?;
    let ref_block_num = as_uint(f.take("ref_block_num")?, "ref_block_num", "u16")?;
    let ref_block_prefix = as_uint(f.take("ref_block_prefix")?, "ref_block_prefix", "u32")?;
    let expiration: TimePointSec =
        as_str(f.take("expiration")?, "expiration")?.parse().or_else(|e| err("expiration", JsonProblem::Time(e)))?;
    let ops = as_array(f.take("operations")?, "operations")?;
    let operations = ops
        .iter()
        .enumerate()
        .map(|(i, op)| parse_operation(op, &index("operations", i), chain))
        .collect::<Result<Vec<_>, _>>()?;
    empty_extensions(f.take("extensions")?, "extensions")?;
    let signatures = match f.optional("signatures") {
        None => Vec::new(),
        Some(v) => as_array(v, "signatures")?
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let p = index("signatures", i);
                Signature::from_hex(as_str(s, &p)?).or_else(|e| err(&p, JsonProblem::Signature(e)))
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    f.finish()?;
    let transaction = Transaction { ref_block_num, ref_block_prefix, expiration, operations };
    Ok(SignedTransaction { transaction, signatures })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx_json(op: Value) -> Value {
        json!({"ref_block_num": 1234, "ref_block_prefix": 3405691582u32, "expiration": "2025-01-01T00:00:00",
               "operations": [op], "extensions": []})
    }

    fn update_op(rate_field: &str, core: &str) -> Value {
        json!(["witness_update", {"owner": "alice", "url": "https://example.com",
            "block_signing_key": "STM7brYP9rXyMynTPaoaJkMm6BC4Sfw8wkdRiGkmkWPdNpgVryr35",
            "props": {"account_creation_fee": format!("3.000 {core}"), "maximum_block_size": 65536, rate_field: 1000},
            "fee": format!("0.000 {core}")}])
    }

    #[test]
    fn round_trip_both_chains() {
        for (chain, field, core) in
            [(ChainSpec::hive(), "hbd_interest_rate", "HIVE"), (ChainSpec::steem(), "sbd_interest_rate", "STEEM")]
        {
            let v = tx_json(update_op(field, core));
            let tx = transaction_from_json(&v, &chain).unwrap();
            assert!(tx.signatures.is_empty());
            assert_eq!(unsigned_transaction_to_json(&tx.transaction, &chain), v);
            let mut signed = v.clone();
            signed["signatures"] = json!([]);
            assert_eq!(transaction_to_json(&tx, &chain), signed);
        }
    }

    #[test]
    fn errors_name_the_field() {
        let hive = ChainSpec::hive();
        let cases: Vec<(Value, &str)> = vec![
            (tx_json(update_op("sbd_interest_rate", "HIVE")),
             "operations[0][1].props.hbd_interest_rate: missing field (sbd_interest_rate is the other chain's name for it)"),
            (tx_json(json!(["transfer", {}])), "operations[0][0]: unknown operation \"transfer\""),
            (tx_json(json!({"type": "witness_update_operation", "value": {}})), "operations[0]: expected [\"operation_name\""),
            (json!([]), "transaction: expected an object"),
            (json!({"ref_block_num": 70000}), "ref_block_num: integer out of range for u16"),
            (json!({"ref_block_num": "1"}), "ref_block_num: expected an unsigned integer"),
            (json!({"ref_block_num": -1}), "ref_block_num: expected an unsigned integer"),
            (json!({"ref_block_num": 1.5}), "ref_block_num: expected an unsigned integer"),
            (json!({"ref_block_num": 1}), "ref_block_prefix: missing field"),
            (json!({"ref_block_num": 1, "ref_block_prefix": 1, "expiration": "2025-01-01"}), "expiration: time must be"),
        ];
        for (v, expect) in cases {
            let e = transaction_from_json(&v, &hive).unwrap_err().to_string();
            assert!(e.starts_with(expect), "{e:?} should start with {expect:?}");
        }
        let mut extra = tx_json(update_op("hbd_interest_rate", "HIVE"));
        extra["operations"][0][1]["props"]["account_subsidy_budget"] = json!(1);
        assert_eq!(
            transaction_from_json(&extra, &hive).unwrap_err().to_string(),
            "operations[0][1].props.account_subsidy_budget: unknown field"
        );
        let mut odd = tx_json(update_op("hbd_interest_rate", "HIVE"));
        odd["x\ny"] = json!(1);
        assert_eq!(transaction_from_json(&odd, &hive).unwrap_err().to_string(), "[\"x\\ny\"]: unknown field");
        let mut ext = tx_json(update_op("hbd_interest_rate", "HIVE"));
        ext["extensions"] = json!([[1, {}]]);
        assert_eq!(transaction_from_json(&ext, &hive).unwrap_err().to_string(), "extensions: extensions must be empty");
        let mut key = tx_json(update_op("hbd_interest_rate", "HIVE"));
        key["operations"][0][1]["block_signing_key"] = json!("TST7brYP9rXyMynTPaoaJkMm6BC4Sfw8wkdRiGkmkWPdNpgVryr35");
        assert_eq!(
            transaction_from_json(&key, &hive).unwrap_err().to_string(),
            "operations[0][1].block_signing_key: public key has the wrong prefix, expected \"STM\""
        );
        let mut fee = tx_json(update_op("hbd_interest_rate", "HIVE"));
        fee["operations"][0][1]["fee"] = json!(0);
        assert_eq!(
            transaction_from_json(&fee, &hive).unwrap_err().to_string(),
            "operations[0][1].fee: expected a string"
        );
    }

    #[test]
    fn set_properties_json() {
        let op = json!(["witness_set_properties", {"owner": "alice",
            "props": [["new_signing_key", "03655133de32f4d64fb4f33092c0c9767b7fb07b64b671f8efbb1be059ae02cff9"],
                      ["key", "03d0ca9c91eff1ab6d5c2035de02b7db15dc187939210ce29b4f6e61f540ad9b96"]],
            "extensions": []}]);
        let parsed = operation_from_json(&op, &ChainSpec::hive()).unwrap();
        // Output is sorted as the node sorts (§0 item 4).
        let out = operation_to_json(&parsed, &ChainSpec::hive());
        assert_eq!(out[1]["props"][0][0], "key");
        assert_eq!(operation_from_json(&out, &ChainSpec::hive()).unwrap(), parsed);
        let mut dup = op.clone();
        dup[1]["props"][1][0] = json!("new_signing_key");
        assert_eq!(
            operation_from_json(&dup, &ChainSpec::hive()).unwrap_err().to_string(),
            "operation[1].props[1][0]: duplicate prop \"new_signing_key\""
        );
        let mut bad_hex = op.clone();
        bad_hex[1]["props"][0][1] = json!("zz");
        assert_eq!(
            operation_from_json(&bad_hex, &ChainSpec::hive()).unwrap_err().to_string(),
            "operation[1].props[0][1]: prop value must be hex"
        );
        let mut no_ext = op;
        no_ext[1].as_object_mut().unwrap().remove("extensions");
        assert_eq!(
            operation_from_json(&no_ext, &ChainSpec::hive()).unwrap_err().to_string(),
            "operation[1].extensions: missing field"
        );
    }
}
