//! The binary as an operator runs it: exit statuses, what it prints, and never a secret in any output.

use std::collections::HashMap;
use std::process::Output;
use std::sync::Arc;

use chain_clock::SharedClock;
use graphene_protocol::chain::ChainSpec;

use crate::support::*;

fn assert_no_secrets(out: &Output, secrets: &[&str]) {
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    for s in secrets {
        assert!(!all.contains(s), "a secret leaked into the output:\n{all}");
    }
}

async fn node_and_vars() -> (Keys, FakeNode, tempfile::TempDir, HashMap<String, String>) {
    let keys = Keys::new();
    let clock: SharedClock = Arc::new(chain_clock::SystemClock);
    let node =
        FakeNode::start(ChainSpec::hive(), "alice", keys.primary.public_key(), keys.active.public_key(), clock).await;
    let (dir, state_file) = temp_state();
    let mut v = vars(&keys, &[&node.url], &state_file, "http://127.0.0.1:9");
    v.insert("ACTIVE_WIF".into(), keys.active.to_wif().to_string());
    (keys, node, dir, v)
}

#[tokio::test]
async fn check_status_dry_run_rearm_and_health() {
    let (keys, node, _dir, v) = node_and_vars().await;
    let secrets = [keys.primary.to_wif().to_string(), keys.active.to_wif().to_string(), TWILIO_TOKEN.to_string()];
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();

    let out = exec(&["check"], &v).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok: @alice"));
    assert_no_secrets(&out, &secrets);

    let out = exec(&["health"], &v).await;
    assert_eq!(out.status.code(), Some(6), "not armed yet is unhealthy");

    let out = exec(&["fire", "--dry-run"], &v).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(printed["broadcast"], false);
    assert_eq!(printed["action"], "witness_set_properties");
    assert_eq!(printed["txid"].as_str().map(str::len), Some(40));
    assert_eq!(printed["transaction"]["signatures"].as_array().map(Vec::len), Some(1));
    assert_eq!(node.get(|s| s.broadcasts), 0, "dry run never broadcasts");
    assert_no_secrets(&out, &secrets);

    let out = exec(&["fire"], &v).await;
    assert_eq!(out.status.code(), Some(2), "fire without --dry-run is refused");

    let out = exec(&["rearm"], &v).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("re-armed"));

    let out = exec(&["status"], &v).await;
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("state:      armed") && text.contains("total_missed: 10"), "{text}");
    assert_no_secrets(&out, &secrets);
}

#[tokio::test]
async fn bad_configuration_exits_78_naming_the_variable_without_the_secret() {
    let (keys, node, _dir, mut v) = node_and_vars().await;
    let wif = keys.primary.to_wif().to_string();
    let bad: String = wif.chars().rev().collect();
    v.insert("SIGNING_WIF".into(), bad.clone());
    v.insert("TWILIO_TO".into(), "12345".into());
    let out = exec(&["run"], &v).await;
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SIGNING_WIF") && err.contains("TWILIO_TO"), "{err}");
    assert_no_secrets(&out, &[&bad, &wif, TWILIO_TOKEN]);
    assert_eq!(node.get(|s| s.broadcasts), 0);
}

#[tokio::test]
async fn secrets_from_files_and_env_file() {
    let (keys, _node, dir, mut v) = node_and_vars().await;
    let wif_path = dir.path().join("signing.wif");
    std::fs::write(&wif_path, format!("{}\n", keys.primary.to_wif().as_str())).expect("write");
    v.remove("SIGNING_WIF");
    v.insert("SIGNING_WIF_FILE".into(), wif_path.display().to_string());
    // Everything through --env-file this time.
    let env_path = dir.path().join("trap.env");
    let text: String = v.iter().map(|(k, val)| format!("{k}={val}\n")).collect();
    std::fs::write(&env_path, text).expect("write env");
    let out = exec(&["--env-file", env_path.to_str().expect("utf-8 path"), "check"], &HashMap::new()).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_no_secrets(&out, &[keys.primary.to_wif().as_str(), TWILIO_TOKEN]);
}

/// `health` (docker's HEALTHCHECK) follows the state file and the last poll; it needs no network.
#[test]
fn health_follows_the_state_file() {
    use witness_trap::trap::state::{InstanceFacts, LastPoll, Outcome, Phase};
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let poll = |at: u64, healthy: bool| LastPoll {
        at: secs(at),
        healthy,
        misses: Some(0),
        counter: Some(10),
        height: Some(100),
        current_key: None,
        watch: None,
        note: "x".into(),
        problems: Vec::new(),
    };
    let fired = Phase::Fired {
        from: None,
        next: None,
        target: "STM1".into(),
        seen_at: secs(now),
        trigger_misses: 2,
        fired_at: secs(now),
        outcome: Outcome::Swapped { txid: Some("ab".repeat(20)) },
        alerts: sms_sent(),
        attempts: vec![],
    };
    let firing = Phase::Firing {
        from: None,
        target: "STM1".into(),
        seen_at: secs(now),
        started_at: secs(now),
        trigger_misses: 2,
        attempts: vec![],
    };
    type Case = (Option<(Phase, Option<LastPoll>)>, i32, &'static str);
    let cases: Vec<Case> = vec![
        (None, 6, "no state file: not armed yet"),
        (Some((Phase::Armed, Some(poll(now - 10, true)))), 0, "armed, recent healthy poll"),
        (Some((Phase::Armed, Some(poll(now - 10, false)))), 6, "armed but blind"),
        (Some((Phase::Armed, Some(poll(now - 1000, true)))), 6, "armed but the last poll is old"),
        (Some((Phase::Armed, None)), 0, "just armed"),
        (
            Some((
                Phase::Armed,
                Some(LastPoll { problems: vec!["endpoint http://x/ untrusted (lies)".into()], ..poll(now - 10, true) }),
            )),
            6,
            "armed, polling, but an endpoint is untrusted",
        ),
        (Some((firing, Some(poll(now - 10, true)))), 0, "firing"),
        (Some((fired, Some(poll(now - 10, true)))), 6, "fired: disarmed"),
    ];
    for (state, code, why) in cases {
        let (dir, path) = temp_state();
        if let Some((phase, last_poll)) = state {
            let id = witness_trap::chain::Identity { producer: "alice".into(), chain: "hive".into() };
            let mut st = AnyState::armed(&id, secs(now - 20), serde_json::json!({"total_missed": 10}), 2);
            st.phase = phase;
            write_state(&path, &st);
            let facts = InstanceFacts { last_poll };
            std::fs::write(witness_trap::store::file::instance_path(&path), facts.encode()).expect("write facts");
        }
        let out = bin().arg("health").env("STATE_FILE", &path).output().expect("runs");
        assert_eq!(out.status.code(), Some(code), "{why}: {}", String::from_utf8_lossy(&out.stdout));
        assert!(!out.stdout.is_empty(), "{why}: says why");
        drop(dir);
    }
}
