//! Every parser of outside input, fed arbitrary bytes and deeply nested JSON: it answers with an error,
//! never a panic (issue 12). RPC answers have their own property tests beside the parsers
//! (`src/chain/graphene/rpc/api.rs`); these cover condenser JSON, key text, assets, the state file, the
//! instance facts and the `.env` file.

use std::io::Write;

use graphene_protocol::chain::ChainSpec;
use graphene_protocol::json::{operation_from_json, transaction_from_json};
use graphene_protocol::keys::{PrivateKey, PublicKey};
use graphene_protocol::Asset;
use proptest::prelude::*;
use serde_json::{json, Value};
use witness_trap::chain::graphene::GrapheneBaseline;
use witness_trap::config::EnvSource;
use witness_trap::trap::state::{AnyState, InstanceFacts, TrapState};

/// JSON nested `depth` levels deep, in arrays and objects.
fn nested(depth: usize, open: &str, close: &str) -> String {
    format!("{}1{}", open.repeat(depth), close.repeat(depth))
}

/// Arbitrary JSON values, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn chains() -> [ChainSpec; 2] {
    [ChainSpec::hive(), ChainSpec::steem()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn condenser_json_of_any_shape_never_panics(v in any_json()) {
        for chain in chains() {
            let _ = transaction_from_json(&v, &chain);
            let _ = operation_from_json(&v, &chain);
            // The same value in the places a transaction and an operation expect it.
            let _ = transaction_from_json(&json!({"ref_block_num": 1, "ref_block_prefix": 2,
                "expiration": "2025-01-01T00:00:00", "operations": [v.clone()], "extensions": [], "signatures": []}), &chain);
            let _ = operation_from_json(&json!(["witness_set_properties", v.clone()]), &chain);
            let _ = operation_from_json(&json!(["witness_update", v.clone()]), &chain);
        }
    }

    #[test]
    fn key_and_asset_text_never_panics(s in "\\PC{0,80}", prefix in "[A-Z]{0,4}") {
        let _ = PublicKey::from_text(&s, &prefix);
        let _ = PublicKey::from_text(&format!("STM{s}"), "STM");
        let _ = PrivateKey::from_wif(&s);
        for chain in chains() {
            let _ = Asset::from_legacy_str(&s, &chain);
        }
    }

    #[test]
    fn state_and_instance_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = AnyState::decode(&bytes, "fuzz");
        let _ = TrapState::<GrapheneBaseline>::decode(&bytes, "fuzz");
        let _ = InstanceFacts::decode(&bytes);
    }

    #[test]
    fn state_json_of_any_shape_never_panics(v in any_json(), version in 0u64..4) {
        let mut v = v;
        if let Value::Object(m) = &mut v {
            m.insert("version".into(), json!(version));
        }
        let bytes = serde_json::to_vec(&v).unwrap_or_default();
        let _ = AnyState::decode(&bytes, "fuzz");
        let _ = TrapState::<GrapheneBaseline>::decode(&bytes, "fuzz");
    }

    #[test]
    fn env_files_of_any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(&bytes).expect("write");
        // Either variables or an error naming the file; never a panic, never the file's content in the error.
        if let Err(e) = EnvSource::load(Some(f.path())) {
            prop_assert!(e.to_string().contains(&f.path().display().to_string()));
        }
    }
}

#[test]
fn deeply_nested_json_is_an_error_not_a_crash() {
    for depth in [10, 200, 100_000] {
        for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
            let text = nested(depth, open, close);
            // serde_json refuses more than 128 levels: a parse error, not a stack overflow.
            let parsed: Result<Value, _> = serde_json::from_str(&text);
            if let Ok(v) = &parsed {
                for chain in chains() {
                    assert!(transaction_from_json(v, &chain).is_err());
                    assert!(operation_from_json(v, &chain).is_err());
                }
            } else {
                assert!(depth > 128, "depth {depth} should parse");
            }
            assert!(AnyState::decode(text.as_bytes(), "deep").is_err());
            assert_eq!(InstanceFacts::decode(text.as_bytes()), InstanceFacts::default());
        }
    }
}
