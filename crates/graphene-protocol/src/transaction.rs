//! Transactions: layout (protocol.md §3.2), TaPoS from a block id (§3.3), expiration time (§3.4), the
//! signature digest and the transaction id (§3.5), in legacy and HF26 form (§1.4).
//!
//! Signing is `sign.rs`; JSON is `json.rs`. Choosing an expiration (head block time + 60…600 s) and a
//! reference block is the caller's job: this file only encodes them.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use thiserror::Error;

use super::chain::ChainSpec;
use super::keys::PrivateKey;
use super::operation::{Operation, Problem, ValidationError};
pub use super::pack::PackMode;
use super::pack::{Pack, Sink, Varint};
use super::sign::{recover, self_check, sign_digest, SignError, Signature};

/// Errors of this module (text forms of times, block ids and transaction ids).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TransactionError {
    /// Not `YYYY-MM-DDTHH:MM:SS` (UTC, no zone suffix) within 1970..2106.
    #[error("time must be \"YYYY-MM-DDTHH:MM:SS\" (UTC) between 1970 and 2106")]
    BadTime,
    /// A block id is 40 hex characters.
    #[error("block id must be 40 hex characters")]
    BadBlockId,
    /// A transaction id is 40 hex characters.
    #[error("transaction id must be 40 hex characters")]
    BadTxId,
}

/// `fc::time_point_sec`: whole seconds since 1970-01-01 UTC, packed as u32 (§3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimePointSec(pub u32);

impl TimePointSec {
    /// `self + secs`, `None` past 2106.
    pub fn checked_add(self, secs: u32) -> Option<Self> {
        self.0.checked_add(secs).map(Self)
    }
}

impl FromStr for TimePointSec {
    type Err = TransactionError;

    /// Parses exactly `YYYY-MM-DDTHH:MM:SS`, as the node prints it (§1.3).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let shape_ok = b.len() == 19
            && b.iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                10 => *c == b'T',
                13 | 16 => *c == b':',
                _ => c.is_ascii_digit(),
            });
        if !shape_ok {
            return Err(TransactionError::BadTime);
        }
        let num = |r: std::ops::Range<usize>| s[r].parse::<u16>().map_err(|_| TransactionError::BadTime);
        let month = time::Month::try_from(u8::try_from(num(5..7)?).map_err(|_| TransactionError::BadTime)?)
            .map_err(|_| TransactionError::BadTime)?;
        let small = |v: u16| u8::try_from(v).map_err(|_| TransactionError::BadTime);
        let date = time::Date::from_calendar_date(i32::from(num(0..4)?), month, small(num(8..10)?)?)
            .map_err(|_| TransactionError::BadTime)?;
        let clock = time::Time::from_hms(small(num(11..13)?)?, small(num(14..16)?)?, small(num(17..19)?)?)
            .map_err(|_| TransactionError::BadTime)?;
        let secs = time::PrimitiveDateTime::new(date, clock).assume_utc().unix_timestamp();
        u32::try_from(secs).map(Self).map_err(|_| TransactionError::BadTime)
    }
}

impl fmt::Display for TimePointSec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every u32 is a valid timestamp (up to 2106), so this conversion cannot fail.
        let t = time::OffsetDateTime::from_unix_timestamp(i64::from(self.0)).map_err(|_| fmt::Error)?;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }
}

impl Pack for TimePointSec {
    fn pack(&self, sink: &mut Sink) {
        self.0.pack(sink);
    }
}

/// A block id (`block_id_type`, ripemd160-sized): bytes 0..4 are the block number, big-endian (§3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockId(pub [u8; 20]);

impl BlockId {
    /// Parses 40 hex characters (`head_block_id`, `previous`).
    pub fn from_hex(s: &str) -> Result<Self, TransactionError> {
        let mut b = [0u8; 20];
        hex::decode_to_slice(s, &mut b).map_err(|_| TransactionError::BadBlockId)?;
        Ok(Self(b))
    }

    /// The block number encoded in the id.
    pub fn block_num(&self) -> u32 {
        u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }

    /// (`ref_block_num`, `ref_block_prefix`): the low 16 bits of the number, and the *little-endian* u32
    /// at bytes 4..8 (`block_id._hash[1]`), §0 item 11.
    pub fn tapos(&self) -> (u16, u32) {
        let num = (self.block_num() & 0xffff) as u16;
        let prefix = u32::from_le_bytes([self.0[4], self.0[5], self.0[6], self.0[7]]);
        (num, prefix)
    }
}

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Transaction id: the first 20 bytes of sha256 of the unsigned transaction (§3.5; not ripemd160).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TxId(pub [u8; 20]);

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl FromStr for TxId {
    type Err = TransactionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut b = [0u8; 20];
        hex::decode_to_slice(s, &mut b).map_err(|_| TransactionError::BadTxId)?;
        Ok(Self(b))
    }
}

/// An unsigned transaction. `extensions` is always empty and therefore not a field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// Low 16 bits of the reference block number.
    pub ref_block_num: u16,
    /// Little-endian u32 at bytes 4..8 of the reference block id.
    pub ref_block_prefix: u32,
    /// Head block time + a few minutes; at most 1 h ahead on Steem (24 h on Hive since HF28), §3.4.
    pub expiration: TimePointSec,
    /// At least one.
    pub operations: Vec<Operation>,
}

/// `FC_REFLECT(transaction, (ref_block_num)(ref_block_prefix)(expiration)(operations)(extensions))`.
impl Pack for Transaction {
    fn pack(&self, sink: &mut Sink) {
        self.ref_block_num.pack(sink);
        self.ref_block_prefix.pack(sink);
        self.expiration.pack(sink);
        self.operations.pack(sink);
        Varint(0).pack(sink); // extensions
    }
}

impl Transaction {
    /// A transaction referencing `head` (TaPoS, §3.3).
    pub fn with_tapos(head: &BlockId, expiration: TimePointSec, operations: Vec<Operation>) -> Self {
        let (ref_block_num, ref_block_prefix) = head.tapos();
        Self { ref_block_num, ref_block_prefix, expiration, operations }
    }

    /// The unsigned bytes with mainnet legacy symbols (`STEEM`/`SBD`). On a testnet build use
    /// [`Transaction::serialize_for`].
    pub fn serialize(&self, mode: PackMode) -> Vec<u8> {
        let mut sink = Sink::new(mode);
        self.pack(&mut sink);
        sink.into_bytes()
    }

    /// The unsigned bytes with `chain`'s legacy symbol names.
    pub fn serialize_for(&self, chain: &ChainSpec, mode: PackMode) -> Vec<u8> {
        let mut sink = Sink::for_chain(chain, mode);
        self.pack(&mut sink);
        sink.into_bytes()
    }

    /// `sha256(chain_id ‖ unsigned bytes)` (§3.5). `Hf26` is meaningful on Hive only (§1.4).
    pub fn digest(&self, chain: &ChainSpec, mode: PackMode) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(chain.chain_id);
        h.update(self.serialize_for(chain, mode));
        h.finalize().into()
    }

    /// Transaction id for a mainnet build (§3.5). On Hive the node reports the id of the serialization
    /// whose signatures validated (§1.4).
    pub fn id(&self, mode: PackMode) -> TxId {
        txid_of(&self.serialize(mode))
    }

    /// Transaction id with `chain`'s legacy symbol names.
    pub fn id_for(&self, chain: &ChainSpec, mode: PackMode) -> TxId {
        txid_of(&self.serialize_for(chain, mode))
    }

    /// Stateless checks hived makes before looking at signatures: at least one operation, each valid
    /// (`Operation::validate_for`). Field paths are prefixed `operations[i][1].`.
    pub fn validate(&self, chain: &ChainSpec) -> Result<(), ValidationError> {
        if self.operations.is_empty() {
            return Err(ValidationError { field: "operations".into(), problem: Problem::NoOperations });
        }
        for (i, op) in self.operations.iter().enumerate() {
            op.validate_for(chain).map_err(|e| e.within(&format!("operations[{i}][1]")))?;
        }
        Ok(())
    }
}

fn txid_of(bytes: &[u8]) -> TxId {
    let h = Sha256::digest(bytes);
    let mut id = [0u8; 20];
    id.copy_from_slice(&h[..20]);
    TxId(id)
}

/// A transaction and its signatures (`signed_transaction`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTransaction {
    /// The signed content.
    pub transaction: Transaction,
    /// 65-byte compact signatures; exactly one is what the trap sends (§3.7).
    pub signatures: Vec<Signature>,
}

/// Signed form: the transaction, then `signatures` (§3.2) — what `get_transaction_hex` returns.
impl Pack for SignedTransaction {
    fn pack(&self, sink: &mut Sink) {
        self.transaction.pack(sink);
        self.signatures.pack(sink);
    }
}

impl SignedTransaction {
    /// An unsigned transaction with no signatures yet.
    pub fn unsigned(transaction: Transaction) -> Self {
        Self { transaction, signatures: Vec::new() }
    }

    /// The signed bytes with `chain`'s legacy symbol names.
    pub fn serialize_for(&self, chain: &ChainSpec, mode: PackMode) -> Vec<u8> {
        let mut sink = Sink::for_chain(chain, mode);
        self.pack(&mut sink);
        sink.into_bytes()
    }
}

/// Validates `tx` for `chain` (the node would reject an invalid op before looking at signatures), signs the
/// **legacy** digest (accepted by both chains, §1.4) and self-checks by recovery. To sign something invalid
/// on purpose (tests of a node's rejection), use [`sign_digest`] on [`Transaction::digest`].
pub fn sign_transaction(tx: &Transaction, chain: &ChainSpec, key: &PrivateKey) -> Result<SignedTransaction, SignError> {
    let mut signed = SignedTransaction::unsigned(tx.clone());
    add_signature(&mut signed, chain, key)?;
    Ok(signed)
}

/// Like [`sign_transaction`], appending to the existing signatures. Refuses a second signature by the same
/// key over the legacy digest (the node's duplicate-signature error).
pub fn add_signature(signed: &mut SignedTransaction, chain: &ChainSpec, key: &PrivateKey) -> Result<(), SignError> {
    signed.transaction.validate(chain)?;
    let digest = signed.transaction.digest(chain, PackMode::Legacy);
    let public = key.public_key();
    if signed.signatures.iter().any(|s| recover(&digest, s).ok() == Some(public)) {
        return Err(SignError::AlreadySigned);
    }
    let sig = sign_digest(&digest, key);
    self_check(&digest, &sig, &public)?;
    signed.signatures.push(sig);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asset::Asset;
    use crate::keys::PublicKey;
    use crate::operation::{LegacyChainProperties, WitnessSetProperties, WitnessUpdate};

    #[test]
    fn time_point_sec_text_and_bytes() {
        let t: TimePointSec = "2025-01-01T00:00:00".parse().unwrap();
        assert_eq!(t, TimePointSec(1_735_689_600));
        assert_eq!(t.to_string(), "2025-01-01T00:00:00");
        assert_eq!(hex::encode(crate::pack::to_bytes(&t, PackMode::Legacy)), "80857467");
        assert_eq!(TimePointSec(0).to_string(), "1970-01-01T00:00:00");
        assert_eq!(TimePointSec(u32::MAX).to_string(), "2106-02-07T06:28:15");
        assert_eq!("2106-02-07T06:28:15".parse(), Ok(TimePointSec(u32::MAX)));
        for bad in [
            "2106-02-07T06:28:16",
            "1969-12-31T23:59:59",
            "2025-01-01T00:00:00Z",
            "2025-01-01 00:00:00",
            "2025-02-30T00:00:00",
            "2025-13-01T00:00:00",
            "2025-01-01T24:00:00",
            "+025-01-01T00:00:00",
            "",
        ] {
            assert_eq!(bad.parse::<TimePointSec>(), Err(TransactionError::BadTime), "{bad}");
        }
    }

    #[test]
    fn tapos_matches_section_3_3() {
        let id = BlockId::from_hex("05e7bc5f3e319509113eb261bf995824a9efd567").unwrap();
        assert_eq!(id.block_num(), 99_073_119);
        assert_eq!(id.tapos(), (48223, 160_772_414));
        assert_eq!(BlockId::from_hex("05e7"), Err(TransactionError::BadBlockId));
    }

    fn key(text: &str) -> PublicKey {
        PublicKey::from_text(text, "STM").unwrap()
    }

    fn example(op: Operation) -> Transaction {
        Transaction {
            ref_block_num: 1234,
            ref_block_prefix: 0xcafe_babe,
            expiration: TimePointSec(1_735_689_600),
            operations: vec![op],
        }
    }

    #[test]
    fn annotated_example_section_3_2() {
        let tx = example(Operation::WitnessUpdate(WitnessUpdate {
            owner: "alice".into(),
            url: "https://example.com".into(),
            block_signing_key: key("STM7brYP9rXyMynTPaoaJkMm6BC4Sfw8wkdRiGkmkWPdNpgVryr35"),
            props: LegacyChainProperties {
                account_creation_fee: Asset::core(3000),
                maximum_block_size: 65536,
                interest_rate: 1000,
            },
            fee: Asset::core(0),
        }));
        let legacy = hex::encode(tx.serialize(PackMode::Legacy));
        assert!(legacy.starts_with("d204bebafeca8085746701"));
        assert!(legacy.ends_with("000000000000000003535445454d000000"));
        let hive = ChainSpec::hive();
        let h = |b: [u8; 32]| hex::encode(b);
        assert_eq!(
            h(tx.digest(&hive, PackMode::Legacy)),
            "c315c006ae40d868ad382bb10c2e87990c1ad5a663b2e67ad86b74f99fb70c51"
        );
        assert_eq!(tx.id(PackMode::Legacy).to_string(), "0aa98236d8bb88a32d7436d58a8114b2e3c2e53d");
        assert_eq!(
            h(tx.digest(&ChainSpec::steem(), PackMode::Legacy)),
            "61efbff4e3419105d29c842886c9076b6a94f479e8d4f531c4d70ef78fc5ab98"
        );
        let hf26 = hex::encode(tx.serialize(PackMode::Hf26));
        assert!(hf26.ends_with("b80b0000000000002320bcbe00000100e80300000000000000002320bcbe00"));
        assert_eq!(
            h(tx.digest(&hive, PackMode::Hf26)),
            "a88c879a6b79dcff4eaee655d45653f0bbe63089747b5711b23d3336466b43c3"
        );
        assert_eq!(tx.id(PackMode::Hf26).to_string(), "7425a28108d3a539862a07c8b0ce1e567768e5a8");
        let id: TxId = "7425a28108d3a539862a07c8b0ce1e567768e5a8".parse().unwrap();
        assert_eq!(id, tx.id(PackMode::Hf26));
    }

    #[test]
    fn key_swap_example_section_4_2() {
        let tx = example(Operation::WitnessSetProperties(WitnessSetProperties::key_swap(
            "alice",
            key("STM8RBpwoufdAa5V1bBAS53BdnqwTx4LfSMCtse6wqfQJ9NoYo5oN"),
            key("STM7brYP9rXyMynTPaoaJkMm6BC4Sfw8wkdRiGkmkWPdNpgVryr35"),
        )));
        let expect = concat!(
            "d204bebafeca80857467012a05616c69636502036b65792103d0ca9c91eff1ab6d5c2035de02b7db15dc187939210ce29b4f6e61f540ad9b96",
            "0f6e65775f7369676e696e675f6b65792103655133de32f4d64fb4f33092c0c9767b7fb07b64b671f8efbb1be059ae02cff90000"
        );
        assert_eq!(hex::encode(tx.serialize(PackMode::Legacy)), expect);
        assert_eq!(tx.serialize(PackMode::Legacy), tx.serialize(PackMode::Hf26));
        let h = |b: [u8; 32]| hex::encode(b);
        assert_eq!(
            h(tx.digest(&ChainSpec::hive(), PackMode::Legacy)),
            "65747e9022903534b9d986ece413c8c234287f3a4a3c88b797160413e9462b0d"
        );
        assert_eq!(
            h(tx.digest(&ChainSpec::steem(), PackMode::Legacy)),
            "7a00c13871a2f752b3a6106159ecc7f72888979824bf5b14fe4548e66b5ac1b6"
        );
        assert_eq!(tx.id(PackMode::Legacy).to_string(), "8396cab038932d34f2a766587050026f263cf9a6");
        // Signed form with no signatures ends in a 00 count, as get_transaction_hex prints it.
        let signed = SignedTransaction::unsigned(tx);
        assert_eq!(hex::encode(signed.serialize_for(&ChainSpec::hive(), PackMode::Legacy)), format!("{expect}00"));
    }

    #[test]
    fn validate_names_the_operation() {
        let mut tx = example(Operation::WitnessSetProperties(WitnessSetProperties::new("alice")));
        assert_eq!(
            tx.validate(&ChainSpec::hive()).unwrap_err().to_string(),
            "operations[0][1].props.key: no signing key provided"
        );
        tx.operations.clear();
        assert_eq!(
            tx.validate(&ChainSpec::hive()).unwrap_err().to_string(),
            "operations: a transaction must have at least one operation"
        );
    }
}
