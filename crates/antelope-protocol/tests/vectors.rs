//! Every case of `tests/vectors/antelope-protocol.json` (made by @wharfkit/antelope and eosjs): keys and
//! their texts, refused key texts with the reason, TaPoS, transactions byte for byte (packed, digest, id,
//! action data), our signatures checked by recovery and canonicality, and the non-canonical twin refused.

use antelope_protocol::chain::ChainId;
use antelope_protocol::json::{transaction_from_json, transaction_to_json};
use antelope_protocol::keys::{KeyError, PrivateKey, PublicKey};
use antelope_protocol::pack::{Pack, Unpack};
use antelope_protocol::signature::{SigError, Signature};
use antelope_protocol::transaction::{Tapos, Transaction};
use serde_json::Value;

fn cases() -> Vec<Value> {
    let text = include_str!("vectors/antelope-protocol.json");
    let v: Value = serde_json::from_str(text).expect("the vector file is JSON");
    v["cases"].as_array().expect("cases").clone()
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("{k} in {v}"))
}

fn key_case(c: &Value, key: &PrivateKey) {
    let e = &c["expected"];
    assert_eq!(&*key.to_wif(), s(e, "wif"));
    assert_eq!(&*key.to_pvt_k1(), s(e, "pvt_k1"));
    assert_eq!(hex::encode(*key.secret_bytes()), s(e, "private_key_hex"));
    let public = key.public_key();
    assert_eq!(public.to_legacy(), s(e, "public_key_legacy"));
    assert_eq!(public.to_k1(), s(e, "public_key_k1"));
    assert_eq!(hex::encode(public.to_bytes()), s(e, "public_key_hex"));
    // Both texts parse to the same 33 bytes.
    assert_eq!(PublicKey::from_text(s(e, "public_key_legacy")), Ok(public));
    assert_eq!(PublicKey::from_text(s(e, "public_key_k1")), Ok(public));
}

fn transaction_case(c: &Value) {
    let id = s(c, "id");
    let input = &c["input"];
    let e = &c["expected"];
    let chain = ChainId::from_hex(s(input, "chain_id")).expect("chain id");
    let tx = transaction_from_json(&input["transaction"]).unwrap_or_else(|e| panic!("{id}: {e}"));
    if let Some(block) = input["block_id"].as_str() {
        let t = Tapos::from_block_id_hex(block).expect("block id");
        assert_eq!((t.ref_block_num, t.ref_block_prefix), (tx.ref_block_num, tx.ref_block_prefix), "{id}: TaPoS");
    }
    assert_eq!(hex::encode(tx.packed()), s(e, "packed_trx"), "{id}: packed_trx");
    assert_eq!(hex::encode(tx.sig_digest(&chain)), s(e, "digest"), "{id}: digest");
    assert_eq!(hex::encode(tx.id()), s(e, "txid"), "{id}: txid");
    let data: Vec<String> = tx.actions.iter().map(|a| hex::encode(&a.data)).collect();
    let want: Vec<String> =
        e["action_data_hex"].as_array().expect("data").iter().map(|d| d.as_str().expect("hex").to_string()).collect();
    assert_eq!(data, want, "{id}: action data");
    // Round trips: bytes and JSON.
    assert_eq!(Transaction::unpack_all(&tx.packed()).as_ref(), Ok(&tx), "{id}: unpack");
    assert_eq!(transaction_from_json(&transaction_to_json(&tx)).as_ref(), Ok(&tx), "{id}: json");
    // The libraries' signature: canonical and recovers to the signer.
    let digest = tx.sig_digest(&chain);
    let theirs = Signature::from_text(s(e, "signature")).expect("signature text");
    assert_eq!(hex::encode(theirs.0), s(e, "signature_raw_hex"), "{id}: signature bytes");
    assert_eq!(theirs.to_text(), s(e, "signature"));
    assert_eq!(theirs.is_canonical(), e["signature_fc_canonical"].as_bool().expect("flag"), "{id}");
    let signer = PublicKey::from_text(s(e, "recovers_to")).expect("key");
    assert_eq!(theirs.recover(&digest), Ok(signer), "{id}: their signature recovers");
    // Ours: by recovery and canonicality, never by comparing bytes.
    let key = PrivateKey::from_text(s(&c["signer"], "wif")).expect("signer wif");
    assert_eq!(key.public_key(), signer);
    let ours = tx.sign(&chain, &key).unwrap_or_else(|e| panic!("{id}: {e}"));
    assert!(ours.is_canonical(), "{id}");
    assert_eq!(ours.recover(&digest), Ok(signer), "{id}");
    assert!((31..=34).contains(&ours.0[0]), "{id}: header");
    // Another chain's id gives a signature that recovers to someone else (§0 item 19).
    let other = ChainId([0x11; 32]);
    assert_ne!(ours.recover(&tx.sig_digest(&other)), Ok(signer));
}

#[test]
fn every_vector_case_passes() {
    let cases = cases();
    assert_eq!(cases.len(), 20, "the vector file's case count");
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for c in &cases {
        let kind = s(c, "kind");
        *seen.entry(kind.to_string()).or_default() += 1;
        let input = &c["input"];
        match kind {
            "wif_to_pubkey" => key_case(c, &PrivateKey::from_text(s(input, "wif")).expect("wif")),
            "pvt_k1_to_pubkey" => key_case(c, &PrivateKey::from_text(s(input, "private_key")).expect("pvt_k1")),
            k if k.starts_with("invalid_public_key_") => {
                let got = PublicKey::from_text(s(input, "public_key"));
                match s(&c["expected"], "reason") {
                    "bad_checksum" => assert_eq!(got, Err(KeyError::BadChecksum), "{k}"),
                    "wrong_prefix" => assert_eq!(got, Err(KeyError::WrongPrefix), "{k}"),
                    "wrong_length" => assert!(matches!(got, Err(KeyError::WrongLength(_, 37))), "{k}: {got:?}"),
                    r => panic!("{k}: unknown reason {r}"),
                }
            }
            "invalid_private_key_wif_bad_checksum" => {
                let e = PrivateKey::from_text(s(input, "private_key")).expect_err("refused");
                assert!(e.to_string().contains("checksum"), "{e}");
            }
            "tapos_from_block_id" => {
                let t = Tapos::from_block_id_hex(s(input, "block_id")).expect("id");
                let e = &c["expected"];
                assert_eq!(u64::from(t.block_num), e["block_num"].as_u64().expect("num"));
                assert_eq!(u64::from(t.ref_block_num), e["ref_block_num"].as_u64().expect("ref"));
                assert_eq!(u64::from(t.ref_block_prefix), e["ref_block_prefix"].as_u64().expect("prefix"));
            }
            "regproducer_failover_permission"
            | "regproducer_long_url_varuint"
            | "regproducer_pub_k1_input"
            | "regproducer2_single_key"
            | "savanna_regproducer_actfinkey"
            | "regproducer_url_exactly_128"
            | "linkauth_regproducer"
            | "unregprod"
            | "updateauth_create_failover_permission" => transaction_case(c),
            "non_canonical_high_s_twin" => {
                let e = &c["expected"];
                let chain = ChainId::from_hex(s(input, "chain_id")).expect("id");
                let packed = hex::decode(s(input, "packed_trx")).expect("hex");
                let tx = Transaction::unpack_all(&packed).expect("decodes");
                let digest = tx.sig_digest(&chain);
                assert_eq!(hex::encode(digest), s(e, "digest"));
                let sig = Signature::from_text(input["signatures"][0].as_str().expect("sig")).expect("text");
                assert_eq!(hex::encode(sig.0), s(e, "signature_raw_hex"));
                let signer = PublicKey::from_text(s(e, "mathematically_recovers_to")).expect("key");
                assert_eq!(sig.recover(&digest), Ok(signer), "it recovers");
                assert!(!sig.is_canonical(), "but it is not canonical");
                assert_eq!(sig.verify(&digest, &signer), Err(SigError::NotCanonical), "and must be refused");
            }
            other => panic!("unknown case kind {other}: teach this test about it"),
        }
    }
    assert_eq!(seen.values().sum::<usize>(), 20);
}
