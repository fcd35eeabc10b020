//! Keys: WIF private keys (protocol.md §2.1), public-key text and bytes (§2.2), the null key (§2.3).
//!
//! [`PrivateKey`] owns its 32 secret bytes in a boxed buffer that is zeroized on drop; it is neither `Copy`
//! nor `Clone`, and nothing prints the secret. A bad WIF reports which check failed and never the text.
//! Signing itself lives in `sign.rs`; this file only turns text into keys and back.

use std::fmt;
use std::sync::OnceLock;

use ripemd::Ripemd160;
use secp256k1::{All, Secp256k1, SecretKey};
use sha2::{Digest, Sha256};
use thiserror::Error;
use zeroize::{Zeroize, Zeroizing};

use super::pack::{Pack, Sink};

/// Errors of this module. No variant carries the text it was given: for a WIF that would leak the secret,
/// and for a public key it keeps error lines short and uniform.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// WIF text is not base58 (Bitcoin alphabet).
    #[error("wif is not base58")]
    WifNotBase58,
    /// WIF decodes to 38 bytes ending in 0x01: Bitcoin's "compressed" form (§0 item 18, vector pub-05).
    #[error("wif has the compressed-key flag (38 bytes, starts with K or L); only the standard 51-character wif starting with 5 is accepted")]
    WifCompressedFlag,
    /// WIF decodes to a length other than 37 bytes.
    #[error("wif decodes to {0} bytes, expected 37 (a standard wif has 51 characters)")]
    WifLength(usize),
    /// First byte is not 0x80.
    #[error("wif version byte is 0x{0:02x}, expected 0x80")]
    WifVersion(u8),
    /// Checksum matches a single SHA-256, which hived tolerates and we do not (§2.1).
    #[error("wif checksum is a single sha256; only the standard double-sha256 checksum is accepted")]
    WifSingleSha256,
    /// Checksum matches neither form.
    #[error("wif checksum does not match (mistyped key?)")]
    WifChecksum,
    /// Secret is 0 or ≥ the curve order.
    #[error("wif secret is outside [1, n-1]")]
    WifSecretOutOfRange,
    /// Public key text lacks the expected prefix.
    #[error("public key has the wrong prefix, expected {expected:?}")]
    WrongPrefix {
        /// The chain's prefix.
        expected: String,
    },
    /// Public key body is not base58.
    #[error("public key is not base58")]
    NotBase58,
    /// Public key body decodes to the wrong number of bytes.
    #[error("public key decodes to {0} bytes, expected 37 (33-byte key + 4-byte checksum)")]
    WrongLength(usize),
    /// RIPEMD-160 checksum mismatch.
    #[error("public key checksum does not match")]
    BadChecksum,
    /// 33 bytes that are neither a compressed curve point nor the null key.
    #[error("public key is not a point on secp256k1")]
    NotOnCurve,
    /// Hex form of a public key is not 66 hex characters.
    #[error("public key hex must be 66 hex characters")]
    BadHex,
}

/// The process-wide secp256k1 context; building one costs more than a signature.
pub(crate) fn secp() -> &'static Secp256k1<All> {
    static CTX: OnceLock<Secp256k1<All>> = OnceLock::new();
    CTX.get_or_init(Secp256k1::new)
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn ripemd160_check(data: &[u8]) -> [u8; 4] {
    let h = Ripemd160::digest(data);
    [h[0], h[1], h[2], h[3]]
}

/// A compressed secp256k1 public key, or the null key (33 zero bytes, "disabled", §2.3).
/// Valid by construction: [`PublicKey::from_bytes`] checks the point.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 33]);

impl PublicKey {
    /// `public_key_type()`: what `witness_update` sets to disable a witness.
    pub const NULL: PublicKey = PublicKey([0u8; 33]);

    /// Accepts a compressed SEC1 point or the null key.
    pub fn from_bytes(b: [u8; 33]) -> Result<Self, KeyError> {
        if b == [0u8; 33] {
            return Ok(Self::NULL);
        }
        secp256k1::PublicKey::from_slice(&b).map_err(|_| KeyError::NotOnCurve)?;
        Ok(Self(b))
    }

    /// The 33 wire bytes.
    pub fn to_bytes(&self) -> [u8; 33] {
        self.0
    }

    /// True for the null key.
    pub fn is_null(&self) -> bool {
        self.0 == [0u8; 33]
    }

    /// `PREFIX ‖ base58(K ‖ ripemd160(K)[0..4])` (§2.2).
    pub fn to_text(&self, prefix: &str) -> String {
        let mut body = [0u8; 37];
        body[..33].copy_from_slice(&self.0);
        body[33..].copy_from_slice(&ripemd160_check(&self.0));
        format!("{prefix}{}", bs58::encode(body).into_string())
    }

    /// Parses `PREFIX…` text. The length is checked on the decoded bytes, not the text: leading zero bytes
    /// become `1`s, so the null key's body is 39 characters (§2.2).
    pub fn from_text(s: &str, prefix: &str) -> Result<Self, KeyError> {
        let body = s.strip_prefix(prefix).ok_or_else(|| KeyError::WrongPrefix { expected: prefix.to_string() })?;
        let bytes = bs58::decode(body).into_vec().map_err(|_| KeyError::NotBase58)?;
        if bytes.len() != 37 {
            return Err(KeyError::WrongLength(bytes.len()));
        }
        let mut key = [0u8; 33];
        key.copy_from_slice(&bytes[..33]);
        if ripemd160_check(&key) != bytes[33..] {
            return Err(KeyError::BadChecksum);
        }
        Self::from_bytes(key)
    }

    /// Parses 66 hex characters (the form used in `witness_set_properties` JSON).
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let mut b = [0u8; 33];
        hex::decode_to_slice(s, &mut b).map_err(|_| KeyError::BadHex)?;
        Self::from_bytes(b)
    }

    /// 66 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub(crate) fn from_secp(pk: &secp256k1::PublicKey) -> Self {
        Self(pk.serialize())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

/// `public_key_type` on the wire: 33 raw bytes, no length prefix (§3.1).
impl Pack for PublicKey {
    fn pack(&self, sink: &mut Sink) {
        sink.put(&self.0);
    }
}

/// A secp256k1 secret key. Zeroized on drop; not `Copy`/`Clone`; `Debug` prints `PrivateKey(<redacted>)`.
pub struct PrivateKey {
    // Boxed so that moving a `PrivateKey` moves a pointer and leaves no copy of the secret behind.
    secret: Box<[u8; 32]>,
    public: PublicKey,
}

impl PrivateKey {
    /// Decodes a standard WIF: base58 → 37 bytes = 0x80 ‖ secret ‖ sha256(sha256(first 33))[0..4] (§2.1).
    /// Everything else is refused, including the forms hived tolerates (§0 item 18).
    pub fn from_wif(wif: &str) -> Result<Self, KeyError> {
        let raw = Zeroizing::new(bs58::decode(wif).into_vec().map_err(|_| KeyError::WifNotBase58)?);
        match raw.len() {
            37 => {}
            38 if raw[0] == 0x80 && raw[33] == 0x01 => return Err(KeyError::WifCompressedFlag),
            n => return Err(KeyError::WifLength(n)),
        }
        if raw[0] != 0x80 {
            return Err(KeyError::WifVersion(raw[0]));
        }
        let double = sha256(&sha256(&raw[..33]));
        if double[..4] != raw[33..] {
            if sha256(&raw[..33])[..4] == raw[33..] {
                return Err(KeyError::WifSingleSha256);
            }
            return Err(KeyError::WifChecksum);
        }
        let mut secret = Box::new([0u8; 32]);
        secret.copy_from_slice(&raw[1..33]);
        Self::from_secret(secret).ok_or(KeyError::WifSecretOutOfRange)
    }

    /// A fresh key from the operating system's random generator.
    pub fn generate() -> Self {
        loop {
            let mut secret = Box::new([0u8; 32]);
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret[..]);
            // Out of range with probability ~2^-128; draw again.
            if let Some(key) = Self::from_secret(secret) {
                return key;
            }
        }
    }

    /// Builds from raw secret bytes; `None` (and the buffer zeroized) if out of [1, n-1].
    pub fn from_secret_bytes(bytes: &[u8; 32]) -> Option<Self> {
        Self::from_secret(Box::new(*bytes))
    }

    fn from_secret(mut secret: Box<[u8; 32]>) -> Option<Self> {
        let Ok(mut sk) = SecretKey::from_byte_array(&secret) else {
            secret.zeroize();
            return None;
        };
        let public = PublicKey::from_secp(&secp256k1::PublicKey::from_secret_key(secp(), &sk));
        sk.non_secure_erase();
        Some(Self { secret, public })
    }

    /// The public key (computed once, at construction).
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// The standard WIF; the returned string is zeroized on drop.
    pub fn to_wif(&self) -> Zeroizing<String> {
        let mut payload = Zeroizing::new([0u8; 37]);
        payload[0] = 0x80;
        payload[1..33].copy_from_slice(&self.secret[..]);
        let check = sha256(&sha256(&payload[..33]));
        payload[33..].copy_from_slice(&check[..4]);
        Zeroizing::new(bs58::encode(&payload[..]).into_string())
    }

    /// The secret as a libsecp256k1 key, for the signer only. The caller erases it.
    pub(crate) fn secp_secret(&self) -> SecretKey {
        // Invariant: `secret` was accepted by `SecretKey::from_byte_array` at construction.
        SecretKey::from_byte_array(&self.secret).expect("secret was validated at construction")
    }

    /// The 32 secret bytes, zeroized when the returned buffer drops (vector tests compare them).
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(*self.secret)
    }
}

impl Drop for PrivateKey {
    fn drop(&mut self) {
        self.secret.zeroize();
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

    // Test vector pub-01 (tests/vectors/): a throwaway key generated for the vectors; it belongs to nobody.
    const WIF: &str = "5HtQi3NTCkxayuq97YG3FbR5ZoLjSn8rjduATq8jmdqH4Js2BDd";
    const PUB: &str = "STM4z3STJxcpXjbW2L8Bo1LXid23M2ounqRC4VHATVq4Fvm5QJdoj";

    #[test]
    fn wif_round_trip() {
        let k = PrivateKey::from_wif(WIF).unwrap();
        assert_eq!(k.public_key().to_text("STM"), PUB);
        assert_eq!(k.to_wif().as_str(), WIF);
        assert_eq!(format!("{k:?}"), "PrivateKey(<redacted>)");
    }

    fn wif_of(payload: &[u8]) -> String {
        bs58::encode(payload).into_string()
    }

    #[test]
    fn wif_rejections_say_which_check_failed() {
        let raw = bs58::decode(WIF).into_vec().unwrap();
        let mut compressed = raw[..33].to_vec();
        compressed.push(1);
        let c = sha256(&sha256(&compressed));
        compressed.extend_from_slice(&c[..4]);
        let mut single = raw[..33].to_vec();
        single.extend_from_slice(&sha256(&raw[..33])[..4]);
        let mut version = raw.clone();
        version[0] = 0x81;
        let mut bad_check = raw.clone();
        bad_check[36] ^= 1;
        let mut zero = vec![0x80];
        zero.extend_from_slice(&[0u8; 32]);
        let z = sha256(&sha256(&zero));
        zero.extend_from_slice(&z[..4]);
        let cases = [
            (wif_of(&compressed), KeyError::WifCompressedFlag),
            (wif_of(&single), KeyError::WifSingleSha256),
            (wif_of(&version), KeyError::WifVersion(0x81)),
            (wif_of(&bad_check), KeyError::WifChecksum),
            (wif_of(&zero), KeyError::WifSecretOutOfRange),
            (wif_of(&raw[..36]), KeyError::WifLength(36)),
            ("0OIl".to_string(), KeyError::WifNotBase58),
        ];
        for (wif, expected) in cases {
            let err = PrivateKey::from_wif(&wif).unwrap_err();
            assert_eq!(err, expected);
            assert!(!err.to_string().contains(&wif), "error echoes the input");
        }
    }

    #[test]
    fn null_key_text() {
        assert_eq!(PublicKey::NULL.to_text("STM"), "STM1111111111111111111111111111111114T1Anm");
        assert_eq!(PublicKey::from_text("STM1111111111111111111111111111111114T1Anm", "STM").unwrap(), PublicKey::NULL);
        assert!(PublicKey::NULL.is_null());
    }

    #[test]
    fn public_key_text_errors() {
        let k = PublicKey::from_text(PUB, "STM").unwrap();
        assert_eq!(PublicKey::from_text(PUB, "TST"), Err(KeyError::WrongPrefix { expected: "TST".into() }));
        assert_eq!(PublicKey::from_text(&k.to_text("TST"), "TST"), Ok(k));
        let mut bad = PUB.to_string();
        bad.pop();
        bad.push('k');
        assert_eq!(PublicKey::from_text(&bad, "STM"), Err(KeyError::BadChecksum));
        assert_eq!(PublicKey::from_text("STM0abc", "STM"), Err(KeyError::NotBase58));
        assert_eq!(PublicKey::from_text("STM2222", "STM"), Err(KeyError::WrongLength(3)));
        // A well-formed checksum around bytes that are not a point.
        let mut not_point = [0u8; 33];
        not_point[0] = 0x05;
        let mut body = not_point.to_vec();
        body.extend_from_slice(&ripemd160_check(&not_point));
        assert_eq!(PublicKey::from_text(&format!("STM{}", wif_of(&body)), "STM"), Err(KeyError::NotOnCurve));
        assert_eq!(PublicKey::from_bytes(not_point), Err(KeyError::NotOnCurve));
        assert_eq!(PublicKey::from_hex("02ab"), Err(KeyError::BadHex));
        assert_eq!(PublicKey::from_hex(&k.to_hex()), Ok(k));
    }

    #[test]
    fn generated_keys_round_trip() {
        let k = PrivateKey::generate();
        let again = PrivateKey::from_wif(&k.to_wif()).unwrap();
        assert_eq!(k.public_key(), again.public_key());
        assert!(!k.public_key().is_null());
    }
}
