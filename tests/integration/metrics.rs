//! `METRICS_ADDR` end to end: the trap on the simulated chain serves `/metrics`, scraped and parsed with a
//! Prometheus text-format parser (never string matching) while armed, while it fires, and while it idles
//! disarmed after the fire; a port that cannot be bound stops the run before arming, naming the variable.

use std::collections::HashMap;
use std::time::Duration;

use chain_clock::SharedClock;
use graphene_protocol::chain::ChainSpec;
use graphene_sim::SimNode;
use prometheus_parse::{Scrape, Value};
use tokio_util::sync::CancellationToken;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};
use witness_trap::cli::ExitStatus;
use witness_trap::config::{vars as v, VarMap};

use crate::support::*;

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Scrape and parse `/metrics`, or `None` while nothing listens.
async fn scrape(port: u16) -> Option<Scrape> {
    let client = reqwest::Client::builder().no_proxy().build().ok()?;
    let body = client.get(format!("http://127.0.0.1:{port}/metrics")).send().await.ok()?.text().await.ok()?;
    Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).ok()
}

/// The value of the one sample `name` whose labels include `labels`.
fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = s
        .samples
        .iter()
        .filter(|x| x.metric == name && labels.iter().all(|(k, val)| x.labels.get(k) == Some(*val)))
        .map(|x| match x.value {
            Value::Gauge(n) | Value::Counter(n) | Value::Untyped(n) => n,
            _ => f64::NAN,
        })
        .collect();
    assert_eq!(found.len(), 1, "{name}{labels:?}: {:#?}", s.samples);
    found[0]
}

/// Scrape until `cond` holds (up to 30 s).
async fn scrape_until(port: u16, what: &str, cond: impl Fn(&Scrape) -> bool) -> Scrape {
    for _ in 0..300 {
        if let Some(s) = scrape(port).await {
            if cond(&s) {
                return s;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn world() -> (SimNode, SharedClock, HashMap<String, String>, tempfile::TempDir, MockServer, u16) {
    let (sim, clock, keys) = fast_sim(21).await;
    let chain = ChainSpec::hive();
    // The fire's alert takes eight (real) seconds to deliver (under the webhook's 10 s timeout): long
    // enough to scrape a trap that has fired, even on a loaded machine.
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(8)))
        .mount(&hook)
        .await;
    let (dir, state_file) = temp_state();
    let port = free_port();
    let vars =
        VarMap::graphene("alice", &chain, &sim.urls(), &keys.backup.public_key(), &keys.primary.to_wif(), &state_file)
            .with(v::MISSED_BLOCKS_ALLOWED, 1)
            .with(v::POLL_INTERVAL_SECS, 6)
            .with(v::RPC_TIMEOUT_SECS, 2)
            .with(v::WEBHOOK_URL, format!("{}/hook", hook.uri()))
            .with(v::METRICS_ADDR, format!("127.0.0.1:{port}"))
            .into_map();
    (sim, clock, vars, dir, hook, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_the_trap_armed_firing_and_disarmed() {
    let (sim, clock, vars, _dir, _hook, port) = world().await;
    let (c, stop) = (clock.clone(), CancellationToken::new());
    let run_vars = vars.clone();
    let task = tokio::spawn(async move { run(&run_vars, c, stop, true).await });

    // A healthy poll with both endpoints up (a loaded machine may time one out in the first poll).
    let labels: Vec<String> = sim.urls().iter().map(|u| witness_trap::redact::url(u)).collect();
    let armed = scrape_until(port, "a healthy poll with every endpoint up", |s| {
        value(s, "witness_trap_polls_total", &[("result", "healthy")]) >= 1.0
            && labels.iter().all(|l| value(s, "witness_trap_endpoint_up", &[("endpoint", l)]) == 1.0)
    })
    .await;
    assert_eq!(value(&armed, "witness_trap_state", &[("state", "armed")]), 1.0);
    assert_eq!(value(&armed, "witness_trap_state", &[("state", "fired")]), 0.0);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        value(&armed, "witness_trap_build_info", &[("version", version), ("chain", "hive"), ("account", "alice")]),
        1.0
    );
    assert_eq!(value(&armed, "witness_trap_trigger_missed_blocks", &[]), 1.0);
    assert_eq!(value(&armed, "witness_trap_missed_blocks", &[]), 0.0);
    assert!(value(&armed, "witness_trap_last_poll_timestamp_seconds", &[]) > 1.7e9);
    for url in sim.urls() {
        let label = witness_trap::redact::url(&url);
        assert_eq!(value(&armed, "witness_trap_endpoint_up", &[("endpoint", &label)]), 1.0, "{label}");
        assert!(value(&armed, "witness_trap_endpoint_latency_seconds_count", &[("endpoint", &label)]) >= 1.0);
    }
    assert_eq!(value(&armed, "witness_trap_fires_total", &[("outcome", "swapped")]), 0.0);
    assert_eq!(value(&armed, "witness_trap_alert_deliveries_total", &[("sink", "webhook"), ("outcome", "sent")]), 0.0);

    sim.fail_primary();
    let fired = scrape_until(port, "the fire", |s| value(s, "witness_trap_state", &[("state", "fired")]) == 1.0).await;
    assert_eq!(value(&fired, "witness_trap_state", &[("state", "armed")]), 0.0);
    assert_eq!(value(&fired, "witness_trap_fires_total", &[("outcome", "swapped")]), 1.0);
    assert_eq!(value(&fired, "witness_trap_fires_total", &[("outcome", "failed")]), 0.0);
    assert!(value(&fired, "witness_trap_missed_blocks", &[]) >= 1.0);
    assert_eq!(tokio::time::timeout(Duration::from_secs(60), task).await.expect("ends").expect("join"), ExitStatus::Ok);

    // Started again, it idles disarmed, and says so to Prometheus as long as it runs.
    let (c, stop) = (clock.clone(), CancellationToken::new());
    let stopper = stop.clone();
    let idle = tokio::spawn(async move { run(&vars, c, stopper, false).await });
    let disarmed =
        scrape_until(port, "the disarmed trap", |s| value(s, "witness_trap_state", &[("state", "fired")]) == 1.0).await;
    assert_eq!(value(&disarmed, "witness_trap_polls_total", &[("result", "healthy")]), 0.0, "a fired trap never polls");
    stop.cancel();
    assert_eq!(idle.await.expect("join"), ExitStatus::Ok);
    assert!(scrape(port).await.is_none(), "the endpoint stops with the process's run");
}

#[tokio::test]
async fn a_metrics_port_that_cannot_be_bound_stops_the_run_before_arming() {
    let (_sim, clock, mut vars, _dir, _hook, _) = world().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    vars.insert(v::METRICS_ADDR.into(), format!("127.0.0.1:{port}"));
    let state_file = std::path::PathBuf::from(&vars[v::STATE_FILE]);
    assert_eq!(run(&vars, clock, CancellationToken::new(), true).await, ExitStatus::Config);
    assert!(!state_file.exists(), "nothing was armed");
}
