//! Byte-exact Antelope protocol (EOS, WAX, Telos, Jungle): names, keys and their texts, the `eosio` actions
//! a failover needs, transactions, digests, fc-canonical signatures, and nodeos/eosjs transaction JSON.
//! The specification is `docs/antelope-protocol.md`; `tests/vectors.rs` checks every case of vectors made
//! by @wharfkit/antelope and eosjs.
//!
//! What is byte-identical on Graphene chains (the 33-byte secp256k1 key, the strict WIF, the fc-canonical
//! signing loop and public-key recovery) comes from `graphene-protocol`; everything Antelope-shaped is here.
//! No I/O.
//!
//! ```
//! use antelope_protocol::{action::*, chain::network, keys::PrivateKey, name::Name, transaction::*};
//!
//! let eos = network("eos").unwrap();
//! let key = PrivateKey::generate(); // the failover permission's key, in real life from a file
//! let alice = Name::new("alice").unwrap();
//! let auth = vec![PermissionLevel { actor: alice, permission: Name::new("failover").unwrap() }];
//! let reg = RegProducer { producer: alice, producer_key: PrivateKey::generate().public_key(),
//!                         url: "https://alice.example".into(), location: 0 };
//! let act = Action::new(Name::new("eosio").unwrap(), Name::new("regproducer").unwrap(), auth, &reg);
//! let tapos = Tapos::from_block_id(&[0x17, 0xd7, 0x84, 0x78, 0, 0, 0, 0, 0xbe, 0xba, 0xfe, 0xca, 0, 0, 0, 0,
//!                                   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
//! let tx = Transaction::new(1_735_689_600, tapos, vec![act]);
//! let sig = tx.sign(&eos.chain_id, &key).unwrap(); // canonical, and checked by recovery
//! assert_eq!(sig.recover(&tx.sig_digest(&eos.chain_id)).unwrap(), key.public_key());
//! ```

pub mod action;
pub mod chain;
pub mod json;
pub mod keys;
pub mod name;
pub mod pack;
pub mod schedule;
pub mod signature;
pub mod transaction;
