//! The transaction: header in Antelope's order, digest, id, TaPoS, signing, and the `packed_transaction`
//! JSON nodeos takes (antelope-protocol.md §3, §6.6; §0 items 1–4, 16–17).

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::action::Action;
use crate::chain::ChainId;
use crate::keys::PrivateKey;
use crate::pack::{Pack, Reader, Unpack, UnpackError, VarUint32};
use crate::signature::{SigError, Signature};

/// An unsigned transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// Unix seconds.
    pub expiration: u32,
    pub ref_block_num: u16,
    pub ref_block_prefix: u32,
    pub max_net_usage_words: u32,
    pub max_cpu_usage_ms: u8,
    pub delay_sec: u32,
    pub context_free_actions: Vec<Action>,
    pub actions: Vec<Action>,
    pub transaction_extensions: Vec<(u16, Vec<u8>)>,
}

/// The reference block of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tapos {
    pub block_num: u32,
    pub ref_block_num: u16,
    pub ref_block_prefix: u32,
}

impl Tapos {
    /// `block_num` = big-endian bytes 0..4, `ref_block_prefix` = little-endian bytes 8..12 (not 4..8 as on
    /// Steem: §0 item 3).
    pub fn from_block_id(id: &[u8; 32]) -> Self {
        let block_num = u32::from_be_bytes([id[0], id[1], id[2], id[3]]);
        Self {
            block_num,
            ref_block_num: (block_num & 0xffff) as u16,
            ref_block_prefix: u32::from_le_bytes([id[8], id[9], id[10], id[11]]),
        }
    }

    pub fn from_block_id_hex(text: &str) -> Result<Self, hex::FromHexError> {
        let mut id = [0u8; 32];
        hex::decode_to_slice(text, &mut id)?;
        Ok(Self::from_block_id(&id))
    }
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

impl Transaction {
    /// A transaction of `actions` with no limits, no delay and no context-free actions.
    pub fn new(expiration: u32, tapos: Tapos, actions: Vec<Action>) -> Self {
        Self {
            expiration,
            ref_block_num: tapos.ref_block_num,
            ref_block_prefix: tapos.ref_block_prefix,
            max_net_usage_words: 0,
            max_cpu_usage_ms: 0,
            delay_sec: 0,
            context_free_actions: Vec::new(),
            actions,
            transaction_extensions: Vec::new(),
        }
    }

    /// `sha256(chain_id ‖ packed_trx ‖ 32 zero bytes)`: the zeros stand for the empty context-free data.
    pub fn sig_digest(&self, chain: &ChainId) -> [u8; 32] {
        sha256(&[&chain.0, &self.packed(), &[0u8; 32]])
    }

    /// The transaction id: `sha256(packed_trx)`, all 32 bytes.
    pub fn id(&self) -> [u8; 32] {
        sha256(&[&self.packed()])
    }

    /// Sign for `chain`; the signature is checked before it is returned: canonical, and recovering to
    /// the key's public key.
    pub fn sign(&self, chain: &ChainId, key: &PrivateKey) -> Result<Signature, SigError> {
        let digest = self.sig_digest(chain);
        let sig = key.sign(&digest);
        sig.verify(&digest, &key.public_key())?;
        Ok(sig)
    }
}

impl Pack for Transaction {
    fn pack(&self, out: &mut Vec<u8>) {
        self.expiration.pack(out);
        self.ref_block_num.pack(out);
        self.ref_block_prefix.pack(out);
        VarUint32(self.max_net_usage_words).pack(out);
        self.max_cpu_usage_ms.pack(out);
        VarUint32(self.delay_sec).pack(out);
        self.context_free_actions.pack(out);
        self.actions.pack(out);
        crate::pack::pack_len(self.transaction_extensions.len(), out);
        for (kind, data) in &self.transaction_extensions {
            kind.pack(out);
            crate::pack::Bytes(data.clone()).pack(out);
        }
    }
}

impl Unpack for Transaction {
    fn unpack(r: &mut Reader<'_>) -> Result<Self, UnpackError> {
        let expiration = u32::unpack(r)?;
        let ref_block_num = u16::unpack(r)?;
        let ref_block_prefix = u32::unpack(r)?;
        let max_net_usage_words = r.varuint32()?;
        let max_cpu_usage_ms = u8::unpack(r)?;
        let delay_sec = r.varuint32()?;
        let context_free_actions = Vec::unpack(r)?;
        let actions = Vec::unpack(r)?;
        let n = r.len(3)?;
        let mut transaction_extensions = Vec::with_capacity(n);
        for _ in 0..n {
            transaction_extensions.push((u16::unpack(r)?, crate::pack::Bytes::unpack(r)?.0));
        }
        Ok(Self {
            expiration,
            ref_block_num,
            ref_block_prefix,
            max_net_usage_words,
            max_cpu_usage_ms,
            delay_sec,
            context_free_actions,
            actions,
            transaction_extensions,
        })
    }
}

/// The `packed_transaction` object of `send_transaction` (inside `"transaction"` for `send_transaction2`).
pub fn packed_transaction_json(tx: &Transaction, signatures: &[Signature]) -> Value {
    json!({
        "signatures": signatures.iter().map(Signature::to_text).collect::<Vec<_>>(),
        "compression": "none",
        "packed_context_free_data": "",
        "packed_trx": hex::encode(tx.packed()),
    })
}
