//! The calls the trap makes, typed (protocol.md §5.2-§5.7).
//!
//! Only the fields the trap uses are declared, and each is required with its exact type: an answer that
//! lacks `total_missed` or gives it as a string is garbage from a broken or lying node, not a zero.
//! These are the condenser (legacy JSON) forms, served alike by Hive and Steem.
//!
//! Every answer is parsed by a `parse_*` function from the `result` value, with no HTTP, so each can be
//! tested (and fuzzed) alone. Besides its type, every value that steers the trap is checked against what
//! a real chain can hold: `total_missed` and block numbers are uint32 on chain, the head is not behind the
//! last irreversible block, ids are hex of the right length, the block interval is 1..=60 s, a schedule
//! has at most [`MAX_SCHEDULED_WITNESSES`] names, and texts that end up in logs are short. A value out of
//! range makes the whole answer garbage (a failed read of that endpoint), never a clamp.

use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};

use super::client::{Endpoint, RpcError};

/// The longest block interval believed, in seconds (real chains: 3 s; a simulated chain may be faster,
/// never slower than this): it paces slot-aware watching and corroboration.
pub const MAX_BLOCK_INTERVAL_SECS: u64 = 60;

/// The most witnesses a schedule may hold. Both chains schedule 21 (`HIVE_MAX_WITNESSES` /
/// `STEEM_MAX_WITNESSES`); 64 leaves room for a testnet configured otherwise, and refuses a hostile
/// schedule of thousands of names.
pub const MAX_SCHEDULED_WITNESSES: usize = 64;

/// How far (in blocks) a schedule's `next_shuffle_block_num` may be from the head it is read with: the
/// next shuffle is at most one round (≤ [`MAX_SCHEDULED_WITNESSES`] blocks) ahead, twice that leaves room
/// for Hive's schedule computed one round ahead (§6.1) and a backend a few blocks behind.
pub const MAX_SHUFFLE_DISTANCE: u32 = 2 * MAX_SCHEDULED_WITNESSES as u32;

/// Account names are 3-16 characters on both chains.
const MAX_ACCOUNT_NAME: usize = 16;
/// `HIVE_MAX_WITNESS_URL_LENGTH` / `STEEM_MAX_WITNESS_URL_LENGTH`.
const MAX_URL: usize = graphene_protocol::operation::MAX_URL_LENGTH;
/// A public key in text: prefix + 50 base58 characters; room for a longer testnet prefix.
const MAX_KEY_TEXT: usize = 100;
/// Version strings ("1.27.11") and the head block time ("2025-09-02T10:34:30").
const MAX_SHORT_TEXT: usize = 64;

/// `condenser_api.get_dynamic_global_properties` (§5.3), the fields we use.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct GlobalProperties {
    pub head_block_number: u32,
    /// 40 hex digits (20 bytes).
    pub head_block_id: String,
    /// Head block time, `YYYY-MM-DDTHH:MM:SS` UTC: the node's "now".
    pub time: String,
    /// At most `head_block_number`.
    pub last_irreversible_block_num: u32,
    #[serde(default)]
    pub current_aslot: Option<u64>,
}

/// `condenser_api.get_witness_by_account` (§5.2), the fields we use.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Witness {
    pub owner: String,
    pub url: String,
    /// A uint32 on chain (§5.2): a larger value is refused, not widened.
    #[serde(deserialize_with = "chain_u32")]
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
    /// 64 hex digits (32 bytes).
    pub chain_id: String,
    #[serde(default)]
    pub blockchain_version: Option<String>,
}

/// `condenser_api.get_witness_schedule` (§5.4), the fields we use.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct WitnessSchedule {
    /// At most [`MAX_SCHEDULED_WITNESSES`] names, at least `num_scheduled_witnesses`.
    pub current_shuffled_witnesses: Vec<String>,
    /// 1..=[`MAX_SCHEDULED_WITNESSES`].
    pub num_scheduled_witnesses: u32,
    pub next_shuffle_block_num: u32,
}

impl WitnessSchedule {
    /// Whether `next_shuffle_block_num` is plausible for a head at `head`: within
    /// [`MAX_SHUFFLE_DISTANCE`] blocks either way. A shuffle announced far ahead would keep a stale
    /// schedule in use; one far behind would have the schedule re-read at every look.
    pub fn check_near(&self, head: u32) -> Result<(), String> {
        if self.next_shuffle_block_num.abs_diff(head) > MAX_SHUFFLE_DISTANCE {
            return Err(format!(
                "next_shuffle_block_num {} is more than {MAX_SHUFFLE_DISTANCE} blocks from the head {head}",
                self.next_shuffle_block_num
            ));
        }
        Ok(())
    }
}

/// A uint32 read into the wider type the trap computes with.
fn chain_u32<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    u32::deserialize(d).map(u64::from)
}

fn decode<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_json::from_value(value).map_err(|e| e.to_string())
}

fn short(field: &str, text: &str, max: usize) -> Result<(), String> {
    if text.len() > max {
        return Err(format!("{field} is {} bytes long (at most {max})", text.len()));
    }
    Ok(())
}

fn hex_of_len(field: &str, text: &str, digits: usize) -> Result<(), String> {
    if text.len() != digits || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        let shown: String = text.chars().take(2 * digits).collect();
        return Err(format!("{field} {shown:?} is not {digits} hex digits"));
    }
    Ok(())
}

/// The `result` of `condenser_api.get_dynamic_global_properties`.
pub fn parse_global_properties(result: Value) -> Result<GlobalProperties, String> {
    let dgp: GlobalProperties = decode(result)?;
    hex_of_len("head_block_id", &dgp.head_block_id, 40)?;
    short("time", &dgp.time, MAX_SHORT_TEXT)?;
    if dgp.last_irreversible_block_num > dgp.head_block_number {
        return Err(format!(
            "last_irreversible_block_num {} is ahead of head_block_number {}",
            dgp.last_irreversible_block_num, dgp.head_block_number
        ));
    }
    Ok(dgp)
}

/// The `result` of `condenser_api.get_witness_by_account`: `None` (JSON `null`) if not a witness.
pub fn parse_witness(result: Value) -> Result<Option<Witness>, String> {
    let Some(w) = decode::<Option<Witness>>(result)? else { return Ok(None) };
    short("owner", &w.owner, MAX_ACCOUNT_NAME)?;
    short("url", &w.url, MAX_URL)?;
    short("signing_key", &w.signing_key, MAX_KEY_TEXT)?;
    if let Some(v) = &w.running_version {
        short("running_version", v, MAX_SHORT_TEXT)?;
    }
    Ok(Some(w))
}

/// The `result` of `condenser_api.get_accounts [[name]]`: the account named `name`, if listed.
pub fn parse_accounts(result: Value, name: &str) -> Result<Option<Account>, String> {
    let accounts: Vec<Account> = decode(result)?;
    Ok(accounts.into_iter().find(|a| a.name == name))
}

/// The `result` of `database_api.get_version`.
pub fn parse_version(result: Value) -> Result<Version, String> {
    let v: Version = decode(result)?;
    hex_of_len("chain_id", &v.chain_id, 64)?;
    if let Some(b) = &v.blockchain_version {
        short("blockchain_version", b, MAX_SHORT_TEXT)?;
    }
    Ok(v)
}

/// The `result` of `condenser_api.get_config`: `HIVE_BLOCK_INTERVAL` or `STEEM_BLOCK_INTERVAL`, in
/// 1..=[`MAX_BLOCK_INTERVAL_SECS`].
pub fn parse_block_interval(result: Value) -> Result<u64, String> {
    let (key, value) = ["HIVE_BLOCK_INTERVAL", "STEEM_BLOCK_INTERVAL"]
        .iter()
        .find_map(|k| result.get(*k).map(|v| (*k, v)))
        .ok_or("no HIVE_BLOCK_INTERVAL or STEEM_BLOCK_INTERVAL")?;
    match value.as_u64() {
        Some(secs @ 1..=MAX_BLOCK_INTERVAL_SECS) => Ok(secs),
        _ => Err(format!(
            "{key} {} is not a whole number of seconds in 1..={MAX_BLOCK_INTERVAL_SECS}",
            super::client::bounded_text(&value.to_string())
        )),
    }
}

/// The `result` of `condenser_api.get_witness_schedule` (sizes checked; see also
/// [`WitnessSchedule::check_near`]).
pub fn parse_witness_schedule(result: Value) -> Result<WitnessSchedule, String> {
    let s: WitnessSchedule = decode(result)?;
    let listed = s.current_shuffled_witnesses.len();
    if listed > MAX_SCHEDULED_WITNESSES {
        return Err(format!("current_shuffled_witnesses has {listed} names (at most {MAX_SCHEDULED_WITNESSES})"));
    }
    let num = s.num_scheduled_witnesses;
    if num == 0 || num as usize > listed {
        return Err(format!("num_scheduled_witnesses {num} is not in 1..={listed} (the names listed)"));
    }
    if let Some(name) = s.current_shuffled_witnesses.iter().find(|n| n.len() > MAX_ACCOUNT_NAME) {
        short("a scheduled witness's name", name, MAX_ACCOUNT_NAME)?;
    }
    if s.next_shuffle_block_num == 0 {
        return Err("next_shuffle_block_num is 0".into());
    }
    Ok(s)
}

pub async fn global_properties(ep: &Endpoint) -> Result<GlobalProperties, RpcError> {
    ep.call_parsed("condenser_api.get_dynamic_global_properties", json!([]), parse_global_properties).await
}

/// `None` if the account is not a witness.
pub async fn witness(ep: &Endpoint, account: &str) -> Result<Option<Witness>, RpcError> {
    ep.call_parsed("condenser_api.get_witness_by_account", json!([account]), parse_witness).await
}

/// `None` if the account does not exist.
pub async fn account(ep: &Endpoint, name: &str) -> Result<Option<Account>, RpcError> {
    ep.call_parsed("condenser_api.get_accounts", json!([[name]]), |v| parse_accounts(v, name)).await
}

pub async fn version(ep: &Endpoint) -> Result<Version, RpcError> {
    ep.call_parsed("database_api.get_version", json!({}), parse_version).await
}

/// The block interval in seconds from `condenser_api.get_config` (`HIVE_BLOCK_INTERVAL` or
/// `STEEM_BLOCK_INTERVAL`), so a simulated chain may run a faster clock. A value outside
/// 1..=[`MAX_BLOCK_INTERVAL_SECS`] is a malformed answer.
pub async fn block_interval(ep: &Endpoint) -> Result<u64, RpcError> {
    ep.call_parsed("condenser_api.get_config", json!([]), parse_block_interval).await
}

/// The witness schedule, its sizes checked (not its shuffle block: see [`witness_schedule_near`]).
pub async fn witness_schedule(ep: &Endpoint) -> Result<WitnessSchedule, RpcError> {
    ep.call_parsed("condenser_api.get_witness_schedule", json!([]), parse_witness_schedule).await
}

/// The witness schedule read with a head at `head`: [`witness_schedule`], and `next_shuffle_block_num`
/// within [`MAX_SHUFFLE_DISTANCE`] blocks of `head`.
pub async fn witness_schedule_near(ep: &Endpoint, head: u32) -> Result<WitnessSchedule, RpcError> {
    ep.call_parsed("condenser_api.get_witness_schedule", json!([]), |v| {
        let s = parse_witness_schedule(v)?;
        s.check_near(head)?;
        Ok(s)
    })
    .await
}

/// `condenser_api.broadcast_transaction [signed_tx]`: `{}` once the node put it in its pending pool.
pub async fn broadcast(ep: &Endpoint, signed_tx: &Value) -> Result<(), RpcError> {
    ep.call_value("condenser_api.broadcast_transaction", json!([signed_tx])).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::super::client::parse_envelope;
    use super::*;
    use proptest::prelude::*;

    fn dgp() -> Value {
        json!({"head_block_number": 99073119, "head_block_id": "05e7bc5f3e319509113eb261bf995824a9efd567",
               "time": "2025-09-02T10:34:30", "current_witness": "arcange", "last_irreversible_block_num": 99073100,
               "current_aslot": 99324690, "participation_count": 128})
    }

    fn witness_json() -> Value {
        json!({"id": 9493, "owner": "gtg", "url": "https://gtg.openhive.network", "total_missed": 988,
               "signing_key": "STM8PFEEhF9g3PMZu9mu9vso56bzP6i4aMYM73aWL8CkcKi4LEGLR",
               "props": {"account_creation_fee": "3.000 HIVE", "maximum_block_size": 65536, "hbd_interest_rate": 1000},
               "running_version": "1.27.11"})
    }

    fn schedule(names: usize, num: u32, next: u32) -> Value {
        let names: Vec<String> = (0..names).map(|i| format!("w{i}")).collect();
        json!({"current_shuffled_witnesses": names, "num_scheduled_witnesses": num, "next_shuffle_block_num": next})
    }

    fn with(mut v: Value, key: &str, new: Value) -> Value {
        v[key] = new;
        v
    }

    /// Every parser of an answer, on the same `result` value: each must return, never panic.
    fn every_parser(v: &Value) {
        let _ = parse_global_properties(v.clone());
        let _ = parse_witness(v.clone());
        let _ = parse_accounts(v.clone(), "alice");
        let _ = parse_version(v.clone());
        let _ = parse_block_interval(v.clone());
        let _ = parse_witness_schedule(v.clone()).map(|s| s.check_near(1000));
    }

    fn nested(depth: usize) -> String {
        let mut s = String::with_capacity(2 * depth + 40);
        s.push_str(r#"{"jsonrpc":"2.0","id":1,"result":"#);
        s.push_str(&"[".repeat(depth));
        s.push_str(&"]".repeat(depth));
        s.push('}');
        s
    }

    #[test]
    fn real_answers_parse() {
        let d = parse_global_properties(dgp()).expect("dgp");
        assert_eq!((d.head_block_number, d.current_aslot), (99073119, Some(99324690)));
        let w = parse_witness(witness_json()).expect("witness").expect("a witness");
        assert_eq!((w.owner.as_str(), w.total_missed), ("gtg", 988));
        assert_eq!(parse_witness(Value::Null), Ok(None));
        let v = parse_version(
            json!({"blockchain_version": "1.27.11", "chain_id": "beeab0de".to_string() + &"0".repeat(56)}),
        )
        .expect("version");
        assert!(v.chain_id.starts_with("beeab0de"));
        assert_eq!(parse_block_interval(json!({"HIVE_BLOCK_INTERVAL": 3})), Ok(3));
        assert_eq!(parse_block_interval(json!({"STEEM_BLOCK_INTERVAL": 60})), Ok(60));
        let s = parse_witness_schedule(schedule(21, 21, 99073134)).expect("schedule");
        assert!(s.check_near(99073119).is_ok());
        let accounts = json!([{"name": "alice", "active": {"weight_threshold": 1, "key_auths": [["STM1", 1]]}}]);
        assert_eq!(parse_accounts(accounts, "alice").expect("accounts").map(|a| a.name), Some("alice".into()));
    }

    #[test]
    fn counters_and_block_numbers_must_fit_u32_as_on_chain() {
        let too_big = u64::from(u32::MAX) + 1;
        assert!(parse_witness(with(witness_json(), "total_missed", json!(too_big))).is_err());
        assert!(parse_witness(with(witness_json(), "total_missed", json!(-1))).is_err());
        assert!(parse_witness(with(witness_json(), "total_missed", json!("988"))).is_err());
        let max = parse_witness(with(witness_json(), "total_missed", json!(u32::MAX))).expect("u32::MAX is fine");
        assert_eq!(max.map(|w| w.total_missed), Some(u64::from(u32::MAX)));
        assert!(parse_global_properties(with(dgp(), "head_block_number", json!(too_big))).is_err());
        let lib_ahead = with(dgp(), "last_irreversible_block_num", json!(99073120));
        assert!(parse_global_properties(lib_ahead).unwrap_err().contains("ahead of head_block_number"));
    }

    #[test]
    fn ids_and_texts_are_checked() {
        assert!(parse_global_properties(with(dgp(), "head_block_id", json!("xyz"))).is_err());
        assert!(parse_global_properties(with(dgp(), "time", json!("9".repeat(100_000)))).is_err());
        assert!(parse_version(json!({"chain_id": "beeab0de"})).is_err());
        assert!(parse_version(json!({"chain_id": "z".repeat(64)})).is_err());
        let err = parse_version(json!({"chain_id": "a".repeat(1_000_000)})).unwrap_err();
        assert!(err.len() < 300, "the error does not quote a huge value: {} bytes", err.len());
        assert!(parse_witness(with(witness_json(), "owner", json!("a".repeat(17)))).is_err());
        assert!(parse_witness(with(witness_json(), "url", json!("u".repeat(2049)))).is_err());
        assert!(parse_witness(with(witness_json(), "signing_key", json!("S".repeat(101)))).is_err());
    }

    #[test]
    fn the_block_interval_must_be_1_to_60_seconds() {
        for bad in [json!(0), json!(61), json!(u64::MAX), json!(-3), json!(2.5), json!("3"), json!(null)] {
            let err = parse_block_interval(json!({ "HIVE_BLOCK_INTERVAL": bad })).unwrap_err();
            assert!(err.contains("1..=60"), "{err}");
        }
        assert!(parse_block_interval(json!({})).is_err());
        assert!(parse_block_interval(json!([])).is_err());
    }

    #[test]
    fn schedule_sizes_and_shuffle_block_are_bounded() {
        assert!(parse_witness_schedule(schedule(21, 21, 100)).is_ok());
        assert!(parse_witness_schedule(schedule(64, 64, 100)).is_ok());
        assert!(parse_witness_schedule(schedule(65, 21, 100)).unwrap_err().contains("at most 64"));
        assert!(parse_witness_schedule(schedule(21, 0, 100)).is_err());
        assert!(parse_witness_schedule(schedule(21, 22, 100)).is_err());
        assert!(parse_witness_schedule(schedule(21, u32::MAX, 100)).is_err());
        assert!(parse_witness_schedule(schedule(21, 21, 0)).is_err());
        let mut long_name = schedule(21, 21, 100);
        long_name["current_shuffled_witnesses"][3] = json!("n".repeat(10_000));
        assert!(parse_witness_schedule(long_name).is_err());
        let s = parse_witness_schedule(schedule(21, 21, 1_000_021)).expect("schedule");
        assert!(s.check_near(1_000_000).is_ok());
        assert!(s.check_near(1_000_021 - 128).is_ok());
        assert!(s.check_near(1_000_021 + 128).is_ok(), "a backend a few rounds behind is tolerated");
        assert!(s.check_near(1_000_021 - 129).is_err(), "a shuffle announced far ahead");
        assert!(s.check_near(1_000_021 + 129).is_err());
        let far = parse_witness_schedule(schedule(21, 21, u32::MAX)).expect("schedule");
        assert!(far.check_near(1_000_000).unwrap_err().contains("more than 128 blocks"));
    }

    #[test]
    fn deeply_nested_json_is_an_error_not_a_crash() {
        // serde_json's recursion limit (128) is kept: deeper is "not JSON", whatever the depth.
        for depth in [129, 1_000, 100_000, 1_000_000] {
            let err = parse_envelope("e", "m", nested(depth).as_bytes()).unwrap_err();
            assert!(matches!(err, RpcError::Garbage { .. }), "{err}");
            assert!(err.to_string().contains("recursion limit"), "{err}");
        }
        // Within the limit it parses, and every parser refuses the shape without panicking.
        let v = parse_envelope("e", "m", nested(120).as_bytes()).expect("120 levels");
        every_parser(&v);
        assert!(parse_global_properties(v).is_err());
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            "[a-zA-Z0-9_ .:-]{0,48}".prop_map(Value::from),
        ];
        // Keys the parsers look for, so the fuzzing reaches past "missing field".
        let key = prop_oneof![
            Just("head_block_number"),
            Just("head_block_id"),
            Just("time"),
            Just("last_irreversible_block_num"),
            Just("current_aslot"),
            Just("owner"),
            Just("url"),
            Just("total_missed"),
            Just("signing_key"),
            Just("props"),
            Just("chain_id"),
            Just("name"),
            Just("active"),
            Just("weight_threshold"),
            Just("key_auths"),
            Just("HIVE_BLOCK_INTERVAL"),
            Just("STEEM_BLOCK_INTERVAL"),
            Just("current_shuffled_witnesses"),
            Just("num_scheduled_witnesses"),
            Just("next_shuffle_block_num"),
            Just("result"),
            Just("error"),
            Just("x"),
        ]
        .prop_map(str::to_string);
        leaf.prop_recursive(6, 64, 8, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map(key.clone(), inner, 0..10)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A well-formed answer with some fields replaced by arbitrary values.
    fn mutated(base: Value) -> impl Strategy<Value = Value> {
        prop::collection::vec((any::<prop::sample::Index>(), arb_json()), 0..4).prop_map(move |edits| {
            let mut v = base.clone();
            if let Value::Object(m) = &mut v {
                let keys: Vec<String> = m.keys().cloned().collect();
                for (i, new) in edits {
                    m.insert(i.get(&keys).clone(), new);
                }
            }
            v
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_panic_any_parser(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(v) = parse_envelope("e", "m", &bytes) {
                every_parser(&v);
            }
            if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                every_parser(&v);
            }
        }

        #[test]
        fn arbitrary_json_never_panics_any_parser(v in arb_json()) {
            every_parser(&v);
            let body = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 1, "result": v})).expect("encode");
            let result = parse_envelope("e", "m", &body).expect("a result envelope");
            every_parser(&result);
        }

        #[test]
        fn mutated_real_answers_never_panic(
            d in mutated(dgp()),
            w in mutated(witness_json()),
            s in mutated(schedule(21, 21, 1000)),
        ) {
            every_parser(&d);
            every_parser(&w);
            every_parser(&s);
        }

        #[test]
        fn nesting_at_any_depth_never_panics(depth in 0usize..5_000, open in prop::sample::select(vec!["[", "{\"a\":"])) {
            let text = format!("{{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}1", open.repeat(depth));
            if let Ok(v) = parse_envelope("e", "m", text.as_bytes()) {
                every_parser(&v);
            }
            let closed = format!("{}1{}", open.repeat(depth), if open == "[" { "]" } else { "}" }.repeat(depth));
            if let Ok(v) = serde_json::from_str::<Value>(&closed) {
                every_parser(&v);
            }
        }
    }
}
