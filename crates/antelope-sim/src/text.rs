//! Text forms of the JSON replies: keys in the node version's spelling, vote weights, block times.
//!
//! Spring 1.x writes K1 keys as `EOS…`, Spring 2.0 as `PUB_K1_…` (antelope-protocol.md §0.13); the sim picks one
//! per node with `SimConfig::k1_text` and uses it in every reply. Time text comes from `antelope_protocol`.

use antelope_protocol::keys::PublicKey;

/// The null key (33 zero bytes) in both spellings: what `producer_key` shows after a multi-key `regproducer2`.
pub const NULL_KEY_LEGACY: &str = "EOS1111111111111111111111111111111114T1Anm";
pub const NULL_KEY_K1: &str = "PUB_K1_11111111111111111111111111111111149Mr2R";

/// A key as this node prints it.
pub fn key_text(key: &PublicKey, k1: bool) -> String {
    if k1 {
        key.to_k1()
    } else {
        key.to_legacy()
    }
}

/// An optional key (`None` = the null key).
pub fn opt_key_text(key: Option<&PublicKey>, k1: bool) -> String {
    match key {
        Some(k) => key_text(k, k1),
        None if k1 => NULL_KEY_K1.to_string(),
        None => NULL_KEY_LEGACY.to_string(),
    }
}

/// `total_votes` as the chain prints its double: integer digits and 17 decimals.
pub fn votes_text(votes: u128) -> String {
    format!("{votes}.00000000000000000")
}

/// A block timestamp ("2025-01-01T00:00:01.500").
pub fn time_text(unix_ms: u64) -> String {
    antelope_protocol::schedule::format_block_time(unix_ms)
}
