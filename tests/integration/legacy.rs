//! State files written by the previous release (state version 1, commit 7060fbd) load and behave as before.
//!
//! The fixtures in `tests/fixtures/` are copied into the test's state file unchanged. Their times are the
//! previous release's (a week before now): nothing that resumes an armed trap or leaves a fired one alone
//! compares them with the clock, so they stay as written. Their keys are not the test's keys either: the
//! armed file names one only in its last poll, which is not migrated, and a fired trap never signs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use graphene_protocol::chain::ChainSpec;
use graphene_protocol::keys::PublicKey;
use serde_json::{json, Value};
use witness_trap::alert::{Deliveries, Delivery};
use witness_trap::chain::Baseline;
use witness_trap::cli::ExitStatus;
use witness_trap::trap::state::{read_file, Attempt, Outcome, Phase};

use crate::support::*;

/// The fixtures' facts, as written into them.
const ARMED_AT: u64 = 1_795_469_094;
const SEEN_AT: u64 = 1_795_897_326;
const FIRED_AT: u64 = 1_795_897_335;
const TXID: &str = "3f6a1c0e9b2d4f8a7c5e1b3d9f0a2c4e6b8d0f1a";
const TARGET: &str = "STM7brYP9rXyMynTPaoaJkMm6BC4Sfw8wkdRiGkmkWPdNpgVryr35";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("fixture readable")
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture_bytes(name)).expect("fixture is JSON")
}

/// Write `v` as the previous release did: pretty JSON and a newline.
fn write_v1(path: &Path, v: &Value) {
    let mut bytes = serde_json::to_vec_pretty(v).expect("encode");
    bytes.push(b'\n');
    std::fs::write(path, bytes).expect("write state");
}

fn raw(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("state file")).expect("state file is JSON")
}

/// An armed version-1 trap resumes with the baseline and trigger it armed with: no re-arming from the counter
/// now, no fire below its threshold, one swap and one SMS at it.
#[tokio::test]
async fn v1_armed_resumes_its_baseline_and_fires_once_at_its_threshold() {
    let (keys, clock, node) = scene(ChainSpec::hive()).await;
    node.set(|s| s.total_missed = 11); // one miss since arming: a re-armed trap would count from 11
    let sms = twilio_ok(2).await; // one SMS, to each of the two recipients
    let (_d, state_file) = temp_state();
    std::fs::write(&state_file, fixture_bytes("v1-armed.json")).expect("write state");
    let v = vars(&keys, &[&node.url], &state_file, &sms.uri());
    let task = tokio::spawn(run_for(v, clock, Duration::from_secs(60)));

    let sf = state_file.clone();
    wait_for("a poll at 11", || last_poll(&sf).and_then(|p| p.counter) == Some(11)).await;
    // Several more polls at 11 (3 s of chain time is 150 ms here): still holding.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // A healthy poll (a loaded machine may time one out): at 11, one miss since the v1 baseline.
    let mut poll = None;
    wait_for("a healthy poll at 11", || {
        poll = last_poll(&sf).filter(|p| p.healthy && p.counter == Some(11));
        poll.is_some()
    })
    .await;
    let poll = poll.expect("seen");
    assert_eq!(poll.misses, Some(1), "misses count from the v1 baseline: {poll:?}");
    assert!(!task.is_finished(), "no fire at 11");
    assert_eq!(node.get(|s| s.broadcasts), 0);
    // As read (migrated): polls go to the instance file, so the file itself stays version 1 until a transition.
    let st = load_state(&state_file);
    assert_eq!(st.version, 2);
    assert_eq!((st.producer.as_str(), st.chain.as_str()), ("alice", "hive"));
    assert_eq!(st.phase, Phase::Armed);
    assert_eq!(st.baseline, json!({"total_missed": 10}), "not re-armed from the counter now");
    assert_eq!(st.allowed, 2);
    assert_eq!(st.armed_at, secs(ARMED_AT));

    node.set(|s| s.total_missed = 12);
    let status = task.await.expect("join");
    assert_eq!(status, ExitStatus::Ok, "swap confirmed and SMS delivered");
    assert_eq!(node.get(|s| s.broadcasts), 1, "exactly one broadcast");
    assert_eq!(node.get(|s| s.accepted.len()), 1);
    assert_eq!(node.get(|s| s.signing_key), keys.backup.public_key());
    let st = load_state(&state_file);
    let Phase::Fired {
        target, trigger_misses, outcome: Outcome::Swapped { txid: Some(txid) }, alerts, attempts, ..
    } = st.phase
    else {
        panic!("{st:?}")
    };
    assert_eq!(target, keys.backup.public_key().to_text("STM"));
    assert_eq!(trigger_misses, 2);
    assert_eq!(alerts, sms_sent());
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].txid, txid);
    assert_eq!(st.baseline, json!({"total_missed": 10}));
    assert_eq!(st.armed_at, secs(ARMED_AT), "arming time kept");
    // The fire wrote the state: version 2 on disk, none of version 1's fields left.
    let on_disk = raw(&state_file);
    assert_eq!(on_disk["version"], 2);
    for gone in ["witness", "baseline_missed", "threshold", "trigger_missed", "alert", "last_poll"] {
        assert!(on_disk.get(gone).is_none(), "{gone} left in {on_disk}");
    }
    let forms = sms_forms(&sms).await;
    assert_eq!(forms.len(), 2);
    let to: BTreeSet<&str> = forms.iter().map(|f| f["To"].as_str()).collect();
    assert_eq!(to, BTreeSet::from(["+14155550123", "+447911123456"]));
    for f in &forms {
        assert!(f["Body"].contains("@alice") && f["Body"].contains(&txid), "{}", f["Body"]);
    }
}

/// A fired version-1 trap stays disarmed: no poll, no signature, no broadcast, no second SMS.
#[tokio::test]
async fn v1_fired_neither_polls_signs_nor_alerts_again() {
    let (keys, clock, node) = scene(ChainSpec::hive()).await;
    node.set(|s| s.total_missed = 50);
    let sms = twilio_ok(0).await;
    let (_d, state_file) = temp_state();
    std::fs::write(&state_file, fixture_bytes("v1-fired.json")).expect("write state");
    let before = load_state(&state_file);
    let status = run_for(vars(&keys, &[&node.url], &state_file, &sms.uri()), clock, Duration::from_secs(30)).await;
    assert_eq!(status, ExitStatus::Ok);
    assert_eq!(node.get(|s| s.broadcasts), 0);
    assert_eq!(node.get(|s| s.signing_key), keys.primary.public_key(), "the chain untouched");
    assert!(last_poll(&state_file).is_none(), "a fired trap does not poll");
    assert!(sms.received_requests().await.expect("recorded").is_empty(), "no SMS resent");
    let st = load_state(&state_file);
    assert_eq!(st, before, "state unchanged");
    let Phase::Fired { target, outcome, alerts, .. } = st.phase else { panic!("{st:?}") };
    assert_eq!(target, TARGET);
    assert_eq!(outcome, Outcome::Swapped { txid: Some(TXID.into()) });
    assert_eq!(alerts, sms_sent());
}

/// A version-1 trap that fired but died before its SMS went out sends it on start, exactly once.
#[tokio::test]
async fn v1_fired_with_the_sms_pending_sends_it_once() {
    let (keys, clock, node) = scene(ChainSpec::hive()).await;
    let sms = twilio_ok(2).await; // one SMS, to each of the two recipients, over both runs
    let (_d, state_file) = temp_state();
    let mut v1 = fixture_json("v1-fired.json");
    v1["alert"] = json!({"alert": "pending"});
    write_v1(&state_file, &v1);
    let v = vars(&keys, &[&node.url], &state_file, &sms.uri());
    let status = run_for(v.clone(), clock.clone(), Duration::from_secs(30)).await;
    assert_eq!(status, ExitStatus::Ok);
    assert_eq!(node.get(|s| s.broadcasts), 0);
    let forms = sms_forms(&sms).await;
    assert_eq!(forms.len(), 2, "one SMS to each recipient");
    let to: BTreeSet<&str> = forms.iter().map(|f| f["To"].as_str()).collect();
    assert_eq!(to, BTreeSet::from(["+14155550123", "+447911123456"]));
    for f in &forms {
        let body = &f["Body"];
        assert!(body.contains("@alice") && body.contains("hive"), "{body}");
        assert!(body.contains(TARGET) && body.contains(TXID), "{body}");
        assert!(body.contains("missed 2"), "misses since arming: {body}");
    }
    let st = load_state(&state_file);
    let Phase::Fired { outcome, alerts, .. } = st.phase else { panic!("{st:?}") };
    assert_eq!(outcome, Outcome::Swapped { txid: Some(TXID.into()) });
    assert_eq!(alerts, sms_sent());
    let on_disk = raw(&state_file);
    assert_eq!(on_disk["version"], 2, "the delivery was recorded in version 2");
    assert_eq!(on_disk["alerts"], json!({"twilio": {"delivery": "sent"}}));
    // Another start: recorded as sent, not sent again.
    let status = run_for(v, clock, Duration::from_secs(30)).await;
    assert_eq!(status, ExitStatus::Ok);
    assert_eq!(sms.received_requests().await.expect("recorded").len(), 2);
    assert_eq!(node.get(|s| s.broadcasts), 0);
}

/// Reading each fixture gives the version-2 state the migration promises.
#[test]
fn v1_fixtures_read_as_version_2() {
    let armed = read_file(&fixture("v1-armed.json")).expect("readable").expect("exists");
    let alice = |st: &AnyState| {
        assert_eq!(st.version, 2);
        assert_eq!((st.producer.as_str(), st.chain.as_str()), ("alice", "hive"));
        assert_eq!(st.armed_at, secs(ARMED_AT));
        assert_eq!(st.baseline, json!({"total_missed": 10}));
        assert_eq!(st.baseline.counter(), Some(10));
        assert_eq!(st.allowed, 2, "threshold 12 - baseline_missed 10");
        assert_eq!(st.threshold_counter(), Some(12));
    };
    alice(&armed);
    assert_eq!(armed.phase, Phase::Armed);

    let fired = read_file(&fixture("v1-fired.json")).expect("readable").expect("exists");
    alice(&fired);
    assert!(PublicKey::from_text(TARGET, "STM").is_ok(), "the fixture's target is a real key");
    let attempt = Attempt {
        txid: TXID.into(),
        action: "witness_set_properties".into(),
        expires_at: secs(1_795_897_389),
        at: secs(1_795_897_329),
        payload: None,
    };
    assert_eq!(
        fired.phase,
        Phase::Fired {
            from: None,
            next: None,
            target: TARGET.into(),
            seen_at: secs(SEEN_AT),
            trigger_misses: 2, // trigger_missed 12 - baseline_missed 10
            fired_at: secs(FIRED_AT),
            outcome: Outcome::Swapped { txid: Some(TXID.into()) },
            alerts: sms_sent(),
            attempts: vec![attempt],
        }
    );

    // The migrated states encode as version 2 and read back the same.
    for st in [&armed, &fired] {
        let bytes = st.encode().expect("encode");
        assert_eq!(&AnyState::decode(&bytes, "v2").expect("decodes"), st);
        assert_eq!(serde_json::from_slice::<Value>(&bytes).expect("JSON")["version"], 2);
    }

    // Every version-1 alert becomes the twilio channel's delivery (none when no SMS was configured).
    let (_d, path) = temp_state();
    let cases = [
        (json!({"alert": "pending"}), Deliveries::from([("twilio".to_string(), Delivery::Pending)])),
        (
            json!({"alert": "failed", "reason": "twilio kept failing"}),
            Deliveries::from([("twilio".to_string(), Delivery::Failed { reason: "twilio kept failing".into() })]),
        ),
        (json!({"alert": "not_configured"}), Deliveries::new()),
    ];
    for (alert, expected) in cases {
        let mut v1 = fixture_json("v1-fired.json");
        v1["alert"] = alert.clone();
        write_v1(&path, &v1);
        let st = read_file(&path).expect("readable").expect("exists");
        let Phase::Fired { alerts, .. } = st.phase else { panic!("{st:?}") };
        assert_eq!(alerts, expected, "{alert}");
    }
}
