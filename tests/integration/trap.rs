//! The trap through `service::run`, as `witness-trap run` executes it, against the scripted node.

use std::collections::HashMap;
use std::time::Duration;

use chain_clock::SharedClock;
use graphene_protocol::chain::ChainSpec;
use graphene_protocol::json::transaction_from_json;
use graphene_protocol::operation::Operation;
use graphene_protocol::sign::recover;
use graphene_protocol::transaction::PackMode;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};
use witness_trap::alert::Delivery;
use witness_trap::chain::Baseline;
use witness_trap::cli::ExitStatus;
use witness_trap::trap::state::{Attempt, Outcome, Phase};

use crate::support::*;

/// Arms the trap, then raises total_missed to `missed` once the state file exists.
fn raise_after_arming(node: &FakeNode, state_file: std::path::PathBuf, missed: u64) {
    let node = node.clone();
    tokio::spawn(async move {
        wait_for("arming", || state_file.exists()).await;
        node.set(|s| s.total_missed = missed);
    });
}

fn accepted_op(node: &FakeNode, i: usize) -> (Operation, graphene_protocol::keys::PublicKey) {
    let (tx, chain) = node.get(|s| (s.accepted[i].clone(), s.chain.clone()));
    let signed = transaction_from_json(&tx, &chain).expect("accepted tx parses");
    let digest = signed.transaction.digest(&chain, PackMode::Legacy);
    let signer = recover(&digest, &signed.signatures[0]).expect("signature recovers");
    (signed.transaction.operations[0].clone(), signer)
}

#[tokio::test]
async fn no_fire_below_threshold() {
    let (keys, clock, node) = scene(ChainSpec::hive()).await;
    let sms = twilio_ok(0).await;
    let (_d, state_file) = temp_state();
    raise_after_arming(&node, state_file.clone(), 11); // baseline 10, allowed 2: 11 is below
    let vars = vars(&keys, &[&node.url], &state_file, &sms.uri());
    let read_11 = || async { last_poll(&state_file).is_some_and(|p| p.counter == Some(11)) };
    assert_eq!(run_until(vars, clock, "a poll that read 11", read_11).await, ExitStatus::Ok);
    assert_eq!(node.get(|s| s.broadcasts), 0);
    let st = load_state(&state_file);
    assert_eq!(st.phase, Phase::Armed);
    assert_eq!(st.baseline.counter(), Some(10));
}

#[tokio::test]
async fn fires_once_with_witness_set_properties_signed_by_the_signing_key() {
    let (keys, clock, node) = scene(ChainSpec::hive()).await;
    let sms = twilio_ok(2).await;
    let (_d, state_file) = temp_state();
    raise_after_arming(&node, state_file.clone(), 12);
    let status = run_for(vars(&keys, &[&node.url], &state_file, &sms.uri()), clock, Duration::from_secs(60)).await;
    assert_eq!(status, ExitStatus::Ok);
    assert_eq!(node.get(|s| s.accepted.len()), 1, "exactly one swap transaction");
    assert_eq!(node.get(|s| s.signing_key), keys.backup.public_key());
    let (op, signer) = accepted_op(&node, 0);
    assert_eq!(signer, keys.primary.public_key(), "op 42 is signed by the current signing key");
    let Operation::WitnessSetProperties(p) = op else { panic!("expected witness_set_properties, got {op:?}") };
    assert_eq!(p.key(), Some(keys.primary.public_key()));
    assert_eq!(p.new_signing_key(), Some(keys.backup.public_key()));
    assert_eq!(p.props.len(), 2, "only key and new_signing_key");
    let st = load_state(&state_file);
    let Phase::Fired { outcome: Outcome::Swapped { txid: Some(txid) }, alerts, .. } = st.phase else {
        panic!("{st:?}")
    };
    assert_eq!(alerts["twilio"], Delivery::Sent);
    assert_eq!(txid.len(), 40);
    // The SMS names the witness, the chain, the new key and the txid.
    let requests = sms.received_requests().await.expect("recorded");
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&requests[0].body).expect("form body");
    let body = &form["Body"];
    assert!(body.contains("@alice") && body.contains("hive") && body.contains(&txid), "{body}");
    assert!(body.contains(&keys.backup.public_key().to_text("STM")), "{body}");
    assert!(body.chars().count() <= 160);
    assert!(requests[0].headers.get("authorization").is_some(), "basic auth");
}

#[tokio::test]
async fn fires_with_witness_update_copying_url_and_props_on_steem() {
    let (keys, clock, node) = scene(ChainSpec::steem()).await;
    node.set(|s| s.url = "https://alice.example/ünïcode".into());
    let sms = twilio_ok(2).await;
    let (_d, state_file) = temp_state();
    let mut v = vars(&keys, &[&node.url], &state_file, &sms.uri());
    v.insert("CHAIN".into(), "steem".into());
    v.remove("SIGNING_WIF");
    v.insert("ACTIVE_WIF".into(), keys.active.to_wif().to_string());
    raise_after_arming(&node, state_file.clone(), 12);
    let status = run_for(v, clock, Duration::from_secs(60)).await;
    assert_eq!(status, ExitStatus::Ok);
    assert_eq!(node.get(|s| s.accepted.len()), 1);
    let (op, signer) = accepted_op(&node, 0);
    assert_eq!(signer, keys.active.public_key(), "op 11 is signed by the active key");
    let Operation::WitnessUpdate(u) = op else { panic!("expected witness_update, got {op:?}") };
    assert_eq!(u.url, "https://alice.example/ünïcode", "url copied unchanged");
    assert_eq!(u.block_signing_key, keys.backup.public_key());
    assert_eq!(u.props.account_creation_fee.amount, 3000);
    assert_eq!(u.props.maximum_block_size, 65536);
    assert_eq!(u.props.interest_rate, 1000);
    assert_eq!(u.fee.amount, 0);
    // And on the wire in Steem's own names.
    let tx = node.get(|s| s.accepted[0].clone());
    assert_eq!(tx["operations"][0][1]["props"]["sbd_interest_rate"], 1000);
    assert_eq!(tx["operations"][0][1]["props"]["account_creation_fee"], "3.000 STEEM");
}

#[tokio::test]
async fn falls_back_to_witness_update_when_the_on_chain_key_is_null() {
    let (keys, clock, node) = scene(ChainSpec::hive()).await;
    let sms = twilio_ok(2).await;
    let (_d, state_file) = temp_state();
    let mut v = vars(&keys, &[&node.url], &state_file, &sms.uri());
    v.insert("ACTIVE_WIF".into(), keys.active.to_wif().to_string());
    let n2 = node.clone();
    let sf = state_file.clone();
    tokio::spawn(async move {
        wait_for("arming", || sf.exists()).await;
        // Someone disabled the witness, then it kept missing.
        n2.set(|s| {
            s.signing_key = graphene_protocol::keys::PublicKey::NULL;
            s.total_missed = 12;
        });
    });
    let status = run_for(v, clock, Duration::from_secs(60)).await;
    assert_eq!(status, ExitStatus::Ok);
    let (op, signer) = accepted_op(&node, 0);
    assert!(matches!(op, Operation::WitnessUpdate(_)), "{op:?}");
    assert_eq!(signer, keys.active.public_key());
    assert_eq!(node.get(|s| s.signing_key), keys.backup.public_key());
}

#[tokio::test]
async fn restart_in_fired_neither_polls_signs_nor_alerts() {
    let (keys, clock, node) = scene(ChainSpec::hive()).await;
    node.set(|s| s.total_missed = 50);
    let sms = twilio_ok(0).await;
    let (_d, state_file) = temp_state();
    let mut st = armed_state(&clock, 10, 2);
    st.phase = Phase::Fired {
        from: None,
        next: None,
        target: keys.backup.public_key().to_text("STM"),
        seen_at: now(&clock),
        trigger_misses: 2,
        fired_at: now(&clock),
        outcome: Outcome::Swapped { txid: Some("ab".repeat(20)) },
        alerts: sms_sent(),
        attempts: vec![],
    };
    write_state(&state_file, &st);
    let status = run_for(vars(&keys, &[&node.url], &state_file, &sms.uri()), clock, Duration::from_secs(30)).await;
    assert_eq!(status, ExitStatus::Ok);
    assert_eq!(node.get(|s| s.broadcasts), 0);
    assert_eq!(load_state(&state_file), st, "state untouched");
}

#[tokio::test]
async fn restart_in_firing_completes_the_same_swap() {
    let (keys, clock, node) = scene(ChainSpec::hive()).await;
    node.set(|s| s.total_missed = 13);
    let sms = twilio_ok(2).await;
    let (_d, state_file) = temp_state();
    let mut st = armed_state(&clock, 10, 2);
    // The process died right after persisting an attempt that never reached the chain.
    st.phase = Phase::Firing {
        from: None,
        target: keys.backup.public_key().to_text("STM"),
        seen_at: now(&clock),
        started_at: now(&clock),
        trigger_misses: 2,
        attempts: vec![Attempt {
            txid: "cd".repeat(20),
            action: "witness_set_properties".into(),
            expires_at: secs(clock.now_secs() - 1),
            at: secs(clock.now_secs() - 60),
            payload: None,
        }],
    };
    write_state(&state_file, &st);
    let status = run_for(vars(&keys, &[&node.url], &state_file, &sms.uri()), clock, Duration::from_secs(60)).await;
    assert_eq!(status, ExitStatus::Ok);
    assert_eq!(node.get(|s| s.accepted.len()), 1);
    assert_eq!(node.get(|s| s.signing_key), keys.backup.public_key());
    let Phase::Fired { outcome: Outcome::Swapped { .. }, attempts, .. } = load_state(&state_file).phase else {
        panic!()
    };
    assert_eq!(attempts.len(), 2, "the old attempt and the new one");
}

#[tokio::test]
async fn restart_in_firing_after_the_swap_took_effect_broadcasts_nothing() {
    let keys = Keys::new();
    let clock = fast_clock();
    let node =
        FakeNode::start(ChainSpec::hive(), "alice", keys.backup.public_key(), keys.active.public_key(), clock.clone())
            .await;
    let sms = twilio_ok(2).await;
    let (_d, state_file) = temp_state();
    let mut st = armed_state(&clock, 10, 2);
    st.phase = Phase::Firing {
        from: None,
        target: keys.backup.public_key().to_text("STM"),
        seen_at: now(&clock),
        started_at: now(&clock),
        trigger_misses: 2,
        attempts: vec![Attempt {
            txid: "ef".repeat(20),
            action: "witness_set_properties".into(),
            expires_at: secs(clock.now_secs() + 60),
            at: now(&clock),
            payload: None,
        }],
    };
    write_state(&state_file, &st);
    let status = run_for(vars(&keys, &[&node.url], &state_file, &sms.uri()), clock, Duration::from_secs(60)).await;
    assert_eq!(status, ExitStatus::Ok);
    assert_eq!(node.get(|s| s.broadcasts), 0);
    let Phase::Fired { outcome: Outcome::Swapped { txid }, .. } = load_state(&state_file).phase else { panic!() };
    assert_eq!(txid, Some("ef".repeat(20)));
}

#[tokio::test]
async fn restart_in_firing_toward_another_key_is_refused() {
    let (keys, clock, node) = scene(ChainSpec::hive()).await;
    let sms = twilio_ok(0).await;
    let (_d, state_file) = temp_state();
    let mut st = armed_state(&clock, 10, 2);
    let other = graphene_protocol::keys::PrivateKey::generate().public_key().to_text("STM");
    st.phase = Phase::Firing {
        from: None,
        target: other,
        seen_at: now(&clock),
        started_at: now(&clock),
        trigger_misses: 2,
        attempts: vec![],
    };
    write_state(&state_file, &st);
    let status = run_for(vars(&keys, &[&node.url], &state_file, &sms.uri()), clock, Duration::from_secs(30)).await;
    assert_ne!(status, ExitStatus::Ok);
    assert_eq!(node.get(|s| s.broadcasts), 0);
}

/// With the only endpoint faulty after arming, the trap stays blind and never fires.
async fn only_endpoint_fault_never_fires(fault: Fault) {
    let (keys, clock, node) = scene(ChainSpec::hive()).await;
    let sms = twilio_ok(0).await;
    let (_d, state_file) = temp_state();
    let n2 = node.clone();
    let sf = state_file.clone();
    let f = fault.clone();
    tokio::spawn(async move {
        wait_for("arming", || sf.exists()).await;
        n2.set(|s| {
            s.fault = f;
            s.total_missed = 40;
        });
    });
    // Until a poll after the fault (total_missed 40 with it) has been recorded unhealthy.
    let unhealthy = || async { last_poll(&state_file).is_some_and(|p| !p.healthy) };
    let status =
        run_until(vars(&keys, &[&node.url], &state_file, &sms.uri()), clock, "an unhealthy poll", unhealthy).await;
    assert_eq!(status, ExitStatus::Ok, "{fault:?}");
    assert_eq!(node.get(|s| s.broadcasts), 0, "{fault:?}");
    let st = load_state(&state_file);
    assert_eq!(st.phase, Phase::Armed, "{fault:?}");
    let poll = last_poll(&state_file).expect("a poll was recorded");
    assert!(!poll.healthy, "{fault:?}: {poll:?}");
}

#[tokio::test]
async fn stale_head_on_the_only_endpoint_never_fires() {
    only_endpoint_fault_never_fires(Fault::Stale(120)).await;
}

#[tokio::test]
async fn http_503_on_the_only_endpoint_never_fires() {
    only_endpoint_fault_never_fires(Fault::Http503).await;
}

#[tokio::test]
async fn garbage_json_on_the_only_endpoint_never_fires() {
    only_endpoint_fault_never_fires(Fault::Garbage).await;
}

#[tokio::test]
async fn timeout_on_the_only_endpoint_never_fires() {
    only_endpoint_fault_never_fires(Fault::Hang).await;
}

#[tokio::test]
async fn dead_first_endpoint_and_healthy_second_fires_once() {
    let keys = Keys::new();
    let clock = fast_clock();
    let dead =
        FakeNode::start(ChainSpec::hive(), "alice", keys.primary.public_key(), keys.active.public_key(), clock.clone())
            .await;
    dead.set(|s| s.fault = Fault::Http503);
    let node =
        FakeNode::start(ChainSpec::hive(), "alice", keys.primary.public_key(), keys.active.public_key(), clock.clone())
            .await;
    let sms = twilio_ok(2).await;
    let (_d, state_file) = temp_state();
    raise_after_arming(&node, state_file.clone(), 12);
    let status =
        run_for(vars(&keys, &[&dead.url, &node.url], &state_file, &sms.uri()), clock, Duration::from_secs(60)).await;
    assert_eq!(status, ExitStatus::Ok);
    assert_eq!(node.get(|s| s.accepted.len()), 1);
    assert_eq!(dead.get(|s| s.accepted.len()), 0);
}

#[tokio::test]
async fn a_lying_endpoint_is_not_corroborated_by_an_honest_one() {
    let keys = Keys::new();
    let clock = fast_clock();
    let liar =
        FakeNode::start(ChainSpec::hive(), "alice", keys.primary.public_key(), keys.active.public_key(), clock.clone())
            .await;
    let honest =
        FakeNode::start(ChainSpec::hive(), "alice", keys.primary.public_key(), keys.active.public_key(), clock.clone())
            .await;
    // No FIRED SMS; the operator may be warned about the liar (it ends untrusted).
    let sms = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({"sid": "SM1"})))
        .mount(&sms)
        .await;
    let (_d, state_file) = temp_state();
    let l2 = liar.clone();
    let sf = state_file.clone();
    tokio::spawn(async move {
        wait_for("arming", || sf.exists()).await;
        l2.set(|s| s.fault = Fault::LieMissed(99));
    });
    // Until a poll has named the liar (disputed, or untrusted once the blocks refute it).
    let named = || async { last_poll(&state_file).is_some_and(|p| p.problems.iter().any(|t| t.contains(&liar.url))) };
    let vars = vars(&keys, &[&liar.url, &honest.url], &state_file, &sms.uri());
    assert_eq!(run_until(vars, clock, "a poll naming the liar", named).await, ExitStatus::Ok);
    assert_eq!(liar.get(|s| s.broadcasts) + honest.get(|s| s.broadcasts), 0);
    assert_eq!(load_state(&state_file).phase, Phase::Armed);
    for r in sms.received_requests().await.unwrap_or_default() {
        assert!(!String::from_utf8_lossy(&r.body).contains("FIRED"), "no fire alert");
    }
}

#[tokio::test]
async fn an_expired_attempt_is_rebuilt_with_fresh_tapos() {
    let (keys, clock, node) = scene(ChainSpec::hive()).await;
    node.set(|s| s.swallow = 1); // the first accepted transaction never makes it into a block
    let sms = twilio_ok(2).await;
    let (_d, state_file) = temp_state();
    raise_after_arming(&node, state_file.clone(), 12);
    let status = run_for(vars(&keys, &[&node.url], &state_file, &sms.uri()), clock, Duration::from_secs(60)).await;
    assert_eq!(status, ExitStatus::Ok);
    let accepted: Vec<Value> = node.get(|s| s.accepted.clone());
    assert_eq!(accepted.len(), 2, "one expired attempt, one that took");
    assert_ne!(accepted[0]["ref_block_num"], accepted[1]["ref_block_num"], "fresh TaPoS");
    assert_eq!(node.get(|s| s.signing_key), keys.backup.public_key());
}

#[tokio::test]
async fn twilio_failing_once_then_recovering_still_alerts_and_swaps_once() {
    let (keys, clock, node) = scene(ChainSpec::hive()).await;
    let sms = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SMS_PATH))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .expect(1)
        .mount(&sms)
        .await;
    Mock::given(method("POST"))
        .and(path(SMS_PATH))
        .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({"sid": "SM1"})))
        .expect(2)
        .mount(&sms)
        .await;
    let (_d, state_file) = temp_state();
    raise_after_arming(&node, state_file.clone(), 12);
    let status = run_for(vars(&keys, &[&node.url], &state_file, &sms.uri()), clock, Duration::from_secs(60)).await;
    assert_eq!(status, ExitStatus::Ok);
    assert_eq!(node.get(|s| s.accepted.len()), 1);
}

#[tokio::test]
async fn twilio_failing_for_good_does_not_stop_the_swap() {
    let (keys, clock, node) = scene(ChainSpec::hive()).await;
    let sms = MockServer::start().await;
    Mock::given(method("POST")).and(path(SMS_PATH)).respond_with(ResponseTemplate::new(503)).mount(&sms).await;
    let (_d, state_file) = temp_state();
    raise_after_arming(&node, state_file.clone(), 12);
    let status =
        run_for(vars(&keys, &[&node.url], &state_file, &sms.uri()), clock.clone(), Duration::from_secs(60)).await;
    assert_eq!(status, ExitStatus::AlertFailed);
    assert_eq!(node.get(|s| s.accepted.len()), 1, "swapped once");
    assert_eq!(node.get(|s| s.signing_key), keys.backup.public_key());
    let Phase::Fired { alerts, .. } = load_state(&state_file).phase else { panic!() };
    assert!(matches!(alerts["twilio"], Delivery::Failed { .. }), "{alerts:?}");
    // A restart does not fire again, and stays disarmed.
    let status = run_for(vars(&keys, &[&node.url], &state_file, &sms.uri()), clock, Duration::from_secs(30)).await;
    assert_eq!(status, ExitStatus::Ok);
    assert_eq!(node.get(|s| s.broadcasts), 1);
}

#[tokio::test]
async fn a_swap_that_never_confirms_fails_within_the_fire_timeout_and_alerts() {
    let (keys, clock, node) = scene(ChainSpec::hive()).await;
    node.set(|s| s.swallow = usize::MAX);
    let sms = twilio_ok(2).await;
    let (_d, state_file) = temp_state();
    let mut v = vars(&keys, &[&node.url], &state_file, &sms.uri());
    v.insert("FIRE_TIMEOUT_SECS".into(), "200".into());
    v.insert("TX_EXPIRATION_SECS".into(), "30".into());
    raise_after_arming(&node, state_file.clone(), 12);
    let status = run_for(v, clock, Duration::from_secs(60)).await;
    assert_eq!(status, ExitStatus::SwapFailed);
    let accepted = node.get(|s| s.accepted.len());
    assert!((2..=8).contains(&accepted), "bounded retries: {accepted}");
    let Phase::Fired { outcome: Outcome::Failed { .. }, alerts, .. } = load_state(&state_file).phase else { panic!() };
    assert_eq!(alerts, sms_sent());
    let body = String::from_utf8_lossy(&sms.received_requests().await.expect("recorded")[0].body).into_owned();
    assert!(body.contains("FAILED"), "{body}");
}

#[tokio::test]
async fn no_secret_in_any_log_line_at_trace_level() {
    let logs = capture_logs();
    let (keys, clock, node) = scene(ChainSpec::hive()).await;
    let sms = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SMS_PATH))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&sms)
        .await;
    Mock::given(method("POST")).and(path(SMS_PATH)).respond_with(ResponseTemplate::new(201)).mount(&sms).await;
    let (_d, state_file) = temp_state();
    let mut v = vars(&keys, &[&node.url], &state_file, &sms.uri());
    v.insert("ACTIVE_WIF".into(), keys.active.to_wif().to_string());
    raise_after_arming(&node, state_file.clone(), 12);
    let status = run_for(v, clock, Duration::from_secs(60)).await;
    assert_eq!(status, ExitStatus::Ok);
    let text = logs.text();
    assert!(text.contains("broadcasting the key swap"), "the capture holds this run's logs");
    for secret in [keys.primary.to_wif().as_str(), keys.active.to_wif().as_str(), TWILIO_TOKEN] {
        assert!(!text.contains(secret), "a secret reached the logs");
    }
    // The basic-auth header would carry the token base64-encoded.
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("AC0123456789abcdef:{TWILIO_TOKEN}"));
    assert!(!text.contains(&basic), "the auth header reached the logs");
}

#[tokio::test]
async fn a_fired_trap_stays_up_idle_until_stopped() {
    let (keys, clock, node) = scene(ChainSpec::hive()).await;
    let (_d, state_file) = temp_state();
    let mut st = armed_state(&clock, 10, 2);
    st.phase = Phase::Fired {
        from: None,
        next: None,
        target: keys.backup.public_key().to_text("STM"),
        seen_at: now(&clock),
        trigger_misses: 2,
        fired_at: now(&clock),
        outcome: Outcome::Swapped { txid: None },
        alerts: sms_sent(),
        attempts: vec![],
    };
    write_state(&state_file, &st);
    let v = vars(&keys, &[&node.url], &state_file, "http://127.0.0.1:9");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run_owned(v, clock, shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!task.is_finished(), "a disarmed trap idles instead of exiting (no restart loop under docker)");
    shutdown.cancel();
    assert_eq!(task.await.expect("join"), ExitStatus::Ok);
    assert_eq!(node.get(|s| s.broadcasts), 0);
}

async fn run_owned(v: HashMap<String, String>, clock: SharedClock, shutdown: CancellationToken) -> ExitStatus {
    run(&v, clock, shutdown, false).await
}

#[tokio::test]
async fn a_trigger_changed_after_arming_is_refused_until_rearm() {
    let (keys, clock, node) = scene(ChainSpec::hive()).await;
    node.set(|s| s.total_missed = 11);
    let (_d, state_file) = temp_state();
    let st = armed_state(&clock, 10, 2);
    write_state(&state_file, &st);
    let mut v = vars(&keys, &[&node.url], &state_file, "http://127.0.0.1:9");
    // Edited from 2 to 1 after arming: 10 + 1 = 11 is the counter now, so resuming would fire a healthy witness.
    v.insert("MISSED_BLOCKS_ALLOWED".into(), "1".into());
    let status = run_for(v, clock, Duration::from_secs(30)).await;
    assert_eq!(status, ExitStatus::Config);
    assert_eq!(node.get(|s| s.broadcasts), 0);
}

#[tokio::test]
async fn restart_in_firing_rebroadcasts_the_recorded_attempt() {
    use graphene_protocol::json::transaction_to_json;
    use graphene_protocol::operation::WitnessSetProperties;
    use graphene_protocol::transaction::sign_transaction;
    use graphene_protocol::transaction::{BlockId, TimePointSec, Transaction};
    let (keys, clock, node) = scene(ChainSpec::hive()).await;
    let sms = twilio_ok(2).await;
    let (_d, state_file) = temp_state();
    // The process signed and recorded an attempt, then died before its broadcast reached any node.
    let chain = ChainSpec::hive();
    let op = WitnessSetProperties::key_swap("alice", keys.primary.public_key(), keys.backup.public_key());
    // TaPoS on a block of the scripted node's chain (block n's id is n, then 0xab bytes; the node is ~3000
    // blocks old), which the node checks as hived does.
    let head = BlockId::from_hex(&format!("{:08x}{}", 2990, "ab".repeat(16))).expect("block id");
    let expires_at = clock.now_secs() + 120;
    let tx = Transaction::with_tapos(&head, TimePointSec(expires_at as u32), vec![Operation::WitnessSetProperties(op)]);
    let signed = sign_transaction(&tx, &chain, &keys.primary).expect("signs");
    let txid = tx.id(PackMode::Legacy).to_string();
    let mut st = armed_state(&clock, 10, 2);
    st.phase = Phase::Firing {
        from: None,
        target: keys.backup.public_key().to_text("STM"),
        seen_at: now(&clock),
        started_at: now(&clock),
        trigger_misses: 2,
        attempts: vec![Attempt {
            txid: txid.clone(),
            action: "witness_set_properties".into(),
            expires_at: secs(expires_at),
            at: now(&clock),
            payload: Some(transaction_to_json(&signed, &chain)),
        }],
    };
    write_state(&state_file, &st);
    let status = run_for(vars(&keys, &[&node.url], &state_file, &sms.uri()), clock, Duration::from_secs(60)).await;
    assert_eq!(status, ExitStatus::Ok);
    assert_eq!(node.get(|s| s.accepted.len()), 1, "the recorded attempt, not a new one");
    let (tx, chain) = node.get(|s| (s.accepted[0].clone(), s.chain.clone()));
    let accepted = transaction_from_json(&tx, &chain).expect("parses");
    assert_eq!(accepted.transaction.id(PackMode::Legacy).to_string(), txid);
    let Phase::Fired { outcome: Outcome::Swapped { txid: Some(done) }, .. } = load_state(&state_file).phase else {
        panic!()
    };
    assert_eq!(done, txid);
}

/// Issue 8: a witness absent from the current schedule is watched by plain polling, and `status` says so.
#[tokio::test]
async fn a_witness_absent_from_the_schedule_falls_back_to_polling() {
    let (keys, clock, node) = scene(ChainSpec::hive()).await;
    node.set(|s| s.schedule = Some((0..21).map(|i| format!("other{i:02}")).collect()));
    let sms = twilio_ok(2).await;
    let (_d, state_file) = temp_state();
    let sf = state_file.clone();
    let n2 = node.clone();
    tokio::spawn(async move {
        wait_for("a poll", || last_poll(&sf).is_some()).await;
        let watch = last_poll(&sf).and_then(|p| p.watch);
        assert_eq!(watch.as_deref(), Some("poll: @alice is not in the current schedule"));
        n2.set(|s| s.total_missed = 12);
    });
    let status = run_for(vars(&keys, &[&node.url], &state_file, &sms.uri()), clock, Duration::from_secs(60)).await;
    assert_eq!(status, ExitStatus::Ok, "the periodic poll still catches the misses");
    assert_eq!(node.get(|s| s.accepted.len()), 1);
}
