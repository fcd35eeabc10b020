//! End to end against the simulated chain (`witness_trap::sim`), not mocks: a real schedule of 21
//! witnesses, real misses, broadcasts checked as a node checks them, the backup taking over.
//!
//! The chain runs 10-20× faster than real time; tests wait on chain events with generous timeouts and
//! assert on chain facts (blocks, keys, counters), never on elapsed wall time.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chain_clock::{ScaledClock, SharedClock};
use graphene_protocol::chain::ChainSpec;
use graphene_sim::{Fault, Lie, Signer, SimConfig, SimEvent, SimNode, SmsSink};
use secrecy::SecretString;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use witness_trap::cli::ExitStatus;
use witness_trap::config::{vars as v, VarMap};
use witness_trap::trap::state::{Outcome, Phase};

use crate::support::{last_poll, load_state, run, wait_for, AnyState};

use crate::support::Keys;

const WAIT: Duration = Duration::from_secs(90);
const SID: &str = "ACe2e0000000000000000000000000000";
const TOKEN: &str = "e2e-token-0123456789";
const WITNESS: &str = "alice";

struct World {
    sim: SimNode,
    sms: SmsSink,
    keys: Keys,
    clock: SharedClock,
    state_file: PathBuf,
    _dir: tempfile::TempDir,
    vars: HashMap<String, String>,
}

async fn world(chain: ChainSpec, endpoints: usize, speedup: f64, seed: u64) -> World {
    let keys = Keys::new();
    let clock: SharedClock = Arc::new(ScaledClock::starting_now(speedup));
    let mut cfg = SimConfig::new(
        chain.clone(),
        WITNESS,
        keys.primary.public_key(),
        keys.backup.public_key(),
        keys.active.public_key(),
    );
    cfg.clock = Some(clock.clone());
    cfg.endpoints = endpoints;
    cfg.initial_total_missed = 7;
    cfg.seed = seed;
    let sim = SimNode::start(cfg).await.expect("sim starts");
    let sms = SmsSink::start(SID, SecretString::from(TOKEN.to_string())).await.expect("sms sink starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let state_file = dir.path().join("state.json");
    let vars =
        VarMap::graphene(WITNESS, &chain, &sim.urls(), &keys.backup.public_key(), &keys.primary.to_wif(), &state_file)
            .with(v::MISSED_BLOCKS_ALLOWED, 1)
            .with(v::POLL_INTERVAL_SECS, 30)
            .with(v::RPC_TIMEOUT_SECS, 2)
            .with_twilio(sms.url(), SID, TOKEN, "+15005550006", "+14155550123")
            .into_map();
    World { sim, sms, keys, clock, state_file, _dir: dir, vars }
}

impl World {
    fn spawn(&self) -> (JoinHandle<ExitStatus>, CancellationToken) {
        let shutdown = CancellationToken::new();
        let (vars, clock, s) = (self.vars.clone(), self.clock.clone(), shutdown.clone());
        (tokio::spawn(async move { run(&vars, clock, s, true).await }), shutdown)
    }

    async fn armed(&self) {
        for _ in 0..1200 {
            if self.state_file.exists() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the trap never armed");
    }

    fn state(&self) -> AnyState {
        load_state(&self.state_file)
    }

    /// Wait until the witness's own slot was produced by `who` (after event `after`).
    async fn own_block(&self, after: u64, who: Signer) -> u64 {
        self.sim
            .wait_for_event(after, WAIT, |e| matches!(e, SimEvent::BlockProduced { witness, producer, .. } if witness == WITNESS && *producer == who))
            .await
            .expect("the witness's slot came")
            .seq
    }

    fn key_changes(&self) -> Vec<graphene_protocol::keys::PublicKey> {
        self.sim
            .events()
            .into_iter()
            .filter_map(|r| match r.event {
                SimEvent::SigningKeyChanged { witness, new, .. } if witness == WITNESS => Some(new),
                _ => None,
            })
            .collect()
    }

    /// (when the trap first saw the crossing, when the witness's first miss became visible on chain).
    fn seen_and_visible(&self) -> (u64, u64) {
        let visible = self
            .sim
            .events()
            .into_iter()
            .find_map(|r| match r.event {
                SimEvent::SlotMissed { witness, .. } if witness == WITNESS => Some(r.time),
                _ => None,
            })
            .expect("a miss");
        let Phase::Fired { seen_at, .. } = self.state().phase else { panic!("not fired: {:?}", self.state()) };
        (seen_at.as_secs(), visible)
    }

    fn accepted_txids(&self) -> std::collections::BTreeSet<[u8; 20]> {
        self.sim
            .events()
            .into_iter()
            .filter_map(|r| match r.event {
                SimEvent::TxAccepted { txid, .. } => Some(txid),
                _ => None,
            })
            .collect()
    }
}

/// The whole incident: armed, primary fails, trap fires once, the backup produces, one SMS per number.
async fn happy_path(chain: ChainSpec, use_active_key: bool) {
    let mut w = world(chain.clone(), 2, 20.0, 7).await;
    if use_active_key {
        w.vars.remove("SIGNING_WIF");
        w.vars.insert("ACTIVE_WIF".into(), w.keys.active.to_wif().to_string());
    }
    let (task, _stop) = w.spawn();
    w.armed().await;
    let seq = w.own_block(0, Signer::Primary).await;
    w.sim.fail_primary();
    assert_eq!(task.await.expect("join"), ExitStatus::Ok, "{}", chain.name);
    w.own_block(seq, Signer::Backup).await;
    assert_eq!(w.key_changes(), vec![w.keys.backup.public_key()], "exactly one swap, to the backup key");
    assert_eq!(w.accepted_txids().len(), 1, "one transaction");
    assert_eq!(w.sim.witness().signing_key, w.keys.backup.public_key());
    let missed = w.sim.witness().total_missed - 7;
    assert!(missed >= 1, "the outage was real");
    let Phase::Fired { outcome: Outcome::Swapped { txid: Some(_) }, .. } = w.state().phase else {
        panic!("{:?}", w.state())
    };
    let sms = w.sms.messages();
    assert_eq!(sms.len(), 1);
    assert!(sms[0].body.contains(WITNESS) && sms[0].body.contains(&chain.name), "{}", sms[0].body);
}

#[tokio::test]
async fn hive_swap_with_witness_set_properties() {
    happy_path(ChainSpec::hive(), false).await;
}

#[tokio::test]
async fn steem_swap_with_witness_set_properties() {
    happy_path(ChainSpec::steem(), false).await;
}

#[tokio::test]
async fn hive_swap_with_witness_update() {
    happy_path(ChainSpec::hive(), true).await;
}

#[tokio::test]
async fn steem_swap_with_witness_update() {
    happy_path(ChainSpec::steem(), true).await;
}

#[tokio::test]
async fn a_crash_while_firing_and_a_restart_after_firing() {
    let w = world(ChainSpec::hive(), 2, 20.0, 11).await;
    let (task, _stop) = w.spawn();
    w.armed().await;
    w.own_block(0, Signer::Primary).await;
    w.sim.fail_primary();
    // Kill the process the moment the state file says firing (before or after its broadcast).
    for _ in 0..4000 {
        if matches!(w.state().phase, Phase::Firing { .. }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    task.abort();
    let _ = task.await;
    assert!(!matches!(w.state().phase, Phase::Armed), "it got to firing");
    // Restart: it finishes the same swap.
    let (task, _stop) = w.spawn();
    assert_eq!(task.await.expect("join"), ExitStatus::Ok);
    assert_eq!(w.key_changes(), vec![w.keys.backup.public_key()]);
    assert_eq!(w.sms.messages().len(), 1);
    // Restart after fired: nothing is polled for, signed or sent.
    let broadcasts = w.sim.broadcasts_received();
    let (task, _stop) = w.spawn();
    assert_eq!(task.await.expect("join"), ExitStatus::Ok);
    assert_eq!(w.sim.broadcasts_received(), broadcasts);
    assert_eq!(w.sms.messages().len(), 1);
    assert_eq!(w.key_changes().len(), 1);
}

/// Let the trap watch `for_blocks` blocks, then stop it; returns its exit status.
async fn watch_for(
    w: &World,
    task: JoinHandle<ExitStatus>,
    stop: CancellationToken,
    from: u64,
    blocks: usize,
) -> ExitStatus {
    let mut seq = from;
    for _ in 0..blocks {
        seq =
            w.sim.wait_for_event(seq, WAIT, |e| matches!(e, SimEvent::BlockProduced { .. })).await.expect("blocks").seq;
    }
    stop.cancel();
    task.await.expect("join")
}

#[tokio::test]
async fn a_stale_only_endpoint_never_fires() {
    let w = world(ChainSpec::hive(), 1, 20.0, 13).await;
    let (task, stop) = w.spawn();
    w.armed().await;
    w.sim.set_fault(0, Fault::StaleHead).expect("endpoint 0");
    let seq = w.sim.last_seq();
    w.sim.fail_primary();
    assert_eq!(watch_for(&w, task, stop, seq, 60).await, ExitStatus::Ok);
    assert!(w.sim.witness().total_missed > 7, "the witness really missed");
    assert_eq!(w.sim.broadcasts_received(), 0, "but the trap saw only a stale head");
    assert!(matches!(w.state().phase, Phase::Armed));
}

#[tokio::test]
async fn a_failing_first_endpoint_and_a_healthy_second_fires_once() {
    let w = world(ChainSpec::steem(), 2, 20.0, 17).await;
    w.sim.set_fault(0, Fault::Http503).expect("endpoint 0");
    let (task, _stop) = w.spawn();
    w.armed().await;
    w.own_block(0, Signer::Primary).await;
    w.sim.fail_primary();
    assert_eq!(task.await.expect("join"), ExitStatus::Ok);
    assert_eq!(w.key_changes(), vec![w.keys.backup.public_key()]);
}

#[tokio::test]
async fn a_lying_endpoint_beside_an_honest_one_never_fires() {
    let w = world(ChainSpec::hive(), 2, 20.0, 19).await;
    let (task, stop) = w.spawn();
    w.armed().await;
    w.sim.set_fault(1, Fault::LyingMissed(Lie::Add(5))).expect("endpoint 1");
    let seq = w.sim.last_seq();
    assert_eq!(watch_for(&w, task, stop, seq, 60).await, ExitStatus::Ok);
    assert_eq!(w.sim.broadcasts_received(), 0);
    assert_eq!(w.sim.witness().total_missed, 7, "the witness never missed");
}

/// Issue 12 case 2: an endpoint whose head is fresh but whose witness object lags (stuck at the count of
/// arming) used to contradict every crossing and veto the fire in silence. The blocks settle it now: they
/// show the witness's slot empty, so the crossing stands and the trap fires once.
#[tokio::test]
async fn an_endpoint_with_lagging_witness_data_cannot_veto_the_fire() {
    let w = world(ChainSpec::hive(), 2, 20.0, 41).await;
    let (task, _stop) = w.spawn();
    w.armed().await;
    // Endpoint 0 answers total_missed 7 (the count at arming) for ever; endpoint 1 is honest.
    w.sim.set_fault(0, Fault::LyingMissed(Lie::Fixed(7))).expect("endpoint 0");
    w.own_block(0, Signer::Primary).await;
    w.sim.fail_primary();
    assert_eq!(task.await.expect("join"), ExitStatus::Ok, "fired despite the lagging endpoint");
    assert_eq!(w.key_changes(), vec![w.keys.backup.public_key()], "one swap, to the backup key");
    let Phase::Fired { outcome: Outcome::Swapped { txid: Some(_) }, .. } = w.state().phase else {
        panic!("{:?}", w.state())
    };
}

/// Issue 12 case 2, the other way: a liar claiming misses that did not happen never fires the trap, is
/// refuted by the blocks (the witness signed its slots), ends untrusted, and is named in an alert and in
/// the health facts.
#[tokio::test]
async fn a_liar_refuted_by_the_blocks_is_untrusted_and_named() {
    let w = world(ChainSpec::hive(), 2, 20.0, 43).await;
    let (task, stop) = w.spawn();
    w.armed().await;
    w.sim.set_fault(1, Fault::LyingMissed(Lie::Add(5))).expect("endpoint 1");
    let liar = w.sim.urls()[1].clone();
    let seq = w.sim.last_seq();
    // Four rounds: the liar's claim is refuted at the witness's slots until it is untrusted.
    assert_eq!(watch_for(&w, task, stop, seq, 84).await, ExitStatus::Ok);
    assert_eq!(w.sim.broadcasts_received(), 0, "never fired");
    let poll = last_poll(&w.state_file).expect("polled");
    assert!(poll.problems.iter().any(|p| p.contains("untrusted") && p.contains(&liar)), "{poll:?}");
    let texts: Vec<String> = w.sms.messages().into_iter().map(|m| m.body).collect();
    assert!(texts.iter().any(|t| t.contains("UNTRUSTED")), "{texts:?}");
}

#[tokio::test]
async fn twilio_failing_for_good_still_swaps_once() {
    let w = world(ChainSpec::hive(), 2, 20.0, 23).await;
    w.sms.fail_forever(true);
    let (task, _stop) = w.spawn();
    w.armed().await;
    w.own_block(0, Signer::Primary).await;
    w.sim.fail_primary();
    assert_eq!(task.await.expect("join"), ExitStatus::AlertFailed);
    assert_eq!(w.key_changes(), vec![w.keys.backup.public_key()]);
}

#[tokio::test]
async fn twilio_failing_then_recovering_alerts_once() {
    let w = world(ChainSpec::steem(), 1, 20.0, 29).await;
    w.sms.fail_next(2);
    let (task, _stop) = w.spawn();
    w.armed().await;
    w.own_block(0, Signer::Primary).await;
    w.sim.fail_primary();
    assert_eq!(task.await.expect("join"), ExitStatus::Ok);
    assert_eq!(w.sms.messages().len(), 1);
    assert_eq!(w.key_changes().len(), 1);
}

/// Randomised outage moments (property-style, bounded): the trap fires exactly once and only ever to the
/// backup key, whatever the moment relative to the schedule and the poll phase.
#[tokio::test]
async fn randomised_outages_fire_exactly_once_to_the_backup() {
    for round in 0..4u64 {
        let seed = rand::random::<u64>();
        let w = world(ChainSpec::hive(), 2, 20.0, seed).await;
        let (task, _stop) = w.spawn();
        w.armed().await;
        let blocks = (seed % 30) as usize;
        let mut seq = w.sim.last_seq();
        for _ in 0..blocks {
            seq = w
                .sim
                .wait_for_event(seq, WAIT, |e| matches!(e, SimEvent::BlockProduced { .. }))
                .await
                .expect("blocks")
                .seq;
        }
        w.sim.fail_primary();
        assert_eq!(task.await.expect("join"), ExitStatus::Ok, "round {round}, seed {seed}");
        assert_eq!(w.key_changes(), vec![w.keys.backup.public_key()], "round {round}, seed {seed}");
        assert_eq!(w.accepted_txids().len(), 1, "round {round}, seed {seed}");
    }
}

// --- Slot-aware watching (issue 8), in simulated time -------------------------------------------------

/// With DETECTION=slots and a 30 s poll, a miss is seen within about one block of becoming visible.
#[tokio::test]
async fn slots_detect_a_miss_within_a_block_of_it_becoming_visible() {
    let w = world(ChainSpec::hive(), 2, 3.0, 31).await;
    let (task, _stop) = w.spawn();
    w.armed().await;
    w.own_block(0, Signer::Primary).await;
    w.sim.fail_primary();
    assert_eq!(task.await.expect("join"), ExitStatus::Ok);
    let (seen_at, visible) = w.seen_and_visible();
    // The look is planned one block after the slot plus a one-second margin: seen within two blocks
    // (6 chain seconds) of the miss becoming visible, against up to 30 s for a blind poll.
    assert!(seen_at <= visible + 6, "seen at {seen_at}, visible at {visible}");
}

/// A reshuffle between two of the witness's slots: the failure starts right after a new round is
/// computed, so the missed slot is found from a freshly read schedule.
#[tokio::test]
async fn slots_follow_a_reshuffle() {
    let w = world(ChainSpec::steem(), 1, 3.0, 37).await;
    let (task, _stop) = w.spawn();
    w.armed().await;
    let seq = w.own_block(0, Signer::Primary).await;
    w.sim.wait_for_event(seq, WAIT, |e| matches!(e, SimEvent::Reshuffled { .. })).await.expect("a reshuffle");
    w.sim.fail_primary();
    assert_eq!(task.await.expect("join"), ExitStatus::Ok);
    let (seen_at, visible) = w.seen_and_visible();
    // One endpoint: corroboration is a read one block later, so allow one more block.
    assert!(seen_at <= visible + 6, "seen at {seen_at}, visible at {visible}");
    assert_eq!(w.key_changes().len(), 1);
}

/// A halted chain (no witness produces): the head goes stale, the trap is blind and never fires.
#[tokio::test]
async fn a_halted_chain_never_fires() {
    let w = world(ChainSpec::hive(), 2, 20.0, 41).await;
    let (task, stop) = w.spawn();
    w.armed().await;
    let names: Vec<String> = w.sim.with_chain(|c| c.witnesses().map(|x| x.owner.clone()).collect());
    for n in &names {
        w.sim.set_witness_up(n, false);
    }
    w.sim.fail_primary();
    w.sim.fail_backup();
    // Let 120 chain seconds pass with no block at all, and at least until a poll has found it blind.
    w.clock.sleep(Duration::from_secs(120)).await;
    wait_for("a blind poll", || last_poll(&w.state_file).is_some_and(|p| !p.healthy)).await;
    stop.cancel();
    assert_eq!(task.await.expect("join"), ExitStatus::Ok);
    assert_eq!(w.sim.broadcasts_received(), 0);
}

/// An endpoint that fails exactly during the slot read: no fire on bad data, and detection resumes.
#[tokio::test]
async fn an_endpoint_failing_during_the_slot_read_delays_but_does_not_prevent_detection() {
    let w = world(ChainSpec::hive(), 1, 10.0, 43).await;
    let (task, _stop) = w.spawn();
    w.armed().await;
    let seq = w.own_block(0, Signer::Primary).await;
    w.sim.set_fault(0, Fault::Http503).expect("endpoint 0");
    w.sim.fail_primary();
    let missed = w
        .sim
        .wait_for_event(seq, WAIT, |e| matches!(e, SimEvent::SlotMissed { witness, .. } if witness == WITNESS))
        .await
        .expect("a miss")
        .seq;
    // Two more blocks with the only endpoint failing: nothing may be broadcast on no data.
    let mut s = missed;
    for _ in 0..2 {
        s = w.sim.wait_for_event(s, WAIT, |e| matches!(e, SimEvent::BlockProduced { .. })).await.expect("blocks").seq;
    }
    assert_eq!(w.sim.broadcasts_received(), 0);
    w.sim.set_fault(0, Fault::None).expect("endpoint 0");
    assert_eq!(task.await.expect("join"), ExitStatus::Ok);
    assert_eq!(w.key_changes(), vec![w.keys.backup.public_key()]);
}
