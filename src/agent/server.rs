//! The agent's HTTP(S) server: `POST /v1/agent`, every check of [`super::request`], then the backend's
//! action, one at a time, and a JSON answer.
//!
//! A bare hyper HTTP/1 server as `/metrics` uses (one task per connection, header and body read
//! timeouts), behind rustls when a certificate is configured. Every refusal is logged at `warn` with its
//! code, reason, peer and (public) key; an action is logged at `info` before and after. The action runs in
//! its own task: a trap that disconnects mid-request does not cut a pause or resume in half.
//!
//! Answers (all `application/json`):
//!
//! | case | status | body |
//! | --- | --- | --- |
//! | done | 200 | `{"ok":true,"node":"bp1","action":"paused","paused":true,"head":null,"identity":null,"tower":null}` (each field `null` unless the action reports it) |
//! | refused | 4xx, 503 | `{"ok":false,"error":"<code>","message":"…"}`, code from [`super::request::Refusal::code`] |
//! | nodeos failed | 502, 504 | `{"ok":false,"error":"nodeos_refused"\|"nodeos_unreachable"\|"nodeos_timeout","message":"…","nodeos":{"status":500,"answer":"…"}\|null}` |
//! | validator failed | 500, 502, 504 | `{"ok":false,"error":"validator_refused"\|"validator_unreachable"\|"validator_timeout"\|"identity_mismatch"\|"validator_tower_unwritable","message":"…","nodeos":null}` |
//! | not this backend's action | 400 | `{"ok":false,"error":"unsupported_action","message":"…","nodeos":null}`; nothing done |
//! | other path or method | 404, 405 | `{"ok":false,"error":"not_found"\|"method_not_allowed",…}` |

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request as HttpRequest, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::backend::{Backend, BackendError};
use super::request::{Refusal, Verified, Verifier, KEY_HEADER, MAX_BODY_BYTES, PATH, SIGNATURE_HEADER};
use crate::config::agent::{AgentActionSettings, AgentSettings};
use chain_clock::SharedClock;

const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The agent: its checks, its backend, and the lock that runs one action at a time.
pub struct Agent {
    verifier: Verifier,
    backend: Arc<dyn Backend>,
    one_at_a_time: tokio::sync::Mutex<()>,
    clock: SharedClock,
}

impl Agent {
    pub fn new(verifier: Verifier, backend: Arc<dyn Backend>, clock: SharedClock) -> Self {
        Self { verifier, backend, one_at_a_time: tokio::sync::Mutex::new(()), clock }
    }

    /// The agent the configuration describes.
    pub fn from_settings(settings: &AgentSettings, clock: SharedClock) -> Self {
        let verifier = Verifier::new(settings.trusted_keys.clone(), settings.node_name.clone());
        let backend: Arc<dyn Backend> = match &settings.action {
            AgentActionSettings::AntelopeProducerApi { endpoint, timeout } => {
                Arc::new(super::backend::AntelopeProducerApi::new(endpoint.clone(), *timeout))
            }
            AgentActionSettings::SolanaAdmin { ledger, tower_dir, junk, staked, timeout } => {
                Arc::new(super::solana_admin::SolanaAdmin::new(
                    ledger.clone(),
                    tower_dir.clone(),
                    junk.clone(),
                    staked.clone(),
                    *timeout,
                ))
            }
        };
        Self::new(verifier, backend, clock)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.now().as_millis()).unwrap_or(u64::MAX)
    }
}

/// Why the agent could not start.
#[derive(Debug, Error)]
pub enum AgentError {
    #[error("AGENT_LISTEN {addr}: cannot listen: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// Listen on `addr` (TLS when `tls` is given) and serve until `shutdown`; the bound address and the task.
pub async fn serve(
    addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    agent: Arc<Agent>,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, JoinHandle<()>), AgentError> {
    let listener = TcpListener::bind(addr).await.map_err(|source| AgentError::Bind { addr, source })?;
    let bound = listener.local_addr().map_err(|source| AgentError::Bind { addr, source })?;
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    Ok((bound, tokio::spawn(accept_loop(listener, acceptor, agent, shutdown))))
}

/// `witness-trap agent`: serve the configured agent until `shutdown`.
pub async fn run(settings: AgentSettings, clock: SharedClock, shutdown: CancellationToken) -> Result<(), AgentError> {
    let agent = Arc::new(Agent::from_settings(&settings, clock));
    let tls = settings.tls.clone();
    let (bound, task) = serve(settings.listen, tls.clone(), agent.clone(), shutdown).await?;
    tracing::info!(
        addr = %bound,
        tls = tls.is_some(),
        node = %settings.node_name,
        trusted_keys = settings.trusted_keys.len(),
        backend = %agent.backend.describe(),
        "agent listening"
    );
    if tls.is_none() && !bound.ip().is_loopback() {
        tracing::warn!(
            addr = %bound,
            "TLS is off on a non-loopback address: requests cannot be forged, but answers (paused: true) can be \
             by anyone on the path; set AGENT_TLS_CERT_FILE and AGENT_TLS_KEY_FILE"
        );
    }
    if let Err(e) = task.await {
        tracing::error!(error = %e, "agent server task failed");
    }
    tracing::info!("agent stopped");
    Ok(())
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    agent: Arc<Agent>,
    shutdown: CancellationToken,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let (agent, shutdown, tls) = (agent.clone(), shutdown.clone(), tls.clone());
                    connections.spawn(async move {
                        match tls {
                            None => connection(stream, peer, agent, shutdown).await,
                            Some(acceptor) => {
                                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                    Ok(Ok(stream)) => connection(stream, peer, agent, shutdown).await,
                                    Ok(Err(e)) => tracing::warn!(%peer, error = %e, "agent: TLS handshake failed"),
                                    Err(_) => tracing::warn!(%peer, "agent: TLS handshake timed out"),
                                }
                            }
                        }
                    });
                }
                Err(e) => {
                    tracing::debug!(error = %e, "agent: accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = done {
                    tracing::debug!(error = %e, "agent connection task failed");
                }
            }
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async { while connections.join_next().await.is_some() {} });
    if drained.await.is_err() {
        tracing::debug!(left = connections.len(), "agent connections aborted at shutdown");
    }
}

async fn connection<S>(stream: S, peer: SocketAddr, agent: Arc<Agent>, shutdown: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request: HttpRequest<Incoming>| {
        let agent = agent.clone();
        async move { Ok::<_, Infallible>(handle(agent, peer, request).await) }
    });
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "agent connection ended with an error");
    }
}

async fn handle(agent: Arc<Agent>, peer: SocketAddr, request: HttpRequest<Incoming>) -> Response<Full<Bytes>> {
    if request.uri().path() != PATH {
        return answer(StatusCode::NOT_FOUND, error_body("not_found", &format!("the agent serves POST {PATH} only")));
    }
    if request.method() != Method::POST {
        let mut response = answer(
            StatusCode::METHOD_NOT_ALLOWED,
            error_body("method_not_allowed", &format!("the agent serves POST {PATH} only")),
        );
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let (parts, body) = request.into_parts();
    let header = |name: &str| parts.headers.get(name).map(|v| v.as_bytes().to_vec());
    let (key, signature) = (header(KEY_HEADER), header(SIGNATURE_HEADER));
    let body = match tokio::time::timeout(BODY_READ_TIMEOUT, Limited::new(body, MAX_BODY_BYTES).collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return refuse(peer, key.as_deref(), &Refusal::TooLarge)
        }
        Ok(Err(e)) => return refuse(peer, key.as_deref(), &Refusal::Malformed(format!("cannot read the body: {e}"))),
        Err(_) => return refuse(peer, key.as_deref(), &Refusal::Malformed("the body did not arrive in time".into())),
    };
    let verified = match agent.verifier.check(key.as_deref(), signature.as_deref(), &body, agent.now_ms()) {
        Ok(v) => v,
        Err(refusal) => return refuse(peer, key.as_deref(), &refusal),
    };
    perform(agent, peer, verified).await
}

fn refuse(peer: SocketAddr, key: Option<&[u8]>, refusal: &Refusal) -> Response<Full<Bytes>> {
    // The key header is public, but it is the client's text: bounded and lossy, for the log only.
    let key = key.map(|k| String::from_utf8_lossy(&k[..k.len().min(80)]).into_owned());
    tracing::warn!(%peer, code = refusal.code(), reason = %refusal, key = key.as_deref().unwrap_or("-"), "agent: request refused");
    let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST);
    answer(status, error_body(refusal.code(), &refusal.to_string()))
}

async fn perform(agent: Arc<Agent>, peer: SocketAddr, verified: Verified) -> Response<Full<Bytes>> {
    let Verified { request, signer } = verified;
    let action = request.action;
    let node = request.node.clone();
    tracing::info!(
        %peer,
        action = %action.as_str(),
        node = %node,
        key = %signer,
        nonce = %request.nonce,
        tower = request.tower.is_some(),
        "agent: performing"
    );
    // Its own task: finished even if the trap hangs up.
    let task = tokio::spawn({
        let agent = agent.clone();
        async move {
            let _one = agent.one_at_a_time.lock().await;
            // A request that waited behind a slow action past its expiry is void: the trap has moved on
            // (a late promotion could land after an operator failed back by hand).
            let now = agent.now_ms();
            if request.expires_at <= now {
                return Err(Refusal::Expired { expires_at: request.expires_at, now });
            }
            Ok(agent.backend.perform(&request).await)
        }
    });
    let result = match task.await {
        Ok(Ok(result)) => result,
        Ok(Err(refusal)) => return refuse(peer, Some(signer.to_string().as_bytes()), &refusal),
        Err(e) => Err(BackendError::Unreachable {
            endpoint: agent.backend.describe(),
            reason: format!("the action task failed: {e}"),
        }),
    };
    match result {
        Ok(done) => {
            tracing::info!(
                %peer,
                action = %action.as_str(),
                node = %node,
                paused = ?done.paused,
                identity = done.identity.as_deref().unwrap_or("-"),
                tower = done.tower.is_some(),
                "agent: done"
            );
            answer(
                StatusCode::OK,
                json!({
                    "ok": true,
                    "node": node,
                    "action": action,
                    "paused": done.paused,
                    "head": done.head,
                    "identity": done.identity,
                    "tower": done.tower,
                }),
            )
        }
        Err(e) => {
            tracing::error!(%peer, action = action.as_str(), node = %node, error = %e, "agent: the action failed");
            let nodeos = match &e {
                BackendError::Answer { status, answer, .. } => json!({ "status": status, "answer": answer }),
                _ => Value::Null,
            };
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut body = error_body(e.code(), &e.to_string());
            body["nodeos"] = nodeos;
            answer(status, body)
        }
    }
}

fn error_body(code: &str, message: &str) -> Value {
    json!({ "ok": false, "error": code, "message": message })
}

fn answer(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
