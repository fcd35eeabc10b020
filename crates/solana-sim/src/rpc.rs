//! The cluster JSON-RPC endpoints: `POST /` with a JSON-RPC 2.0 request or batch, each endpoint an axum server on
//! an ephemeral port of 127.0.0.1 with its own [`Behaviour`], so a test can pair an honest RPC with a lagging,
//! unhealthy, dead, forked or stale one. The methods themselves are `methods.rs`'s.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::Value;

use crate::jsonrpc::{self, RpcError};
use crate::methods::{self, View};
use crate::{Shared, SimError};

/// Largest request body an endpoint reads; bigger ones get HTTP 413.
pub const MAX_BODY: usize = 64 * 1024;

/// How an endpoint answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Behaviour {
    #[default]
    Honest,
    /// The node is N slots behind: `getHealth` fails with -32005 and `numSlotsBehind`; slots and votes are as of
    /// `slot - N`.
    Behind(u64),
    /// `getHealth` fails with -32005 "Node is unhealthy"; everything else is honest.
    Unhealthy,
    /// `getGenesisHash` answers this (another cluster).
    WrongGenesis(String),
    /// HTTP 503 with an empty body for everything (a proxy in front of a dead node).
    Down,
    /// The vote account's `lastVote` stays at its value when this was set (a stale or lying index).
    FrozenVotes,
    /// Every call answers this JSON-RPC error.
    Error(i64, String),
}

/// A behaviour as the server applies it (with what `FrozenVotes` froze).
#[derive(Debug, Clone)]
struct Active {
    behaviour: Behaviour,
    frozen: Option<u64>,
}

struct Inner {
    url: String,
    shared: Arc<Shared>,
    active: Mutex<Active>,
    calls: AtomicU64,
}

impl Inner {
    fn active(&self) -> Active {
        self.active.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// One cluster RPC endpoint. Clones share the behaviour and the counter.
#[derive(Clone)]
pub struct Endpoint {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.inner.url)
            .field("behaviour", &self.inner.active().behaviour)
            .finish()
    }
}

impl Endpoint {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.inner.url.clone()
    }

    /// Answer from now on as `b`.
    pub fn set(&self, b: Behaviour) {
        let frozen = self.inner.shared.now().last_vote;
        *self.inner.active.lock().unwrap_or_else(|p| p.into_inner()) = Active { behaviour: b, frozen };
    }

    pub fn behaviour(&self) -> Behaviour {
        self.inner.active().behaviour
    }

    /// JSON-RPC request objects answered (a batch counts each; `Down` answers none).
    pub fn calls(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }
}

/// Start an honest endpoint on an ephemeral port.
pub(crate) async fn spawn(shared: Arc<Shared>) -> Result<Endpoint, SimError> {
    let bind_err = |source| SimError::Bind { what: "127.0.0.1:0".into(), source };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.map_err(bind_err)?;
    let addr = listener.local_addr().map_err(bind_err)?;
    let stop = shared.shutdown.clone();
    let inner = Arc::new(Inner {
        url: format!("http://{addr}"),
        shared,
        active: Mutex::new(Active { behaviour: Behaviour::Honest, frozen: None }),
        calls: AtomicU64::new(0),
    });
    let app = Router::new().route("/", post(handle)).layer(DefaultBodyLimit::max(MAX_BODY)).with_state(inner.clone());
    tokio::spawn(async move {
        // serve returns only on a listener error; the endpoint then stops answering, like a dead node.
        let _ = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
    });
    Ok(Endpoint { inner })
}

async fn handle(State(ep): State<Arc<Inner>>, body: Bytes) -> Response {
    let active = ep.active();
    if active.behaviour == Behaviour::Down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let reply = match serde_json::from_slice::<Value>(&body) {
        Err(_) => {
            ep.calls.fetch_add(1, Ordering::Relaxed);
            jsonrpc::response(&Value::Null, Err(RpcError::parse()))
        }
        Ok(Value::Array(items)) if items.is_empty() => {
            ep.calls.fetch_add(1, Ordering::Relaxed);
            jsonrpc::response(&Value::Null, Err(RpcError::invalid_request()))
        }
        Ok(Value::Array(items)) => Value::Array(items.iter().map(|r| answer(&ep, &active, r)).collect()),
        Ok(single) => answer(&ep, &active, &single),
    };
    ([(header::CONTENT_TYPE, "application/json")], reply.to_string()).into_response()
}

fn answer(ep: &Inner, active: &Active, request: &Value) -> Value {
    ep.calls.fetch_add(1, Ordering::Relaxed);
    let req = match jsonrpc::request(request) {
        Ok(r) => r,
        Err((id, e)) => return jsonrpc::response(&id, Err(e)),
    };
    let view = match &active.behaviour {
        Behaviour::Error(code, msg) => return jsonrpc::response(&req.id, Err(RpcError::new(*code, msg.clone()))),
        Behaviour::Behind(n) => View { behind: *n, ..View::honest(&ep.shared.genesis_hash) },
        Behaviour::Unhealthy => View { unhealthy: true, ..View::honest(&ep.shared.genesis_hash) },
        Behaviour::WrongGenesis(g) => View::honest(g),
        Behaviour::FrozenVotes => View { frozen: Some(active.frozen), ..View::honest(&ep.shared.genesis_hash) },
        Behaviour::Honest | Behaviour::Down => View::honest(&ep.shared.genesis_hash),
    };
    jsonrpc::response(&req.id, methods::call(&ep.shared, &view, req.method, req.params))
}
