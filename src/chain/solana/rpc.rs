//! One Solana cluster JSON-RPC endpoint: `POST /` JSON-RPC 2.0 with a timeout, the handful of methods the
//! trap reads (solana.md §2.2), every way a call can fail as a typed error.
//!
//! Input is bounded as for every endpoint (`crate::chain::body`): a body above 4 MiB is refused unread,
//! texts from the answer are cut short. `getHealth`'s `-32005` ("Node is behind by N slots", "Node is
//! unhealthy") is an answer, not a failure: it is how an endpoint says its data must not be used.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::chain::body::{bounded_text, read_bounded, BodyError, MAX_RESPONSE_BYTES};
use crate::redact::url as redact;

/// `getHealth`'s error code when the node is behind or unhealthy (Agave's `custom_error.rs`).
pub const NODE_UNHEALTHY: i64 = -32005;

/// Why a call to one endpoint failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    #[error("{endpoint}: no answer within {secs} s")]
    Timeout { endpoint: String, secs: u64 },
    #[error("{endpoint}: cannot connect: {message}")]
    Transport { endpoint: String, message: String },
    /// An HTTP error without a JSON-RPC answer (a proxy's page, a 503).
    #[error("{endpoint}: HTTP {status}")]
    Http { endpoint: String, status: u16 },
    #[error("{endpoint}: malformed answer to {method}: {detail}")]
    Garbage { endpoint: String, method: &'static str, detail: String },
    #[error("{endpoint}: answer to {method} too large: {detail}")]
    TooLarge { endpoint: String, method: &'static str, detail: String },
    /// The JSON-RPC error object.
    #[error("{endpoint}: {method} failed ({code}): {message}")]
    Remote { endpoint: String, method: &'static str, code: i64, message: String },
}

/// What `getHealth` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Ok,
    /// `-32005` with `numSlotsBehind` when the node knows it.
    Behind(Option<u64>),
    /// `-32005` without a distance ("Node is unhealthy").
    Unhealthy(String),
}

/// The guarded vote account as one endpoint lists it (`getVoteAccounts`, camelCase fields).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoteAccount {
    pub vote_pubkey: String,
    pub node_pubkey: String,
    pub activated_stake: u64,
    pub last_vote: u64,
    #[serde(default)]
    pub root_slot: u64,
    /// Filled in from the list it came in, not from the entry.
    #[serde(skip)]
    pub delinquent: bool,
}

/// `[leaderSlots, blocksProduced]` of one identity in a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Production {
    pub leader_slots: u64,
    pub produced: u64,
    pub first_slot: u64,
    pub last_slot: u64,
}

impl Production {
    pub fn skipped(&self) -> u64 {
        self.leader_slots.saturating_sub(self.produced)
    }
}

/// One endpoint.
#[derive(Debug)]
pub struct SolanaRpc {
    url: reqwest::Url,
    label: String,
    client: reqwest::Client,
    timeout: Duration,
    calls: AtomicU64,
    next_id: AtomicU64,
}

impl SolanaRpc {
    pub fn new(url: &str, timeout: Duration) -> Result<Self, RpcError> {
        let transport = |message: String| RpcError::Transport { endpoint: redact(url), message };
        let parsed = reqwest::Url::parse(url).map_err(|e| transport(e.to_string()))?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| transport(e.without_url().to_string()))?;
        Ok(Self {
            url: parsed,
            label: redact(url),
            client,
            timeout,
            calls: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
        })
    }

    /// The URL without credentials.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// One JSON-RPC call: the `result`, or why there is none.
    pub async fn call(&self, method: &'static str, params: Value) -> Result<Value, RpcError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let endpoint = || self.label.clone();
        let resp = self.client.post(self.url.clone()).json(&body).send().await.map_err(|e| self.transport(&e))?;
        let status = resp.status().as_u16();
        let bytes = match read_bounded(resp).await {
            Ok(b) => b,
            Err(BodyError::TooLarge(detail)) => {
                return Err(RpcError::TooLarge {
                    endpoint: endpoint(),
                    method,
                    detail: format!("{detail} (limit {MAX_RESPONSE_BYTES} bytes)"),
                })
            }
            Err(BodyError::Transport(e)) => return Err(self.transport(&e)),
        };
        let Ok(answer) = serde_json::from_slice::<Value>(&bytes) else {
            if !(200..300).contains(&status) {
                return Err(RpcError::Http { endpoint: endpoint(), status });
            }
            let detail = bounded_text(&String::from_utf8_lossy(&bytes));
            return Err(RpcError::Garbage { endpoint: endpoint(), method, detail: format!("not JSON: {detail}") });
        };
        if let Some(error) = answer.get("error").filter(|e| !e.is_null()) {
            let code = error["code"].as_i64().unwrap_or(0);
            let mut message = bounded_text(error["message"].as_str().unwrap_or(""));
            if let Some(behind) = error["data"]["numSlotsBehind"].as_u64() {
                message = format!("{message} [numSlotsBehind {behind}]");
            }
            return Err(RpcError::Remote { endpoint: endpoint(), method, code, message });
        }
        if answer.get("id").and_then(Value::as_u64) != Some(id) {
            return Err(RpcError::Garbage {
                endpoint: endpoint(),
                method,
                detail: "the answer's id is not ours".into(),
            });
        }
        match answer.get("result") {
            Some(result) => Ok(result.clone()),
            None if !(200..300).contains(&status) => Err(RpcError::Http { endpoint: endpoint(), status }),
            None => Err(RpcError::Garbage { endpoint: endpoint(), method, detail: "no result and no error".into() }),
        }
    }

    fn transport(&self, e: &reqwest::Error) -> RpcError {
        if e.is_timeout() {
            return RpcError::Timeout { endpoint: self.label.clone(), secs: self.timeout.as_secs() };
        }
        RpcError::Transport { endpoint: self.label.clone(), message: bounded_text(&without_url(e)) }
    }

    fn garbage(&self, method: &'static str, detail: impl Into<String>) -> RpcError {
        RpcError::Garbage { endpoint: self.label.clone(), method, detail: detail.into() }
    }

    pub async fn genesis_hash(&self) -> Result<String, RpcError> {
        let v = self.call("getGenesisHash", json!([])).await?;
        v.as_str().map(str::to_string).ok_or_else(|| self.garbage("getGenesisHash", "not a string"))
    }

    /// The slot at `processed` commitment: the endpoint's newest.
    pub async fn slot(&self) -> Result<u64, RpcError> {
        let v = self.call("getSlot", json!([{ "commitment": "processed" }])).await?;
        v.as_u64().ok_or_else(|| self.garbage("getSlot", "not a slot number"))
    }

    pub async fn health(&self) -> Result<Health, RpcError> {
        match self.call("getHealth", json!([])).await {
            Ok(v) if v == "ok" => Ok(Health::Ok),
            Ok(v) => Err(self.garbage("getHealth", format!("answered {}", bounded_text(&v.to_string())))),
            Err(RpcError::Remote { code: NODE_UNHEALTHY, message, .. }) => {
                let behind = message
                    .rsplit_once("numSlotsBehind ")
                    .and_then(|(_, n)| n.trim_end_matches(']').parse().ok())
                    .or_else(|| {
                        message.strip_prefix("Node is behind by ").and_then(|r| r.split(' ').next()?.parse().ok())
                    });
                if behind.is_some() || message.contains("behind") {
                    Ok(Health::Behind(behind))
                } else {
                    Ok(Health::Unhealthy(message))
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The vote account `vote`, current or delinquent (unstaked delinquents kept), or `None` if the
    /// endpoint does not list it.
    pub async fn vote_account(&self, vote: &str) -> Result<Option<VoteAccount>, RpcError> {
        let params = json!([{ "votePubkey": vote, "commitment": "processed", "keepUnstakedDelinquents": true }]);
        let v = self.call("getVoteAccounts", params).await?;
        let mut found = None;
        for (list, delinquent) in [("current", false), ("delinquent", true)] {
            let Some(entries) = v.get(list).and_then(Value::as_array) else {
                return Err(self.garbage("getVoteAccounts", format!("no {list:?} list")));
            };
            for entry in entries {
                let mut account: VoteAccount = serde_json::from_value(entry.clone())
                    .map_err(|e| self.garbage("getVoteAccounts", bounded_text(&e.to_string())))?;
                if account.vote_pubkey == vote {
                    account.delinquent = delinquent;
                    found = Some(account);
                }
            }
        }
        Ok(found)
    }

    /// Lamports of `pubkey`.
    pub async fn balance(&self, pubkey: &str) -> Result<u64, RpcError> {
        let v = self.call("getBalance", json!([pubkey, { "commitment": "processed" }])).await?;
        v["value"].as_u64().ok_or_else(|| self.garbage("getBalance", "no lamports value"))
    }

    /// Leader slots and blocks of `identity` in the current epoch so far.
    pub async fn production(&self, identity: &str) -> Result<Production, RpcError> {
        let v = self.call("getBlockProduction", json!([{ "identity": identity }])).await?;
        let value = &v["value"];
        let range = &value["range"];
        let (Some(first_slot), Some(last_slot)) = (range["firstSlot"].as_u64(), range["lastSlot"].as_u64()) else {
            return Err(self.garbage("getBlockProduction", "no range"));
        };
        let (leader_slots, produced) = match value["byIdentity"].get(identity) {
            None => (0, 0),
            Some(pair) => match (pair[0].as_u64(), pair[1].as_u64()) {
                (Some(l), Some(p)) if p <= l => (l, p),
                _ => return Err(self.garbage("getBlockProduction", "byIdentity is not [leaderSlots, produced]")),
            },
        };
        Ok(Production { leader_slots, produced, first_slot, last_slot })
    }
}

/// A transport error's text without the URL (which may carry credentials), with its causes.
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), &redact(url.as_str()));
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
