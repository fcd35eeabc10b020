//! One JSON-RPC endpoint: POST with a timeout, and every way it can fail as a typed error.
//!
//! Errors come back as HTTP 200 with an `error` member (protocol.md §5.9); we keep `code`, `data.name` and
//! the message, and classify the ones the trap acts on by name first and message text second, because Hive
//! and Steem use different codes for the same failure (§0 item 20).
//!
//! An endpoint may be hostile, so its input is bounded: a body larger than [`MAX_RESPONSE_BYTES`] is refused
//! (by its `Content-Length` before reading anything, else while streaming it in chunks, never read whole);
//! JSON nested deeper than serde_json's recursion limit (128) is an error, not a stack overflow; every text
//! taken from an answer into an error (and so into logs and alerts) is cut short. Each of these is a failed
//! read of that endpoint ([`RpcError::TooLarge`], [`RpcError::Garbage`]), never a crash.

pub use crate::redact::url as redact;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

pub use crate::chain::body::{bounded_text, MAX_ERROR_TEXT, MAX_RESPONSE_BYTES};

/// Why a call to one endpoint failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RpcError {
    #[error("{endpoint}: no answer within {secs} s")]
    Timeout { endpoint: String, secs: u64 },
    #[error("{endpoint}: cannot connect: {message}")]
    Transport { endpoint: String, message: String },
    #[error("{endpoint}: HTTP {status}")]
    Http { endpoint: String, status: u16 },
    #[error("{endpoint}: malformed answer to {method}: {detail}")]
    Garbage { endpoint: String, method: String, detail: String },
    /// The body is larger than [`MAX_RESPONSE_BYTES`]; it was not read whole.
    #[error("{endpoint}: answer to {method} too large: {detail} (limit {limit} bytes)")]
    TooLarge { endpoint: String, method: String, limit: usize, detail: String },
    #[error("{endpoint}: {method} failed: {message}")]
    Remote { endpoint: String, method: String, code: i64, name: Option<String>, message: String },
}

impl RpcError {
    fn remote_text(&self) -> Option<(Option<&str>, &str)> {
        match self {
            RpcError::Remote { name, message, .. } => Some((name.as_deref(), message.as_str())),
            _ => None,
        }
    }

    /// "Duplicate transaction check failed": the first copy was accepted (§5.7).
    pub fn is_duplicate(&self) -> bool {
        self.remote_text().is_some_and(|(_, m)| m.contains("Duplicate transaction"))
    }

    /// The transaction expired or its expiration is out of range.
    pub fn is_expiration(&self) -> bool {
        self.remote_text()
            .is_some_and(|(n, m)| n == Some("transaction_expiration_exception") || m.contains("expiration"))
    }

    /// A signature does not satisfy the required authority.
    pub fn is_missing_authority(&self) -> bool {
        self.remote_text().is_some_and(|(n, m)| {
            n.is_some_and(|n| n.starts_with("tx_missing")) || m.contains("Missing") && m.contains("Authority")
        })
    }

    /// op 42's `key` is not the on-chain signing key any more.
    pub fn is_key_mismatch(&self) -> bool {
        self.remote_text().is_some_and(|(_, m)| m.contains("does not match witness signing key"))
    }

    /// The endpoint could not be used at all (as opposed to answering with a chain error).
    pub fn is_unreachable(&self) -> bool {
        !matches!(self, RpcError::Remote { .. })
    }
}

/// One JSON-RPC endpoint.
#[derive(Debug)]
pub struct Endpoint {
    /// Used for requests only; everything shown uses `label`.
    request_url: String,
    label: String,
    client: reqwest::Client,
    timeout: Duration,
    next_id: AtomicU64,
    calls: AtomicU64,
}

impl Endpoint {
    /// An endpoint with a per-request timeout.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, RpcError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| RpcError::Transport { endpoint: redact(url), message: e.without_url().to_string() })?;
        Ok(Self {
            request_url: url.to_string(),
            label: redact(url),
            client,
            timeout,
            next_id: AtomicU64::new(1),
            calls: AtomicU64::new(0),
        })
    }

    /// The endpoint as shown in logs and errors (no credentials, no query string).
    pub fn url(&self) -> &str {
        &self.label
    }

    /// How many calls this endpoint has been sent (the benchmark reports calls per hour).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Call `method` with `params` and decode the `result`.
    pub async fn call<T: DeserializeOwned>(&self, method: &str, params: Value) -> Result<T, RpcError> {
        let value = self.call_value(method, params).await?;
        serde_json::from_value(value).map_err(|e| self.malformed(method, e.to_string()))
    }

    /// Call `method` and give its `result` to `parse`; a parse failure is a [`RpcError::Garbage`] answer.
    pub async fn call_parsed<T>(
        &self,
        method: &str,
        params: Value,
        parse: impl FnOnce(Value) -> Result<T, String>,
    ) -> Result<T, RpcError> {
        let value = self.call_value(method, params).await?;
        parse(value).map_err(|detail| self.malformed(method, detail))
    }

    /// Call `method` and return the raw `result` value.
    pub async fn call_value(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id});
        let resp = self.client.post(&self.request_url).json(&body).send().await.map_err(|e| self.transport(e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(RpcError::Http { endpoint: self.label.clone(), status: status.as_u16() });
        }
        let bytes = self.read_body(method, resp).await?;
        parse_envelope(&self.label, method, &bytes)
    }

    /// The body, at most [`MAX_RESPONSE_BYTES`] (see [`crate::chain::body::read_bounded`]).
    async fn read_body(&self, method: &str, resp: reqwest::Response) -> Result<Vec<u8>, RpcError> {
        crate::chain::body::read_bounded(resp).await.map_err(|e| match e {
            crate::chain::body::BodyError::TooLarge(detail) => RpcError::TooLarge {
                endpoint: self.label.clone(),
                method: method.to_string(),
                limit: MAX_RESPONSE_BYTES,
                detail,
            },
            crate::chain::body::BodyError::Transport(e) => self.transport(e),
        })
    }

    fn transport(&self, e: reqwest::Error) -> RpcError {
        if e.is_timeout() {
            RpcError::Timeout { endpoint: self.label.clone(), secs: self.timeout.as_secs() }
        } else {
            RpcError::Transport { endpoint: self.label.clone(), message: bounded_text(&e.without_url().to_string()) }
        }
    }

    /// A malformed answer of this endpoint to `method` (the detail is cut short: it may quote the answer).
    pub fn malformed(&self, method: &str, detail: String) -> RpcError {
        garbage(&self.label, method, detail)
    }
}

fn garbage(endpoint: &str, method: &str, detail: String) -> RpcError {
    RpcError::Garbage { endpoint: endpoint.to_string(), method: method.to_string(), detail: bounded_text(&detail) }
}

/// A JSON-RPC 2.0 answer body → its `result`, or the node's error (protocol.md §5.1, §5.9). No HTTP: the
/// body's size is bounded by the caller; its depth by serde_json's recursion limit (128 levels), which is
/// kept on purpose (deeper nesting is a [`RpcError::Garbage`], never a stack overflow).
pub fn parse_envelope(endpoint: &str, method: &str, bytes: &[u8]) -> Result<Value, RpcError> {
    let mut envelope: Value =
        serde_json::from_slice(bytes).map_err(|e| garbage(endpoint, method, format!("not JSON ({e})")))?;
    if let Some(err) = envelope.get("error").filter(|e| !e.is_null()) {
        return Err(remote(endpoint, method, err));
    }
    match envelope.get_mut("result") {
        Some(result) => Ok(result.take()),
        None => Err(garbage(endpoint, method, "neither result nor error".into())),
    }
}

fn remote(endpoint: &str, method: &str, err: &Value) -> RpcError {
    let code = err.get("code").and_then(Value::as_i64).unwrap_or(0);
    let name = err.pointer("/data/name").and_then(Value::as_str).map(bounded_text);
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .or_else(|| err.pointer("/data/message").and_then(Value::as_str))
        .unwrap_or("unknown error");
    // A node's message can be long (it appends the whole transaction); keep the first line, bounded.
    let message: String = message.lines().next().unwrap_or("").chars().take(MAX_ERROR_TEXT).collect();
    RpcError::Remote { endpoint: endpoint.to_string(), method: method.to_string(), code, name, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(name: Option<&str>, message: &str) -> RpcError {
        RpcError::Remote {
            endpoint: "e".into(),
            method: "m".into(),
            code: -32003,
            name: name.map(str::to_string),
            message: message.into(),
        }
    }

    #[test]
    fn redacts_credentials_and_queries() {
        assert_eq!(redact("https://api.hive.blog"), "https://api.hive.blog/");
        let r = redact("https://user:s3cret@node.example/rpc?api_key=abc");
        assert!(!r.contains("s3cret") && !r.contains("abc") && !r.contains("user"), "{r}");
        assert!(r.contains("node.example/rpc"), "{r}");
    }

    #[test]
    fn envelopes_give_the_result_or_the_error() {
        let ok = parse_envelope("e", "m", br#"{"jsonrpc":"2.0","id":1,"result":{"a":1}}"#).expect("result");
        assert_eq!(ok, json!({"a": 1}));
        let null = parse_envelope("e", "m", br#"{"jsonrpc":"2.0","id":1,"result":null,"error":null}"#);
        assert_eq!(null.expect("null result"), Value::Null);
        let err = parse_envelope(
            "e",
            "m",
            br#"{"id":1,"error":{"code":-32003,"message":"Duplicate transaction check failed"}}"#,
        )
        .unwrap_err();
        assert!(err.is_duplicate(), "{err}");
        for bad in [&b"<html>"[..], b"", b"[]", b"{}", br#"{"result""#, b"\xff\xfe"] {
            assert!(matches!(parse_envelope("e", "m", bad), Err(RpcError::Garbage { .. })), "{bad:?}");
        }
    }

    #[test]
    fn texts_from_an_answer_are_cut_short_in_errors() {
        let huge = "x".repeat(1_000_000);
        let body = json!({"error": {"code": 1, "message": huge, "data": {"name": huge}}}).to_string();
        let RpcError::Remote { name, message, .. } = parse_envelope("e", "m", body.as_bytes()).unwrap_err() else {
            panic!("a remote error")
        };
        assert!(message.chars().count() <= MAX_ERROR_TEXT);
        assert!(name.is_some_and(|n| n.chars().count() <= MAX_ERROR_TEXT + 1));
        let quoted = garbage("e", "m", format!("invalid type: string {huge:?}, expected u32"));
        assert!(quoted.to_string().len() < 2 * MAX_ERROR_TEXT, "{} bytes", quoted.to_string().len());
        assert_eq!(bounded_text("short"), "short");
        assert!(bounded_text(&"é".repeat(400)).ends_with('…'));
        let too_large = RpcError::TooLarge {
            endpoint: "e".into(),
            method: "m".into(),
            limit: MAX_RESPONSE_BYTES,
            detail: "x".into(),
        };
        assert!(too_large.to_string().contains("too large") && too_large.is_unreachable());
    }

    #[test]
    fn classifies_node_errors_by_name_then_text() {
        assert!(remote(Some("assert_exception"), "Duplicate transaction check failed").is_duplicate());
        assert!(remote(Some("tx_missing_other_auth"), "Missing Authority").is_missing_authority());
        assert!(remote(None, "missing required active authority:Missing Active Authority alice").is_missing_authority());
        assert!(remote(Some("transaction_expiration_exception"), "x").is_expiration());
        assert!(remote(None, "'key' does not match witness signing key.").is_key_mismatch());
        assert!(!remote(None, "other").is_duplicate());
        assert!(RpcError::Http { endpoint: "e".into(), status: 503 }.is_unreachable());
    }
}
