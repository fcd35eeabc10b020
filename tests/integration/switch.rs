//! `witness-trap switch` on the simulated chain, whose nodes see a key change one block late (as on a real
//! network): a safe switch lands between two turns of the witness and no block is missed, over several
//! schedules; `--dry-run` never broadcasts; refusals name why; a running trap's lock refuses the switch.

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
    let request = SwitchRequest { to, when, dry_run };
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
async fn a_running_trap_or_a_waiting_switch_holds_the_lock() {
    let w = world(9).await;
    let state_file = std::path::PathBuf::from(&w.vars[v::STATE_FILE]);
    let _held = witness_trap::store::FileStore::open_exclusive(&state_file).expect("the lock");
    let Err(ServiceError::Locked { hint, .. }) = switch(&w, Target::Backup, When::Safe, false).await else {
        panic!("a held lock must refuse the switch at once")
    };
    assert!(hint.contains("stop the trap first"), "{hint}");
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
    let request = SwitchRequest { to: Target::Backup, when: When::Safe, dry_run: false };
    let outcome = witness_trap::service::switch(settings, request, w.clock.clone(), shutdown, &mut progress)
        .await
        .expect("no error");
    assert!(matches!(outcome, SwitchOutcome::Cancelled), "{outcome:?}");
    w.clock.sleep(Duration::from_secs(6)).await;
    assert_eq!(w.sim.broadcasts_received(), 0);
    assert_eq!(w.sim.witness().signing_key, w.keys.primary.public_key());
}
