//! The agent's keys in text: the Ed25519 public key a trap is trusted by (`ed25519:<base64>`) and the
//! secret the trap signs with (`ed25519-secret:<base64>` in `AGENT_CLIENT_KEY_FILE`).
//!
//! Both are the standard base64 alphabet with padding of the raw 32 bytes (RFC 8032: the compressed point,
//! and the seed). A public key that is not a valid point, or is of small order (a "weak" key that could
//! verify forged signatures), is refused. The secret is held in a [`SecretBox`] and zeroized on drop; no
//! error or `Debug` output of this module contains secret text.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use secrecy::{ExposeSecret, SecretBox};
use thiserror::Error;
use zeroize::Zeroizing;

/// The prefix of a public key's text form.
pub const PUBLIC_PREFIX: &str = "ed25519:";
/// The prefix of a secret key's text form (the file `key new --kind agent` writes).
pub const SECRET_PREFIX: &str = "ed25519-secret:";

/// Why a key's text was refused. Never contains the text of a secret.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyTextError {
    #[error("does not start with {0:?}")]
    Prefix(&'static str),
    #[error("is not standard base64")]
    Base64,
    #[error("holds {0} bytes, not 32")]
    Length(usize),
    #[error("is not a valid Ed25519 public key (not a curve point)")]
    NotAPoint,
    #[error("is a weak Ed25519 public key (small order); refused")]
    Weak,
}

/// A trusted (or presented) Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AgentPublicKey(VerifyingKey);

impl AgentPublicKey {
    /// Parse `ed25519:<base64 of 32 bytes>` (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Self, KeyTextError> {
        let b64 = text.trim().strip_prefix(PUBLIC_PREFIX).ok_or(KeyTextError::Prefix(PUBLIC_PREFIX))?;
        let bytes = STANDARD.decode(b64).map_err(|_| KeyTextError::Base64)?;
        let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyTextError::Length(bytes.len()))?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyTextError::NotAPoint)?;
        if key.is_weak() {
            return Err(KeyTextError::Weak);
        }
        Ok(Self(key))
    }

    /// The key the verifier checks signatures with.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.0
    }

    /// The 32 bytes of the compressed point.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
}

impl fmt::Display for AgentPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", STANDARD.encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for AgentPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentPublicKey({self})")
    }
}

/// The trap's signing key: a 32-byte Ed25519 seed, zeroized on drop, never printed.
pub struct AgentSigningKey {
    seed: SecretBox<[u8; 32]>,
    public: AgentPublicKey,
}

impl AgentSigningKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        Self::from_signing(&signing)
    }

    fn from_signing(signing: &SigningKey) -> Self {
        let seed = SecretBox::new(Box::new(signing.to_bytes()));
        Self { seed, public: AgentPublicKey(signing.verifying_key()) }
    }

    /// Parse `ed25519-secret:<base64 of the 32-byte seed>` (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Self, KeyTextError> {
        let b64 = text.trim().strip_prefix(SECRET_PREFIX).ok_or(KeyTextError::Prefix(SECRET_PREFIX))?;
        let bytes = Zeroizing::new(STANDARD.decode(b64).map_err(|_| KeyTextError::Base64)?);
        let seed: Zeroizing<[u8; 32]> =
            Zeroizing::new(bytes.as_slice().try_into().map_err(|_| KeyTextError::Length(bytes.len()))?);
        // `SigningKey` zeroizes itself on drop.
        Ok(Self::from_signing(&SigningKey::from_bytes(&seed)))
    }

    /// The public key, in the text `AGENT_TRUSTED_KEYS` takes.
    pub fn public_key(&self) -> AgentPublicKey {
        self.public
    }

    /// The secret's text form, for the new key file only.
    pub fn to_secret_text(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::with_capacity(64));
        text.push_str(SECRET_PREFIX);
        STANDARD.encode_string(self.seed.expose_secret(), &mut text);
        text
    }

    /// Ed25519 (RFC 8032, pure) over `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        SigningKey::from_bytes(self.seed.expose_secret()).sign(message)
    }
}

impl fmt::Debug for AgentSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentSigningKey(public {}, secret redacted)", self.public)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_round_trip_and_the_secret_stays_out_of_debug() {
        let key = AgentSigningKey::generate();
        let public = key.public_key().to_string();
        assert!(public.starts_with("ed25519:") && public.len() == 8 + 44, "{public}");
        assert_eq!(AgentPublicKey::parse(&format!(" {public}\n")).unwrap(), key.public_key());
        let secret = key.to_secret_text();
        let again = AgentSigningKey::parse(&secret).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let debug = format!("{key:?}");
        assert!(!debug.contains(secret.trim_start_matches(SECRET_PREFIX)), "{debug}");
        let sig = key.sign(b"body");
        assert!(key.public_key().verifying_key().verify_strict(b"body", &sig).is_ok());
    }

    #[test]
    fn bad_texts_are_named_and_not_echoed() {
        assert_eq!(
            AgentPublicKey::parse("EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV"),
            Err(KeyTextError::Prefix(PUBLIC_PREFIX))
        );
        assert_eq!(AgentPublicKey::parse("ed25519:!!"), Err(KeyTextError::Base64));
        assert_eq!(AgentPublicKey::parse("ed25519:AAAA"), Err(KeyTextError::Length(3)));
        // The identity point has small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(AgentPublicKey::parse(&format!("ed25519:{}", STANDARD.encode(identity))), Err(KeyTextError::Weak));
        let e = AgentSigningKey::parse("ed25519-secret:c2VjcmV0").unwrap_err();
        assert_eq!(e, KeyTextError::Length(6));
        assert!(AgentSigningKey::parse("ed25519:AAAA").is_err(), "a public key is not a secret");
    }
}
