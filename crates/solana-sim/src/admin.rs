//! A validator's fake admin socket, as Agave's `admin_rpc_service` serves it with jsonrpc-ipc-server on the Unix
//! socket `<ledger>/admin.rpc`: `setIdentity`, `setIdentityFromBytes` and `contactInfo`.
//!
//! Framing is jsonrpc-ipc-server's: the server cuts the incoming bytes into JSON values by parsing them (no
//! delimiter is needed, a trailing "\n" is usual) and writes each response as one JSON object and "\n". A
//! connection serves requests until the client closes it. [`AdminFault`] makes a socket hang, lag or refuse.

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use crate::jsonrpc::{self, RpcError, INTERNAL_ERROR, INVALID_PARAMS};
use crate::keys::Keypair;
use crate::validator::AdminFault;
use crate::{tower, Shared, SimError};

/// Bytes of one unfinished request a connection may buffer; more is a misbehaving client.
const MAX_REQUEST: usize = 1 << 20;

/// Bind the socket at `path`, removing a stale file first (as Agave does at start).
pub(crate) fn bind(path: &Path) -> Result<UnixListener, SimError> {
    let what = || path.display().to_string();
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(SimError::Bind { what: what(), source }),
    }
    UnixListener::bind(path).map_err(|source| SimError::Bind { what: what(), source })
}

/// Accept connections until `stop` (a crash or the cluster's end).
pub(crate) async fn serve(
    shared: Arc<Shared>,
    name: String,
    generation: u64,
    listener: UnixListener,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(shared.clone(), name.clone(), generation, stream, stop.clone()));
                }
                // Out of descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            },
        }
    }
}

/// What to do with one request.
enum Outcome {
    Reply(Value),
    /// Never answer (and read on until the client gives up).
    Hang,
}

async fn connection(shared: Arc<Shared>, name: String, generation: u64, stream: UnixStream, stop: CancellationToken) {
    let (mut rd, mut wr) = stream.into_split();
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 4096];
    loop {
        // Answer every complete value in the buffer, in order.
        loop {
            let mut values = serde_json::Deserializer::from_slice(&buf).into_iter::<Value>();
            let outcome = match values.next() {
                None => {
                    buf.clear(); // whitespace only
                    break;
                }
                Some(Err(e)) if e.is_eof() => break, // a request still arriving
                Some(Err(_)) => {
                    // Not JSON: answer as jsonrpc-core does, then drop the connection (the stream is lost).
                    let reply = jsonrpc::response(&Value::Null, Err(RpcError::parse()));
                    let _ = write_line(&mut wr, &reply).await;
                    return;
                }
                Some(Ok(v)) => {
                    let used = values.byte_offset();
                    buf.drain(..used);
                    handle(&shared, &name, generation, &v, &stop).await
                }
            };
            match outcome {
                Outcome::Reply(reply) => {
                    if write_line(&mut wr, &reply).await.is_err() {
                        return;
                    }
                }
                Outcome::Hang => {
                    // Keep the connection open and unanswered until the client closes it or the process dies.
                    loop {
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            n = rd.read(&mut chunk) => if !matches!(n, Ok(n) if n > 0) { return },
                        }
                    }
                }
            }
        }
        if buf.len() > MAX_REQUEST {
            return;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            n = rd.read(&mut chunk) => match n {
                Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return,
            },
        }
    }
}

async fn write_line(wr: &mut tokio::net::unix::OwnedWriteHalf, v: &Value) -> std::io::Result<()> {
    let mut line = v.to_string().into_bytes();
    line.push(b'\n');
    wr.write_all(&line).await?;
    wr.flush().await
}

/// Record the call, honour the fault, then run the method.
async fn handle(shared: &Shared, name: &str, generation: u64, v: &Value, stop: &CancellationToken) -> Outcome {
    let req = match jsonrpc::request(v) {
        Ok(r) => r,
        Err((id, e)) => return Outcome::Reply(jsonrpc::response(&id, Err(e))),
    };
    let fault = {
        let mut st = shared.lock();
        match st.nodes.get_mut(name) {
            Some(n) => {
                n.calls.push(req.method.to_string());
                n.fault.clone()
            }
            None => AdminFault::Hang,
        }
    };
    match fault {
        AdminFault::None => {}
        AdminFault::Hang => return Outcome::Hang,
        AdminFault::Refuse(msg) => {
            return Outcome::Reply(jsonrpc::response(&req.id, Err(RpcError::new(INTERNAL_ERROR, msg))))
        }
        AdminFault::Delay(d) => {
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                // Died while waiting: the request is never applied.
                _ = stop.cancelled() => return Outcome::Hang,
            }
        }
    }
    let result = method(shared, name, generation, req.method, req.params);
    Outcome::Reply(jsonrpc::response(&req.id, result))
}

fn method(shared: &Shared, name: &str, generation: u64, method: &str, params: &Value) -> Result<Value, RpcError> {
    let params = jsonrpc::positional(params)?;
    match method {
        "setIdentity" => {
            let (path, require_tower) = two_params(params)?;
            let path = path.as_str().ok_or_else(|| RpcError::invalid_params("invalid type: expected a string"))?;
            let keypair = Keypair::read_file(Path::new(path)).map_err(|e| {
                RpcError::new(INVALID_PARAMS, format!("Failed to read identity keypair from {path}: {e}"))
            })?;
            set_identity(shared, name, generation, &keypair, require_tower)
        }
        "setIdentityFromBytes" => {
            let (bytes, require_tower) = two_params(params)?;
            let bytes: Vec<u8> = serde_json::from_value(bytes.clone()).map_err(RpcError::invalid_params)?;
            let keypair = Keypair::from_bytes(&bytes).map_err(|e| {
                RpcError::new(INVALID_PARAMS, format!("Failed to read identity keypair from provided byte array: {e}"))
            })?;
            set_identity(shared, name, generation, &keypair, require_tower)
        }
        "contactInfo" => {
            let st = shared.now();
            let id = st.nodes.get(name).and_then(|n| n.identity.clone()).ok_or_else(exited)?;
            Ok(json!({
                "id": id,
                "gossip": "127.0.0.1:8001",
                "tvu": "127.0.0.1:8002",
                "tpu": "127.0.0.1:8003",
                "rpc": "127.0.0.1:8899",
                "shredVersion": 1,
            }))
        }
        _ => Err(RpcError::method_not_found()),
    }
}

/// `(keypair, require_tower: bool)` as the Rust signature takes them: both required.
fn two_params(params: &[Value]) -> Result<(&Value, bool), RpcError> {
    match params {
        [first, Value::Bool(require_tower)] => Ok((first, *require_tower)),
        [_, other] => {
            Err(RpcError::invalid_params(format!("invalid type: {}, expected a boolean", jsonrpc::kind(other))))
        }
        _ => Err(RpcError::invalid_params(format!("invalid length {}, expected a tuple of size 2", params.len()))),
    }
}

fn exited() -> RpcError {
    RpcError::new(INTERNAL_ERROR, "validator exited")
}

/// Switch `name` to `keypair`'s identity, requiring its tower in the ledger when asked.
fn set_identity(
    shared: &Shared,
    name: &str,
    generation: u64,
    keypair: &Keypair,
    require_tower: bool,
) -> Result<Value, RpcError> {
    let pubkey = keypair.pubkey();
    let ledger = {
        let st = shared.now();
        let n = st.nodes.get(name).filter(|n| n.generation == generation && n.running()).ok_or_else(exited)?;
        if n.identity.as_deref() == Some(pubkey.as_str()) {
            return Ok(Value::Null);
        }
        n.ledger.clone()
    };
    if require_tower {
        tower::read(&ledger, &pubkey).map_err(|e| {
            RpcError::new(INTERNAL_ERROR, format!("Unable to load tower file for identity {pubkey}: {e}"))
        })?;
    }
    let mut st = shared.now();
    // The process may have died while the tower was read.
    if st.nodes.get(name).is_none_or(|n| n.generation != generation) || !st.set_identity(name, pubkey) {
        return Err(exited());
    }
    Ok(Value::Null)
}
