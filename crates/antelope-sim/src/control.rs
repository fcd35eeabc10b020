//! The control panel of a standalone simulated Antelope chain: an HTTP server on 127.0.0.1 that takes the
//! watched producer's nodes down and up and reports what the chain saw, so a person or a script can rehearse a
//! failover against a real trap.
//!
//! - `POST /primary/down`, `POST /primary/up`: the primary node stops / resumes producing;
//! - `POST /backup/down`, `POST /backup/up`: the same for the backup node;
//! - `GET /status`: `{"network", "producer", "head_block", "lib", "producer_key", "primary_key", "backup_key",
//!   "schedule_version", "scheduled_key", "pending_version", "primary_up", "backup_up", "unpaid_blocks",
//!   "missed_slots", "transactions_received", "transactions_accepted"}`.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::text::{key_text, opt_key_text};
use crate::{SimEvent, SimNode};

/// What the control server drives.
pub struct Controlled {
    pub node: SimNode,
    /// Network name shown in `/status`.
    pub network: String,
    /// Key spelling of `/status` (as the node's replies).
    pub k1_text: bool,
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
        .route("/primary/down", post(primary_down))
        .route("/primary/up", post(primary_up))
        .route("/backup/down", post(backup_down))
        .route("/backup/up", post(backup_up))
        .route("/status", get(status))
        .with_state(controlled);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
    });
    Ok((bound, task))
}

async fn primary_down(State(c): State<Ctx>) -> Json<Value> {
    c.node.fail_primary();
    Json(json!({ "primary_up": false }))
}

async fn primary_up(State(c): State<Ctx>) -> Json<Value> {
    c.node.restore_primary();
    Json(json!({ "primary_up": true }))
}

async fn backup_down(State(c): State<Ctx>) -> Json<Value> {
    c.node.fail_backup();
    Json(json!({ "backup_up": false }))
}

async fn backup_up(State(c): State<Ctx>) -> Json<Value> {
    c.node.restore_backup();
    Json(json!({ "backup_up": true }))
}

async fn status(State(c): State<Ctx>) -> Json<Value> {
    Json(report(&c))
}

/// The `/status` document.
pub fn report(c: &Controlled) -> Value {
    let k1 = c.k1_text;
    let node = &c.node;
    let doc = node.with_chain(|chain| {
        let p = chain.params();
        let watched = chain.watched();
        let row = chain.producer_row(watched);
        let scheduled = chain.active_schedule().authority_of(watched).and_then(|a| a.keys.first()).map(|(k, _)| *k);
        json!({
            "network": c.network,
            "producer": watched.to_string(),
            "head_block": chain.head().num,
            "lib": chain.lib_num(),
            "producer_key": row.map(|r| opt_key_text(r.producer_key.as_ref(), k1)),
            "primary_key": key_text(&p.primary_key, k1),
            "backup_key": key_text(&p.backup_key, k1),
            "schedule_version": chain.active_schedule().version,
            "scheduled_key": scheduled.map(|k| key_text(&k, k1)),
            "pending_version": chain.pending_schedule().map(|s| s.schedule.version),
            "primary_up": chain.primary_up(),
            "backup_up": chain.backup_up(),
            "unpaid_blocks": row.map(|r| r.unpaid_blocks),
        })
    });
    let watched = doc["producer"].as_str().unwrap_or_default().to_string();
    let missed = node
        .events()
        .iter()
        .filter(|r| matches!(&r.event, SimEvent::SlotMissed { producer, .. } if *producer == watched))
        .count();
    let mut doc = doc;
    doc["missed_slots"] = json!(missed);
    doc["transactions_received"] = json!(node.transactions_received());
    doc["transactions_accepted"] = json!(node.transactions_accepted());
    doc
}
