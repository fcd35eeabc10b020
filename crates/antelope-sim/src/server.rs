//! nodeos's chain API over HTTP for the simulated chain: `POST /v1/chain/<name>` with a JSON body (GET with no
//! body works too, as with spring's Beast session), in the shapes of antelope-protocol.md §6 and
//! antelope-chain.md §1.3.
//!
//! Each endpoint is an axum server on 127.0.0.1 reading the one shared [`Chain`] through the [`View`] its fault
//! gives it. The JSON is written here from the specification, not borrowed from the trap, so a mistake on either
//! side shows up as a test failure. Errors use `fc_error.rs`; push checks are `validate.rs`'s; applying an
//! accepted transaction is `chain.rs`'s (in the next block).

use std::sync::Arc;
use std::time::Duration;

use antelope_protocol::name::Name;
use antelope_protocol::transaction::Tapos;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::chain::{Account, BlockRecord, Chain, ProducerRow, ProducerSchedule, SigningAuthority, SimEvent};
use crate::fc_error::{unknown_endpoint, FcError};
use crate::text::{key_text, opt_key_text, time_text, votes_text};
use crate::validate;
use crate::view::View;
use crate::{ActiveFault as Fault, Shared};

/// How long a hanging endpoint waits before answering: longer than any client timeout the trap uses.
pub const HANG: Duration = Duration::from_secs(30);

/// What a garbage endpoint answers with status 200: JSON cut off mid-object.
const GARBAGE: &str = "{\"server_version\":\"d133c641\",\"chain_id\":\"aca376f206b8fc25a6ed44dbdc66";

/// Start endpoint `idx` on `port` of 127.0.0.1 (0: an ephemeral one); returns its URL and the server task.
pub(crate) async fn spawn(shared: Arc<Shared>, idx: usize, port: u16) -> std::io::Result<(String, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let stop = shared.shutdown.clone();
    let app = Router::new()
        .route("/v1/chain/{method}", get(handle).post(handle))
        .fallback(|| async { unknown_endpoint() })
        .with_state((shared, idx));
    let task = tokio::spawn(async move {
        // serve returns only on a listener error; the endpoint then stops answering, like a dead node.
        let _ = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
    });
    Ok((format!("http://{addr}"), task))
}

type Ctx = (Arc<Shared>, usize);

fn json_reply(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

const METHODS: &[&str] = &[
    "get_info",
    "get_block_info",
    "get_producer_schedule",
    "get_table_rows",
    "get_producers",
    "get_account",
    "send_transaction2",
    "send_transaction",
    "push_transaction",
];

async fn handle(State((shared, idx)): State<Ctx>, Path(method): Path<String>, body: Bytes) -> Response {
    let endpoint = &shared.endpoints[idx];
    // Count what arrived before any fault: the benchmark reports the calls the trap makes, answered or not.
    endpoint.count_call(&method);
    if !METHODS.contains(&method.as_str()) {
        return unknown_endpoint();
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
    let params: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return FcError::invalid_request(format!("Unable to parse valid input from POST body: {e}"))
                    .into_response()
            }
        }
    };
    let result = match method.as_str() {
        "send_transaction2" => match params.get("transaction") {
            Some(inner) => push(&shared, idx, &fault, inner),
            None => {
                endpoint.count_received();
                Err(FcError::invalid_request("Missing value for transaction"))
            }
        },
        "send_transaction" | "push_transaction" => push(&shared, idx, &fault, &params),
        m => read_with_fault(&shared, &fault, m, &params).map(|v| (StatusCode::OK, v)),
    };
    match result {
        Ok((status, v)) => json_reply(status, &v),
        Err(e) => e.into_response(),
    }
}

fn read_with_fault(shared: &Shared, fault: &Fault, method: &str, params: &Value) -> Result<Value, FcError> {
    let mut v = match fault {
        Fault::StaleHead(frozen) => read(shared, View::Live(frozen), method, params),
        Fault::Lagging(n) => {
            let chain = shared.caught_up();
            read(shared, View::Lagging(&chain, *n), method, params)
        }
        Fault::Fork(state) => {
            let chain = shared.caught_up();
            let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
            st.catch_up(&chain);
            read(shared, View::Fork(&chain, &st), method, params)
        }
        _ => {
            let chain = shared.caught_up();
            read(shared, View::Live(&chain), method, params)
        }
    }?;
    if let (Fault::WrongChainId(id), "get_info") = (fault, method) {
        v["chain_id"] = json!(hex::encode(id));
    }
    Ok(v)
}

fn read(shared: &Shared, view: View<'_>, method: &str, params: &Value) -> Result<Value, FcError> {
    let k1 = shared.info.k1;
    let chain = view.chain();
    match method {
        "get_info" => Ok(info_json(shared, &view)),
        "get_block_info" => {
            let num = match params.get("block_num") {
                Some(Value::Number(n)) => n.as_u64(),
                Some(Value::String(s)) => s.parse::<u64>().ok(),
                _ => return Err(FcError::invalid_request("Missing value for block_num")),
            };
            let num = num
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| FcError::invalid_request("block_num must be a uint32"))?;
            let b = view.block(num).ok_or_else(|| FcError::unknown_block(num))?;
            Ok(block_info_json(b))
        }
        "get_producer_schedule" => Ok(json!({
            "active": schedule_json(chain.active_schedule(), k1),
            "pending": chain.pending_schedule().map(|p| schedule_json(&p.schedule, k1)),
            // Savanna: always empty (antelope-chain.md §1.3).
            "proposed": Value::Null,
        })),
        "get_table_rows" => table_rows(chain, params, k1),
        "get_producers" => {
            let limit = params.get("limit").and_then(Value::as_u64).unwrap_or(50) as usize;
            let mut rows: Vec<&ProducerRow> = chain.producer_rows().collect();
            rows.sort_by_key(|r| std::cmp::Reverse(r.total_votes));
            let total: u128 = rows.iter().map(|r| r.total_votes).sum();
            let more = rows.len() > limit;
            Ok(json!({
                "rows": rows.iter().take(limit).map(|r| producer_json(r, k1)).collect::<Vec<_>>(),
                "total_producer_vote_weight": votes_text(total),
                "more": if more { rows.get(limit).map(|r| r.owner.to_string()).unwrap_or_default() } else { String::new() },
            }))
        }
        "get_account" => {
            let text = params
                .get("account_name")
                .and_then(Value::as_str)
                .ok_or_else(|| FcError::invalid_request("Missing value for account_name"))?;
            let acct =
                Name::new(text).ok().and_then(|n| chain.account(n)).ok_or_else(|| FcError::unknown_account(text))?;
            Ok(account_json(shared, &view, acct))
        }
        _ => Err(FcError::invalid_request(format!("unknown method {method}"))),
    }
}

fn hex_id(id: &[u8; 32]) -> String {
    hex::encode(id)
}

fn info_json(shared: &Shared, view: &View<'_>) -> Value {
    let head = view.head();
    let lib = view.lib();
    json!({
        "server_version": "d133c641",
        "chain_id": shared.info.chain_id.to_hex(),
        "head_block_num": head.num,
        "last_irreversible_block_num": lib.num,
        "last_irreversible_block_id": hex_id(&lib.id),
        "head_block_id": hex_id(&head.id),
        "head_block_time": time_text(head.time_ms),
        "head_block_producer": head.producer.to_string(),
        "virtual_block_cpu_limit": 200_000_000,
        "virtual_block_net_limit": 1_048_576_000,
        "block_cpu_limit": 200_000,
        "block_net_limit": 1_048_576,
        "server_version_string": shared.info.server_version,
        "fork_db_head_block_num": head.num,
        "fork_db_head_block_id": hex_id(&head.id),
        "server_full_version_string": format!("{}-d133c6413ce8ce2e96096a0513ec25b4a8dbe837", shared.info.server_version),
        "total_cpu_weight": "381813365839082",
        "total_net_weight": "98335935826451",
        "earliest_available_block_num": view.chain().blocks_after(0).next().map(|b| b.num).unwrap_or(head.num),
        "last_irreversible_block_time": time_text(lib.time_ms),
    })
}

fn block_info_json(b: &BlockRecord) -> Value {
    let tapos = Tapos::from_block_id(&b.id);
    // A fixed fake signature of the right shape: the sim signs nothing.
    let sig = "SIG_K1_KfQ57wLFFiPR85zjuQyZsn7hdGJtB2NhVKUHcaFCEVUeFhCJzQ4GcY5sAsR3LYw5mUSS1QtQS3L5C5JiPCxYdh5zrBwZdW";
    json!({
        "block_num": b.num,
        "ref_block_num": tapos.ref_block_num,
        "id": hex_id(&b.id),
        "timestamp": time_text(b.time_ms),
        "producer": b.producer.to_string(),
        "confirmed": 0,
        "previous": hex_id(&b.previous),
        "transaction_mroot": "0000000000000000000000000000000000000000000000000000000000000000",
        "action_mroot": hex::encode(&b.id[..]).chars().rev().collect::<String>(),
        "schedule_version": b.schedule_version,
        "producer_signature": sig,
        "ref_block_prefix": tapos.ref_block_prefix,
    })
}

fn authority_json(a: &SigningAuthority, k1: bool) -> Value {
    json!(["block_signing_authority_v0", {
        "threshold": a.threshold,
        "keys": a.keys.iter().map(|(k, w)| json!({"key": key_text(k, k1), "weight": w})).collect::<Vec<_>>(),
    }])
}

fn schedule_json(s: &ProducerSchedule, k1: bool) -> Value {
    json!({
        "version": s.version,
        "producers": s.producers.iter().map(|e| json!({
            "producer_name": e.producer.to_string(),
            "authority": authority_json(&e.authority, k1),
        })).collect::<Vec<_>>(),
    })
}

fn producer_json(r: &ProducerRow, k1: bool) -> Value {
    json!({
        "owner": r.owner.to_string(),
        "total_votes": votes_text(r.total_votes),
        "producer_key": opt_key_text(r.producer_key.as_ref(), k1),
        "is_active": u8::from(r.is_active),
        "url": r.url,
        "unpaid_blocks": r.unpaid_blocks,
        "last_claim_time": time_text(r.last_claim_time_ms),
        "location": r.location,
        "producer_authority": authority_json(&r.authority, k1),
    })
}

/// A `lower_bound`/`upper_bound` of a name-keyed table: a name, or the u64 value as decimal.
fn name_bound(v: Option<&Value>, which: &str) -> Result<Option<u64>, FcError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => match s.parse::<u64>() {
            Ok(n) => Ok(Some(n)),
            Err(_) => Name::new(s)
                .map(|n| Some(n.as_u64()))
                .map_err(|_| FcError::table_query(format!("Invalid {which}: {s:?} is not a name"))),
        },
        Some(Value::Number(n)) => Ok(n.as_u64()),
        Some(_) => Err(FcError::table_query(format!("Invalid {which}"))),
    }
}

fn table_rows(chain: &Chain, params: &Value, k1: bool) -> Result<Value, FcError> {
    let field = |k: &str| params.get(k).and_then(Value::as_str).unwrap_or("");
    let (code, scope, table) = (field("code"), field("scope"), field("table"));
    if code != "eosio" {
        return Err(FcError::table_query(format!("Fail to retrieve table: no abi for {code}")));
    }
    let lower = name_bound(params.get("lower_bound"), "lower_bound")?;
    let upper = name_bound(params.get("upper_bound"), "upper_bound")?;
    let limit = params.get("limit").and_then(Value::as_u64).unwrap_or(10).max(1) as usize;
    let reverse = params.get("reverse").and_then(Value::as_bool).unwrap_or(false);
    let in_range = |k: u64| lower.is_none_or(|l| k >= l) && upper.is_none_or(|u| k <= u);
    // (primary key, row) in key order
    let mut rows: Vec<(u64, Value)> = match table {
        "producers" if scope == "eosio" || scope.is_empty() => {
            chain.producer_rows().map(|r| (r.owner.as_u64(), producer_json(r, k1))).collect()
        }
        "finalizers" if chain.params().savanna => chain
            .finalizers()
            .map(|f| {
                let key = chain.finkeys().iter().find(|k| k.id == f.active_key_id);
                (
                    f.finalizer.as_u64(),
                    json!({
                        "finalizer_name": f.finalizer.to_string(),
                        "active_key_id": f.active_key_id,
                        "active_key_binary": key.map(|k| hex::encode(k.key.as_bytes())).unwrap_or_default(),
                        "finalizer_key_count": f.key_count,
                    }),
                )
            })
            .collect(),
        "finkeys" if chain.params().savanna => chain
            .finkeys()
            .iter()
            .map(|k| {
                (
                    k.id,
                    json!({
                        "id": k.id,
                        "finalizer_name": k.finalizer.to_string(),
                        "finalizer_key": k.key,
                        "finalizer_key_binary": hex::encode(k.key.as_bytes()),
                    }),
                )
            })
            .collect(),
        _ => return Err(FcError::table_query(format!("Table {table} is not specified in the ABI"))),
    };
    rows.sort_by_key(|(k, _)| *k);
    if reverse {
        rows.reverse();
    }
    let mut selected = rows.into_iter().filter(|(k, _)| in_range(*k));
    let out: Vec<Value> = selected.by_ref().take(limit).map(|(_, v)| v).collect();
    let next = selected.next();
    Ok(json!({
        "rows": out,
        "more": next.is_some(),
        "next_key": next.map(|(k, _)| k.to_string()).unwrap_or_default(),
    }))
}

fn account_json(shared: &Shared, view: &View<'_>, a: &Account) -> Value {
    let k1 = shared.info.k1;
    let head = view.head();
    let sym = &shared.info.core_symbol;
    let resource = |r: &crate::chain::Resource| {
        json!({"used": r.used, "available": r.available, "max": r.max,
               "last_usage_update_time": time_text(head.time_ms), "current_used": r.used})
    };
    let permissions: Vec<Value> = a
        .permissions
        .iter()
        .map(|p| {
            let linked: Vec<Value> = a
                .links
                .iter()
                .filter(|l| l.permission == p.name)
                .map(|l| match l.action {
                    Some(act) => json!({"account": l.code.to_string(), "action": act.to_string()}),
                    None => json!({"account": l.code.to_string()}),
                })
                .collect();
            json!({
                "perm_name": p.name.to_string(),
                "parent": p.parent.map(|n| n.to_string()).unwrap_or_default(),
                "required_auth": {
                    "threshold": p.threshold,
                    "keys": p.keys.iter().map(|(k, w)| json!({"key": key_text(k, k1), "weight": w})).collect::<Vec<_>>(),
                    "accounts": [],
                    "waits": [],
                },
                "linked_actions": linked,
            })
        })
        .collect();
    json!({
        "account_name": a.name.to_string(),
        "head_block_num": head.num,
        "head_block_time": time_text(head.time_ms),
        "privileged": false,
        "last_code_update": "1970-01-01T00:00:00.000",
        "created": time_text(a.created_ms),
        "core_liquid_balance": format!("1234.5678 {sym}"),
        "ram_quota": 9_000,
        "net_weight": 10_000,
        "cpu_weight": 100_000,
        "net_limit": resource(&a.net),
        "cpu_limit": resource(&a.cpu),
        "ram_usage": 5_120,
        "permissions": permissions,
        "total_resources": {"owner": a.name.to_string(), "net_weight": format!("1.0000 {sym}"),
                            "cpu_weight": format!("10.0000 {sym}"), "ram_bytes": 9_000},
        "self_delegated_bandwidth": Value::Null,
        "refund_request": Value::Null,
        "voter_info": Value::Null,
        "rex_info": Value::Null,
        "subjective_cpu_bill_limit": resource(&a.cpu),
        "eosio_any_linked_actions": [],
    })
}

/// The reply to an accepted push: HTTP 202 with the processed trace.
fn trace_json(p: &validate::Pushed, block_num: u32, block_time_ms: u64) -> Value {
    let txid = hex::encode(p.txid);
    let tx_json = antelope_protocol::json::transaction_to_json(&p.tx);
    let net_words = p.packed_len.div_ceil(8) + 2;
    let traces: Vec<Value> = p
        .tx
        .actions
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let act_data = tx_json.get("actions").and_then(|acts| acts.get(i)).and_then(|x| x.get("data")).cloned();
            json!({
                "action_ordinal": i + 1,
                "creator_action_ordinal": 0,
                "closest_unnotified_ancestor_action_ordinal": 0,
                "receipt": {"receiver": a.account.to_string(), "act_digest": txid, "global_sequence": 1_000_000 + i,
                            "recv_sequence": 1, "auth_sequence": [], "code_sequence": 1, "abi_sequence": 1},
                "receiver": a.account.to_string(),
                "act": {
                    "account": a.account.to_string(),
                    "name": a.name.to_string(),
                    "authorization": a.authorization.iter().map(|l| json!({"actor": l.actor.to_string(), "permission": l.permission.to_string()})).collect::<Vec<_>>(),
                    "data": act_data.unwrap_or_else(|| json!(hex::encode(&a.data))),
                    "hex_data": hex::encode(&a.data),
                },
                "context_free": false,
                "elapsed": 120,
                "console": "",
                "trx_id": txid,
                "block_num": block_num,
                "block_time": time_text(block_time_ms),
                "producer_block_id": Value::Null,
                "account_ram_deltas": [],
                "except": Value::Null,
                "error_code": Value::Null,
                "return_value_hex_data": "",
            })
        })
        .collect();
    json!({
        "transaction_id": txid,
        "processed": {
            "id": txid,
            "block_num": block_num,
            "block_time": time_text(block_time_ms),
            "producer_block_id": Value::Null,
            "receipt": {"status": "executed", "cpu_usage_us": 200, "net_usage_words": net_words},
            "elapsed": 200,
            "net_usage": net_words * 8,
            "scheduled": false,
            "action_traces": traces,
            "account_ram_delta": Value::Null,
            "except": Value::Null,
            "error_code": Value::Null,
        },
    })
}

fn push(shared: &Shared, idx: usize, fault: &Fault, inner: &Value) -> Result<(StatusCode, Value), FcError> {
    let endpoint = &shared.endpoints[idx];
    endpoint.count_received();
    let info = &shared.info;
    let pushed = validate::decode(inner, &info.chain_id)?;
    let reply = match fault {
        // A stale endpoint checks against its frozen state and never relays.
        Fault::StaleHead(frozen) => {
            if frozen.is_known_tx(&pushed.txid) {
                return Err(FcError::duplicate(&hex::encode(pushed.txid)));
            }
            validate::check(frozen, &View::Live(frozen), &pushed, info.max_lifetime_secs, info.k1)?;
            let head = frozen.head();
            trace_json(&pushed, head.num + 1, head.time_ms + 500)
        }
        // A minority fork: checked against its own blocks, answered as accepted, lost.
        Fault::Fork(state) => {
            let mut chain = shared.lock();
            let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
            st.catch_up(&chain);
            if chain.is_known_tx(&pushed.txid) || st.pushed.contains(&pushed.txid) {
                return Err(FcError::duplicate(&hex::encode(pushed.txid)));
            }
            validate::check(&chain, &View::Fork(&chain, &st), &pushed, info.max_lifetime_secs, info.k1)?;
            st.pushed.push(pushed.txid);
            let (num, time) = (st.head().num + 1, st.head().time_ms + 500);
            let rec = chain.record(SimEvent::TxLostOnFork { txid: pushed.txid, endpoint: idx });
            shared.publish(vec![rec]);
            trace_json(&pushed, num, time)
        }
        _ => {
            let mut chain = shared.lock();
            if chain.is_known_tx(&pushed.txid) {
                return Err(FcError::duplicate(&hex::encode(pushed.txid)));
            }
            let checked = validate::check(&chain, &View::Live(&chain), &pushed, info.max_lifetime_secs, info.k1)?;
            chain.push_pending(checked);
            let (num, time) = (chain.head().num + 1, chain.head().time_ms + 500);
            let rec = chain.record(SimEvent::TxAccepted { txid: pushed.txid, endpoint: idx, block_num: num });
            shared.publish(vec![rec]);
            trace_json(&pushed, num, time)
        }
    };
    endpoint.count_accepted();
    Ok((StatusCode::ACCEPTED, reply))
}
