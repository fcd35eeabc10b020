//! The fake `producer_api` of each same-key node (`SimConfig::producer_api`), as nodeos answers it on its
//! `producer_rw` address: `POST /v1/producer/pause` and `/resume` (HTTP 201 `{"result":"ok"}`),
//! `/v1/producer/paused` (`true` or `false`), and the node's own `get_info` (its local head, behind the
//! chain by `SimNode::set_node_lag`), on a port of 127.0.0.1 of its own.
//!
//! A node that is down answers 502 (a real dead nodeos refuses the connection; an agent reports both as the
//! node's failure). [`ApiFault::Hang`] reads the request and never answers; [`ApiFault::Http500`] answers an
//! fc error. Neither changes anything: only a request that is answered `ok` pauses or resumes.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use tokio::task::JoinHandle;

use crate::fc_error::FcError;
use crate::{ApiFault, ApiNode, Shared};

type Ctx = (Arc<Shared>, ApiNode);

pub(crate) async fn spawn(shared: Arc<Shared>, node: ApiNode) -> std::io::Result<(String, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let stop = shared.shutdown.clone();
    let app = Router::new()
        .route("/v1/producer/{action}", post(producer))
        .route("/v1/chain/get_info", get(info).post(info))
        .with_state((shared, node));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
    });
    Ok((format!("http://{addr}"), task))
}

fn count(shared: &Shared, node: ApiNode, path: &str) {
    let mut calls = shared.api_calls[node as usize].lock().unwrap_or_else(|p| p.into_inner());
    *calls.entry(path.to_string()).or_default() += 1;
}

/// The fault, the hang served here; `Some(response)` when the request must not act.
async fn faulted(shared: &Shared, node: ApiNode) -> Option<Response> {
    let fault = *shared.api_faults[node as usize].lock().unwrap_or_else(|p| p.into_inner());
    let up = {
        let chain = shared.lock();
        if node == ApiNode::Primary {
            chain.primary_up()
        } else {
            chain.backup_up()
        }
    };
    match fault {
        ApiFault::Hang => {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                _ = shared.shutdown.cancelled() => {}
            }
            Some((StatusCode::GATEWAY_TIMEOUT, "never answered").into_response())
        }
        ApiFault::Http500 => {
            Some(FcError::internal(3_100_002, "unknown_block_exception", "Unknown block", "fault").into_response())
        }
        ApiFault::None if !up => Some((StatusCode::BAD_GATEWAY, "nodeos is not running").into_response()),
        ApiFault::None => None,
    }
}

async fn producer(State((shared, node)): State<Ctx>, Path(action): Path<String>, _body: Bytes) -> Response {
    count(&shared, node, &format!("/v1/producer/{action}"));
    if let Some(r) = faulted(&shared, node).await {
        return r;
    }
    let reply =
        |status: StatusCode, body: String| (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    match action.as_str() {
        "pause" | "resume" => {
            shared.set_paused(node, action == "pause");
            reply(StatusCode::CREATED, json!({"result": "ok"}).to_string())
        }
        "paused" => {
            let paused = shared.lock().paused(node == ApiNode::Primary);
            reply(StatusCode::CREATED, paused.to_string())
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            json!({"code": 404, "message": "Not Found", "error": {"code": 0, "name": "", "what": "Unknown Endpoint", "details": []}})
                .to_string(),
        ),
    }
}

async fn info(State((shared, node)): State<Ctx>, _body: Bytes) -> Response {
    count(&shared, node, "/v1/chain/get_info");
    if let Some(r) = faulted(&shared, node).await {
        return r;
    }
    let lag = shared.api_lag[node as usize].load(std::sync::atomic::Ordering::Relaxed);
    let chain = shared.lock();
    let head = chain.head();
    let local = u32::try_from(u64::from(head.num).saturating_sub(lag)).unwrap_or(0);
    // Its block if the history still has it; the number is what a sync check reads.
    let head = chain.block(local).unwrap_or(head);
    let body = json!({
        "chain_id": shared.info.chain_id.to_hex(),
        "head_block_num": local,
        "head_block_id": hex::encode(head.id),
        "head_block_time": crate::text::time_text(head.time_ms),
        "head_block_producer": head.producer.to_string(),
        "last_irreversible_block_num": chain.lib_num(),
        "server_version_string": shared.info.server_version,
    });
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}
