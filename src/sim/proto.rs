//! The slice of `crate::protocol` the simulated node uses, gathered in one place.
//!
//! TEMPORARY: `protocol` is being written on its own branch; until it is merged this file holds a minimal
//! stand-in with the same names (keys as 33 raw bytes, chain presets). After the merge it only re-exports.

use ripemd::{Digest, Ripemd160};

/// Which node software a chain runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Hive,
    Steem,
}

/// A network preset (stand-in for `protocol::chain::ChainSpec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSpec {
    pub name: String,
    pub family: Family,
    pub chain_id: [u8; 32],
    pub key_prefix: String,
}

impl ChainSpec {
    pub fn hive() -> Self {
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&[0xbe, 0xea, 0xb0, 0xde]);
        Self { name: "hive".into(), family: Family::Hive, chain_id: id, key_prefix: "STM".into() }
    }
    pub fn steem() -> Self {
        Self { name: "steem".into(), family: Family::Steem, chain_id: [0; 32], key_prefix: "STM".into() }
    }
}

/// A compressed secp256k1 public key (stand-in for `protocol::keys::PublicKey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 33]);

impl PublicKey {
    pub const NULL: PublicKey = PublicKey([0; 33]);
    pub fn is_null(&self) -> bool {
        self.0 == [0; 33]
    }
    pub fn to_text(&self, prefix: &str) -> String {
        let check = Ripemd160::digest(self.0);
        let mut body = self.0.to_vec();
        body.extend_from_slice(&check[..4]);
        format!("{prefix}{}", bs58::encode(body).into_string())
    }
}

/// The key prefix of `chain` ("STM", "TST").
pub fn prefix(chain: &ChainSpec) -> &str {
    &chain.key_prefix
}

/// True on Hive (codes, field names and limits differ from Steem).
pub fn is_hive(chain: &ChainSpec) -> bool {
    chain.family == Family::Hive
}

/// True for a testnet build (asset names TESTS/TBD).
pub fn is_testnet(chain: &ChainSpec) -> bool {
    chain.chain_id != ChainSpec::hive().chain_id
        && chain.chain_id != ChainSpec::steem().chain_id
        && chain.chain_id[0] != 0x42
}
