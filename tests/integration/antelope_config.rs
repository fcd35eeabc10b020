//! Antelope configuration: every variable's bad value is refused naming it, before anything is armed
//! (offline, `config::load`), and every pre-arming check against the simulated nodeos names the variable
//! to fix (`check`): wrong chain, unknown producer, a key not in the permission, an unlinked or over-linked
//! permission, a key also in active, no CPU, the backup key already in place. The binary prints nothing on
//! stdout and exits 78, and no state file appears.

use std::collections::HashMap;

use antelope_protocol::keys::PrivateKey;
use antelope_sim::SimConfig;
use tokio_util::sync::CancellationToken;
use witness_trap::cli::ExitStatus;
use witness_trap::config::{self, vars as v, VarMap};

use crate::antelope::world;
use crate::support::{exec, run};

/// A valid offline configuration (nothing is contacted).
fn valid(dir: &std::path::Path, failover: &PrivateKey) -> VarMap {
    let backup = PrivateKey::generate().public_key();
    let urls = vec!["http://127.0.0.1:9/".to_string(), "http://127.0.0.1:10/".to_string()];
    VarMap::antelope("eos", "alice", &urls, &backup, &failover.to_wif(), &dir.join("s.json"))
        .with(v::MISSED_BLOCKS_ALLOWED, 2)
        .with_twilio("http://127.0.0.1:9", "AC1", "token", "+15005550006", "+14155550123")
}

fn problem(map: &VarMap, var: &str) -> String {
    match config::load(map) {
        Ok(_) => panic!("{var}: loaded, but a problem was expected"),
        Err(r) => {
            let p = r.problems.iter().find(|p| p.var == var).unwrap_or_else(|| panic!("no {var} problem in {r}"));
            format!("{}: {}", p.message, p.fix)
        }
    }
}

#[test]
fn a_valid_antelope_configuration_loads() {
    let dir = tempfile::tempdir().expect("dir");
    let s = config::load(&valid(dir.path(), &PrivateKey::generate())).unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(s.identity().chain, "eos");
    assert_eq!(s.identity().producer, "alice");
}

#[test]
fn every_antelope_variable_is_checked_and_named() {
    let dir = tempfile::tempdir().expect("dir");
    let key = PrivateKey::generate();
    let wif = key.to_wif().to_string();
    let base = || valid(dir.path(), &key);
    let cases: Vec<(VarMap, &str, &str)> = vec![
        (base().with(v::CHAIN, "antelope"), v::CHAIN_ID, "needs it"),
        (
            base().with(v::CHAIN_ID, "1064487b3cd1a897ce03ae5b6a865651747e2e152090f99c1d19d44e01aea5a4"),
            v::CHAIN_ID,
            "not the chain id of eos",
        ),
        (base().with(v::CHAIN, "antelope").with(v::CHAIN_ID, "xyz"), v::CHAIN_ID, "64 hex"),
        (
            {
                let mut m = base();
                m.unset(v::PRODUCER_ACCOUNT);
                m
            },
            v::PRODUCER_ACCOUNT,
            "not set",
        ),
        (
            {
                let mut m = base().with(v::WITNESS_ACCOUNT, "alice");
                m.unset(v::PRODUCER_ACCOUNT);
                m
            },
            v::PRODUCER_ACCOUNT,
            "WITNESS_ACCOUNT",
        ),
        (base().with(v::PRODUCER_ACCOUNT, "Alice"), v::PRODUCER_ACCOUNT, "not a valid Antelope account name"),
        (
            base().with(v::BACKUP_SIGNING_KEY, "STM6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV"),
            v::BACKUP_SIGNING_KEY,
            "wrong prefix",
        ),
        (
            base().with(v::BACKUP_SIGNING_KEY, "EOS7N26JsnGutBGtubxAJZ26x73wFqChHVKGWHsya8ASvhiGqWc5X"),
            v::BACKUP_SIGNING_KEY,
            "bad checksum",
        ),
        (
            base().with(v::BACKUP_SIGNING_KEY, "EOS1111111111111111111111111111111114T1Anm"),
            v::BACKUP_SIGNING_KEY,
            "null key",
        ),
        (base().with(v::BACKUP_SIGNING_KEY, key.public_key().to_k1()), v::BACKUP_SIGNING_KEY, "FAILOVER_WIF"),
        (base().with(v::FAILOVER_PERMISSION, "active"), v::FAILOVER_PERMISSION, "never sit in a watchdog"),
        (base().with(v::FAILOVER_PERMISSION, "owner"), v::FAILOVER_PERMISSION, "never sit in a watchdog"),
        (base().with(v::FAILOVER_PERMISSION, "Fail"), v::FAILOVER_PERMISSION, "not a valid permission name"),
        (
            {
                let mut m = base();
                m.unset(v::FAILOVER_WIF);
                m
            },
            v::FAILOVER_WIF,
            "not set",
        ),
        (base().with(v::FAILOVER_WIF, &wif[..50]), v::FAILOVER_WIF, "not a valid private key"),
        (base().with("FAILOVER_WIF_FILE", "/nonexistent/key"), v::FAILOVER_WIF, "both"),
        (
            {
                let mut m = base().with("FAILOVER_WIF_FILE", "/nonexistent/key");
                m.unset(v::FAILOVER_WIF);
                m
            },
            "FAILOVER_WIF_FILE",
            "cannot read",
        ),
        (base().with(v::BACKUP_FINALIZER_KEY, "PUB_K1_6MRy"), v::BACKUP_FINALIZER_KEY, "PUB_BLS_"),
        (base().with(v::THRESHOLD, 100), v::THRESHOLD, "MISSED_BLOCKS_ALLOWED"),
        (base().with(v::SIGNING_WIF, &wif), v::SIGNING_WIF, "FAILOVER_WIF"),
        (base().with(v::ACTIVE_WIF, &wif), v::ACTIVE_WIF, "never needs the active or owner key"),
        (base().with("ACTIVE_WIF_FILE", "/x"), "ACTIVE_WIF_FILE", "not used on Antelope"),
        (
            {
                let mut m = base();
                m.unset(v::MISSED_BLOCKS_ALLOWED);
                m
            },
            v::MISSED_BLOCKS_ALLOWED,
            "not set",
        ),
        (base().with(v::MISSED_BLOCKS_ALLOWED, 0), v::MISSED_BLOCKS_ALLOWED, "≥ 1"),
        (base().with(v::FIRE_TIMEOUT_SECS, 200), v::FIRE_TIMEOUT_SECS, "schedule latency"),
        (base().with(v::RPC_URLS, "ftp://x"), v::RPC_URLS, "http"),
        (base().with(v::DETECTION, "poll"), v::DETECTION, "slot by slot"),
    ];
    for (map, var, word) in cases {
        let text = problem(&map, var);
        assert!(text.contains(word), "{var}: {word:?} not in {text:?}");
        assert!(!text.contains(&wif[..20]), "{var}: the key leaked: {text}");
    }
}

/// The binary: exit 78, nothing on stdout, the variable named on stderr, no state file.
#[tokio::test]
async fn the_binary_refuses_a_bad_antelope_configuration_before_arming() {
    let dir = tempfile::tempdir().expect("dir");
    let key = PrivateKey::generate();
    let env = valid(dir.path(), &key).with(v::FAILOVER_PERMISSION, "active").into_map();
    for cmd in ["run", "check"] {
        let out = exec(&[cmd], &env).await;
        assert_eq!(out.status.code(), Some(78), "{cmd}");
        assert!(out.stdout.is_empty(), "{cmd}: {:?}", String::from_utf8_lossy(&out.stdout));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("FAILOVER_PERMISSION"), "{cmd}: {err}");
        assert!(!err.contains(&key.to_wif()[..20]), "{cmd}: the key leaked");
    }
    assert!(!dir.path().join("s.json").exists(), "nothing armed");
}

/// Each chain-level problem names its variable, and `run` arms nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pre_arming_check_names_its_variable() {
    type Tweak = Box<dyn FnOnce(&mut SimConfig)>;
    type VarTweak = Box<dyn FnOnce(&mut HashMap<String, String>, &crate::antelope::AKeys)>;
    let none = || -> Tweak { Box::new(|_| {}) };
    let nov = || -> VarTweak { Box::new(|_, _| {}) };
    let cases: Vec<(&str, Tweak, VarTweak, &str, &str)> = vec![
        (
            "wrong chain",
            none(),
            Box::new(|m, _| {
                m.insert(v::CHAIN.into(), "wax".into());
            }),
            v::CHAIN,
            "serves chain id",
        ),
        (
            "unknown producer",
            none(),
            Box::new(|m, _| {
                m.insert(v::PRODUCER_ACCOUNT.into(), "nobody".into());
            }),
            v::PRODUCER_ACCOUNT,
            "not in eosio's producers table",
        ),
        (
            "key not in the permission",
            none(),
            Box::new(|m, _| {
                m.insert(v::FAILOVER_WIF.into(), PrivateKey::generate().to_wif().to_string());
            }),
            v::FAILOVER_WIF,
            "not in alice@failover",
        ),
        ("no such permission", Box::new(|c| c.failover = None), nov(), v::FAILOVER_PERMISSION, "no permission"),
        (
            "not linked",
            Box::new(|c| {
                if let Some(f) = c.failover.as_mut() {
                    f.links.clear();
                }
            }),
            nov(),
            v::FAILOVER_PERMISSION,
            "not linked to eosio::regproducer",
        ),
        (
            "linked to more",
            Box::new(|c| {
                if let Some(f) = c.failover.as_mut() {
                    f.links.push(("eosio.token".into(), "transfer".into()));
                }
            }),
            nov(),
            v::FAILOVER_PERMISSION,
            "eosio.token::transfer",
        ),
        (
            "key also in active",
            Box::new(|c| c.failover_key_in_active = true),
            nov(),
            v::FAILOVER_WIF,
            "also in alice@active",
        ),
        (
            "backup already in place",
            none(),
            Box::new(|m, k| {
                m.insert(v::BACKUP_SIGNING_KEY.into(), k.primary.public_key().to_k1());
            }),
            v::BACKUP_SIGNING_KEY,
            "already the producer's key",
        ),
        (
            "finalizer key not registered",
            Box::new(|c| {
                if let Some(f) = c.failover.as_mut() {
                    f.links.push(("eosio".into(), "actfinkey".into()));
                }
            }),
            Box::new(|m, _| {
                m.insert(v::BACKUP_FINALIZER_KEY.into(), format!("PUB_BLS_{}", "A".repeat(134)));
            }),
            v::BACKUP_FINALIZER_KEY,
            "is not registered",
        ),
    ];
    for (i, (why, tweak, vt, var, word)) in cases.into_iter().enumerate() {
        let mut w = world(2, 20.0, 60 + i as u64, tweak).await;
        let keys = std::mem::replace(&mut w.keys, crate::antelope::AKeys::fresh());
        vt(&mut w.vars, &keys);
        let settings = config::load(&w.vars).unwrap_or_else(|r| panic!("{why}: offline load failed: {r}"));
        let report = witness_trap::service::check(settings, w.clock.clone()).await;
        let Err(failure) = report else { panic!("{why}: the check passed") };
        let text = failure.error.to_string();
        assert!(text.contains(var) && text.contains(word), "{why}: {var} / {word:?} not in {text}");
        assert_eq!(run(&w.vars, w.clock.clone(), CancellationToken::new(), true).await, ExitStatus::Config, "{why}");
        assert!(!w.state_file.exists(), "{why}: nothing armed");
        assert_eq!(w.sim.transactions_received(), 0, "{why}");
    }
    // No CPU left: named on the producer.
    let w = world(2, 20.0, 70, |_| {}).await;
    w.sim.set_cpu_available("alice", 0).expect("alice exists");
    let settings = config::load(&w.vars).expect("loads");
    let Err(failure) = witness_trap::service::check(settings, w.clock.clone()).await else { panic!("cpu: passed") };
    let text = failure.error.to_string();
    assert!(text.contains(v::PRODUCER_ACCOUNT) && text.contains("CPU"), "{text}");
}
