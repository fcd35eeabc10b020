//! Signatures: the 65-byte compact recoverable form, the canonicality rules nodes apply, our signer and
//! public-key recovery (protocol.md §3.6, §3.7).
//!
//! Our signer always emits low-S *and* fc-canonical signatures with header 31..34, by looping over RFC 6979
//! nonce data `sha256(digest ‖ [attempt])` like dhive/dsteem, so every Steem and Hive version accepts
//! them. Signatures are never compared byte-wise (§0 item 15): a signature is checked by recovering its key.
//! The libsecp256k1 `SecretKey` (a `Copy` type that is not zeroized) exists only inside [`sign_digest`].

use std::fmt;

use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use secp256k1::Message;
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::keys::{secp, PrivateKey, PublicKey};
use super::operation::ValidationError;
use super::pack::{Pack, Sink};

/// Errors of this module.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SignError {
    /// Signature text is not 130 hex characters.
    #[error("signature must be 130 hex characters")]
    BadHex,
    /// Header byte outside 27..=34: hived says "unable to reconstruct public key from signature".
    #[error("signature header {0} is outside 27..=34")]
    BadHeader(u8),
    /// r or s is not a valid scalar, or no point recovers.
    #[error("signature does not recover a public key")]
    NotRecoverable,
    /// The transaction fails the node's stateless validation; it would be rejected before any signature
    /// check.
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    /// Our own signature failed the pre-broadcast self-check (should never happen).
    #[error("self-check failed: {0}")]
    SelfCheck(&'static str),
    /// The transaction already carries a signature by this key (hived: "Duplicate signature detected").
    #[error("signatures: the transaction is already signed by this key")]
    AlreadySigned,
}

/// n/2 for secp256k1, big-endian: the low-S bound.
const HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x5d, 0x57, 0x6e,
    0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

/// The in-memory little-endian limbs of n/2 that hived's `is_canonical` memcmps the big-endian `s`
/// against (§3.6, fc `elliptic_common.cpp`). Looser than low-S: some high-S signatures pass.
const HIVED_MEMCMP_BOUND: [u8; 32] = [
    0xa0, 0x20, 0x1b, 0x68, 0x46, 0x2f, 0xe9, 0xdf, 0x1d, 0x50, 0xa4, 0x57, 0x73, 0x6e, 0x57, 0x5d, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
];

/// `[27 + 4 + recid] ‖ r ‖ s` (§3.6).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 65]);

impl Signature {
    /// Parses 130 hex characters.
    pub fn from_hex(s: &str) -> Result<Self, SignError> {
        let mut b = [0u8; 65];
        hex::decode_to_slice(s, &mut b).map_err(|_| SignError::BadHex)?;
        Ok(Self(b))
    }

    /// 130 lowercase hex characters, as JSON carries it.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The header byte.
    pub fn header(&self) -> u8 {
        self.0[0]
    }

    fn s(&self) -> &[u8] {
        &self.0[33..65]
    }

    /// s ≤ n/2 (BIP 62 as intended). Our signer guarantees it.
    pub fn is_low_s(&self) -> bool {
        self.s() <= &HALF_ORDER[..]
    }

    /// fc's `is_fc_canonical`: r and s each exactly 32 DER bytes — high bit clear, and no needless leading
    /// zero (Steem before HF20, original Graphene; what dhive/dsteem/steem-js sign to).
    pub fn is_fc_canonical(&self) -> bool {
        let c = &self.0;
        (c[1] & 0x80 == 0)
            && !(c[1] == 0 && c[2] & 0x80 == 0)
            && (c[33] & 0x80 == 0)
            && !(c[33] == 0 && c[34] & 0x80 == 0)
    }

    /// Whether hived 1.28 / Steem ≥ HF20 accepts the *encoding*: header in 27..=34 and the memcmp rule of
    /// §3.6 on s (r is not checked). Says nothing about whose key it recovers to.
    pub fn hived_accepts(&self) -> bool {
        (27..=34).contains(&self.header()) && self.s() <= &HIVED_MEMCMP_BOUND[..]
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_hex())
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// `signature_type`: 65 raw bytes (§3.1).
impl Pack for Signature {
    fn pack(&self, sink: &mut Sink) {
        sink.put(&self.0);
    }
}

/// Nonce data for attempt `n`: sha256(digest ‖ [n]) as dhive/dsteem compute it (§3.6). Past 255 (never
/// reached in practice: each attempt succeeds with probability ~½) the counter grows to 4 bytes so the
/// loop cannot cycle.
fn nonce_data(digest: &[u8; 32], attempt: u32) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(digest);
    match u8::try_from(attempt) {
        Ok(byte) => h.update([byte]),
        Err(_) => h.update(attempt.to_le_bytes()),
    }
    h.finalize().into()
}

/// Signs a 32-byte digest. The result is low-S (libsecp256k1 normalizes), fc-canonical (we loop) and has
/// header 31..34 (compressed key flag).
pub fn sign_digest(digest: &[u8; 32], key: &PrivateKey) -> Signature {
    let msg = Message::from_digest(*digest);
    let mut sk = key.secp_secret();
    let mut attempt = 1u32;
    let sig = loop {
        let rsig = secp().sign_ecdsa_recoverable_with_noncedata(&msg, &sk, &nonce_data(digest, attempt));
        let (recid, rs) = rsig.serialize_compact();
        let mut bytes = [0u8; 65];
        bytes[0] = 31 + i32::from(recid) as u8;
        bytes[1..].copy_from_slice(&rs);
        let sig = Signature(bytes);
        if sig.is_fc_canonical() {
            break sig;
        }
        attempt = attempt.wrapping_add(1);
    };
    sk.non_secure_erase();
    sig
}

/// Recovers the public key, accepting headers 27..=34 as hived does (`(header − 27) & 3` is the recovery
/// id). Canonicality is *not* checked here: use [`Signature::hived_accepts`] / [`Signature::is_low_s`].
pub fn recover(digest: &[u8; 32], sig: &Signature) -> Result<PublicKey, SignError> {
    let header = sig.header();
    if !(27..=34).contains(&header) {
        return Err(SignError::BadHeader(header));
    }
    let recid = RecoveryId::try_from(i32::from((header - 27) & 3)).map_err(|_| SignError::BadHeader(header))?;
    let rsig = RecoverableSignature::from_compact(&sig.0[1..], recid).map_err(|_| SignError::NotRecoverable)?;
    let pk = secp().recover_ecdsa(&Message::from_digest(*digest), &rsig).map_err(|_| SignError::NotRecoverable)?;
    Ok(PublicKey::from_secp(&pk))
}

/// The pre-broadcast self-check of §3.6: header 31..=34, low-S, fc-canonical, and recovery over `digest`
/// gives `expected`.
pub fn self_check(digest: &[u8; 32], sig: &Signature, expected: &PublicKey) -> Result<(), SignError> {
    if !(31..=34).contains(&sig.header()) {
        return Err(SignError::SelfCheck("header is not 31..34"));
    }
    if !sig.is_low_s() {
        return Err(SignError::SelfCheck("signature is not low-s"));
    }
    if !sig.is_fc_canonical() {
        return Err(SignError::SelfCheck("signature is not fc-canonical"));
    }
    if recover(digest, sig)? != *expected {
        return Err(SignError::SelfCheck("signature recovers to another key"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_low_s_fc_canonical_and_recovers() {
        // Test vector pub-01: a throwaway key generated for the vectors; it belongs to nobody.
        let key = PrivateKey::from_wif("5HtQi3NTCkxayuq97YG3FbR5ZoLjSn8rjduATq8jmdqH4Js2BDd").unwrap();
        for i in 0u8..32 {
            let digest: [u8; 32] = Sha256::digest([i]).into();
            let sig = sign_digest(&digest, &key);
            assert!((31..=34).contains(&sig.header()));
            assert!(sig.is_low_s() && sig.is_fc_canonical() && sig.hived_accepts());
            assert_eq!(recover(&digest, &sig), Ok(key.public_key()));
            // Deterministic (RFC 6979): same digest, same key, same bytes.
            assert_eq!(sign_digest(&digest, &key), sig);
        }
    }

    #[test]
    fn canonicality_rules_on_crafted_bytes() {
        let mut b = [0xffu8; 65];
        b[0] = 31;
        b[1] = 0x7f;
        b[33] = 0x7f;
        let sig = Signature(b);
        assert!(sig.is_fc_canonical());
        assert!(!sig.is_low_s(), "0x7fff..ff > n/2");
        assert!(sig.hived_accepts(), "but below hived's memcmp bound");
        b[33..].copy_from_slice(&HALF_ORDER);
        assert!(Signature(b).is_low_s(), "n/2 itself is low");
        b[33] = 0x00;
        b[34] = 0x7f;
        assert!(!Signature(b).is_fc_canonical(), "needless leading zero in s");
        b[34] = 0x80;
        assert!(Signature(b).is_fc_canonical());
        b[1] = 0x80;
        assert!(!Signature(b).is_fc_canonical(), "r high bit");
        b[33..].copy_from_slice(&HIVED_MEMCMP_BOUND);
        assert!(Signature(b).hived_accepts(), "the bound itself passes (memcmp <= 0)");
        b[64] = 0x80;
        assert!(!Signature(b).hived_accepts());
        b[33] = 0x10;
        b[0] = 35;
        assert!(!Signature(b).hived_accepts());
        assert_eq!(recover(&[0; 32], &Signature(b)), Err(SignError::BadHeader(35)));
        b[0] = 26;
        assert_eq!(recover(&[0; 32], &Signature(b)), Err(SignError::BadHeader(26)));
        assert_eq!(Signature::from_hex("00"), Err(SignError::BadHex));
    }

    #[test]
    fn zero_signature_does_not_recover() {
        let mut b = [0u8; 65];
        b[0] = 31;
        assert_eq!(recover(&[1; 32], &Signature(b)), Err(SignError::NotRecoverable));
    }
}
