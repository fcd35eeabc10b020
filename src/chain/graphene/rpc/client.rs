//! One JSON-RPC endpoint: POST with a timeout, and every way it can fail as a typed error.
//!
//! Errors come back as HTTP 200 with an `error` member (protocol.md §5.9); we keep `code`, `data.name` and
//! the message, and classify the ones the trap acts on by name first and message text second, because Hive
//! and Steem use different codes for the same failure (§0 item 20).

pub use crate::redact::url as redact;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

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
        serde_json::from_value(value).map_err(|e| self.garbage(method, e.to_string()))
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
        let bytes = resp.bytes().await.map_err(|e| self.transport(e))?;
        let mut envelope: Value =
            serde_json::from_slice(&bytes).map_err(|e| self.garbage(method, format!("not JSON ({e})")))?;
        if let Some(err) = envelope.get("error").filter(|e| !e.is_null()) {
            return Err(self.remote(method, err));
        }
        match envelope.get_mut("result") {
            Some(result) => Ok(result.take()),
            None => Err(self.garbage(method, "neither result nor error".into())),
        }
    }

    fn transport(&self, e: reqwest::Error) -> RpcError {
        if e.is_timeout() {
            RpcError::Timeout { endpoint: self.label.clone(), secs: self.timeout.as_secs() }
        } else {
            RpcError::Transport { endpoint: self.label.clone(), message: e.without_url().to_string() }
        }
    }

    fn garbage(&self, method: &str, detail: String) -> RpcError {
        RpcError::Garbage { endpoint: self.label.clone(), method: method.to_string(), detail }
    }

    fn remote(&self, method: &str, err: &Value) -> RpcError {
        let code = err.get("code").and_then(Value::as_i64).unwrap_or(0);
        let name = err.pointer("/data/name").and_then(Value::as_str).map(str::to_string);
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .or_else(|| err.pointer("/data/message").and_then(Value::as_str))
            .unwrap_or("unknown error");
        // A node's message can be long (it appends the whole transaction); keep the first line, bounded.
        let message: String = message.lines().next().unwrap_or("").chars().take(300).collect();
        RpcError::Remote { endpoint: self.label.clone(), method: method.to_string(), code, name, message }
    }
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
