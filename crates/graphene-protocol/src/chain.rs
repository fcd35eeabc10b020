//! Network presets: chain id, key prefix and asset names per network (protocol.md §1.1, §1.2).
//!
//! A [`ChainSpec`] is the only place where Hive and Steem differ in *naming*: the chain id mixed into every
//! signature digest, the public-key prefix, the JSON asset symbols and the JSON name of the interest-rate
//! field. The binary forms that depend on the network (legacy asset symbols on testnet builds) read the
//! `testnet` flag from here. Checking that a node really runs the configured chain is the caller's job (§5.6).

use thiserror::Error;

/// Which node software a network runs; decides JSON field names and whether the HF26 form exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// hived (openhive-network/hive).
    Hive,
    /// steemd (steemit/steem).
    Steem,
}

/// Errors of this module.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ChainError {
    /// A chain id must be 64 hex characters (32 bytes).
    #[error("chain id must be 64 hex characters, got {0} characters")]
    ChainIdLength(usize),
    /// A chain id contains a character that is not hex.
    #[error("chain id is not hexadecimal")]
    ChainIdNotHex,
    /// A `--chain`-style name that is none of the presets.
    #[error("unknown chain {0:?} (expected hive, steem, hive-testnet, steem-testnet or a 64-hex chain id)")]
    UnknownChain(String),
}

/// Hive mainnet chain id since HF24 (`HIVE_CHAIN_ID`, §1.1).
pub const HIVE_CHAIN_ID: [u8; 32] = {
    let mut id = [0u8; 32];
    id[0] = 0xbe;
    id[1] = 0xea;
    id[2] = 0xb0;
    id[3] = 0xde;
    id
};

/// Steem mainnet chain id: `fc::sha256()`, 32 zero bytes (§1.1, §0 item 9).
pub const STEEM_CHAIN_ID: [u8; 32] = [0u8; 32];

/// Hive mirrornet chain id (`USE_ALTERNATE_CHAIN_ID`, §1.1): mainnet symbols and prefix, another id.
pub const HIVE_MIRRORNET_CHAIN_ID: [u8; 32] = {
    let mut id = [0u8; 32];
    id[0] = 0x42;
    id
};

/// Default testnet chain id of both node builds: sha256(0x07 ‖ "testnet"), the *packed* string (§1.1).
pub const DEFAULT_TESTNET_CHAIN_ID: [u8; 32] = [
    0x18, 0xdc, 0xf0, 0xa2, 0x85, 0x36, 0x5f, 0xc5, 0x8b, 0x71, 0xf1, 0x8b, 0x3d, 0x3f, 0xec, 0x95, 0x4a, 0xa0, 0xc1,
    0x41, 0xc4, 0x4e, 0x4e, 0x5c, 0xb4, 0xcf, 0x77, 0x7b, 0x9e, 0xab, 0x27, 0x4e,
];

/// One network: everything the protocol code needs to name assets and keys and to compute digests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainSpec {
    /// "hive", "steem", "hive-testnet", "steem-testnet" (or "hive-mirrornet").
    pub name: String,
    /// Node software; decides `hbd_`/`sbd_` names and whether the HF26 binary form exists.
    pub family: Family,
    /// Mixed into every signature digest (§3.5).
    pub chain_id: [u8; 32],
    /// Public-key text prefix (§2.2); hived parses keys only with its compiled-in prefix.
    pub key_prefix: String,
    /// JSON name of the core asset: HIVE, STEEM or TESTS.
    pub core_symbol: String,
    /// JSON name of the debt asset: HBD, SBD or TBD.
    pub debt_symbol: String,
    /// A testnet build: legacy binary symbols are `TESTS`/`TBD` instead of `STEEM`/`SBD` (§1.2).
    pub testnet: bool,
}

impl ChainSpec {
    /// Hive mainnet (since HF24).
    pub fn hive() -> Self {
        Self {
            name: "hive".into(),
            family: Family::Hive,
            chain_id: HIVE_CHAIN_ID,
            key_prefix: "STM".into(),
            core_symbol: "HIVE".into(),
            debt_symbol: "HBD".into(),
            testnet: false,
        }
    }

    /// Steem mainnet.
    pub fn steem() -> Self {
        Self {
            name: "steem".into(),
            family: Family::Steem,
            chain_id: STEEM_CHAIN_ID,
            key_prefix: "STM".into(),
            core_symbol: "STEEM".into(),
            debt_symbol: "SBD".into(),
            testnet: false,
        }
    }

    /// Hive mirrornet: a mainnet build (mainnet symbols, `STM`) with the alternate chain id `42…00`.
    pub fn hive_mirrornet() -> Self {
        Self { name: "hive-mirrornet".into(), chain_id: HIVE_MIRRORNET_CHAIN_ID, ..Self::hive() }
    }

    /// A testnet build with the given chain id (`TESTS`/`TBD`). Key prefix: `STM` on Hive (hived ≥ 1.27.5
    /// switched its testnet from `TST` to `STM`, §1.1), `TST` on Steem. `key_prefix` is public: override it
    /// for an older Hive testnet.
    pub fn testnet(family: Family, chain_id: [u8; 32]) -> Self {
        let (name, prefix) = match family {
            Family::Hive => ("hive-testnet", "STM"),
            Family::Steem => ("steem-testnet", "TST"),
        };
        Self {
            name: name.into(),
            family,
            chain_id,
            key_prefix: prefix.into(),
            core_symbol: "TESTS".into(),
            debt_symbol: "TBD".into(),
            testnet: true,
        }
    }

    /// Resolves a command-line chain argument: `hive`, `steem`, `hive-testnet`, `steem-testnet`,
    /// `hive-mirrornet`, or a 64-hex chain id. A known id maps to its preset; any other id is taken as a Hive
    /// testnet (only hived lets an operator choose the id, `--chain-id`); `steem:<hex>` / `hive:<hex>` pick
    /// the testnet family explicitly.
    pub fn from_arg(arg: &str) -> Result<Self, ChainError> {
        match arg {
            "hive" => return Ok(Self::hive()),
            "steem" => return Ok(Self::steem()),
            "hive-mirrornet" => return Ok(Self::hive_mirrornet()),
            "hive-testnet" => return Ok(Self::testnet(Family::Hive, DEFAULT_TESTNET_CHAIN_ID)),
            "steem-testnet" => return Ok(Self::testnet(Family::Steem, DEFAULT_TESTNET_CHAIN_ID)),
            _ => {}
        }
        if let Some(hex) = arg.strip_prefix("hive:") {
            return Ok(Self::testnet(Family::Hive, parse_chain_id_hex(hex)?));
        }
        if let Some(hex) = arg.strip_prefix("steem:") {
            return Ok(Self::testnet(Family::Steem, parse_chain_id_hex(hex)?));
        }
        if arg.len() == 64 {
            let id = parse_chain_id_hex(arg)?;
            return Ok(Self::from_chain_id(id));
        }
        Err(ChainError::UnknownChain(arg.chars().take(80).collect()))
    }

    /// The preset for a chain id as a node reports it (`get_version`, §5.6); unknown ids are Hive testnets.
    pub fn from_chain_id(id: [u8; 32]) -> Self {
        match id {
            HIVE_CHAIN_ID => Self::hive(),
            STEEM_CHAIN_ID => Self::steem(),
            HIVE_MIRRORNET_CHAIN_ID => Self::hive_mirrornet(),
            other => Self::testnet(Family::Hive, other),
        }
    }

    /// The chain id as 64 lowercase hex characters, as `get_version` prints it.
    pub fn chain_id_hex(&self) -> String {
        hex::encode(self.chain_id)
    }

    /// JSON name of the interest-rate field of `legacy_chain_properties` (§0 item 5, §4.1).
    pub fn interest_rate_field(&self) -> &'static str {
        match self.family {
            Family::Hive => "hbd_interest_rate",
            Family::Steem => "sbd_interest_rate",
        }
    }

    /// Whether the node also accepts the HF26 (NAI) serialization (§1.4): Hive only.
    pub fn has_hf26(&self) -> bool {
        self.family == Family::Hive
    }
}

/// Parses a 64-hex chain id (either case).
pub fn parse_chain_id_hex(s: &str) -> Result<[u8; 32], ChainError> {
    if s.len() != 64 {
        return Err(ChainError::ChainIdLength(s.chars().count()));
    }
    let mut id = [0u8; 32];
    hex::decode_to_slice(s, &mut id).map_err(|_| ChainError::ChainIdNotHex)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn presets_match_protocol_table() {
        assert_eq!(
            ChainSpec::hive().chain_id_hex(),
            "beeab0de00000000000000000000000000000000000000000000000000000000"
        );
        assert_eq!(ChainSpec::steem().chain_id_hex(), "0".repeat(64));
        assert_eq!(ChainSpec::hive().interest_rate_field(), "hbd_interest_rate");
        assert_eq!(ChainSpec::steem().interest_rate_field(), "sbd_interest_rate");
        assert!(ChainSpec::hive().has_hf26());
        assert!(!ChainSpec::steem().has_hf26());
    }

    #[test]
    fn testnet_id_is_sha256_of_packed_string() {
        // §1.1: fc::sha256::hash("testnet") packs the string first (varint length 7).
        let packed = Sha256::digest(b"\x07testnet");
        assert_eq!(packed.as_slice(), DEFAULT_TESTNET_CHAIN_ID);
        let plain = Sha256::digest(b"testnet");
        assert!(hex::encode(plain).starts_with("9afbce9f"));
    }

    #[test]
    fn from_arg() {
        assert_eq!(ChainSpec::from_arg("hive").unwrap(), ChainSpec::hive());
        assert_eq!(ChainSpec::from_arg(&"0".repeat(64)).unwrap(), ChainSpec::steem());
        let t = ChainSpec::from_arg("18dcf0a285365fc58b71f18b3d3fec954aa0c141c44e4e5cb4cf777b9eab274e").unwrap();
        assert_eq!((t.family, t.testnet, t.core_symbol.as_str()), (Family::Hive, true, "TESTS"));
        let s = ChainSpec::from_arg(&format!("steem:{}", "ab".repeat(32))).unwrap();
        assert_eq!((s.family, s.key_prefix.as_str()), (Family::Steem, "TST"));
        assert!(matches!(ChainSpec::from_arg("hiv"), Err(ChainError::UnknownChain(_))));
        assert_eq!(parse_chain_id_hex("zz"), Err(ChainError::ChainIdLength(2)));
        assert_eq!(parse_chain_id_hex(&"g".repeat(64)), Err(ChainError::ChainIdNotHex));
    }
}
