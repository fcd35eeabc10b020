//! Ordered backups (`BACKUP_SIGNING_KEYS`, `DISABLE_AFTER_LAST_BACKUP`) end to end on the simulated Hive chain
//! with standby nodes: a fire moves to the first backup, the trap guards it and moves on to the next when it
//! misses too, never back to a key it gave up (no ping-pong), across a restart; after the last backup it
//! stops, or moves to the null key; and every setting that cannot work is refused, named, before arming.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chain_clock::{ScaledClock, SharedClock};
use graphene_protocol::chain::ChainSpec;
use graphene_protocol::keys::{PrivateKey, PublicKey};
use graphene_sim::{SimConfig, SimEvent, SimNode, SmsSink};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use witness_trap::config::{vars as v, VarMap};
use witness_trap::trap::state::{AnyState, Phase};

use crate::support::*;

const SID: &str = "ACbackups000000000000000000000000";
const TOKEN: &str = "backups-token-0123456789";

struct World {
    sim: SimNode,
    sms: SmsSink,
    clock: SharedClock,
    primary: PrivateKey,
    /// The backups in order: the sim's backup node, then its standby nodes.
    backups: Vec<PrivateKey>,
    state_file: PathBuf,
    vars: HashMap<String, String>,
    _dir: tempfile::TempDir,
}

async fn world(seed: u64, backups: usize) -> World {
    let primary = PrivateKey::generate();
    let backups: Vec<PrivateKey> = (0..backups).map(|_| PrivateKey::generate()).collect();
    let active = PrivateKey::generate();
    let clock: SharedClock = Arc::new(ScaledClock::starting_now(20.0));
    let mut cfg =
        SimConfig::new(ChainSpec::hive(), "alice", primary.public_key(), backups[0].public_key(), active.public_key());
    cfg.standby_keys = backups[1..].iter().map(PrivateKey::public_key).collect();
    cfg.clock = Some(clock.clone());
    cfg.endpoints = 2;
    cfg.seed = seed;
    let sim = SimNode::start(cfg).await.expect("sim starts");
    let sms = SmsSink::start(SID, SecretString::from(TOKEN.to_string())).await.expect("sms sink");
    let (dir, state_file) = temp_state();
    let list: Vec<String> = backups.iter().map(|k| k.public_key().to_text("STM")).collect();
    let mut vars = VarMap::graphene(
        "alice",
        &ChainSpec::hive(),
        &sim.urls(),
        &backups[0].public_key(),
        &primary.to_wif(),
        &state_file,
    )
    .with(v::MISSED_BLOCKS_ALLOWED, 1)
    .with(v::RPC_TIMEOUT_SECS, 2)
    .with(v::BACKUP_SIGNING_WIF, backups[0].to_wif().as_str())
    .with_twilio(sms.url(), SID, TOKEN, "+15005550006", "+14155550123")
    .into_map();
    vars.remove(v::BACKUP_SIGNING_KEY);
    vars.insert(v::BACKUP_SIGNING_KEYS.into(), list.join(","));
    World { sim, sms, clock, primary, backups, state_file, vars, _dir: dir }
}

fn key_changes(sim: &SimNode) -> Vec<PublicKey> {
    sim.events()
        .into_iter()
        .filter_map(|r| match r.event {
            SimEvent::SigningKeyChanged { witness, new, .. } if witness == "alice" => Some(new),
            _ => None,
        })
        .collect()
}

fn spawn(w: &World) -> (tokio::task::JoinHandle<witness_trap::cli::ExitStatus>, CancellationToken) {
    let stop = CancellationToken::new();
    let (vars, clock, s) = (w.vars.clone(), w.clock.clone(), stop.clone());
    (tokio::spawn(async move { run(&vars, clock, s, true).await }), stop)
}

async fn wait_state(path: &Path, what: impl Fn(&AnyState) -> bool) -> AnyState {
    for _ in 0..4800 {
        if let Ok(Some(s)) = witness_trap::trap::state::read_file(path) {
            if what(&s) {
                return s;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the state never became what was expected: {:?}", witness_trap::trap::state::read_file(path))
}

fn text(k: &PrivateKey) -> String {
    k.public_key().to_text("STM")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fire_moves_down_the_list_never_back_and_survives_a_restart() {
    let w = world(41, 2).await;
    let (trap, stop) = spawn(&w);
    wait_state(&w.state_file, |s| s.phase.name() == "armed").await;
    w.clock.sleep(Duration::from_secs(6)).await;

    // The primary dies: the first backup takes over, and the trap guards it with the second as its target.
    w.sim.fail_primary();
    let guarding = wait_state(&w.state_file, |s| s.roles.is_some() && s.phase.name() == "armed").await;
    let roles = guarding.roles.clone().expect("roles");
    assert_eq!((roles.current, roles.backup), (text(&w.backups[0]), text(&w.backups[1])));
    assert_eq!(guarding.abandoned, vec![text(&w.primary)]);
    assert_eq!(key_changes(&w.sim), vec![w.backups[0].public_key()]);

    // A restart in the middle of the incident keeps guarding the first backup.
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), trap).await.expect("stops");
    let (trap, stop) = spawn(&w);
    w.clock.sleep(Duration::from_secs(9)).await;
    assert_eq!(w.state().roles.map(|r| r.backup), Some(text(&w.backups[1])), "still guarding after the restart");

    // The first backup dies too: on to the second, signed by BACKUP_SIGNING_WIF (the first backup's key).
    w.sim.fail_backup();
    let fired = wait_state(&w.state_file, |s| matches!(&s.phase, Phase::Fired { .. })).await;
    let Phase::Fired { target, next, from, .. } = &fired.phase else { unreachable!() };
    assert_eq!(target, &text(&w.backups[1]));
    assert_eq!(from.as_deref(), Some(text(&w.backups[0]).as_str()));
    assert_eq!(next, &None, "the last backup: nothing to move on to, never back to the primary or the first");
    assert_eq!(key_changes(&w.sim), vec![w.backups[0].public_key(), w.backups[1].public_key()]);
    let status = tokio::time::timeout(Duration::from_secs(60), trap).await.expect("ends").expect("task");
    assert_eq!(status, witness_trap::cli::ExitStatus::Ok, "a swapped, alerted fire");
    // The last backup dying changes nothing: the trap has stopped.
    w.sim.set_standby_up(0, false);
    w.clock.sleep(Duration::from_secs(30)).await;
    assert_eq!(key_changes(&w.sim).len(), 2, "no ping-pong");
    let swapped: Vec<String> =
        w.sms.messages().into_iter().map(|m| m.body).filter(|b| b.starts_with("FIRED")).collect();
    assert_eq!(swapped.len(), 2, "one fire alert per swap: {swapped:?}");
    assert!(swapped[0].contains(&text(&w.backups[0])) && swapped[1].contains(&text(&w.backups[1])), "{swapped:?}");
    drop(stop);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_last_backup_disable_moves_to_the_null_key() {
    let mut w = world(43, 1).await;
    w.vars.insert(v::DISABLE_AFTER_LAST_BACKUP.into(), "true".into());
    let (trap, _stop) = spawn(&w);
    wait_state(&w.state_file, |s| s.phase.name() == "armed").await;
    w.clock.sleep(Duration::from_secs(6)).await;
    w.sim.fail_primary();
    let guarding = wait_state(&w.state_file, |s| s.roles.is_some()).await;
    assert_eq!(guarding.roles.map(|r| r.backup), Some(PublicKey::NULL.to_text("STM")));
    w.sim.fail_backup();
    let fired = wait_state(&w.state_file, |s| matches!(&s.phase, Phase::Fired { .. })).await;
    assert!(matches!(&fired.phase, Phase::Fired { target, .. } if *target == PublicKey::NULL.to_text("STM")));
    assert_eq!(key_changes(&w.sim), vec![w.backups[0].public_key(), PublicKey::NULL]);
    assert!(w.sim.witness().signing_key.is_null(), "no dead key left scheduled");
    let _ = tokio::time::timeout(Duration::from_secs(60), trap).await.expect("ends");
}

#[tokio::test]
async fn settings_that_cannot_work_are_refused_by_name() {
    let w = world(47, 2).await;
    let refused = |vars: &HashMap<String, String>, var: &str, says: &str| {
        let Err(report) = witness_trap::config::load(vars) else { panic!("{var} must be refused") };
        assert!(report.problems.iter().any(|p| p.var == var && p.message.contains(says)), "{var} / {says}: {report}");
    };
    let mut both = w.vars.clone();
    both.insert(v::BACKUP_SIGNING_KEY.into(), text(&w.backups[0]));
    refused(&both, v::BACKUP_SIGNING_KEYS, "together with BACKUP_SIGNING_KEY");
    let mut twice = w.vars.clone();
    twice.insert(v::BACKUP_SIGNING_KEYS.into(), format!("{0},{0}", text(&w.backups[0])));
    refused(&twice, v::BACKUP_SIGNING_KEYS, "twice");
    let mut threshold = w.vars.clone();
    threshold.remove(v::MISSED_BLOCKS_ALLOWED);
    threshold.insert(v::THRESHOLD.into(), "100".into());
    refused(&threshold, v::THRESHOLD, "next backup");
    // No key can sign the move on from the first backup.
    let mut unsigned = w.vars.clone();
    unsigned.remove(v::BACKUP_SIGNING_WIF);
    refused(&unsigned, v::BACKUP_SIGNING_KEYS, "no key to sign");
    // ACTIVE_WIF can sign from any backup.
    unsigned.insert(v::ACTIVE_WIF.into(), PrivateKey::generate().to_wif().to_string());
    assert!(witness_trap::config::load(&unsigned).is_ok());
    let mut disable = w.vars.clone();
    disable.insert(v::DISABLE_AFTER_LAST_BACKUP.into(), "maybe".into());
    refused(&disable, v::DISABLE_AFTER_LAST_BACKUP, "not true or false");
    // The last backup needs a signer too before the null key.
    disable.insert(v::DISABLE_AFTER_LAST_BACKUP.into(), "true".into());
    refused(&disable, v::BACKUP_SIGNING_KEYS, "no key to sign");
    let mut null = w.vars.clone();
    null.insert(v::BACKUP_SIGNING_KEYS.into(), format!("{},{}", text(&w.backups[0]), PublicKey::NULL.to_text("STM")));
    refused(&null, v::BACKUP_SIGNING_KEYS, "null key");
}

impl World {
    fn state(&self) -> AnyState {
        load_state(&self.state_file)
    }
}
