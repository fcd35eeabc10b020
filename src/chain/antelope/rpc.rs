//! One nodeos endpoint: `POST /v1/chain/<name>` with a JSON body and a timeout, every way it can fail as a
//! typed error (antelope-protocol.md §6).
//!
//! nodeos answers errors with an HTTP status and the body `{"code", "message", "error": {"code", "name",
//! "what", "details": [{"message", …}]}}`; we keep the fc code, the exception name and the first detail,
//! and classify the ones the trap acts on by name first and detail text second (§6 "Error shape"). Input
//! is bounded as for every endpoint (`crate::chain::body`): a body above 4 MiB is refused unread, JSON
//! deeper than serde_json's limit is an error, texts from the answer are cut short.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::chain::body::{bounded_text, read_bounded, BodyError, MAX_ERROR_TEXT, MAX_RESPONSE_BYTES};
use crate::redact::url as redact;

/// Why a call to one endpoint failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NodeosError {
    #[error("{endpoint}: no answer within {secs} s")]
    Timeout { endpoint: String, secs: u64 },
    #[error("{endpoint}: cannot connect: {message}")]
    Transport { endpoint: String, message: String },
    /// An HTTP error without nodeos's error object (a proxy's page, a 503).
    #[error("{endpoint}: HTTP {status}")]
    Http { endpoint: String, status: u16 },
    #[error("{endpoint}: malformed answer to {method}: {detail}")]
    Garbage { endpoint: String, method: String, detail: String },
    #[error("{endpoint}: answer to {method} too large: {detail} (limit {limit} bytes)")]
    TooLarge { endpoint: String, method: String, limit: usize, detail: String },
    /// nodeos's own error object.
    #[error("{endpoint}: {method} failed: {name}: {message}")]
    Remote { endpoint: String, method: String, status: u16, code: i64, name: String, message: String },
}

impl NodeosError {
    fn remote(&self) -> Option<(&str, &str, i64)> {
        match self {
            NodeosError::Remote { name, message, code, .. } => Some((name.as_str(), message.as_str(), *code)),
            _ => None,
        }
    }

    /// `tx_duplicate` (3040008): the same transaction was already accepted.
    pub fn is_duplicate(&self) -> bool {
        self.remote().is_some_and(|(n, _, c)| n == "tx_duplicate" || c == 3_040_008)
    }

    /// The expiration is past or too far (3040005, 3040006).
    pub fn is_expiration(&self) -> bool {
        self.remote().is_some_and(|(n, _, c)| {
            matches!(n, "expired_tx_exception" | "tx_exp_too_far_exception") || matches!(c, 3_040_005 | 3_040_006)
        })
    }

    /// The TaPoS block is unknown to this node (3040007): a stale or forked node, or a wrong reference.
    pub fn is_bad_tapos(&self) -> bool {
        self.remote().is_some_and(|(n, _, c)| n == "invalid_ref_block_exception" || c == 3_040_007)
    }

    /// The signatures do not satisfy the authorization (3090003..3090005): a wrong key or chain id, a
    /// permission not linked to the action.
    pub fn is_authorization(&self) -> bool {
        self.remote().is_some_and(|(n, _, c)| {
            matches!(n, "unsatisfied_authorization" | "missing_auth_exception" | "irrelevant_auth_exception")
                || (3_090_003..=3_090_005).contains(&c)
        })
    }

    /// The account has no CPU or NET left for the transaction.
    pub fn is_resources(&self) -> bool {
        self.remote().is_some_and(|(n, _, _)| n.starts_with("tx_cpu_usage") || n.starts_with("tx_net_usage"))
    }

    /// The endpoint does not offer this API (an older nodeos without `send_transaction2`).
    pub fn is_missing_api(&self) -> bool {
        matches!(self, NodeosError::Http { status: 404, .. }) || matches!(self, NodeosError::Remote { status: 404, .. })
    }

    /// The block asked for is not known (yet) to this node.
    pub fn is_unknown_block(&self) -> bool {
        self.remote().is_some_and(|(n, m, _)| n == "unknown_block_exception" || m.contains("Unknown Block"))
            || matches!(self, NodeosError::Remote { status: 400, message, .. } if message.contains("Unknown Block"))
    }

    /// The endpoint could not be used at all (as opposed to answering with a chain error).
    pub fn is_unreachable(&self) -> bool {
        !matches!(self, NodeosError::Remote { .. })
    }
}

/// One nodeos endpoint.
#[derive(Debug)]
pub struct Nodeos {
    /// Used for requests only; everything shown uses `label`.
    base: reqwest::Url,
    label: String,
    client: reqwest::Client,
    timeout: Duration,
    calls: AtomicU64,
}

impl Nodeos {
    /// An endpoint with a per-request timeout; `url` is its base (`https://eos.example` or with a path).
    pub fn new(url: &str, timeout: Duration) -> Result<Self, NodeosError> {
        let transport = |message: String| NodeosError::Transport { endpoint: redact(url), message };
        let mut base = reqwest::Url::parse(url).map_err(|e| transport(e.to_string()))?;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| transport(e.without_url().to_string()))?;
        Ok(Self { base, label: redact(url), client, timeout, calls: AtomicU64::new(0) })
    }

    /// The endpoint as shown in logs and errors (no credentials, no query string).
    pub fn url(&self) -> &str {
        &self.label
    }

    /// Calls sent so far (the benchmark's cost figure).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// `POST /v1/chain/<method>` with `body`; the answer's JSON on a 2xx.
    pub async fn call(&self, method: &str, body: &Value) -> Result<Value, NodeosError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let url = self.base.join(&format!("v1/chain/{method}")).map_err(|e| self.malformed(method, e.to_string()))?;
        let resp = self.client.post(url).json(body).send().await.map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        let bytes = read_bounded(resp).await.map_err(|e| match e {
            BodyError::TooLarge(detail) => NodeosError::TooLarge {
                endpoint: self.label.clone(),
                method: method.to_string(),
                limit: MAX_RESPONSE_BYTES,
                detail,
            },
            BodyError::Transport(e) => self.transport(e),
        })?;
        parse_answer(&self.label, method, status, &bytes)
    }

    fn transport(&self, e: reqwest::Error) -> NodeosError {
        if e.is_timeout() {
            NodeosError::Timeout { endpoint: self.label.clone(), secs: self.timeout.as_secs() }
        } else {
            NodeosError::Transport { endpoint: self.label.clone(), message: bounded_text(&e.without_url().to_string()) }
        }
    }

    /// A malformed answer of this endpoint to `method` (the detail is cut short: it may quote the answer).
    pub fn malformed(&self, method: &str, detail: String) -> NodeosError {
        garbage(&self.label, method, detail)
    }
}

fn garbage(endpoint: &str, method: &str, detail: String) -> NodeosError {
    NodeosError::Garbage { endpoint: endpoint.to_string(), method: method.to_string(), detail: bounded_text(&detail) }
}

/// An answer's status and body → its JSON, or nodeos's error. No HTTP: the caller bounds the size.
pub fn parse_answer(endpoint: &str, method: &str, status: u16, bytes: &[u8]) -> Result<Value, NodeosError> {
    let parsed: Result<Value, _> = serde_json::from_slice(bytes);
    if (200..300).contains(&status) {
        return parsed.map_err(|e| garbage(endpoint, method, format!("not JSON ({e})")));
    }
    let Ok(body) = parsed else {
        return Err(NodeosError::Http { endpoint: endpoint.to_string(), status });
    };
    let Some(err) = body.get("error").filter(|e| e.is_object()) else {
        return Err(NodeosError::Http { endpoint: endpoint.to_string(), status });
    };
    let name = err.get("name").and_then(Value::as_str).unwrap_or("error");
    let code = err.get("code").and_then(Value::as_i64).unwrap_or(0);
    // The first detail carries the contract's `check` text or the reason; `what` is generic.
    let detail = err
        .pointer("/details/0/message")
        .and_then(Value::as_str)
        .or_else(|| err.get("what").and_then(Value::as_str))
        .or_else(|| body.get("message").and_then(Value::as_str))
        .unwrap_or("unknown error");
    let message: String = detail.lines().next().unwrap_or("").chars().take(MAX_ERROR_TEXT).collect();
    Err(NodeosError::Remote {
        endpoint: endpoint.to_string(),
        method: method.to_string(),
        status,
        code,
        name: bounded_text(name),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nodeos_error(status: u16, code: i64, name: &str, detail: &str) -> NodeosError {
        let body = json!({"code": status, "message": "Internal Service Error",
            "error": {"code": code, "name": name, "what": "generic", "details": [{"message": detail,
            "file": "f.cpp", "line_number": 1, "method": "m"}]}});
        parse_answer("e", "send_transaction2", status, body.to_string().as_bytes()).unwrap_err()
    }

    #[test]
    fn nodeos_errors_are_classified_by_name_and_code() {
        assert!(nodeos_error(409, 3_040_008, "tx_duplicate", "duplicate transaction 66…").is_duplicate());
        assert!(nodeos_error(500, 3_040_005, "expired_tx_exception", "expired").is_expiration());
        assert!(nodeos_error(500, 3_040_007, "invalid_ref_block_exception", "x").is_bad_tapos());
        assert!(nodeos_error(401, 3_090_003, "unsatisfied_authorization", "x").is_authorization());
        assert!(nodeos_error(500, 3_080_004, "tx_cpu_usage_exceeded", "x").is_resources());
        assert!(nodeos_error(400, 3_100_002, "unknown_block_exception", "Unknown Block").is_unknown_block());
        let e = nodeos_error(
            500,
            3_050_003,
            "eosio_assert_message_exception",
            "assertion failure with message: url too long",
        );
        assert!(e.to_string().contains("url too long"), "{e}");
        assert!(!e.is_unreachable() && !e.is_duplicate());
    }

    #[test]
    fn answers_that_are_not_nodeos_errors_are_http_or_garbage() {
        assert!(matches!(
            parse_answer("e", "m", 503, b"<html>busy</html>"),
            Err(NodeosError::Http { status: 503, .. })
        ));
        assert!(matches!(parse_answer("e", "m", 200, b"<html>"), Err(NodeosError::Garbage { .. })));
        assert!(matches!(parse_answer("e", "m", 404, b"{}"), Err(NodeosError::Http { status: 404, .. })));
        assert_eq!(parse_answer("e", "m", 202, br#"{"a":1}"#).expect("json"), json!({"a": 1}));
        assert!(NodeosError::Http { endpoint: "e".into(), status: 404 }.is_missing_api());
    }

    #[test]
    fn texts_from_an_answer_are_cut_short() {
        let huge = "x".repeat(100_000);
        let NodeosError::Remote { name, message, .. } = nodeos_error(500, 1, &huge, &huge) else { panic!("remote") };
        assert!(message.chars().count() <= MAX_ERROR_TEXT && name.chars().count() <= MAX_ERROR_TEXT + 1);
    }
}
