//! The two operations the trap signs: `witness_update` (op 11, protocol.md §4.1) and
//! `witness_set_properties` (op 42, §4.2): their structs, binary form and the node's stateless
//! `validate()`. Their JSON form lives in `json.rs`; which one to use is the caller's choice (§4.3).
//!
//! Stateful checks (the witness exists, `key` equals the on-chain signing key, authorities) are the node's;
//! this file mirrors only what hived checks before any signature is looked at.

use std::collections::BTreeMap;

use thiserror::Error;

use super::asset::{Asset, AssetSymbol, Price};
use super::chain::ChainSpec;
use super::keys::PublicKey;
use super::pack::{to_bytes, to_bytes_for, Pack, PackMode, Reader, Sink, Varint};

/// `HIVE_MAX_WITNESS_URL_LENGTH` / `STEEM_MAX_WITNESS_URL_LENGTH`.
pub const MAX_URL_LENGTH: usize = 2048;
/// `HIVE_MIN_BLOCK_SIZE_LIMIT`.
pub const MIN_BLOCK_SIZE: u32 = 65_536;
/// `HIVE_MAX_BLOCK_SIZE` (Steem enforces it in the evaluator since HF20).
pub const MAX_BLOCK_SIZE: u32 = 2 * 1024 * 1024;
/// `HIVE_MAX_ACCOUNT_CREATION_FEE`: 1 000 000.000.
pub const MAX_ACCOUNT_CREATION_FEE: i64 = 1_000_000_000;
/// `HIVE_100_PERCENT`: the interest-rate ceiling.
pub const MAX_INTEREST_RATE: u16 = 10_000;
/// `HIVE_RD_MIN_BUDGET` .. `HIVE_RD_MAX_BUDGET` = min(2^34−1, 2^28−1, i32::MAX).
pub const ACCOUNT_SUBSIDY_BUDGET: (i32, i32) = (1, 268_435_455);
/// `HIVE_RD_MIN_DECAY` = 1 << 6 .. `HIVE_RD_MAX_DECAY` = u32::MAX.
pub const MIN_ACCOUNT_SUBSIDY_DECAY: u32 = 64;

/// Op ids in the `operation` static_variant (`operations.hpp`).
pub const WITNESS_UPDATE_ID: u64 = 11;
/// See [`WITNESS_UPDATE_ID`].
pub const WITNESS_SET_PROPERTIES_ID: u64 = 42;

/// What is wrong with one field.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Problem {
    /// `validate_account_name` failed.
    #[error("invalid account name (3-16 characters; dot-separated labels of a-z, 0-9, '-', starting with a letter)")]
    AccountName,
    /// hived: "URL size must be greater than 0".
    #[error("url size must be greater than 0")]
    EmptyUrl,
    /// hived: "URL is too long".
    #[error("url is too long ({0} bytes, at most 2048)")]
    UrlTooLong(usize),
    /// Wrong asset symbol.
    #[error("must be in {0}")]
    WrongSymbol(&'static str),
    /// Below the minimum.
    #[error("{value} is below the minimum {min}")]
    BelowMin {
        /// Value found (smallest units for assets).
        value: i64,
        /// Smallest accepted value.
        min: i64,
    },
    /// Above the maximum.
    #[error("{value} is above the maximum {max}")]
    AboveMax {
        /// Value found.
        value: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// hived: "No signing key provided" (op 42 without `key`).
    #[error("no signing key provided")]
    NoSigningKey,
    /// An op 42 prop value that hived would fail to unpack.
    #[error("value cannot be unpacked: {0}")]
    Unpack(String),
    /// `price::validate`: both amounts positive, base HBD/SBD, quote HIVE/STEEM.
    #[error("price must be a positive debt/core price")]
    BadPrice,
    /// A transaction without operations.
    #[error("a transaction must have at least one operation")]
    NoOperations,
}

/// A stateless validation failure: the field path and the problem. One line.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{field}: {problem}")]
pub struct ValidationError {
    /// Field path, e.g. `url`, `props.maximum_block_size`, `operations[0][1].url`.
    pub field: String,
    /// What is wrong.
    pub problem: Problem,
}

impl ValidationError {
    fn new(field: impl Into<String>, problem: Problem) -> Self {
        Self { field: field.into(), problem }
    }

    /// The same error with `prefix.` in front of the field path.
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = format!("{prefix}.{}", self.field);
        self
    }
}

/// `legacy_chain_properties` (§4.1): the three witness votes `witness_update` overwrites.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyChainProperties {
    /// A `legacy_hive_asset`: must be the core symbol.
    pub account_creation_fee: Asset,
    /// Bytes.
    pub maximum_block_size: u32,
    /// `hbd_interest_rate` on Hive, `sbd_interest_rate` on Steem; basis points.
    pub interest_rate: u16,
}

/// `FC_REFLECT(legacy_chain_properties, (account_creation_fee)(maximum_block_size)(hbd_interest_rate))`.
/// The fee is a `legacy_hive_asset`: 16 bytes legacy, amount + NAI (12 bytes) in HF26 (§1.2).
impl Pack for LegacyChainProperties {
    fn pack(&self, sink: &mut Sink) {
        self.account_creation_fee.pack(sink);
        self.maximum_block_size.pack(sink);
        self.interest_rate.pack(sink);
    }
}

/// `witness_update_operation` (op 11). Overwrites url and all three props: copy the current values (§0
/// item 6). Needs the owner's active key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessUpdate {
    /// Witness account.
    pub owner: String,
    /// Witness URL, 1..=2048 bytes.
    pub url: String,
    /// The new block signing key; [`PublicKey::NULL`] disables the witness.
    pub block_signing_key: PublicKey,
    /// The witness's votes on chain properties.
    pub props: LegacyChainProperties,
    /// Never charged; send 0.000 of the core asset (§4.1).
    pub fee: Asset,
}

/// `FC_REFLECT(witness_update_operation, (owner)(url)(block_signing_key)(props)(fee))` — no extensions.
impl Pack for WitnessUpdate {
    fn pack(&self, sink: &mut Sink) {
        self.owner.pack(sink);
        self.url.pack(sink);
        self.block_signing_key.pack(sink);
        self.props.pack(sink);
        self.fee.pack(sink);
    }
}

/// `witness_set_properties_operation` (op 42): only the props present change. Needs the *current block
/// signing key* (the one in `key`), not an account key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessSetProperties {
    /// Witness account.
    pub owner: String,
    /// Prop name → already-packed value. A `BTreeMap<String, _>` iterates bytewise, which is the order of
    /// hived's `flat_map` (§0 item 4), so the digest is the node's whatever order the input had.
    pub props: BTreeMap<String, Vec<u8>>,
}

/// Packs one typed prop value (`fc::raw::pack` of the value, §4.2) for a mainnet build.
pub fn pack_prop<T: Pack + ?Sized>(value: &T) -> Vec<u8> {
    to_bytes(value, PackMode::Legacy)
}

impl WitnessSetProperties {
    /// An op with no props yet.
    pub fn new(owner: &str) -> Self {
        Self { owner: owner.to_string(), props: BTreeMap::new() }
    }

    /// The least-privilege failover op (§4.3): `key` = the current on-chain signing key (the signer),
    /// `new_signing_key` = the backup node's key.
    pub fn key_swap(owner: &str, current: PublicKey, new: PublicKey) -> Self {
        let mut op = Self::new(owner);
        op.set_public_key("key", current);
        op.set_public_key("new_signing_key", new);
        op
    }

    /// Sets an already-packed value.
    pub fn set_raw(&mut self, name: &str, packed: Vec<u8>) -> &mut Self {
        self.props.insert(name.to_string(), packed);
        self
    }

    /// `key`, `new_signing_key`: 33 bytes.
    pub fn set_public_key(&mut self, name: &str, key: PublicKey) -> &mut Self {
        self.set_raw(name, pack_prop(&key))
    }

    /// `maximum_block_size`, `account_subsidy_decay`: u32 LE.
    pub fn set_u32(&mut self, name: &str, v: u32) -> &mut Self {
        self.set_raw(name, pack_prop(&v))
    }

    /// `hbd_interest_rate` / `sbd_interest_rate`: u16 LE.
    pub fn set_u16(&mut self, name: &str, v: u16) -> &mut Self {
        self.set_raw(name, pack_prop(&v))
    }

    /// `account_subsidy_budget`: i32 LE.
    pub fn set_i32(&mut self, name: &str, v: i32) -> &mut Self {
        self.set_raw(name, pack_prop(&v))
    }

    /// `url`: varint length ‖ bytes.
    pub fn set_string(&mut self, name: &str, v: &str) -> &mut Self {
        self.set_raw(name, pack_prop(v))
    }

    /// `account_creation_fee`: the legacy 16-byte form with `chain`'s symbol names — what dhive, dsteem and
    /// hive-tx send and both chains unpack (§0 item 17).
    pub fn set_asset(&mut self, name: &str, v: Asset, chain: &ChainSpec) -> &mut Self {
        self.set_raw(name, to_bytes_for(&v, chain, PackMode::Legacy))
    }

    /// `hbd_exchange_rate` / `sbd_exchange_rate`: base ‖ quote, legacy symbols.
    pub fn set_price(&mut self, name: &str, v: Price, chain: &ChainSpec) -> &mut Self {
        self.set_raw(name, to_bytes_for(&v, chain, PackMode::Legacy))
    }

    /// The packed value of a prop.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.props.get(name).map(Vec::as_slice)
    }

    fn get_key(&self, name: &str) -> Option<PublicKey> {
        let bytes: [u8; 33] = self.get(name)?.try_into().ok()?;
        PublicKey::from_bytes(bytes).ok()
    }

    /// The `key` prop (the signing key the op must be signed with), if present and well-formed.
    pub fn key(&self) -> Option<PublicKey> {
        self.get_key("key")
    }

    /// The `new_signing_key` prop, if present and well-formed.
    pub fn new_signing_key(&self) -> Option<PublicKey> {
        self.get_key("new_signing_key")
    }
}

/// `FC_REFLECT(witness_set_properties_operation, (owner)(props)(extensions))`; each prop value is a
/// `vector<char>`, so it gets its own length prefix inside the map (§4.2).
impl Pack for WitnessSetProperties {
    fn pack(&self, sink: &mut Sink) {
        self.owner.pack(sink);
        self.props.pack(sink);
        Varint(0).pack(sink); // extensions: always empty
    }
}

/// The operations this crate knows. Any other name is rejected when parsing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Op 11.
    WitnessUpdate(WitnessUpdate),
    /// Op 42.
    WitnessSetProperties(WitnessSetProperties),
}

/// `static_variant`: varint op id ‖ fields (§3.1).
impl Pack for Operation {
    fn pack(&self, sink: &mut Sink) {
        Varint(self.id()).pack(sink);
        match self {
            Operation::WitnessUpdate(op) => op.pack(sink),
            Operation::WitnessSetProperties(op) => op.pack(sink),
        }
    }
}

/// Options for [`Operation::validate_with`]: the few rules that depend on the build.
#[derive(Clone, Copy, Debug)]
struct Rules<'a> {
    /// `HIVE_MIN_ACCOUNT_CREATION_FEE`: 1 on mainnet, 0 on testnet builds.
    min_fee: i64,
    /// Legacy symbol names inside op 42 values.
    testnet: bool,
    /// JSON name of the interest-rate field, for messages.
    rate_field: &'a str,
}

impl Operation {
    /// Condenser name: `witness_update`, `witness_set_properties`.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::WitnessUpdate(_) => "witness_update",
            Operation::WitnessSetProperties(_) => "witness_set_properties",
        }
    }

    /// Op id in the static_variant.
    pub fn id(&self) -> u64 {
        match self {
            Operation::WitnessUpdate(_) => WITNESS_UPDATE_ID,
            Operation::WitnessSetProperties(_) => WITNESS_SET_PROPERTIES_ID,
        }
    }

    /// The node's stateless `validate()` with mainnet rules (§4.1, §4.2; hive `hive_operations.cpp`). Where
    /// Hive and Steem differ the stricter rule is applied (both chains end up enforcing it, Steem in the
    /// evaluator). Use [`Operation::validate_for`] on a testnet.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.validate_with(Rules { min_fee: 1, testnet: false, rate_field: "interest_rate" })
    }

    /// [`Operation::validate`] with `chain`'s field names and testnet rules (minimum fee 0, `TESTS`).
    pub fn validate_for(&self, chain: &ChainSpec) -> Result<(), ValidationError> {
        self.validate_with(Rules {
            min_fee: if chain.testnet { 0 } else { 1 },
            testnet: chain.testnet,
            rate_field: chain.interest_rate_field(),
        })
    }

    fn validate_with(&self, rules: Rules<'_>) -> Result<(), ValidationError> {
        match self {
            Operation::WitnessUpdate(op) => validate_witness_update(op, rules),
            Operation::WitnessSetProperties(op) => validate_set_properties(op, rules),
        }
    }
}

fn validate_witness_update(op: &WitnessUpdate, rules: Rules<'_>) -> Result<(), ValidationError> {
    check_account_name("owner", &op.owner)?;
    check_url("url", &op.url)?;
    // Steem: `fee >= asset(0, STEEM_SYMBOL)`; both chains' evaluators demand the canonical symbol.
    check_symbol("fee", &op.fee, AssetSymbol::Core)?;
    check_range("fee", op.fee.amount, 0, i64::MAX)?;
    // legacy_chain_properties::validate<false>.
    let fee = &op.props.account_creation_fee;
    check_symbol("props.account_creation_fee", fee, AssetSymbol::Core)?;
    check_range("props.account_creation_fee", fee.amount, rules.min_fee, MAX_ACCOUNT_CREATION_FEE)?;
    check_range(
        "props.maximum_block_size",
        i64::from(op.props.maximum_block_size),
        i64::from(MIN_BLOCK_SIZE),
        i64::from(MAX_BLOCK_SIZE),
    )?;
    let rate_field = format!("props.{}", rules.rate_field);
    check_range(&rate_field, i64::from(op.props.interest_rate), 0, i64::from(MAX_INTEREST_RATE))?;
    Ok(())
}

fn unpack_err(field: &str, e: impl ToString) -> ValidationError {
    ValidationError::new(field, Problem::Unpack(e.to_string()))
}

fn validate_set_properties(op: &WitnessSetProperties, rules: Rules<'_>) -> Result<(), ValidationError> {
    check_account_name("owner", &op.owner)?;
    // The key defines the required authority; without it nobody can sign (§4.2).
    let Some(key) = op.get("key") else {
        return Err(ValidationError::new("props.key", Problem::NoSigningKey));
    };
    check_key_bytes("props.key", key)?;
    if let Some(bytes) = op.get("new_signing_key") {
        check_key_bytes("props.new_signing_key", bytes)?;
    }
    if let Some(bytes) = op.get("account_creation_fee") {
        let field = "props.account_creation_fee";
        let fee = Asset::from_packed(bytes, rules.testnet).map_err(|e| unpack_err(field, e))?;
        check_symbol(field, &fee, AssetSymbol::Core)?;
        check_range(field, fee.amount, rules.min_fee, MAX_ACCOUNT_CREATION_FEE)?;
    }
    if let Some(bytes) = op.get("maximum_block_size") {
        let field = "props.maximum_block_size";
        let v = read_exact(bytes, |r| r.u32()).map_err(|e| unpack_err(field, e))?;
        check_range(field, i64::from(v), i64::from(MIN_BLOCK_SIZE), i64::from(MAX_BLOCK_SIZE))?;
    }
    // Hive reads `sbd_` first and `hbd_` only if absent; Steem knows only `sbd_`. Checking every one present
    // is at least as strict as either node.
    for name in ["sbd_interest_rate", "hbd_interest_rate"] {
        if let Some(bytes) = op.get(name) {
            let field = format!("props.{name}");
            let v = read_exact(bytes, |r| r.u16()).map_err(|e| unpack_err(&field, e))?;
            check_range(&field, i64::from(v), 0, i64::from(MAX_INTEREST_RATE))?;
        }
    }
    for name in ["sbd_exchange_rate", "hbd_exchange_rate"] {
        if let Some(bytes) = op.get(name) {
            let field = format!("props.{name}");
            let p = Price::from_packed(bytes, rules.testnet).map_err(|e| unpack_err(&field, e))?;
            let ok = p.base.symbol == AssetSymbol::Debt
                && p.quote.symbol == AssetSymbol::Core
                && p.base.amount > 0
                && p.quote.amount > 0;
            if !ok {
                return Err(ValidationError::new(field, Problem::BadPrice));
            }
        }
    }
    if let Some(bytes) = op.get("url") {
        let url = read_exact(bytes, |r| r.string()).map_err(|e| unpack_err("props.url", e))?;
        check_url("props.url", &url)?;
    }
    if let Some(bytes) = op.get("account_subsidy_budget") {
        let field = "props.account_subsidy_budget";
        let v = read_exact(bytes, |r| r.i32()).map_err(|e| unpack_err(field, e))?;
        let (min, max) = ACCOUNT_SUBSIDY_BUDGET;
        check_range(field, i64::from(v), i64::from(min), i64::from(max))?;
    }
    if let Some(bytes) = op.get("account_subsidy_decay") {
        let field = "props.account_subsidy_decay";
        let v = read_exact(bytes, |r| r.u32()).map_err(|e| unpack_err(field, e))?;
        check_range(field, i64::from(v), i64::from(MIN_ACCOUNT_SUBSIDY_DECAY), i64::from(u32::MAX))?;
    }
    // Unknown prop names are ignored by the node (§4.2).
    Ok(())
}

fn read_exact<T>(
    bytes: &[u8],
    f: impl FnOnce(&mut Reader<'_>) -> Result<T, super::pack::UnpackError>,
) -> Result<T, super::pack::UnpackError> {
    let mut r = Reader::new(bytes);
    let v = f(&mut r)?;
    r.finish()?;
    Ok(v)
}

fn check_key_bytes(field: &str, bytes: &[u8]) -> Result<(), ValidationError> {
    let arr: [u8; 33] =
        bytes.try_into().map_err(|_| unpack_err(field, format!("a public key is 33 bytes, got {}", bytes.len())))?;
    PublicKey::from_bytes(arr).map_err(|e| unpack_err(field, e))?;
    Ok(())
}

fn check_symbol(field: &str, a: &Asset, want: AssetSymbol) -> Result<(), ValidationError> {
    if a.symbol == want {
        return Ok(());
    }
    let name = match want {
        AssetSymbol::Core => "the core asset (HIVE/STEEM)",
        AssetSymbol::Debt => "the debt asset (HBD/SBD)",
        AssetSymbol::Vests => "VESTS",
    };
    Err(ValidationError::new(field, Problem::WrongSymbol(name)))
}

fn check_range(field: &str, value: i64, min: i64, max: i64) -> Result<(), ValidationError> {
    if value < min {
        return Err(ValidationError::new(field, Problem::BelowMin { value, min }));
    }
    if value > max {
        return Err(ValidationError::new(field, Problem::AboveMax { value, max }));
    }
    Ok(())
}

fn check_url(field: &str, url: &str) -> Result<(), ValidationError> {
    // Rust strings are UTF-8, which covers hived's `is_utf8` check.
    if url.is_empty() {
        return Err(ValidationError::new(field, Problem::EmptyUrl));
    }
    if url.len() > MAX_URL_LENGTH {
        return Err(ValidationError::new(field, Problem::UrlTooLong(url.len())));
    }
    Ok(())
}

fn check_account_name(field: &str, name: &str) -> Result<(), ValidationError> {
    if is_valid_account_name(name) {
        Ok(())
    } else {
        Err(ValidationError::new(field, Problem::AccountName))
    }
}

/// hived's `is_valid_account_name`: 3..=16 bytes; dot-separated labels, each ≥ 3 bytes, starting with
/// a-z, ending with a-z or 0-9, with a-z, 0-9 and '-' in between.
pub fn is_valid_account_name(name: &str) -> bool {
    if !(3..=16).contains(&name.len()) {
        return false;
    }
    name.split('.').all(|label| {
        let b = label.as_bytes();
        match (b.first(), b.last()) {
            (Some(first), Some(last)) if b.len() >= 3 => {
                first.is_ascii_lowercase()
                    && (last.is_ascii_lowercase() || last.is_ascii_digit())
                    && b[1..b.len() - 1].iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            }
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::to_bytes;

    fn key(text: &str) -> PublicKey {
        PublicKey::from_text(text, "STM").unwrap()
    }

    fn update() -> WitnessUpdate {
        WitnessUpdate {
            owner: "alice".into(),
            url: "https://example.com".into(),
            block_signing_key: key("STM7brYP9rXyMynTPaoaJkMm6BC4Sfw8wkdRiGkmkWPdNpgVryr35"),
            props: LegacyChainProperties {
                account_creation_fee: Asset::core(3000),
                maximum_block_size: 65536,
                interest_rate: 1000,
            },
            fee: Asset::core(0),
        }
    }

    #[test]
    fn witness_update_bytes_match_section_3_2() {
        let op = Operation::WitnessUpdate(update());
        let expect = concat!(
            "0b",
            "05616c696365",
            "1368747470733a2f2f6578616d706c652e636f6d",
            "03655133de32f4d64fb4f33092c0c9767b7fb07b64b671f8efbb1be059ae02cff9",
            "b80b00000000000003535445454d0000",
            "00000100",
            "e803",
            "000000000000000003535445454d0000",
        );
        assert_eq!(hex::encode(to_bytes(&op, PackMode::Legacy)), expect);
        let hf26 = hex::encode(to_bytes(&op, PackMode::Hf26));
        assert!(hf26.ends_with("b80b0000000000002320bcbe00000100e80300000000000000002320bcbe"));
    }

    #[test]
    fn key_swap_bytes_match_section_4_2() {
        let op = WitnessSetProperties::key_swap(
            "alice",
            key("STM8RBpwoufdAa5V1bBAS53BdnqwTx4LfSMCtse6wqfQJ9NoYo5oN"),
            key("STM7brYP9rXyMynTPaoaJkMm6BC4Sfw8wkdRiGkmkWPdNpgVryr35"),
        );
        let expect = concat!(
            "2a05616c69636502036b65792103d0ca9c91eff1ab6d5c2035de02b7db15dc187939210ce29b4f6e61f540ad9b96",
            "0f6e65775f7369676e696e675f6b65792103655133de32f4d64fb4f33092c0c9767b7fb07b64b671f8efbb1be059ae02cff9",
            "00"
        );
        assert_eq!(hex::encode(to_bytes(&Operation::WitnessSetProperties(op.clone()), PackMode::Legacy)), expect);
        assert_eq!(op.key(), Some(key("STM8RBpwoufdAa5V1bBAS53BdnqwTx4LfSMCtse6wqfQJ9NoYo5oN")));
        assert_eq!(op.new_signing_key(), Some(key("STM7brYP9rXyMynTPaoaJkMm6BC4Sfw8wkdRiGkmkWPdNpgVryr35")));
    }

    #[test]
    fn prop_value_encodings_match_section_4_2() {
        let chain = ChainSpec::hive();
        let mut op = WitnessSetProperties::new("alice");
        op.set_string("url", "https://x.y")
            .set_u32("maximum_block_size", 65536)
            .set_u16("hbd_interest_rate", 1000)
            .set_asset("account_creation_fee", Asset::core(3000), &chain);
        assert_eq!(hex::encode(op.get("url").unwrap()), "0b68747470733a2f2f782e79");
        assert_eq!(hex::encode(op.get("maximum_block_size").unwrap()), "00000100");
        assert_eq!(hex::encode(op.get("hbd_interest_rate").unwrap()), "e803");
        assert_eq!(hex::encode(op.get("account_creation_fee").unwrap()), "b80b00000000000003535445454d0000");
    }

    #[test]
    fn witness_update_validation_table() {
        type Mutation = fn(&mut WitnessUpdate);
        let bad: Vec<(Mutation, &str)> = vec![
            (|o| o.url.clear(), "url: url size must be greater than 0"),
            (|o| o.url = "x".repeat(2049), "url: url is too long (2049 bytes, at most 2048)"),
            (|o| o.owner = "Alice".into(), "owner"),
            (|o| o.owner = "ab".into(), "owner"),
            (|o| o.fee = Asset::core(-1), "fee: -1 is below the minimum 0"),
            (|o| o.fee.symbol = AssetSymbol::Debt, "fee: must be in"),
            (|o| o.props.account_creation_fee = Asset::core(0), "props.account_creation_fee: 0 is below"),
            (
                |o| o.props.account_creation_fee = Asset::core(1_000_000_001),
                "props.account_creation_fee: 1000000001 is above",
            ),
            (|o| o.props.maximum_block_size = 65535, "props.maximum_block_size"),
            (|o| o.props.maximum_block_size = MAX_BLOCK_SIZE + 1, "props.maximum_block_size"),
            (|o| o.props.interest_rate = 10_001, "props.interest_rate"),
        ];
        assert_eq!(Operation::WitnessUpdate(update()).validate(), Ok(()));
        for (mutate, expect) in bad {
            let mut op = update();
            mutate(&mut op);
            let err = Operation::WitnessUpdate(op).validate().unwrap_err().to_string();
            assert!(err.starts_with(expect), "{err:?} should start with {expect:?}");
        }
        let mut op = update();
        op.props.interest_rate = 10_001;
        let err = Operation::WitnessUpdate(op).validate_for(&ChainSpec::steem()).unwrap_err();
        assert_eq!(err.field, "props.sbd_interest_rate");
    }

    #[test]
    fn set_properties_validation_table() {
        let k = key("STM8RBpwoufdAa5V1bBAS53BdnqwTx4LfSMCtse6wqfQJ9NoYo5oN");
        let base = WitnessSetProperties::key_swap("alice", k, k);
        assert_eq!(Operation::WitnessSetProperties(base.clone()).validate(), Ok(()));
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("maximum_block_size", pack_prop(&65535u32), "props.maximum_block_size: 65535 is below"),
            ("maximum_block_size", vec![0, 0, 1], "props.maximum_block_size: value cannot be unpacked"),
            ("hbd_interest_rate", pack_prop(&10_001u16), "props.hbd_interest_rate: 10001 is above"),
            ("sbd_interest_rate", pack_prop(&10_001u16), "props.sbd_interest_rate"),
            ("url", pack_prop(""), "props.url: url size must be greater than 0"),
            ("new_signing_key", vec![5; 33], "props.new_signing_key: value cannot be unpacked"),
            ("account_creation_fee", pack_prop(&Asset::core(0)), "props.account_creation_fee: 0 is below"),
            ("account_subsidy_budget", pack_prop(&0i32), "props.account_subsidy_budget"),
            ("account_subsidy_decay", pack_prop(&63u32), "props.account_subsidy_decay"),
            (
                "hbd_exchange_rate",
                pack_prop(&Price { base: Asset::core(1), quote: Asset::core(1) }),
                "props.hbd_exchange_rate: price",
            ),
        ];
        for (name, value, expect) in cases {
            let mut op = base.clone();
            op.set_raw(name, value);
            let err = Operation::WitnessSetProperties(op).validate().unwrap_err().to_string();
            assert!(err.starts_with(expect), "{name}: {err:?} should start with {expect:?}");
        }
        let mut no_key = base.clone();
        no_key.props.remove("key");
        assert_eq!(
            Operation::WitnessSetProperties(no_key).validate().unwrap_err().to_string(),
            "props.key: no signing key provided"
        );
        let mut ok = base;
        ok.set_raw("unknown_prop", vec![1, 2, 3]);
        ok.set_price(
            "hbd_exchange_rate",
            Price { base: Asset { amount: 207, symbol: AssetSymbol::Debt }, quote: Asset::core(1000) },
            &ChainSpec::hive(),
        );
        assert_eq!(Operation::WitnessSetProperties(ok).validate(), Ok(()));
    }

    #[test]
    fn account_names() {
        for good in ["abc", "alice", "a-b", "a1c", "abc.def", "gtg", "a--b", "sixteen-chars-ok"] {
            assert!(is_valid_account_name(good), "{good}");
        }
        for bad in ["ab", "Abc", "1ab", "ab-", "abc.de", "abc.", ".abc", "seventeen-chars-x", "ab_c", ""] {
            assert!(!is_valid_account_name(bad), "{bad}");
        }
    }
}
