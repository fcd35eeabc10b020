//! Antelope producers end to end against the simulated nodeos (`antelope-sim`): real slots, real misses,
//! pushes checked as nodeos checks them (signature, linked permission, TaPoS), the schedule latency, the
//! backup taking over. The chain runs tens of times faster than real time; tests wait on chain events with
//! generous timeouts and assert chain facts, never elapsed wall time.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use antelope_protocol::chain::network;
use antelope_protocol::keys::PrivateKey;
use antelope_sim::{Fault, SimConfig, SimEvent, SimNode};
use chain_clock::{ScaledClock, SharedClock};
use graphene_sim::SmsSink;
use secrecy::SecretString;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use witness_trap::cli::ExitStatus;
use witness_trap::config::{vars as v, VarMap};
use witness_trap::trap::state::{Outcome, Phase};

use crate::support::{load_state, run, AnyState};

const WAIT: Duration = Duration::from_secs(120);
const SID: &str = "ACantelope000000000000000000000000";
const TOKEN: &str = "antelope-token-0123456789";
const PRODUCER: &str = "alice";

pub struct AKeys {
    pub primary: PrivateKey,
    pub backup: PrivateKey,
    pub active: PrivateKey,
    pub failover: PrivateKey,
}

impl AKeys {
    pub fn fresh() -> Self {
        Self {
            primary: PrivateKey::generate(),
            backup: PrivateKey::generate(),
            active: PrivateKey::generate(),
            failover: PrivateKey::generate(),
        }
    }
}

pub struct World {
    pub sim: SimNode,
    pub sms: SmsSink,
    pub keys: AKeys,
    pub clock: SharedClock,
    pub state_file: PathBuf,
    _dir: tempfile::TempDir,
    pub vars: HashMap<String, String>,
}

/// A simulated EOS with `endpoints` endpoints and a trap configured against it (not started).
pub async fn world(endpoints: usize, speedup: f64, seed: u64, tweak: impl FnOnce(&mut SimConfig)) -> World {
    let keys = AKeys {
        primary: PrivateKey::generate(),
        backup: PrivateKey::generate(),
        active: PrivateKey::generate(),
        failover: PrivateKey::generate(),
    };
    let clock: SharedClock = Arc::new(ScaledClock::starting_now(speedup));
    let eos = network("eos").expect("eos");
    let mut cfg = SimConfig::new(
        eos.chain_id,
        PRODUCER,
        keys.primary.public_key(),
        keys.backup.public_key(),
        keys.active.public_key(),
        keys.failover.public_key(),
    );
    cfg.clock = Some(clock.clone());
    cfg.endpoints = endpoints;
    cfg.seed = seed;
    tweak(&mut cfg);
    let sim = SimNode::start(cfg).await.expect("sim starts");
    let sms = SmsSink::start(SID, SecretString::from(TOKEN.to_string())).await.expect("sms sink starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let state_file = dir.path().join("state.json");
    let vars =
        VarMap::antelope("eos", PRODUCER, &sim.urls(), &keys.backup.public_key(), &keys.failover.to_wif(), &state_file)
            .with(v::MISSED_BLOCKS_ALLOWED, 2)
            .with(v::POLL_INTERVAL_SECS, 5)
            .with(v::RPC_TIMEOUT_SECS, 2)
            .with_twilio(sms.url(), SID, TOKEN, "+15005550006", "+14155550123")
            .into_map();
    World { sim, sms, keys, clock, state_file, _dir: dir, vars }
}

impl World {
    pub fn spawn(&self) -> (JoinHandle<ExitStatus>, CancellationToken) {
        let shutdown = CancellationToken::new();
        let (vars, clock, s) = (self.vars.clone(), self.clock.clone(), shutdown.clone());
        (tokio::spawn(async move { run(&vars, clock, s, true).await }), shutdown)
    }

    pub async fn armed(&self) {
        for _ in 0..2400 {
            if self.state_file.exists() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the trap never armed");
    }

    pub fn state(&self) -> AnyState {
        load_state(&self.state_file)
    }

    /// Every key the producers row was moved to, in order.
    pub fn registrations(&self) -> Vec<String> {
        self.sim
            .events()
            .into_iter()
            .filter_map(|r| match r.event {
                SimEvent::ProducerRegistered { producer, authority, .. } if producer == PRODUCER => {
                    Some(format!("{authority:?}"))
                }
                _ => None,
            })
            .collect()
    }
}

async fn finish(handle: JoinHandle<ExitStatus>) -> ExitStatus {
    tokio::time::timeout(WAIT, handle).await.expect("the trap finished in time").expect("the trap task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_that_misses_is_swapped_once_and_confirmed_in_the_schedule() {
    let w = world(2, 20.0, 11, |_| {}).await;
    let (handle, _stop) = w.spawn();
    w.armed().await;
    let seq = w.sim.last_seq();
    w.sim.fail_primary();
    assert_eq!(finish(handle).await, ExitStatus::Ok, "fired and confirmed: exit 0");
    let st = w.state();
    let Phase::Fired { outcome: Outcome::Swapped { txid }, target, .. } = &st.phase else {
        panic!("fired and swapped: {:?}", st.phase)
    };
    assert_eq!(*target, w.keys.backup.public_key().to_legacy());
    let txid = txid.clone().expect("the attempt's id");
    // Exactly one swap, to the backup key, accepted by the chain.
    let regs = w.registrations();
    assert_eq!(regs.len(), 1, "{regs:?}");
    assert!(regs[0].contains(&w.keys.backup.public_key().to_legacy()) || regs[0].contains("PublicKey"), "{regs:?}");
    let row = w.sim.producer_row(PRODUCER).expect("row");
    assert_eq!(row.producer_key, Some(w.keys.backup.public_key()));
    // The schedule carries it (pending or active) when the trap calls it fired.
    let (active, pending) = w.sim.schedule();
    let carried = format!("{active:?}{pending:?}");
    assert!(
        carried.contains(&w.keys.backup.public_key().to_legacy())
            || carried.contains(&format!("{:?}", w.keys.backup.public_key())),
        "{carried}"
    );
    // The SMS names the producer, the chain, the new key and the txid.
    let sms = w.sms.messages();
    assert_eq!(sms.len(), 1, "{sms:?}");
    let body = &sms[0].body;
    for part in [PRODUCER, "eos", &w.keys.backup.public_key().to_legacy(), &txid[..8]] {
        assert!(body.contains(part), "{part} in {body}");
    }
    // And the backup produces once the schedule is active.
    w.sim
        .wait_for_event(seq, WAIT, |e| matches!(e, SimEvent::BackupProducing { .. }))
        .await
        .expect("the backup produces");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_producer_is_never_swapped() {
    let w = world(2, 20.0, 12, |_| {}).await;
    let (handle, stop) = w.spawn();
    w.armed().await;
    // Three rounds of 21 producers: every slot of ours produced.
    let start = w.sim.head().num;
    while w.sim.head().num < start + 3 * 252 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    let _ = finish(handle).await;
    assert!(w.registrations().is_empty());
    assert_eq!(w.sim.transactions_received(), 0);
    let st = w.state();
    assert!(matches!(st.phase, Phase::Armed), "{:?}", st.phase);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forked_endpoint_that_hides_the_producers_blocks_never_fires_the_trap() {
    let w = world(2, 20.0, 13, |_| {}).await;
    let (handle, stop) = w.spawn();
    w.armed().await;
    w.sim.set_fault(0, Fault::Fork).expect("fault");
    let start = w.sim.head().num;
    while w.sim.head().num < start + 3 * 252 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    let _ = finish(handle).await;
    assert!(w.registrations().is_empty(), "never fired on a fork");
    assert_eq!(w.sim.transactions_received(), 0);
}

impl World {
    /// Transactions included in a block.
    pub fn included(&self) -> usize {
        self.sim.events().into_iter().filter(|r| matches!(r.event, SimEvent::TxIncluded { .. })).count()
    }

    /// Let the chain run `blocks` blocks.
    pub async fn blocks(&self, blocks: u32) {
        let start = self.sim.head().num;
        while self.sim.head().num < start + blocks {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn swapped_once(w: &World, why: &str) {
    let regs = w.registrations();
    assert_eq!(regs.len(), 1, "{why}: one registration, {regs:?}");
    let row = w.sim.producer_row(PRODUCER).expect("row");
    assert_eq!(row.producer_key, Some(w.keys.backup.public_key()), "{why}: to the backup key");
    assert_eq!(w.included(), 1, "{why}: one transaction in a block");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_while_firing_and_a_restart_after_firing() {
    let w = world(2, 20.0, 21, |_| {}).await;
    let (task, _stop) = w.spawn();
    w.armed().await;
    w.sim.fail_primary();
    for _ in 0..8000 {
        if matches!(w.state().phase, Phase::Firing { .. }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    task.abort();
    let _ = task.await;
    assert!(!matches!(w.state().phase, Phase::Armed), "it got to firing");
    // Restart: it finishes the same swap (the persisted attempt, or a fresh one if that one never left).
    let (task, _stop) = w.spawn();
    assert_eq!(finish(task).await, ExitStatus::Ok);
    swapped_once(&w, "after the crash");
    assert_eq!(w.sms.messages().len(), 1);
    // Restart after fired: nothing is signed or sent.
    let received = w.sim.transactions_received();
    let (task, _stop) = w.spawn();
    assert_eq!(finish(task).await, ExitStatus::Ok);
    assert_eq!(w.sim.transactions_received(), received);
    assert_eq!(w.sms.messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_only_endpoint_never_fires() {
    let w = world(1, 20.0, 22, |_| {}).await;
    let (task, stop) = w.spawn();
    w.armed().await;
    w.sim.set_fault(0, Fault::StaleHead).expect("endpoint 0");
    w.sim.fail_primary();
    w.blocks(2 * 252).await;
    stop.cancel();
    let _ = finish(task).await;
    assert!(
        w.sim
            .events()
            .iter()
            .any(|r| matches!(&r.event, SimEvent::SlotMissed { producer, .. } if producer == PRODUCER)),
        "it really missed"
    );
    assert_eq!(w.sim.transactions_received(), 0, "but the trap saw only a stale head");
    assert!(matches!(w.state().phase, Phase::Armed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_a_lagging_or_a_wrong_chain_endpoint_beside_a_healthy_one_still_fires_once() {
    // A wrong chain id at arming is refused (`check`); one that turns up later is left out with a notice.
    for (i, fault) in
        [Fault::Http503, Fault::Lagging(8), Fault::WrongChainId([7; 32]), Fault::GarbageJson, Fault::StaleHead]
            .into_iter()
            .enumerate()
    {
        let w = world(2, 20.0, 30 + i as u64, |_| {}).await;
        let later = matches!(fault, Fault::WrongChainId(_));
        if !later {
            w.sim.set_fault(0, fault).expect("endpoint 0");
        }
        let (task, _stop) = w.spawn();
        w.armed().await;
        if later {
            w.sim.set_fault(0, fault).expect("endpoint 0");
        }
        w.sim.fail_primary();
        assert_eq!(finish(task).await, ExitStatus::Ok, "{fault:?}");
        swapped_once(&w, &format!("{fault:?}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_failing_for_good_still_swaps_once() {
    let w = world(2, 20.0, 23, |_| {}).await;
    w.sms.fail_forever(true);
    let (task, _stop) = w.spawn();
    w.armed().await;
    w.sim.fail_primary();
    assert_eq!(finish(task).await, ExitStatus::AlertFailed);
    swapped_once(&w, "twilio down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_block_that_replaces_the_gap_never_fires_the_trap_on_its_own() {
    // One missed slot allowed: a single late block that the chain then takes after all must not fire it.
    let mut w = world(2, 20.0, 24, |_| {}).await;
    w.vars.insert(v::MISSED_BLOCKS_ALLOWED.into(), "1".into());
    let (task, stop) = w.spawn();
    w.armed().await;
    let seq = w.sim.last_seq();
    w.sim.late_block(1);
    w.sim.wait_for_event(seq, WAIT, |e| matches!(e, SimEvent::MissUndone { .. })).await.expect("the miss was undone");
    w.blocks(2 * 252).await;
    stop.cancel();
    let _ = finish(task).await;
    assert_eq!(w.sim.transactions_received(), 0, "never fired on a miss the chain undid");
    assert!(matches!(w.state().phase, Phase::Armed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microforks_do_not_count_a_miss_twice_or_fire() {
    let w = world(2, 20.0, 25, |_| {}).await;
    let (task, stop) = w.spawn();
    w.armed().await;
    for _ in 0..6 {
        w.blocks(40).await;
        w.sim.microfork(3);
    }
    w.blocks(252).await;
    stop.cancel();
    let _ = finish(task).await;
    assert_eq!(w.sim.transactions_received(), 0);
}

/// Randomised outage moments (bounded): exactly one swap, always to the backup key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn randomised_outages_fire_exactly_once_to_the_backup() {
    for round in 0..3u64 {
        let seed = rand::random::<u64>();
        let w = world(2, 20.0, seed, |_| {}).await;
        let (task, _stop) = w.spawn();
        w.armed().await;
        w.blocks((seed % 252) as u32).await;
        w.sim.fail_primary();
        assert_eq!(finish(task).await, ExitStatus::Ok, "round {round}, seed {seed}");
        swapped_once(&w, &format!("round {round}, seed {seed}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_savanna_swap_moves_the_finalizer_key_too_and_status_follows_the_schedule() {
    let mut bls = String::new();
    let mut w = world(2, 20.0, 26, |c| {
        if let Some(f) = c.failover.as_mut() {
            f.links.push(("eosio".into(), "actfinkey".into()));
        }
        bls = c.backup_finalizer_key.clone();
    })
    .await;
    w.vars.insert(v::BACKUP_FINALIZER_KEY.into(), bls.clone());
    let (task, _stop) = w.spawn();
    w.armed().await;
    let seq = w.sim.last_seq();
    w.sim.fail_primary();
    assert_eq!(finish(task).await, ExitStatus::Ok);
    swapped_once(&w, "savanna");
    assert!(
        w.sim.events().iter().any(|r| matches!(&r.event, SimEvent::FinalizerKeyActivated { .. })),
        "actfinkey went with regproducer"
    );
    // `status` shows where the key stands until the backup produces.
    let settings = witness_trap::config::load(&w.vars).expect("loads");
    let report = witness_trap::service::status(settings, w.clock.clone()).await.expect("status");
    let line = report.lines.iter().find(|l| l.starts_with("schedule:")).cloned().unwrap_or_default();
    assert!(line.contains("backup key is pending") || line.contains("backup key is active"), "{:?}", report.lines);
    w.sim.wait_for_event(seq, WAIT, |e| matches!(e, SimEvent::BackupProducing { .. })).await.expect("backup produces");
    let settings = witness_trap::config::load(&w.vars).expect("loads");
    let report = witness_trap::service::status(settings, w.clock.clone()).await.expect("status");
    assert!(report.lines.iter().any(|l| l.contains("the backup key is active")), "{:?}", report.lines);
}

/// One endpoint on a minority fork (the producer's blocks missing there, its finality frozen) beside an
/// honest one: it never fires the trap while the producer is fine, and it cannot stop the fire when the
/// producer really misses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forked_endpoint_cannot_stop_the_fire() {
    let logs = crate::support::capture_logs();
    let w = world(2, 20.0, 36, |_| {}).await;
    w.sim.set_fault(0, Fault::Fork).expect("endpoint 0");
    let (task, _stop) = w.spawn();
    w.armed().await;
    w.blocks(252).await;
    assert_eq!(w.sim.transactions_received(), 0, "no fire on the fork's gaps");
    w.sim.fail_primary();
    let done = tokio::time::timeout(WAIT, task).await;
    if done.is_err() {
        let text = logs.text();
        let tail: Vec<&str> = text.lines().filter(|l| !l.contains("TRACE") && !l.contains("DEBUG")).collect();
        let from = tail.len().saturating_sub(60);
        panic!("no fire; last log lines:\n{}", tail[from..].join("\n"));
    }
    assert_eq!(done.expect("in time").expect("join"), ExitStatus::Ok);
    swapped_once(&w, "fork");
}
