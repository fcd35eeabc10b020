//! Property tests: names, keys, transactions and their JSON round-trip; a signature we make is always
//! canonical and recovers to the signer.

use antelope_protocol::action::{Action, PermissionLevel, RegProducer};
use antelope_protocol::chain::ChainId;
use antelope_protocol::json::{transaction_from_json, transaction_to_json};
use antelope_protocol::keys::{PrivateKey, PublicKey};
use antelope_protocol::name::Name;
use antelope_protocol::pack::{Pack, Unpack};
use antelope_protocol::transaction::Transaction;
use proptest::prelude::*;

fn name_text() -> impl Strategy<Value = String> {
    "[a-z1-5]{1,12}".prop_map(|s| s)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn valid_names_round_trip(text in name_text()) {
        let n = Name::new(&text).expect("valid");
        prop_assert_eq!(n.to_string(), text);
        prop_assert_eq!(Name::unpack_all(&n.packed()), Ok(n));
    }

    #[test]
    fn every_u64_that_prints_normalized_round_trips(v in any::<u64>()) {
        let text = Name::from_u64(v).to_string();
        if let Ok(n) = Name::new(&text) {
            prop_assert_eq!(n.as_u64(), v);
        }
    }

    #[test]
    fn key_texts_round_trip(seed in any::<[u8; 32]>()) {
        let Some(k) = graphene_protocol::PrivateKey::from_secret_bytes(&seed) else { return Ok(()) };
        let k = PrivateKey::from_text(&k.to_wif()).expect("wif");
        let p = k.public_key();
        prop_assert_eq!(PublicKey::from_text(&p.to_legacy()), Ok(p));
        prop_assert_eq!(PublicKey::from_text(&p.to_k1()), Ok(p));
        prop_assert_eq!(PrivateKey::from_text(&k.to_pvt_k1()).expect("pvt").public_key(), p);
    }

    #[test]
    fn transactions_round_trip_and_sign(expiration in 1_000_000_000u32..2_000_000_000, refs in any::<(u16, u32)>(),
                                         url in "[ -~]{0,300}", location in any::<u16>(), who in name_text()) {
        let actor = Name::new(&who).expect("name");
        let key = PrivateKey::generate();
        let reg = RegProducer { producer: actor, producer_key: key.public_key(), url, location };
        let auth = vec![PermissionLevel { actor, permission: Name::new("failover").expect("name") }];
        let act = Action::new(Name::new("eosio").expect("n"), Name::new("regproducer").expect("n"), auth, &reg);
        let mut tx = Transaction::new(expiration, antelope_protocol::transaction::Tapos { block_num: 0, ref_block_num: refs.0, ref_block_prefix: refs.1 }, vec![act]);
        tx.max_cpu_usage_ms = 3;
        prop_assert_eq!(Transaction::unpack_all(&tx.packed()), Ok(tx.clone()));
        prop_assert_eq!(transaction_from_json(&transaction_to_json(&tx)), Ok(tx.clone()));
        let chain = ChainId([7; 32]);
        let sig = tx.sign(&chain, &key).expect("sign");
        prop_assert!(sig.is_canonical());
        prop_assert_eq!(sig.recover(&tx.sig_digest(&chain)), Ok(key.public_key()));
    }
}
