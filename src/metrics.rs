//! The trap's Prometheus metrics and the HTTP endpoint serving them (`METRICS_ADDR`, `GET /metrics`).
//!
//! The exposition is OpenMetrics text written by `prometheus-client`. Every family and every label set
//! that is known when the trap starts exists from the first scrape (at zero), so alerting rules and
//! dashboards never see a series appear late or go missing:
//!
//! | family | type | labels |
//! | --- | --- | --- |
//! | `witness_trap_build_info` | gauge, always 1 | `version`, `chain`, `account` |
//! | `witness_trap_state` | gauge, exactly one series 1 | `state`: `armed`, `firing`, `fired` |
//! | `witness_trap_last_poll_timestamp_seconds` | gauge: unix time of the last healthy poll, 0 before it | |
//! | `witness_trap_missed_blocks` | gauge: misses since arming, as last seen | |
//! | `witness_trap_trigger_missed_blocks` | gauge: misses allowed since arming | |
//! | `witness_trap_endpoint_up` | gauge 0/1 | `endpoint` (redacted URL) |
//! | `witness_trap_endpoint_latency_seconds` | histogram | `endpoint` |
//! | `witness_trap_polls_total` | counter | `result`: `healthy`, `blind`, `distrusted` |
//! | `witness_trap_fires_total` | counter | `outcome`: `swapped`, `failed` |
//! | `witness_trap_alert_deliveries_total` | counter | `sink`, `outcome`: `sent`, `failed` |
//!
//! The server is a bare hyper HTTP/1 server, one task per connection; it is read-only and has no
//! state of its own, so a scraper can never affect the trap.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

/// The `Content-Type` of the OpenMetrics text that `prometheus_client::encoding::text` writes.
pub const CONTENT_TYPE_OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the endpoint latency histogram, in seconds: RPC calls that matter sit between tens of
/// milliseconds and the client's timeout.
const LATENCY_BUCKETS: [f64; 8] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A client that has not sent its request headers by then is dropped (slow or stuck clients would
/// otherwise hold a task and a socket forever).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight scrapes may finish after shutdown before their connections are aborted.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What a poll concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollResult {
    /// An endpoint answered with data the trap could use.
    Healthy,
    /// No healthy endpoint.
    Blind,
    /// The data could not be trusted (a counter went backwards, a chain id changed, endpoints
    /// contradict each other, one is untrusted).
    Distrusted,
}

impl PollResult {
    const ALL: [Self; 3] = [Self::Healthy, Self::Blind, Self::Distrusted];

    fn label(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Blind => "blind",
            Self::Distrusted => "distrusted",
        }
    }
}

/// The trap's phase, as `witness_trap_state` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapPhase {
    Armed,
    Firing,
    Fired,
    /// Disarmed by a planned switch.
    Switched,
}

impl TrapPhase {
    const ALL: [Self; 4] = [Self::Armed, Self::Firing, Self::Fired, Self::Switched];

    fn label(self) -> &'static str {
        match self {
            Self::Armed => "armed",
            Self::Firing => "firing",
            Self::Fired => "fired",
            Self::Switched => "switched",
        }
    }
}

const FIRE_OUTCOMES: [&str; 2] = ["swapped", "failed"];
const DELIVERY_OUTCOMES: [&str; 2] = ["sent", "failed"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    chain: String,
    account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PollLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FireLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    sink: String,
    outcome: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The trap's metrics. The handles are `Arc`-backed atomics shared with the registry, so recording is
/// cheap and needs only `&self`; share one `Arc<Metrics>` between the trap and [`serve`].
pub struct Metrics {
    registry: Registry,
    state: Family<StateLabels, Gauge>,
    /// Held while the state gauges change and while encoding, so no scrape sees two phases (or none) at 1.
    state_lock: Mutex<()>,
    last_poll: Gauge<f64, AtomicU64>,
    missed: Gauge<u64, AtomicU64>,
    trigger: Gauge<u64, AtomicU64>,
    endpoint_up: Family<EndpointLabels, Gauge>,
    endpoint_latency: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    polls: Family<PollLabels, Counter>,
    fires: Family<FireLabels, Counter>,
    deliveries: Family<DeliveryLabels, Counter>,
}

impl Metrics {
    /// Every family, with the series for `endpoints` (already redacted: they become label values) and
    /// `sinks` created at zero. The phase starts as armed until [`Metrics::set_phase`] says otherwise.
    pub fn new(account: &str, chain: &str, endpoints: &[String], sinks: &[&str]) -> Self {
        let mut registry = Registry::with_prefix("witness_trap");

        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                chain: chain.to_string(),
                account: account.to_string(),
            })
            .set(1);
        registry.register("build_info", "The running witness-trap: version, chain and watched account", build);

        let state: Family<StateLabels, Gauge> = Family::default();
        registry.register(
            "state",
            "The trap's phase: the series of the current phase is 1, the others 0",
            state.clone(),
        );

        let last_poll = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "last_poll_timestamp",
            "Unix time of the last healthy poll (0 before the first)",
            Unit::Seconds,
            last_poll.clone(),
        );

        let missed = Gauge::<u64, AtomicU64>::default();
        registry.register("missed_blocks", "Blocks missed since arming, as last seen", missed.clone());

        let trigger = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "trigger_missed_blocks",
            "Blocks that may be missed since arming before the trap fires",
            trigger.clone(),
        );

        let endpoint_up: Family<EndpointLabels, Gauge> = Family::default();
        registry.register(
            "endpoint_up",
            "Whether the endpoint answered the last poll (1) or not (0)",
            endpoint_up.clone(),
        );

        let endpoint_latency: Family<EndpointLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "endpoint_latency",
            "Time the endpoint took to answer a poll",
            Unit::Seconds,
            endpoint_latency.clone(),
        );

        // Counters: prometheus-client appends `_total` itself.
        let polls: Family<PollLabels, Counter> = Family::default();
        registry.register("polls", "Polls by what they concluded", polls.clone());

        let fires: Family<FireLabels, Counter> = Family::default();
        registry.register("fires", "Times the trap fired, by whether the key swap succeeded", fires.clone());

        let deliveries: Family<DeliveryLabels, Counter> = Family::default();
        registry.register("alert_deliveries", "Alert deliveries by sink and outcome", deliveries.clone());

        // Pre-create every known series so the first scrape already has them at zero (the guards only
        // hold the family's lock).
        for endpoint in endpoints {
            let labels = EndpointLabels { endpoint: endpoint.clone() };
            drop(endpoint_up.get_or_create(&labels));
            drop(endpoint_latency.get_or_create(&labels));
        }
        for result in PollResult::ALL {
            drop(polls.get_or_create(&PollLabels { result: result.label() }));
        }
        for outcome in FIRE_OUTCOMES {
            drop(fires.get_or_create(&FireLabels { outcome }));
        }
        for sink in sinks {
            for outcome in DELIVERY_OUTCOMES {
                drop(deliveries.get_or_create(&DeliveryLabels { sink: sink.to_string(), outcome }));
            }
        }

        let metrics = Self {
            registry,
            state,
            state_lock: Mutex::new(()),
            last_poll,
            missed,
            trigger,
            endpoint_up,
            endpoint_latency,
            polls,
            fires,
            deliveries,
        };
        metrics.set_phase(TrapPhase::Armed);
        metrics
    }

    /// Show `phase` as the trap's state: its series 1, the others 0.
    pub fn set_phase(&self, phase: TrapPhase) {
        let _guard = self.state_lock.lock().unwrap_or_else(|p| p.into_inner());
        for p in TrapPhase::ALL {
            self.state.get_or_create(&StateLabels { state: p.label() }).set(i64::from(p == phase));
        }
    }

    /// Count a poll; a healthy one also becomes the last poll time (`at_unix_secs`).
    pub fn poll(&self, result: PollResult, at_unix_secs: f64) {
        self.polls.get_or_create(&PollLabels { result: result.label() }).inc();
        if result == PollResult::Healthy {
            self.last_poll.set(at_unix_secs);
        }
    }

    /// Blocks missed since arming, as last seen.
    pub fn missed(&self, misses_since_arming: u64) {
        self.missed.set(misses_since_arming);
    }

    /// Blocks that may be missed since arming before the trap fires.
    pub fn trigger(&self, allowed: u64) {
        self.trigger.set(allowed);
    }

    /// Whether `endpoint` (the redacted URL given to [`Metrics::new`]) answered, and how fast when known.
    /// An endpoint not given to `new` gets its series now.
    pub fn endpoint(&self, endpoint: &str, up: bool, latency: Option<Duration>) {
        let labels = EndpointLabels { endpoint: endpoint.to_string() };
        self.endpoint_up.get_or_create(&labels).set(i64::from(up));
        if let Some(latency) = latency {
            self.endpoint_latency.get_or_create(&labels).observe(latency.as_secs_f64());
        }
    }

    /// Count a fire: `swapped` when the key swap went through.
    pub fn fire(&self, swapped: bool) {
        let outcome = if swapped { "swapped" } else { "failed" };
        self.fires.get_or_create(&FireLabels { outcome }).inc();
    }

    /// Count an alert delivery to `sink`. A sink not given to [`Metrics::new`] gets its series now.
    pub fn alert_delivery(&self, sink: &str, sent: bool) {
        let outcome = if sent { "sent" } else { "failed" };
        self.deliveries.get_or_create(&DeliveryLabels { sink: sink.to_string(), outcome }).inc();
    }

    /// The exposition text (OpenMetrics, ending with `# EOF`); empty in the unreachable case that
    /// encoding fails (writing to a `String` cannot), since a truncated exposition would be misread.
    pub fn encode(&self) -> String {
        match self.try_encode() {
            Ok(text) => text,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode the metrics");
                String::new()
            }
        }
    }

    fn try_encode(&self) -> Result<String, std::fmt::Error> {
        let _guard = self.state_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Bind `addr`, serve GET /metrics (Content-Type `application/openmetrics-text; version=1.0.0;
/// charset=utf-8`), 404 for other paths, 405 for non-GET; stops accepting when `shutdown` is cancelled.
/// Returns the bound address (so tests can bind port 0) and the server task. A bind failure is the
/// `io::Error` of the bind, for the caller to report with `METRICS_ADDR`.
///
/// On cancellation open connections are shut down gracefully too (an idle keep-alive connection closes,
/// an in-flight scrape gets its answer, for at most `DRAIN_TIMEOUT`); the task ends after that, so
/// when it has finished nothing is served any more.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tracing::debug!(addr = %bound, "serving metrics");
    Ok((bound, tokio::spawn(accept_loop(listener, metrics, shutdown))))
}

async fn accept_loop(listener: TcpListener, metrics: Arc<Metrics>, shutdown: CancellationToken) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(connection(stream, peer, metrics.clone(), shutdown.clone()));
                }
                Err(e) => {
                    tracing::debug!(error = %e, "metrics server: accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            // Reap finished connections so the set does not grow with every scrape.
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = done {
                    tracing::debug!(error = %e, "metrics connection task failed");
                }
            }
        }
    }
    drop(listener);
    // The connections saw the same token and are closing; dropping the set aborts any that take longer.
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async { while connections.join_next().await.is_some() {} });
    if drained.await.is_err() {
        tracing::debug!(left = connections.len(), "metrics connections aborted at shutdown");
    }
}

async fn connection(stream: TcpStream, peer: SocketAddr, metrics: Arc<Metrics>, shutdown: CancellationToken) {
    let service = service_fn(move |request: Request<Incoming>| {
        let response = respond(&metrics, &request);
        async move { Ok::<_, Infallible>(response) }
    });
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "metrics connection ended with an error");
    }
}

fn respond(metrics: &Metrics, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.uri().path() != "/metrics" {
        return status(StatusCode::NOT_FOUND);
    }
    if request.method() != Method::GET {
        let mut response = status(StatusCode::METHOD_NOT_ALLOWED);
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET"));
        return response;
    }
    match metrics.try_encode() {
        Ok(text) => {
            let mut response = Response::new(Full::new(Bytes::from(text)));
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_OPENMETRICS));
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot encode the metrics");
            status(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// An empty response with `code`.
fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_parse::{Sample, Scrape, Value};
    use std::collections::BTreeSet;

    const NODE: &str = "https://api.hive.blog/";
    const BACKUP: &str = "https://backup.example/";

    fn metrics() -> Arc<Metrics> {
        Arc::new(Metrics::new("alice", "hive", &[NODE.to_string(), BACKUP.to_string()], &["twilio", "telegram"]))
    }

    fn client() -> reqwest::Client {
        // No proxy: a proxy from the environment must not stand between the test and 127.0.0.1.
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    async fn scrape(client: &reqwest::Client, addr: SocketAddr) -> Scrape {
        let response = client.get(format!("http://{addr}/metrics")).send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_TYPE], CONTENT_TYPE_OPENMETRICS);
        let body = response.text().await.unwrap();
        // No pre-processing: prometheus-parse ignores the OpenMetrics-only lines (`# EOF`, `# UNIT`), and
        // prometheus-client writes no `_created` samples for these types.
        Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap()
    }

    /// The one sample named `name` with exactly `labels`.
    fn sample<'a>(scrape: &'a Scrape, name: &str, labels: &[(&str, &str)]) -> &'a Sample {
        let found: Vec<&Sample> = scrape
            .samples
            .iter()
            .filter(|s| {
                s.metric == name
                    && s.labels.len() == labels.len()
                    && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
            })
            .collect();
        assert_eq!(found.len(), 1, "{name}{labels:?} in {:#?}", scrape.samples);
        found[0]
    }

    fn gauge(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
        match sample(scrape, name, labels).value {
            Value::Gauge(v) => v,
            ref other => panic!("{name}{labels:?} is not a gauge: {other:?}"),
        }
    }

    /// A counter's or a histogram's `_sum`/`_count` value. prometheus-parse types a sample by its own
    /// name, while OpenMetrics declares `# TYPE witness_trap_polls counter` for `witness_trap_polls_total`
    /// (and the histogram's base name for `_sum`/`_count`), so these samples come back untyped.
    fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
        match sample(scrape, name, labels).value {
            Value::Counter(v) | Value::Untyped(v) => v,
            ref other => panic!("{name}{labels:?} is not a plain value: {other:?}"),
        }
    }

    /// A histogram's cumulative buckets as (upper bound, count).
    fn buckets(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Vec<(f64, f64)> {
        match &sample(scrape, name, labels).value {
            Value::Histogram(h) => h.iter().map(|b| (b.less_than, b.count)).collect(),
            other => panic!("{name}{labels:?} is not a histogram: {other:?}"),
        }
    }

    fn bounds_with(counts: [f64; 9]) -> Vec<(f64, f64)> {
        LATENCY_BUCKETS.iter().copied().chain([f64::INFINITY]).zip(counts).collect()
    }

    const LATENCY: &str = "witness_trap_endpoint_latency_seconds";

    #[tokio::test]
    async fn first_scrape_has_every_family_at_zero() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Metrics>();

        let shutdown = CancellationToken::new();
        let (addr, _task) = serve("127.0.0.1:0".parse().unwrap(), metrics(), shutdown.clone()).await.unwrap();
        let s = scrape(&client(), addr).await;

        let names: BTreeSet<&str> = s.samples.iter().map(|s| s.metric.as_str()).collect();
        let expected: BTreeSet<&str> = [
            "witness_trap_build_info",
            "witness_trap_state",
            "witness_trap_last_poll_timestamp_seconds",
            "witness_trap_missed_blocks",
            "witness_trap_trigger_missed_blocks",
            "witness_trap_endpoint_up",
            LATENCY,
            "witness_trap_endpoint_latency_seconds_sum",
            "witness_trap_endpoint_latency_seconds_count",
            "witness_trap_polls_total",
            "witness_trap_fires_total",
            "witness_trap_alert_deliveries_total",
        ]
        .into();
        assert_eq!(names, expected);

        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            gauge(&s, "witness_trap_build_info", &[("version", version), ("chain", "hive"), ("account", "alice")]),
            1.0
        );
        assert_eq!(gauge(&s, "witness_trap_state", &[("state", "armed")]), 1.0);
        assert_eq!(gauge(&s, "witness_trap_state", &[("state", "firing")]), 0.0);
        assert_eq!(gauge(&s, "witness_trap_state", &[("state", "fired")]), 0.0);
        assert_eq!(gauge(&s, "witness_trap_last_poll_timestamp_seconds", &[]), 0.0);
        assert_eq!(gauge(&s, "witness_trap_missed_blocks", &[]), 0.0);
        assert_eq!(gauge(&s, "witness_trap_trigger_missed_blocks", &[]), 0.0);
        for endpoint in [NODE, BACKUP] {
            let e = [("endpoint", endpoint)];
            assert_eq!(gauge(&s, "witness_trap_endpoint_up", &e), 0.0);
            assert_eq!(buckets(&s, LATENCY, &e), bounds_with([0.0; 9]));
            assert_eq!(value(&s, "witness_trap_endpoint_latency_seconds_count", &e), 0.0);
            assert_eq!(value(&s, "witness_trap_endpoint_latency_seconds_sum", &e), 0.0);
        }
        for result in ["healthy", "blind", "distrusted"] {
            assert_eq!(value(&s, "witness_trap_polls_total", &[("result", result)]), 0.0);
        }
        for outcome in ["swapped", "failed"] {
            assert_eq!(value(&s, "witness_trap_fires_total", &[("outcome", outcome)]), 0.0);
        }
        for sink in ["twilio", "telegram"] {
            for outcome in ["sent", "failed"] {
                assert_eq!(
                    value(&s, "witness_trap_alert_deliveries_total", &[("sink", sink), ("outcome", outcome)]),
                    0.0
                );
            }
        }
        // Exactly the pre-created series, nothing else.
        let count = |name: &str| s.samples.iter().filter(|x| x.metric == name).count();
        assert_eq!(count("witness_trap_state"), 4);
        assert_eq!(count("witness_trap_endpoint_up"), 2);
        assert_eq!(count(LATENCY), 2);
        assert_eq!(count("witness_trap_polls_total"), 3);
        assert_eq!(count("witness_trap_fires_total"), 2);
        assert_eq!(count("witness_trap_alert_deliveries_total"), 4);
        shutdown.cancel();
    }

    #[tokio::test]
    async fn a_scrape_shows_what_was_recorded() {
        let m = metrics();
        let shutdown = CancellationToken::new();
        let (addr, _task) = serve("127.0.0.1:0".parse().unwrap(), m.clone(), shutdown.clone()).await.unwrap();
        let at = 1_764_680_000.5;
        m.set_phase(TrapPhase::Fired);
        m.poll(PollResult::Healthy, at);
        m.missed(3);
        m.trigger(5);
        m.endpoint(NODE, false, Some(Duration::from_millis(200)));
        m.endpoint(BACKUP, true, None); // up, but no latency to observe
        m.fire(true);
        m.alert_delivery("telegram", false);
        let s = scrape(&client(), addr).await;

        assert_eq!(gauge(&s, "witness_trap_state", &[("state", "armed")]), 0.0);
        assert_eq!(gauge(&s, "witness_trap_state", &[("state", "firing")]), 0.0);
        assert_eq!(gauge(&s, "witness_trap_state", &[("state", "fired")]), 1.0);
        assert_eq!(value(&s, "witness_trap_polls_total", &[("result", "healthy")]), 1.0);
        assert_eq!(value(&s, "witness_trap_polls_total", &[("result", "blind")]), 0.0);
        assert_eq!(value(&s, "witness_trap_polls_total", &[("result", "distrusted")]), 0.0);
        assert_eq!(gauge(&s, "witness_trap_last_poll_timestamp_seconds", &[]), at);
        assert_eq!(gauge(&s, "witness_trap_missed_blocks", &[]), 3.0);
        assert_eq!(gauge(&s, "witness_trap_trigger_missed_blocks", &[]), 5.0);

        let node = [("endpoint", NODE)];
        assert_eq!(gauge(&s, "witness_trap_endpoint_up", &node), 0.0);
        assert_eq!(value(&s, "witness_trap_endpoint_latency_seconds_count", &node), 1.0);
        assert!((value(&s, "witness_trap_endpoint_latency_seconds_sum", &node) - 0.2).abs() < 1e-9);
        assert_eq!(buckets(&s, LATENCY, &node), bounds_with([0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]));
        let backup = [("endpoint", BACKUP)];
        assert_eq!(gauge(&s, "witness_trap_endpoint_up", &backup), 1.0);
        assert_eq!(value(&s, "witness_trap_endpoint_latency_seconds_count", &backup), 0.0);

        assert_eq!(value(&s, "witness_trap_fires_total", &[("outcome", "swapped")]), 1.0);
        assert_eq!(value(&s, "witness_trap_fires_total", &[("outcome", "failed")]), 0.0);
        let delivery =
            |sink, outcome| value(&s, "witness_trap_alert_deliveries_total", &[("sink", sink), ("outcome", outcome)]);
        assert_eq!(delivery("telegram", "failed"), 1.0);
        assert_eq!(delivery("telegram", "sent"), 0.0);
        assert_eq!(delivery("twilio", "failed"), 0.0);
        assert_eq!(delivery("twilio", "sent"), 0.0);

        // A poll that is not healthy counts, but leaves the last healthy poll time alone.
        m.poll(PollResult::Blind, at + 3.0);
        let s = scrape(&client(), addr).await;
        assert_eq!(value(&s, "witness_trap_polls_total", &[("result", "blind")]), 1.0);
        assert_eq!(gauge(&s, "witness_trap_last_poll_timestamp_seconds", &[]), at);
        shutdown.cancel();
    }

    #[tokio::test]
    async fn other_paths_are_404_and_other_methods_405() {
        let shutdown = CancellationToken::new();
        let (addr, _task) = serve("127.0.0.1:0".parse().unwrap(), metrics(), shutdown.clone()).await.unwrap();
        let c = client();
        let other = c.get(format!("http://{addr}/other")).send().await.unwrap();
        assert_eq!(other.status(), reqwest::StatusCode::NOT_FOUND);
        let root = c.get(format!("http://{addr}/")).send().await.unwrap();
        assert_eq!(root.status(), reqwest::StatusCode::NOT_FOUND);
        let post = c.post(format!("http://{addr}/metrics")).body("x").send().await.unwrap();
        assert_eq!(post.status(), reqwest::StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(post.headers()[ALLOW], "GET");
        shutdown.cancel();
    }

    #[tokio::test]
    async fn cancel_stops_the_server() {
        let shutdown = CancellationToken::new();
        let (addr, task) = serve("127.0.0.1:0".parse().unwrap(), metrics(), shutdown.clone()).await.unwrap();
        let c = client();
        scrape(&c, addr).await; // leaves a keep-alive connection in the client's pool
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
        // Neither the pooled connection nor a new one is served any more.
        assert!(c.get(format!("http://{addr}/metrics")).send().await.is_err());
        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn a_bind_failure_is_an_io_error() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let err = serve(addr, metrics(), CancellationToken::new()).await.err().unwrap();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    }
}
