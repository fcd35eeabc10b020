//! Signatures: the 65-byte compact form, its `SIG_K1_…` text, fc's canonical rule on r *and* s, and
//! public-key recovery (antelope-protocol.md §5.2, §5.3, §0 items 7–8).
//!
//! A signature is never judged by its bytes (two correct signers give different ones): it is judged by
//! recovering the key and by [`Signature::is_canonical`]. A non-canonical twin still recovers, which is why
//! canonicality is tested on its own.

use std::fmt;

use thiserror::Error;

use crate::keys::{from_text, to_text, KeyError, PublicKey};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SigError {
    #[error("a signature starts with SIG_K1_")]
    WrongPrefix,
    #[error("signature text: {0}")]
    Text(KeyError),
    #[error("signature header {0} is outside 27..=34")]
    BadHeader(u8),
    #[error("the signature does not recover a public key")]
    NotRecoverable,
    #[error("signature is not canonical")]
    NotCanonical,
    #[error("the signature recovers to {0}, not the signing key")]
    WrongKey(String),
}

/// `header ‖ r ‖ s`, header = 27 + 4 + recid when we sign.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 65]);

impl Signature {
    pub fn from_text(text: &str) -> Result<Self, SigError> {
        let body = text.strip_prefix("SIG_K1_").ok_or(SigError::WrongPrefix)?;
        from_text::<65>(body, b"K1").map(|b| Self(*b)).map_err(SigError::Text)
    }

    pub fn to_text(&self) -> String {
        to_text("SIG_K1_", &self.0, b"K1")
    }

    /// fc's `is_canonical` (elliptic_common.cpp): neither r nor s has its top bit set, nor a needless
    /// leading zero byte.
    pub fn is_canonical(&self) -> bool {
        let c = &self.0;
        (c[1] & 0x80) == 0
            && !(c[1] == 0 && (c[2] & 0x80) == 0)
            && (c[33] & 0x80) == 0
            && !(c[33] == 0 && (c[34] & 0x80) == 0)
    }

    /// The key that signed `digest` (headers 27..=34, as nodeos accepts; canonicality is separate).
    pub fn recover(&self, digest: &[u8; 32]) -> Result<PublicKey, SigError> {
        let h = self.0[0];
        if !(27..=34).contains(&h) {
            return Err(SigError::BadHeader(h));
        }
        graphene_protocol::recover(digest, &graphene_protocol::Signature(self.0))
            .map(PublicKey::from)
            .map_err(|_| SigError::NotRecoverable)
    }

    /// What nodeos checks of a transaction signature: canonical, and it recovers (to `expected`).
    pub fn verify(&self, digest: &[u8; 32], expected: &PublicKey) -> Result<(), SigError> {
        if !self.is_canonical() {
            return Err(SigError::NotCanonical);
        }
        let got = self.recover(digest)?;
        if got != *expected {
            return Err(SigError::WrongKey(got.to_legacy()));
        }
        Ok(())
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_text())
    }
}
