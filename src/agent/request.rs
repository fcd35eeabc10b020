//! The signed request and every check the agent makes before it acts (the scheme is in [`super`]'s doc).
//!
//! [`Verifier::check`] is pure but for the nonce memory: it takes the two headers, the body bytes and the
//! time, and either returns the [`Request`] to perform or the [`Refusal`] that says why not. The order of
//! the checks is part of the scheme: nothing in the body is read before its signature is verified by a
//! trusted key, and a nonce is remembered only for a request that passed every other check.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::keys::{AgentPublicKey, AgentSigningKey};

/// The header holding the base64 (standard, padded) of the 64-byte Ed25519 signature of the body.
pub const SIGNATURE_HEADER: &str = "x-witness-trap-signature";
/// The header naming the signer's public key, `ed25519:<base64>`.
pub const KEY_HEADER: &str = "x-witness-trap-key";
/// The one path the agent serves.
pub const PATH: &str = "/v1/agent";
/// Largest body accepted, in bytes: room for a promote's tower (at most [`MAX_TOWER_BYTES`], in base64).
pub const MAX_BODY_BYTES: usize = 16384;
/// Largest tower file a promote may carry, decoded (a Solana tower file is a few KiB).
pub const MAX_TOWER_BYTES: usize = 8192;
/// How far in the future `expires_at` may be, in milliseconds.
pub const MAX_VALIDITY_MS: u64 = 30_000;
/// How many nonces the agent remembers at most. Each lives until its request's expiry (≤ 30 s), and only a
/// request signed by a trusted key is remembered, so this is ~136 requests a second from the traps.
pub const NONCE_CAPACITY: usize = 4096;
/// A node name: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub const MAX_NODE_NAME: usize = 64;

/// What the trap asks the node to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Stop producing.
    Pause,
    /// Produce again.
    Resume,
    /// Report whether production is paused.
    Paused,
    /// Report the node's local head block number (is it synced?).
    Head,
    /// Report the validator's current identity public key (Solana).
    Identity,
    /// Switch the validator to its junk (unstaked) identity (Solana).
    Demote,
    /// Switch the validator to its staked identity (Solana), with the tower the request carries if any.
    Promote,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Paused => "paused",
            Action::Head => "head",
            Action::Identity => "identity",
            Action::Demote => "demote",
            Action::Promote => "promote",
        }
    }
}

/// The body of a request: these four fields, and `tower` on a promote only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub action: Action,
    /// The node that must perform it (`AGENT_NODE_NAME` of the agent).
    pub node: String,
    /// 32 lower-case hex characters (16 random bytes), never used twice.
    pub nonce: String,
    /// Unix time in milliseconds after which the request is void.
    pub expires_at: u64,
    /// `promote` only: the standard base64 (padded) of the staked identity's tower file, at most
    /// [`MAX_TOWER_BYTES`] decoded. Skipped when absent, so the other requests' bytes are as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tower: Option<String>,
}

impl Request {
    /// The tower's bytes: `None` without one, `Err` (a [`Refusal::Malformed`] reason) when it is not
    /// standard base64 or is larger than [`MAX_TOWER_BYTES`].
    pub fn tower_bytes(&self) -> Result<Option<Vec<u8>>, String> {
        let Some(text) = &self.tower else { return Ok(None) };
        // Checked before decoding, so a hostile (but signed) body cannot make a large allocation.
        if text.len() > MAX_TOWER_BYTES.div_ceil(3) * 4 {
            return Err(format!("tower: larger than {MAX_TOWER_BYTES} bytes"));
        }
        let bytes = STANDARD.decode(text).map_err(|_| "tower: not standard base64 (with padding)".to_string())?;
        if bytes.len() > MAX_TOWER_BYTES {
            return Err(format!("tower: larger than {MAX_TOWER_BYTES} bytes"));
        }
        Ok(Some(bytes))
    }
}

/// Whether `name` is a node name (`AGENT_NODE_NAME`).
pub fn is_valid_node_name(name: &str) -> bool {
    (1..=MAX_NODE_NAME).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A request the agent refuses, and why. `Display` is the message sent back and logged; it never holds
/// anything but public data.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error("the body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("unsigned: the {KEY_HEADER} and {SIGNATURE_HEADER} headers are required")]
    Unsigned,
    #[error("the {KEY_HEADER} header is not an Ed25519 public key: {0}")]
    BadKey(String),
    #[error("the key {0} is not in AGENT_TRUSTED_KEYS")]
    UntrustedKey(String),
    #[error("the {SIGNATURE_HEADER} header is not the base64 of a 64-byte signature")]
    BadSignatureEncoding,
    #[error("the signature does not verify: the body was not signed by {0}")]
    BadSignature(String),
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("the request is for node {got:?}; this agent is {expected:?}")]
    WrongNode { expected: String, got: String },
    #[error("expired: expires_at {expires_at} is not after now ({now})")]
    Expired { expires_at: u64, now: u64 },
    #[error("expires_at {expires_at} is more than {MAX_VALIDITY_MS} ms after now ({now})")]
    TooFarAhead { expires_at: u64, now: u64 },
    #[error("replay: the nonce {0} was already used")]
    Replay(String),
    #[error("too many requests in flight: {NONCE_CAPACITY} nonces are remembered and none has expired yet")]
    NonceMemoryFull,
}

impl Refusal {
    /// The machine-readable code in the JSON error.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::TooLarge => "too_large",
            Refusal::Unsigned => "unsigned",
            Refusal::BadKey(_) => "bad_key",
            Refusal::UntrustedKey(_) => "untrusted_key",
            Refusal::BadSignatureEncoding => "bad_signature_encoding",
            Refusal::BadSignature(_) => "bad_signature",
            Refusal::Malformed(_) => "malformed",
            Refusal::WrongNode { .. } => "wrong_node",
            Refusal::Expired { .. } => "expired",
            Refusal::TooFarAhead { .. } => "too_far_ahead",
            Refusal::Replay(_) => "replay",
            Refusal::NonceMemoryFull => "nonce_memory_full",
        }
    }

    /// The HTTP status: 4xx, or 503 when the nonce memory is full (retry later).
    pub fn status(&self) -> u16 {
        match self {
            Refusal::TooLarge => 413,
            Refusal::Unsigned | Refusal::BadSignature(_) | Refusal::Expired { .. } => 401,
            Refusal::UntrustedKey(_) | Refusal::WrongNode { .. } => 403,
            Refusal::BadKey(_)
            | Refusal::BadSignatureEncoding
            | Refusal::Malformed(_)
            | Refusal::TooFarAhead { .. } => 400,
            Refusal::Replay(_) => 409,
            Refusal::NonceMemoryFull => 503,
        }
    }
}

/// A request that passed every check, and who signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub request: Request,
    pub signer: AgentPublicKey,
}

/// Nonces seen, each until its request's expiry; never more than its capacity.
#[derive(Debug)]
pub struct NonceMemory {
    capacity: usize,
    seen: HashMap<[u8; 16], u64>,
}

impl NonceMemory {
    pub fn new(capacity: usize) -> Self {
        Self { capacity, seen: HashMap::with_capacity(capacity.min(1024)) }
    }

    /// Remember `nonce` until `expires_at`; a replay while it is remembered is refused. When full, the
    /// expired nonces are forgotten first; if none has expired the request is refused (forgetting a live
    /// nonce would let it be replayed).
    pub fn remember(&mut self, nonce: [u8; 16], expires_at: u64, now: u64) -> Result<(), Refusal> {
        if let Some(&until) = self.seen.get(&nonce) {
            if until > now {
                return Err(Refusal::Replay(hex::encode(nonce)));
            }
        }
        if self.seen.len() >= self.capacity {
            self.seen.retain(|_, until| *until > now);
        }
        if self.seen.len() >= self.capacity && !self.seen.contains_key(&nonce) {
            return Err(Refusal::NonceMemoryFull);
        }
        self.seen.insert(nonce, expires_at);
        Ok(())
    }

    /// How many nonces are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// The agent's checks: its trusted keys, its node name, and the nonces it has seen.
#[derive(Debug)]
pub struct Verifier {
    trusted: Vec<AgentPublicKey>,
    node: String,
    nonces: Mutex<NonceMemory>,
}

impl Verifier {
    pub fn new(trusted: Vec<AgentPublicKey>, node: String) -> Self {
        Self::with_capacity(trusted, node, NONCE_CAPACITY)
    }

    pub fn with_capacity(trusted: Vec<AgentPublicKey>, node: String, capacity: usize) -> Self {
        Self { trusted, node, nonces: Mutex::new(NonceMemory::new(capacity)) }
    }

    /// The node name requests must carry.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Every check, in the scheme's order; `now` is Unix milliseconds.
    pub fn check(
        &self,
        key_header: Option<&[u8]>,
        signature_header: Option<&[u8]>,
        body: &[u8],
        now: u64,
    ) -> Result<Verified, Refusal> {
        if body.len() > MAX_BODY_BYTES {
            return Err(Refusal::TooLarge);
        }
        let (Some(key), Some(signature)) = (key_header, signature_header) else {
            return Err(Refusal::Unsigned);
        };
        let key_text = std::str::from_utf8(key).map_err(|_| Refusal::BadKey("not UTF-8".into()))?;
        let signer = AgentPublicKey::parse(key_text).map_err(|e| Refusal::BadKey(e.to_string()))?;
        if !self.trusted.contains(&signer) {
            return Err(Refusal::UntrustedKey(signer.to_string()));
        }
        let signature = decode_signature(signature)?;
        signer
            .verifying_key()
            .verify_strict(body, &signature)
            .map_err(|_| Refusal::BadSignature(signer.to_string()))?;
        let request: Request = serde_json::from_slice(body).map_err(|e| Refusal::Malformed(json_problem(&e)))?;
        let nonce = parse_nonce(&request.nonce)?;
        if request.tower.is_some() && request.action != Action::Promote {
            return Err(Refusal::Malformed(format!(
                "tower: allowed only with promote, not {}",
                request.action.as_str()
            )));
        }
        request.tower_bytes().map_err(Refusal::Malformed)?;
        if request.node != self.node {
            return Err(Refusal::WrongNode { expected: self.node.clone(), got: printable(&request.node) });
        }
        if request.expires_at <= now {
            return Err(Refusal::Expired { expires_at: request.expires_at, now });
        }
        if request.expires_at - now > MAX_VALIDITY_MS {
            return Err(Refusal::TooFarAhead { expires_at: request.expires_at, now });
        }
        // A poisoned lock only means another request panicked; the map itself is still consistent.
        let mut nonces = self.nonces.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        nonces.remember(nonce, request.expires_at, now)?;
        Ok(Verified { request, signer })
    }

    /// How many nonces are remembered now.
    pub fn remembered(&self) -> usize {
        self.nonces.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }
}

fn decode_signature(header: &[u8]) -> Result<Signature, Refusal> {
    let text = std::str::from_utf8(header).map_err(|_| Refusal::BadSignatureEncoding)?;
    let bytes = STANDARD.decode(text.trim()).map_err(|_| Refusal::BadSignatureEncoding)?;
    let bytes: [u8; 64] = bytes.as_slice().try_into().map_err(|_| Refusal::BadSignatureEncoding)?;
    Ok(Signature::from_bytes(&bytes))
}

fn parse_nonce(text: &str) -> Result<[u8; 16], Refusal> {
    let bad = || Refusal::Malformed("nonce: expected 32 lower-case hex characters (16 bytes)".into());
    if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(bad());
    }
    let mut nonce = [0u8; 16];
    hex::decode_to_slice(text, &mut nonce).map_err(|_| bad())?;
    Ok(nonce)
}

/// serde's message without the input it quotes (bounded, one line).
fn json_problem(e: &serde_json::Error) -> String {
    let mut text = e.to_string();
    if text.len() > 200 {
        let mut cut = 200;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text.replace(['\n', '\r'], " ")
}

/// A node name from the request, bounded and quoted safely for a log line.
fn printable(name: &str) -> String {
    name.chars().take(MAX_NODE_NAME).map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// A body, signed: what the client sends.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    /// The exact bytes to send as the body.
    pub body: Vec<u8>,
    /// The value of [`KEY_HEADER`].
    pub key: String,
    /// The value of [`SIGNATURE_HEADER`].
    pub signature: String,
}

impl SignedRequest {
    /// Serialize `request` and sign the bytes.
    pub fn sign(request: &Request, key: &AgentSigningKey) -> Self {
        // A struct of strings, an enum and an integer always serializes.
        let body = serde_json::to_vec(request).unwrap_or_default();
        let signature = STANDARD.encode(key.sign(&body).to_bytes());
        Self { body, key: key.public_key().to_string(), signature }
    }
}

/// 16 fresh random bytes as 32 hex characters.
pub fn fresh_nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn request(action: Action, node: &str, expires_at: u64) -> Request {
        Request { action, node: node.into(), nonce: fresh_nonce(), expires_at, tower: None }
    }

    fn setup() -> (AgentSigningKey, Verifier) {
        let key = AgentSigningKey::generate();
        let verifier = Verifier::new(vec![AgentSigningKey::generate().public_key(), key.public_key()], "bp1".into());
        (key, verifier)
    }

    fn check(v: &Verifier, s: &SignedRequest, now: u64) -> Result<Verified, Refusal> {
        v.check(Some(s.key.as_bytes()), Some(s.signature.as_bytes()), &s.body, now)
    }

    #[test]
    fn a_good_request_passes_once() {
        let (key, v) = setup();
        let s = SignedRequest::sign(&request(Action::Pause, "bp1", NOW + 5_000), &key);
        let ok = check(&v, &s, NOW).unwrap();
        assert_eq!((ok.request.action, ok.signer), (Action::Pause, key.public_key()));
        assert_eq!(check(&v, &s, NOW + 1).unwrap_err().code(), "replay");
        assert_eq!(check(&v, &s, NOW + 1).unwrap_err().status(), 409);
    }

    #[test]
    fn every_refusal_has_its_reason() {
        let (key, v) = setup();
        let good = SignedRequest::sign(&request(Action::Resume, "bp1", NOW + 5_000), &key);
        let code = |r: Result<Verified, Refusal>| r.unwrap_err().code();

        assert_eq!(code(v.check(None, None, &good.body, NOW)), "unsigned");
        assert_eq!(code(v.check(Some(good.key.as_bytes()), None, &good.body, NOW)), "unsigned");
        assert_eq!(code(v.check(None, Some(good.signature.as_bytes()), &good.body, NOW)), "unsigned");
        assert_eq!(code(v.check(Some(b"EOS5abc"), Some(good.signature.as_bytes()), &good.body, NOW)), "bad_key");
        assert_eq!(code(v.check(Some(&[0xff, 0xfe]), Some(good.signature.as_bytes()), &good.body, NOW)), "bad_key");

        let stranger = AgentSigningKey::generate();
        let untrusted = SignedRequest::sign(&request(Action::Resume, "bp1", NOW + 5_000), &stranger);
        let r = check(&v, &untrusted, NOW).unwrap_err();
        assert_eq!((r.code(), r.status()), ("untrusted_key", 403));
        assert!(r.to_string().contains(&stranger.public_key().to_string()));

        // A trusted key header with another key's signature.
        let forged = SignedRequest { key: good.key.clone(), ..untrusted.clone() };
        assert_eq!(code(check(&v, &forged, NOW)), "bad_signature");
        // One byte of the body changed after signing.
        let mut tampered = good.clone();
        let at = tampered.body.iter().position(|&b| b == b'b').unwrap();
        tampered.body[at] = b'c';
        assert_eq!(code(check(&v, &tampered, NOW)), "bad_signature");
        assert_eq!(code(v.check(Some(good.key.as_bytes()), Some(b"AAAA"), &good.body, NOW)), "bad_signature_encoding");

        let wrong_node = SignedRequest::sign(&request(Action::Pause, "bp2", NOW + 5_000), &key);
        let r = check(&v, &wrong_node, NOW).unwrap_err();
        assert_eq!((r.code(), r.status()), ("wrong_node", 403));
        let expired = SignedRequest::sign(&request(Action::Pause, "bp1", NOW), &key);
        assert_eq!(code(check(&v, &expired, NOW)), "expired");
        let ahead = SignedRequest::sign(&request(Action::Pause, "bp1", NOW + MAX_VALIDITY_MS + 1), &key);
        assert_eq!(code(check(&v, &ahead, NOW)), "too_far_ahead");
        let edge = SignedRequest::sign(&request(Action::Pause, "bp1", NOW + MAX_VALIDITY_MS), &key);
        assert!(check(&v, &edge, NOW).is_ok(), "exactly 30 s ahead is accepted");

        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(code(v.check(Some(good.key.as_bytes()), Some(good.signature.as_bytes()), &big, NOW)), "too_large");
        assert_eq!(v.remembered(), 1, "only the accepted request's nonce is remembered");
    }

    #[test]
    fn malformed_bodies_are_refused_after_the_signature() {
        let (key, v) = setup();
        let sign = |body: &str| {
            let sig = STANDARD.encode(key.sign(body.as_bytes()).to_bytes());
            v.check(Some(key.public_key().to_string().as_bytes()), Some(sig.as_bytes()), body.as_bytes(), NOW)
        };
        let exp = NOW + 5_000;
        for body in [
            "not json".to_string(),
            format!(r#"{{"action":"reboot","node":"bp1","nonce":"{}","expires_at":{exp}}}"#, fresh_nonce()),
            format!(r#"{{"action":"pause","node":"bp1","nonce":"{}","expires_at":{exp},"extra":1}}"#, fresh_nonce()),
            format!(r#"{{"action":"pause","node":"bp1","expires_at":{exp}}}"#),
            format!(
                r#"{{"action":"pause","node":"bp1","nonce":"ABCDEF0123456789ABCDEF0123456789","expires_at":{exp}}}"#
            ),
            format!(r#"{{"action":"pause","node":"bp1","nonce":"00","expires_at":{exp}}}"#),
            format!(r#"{{"action":"pause","node":"bp1","nonce":"{}","expires_at":-1}}"#, fresh_nonce()),
            format!(r#"{{"action":"pause","node":"bp1","nonce":"{}","expires_at":"soon"}}"#, fresh_nonce()),
        ] {
            let r = sign(&body).unwrap_err();
            assert_eq!((r.code(), r.status()), ("malformed", 400), "{body}: {r}");
        }
        // Unsigned garbage is refused for the missing signature, before anything parses it.
        assert_eq!(v.check(None, None, b"not json", NOW).unwrap_err().code(), "unsigned");
        assert_eq!(v.remembered(), 0);
    }

    #[test]
    fn nonce_memory_forgets_only_expired_nonces_and_stays_bounded() {
        let mut m = NonceMemory::new(3);
        for n in 0..3u8 {
            m.remember([n; 16], NOW + 1_000 + u64::from(n), NOW).unwrap();
        }
        assert_eq!(m.remember([9; 16], NOW + 5_000, NOW), Err(Refusal::NonceMemoryFull));
        assert_eq!(m.remember([0; 16], NOW + 5_000, NOW).unwrap_err().code(), "replay");
        // The first nonce expires: room for one more, never more than three held.
        m.remember([9; 16], NOW + 5_000, NOW + 1_000).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m.remember([8; 16], NOW + 5_000, NOW + 1_000), Err(Refusal::NonceMemoryFull));
        // Past every expiry, all are forgotten and a once-seen nonce is only refused by its expiry check.
        m.remember([1; 16], NOW + 9_000, NOW + 6_000).unwrap();
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn the_verifier_refuses_when_its_memory_is_full_and_recovers_after_expiry() {
        let key = AgentSigningKey::generate();
        let v = Verifier::with_capacity(vec![key.public_key()], "bp1".into(), 2);
        for _ in 0..2 {
            check(&v, &SignedRequest::sign(&request(Action::Paused, "bp1", NOW + 1_000), &key), NOW).unwrap();
        }
        let third = SignedRequest::sign(&request(Action::Paused, "bp1", NOW + 10_000), &key);
        let r = check(&v, &third, NOW).unwrap_err();
        assert_eq!((r.code(), r.status()), ("nonce_memory_full", 503));
        // Refused requests leave nothing behind, so the same one passes once the others expire.
        assert!(check(&v, &third, NOW + 1_000).is_ok());
        assert_eq!(v.remembered(), 1);
    }

    #[test]
    fn a_request_without_a_tower_serializes_as_before() {
        let r = Request { nonce: "00".repeat(16), ..request(Action::Pause, "bp1", 7) };
        let body = String::from_utf8(serde_json::to_vec(&r).unwrap()).unwrap();
        assert_eq!(
            body,
            r#"{"action":"pause","node":"bp1","nonce":"00000000000000000000000000000000","expires_at":7}"#
        );
        let promote = Request { tower: Some(STANDARD.encode(b"t")), ..request(Action::Promote, "bp1", 7) };
        assert!(String::from_utf8(serde_json::to_vec(&promote).unwrap()).unwrap().contains(r#""tower":"dA==""#));
        for (action, text) in [(Action::Identity, "identity"), (Action::Demote, "demote"), (Action::Promote, "promote")]
        {
            assert_eq!(serde_json::to_value(action).unwrap(), serde_json::json!(text));
            assert_eq!(action.as_str(), text);
        }
    }

    #[test]
    fn a_tower_is_allowed_on_promote_only_and_bounded() {
        let (key, v) = setup();
        let with_tower = |action: Action, tower: String| {
            let r = Request { tower: Some(tower), ..request(action, "bp1", NOW + 5_000) };
            check(&v, &SignedRequest::sign(&r, &key), NOW)
        };
        let ok = with_tower(Action::Promote, STANDARD.encode(vec![7u8; MAX_TOWER_BYTES])).unwrap();
        assert_eq!(ok.request.tower_bytes().unwrap(), Some(vec![7u8; MAX_TOWER_BYTES]));
        let biggest = SignedRequest::sign(
            &Request { tower: Some(STANDARD.encode(vec![7u8; MAX_TOWER_BYTES])), ..request(Action::Promote, "bp1", 0) },
            &key,
        );
        assert!(biggest.body.len() <= MAX_BODY_BYTES, "the largest tower fits in a body");
        for action in [Action::Pause, Action::Resume, Action::Paused, Action::Head, Action::Identity, Action::Demote] {
            let r = with_tower(action, STANDARD.encode(b"tower")).unwrap_err();
            assert_eq!((r.code(), r.status()), ("malformed", 400), "{action:?}: {r}");
        }
        for bad in [STANDARD.encode(vec![7u8; MAX_TOWER_BYTES + 1]), "not base64!".into(), "dA".into()] {
            let r = with_tower(Action::Promote, bad).unwrap_err();
            assert_eq!(r.code(), "malformed", "{r}");
        }
        // Unsigned, a tower is not even looked at.
        let r = Request { tower: Some("x".into()), ..request(Action::Pause, "bp1", NOW + 5_000) };
        let body = serde_json::to_vec(&r).unwrap();
        assert_eq!(v.check(None, None, &body, NOW).unwrap_err().code(), "unsigned");
        assert_eq!(v.remembered(), 1, "only the accepted promote's nonce is remembered");
    }

    #[test]
    fn node_names() {
        assert!(is_valid_node_name("bp-1.primary_A"));
        for bad in ["", "a b", "bp1\n", "é", &"x".repeat(65)] {
            assert!(!is_valid_node_name(bad), "{bad:?}");
        }
    }
}
