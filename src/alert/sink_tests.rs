//! The HTTP channels (Twilio included) against in-process fake servers, one table for all: success, a 4xx that is not
//! retried, a 429 whose wait is honoured, 5xx retried then given up, a server that never answers. Each
//! case counts the requests exactly, checks what was sent, and checks that neither the returned reason
//! nor any log line holds the channel's secret.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chain_clock::{ScaledClock, SharedClock};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::http::Policy;
use super::*;

const TELEGRAM_TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const SLACK_PATH: &str = "/services/T000/B000/slack-secret-part";
const DISCORD_PATH: &str = "/api/webhooks/1234/discord-secret-part";
const ROUTING_KEY: &str = "R0123456789abcdefghijklmnopqrstu";
const WEBHOOK_PATH: &str = "/hook/webhook-secret-part";
const BEARER: &str = "bearer-secret-value";
const HMAC_KEY: &str = "hmac-secret-value";

/// One channel under test.
struct Sink {
    name: &'static str,
    make: fn(&str, Policy, SharedClock) -> Arc<dyn Notifier>,
    /// The path every request must go to.
    path: String,
    ok: fn() -> ResponseTemplate,
    refused: fn() -> ResponseTemplate,
    /// A 429 asking for three seconds, in the channel's own way.
    throttled: fn() -> ResponseTemplate,
    /// Checks one request's body and headers.
    check: fn(&Request),
    secrets: &'static [&'static str],
}

fn json(r: &Request) -> serde_json::Value {
    serde_json::from_slice(&r.body).expect("a JSON body")
}

const TWILIO_TOKEN: &str = "twilio-token-secret-value";

fn sinks() -> Vec<Sink> {
    vec![
        Sink {
            name: "twilio",
            make: |base, policy, clock| {
                Arc::new(TwilioNotifier::new(
                    TwilioSettings {
                        api_url: base.to_string(),
                        account_sid: "AC0123456789abcdef".into(),
                        auth_token: TWILIO_TOKEN.into(),
                        from: PhoneNumber::parse("+15005550006").unwrap(),
                        to: vec![PhoneNumber::parse("+14155550123").unwrap()],
                        policy,
                    },
                    clock,
                ))
            },
            path: "/2010-04-01/Accounts/AC0123456789abcdef/Messages.json".into(),
            ok: || ResponseTemplate::new(201).set_body_json(serde_json::json!({"sid": "SM1", "status": "queued"})),
            refused: || {
                ResponseTemplate::new(400)
                    .set_body_json(serde_json::json!({"code": 21211, "message": "The 'To' number is not valid."}))
            },
            throttled: || ResponseTemplate::new(429).insert_header("Retry-After", "3"),
            check: |r| {
                let form: std::collections::HashMap<String, String> = serde_urlencoded::from_bytes(&r.body).unwrap();
                assert_eq!((form["To"].as_str(), form["From"].as_str()), ("+14155550123", "+15005550006"));
                assert!(form["Body"].contains("@alice") && form["Body"].chars().count() <= 160, "{}", form["Body"]);
                let auth = r.headers.get("authorization").and_then(|h| h.to_str().ok()).unwrap_or_default();
                assert!(auth.starts_with("Basic "), "the token travels in the header only");
            },
            secrets: &[TWILIO_TOKEN],
        },
        Sink {
            name: "telegram",
            make: |base, policy, clock| {
                Arc::new(TelegramNotifier::new(
                    TelegramSettings {
                        api_url: base.to_string(),
                        bot_token: TELEGRAM_TOKEN.into(),
                        chat_id: "-1001234567890".into(),
                        policy,
                    },
                    clock,
                ))
            },
            path: format!("/bot{TELEGRAM_TOKEN}/sendMessage"),
            ok: || ResponseTemplate::new(200).set_body_json(serde_json::json!({"ok": true, "result": {}})),
            refused: || {
                ResponseTemplate::new(400).set_body_json(
                    serde_json::json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}),
                )
            },
            throttled: || {
                ResponseTemplate::new(429).set_body_json(serde_json::json!({
                    "ok": false, "error_code": 429, "description": "Too Many Requests: retry after 3",
                    "parameters": {"retry_after": 3}
                }))
            },
            check: |r| {
                let v = json(r);
                assert_eq!(v["chat_id"], "-1001234567890");
                let text = v["text"].as_str().unwrap();
                assert!(text.contains("@alice") && text.contains("hive") && text.contains("0aa98236"), "{text}");
            },
            secrets: &["AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"],
        },
        Sink {
            name: "slack",
            make: |base, policy, clock| {
                Arc::new(SlackNotifier::new(
                    SlackSettings { webhook_url: format!("{base}{SLACK_PATH}").into(), policy },
                    clock,
                ))
            },
            path: SLACK_PATH.into(),
            ok: || ResponseTemplate::new(200).set_body_string("ok"),
            refused: || ResponseTemplate::new(404).set_body_string("no_service"),
            throttled: || ResponseTemplate::new(429).insert_header("Retry-After", "3"),
            check: |r| {
                let text = json(r)["text"].as_str().unwrap().to_string();
                assert!(text.starts_with("*witness-trap @alice on hive: FIRED"), "{text}");
                assert!(text.contains("0aa98236d8bb88a32d7436d58a8114b2e3c2e53d"), "{text}");
            },
            secrets: &["slack-secret-part"],
        },
        Sink {
            name: "discord",
            make: |base, policy, clock| {
                Arc::new(DiscordNotifier::new(
                    DiscordSettings { webhook_url: format!("{base}{DISCORD_PATH}").into(), policy },
                    clock,
                ))
            },
            path: DISCORD_PATH.into(),
            ok: || ResponseTemplate::new(204),
            refused: || {
                ResponseTemplate::new(404)
                    .set_body_json(serde_json::json!({"message": "Unknown Webhook", "code": 10015}))
            },
            // Only the body says how long: Discord's own field must be read.
            throttled: || {
                ResponseTemplate::new(429).set_body_json(serde_json::json!({"retry_after": 3.0, "global": false}))
            },
            check: |r| {
                let v = json(r);
                assert!(v["content"].as_str().unwrap().contains("0aa98236d8bb88a32d7436d58a8114b2e3c2e53d"));
                assert_eq!(v["allowed_mentions"]["parse"], serde_json::json!([]));
            },
            secrets: &["discord-secret-part"],
        },
        Sink {
            name: "pagerduty",
            make: |base, policy, clock| {
                Arc::new(PagerDutyNotifier::new(
                    PagerDutySettings { api_url: base.to_string(), routing_key: ROUTING_KEY.into(), policy },
                    clock,
                ))
            },
            path: "/v2/enqueue".into(),
            ok: || {
                ResponseTemplate::new(202).set_body_json(
                    serde_json::json!({"status": "success", "message": "Event processed", "dedup_key": "x"}),
                )
            },
            refused: || {
                ResponseTemplate::new(400)
                    .set_body_json(serde_json::json!({"status": "invalid event", "errors": ["bad routing key"]}))
            },
            throttled: || ResponseTemplate::new(429).insert_header("Retry-After", "3"),
            check: |r| {
                let v = json(r);
                assert_eq!(v["routing_key"], ROUTING_KEY);
                assert_eq!(v["event_action"], "trigger");
                assert_eq!(v["dedup_key"], "witness-trap/hive/alice");
                assert_eq!(v["payload"]["severity"], "critical");
                assert_eq!(v["payload"]["group"], "alice");
                assert!(v["payload"]["summary"].as_str().unwrap().contains("0aa98236d8bb88a32d7436d58a8114b2e3c2e53d"));
            },
            secrets: &[ROUTING_KEY],
        },
        Sink {
            name: "webhook",
            make: |base, policy, clock| {
                Arc::new(WebhookNotifier::new(
                    WebhookSettings {
                        url: format!("{base}{WEBHOOK_PATH}").into(),
                        bearer_token: Some(BEARER.into()),
                        hmac_secret: Some(HMAC_KEY.into()),
                        policy,
                    },
                    clock,
                ))
            },
            path: WEBHOOK_PATH.into(),
            ok: || ResponseTemplate::new(200),
            refused: || ResponseTemplate::new(403).set_body_string("forbidden"),
            throttled: || ResponseTemplate::new(429).insert_header("Retry-After", "3"),
            check: |r| {
                let v = json(r);
                assert_eq!((v["event"].as_str(), v["account"].as_str()), (Some("fired"), Some("alice")));
                assert_eq!(v["details"]["new_key"], "STM6LLegbAgLAy28EHrffBVuANFWcFgmqRMW13wBmTExqFE9SCkg4");
                let header = |n: &str| r.headers.get(n).and_then(|h| h.to_str().ok()).map(str::to_string);
                assert_eq!(header("authorization"), Some(format!("Bearer {BEARER}")));
                assert_eq!(header("x-witness-trap-event").as_deref(), Some("fired"));
                // The signature is over the exact bytes received.
                assert_eq!(header("x-witness-trap-signature"), Some(webhook::signature(HMAC_KEY.as_bytes(), &r.body)));
            },
            secrets: &["webhook-secret-part", BEARER, HMAC_KEY],
        },
    ]
}

fn fired() -> Incident {
    Incident::Swapped {
        witness: "alice".into(),
        chain: "hive".into(),
        missed: 3,
        new_key: "STM6LLegbAgLAy28EHrffBVuANFWcFgmqRMW13wBmTExqFE9SCkg4".into(),
        txid: "0aa98236d8bb88a32d7436d58a8114b2e3c2e53d".into(),
        by: None,
    }
}

/// Every log line written while a case runs.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Case {
    Success,
    Refused,
    Throttled,
    Failing,
    Silent,
}

/// Run one case: what it returned, the requests the server saw, the clock time it took, the logs.
async fn run(sink: &Sink, case: Case) -> (Result<(), String>, Vec<Request>, Duration, String) {
    let server = MockServer::start().await;
    // Only the silent server is meant to time out: the others get a timeout no loaded machine reaches.
    let timeout = if matches!(case, Case::Silent) { Duration::from_millis(300) } else { Duration::from_secs(10) };
    let template = match case {
        Case::Success => (sink.ok)(),
        Case::Refused => (sink.refused)(),
        Case::Throttled => {
            Mock::given(method("POST")).respond_with((sink.throttled)()).up_to_n_times(1).mount(&server).await;
            (sink.ok)()
        }
        Case::Failing => ResponseTemplate::new(503).set_body_string("upstream down"),
        Case::Silent => (sink.ok)().set_delay(Duration::from_secs(5)),
    };
    Mock::given(method("POST")).respond_with(template).mount(&server).await;
    // Back-off zero, so a wait can only come from the server's 429; time compressed 1000×.
    let policy = Policy { timeout, max_attempts: 3, backoff: Duration::ZERO };
    let clock: SharedClock = Arc::new(ScaledClock::starting_now(1000.0));
    let notifier = (sink.make)(&server.uri(), policy, clock.clone());
    assert_eq!(notifier.name(), sink.name);
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let start = clock.now();
    let result = notifier.send(&fired()).await;
    let took = clock.now().saturating_sub(start);
    let requests = server.received_requests().await.unwrap_or_default();
    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    (result, requests, took, logs)
}

fn assert_no_secret(sink: &Sink, result: &Result<(), String>, logs: &str) {
    let reason = result.as_ref().err().cloned().unwrap_or_default();
    for secret in sink.secrets {
        assert!(!reason.contains(secret), "{}: the reason holds a secret: {reason}", sink.name);
        assert!(!logs.contains(secret), "{}: a log line holds a secret: {logs}", sink.name);
    }
}

#[tokio::test]
async fn every_http_channel_delivers_once_and_sends_what_it_should() {
    for sink in sinks() {
        let (result, requests, _, logs) = run(&sink, Case::Success).await;
        assert_eq!(result, Ok(()), "{}", sink.name);
        assert_eq!(requests.len(), 1, "{}", sink.name);
        assert_eq!(requests[0].url.path(), sink.path, "{}", sink.name);
        (sink.check)(&requests[0]);
        assert_no_secret(&sink, &result, &logs);
    }
}

#[tokio::test]
async fn a_refusal_is_final() {
    for sink in sinks() {
        let (result, requests, _, logs) = run(&sink, Case::Refused).await;
        let reason = result.as_ref().expect_err(sink.name).clone();
        assert_eq!(requests.len(), 1, "{}: a 4xx must not be retried", sink.name);
        assert!(reason.contains("refused: HTTP 4"), "{}: {reason}", sink.name);
        assert_no_secret(&sink, &result, &logs);
    }
    // The channels that explain their refusals do.
    let all = sinks();
    let by_name = |n: &str| all.iter().find(|s| s.name == n).unwrap();
    assert!(run(by_name("telegram"), Case::Refused).await.0.unwrap_err().contains("chat not found"));
    assert!(run(by_name("discord"), Case::Refused).await.0.unwrap_err().contains("set DISCORD_WEBHOOK_URL"));
    let twilio = run(by_name("twilio"), Case::Refused).await.0.unwrap_err();
    assert!(
        twilio.contains("+14155550123") && twilio.contains("code 21211: The 'To' number is not valid."),
        "{twilio}"
    );
}

#[tokio::test]
async fn a_429_is_retried_after_the_wait_the_server_asked_for() {
    for sink in sinks() {
        let (result, requests, took, logs) = run(&sink, Case::Throttled).await;
        assert_eq!(result, Ok(()), "{}", sink.name);
        assert_eq!(requests.len(), 2, "{}", sink.name);
        assert!(took >= Duration::from_secs(3), "{}: waited only {took:?}", sink.name);
        assert_no_secret(&sink, &result, &logs);
    }
}

#[tokio::test]
async fn a_failing_server_is_retried_then_given_up() {
    for sink in sinks() {
        let (result, requests, _, logs) = run(&sink, Case::Failing).await;
        let reason = result.as_ref().expect_err(sink.name).clone();
        assert_eq!(requests.len(), 3, "{}: max_attempts", sink.name);
        assert!(reason.contains("gave up after 3 attempts: HTTP 503"), "{}: {reason}", sink.name);
        // The retries were logged, naming the sink (so the capture above sees what the channel logs).
        assert_eq!(logs.matches("will retry").count(), 3, "{}: {logs}", sink.name);
        assert!(logs.contains(&format!("sink=\"{}\"", sink.name)), "{}: {logs}", sink.name);
        assert_no_secret(&sink, &result, &logs);
    }
}

#[tokio::test]
async fn a_silent_server_times_out_on_every_attempt() {
    for sink in sinks() {
        let (result, requests, _, logs) = run(&sink, Case::Silent).await;
        let reason = result.as_ref().expect_err(sink.name).clone();
        assert_eq!(requests.len(), 3, "{}", sink.name);
        assert!(reason.contains("no answer within 0.3 s"), "{}: {reason}", sink.name);
        assert_no_secret(&sink, &result, &logs);
    }
}

#[tokio::test]
async fn pagerduty_resolves_the_fire_incident() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(202)).mount(&server).await;
    let clock: SharedClock = Arc::new(ScaledClock::starting_now(1000.0));
    let pd = PagerDutyNotifier::new(
        PagerDutySettings { api_url: server.uri(), routing_key: ROUTING_KEY.into(), policy: Policy::default() },
        clock,
    );
    pd.resolve("alice", "hive").await.unwrap();
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        json(&requests[0]),
        serde_json::json!({"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "witness-trap/hive/alice"})
    );
}
