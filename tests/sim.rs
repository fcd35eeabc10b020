//! The simulated node and the fake Twilio, over real loopback HTTP.
//!
//! Chains run compressed (3 s blocks at speedup 30 = one block per 100 ms); tests wait on chain events with
//! generous timeouts and never assert on elapsed time.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::{json, Value};
use witness_trap::sim::{ChainSpec, Fault, Lie, Producer, PublicKey, SimConfig, SimEvent, SimNode, SmsSink};

const WAIT: Duration = Duration::from_secs(30);

fn key(seed: u8) -> PublicKey {
    let secp = secp256k1::Secp256k1::signing_only();
    let sk = secp256k1::SecretKey::from_byte_array(&[seed; 32]).expect("small constant is a valid secret");
    PublicKey(secp256k1::PublicKey::from_secret_key(&secp, &sk).serialize())
}

fn config(chain: ChainSpec, endpoints: usize) -> SimConfig {
    let mut cfg = SimConfig::new(chain, "watched", key(1), key(2), key(3));
    cfg.speedup = 30.0;
    cfg.initial_total_missed = 7;
    cfg.endpoints = endpoints;
    cfg
}

async fn start(chain: ChainSpec, endpoints: usize) -> SimNode {
    SimNode::start(config(chain, endpoints)).await.expect("sim starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap()
}

/// POST one JSON-RPC request; the whole response object.
async fn call(url: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1});
    let resp = client().post(url).json(&body).send().await.expect("request");
    assert_eq!(resp.status(), 200, "{method}");
    resp.json().await.expect("JSON body")
}

async fn result(url: &str, method: &str, params: Value) -> Value {
    let r = call(url, method, params).await;
    assert!(r.get("error").is_none(), "{method}: {r}");
    r["result"].clone()
}

/// Wait until `n` more blocks were produced.
async fn blocks(node: &SimNode, n: u32) {
    let target = node.head().num + n;
    node.wait_for_event(0, WAIT, |e| matches!(e, SimEvent::BlockProduced { num, .. } if *num >= target))
        .await
        .expect("blocks keep coming");
}

#[tokio::test]
async fn hive_reads_have_the_spec_shapes() {
    let node = start(ChainSpec::hive(), 1).await;
    let url = &node.urls()[0];
    blocks(&node, 2).await;

    let dgp = result(url, "condenser_api.get_dynamic_global_properties", json!([])).await;
    let head = dgp["head_block_number"].as_u64().unwrap();
    let id = dgp["head_block_id"].as_str().unwrap();
    assert_eq!(id.len(), 40);
    assert_eq!(u64::from_str_radix(&id[..8], 16).unwrap(), head, "block number is the id's first 4 bytes");
    assert_eq!(dgp["time"].as_str().unwrap().len(), 19);
    assert!(dgp["current_witness"].is_string());
    assert!(dgp["last_irreversible_block_num"].as_u64().unwrap() < head);
    assert!(dgp["current_aslot"].as_u64().unwrap() > 0);
    assert!(dgp["participation_count"].as_u64().unwrap() <= 128);
    assert!(dgp["recent_slots_filled"].is_string());

    let w = result(url, "condenser_api.get_witness_by_account", json!(["watched"])).await;
    assert_eq!(w["owner"], "watched");
    assert_eq!(w["url"], "https://watched.example");
    assert_eq!(w["total_missed"], 7);
    assert_eq!(w["signing_key"], key(1).to_text("STM"));
    assert_eq!(w["props"]["account_creation_fee"], "3.000 HIVE");
    assert_eq!(w["props"]["maximum_block_size"], 65536);
    assert_eq!(w["props"]["hbd_interest_rate"], 1000);
    assert!(w["props"].get("sbd_interest_rate").is_none());
    assert!(w["votes"].is_string() && w["last_aslot"].is_u64() && w["last_confirmed_block_num"].is_u64());
    assert!(w["hbd_exchange_rate"]["base"].as_str().unwrap().ends_with(" HBD"));
    assert!(w["running_version"].is_string());
    assert_eq!(result(url, "condenser_api.get_witness_by_account", json!(["nobody"])).await, Value::Null);

    let accounts = result(url, "condenser_api.get_accounts", json!([["watched", "nobody"]])).await;
    assert_eq!(accounts.as_array().unwrap().len(), 1);
    let a = &accounts[0];
    assert_eq!(a["name"], "watched");
    assert_eq!(
        a["active"],
        json!({"weight_threshold": 1, "account_auths": [], "key_auths": [[key(3).to_text("STM"), 1]]})
    );
    assert!(a["owner"].is_object() && a["posting"].is_object() && a["memo_key"].is_string());

    let chain_id = "beeab0de00000000000000000000000000000000000000000000000000000000";
    for (m, p) in [("database_api.get_version", json!({})), ("condenser_api.get_version", json!([]))] {
        let v = result(url, m, p).await;
        assert_eq!(v["chain_id"], chain_id, "{m}");
        assert!(v["blockchain_version"].is_string());
    }
    let cfg = result(url, "condenser_api.get_config", json!([])).await;
    assert_eq!(cfg["HIVE_BLOCK_INTERVAL"], 3);
    assert_eq!(cfg["HIVE_CHAIN_ID"], chain_id);
    assert_eq!(cfg["HIVE_ADDRESS_PREFIX"], "STM");

    let s = result(url, "condenser_api.get_witness_schedule", json!([])).await;
    let names = s["current_shuffled_witnesses"].as_array().unwrap();
    assert_eq!(names.len(), 21);
    assert!(names.contains(&json!("watched")));
    assert_eq!(s["num_scheduled_witnesses"], 21);
    assert_eq!(s["next_shuffle_block_num"].as_u64().unwrap() % 21, 0);

    // The id of block N is get_block_header(N+1).previous (§5.5).
    let dgp = result(url, "condenser_api.get_dynamic_global_properties", json!([])).await;
    let head = dgp["head_block_number"].as_u64().unwrap();
    let h = result(url, "condenser_api.get_block_header", json!([head])).await;
    let prev = result(url, "condenser_api.get_block_header", json!([head - 1])).await;
    assert!(h["previous"].as_str().unwrap().starts_with(&format!("{:08x}", head - 1)));
    assert_eq!(prev["timestamp"].as_str().unwrap().len(), 19);
    assert_eq!(result(url, "condenser_api.get_block_header", json!([head + 1000])).await, Value::Null);

    let st = result(url, "transaction_status_api.find_transaction", json!({"transaction_id": "00".repeat(20)})).await;
    assert_eq!(st, json!({"status": "unknown"}));
}

#[tokio::test]
async fn steem_names_and_missing_apis() {
    let node = start(ChainSpec::steem(), 1).await;
    let url = &node.urls()[0];
    let w = result(url, "condenser_api.get_witness_by_account", json!(["watched"])).await;
    assert_eq!(w["props"]["account_creation_fee"], "3.000 STEEM");
    assert_eq!(w["props"]["sbd_interest_rate"], 1000);
    assert!(w["props"].get("hbd_interest_rate").is_none());
    assert!(w["sbd_exchange_rate"].is_object());
    let cfg = result(url, "condenser_api.get_config", json!([])).await;
    assert_eq!(cfg["STEEM_BLOCK_INTERVAL"], 3);
    assert_eq!(cfg["STEEM_CHAIN_ID"], "00".repeat(32));
    assert_eq!(cfg["STEEM_ADDRESS_PREFIX"], "STM");
    let v = result(url, "database_api.get_version", json!({})).await;
    assert_eq!(v["chain_id"], "00".repeat(32));
    // Steem has no transaction_status_api.
    let r = call(url, "transaction_status_api.find_transaction", json!({"transaction_id": "00".repeat(20)})).await;
    assert_eq!(r["error"]["code"], -32601);
}

#[tokio::test]
async fn envelope_errors_like_a_node() {
    let node = start(ChainSpec::hive(), 1).await;
    let url = &node.urls()[0];
    let r = call(url, "condenser_api.get_nothing", json!([])).await;
    assert_eq!(r["error"]["code"], -32601);
    assert_eq!(r["id"], 1);
    let r = call(url, "condenser_api.get_witness_by_account", json!([])).await;
    assert_eq!(r["error"]["code"], -32003, "wrong argument count is an assert: {r}");
    assert_eq!(r["error"]["data"]["name"], "assert_exception");
    let r = call(url, "condenser_api.get_witness_by_account", json!([5])).await;
    assert_eq!(r["error"]["code"], -32602);
    let resp = client().post(url.as_str()).body("{not json").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let r: Value = resp.json().await.unwrap();
    assert_eq!(r["error"]["code"], -32700);
    // The old "call" form and batches.
    let body = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "call", "params": ["condenser_api", "get_witness_by_account", ["watched"]]},
        {"jsonrpc": "2.0", "id": 2, "method": "condenser_api.get_config", "params": []},
    ]);
    let r: Value = client().post(url.as_str()).json(&body).send().await.unwrap().json().await.unwrap();
    assert_eq!(r[0]["result"]["owner"], "watched");
    assert_eq!(r[1]["id"], 2);
    let calls = node.rpc_calls();
    assert_eq!(calls["condenser_api.get_nothing"], 1);
    assert_eq!(calls["call"], 1);
    assert_eq!(calls["<unparsable>"], 1);
}

#[tokio::test]
async fn total_missed_counts_each_missed_slot_when_the_next_block_arrives() {
    let node = start(ChainSpec::hive(), 1).await;
    let url = &node.urls()[0];
    let from = node.last_seq();
    node.fail_primary();
    let first = node
        .wait_for_event(from, WAIT, |e| matches!(e, SimEvent::SlotMissed { witness, .. } if witness == "watched"))
        .await
        .unwrap();
    let SimEvent::SlotMissed { total_missed, counted_in_block, aslot, .. } = first.event else { unreachable!() };
    assert_eq!(total_missed, 8);
    // The miss was counted by the block after the slot, not at the slot.
    let counted = node.with_chain(|c| c.block(counted_in_block).cloned()).expect("recent block");
    assert!(counted.aslot > aslot);
    let w = result(url, "condenser_api.get_witness_by_account", json!(["watched"])).await;
    assert!(w["total_missed"].as_u64().unwrap() >= 8);
    // No block was signed by the primary after the failure.
    assert!(!node
        .events()
        .iter()
        .any(|e| e.seq > from && matches!(e.event, SimEvent::BlockProduced { producer: Producer::Primary, .. })));
}

#[tokio::test]
async fn reshuffles_every_round() {
    let node = start(ChainSpec::steem(), 1).await;
    let first = node.wait_for_event(0, WAIT, |e| matches!(e, SimEvent::Reshuffled { .. })).await.unwrap();
    let second = node.wait_for_event(first.seq, WAIT, |e| matches!(e, SimEvent::Reshuffled { .. })).await.unwrap();
    match (first.event, second.event) {
        (SimEvent::Reshuffled { block_num: a, order: oa }, SimEvent::Reshuffled { block_num: b, order: ob }) => {
            assert_eq!(a % 21, 0);
            assert_eq!(b, a + 21);
            assert_eq!(oa.len(), 21);
            assert_eq!(ob.len(), 21);
        }
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn fault_http_503_garbage_and_counters() {
    let node = start(ChainSpec::hive(), 2).await;
    let urls = node.urls();
    node.set_fault(0, Fault::Http503).unwrap();
    let body =
        json!({"jsonrpc": "2.0", "method": "condenser_api.get_dynamic_global_properties", "params": [], "id": 1});
    let resp = client().post(&urls[0]).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 503);

    node.set_fault(0, Fault::GarbageJson).unwrap();
    let resp = client().post(&urls[0]).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "garbage must not parse: {text}");

    // The healthy endpoint is unaffected.
    result(&urls[1], "condenser_api.get_dynamic_global_properties", json!([])).await;
    node.set_fault(0, Fault::None).unwrap();
    result(&urls[0], "condenser_api.get_dynamic_global_properties", json!([])).await;

    assert_eq!(node.rpc_calls_at(0)["condenser_api.get_dynamic_global_properties"], 3);
    assert_eq!(node.rpc_calls_at(1)["condenser_api.get_dynamic_global_properties"], 1);
    assert_eq!(node.rpc_calls()["condenser_api.get_dynamic_global_properties"], 4);
    assert!(node.set_fault(2, Fault::Hang).is_err());
}

#[tokio::test]
async fn fault_hang_outlasts_the_client_timeout() {
    let node = start(ChainSpec::hive(), 1).await;
    node.set_fault(0, Fault::Hang).unwrap();
    let short = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    let body = json!({"jsonrpc": "2.0", "method": "condenser_api.get_config", "params": [], "id": 1});
    let err = short.post(&node.urls()[0]).json(&body).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
}

#[tokio::test]
async fn fault_stale_head_freezes_one_endpoint() {
    let node = start(ChainSpec::hive(), 2).await;
    let urls = node.urls();
    blocks(&node, 1).await;
    node.set_fault(0, Fault::StaleHead).unwrap();
    let frozen = result(&urls[0], "condenser_api.get_dynamic_global_properties", json!([])).await;
    node.fail_primary();
    blocks(&node, 25).await; // more than a round: the watched witness misses at least once
    let stale = result(&urls[0], "condenser_api.get_dynamic_global_properties", json!([])).await;
    let live = result(&urls[1], "condenser_api.get_dynamic_global_properties", json!([])).await;
    assert_eq!(stale, frozen);
    assert!(live["head_block_number"].as_u64() > frozen["head_block_number"].as_u64());
    let w_stale = result(&urls[0], "condenser_api.get_witness_by_account", json!(["watched"])).await;
    let w_live = result(&urls[1], "condenser_api.get_witness_by_account", json!(["watched"])).await;
    assert_eq!(w_stale["total_missed"], 7);
    assert!(w_live["total_missed"].as_u64().unwrap() > 7);
}

#[tokio::test]
async fn fault_lying_total_missed_and_wrong_chain_id() {
    let node = start(ChainSpec::hive(), 1).await;
    let url = &node.urls()[0];
    node.set_fault(0, Fault::LyingMissed(Lie::Fixed(1000))).unwrap();
    let w = result(url, "condenser_api.get_witness_by_account", json!(["watched"])).await;
    assert_eq!(w["total_missed"], 1000);
    node.set_fault(0, Fault::LyingMissed(Lie::Add(5))).unwrap();
    let w = result(url, "condenser_api.get_witness_by_account", json!(["watched"])).await;
    assert_eq!(w["total_missed"], node.witness().total_missed + 5);

    node.set_fault(0, Fault::WrongChainId([0x42; 32])).unwrap();
    let wrong = "42".repeat(32);
    assert_eq!(result(url, "database_api.get_version", json!({})).await["chain_id"], wrong);
    assert_eq!(result(url, "condenser_api.get_version", json!([])).await["chain_id"], wrong);
    assert_eq!(result(url, "condenser_api.get_config", json!([])).await["HIVE_CHAIN_ID"], wrong);
}

// ---- SMS sink ----

const SID: &str = "AC00000000000000000000000000000001";

async fn sink() -> SmsSink {
    SmsSink::start(SID, SecretString::from("token")).await.expect("sink starts")
}

async fn send(sink: &SmsSink, user: &str, pass: &str, form: &[(&str, &str)]) -> reqwest::Response {
    client()
        .post(format!("{}/2010-04-01/Accounts/{user}/Messages.json", sink.url()))
        .basic_auth(user, Some(pass))
        .form(form)
        .send()
        .await
        .expect("request")
}

const MSG: &[(&str, &str)] = &[("To", "+15005550006"), ("From", "+15005550001"), ("Body", "witness trap fired")];

#[tokio::test]
async fn sms_accepts_and_records_a_message() {
    let s = sink().await;
    let resp = send(&s, SID, "token", MSG).await;
    assert_eq!(resp.status(), 201);
    let v: Value = resp.json().await.unwrap();
    assert!(v["sid"].as_str().unwrap().starts_with("SM"));
    assert_eq!(v["status"], "queued");
    assert_eq!((v["to"].as_str(), v["from"].as_str()), (Some("+15005550006"), Some("+15005550001")));
    assert_eq!(v["body"], "witness trap fired");
    assert_eq!(v["account_sid"], SID);
    let msgs = s.wait_for_messages(1, WAIT).await.unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].body, "witness trap fired");
    assert_eq!(msgs[0].sid, v["sid"].as_str().unwrap());
}

#[tokio::test]
async fn sms_rejects_bad_auth_and_bad_numbers() {
    let s = sink().await;
    for (user, pass, why) in [(SID, "wrong", "wrong token"), ("ACother", "token", "wrong sid")] {
        let resp = send(&s, user, pass, MSG).await;
        assert_eq!(resp.status(), 401, "{why}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(
            v,
            json!({"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}),
            "{why}"
        );
    }
    let resp = send(&s, SID, "token", &[("To", "12345"), ("From", "+15005550001"), ("Body", "x")]).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["code"], 21211);
    assert_eq!(v["status"], 400);
    let resp = send(&s, SID, "token", &[("From", "+15005550001"), ("Body", "x")]).await;
    assert_eq!(resp.status(), 400);
    assert!(s.messages().is_empty());
    assert_eq!(s.requests(), 4);
}

#[tokio::test]
async fn sms_fault_switches() {
    let s = sink().await;
    s.fail_next(2);
    assert_eq!(send(&s, SID, "token", MSG).await.status(), 500);
    assert_eq!(send(&s, SID, "token", MSG).await.status(), 500);
    assert_eq!(send(&s, SID, "token", MSG).await.status(), 201);

    s.rate_limit_next(1, 7);
    let resp = send(&s, SID, "token", MSG).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["code"], 20429);
    assert_eq!(send(&s, SID, "token", MSG).await.status(), 201);

    s.fail_forever(true);
    for _ in 0..3 {
        assert_eq!(send(&s, SID, "token", MSG).await.status(), 500);
    }
    s.clear_faults();
    assert_eq!(send(&s, SID, "token", MSG).await.status(), 201);
    assert_eq!(s.messages().len(), 3);
    assert_eq!(s.requests(), 9);
}
