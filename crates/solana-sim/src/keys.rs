//! Ed25519 identities as Solana writes them: the public key in base58, the keypair file as the Solana CLI's JSON
//! array of 64 numbers (the 32-byte secret seed, then the 32-byte public key).
//!
//! The admin socket reads these files for `setIdentity`, so parsing is strict: exactly 64 bytes, and the public
//! half must be the one the secret derives (a file pairing one validator's seed with another's pubkey is refused).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use ed25519_dalek::SigningKey;
use rand::RngCore;

use crate::SimError;

/// An ed25519 keypair. `Debug` shows the public key only.
#[derive(Clone)]
pub struct Keypair {
    key: SigningKey,
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keypair").field("pubkey", &self.pubkey()).finish_non_exhaustive()
    }
}

impl Keypair {
    /// A fresh random keypair.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        Self { key: SigningKey::from_bytes(&seed) }
    }

    /// From the 64 bytes of a keypair file (seed then public key); the public half must match the seed.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SimError> {
        let arr: &[u8; 64] =
            bytes.try_into().map_err(|_| SimError::Keypair(format!("a keypair is 64 bytes, got {}", bytes.len())))?;
        let key = SigningKey::from_keypair_bytes(arr)
            .map_err(|_| SimError::Keypair("the public key does not match the secret key".into()))?;
        Ok(Self { key })
    }

    /// The 64 bytes of a keypair file.
    pub fn to_bytes(&self) -> [u8; 64] {
        self.key.to_keypair_bytes()
    }

    /// The public key in base58, as Solana prints identities.
    pub fn pubkey(&self) -> String {
        bs58::encode(self.key.verifying_key().as_bytes()).into_string()
    }

    /// The Solana CLI keypair file text: `[n,n,…]` with 64 numbers.
    pub fn to_json_bytes(&self) -> String {
        serde_json::Value::from(self.to_bytes().to_vec()).to_string()
    }

    /// Parse keypair file text (a JSON array of 64 numbers 0–255).
    pub fn from_json_bytes(text: &str) -> Result<Self, SimError> {
        let bytes: Vec<u8> = serde_json::from_str(text.trim())
            .map_err(|e| SimError::Keypair(format!("not a JSON array of 64 bytes: {e}")))?;
        Self::from_bytes(&bytes)
    }

    /// Write the keypair file with mode 0600 (a key file others can read is a leaked key).
    pub fn write_file(&self, path: &Path) -> std::io::Result<()> {
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
        // `mode` applies only when the file is created; tighten an existing one too.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(self.to_json_bytes().as_bytes())?;
        f.sync_all()
    }

    /// Read a keypair file written by [`Keypair::write_file`] or the Solana CLI.
    pub fn read_file(path: &Path) -> Result<Keypair, SimError> {
        let text = std::fs::read_to_string(path).map_err(|e| SimError::Keypair(e.to_string()))?;
        Self::from_json_bytes(&text)
    }
}

/// Whether `text` is a base58 public key (32 bytes).
pub fn is_pubkey(text: &str) -> bool {
    matches!(bs58::decode(text).into_vec(), Ok(b) if b.len() == 32)
}

/// 32 random bytes in base58: a genesis hash or an account address nobody holds the key of.
pub fn random_hash() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    bs58::encode(b).into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_round_trip_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.json");
        let k = Keypair::generate();
        k.write_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        let nums: Vec<u8> = serde_json::from_str(&text).unwrap();
        assert_eq!(nums.len(), 64);
        assert!(!text.contains(' '), "the CLI writes no spaces: {text}");
        let back = Keypair::read_file(&path).unwrap();
        assert_eq!(back.pubkey(), k.pubkey());
        assert!(is_pubkey(&k.pubkey()));
        assert_eq!(bs58::decode(k.pubkey()).into_vec().unwrap(), nums[32..].to_vec());
    }

    #[test]
    fn mismatched_or_short_files_are_refused() {
        let a = Keypair::generate().to_bytes();
        let b = Keypair::generate().to_bytes();
        let mut mixed = a;
        mixed[32..].copy_from_slice(&b[32..]);
        assert!(Keypair::from_bytes(&mixed).is_err());
        assert!(Keypair::from_bytes(&a[..63]).is_err());
        assert!(Keypair::from_json_bytes("[1,2,3]").is_err());
        assert!(Keypair::from_json_bytes("[300]").is_err());
        assert!(Keypair::from_json_bytes("not json").is_err());
        assert!(!is_pubkey("0OIl"));
        assert!(!is_pubkey("abc"));
    }
}
