//! The offline tools run as the operator runs them: the built binary, JSON on stdin, JSON on stdout; on bad
//! input a non-zero exit, empty stdout and exactly one stderr line naming the field — and never the WIF.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use graphene_protocol::*;
use serde_json::{json, Map, Value};

const BIN: &str = env!("CARGO_BIN_EXE_witness-trap");

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    // The process may exit before reading everything (e.g. a bad --chain); ignore a broken pipe.
    let _ = child.stdin.take().expect("stdin").write_all(stdin.as_bytes());
    child.wait_with_output().expect("binary finishes")
}

fn ok_json(out: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "expected success, stderr: {stderr}");
    assert!(out.stderr.is_empty(), "no stderr on success: {stderr}");
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// Asserts the failure contract and returns the stderr line.
fn failure(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8(out.stderr.clone()).expect("utf-8 stderr");
    assert!(!out.status.success(), "{what}: expected failure");
    assert!(out.stdout.is_empty(), "{what}: stdout must be empty, got {:?}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(stderr.lines().count(), 1, "{what}: one stderr line, got {stderr:?}");
    stderr
}

fn vectors() -> Vec<Value> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/graphene-protocol/tests/vectors/hive-steem-protocol.json");
    let v: Value = serde_json::from_slice(&std::fs::read(path).expect("vectors")).expect("json");
    v["cases"].as_array().expect("cases").clone()
}

fn case(id_prefix: &str) -> Value {
    vectors().into_iter().find(|c| c["id"].as_str().is_some_and(|id| id.starts_with(id_prefix))).expect("case")
}

/// The transaction JSON of an unsigned vector case.
fn tx_of(case: &Value) -> Value {
    let mut m: Map<String, Value> = case["input"].as_object().expect("input").clone();
    m.remove("chain_id");
    m.remove("head_block_id");
    Value::Object(m)
}

const WIF: &str = "5HtQi3NTCkxayuq97YG3FbR5ZoLjSn8rjduATq8jmdqH4Js2BDd";
const PUB: &str = "STM4z3STJxcpXjbW2L8Bo1LXid23M2ounqRC4VHATVq4Fvm5QJdoj";
const COMPRESSED: &str = "KxHJT88bqaH4569KnUKfUe9HUrcXqC4VAQStgSKkSMC6789fvwyZ";

#[test]
fn key_pub() {
    for chain in ["hive", "steem"] {
        let v = ok_json(&run(&["key", "pub", "--chain", chain], &format!("{WIF}\n")));
        assert_eq!(v, json!({ "public_key": PUB }));
    }
    let v = ok_json(&run(&["key", "pub", "--chain", "steem-testnet"], WIF));
    assert_eq!(v["public_key"], format!("TST{}", &PUB[3..]));
}

#[test]
fn key_pub_bad_input() {
    let mut bad_checksum = WIF.to_string();
    bad_checksum.pop();
    bad_checksum.push('e');
    let cases = [
        (COMPRESSED.to_string(), "stdin: wif has the compressed-key flag", "compressed wif"),
        (bad_checksum.clone(), "stdin: wif checksum does not match", "mistyped wif"),
        ("0OIl".to_string(), "stdin: wif is not base58", "not base58"),
        (String::new(), "stdin: no wif found", "empty stdin"),
        (format!("{WIF} {WIF}"), "stdin: wif is not base58", "two keys"),
    ];
    for (input, expect, what) in cases {
        let line = failure(&run(&["key", "pub"], &input), what);
        assert!(line.contains(expect), "{what}: {line:?} should contain {expect:?}");
        if input.len() >= 20 {
            assert!(!line.contains(&input[..20]), "{what}: the wif must not be echoed");
        }
    }
    let line = failure(&run(&["key", "pub", "--chain", "hiv"], WIF), "unknown chain");
    assert!(line.contains("--chain: unknown chain \"hiv\""), "{line}");
    assert!(!line.contains(WIF));
}

#[test]
fn key_new_writes_a_private_file_and_prints_only_the_public_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("backup.wif");
    let p = path.to_str().expect("utf-8 path");
    let out = run(&["key", "new", "--out", p], "");
    let v = ok_json(&out);
    let wif = std::fs::read_to_string(&path).expect("key file");
    let key = PrivateKey::from_wif(wif.trim()).expect("a standard wif");
    assert_eq!(v, json!({ "public_key": key.public_key().to_text("STM") }));
    assert!(!String::from_utf8_lossy(&out.stdout).contains(wif.trim()), "secret must not reach stdout");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // Never overwrite: the second run fails and the first key is intact.
    let line = failure(&run(&["key", "new", "--out", p], ""), "existing file");
    assert!(line.contains("--out") && line.contains("already exists"), "{line}");
    assert_eq!(std::fs::read_to_string(&path).expect("key file"), wif);
    let missing = dir.path().join("no/such/dir/k.wif");
    let line = failure(&run(&["key", "new", "--out", missing.to_str().expect("path")], ""), "bad dir");
    assert!(line.contains("--out") && line.contains("cannot write"), "{line}");
}

#[test]
fn tx_digest_hive_and_steem() {
    let hive = case("pub-08");
    let v = ok_json(&run(&["tx", "digest", "--chain", "hive"], &tx_of(&hive).to_string()));
    for form in ["legacy", "hf26"] {
        let e = &hive["expected"][form];
        let got = if form == "legacy" { &v } else { &v["hf26"] };
        assert_eq!(got["serialized_hex"], e["serialized_hex"], "{form}");
        assert_eq!(got["sig_digest"], e["sig_digest"], "{form}");
        assert_eq!(got["txid"], e["txid"], "{form}");
    }
    // A chain id works as well as a name.
    let by_id = ok_json(&run(
        &["tx", "digest", "--chain", "beeab0de00000000000000000000000000000000000000000000000000000000"],
        &tx_of(&hive).to_string(),
    ));
    assert_eq!(by_id, v);

    let steem = case("pub-06");
    let v = ok_json(&run(&["tx", "digest", "--chain", "steem"], &tx_of(&steem).to_string()));
    assert_eq!(v["sig_digest"], steem["expected"]["legacy"]["sig_digest"]);
    assert_eq!(v["txid"], steem["expected"]["legacy"]["txid"]);
    assert!(v.get("hf26").is_none(), "steem has no hf26 form");
    // The Steem JSON on Hive is an error, not a silent default (§0 item 5).
    let line = failure(&run(&["tx", "digest", "--chain", "hive"], &tx_of(&steem).to_string()), "steem json on hive");
    assert!(line.contains("operations[0][1]"), "{line}");
}

#[test]
fn tx_bad_input_table() {
    let good = tx_of(&case("pub-10"));
    let mut unknown_op = good.clone();
    unknown_op["operations"][0][0] = json!("transfer");
    let mut wrong_type = good.clone();
    wrong_type["ref_block_num"] = json!("30003");
    let mut misspelt = tx_of(&case("pub-08"));
    let props = misspelt["operations"][0][1]["props"].as_object_mut().expect("props");
    let rate = props.remove("hbd_interest_rate").expect("rate");
    props.insert("hbd_intrest_rate".into(), rate);
    let mut bad_key = tx_of(&case("pub-06"));
    bad_key["operations"][0][1]["block_signing_key"] = json!("STM7mikds2W7s7GEPJTNm8fLsCQDHagRfeRSWBofGRtMfPn3uKnRy");
    let bad_id = "g".repeat(64);
    let cases: Vec<(Vec<&str>, String, &str, &str)> = vec![
        (vec!["tx", "digest", "--chain", "hive"], "{not json".into(), "stdin: invalid json", "invalid JSON"),
        (vec!["tx", "digest", "--chain", "hive"], "".into(), "stdin: invalid json", "empty stdin"),
        (
            vec!["tx", "digest", "--chain", "hive"],
            unknown_op.to_string(),
            "operations[0][0]: unknown operation \"transfer\"",
            "unknown op",
        ),
        (
            vec!["tx", "digest", "--chain", "hive"],
            wrong_type.to_string(),
            "ref_block_num: expected an unsigned integer",
            "wrong type",
        ),
        (
            vec!["tx", "digest", "--chain", "hive"],
            misspelt.to_string(),
            "operations[0][1].props.hbd_interest_rate: missing field",
            "misspelt field",
        ),
        (
            vec!["tx", "digest", "--chain", "steem"],
            bad_key.to_string(),
            "operations[0][1].block_signing_key: public key checksum",
            "bad key",
        ),
        (vec!["tx", "digest", "--chain", "beef"], good.to_string(), "--chain: unknown chain", "bad chain"),
        (
            vec!["tx", "digest", "--chain", &bad_id],
            good.to_string(),
            "--chain: chain id is not hexadecimal",
            "bad chain id",
        ),
    ];
    for (args, input, expect, what) in cases {
        let line = failure(&run(&args, &input), what);
        assert!(line.contains(expect), "{what}: {line:?} should contain {expect:?}");
    }
}

fn wif_file(dir: &Path, name: &str, wif: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("{wif}\n")).expect("write wif file");
    path.to_str().expect("utf-8").to_string()
}

#[test]
fn tx_sign_appends_one_checked_signature() {
    let dir = tempfile::tempdir().expect("temp dir");
    for id in ["pub-10", "pub-13"] {
        let c = case(id);
        let chain =
            ChainSpec::from_chain_id(parse_chain_id_hex(c["input"]["chain_id"].as_str().expect("id")).expect("hex"));
        let wif = c["current_signing_key_wif"].as_str().expect("wif");
        let file = wif_file(dir.path(), id, wif);
        let input = tx_of(&c);
        let out = run(&["tx", "sign", "--chain", &chain.name, "--wif-file", &file], &input.to_string());
        let v = ok_json(&out);
        assert!(!String::from_utf8_lossy(&out.stdout).contains(wif));
        let signed = transaction_from_json(&v, &chain).expect("output parses");
        let [sig] = signed.signatures[..] else { panic!("{id}: one signature") };
        let digest = signed.transaction.digest(&chain, PackMode::Legacy);
        assert_eq!(hex::encode(digest), c["expected"]["legacy"]["sig_digest"].as_str().expect("digest"));
        assert_eq!(recover(&digest, &sig), Ok(PrivateKey::from_wif(wif).expect("wif").public_key()));
        assert!(sig.is_low_s() && sig.is_fc_canonical());
        // Same transaction, one more field.
        let mut expect = input.clone();
        expect["signatures"] = json!([sig.to_hex()]);
        assert_eq!(v, expect);
    }
}

#[test]
fn tx_sign_refusals() {
    let dir = tempfile::tempdir().expect("temp dir");
    let any_key = wif_file(dir.path(), "good", WIF);
    let compressed = wif_file(dir.path(), "compressed", COMPRESSED);
    let invalid = tx_of(&case("pub-20"));
    let signed_14 = case("pub-14");
    let signer_14 = wif_file(dir.path(), "signer14", signed_14["signer_wif"].as_str().expect("wif"));
    let valid = tx_of(&case("pub-10")).to_string();
    let missing = dir.path().join("absent").to_str().expect("path").to_string();
    let cases: Vec<(Vec<&str>, String, &str, &str)> = vec![
        (
            vec!["--chain", "hive", "--wif-file", &any_key],
            invalid.to_string(),
            "operations[0][1].url: url size must be greater than 0",
            "invalid op (pub-20)",
        ),
        (vec!["--chain", "hive", "--wif-file", &compressed], valid.clone(), "--wif-file", "compressed wif file"),
        (vec!["--chain", "hive", "--wif-file", &missing], valid.clone(), "cannot read", "missing wif file"),
        (
            vec!["--chain", "hive", "--wif-file", &signer_14],
            signed_14["input"]["transaction"].to_string(),
            "already signed by this key",
            "duplicate signer",
        ),
        (
            vec!["--chain", "hive", "--wif-file", &any_key],
            "[]".into(),
            "transaction: expected an object",
            "not an object",
        ),
    ];
    for (args, input, expect, what) in cases {
        let mut full = vec!["tx", "sign"];
        full.extend(args);
        let line = failure(&run(&full, &input), what);
        assert!(line.contains(expect), "{what}: {line:?} should contain {expect:?}");
        for secret in [WIF, COMPRESSED, signed_14["signer_wif"].as_str().expect("wif")] {
            assert!(!line.contains(secret), "{what}: stderr leaks a wif");
        }
    }
}
