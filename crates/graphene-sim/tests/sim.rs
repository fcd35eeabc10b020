//! The simulated node and the fake Twilio, over real loopback HTTP.
//!
//! Chains run compressed (3 s blocks at speedup 30 = one block per 100 ms); tests wait on chain events with
//! generous timeouts and never assert on elapsed time.

use std::time::Duration;

use graphene_protocol::{
    sign_digest, sign_transaction, transaction_to_json, Asset, BlockId, LegacyChainProperties, Operation, PackMode,
    PrivateKey, SignedTransaction, TimePointSec, Transaction, WitnessSetProperties, WitnessUpdate,
};
use graphene_sim::{ChainSpec, Fault, Lie, PublicKey, Signer, SimConfig, SimEvent, SimNode, SmsSink, TxStatus};
use secrecy::SecretString;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

/// Expiration used for transactions that must stay valid: 1800 chain seconds = 60 s of wall time at speedup
/// 30, ample on a loaded machine and within Steem's one-hour limit.
const EXP: i64 = 1800;

/// Test keys: 1 = primary (signing key at start), 2 = backup, 3 = the witness account's active key.
fn private(seed: u8) -> PrivateKey {
    PrivateKey::from_secret_bytes(&[seed; 32]).expect("small constant is a valid secret")
}

fn key(seed: u8) -> PublicKey {
    private(seed).public_key()
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
        .any(|e| e.seq > from && matches!(e.event, SimEvent::BlockProduced { producer: Signer::Primary, .. })));
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
    let from = node.last_seq();
    node.fail_primary();
    node.wait_for_event(from, WAIT, |e| matches!(e, SimEvent::SlotMissed { witness, .. } if witness == "watched"))
        .await
        .unwrap();
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

// ---- broadcasts ----

/// TaPoS from the head block and an expiration `exp_in` seconds after head time, read over RPC as a
/// client would.
async fn tapos(url: &str, exp_in: i64) -> (BlockId, TimePointSec) {
    let dgp = result(url, "condenser_api.get_dynamic_global_properties", json!([])).await;
    let head = BlockId::from_hex(dgp["head_block_id"].as_str().unwrap()).unwrap();
    let time: TimePointSec = dgp["time"].as_str().unwrap().parse().unwrap();
    let exp = u32::try_from(i64::from(time.0) + exp_in).unwrap();
    (head, TimePointSec(exp))
}

fn key_swap(current: u8, new: u8) -> Operation {
    Operation::WitnessSetProperties(WitnessSetProperties::key_swap("watched", key(current), key(new)))
}

fn witness_update(new: u8) -> Operation {
    Operation::WitnessUpdate(WitnessUpdate {
        owner: "watched".into(),
        url: "https://watched.example".into(),
        block_signing_key: key(new),
        props: LegacyChainProperties {
            account_creation_fee: Asset::core(3000),
            maximum_block_size: 65536,
            interest_rate: 1000,
        },
        fee: Asset::core(0),
    })
}

async fn signed(url: &str, chain: &ChainSpec, op: Operation, signer: u8, exp_in: i64) -> SignedTransaction {
    let (head, exp) = tapos(url, exp_in).await;
    let tx = Transaction::with_tapos(&head, exp, vec![op]);
    sign_transaction(&tx, chain, &private(signer)).expect("valid op signs")
}

async fn broadcast(url: &str, chain: &ChainSpec, tx: &SignedTransaction) -> Value {
    call(url, "condenser_api.broadcast_transaction", json!([transaction_to_json(tx, chain)])).await
}

/// Assert the §5.9 error shape: JSON-RPC code, fc name, and a substring of stack[0].format.
fn assert_error(r: &Value, code: i64, name: &str, format: &str, why: &str) {
    let e = &r["error"];
    assert_eq!(e["code"], code, "{why}: {r}");
    assert_eq!(e["data"]["name"], name, "{why}: {r}");
    assert!(e["data"]["stack"][0]["format"].as_str().unwrap().contains(format), "{why}: {r}");
    assert!(e["message"].is_string(), "{why}");
}

#[tokio::test]
async fn op42_key_swap_is_accepted_applied_and_the_backup_signs() {
    for chain in [ChainSpec::hive(), ChainSpec::steem()] {
        let node = start(chain.clone(), 1).await;
        let url = &node.urls()[0];
        let tx = signed(url, &chain, key_swap(1, 2), 1, EXP).await;
        let from = node.last_seq();
        assert_eq!(broadcast(url, &chain, &tx).await["result"], json!({}), "{}", chain.name);
        let txid = tx.transaction.id_for(&chain, PackMode::Legacy).0;
        node.wait_for_event(from, WAIT, |e| matches!(e, SimEvent::TxIncluded { txid: t, .. } if *t == txid))
            .await
            .unwrap();
        assert_eq!(node.witness().signing_key, key(2));
        let w = result(url, "condenser_api.get_witness_by_account", json!(["watched"])).await;
        assert_eq!(w["signing_key"], key(2).to_text("STM"));
        node.fail_primary();
        node.wait_for_event(from, WAIT, |e| matches!(e, SimEvent::BlockProduced { producer: Signer::Backup, .. }))
            .await
            .unwrap();
        assert_eq!(node.broadcasts_received(), 1);
        assert!(matches!(
            node.with_chain(|c| c.tx_status(&txid, None)),
            TxStatus::WithinReversibleBlock(_) | TxStatus::WithinIrreversibleBlock(_)
        ));
        if chain.has_hf26() {
            let st = result(
                url,
                "transaction_status_api.find_transaction",
                json!({"transaction_id": hex::encode(txid), "expiration": tx.transaction.expiration.to_string()}),
            )
            .await;
            assert!(st["status"].as_str().unwrap().starts_with("within_"), "{st}");
            assert!(st["block_num"].is_u64());
        }
    }
}

#[tokio::test]
async fn op11_synchronous_broadcast_returns_the_inclusion() {
    for chain in [ChainSpec::hive(), ChainSpec::steem()] {
        let node = start(chain.clone(), 1).await;
        let url = &node.urls()[0];
        let tx = signed(url, &chain, witness_update(2), 3, EXP).await;
        let r = call(url, "condenser_api.broadcast_transaction_synchronous", json!([transaction_to_json(&tx, &chain)]))
            .await;
        let res = &r["result"];
        // Signed over the legacy digest: on Hive the node's hf26 attempt fails and the legacy one succeeds, so
        // the id reported is the legacy id (§1.4).
        assert_eq!(res["id"], hex::encode(tx.transaction.id_for(&chain, PackMode::Legacy).0), "{}: {r}", chain.name);
        assert_eq!(res["expired"], false);
        assert!(res["block_num"].as_u64().unwrap() > 0);
        assert_eq!(node.witness().signing_key, key(2));
        assert_eq!(node.witness().url, "https://watched.example");
    }
}

#[tokio::test]
async fn wrong_keys_get_missing_authority() {
    for (chain, code) in [(ChainSpec::hive(), -32003), (ChainSpec::steem(), -32000)] {
        let node = start(chain.clone(), 1).await;
        let url = &node.urls()[0];
        // op 11 signed with the signing key instead of the active key.
        let tx = signed(url, &chain, witness_update(2), 1, EXP).await;
        let r = broadcast(url, &chain, &tx).await;
        assert_error(&r, code, "tx_missing_active_auth", "Missing Active Authority", &chain.name);
        assert!(r["error"]["message"].as_str().unwrap().contains("Missing Active Authority watched"), "{r}");
        let second = r["error"]["data"]["stack"][1]["format"].as_str().unwrap_or("");
        assert_eq!(second.contains("both new (hf26) and legacy"), chain.has_hf26(), "{r}");
        // op 42 signed with a key other than props.key.
        let tx = signed(url, &chain, key_swap(1, 2), 2, EXP).await;
        assert_error(
            &broadcast(url, &chain, &tx).await,
            code,
            "tx_missing_other_auth",
            "Missing Authority",
            &chain.name,
        );
        // op 42 whose key is not the on-chain key (signed by it, so authority passes).
        let tx = signed(url, &chain, key_swap(2, 4), 2, EXP).await;
        assert_error(
            &broadcast(url, &chain, &tx).await,
            -32003,
            "assert_exception",
            "'key' does not match witness signing key.",
            &chain.name,
        );
        assert_eq!(node.witness().signing_key, key(1), "nothing was applied");
        assert_eq!(node.broadcasts_received(), 3);
    }
}

#[tokio::test]
async fn expiration_tapos_duplicate_and_malformed() {
    for (chain, code, max) in [(ChainSpec::hive(), -32003, 86_400), (ChainSpec::steem(), -32000, 3_600)] {
        let node = start(chain.clone(), 1).await;
        let url = &node.urls()[0];
        let name = chain.name.clone();

        let expired = signed(url, &chain, key_swap(1, 2), 1, 0).await;
        assert_error(&broadcast(url, &chain, &expired).await, code, "transaction_expiration_exception", "now <", &name);
        let far = signed(url, &chain, key_swap(1, 2), 1, max + 3600).await;
        assert_error(
            &broadcast(url, &chain, &far).await,
            code,
            "transaction_expiration_exception",
            "max_til_exp",
            &name,
        );

        let (head, exp) = tapos(url, EXP).await;
        let mut tx = Transaction::with_tapos(&head, exp, vec![key_swap(1, 2)]);
        tx.ref_block_prefix ^= 1;
        let bad_tapos = sign_transaction(&tx, &chain, &private(1)).unwrap();
        assert_error(
            &broadcast(url, &chain, &bad_tapos).await,
            code,
            "transaction_tapos_exception",
            "ref_block_prefix",
            &name,
        );

        let good = signed(url, &chain, key_swap(1, 2), 1, EXP).await;
        assert_eq!(broadcast(url, &chain, &good).await["result"], json!({}), "{name}");
        let dup = broadcast(url, &chain, &good).await;
        assert_error(&dup, -32003, "assert_exception", "Duplicate transaction check failed", &name);
        assert_eq!(
            dup["error"]["data"]["stack"][0]["data"]["trx_id"],
            hex::encode(good.transaction.id_for(&chain, PackMode::Legacy).0)
        );

        // A signature header outside 27..=34 and a signature over another digest.
        let mut bad_header = good.clone();
        bad_header.transaction.expiration = TimePointSec(good.transaction.expiration.0 + 1);
        bad_header.signatures[0].0[0] = 40;
        assert_error(&broadcast(url, &chain, &bad_header).await, -32000, "exception", "unable to reconstruct", &name);
        let mut other = good.clone();
        other.transaction.expiration = TimePointSec(good.transaction.expiration.0 + 2);
        other.signatures = vec![sign_digest(&[7; 32], &private(1))];
        let r = broadcast(url, &chain, &other).await;
        assert_eq!(r["error"]["data"]["name"], "tx_missing_other_auth", "{name}: {r}");

        // Not a transaction at all.
        let r = call(url, "condenser_api.broadcast_transaction", json!([{"ref_block_num": "x"}])).await;
        assert_eq!(r["error"]["code"], -32000, "{name}: {r}");
        // Invalid op (stateless validate): empty url in op 11.
        let mut op = witness_update(2);
        if let Operation::WitnessUpdate(w) = &mut op {
            w.url.clear();
        }
        let (head, exp) = tapos(url, EXP).await;
        let tx = Transaction::with_tapos(&head, exp, vec![op]);
        let digest = tx.digest(&chain, PackMode::Legacy);
        let invalid = SignedTransaction { transaction: tx, signatures: vec![sign_digest(&digest, &private(3))] };
        let r = broadcast(url, &chain, &invalid).await;
        assert_eq!(r["error"]["data"]["name"], "assert_exception", "{name}: {r}");
        assert_eq!(r["error"]["code"], -32003);
    }
}

#[tokio::test]
async fn extra_signatures_allowed_on_hive_only() {
    for (chain, ok) in [(ChainSpec::hive(), true), (ChainSpec::steem(), false)] {
        let node = start(chain.clone(), 1).await;
        let url = &node.urls()[0];
        let (head, exp) = tapos(url, EXP).await;
        let tx = Transaction::with_tapos(&head, exp, vec![key_swap(1, 2)]);
        let digest = tx.digest(&chain, PackMode::Legacy);
        let signed = SignedTransaction {
            transaction: tx,
            signatures: vec![sign_digest(&digest, &private(1)), sign_digest(&digest, &private(3))],
        };
        let r = broadcast(url, &chain, &signed).await;
        if ok {
            assert_eq!(r["result"], json!({}), "{r}");
        } else {
            assert_eq!(r["error"]["data"]["name"], "tx_irrelevant_sig", "{r}");
        }
    }
}

#[tokio::test]
async fn stale_endpoint_does_not_relay_broadcasts() {
    let chain = ChainSpec::hive();
    let node = start(chain.clone(), 2).await;
    let urls = node.urls();
    node.set_fault(0, Fault::StaleHead).unwrap();
    let tx = signed(&urls[0], &chain, key_swap(1, 2), 1, EXP).await;
    assert_eq!(broadcast(&urls[0], &chain, &tx).await["result"], json!({}));
    blocks(&node, 3).await;
    assert_eq!(node.witness().signing_key, key(1));
    // The healthy endpoint takes the same transaction.
    assert_eq!(broadcast(&urls[1], &chain, &tx).await["result"], json!({}));
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
