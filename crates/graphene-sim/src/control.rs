//! The control panel of a standalone simulated chain (`witness-trap sim`): an HTTP server on 127.0.0.1
//! that takes the watched witness's primary node down and up, and reports what the chain and the fake
//! Twilio saw, so an operator or a script can rehearse a failover against a real trap.
//!
//! - `POST /primary/down`: the primary node stops producing (its slots are missed from now on);
//! - `POST /primary/up`: it produces again (while the on-chain key is still its own);
//! - `GET /status`: `{"chain", "witness", "head_block", "signing_key", "primary_key", "backup_key",
//!   "total_missed", "primary_up", "broadcasts", "key_changes", "sms": [{"to", "body"}]}`.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{SimEvent, SimNode, SmsSink};

/// What the control server drives.
pub struct Controlled {
    pub node: SimNode,
    pub sms: SmsSink,
}

type Ctx = Arc<Controlled>;

/// Listen on `port` of 127.0.0.1 (0: an ephemeral one) until `stop`; returns the bound port and the task.
pub async fn serve(
    controlled: Arc<Controlled>,
    port: u16,
    stop: CancellationToken,
) -> std::io::Result<(u16, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let bound = listener.local_addr()?.port();
    let app = Router::new()
        .route("/primary/down", post(down))
        .route("/primary/up", post(up))
        .route("/status", get(status))
        .with_state(controlled);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
    });
    Ok((bound, task))
}

async fn down(State(c): State<Ctx>) -> Json<Value> {
    c.node.fail_primary();
    Json(json!({ "primary_up": false }))
}

async fn up(State(c): State<Ctx>) -> Json<Value> {
    c.node.restore_primary();
    Json(json!({ "primary_up": true }))
}

async fn status(State(c): State<Ctx>) -> Json<Value> {
    Json(report(&c))
}

/// The `/status` document.
pub fn report(c: &Controlled) -> Value {
    let node = &c.node;
    let prefix = node.chain_spec().key_prefix.clone();
    let (witness, primary, backup, primary_up) = node.with_chain(|chain| {
        let p = chain.params();
        (p.witness.clone(), p.primary_key, p.backup_key, chain.primary_up())
    });
    let w = node.witness();
    let key_changes = node
        .events()
        .iter()
        .filter(|r| matches!(&r.event, SimEvent::SigningKeyChanged { witness: name, .. } if *name == witness))
        .count();
    let sms: Vec<Value> = c.sms.messages().into_iter().map(|m| json!({ "to": m.to, "body": m.body })).collect();
    json!({
        "chain": node.chain_spec().name,
        "witness": witness,
        "head_block": node.head().num,
        "signing_key": w.signing_key.to_text(&prefix),
        "primary_key": primary.to_text(&prefix),
        "backup_key": backup.to_text(&prefix),
        "total_missed": w.total_missed,
        "primary_up": primary_up,
        "broadcasts": node.broadcasts_received(),
        "key_changes": key_changes,
        "sms": sms,
    })
}
