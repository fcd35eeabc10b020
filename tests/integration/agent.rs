//! The node agent end to end on loopback: a fake nodeos `producer_api` (TCP or a Unix socket) and the real
//! agent in process (and once as `witness-trap agent`), driven through the trap's client: pause, resume and
//! paused; every refusal, with nothing reaching nodeos; a nodeos failure reported back; TLS; and
//! `key new --kind agent` through the binary.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chain_clock::{SharedClock, SystemClock};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request as HttpRequest, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use witness_trap::agent::client::NodeosAnswer;
use witness_trap::agent::request::{fresh_nonce, KEY_HEADER, SIGNATURE_HEADER};
use witness_trap::agent::{
    Action, Agent, AgentClient, AgentSigningKey, AntelopeProducerApi, ClientError, ClientOptions, ProducerApi, Request,
    SignedRequest, Verifier,
};
use witness_trap::config::{agent as agent_config, vars as v, VarMap};

use crate::support::{bin, capture_logs, wait_for};

const NODE: &str = "bp1";

/// What the fake nodeos answers and what it was asked.
#[derive(Default)]
struct FakeState {
    paused: AtomicBool,
    calls: Mutex<Vec<String>>,
    /// When set, every call is answered with this status and body.
    fail: Mutex<Option<(u16, String)>>,
}

/// A fake nodeos `producer_api`: `/v1/producer/{pause,resume,paused}` as Spring answers them.
#[derive(Clone, Default)]
struct FakeNodeos(Arc<FakeState>);

impl FakeNodeos {
    fn calls(&self) -> Vec<String> {
        self.0.calls.lock().unwrap().clone()
    }

    fn fail_with(&self, status: u16, body: &str) {
        *self.0.fail.lock().unwrap() = Some((status, body.to_string()));
    }

    fn answer(&self, path: &str) -> (u16, String) {
        self.0.calls.lock().unwrap().push(path.to_string());
        if let Some(fail) = self.0.fail.lock().unwrap().clone() {
            return fail;
        }
        match path {
            "/v1/producer/pause" => {
                self.0.paused.store(true, Ordering::SeqCst);
                (201, r#"{"result":"ok"}"#.into())
            }
            "/v1/producer/resume" => {
                self.0.paused.store(false, Ordering::SeqCst);
                (201, r#"{"result":"ok"}"#.into())
            }
            "/v1/producer/paused" => (201, self.0.paused.load(Ordering::SeqCst).to_string()),
            _ => (404, r#"{"code":404,"message":"Not Found"}"#.into()),
        }
    }

    fn serve<S>(&self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let fake = self.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: HttpRequest<Incoming>| {
                let (status, body) = fake.answer(req.uri().path());
                let mut response = Response::new(Full::new(Bytes::from(body)));
                *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }

    /// Serve on 127.0.0.1; the `NODEOS_PRODUCER_API` URL.
    async fn start_tcp(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fake = self.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                fake.serve(stream);
            }
        });
        url
    }

    /// Serve on a Unix socket at `path`.
    fn start_unix(&self, path: &Path) {
        let listener = tokio::net::UnixListener::bind(path).unwrap();
        let fake = self.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                fake.serve(stream);
            }
        });
    }
}

fn clock() -> SharedClock {
    Arc::new(SystemClock)
}

/// The real agent on 127.0.0.1 in front of `nodeos`, trusting `trusted`; its base URL.
async fn start_agent(nodeos: &str, trusted: &AgentSigningKey, shutdown: &CancellationToken) -> String {
    let backend = AntelopeProducerApi::new(ProducerApi::parse(nodeos).unwrap(), Duration::from_secs(5));
    let verifier = Verifier::new(vec![AgentSigningKey::generate().public_key(), trusted.public_key()], NODE.into());
    let agent = Arc::new(Agent::new(verifier, Arc::new(backend), clock()));
    let (addr, _task) =
        witness_trap::agent::serve("127.0.0.1:0".parse().unwrap(), None, agent, shutdown.clone()).await.unwrap();
    format!("http://{addr}")
}

fn client(url: &str, key: AgentSigningKey) -> AgentClient {
    AgentClient::new(url, Arc::new(key), clock(), ClientOptions::default()).unwrap()
}

fn same_key(key: &AgentSigningKey) -> AgentSigningKey {
    AgentSigningKey::parse(&key.to_secret_text()).unwrap()
}

fn now_ms() -> u64 {
    u64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

fn request(action: Action, node: &str, expires_at: u64) -> Request {
    Request { action, node: node.into(), nonce: fresh_nonce(), expires_at, tower: None }
}

/// The code and status of a refusal.
fn refused(r: Result<witness_trap::agent::Done, ClientError>) -> (String, u16) {
    match r {
        Err(ClientError::Refused { code, status, .. }) => (code, status),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn pause_resume_and_paused_end_to_end() {
    let nodeos = FakeNodeos::default();
    let shutdown = CancellationToken::new();
    let key = AgentSigningKey::generate();
    let url = start_agent(&nodeos.start_tcp().await, &key, &shutdown).await;
    let c = client(&url, key);

    assert!(!c.paused(NODE).await.unwrap());
    assert_eq!(
        c.pause(NODE).await.unwrap(),
        witness_trap::agent::Done { action: Action::Pause, paused: None, head: None, identity: None, tower: None }
    );
    assert!(c.paused(NODE).await.unwrap());
    c.resume(NODE).await.unwrap();
    assert!(!c.paused(NODE).await.unwrap());
    let expected: Vec<String> =
        ["paused", "pause", "paused", "resume", "paused"].iter().map(|a| format!("/v1/producer/{a}")).collect();
    assert_eq!(nodeos.calls(), expected);
    shutdown.cancel();
}

#[tokio::test]
async fn every_refusal_is_named_logged_and_changes_nothing() {
    let logs = capture_logs();
    let nodeos = FakeNodeos::default();
    let shutdown = CancellationToken::new();
    let key = AgentSigningKey::generate();
    let url = start_agent(&nodeos.start_tcp().await, &key, &shutdown).await;
    let trap = client(&url, same_key(&key));
    let secret = key.to_secret_text();
    let raw = reqwest::Client::builder().no_proxy().build().unwrap();
    let endpoint = format!("{url}/v1/agent");

    // Unsigned: a well-formed body with no headers.
    let body = serde_json::to_vec(&request(Action::Pause, NODE, now_ms() + 5_000)).unwrap();
    let r = raw.post(&endpoint).body(body.clone()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!((answer["ok"].as_bool(), answer["error"].as_str()), (Some(false), Some("unsigned")), "{answer}");

    // Wrong key: the trusted key's name on another key's signature.
    let stranger = AgentSigningKey::generate();
    let forged = SignedRequest::sign(&request(Action::Pause, NODE, now_ms() + 5_000), &stranger);
    let r = raw
        .post(&endpoint)
        .header(KEY_HEADER, key.public_key().to_string())
        .header(SIGNATURE_HEADER, &forged.signature)
        .body(forged.body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"], "bad_signature");

    // Untrusted key.
    assert_eq!(refused(client(&url, stranger).pause(NODE).await), ("untrusted_key".into(), 403));
    // Another node.
    assert_eq!(refused(trap.pause("bp2").await), ("wrong_node".into(), 403));
    // Expired, and too far in the future.
    let expired = request(Action::Pause, NODE, now_ms() - 1);
    let r = trap.send_signed(&SignedRequest::sign(&expired, &key), &expired).await;
    assert_eq!(refused(r), ("expired".into(), 401));
    let ahead = request(Action::Pause, NODE, now_ms() + 120_000);
    let r = trap.send_signed(&SignedRequest::sign(&ahead, &key), &ahead).await;
    assert_eq!(refused(r), ("too_far_ahead".into(), 400));
    // Malformed: signed by the trusted key, but not a request.
    let garbage = br#"{"action":"reboot","node":"bp1"}"#;
    let sig = base64_signature(&key, garbage);
    let r = raw
        .post(&endpoint)
        .header(KEY_HEADER, key.public_key().to_string())
        .header(SIGNATURE_HEADER, sig)
        .body(garbage.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"], "malformed");
    // Other paths and methods.
    assert_eq!(raw.get(&endpoint).send().await.unwrap().status().as_u16(), 405);
    assert_eq!(raw.post(format!("{url}/v1/producer/pause")).send().await.unwrap().status().as_u16(), 404);
    assert!(nodeos.calls().is_empty(), "no refused request reached nodeos: {:?}", nodeos.calls());

    // Replayed: the first passes, the same bytes again are refused.
    let once = request(Action::Pause, NODE, now_ms() + 10_000);
    let signed = SignedRequest::sign(&once, &key);
    trap.send_signed(&signed, &once).await.unwrap();
    assert_eq!(refused(trap.send_signed(&signed, &once).await), ("replay".into(), 409));
    assert_eq!(nodeos.calls(), vec!["/v1/producer/pause".to_string()], "the replay did nothing");

    let text = logs.text();
    for code in
        ["unsigned", "bad_signature", "untrusted_key", "wrong_node", "expired", "too_far_ahead", "malformed", "replay"]
    {
        assert!(text.contains(&format!("\"code\":\"{code}\"")), "refusal {code} not logged");
    }
    let seed = secret.trim_start_matches("ed25519-secret:");
    assert!(!text.contains(seed), "the trap's secret is in the log");
    shutdown.cancel();
}

fn base64_signature(key: &AgentSigningKey, body: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(key.sign(body).to_bytes())
}

#[tokio::test]
async fn a_nodeos_failure_is_reported_back_with_its_answer() {
    let nodeos = FakeNodeos::default();
    let shutdown = CancellationToken::new();
    let key = AgentSigningKey::generate();
    let url = start_agent(&nodeos.start_tcp().await, &key, &shutdown).await;
    let c = client(&url, key);

    nodeos.fail_with(500, r#"{"code":500,"message":"Internal Service Error","error":{"what":"producer_ha_plugin"}}"#);
    match c.pause(NODE).await {
        Err(ClientError::ActionFailed { code, status, nodeos: Some(NodeosAnswer { status: 500, answer }), .. }) => {
            assert_eq!((code.as_str(), status), ("nodeos_refused", 502));
            assert!(answer.contains("producer_ha_plugin"), "{answer}");
        }
        other => panic!("{other:?}"),
    }
    // A 201 that is not {"result":"ok"} is a failure too, and a long answer comes back bounded.
    nodeos.fail_with(201, &format!(r#"{{"result":"{}"}}"#, "x".repeat(5_000)));
    match c.resume(NODE).await {
        Err(ClientError::ActionFailed { nodeos: Some(NodeosAnswer { status: 201, answer }), .. }) => {
            assert!(answer.len() < 1_000 && answer.ends_with('…'), "{answer}");
        }
        other => panic!("{other:?}"),
    }
    nodeos.fail_with(201, r#"{"result":"ok"}"#);
    assert!(matches!(c.paused(NODE).await, Err(ClientError::ActionFailed { .. })), "paused needs true or false");

    // No nodeos at all.
    let gone = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let key = AgentSigningKey::generate();
    let url = start_agent(&gone, &key, &shutdown).await;
    match client(&url, key).pause(NODE).await {
        Err(ClientError::ActionFailed { code, nodeos: None, .. }) => assert_eq!(code, "nodeos_unreachable"),
        other => panic!("{other:?}"),
    }
    shutdown.cancel();
}

#[tokio::test]
async fn a_unix_socket_nodeos() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("producer_rw.sock");
    let nodeos = FakeNodeos::default();
    nodeos.start_unix(&socket);
    let shutdown = CancellationToken::new();
    let key = AgentSigningKey::generate();
    let url = start_agent(&format!("unix:{}", socket.display()), &key, &shutdown).await;
    let c = client(&url, key);
    c.pause(NODE).await.unwrap();
    assert!(c.paused(NODE).await.unwrap());
    assert_eq!(nodeos.calls(), vec!["/v1/producer/pause".to_string(), "/v1/producer/paused".to_string()]);
    shutdown.cancel();
}

#[tokio::test]
async fn tls_from_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let (cert_file, key_file) = (dir.path().join("agent.crt"), dir.path().join("agent.key"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();

    let nodeos = FakeNodeos::default();
    let trap_key = AgentSigningKey::generate();
    let vars = VarMap::new()
        .with(v::AGENT_LISTEN, "127.0.0.1:0")
        .with(v::AGENT_TLS_CERT_FILE, cert_file.display())
        .with(v::AGENT_TLS_KEY_FILE, key_file.display())
        .with(v::AGENT_TRUSTED_KEYS, trap_key.public_key())
        .with(v::AGENT_NODE_NAME, NODE)
        .with(v::AGENT_ACTION, "antelope-producer-api")
        .with(v::NODEOS_PRODUCER_API, nodeos.start_tcp().await);
    let settings = agent_config::load(&vars).unwrap_or_else(|r| panic!("{r}"));
    assert!(settings.tls.is_some());
    let shutdown = CancellationToken::new();
    let agent = Arc::new(Agent::from_settings(&settings, clock()));
    let (addr, _task) =
        witness_trap::agent::serve(settings.listen, settings.tls.clone(), agent, shutdown.clone()).await.unwrap();

    let options =
        ClientOptions { root_certificate_pem: Some(cert.cert.pem().into_bytes()), ..ClientOptions::default() };
    let tls = AgentClient::new(&format!("https://{addr}"), Arc::new(same_key(&trap_key)), clock(), options).unwrap();
    tls.pause(NODE).await.unwrap();
    assert!(tls.paused(NODE).await.unwrap());

    // Without the certificate trusted, or in plain HTTP, nothing gets through.
    let untrusting = client(&format!("https://{addr}"), same_key(&trap_key));
    assert!(matches!(untrusting.resume(NODE).await, Err(ClientError::Unreachable { .. })));
    let plain = client(&format!("http://{addr}"), same_key(&trap_key));
    assert!(plain.resume(NODE).await.is_err());
    assert_eq!(nodeos.calls(), vec!["/v1/producer/pause".to_string(), "/v1/producer/paused".to_string()]);

    // Only one of the two TLS files is a configuration problem naming the missing one.
    let mut half = vars.clone();
    half.unset(v::AGENT_TLS_KEY_FILE);
    let report = agent_config::load(&half).unwrap_err();
    assert!(report.problems.iter().any(|p| p.var == v::AGENT_TLS_KEY_FILE), "{report}");
    shutdown.cancel();
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_and_stops_on_sigterm() {
    let nodeos = FakeNodeos::default();
    let key = AgentSigningKey::generate();
    let port = free_port();
    let env: HashMap<&str, String> = HashMap::from([
        (v::AGENT_LISTEN, format!("127.0.0.1:{port}")),
        (v::AGENT_TRUSTED_KEYS, key.public_key().to_string()),
        (v::AGENT_NODE_NAME, NODE.to_string()),
        (v::AGENT_ACTION, "antelope-producer-api".to_string()),
        (v::NODEOS_PRODUCER_API, nodeos.start_tcp().await),
        (v::LOG_FORMAT, "json".to_string()),
    ]);
    let mut child = bin()
        .arg("agent")
        .envs(&env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let c = client(&format!("http://127.0.0.1:{port}"), same_key(&key));
    wait_for("the agent to listen", || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()).await;
    c.pause(NODE).await.unwrap();
    assert!(c.paused(NODE).await.unwrap());
    assert_eq!(refused(c.pause("bp2").await).0, "wrong_node");

    let stopped = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(stopped.success());
    let out = tokio::task::spawn_blocking(move || {
        let _ = child.wait();
        child.wait_with_output()
    })
    .await
    .unwrap()
    .unwrap();
    let logs = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{:?}\n{logs}", out.status);
    for line in ["agent listening", "\"code\":\"wrong_node\"", "agent stopped"] {
        assert!(logs.contains(line), "{line} not in\n{logs}");
    }
    assert_eq!(nodeos.calls(), vec!["/v1/producer/pause".to_string(), "/v1/producer/paused".to_string()]);
}

#[test]
fn the_binary_names_every_missing_variable() {
    let out = bin().arg("agent").env(v::AGENT_LISTEN, "nowhere").output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for var in [v::AGENT_LISTEN, v::AGENT_TRUSTED_KEYS, v::AGENT_NODE_NAME, v::AGENT_ACTION] {
        assert!(stderr.contains(&format!("  {var}: ")), "{var} not named in\n{stderr}");
    }
    assert!(stderr.contains("the agent will not run"), "{stderr}");
}

#[test]
fn key_new_kind_agent_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("trap-agent.key");
    let out = bin().args(["key", "new", "--kind", "agent", "--out"]).arg(&out_file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let public = printed["public_key"].as_str().unwrap();
    assert!(public.starts_with("ed25519:"), "{public}");
    assert_eq!(printed.as_object().unwrap().len(), 1, "{printed}");

    let secret = std::fs::read_to_string(&out_file).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let key = AgentSigningKey::parse(&secret).unwrap();
    assert_eq!(key.public_key().to_string(), public);
    let seed = secret.trim().trim_start_matches("ed25519-secret:");
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!all.contains(seed), "the secret is on stdout or stderr");
    // The printed key is what AGENT_TRUSTED_KEYS takes.
    let vars = VarMap::new()
        .with(v::AGENT_LISTEN, "127.0.0.1:0")
        .with(v::AGENT_TRUSTED_KEYS, public)
        .with(v::AGENT_NODE_NAME, NODE)
        .with(v::AGENT_ACTION, "antelope-producer-api");
    assert_eq!(agent_config::load(&vars).unwrap_or_else(|r| panic!("{r}")).trusted_keys, vec![key.public_key()]);
    // The trap reads it from AGENT_CLIENT_KEY_FILE.
    let trap = VarMap::new().with("AGENT_CLIENT_KEY_FILE", out_file.display());
    assert_eq!(agent_config::client_key(&trap).unwrap().unwrap().public_key(), key.public_key());

    // Never overwritten.
    let again = bin().args(["key", "new", "--kind", "agent", "--out"]).arg(&out_file).output().unwrap();
    assert!(!again.status.success() && again.stdout.is_empty());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), secret);
}

/// An agent host that never accepts the connection (its accept queue full: to the trap it looks like a
/// host that is gone or blackholed) is unreachable after the client's connect timeout, not a request hung
/// for the whole request timeout: a failover standing in for a dead primary does not wait that out.
#[tokio::test]
async fn a_host_that_never_accepts_the_connection_is_unreachable_not_hung() {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap(); // never accepted
    let addr = listener.local_addr().unwrap();
    // Fill the accept queue; the kernel then drops further connection attempts, so a connect hangs.
    let mut held = Vec::new();
    for _ in 0..4 {
        let attempt = tokio::time::timeout(Duration::from_millis(300), tokio::net::TcpStream::connect(addr)).await;
        if let Ok(Ok(stream)) = attempt {
            held.push(stream);
        }
    }
    assert!(!held.is_empty(), "the queue took a connection");
    // Under the ~30 s the kernel takes to give up on its own: without a connect timeout this is a Timeout.
    let options = ClientOptions { timeout: Duration::from_secs(20), ..ClientOptions::default() };
    let c =
        AgentClient::new(&format!("http://{addr}"), Arc::new(AgentSigningKey::generate()), clock(), options).unwrap();
    match c.paused(NODE).await {
        Err(ClientError::Unreachable { .. }) => {}
        other => panic!("a connection never accepted is unreachable, not a hung request: {other:?}"),
    }
    drop(listener);
}
