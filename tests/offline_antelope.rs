//! The offline tools on Antelope chains, run as the operator runs them (the built binary, JSON on stdin and
//! stdout): every output checked against the wharfkit/eosjs vectors or by recovery; on bad input a non-zero
//! exit, empty stdout and one stderr line naming the problem, never key text.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use antelope_protocol::chain::network;
use antelope_protocol::json::transaction_from_json;
use antelope_protocol::keys::PublicKey;
use antelope_protocol::signature::Signature;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_witness-trap");

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let _ = child.stdin.take().expect("stdin").write_all(stdin.as_bytes());
    child.wait_with_output().expect("binary finishes")
}

fn ok_json(out: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "expected success, stderr: {stderr}");
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn failure(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8(out.stderr.clone()).expect("utf-8 stderr");
    assert!(!out.status.success(), "{what}: expected failure");
    assert!(out.stdout.is_empty(), "{what}: stdout must be empty, got {:?}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(stderr.lines().count(), 1, "{what}: one stderr line, got {stderr:?}");
    stderr
}

fn cases() -> Vec<Value> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/antelope-protocol/tests/vectors/antelope-protocol.json");
    let v: Value = serde_json::from_slice(&std::fs::read(path).expect("vectors")).expect("json");
    v["cases"].as_array().expect("cases").clone()
}

fn case(prefix: &str) -> Value {
    cases().into_iter().find(|c| c["id"].as_str().is_some_and(|id| id.starts_with(prefix))).expect("case")
}

#[test]
fn key_pub_gives_both_texts_from_a_wif_or_a_pvt_k1() {
    for c in [case("pub-01"), case("pub-03")] {
        let e = &c["expected"];
        for input in [e["wif"].as_str().expect("wif"), e["pvt_k1"].as_str().expect("pvt")] {
            let v = ok_json(&run(&["key", "pub", "--chain", "eos"], &format!("{input}\n")));
            assert_eq!(v, json!({"public_key": e["public_key_legacy"], "public_key_k1": e["public_key_k1"]}));
        }
    }
}

#[test]
fn key_parse_gives_the_forms_and_bytes_or_names_the_check_that_failed() {
    let e = &case("pub-02")["expected"];
    for text in [e["public_key_legacy"].as_str().expect("k"), e["public_key_k1"].as_str().expect("k")] {
        let v = ok_json(&run(&["key", "parse", "--chain", "wax"], text));
        assert_eq!(v["public_key"], e["public_key_legacy"]);
        assert_eq!(v["public_key_k1"], e["public_key_k1"]);
        assert_eq!(v["hex"], e["public_key_hex"]);
    }
    for (id, word) in
        [("pub-04", "bad checksum"), ("pub-05", "bad checksum"), ("pub-06", "wrong prefix"), ("pub-07", "wrong length")]
    {
        let text = case(id)["input"]["public_key"].as_str().expect("key").to_string();
        let line = failure(&run(&["key", "parse", "--chain", "eos"], &text), id);
        assert!(line.contains(word), "{id}: {line}");
    }
    let line = failure(&run(&["key", "parse", "--chain", "eos"], "EOS0OIl"), "base58");
    assert!(line.contains("bad base58"), "{line}");
}

#[test]
fn key_pub_refuses_a_bad_wif_without_echoing_it() {
    let bad = case("pub-08")["input"]["private_key"].as_str().expect("wif").to_string();
    let line = failure(&run(&["key", "pub", "--chain", "eos"], &bad), "bad wif");
    assert!(line.contains("checksum") && !line.contains(&bad[..12]), "{line}");
}

#[test]
fn key_new_writes_a_key_that_key_pub_reads_back() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("failover.wif");
    let v = ok_json(&run(&["key", "new", "--chain", "eos", "--out", file.to_str().expect("path")], ""));
    let wif = std::fs::read_to_string(&file).expect("key file");
    assert!(!v.to_string().contains(wif.trim()), "the secret never goes to stdout");
    let back = ok_json(&run(&["key", "pub", "--chain", "eos"], &wif));
    assert_eq!(back, v);
    failure(&run(&["key", "new", "--chain", "eos", "--out", file.to_str().expect("path")], ""), "exists");
}

#[test]
fn tx_digest_matches_every_transaction_vector() {
    let mut n = 0;
    for c in
        cases().into_iter().filter(|c| c["expected"]["packed_trx"].is_string() && c["input"]["transaction"].is_object())
    {
        let chain = c["input"]["chain"].as_str().expect("chain");
        let v = ok_json(&run(&["tx", "digest", "--chain", chain], &c["input"]["transaction"].to_string()));
        let e = &c["expected"];
        assert_eq!(
            (&v["packed_trx"], &v["sig_digest"], &v["txid"]),
            (&e["packed_trx"], &e["digest"], &e["txid"]),
            "{}",
            c["id"]
        );
        // The same by chain id.
        let by_id = ok_json(&run(
            &["tx", "digest", "--chain", c["input"]["chain_id"].as_str().expect("id")],
            &c["input"]["transaction"].to_string(),
        ));
        assert_eq!(by_id, v);
        n += 1;
    }
    assert_eq!(n, 9, "every transaction case");
}

#[test]
fn tx_sign_adds_a_canonical_signature_that_recovers_to_the_signer() {
    let c = case("pub-15");
    let dir = tempfile::tempdir().expect("dir");
    let wif = dir.path().join("k.wif");
    std::fs::write(&wif, format!("{}\n", c["signer"]["wif"].as_str().expect("wif"))).expect("write");
    let v = ok_json(&run(
        &["tx", "sign", "--chain", "jungle", "--wif-file", wif.to_str().expect("p")],
        &c["input"]["transaction"].to_string(),
    ));
    assert_eq!(v["packed_trx"], c["expected"]["packed_trx"]);
    let tx = transaction_from_json(&v).expect("the output is a transaction");
    let sig = Signature::from_text(v["signatures"][0].as_str().expect("sig")).expect("SIG_K1_");
    let signer = PublicKey::from_text(c["signer"]["public_key"].as_str().expect("k")).expect("key");
    let chain = network("jungle").expect("jungle").chain_id;
    assert!(sig.is_canonical());
    assert_eq!(sig.recover(&tx.sig_digest(&chain)), Ok(signer));
}

#[test]
fn tx_bad_input_names_the_field_and_never_reads_the_key() {
    let mut tx = case("pub-11")["input"]["transaction"].clone();
    tx["actions"][0]["data"]["producer_key"] = json!("STM61PtzTTAT8mLQJii257JF5i9rW6SQHPZiavgfZcWXZPUXNj2Bw");
    let line = failure(&run(&["tx", "digest", "--chain", "eos"], &tx.to_string()), "stm key");
    assert!(line.contains("actions[0].data.producer_key") && line.contains("wrong prefix"), "{line}");
    let mut tx = case("pub-11")["input"]["transaction"].clone();
    tx["actions"][0]["data"]["producer"] = json!("Gh1wo4b");
    let line = failure(&run(&["tx", "digest", "--chain", "eos"], &tx.to_string()), "bad name");
    assert!(line.contains("actions[0].data.producer"), "{line}");
    // sign: a bad transaction fails before the (missing) key file is read.
    let line = failure(&run(&["tx", "sign", "--chain", "eos", "--wif-file", "/nonexistent"], &tx.to_string()), "sign");
    assert!(line.contains("actions[0].data.producer") && !line.contains("wif-file"), "{line}");
    let line = failure(&run(&["tx", "digest", "--chain", "eos"], "not json"), "json");
    assert!(line.contains("stdin"), "{line}");
}

#[test]
fn setup_permission_prints_the_transaction_and_the_cleos_commands() {
    let key = case("pub-19")["signer"]["public_key"].as_str().expect("k").to_string();
    let v = ok_json(&run(
        &["tx", "setup-permission", "--chain", "wax", "--account", "baagld.ak", "--key", &key, "--finalizer"],
        "",
    ));
    assert_eq!(v.as_object().map(|o| o.len()), Some(2), "exactly transaction and cleos: {v}");
    let actions = v["transaction"]["actions"].as_array().expect("actions");
    let names: Vec<&str> = actions.iter().map(|a| a["name"].as_str().expect("name")).collect();
    assert_eq!(names, ["updateauth", "linkauth", "linkauth"]);
    assert_eq!(actions[0]["data"]["parent"], "active");
    assert_eq!(actions[0]["data"]["auth"]["keys"][0]["key"], key);
    assert_eq!(actions[1]["data"]["type"], "regproducer");
    assert_eq!(actions[2]["data"]["type"], "actfinkey");
    assert!(actions.iter().all(|a| a["authorization"][0]["permission"] == "active"));
    let cleos: Vec<&str> = v["cleos"].as_array().expect("cleos").iter().map(|c| c.as_str().expect("cmd")).collect();
    assert!(cleos[0].starts_with("cleos set account permission baagld.ak failover "), "{cleos:?}");
    assert_eq!(cleos[1], "cleos set action permission baagld.ak eosio regproducer failover -p baagld.ak@active");
    // The header is left to fill; filled in, the updateauth is byte for byte the vector's (pub-19).
    let mut tx = v["transaction"].clone();
    let line = failure(&run(&["tx", "digest", "--chain", "wax"], &tx.to_string()), "placeholders");
    assert!(line.contains("expiration"), "{line}");
    let want = &case("pub-19");
    tx["expiration"] = want["input"]["transaction"]["expiration"].clone();
    tx.as_object_mut().expect("obj").remove("block_id");
    tx["ref_block_num"] = want["input"]["transaction"]["ref_block_num"].clone();
    tx["ref_block_prefix"] = want["input"]["transaction"]["ref_block_prefix"].clone();
    tx["actions"] = json!([actions[0].clone()]);
    let d = ok_json(&run(&["tx", "digest", "--chain", "wax"], &tx.to_string()));
    assert_eq!(d["packed_trx"], want["expected"]["packed_trx"]);
}

#[test]
fn setup_permission_refuses_owner_active_bad_keys_and_names() {
    let key = case("pub-19")["signer"]["public_key"].as_str().expect("k").to_string();
    for (args, word) in [
        (vec!["--account", "alice", "--key", &key, "--permission", "active"], "--permission"),
        (vec!["--account", "alice", "--key", &key, "--permission", "owner"], "--permission"),
        (vec!["--account", "Alice", "--key", &key], "--account"),
        (vec!["--account", "alice", "--key", "STM6JS1B6gQJ3E89cjFx5bCLEv1ne6HiSEzXh1LLxFYb7NTABVdHV"], "--key"),
    ] {
        let mut all = vec!["tx", "setup-permission", "--chain", "eos"];
        all.extend(args.iter().copied());
        let line = failure(&run(&all, ""), word);
        assert!(line.contains(word), "{word}: {line}");
    }
    let line =
        failure(&run(&["tx", "setup-permission", "--chain", "hive", "--account", "alice", "--key", &key], ""), "hive");
    assert!(line.contains("Antelope"), "{line}");
}
