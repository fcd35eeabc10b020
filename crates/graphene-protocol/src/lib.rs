//! Byte-exact Hive and Steem protocol: keys, assets, the two witness operations, transactions, digests,
//! signatures and condenser JSON. The specification is `docs/protocol.md` (a copy of the shared spec); each file cites its
//! sections, and `tests/protocol/` checks everything against vectors produced by hived's own code.
//!
//! This module does no I/O and imports nothing else from the crate: reading the chain (`rpc`), deciding
//! when to act (`trap`) and keeping secrets on disk (`cli`, `config`) live elsewhere.
//!
//! Typical use — the least-privilege failover (§4.3):
//!
//! ```
//! use graphene_protocol::*;
//!
//! let chain = ChainSpec::hive();
//! let signer = PrivateKey::generate(); // the current block signing key, in real life from a file
//! let backup = PrivateKey::generate().public_key();
//! let op = WitnessSetProperties::key_swap("alice", signer.public_key(), backup);
//! let head = BlockId::from_hex("05e7bc5f3e319509113eb261bf995824a9efd567").unwrap();
//! let expiration: TimePointSec = "2025-09-02T10:35:30".parse().unwrap();
//! let tx = Transaction::with_tapos(&head, expiration, vec![Operation::WitnessSetProperties(op)]);
//! let signed = sign_transaction(&tx, &chain, &signer).unwrap();
//! let body = transaction_to_json(&signed, &chain); // params[0] of condenser_api.broadcast_transaction
//! assert_eq!(body["signatures"].as_array().unwrap().len(), 1);
//! ```

pub mod asset;
pub mod chain;
pub mod json;
pub mod keys;
pub mod operation;
pub mod pack;
pub mod sign;
pub mod transaction;

pub use asset::{Asset, AssetError, AssetSymbol, Price};
pub use chain::{parse_chain_id_hex, ChainError, ChainSpec, Family};
pub use json::{
    operation_from_json, operation_to_json, transaction_from_json, transaction_to_json, unsigned_transaction_to_json,
    JsonError, JsonProblem,
};
pub use keys::{KeyError, PrivateKey, PublicKey};
pub use operation::{
    is_valid_account_name, pack_prop, LegacyChainProperties, Operation, Problem, ValidationError, WitnessSetProperties,
    WitnessUpdate,
};
pub use pack::{Pack, PackMode, Sink};
pub use sign::{recover, self_check, sign_digest, SignError, Signature};
pub use transaction::{
    add_signature, sign_transaction, BlockId, SignedTransaction, TimePointSec, Transaction, TransactionError, TxId,
};
