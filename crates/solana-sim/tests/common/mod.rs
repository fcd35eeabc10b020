//! Helpers of the integration tests: a time-compressed cluster, JSON-RPC over HTTP and over the admin socket,
//! and waiting for a condition with a generous timeout (never a timed assertion).

#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chain_clock::ScaledClock;
use serde_json::{json, Value};
use solana_sim::{Cluster, ClusterConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Long enough for a loaded 2-core machine; conditions normally hold within a second.
pub const WAIT: Duration = Duration::from_secs(90);

/// A cluster whose 400 ms slots pass `speedup` times faster.
pub async fn cluster(speedup: f64) -> Cluster {
    Cluster::start(config(speedup)).await.expect("cluster starts")
}

pub fn config(speedup: f64) -> ClusterConfig {
    ClusterConfig::new(Arc::new(ScaledClock::starting_now(speedup)))
}

/// Poll `cond` until it holds; panic with `what` after [`WAIT`].
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Like [`wait_until`] with an async condition.
pub async fn wait_until_async<F: Future<Output = bool>>(what: &str, mut cond: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// POST a raw body; (status, body text).
pub async fn post_raw(url: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("an HTTP answer");
    (r.status().as_u16(), r.text().await.expect("a body"))
}

/// One JSON-RPC call; the whole response object.
pub async fn rpc(url: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let (status, text) = post_raw(url, body.to_string()).await;
    assert_eq!(status, 200, "{method}: {text}");
    let v: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(v["jsonrpc"], "2.0");
    assert_eq!(v["id"], 1);
    v
}

/// The `result` of a call that must succeed.
pub async fn result(url: &str, method: &str, params: Value) -> Value {
    let v = rpc(url, method, params).await;
    assert!(v.get("error").is_none(), "{method} failed: {v}");
    v["result"].clone()
}

/// The vote account entry and whether it is delinquent, at `processed`.
pub async fn vote_entry(url: &str) -> Option<(Value, bool)> {
    let r = result(url, "getVoteAccounts", json!([{"commitment": "processed"}])).await;
    if let Some(e) = r["current"].as_array().and_then(|a| a.first()) {
        return Some((e.clone(), false));
    }
    r["delinquent"].as_array().and_then(|a| a.first()).map(|e| (e.clone(), true))
}

/// A connection to an admin socket that reads answers line by line.
pub struct Admin {
    reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    writer: tokio::net::unix::OwnedWriteHalf,
}

impl Admin {
    pub async fn connect(path: &Path) -> std::io::Result<Admin> {
        let (r, w) = UnixStream::connect(path).await?.into_split();
        Ok(Admin { reader: BufReader::new(r), writer: w })
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("write");
        self.writer.flush().await.expect("flush");
    }

    /// The next answer line, parsed; `None` when the server closed the connection.
    pub async fn read(&mut self) -> Option<Value> {
        let mut line = String::new();
        let n = tokio::time::timeout(WAIT, self.reader.read_line(&mut line)).await.expect("an answer in time").ok()?;
        if n == 0 {
            return None;
        }
        assert!(line.ends_with('\n'), "each answer ends with a newline: {line:?}");
        Some(serde_json::from_str(&line).expect("one JSON object per line"))
    }

    /// A request with a trailing newline, as Agave's client sends it; its answer.
    pub async fn call(&mut self, id: u64, method: &str, params: Value) -> Value {
        let req = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_raw(format!("{req}\n").as_bytes()).await;
        let v = self.read().await.expect("an answer");
        assert_eq!(v["id"], id);
        v
    }
}

/// `setIdentity` over a fresh connection; the response object.
pub async fn set_identity(socket: &Path, keypair_file: &Path, require_tower: bool) -> Value {
    let mut a = Admin::connect(socket).await.expect("admin socket");
    a.call(1, "setIdentity", json!([keypair_file.to_str().expect("utf-8 path"), require_tower])).await
}
