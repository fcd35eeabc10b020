//! The slice of `crate::protocol` the simulated node uses, gathered in one place, plus the few naming
//! questions the sim asks of a [`ChainSpec`]. The sim shares `protocol` (keys, digests, signatures, condenser
//! JSON) but not `rpc`: its wire shapes are written from protocol.md in `server.rs`.

pub use graphene_protocol::pack::{Reader, UnpackError};
pub use graphene_protocol::{
    is_valid_account_name, recover, transaction_from_json, Asset, BlockId, ChainSpec, Family, Operation, PackMode,
    PrivateKey, PublicKey, SignedTransaction, WitnessSetProperties,
};

/// The key prefix of `chain` ("STM", "TST").
pub fn prefix(chain: &ChainSpec) -> &str {
    &chain.key_prefix
}

/// True on Hive (error codes, field names and limits differ from Steem).
pub fn is_hive(chain: &ChainSpec) -> bool {
    chain.family == Family::Hive
}

/// True for a testnet build (asset names TESTS/TBD).
pub fn is_testnet(chain: &ChainSpec) -> bool {
    chain.testnet
}

/// The public key of a throwaway secret derived from 32 bytes (the other witnesses' keys); `None` for the
/// rare byte strings that are not a valid secret.
pub fn public_key_from_secret(bytes: &[u8; 32]) -> Option<PublicKey> {
    PrivateKey::from_secret_bytes(bytes).map(|k| k.public_key())
}
