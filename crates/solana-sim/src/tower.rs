//! The sim's tower file, `<ledger>/tower-1_9-<identity>.bin`: the one piece of vote state that must move with
//! the staked identity (a node that votes without its last vote can break lockout).
//!
//! Agave's file is bincode; the sim writes a small JSON object `{"identity":"…","lastVote":N}` instead. The trap
//! treats tower files as opaque bytes and copies them between ledgers, so only the sim itself reads this format.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// What a tower file records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tower {
    pub identity: String,
    /// `None` before the identity's first vote.
    pub last_vote: Option<u64>,
}

/// Agave's file name for `identity`'s tower.
pub fn file_name(identity: &str) -> String {
    format!("tower-1_9-{identity}.bin")
}

/// The tower file of `identity` in `ledger`.
pub fn path(ledger: &Path, identity: &str) -> PathBuf {
    ledger.join(file_name(identity))
}

/// Write the tower of `identity` into `ledger`, through a temporary file and a rename as Agave does, so a copy
/// taken at any moment is a whole tower.
pub fn write(ledger: &Path, identity: &str, last_vote: Option<u64>) -> std::io::Result<()> {
    let body = json!({"identity": identity, "lastVote": last_vote}).to_string();
    let tmp = ledger.join(format!("{}.new", file_name(identity)));
    std::fs::write(&tmp, body)?;
    std::fs::rename(&tmp, path(ledger, identity))
}

/// Read `identity`'s tower from `ledger`, as `Tower::restore` would: missing, unreadable or foreign towers are
/// errors (the text is what the admin socket reports).
pub fn read(ledger: &Path, identity: &str) -> Result<Tower, String> {
    let p = path(ledger, identity);
    let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| format!("{}: not a tower: {e}", p.display()))?;
    let owner = v.get("identity").and_then(Value::as_str).ok_or_else(|| format!("{}: no identity", p.display()))?;
    if owner != identity {
        return Err(format!("{}: the tower is for a different node ({owner})", p.display()));
    }
    let last_vote = match v.get("lastVote") {
        None | Some(Value::Null) => None,
        Some(n) => Some(n.as_u64().ok_or_else(|| format!("{}: bad lastVote", p.display()))?),
    };
    Ok(Tower { identity: owner.to_string(), last_vote })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_foreign_towers() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "Abc", Some(42)).unwrap();
        assert_eq!(read(dir.path(), "Abc").unwrap(), Tower { identity: "Abc".into(), last_vote: Some(42) });
        assert!(dir.path().join("tower-1_9-Abc.bin").exists());
        assert!(!dir.path().join("tower-1_9-Abc.bin.new").exists());
        assert!(read(dir.path(), "Other").is_err());
        std::fs::copy(dir.path().join("tower-1_9-Abc.bin"), dir.path().join("tower-1_9-Other.bin")).unwrap();
        assert!(read(dir.path(), "Other").unwrap_err().contains("different node"));
        write(dir.path(), "New", None).unwrap();
        assert_eq!(read(dir.path(), "New").unwrap().last_vote, None);
    }
}
