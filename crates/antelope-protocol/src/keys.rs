//! K1 keys and their texts (antelope-protocol.md §5.1, §0 items 13–15).
//!
//! Public keys parse from `EOS…` (checksum `ripemd160(key)`) or `PUB_K1_…` (`ripemd160(key ‖ "K1")`) and
//! compare as their 33 bytes, never as text. Any other prefix (`STM…`, `PUB_R1_…`) is refused, as nodeos
//! refuses it. Private keys parse from the strict WIF only (0x80 ‖ 32 bytes ‖ double-sha256; the
//! byte-identical Graphene parser) or `PVT_K1_…`. No error carries the text it was given.

use std::fmt;

use ripemd::{Digest, Ripemd160};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::signature::Signature;

/// Why a key text was refused; each names the check that failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error("wrong prefix: a public key starts with EOS or PUB_K1_")]
    WrongPrefix,
    #[error("bad base58: the key text has a character outside the base58 alphabet")]
    BadBase58,
    #[error("wrong length: the key decodes to {0} bytes, expected {1}")]
    WrongLength(usize, usize),
    #[error("bad checksum: the key text is mistyped or carries another form's checksum")]
    BadChecksum,
    #[error("not a point on secp256k1")]
    NotOnCurve,
    #[error("wrong prefix: a private key is a WIF (5…) or starts with PVT_K1_")]
    WrongPrivatePrefix,
    #[error("the secret is outside [1, n-1]")]
    SecretOutOfRange,
    /// The strict WIF parser's finding.
    #[error("{0}")]
    Wif(graphene_protocol::KeyError),
}

/// `ripemd160(data ‖ suffix)[0..4]`.
pub(crate) fn checksum(data: &[u8], suffix: &[u8]) -> [u8; 4] {
    let mut h = Ripemd160::new();
    h.update(data);
    h.update(suffix);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// `prefix ‖ base58(body ‖ checksum(body ‖ suffix))`.
pub(crate) fn to_text(prefix: &str, body: &[u8], suffix: &[u8]) -> String {
    let mut raw = body.to_vec();
    raw.extend_from_slice(&checksum(body, suffix));
    format!("{prefix}{}", bs58::encode(raw).into_string())
}

/// The `N` bytes of `body` (base58 text after its prefix), checked against `checksum(bytes ‖ suffix)`.
pub(crate) fn from_text<const N: usize>(body: &str, suffix: &[u8]) -> Result<Zeroizing<[u8; N]>, KeyError> {
    let raw = Zeroizing::new(bs58::decode(body).into_vec().map_err(|_| KeyError::BadBase58)?);
    if raw.len() != N + 4 {
        return Err(KeyError::WrongLength(raw.len(), N + 4));
    }
    if checksum(&raw[..N], suffix) != raw[N..] {
        return Err(KeyError::BadChecksum);
    }
    let mut out = Zeroizing::new([0u8; N]);
    out.copy_from_slice(&raw[..N]);
    Ok(out)
}

/// A K1 public key (a compressed secp256k1 point, or the null key a multi-key authority leaves in
/// `producer_key`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(graphene_protocol::PublicKey);

impl PublicKey {
    /// The null key (33 zero bytes).
    pub const NULL: PublicKey = PublicKey(graphene_protocol::PublicKey::NULL);

    pub fn from_bytes(bytes: [u8; 33]) -> Result<Self, KeyError> {
        graphene_protocol::PublicKey::from_bytes(bytes).map(Self).map_err(|_| KeyError::NotOnCurve)
    }

    pub fn to_bytes(&self) -> [u8; 33] {
        self.0.to_bytes()
    }

    pub fn is_null(&self) -> bool {
        self.0.is_null()
    }

    /// `EOS…` or `PUB_K1_…`.
    pub fn from_text(text: &str) -> Result<Self, KeyError> {
        let (body, suffix): (&str, &[u8]) = if let Some(b) = text.strip_prefix("PUB_K1_") {
            (b, b"K1")
        } else if let Some(b) = text.strip_prefix("EOS") {
            (b, b"")
        } else {
            return Err(KeyError::WrongPrefix);
        };
        let bytes = from_text::<33>(body, suffix)?;
        Self::from_bytes(*bytes)
    }

    /// `EOS…` (what Spring 1.x prints).
    pub fn to_legacy(&self) -> String {
        to_text("EOS", &self.to_bytes(), b"")
    }

    /// `PUB_K1_…` (what Spring 2.0 prints).
    pub fn to_k1(&self) -> String {
        to_text("PUB_K1_", &self.to_bytes(), b"K1")
    }

    /// The byte-identical Graphene key.
    pub fn to_graphene(&self) -> graphene_protocol::PublicKey {
        self.0
    }
}

impl From<graphene_protocol::PublicKey> for PublicKey {
    fn from(k: graphene_protocol::PublicKey) -> Self {
        Self(k)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_legacy())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_legacy())
    }
}

/// A K1 private key; zeroized on drop (inside the Graphene key), never printed.
pub struct PrivateKey(graphene_protocol::PrivateKey);

impl PrivateKey {
    /// A strict WIF or `PVT_K1_…`.
    pub fn from_text(text: &str) -> Result<Self, KeyError> {
        if let Some(body) = text.strip_prefix("PVT_K1_") {
            let secret = from_text::<32>(body, b"K1")?;
            return graphene_protocol::PrivateKey::from_secret_bytes(&secret)
                .map(Self)
                .ok_or(KeyError::SecretOutOfRange);
        }
        if text.starts_with("PVT_") || text.starts_with("PUB_") || text.starts_with("EOS") {
            return Err(KeyError::WrongPrivatePrefix);
        }
        graphene_protocol::PrivateKey::from_wif(text).map(Self).map_err(KeyError::Wif)
    }

    pub fn generate() -> Self {
        Self(graphene_protocol::PrivateKey::generate())
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.public_key())
    }

    pub fn to_wif(&self) -> Zeroizing<String> {
        self.0.to_wif()
    }

    pub fn to_pvt_k1(&self) -> Zeroizing<String> {
        Zeroizing::new(to_text("PVT_K1_", &self.0.secret_bytes()[..], b"K1"))
    }

    /// The 32 secret bytes (vector tests compare them).
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        self.0.secret_bytes()
    }

    /// Signs a digest: RFC 6979 nonces looped until r and s are fc-canonical (§5.3; the Graphene signer,
    /// which loops the same way), header 31..34.
    pub fn sign(&self, digest: &[u8; 32]) -> Signature {
        Signature(graphene_protocol::sign_digest(digest, &self.0).0)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The well-known, public EOS development key (antelope-protocol.md §5.1): it guards nothing.
    const DEV_WIF: &str = "5KQwrPbwdL6PhXujxW37FSSQZ1JiwsST4cqQzDeyXtP79zkvFD3";

    #[test]
    fn the_dev_key_has_the_documented_texts() {
        // antelope-protocol.md §5.1: the well-known development key.
        let k = PrivateKey::from_text(DEV_WIF).expect("wif");
        assert_eq!(&*k.to_pvt_k1(), "PVT_K1_2bfGi9rYsXQSXXTvJbDAPhHLQUojjaNLomdm3cEJ1XTzMqUt3V");
        assert_eq!(k.public_key().to_legacy(), "EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV");
        assert_eq!(k.public_key().to_k1(), "PUB_K1_6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5BoDq63");
        let again = PrivateKey::from_text(&k.to_pvt_k1()).expect("pvt");
        assert_eq!(again.public_key(), k.public_key());
        assert_eq!(format!("{k:?}"), "PrivateKey(<redacted>)");
    }

    #[test]
    fn errors_name_the_check_and_never_the_text() {
        assert_eq!(
            PublicKey::from_text("STM6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV"),
            Err(KeyError::WrongPrefix)
        );
        assert_eq!(PublicKey::from_text("PUB_R1_6MRy"), Err(KeyError::WrongPrefix));
        assert_eq!(PublicKey::from_text("EOS0OIl"), Err(KeyError::BadBase58));
        assert!(matches!(PublicKey::from_text("EOS6MRy"), Err(KeyError::WrongLength(_, 37))));
        let e = PrivateKey::from_text(&DEV_WIF[..50]).expect_err("short wif");
        assert!(!e.to_string().contains(&DEV_WIF[..20]), "{e}");
        assert_eq!(PrivateKey::from_text("EOS6MRy").map(|_| ()), Err(KeyError::WrongPrivatePrefix));
    }
}
