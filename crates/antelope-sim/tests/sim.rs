//! The simulated Antelope chain over real loopback HTTP.
//!
//! Chains run compressed (0.5 s blocks at speedup 40 = one block per 12.5 ms); tests wait on chain events with
//! generous timeouts and never assert on elapsed time. Transactions are built and signed with
//! `antelope_protocol`, keys generated per test.

use std::time::Duration;

use antelope_protocol::action::{ActFinKey, Action, PermissionLevel, RegProducer, UnregProd};
use antelope_protocol::chain::ChainId;
use antelope_protocol::keys::{PrivateKey, PublicKey};
use antelope_protocol::name::Name;
use antelope_protocol::signature::Signature;
use antelope_protocol::transaction::{packed_transaction_json, Tapos, Transaction};
use antelope_sim::control::{self, Controlled};
use antelope_sim::{Fault, SimConfig, SimEvent, SimNode, TxStatus};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);
const SPEEDUP: f64 = 40.0;

struct Keys {
    primary: PrivateKey,
    backup: PrivateKey,
    active: PrivateKey,
    failover: PrivateKey,
}

fn keys() -> Keys {
    Keys {
        primary: PrivateKey::generate(),
        backup: PrivateKey::generate(),
        active: PrivateKey::generate(),
        failover: PrivateKey::generate(),
    }
}

fn jungle() -> ChainId {
    ChainId::from_hex("73e4385a2708e6d7048834fbc1079f2fabb17b3c125b146af438971e90716c4d").unwrap()
}

fn config(k: &Keys) -> SimConfig {
    let mut cfg = SimConfig::new(
        jungle(),
        "alice",
        k.primary.public_key(),
        k.backup.public_key(),
        k.active.public_key(),
        k.failover.public_key(),
    );
    cfg.speedup = SPEEDUP;
    cfg.producer_position = Some(5);
    cfg.proposal_interval_slots = 24;
    cfg
}

async fn start(k: &Keys) -> SimNode {
    SimNode::start(config(k)).await.expect("sim starts")
}

fn n(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

/// POST a chain API call; (status, body as JSON).
async fn post(url: &str, method: &str, body: Value) -> (u16, Value) {
    let resp = client().post(format!("{url}/v1/chain/{method}")).json(&body).send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method}: not JSON ({e}): {text}")))
}

async fn ok(url: &str, method: &str, body: Value) -> Value {
    let (status, v) = post(url, method, body).await;
    assert_eq!(status, 200, "{method}: {v}");
    v
}

/// Wait until `count` more blocks were produced.
async fn blocks(node: &SimNode, count: u32) {
    let target = node.head().num + count;
    node.wait_for_event(0, WAIT, |e| matches!(e, SimEvent::BlockProduced { num, .. } if *num >= target))
        .await
        .expect("blocks keep coming");
}

/// A transaction with the given actions, expiring `exp_secs` after the head, TaPoS from LIB.
fn tx_with(node: &SimNode, actions: Vec<Action>, exp_secs: i64) -> Transaction {
    let (head_ms, lib_id) = node.with_chain(|c| (c.head().time_ms, c.block(c.lib_num()).unwrap().id));
    let tapos = Tapos::from_block_id(&lib_id);
    Transaction {
        expiration: ((head_ms / 1000) as i64 + exp_secs) as u32,
        ref_block_num: tapos.ref_block_num,
        ref_block_prefix: tapos.ref_block_prefix,
        max_net_usage_words: 0,
        max_cpu_usage_ms: 0,
        delay_sec: 0,
        context_free_actions: vec![],
        actions,
        transaction_extensions: vec![],
    }
}

fn auth(actor: &str, perm: &str) -> Vec<PermissionLevel> {
    vec![PermissionLevel { actor: n(actor), permission: n(perm) }]
}

fn regproducer(actor: &str, perm: &str, producer: &str, key: PublicKey, url: &str) -> Action {
    let data = RegProducer { producer: n(producer), producer_key: key, url: url.to_string(), location: 840 };
    Action::new(n("eosio"), n("regproducer"), auth(actor, perm), &data)
}

/// The signed `packed_transaction` object.
fn signed(tx: &Transaction, chain_id: &ChainId, keys: &[&PrivateKey]) -> Value {
    let sigs: Vec<Signature> = keys.iter().map(|k| tx.sign(chain_id, k).expect("signs")).collect();
    packed_transaction_json(tx, &sigs)
}

async fn send2(url: &str, inner: Value) -> (u16, Value) {
    post(url, "send_transaction2", json!({"return_failure_trace": true, "retry_trx": false, "transaction": inner}))
        .await
}

fn txid_of(tx: &Transaction) -> [u8; 32] {
    tx.id()
}

fn assert_error(status: u16, v: &Value, http: u16, name: &str, detail: &str) {
    assert_eq!(status, http, "{v}");
    assert_eq!(v["code"], http, "{v}");
    assert_eq!(v["error"]["name"], name, "{v}");
    assert!(v["error"]["code"].as_i64().is_some(), "{v}");
    let d = &v["error"]["details"][0];
    assert!(d["message"].as_str().unwrap().contains(detail), "{v}");
    assert!(d["file"].is_string() && d["line_number"].is_number() && d["method"].is_string(), "{v}");
}

#[tokio::test]
async fn reads_have_the_nodeos_shapes() {
    let k = keys();
    let node = start(&k).await;
    let url = &node.urls()[0];
    blocks(&node, 3).await;

    let info = ok(url, "get_info", json!({})).await;
    assert_eq!(info["chain_id"], jungle().to_hex());
    let head = info["head_block_num"].as_u64().unwrap();
    let id = info["head_block_id"].as_str().unwrap();
    assert_eq!(id.len(), 64);
    assert_eq!(u64::from_str_radix(&id[..8], 16).unwrap(), head, "block number is the id's first 4 bytes");
    assert_eq!(info["last_irreversible_block_num"].as_u64().unwrap(), head - 3);
    let t = info["head_block_time"].as_str().unwrap();
    assert_eq!(t.len(), 23, "{t}");
    assert!(t.ends_with(".000") || t.ends_with(".500"), "{t}");
    assert!(info["head_block_producer"].is_string());
    assert!(info["server_version_string"].is_string());

    // GET without a body answers too.
    let resp = client().get(format!("{url}/v1/chain/get_info")).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    let b = ok(url, "get_block_info", json!({"block_num": head})).await;
    assert_eq!(b["id"].as_str().unwrap(), id);
    assert_eq!(b["ref_block_num"].as_u64().unwrap(), head & 0xffff);
    for f in ["timestamp", "producer", "confirmed", "previous", "schedule_version", "ref_block_prefix"] {
        assert!(b.get(f).is_some(), "{f}");
    }
    let (status, e) = post(url, "get_block_info", json!({"block_num": head + 10_000})).await;
    assert_error(status, &e, 400, "unknown_block_exception", "Could not find block");
    assert_eq!(e["message"], "Unknown Block");

    let s = ok(url, "get_producer_schedule", json!({})).await;
    let prods = s["active"]["producers"].as_array().unwrap();
    assert_eq!(prods.len(), 21);
    assert_eq!(prods[5]["producer_name"], "alice");
    assert_eq!(prods[5]["authority"][0], "block_signing_authority_v0");
    assert_eq!(prods[5]["authority"][1]["keys"][0]["key"], k.primary.public_key().to_legacy());
    assert!(s["pending"].is_null() && s["proposed"].is_null());

    let rows = ok(
        url,
        "get_table_rows",
        json!({"json": true, "code": "eosio", "scope": "eosio", "table": "producers",
               "lower_bound": "alice", "upper_bound": "alice", "limit": 1}),
    )
    .await;
    let row = &rows["rows"][0];
    assert_eq!(rows["rows"].as_array().unwrap().len(), 1);
    assert_eq!(row["owner"], "alice");
    assert_eq!(row["producer_key"], k.primary.public_key().to_legacy());
    assert_eq!(row["is_active"], 1);
    assert!(row["total_votes"].as_str().unwrap().contains('.'));
    assert!(row["unpaid_blocks"].is_u64() && row["last_claim_time"].is_string() && row["location"].is_u64());
    assert_eq!(row["producer_authority"][1]["threshold"], 1);
    assert_eq!(rows["more"], false);
    let all = ok(
        url,
        "get_table_rows",
        json!({"json": true, "code": "eosio", "scope": "eosio", "table": "producers", "limit": 5}),
    )
    .await;
    assert_eq!(all["rows"].as_array().unwrap().len(), 5);
    assert_eq!(all["more"], true);

    let fin = ok(
        url,
        "get_table_rows",
        json!({"json": true, "code": "eosio", "scope": "eosio", "table": "finkeys", "limit": 100}),
    )
    .await;
    assert_eq!(fin["rows"].as_array().unwrap().iter().filter(|r| r["finalizer_name"] == "alice").count(), 2);
    let fz = ok(
        url,
        "get_table_rows",
        json!({"json": true, "code": "eosio", "scope": "eosio", "table": "finalizers",
        "lower_bound": "alice", "upper_bound": "alice"}),
    )
    .await;
    assert_eq!(fz["rows"][0]["finalizer_key_count"], 2);

    let acct = ok(url, "get_account", json!({"account_name": "alice"})).await;
    assert_eq!(acct["account_name"], "alice");
    assert!(acct["cpu_limit"]["available"].as_i64().unwrap() > 0);
    for f in ["used", "available", "max"] {
        assert!(acct["net_limit"][f].is_i64(), "{f}");
    }
    let perms = acct["permissions"].as_array().unwrap();
    let names: Vec<&str> = perms.iter().map(|p| p["perm_name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["owner", "active", "failover"]);
    let f = &perms[2];
    assert_eq!(f["parent"], "active");
    assert_eq!(f["required_auth"]["keys"][0]["key"], k.failover.public_key().to_legacy());
    assert_eq!(f["linked_actions"], json!([{"account": "eosio", "action": "regproducer"}]));
    assert!(f["required_auth"]["accounts"].is_array() && f["required_auth"]["waits"].is_array());

    let (status, e) = post(url, "get_account", json!({"account_name": "nobody"})).await;
    assert!(status >= 400, "{e}");
    let resp = client().post(format!("{url}/v1/chain/get_nothing")).body("{}").send().await.unwrap();
    assert_eq!(resp.status(), 404);

    let calls = node.rpc_calls();
    assert_eq!(calls["get_info"], 2);
    assert_eq!(calls["get_table_rows"], 4);
}

#[tokio::test]
async fn spring_2_prints_pub_k1_keys() {
    let k = keys();
    let mut cfg = config(&k);
    cfg.k1_text = true;
    let node = SimNode::start(cfg).await.unwrap();
    let url = &node.urls()[0];
    let s = ok(url, "get_producer_schedule", json!({})).await;
    let key = s["active"]["producers"][5]["authority"][1]["keys"][0]["key"].as_str().unwrap().to_string();
    assert_eq!(key, k.primary.public_key().to_k1());
    let acct = ok(url, "get_account", json!({"account_name": "alice"})).await;
    assert!(acct["permissions"][0]["required_auth"]["keys"][0]["key"].as_str().unwrap().starts_with("PUB_K1_"));
}

#[tokio::test]
async fn a_healthy_chain_gives_every_producer_12_blocks_per_turn() {
    let k = keys();
    let node = start(&k).await;
    let start_slot = node.head().slot;
    // Two whole rounds after the start, so one round-aligned window lies inside the chain's history.
    let round = 12 * 21;
    let first = (start_slot / round + 1) * round;
    node.wait_for_event(0, WAIT, |e| matches!(e, SimEvent::BlockProduced { slot, .. } if *slot >= first + round))
        .await
        .unwrap();
    let counts = node.with_chain(|c| {
        let mut m = std::collections::BTreeMap::new();
        let mut slots = Vec::new();
        for b in c.blocks_after(0).filter(|b| b.slot >= first && b.slot < first + round) {
            *m.entry(b.producer.to_string()).or_insert(0) += 1;
            slots.push(b.slot);
        }
        (m, slots)
    });
    assert_eq!(counts.0.len(), 21);
    assert!(counts.0.values().all(|c| *c == 12), "{:?}", counts.0);
    assert_eq!(counts.1.len(), 252, "no gaps");
    assert!(!node.events().iter().any(|e| matches!(e.event, SimEvent::SlotMissed { .. })));
}

#[tokio::test]
async fn primary_down_makes_the_watched_slots_gaps() {
    let k = keys();
    let node = start(&k).await;
    let url = &node.urls()[0];
    let seq = node.last_seq();
    node.fail_primary();
    let missed = node
        .wait_for_event(seq, WAIT, |e| matches!(e, SimEvent::SlotMissed { producer, .. } if producer == "alice"))
        .await
        .unwrap();
    let SimEvent::SlotMissed { block_num, slot, .. } = missed.event else { unreachable!() };
    blocks(&node, 2).await;
    // The gap shows between consecutive block timestamps.
    let before = ok(url, "get_block_info", json!({"block_num": block_num - 1})).await;
    let after = ok(url, "get_block_info", json!({"block_num": block_num})).await;
    let (slot_before, slot_after) =
        node.with_chain(|c| (c.block(block_num - 1).unwrap().slot, c.block(block_num).unwrap().slot));
    assert!(slot_before < slot && slot < slot_after);
    assert_eq!(
        before["timestamp"],
        antelope_sim::text::time_text(antelope_protocol::schedule::unix_ms_of_slot(slot_before))
    );
    assert_eq!(
        after["timestamp"],
        antelope_sim::text::time_text(antelope_protocol::schedule::unix_ms_of_slot(slot_after))
    );
    assert_ne!(after["producer"], "alice");
    // Only the watched producer misses, and only while the primary is down.
    let seq = node.last_seq();
    node.restore_primary();
    node.wait_for_event(seq, WAIT, |e| matches!(e, SimEvent::BlockProduced { producer, .. } if producer == "alice"))
        .await
        .unwrap();
    assert!(node
        .events()
        .iter()
        .all(|e| !matches!(&e.event, SimEvent::SlotMissed { producer, .. } if producer != "alice")));
}

#[tokio::test]
async fn a_failover_regproducer_is_included_then_scheduled_then_the_backup_produces() {
    let k = keys();
    let node = start(&k).await;
    let url = &node.urls()[0];
    node.fail_primary();
    let tx = tx_with(
        &node,
        vec![regproducer("alice", "failover", "alice", k.backup.public_key(), "https://alice.example")],
        1800,
    );
    let seq = node.last_seq();
    let (status, v) = send2(url, signed(&tx, &node.chain_id(), &[&k.failover])).await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["transaction_id"], hex::encode(txid_of(&tx)));
    assert_eq!(v["processed"]["receipt"]["status"], "executed");
    assert!(v["processed"]["except"].is_null());
    let inc = node
        .wait_for_event(seq, WAIT, |e| matches!(e, SimEvent::TxIncluded { txid, .. } if *txid == tx.id()))
        .await
        .unwrap();
    let SimEvent::TxIncluded { block_num, .. } = inc.event else { unreachable!() };
    assert!(matches!(node.tx_status(&tx.id()), TxStatus::Reversible(b) | TxStatus::Irreversible(b) if b == block_num));

    // The row changes at once; the schedule follows.
    let rows = ok(
        url,
        "get_table_rows",
        json!({"json": true, "code": "eosio", "scope": "eosio", "table": "producers",
        "lower_bound": "alice", "upper_bound": "alice", "limit": 1}),
    )
    .await;
    assert_eq!(rows["rows"][0]["producer_key"], k.backup.public_key().to_legacy());
    let s = ok(url, "get_producer_schedule", json!({})).await;
    assert_eq!(s["active"]["producers"][5]["authority"][1]["keys"][0]["key"], k.primary.public_key().to_legacy());

    let proposed = node
        .wait_for_event(inc.seq, WAIT, |e| matches!(e, SimEvent::ScheduleProposed { version: 2, .. }))
        .await
        .unwrap();
    let SimEvent::ScheduleProposed { activates_at_slot, block_num: proposed_in, .. } = proposed.event else {
        unreachable!()
    };
    let proposed_slot = node.with_chain(|c| c.block(proposed_in).map(|b| b.slot)).unwrap();
    let round = 12 * 21;
    assert_eq!(activates_at_slot % round, 0);
    assert!(activates_at_slot > proposed_slot + round && activates_at_slot <= proposed_slot + 2 * round);
    let s = ok(url, "get_producer_schedule", json!({})).await;
    assert_eq!(s["pending"]["version"], 2);
    assert_eq!(s["pending"]["producers"][5]["authority"][1]["keys"][0]["key"], k.backup.public_key().to_legacy());

    node.wait_for_event(proposed.seq, WAIT, |e| matches!(e, SimEvent::ScheduleActivated { version: 2, .. }))
        .await
        .unwrap();
    let backup =
        node.wait_for_event(proposed.seq, WAIT, |e| matches!(e, SimEvent::BackupProducing { .. })).await.unwrap();
    let SimEvent::BackupProducing { block_num, .. } = backup.event else { unreachable!() };
    let b = ok(url, "get_block_info", json!({"block_num": block_num})).await;
    assert_eq!(b["producer"], "alice");
    assert_eq!(b["schedule_version"], 2);
    let s = ok(url, "get_producer_schedule", json!({})).await;
    assert_eq!(s["active"]["version"], 2);
    assert!(s["pending"].is_null());
    assert_eq!(node.transactions_accepted(), 1);
}

#[tokio::test]
async fn the_fallback_endpoints_take_the_inner_object() {
    let k = keys();
    let node = start(&k).await;
    let url = &node.urls()[0];
    for (i, method) in ["send_transaction", "push_transaction"].iter().enumerate() {
        let u = format!("https://alice{i}.example");
        let tx = tx_with(&node, vec![regproducer("alice", "failover", "alice", k.primary.public_key(), &u)], 1800);
        let (status, v) = post(url, method, signed(&tx, &node.chain_id(), &[&k.failover])).await;
        assert_eq!(status, 202, "{method}: {v}");
        assert_eq!(v["processed"]["receipt"]["status"], "executed");
    }
    assert_eq!(node.rpc_calls_at(0)["push_transaction"], 1);
    assert_eq!(node.transactions_received(), 2);
}

/// Push `tx` signed by `signers` over send_transaction2; the reply.
async fn push(node: &SimNode, tx: &Transaction, signers: &[&PrivateKey]) -> (u16, Value) {
    send2(&node.urls()[0], signed(tx, &node.chain_id(), signers)).await
}

#[tokio::test]
async fn a_signature_over_another_chain_id_is_unsatisfied_authorization_401() {
    let k = keys();
    let node = start(&k).await;
    let tx = tx_with(&node, vec![regproducer("alice", "failover", "alice", k.backup.public_key(), "u")], 1800);
    let eos = ChainId::from_hex("aca376f206b8fc25a6ed44dbdc66547c36c6c33e3a119ffbeaef943642f0e906").unwrap();
    let (status, v) = send2(&node.urls()[0], signed(&tx, &eos, &[&k.failover])).await;
    assert_error(status, &v, 401, "unsatisfied_authorization", "does not have signatures");
    assert_eq!(v["error"]["code"], 3_090_003);
}

#[tokio::test]
async fn authorization_rules() {
    let k = keys();
    let node = start(&k).await;
    // An action not linked to failover needs active: irrelevant authority.
    let unreg = Action::new(n("eosio"), n("unregprod"), auth("alice", "failover"), &UnregProd { producer: n("alice") });
    let (status, v) = push(&node, &tx_with(&node, vec![unreg], 1800), &[&k.failover]).await;
    assert_error(status, &v, 500, "irrelevant_auth_exception", "minimum authority is alice@active");
    assert_eq!(v["error"]["code"], 3_090_005);
    // regproducer for someone else: require_auth fails.
    let other = regproducer("alice", "failover", "produceraab", k.backup.public_key(), "u");
    let (status, v) = push(&node, &tx_with(&node, vec![other], 1800), &[&k.failover]).await;
    assert_error(status, &v, 500, "missing_auth_exception", "missing authority of produceraab");
    // The failover key cannot sign for active.
    let act = regproducer("alice", "active", "alice", k.backup.public_key(), "u");
    let (status, v) = push(&node, &tx_with(&node, vec![act.clone()], 1800), &[&k.failover]).await;
    assert_error(status, &v, 401, "unsatisfied_authorization", "alice");
    // active itself may (a parent satisfies its child).
    let (status, v) = push(&node, &tx_with(&node, vec![act], 1800), &[&k.active]).await;
    assert_eq!(status, 202, "{v}");
    // An extra signature is irrelevant.
    let r = regproducer("alice", "failover", "alice", k.backup.public_key(), "v");
    let (status, v) = push(&node, &tx_with(&node, vec![r], 1800), &[&k.failover, &k.backup]).await;
    assert_error(status, &v, 500, "tx_irrelevant_sig", "irrelevant signatures");
}

#[tokio::test]
async fn expired_and_too_far_expirations_are_refused() {
    let k = keys();
    let node = start(&k).await;
    let r = || regproducer("alice", "failover", "alice", k.backup.public_key(), "u");
    let (status, v) = push(&node, &tx_with(&node, vec![r()], -10), &[&k.failover]).await;
    assert_error(status, &v, 500, "expired_tx_exception", "transaction has expired");
    assert_eq!(v["error"]["code"], 3_040_005);
    let (status, v) = push(&node, &tx_with(&node, vec![r()], 3700), &[&k.failover]).await;
    assert_error(status, &v, 500, "tx_exp_too_far_exception", "too far in the future");
    assert_eq!(v["error"]["code"], 3_040_006);
}

#[tokio::test]
async fn a_reference_block_the_chain_does_not_know_is_refused() {
    let k = keys();
    let node = start(&k).await;
    let mut tx = tx_with(&node, vec![regproducer("alice", "failover", "alice", k.backup.public_key(), "u")], 1800);
    tx.ref_block_prefix ^= 1;
    let (status, v) = push(&node, &tx, &[&k.failover]).await;
    assert_error(status, &v, 500, "invalid_ref_block_exception", "reference block did not match");
    assert_eq!(v["error"]["code"], 3_040_007);
    // A block number the sim never made.
    tx.ref_block_prefix ^= 1;
    tx.ref_block_num = tx.ref_block_num.wrapping_add(30_000);
    let (status, v) = push(&node, &tx, &[&k.failover]).await;
    assert_error(status, &v, 500, "invalid_ref_block_exception", "reference block");
}

#[tokio::test]
async fn a_duplicate_is_409() {
    let k = keys();
    let node = start(&k).await;
    let tx = tx_with(&node, vec![regproducer("alice", "failover", "alice", k.backup.public_key(), "u")], 1800);
    let (status, _) = push(&node, &tx, &[&k.failover]).await;
    assert_eq!(status, 202);
    let (status, v) = push(&node, &tx, &[&k.failover]).await;
    assert_error(status, &v, 409, "tx_duplicate", "duplicate transaction");
    assert_eq!(v["error"]["code"], 3_040_008);
    // Still a duplicate once included.
    node.wait_for_event(0, WAIT, |e| matches!(e, SimEvent::TxIncluded { txid, .. } if *txid == tx.id())).await.unwrap();
    let (status, _) = push(&node, &tx, &[&k.failover]).await;
    assert_eq!(status, 409);
}

/// The high-S twin of a signature: s' = n − s, recovery id flipped (recovers to the same key, not canonical).
fn high_s_twin(sig: &Signature) -> Signature {
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae,
        0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
    ];
    let mut out = sig.0;
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(N[i]) - i16::from(sig.0[33 + i]) - borrow;
        borrow = i16::from(d < 0);
        out[33 + i] = (d + if d < 0 { 256 } else { 0 }) as u8;
    }
    out[0] = 27 + 4 + ((sig.0[0] - 27 - 4) ^ 1);
    Signature(out)
}

#[tokio::test]
async fn a_non_canonical_signature_is_refused() {
    let k = keys();
    let node = start(&k).await;
    let tx = tx_with(&node, vec![regproducer("alice", "failover", "alice", k.backup.public_key(), "u")], 1800);
    let sig = tx.sign(&node.chain_id(), &k.failover).unwrap();
    let twin = high_s_twin(&sig);
    assert!(!twin.is_canonical());
    assert_eq!(twin.recover(&tx.sig_digest(&node.chain_id())).unwrap(), k.failover.public_key());
    let (status, v) = send2(&node.urls()[0], packed_transaction_json(&tx, &[twin])).await;
    assert_error(status, &v, 500, "assert_exception", "signature is not canonical");
}

#[tokio::test]
async fn no_cpu_left_is_tx_cpu_usage_exceeded() {
    let k = keys();
    let node = start(&k).await;
    node.set_cpu_available("alice", 0).unwrap();
    let url = &node.urls()[0];
    let acct = ok(url, "get_account", json!({"account_name": "alice"})).await;
    assert_eq!(acct["cpu_limit"]["available"], 0);
    let tx = tx_with(&node, vec![regproducer("alice", "failover", "alice", k.backup.public_key(), "u")], 1800);
    let (status, v) = push(&node, &tx, &[&k.failover]).await;
    assert_error(status, &v, 500, "tx_cpu_usage_exceeded", "billed CPU time");
    assert_eq!(v["error"]["code"], 3_080_004);
}

#[tokio::test]
async fn a_url_of_512_bytes_is_too_long() {
    let k = keys();
    let node = start(&k).await;
    let url = "x".repeat(512);
    let tx = tx_with(&node, vec![regproducer("alice", "failover", "alice", k.backup.public_key(), &url)], 1800);
    let (status, v) = push(&node, &tx, &[&k.failover]).await;
    assert_error(status, &v, 500, "eosio_assert_message_exception", "url too long");
    assert_eq!(v["error"]["code"], 3_050_003);
}

#[tokio::test]
async fn actfinkey_switches_the_finalizer_key_once() {
    let k = keys();
    let mut cfg = config(&k);
    let mut f = antelope_sim::FailoverPermission::new(k.failover.public_key());
    f.links.push(("eosio".into(), "actfinkey".into()));
    cfg.failover = Some(f);
    let backup_bls = cfg.backup_finalizer_key.clone();
    let node = SimNode::start(cfg).await.unwrap();
    let url = &node.urls()[0];
    let act = || {
        Action::new(
            n("eosio"),
            n("actfinkey"),
            auth("alice", "failover"),
            &ActFinKey { finalizer_name: n("alice"), finalizer_key: backup_bls.clone() },
        )
    };
    let tx = tx_with(&node, vec![act()], 1800);
    let (status, v) = push(&node, &tx, &[&k.failover]).await;
    assert_eq!(status, 202, "{v}");
    node.wait_for_event(0, WAIT, |e| matches!(e, SimEvent::FinalizerKeyActivated { .. })).await.unwrap();
    let fz = ok(
        url,
        "get_table_rows",
        json!({"json": true, "code": "eosio", "scope": "eosio", "table": "finalizers",
        "lower_bound": "alice", "upper_bound": "alice"}),
    )
    .await;
    let keys = ok(
        url,
        "get_table_rows",
        json!({"json": true, "code": "eosio", "scope": "eosio", "table": "finkeys", "limit": 100}),
    )
    .await;
    let id = keys["rows"].as_array().unwrap().iter().find(|r| r["finalizer_key"] == backup_bls.as_str()).unwrap()["id"]
        .clone();
    assert_eq!(fz["rows"][0]["active_key_id"], id);
    let tx = tx_with(&node, vec![act()], 1700);
    let (status, v) = push(&node, &tx, &[&k.failover]).await;
    assert_error(status, &v, 500, "eosio_assert_message_exception", "finalizer key was already active");
}

#[tokio::test]
async fn endpoint_faults() {
    let k = keys();
    let mut cfg = config(&k);
    cfg.endpoints = 2;
    let node = SimNode::start(cfg).await.unwrap();
    let (bad, good) = (node.urls()[1].clone(), node.urls()[0].clone());

    node.set_fault(1, Fault::Http503).unwrap();
    let resp = client().post(format!("{bad}/v1/chain/get_info")).body("{}").send().await.unwrap();
    assert_eq!(resp.status(), 503);

    node.set_fault(1, Fault::GarbageJson).unwrap();
    let resp = client().post(format!("{bad}/v1/chain/get_info")).body("{}").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(serde_json::from_str::<Value>(&resp.text().await.unwrap()).is_err());

    node.set_fault(1, Fault::Hang).unwrap();
    let quick = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    let r = quick.post(format!("{bad}/v1/chain/get_info")).body("{}").send().await;
    assert!(r.is_err_and(|e| e.is_timeout()));

    node.set_fault(1, Fault::WrongChainId([7; 32])).unwrap();
    let info = ok(&bad, "get_info", json!({})).await;
    assert_eq!(info["chain_id"], hex::encode([7u8; 32]));
    assert_eq!(ok(&good, "get_info", json!({})).await["chain_id"], jungle().to_hex());

    // Built on blocks the stale endpoint knows (TaPoS from the LIB before it froze).
    let tx = tx_with(&node, vec![regproducer("alice", "failover", "alice", k.backup.public_key(), "u")], 1800);
    node.set_fault(1, Fault::StaleHead).unwrap();
    let frozen = ok(&bad, "get_info", json!({})).await["head_block_num"].clone();
    blocks(&node, 4).await;
    assert_eq!(ok(&bad, "get_info", json!({})).await["head_block_num"], frozen);
    assert!(ok(&good, "get_info", json!({})).await["head_block_num"].as_u64() > frozen.as_u64());
    // A push to the stale endpoint is answered but never reaches the chain.
    let (status, _) = send2(&bad, signed(&tx, &node.chain_id(), &[&k.failover])).await;
    assert_eq!(status, 202);
    blocks(&node, 2).await;
    assert_eq!(node.tx_status(&tx.id()), TxStatus::Unknown);

    node.set_fault(1, Fault::Lagging(20)).unwrap();
    let lag = ok(&bad, "get_info", json!({})).await["head_block_num"].as_u64().unwrap();
    let real = u64::from(node.head().num);
    assert!(lag + 20 <= real, "{lag} vs {real}");
    blocks(&node, 3).await;
    assert!(ok(&bad, "get_info", json!({})).await["head_block_num"].as_u64().unwrap() > lag, "still advancing");
    let (status, _) = post(&bad, "get_block_info", json!({"block_num": real})).await;
    assert_eq!(status, 400, "the lagging view does not have the real head yet");

    node.set_fault(1, Fault::None).unwrap();
    assert!(ok(&bad, "get_info", json!({})).await["head_block_num"].as_u64().unwrap() >= real);
    assert!(node.rpc_calls_at(1)["get_info"] >= 8);
}

#[tokio::test]
async fn a_minority_fork_loses_the_watched_blocks_and_the_pushes() {
    let k = keys();
    let mut cfg = config(&k);
    cfg.endpoints = 2;
    let node = SimNode::start(cfg).await.unwrap();
    let (fork, good) = (node.urls()[1].clone(), node.urls()[0].clone());
    let info = ok(&fork, "get_info", json!({})).await;
    // TaPoS from before the fork point, which the fork knows.
    let tx = tx_with(&node, vec![regproducer("alice", "failover", "alice", k.backup.public_key(), "u")], 1800);
    node.set_fault(1, Fault::Fork).unwrap();
    // At or after the fork point: every later block is the fork's own.
    let base = node.head().num;
    let seq = node.last_seq();
    // Wait for a whole turn of alice on the real chain, and a few blocks more.
    let done = node
        .wait_for_event(seq, WAIT, |e| matches!(e, SimEvent::BlockProduced { producer, .. } if producer == "alice"))
        .await
        .unwrap();
    node.wait_for_event(
        done.seq,
        WAIT,
        |e| matches!(e, SimEvent::BlockProduced { producer, .. } if producer != "alice"),
    )
    .await
    .unwrap();
    blocks(&node, 2).await;
    let fi = ok(&fork, "get_info", json!({})).await;
    let gi = ok(&good, "get_info", json!({})).await;
    let fork_head = fi["head_block_num"].as_u64().unwrap();
    assert!(fork_head < gi["head_block_num"].as_u64().unwrap(), "the fork is shorter");
    assert!(fi["last_irreversible_block_num"].as_u64().unwrap() <= info["head_block_num"].as_u64().unwrap() + 1);
    let fork_lib = fi["last_irreversible_block_num"].clone();
    for num in u64::from(base) + 1..=fork_head {
        let fb = ok(&fork, "get_block_info", json!({"block_num": num})).await;
        assert_ne!(fb["producer"], "alice", "block {num}");
        let gb = ok(&good, "get_block_info", json!({"block_num": num})).await;
        assert_ne!(fb["id"], gb["id"], "block {num}");
    }
    let (status, v) = send2(&fork, signed(&tx, &node.chain_id(), &[&k.failover])).await;
    assert_eq!(status, 202, "{v}");
    node.wait_for_event(0, WAIT, |e| matches!(e, SimEvent::TxLostOnFork { .. })).await.unwrap();
    blocks(&node, 3).await;
    assert_eq!(node.tx_status(&tx.id()), TxStatus::Unknown);
    assert_eq!(ok(&fork, "get_info", json!({})).await["last_irreversible_block_num"], fork_lib, "LIB frozen");
}

#[tokio::test]
async fn a_microfork_replaces_the_last_block_ids() {
    let k = keys();
    let node = start(&k).await;
    let url = &node.urls()[0];
    blocks(&node, 3).await;
    let rec = node.microfork(2);
    let SimEvent::Microfork { depth, first_block, head_block } = rec.event else { unreachable!() };
    assert_eq!(depth, 2);
    assert_eq!(first_block + 1, head_block);
    let new_ids = node.with_chain(|c| (c.block(first_block).unwrap().id, c.block(head_block).unwrap().id));
    let b = ok(url, "get_block_info", json!({"block_num": first_block})).await;
    assert_eq!(b["id"], hex::encode(new_ids.0));
    let b2 = ok(url, "get_block_info", json!({"block_num": head_block})).await;
    assert_eq!(b2["previous"], hex::encode(new_ids.0));
    let prev = ok(url, "get_block_info", json!({"block_num": first_block - 1})).await;
    assert_eq!(b["previous"], prev["id"]);
}

#[tokio::test]
async fn a_late_block_is_a_gap_first_and_then_undone() {
    let k = keys();
    let node = start(&k).await;
    let url = &node.urls()[0];
    node.late_block(3);
    let held = node.wait_for_event(0, WAIT, |e| matches!(e, SimEvent::LateBlockHeld { .. })).await.unwrap();
    let SimEvent::LateBlockHeld { slot, .. } = held.event else { unreachable!() };
    let undone = node.wait_for_event(held.seq, WAIT, |e| matches!(e, SimEvent::MissUndone { .. })).await.unwrap();
    let SimEvent::MissUndone { slot: s2, block_num, .. } = undone.event else { unreachable!() };
    assert_eq!(slot, s2);
    let b = ok(url, "get_block_info", json!({"block_num": block_num})).await;
    assert_eq!(b["producer"], "alice");
    assert!(node.events().iter().any(|e| matches!(&e.event, SimEvent::SlotMissed { slot: s, .. } if *s == slot)));
}

#[tokio::test]
async fn the_control_server_switches_the_primary() {
    let k = keys();
    let node = start(&k).await;
    let controlled = std::sync::Arc::new(Controlled { node, network: "jungle".into(), k1_text: false });
    let stop = CancellationToken::new();
    let (port, _task) = control::serve(controlled.clone(), 0, stop.clone()).await.unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let r: Value = client().post(format!("{base}/primary/down")).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["primary_up"], false);
    let s: Value = client().get(format!("{base}/status")).send().await.unwrap().json().await.unwrap();
    assert_eq!(s["primary_up"], false);
    assert_eq!(s["producer"], "alice");
    assert_eq!(s["producer_key"], k.primary.public_key().to_legacy());
    controlled
        .node
        .wait_for_event(0, WAIT, |e| matches!(e, SimEvent::SlotMissed { producer, .. } if producer == "alice"))
        .await
        .unwrap();
    let s: Value = client().get(format!("{base}/status")).send().await.unwrap().json().await.unwrap();
    assert!(s["missed_slots"].as_u64().unwrap() >= 1);
    stop.cancel();
}
