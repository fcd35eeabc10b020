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

use super::chain::{Chain, EvalError, PendingTx};
use super::proto::{self, ChainSpec};
use super::server::{code, FcError};

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
                json!({"now": super::server::time_text(*now), "trx.expiration": super::server::time_text(*expiration)}),
                "validate_transaction",
            ),
            BroadcastError::TooFar { now, expiration, max } => {
                FcError::new(tx_code, 4030100, "transaction_expiration_exception", "transaction expiration exception")
                    .log(
                        "trx.expiration <= now + fc::seconds(max_til_exp): ",
                        json!({"trx.expiration": super::server::time_text(*expiration),
                       "now": super::server::time_text(*now), "max_til_exp": max}),
                        "validate_transaction",
                    )
            }
            BroadcastError::Eval(e) => assert().log(e.to_string(), json!({}), "do_apply"),
        }
    }
}

/// Run every check against `chain`; on success the transaction to put in the pending pool.
pub fn check_transaction(
    spec: &ChainSpec,
    chain: &Chain,
    tx: &Value,
    limits: &Limits,
) -> Result<PendingTx, BroadcastError> {
    let _ = (spec, chain, tx, limits);
    Err(BroadcastError::Json("protocol module not merged yet".into()))
}
