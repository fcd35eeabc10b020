//! Assets: amounts with a symbol, in their legacy text form (`"3.000 HIVE"`, protocol.md §1.3) and both
//! binary forms — the legacy 8-byte symbol and the HF26 4-byte NAI number (§1.2).
//!
//! [`AssetSymbol`] is chain-neutral (core / debt / vests); the chain decides the names. Twist: Hive's
//! `HIVE`/`HBD` pack in legacy binary as `STEEM`/`SBD` (testnet builds: `TESTS`/`TBD`), §0 item 3.

use std::fmt;

use thiserror::Error;

use super::chain::{ChainSpec, Family};
use super::pack::{Pack, PackMode, Reader, Sink, UnpackError};

/// Errors of this module.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AssetError {
    /// Not `<amount> <SYMBOL>` with one space.
    #[error("asset must look like \"1.000 {0}\"")]
    Format(String),
    /// A symbol this chain does not use.
    #[error("unknown asset symbol {found:?} on {chain} (expected {expected})")]
    UnknownSymbol {
        /// What the text said (at most 16 characters).
        found: String,
        /// The chain's name.
        chain: String,
        /// The accepted names.
        expected: String,
    },
    /// Wrong number of decimals for the symbol.
    #[error("{symbol} amounts need exactly {precision} decimals")]
    Precision {
        /// The symbol as written.
        symbol: String,
        /// Its precision.
        precision: u8,
    },
    /// Amount does not fit an int64 of smallest units.
    #[error("asset amount is out of range")]
    Overflow,
    /// Packed bytes carry no known symbol.
    #[error("packed asset has an unknown symbol")]
    UnknownBinarySymbol,
    /// Packed bytes are too short or too long.
    #[error("packed asset: {0}")]
    Unpack(#[from] UnpackError),
}

/// Which asset, independent of the chain's naming.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AssetSymbol {
    /// HIVE / STEEM / TESTS, 3 decimals.
    Core,
    /// HBD / SBD / TBD, 3 decimals.
    Debt,
    /// VESTS, 6 decimals.
    Vests,
}

// Legacy symbols: byte 0 = precision, bytes 1..8 = NUL-padded name (§1.2, `asset_symbol.hpp`).
const LEGACY_STEEM: [u8; 8] = *b"\x03STEEM\0\0";
const LEGACY_SBD: [u8; 8] = *b"\x03SBD\0\0\0\0";
const LEGACY_TESTS: [u8; 8] = *b"\x03TESTS\0\0";
const LEGACY_TBD: [u8; 8] = *b"\x03TBD\0\0\0\0";
const LEGACY_VESTS: [u8; 8] = *b"\x06VESTS\0\0";

// HF26 `asset_num = ((99999999 + nai) << 5) | precision` (§1.2); Steem's numbers are the same values.
const NAI_CORE: u32 = 3_200_000_035; // @@000000021
const NAI_DEBT: u32 = 3_200_000_003; // @@000000013
const NAI_VESTS: u32 = 3_200_000_070; // @@000000037

impl AssetSymbol {
    /// Decimal places.
    pub fn precision(self) -> u8 {
        match self {
            AssetSymbol::Core | AssetSymbol::Debt => 3,
            AssetSymbol::Vests => 6,
        }
    }

    /// The 8 legacy symbol bytes; `testnet` selects `TESTS`/`TBD`.
    pub fn legacy_bytes(self, testnet: bool) -> [u8; 8] {
        match (self, testnet) {
            (AssetSymbol::Core, false) => LEGACY_STEEM,
            (AssetSymbol::Core, true) => LEGACY_TESTS,
            (AssetSymbol::Debt, false) => LEGACY_SBD,
            (AssetSymbol::Debt, true) => LEGACY_TBD,
            (AssetSymbol::Vests, _) => LEGACY_VESTS,
        }
    }

    /// The HF26 `asset_num`.
    pub fn asset_num(self) -> u32 {
        match self {
            AssetSymbol::Core => NAI_CORE,
            AssetSymbol::Debt => NAI_DEBT,
            AssetSymbol::Vests => NAI_VESTS,
        }
    }

    /// The JSON name on `chain`.
    pub fn name(self, chain: &ChainSpec) -> &str {
        match self {
            AssetSymbol::Core => &chain.core_symbol,
            AssetSymbol::Debt => &chain.debt_symbol,
            AssetSymbol::Vests => "VESTS",
        }
    }

    /// Resolves a JSON name. On Hive mainnet `STEEM`/`SBD` are accepted aliases, as hived's legacy JSON
    /// parser accepts them (§1.1).
    fn from_name(name: &str, chain: &ChainSpec) -> Option<Self> {
        let hive_main = chain.family == Family::Hive && !chain.testnet;
        if name == chain.core_symbol || (hive_main && name == "STEEM") {
            Some(AssetSymbol::Core)
        } else if name == chain.debt_symbol || (hive_main && name == "SBD") {
            Some(AssetSymbol::Debt)
        } else if name == "VESTS" {
            Some(AssetSymbol::Vests)
        } else {
            None
        }
    }
}

/// An amount in the smallest unit (0.001 HIVE = 1) with its symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Asset {
    /// Smallest units; may be negative in text and binary, validation decides.
    pub amount: i64,
    /// Which asset.
    pub symbol: AssetSymbol,
}

impl Asset {
    /// Core-asset amount in thousandths (`Asset::core(3000)` = 3.000 HIVE/STEEM).
    pub fn core(amount: i64) -> Self {
        Self { amount, symbol: AssetSymbol::Core }
    }

    /// Parses `"3.000 HIVE"`: one space, exactly the symbol's number of decimals, optional `-`.
    pub fn from_legacy_str(s: &str, chain: &ChainSpec) -> Result<Self, AssetError> {
        let format = || AssetError::Format(chain.core_symbol.clone());
        let (number, name) = s.split_once(' ').ok_or_else(format)?;
        let symbol = AssetSymbol::from_name(name, chain).ok_or_else(|| AssetError::UnknownSymbol {
            found: name.chars().take(16).collect(),
            chain: chain.name.clone(),
            expected: expected_names(chain),
        })?;
        let (negative, digits) = match number.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, number),
        };
        let (int, frac) = digits
            .split_once('.')
            .ok_or_else(|| AssetError::Precision { symbol: name.to_string(), precision: symbol.precision() })?;
        let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(int) || !all_digits(frac) {
            return Err(format());
        }
        if frac.len() != usize::from(symbol.precision()) {
            return Err(AssetError::Precision { symbol: name.to_string(), precision: symbol.precision() });
        }
        // Parse as one integer of smallest units; i128 leaves headroom for the sign and checks.
        let units: i128 = format!("{int}{frac}").parse().map_err(|_| AssetError::Overflow)?;
        let units = if negative { -units } else { units };
        let amount = i64::try_from(units).map_err(|_| AssetError::Overflow)?;
        Ok(Self { amount, symbol })
    }

    /// `"3.000 HIVE"` with the chain's name for the symbol.
    pub fn to_legacy_string(&self, chain: &ChainSpec) -> String {
        format!("{} {}", Amount(self.amount, self.symbol.precision()), self.symbol.name(chain))
    }

    /// Reads either binary form, as hived's tolerant `unpack` does (§1.2): if the first four symbol bytes
    /// are the start of a legacy symbol, read eight, otherwise take them as an `asset_num`. Used for the
    /// opaque `account_creation_fee` and exchange-rate prop values (§4.2).
    /// `testnet` selects which legacy names exist (`STEEM`/`SBD` or `TESTS`/`TBD`): a node knows only its
    /// own build's names.
    pub fn unpack(r: &mut Reader<'_>, testnet: bool) -> Result<Self, AssetError> {
        let amount = r.i64()?;
        let head: [u8; 4] = r.array()?;
        let legacy = [
            AssetSymbol::Core.legacy_bytes(testnet),
            AssetSymbol::Debt.legacy_bytes(testnet),
            AssetSymbol::Vests.legacy_bytes(testnet),
        ];
        if let Some(full) = legacy.iter().find(|l| l[..4] == head) {
            let tail: [u8; 4] = r.array()?;
            if full[4..] != tail {
                return Err(AssetError::UnknownBinarySymbol);
            }
            let symbol = match *full {
                LEGACY_STEEM | LEGACY_TESTS => AssetSymbol::Core,
                LEGACY_SBD | LEGACY_TBD => AssetSymbol::Debt,
                _ => AssetSymbol::Vests,
            };
            return Ok(Self { amount, symbol });
        }
        let symbol = match u32::from_le_bytes(head) {
            NAI_CORE => AssetSymbol::Core,
            NAI_DEBT => AssetSymbol::Debt,
            NAI_VESTS => AssetSymbol::Vests,
            _ => return Err(AssetError::UnknownBinarySymbol),
        };
        Ok(Self { amount, symbol })
    }

    /// Unpacks a whole byte string holding exactly one asset.
    pub fn from_packed(bytes: &[u8], testnet: bool) -> Result<Self, AssetError> {
        let mut r = Reader::new(bytes);
        let a = Self::unpack(&mut r, testnet)?;
        r.finish()?;
        Ok(a)
    }
}

fn expected_names(chain: &ChainSpec) -> String {
    let mut names = vec![chain.core_symbol.clone(), chain.debt_symbol.clone(), "VESTS".to_string()];
    if chain.family == Family::Hive && !chain.testnet {
        names.extend(["STEEM".to_string(), "SBD".to_string()]);
    }
    names.join(", ")
}

/// Fixed-point display of an amount; handles `i64::MIN` through `unsigned_abs`.
struct Amount(i64, u8);

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scale = 10u64.pow(u32::from(self.1));
        let abs = self.0.unsigned_abs();
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}{}.{:0width$}", abs / scale, abs % scale, width = usize::from(self.1))
    }
}

/// `asset`: int64 amount, then the symbol — 8 legacy bytes or the 4-byte NAI number by mode (§1.2).
impl Pack for Asset {
    fn pack(&self, sink: &mut Sink) {
        self.amount.pack(sink);
        match sink.mode() {
            PackMode::Legacy => {
                let sym = self.symbol.legacy_bytes(sink.testnet());
                sink.put(&sym);
            }
            PackMode::Hf26 => self.symbol.asset_num().pack(sink),
        }
    }
}

/// `price {base, quote}`: the `hbd_exchange_rate` / `sbd_exchange_rate` prop value (§4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Price {
    /// Debt side (HBD/SBD).
    pub base: Asset,
    /// Core side (HIVE/STEEM).
    pub quote: Asset,
}

impl Price {
    /// Unpacks a whole byte string holding exactly one price.
    pub fn from_packed(bytes: &[u8], testnet: bool) -> Result<Self, AssetError> {
        let mut r = Reader::new(bytes);
        let base = Asset::unpack(&mut r, testnet)?;
        let quote = Asset::unpack(&mut r, testnet)?;
        r.finish()?;
        Ok(Self { base, quote })
    }
}

impl Pack for Price {
    fn pack(&self, sink: &mut Sink) {
        self.base.pack(sink);
        self.quote.pack(sink);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::DEFAULT_TESTNET_CHAIN_ID;
    use crate::pack::{to_bytes, to_bytes_for};

    #[test]
    fn binary_forms_match_protocol_example() {
        // §1.2: 3.000 HIVE legacy = b80b000000000000 03535445454d0000; HF26 = b80b000000000000 2320bcbe.
        let a = Asset::core(3000);
        assert_eq!(hex::encode(to_bytes(&a, PackMode::Legacy)), "b80b00000000000003535445454d0000");
        assert_eq!(hex::encode(to_bytes(&a, PackMode::Hf26)), "b80b0000000000002320bcbe");
        let hbd = Asset { amount: 1, symbol: AssetSymbol::Debt };
        assert_eq!(hex::encode(to_bytes(&hbd, PackMode::Legacy)), "01000000000000000353424400000000");
        assert_eq!(hex::encode(to_bytes(&hbd, PackMode::Hf26)), "01000000000000000320bcbe");
        let vests = Asset { amount: -1, symbol: AssetSymbol::Vests };
        assert_eq!(hex::encode(to_bytes(&vests, PackMode::Legacy)), "ffffffffffffffff0656455354530000");
        assert_eq!(hex::encode(to_bytes(&vests, PackMode::Hf26)), "ffffffffffffffff4620bcbe");
        let testnet = ChainSpec::testnet(Family::Hive, DEFAULT_TESTNET_CHAIN_ID);
        assert_eq!(hex::encode(to_bytes_for(&a, &testnet, PackMode::Legacy)), "b80b0000000000000354455354530000");
    }

    #[test]
    fn unpack_reads_both_forms() {
        for bytes in ["b80b00000000000003535445454d0000", "b80b0000000000002320bcbe"] {
            assert_eq!(Asset::from_packed(&hex::decode(bytes).unwrap(), false), Ok(Asset::core(3000)));
        }
        assert_eq!(
            Asset::from_packed(&hex::decode("b80b000000000000ffffffff").unwrap(), false),
            Err(AssetError::UnknownBinarySymbol)
        );
        let trailing = hex::decode("b80b00000000000003535445454d000000").unwrap();
        assert!(Asset::from_packed(&trailing, false).is_err());
        // A testnet symbol is unknown to a mainnet node and vice versa.
        let tests = hex::decode("b80b0000000000000354455354530000").unwrap();
        assert_eq!(Asset::from_packed(&tests, false), Err(AssetError::UnknownBinarySymbol));
        assert_eq!(Asset::from_packed(&tests, true), Ok(Asset::core(3000)));
    }

    #[test]
    fn legacy_text() {
        let hive = ChainSpec::hive();
        let steem = ChainSpec::steem();
        assert_eq!(Asset::from_legacy_str("3.000 HIVE", &hive), Ok(Asset::core(3000)));
        assert_eq!(Asset::from_legacy_str("3.000 STEEM", &hive), Ok(Asset::core(3000)));
        assert_eq!(Asset::from_legacy_str("0.001 SBD", &hive), Ok(Asset { amount: 1, symbol: AssetSymbol::Debt }));
        assert_eq!(Asset::from_legacy_str("3.000 STEEM", &steem), Ok(Asset::core(3000)));
        assert!(matches!(Asset::from_legacy_str("3.000 HIVE", &steem), Err(AssetError::UnknownSymbol { .. })));
        assert!(matches!(Asset::from_legacy_str("3.00 HIVE", &hive), Err(AssetError::Precision { .. })));
        assert!(matches!(Asset::from_legacy_str("3 HIVE", &hive), Err(AssetError::Precision { .. })));
        assert!(matches!(Asset::from_legacy_str("3.000HIVE", &hive), Err(AssetError::Format(_))));
        assert!(matches!(Asset::from_legacy_str("+3.000 HIVE", &hive), Err(AssetError::Format(_))));
        assert!(matches!(Asset::from_legacy_str(".000 HIVE", &hive), Err(AssetError::Format(_))));
        assert_eq!(Asset::from_legacy_str("99999999999999999.999 HIVE", &hive), Err(AssetError::Overflow));
        assert_eq!(Asset::from_legacy_str("1.000000 VESTS", &hive).map(|a| a.amount), Ok(1_000_000));
        assert_eq!(Asset::core(3000).to_legacy_string(&hive), "3.000 HIVE");
        assert_eq!(Asset::core(-5).to_legacy_string(&steem), "-0.005 STEEM");
        assert_eq!(Asset::core(i64::MIN).to_legacy_string(&steem), "-9223372036854775.808 STEEM");
        let m = Asset::core(i64::MIN);
        assert_eq!(Asset::from_legacy_str(&m.to_legacy_string(&hive), &hive), Ok(m));
    }
}
