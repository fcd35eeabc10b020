//! JSON-RPC over HTTP for the simulated node: the methods and payload shapes of protocol.md §5.
//!
//! Each endpoint is an axum server on 127.0.0.1 (ephemeral port) reading the one shared [`Chain`]. The wire
//! shapes are written here from the specification, not borrowed from the trap's `rpc` types, so a mistake in
//! `rpc` shows up as a test failure instead of being mirrored. Errors come back as HTTP 200 with the `error`
//! object of §5.9; an unknown method gets -32601 as from hived's `json_rpc_plugin`. Fault switches (stale head,
//! 503, hang, garbage, lying counter, wrong chain id) are applied per endpoint before or after dispatch.
//! Which checks a broadcast must pass is `validate.rs`'s business; applying it is `chain.rs`'s.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Map, Value};
use tokio::task::JoinHandle;

use super::chain::{Chain, SimEvent, TxStatus, Witness};
use super::fc_error::{code, FcError, RpcFailure};
use super::proto::{self, ChainSpec};
use super::text::{asset_text, parse_time_text, symbols, time_text};
use super::validate;
use super::{ActiveFault as Fault, Lie, Shared};

/// How long a hanging endpoint waits before answering: longer than any client timeout the trap uses.
pub const HANG: Duration = Duration::from_secs(30);

/// What a garbage endpoint answers with status 200: JSON cut off mid-object.
const GARBAGE: &str = "{\"jsonrpc\":\"2.0\",\"result\":{\"head_block_number\":12,\"head_bl";

/// `blockchain_version` reported per family: the node versions protocol.md was checked against.
const HIVE_VERSION: &str = "1.28.7";
const STEEM_VERSION: &str = "0.23.1";

/// Start endpoint `idx` on `port` of 127.0.0.1 (0: an ephemeral one); returns its URL and the server task.
pub(crate) async fn spawn(shared: Arc<Shared>, idx: usize, port: u16) -> std::io::Result<(String, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let stop = shared.shutdown.clone();
    let app = Router::new().route("/", post(handle)).with_state((shared, idx));
    let task = tokio::spawn(async move {
        // serve returns only on a listener error; the endpoint then stops answering, like a dead node.
        let _ = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
    });
    Ok((format!("http://{addr}"), task))
}

type Ctx = (Arc<Shared>, usize);

fn json_response(body: &Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn handle(State((shared, idx)): State<Ctx>, body: Bytes) -> Response {
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let endpoint = &shared.endpoints[idx];

    // Count what arrived before any fault: the benchmark reports the calls the trap makes, answered or not.
    match &parsed {
        Ok(Value::Array(items)) => items.iter().for_each(|r| endpoint.count_call(method_of(r))),
        Ok(r) => endpoint.count_call(method_of(r)),
        Err(_) => endpoint.count_call("<unparsable>"),
    }

    let fault = endpoint.fault();
    match &fault {
        Fault::Http503 => {
            return (StatusCode::SERVICE_UNAVAILABLE, "503 Service Temporarily Unavailable").into_response();
        }
        Fault::Hang => {
            tokio::select! {
                _ = tokio::time::sleep(HANG) => {}
                _ = shared.shutdown.cancelled() => {}
            }
            return (StatusCode::GATEWAY_TIMEOUT, "504 Gateway Time-out").into_response();
        }
        Fault::GarbageJson => {
            return ([(header::CONTENT_TYPE, "application/json")], GARBAGE).into_response();
        }
        _ => {}
    }

    let request = match parsed {
        Ok(v) => v,
        Err(e) => {
            let err = RpcFailure::plain(code::PARSE_ERROR, format!("Parse Error:{e}"));
            return json_response(&json!({"jsonrpc": "2.0", "error": err.to_json(), "id": null}));
        }
    };
    match request {
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(handle_one(&shared, idx, &fault, item).await);
            }
            json_response(&Value::Array(out))
        }
        single => json_response(&handle_one(&shared, idx, &fault, single).await),
    }
}

fn method_of(request: &Value) -> &str {
    match request.get("method").and_then(Value::as_str) {
        // The old `call` form names the API and method in params (§5.1).
        Some("call") => "call",
        Some(m) => m,
        None => "<none>",
    }
}

/// One JSON-RPC request → one response object.
async fn handle_one(shared: &Arc<Shared>, idx: usize, fault: &Fault, request: Value) -> Value {
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let result = match envelope(&request) {
        Ok((method, params)) => dispatch(shared, idx, fault, &method, params).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(result) => json!({"jsonrpc": "2.0", "result": result, "id": id}),
        Err(e) => json!({"jsonrpc": "2.0", "error": e.to_json(), "id": id}),
    }
}

/// (method, params) from the envelope, the `call` form rewritten to `api.method` (§5.1).
fn envelope(request: &Value) -> Result<(String, Value), RpcFailure> {
    let obj = request.as_object().ok_or_else(|| RpcFailure::plain(code::INVALID_REQUEST, "Invalid Request"))?;
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(RpcFailure::plain(code::INVALID_REQUEST, "jsonrpc value is not \"2.0\""));
    }
    let method = obj
        .get("method")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcFailure::plain(code::INVALID_REQUEST, "A member \"method\" does not exist"))?;
    let params = obj.get("params").cloned().unwrap_or(Value::Null);
    if method == "call" {
        let p = params.as_array().filter(|p| p.len() >= 2);
        let (api, m) = match p.map(|p| (p[0].as_str(), p[1].as_str())) {
            Some((Some(api), Some(m))) => (api, m),
            _ => return Err(RpcFailure::plain(code::INVALID_PARAMS, "Invalid parameters")),
        };
        let inner = p.and_then(|p| p.get(2)).cloned().unwrap_or(Value::Array(vec![]));
        return Ok((format!("{api}.{m}"), inner));
    }
    Ok((method.to_string(), params))
}

/// The methods this node serves; anything else is "method not found".
const METHODS: &[&str] = &[
    "condenser_api.get_dynamic_global_properties",
    "condenser_api.get_witness_by_account",
    "condenser_api.get_accounts",
    "condenser_api.get_version",
    "condenser_api.get_config",
    "condenser_api.get_witness_schedule",
    "condenser_api.get_block_header",
    "condenser_api.get_block",
    "condenser_api.broadcast_transaction",
    "condenser_api.broadcast_transaction_synchronous",
    "database_api.get_version",
    "transaction_status_api.find_transaction",
];

fn not_found(method: &str) -> RpcFailure {
    let (api, name) = method.split_once('.').unwrap_or((method, ""));
    let known_api = METHODS.iter().any(|m| m.split_once('.').is_some_and(|(a, _)| a == api));
    let message = if known_api {
        format!("Assert Exception:method_itr != api_itr->second.end(): Could not find method {name}")
    } else {
        format!("Assert Exception:api_itr != _registered_apis.end(): Could not find API {api}")
    };
    RpcFailure::plain(code::METHOD_NOT_FOUND, message)
}

/// condenser_api arguments: a positional array of exactly `n` items (hived `CHECK_ARG_SIZE`).
fn positional(params: &Value, n: usize) -> Result<&[Value], FcError> {
    let args = match params {
        Value::Array(a) => a.as_slice(),
        Value::Null if n == 0 => &[],
        _ => {
            return Err(FcError::new(code::INVALID_PARAMS, 7, "bad_cast_exception", "Bad Cast").log(
                "Invalid cast from ${type} to Array",
                json!({"type": type_name(params)}),
                "as_array",
            ))
        }
    };
    if args.len() != n {
        return Err(FcError::new(code::ERROR_DURING_CALL, 10, "assert_exception", "Assert Exception").log(
            format!("args.args->size() == {n}: Expected #{n} argument(s), was ${{n}}"),
            json!({"n": args.len()}),
            "condenser_api_call",
        ));
    }
    Ok(args)
}

/// The one positional block number of `get_block_header` / `get_block`.
fn block_num_arg(params: &Value) -> Result<u32, FcError> {
    let args = positional(params, 1)?;
    args[0].as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| bad_param("uint32", &args[0]))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn bad_param(what: &str, v: &Value) -> FcError {
    FcError::new(code::INVALID_PARAMS, 7, "bad_cast_exception", "Bad Cast").log(
        format!("Invalid cast from ${{type}} to {what}"),
        json!({"type": type_name(v)}),
        "variant_cast",
    )
}

async fn dispatch(
    shared: &Arc<Shared>,
    idx: usize,
    fault: &Fault,
    method: &str,
    params: Value,
) -> Result<Value, RpcFailure> {
    if !METHODS.contains(&method) {
        return Err(not_found(method));
    }
    // transaction_status_api exists only on Hive (§5.7).
    if method.starts_with("transaction_status_api.") && !proto::is_hive(&shared.spec) {
        return Err(not_found(method));
    }
    match method {
        "condenser_api.broadcast_transaction" | "condenser_api.broadcast_transaction_synchronous" => {
            let sync = method.ends_with("_synchronous");
            broadcast(shared, idx, fault, &params, sync).await
        }
        _ => {
            // Reads are synchronous against one consistent view: the live chain, or the frozen copy of a
            // stale endpoint.
            let result = match fault {
                Fault::StaleHead(frozen) => read(shared, frozen, method, &params),
                _ => {
                    let chain = shared.caught_up();
                    read(shared, &chain, method, &params)
                }
            };
            result.map(|v| lie(fault, method, v)).map_err(|e| e.into_failure(&shared.now_text()))
        }
    }
}

/// Apply the reading faults that alter a correct answer.
fn lie(fault: &Fault, method: &str, mut v: Value) -> Value {
    match (fault, method) {
        (Fault::LyingMissed(lie), "condenser_api.get_witness_by_account") => {
            if let Some(tm) = v.get("total_missed").and_then(Value::as_u64) {
                let told = match lie {
                    Lie::Fixed(n) => u64::from(*n),
                    Lie::Add(n) => tm + u64::from(*n),
                };
                v["total_missed"] = json!(told);
            }
            v
        }
        (Fault::WrongChainId(id), "condenser_api.get_version" | "database_api.get_version") => {
            v["chain_id"] = json!(hex::encode(id));
            v
        }
        (Fault::WrongChainId(id), "condenser_api.get_config") => {
            if let Some(obj) = v.as_object_mut() {
                for (k, val) in obj.iter_mut() {
                    if k.ends_with("_CHAIN_ID") {
                        *val = json!(hex::encode(id));
                    }
                }
            }
            v
        }
        _ => v,
    }
}

fn read(shared: &Shared, chain: &Chain, method: &str, params: &Value) -> Result<Value, FcError> {
    let spec = &shared.spec;
    match method {
        "condenser_api.get_dynamic_global_properties" => {
            positional(params, 0)?;
            Ok(dynamic_global_properties(spec, chain))
        }
        "condenser_api.get_witness_by_account" => {
            let args = positional(params, 1)?;
            let name = args[0].as_str().ok_or_else(|| bad_param("string", &args[0]))?;
            Ok(chain.witness(name).map(|w| witness_json(spec, chain, w)).unwrap_or(Value::Null))
        }
        "condenser_api.get_accounts" => {
            let args = positional(params, 1)?;
            let names = args[0].as_array().ok_or_else(|| bad_param("Array", &args[0]))?;
            let mut out = Vec::new();
            for n in names {
                let n = n.as_str().ok_or_else(|| bad_param("string", n))?;
                if let Some(a) = chain.account(n) {
                    out.push(account_json(spec, chain, a));
                }
            }
            Ok(Value::Array(out))
        }
        "condenser_api.get_version" => {
            positional(params, 0)?;
            Ok(version_json(spec))
        }
        "database_api.get_version" => {
            if !(params.is_object() || params.is_null()) {
                return Err(bad_param("Object", params));
            }
            Ok(version_json(spec))
        }
        "condenser_api.get_config" => {
            positional(params, 0)?;
            Ok(config_json(spec, chain, shared.limits.max_expiration_secs))
        }
        "condenser_api.get_witness_schedule" => {
            positional(params, 0)?;
            Ok(schedule_json(spec, chain))
        }
        "condenser_api.get_block_header" => {
            let n = block_num_arg(params)?;
            Ok(chain
                .block(n)
                .map(|b| {
                    json!({"previous": hex::encode(b.previous), "timestamp": time_text(b.time), "witness": b.witness,
                           "transaction_merkle_root": "0000000000000000000000000000000000000000", "extensions": []})
                })
                .unwrap_or(Value::Null))
        }
        // The legacy block: its header fields plus `block_id` and `transaction_ids` (the trap finds its swap
        // in a block this way on Steem, which has no transaction_status_api). Transactions are left out.
        "condenser_api.get_block" => {
            let n = block_num_arg(params)?;
            Ok(chain
                .block(n)
                .map(|b| {
                    let ids: Vec<String> = b.txids.iter().map(hex::encode).collect();
                    json!({"previous": hex::encode(b.previous), "timestamp": time_text(b.time), "witness": b.witness,
                           "transaction_merkle_root": "0000000000000000000000000000000000000000", "extensions": [],
                           "block_id": hex::encode(b.id), "transactions": [], "transaction_ids": ids})
                })
                .unwrap_or(Value::Null))
        }
        "transaction_status_api.find_transaction" => {
            let obj = params.as_object().ok_or_else(|| bad_param("Object", params))?;
            let txid = obj
                .get("transaction_id")
                .and_then(Value::as_str)
                .and_then(|s| hex::decode(s).ok())
                .and_then(|b| <[u8; 20]>::try_from(b).ok())
                .ok_or_else(|| bad_param("transaction_id_type", obj.get("transaction_id").unwrap_or(&Value::Null)))?;
            let expiration = match obj.get("expiration") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => {
                    Some(parse_time_text(s).ok_or_else(|| bad_param("time_point_sec", &json!(s)))?)
                }
                Some(v) => return Err(bad_param("time_point_sec", v)),
            };
            let status = chain.tx_status(&txid, expiration);
            let mut out = json!({"status": status.as_str()});
            if let TxStatus::WithinReversibleBlock(n) | TxStatus::WithinIrreversibleBlock(n) = status {
                out["block_num"] = json!(n);
            }
            Ok(out)
        }
        _ => Err(FcError::new(code::SERVER_ERROR, 0, "exception", "unspecified").log(
            "unhandled method ${m}",
            json!({"m": method}),
            "dispatch",
        )),
    }
}

fn dynamic_global_properties(spec: &ChainSpec, chain: &Chain) -> Value {
    let head = chain.head();
    let (core, debt) = symbols(spec);
    let d = if proto::is_hive(spec) { "hbd" } else { "sbd" };
    let c = if proto::is_hive(spec) { "hive" } else { "steem" };
    let mut o = Map::new();
    o.insert("id".into(), json!(0));
    o.insert("head_block_number".into(), json!(head.num));
    o.insert("head_block_id".into(), json!(hex::encode(head.id)));
    o.insert("time".into(), json!(time_text(head.time)));
    o.insert("current_witness".into(), json!(head.witness));
    o.insert("total_pow".into(), json!(514415));
    o.insert("num_pow_witnesses".into(), json!(172));
    o.insert("virtual_supply".into(), json!(asset_text(495_000_000_000, core)));
    o.insert("current_supply".into(), json!(asset_text(480_000_000_000, core)));
    o.insert(format!("current_{d}_supply"), json!(asset_text(30_000_000_000, debt)));
    o.insert(format!("total_vesting_fund_{c}"), json!(asset_text(180_000_000_000, core)));
    o.insert("total_vesting_shares".into(), json!("300000000000.000000 VESTS"));
    o.insert(format!("{d}_interest_rate"), json!(1500));
    o.insert(format!("{d}_print_rate"), json!(10000));
    o.insert("maximum_block_size".into(), json!(65536));
    o.insert("current_aslot".into(), json!(head.aslot));
    o.insert("recent_slots_filled".into(), json!(chain.recent_slots_filled().to_string()));
    o.insert("participation_count".into(), json!(chain.participation_count()));
    o.insert("last_irreversible_block_num".into(), json!(chain.last_irreversible_block_num()));
    o.insert("vote_power_reserve_rate".into(), json!(10));
    o.insert("delegation_return_period".into(), json!(432000));
    o.insert("reverse_auction_seconds".into(), json!(0));
    o.insert("available_account_subsidies".into(), json!(26000000));
    o.insert("next_maintenance_time".into(), json!(time_text(head.time + 3600 - head.time % 3600)));
    o.insert("content_reward_percent".into(), json!(6500));
    o.insert("vesting_reward_percent".into(), json!(1500));
    Value::Object(o)
}

fn witness_json(spec: &ChainSpec, chain: &Chain, w: &Witness) -> Value {
    let (core, debt) = symbols(spec);
    let d = if proto::is_hive(spec) { "hbd" } else { "sbd" };
    let prefix = proto::prefix(spec);
    let mut props = Map::new();
    props.insert("account_creation_fee".into(), json!(asset_text(w.props.account_creation_fee, core)));
    props.insert("maximum_block_size".into(), json!(w.props.maximum_block_size));
    props.insert(format!("{d}_interest_rate"), json!(w.props.interest_rate));
    props.insert("account_subsidy_budget".into(), json!(797));
    props.insert("account_subsidy_decay".into(), json!(347321));
    let version = if proto::is_hive(spec) { HIVE_VERSION } else { STEEM_VERSION };
    let mut o = Map::new();
    o.insert("id".into(), json!(w.id));
    o.insert("owner".into(), json!(w.owner));
    o.insert("created".into(), json!(time_text(w.created)));
    o.insert("url".into(), json!(w.url));
    // 128-bit values are strings in JSON (§5.2).
    o.insert("votes".into(), json!(w.votes.to_string()));
    o.insert("virtual_last_update".into(), json!("990761417362868601418459905"));
    o.insert("virtual_position".into(), json!("0"));
    o.insert("virtual_scheduled_time".into(), json!("990761842934669614988380162"));
    o.insert("total_missed".into(), json!(w.total_missed));
    o.insert("last_aslot".into(), json!(w.last_aslot));
    o.insert("last_confirmed_block_num".into(), json!(w.last_confirmed_block_num));
    o.insert("pow_worker".into(), json!(0));
    o.insert("signing_key".into(), json!(w.signing_key.to_text(prefix)));
    o.insert("props".into(), Value::Object(props));
    o.insert(format!("{d}_exchange_rate"), json!({"base": asset_text(207, debt), "quote": asset_text(1000, core)}));
    o.insert(format!("last_{d}_exchange_update"), json!(time_text(chain.head().time.saturating_sub(1800))));
    o.insert("last_work".into(), json!("0000000000000000000000000000000000000000000000000000000000000000"));
    o.insert("running_version".into(), json!(version));
    o.insert("hardfork_version_vote".into(), json!(version.rsplit_once('.').map(|(a, _)| format!("{a}.0"))));
    o.insert("hardfork_time_vote".into(), json!("2025-11-19T13:00:00"));
    o.insert("available_witness_account_subsidies".into(), json!(2452201));
    Value::Object(o)
}

fn authority_json(key: &str) -> Value {
    json!({"weight_threshold": 1, "account_auths": [], "key_auths": [[key, 1]]})
}

fn account_json(spec: &ChainSpec, chain: &Chain, a: &super::chain::Account) -> Value {
    let (core, debt) = symbols(spec);
    let d = if proto::is_hive(spec) { "hbd" } else { "sbd" };
    let prefix = proto::prefix(spec);
    let created = chain.witness(&a.name).map(|w| w.created).unwrap_or(0);
    let mut o = Map::new();
    o.insert("id".into(), json!(a.id));
    o.insert("name".into(), json!(a.name));
    o.insert("owner".into(), authority_json(&a.owner.to_text(prefix)));
    o.insert("active".into(), authority_json(&a.active.to_text(prefix)));
    o.insert("posting".into(), authority_json(&a.posting.to_text(prefix)));
    o.insert("memo_key".into(), json!(a.memo.to_text(prefix)));
    o.insert("json_metadata".into(), json!(""));
    o.insert("proxy".into(), json!(""));
    o.insert("created".into(), json!(time_text(created)));
    o.insert("recovery_account".into(), json!(if proto::is_hive(spec) { "hive" } else { "steem" }));
    o.insert("balance".into(), json!(asset_text(1_234_567, core)));
    o.insert("savings_balance".into(), json!(asset_text(0, core)));
    o.insert(format!("{d}_balance"), json!(asset_text(10_000, debt)));
    o.insert("vesting_shares".into(), json!("2000000.000000 VESTS"));
    o.insert("witnesses_voted_for".into(), json!(0));
    o.insert("witness_votes".into(), json!([]));
    o.insert("can_vote".into(), json!(true));
    Value::Object(o)
}

fn version_json(spec: &ChainSpec) -> Value {
    let chain_id = hex::encode(spec.chain_id);
    if proto::is_hive(spec) {
        json!({"blockchain_version": HIVE_VERSION, "hive_revision": "1584099c0000000000000000000000000000000",
               "fc_revision": "2c3551a70000000000000000000000000000000", "chain_id": chain_id,
               "node_type": if proto::is_testnet(spec) { "testnet" } else { "mainnet" }})
    } else {
        json!({"blockchain_version": STEEM_VERSION, "steem_revision": "0e27a9c80000000000000000000000000000000",
               "fc_revision": "ee3347b5c000000000000000000000000000000", "chain_id": chain_id})
    }
}

fn config_json(spec: &ChainSpec, chain: &Chain, max_expiration: u32) -> Value {
    let p = if proto::is_hive(spec) { "HIVE" } else { "STEEM" };
    let interval = chain.block_interval();
    let version = if proto::is_hive(spec) { HIVE_VERSION } else { STEEM_VERSION };
    let mut o = BTreeMap::new();
    o.insert("IS_TEST_NET".to_string(), json!(proto::is_testnet(spec)));
    o.insert(format!("{p}_BLOCK_INTERVAL"), json!(interval));
    o.insert(format!("{p}_BLOCKS_PER_DAY"), json!(86_400 / interval.max(1)));
    o.insert(format!("{p}_CHAIN_ID"), json!(hex::encode(spec.chain_id)));
    o.insert(format!("{p}_ADDRESS_PREFIX"), json!(proto::prefix(spec)));
    o.insert(format!("{p}_BLOCKCHAIN_VERSION"), json!(version));
    o.insert(format!("{p}_MAX_WITNESSES"), json!(21));
    o.insert(format!("{p}_MAX_VOTED_WITNESSES_HF17"), json!(20));
    o.insert(format!("{p}_MAX_RUNNER_WITNESSES_HF17"), json!(1));
    o.insert(format!("{p}_HARDFORK_REQUIRED_WITNESSES"), json!(17));
    o.insert(format!("{p}_MAX_TIME_UNTIL_EXPIRATION"), json!(max_expiration));
    o.insert(format!("{p}_100_PERCENT"), json!(10000));
    json!(o)
}

fn schedule_json(spec: &ChainSpec, chain: &Chain) -> Value {
    let (core, _) = symbols(spec);
    let d = if proto::is_hive(spec) { "hbd" } else { "sbd" };
    let version = if proto::is_hive(spec) { HIVE_VERSION } else { STEEM_VERSION };
    let mut median = Map::new();
    median.insert("account_creation_fee".into(), json!(asset_text(3000, core)));
    median.insert("maximum_block_size".into(), json!(65536));
    median.insert(format!("{d}_interest_rate"), json!(1500));
    median.insert("account_subsidy_budget".into(), json!(797));
    median.insert("account_subsidy_decay".into(), json!(347321));
    json!({
        "id": 0,
        "current_virtual_time": "990761842934669614988380162",
        "next_shuffle_block_num": chain.next_shuffle_block_num(),
        "current_shuffled_witnesses": chain.schedule(),
        "num_scheduled_witnesses": chain.schedule().len(),
        "elected_weight": 1,
        "timeshare_weight": 5,
        "miner_weight": 1,
        "witness_pay_normalization_factor": 25,
        "median_props": median,
        "majority_version": version,
        "max_voted_witnesses": 20,
        "max_miner_witnesses": 0,
        "max_runner_witnesses": 1,
        "hardfork_required_witnesses": 17,
    })
}

async fn broadcast(
    shared: &Arc<Shared>,
    idx: usize,
    fault: &Fault,
    params: &Value,
    sync: bool,
) -> Result<Value, RpcFailure> {
    shared.endpoints[idx].count_broadcast();
    let now_text = shared.now_text();
    let args = positional(params, 1).map_err(|e| e.into_failure(&now_text))?;
    let tx_json = &args[0];

    // A stale endpoint checks against its frozen state and never relays: the trap must confirm inclusion
    // elsewhere, as with a stuck real node.
    if let Fault::StaleHead(frozen) = fault {
        let checked = validate::check_transaction(&shared.spec, frozen, tx_json, &shared.limits)
            .map_err(|e| e.to_fc(&shared.spec).into_failure(&time_text(frozen.head().time)))?;
        return Ok(if sync {
            json!({"id": hex::encode(checked.txid), "block_num": 0, "trx_num": 0, "expired": true})
        } else {
            json!({})
        });
    }

    let (txid, expiration, after_seq) = {
        let mut chain = shared.lock();
        let checked = validate::check_transaction(&shared.spec, &chain, tx_json, &shared.limits)
            .map_err(|e| e.to_fc(&shared.spec).into_failure(&time_text(chain.head().time)))?;
        let (txid, exp) = (checked.txid, checked.expiration);
        chain.push_pending(checked);
        let head_time = chain.head().time;
        let rec = chain.record(head_time, SimEvent::TxAccepted { txid, endpoint: idx, expiration: exp });
        shared.publish(vec![rec.clone()]);
        (txid, exp, rec.seq)
    };
    if !sync {
        return Ok(json!({}));
    }
    // broadcast_transaction_synchronous: answer when the transaction is in a block or can no longer be.
    let outcome = shared
        .wait_for(after_seq, None, |e| match e {
            SimEvent::TxIncluded { txid: t, .. } | SimEvent::TxDropped { txid: t, .. } => *t == txid,
            SimEvent::BlockProduced { time, .. } => *time >= u64::from(expiration),
            _ => false,
        })
        .await;
    Ok(match outcome.map(|r| r.event) {
        Some(SimEvent::TxIncluded { block_num, trx_num, .. }) => {
            json!({"id": hex::encode(txid), "block_num": block_num, "trx_num": trx_num, "expired": false})
        }
        _ => json!({"id": hex::encode(txid), "block_num": 0, "trx_num": 0, "expired": true}),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_forms() {
        let (m, p) = envelope(&json!({"jsonrpc": "2.0", "method": "call", "id": 1,
            "params": ["condenser_api", "get_witness_by_account", ["alice"]]}))
        .unwrap();
        assert_eq!((m.as_str(), p), ("condenser_api.get_witness_by_account", json!(["alice"])));
        assert_eq!(envelope(&json!({"method": "x"})).unwrap_err().code, code::INVALID_REQUEST);
        assert_eq!(not_found("condenser_api.get_nothing").code, code::METHOD_NOT_FOUND);
        assert!(not_found("foo_api.bar").message.contains("Could not find API foo_api"));
    }
}
