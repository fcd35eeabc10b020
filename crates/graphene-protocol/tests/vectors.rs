//! Dispatches on each vector's `kind`; an unknown kind fails, and the number of cases checked must equal
//! the file's `count`. Our own signatures are checked by recovering the key, never by comparing bytes.

use std::path::Path;

use graphene_protocol::operation::Problem;
use graphene_protocol::*;
use serde_json::{json, Map, Value};

const VECTORS: &str = "tests/vectors/hive-steem-protocol.json";
// The repository sits beside `shared/`: three levels up from this crate.
const SHARED: &str = "../../../shared/vectors/hive-steem-protocol.json";

fn load() -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(root.join(VECTORS)).expect("vector file is part of the repository");
    let shared = root.join(SHARED);
    if shared.exists() {
        let original = std::fs::read(&shared).expect("shared vectors readable");
        assert!(original == bytes, "{VECTORS} differs from {SHARED}: re-copy it verbatim");
    } else {
        eprintln!("note: {SHARED} not found next to the crate; using the in-repo copy only");
    }
    serde_json::from_slice(&bytes).expect("vector file is JSON")
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("vector field {key} is not a string"))
}

fn hex32(v: &str) -> [u8; 32] {
    parse_chain_id_hex(v).expect("32-byte hex")
}

fn chain_of(input: &Value) -> ChainSpec {
    let chain = ChainSpec::from_chain_id(hex32(s(input, "chain_id")));
    assert!(!chain.testnet, "vectors are mainnet");
    chain
}

fn pubkey(text: &str) -> PublicKey {
    PublicKey::from_text(text, "STM").expect("vector public key parses")
}

/// The transaction JSON inside an unsigned-case `input`: everything but `chain_id` and `head_block_id`.
fn tx_json_of(input: &Value) -> Value {
    let mut m: Map<String, Value> = input.as_object().expect("input object").clone();
    m.remove("chain_id");
    m.remove("head_block_id");
    Value::Object(m)
}

/// Signs with `wif` the way the trap does and checks the result by recovery only.
fn check_our_signature(tx: &Transaction, chain: &ChainSpec, wif: &str, id: &str) {
    let key = PrivateKey::from_wif(wif).expect("vector wif");
    let signed = sign_transaction(tx, chain, &key).unwrap_or_else(|e| panic!("{id}: sign: {e}"));
    assert_eq!(signed.signatures.len(), 1);
    let sig = signed.signatures[0];
    assert!(sig.is_low_s() && sig.is_fc_canonical() && sig.hived_accepts(), "{id}: canonical");
    assert!((31..=34).contains(&sig.header()), "{id}: header");
    let digest = tx.digest(chain, PackMode::Legacy);
    assert_eq!(recover(&digest, &sig), Ok(key.public_key()), "{id}: recovers to signer");
}

fn check_digests(tx: &Transaction, chain: &ChainSpec, expected: &Value, id: &str) -> usize {
    let mut forms = 0;
    for (name, mode) in [("legacy", PackMode::Legacy), ("hf26", PackMode::Hf26)] {
        let Some(e) = expected.get(name) else { continue };
        assert_eq!(hex::encode(tx.serialize(mode)), s(e, "serialized_hex"), "{id}: {name} bytes");
        assert_eq!(hex::encode(tx.digest(chain, mode)), s(e, "sig_digest"), "{id}: {name} digest");
        assert_eq!(tx.id(mode).to_string(), s(e, "txid"), "{id}: {name} txid");
        forms += 1;
    }
    assert!(expected.get("legacy").is_some(), "{id}: every case has a legacy form");
    if chain.has_hf26() {
        assert!(expected.get("hf26").is_some(), "{id}: hive cases carry the hf26 form");
    }
    forms
}

fn unsigned_case(case: &Value, id: &str) {
    let input = &case["input"];
    let chain = chain_of(input);
    let json_in = tx_json_of(input);
    let signed = transaction_from_json(&json_in, &chain).unwrap_or_else(|e| panic!("{id}: parse: {e}"));
    assert!(signed.signatures.is_empty());
    let tx = &signed.transaction;
    // struct → JSON gives back the vector's JSON exactly; JSON → struct → bytes is checked by the digests.
    assert_eq!(unsigned_transaction_to_json(tx, &chain), json_in, "{id}: JSON round trip");
    assert!(check_digests(tx, &chain, &case["expected"], id) >= 1);
    assert_eq!(case["wax_validate"], "ok");
    tx.validate(&chain).unwrap_or_else(|e| panic!("{id}: validate: {e}"));

    if let Some(head) = input.get("head_block_id") {
        let head = BlockId::from_hex(head.as_str().expect("hex")).expect("block id");
        let (num, prefix) = head.tapos();
        assert_eq!(
            (u64::from(num), u64::from(prefix)),
            (input["ref_block_num"].as_u64().expect("u16"), input["ref_block_prefix"].as_u64().expect("u32")),
            "{id}: TaPoS"
        );
        let again = Transaction::with_tapos(&head, tx.expiration, tx.operations.clone());
        assert_eq!(&again, tx, "{id}: with_tapos");
    }

    if let Some(hl) = case.get("input_props_high_level") {
        let Operation::WitnessSetProperties(op) = &tx.operations[0] else { panic!("{id}: op 42 expected") };
        let mut built =
            WitnessSetProperties::key_swap(&op.owner, pubkey(s(hl, "key")), pubkey(s(hl, "new_signing_key")));
        for (name, value) in hl.as_object().expect("object") {
            match name.as_str() {
                "key" | "new_signing_key" => {}
                "url" => {
                    built.set_string(name, value.as_str().expect("url"));
                }
                "account_creation_fee" => {
                    let fee = Asset::from_legacy_str(value.as_str().expect("fee"), &chain).expect("fee parses");
                    built.set_asset(name, fee, &chain);
                }
                "maximum_block_size" => {
                    built.set_u32(name, u32::try_from(value.as_u64().expect("u32")).expect("u32"));
                }
                "hbd_interest_rate" | "sbd_interest_rate" => {
                    built.set_u16(name, u16::try_from(value.as_u64().expect("u16")).expect("u16"));
                }
                other => panic!("{id}: unexpected high-level prop {other}"),
            }
        }
        assert_eq!(&built, op, "{id}: typed prop helpers give the vector's packed values");
        // The signer is the key named in `key`, as `required_authorities.other` says.
        let auth = &case["required_authorities"]["other"][0]["key_auths"];
        assert_eq!(auth[op.key().expect("key").to_text("STM")], 1, "{id}: authority");
        let wif = s(case, "current_signing_key_wif");
        assert_eq!(PrivateKey::from_wif(wif).expect("wif").public_key(), op.key().expect("key"));
        check_our_signature(tx, &chain, wif, id);
    } else {
        let Operation::WitnessUpdate(op) = &tx.operations[0] else { panic!("{id}: op 11 expected") };
        assert_eq!(case["required_authorities"]["active"], json!([op.owner]), "{id}: active authority");
        if op.block_signing_key.is_null() {
            assert_eq!(s(&op_json(&signed, &chain), "block_signing_key"), "STM1111111111111111111111111111111114T1Anm");
        }
    }

    if let Some(hf26) = case.get("input_hf26_json") {
        // The appbase form is not parsed; check its NAI amounts agree with what we parsed from condenser JSON.
        let Operation::WitnessUpdate(op) = &tx.operations[0] else { panic!("{id}: op 11 expected") };
        let v = &hf26["operations"][0]["value"];
        for (nai, asset) in [(&v["props"]["account_creation_fee"], op.props.account_creation_fee), (&v["fee"], op.fee)]
        {
            assert_eq!(nai["amount"], json!(asset.amount.to_string()), "{id}: NAI amount");
            assert_eq!(nai["nai"], "@@000000021", "{id}: NAI symbol");
            assert_eq!(asset.symbol, AssetSymbol::Core);
        }
        assert_eq!(v["props"]["hbd_interest_rate"], json!(op.props.interest_rate));
    }
}

fn op_json(tx: &SignedTransaction, chain: &ChainSpec) -> Value {
    transaction_to_json(tx, chain)["operations"][0][1].clone()
}

fn signed_case(case: &Value, id: &str) {
    let input = &case["input"];
    let chain = chain_of(input);
    let e = &case["expected"];
    let signed = transaction_from_json(&input["transaction"], &chain).unwrap_or_else(|e| panic!("{id}: parse: {e}"));
    assert_eq!(transaction_to_json(&signed, &chain), input["transaction"], "{id}: JSON round trip");
    let tx = &signed.transaction;
    let legacy = tx.digest(&chain, PackMode::Legacy);
    assert_eq!(hex::encode(legacy), s(e, "legacy_digest"), "{id}: legacy digest");
    let hf26 = tx.digest(&chain, PackMode::Hf26);
    if let Some(h) = e.get("hf26_digest") {
        assert_eq!(hex::encode(hf26), h.as_str().expect("hex"), "{id}: hf26 digest");
    }
    let signed_digest = hex32(s(e, "signed_digest"));
    let mode = if signed_digest == legacy {
        PackMode::Legacy
    } else {
        assert_eq!(signed_digest, hf26, "{id}: signed digest is one of ours");
        PackMode::Hf26
    };
    assert_eq!(tx.id(mode).to_string(), s(e, "txid"), "{id}: txid of the signed form");

    let expected_key = pubkey(s(e, "recovered_public_key"));
    let signer = PrivateKey::from_wif(s(case, "signer_wif")).expect("signer wif");
    assert_eq!(signer.public_key(), expected_key, "{id}: signer wif");
    let [sig] = signed.signatures[..] else { panic!("{id}: one signature") };
    assert_eq!(recover(&signed_digest, &sig), Ok(expected_key), "{id}: recovery");
    if mode == PackMode::Hf26 {
        // hived tries hf26 first, then legacy (§1.4): over the other digest the same bytes name another key.
        assert_ne!(recover(&legacy, &sig), Ok(expected_key), "{id}: legacy recovery differs");
    }
    let a = &e["signature_analysis"];
    assert_eq!(json!(sig.header()), a["header"]);
    assert_eq!(json!((sig.header() - 27) & 3), a["recovery_id"]);
    assert_eq!(json!(sig.is_fc_canonical()), a["fc_canonical"], "{id}: fc_canonical");
    assert_eq!(json!(sig.is_low_s()), a["low_s"], "{id}: low_s");
    assert_eq!(json!(sig.0[1] & 0x80 != 0), a["r_high_bit"]);
    assert_eq!(json!(sig.0[33] & 0x80 != 0), a["s_high_bit"]);
    assert_eq!(json!(sig.hived_accepts()), e["hived_accepts_signature_encoding"], "{id}: hived verdict");
    for (lib, other) in case["other_valid_signatures_same_digest"].as_object().expect("object") {
        let other = Signature::from_hex(other.as_str().expect("hex")).expect("signature");
        assert_eq!(recover(&signed_digest, &other), Ok(expected_key), "{id}: {lib} signature recovers");
        assert!(other.hived_accepts(), "{id}: {lib} signature accepted");
    }
    check_our_signature(tx, &chain, s(case, "signer_wif"), id);
    // Appending our signature keeps the vector's; signing twice with one key is refused.
    let mut more = signed.clone();
    let other_key = PrivateKey::generate();
    add_signature(&mut more, &chain, &other_key).expect("second signer");
    assert_eq!(more.signatures[0], sig);
    assert_eq!(add_signature(&mut more, &chain, &other_key), Err(SignError::AlreadySigned));
}

fn high_s_case(case: &Value, id: &str, hived_accepts: bool) {
    let input = &case["input"];
    let chain = chain_of(input);
    let e = &case["expected"];
    let signed = transaction_from_json(&input["transaction"], &chain).expect("parse");
    let digest = signed.transaction.digest(&chain, PackMode::Legacy);
    assert_eq!(hex::encode(digest), s(e, "sig_digest"), "{id}: digest");
    let [sig] = signed.signatures[..] else { panic!("{id}: one signature") };
    assert_eq!(json!(sig.is_low_s()), e["low_s"]);
    assert!(!sig.is_low_s());
    assert_eq!(json!(sig.is_fc_canonical()), e["fc_canonical"]);
    assert_eq!(e["hived_accepts_signature_encoding"], json!(hived_accepts));
    assert_eq!(sig.hived_accepts(), hived_accepts, "{id}: memcmp rule");
    let key = pubkey(s(e, "mathematically_recovers_to"));
    assert_eq!(key, pubkey(s(case, "signer_public_key")));
    assert_eq!(recover(&digest, &sig), Ok(key), "{id}: high-S recovers");
    // Our self-check refuses high-S even where hived would accept it.
    assert!(self_check(&digest, &sig, &key).is_err());
    let twin = Signature::from_hex(s(case, "low_s_twin_signature")).expect("twin");
    assert!(twin.is_low_s() && twin.hived_accepts(), "{id}: low-S twin");
    assert_eq!(recover(&digest, &twin), Ok(key), "{id}: twin recovers");
}

fn invalid_case(case: &Value, id: &str) {
    let input = &case["input"];
    let chain = chain_of(input);
    let e = &case["expected"];
    assert_eq!(e["valid"], false);
    assert!(s(e, "error").contains("URL size must be greater than 0"));
    let tx = transaction_from_json(&tx_json_of(input), &chain).expect("parses").transaction;
    let err = tx.validate(&chain).expect_err("empty url is invalid");
    assert_eq!((err.field.as_str(), &err.problem), ("operations[0][1].url", &Problem::EmptyUrl), "{id}");
    assert_eq!(
        hex::encode(tx.digest(&chain, PackMode::Legacy)),
        s(e, "legacy_sig_digest_if_serialized_anyway"),
        "{id}: digest"
    );
    let key = PrivateKey::generate();
    assert!(matches!(sign_transaction(&tx, &chain, &key), Err(SignError::Invalid(_))), "{id}: refused");
}

fn wif_case(case: &Value, id: &str) {
    let wif = s(&case["input"], "wif");
    let e = &case["expected"];
    let key = PrivateKey::from_wif(wif).unwrap_or_else(|e| panic!("{id}: {e}"));
    assert_eq!(key.public_key().to_text("STM"), s(e, "public_key"), "{id}");
    assert_eq!(hex::encode(*key.secret_bytes()), s(e, "private_key_hex"), "{id}");
    assert_eq!(key.public_key().to_hex(), s(e, "public_key_compressed_hex"), "{id}");
    assert_eq!(key.to_wif().as_str(), wif);
    assert_eq!(pubkey(s(e, "public_key")), key.public_key());
}

fn null_key_case(case: &Value, id: &str) {
    let e = &case["expected"];
    let key = PublicKey::from_hex(s(&case["input"], "public_key_compressed_hex")).expect("null key");
    assert!(key.is_null() && key == PublicKey::NULL, "{id}");
    assert_eq!(key.to_text("STM"), s(e, "public_key"));
    assert_eq!(pubkey(s(e, "public_key")), PublicKey::NULL);
    let mut sink = Sink::new(PackMode::Legacy);
    key.pack(&mut sink);
    assert_eq!(hex::encode(sink.as_bytes()), s(e, "serialized_hex"));
}

fn compressed_wif_case(case: &Value, id: &str) {
    let wif = s(&case["input"], "wif");
    let e = &case["expected"];
    assert_eq!(e["recommended"], "reject");
    let err = PrivateKey::from_wif(wif).expect_err("compressed wif is rejected");
    assert_eq!(err, KeyError::WifCompressedFlag, "{id}: rejected for the flag");
    let msg = err.to_string();
    assert!(!msg.contains(wif) && !msg.contains(&wif[..10]), "{id}: error must not echo the wif");
    let standard = PrivateKey::from_wif(s(e, "standard_wif_of_same_key")).expect("standard form");
    assert_eq!(standard.public_key().to_text("STM"), s(e, "public_key_of_same_key"));
    assert_eq!(s(e, "hived_public_key"), s(e, "public_key_of_same_key"));
}

#[test]
fn every_vector() {
    let file = load();
    let cases = file["cases"].as_array().expect("cases");
    let mut checked = 0u64;
    for case in cases {
        let id = s(case, "id");
        match s(case, "kind") {
            "wif_to_pubkey" => wif_case(case, id),
            "null_public_key" => null_key_case(case, id),
            "wif_compressed_flag_nonstandard" => compressed_wif_case(case, id),
            "witness_update_steem"
            | "witness_update_steem_null_key"
            | "witness_update_hive"
            | "witness_set_properties_hive_key_only"
            | "witness_set_properties_hive_extra_props"
            | "witness_set_properties_steem_key_only"
            | "witness_set_properties_steem_extra_props" => unsigned_case(case, id),
            "signed_witness_update_hive_legacy"
            | "signed_witness_update_hive_hf26"
            | "signed_witness_update_steem_legacy"
            | "signed_witness_set_properties_hive_legacy" => signed_case(case, id),
            "high_s_twin_hived_rejects" => high_s_case(case, id, false),
            "high_s_twin_hived_accepts" => high_s_case(case, id, true),
            "invalid_witness_update_empty_url" => invalid_case(case, id),
            other => panic!("{id}: unknown vector kind {other:?}: add a checker"),
        }
        checked += 1;
    }
    assert_eq!(checked, file["count"].as_u64().expect("count"), "checked every case the file announces");
    assert_eq!(checked as usize, cases.len());
}
