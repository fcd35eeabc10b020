//! Property tests: key text ⇄ bytes, JSON ⇄ struct ⇄ bytes for random ops 11 and 42, and signatures over
//! random digests.

use std::collections::BTreeMap;

use graphene_protocol::*;
use proptest::prelude::*;

fn chain() -> impl Strategy<Value = ChainSpec> {
    prop_oneof![Just(ChainSpec::hive()), Just(ChainSpec::steem())]
}

fn private_key() -> impl Strategy<Value = PrivateKey> {
    any::<[u8; 32]>().prop_filter_map("secret in [1, n-1]", |b| PrivateKey::from_secret_bytes(&b))
}

fn public_key() -> impl Strategy<Value = PublicKey> {
    prop_oneof![1 => Just(PublicKey::NULL), 9 => private_key().prop_map(|k| k.public_key())]
}

fn asset() -> impl Strategy<Value = Asset> {
    (any::<i64>(), prop_oneof![Just(AssetSymbol::Core), Just(AssetSymbol::Debt), Just(AssetSymbol::Vests)])
        .prop_map(|(amount, symbol)| Asset { amount, symbol })
}

fn witness_update() -> impl Strategy<Value = Operation> {
    ("[a-z][a-z0-9-]{1,13}[a-z0-9]", ".{0,80}", public_key(), asset(), any::<u32>(), any::<u16>(), asset()).prop_map(
        |(owner, url, block_signing_key, fee1, size, rate, fee)| {
            Operation::WitnessUpdate(WitnessUpdate {
                owner,
                url,
                block_signing_key,
                props: LegacyChainProperties {
                    account_creation_fee: fee1,
                    maximum_block_size: size,
                    interest_rate: rate,
                },
                fee,
            })
        },
    )
}

fn set_properties() -> impl Strategy<Value = Operation> {
    ("[a-z]{3,16}", proptest::collection::btree_map(".{0,24}", proptest::collection::vec(any::<u8>(), 0..40), 0..8))
        .prop_map(|(owner, props): (String, BTreeMap<String, Vec<u8>>)| {
            Operation::WitnessSetProperties(WitnessSetProperties { owner, props })
        })
}

fn transaction() -> impl Strategy<Value = Transaction> {
    (
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        proptest::collection::vec(prop_oneof![witness_update(), set_properties()], 0..3),
    )
        .prop_map(|(ref_block_num, ref_block_prefix, exp, operations)| Transaction {
            ref_block_num,
            ref_block_prefix,
            expiration: TimePointSec(exp),
            operations,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn public_key_text_round_trip(key in public_key(), prefix in prop_oneof![Just("STM"), Just("TST")]) {
        let text = key.to_text(prefix);
        prop_assert_eq!(PublicKey::from_text(&text, prefix), Ok(key));
        prop_assert_eq!(PublicKey::from_bytes(key.to_bytes()), Ok(key));
        prop_assert_eq!(PublicKey::from_hex(&key.to_hex()), Ok(key));
    }

    #[test]
    fn arbitrary_bytes_are_a_key_or_an_error(bytes in any::<[u8; 32]>(), tag in 0u8..5) {
        let mut b = [0u8; 33];
        b[0] = tag;
        b[1..].copy_from_slice(&bytes);
        if let Ok(k) = PublicKey::from_bytes(b) {
            prop_assert_eq!(PublicKey::from_text(&k.to_text("STM"), "STM"), Ok(k));
        }
    }

    #[test]
    fn wif_round_trip(key in private_key()) {
        let again = PrivateKey::from_wif(&key.to_wif()).unwrap();
        prop_assert_eq!(again.public_key(), key.public_key());
    }

    #[test]
    fn operation_json_struct_bytes(op in prop_oneof![witness_update(), set_properties()], chain in chain()) {
        let v = operation_to_json(&op, &chain);
        let back = operation_from_json(&v, &chain).unwrap();
        prop_assert_eq!(&back, &op);
        prop_assert_eq!(operation_to_json(&back, &chain), v);
        for mode in [PackMode::Legacy, PackMode::Hf26] {
            let t = Transaction { ref_block_num: 1, ref_block_prefix: 2, expiration: TimePointSec(3), operations: vec![back.clone()] };
            let u = Transaction { operations: vec![op.clone()], ..t.clone() };
            prop_assert_eq!(t.serialize(mode), u.serialize(mode));
        }
    }

    #[test]
    fn transaction_json_struct_bytes(tx in transaction(), chain in chain(), sigs in proptest::collection::vec(any::<[u8; 32]>(), 0..3)) {
        let signatures = sigs.iter().map(|h| { let mut b = [0u8; 65]; b[0] = 31; b[1..33].copy_from_slice(h); Signature(b) }).collect();
        let signed = SignedTransaction { transaction: tx, signatures };
        let v = transaction_to_json(&signed, &chain);
        let back = transaction_from_json(&v, &chain).unwrap();
        prop_assert_eq!(&back, &signed);
        prop_assert_eq!(back.transaction.serialize(PackMode::Legacy), signed.transaction.serialize(PackMode::Legacy));
        prop_assert_eq!(back.transaction.digest(&chain, PackMode::Hf26), signed.transaction.digest(&chain, PackMode::Hf26));
        let unsigned = unsigned_transaction_to_json(&signed.transaction, &chain);
        prop_assert!(unsigned.get("signatures").is_none());
        prop_assert_eq!(transaction_from_json(&unsigned, &chain).unwrap().transaction, signed.transaction);
    }

    #[test]
    fn signatures_are_canonical_and_recover(key in private_key(), digest in any::<[u8; 32]>()) {
        let sig = sign_digest(&digest, &key);
        prop_assert!((31..=34).contains(&sig.header()));
        prop_assert!(sig.is_low_s());
        prop_assert!(sig.is_fc_canonical());
        prop_assert!(sig.hived_accepts());
        prop_assert_eq!(recover(&digest, &sig), Ok(key.public_key()));
        prop_assert_eq!(Signature::from_hex(&sig.to_hex()), Ok(sig));
    }
}
