//! The offline tools on Antelope chains (`--chain eos|wax|telos|jungle|<64-hex id>`): `key pub`,
//! `key new`, `key parse`, `tx digest`, `tx sign`, `tx setup-permission` (issue 15, item 3). JSON on stdin,
//! JSON on stdout; on error nothing on stdout and one line naming the problem. All protocol work is in
//! `antelope_protocol`; this file parses, reads and writes. No message contains key text.

use std::io::Read;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use thiserror::Error;
use zeroize::Zeroizing;

use antelope_protocol::action::{Action, Authority, KeyWeight, LinkAuth, PermissionLevel, UpdateAuth};
use antelope_protocol::chain::{network, network_by_id, ChainId};
use antelope_protocol::json::{transaction_from_json, transaction_to_json};
use antelope_protocol::keys::{PrivateKey, PublicKey};
use antelope_protocol::name::Name;
use antelope_protocol::transaction::{Tapos, Transaction};

/// An Antelope chain named on the command line.
#[derive(Debug, Clone)]
pub struct AntelopeChain {
    pub name: String,
    pub chain_id: ChainId,
}

/// `--chain` as an Antelope chain: a network name, or the 64-hex id of a known Antelope network. `None`:
/// not Antelope (the Hive/Steem tools take it).
pub fn chain_of(arg: &str) -> Option<AntelopeChain> {
    let a = arg.trim().to_ascii_lowercase();
    if let Some(n) = network(&a) {
        return Some(AntelopeChain { name: n.name.to_string(), chain_id: n.chain_id });
    }
    let id = ChainId::from_hex(&a).ok()?;
    network_by_id(&id).map(|n| AntelopeChain { name: n.name.to_string(), chain_id: n.chain_id })
}

/// An unknown 64-hex id whose transaction JSON is Antelope-shaped (`actions`, not `operations`).
pub fn custom_chain(arg: &str, tx: &Value) -> Option<AntelopeChain> {
    let id = ChainId::from_hex(arg.trim()).ok()?;
    (tx.get("actions").is_some() && tx.get("operations").is_none())
        .then(|| AntelopeChain { name: "antelope".into(), chain_id: id })
}

/// Why an Antelope tool failed; one line, never key text.
#[derive(Debug, Error)]
pub enum AntelopeToolError {
    #[error("{origin}: {source}")]
    Key { origin: String, source: antelope_protocol::keys::KeyError },
    #[error("{0}: no key found")]
    Empty(String),
    #[error("{0}")]
    Json(#[from] antelope_protocol::json::JsonError),
    #[error("signing failed its own check: {0}")]
    Sign(String),
    #[error("{var}: {message}")]
    Arg { var: String, message: String },
}

/// A private key (WIF or `PVT_K1_…`) from `text`; `origin` names where it came from.
pub fn private_key(text: &str, origin: &str) -> Result<PrivateKey, AntelopeToolError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(AntelopeToolError::Empty(origin.into()));
    }
    let secret = SecretString::from(trimmed.to_string());
    PrivateKey::from_text(secret.expose_secret())
        .map_err(|source| AntelopeToolError::Key { origin: origin.into(), source })
}

/// `key pub`: `{"public_key": "EOS…", "public_key_k1": "PUB_K1_…"}`.
pub fn key_pub(stdin: &mut dyn Read) -> Result<Value, super::offline::OfflineError> {
    let mut buf = Zeroizing::new(String::with_capacity(256));
    stdin.read_to_string(&mut buf).map_err(super::offline::OfflineError::Stdin)?;
    let key = private_key(&buf, "stdin")?;
    Ok(public_json(&key.public_key()))
}

fn public_json(k: &PublicKey) -> Value {
    json!({ "public_key": k.to_legacy(), "public_key_k1": k.to_k1() })
}

/// `key new`: a fresh key; the caller writes the WIF to its file.
pub fn key_new() -> (PrivateKey, Value) {
    let key = PrivateKey::generate();
    let out = public_json(&key.public_key());
    (key, out)
}

/// `key parse`: a public key on stdin → both texts and its 33 bytes.
pub fn key_parse(text: &str) -> Result<Value, AntelopeToolError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(AntelopeToolError::Empty("stdin".into()));
    }
    let k = PublicKey::from_text(t).map_err(|source| AntelopeToolError::Key { origin: "stdin".into(), source })?;
    let mut v = public_json(&k);
    v["hex"] = json!(hex::encode(k.to_bytes()));
    Ok(v)
}

/// `tx digest`: `{"packed_trx", "sig_digest", "txid"}`.
pub fn tx_digest(chain: &AntelopeChain, input: &Value) -> Result<Value, AntelopeToolError> {
    let tx = transaction_from_json(input)?;
    Ok(digest_json(chain, &tx))
}

fn digest_json(chain: &AntelopeChain, tx: &Transaction) -> Value {
    use antelope_protocol::pack::Pack;
    json!({
        "packed_trx": hex::encode(tx.packed()),
        "sig_digest": hex::encode(tx.sig_digest(&chain.chain_id)),
        "txid": hex::encode(tx.id()),
    })
}

/// `tx sign`: the transaction with `"signatures"` and `"packed_trx"`; the signature is checked by
/// recovery and canonicality inside `Transaction::sign`.
pub fn tx_sign(chain: &AntelopeChain, input: &Value, key: &PrivateKey) -> Result<Value, AntelopeToolError> {
    use antelope_protocol::pack::Pack;
    let tx = transaction_from_json(input)?;
    let sig = tx.sign(&chain.chain_id, key).map_err(|e| AntelopeToolError::Sign(e.to_string()))?;
    let mut out = transaction_to_json(&tx);
    out["signatures"] = json!([sig.to_text()]);
    out["packed_trx"] = json!(hex::encode(tx.packed()));
    Ok(out)
}

fn name_arg(var: &str, text: &str) -> Result<Name, AntelopeToolError> {
    Name::new(text.trim()).map_err(|e| AntelopeToolError::Arg {
        var: var.into(),
        message: format!("{text:?} is not an Antelope name: {e}"),
    })
}

/// `tx setup-permission`: the unsigned transaction (`updateauth` of the permission under `active`, then one
/// `linkauth` per action) with its header left as placeholders, and the `cleos` commands that do the same.
pub fn setup_permission(
    chain: &AntelopeChain,
    account: &str,
    key: &str,
    permission: &str,
    finalizer: bool,
) -> Result<Value, AntelopeToolError> {
    let acct = name_arg("--account", account)?;
    let perm = name_arg("--permission", permission)?;
    if matches!(perm.to_string().as_str(), "owner" | "active") {
        return Err(AntelopeToolError::Arg {
            var: "--permission".into(),
            message: format!("{perm} must not be the failover permission: its key could do anything"),
        });
    }
    let key =
        PublicKey::from_text(key.trim()).map_err(|source| AntelopeToolError::Key { origin: "--key".into(), source })?;
    let eosio = name_arg("code", "eosio")?;
    let active = name_arg("parent", "active")?;
    let by_active = vec![PermissionLevel { actor: acct, permission: active }];
    let update = UpdateAuth {
        account: acct,
        permission: perm,
        parent: active,
        auth: Authority {
            threshold: 1,
            keys: vec![KeyWeight { key, weight: 1 }],
            accounts: Vec::new(),
            waits: Vec::new(),
        },
        authorized_by: None,
    };
    let mut actions = vec![Action::new(eosio, name_arg("action", "updateauth")?, by_active.clone(), &update)];
    let mut linked = vec!["regproducer"];
    if finalizer {
        linked.push("actfinkey");
    }
    for action in &linked {
        let link = LinkAuth {
            account: acct,
            code: eosio,
            type_: name_arg("action", action)?,
            requirement: perm,
            authorized_by: None,
        };
        actions.push(Action::new(eosio, name_arg("action", "linkauth")?, by_active.clone(), &link));
    }
    // Header zeros, replaced by placeholders below.
    let tx = Transaction::new(0, Tapos { block_num: 0, ref_block_num: 0, ref_block_prefix: 0 }, actions);
    let mut t = transaction_to_json(&tx);
    // The header names a recent block and a time only the signer's moment knows: left for them to fill.
    t["expiration"] = json!("FILL: head block time + up to 3600 s, e.g. 2026-12-02T19:00:00");
    if let Some(obj) = t.as_object_mut() {
        obj.remove("ref_block_num");
        obj.remove("ref_block_prefix");
    }
    t["block_id"] = json!("FILL: a recent block id (get_info's last_irreversible_block_id)");
    let auth_json =
        json!({"threshold": 1, "keys": [{"key": key.to_legacy(), "weight": 1}], "accounts": [], "waits": []});
    let mut cleos = vec![format!("cleos set account permission {acct} {perm} '{auth_json}' active -p {acct}@active")];
    for action in &linked {
        cleos.push(format!("cleos set action permission {acct} eosio {action} {perm} -p {acct}@active"));
    }
    let _ = chain; // the transaction is the same on every Antelope chain; --chain is checked for the operator
    Ok(json!({ "transaction": t, "cleos": cleos }))
}
