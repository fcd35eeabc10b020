//! Chain ids of the public Antelope networks (antelope-protocol.md §1) and `--chain` arguments.

use std::fmt;

use thiserror::Error;

/// A 32-byte chain id; the first 32 bytes of every signed digest (§0 item 19).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainId(pub [u8; 32]);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChainArgError {
    #[error("a chain id is 64 hex characters")]
    BadHex,
    #[error("{0:?} is not an Antelope network (eos, wax, telos, jungle, wax-testnet, telos-testnet, kylin) or a 64-hex chain id")]
    Unknown(String),
}

impl ChainId {
    pub fn from_hex(text: &str) -> Result<Self, ChainArgError> {
        let mut id = [0u8; 32];
        if text.len() != 64 {
            return Err(ChainArgError::BadHex);
        }
        hex::decode_to_slice(text, &mut id).map_err(|_| ChainArgError::BadHex)?;
        Ok(Self(id))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainId({})", self.to_hex())
    }
}

/// A known network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    pub name: &'static str,
    pub chain_id: ChainId,
}

const NETWORKS: &[(&str, &str)] = &[
    ("eos", "aca376f206b8fc25a6ed44dbdc66547c36c6c33e3a119ffbeaef943642f0e906"),
    ("wax", "1064487b3cd1a897ce03ae5b6a865651747e2e152090f99c1d19d44e01aea5a4"),
    ("wax-testnet", "f16b1833c747c43682f4386fca9cbb327929334a762755ebec17f6f23c9b8a12"),
    ("telos", "4667b205c6838ef70ff7988f6e8257e8be0e1284a2f59699054a018f743b1d11"),
    ("telos-testnet", "1eaa0824707c8c16bd25145493bf062aecddfeb56c736f6ba6397f3195f33c9f"),
    ("jungle", "73e4385a2708e6d7048834fbc1079f2fabb17b3c125b146af438971e90716c4d"),
    ("kylin", "5fff1dae8dc8e2fc4d5b23b2c7665c97f9e9d8edf2b6485a86ba311c25639191"),
];

fn all() -> impl Iterator<Item = Network> {
    // The table above is 64-hex by construction (checked by a test).
    NETWORKS.iter().filter_map(|(name, hex)| ChainId::from_hex(hex).ok().map(|chain_id| Network { name, chain_id }))
}

/// A network by name (`jungle4` and `vaulta` are accepted for `jungle` and `eos`).
pub fn network(name: &str) -> Option<Network> {
    let name = match name {
        "jungle4" => "jungle",
        "vaulta" => "eos",
        n => n,
    };
    all().find(|n| n.name == name)
}

pub fn network_by_id(id: &ChainId) -> Option<Network> {
    all().find(|n| n.chain_id == *id)
}

/// A `--chain` argument: a network's name, or a 64-hex id (named `antelope` when unknown).
pub fn parse_chain_arg(arg: &str) -> Result<(String, ChainId), ChainArgError> {
    let a = arg.trim().to_ascii_lowercase();
    if let Some(n) = network(&a) {
        return Ok((n.name.to_string(), n.chain_id));
    }
    match ChainId::from_hex(&a) {
        Ok(id) => Ok((network_by_id(&id).map_or("antelope", |n| n.name).to_string(), id)),
        Err(_) => Err(ChainArgError::Unknown(arg.trim().chars().take(40).collect())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_network_parses_and_names_resolve() {
        assert_eq!(all().count(), NETWORKS.len());
        assert_eq!(network("jungle4"), network("jungle"));
        assert_eq!(parse_chain_arg("EOS").map(|x| x.0), Ok("eos".to_string()));
        let (name, _) = parse_chain_arg(&"ab".repeat(32)).expect("hex");
        assert_eq!(name, "antelope");
        assert!(parse_chain_arg("hive").is_err());
    }
}
