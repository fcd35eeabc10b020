//! What the agent does on its host: the [`Backend`] trait (one local action per request), its errors, and
//! the Antelope backend, nodeos's `producer_api` (`AGENT_ACTION=antelope-producer-api`). The Solana
//! backend is [`super::solana_admin`].
//!
//! `pause` is `POST /v1/producer/pause`, `resume` is `POST /v1/producer/resume`; nodeos answers HTTP 201
//! `{"result":"ok"}` (antelope-chain.md §1.2). `paused` is `POST /v1/producer/paused`, answered `true` or
//! `false`. A 2xx status with exactly that body is success (200 is accepted beside nodeos's 201); anything
//! else, or no answer within the timeout, is a [`BackendError`] that the agent reports back to the trap
//! with nodeos's status and the first [`ANSWER_SHOWN_BYTES`] bytes of its answer. The endpoint is
//! `http://host:port[/prefix]` or a Unix socket (`unix:/path` or `/path`), as nodeos's
//! `--http-category-address producer_rw,…` allows; no HTTPS: this API belongs on loopback or a socket.
//! `identity`, `demote` and `promote` are Solana's: this backend refuses them ([`BackendError::Unsupported`]).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use hyper::{Method, Request as HttpRequest};
use hyper_util::rt::TokioIo;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};

use super::request::{Action, Request};

/// A boxed future, so backends can sit behind `dyn Backend`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How much of a failed answer is reported back.
pub const ANSWER_SHOWN_BYTES: usize = 512;
/// How much of an answer is read at all.
const ANSWER_READ_LIMIT: usize = 64 * 1024;
/// Default timeout of one call to nodeos.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default `NODEOS_PRODUCER_API`.
pub const DEFAULT_PRODUCER_API: &str = "http://127.0.0.1:8888";

/// The result of an action that worked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Performed {
    /// For `paused`: whether the node is paused; `None` for `pause` and `resume`.
    pub paused: Option<bool>,
    /// For `head`: the node's local head block number.
    pub head: Option<u64>,
    /// For `identity`, `demote` and `promote`: the validator's identity (base58) after the action.
    pub identity: Option<String>,
    /// For `demote`: the standard base64 of the staked identity's tower file, when it exists.
    pub tower: Option<String>,
}

/// A local action that did not work. Holds no secret: endpoints are local URLs or socket paths,
/// identities are public keys.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BackendError {
    #[error("cannot reach nodeos at {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    #[error("nodeos at {endpoint} did not answer {action} within {secs} s")]
    Timeout { endpoint: String, action: &'static str, secs: u64 },
    #[error("nodeos at {endpoint} answered {action} with HTTP {status}: {answer}")]
    Answer { endpoint: String, action: &'static str, status: u16, answer: String },
    /// The action is not one this backend performs; nothing was done.
    #[error("{action} is not an action of {backend}")]
    Unsupported { action: &'static str, backend: &'static str },
    #[error("cannot reach the validator's admin socket {socket}: {reason}")]
    ValidatorUnreachable { socket: String, reason: String },
    #[error("the validator's admin socket {socket} did not answer {method} within {secs} s")]
    ValidatorTimeout { socket: String, method: &'static str, secs: u64 },
    /// A JSON-RPC error, or an answer that is not JSON-RPC (`code` is `None`).
    #[error("the validator's admin socket {socket} refused {method}{}: {message}", code.map(|c| format!(" (JSON-RPC error {c})")).unwrap_or_default())]
    ValidatorRefused { socket: String, method: &'static str, code: Option<i64>, message: String },
    #[error("after {action}, the validator at {socket} reports identity {reported}, not {expected}")]
    IdentityMismatch { socket: String, action: &'static str, expected: String, reported: String },
    /// The tower file the promote carries could not be written; the identity was not switched.
    #[error("cannot write the tower file {path}: {reason}")]
    TowerUnwritable { path: String, reason: String },
}

impl BackendError {
    /// The machine-readable code of the agent's JSON error.
    pub fn code(&self) -> &'static str {
        match self {
            BackendError::Unreachable { .. } => "nodeos_unreachable",
            BackendError::Timeout { .. } => "nodeos_timeout",
            BackendError::Answer { .. } => "nodeos_refused",
            BackendError::Unsupported { .. } => "unsupported_action",
            BackendError::ValidatorUnreachable { .. } => "validator_unreachable",
            BackendError::ValidatorTimeout { .. } => "validator_timeout",
            BackendError::ValidatorRefused { .. } => "validator_refused",
            BackendError::IdentityMismatch { .. } => "identity_mismatch",
            BackendError::TowerUnwritable { .. } => "validator_tower_unwritable",
        }
    }

    /// The HTTP status of the agent's answer: 400 for an action the backend does not perform, 504 for a
    /// timeout, 500 for a local file, 502 for what the node answered or failed to.
    pub fn status(&self) -> u16 {
        match self {
            BackendError::Unsupported { .. } => 400,
            BackendError::Timeout { .. } | BackendError::ValidatorTimeout { .. } => 504,
            BackendError::TowerUnwritable { .. } => 500,
            BackendError::Unreachable { .. }
            | BackendError::Answer { .. }
            | BackendError::ValidatorUnreachable { .. }
            | BackendError::ValidatorRefused { .. }
            | BackendError::IdentityMismatch { .. } => 502,
        }
    }
}

/// One local action per request; the server calls it for requests that passed every check, one at a time.
pub trait Backend: Send + Sync + 'static {
    /// What is acted on, for the log (`nodeos producer_api at http://127.0.0.1:8888`).
    fn describe(&self) -> String;
    /// Perform the request's action (with its tower, for a promote).
    fn perform<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<Performed, BackendError>>;
}

/// Where nodeos's `producer_api` listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProducerApi {
    /// `http://host:port[/prefix]`.
    Tcp { host: String, port: u16, host_header: String, prefix: String, shown: String },
    /// A Unix socket.
    Unix { path: PathBuf },
}

impl ProducerApi {
    /// Parse `NODEOS_PRODUCER_API`: `http://host[:port][/prefix]`, `unix:/path` or `/path`. The error says
    /// what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some(path) = text.strip_prefix("unix:").or(text.starts_with('/').then_some(text)) {
            if !path.starts_with('/') {
                return Err("a Unix socket must be an absolute path (unix:/path/to/socket)".into());
            }
            return Ok(ProducerApi::Unix { path: PathBuf::from(path) });
        }
        let url = reqwest::Url::parse(text).map_err(|e| format!("is neither an http:// URL nor a socket path: {e}"))?;
        if url.scheme() != "http" {
            return Err(format!(
                "scheme {:?}: only http:// (loopback) or a Unix socket; producer_api belongs on the host only",
                url.scheme()
            ));
        }
        if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
            return Err("must not carry credentials, a query or a fragment".into());
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err("has no host".into()),
        };
        let port = url.port_or_known_default().unwrap_or(80);
        let host_header = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or(&host)),
            None => url.host_str().unwrap_or(&host).to_string(),
        };
        let prefix = url.path().trim_end_matches('/').to_string();
        Ok(ProducerApi::Tcp { host, port, host_header, prefix, shown: url.as_str().trim_end_matches('/').to_string() })
    }

    /// The endpoint as the log and errors show it.
    pub fn shown(&self) -> String {
        match self {
            ProducerApi::Tcp { shown, .. } => shown.clone(),
            ProducerApi::Unix { path } => format!("unix:{}", path.display()),
        }
    }
}

/// nodeos's `producer_api`.
#[derive(Debug, Clone)]
pub struct AntelopeProducerApi {
    endpoint: ProducerApi,
    timeout: Duration,
}

impl AntelopeProducerApi {
    pub fn new(endpoint: ProducerApi, timeout: Duration) -> Self {
        Self { endpoint, timeout }
    }

    async fn call(&self, action: Action) -> Result<Performed, BackendError> {
        let endpoint = self.endpoint.shown();
        let name = action.as_str();
        let exchange = async {
            let (status, body) = match &self.endpoint {
                ProducerApi::Tcp { host, port, host_header, prefix, .. } => {
                    let stream = tokio::net::TcpStream::connect((host.as_str(), *port))
                        .await
                        .map_err(|e| unreachable(&endpoint, e))?;
                    exchange(stream, host_header, &format!("{prefix}{}", path_of(action)), &endpoint).await?
                }
                #[cfg(unix)]
                ProducerApi::Unix { path } => {
                    let stream = tokio::net::UnixStream::connect(path).await.map_err(|e| unreachable(&endpoint, e))?;
                    exchange(stream, "localhost", &path_of(action), &endpoint).await?
                }
                #[cfg(not(unix))]
                ProducerApi::Unix { .. } => {
                    return Err(BackendError::Unreachable {
                        endpoint: endpoint.clone(),
                        reason: "Unix sockets are not supported on this platform".into(),
                    })
                }
            };
            interpret(action, status, &body).ok_or_else(|| BackendError::Answer {
                endpoint: endpoint.clone(),
                action: name,
                status,
                answer: shown_answer(&body),
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(BackendError::Timeout { endpoint, action: name, secs: self.timeout.as_secs() }),
        }
    }
}

impl Backend for AntelopeProducerApi {
    fn describe(&self) -> String {
        format!("nodeos producer_api at {}", self.endpoint.shown())
    }

    fn perform<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<Performed, BackendError>> {
        let action = request.action;
        match action {
            Action::Pause | Action::Resume | Action::Paused | Action::Head => Box::pin(self.call(action)),
            Action::Identity | Action::Demote | Action::Promote => {
                Box::pin(std::future::ready(Err(BackendError::Unsupported {
                    action: action.as_str(),
                    backend: "nodeos producer_api",
                })))
            }
        }
    }
}

/// nodeos's path for `action`: `producer_api` for the production switch, the chain API for the head.
fn path_of(action: Action) -> String {
    match action {
        Action::Head => "/v1/chain/get_info".into(),
        other => format!("/v1/producer/{}", other.as_str()),
    }
}

fn unreachable(endpoint: &str, e: impl std::fmt::Display) -> BackendError {
    BackendError::Unreachable { endpoint: endpoint.to_string(), reason: e.to_string() }
}

/// One HTTP/1 POST with no body over `stream`; the status and the first bytes of the answer.
async fn exchange<S>(stream: S, host: &str, path: &str, endpoint: &str) -> Result<(u16, Vec<u8>), BackendError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| unreachable(endpoint, e))?;
    let driver = tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "nodeos connection ended with an error");
        }
    });
    let mut request = HttpRequest::builder()
        .method(Method::POST)
        .uri(path)
        .body(Full::new(Bytes::new()))
        .map_err(|e| unreachable(endpoint, e))?;
    let headers = request.headers_mut();
    headers.insert(HOST, HeaderValue::from_str(host).map_err(|e| unreachable(endpoint, e))?);
    headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let result = async {
        let response = sender.send_request(request).await.map_err(|e| unreachable(endpoint, e))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), ANSWER_READ_LIMIT)
            .collect()
            .await
            .map_err(|e| unreachable(endpoint, format!("reading the answer: {e}")))?
            .to_bytes();
        Ok((status, body.to_vec()))
    }
    .await;
    driver.abort();
    result
}

/// Success, from nodeos's status and answer; `None` is a failure.
fn interpret(action: Action, status: u16, body: &[u8]) -> Option<Performed> {
    if !matches!(status, 200 | 201) {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    match action {
        Action::Pause | Action::Resume => {
            (value == serde_json::json!({ "result": "ok" })).then_some(Performed::default())
        }
        Action::Paused => value.as_bool().map(|p| Performed { paused: Some(p), ..Performed::default() }),
        Action::Head => value["head_block_num"].as_u64().map(|n| Performed { head: Some(n), ..Performed::default() }),
        Action::Identity | Action::Demote | Action::Promote => None,
    }
}

/// The first bytes of an answer, on one printable line.
pub fn shown_answer(body: &[u8]) -> String {
    let cut = body.len().min(ANSWER_SHOWN_BYTES);
    let mut text: String =
        String::from_utf8_lossy(&body[..cut]).chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if body.len() > cut {
        text.push('…');
    }
    if text.trim().is_empty() {
        "(empty)".into()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        let api = ProducerApi::parse("http://127.0.0.1:8888").unwrap();
        assert_eq!(
            api,
            ProducerApi::Tcp {
                host: "127.0.0.1".into(),
                port: 8888,
                host_header: "127.0.0.1:8888".into(),
                prefix: String::new(),
                shown: "http://127.0.0.1:8888".into()
            }
        );
        match ProducerApi::parse("http://[::1]:9/base/").unwrap() {
            ProducerApi::Tcp { host, port, host_header, prefix, .. } => {
                assert_eq!((host.as_str(), port, host_header.as_str(), prefix.as_str()), ("::1", 9, "[::1]:9", "/base"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            ProducerApi::parse("unix:/run/nodeos.sock").unwrap(),
            ProducerApi::Unix { path: "/run/nodeos.sock".into() }
        );
        assert_eq!(ProducerApi::parse("/run/nodeos.sock").unwrap().shown(), "unix:/run/nodeos.sock");
        for bad in
            ["https://127.0.0.1:8888", "unix:relative.sock", "127.0.0.1:8888", "http://u:p@127.0.0.1:8888", "ftp://x"]
        {
            assert!(ProducerApi::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn answers_are_interpreted_strictly() {
        assert_eq!(interpret(Action::Pause, 201, br#"{"result":"ok"}"#), Some(Performed::default()));
        assert_eq!(interpret(Action::Resume, 200, br#" {"result": "ok"} "#), Some(Performed::default()));
        assert_eq!(
            interpret(Action::Paused, 201, b"true"),
            Some(Performed { paused: Some(true), ..Performed::default() })
        );
        assert_eq!(
            interpret(Action::Paused, 201, b"false"),
            Some(Performed { paused: Some(false), ..Performed::default() })
        );
        assert_eq!(
            interpret(Action::Head, 200, br#"{"head_block_num": 42, "chain_id": "ab"}"#),
            Some(Performed { head: Some(42), ..Performed::default() })
        );
        assert_eq!(interpret(Action::Head, 200, br#"{"head": 42}"#), None);
        assert_eq!(interpret(Action::Pause, 500, br#"{"result":"ok"}"#), None);
        assert_eq!(interpret(Action::Pause, 201, br#"{"result":"ok","extra":1}"#), None);
        assert_eq!(interpret(Action::Pause, 201, b"true"), None);
        assert_eq!(interpret(Action::Paused, 201, br#"{"result":"ok"}"#), None);
        assert_eq!(interpret(Action::Paused, 201, b""), None);
    }

    #[tokio::test]
    async fn solana_actions_are_refused_without_touching_nodeos() {
        // Port 9 (discard) on loopback: nothing is called, so nothing needs to listen.
        let api = AntelopeProducerApi::new(ProducerApi::parse("http://127.0.0.1:9").unwrap(), DEFAULT_TIMEOUT);
        for action in [Action::Identity, Action::Demote, Action::Promote] {
            let request = Request { action, node: "bp1".into(), nonce: "00".repeat(16), expires_at: 1, tower: None };
            let e = api.perform(&request).await.unwrap_err();
            assert_eq!((e.code(), e.status()), ("unsupported_action", 400), "{e}");
        }
    }

    #[test]
    fn shown_answers_are_bounded_and_on_one_line() {
        assert_eq!(shown_answer(b""), "(empty)");
        assert_eq!(shown_answer(b"a\nb"), "a b");
        let long = shown_answer(&[b'x'; 2000]);
        assert_eq!(long.chars().count(), ANSWER_SHOWN_BYTES + 1);
    }
}
