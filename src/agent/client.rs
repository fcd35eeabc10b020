//! The trap's side: build a request, sign it with the trap's key, send it to an agent, and read the
//! answer into a typed result ([`AgentClient::send`]).
//!
//! Every call is a fresh request with a fresh nonce and `expires_at = now + validity` (default
//! [`DEFAULT_VALIDITY`]), so a retry is a new request, never a replay. Errors say which agent (its URL,
//! credentials removed), what happened, and for a failed action nodeos's status and answer as the agent
//! reported them; they never hold the key. A failed action is [`ClientError::ActionFailed`] (codes
//! `nodeos_…`, `validator_…`, `identity_…`); everything else the agent refuses is [`ClientError::Refused`].

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Deserialize;
use thiserror::Error;

use super::keys::AgentSigningKey;
use super::request::{
    fresh_nonce, Action, Request, SignedRequest, KEY_HEADER, MAX_VALIDITY_MS, PATH, SIGNATURE_HEADER,
};
use chain_clock::SharedClock;

/// How long a request is valid by default: a few seconds, well inside the agent's 30 s limit.
pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(10);
/// Default timeout of one request (the agent's own call to nodeos is 5 s by default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest wait for an agent's host to accept the connection: a host that is gone (powered off, cut off
/// by a firewall that drops packets) fails after this, not after the whole request's timeout, so a
/// failover that must stand in for an unreachable primary does not lose the request timeout on each try.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read from an agent (a demote's answer carries a tower of up to 8 KiB in base64).
const MAX_ANSWER_BYTES: usize = 32 * 1024;

/// How a client talks to its agent.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Timeout of one request, connection included.
    pub timeout: Duration,
    /// `expires_at - now` of each request (1 ms to 30 s).
    pub validity: Duration,
    /// A PEM certificate to trust beside the system's roots (an agent's self-signed certificate or its CA).
    pub root_certificate_pem: Option<Vec<u8>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self { timeout: DEFAULT_TIMEOUT, validity: DEFAULT_VALIDITY, root_certificate_pem: None }
    }
}

/// What nodeos answered, as the agent reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NodeosAnswer {
    pub status: u16,
    pub answer: String,
}

/// An action the agent performed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub action: Action,
    /// For `paused`: whether the node is paused.
    pub paused: Option<bool>,
    /// For `head`: the node's local head block number.
    pub head: Option<u64>,
    /// For `identity`, `demote` and `promote`: the validator's identity (base58) after the action.
    pub identity: Option<String>,
    /// For `demote`: the standard base64 of the staked identity's tower file, when the agent found one.
    pub tower: Option<String>,
}

/// A validator switched to its junk identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demoted {
    /// The identity (base58) the validator reports now: its junk identity.
    pub identity: String,
    /// The staked identity's tower file, to hand to the promoted node; `None` when there was none.
    pub tower: Option<Vec<u8>>,
}

/// Why a request did not get its action done.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClientError {
    #[error("agent URL {0:?}: not an http(s) URL")]
    BadUrl(String),
    #[error("the agent's TLS root certificate is not a PEM certificate: {0}")]
    BadCertificate(String),
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
    #[error("request validity {0:?} is not between 1 ms and 30 s")]
    Validity(Duration),
    #[error("agent {agent}: no answer within {secs} s")]
    Timeout { agent: String, secs: u64 },
    #[error("agent {agent}: cannot reach it: {reason}")]
    Unreachable { agent: String, reason: String },
    /// The agent refused the request itself (its checks); nothing was done.
    #[error("agent {agent} refused the request (HTTP {status}, {code}): {message}")]
    Refused { agent: String, status: u16, code: String, message: String },
    /// The request was accepted but the node's action failed.
    #[error("agent {agent}: the node's {action} failed (HTTP {status}, {code}): {message}")]
    ActionFailed {
        agent: String,
        action: &'static str,
        status: u16,
        code: String,
        message: String,
        nodeos: Option<NodeosAnswer>,
    },
    /// An answer that is not the agent's JSON, or is about another node or action.
    #[error("agent {agent}: unexpected answer (HTTP {status}): {reason}")]
    BadAnswer { agent: String, status: u16, reason: String },
}

/// A client of one agent.
#[derive(Clone)]
pub struct AgentClient {
    http: reqwest::Client,
    url: reqwest::Url,
    shown: String,
    key: Arc<AgentSigningKey>,
    clock: SharedClock,
    validity: Duration,
    timeout: Duration,
}

impl std::fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentClient").field("agent", &self.shown).field("key", &self.key.public_key()).finish()
    }
}

#[derive(Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    node: Option<String>,
    #[serde(default)]
    action: Option<Action>,
    #[serde(default)]
    paused: Option<bool>,
    #[serde(default)]
    head: Option<u64>,
    #[serde(default)]
    identity: Option<String>,
    #[serde(default)]
    tower: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    nodeos: Option<NodeosAnswer>,
}

impl AgentClient {
    /// A client of the agent at `base_url` (`https://host:port`; the agent's path is appended).
    pub fn new(
        base_url: &str,
        key: Arc<AgentSigningKey>,
        clock: SharedClock,
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        let shown = crate::redact::url(base_url.trim());
        let mut url = reqwest::Url::parse(base_url.trim()).map_err(|_| ClientError::BadUrl(shown.clone()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(ClientError::BadUrl(shown));
        }
        let path = format!("{}{PATH}", url.path().trim_end_matches('/'));
        url.set_path(&path);
        if options.validity.is_zero() || options.validity > Duration::from_millis(MAX_VALIDITY_MS) {
            return Err(ClientError::Validity(options.validity));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(CONNECT_TIMEOUT))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("witness-trap/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &options.root_certificate_pem {
            let cert = reqwest::Certificate::from_pem(pem).map_err(|e| ClientError::BadCertificate(e.to_string()))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| ClientError::Build(e.without_url().to_string()))?;
        Ok(Self { http, url, shown, key, clock, validity: options.validity, timeout: options.timeout })
    }

    /// The agent's URL as errors show it.
    pub fn agent(&self) -> &str {
        &self.shown
    }

    /// Pause production on `node`.
    pub async fn pause(&self, node: &str) -> Result<Done, ClientError> {
        self.send(node, Action::Pause).await
    }

    /// Resume production on `node`.
    pub async fn resume(&self, node: &str) -> Result<Done, ClientError> {
        self.send(node, Action::Resume).await
    }

    /// Whether `node` is paused.
    pub async fn paused(&self, node: &str) -> Result<bool, ClientError> {
        let done = self.send(node, Action::Paused).await?;
        done.paused.ok_or_else(|| self.bad(200, "the answer to paused has no \"paused\" boolean"))
    }

    /// The node's local head block number.
    pub async fn head(&self, node: &str) -> Result<u64, ClientError> {
        let done = self.send(node, Action::Head).await?;
        done.head.ok_or_else(|| self.bad(200, "the answer to head has no \"head\" number"))
    }

    /// The validator's current identity (base58), on a Solana agent.
    pub async fn identity(&self, node: &str) -> Result<String, ClientError> {
        let done = self.send(node, Action::Identity).await?;
        self.identity_of(done)
    }

    /// Switch `node`'s validator to its junk identity; the staked identity's tower file comes back when
    /// the node has one.
    pub async fn demote(&self, node: &str) -> Result<Demoted, ClientError> {
        let done = self.send(node, Action::Demote).await?;
        let tower = match &done.tower {
            None => None,
            Some(text) => Some(
                STANDARD.decode(text).map_err(|_| self.bad(200, "the answer's \"tower\" is not standard base64"))?,
            ),
        };
        Ok(Demoted { identity: self.identity_of(done)?, tower })
    }

    /// Switch `node`'s validator to its staked identity; with `tower`, the agent writes it as the staked
    /// identity's tower file first and the switch requires it. The identity the validator reports now.
    pub async fn promote(&self, node: &str, tower: Option<&[u8]>) -> Result<String, ClientError> {
        let done = self.send_with(node, Action::Promote, tower.map(|t| STANDARD.encode(t))).await?;
        self.identity_of(done)
    }

    /// Sign and send one request for `action` on `node`.
    pub async fn send(&self, node: &str, action: Action) -> Result<Done, ClientError> {
        self.send_with(node, action, None).await
    }

    async fn send_with(&self, node: &str, action: Action, tower: Option<String>) -> Result<Done, ClientError> {
        let now = u64::try_from(self.clock.now().as_millis()).unwrap_or(u64::MAX);
        let validity = u64::try_from(self.validity.as_millis()).unwrap_or(MAX_VALIDITY_MS);
        let request = Request {
            action,
            node: node.to_string(),
            nonce: fresh_nonce(),
            expires_at: now.saturating_add(validity),
            tower,
        };
        self.send_signed(&SignedRequest::sign(&request, &self.key), &request).await
    }

    /// The answer's identity, which must be a base58 Ed25519 public key.
    fn identity_of(&self, done: Done) -> Result<String, ClientError> {
        let action = done.action.as_str();
        let identity =
            done.identity.ok_or_else(|| self.bad(200, &format!("the answer to {action} has no \"identity\"")))?;
        let mut key = [0u8; 32];
        match bs58::decode(&identity).onto(&mut key[..]) {
            Ok(32) => Ok(identity),
            _ => Err(self.bad(200, &format!("the answer to {action} has an \"identity\" that is not a public key"))),
        }
    }

    /// Send an already signed request (tests use it to replay one); `request` is what was signed.
    pub async fn send_signed(&self, signed: &SignedRequest, request: &Request) -> Result<Done, ClientError> {
        let sent = self
            .http
            .post(self.url.clone())
            .header(KEY_HEADER, &signed.key)
            .header(SIGNATURE_HEADER, &signed.signature)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(signed.body.clone())
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        let status = sent.status().as_u16();
        let body = read_bounded(sent).await.map_err(|e| self.transport(&e))?;
        let Some(body) = body else {
            return Err(self.bad(status, &format!("the answer is larger than {MAX_ANSWER_BYTES} bytes")));
        };
        let answer: Answer = serde_json::from_slice(&body)
            .map_err(|_| self.bad(status, &format!("not the agent's JSON: {}", super::backend::shown_answer(&body))))?;
        if answer.ok && status == 200 {
            if answer.node.as_deref() != Some(request.node.as_str()) || answer.action != Some(request.action) {
                return Err(self.bad(status, "the answer is about another node or action"));
            }
            return Ok(Done {
                action: request.action,
                paused: answer.paused,
                head: answer.head,
                identity: answer.identity,
                tower: answer.tower,
            });
        }
        let code = answer.error.unwrap_or_else(|| "unknown".into());
        let message = answer.message.unwrap_or_default();
        if answer.ok || !(400..600).contains(&status) {
            return Err(self.bad(status, &format!("ok={} with HTTP {status}", answer.ok)));
        }
        if ["nodeos_", "validator_", "identity_"].iter().any(|prefix| code.starts_with(prefix)) {
            return Err(ClientError::ActionFailed {
                agent: self.shown.clone(),
                action: request.action.as_str(),
                status,
                code,
                message,
                nodeos: answer.nodeos,
            });
        }
        Err(ClientError::Refused { agent: self.shown.clone(), status, code, message })
    }

    fn transport(&self, e: &reqwest::Error) -> ClientError {
        // A connection never made (refused, or not accepted within CONNECT_TIMEOUT) is unreachable; a
        // timeout after it was made is a hung request.
        if e.is_timeout() && !e.is_connect() {
            return ClientError::Timeout { agent: self.shown.clone(), secs: self.timeout.as_secs() };
        }
        // The chain of sources says why (refused, TLS, DNS); without the URL, which is shown redacted.
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            reason.push_str(": ");
            reason.push_str(&s.to_string());
            source = s.source();
        }
        ClientError::Unreachable { agent: self.shown.clone(), reason: reason.replace(self.url.as_str(), &self.shown) }
    }

    fn bad(&self, status: u16, reason: &str) -> ClientError {
        ClientError::BadAnswer { agent: self.shown.clone(), status, reason: reason.to_string() }
    }
}

/// The body, or `None` when it is larger than [`MAX_ANSWER_BYTES`].
async fn read_bounded(mut response: reqwest::Response) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::backend::{Backend, BackendError, BoxFuture, Performed};
    use crate::agent::request::Verifier;
    use crate::agent::server::{serve, Agent};
    use std::sync::Mutex;
    use tokio_util::sync::CancellationToken;

    /// A validator's agent without a validator: fixed answers, and the towers promotes carried.
    struct Stub {
        identity: String,
        demote_tower: Option<String>,
        promoted_with: Mutex<Vec<Option<String>>>,
    }

    impl Backend for Stub {
        fn describe(&self) -> String {
            "stub".into()
        }

        fn perform<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<Performed, BackendError>> {
            let identity = Some(self.identity.clone());
            let result = match request.action {
                Action::Identity => Ok(Performed { identity, ..Performed::default() }),
                Action::Demote => Ok(Performed { identity, tower: self.demote_tower.clone(), ..Performed::default() }),
                Action::Promote => {
                    self.promoted_with.lock().unwrap().push(request.tower.clone());
                    Ok(Performed { identity, ..Performed::default() })
                }
                Action::Head => Err(BackendError::IdentityMismatch {
                    socket: "/l/admin.rpc".into(),
                    action: "promote",
                    expected: "a".into(),
                    reported: "b".into(),
                }),
                Action::Paused => Err(BackendError::ValidatorTimeout {
                    socket: "/l/admin.rpc".into(),
                    method: "contactInfo",
                    secs: 5,
                }),
                Action::Pause | Action::Resume => {
                    Err(BackendError::Unsupported { action: request.action.as_str(), backend: "stub" })
                }
            };
            Box::pin(std::future::ready(result))
        }
    }

    async fn start(stub: Arc<Stub>, shutdown: &CancellationToken) -> AgentClient {
        let key = AgentSigningKey::generate();
        let clock: SharedClock = Arc::new(chain_clock::SystemClock);
        let agent = Agent::new(Verifier::new(vec![key.public_key()], "v1".into()), stub, clock.clone());
        let (addr, _) = serve("127.0.0.1:0".parse().unwrap(), None, Arc::new(agent), shutdown.clone()).await.unwrap();
        AgentClient::new(&format!("http://{addr}"), Arc::new(key), clock, ClientOptions::default()).unwrap()
    }

    #[tokio::test]
    async fn identity_demote_and_promote_round_trip() {
        let pubkey = bs58::encode([7u8; 32]).into_string();
        let stub = Arc::new(Stub {
            identity: pubkey.clone(),
            demote_tower: Some(STANDARD.encode(b"tower bytes")),
            promoted_with: Mutex::default(),
        });
        let shutdown = CancellationToken::new();
        let c = start(stub.clone(), &shutdown).await;
        assert_eq!(c.identity("v1").await.unwrap(), pubkey);
        assert_eq!(
            c.demote("v1").await.unwrap(),
            Demoted { identity: pubkey.clone(), tower: Some(b"tower bytes".to_vec()) }
        );
        let big = vec![3u8; crate::agent::request::MAX_TOWER_BYTES];
        assert_eq!(c.promote("v1", Some(&big)).await.unwrap(), pubkey);
        assert_eq!(c.promote("v1", None).await.unwrap(), pubkey);
        assert_eq!(*stub.promoted_with.lock().unwrap(), vec![Some(STANDARD.encode(&big)), None]);

        // Failed actions and refusals are told apart by their code.
        match c.head("v1").await {
            Err(ClientError::ActionFailed { code, status: 502, .. }) => assert_eq!(code, "identity_mismatch"),
            other => panic!("{other:?}"),
        }
        match c.paused("v1").await {
            Err(ClientError::ActionFailed { code, status: 504, .. }) => assert_eq!(code, "validator_timeout"),
            other => panic!("{other:?}"),
        }
        match c.pause("v1").await {
            Err(ClientError::Refused { code, status: 400, .. }) => assert_eq!(code, "unsupported_action"),
            other => panic!("{other:?}"),
        }
        shutdown.cancel();
    }

    #[tokio::test]
    async fn a_bad_tower_or_identity_in_the_answer_is_a_bad_answer() {
        let shutdown = CancellationToken::new();
        let stub = Stub {
            identity: bs58::encode([7u8; 32]).into_string(),
            demote_tower: Some("not base64!".into()),
            promoted_with: Mutex::default(),
        };
        let c = start(Arc::new(stub), &shutdown).await;
        assert!(matches!(c.demote("v1").await, Err(ClientError::BadAnswer { .. })));
        let stub = Stub { identity: "0OIl".into(), demote_tower: None, promoted_with: Mutex::default() };
        let c = start(Arc::new(stub), &shutdown).await;
        assert!(matches!(c.identity("v1").await, Err(ClientError::BadAnswer { .. })));
        shutdown.cancel();
    }
}
