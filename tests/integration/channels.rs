//! Every alert channel wired end to end: the variables, `test-alert` through the binary, a fire and a
//! blind episode on the simulated chain reaching each channel exactly once, `rearm` resolving PagerDuty,
//! and the heartbeat counted across a run of the binary that is then killed.
//!
//! The channels all live on one local wiremock server, one path prefix each.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use chain_clock::SharedClock;
use graphene_protocol::chain::ChainSpec;
use graphene_sim::{Fault, SimNode};
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};
use witness_trap::cli::ExitStatus;
use witness_trap::config::{vars as v, VarMap};

use crate::support::*;

const TG_TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const ROUTING_KEY: &str = "R0123456789abcdefghijklmnopqrstu";
const SLACK_SECRET: &str = "slack-secret-part";
const DISCORD_SECRET: &str = "discord-secret-part";
const HOOK_SECRET: &str = "hook-secret-part";
const BEARER: &str = "bearer-secret-value";
const HMAC_KEY: &str = "hmac-secret-value";
const HEARTBEAT_SECRET: &str = "heartbeat-uuid-0f9e";

/// Every secret a channel holds: none may appear in any output.
const SECRETS: [&str; 8] = [
    "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
    ROUTING_KEY,
    SLACK_SECRET,
    DISCORD_SECRET,
    HOOK_SECRET,
    BEARER,
    HMAC_KEY,
    HEARTBEAT_SECRET,
];

/// One wiremock server for every channel; each answers as its service does when all is well.
async fn channels() -> MockServer {
    let server = MockServer::start().await;
    let ok = |status: u16, body: serde_json::Value| ResponseTemplate::new(status).set_body_json(body);
    Mock::given(method("POST"))
        .and(path_regex("^/tg/"))
        .respond_with(ok(200, serde_json::json!({"ok": true, "result": {}})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("^/slack/"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("^/discord/"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/pd/v2/enqueue"))
        .respond_with(ok(202, serde_json::json!({"status": "success"})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("^/(hook|hb)/"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

/// The variables of every HTTP channel, pointed at `server`.
fn channel_vars(server: &str) -> Vec<(&'static str, String)> {
    vec![
        (v::TELEGRAM_BOT_TOKEN, TG_TOKEN.into()),
        (v::TELEGRAM_CHAT_ID, "-1001234567890".into()),
        (v::TELEGRAM_API_URL, format!("{server}/tg")),
        (v::SLACK_WEBHOOK_URL, format!("{server}/slack/{SLACK_SECRET}")),
        (v::DISCORD_WEBHOOK_URL, format!("{server}/discord/{DISCORD_SECRET}")),
        (v::PAGERDUTY_ROUTING_KEY, ROUTING_KEY.into()),
        (v::PAGERDUTY_API_URL, format!("{server}/pd")),
        (v::WEBHOOK_URL, format!("{server}/hook/{HOOK_SECRET}")),
        (v::WEBHOOK_BEARER_TOKEN, BEARER.into()),
        (v::WEBHOOK_HMAC_SECRET, HMAC_KEY.into()),
    ]
}

/// The requests `server` received under `prefix`.
async fn received(server: &MockServer, prefix: &str) -> Vec<Request> {
    let all = server.received_requests().await.unwrap_or_default();
    all.into_iter().filter(|r| r.url.path().starts_with(prefix)).collect()
}

fn json(r: &Request) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_default()
}

/// The webhook's events, in order.
async fn webhook_events(server: &MockServer) -> Vec<String> {
    received(server, "/hook/").await.iter().map(|r| json(r)["event"].as_str().unwrap_or_default().to_string()).collect()
}

fn without_twilio(mut vars: HashMap<String, String>) -> HashMap<String, String> {
    vars.retain(|k, _| !k.starts_with("TWILIO_"));
    vars
}

fn assert_no_secrets(text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "a secret ({s}) leaked:\n{text}");
    }
}

#[tokio::test]
async fn test_alert_prints_one_line_per_channel_and_never_a_secret() {
    let server = channels().await;
    // Discord's webhook was deleted: that line says so, the others are delivered, the exit status is 3.
    let gone = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(404)).mount(&gone).await;
    let mut env: HashMap<String, String> =
        [(v::WITNESS_ACCOUNT, "alice".to_string()), (v::CHAIN, "hive".into())].map(|(k, v)| (k.to_string(), v)).into();
    for (k, val) in channel_vars(&server.uri()) {
        env.insert(k.to_string(), val);
    }
    env.insert(v::DISCORD_WEBHOOK_URL.into(), format!("{}/discord/{DISCORD_SECRET}", gone.uri()));
    let out = exec(&["test-alert"], &env).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{all}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "telegram: delivered",
            "slack: delivered",
            "discord: NOT delivered: refused: HTTP 404: the webhook no longer exists; create a new one and set DISCORD_WEBHOOK_URL",
            "pagerduty: delivered",
            "webhook: delivered",
        ],
        "{all}"
    );
    for prefix in ["/tg/", "/slack/", "/pd/", "/hook/"] {
        assert_eq!(received(&server, prefix).await.len(), 1, "{prefix}");
    }
    assert_eq!(gone.received_requests().await.unwrap_or_default().len(), 1, "a 404 is not retried");
    assert_eq!(webhook_events(&server).await, ["test"]);
    assert_no_secrets(&all);
}

#[test]
fn each_channel_is_validated_naming_its_variable_and_never_echoing_a_secret() {
    let keys = Keys::new();
    let (_dir, state_file) = temp_state();
    let base = without_twilio(vars(&keys, &["http://127.0.0.1:1"], &state_file, "http://127.0.0.1:9"));
    let dir = tempfile::tempdir().unwrap();
    let slack_file = dir.path().join("slack");
    std::fs::write(&slack_file, format!("https://hooks.slack.com/services/T/B/{SLACK_SECRET}\n")).unwrap();
    let slack_file = slack_file.to_string_lossy().to_string();
    // (variables set, the variable expected to be named or None for a valid channel, why)
    type Case<'a> = (Vec<(&'a str, &'a str)>, Option<&'a str>, &'a str);
    let cases: Vec<Case> = vec![
        (vec![], Some("alert channels"), "no channel at all"),
        (vec![(v::TELEGRAM_BOT_TOKEN, TG_TOKEN)], Some(v::TELEGRAM_CHAT_ID), "telegram without a chat"),
        (
            vec![(v::TELEGRAM_BOT_TOKEN, "not-a-token-secret"), (v::TELEGRAM_CHAT_ID, "42")],
            Some(v::TELEGRAM_BOT_TOKEN),
            "bad token",
        ),
        (
            vec![(v::TELEGRAM_BOT_TOKEN, TG_TOKEN), (v::TELEGRAM_CHAT_ID, "my channel")],
            Some(v::TELEGRAM_CHAT_ID),
            "bad chat id",
        ),
        (
            vec![
                (v::TELEGRAM_BOT_TOKEN, TG_TOKEN),
                (v::TELEGRAM_CHAT_ID, "42"),
                (v::TELEGRAM_API_URL, "api.telegram.org"),
            ],
            Some(v::TELEGRAM_API_URL),
            "a base URL without a scheme",
        ),
        (
            vec![(v::SLACK_WEBHOOK_URL, "hooks.slack.com/services/slack-secret-part")],
            Some(v::SLACK_WEBHOOK_URL),
            "no scheme",
        ),
        (
            vec![(v::SLACK_WEBHOOK_URL, "https://hooks.slack.com/x"), ("SLACK_WEBHOOK_URL_FILE", &slack_file)],
            Some(v::SLACK_WEBHOOK_URL),
            "both a value and a file",
        ),
        (vec![("SLACK_WEBHOOK_URL_FILE", &slack_file)], None, "a webhook URL from a file"),
        (vec![(v::DISCORD_WEBHOOK_URL, "ftp://discord-secret-part")], Some(v::DISCORD_WEBHOOK_URL), "not http"),
        (vec![(v::PAGERDUTY_ROUTING_KEY, "short-hmac-secret-value")], Some(v::PAGERDUTY_ROUTING_KEY), "a short key"),
        (vec![(v::PAGERDUTY_API_URL, "https://events.eu.pagerduty.com")], Some(v::PAGERDUTY_ROUTING_KEY), "no key"),
        (vec![(v::WEBHOOK_BEARER_TOKEN, BEARER)], Some(v::WEBHOOK_URL), "a token without a URL"),
        (vec![(v::WEBHOOK_URL, "https://example.invalid/hook-secret-part")], None, "a webhook"),
        (
            vec![
                (v::SMTP_URL, "smtps://mail.example.com:465"),
                (v::SMTP_FROM, "trap@example.com"),
                (v::SMTP_TO, "ops@example.com"),
            ],
            None,
            "e-mail over TLS",
        ),
        (
            vec![
                (v::SMTP_URL, "smtp://mail.example.com:25"),
                (v::SMTP_FROM, "trap@example.com"),
                (v::SMTP_TO, "ops@example.com"),
            ],
            Some(v::SMTP_URL),
            "plain SMTP off this host",
        ),
        (
            vec![
                (v::SMTP_URL, "smtps://u:hmac-secret-value@mail.example.com"),
                (v::SMTP_FROM, "t@example.com"),
                (v::SMTP_TO, "o@example.com"),
            ],
            Some(v::SMTP_URL),
            "a password in the URL",
        ),
        (
            vec![
                (v::SMTP_URL, "smtp://127.0.0.1:2525"),
                (v::SMTP_FROM, "t@example.com"),
                (v::SMTP_TO, "o@example.com"),
                (v::SMTP_USERNAME, "trap"),
            ],
            Some(v::SMTP_PASSWORD),
            "a login without a password",
        ),
        (
            vec![
                (v::SMTP_URL, "smtp://127.0.0.1:2525"),
                (v::SMTP_FROM, "t@example.com"),
                (v::SMTP_TO, "o@example.com,not an address"),
            ],
            Some(v::SMTP_TO),
            "a bad recipient",
        ),
        (vec![(v::SMTP_TO, "o@example.com")], Some(v::SMTP_URL), "e-mail without a server"),
    ];
    for (set, wrong, why) in cases {
        let mut env = base.clone();
        for (k, val) in &set {
            env.insert(k.to_string(), val.to_string());
        }
        match (witness_trap::config::load(&env), wrong) {
            (Ok(s), None) => assert_eq!(s.alerts.channels(), 1, "{why}"),
            (Err(report), Some(var)) => {
                let text = report.to_string();
                assert!(report.problems.iter().any(|p| p.var == var), "{why}: {text}");
                assert_no_secrets(&text);
                assert!(!text.contains("not-a-token"), "{why}: {text}");
            }
            (Ok(_), Some(var)) => panic!("{why}: accepted, expected a problem with {var}"),
            (Err(report), None) => panic!("{why}: refused: {report}"),
        }
    }
}

/// A simulated Hive chain at 20× with @alice, the trap's variables using every HTTP channel and the
/// heartbeat on `server`, and no Twilio.
async fn sim_world(
    server: &MockServer,
    seed: u64,
) -> (SimNode, SharedClock, HashMap<String, String>, tempfile::TempDir, Keys) {
    let (sim, clock, keys) = fast_sim(seed).await;
    let chain = ChainSpec::hive();
    let (dir, state_file) = temp_state();
    let mut map =
        VarMap::graphene("alice", &chain, &sim.urls(), &keys.backup.public_key(), &keys.primary.to_wif(), &state_file)
            .with(v::MISSED_BLOCKS_ALLOWED, 1)
            .with(v::POLL_INTERVAL_SECS, 6)
            .with(v::RPC_TIMEOUT_SECS, 2)
            .with(v::HEARTBEAT_URL, format!("{}/hb/{HEARTBEAT_SECRET}", server.uri()))
            .with(v::HEARTBEAT_EVERY_SECS, 30)
            .into_map();
    for (k, val) in channel_vars(&server.uri()) {
        map.insert(k.to_string(), val);
    }
    (sim, clock, map, dir, keys)
}

#[tokio::test]
async fn a_fire_reaches_every_channel_exactly_once_and_rearm_resolves_pagerduty() {
    let server = channels().await;
    let (sim, clock, vars, _dir, keys) = sim_world(&server, 11).await;
    let logs = capture_logs();
    let (c, stop) = (clock.clone(), CancellationToken::new());
    let run_vars = vars.clone();
    let task = tokio::spawn(async move { run(&run_vars, c, stop, true).await });
    assert!(pings(&server, 1).await >= 1, "the first healthy poll pings");
    sim.fail_primary();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(90), task).await.expect("fired in time").expect("join"),
        ExitStatus::Ok
    );

    let txid = sim
        .events()
        .into_iter()
        .find_map(|r| match r.event {
            graphene_sim::SimEvent::TxAccepted { txid, .. } => Some(hex::encode(txid)),
            _ => None,
        })
        .expect("the swap was accepted");
    for prefix in ["/tg/", "/slack/", "/discord/", "/pd/", "/hook/"] {
        let got = received(&server, prefix).await;
        assert_eq!(got.len(), 1, "{prefix}: exactly one alert (the fire)");
        assert!(String::from_utf8_lossy(&got[0].body).contains(&txid), "{prefix}: names the txid");
    }
    let pd = json(&received(&server, "/pd/").await[0]);
    assert_eq!(
        (pd["event_action"].as_str(), pd["dedup_key"].as_str()),
        (Some("trigger"), Some("witness-trap/hive/alice"))
    );
    assert_eq!(webhook_events(&server).await, ["fired"]);
    // The heartbeat: healthy pings while armed, one last on the fire, never /fail.
    let beats = received(&server, "/hb/").await;
    assert!(beats.len() >= 2, "{} pings", beats.len());
    assert!(beats.iter().all(|r| !r.url.path().ends_with("/fail")));

    // The operator fixes the old primary and re-arms, the roles swapped (the backup signs now); that
    // resolves the fire's PagerDuty incident.
    let mut vars = vars;
    vars.insert(v::BACKUP_SIGNING_KEY.into(), keys.primary.public_key().to_text("STM"));
    vars.insert(v::SIGNING_WIF.into(), keys.backup.to_wif().to_string());
    let settings = witness_trap::config::load(&vars).expect("valid");
    let done = witness_trap::service::rearm(settings, clock).await.expect("re-armed");
    assert_eq!(done.pagerduty, Some(("witness-trap/hive/alice".to_string(), Ok(()))));
    let pd = received(&server, "/pd/").await;
    assert_eq!(pd.len(), 2);
    assert_eq!(json(&pd[1])["event_action"], "resolve");
    assert_eq!(json(&pd[1])["dedup_key"], "witness-trap/hive/alice");
    assert_no_secrets(&logs.text());
}

/// Wait (up to 30 s) until `server` got at least `n` heartbeat pings; how many it got.
async fn pings(server: &MockServer, n: usize) -> usize {
    let mut got = 0;
    for _ in 0..300 {
        got = received(server, "/hb/").await.len();
        if got >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blind_episode_alerts_once_then_recovers_and_the_heartbeat_says_fail_meanwhile() {
    let server = channels().await;
    let (sim, clock, mut vars, _dir, _keys) = sim_world(&server, 12).await;
    vars.insert(v::ALERT_EVENTS.into(), "fired,blind,recovered".into());
    vars.insert(v::BLIND_ALERT_SECS.into(), "30".into());
    let (c, stop) = (clock.clone(), CancellationToken::new());
    let (run_vars, stopper) = (vars.clone(), stop.clone());
    let task = tokio::spawn(async move { run(&run_vars, c, stopper, true).await });
    assert!(pings(&server, 1).await >= 1, "the first healthy poll pings");

    // Every endpoint fails: blind. Alerted once after BLIND_ALERT_SECS, however long it lasts.
    for i in 0..2 {
        sim.set_fault(i, Fault::Http503).expect("endpoint");
    }
    clock.sleep(Duration::from_secs(120)).await;
    // The alert goes out beside the loop: wait for it, then check it came once.
    for _ in 0..300 {
        if !webhook_events(&server).await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(webhook_events(&server).await, ["blind"], "one blind alert per episode");
    for i in 0..2 {
        sim.set_fault(i, Fault::None).expect("endpoint");
    }
    clock.sleep(Duration::from_secs(60)).await;
    stop.cancel();
    assert_eq!(task.await.expect("join"), ExitStatus::Ok);
    assert_eq!(webhook_events(&server).await, ["blind", "recovered"]);
    assert_eq!(sim.broadcasts_received(), 0, "blind never fires");
    let pd: Vec<(String, String)> = received(&server, "/pd/")
        .await
        .iter()
        .map(|r| {
            (json(r)["event_action"].as_str().unwrap_or("").into(), json(r)["dedup_key"].as_str().unwrap_or("").into())
        })
        .collect();
    let key = "witness-trap/hive/alice/blind".to_string();
    assert_eq!(pd, [("trigger".to_string(), key.clone()), ("resolve".to_string(), key)]);
    let beats: Vec<String> = received(&server, "/hb/").await.iter().map(|r| r.url.path().to_string()).collect();
    let fail = format!("/hb/{HEARTBEAT_SECRET}/fail");
    let first_fail = beats.iter().position(|p| *p == fail).expect("a /fail ping while blind");
    let last_fail = beats.iter().rposition(|p| *p == fail).expect("a /fail ping");
    assert!(first_fail > 0 && last_fail + 1 < beats.len(), "healthy pings before and after: {beats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_pings_while_the_binary_runs_and_stops_when_it_is_killed() {
    let server = channels().await;
    let keys = Keys::new();
    let clock: SharedClock = Arc::new(chain_clock::SystemClock);
    let node =
        FakeNode::start(ChainSpec::hive(), "alice", keys.primary.public_key(), keys.active.public_key(), clock).await;
    let (_dir, state_file) = temp_state();
    let mut env = without_twilio(vars(&keys, &[&node.url], &state_file, "http://127.0.0.1:9"));
    env.insert(v::WEBHOOK_URL.into(), format!("{}/hook/{HOOK_SECRET}", server.uri()));
    env.insert(v::HEARTBEAT_URL.into(), format!("{}/hb/{HEARTBEAT_SECRET}", server.uri()));
    env.insert(v::HEARTBEAT_EVERY_SECS.into(), "1".into());
    env.insert(v::POLL_INTERVAL_SECS.into(), "1".into());
    let mut child =
        bin().arg("run").envs(&env).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("the binary starts");
    let got = pings(&server, 3).await;
    assert!(got >= 3, "the running trap pings: {got}");
    child.kill().expect("killed");
    let status = child.wait().expect("reaped");
    assert!(!status.success());
    let at_kill = received(&server, "/hb/").await.len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(received(&server, "/hb/").await.len(), at_kill, "a dead trap sends nothing");
    assert!(received(&server, "/hb/").await.iter().all(|r| r.url.path() == format!("/hb/{HEARTBEAT_SECRET}")));
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    assert_no_secrets(&stderr);
}
