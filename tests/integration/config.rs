//! Bad configuration: every problem names its variable, all problems come together, nothing is armed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chain_clock::SharedClock;
use graphene_protocol::chain::ChainSpec;
use graphene_protocol::keys::PrivateKey;
use tokio_util::sync::CancellationToken;
use witness_trap::chain::graphene::GrapheneProducer;
use witness_trap::chain::ChainKind;
use witness_trap::cli::ExitStatus;
use witness_trap::config::ChainSettings;
use witness_trap::config::{self, check::check};

use crate::support::*;

fn base(keys: &Keys) -> HashMap<String, String> {
    vars(keys, &["http://127.0.0.1:9/"], std::path::Path::new("/tmp/unused-state.json"), "http://127.0.0.1:9")
}

#[test]
fn every_bad_variable_is_named_without_its_secret() {
    let keys = Keys::new();
    let wif = keys.primary.to_wif().to_string();
    let mut broken_wif = wif.clone();
    broken_wif.replace_range(10..11, if &wif[10..11] == "a" { "b" } else { "a" });
    let other_prefix = keys.backup.public_key().to_text("TST");
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&str, Box<dyn Fn(&mut HashMap<String, String>)>, &str)> = vec![
        (
            "WITNESS_ACCOUNT",
            Box::new(|m| {
                m.remove("WITNESS_ACCOUNT");
            }),
            "missing witness",
        ),
        (
            "WITNESS_ACCOUNT",
            Box::new(|m| {
                m.insert("WITNESS_ACCOUNT".into(), "Not_Valid".into());
            }),
            "bad account name",
        ),
        (
            "CHAIN",
            Box::new(|m| {
                m.insert("CHAIN".into(), "bitshares".into());
            }),
            "unknown chain",
        ),
        (
            "CHAIN_ID",
            Box::new(|m| {
                m.insert("CHAIN_ID".into(), "xyz".into());
            }),
            "bad chain id",
        ),
        (
            "RPC_URLS",
            Box::new(|m| {
                m.remove("RPC_URLS");
            }),
            "missing urls",
        ),
        (
            "RPC_URLS",
            Box::new(|m| {
                m.insert("RPC_URLS".into(), "api.hive.blog".into());
            }),
            "url without scheme",
        ),
        (
            "BACKUP_SIGNING_KEY",
            Box::new(|m| {
                m.remove("BACKUP_SIGNING_KEY");
            }),
            "missing backup key",
        ),
        (
            "BACKUP_SIGNING_KEY",
            Box::new(move |m| {
                m.insert("BACKUP_SIGNING_KEY".into(), other_prefix.clone());
            }),
            "wrong prefix",
        ),
        (
            "BACKUP_SIGNING_KEY",
            Box::new(|m| {
                m.insert("BACKUP_SIGNING_KEY".into(), "STM5notakey".into());
            }),
            "malformed backup key",
        ),
        (
            "SIGNING_WIF",
            Box::new(move |m| {
                m.insert("SIGNING_WIF".into(), broken_wif.clone());
            }),
            "bad WIF checksum",
        ),
        (
            "SIGNING_WIF",
            Box::new(|m| {
                m.remove("SIGNING_WIF");
            }),
            "no key at all",
        ),
        (
            "SIGNING_WIF",
            Box::new(|m| {
                m.insert("SIGNING_WIF_FILE".into(), "/etc/hostname".into());
            }),
            "both WIF and WIF_FILE",
        ),
        (
            "ACTIVE_WIF_FILE",
            Box::new(|m| {
                m.insert("ACTIVE_WIF_FILE".into(), "/nonexistent/active".into());
            }),
            "unreadable secret file",
        ),
        (
            "THRESHOLD",
            Box::new(|m| {
                m.insert("THRESHOLD".into(), "20".into());
            }),
            "both triggers",
        ),
        (
            "MISSED_BLOCKS_ALLOWED",
            Box::new(|m| {
                m.remove("MISSED_BLOCKS_ALLOWED");
            }),
            "no trigger",
        ),
        (
            "MISSED_BLOCKS_ALLOWED",
            Box::new(|m| {
                m.insert("MISSED_BLOCKS_ALLOWED".into(), "0".into());
            }),
            "zero allowed",
        ),
        (
            "POLL_INTERVAL_SECS",
            Box::new(|m| {
                m.insert("POLL_INTERVAL_SECS".into(), "0".into());
            }),
            "zero interval",
        ),
        (
            "TWILIO_TO",
            Box::new(|m| {
                m.insert("TWILIO_TO".into(), "+14155550123,0044791112".into());
            }),
            "bad phone number",
        ),
        (
            "TWILIO_FROM",
            Box::new(|m| {
                m.insert("TWILIO_FROM".into(), "555-0100".into());
            }),
            "bad sender",
        ),
        (
            "TWILIO_AUTH_TOKEN",
            Box::new(|m| {
                m.remove("TWILIO_AUTH_TOKEN");
            }),
            "missing token",
        ),
        (
            "TWILIO_ACCOUNT_SID",
            Box::new(|m| {
                m.remove("TWILIO_ACCOUNT_SID");
            }),
            "missing sid",
        ),
    ];
    for (var, mutate, why) in cases {
        let mut m = base(&keys);
        mutate(&mut m);
        let report = match config::load(&m) {
            Ok(_) => panic!("{why}: accepted"),
            Err(r) => r,
        };
        assert!(report.problems.iter().any(|p| p.var == var), "{why}: {var} not named in {report}");
        let text = report.to_string();
        assert!(!text.contains(&wif), "{why}: the WIF leaked into {text}");
        assert!(!text.contains(TWILIO_TOKEN), "{why}: the token leaked");
        assert!(text.contains("fix:"), "{why}: no fix in {text}");
    }
}

#[test]
fn all_problems_are_reported_together() {
    let keys = Keys::new();
    let mut m = base(&keys);
    m.remove("WITNESS_ACCOUNT");
    m.insert("TWILIO_TO".into(), "nope".into());
    m.insert("POLL_INTERVAL_SECS".into(), "-1".into());
    let report = config::load(&m).err().expect("rejected");
    let vars: Vec<&str> = report.problems.iter().map(|p| p.var.as_str()).collect();
    for v in ["WITNESS_ACCOUNT", "TWILIO_TO", "POLL_INTERVAL_SECS"] {
        assert!(vars.contains(&v), "{v} missing from {vars:?}");
    }
}

#[test]
fn backup_equal_to_the_signing_key_is_refused_offline() {
    let keys = Keys::new();
    let mut m = base(&keys);
    m.insert("BACKUP_SIGNING_KEY".into(), keys.primary.public_key().to_text("STM"));
    let report = config::load(&m).err().expect("rejected");
    assert!(report.problems.iter().any(|p| p.var == "BACKUP_SIGNING_KEY"), "{report}");
}

/// Chain-dependent problems: named by `check`, and `run` exits before arming without broadcasting.
#[tokio::test]
async fn chain_checks_name_the_variable_and_nothing_is_armed() {
    let keys = Keys::new();
    let clock: SharedClock = Arc::new(chain_clock::SystemClock);
    let stranger = PrivateKey::generate();
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&str, Box<dyn Fn(&mut HashMap<String, String>, &FakeNode)>, &str)> = vec![
        (
            "SIGNING_WIF",
            Box::new(|m, _| {
                m.insert("SIGNING_WIF".into(), PrivateKey::generate().to_wif().to_string());
            }),
            "signing WIF is not the on-chain key",
        ),
        (
            "ACTIVE_WIF",
            Box::new(move |m, _| {
                m.insert("ACTIVE_WIF".into(), stranger.to_wif().to_string());
            }),
            "active WIF not in the authority",
        ),
        (
            "THRESHOLD",
            Box::new(|m, _| {
                m.remove("MISSED_BLOCKS_ALLOWED");
                m.insert("THRESHOLD".into(), "10".into());
            }),
            "threshold already reached",
        ),
        ("RPC_URLS", Box::new(|_, n| n.set(|s| s.fault = Fault::WrongChain)), "endpoint on another chain"),
        (
            "WITNESS_ACCOUNT",
            Box::new(|m, _| {
                m.insert("WITNESS_ACCOUNT".into(), "bob".into());
            }),
            "not a witness",
        ),
    ];
    for (var, mutate, why) in cases {
        let node = FakeNode::start(
            ChainSpec::hive(),
            "alice",
            keys.primary.public_key(),
            keys.active.public_key(),
            clock.clone(),
        )
        .await;
        let (_d, state_file) = temp_state();
        let mut m = vars(&keys, &[&node.url], &state_file, "http://127.0.0.1:9");
        mutate(&mut m, &node);
        let settings = config::load(&m).unwrap_or_else(|r| panic!("{why}: offline load failed: {r}"));
        let trigger = settings.trap.trigger;
        let ChainSettings::Graphene(g) = settings.chain else { panic!("a Hive/Steem configuration") };
        let mut producer = GrapheneProducer::new(g, clock.clone()).expect("producer");
        let result = check(&mut producer, ChainKind::Graphene, trigger, true).await;
        assert!(result.errors.iter().any(|p| p.var == var), "{why}: {var} not named in {:?}", result.errors);
        let status = run(&m, clock.clone(), CancellationToken::new(), true).await;
        assert!(matches!(status, ExitStatus::Config | ExitStatus::ChainUnavailable), "{why}: {status:?}");
        assert_eq!(node.get(|s| s.broadcasts), 0, "{why}");
        assert!(!state_file.exists(), "{why}: armed anyway");
    }
}

#[tokio::test]
async fn backup_key_already_on_chain_is_refused() {
    let keys = Keys::new();
    let clock: SharedClock = Arc::new(chain_clock::SystemClock);
    let node =
        FakeNode::start(ChainSpec::hive(), "alice", keys.backup.public_key(), keys.active.public_key(), clock.clone())
            .await;
    let (_d, state_file) = temp_state();
    let mut m = vars(&keys, &[&node.url], &state_file, "http://127.0.0.1:9");
    m.remove("SIGNING_WIF");
    m.insert("ACTIVE_WIF".into(), keys.active.to_wif().to_string());
    let settings = config::load(&m).expect("offline ok");
    let trigger = settings.trap.trigger;
    let ChainSettings::Graphene(g) = settings.chain else { panic!("a Hive/Steem configuration") };
    let mut producer = GrapheneProducer::new(g, clock.clone()).expect("producer");
    let result = check(&mut producer, ChainKind::Graphene, trigger, true).await;
    assert!(result.errors.iter().any(|p| p.var == "BACKUP_SIGNING_KEY"), "{:?}", result.errors);
    let shutdown = CancellationToken::new();
    let s2 = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(20)).await;
        s2.cancel();
    });
    assert_eq!(run(&m, clock, shutdown, true).await, ExitStatus::Config);
    assert!(!state_file.exists());
}
