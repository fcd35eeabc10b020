//! The checks a pushed transaction must pass, in nodeos's order (antelope-protocol.md §0, §3, §6.6):
//! decode the `packed_transaction` object (hex `packed_trx` through `antelope_protocol`'s `Unpack`), recover the
//! signing keys over the digest with this chain's id (canonical signatures only), then — against the state an
//! endpoint sees — expiration, TaPoS, referenced accounts, the linked minimum permission of every action, the
//! keys for every declared authority, no irrelevant signatures, CPU of the first authorizer, and the system
//! contract's own checks (`require_auth`, "url too long", `actfinkey`). The duplicate check needs the pool and is
//! the server's. Nothing here panics on input: every failure is an [`FcError`] reply.

use std::collections::BTreeSet;

use antelope_protocol::action::{ActFinKey, Action, PermissionLevel, RegProducer, RegProducer2, UnregProd};
use antelope_protocol::chain::ChainId;
use antelope_protocol::keys::PublicKey;
use antelope_protocol::name::Name;
use antelope_protocol::pack::Unpack;
use antelope_protocol::signature::Signature;
use antelope_protocol::transaction::Transaction;
use serde_json::Value;

use crate::chain::{name, Chain, ChainOp, PendingTx, SigningAuthority};
use crate::fc_error::FcError;
use crate::text::{key_text, time_text};
use crate::view::View;

/// A decoded push: the transaction, its id and the keys its signatures recover to.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub tx: Transaction,
    pub txid: [u8; 32],
    pub keys: Vec<PublicKey>,
    pub packed_len: usize,
}

/// The inner `packed_transaction` object → [`Pushed`].
pub fn decode(inner: &Value, chain_id: &ChainId) -> Result<Pushed, FcError> {
    let obj = inner.as_object().ok_or_else(|| FcError::invalid_request("the transaction must be an object"))?;
    match obj.get("compression") {
        Some(Value::String(s)) if s == "none" => {}
        Some(Value::Number(n)) if n.as_u64() == Some(0) => {}
        None => return Err(FcError::invalid_request("Missing value for compression")),
        Some(_) => return Err(FcError::invalid_request("unsupported compression (the sim takes \"none\" only)")),
    }
    let hex_text = obj
        .get("packed_trx")
        .and_then(Value::as_str)
        .ok_or_else(|| FcError::invalid_request("Missing value for packed_trx"))?;
    let bytes = hex::decode(hex_text).map_err(|_| FcError::packed_trx("packed_trx is not a hex string"))?;
    let tx = Transaction::unpack_all(&bytes).map_err(|e| FcError::packed_trx(format!("unpack packed_trx: {e}")))?;
    let sigs = match obj.get("signatures") {
        Some(Value::Array(a)) => a.as_slice(),
        None => &[],
        Some(_) => return Err(FcError::invalid_request("signatures must be an array")),
    };
    let digest = tx.sig_digest(chain_id);
    let mut keys = Vec::new();
    for s in sigs {
        let text = s.as_str().ok_or_else(|| FcError::invalid_request("a signature must be a string"))?;
        let sig = Signature::from_text(text).map_err(|e| FcError::assert(format!("invalid signature: {e}")))?;
        if !sig.is_canonical() {
            return Err(FcError::assert("signature is not canonical"));
        }
        let key =
            sig.recover(&digest).map_err(|_| FcError::assert("unable to reconstruct public key from signature"))?;
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let txid = tx.id();
    Ok(Pushed { tx, txid, keys, packed_len: bytes.len() })
}

fn auth_text(l: &PermissionLevel) -> String {
    format!("{{\"actor\":\"{}\",\"permission\":\"{}\"}}", l.actor, l.permission)
}

/// Check a decoded push against `view` (its head time and TaPoS) and the chain's accounts and contract state.
pub fn check(
    chain: &Chain,
    view: &View<'_>,
    p: &Pushed,
    max_lifetime_secs: u32,
    k1: bool,
) -> Result<PendingTx, FcError> {
    let tx = &p.tx;
    let head_ms = view.head().time_ms;
    let exp_ms = u64::from(tx.expiration) * 1000;
    if exp_ms < head_ms {
        return Err(FcError::expired(&time_text(exp_ms), &time_text(head_ms + 500)));
    }
    if exp_ms > head_ms + u64::from(max_lifetime_secs) * 1000 {
        return Err(FcError::too_far(&time_text(head_ms), &time_text(exp_ms), max_lifetime_secs));
    }
    let tapos_ok = view
        .ring_id(tx.ref_block_num)
        .is_some_and(|id| u32::from_le_bytes([id[8], id[9], id[10], id[11]]) == tx.ref_block_prefix);
    if !tapos_ok {
        return Err(FcError::invalid_ref_block(tx.ref_block_num, tx.ref_block_prefix));
    }
    if tx.actions.is_empty() {
        return Err(FcError::internal(
            3_040_002,
            "tx_no_action",
            "transaction should have at least one normal action",
            "transaction must have at least one action",
        ));
    }
    if tx.actions.iter().all(|a| a.authorization.is_empty()) {
        return Err(FcError::internal(
            3_040_003,
            "tx_no_auths",
            "transaction should have at least one required authority",
            "transaction must have at least one authorization",
        ));
    }

    // validate_referenced_accounts
    for a in &tx.actions {
        for l in &a.authorization {
            let acct = chain.account(l.actor).ok_or_else(|| {
                FcError::transaction(format!("action's authorizing actor '{}' does not exist", l.actor))
            })?;
            if acct.permission(l.permission).is_none() {
                return Err(FcError::transaction(format!(
                    "action's authorizations include a non-existent permission: {}",
                    auth_text(l)
                )));
            }
        }
    }

    // check_authorization: each declared permission must satisfy the action's linked minimum permission …
    let mut declared: Vec<&PermissionLevel> = Vec::new();
    for a in &tx.actions {
        for l in &a.authorization {
            if let Some(acct) = chain.account(l.actor) {
                let min = acct.minimum_permission(a.account, a.name);
                if !acct.satisfies(l.permission, min) {
                    return Err(FcError::irrelevant_auth(&auth_text(l), &format!("{}@{}", l.actor, min)));
                }
            }
            if !declared.contains(&l) {
                declared.push(l);
            }
        }
    }
    // … and be satisfied by the provided keys; every key must have been needed.
    let mut used = BTreeSet::new();
    for l in declared {
        let Some(perm) = chain.account(l.actor).and_then(|a| a.permission(l.permission)) else { continue };
        let mut weight = 0u64;
        for (i, k) in p.keys.iter().enumerate() {
            if let Some((_, w)) = perm.keys.iter().find(|(pk, _)| pk == k) {
                weight += u64::from(*w);
                used.insert(i);
            }
        }
        if weight < u64::from(perm.threshold) {
            return Err(FcError::unsatisfied(&auth_text(l)));
        }
    }
    let unused: Vec<String> =
        p.keys.iter().enumerate().filter(|(i, _)| !used.contains(i)).map(|(_, k)| key_text(k, k1)).collect();
    if !unused.is_empty() {
        return Err(FcError::irrelevant_sig(&format!("[\"{}\"]", unused.join("\",\""))));
    }

    // CPU is billed to the first authorizer.
    if let Some(first) = tx.actions.iter().flat_map(|a| a.authorization.first()).next() {
        if let Some(acct) = chain.account(first.actor) {
            if acct.cpu.available <= 0 {
                return Err(FcError::cpu_exceeded(acct.cpu.available.max(0)));
            }
        }
    }

    // The system contract.
    let mut ops = Vec::new();
    for a in &tx.actions {
        if let Some(op) = contract_op(a)? {
            ops.push(op);
        }
    }
    chain.check_ops(&ops).map_err(|e| FcError::assert_message(&e.to_string()))?;
    Ok(PendingTx { txid: p.txid, expiration_ms: exp_ms, ops })
}

fn require_auth(a: &Action, account: Name) -> Result<(), FcError> {
    if a.authorization.iter().any(|l| l.actor == account) {
        Ok(())
    } else {
        Err(FcError::missing_auth(&account.to_string()))
    }
}

fn data<T: Unpack>(a: &Action) -> Result<T, FcError> {
    T::unpack_all(&a.data).map_err(|_| FcError::assert_message("datastream attempted to read past the end"))
}

/// The state change an `eosio` action asks for; other actions run no code here (`None`).
fn contract_op(a: &Action) -> Result<Option<ChainOp>, FcError> {
    if a.account != name("eosio") {
        return Ok(None);
    }
    let op = match a.name.to_string().as_str() {
        "regproducer" => {
            let d: RegProducer = data(a)?;
            require_auth(a, d.producer)?;
            ChainOp::RegProducer {
                producer: d.producer,
                producer_key: Some(d.producer_key),
                authority: SigningAuthority::single(d.producer_key),
                url: d.url,
                location: d.location,
            }
        }
        "regproducer2" => {
            let d: RegProducer2 = data(a)?;
            require_auth(a, d.producer)?;
            let keys: Vec<(PublicKey, u16)> = d.producer_authority.keys.iter().map(|k| (k.key, k.weight)).collect();
            ChainOp::RegProducer {
                producer: d.producer,
                producer_key: if keys.len() == 1 { Some(keys[0].0) } else { None },
                authority: SigningAuthority { threshold: d.producer_authority.threshold, keys },
                url: d.url,
                location: d.location,
            }
        }
        "unregprod" => {
            let d: UnregProd = data(a)?;
            require_auth(a, d.producer)?;
            ChainOp::UnregProd { producer: d.producer }
        }
        "actfinkey" => {
            let d: ActFinKey = data(a)?;
            require_auth(a, d.finalizer_name)?;
            ChainOp::ActFinKey { finalizer: d.finalizer_name, key: d.finalizer_key }
        }
        _ => return Ok(None),
    };
    Ok(Some(op))
}
