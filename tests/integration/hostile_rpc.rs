//! Hostile RPC endpoints against the reader itself (`rpc::reading::Reader`), beside an honest scripted node:
//! an oversize answer (with and without `Content-Length`), deeply nested JSON, values out of range, a head
//! and counter far ahead once, and an endpoint that changes chain (also after a failure). Each hostile
//! endpoint is a small wiremock server (or a raw TCP server for a chunked body) built here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chain_clock::SharedClock;
use graphene_protocol::chain::ChainSpec;
use graphene_protocol::transaction::TimePointSec;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::{Mock, MockServer, ResponseTemplate};
use witness_trap::chain::graphene::rpc::client::MAX_RESPONSE_BYTES;
use witness_trap::chain::graphene::rpc::reading::{Poll, Reader, ReaderSettings, BACKWARDS_RESET, CHAIN_RECHECK_READS};

use super::support::{capture_logs, scene, FakeNode, BLOCK_INTERVAL};

const OTHER_CHAIN: &str = "4242424242424242424242424242424242424242424242424242424242424242";

/// What a hostile node answers; everything else is an honest node for @alice on hive.
struct Script {
    chain_id: String,
    total_missed: u64,
    /// The next answers about the head and the witness are this far ahead (each once).
    jump_head: Option<u64>,
    jump_missed: Option<u64>,
    /// Every call is answered with this body instead.
    body: Option<Vec<u8>>,
    /// `total_missed` as given, instead of the number.
    missed_json: Option<Value>,
    http503: bool,
    /// Calls received, by method.
    calls: HashMap<String, usize>,
}

#[derive(Clone)]
struct HostileNode {
    url: String,
    script: Arc<Mutex<Script>>,
    _server: Arc<MockServer>,
}

struct Responder {
    script: Arc<Mutex<Script>>,
    clock: SharedClock,
    genesis: u64,
}

impl wiremock::Respond for Responder {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let req: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let method = req["method"].as_str().unwrap_or("").to_string();
        let mut s = self.script.lock().expect("script");
        *s.calls.entry(method.clone()).or_default() += 1;
        if s.http503 {
            return ResponseTemplate::new(503);
        }
        if let Some(body) = &s.body {
            return ResponseTemplate::new(200).set_body_raw(body.clone(), "application/json");
        }
        let now = self.clock.now_secs();
        let head = (now - self.genesis) / BLOCK_INTERVAL;
        let head_time = now - (now - self.genesis) % BLOCK_INTERVAL;
        let result =
            match method.as_str() {
                "database_api.get_version" => json!({"blockchain_version": "1.28.7", "chain_id": s.chain_id}),
                "condenser_api.get_dynamic_global_properties" => {
                    let head = head + s.jump_head.take().unwrap_or(0);
                    json!({"head_block_number": head, "head_block_id": format!("{head:08x}{}", "ab".repeat(16)),
                       "time": TimePointSec(head_time as u32).to_string(), "last_irreversible_block_num": head - 15,
                       "current_aslot": head + 100})
                }
                "condenser_api.get_witness_by_account" => {
                    let missed = s.total_missed + s.jump_missed.take().unwrap_or(0);
                    let missed = s.missed_json.clone().unwrap_or(json!(missed));
                    json!({"owner": "alice", "url": "https://example.org/witness", "total_missed": missed,
                       "signing_key": "STM6LLegbAgLAy28EHrffBVuANFWcFgmqRMW13wBmTExqFE9SCkg4",
                       "props": {"account_creation_fee": "3.000 HIVE", "maximum_block_size": 65536,
                                 "hbd_interest_rate": 1000}})
                }
                _ => return ResponseTemplate::new(200).set_body_json(
                    json!({"jsonrpc": "2.0", "id": req["id"], "error": {"code": -32601, "message": "no such method"}}),
                ),
            };
        ResponseTemplate::new(200).set_body_json(json!({"jsonrpc": "2.0", "id": req["id"], "result": result}))
    }
}

impl HostileNode {
    /// A node that behaves until scripted otherwise; `userinfo` (e.g. "user:secret@") goes into its URL.
    async fn start(clock: SharedClock, userinfo: &str) -> Self {
        let script = Arc::new(Mutex::new(Script {
            chain_id: ChainSpec::hive().chain_id_hex(),
            total_missed: 10,
            jump_head: None,
            jump_missed: None,
            body: None,
            missed_json: None,
            http503: false,
            calls: HashMap::new(),
        }));
        let genesis = clock.now_secs() - 3000 * BLOCK_INTERVAL;
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::method("POST"))
            .respond_with(Responder { script: script.clone(), clock, genesis })
            .mount(&server)
            .await;
        let url = format!("http://{userinfo}{}/", server.address());
        Self { url, script, _server: Arc::new(server) }
    }

    fn set<F: FnOnce(&mut Script)>(&self, f: F) {
        f(&mut self.script.lock().expect("script"))
    }

    fn calls(&self, method: &str) -> usize {
        self.script.lock().expect("script").calls.get(method).copied().unwrap_or(0)
    }
}

fn reader(urls: &[&str], clock: SharedClock) -> Reader {
    let settings = ReaderSettings {
        urls: urls.iter().map(|u| u.to_string()).collect(),
        timeout: Duration::from_secs(5),
        // No test here is about staleness: a generous age keeps a slow read on a loaded machine (its
        // latency ×20 on this clock) from making the honest node stale.
        max_head_age: Duration::from_secs(600),
        account: "alice".into(),
        chain_id_hex: ChainSpec::hive().chain_id_hex(),
    };
    Reader::new(settings, clock).expect("reader")
}

/// The reason endpoint `url` was skipped in `poll`, if it was.
fn skipped<'a>(poll: &'a Poll, url: &str) -> Option<&'a str> {
    poll.skipped.iter().find(|s| s.url == url).map(|s| s.reason.as_str())
}

fn fresh(poll: &Poll, url: &str) -> bool {
    poll.fresh.iter().any(|s| s.url == url)
}

/// The honest node is read and used while the hostile one (endpoint 0) is skipped for `reason`.
fn only_the_honest_one_is_used(poll: &Poll, hostile: &str, honest: &FakeNode, reason: &str) {
    let why = skipped(poll, hostile).unwrap_or_else(|| panic!("{hostile} not skipped: {poll:?}"));
    assert!(why.contains(reason), "{why}");
    assert_eq!(poll.fresh.len(), 1, "{poll:?}");
    assert_eq!(poll.best().map(|s| s.url.as_str()), Some(honest.url.as_str()));
    assert_eq!(poll.best().map(|s| s.witness.total_missed), Some(10));
}

#[tokio::test]
async fn an_oversize_answer_is_refused_by_its_length_and_the_other_endpoint_is_used() {
    let (_keys, clock, honest) = scene(ChainSpec::hive()).await;
    let hostile = HostileNode::start(clock.clone(), "").await;
    // 16 MiB (four times the limit) of a JSON string that would parse.
    let mut body = br#"{"jsonrpc":"2.0","id":1,"result":""#.to_vec();
    body.resize(16 * 1024 * 1024, b'a');
    body.extend_from_slice(br#""}"#);
    hostile.set(|s| s.body = Some(body));
    let mut r = reader(&[&hostile.url, &honest.url], clock);
    for _ in 0..3 {
        let poll = r.poll().await;
        only_the_honest_one_is_used(&poll, &hostile.url, &honest, "too large");
        let why = skipped(&poll, &hostile.url).unwrap_or_default();
        assert!(why.contains("Content-Length 16777218 bytes"), "refused before reading: {why}");
        assert!(why.contains(&format!("limit {MAX_RESPONSE_BYTES} bytes")), "{why}");
    }
    // The cap is a failed read, not a verdict: a sane answer later is used again.
    hostile.set(|s| s.body = None);
    let poll = r.poll().await;
    assert!(fresh(&poll, &hostile.url), "{poll:?}");
}

/// A raw HTTP/1.1 server whose every answer is a chunked body (no `Content-Length`) of up to `total`
/// bytes, written from one reused buffer; counts the bytes the client accepted before it hung up.
async fn chunked_server(total: usize) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    let written = Arc::new(AtomicUsize::new(0));
    let count = written.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = sock.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                if sock.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let start = br#"{"jsonrpc":"2.0","id":1,"result":""#;
                let _ = sock.write_all(format!("{:x}\r\n", start.len()).as_bytes()).await;
                let _ = sock.write_all(start).await;
                let _ = sock.write_all(b"\r\n").await;
                let chunk = vec![b'a'; 64 * 1024];
                let mut sent = 0;
                while sent < total {
                    let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk[..], &b"\r\n"[..]].concat();
                    if sock.write_all(&framed).await.is_err() {
                        return;
                    }
                    sent += chunk.len();
                    count.fetch_add(chunk.len(), Ordering::Relaxed);
                }
                let _ = sock.write_all(b"2\r\n\"}\r\n0\r\n\r\n").await;
            });
        }
    });
    (url, written)
}

#[tokio::test]
async fn an_oversize_answer_without_a_length_is_cut_while_streaming() {
    let (_keys, clock, honest) = scene(ChainSpec::hive()).await;
    // Offered: 64 MiB. A client that read it whole would take all of it; one that stops at the cap takes
    // the cap plus what the loopback socket buffers hold when it hangs up.
    let offered = 64 * 1024 * 1024;
    let (url, written) = chunked_server(offered).await;
    let mut r = reader(&[&url, &honest.url], clock);
    let poll = r.poll().await;
    only_the_honest_one_is_used(&poll, &url, &honest, "too large");
    let why = skipped(&poll, &url).unwrap_or_default();
    assert!(why.contains("at least"), "cut while streaming: {why}");
    // Give the server a moment to see the connection closed.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let taken = written.load(Ordering::Relaxed);
    assert!(taken < offered / 2, "the client stopped reading early: {taken} of {offered} bytes written");
}

#[tokio::test]
async fn deeply_nested_and_out_of_range_answers_are_failed_reads_of_that_endpoint() {
    let (_keys, clock, honest) = scene(ChainSpec::hive()).await;
    let hostile = HostileNode::start(clock.clone(), "").await;
    let mut r = reader(&[&hostile.url, &honest.url], clock);
    assert_eq!(r.poll().await.fresh.len(), 2);
    // 500 000 levels of arrays (1 MB): beyond serde_json's recursion limit of 128.
    let depth = 500_000;
    let nested = format!(r#"{{"jsonrpc":"2.0","id":1,"result":{}{}}}"#, "[".repeat(depth), "]".repeat(depth));
    hostile.set(|s| s.body = Some(nested.into_bytes()));
    only_the_honest_one_is_used(&r.poll().await, &hostile.url, &honest, "recursion limit");
    // total_missed is a uint32 on chain.
    hostile.set(|s| {
        s.body = None;
        s.missed_json = Some(json!(u64::from(u32::MAX) + 1));
    });
    only_the_honest_one_is_used(&r.poll().await, &hostile.url, &honest, "malformed answer");
    hostile.set(|s| s.missed_json = None);
    assert!(fresh(&r.poll().await, &hostile.url));
}

#[tokio::test]
async fn a_head_and_counter_far_ahead_once_are_forgotten_within_a_few_polls() {
    let (_keys, clock, honest) = scene(ChainSpec::hive()).await;
    let hostile = HostileNode::start(clock.clone(), "").await;
    let mut r = reader(&[&hostile.url, &honest.url], clock);
    let first = r.poll().await;
    assert_eq!(first.fresh.len(), 2, "{first:?}");
    // One answer a million blocks and a million misses ahead: it looks fresh (its time is right).
    hostile.set(|s| {
        s.jump_head = Some(1_000_000);
        s.jump_missed = Some(1_000_000);
    });
    let bogus = r.poll().await;
    let bad = bogus.fresh.iter().find(|s| s.url == hostile.url).expect("the bogus answer was taken");
    assert!(bad.head_block_number > 1_000_000 && bad.witness.total_missed == 1_000_010);
    // Honest again from now on: distrusted for BACKWARDS_RESET answers, then fresh for good.
    let mut polls = 0;
    loop {
        polls += 1;
        let poll = r.poll().await;
        assert!(fresh(&poll, &honest.url), "the honest endpoint is used throughout: {poll:?}");
        if fresh(&poll, &hostile.url) {
            break;
        }
        let why = skipped(&poll, &hostile.url).unwrap_or_default();
        assert!(why.contains("head went backwards") && why.contains("total_missed went backwards"), "{why}");
        assert!(polls <= BACKWARDS_RESET, "still skipped after {polls} polls: {why}");
    }
    assert_eq!(polls, BACKWARDS_RESET + 1);
    for _ in 0..10 {
        let poll = r.poll().await;
        assert_eq!(poll.fresh.len(), 2, "{poll:?}");
        assert!(poll.fresh.iter().all(|s| s.witness.total_missed == 10));
    }
}

#[tokio::test]
async fn an_endpoint_that_changes_chain_is_dropped_noticed_once_and_comes_back() {
    let logs = capture_logs();
    let (_keys, clock, honest) = scene(ChainSpec::hive()).await;
    let hostile = HostileNode::start(clock.clone(), "").await;
    let mut r = reader(&[&hostile.url, &honest.url], clock);
    assert_eq!(r.poll().await.fresh.len(), 2, "first contact checks the chain");
    assert_eq!(hostile.calls("database_api.get_version"), 1);
    hostile.set(|s| s.chain_id = OTHER_CHAIN.into());
    // Seen at the periodic re-check: the CHAIN_RECHECK_READS-th read after the last check.
    for n in 1..CHAIN_RECHECK_READS {
        assert_eq!(r.poll().await.fresh.len(), 2, "poll {n}: not re-checked yet");
    }
    assert!(r.take_notices().is_empty());
    let poll = r.poll().await;
    only_the_honest_one_is_used(&poll, &hostile.url, &honest, "dropped");
    let why = skipped(&poll, &hostile.url).unwrap_or_default();
    assert!(why.contains(&format!("now serves chain id {OTHER_CHAIN}")), "{why}");
    let notices = r.take_notices();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].starts_with(&hostile.url) && notices[0].contains(OTHER_CHAIN) && notices[0].contains("dropped"));
    assert!(logs.text().contains("endpoint dropped: it serves another chain"), "logged");
    assert!(logs.text().contains(&hostile.url), "logged with its URL");
    assert_eq!(r.troubles().len(), 1);
    // Dropped: skipped every poll with the reason, probed (chain id only) every CHAIN_RECHECK_READS polls,
    // and noticed only once.
    let (versions, heads) =
        (hostile.calls("database_api.get_version"), hostile.calls("condenser_api.get_dynamic_global_properties"));
    for _ in 0..2 * CHAIN_RECHECK_READS {
        let poll = r.poll().await;
        only_the_honest_one_is_used(&poll, &hostile.url, &honest, "dropped");
    }
    assert!(r.take_notices().is_empty(), "one notice per change");
    assert_eq!(hostile.calls("database_api.get_version"), versions + 2);
    assert_eq!(hostile.calls("condenser_api.get_dynamic_global_properties"), heads, "never read while dropped");
    // Back on the configured chain: in use again at the next probe, and said so.
    hostile.set(|s| s.chain_id = ChainSpec::hive().chain_id_hex());
    let mut polls = 0;
    while !fresh(&r.poll().await, &hostile.url) {
        polls += 1;
        assert!(polls < CHAIN_RECHECK_READS, "still dropped after {polls} polls");
    }
    let notices = r.take_notices();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].contains("back in use"), "{}", notices[0]);
    assert!(r.troubles().is_empty());
}

#[tokio::test]
async fn an_endpoint_back_after_a_failure_is_checked_for_its_chain_at_once() {
    let (_keys, clock, honest) = scene(ChainSpec::hive()).await;
    // Credentials in the URL never show in reasons or notices.
    let hostile = HostileNode::start(clock.clone(), "user:s3cret@").await;
    let mut r = reader(&[&hostile.url, &honest.url], clock);
    let label = r.endpoints()[0].url().to_string();
    assert!(!label.contains("s3cret"));
    assert_eq!(r.poll().await.fresh.len(), 2);
    // It goes away, and comes back restarted on another chain.
    hostile.set(|s| s.http503 = true);
    only_the_honest_one_is_used(&r.poll().await, &label, &honest, "HTTP 503");
    hostile.set(|s| {
        s.http503 = false;
        s.chain_id = OTHER_CHAIN.into();
    });
    let poll = r.poll().await;
    only_the_honest_one_is_used(&poll, &label, &honest, "dropped");
    let notices = r.take_notices();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].contains(OTHER_CHAIN) && notices[0].contains("127.0.0.1"), "{}", notices[0]);
    assert!(!notices[0].contains("s3cret") && !notices[0].contains("user"), "{}", notices[0]);
    assert!(poll.skipped.iter().all(|s| !s.reason.contains("s3cret")));
}
