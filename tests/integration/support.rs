//! Test support: a scripted Hive/Steem JSON-RPC node and a Twilio mock on 127.0.0.1, keys, settings, logs.
//!
//! The scripted node is deliberately small and fully controllable (each test sets total_missed, faults,
//! the on-chain key); the realistic chain is `witness_trap::sim`, used by the end-to-end tests. It writes
//! the wire shapes of protocol.md §5 itself and checks every broadcast by recovering the signer with the
//! protocol module, so a wrong digest or key fails the test.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chain_clock::{ScaledClock, SharedClock};
use graphene_protocol::chain::ChainSpec;
use graphene_protocol::json::transaction_from_json;
use graphene_protocol::keys::{PrivateKey, PublicKey};
use graphene_protocol::operation::Operation;
use graphene_protocol::sign::recover;
use graphene_protocol::transaction::PackMode;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use wiremock::{Mock, MockServer, ResponseTemplate};
use witness_trap::alert::{Deliveries, Delivery};
use witness_trap::chain::{ChainTime, Identity};
use witness_trap::cli::ExitStatus;
use witness_trap::config::{vars as v, VarMap};
use witness_trap::service::RunOptions;
pub use witness_trap::trap::state::AnyState;
use witness_trap::trap::state::{read_file, read_instance_file, LastPoll};

/// Test keys; generated fresh per run, they belong to nobody.
pub struct Keys {
    pub primary: PrivateKey,
    pub backup: PrivateKey,
    pub active: PrivateKey,
}

impl Keys {
    pub fn new() -> Self {
        Self { primary: PrivateKey::generate(), backup: PrivateKey::generate(), active: PrivateKey::generate() }
    }
}

/// How the node misbehaves.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    None,
    /// Every call answers HTTP 503.
    Http503,
    /// 200 with a body that is not JSON.
    Garbage,
    /// Never answers within any client timeout.
    Hang,
    /// Head block frozen this many seconds in the past.
    Stale(u64),
    /// Reports this total_missed instead of the real one.
    LieMissed(u64),
    /// Reports another chain id.
    WrongChain,
}

/// The scripted chain state.
pub struct NodeState {
    pub chain: ChainSpec,
    pub witness: String,
    pub total_missed: u64,
    pub signing_key: PublicKey,
    pub active_key: PublicKey,
    pub url: String,
    pub fault: Fault,
    /// Every transaction the node accepted, as JSON.
    pub accepted: Vec<Value>,
    /// Every broadcast call received.
    pub broadcasts: usize,
    /// If set, the next N broadcasts are accepted but never applied (they expire).
    pub swallow: usize,
    /// Answer broadcasts with this error instead.
    pub reject_with: Option<Value>,
    /// Serve `get_witness_schedule` with this round (None: the method is unknown, as on a trimmed proxy).
    pub schedule: Option<Vec<String>>,
    genesis: u64,
    seen_txids: Vec<String>,
    /// Applied transactions and the block (the head when applied) that holds them.
    included: Vec<(String, u32)>,
    /// On its own fork: its block ids differ from every other node's, and it refuses TaPoS on theirs.
    pub fork: bool,
    /// Blocks its head runs ahead of the clock (a node a little ahead, still fresh).
    pub ahead: u32,
}

#[derive(Clone)]
pub struct FakeNode {
    pub url: String,
    pub state: Arc<Mutex<NodeState>>,
    /// Keeps the server alive as long as any clone of the node.
    _server: Arc<MockServer>,
}

pub const BLOCK_INTERVAL: u64 = 3;

impl FakeNode {
    /// Start a node for `witness` whose on-chain key is `signing_key`.
    pub async fn start(
        chain: ChainSpec,
        witness: &str,
        signing_key: PublicKey,
        active_key: PublicKey,
        clock: SharedClock,
    ) -> Self {
        let genesis = clock.now_secs() - 3000 * BLOCK_INTERVAL;
        let state = Arc::new(Mutex::new(NodeState {
            chain,
            witness: witness.to_string(),
            total_missed: 10,
            signing_key,
            active_key,
            url: "https://example.org/witness".into(),
            fault: Fault::None,
            accepted: Vec::new(),
            broadcasts: 0,
            swallow: 0,
            reject_with: None,
            schedule: None,
            genesis,
            seen_txids: Vec::new(),
            included: Vec::new(),
            fork: false,
            ahead: 0,
        }));
        // wiremock serves on 127.0.0.1; one responder answers every POST from the scripted state.
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::method("POST"))
            .respond_with(Responder { state: state.clone(), clock })
            .mount(&server)
            .await;
        let url = format!("{}/", server.uri());
        Self { url, state, _server: Arc::new(server) }
    }

    pub fn set<F: FnOnce(&mut NodeState)>(&self, f: F) {
        f(&mut self.state.lock().expect("node state"))
    }

    pub fn get<T, F: FnOnce(&NodeState) -> T>(&self, f: F) -> T {
        f(&self.state.lock().expect("node state"))
    }
}

/// The synthetic id of block `n`.
fn block_id(n: u32, fork: bool) -> String {
    format!("{n:08x}{}", if fork { "cd" } else { "ab" }.repeat(16))
}

fn fmt_time(secs: u64) -> String {
    graphene_protocol::transaction::TimePointSec(secs as u32).to_string()
}

fn rpc_error(id: &Value, code: i64, name: &str, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message,
        "data": {"code": 10, "name": name, "message": message, "stack": [{"format": message, "data": {}}]}}})
}

struct Responder {
    state: Arc<Mutex<NodeState>>,
    clock: SharedClock,
}

impl wiremock::Respond for Responder {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let req: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        handle(&self.state, &self.clock, req)
    }
}

fn reply(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

fn handle(state: &Mutex<NodeState>, clock: &SharedClock, req: Value) -> ResponseTemplate {
    let fault = state.lock().expect("node state").fault.clone();
    match fault {
        Fault::Http503 => return ResponseTemplate::new(503).set_body_string("busy"),
        Fault::Garbage => return ResponseTemplate::new(200).set_body_string("<html>not json"),
        Fault::Hang => return ResponseTemplate::new(200).set_body_string("{}").set_delay(Duration::from_secs(30)),
        _ => {}
    }
    let id = req.get("id").cloned().unwrap_or(json!(0));
    let method = req.get("method").and_then(Value::as_str).unwrap_or("").to_string();
    let params = req.get("params").cloned().unwrap_or(json!([]));
    let now = clock.now_secs();
    let mut s = state.lock().expect("node state");
    let (head, head_time) = match s.fault {
        Fault::Stale(age) => {
            let t = now - age;
            (((t - s.genesis) / BLOCK_INTERVAL) as u32, t - (t - s.genesis) % BLOCK_INTERVAL)
        }
        _ => {
            let t = now + u64::from(s.ahead) * BLOCK_INTERVAL;
            (((t - s.genesis) / BLOCK_INTERVAL) as u32, t - (t - s.genesis) % BLOCK_INTERVAL)
        }
    };
    let head_id = block_id(head, s.fork);
    let result = match method.as_str() {
        "database_api.get_version" | "condenser_api.get_version" => {
            let id = if s.fault == Fault::WrongChain { "42".repeat(32) } else { s.chain.chain_id_hex() };
            json!({"blockchain_version": "1.28.7", "chain_id": id})
        }
        "condenser_api.get_config" => {
            json!({"HIVE_BLOCK_INTERVAL": BLOCK_INTERVAL, "STEEM_BLOCK_INTERVAL": BLOCK_INTERVAL})
        }
        "condenser_api.get_dynamic_global_properties" => json!({
            "head_block_number": head, "head_block_id": head_id, "time": fmt_time(head_time),
            "current_witness": "someone", "last_irreversible_block_num": head - 15, "current_aslot": head + 100}),
        "condenser_api.get_witness_by_account" => {
            if params.get(0).and_then(Value::as_str) != Some(s.witness.as_str()) {
                Value::Null
            } else {
                let missed = match s.fault {
                    Fault::LieMissed(m) => m,
                    _ => s.total_missed,
                };
                let chain = s.chain.clone();
                let core = chain.core_symbol.clone();
                json!({"id": 1, "owner": s.witness, "url": s.url, "total_missed": missed,
                    "signing_key": s.signing_key.to_text(&chain.key_prefix),
                    "props": {"account_creation_fee": format!("3.000 {core}"), "maximum_block_size": 65536,
                              chain.interest_rate_field(): 1000},
                    "running_version": "1.28.7"})
            }
        }
        "condenser_api.get_witness_schedule" if s.schedule.is_some() => {
            let round = s.schedule.clone().unwrap_or_default();
            json!({"current_shuffled_witnesses": round, "num_scheduled_witnesses": round.len(),
                   "next_shuffle_block_num": (head / 21 + 1) * 21})
        }
        // Blocks are synthetic: block n has id `n` in its first 4 bytes (as `head_block_id`) and time
        // genesis + n blocks; applied transactions sit in the head block of their arrival.
        "condenser_api.get_block_header" | "condenser_api.get_block" => {
            match params.get(0).and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()) {
                Some(n) if n >= 1 && n <= head => {
                    let ids: Vec<&String> = s.included.iter().filter(|(_, b)| *b == n).map(|(t, _)| t).collect();
                    json!({"previous": block_id(n - 1, s.fork), "timestamp": fmt_time(s.genesis + u64::from(n) * BLOCK_INTERVAL),
                           "witness": "someone", "transaction_merkle_root": "0".repeat(40), "extensions": [],
                           "transaction_ids": ids})
                }
                _ => Value::Null,
            }
        }
        "transaction_status_api.find_transaction" => {
            let txid = params.get("transaction_id").and_then(Value::as_str).unwrap_or_default();
            match s.included.iter().find(|(t, _)| t == txid) {
                Some((_, b)) => json!({"status": "within_reversible_block", "block_num": b}),
                None => json!({"status": "unknown"}),
            }
        }
        "condenser_api.get_accounts" => {
            let prefix = s.chain.key_prefix.clone();
            json!([{"name": s.witness, "active": {"weight_threshold": 1, "account_auths": [],
                "key_auths": [[s.active_key.to_text(&prefix), 1]]}}])
        }
        "condenser_api.broadcast_transaction" => {
            s.broadcasts += 1;
            if let Some(err) = s.reject_with.clone() {
                return reply(json!({"jsonrpc": "2.0", "id": id, "error": err}));
            }
            match apply_broadcast(&mut s, params.get(0).cloned().unwrap_or(Value::Null), head_time, head) {
                Ok(()) => json!({}),
                Err((name, msg)) => return reply(rpc_error(&id, -32003, name, &msg)),
            }
        }
        _ => return reply(rpc_error(&id, -32601, "method_not_found", "Could not find method")),
    };
    reply(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

/// Check the transaction as a node would (signature recovers to the required key, `key` matches) and
/// apply it at once.
fn apply_broadcast(s: &mut NodeState, tx_json: Value, head_time: u64, head: u32) -> Result<(), (&'static str, String)> {
    let signed = transaction_from_json(&tx_json, &s.chain).map_err(|e| ("parse_error", e.to_string()))?;
    let tx = &signed.transaction;
    let txid = tx.id(PackMode::Legacy).to_string();
    if s.seen_txids.contains(&txid) {
        return Err(("assert_exception", "Duplicate transaction check failed".into()));
    }
    if u64::from(tx.expiration.0) <= head_time {
        return Err(("transaction_expiration_exception", "transaction expiration exception".into()));
    }
    // TaPoS (protocol.md §3.3): the referenced block must be this node's block of that number.
    let n = head.wrapping_sub(u32::from(head as u16).wrapping_sub(u32::from(tx.ref_block_num)) & 0xffff);
    let mine = graphene_protocol::transaction::BlockId::from_hex(&block_id(n, s.fork)).map(|b| b.tapos()).ok();
    if mine != Some((tx.ref_block_num, tx.ref_block_prefix)) {
        return Err(("transaction_tapos_exception", "transaction tapos exception".into()));
    }
    let digest = tx.digest(&s.chain, PackMode::Legacy);
    let [sig] = signed.signatures.as_slice() else {
        return Err(("tx_missing_other_auth", "Missing Authority: one signature expected".into()));
    };
    let signer = recover(&digest, sig).map_err(|e| ("exception", e.to_string()))?;
    for op in &tx.operations {
        op.validate().map_err(|e| ("assert_exception", e.to_string()))?;
        match op {
            Operation::WitnessSetProperties(p) => {
                let key = p.key().ok_or(("assert_exception", "No signing key provided".to_string()))?;
                if signer != key {
                    return Err(("tx_missing_other_auth", "Missing Authority".into()));
                }
                if key != s.signing_key {
                    return Err(("assert_exception", "'key' does not match witness signing key.".into()));
                }
            }
            Operation::WitnessUpdate(_) => {
                if signer != s.active_key {
                    return Err((
                        "tx_missing_active_auth",
                        format!("missing required active authority:Missing Active Authority {}", s.witness),
                    ));
                }
            }
        }
    }
    s.seen_txids.push(txid.clone());
    s.accepted.push(tx_json);
    if s.swallow > 0 {
        s.swallow -= 1;
        return Ok(());
    }
    s.included.push((txid, head));
    for op in &tx.operations {
        match op {
            Operation::WitnessSetProperties(p) => {
                if let Some(k) = p.new_signing_key() {
                    s.signing_key = k;
                }
            }
            Operation::WitnessUpdate(u) => {
                s.signing_key = u.block_signing_key;
                s.url = u.url.clone();
            }
        }
    }
    Ok(())
}

/// Fresh keys, a fast clock and a scripted node for @alice whose on-chain key is the primary key.
pub async fn scene(chain: ChainSpec) -> (Keys, SharedClock, FakeNode) {
    let keys = Keys::new();
    let clock = fast_clock();
    let node =
        FakeNode::start(chain, "alice", keys.primary.public_key(), keys.active.public_key(), clock.clone()).await;
    (keys, clock, node)
}

/// A chain clock 20× faster than the wall: a 3 s block takes 150 ms.
pub fn fast_clock() -> SharedClock {
    Arc::new(ScaledClock::starting_now(20.0))
}

/// A complete, valid variable set for `witness` against `urls`, built from the `vars` constants.
pub fn vars(keys: &Keys, urls: &[&str], state_file: &std::path::Path, twilio_url: &str) -> HashMap<String, String> {
    let urls: Vec<String> = urls.iter().map(|u| u.to_string()).collect();
    VarMap::graphene("alice", &ChainSpec::hive(), &urls, &keys.backup.public_key(), &keys.primary.to_wif(), state_file)
        .with(v::MISSED_BLOCKS_ALLOWED, 2)
        .with(v::POLL_INTERVAL_SECS, 3)
        .with(v::RPC_TIMEOUT_SECS, 3) // the arming check on a loaded machine: 1 s was seen to run out
        .with_twilio(twilio_url, "AC0123456789abcdef", TWILIO_TOKEN, "+15005550006", "+14155550123,+447911123456")
        .into_map()
}

/// What `witness-trap run` does with these variables: load the configuration, run the service, and map the
/// outcome to the exit status (nothing printed).
pub async fn run(
    vars: &HashMap<String, String>,
    clock: SharedClock,
    shutdown: CancellationToken,
    exit_when_disarmed: bool,
) -> ExitStatus {
    match witness_trap::config::load(vars) {
        Err(_) => ExitStatus::Config,
        Ok(settings) => {
            let options = RunOptions { exit_when_disarmed };
            ExitStatus::of_run(&witness_trap::service::run(settings, clock, shutdown, options).await)
        }
    }
}

/// Chain time now, by `clock`.
pub fn now(clock: &SharedClock) -> ChainTime {
    ChainTime::now(clock.as_ref())
}

pub fn secs(s: u64) -> ChainTime {
    ChainTime::from_secs(s)
}

/// An armed state of @alice on hive, with `total_missed` `baseline` at arming and `allowed` misses.
pub fn armed_state(clock: &SharedClock, baseline: u64, allowed: u64) -> AnyState {
    let id = Identity { producer: "alice".into(), chain: "hive".into() };
    AnyState::armed(&id, now(clock), serde_json::json!({ "total_missed": baseline }), allowed)
}

/// The alerts of a fired state whose SMS went out.
pub fn sms_sent() -> Deliveries {
    Deliveries::from([("twilio".to_string(), Delivery::Sent)])
}

pub fn write_state(path: &std::path::Path, st: &AnyState) {
    std::fs::write(path, st.encode().expect("encode")).expect("write state");
}

pub fn load_state(path: &std::path::Path) -> AnyState {
    read_file(path).expect("state readable").expect("state exists")
}

/// The last poll the trap recorded beside `state_file`.
pub fn last_poll(state_file: &std::path::Path) -> Option<LastPoll> {
    read_instance_file(state_file).last_poll
}

/// The Messages path of the test account's SMS (Twilio's API shape).
pub const SMS_PATH: &str = "/2010-04-01/Accounts/AC0123456789abcdef/Messages.json";

/// A Twilio mock that accepts `expected` SMS (verified when it is dropped).
pub async fn twilio_ok(expected: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path(SMS_PATH))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sid": "SM1", "status": "queued"})))
        .expect(expected)
        .mount(&server)
        .await;
    server
}

/// A Twilio mock that accepts every SMS (warnings and fire alerts alike); read them with [`sms_forms`].
pub async fn twilio_any() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sid": "SM1", "status": "queued"})))
        .mount(&server)
        .await;
    server
}

/// The SMS requests a Twilio mock received, as forms (`To`, `From`, `Body`).
pub async fn sms_forms(server: &MockServer) -> Vec<HashMap<String, String>> {
    let requests = server.received_requests().await.unwrap_or_default();
    requests.iter().filter_map(|r| serde_urlencoded::from_bytes(&r.body).ok()).collect()
}

/// The SMS bodies a Twilio mock received.
pub async fn sms_bodies(server: &MockServer) -> Vec<String> {
    sms_forms(server).await.into_iter().filter_map(|mut f| f.remove("Body")).collect()
}

/// Run the trap until it exits by itself or `limit` of wall time passes (then it is asked to stop).
pub async fn run_for(vars: HashMap<String, String>, clock: SharedClock, limit: Duration) -> ExitStatus {
    let shutdown = CancellationToken::new();
    let stopper = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(limit).await;
        stopper.cancel();
    });
    run(&vars, clock, shutdown, true).await
}

/// Run the trap until `cond` holds (checked every 50 ms, up to 30 s of wall time) or the trap exits by
/// itself, then ask it to stop. Tests that watch for something to be seen wait for it this way, not for a
/// fixed time: a loaded machine may time out a poll or two.
pub async fn run_until<F, Fut>(vars: HashMap<String, String>, clock: SharedClock, what: &str, mut cond: F) -> ExitStatus
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let mut task = tokio::spawn(async move { run(&vars, clock, stop, true).await });
    for _ in 0..600 {
        if task.is_finished() || cond().await {
            shutdown.cancel();
            return (&mut task).await.expect("the trap task");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    let _ = task.await;
    panic!("timed out waiting for {what}");
}

/// Wait (up to 30 s) until `cond` holds.
pub async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..600 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

pub const TWILIO_TOKEN: &str = "tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0";

/// A captured log sink for scanning everything the program logged.
#[derive(Clone, Default)]
pub struct LogCapture(pub Arc<Mutex<Vec<u8>>>);

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl LogCapture {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

/// Install (once per test binary) a trace-level subscriber writing into a shared capture.
pub fn capture_logs() -> LogCapture {
    static CAPTURE: std::sync::OnceLock<LogCapture> = std::sync::OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let cap = LogCapture::default();
            witness_trap::logging::init_with_writer(witness_trap::logging::LogFormat::Json, Some("trace"), cap.clone());
            cap
        })
        .clone()
}

pub fn temp_state() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.json");
    (dir, path)
}

/// The binary with only what the test gives: no stray .env, no inherited variables.
pub fn bin() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_witness-trap"));
    c.env_clear().current_dir(std::env::temp_dir());
    c
}

/// Run the binary at `LOG_LEVEL=trace` off the async runtime (the test's servers live on it).
pub async fn exec(args: &[&str], env: &HashMap<String, String>) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env = env.clone();
    tokio::task::spawn_blocking(move || {
        bin().args(&args).envs(&env).env("LOG_LEVEL", "trace").output().expect("binary runs")
    })
    .await
    .expect("join")
}

/// A simulated Hive chain for @alice at 20× real time with two endpoints, `total_missed` 7 at start.
pub async fn fast_sim(seed: u64) -> (graphene_sim::SimNode, SharedClock, Keys) {
    fast_sim_lagging(seed, 0).await
}

/// The same, with the witness's nodes seeing a key change `key_view_lag` blocks late.
pub async fn fast_sim_lagging(seed: u64, key_view_lag: u32) -> (graphene_sim::SimNode, SharedClock, Keys) {
    let keys = Keys::new();
    let clock: SharedClock = Arc::new(ScaledClock::starting_now(20.0));
    let mut cfg = graphene_sim::SimConfig::new(
        ChainSpec::hive(),
        "alice",
        keys.primary.public_key(),
        keys.backup.public_key(),
        keys.active.public_key(),
    );
    cfg.clock = Some(clock.clone());
    cfg.endpoints = 2;
    cfg.initial_total_missed = 7;
    cfg.seed = seed;
    cfg.key_view_lag = key_view_lag;
    let sim = graphene_sim::SimNode::start(cfg).await.expect("sim starts");
    (sim, clock, keys)
}

/// The trap's state in etcd once `what` holds (waits up to two minutes of wall time), for the coordinated
/// tests.
#[cfg(feature = "etcd")]
pub async fn etcd_record(coord: &coordination::Coordinator, what: impl Fn(&AnyState) -> bool) -> AnyState {
    etcd_record_within(coord, Duration::from_secs(120), what).await
}

/// [`etcd_record`] with its own limit (wall time).
#[cfg(feature = "etcd")]
pub async fn etcd_record_within(
    coord: &coordination::Coordinator,
    limit: Duration,
    what: impl Fn(&AnyState) -> bool,
) -> AnyState {
    let t = std::time::Instant::now();
    while t.elapsed() < limit {
        if let Ok(Some(r)) = coord.read().await {
            if let Ok(s) = AnyState::decode(r.value.as_bytes(), "etcd") {
                if what(&s) {
                    return s;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the record in etcd never became what was expected: {:?}", coord.read().await)
}

/// One replica of the real service, in process, on `clock`; cancel the token to stop it.
#[cfg(feature = "etcd")]
pub fn spawn_service(
    vars: &HashMap<String, String>,
    clock: &SharedClock,
) -> (tokio::task::JoinHandle<ExitStatus>, CancellationToken) {
    let stop = CancellationToken::new();
    let (vars, clock, s) = (vars.clone(), clock.clone(), stop.clone());
    (tokio::spawn(async move { run(&vars, clock, s, true).await }), stop)
}
