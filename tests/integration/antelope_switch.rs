//! `witness-trap switch` on an Antelope chain (the simulated nodeos): `regproducer` to the new key right after
//! the producer's 12-block turn, confirmed in the row and then in the active schedule, and the first turn
//! under it produced by the new key's node, over several schedules; `--dry-run` never pushes; refusals name
//! why; a running trap steps aside and comes back guarding the new key, then fires back to the old one.

use std::time::Duration;

use antelope_sim::SimEvent;
use tokio_util::sync::CancellationToken;
use witness_trap::service::switch::{SwitchRequest, Target, When};
use witness_trap::service::{NextTurn, ServiceError, SwitchOutcome};
use witness_trap::trap::state::Phase;

use crate::antelope::{world, World};

const PRODUCER: &str = "alice";

async fn switch(w: &World, request: SwitchRequest) -> (Result<SwitchOutcome, ServiceError>, Vec<String>) {
    let settings = witness_trap::config::load(&w.vars).expect("valid settings");
    let mut lines = Vec::new();
    let mut progress = |l: String| lines.push(l);
    let result = tokio::time::timeout(
        Duration::from_secs(150),
        witness_trap::service::switch(settings, request, w.clock.clone(), CancellationToken::new(), &mut progress),
    )
    .await
    .expect("the switch ended in time");
    (result, lines)
}

fn missed_since(w: &World, seq: u64) -> Vec<u64> {
    w.sim
        .events()
        .into_iter()
        .filter(|r| r.seq > seq)
        .filter_map(|r| match r.event {
            SimEvent::SlotMissed { producer, slot, .. } if producer == PRODUCER => Some(slot),
            _ => None,
        })
        .collect()
}

fn active_carries(w: &World, key: &antelope_protocol::keys::PublicKey) -> bool {
    let (active, _) = w.sim.schedule();
    active.producers.iter().any(|e| e.producer.to_string() == PRODUCER && e.authority.satisfied_by(key))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_safe_switch_moves_the_key_through_the_schedule_without_a_missed_slot() {
    for seed in [5, 23] {
        let w = world(2, 30.0, seed, |_| {}).await;
        w.clock.sleep(Duration::from_secs(3)).await;
        let seq = w.sim.last_seq();
        let (result, lines) = switch(&w, SwitchRequest::new(Target::Backup, When::Safe)).await;
        let outcome = result.unwrap_or_else(|e| panic!("seed {seed}: {e}; {lines:?}"));
        let SwitchOutcome::Switched { next, key, trap, .. } = outcome else { panic!("seed {seed}: {outcome:?}") };
        assert!(matches!(next, NextTurn::Produced { .. }), "seed {seed}: {next:?}; {lines:?}");
        assert_eq!(key, w.keys.backup.public_key().to_legacy());
        assert_eq!(trap, "no trap state: nothing to re-arm");
        assert!(lines.iter().any(|l| l.contains("active schedule")), "seed {seed}: {lines:?}");
        assert_eq!(w.registrations().len(), 1, "seed {seed}: one regproducer");
        assert!(active_carries(&w, &w.keys.backup.public_key()), "seed {seed}: the active schedule has the key");
        assert_eq!(missed_since(&w, seq), Vec::<u64>::new(), "seed {seed}: no slot of @alice was missed");
        // The backup node signed the producer's slots after the switch.
        assert!(
            w.sim.events().iter().any(|r| r.seq > seq && matches!(r.event, SimEvent::BackupProducing { .. })),
            "seed {seed}"
        );
    }
}

#[tokio::test]
async fn an_antelope_dry_run_signs_regproducer_and_pushes_nothing_and_refusals_name_why() {
    let w = world(2, 20.0, 7, |_| {}).await;
    w.clock.sleep(Duration::from_secs(3)).await;
    let (result, _) =
        switch(&w, SwitchRequest { dry_run: true, ..SwitchRequest::new(Target::Backup, When::Safe) }).await;
    let Ok(SwitchOutcome::DryRun(json)) = result else { panic!("{result:?}") };
    assert_eq!(json["broadcast"], false);
    assert!(json["action"].as_str().is_some_and(|a| a.contains("regproducer")), "{json}");
    assert_eq!(json["transaction"]["signatures"].as_array().map(Vec::len), Some(1), "{json}");

    let (result, _) = switch(&w, SwitchRequest::new(Target::Primary, When::Now)).await;
    let Err(ServiceError::Config(report)) = result else { panic!("primary has no meaning here: {result:?}") };
    assert!(report.problems.iter().any(|p| p.var == "--to" && p.fix.contains("PUB_K1_")), "{report}");
    let on_chain = Target::Key(w.keys.primary.public_key().to_string());
    let (result, _) = switch(&w, SwitchRequest::new(on_chain, When::Now)).await;
    let Err(ServiceError::Config(report)) = result else { panic!("the key on chain must be refused: {result:?}") };
    assert!(report.problems.iter().any(|p| p.var == "--to"), "{report}");
    let (result, _) = switch(&w, SwitchRequest::new(Target::Key("EOSnope".into()), When::Now)).await;
    assert!(matches!(result, Err(ServiceError::Config(_))), "{result:?}");
    w.clock.sleep(Duration::from_secs(3)).await;
    assert_eq!(w.sim.transactions_received(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_antelope_trap_steps_aside_then_guards_the_new_key_and_fires_back() {
    let w = world(2, 30.0, 31, |_| {}).await;
    let (trap, stop) = w.spawn();
    w.armed().await;
    w.clock.sleep(Duration::from_secs(6)).await;
    let (result, lines) =
        switch(&w, SwitchRequest { swap_roles: true, ..SwitchRequest::new(Target::Backup, When::Safe) }).await;
    let outcome = result.unwrap_or_else(|e| panic!("{e}; {lines:?}"));
    let SwitchOutcome::Switched { trap: settled, .. } = outcome else { panic!("{outcome:?}") };
    assert!(settled.contains("armed again"), "{settled}; {lines:?}");
    let primary = w.keys.primary.public_key().to_legacy();
    let mut state = w.state();
    for _ in 0..400 {
        if state.roles.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        state = w.state();
    }
    let roles = state.roles.clone().expect("the trap guards swapped roles");
    assert_eq!(roles.backup, primary);
    assert_eq!(w.registrations().len(), 1, "the trap did not fire because of the switch");

    // The new key's node fails: the trap fires back to the old key.
    w.sim.fail_backup();
    let mut fired = false;
    for _ in 0..4800 {
        if matches!(w.state().phase, Phase::Fired { .. }) {
            fired = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(fired, "the trap fired back");
    assert!(matches!(&w.state().phase, Phase::Fired { target, .. } if *target == primary));
    assert_eq!(w.registrations().len(), 2, "the switch, then one fire back");
    assert_eq!(w.sim.producer_row(PRODUCER).and_then(|r| r.producer_key), Some(w.keys.primary.public_key()));
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), trap).await;
}
