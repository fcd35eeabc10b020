//! `witness-trap switch` on the simulated chain, whose nodes see a key change one block late (as on a real
//! network): a safe switch lands between two turns of the witness and no block is missed, over several
//! schedules; `--dry-run` never broadcasts; refusals name why; a running trap steps aside for the switch
//! and comes back re-armed with swapped roles (then fires back to the old key when the new node fails) or
//! disarmed; a second switch is refused at once, and a lock holder that does not step aside refuses it.

use std::collections::HashMap;
use std::time::Duration;

use chain_clock::SharedClock;
use graphene_protocol::chain::ChainSpec;
use graphene_protocol::keys::PrivateKey;
use graphene_sim::{Fault, SimEvent, SimNode};
use tokio_util::sync::CancellationToken;
use witness_trap::config::{vars as v, VarMap};
use witness_trap::service::switch::{SwitchRequest, Target, When};
use witness_trap::service::{NextTurn, ServiceError, SwitchOutcome};
use witness_trap::trap::state::{AnyState, Phase};

use crate::support::*;

struct World {
    sim: SimNode,
    clock: SharedClock,
    keys: Keys,
    vars: HashMap<String, String>,
    _dir: tempfile::TempDir,
}

async fn world(seed: u64) -> World {
    // The witness's nodes see a key change one block late, as on a real network.
    let (sim, clock, keys) = fast_sim_lagging(seed, 1).await;
    let (dir, state_file) = temp_state();
    let vars = VarMap::graphene(
        "alice",
        &ChainSpec::hive(),
        &sim.urls(),
        &keys.backup.public_key(),
        &keys.primary.to_wif(),
        &state_file,
    )
    .with(v::MISSED_BLOCKS_ALLOWED, 1)
    .with(v::RPC_TIMEOUT_SECS, 2)
    .with_twilio("http://127.0.0.1:9", "AC0123456789abcdef", TWILIO_TOKEN, "+15005550006", "+14155550123")
    .into_map();
    World { sim, clock, keys, vars, _dir: dir }
}

async fn switch(w: &World, to: Target, when: When, dry_run: bool) -> Result<SwitchOutcome, ServiceError> {
    switch_with(&w.vars, &w.clock, to, when, dry_run).await
}

async fn switch_with(
    vars: &HashMap<String, String>,
    clock: &SharedClock,
    to: Target,
    when: When,
    dry_run: bool,
) -> Result<SwitchOutcome, ServiceError> {
    let settings = witness_trap::config::load(vars).expect("valid settings");
    let mut lines = Vec::new();
    let mut progress = |l: String| lines.push(l);
    let request = SwitchRequest { dry_run, ..SwitchRequest::new(to, when) };
    witness_trap::service::switch(settings, request, clock.clone(), CancellationToken::new(), &mut progress).await
}

fn key_changes(sim: &SimNode) -> usize {
    sim.events()
        .iter()
        .filter(|r| matches!(&r.event, SimEvent::SigningKeyChanged { witness, .. } if witness == "alice"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_safe_switch_lands_between_two_turns_and_no_block_is_missed() {
    for seed in [3, 17, 29, 41] {
        let w = world(seed).await;
        w.clock.sleep(Duration::from_secs(9)).await;
        let missed_before = w.sim.witness().total_missed;
        let outcome = tokio::time::timeout(Duration::from_secs(60), switch(&w, Target::Backup, When::Safe, false))
            .await
            .expect("in time")
            .expect("switched");
        let SwitchOutcome::Switched { next, key, .. } = outcome else { panic!("seed {seed}: {outcome:?}") };
        assert!(matches!(next, NextTurn::Produced { .. }), "seed {seed}: {next:?}");
        assert_eq!(key, w.keys.backup.public_key().to_text("STM"));
        assert_eq!(w.sim.witness().signing_key, w.keys.backup.public_key(), "seed {seed}");
        assert_eq!(w.sim.witness().total_missed, missed_before, "seed {seed}: no block missed");
        assert_eq!(key_changes(&w.sim), 1, "seed {seed}");
        let txids: std::collections::BTreeSet<[u8; 20]> = w
            .sim
            .events()
            .into_iter()
            .filter_map(|r| match r.event {
                SimEvent::TxAccepted { txid, .. } => Some(txid),
                _ => None,
            })
            .collect();
        assert_eq!(txids.len(), 1, "seed {seed}: one transaction (sent to each endpoint)");
    }
}

#[tokio::test]
async fn a_dry_run_prints_the_signed_transaction_and_never_broadcasts() {
    let w = world(5).await;
    // A few blocks, for TaPoS.
    w.clock.sleep(Duration::from_secs(9)).await;
    let outcome = switch(&w, Target::Backup, When::Safe, true).await.expect("built");
    let SwitchOutcome::DryRun(json) = outcome else { panic!("{outcome:?}") };
    assert_eq!(json["broadcast"], false);
    assert_eq!(json["transaction"]["signatures"].as_array().map(Vec::len), Some(1));
    assert_eq!(json["action"], "witness_set_properties");
    w.clock.sleep(Duration::from_secs(9)).await;
    assert_eq!(w.sim.broadcasts_received(), 0);
}

#[tokio::test]
async fn refusals_name_why_and_change_nothing() {
    let w = world(7).await;
    // The key already on chain.
    let Err(ServiceError::Config(report)) = switch(&w, Target::Primary, When::Now, false).await else {
        panic!("the same key must be refused")
    };
    assert!(report.problems.iter().any(|p| p.var == "--to"), "{report}");
    // Not a key.
    let Err(ServiceError::Config(report)) = switch(&w, Target::Key("STMnope".into()), When::Now, false).await else {
        panic!("a bad key must be refused")
    };
    assert!(report.problems.iter().any(|p| p.var == "--to"), "{report}");
    // A key the trap cannot sign with.
    let mut stranger = w.vars.clone();
    stranger.insert(v::SIGNING_WIF.into(), PrivateKey::generate().to_wif().to_string());
    let Err(ServiceError::Config(report)) = switch_with(&stranger, &w.clock, Target::Backup, When::Now, false).await
    else {
        panic!("an unsignable switch must be refused")
    };
    assert!(report.problems.iter().any(|p| p.var == v::SIGNING_WIF), "{report}");
    // An unhealthy chain.
    for i in 0..2 {
        w.sim.set_fault(i, Fault::Http503).expect("endpoint");
    }
    let Err(ServiceError::ChainUnavailable(_)) = switch(&w, Target::Backup, When::Now, false).await else {
        panic!("an unhealthy chain must be refused")
    };
    assert_eq!(w.sim.broadcasts_received(), 0);
}

#[tokio::test]
async fn a_waiting_switch_refuses_a_second_one_and_a_holder_that_never_steps_aside_refuses_it() {
    let w = world(9).await;
    let state_file = std::path::PathBuf::from(&w.vars[v::STATE_FILE]);
    // A process that holds the lock and never looks for requests (not a trap of this version).
    let held = witness_trap::store::FileStore::open_exclusive(&state_file).expect("the lock");
    let settings = witness_trap::config::load(&w.vars).expect("valid settings");
    let request =
        // Long enough that the second switch below runs while the first still waits, even on a loaded machine.
        SwitchRequest { wait_for_trap: Duration::from_secs(10), ..SwitchRequest::new(Target::Backup, When::Now) };
    let first = tokio::spawn({
        let clock = w.clock.clone();
        async move {
            let mut progress = |_l: String| {};
            witness_trap::service::switch(settings, request, clock, CancellationToken::new(), &mut progress).await
        }
    });
    // Once the first switch's request is there, a second one is refused at once.
    let request_file = witness_trap::store::handoff::request_path(&state_file);
    for _ in 0..800 {
        if request_file.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(request_file.exists(), "the first switch made its request");
    let Err(ServiceError::Busy(why)) = switch(&w, Target::Backup, When::Now, false).await else {
        panic!("a second switch must be refused at once")
    };
    assert!(why.contains("already waiting"), "{why}");
    let Err(ServiceError::Busy(why)) = first.await.expect("the first switch") else {
        panic!("a lock that is never released must refuse the switch")
    };
    assert!(why.contains("did not step aside"), "{why}");
    assert!(!request_file.exists(), "the refused switch took its request away");
    drop(held);
    assert_eq!(w.sim.broadcasts_received(), 0);
}

/// Run the trap of `vars` in this process until `stop`.
fn spawn_trap(
    vars: &HashMap<String, String>,
    clock: &SharedClock,
) -> (tokio::task::JoinHandle<witness_trap::cli::ExitStatus>, CancellationToken) {
    let stop = CancellationToken::new();
    let (vars, clock, s) = (vars.clone(), clock.clone(), stop.clone());
    (tokio::spawn(async move { run(&vars, clock, s, false).await }), stop)
}

async fn wait_for_state(state_file: &std::path::Path, what: impl Fn(&AnyState) -> bool) -> AnyState {
    for _ in 0..2400 {
        if let Ok(Some(s)) = witness_trap::trap::state::read_file(state_file) {
            if what(&s) {
                return s;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the state never became what was expected")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_trap_steps_aside_and_comes_back_with_swapped_roles_then_fires_back_to_the_old_key() {
    let w = world(13).await;
    let mut vars = w.vars.clone();
    vars.insert(v::BACKUP_SIGNING_WIF.into(), w.keys.backup.to_wif().to_string());
    let state_file = std::path::PathBuf::from(&vars[v::STATE_FILE]);
    let (trap, stop) = spawn_trap(&vars, &w.clock);
    wait_for_state(&state_file, |s| s.phase.name() == "armed").await;
    w.clock.sleep(Duration::from_secs(9)).await;
    let missed_before = w.sim.witness().total_missed;

    let settings = witness_trap::config::load(&vars).expect("valid settings");
    let request = SwitchRequest { swap_roles: true, ..SwitchRequest::new(Target::Backup, When::Safe) };
    let mut lines = Vec::new();
    let mut progress = |l: String| lines.push(l);
    let outcome = tokio::time::timeout(
        Duration::from_secs(90),
        witness_trap::service::switch(settings, request, w.clock.clone(), CancellationToken::new(), &mut progress),
    )
    .await
    .expect("in time")
    .expect("switched");
    let SwitchOutcome::Switched { next, trap: settled, .. } = outcome else { panic!("{outcome:?}") };
    assert!(lines.iter().any(|l| l.contains("step aside")), "{lines:?}");
    assert!(matches!(next, NextTurn::Produced { .. }), "{next:?}");
    assert!(settled.contains("armed again"), "{settled}");
    assert_eq!(w.sim.witness().signing_key, w.keys.backup.public_key());
    assert_eq!(w.sim.witness().total_missed, missed_before, "the switch cost no block");

    // The trap took the state back, armed for the swapped roles.
    let primary = w.keys.primary.public_key().to_text("STM");
    let backup = w.keys.backup.public_key().to_text("STM");
    let state = wait_for_state(&state_file, |s| s.roles.is_some()).await;
    let roles = state.roles.clone().expect("roles");
    assert_eq!((roles.current.as_str(), roles.backup.as_str()), (backup.as_str(), primary.as_str()));
    assert_eq!(state.phase.name(), "armed");
    assert_eq!(key_changes(&w.sim), 1, "the trap never fired because of the switch");
    let settings = witness_trap::config::load(&vars).expect("valid settings");
    let status = witness_trap::service::status(settings, w.clock.clone()).await.expect("status");
    assert!(status.lines.iter().any(|l| l.starts_with("current key: ") && l.contains(&backup)), "{:?}", status.lines);
    assert!(status.lines.iter().any(|l| l.starts_with("backup key: ") && l.contains(&primary)), "{:?}", status.lines);

    // The new current node fails: the trap fires back to the old key, signed by BACKUP_SIGNING_WIF.
    w.clock.sleep(Duration::from_secs(6)).await;
    w.sim.fail_backup();
    let fired = wait_for_state(&state_file, |s| s.phase.name() == "fired").await;
    assert!(matches!(&fired.phase, Phase::Fired { target, .. } if *target == primary), "{:?}", fired.phase);
    assert_eq!(w.sim.witness().signing_key, w.keys.primary.public_key());
    assert_eq!(key_changes(&w.sim), 2, "the switch, then one fire back");
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), trap).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_swap_roles_the_trap_is_left_disarmed_and_says_so() {
    let w = world(19).await;
    let state_file = std::path::PathBuf::from(&w.vars[v::STATE_FILE]);
    let (trap, stop) = spawn_trap(&w.vars, &w.clock);
    wait_for_state(&state_file, |s| s.phase.name() == "armed").await;
    w.clock.sleep(Duration::from_secs(6)).await;
    let outcome = tokio::time::timeout(Duration::from_secs(90), switch(&w, Target::Backup, When::Now, false))
        .await
        .expect("in time")
        .expect("switched");
    let SwitchOutcome::Switched { trap: settled, txid, .. } = outcome else { panic!("{outcome:?}") };
    assert!(settled.contains("disarmed"), "{settled}");
    let state = wait_for_state(&state_file, |s| s.phase.name() == "switched").await;
    assert!(matches!(&state.phase, Phase::Switched { txid: t, .. } if *t == txid), "{:?}", state.phase);
    // The trap came back, found it disarmed, and neither polls nor signs: a failing backup changes nothing.
    w.sim.fail_backup();
    w.clock.sleep(Duration::from_secs(30)).await;
    assert_eq!(key_changes(&w.sim), 1);
    let (path, poll) = witness_trap::config::load_health(&w.vars).expect("health settings");
    let health = witness_trap::service::health(&path, now(&w.clock), poll);
    assert!(!health.healthy && health.line.contains("planned switch"), "{}", health.line);
    stop.cancel();
    let status = tokio::time::timeout(Duration::from_secs(30), trap).await.expect("stops").expect("task");
    assert_eq!(status, witness_trap::cli::ExitStatus::Ok);
}

#[tokio::test]
async fn swap_roles_without_a_key_to_swap_back_is_refused_naming_both() {
    let w = world(23).await;
    let settings = witness_trap::config::load(&w.vars).expect("valid settings");
    let request = SwitchRequest { swap_roles: true, ..SwitchRequest::new(Target::Backup, When::Now) };
    let mut progress = |_l: String| {};
    let Err(ServiceError::Config(report)) =
        witness_trap::service::switch(settings, request, w.clock.clone(), CancellationToken::new(), &mut progress)
            .await
    else {
        panic!("--swap-roles without BACKUP_SIGNING_WIF or ACTIVE_WIF must be refused")
    };
    let text = report.to_string();
    assert!(
        text.contains("--swap-roles") && text.contains("BACKUP_SIGNING_WIF") && text.contains("ACTIVE_WIF"),
        "{text}"
    );
    assert_eq!(w.sim.broadcasts_received(), 0);
}

#[tokio::test]
async fn ctrl_c_while_waiting_for_the_safe_moment_changes_nothing() {
    let w = world(11).await;
    w.clock.sleep(Duration::from_secs(9)).await;
    let settings = witness_trap::config::load(&w.vars).expect("valid settings");
    let shutdown = CancellationToken::new();
    // Stopped at once: whatever the schedule, the switch is still waiting (or about to broadcast, which it
    // checks first) and must not send anything.
    shutdown.cancel();
    let mut progress = |_l: String| {};
    let request = SwitchRequest::new(Target::Backup, When::Safe);
    let outcome = witness_trap::service::switch(settings, request, w.clock.clone(), shutdown, &mut progress)
        .await
        .expect("no error");
    assert!(matches!(outcome, SwitchOutcome::Cancelled), "{outcome:?}");
    w.clock.sleep(Duration::from_secs(6)).await;
    assert_eq!(w.sim.broadcasts_received(), 0);
    assert_eq!(w.sim.witness().signing_key, w.keys.primary.public_key());
}
