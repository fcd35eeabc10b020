//! The checks a node runs on a broadcast transaction before it enters the pending pool.
//!
//! Order follows hived's `database::_apply_transaction` (protocol.md §3.3–3.7, §4): stateless `validate()`,
//! duplicate id, signatures (header, canonical, recovery, duplicates, required authority, extra signatures),
//! TaPoS, expiration, then the evaluators' stateful asserts (op 42's `key` must be the on-chain key). On Hive
//! the whole sequence runs on the hf26 serialization first and again on the legacy one if the authority check
//! failed (§1.4). Each failure is a [`BroadcastError`] that `server.rs` turns into the §5.9 error object with the
//! chain's codes. Applying an accepted transaction is `chain.rs`'s business.

use serde_json::{json, Value};
use thiserror::Error;

use super::chain::{Chain, ChainOp, EvalError, PendingTx, WitnessProps};
use super::fc_error::{code, FcError};
use super::proto::{
    self, recover, transaction_from_json, Asset, BlockId, ChainSpec, Operation, PackMode, PublicKey, Reader,
    SignedTransaction, UnpackError, WitnessSetProperties,
};

/// Chain-rule limits that differ between networks and hardforks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Latest allowed expiration after head block time: 3600 on Steem (and Hive before HF28), 86400 on Hive
    /// since HF28 (§3.4).
    pub max_expiration_secs: u32,
    /// Extra signatures: rejected on Steem and Hive < HF28, allowed on Hive since HF28 (§3.7).
    pub allow_extra_signatures: bool,
}

impl Limits {
    /// The rules of the node versions protocol.md describes (Hive 1.28 after HF28, Steem 0.23).
    pub fn for_chain(spec: &ChainSpec) -> Self {
        if proto::is_hive(spec) {
            Self { max_expiration_secs: 86_400, allow_extra_signatures: true }
        } else {
            Self { max_expiration_secs: 3_600, allow_extra_signatures: false }
        }
    }
}

/// Why a node refused a broadcast.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BroadcastError {
    #[error("transaction JSON does not parse: {0}")]
    Json(String),
    #[error("operation invalid: {0}")]
    Invalid(String),
    #[error("duplicate transaction {0}")]
    Duplicate(String),
    #[error("signature header byte {0} outside 27..=34")]
    SignatureHeader(u8),
    #[error("signature is not canonical")]
    NotCanonical,
    #[error("signature does not recover to a key")]
    Unrecoverable,
    #[error("two signatures by the same key")]
    DuplicateSignature,
    #[error("signature(s) not needed by any authority")]
    IrrelevantSignature,
    #[error("missing active authority of {0}")]
    MissingActive(String),
    #[error("missing signature of {key} (op 42 authority of {owner})")]
    MissingOther { owner: String, key: String },
    #[error("TaPoS: ref_block_prefix {prefix} does not match block {num}")]
    Tapos { num: u16, prefix: u32 },
    #[error("expired: now {now} >= expiration {expiration}")]
    Expired { now: u64, expiration: u64 },
    #[error("expiration {expiration} more than {max} s after now {now}")]
    TooFar { now: u64, expiration: u64, max: u32 },
    #[error(transparent)]
    Eval(#[from] EvalError),
}

impl BroadcastError {
    /// Whether this is an authority failure (Hive then retries with the legacy serialization, §1.4).
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            BroadcastError::MissingActive(_)
                | BroadcastError::MissingOther { .. }
                | BroadcastError::IrrelevantSignature
        )
    }

    /// The fc exception a node of this chain throws (§5.9). On Hive the transaction exceptions derive from
    /// `assert_exception` (-32003); on Steem from plain `fc::exception` (-32000).
    pub fn to_fc(&self, spec: &ChainSpec) -> FcError {
        let hive = proto::is_hive(spec);
        let tx_code = if hive { code::ERROR_DURING_CALL } else { code::SERVER_ERROR };
        let assert = || FcError::new(code::ERROR_DURING_CALL, 10, "assert_exception", "Assert Exception");
        let both_failed = |e: FcError| {
            if hive {
                e.log(
                    "Transaction failed to validate using both new (hf26) and legacy serialization",
                    json!({}),
                    "determine_encoding_and_accept_transaction",
                )
            } else {
                e
            }
        };
        match self {
            BroadcastError::Json(reason) => FcError::new(code::SERVER_ERROR, 7, "bad_cast_exception", "Bad Cast").log(
                "${reason}",
                json!({"reason": reason}),
                "from_variant",
            ),
            BroadcastError::Invalid(reason) => assert().log(reason.clone(), json!({}), "validate"),
            BroadcastError::Duplicate(txid) => {
                assert().log("Duplicate transaction check failed", json!({"trx_id": txid}), "_apply_transaction")
            }
            BroadcastError::SignatureHeader(_) | BroadcastError::Unrecoverable => {
                FcError::new(code::SERVER_ERROR, 0, "exception", "unspecified").log(
                    "unable to reconstruct public key from signature",
                    json!({}),
                    "public_key",
                )
            }
            BroadcastError::NotCanonical => assert().log(
                "signature is not canonical",
                json!({"assertion_expression": "is_canonical(c)"}),
                "get_signature_keys",
            ),
            BroadcastError::DuplicateSignature => {
                FcError::new(tx_code, 3060000, "tx_duplicate_sig", "duplicate signature included").log(
                    "Duplicate signature detected",
                    json!({}),
                    "get_signature_keys",
                )
            }
            BroadcastError::IrrelevantSignature => {
                FcError::new(tx_code, 3050000, "tx_irrelevant_sig", "irrelevant signature included").log(
                    "Unnecessary signature(s) detected",
                    json!({}),
                    "verify_authority",
                )
            }
            BroadcastError::MissingActive(account) => both_failed(
                FcError::new(tx_code, 3010000, "tx_missing_active_auth", "missing required active authority").log(
                    "Missing Active Authority ${id}",
                    json!({"id": account, "auth": "active", "owner": account}),
                    "verify_authority",
                ),
            ),
            BroadcastError::MissingOther { owner, key } => both_failed(
                FcError::new(tx_code, 3040000, "tx_missing_other_auth", "missing required other authority").log(
                    "Missing Authority",
                    json!({"id": owner, "auth": {"weight_threshold": 1, "account_auths": [], "key_auths": [[key, 1]]},
                           "owner": owner}),
                    "verify_authority",
                ),
            ),
            BroadcastError::Tapos { num, prefix } => {
                FcError::new(tx_code, 4030200, "transaction_tapos_exception", "transaction tapos exception").log(
                    "trx.ref_block_prefix == tapos_block_summary.block_id._hash[1]: ",
                    json!({"trx.ref_block_num": num, "trx.ref_block_prefix": prefix, "tapos_block_summary": num}),
                    "validate_transaction",
                )
            }
            BroadcastError::Expired { now, expiration } => FcError::new(
                tx_code,
                4030100,
                "transaction_expiration_exception",
                "transaction expiration exception",
            )
            .log(
                "now < trx.expiration: ",
                json!({"now": super::text::time_text(*now), "trx.expiration": super::text::time_text(*expiration)}),
                "validate_transaction",
            ),
            BroadcastError::TooFar { now, expiration, max } => {
                FcError::new(tx_code, 4030100, "transaction_expiration_exception", "transaction expiration exception")
                    .log(
                        "trx.expiration <= now + fc::seconds(max_til_exp): ",
                        json!({"trx.expiration": super::text::time_text(*expiration),
                       "now": super::text::time_text(*now), "max_til_exp": max}),
                        "validate_transaction",
                    )
            }
            BroadcastError::Eval(e) => assert().log(e.to_string(), json!({}), "do_apply"),
        }
    }
}

/// An authority an operation requires (§4.1, §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Required {
    /// The active authority of this account (op 11).
    Active(String),
    /// `authority(1, key, 1)` from op 42's `key` prop; the owner is named in the error.
    Key { owner: String, key: PublicKey },
}

/// Run every check against `chain`; on success the transaction to put in the pending pool.
pub fn check_transaction(
    spec: &ChainSpec,
    chain: &Chain,
    tx: &Value,
    limits: &Limits,
) -> Result<PendingTx, BroadcastError> {
    // condenser_api parses the legacy JSON form (§1.3). A real node fills misspelt fields with defaults and
    // then fails on the signature; the shared parser refuses them outright, which is the stricter answer.
    let signed = transaction_from_json(tx, spec).map_err(|e| BroadcastError::Json(e.to_string()))?;
    signed.transaction.validate(spec).map_err(|e| BroadcastError::Invalid(e.to_string()))?;
    let (ops, required) = decode_ops(spec, &signed.transaction.operations)?;

    // Hive: hf26 first, legacy if the authority check failed (§1.4). Steem: legacy only.
    let modes: &[PackMode] = if spec.has_hf26() { &[PackMode::Hf26, PackMode::Legacy] } else { &[PackMode::Legacy] };
    let mut result = Err(BroadcastError::Json("no serialization tried".into()));
    for (i, mode) in modes.iter().enumerate() {
        result = check_in_mode(spec, chain, &signed, *mode, &required, limits);
        match &result {
            Err(e) if e.is_auth() && i + 1 < modes.len() => continue,
            _ => break,
        }
    }
    let (txid, expiration) = result?;
    chain.check_ops(&ops)?;
    Ok(PendingTx { txid, expiration, ops })
}

/// The checks that depend on the serialization: id (duplicates), digest (signatures), then TaPoS and
/// expiration, in hived's order.
fn check_in_mode(
    spec: &ChainSpec,
    chain: &Chain,
    signed: &SignedTransaction,
    mode: PackMode,
    required: &[Required],
    limits: &Limits,
) -> Result<([u8; 20], u32), BroadcastError> {
    let tx = &signed.transaction;
    let txid = tx.id_for(spec, mode).0;
    if chain.is_known_tx(&txid) {
        return Err(BroadcastError::Duplicate(hex::encode(txid)));
    }

    let digest = tx.digest(spec, mode);
    let mut keys: Vec<PublicKey> = Vec::new();
    for sig in &signed.signatures {
        if !(27..=34).contains(&sig.header()) {
            return Err(BroadcastError::SignatureHeader(sig.header()));
        }
        if !sig.hived_accepts() {
            return Err(BroadcastError::NotCanonical);
        }
        let key = recover(&digest, sig).map_err(|_| BroadcastError::Unrecoverable)?;
        if keys.contains(&key) {
            return Err(BroadcastError::DuplicateSignature);
        }
        keys.push(key);
    }

    let mut used = vec![false; keys.len()];
    for req in required {
        let wanted = match req {
            Required::Active(account) => chain
                .account(account)
                .map(|a| a.active)
                .ok_or_else(|| BroadcastError::MissingActive(account.clone()))?,
            Required::Key { key, .. } => *key,
        };
        match keys.iter().position(|k| *k == wanted) {
            Some(i) => used[i] = true,
            None => {
                return Err(match req {
                    Required::Active(account) => BroadcastError::MissingActive(account.clone()),
                    Required::Key { owner, key } => {
                        BroadcastError::MissingOther { owner: owner.clone(), key: key.to_text(proto::prefix(spec)) }
                    }
                })
            }
        }
    }
    if !limits.allow_extra_signatures && used.iter().any(|u| !u) {
        return Err(BroadcastError::IrrelevantSignature);
    }

    // TaPoS against the block_summary ring (§3.3).
    // A ring entry never written (all zeros) matches nothing.
    let id = chain.summary_id(tx.ref_block_num);
    if id == [0; 20] || BlockId(id).tapos() != (tx.ref_block_num, tx.ref_block_prefix) {
        return Err(BroadcastError::Tapos { num: tx.ref_block_num, prefix: tx.ref_block_prefix });
    }

    // Expiration against head block time, not wall time (§3.4).
    let now = chain.head().time;
    let exp = u64::from(tx.expiration.0);
    if exp > now + u64::from(limits.max_expiration_secs) {
        return Err(BroadcastError::TooFar { now, expiration: exp, max: limits.max_expiration_secs });
    }
    if now >= exp {
        return Err(BroadcastError::Expired { now, expiration: exp });
    }
    Ok((txid, tx.expiration.0))
}

/// Operations as chain state changes, and the authorities they require.
fn decode_ops(spec: &ChainSpec, ops: &[Operation]) -> Result<(Vec<ChainOp>, Vec<Required>), BroadcastError> {
    let mut out = Vec::new();
    let mut required = Vec::new();
    for op in ops {
        match op {
            Operation::WitnessUpdate(w) => {
                out.push(ChainOp::WitnessUpdate {
                    owner: w.owner.clone(),
                    url: w.url.clone(),
                    signing_key: w.block_signing_key,
                    props: WitnessProps {
                        account_creation_fee: w.props.account_creation_fee.amount,
                        maximum_block_size: w.props.maximum_block_size,
                        interest_rate: w.props.interest_rate,
                    },
                });
                required.push(Required::Active(w.owner.clone()));
            }
            Operation::WitnessSetProperties(p) => {
                let (op, key) = decode_set_properties(spec, p)?;
                out.push(op);
                required.push(Required::Key { owner: p.owner.clone(), key });
            }
        }
    }
    Ok((out, required))
}

/// Op 42's packed props to typed changes (after `validate()`, so every present value unpacks).
fn decode_set_properties(spec: &ChainSpec, p: &WitnessSetProperties) -> Result<(ChainOp, PublicKey), BroadcastError> {
    let bad = |field: &str| BroadcastError::Invalid(format!("props.{field}: cannot unpack"));
    let key = p.key().ok_or_else(|| bad("key"))?;
    let url = match p.get("url") {
        Some(b) => Some(read(b, |r| r.string()).ok_or_else(|| bad("url"))?),
        None => None,
    };
    let maximum_block_size = match p.get("maximum_block_size") {
        Some(b) => Some(read(b, |r| r.u32()).ok_or_else(|| bad("maximum_block_size"))?),
        None => None,
    };
    // Hive reads `sbd_interest_rate` first and `hbd_` only if absent; Steem knows only `sbd_` (§4.2).
    let rate_bytes = match (p.get("sbd_interest_rate"), p.get("hbd_interest_rate"), proto::is_hive(spec)) {
        (Some(b), _, _) => Some(b),
        (None, Some(b), true) => Some(b),
        _ => None,
    };
    let interest_rate = match rate_bytes {
        Some(b) => Some(read(b, |r| r.u16()).ok_or_else(|| bad("interest_rate"))?),
        None => None,
    };
    let account_creation_fee = match p.get("account_creation_fee") {
        Some(b) => Some(Asset::from_packed(b, spec.testnet).map_err(|_| bad("account_creation_fee"))?.amount),
        None => None,
    };
    let op = ChainOp::SetProperties {
        owner: p.owner.clone(),
        key,
        new_signing_key: p.new_signing_key(),
        url,
        account_creation_fee,
        maximum_block_size,
        interest_rate,
    };
    Ok((op, key))
}

/// One value filling exactly `bytes`.
fn read<T>(bytes: &[u8], f: impl FnOnce(&mut Reader<'_>) -> Result<T, UnpackError>) -> Option<T> {
    let mut r = Reader::new(bytes);
    let v = f(&mut r).ok()?;
    r.finish().ok()?;
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::ChainParams;
    use crate::proto::PrivateKey;
    use graphene_protocol::{sign_transaction, transaction_to_json, Signature, TimePointSec, Transaction};

    const T0: u64 = 1_750_000_002;

    fn private(seed: u8) -> PrivateKey {
        PrivateKey::from_secret_bytes(&[seed; 32]).unwrap()
    }

    fn chain() -> Chain {
        let p = ChainParams {
            block_interval: 3,
            seed: 3,
            witness: "watched".into(),
            witness_url: "https://watched.example".into(),
            primary_key: private(1).public_key(),
            backup_key: private(2).public_key(),
            standby_keys: Vec::new(),
            active_key: private(3).public_key(),
            initial_total_missed: 0,
            initial_block_num: 500,
            key_view_lag: 0,
        };
        Chain::new(p, T0).unwrap()
    }

    fn swap_tx(c: &Chain, exp_in: u32) -> Transaction {
        let op = WitnessSetProperties::key_swap("watched", private(1).public_key(), private(2).public_key());
        let head = BlockId(c.head().id);
        Transaction::with_tapos(
            &head,
            TimePointSec(c.head().time as u32 + exp_in),
            vec![Operation::WitnessSetProperties(op)],
        )
    }

    /// n − s on 32 big-endian bytes: the high-S twin of a signature (same r, other recovery parity).
    fn high_s_twin(sig: &Signature) -> Signature {
        const N: [u8; 32] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae,
            0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
        ];
        let mut out = sig.0;
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let d = i16::from(N[i]) - i16::from(sig.0[33 + i]) - borrow;
            borrow = i16::from(d < 0);
            out[33 + i] = (d + if d < 0 { 256 } else { 0 }) as u8;
        }
        out[0] = 27 + 4 + (((sig.0[0] - 27) & 3) ^ 1);
        Signature(out)
    }

    #[test]
    fn accepts_a_correct_key_swap_on_both_chains() {
        for spec in [ChainSpec::hive(), ChainSpec::steem()] {
            let c = chain();
            let signed = sign_transaction(&swap_tx(&c, 60), &spec, &private(1)).unwrap();
            let json = transaction_to_json(&signed, &spec);
            let p = check_transaction(&spec, &c, &json, &Limits::for_chain(&spec)).unwrap();
            assert_eq!(p.txid, signed.transaction.id_for(&spec, PackMode::Legacy).0);
            assert!(matches!(&p.ops[0], ChainOp::SetProperties { new_signing_key: Some(k), .. }
                if *k == private(2).public_key()));
        }
    }

    #[test]
    fn a_high_s_twin_that_hived_rejects_is_not_canonical() {
        let spec = ChainSpec::hive();
        let c = chain();
        // Signatures are deterministic; find an expiration whose twin has s[0] > 0xa0 (about a third do).
        let (signed, twin) = (60..400)
            .find_map(|exp| {
                let signed = sign_transaction(&swap_tx(&c, exp), &spec, &private(1)).unwrap();
                let twin = high_s_twin(&signed.signatures[0]);
                (!twin.hived_accepts()).then_some((signed, twin))
            })
            .expect("some twin is rejected");
        let digest = signed.transaction.digest(&spec, PackMode::Legacy);
        assert_eq!(recover(&digest, &twin).unwrap(), private(1).public_key(), "the twin is a valid signature");
        let mut bad = signed.clone();
        bad.signatures = vec![twin];
        let err = check_transaction(&spec, &c, &transaction_to_json(&bad, &spec), &Limits::for_chain(&spec));
        assert_eq!(err.unwrap_err(), BroadcastError::NotCanonical);
    }

    #[test]
    fn error_codes_differ_by_family() {
        let cases = [
            (BroadcastError::MissingActive("a".into()), -32003, -32000),
            (BroadcastError::Tapos { num: 1, prefix: 2 }, -32003, -32000),
            (BroadcastError::Expired { now: 2, expiration: 1 }, -32003, -32000),
            (BroadcastError::Duplicate("00".into()), -32003, -32003),
            (BroadcastError::NotCanonical, -32003, -32003),
            (BroadcastError::Eval(EvalError::KeyMismatch), -32003, -32003),
            (BroadcastError::SignatureHeader(40), -32000, -32000),
        ];
        for (e, hive, steem) in cases {
            assert_eq!(e.to_fc(&ChainSpec::hive()).rpc_code, hive, "{e}");
            assert_eq!(e.to_fc(&ChainSpec::steem()).rpc_code, steem, "{e}");
        }
        let f = BroadcastError::MissingActive("alice".into()).to_fc(&ChainSpec::steem()).into_failure("t");
        assert_eq!(f.message, "missing required active authority:Missing Active Authority alice");
        assert!(BroadcastError::MissingOther { owner: "a".into(), key: "k".into() }.is_auth());
        assert!(!BroadcastError::NotCanonical.is_auth());
    }
}
