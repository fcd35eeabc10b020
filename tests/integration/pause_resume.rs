//! `SWAP=producer-api` end to end: the simulated nodeos with two same-key nodes behind fake `producer_api`s,
//! the real node agent in front of each (in process, signed requests), and the real trap watching off-host.
//! A stalled primary is paused through its agent and the backup resumed at once; a dead primary whose agent
//! is gone too is resumed over only after `PAUSE_FENCE_SECS` of chain silence; one cut off from the trap
//! that produces again is never joined; a restart while the resume hangs finishes the same failover; pre-arming refuses two live
//! nodes and an unreachable agent. In every case the simulator never sees two nodes producing.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use antelope_protocol::chain::network;
use antelope_protocol::keys::PrivateKey;
use antelope_sim::{ApiNode, SimConfig, SimEvent, SimNode};
use chain_clock::{ScaledClock, SharedClock};
use graphene_sim::SmsSink;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use witness_trap::agent::{Agent, AgentSigningKey, AntelopeProducerApi, ProducerApi, Verifier};
use witness_trap::config::{vars as v, VarMap};
use witness_trap::trap::state::{AnyState, Phase};

use crate::support::run;

const SID: &str = "ACpauseresume00000000000000000000";
const TOKEN: &str = "pause-resume-token-0123456789";

struct World {
    sim: SimNode,
    sms: SmsSink,
    clock: SharedClock,
    state_file: PathBuf,
    vars: HashMap<String, String>,
    /// Each agent's stop switch (primary, backup).
    agents: [CancellationToken; 2],
    _dir: tempfile::TempDir,
}

async fn start_agent(
    nodeos: &str,
    name: &str,
    trusted: &AgentSigningKey,
    clock: &SharedClock,
) -> (String, CancellationToken) {
    let backend = AntelopeProducerApi::new(ProducerApi::parse(nodeos).expect("endpoint"), Duration::from_secs(2));
    let verifier = Verifier::new(vec![trusted.public_key()], name.into());
    let agent = Arc::new(Agent::new(verifier, Arc::new(backend), clock.clone()));
    let stop = CancellationToken::new();
    let (addr, _task) = witness_trap::agent::serve("127.0.0.1:0".parse().expect("addr"), None, agent, stop.clone())
        .await
        .expect("agent");
    (format!("http://{addr}"), stop)
}

async fn world(seed: u64, fence_secs: u64) -> World {
    let keys: Vec<PrivateKey> = (0..4).map(|_| PrivateKey::generate()).collect();
    let clock: SharedClock = Arc::new(ScaledClock::starting_now(20.0));
    let eos = network("eos").expect("eos");
    let mut cfg = SimConfig::new(
        eos.chain_id,
        "alice",
        keys[0].public_key(),
        keys[1].public_key(),
        keys[2].public_key(),
        keys[3].public_key(),
    );
    cfg.clock = Some(clock.clone());
    cfg.endpoints = 2;
    cfg.seed = seed;
    cfg.producer_api = true;
    let sim = SimNode::start(cfg).await.expect("sim");
    let sms = SmsSink::start(SID, SecretString::from(TOKEN.to_string())).await.expect("sms");
    let trap_key = AgentSigningKey::generate();
    let (p_url, p_stop) =
        start_agent(&sim.producer_api_url(ApiNode::Primary).expect("api"), "bp1", &trap_key, &clock).await;
    let (b_url, b_stop) =
        start_agent(&sim.producer_api_url(ApiNode::Backup).expect("api"), "bp2", &trap_key, &clock).await;
    let dir = tempfile::tempdir().expect("dir");
    let state_file = dir.path().join("state.json");
    let vars = VarMap::new()
        .with(v::CHAIN, "eos")
        .with(v::PRODUCER_ACCOUNT, "alice")
        .with(v::RPC_URLS, sim.urls().join(","))
        .with(v::STATE_FILE, state_file.display())
        .with(v::SWAP, "producer-api")
        .with(v::AGENT_URLS, format!("bp1={p_url},bp2={b_url}"))
        .with(v::AGENT_CLIENT_KEY, trap_key.to_secret_text().as_str())
        .with(v::PAUSE_FENCE_SECS, fence_secs)
        .with(v::MISSED_BLOCKS_ALLOWED, 2)
        .with(v::POLL_INTERVAL_SECS, 5)
        .with(v::RPC_TIMEOUT_SECS, 2)
        .with_twilio(sms.url(), SID, TOKEN, "+15005550006", "+14155550123")
        .into_map();
    World { sim, sms, clock, state_file, vars, agents: [p_stop, b_stop], _dir: dir }
}

impl World {
    fn spawn(&self) -> (tokio::task::JoinHandle<witness_trap::cli::ExitStatus>, CancellationToken) {
        let stop = CancellationToken::new();
        let (vars, clock, s) = (self.vars.clone(), self.clock.clone(), stop.clone());
        (tokio::spawn(async move { run(&vars, clock, s, true).await }), stop)
    }

    async fn wait_state(&self, what: impl Fn(&AnyState) -> bool) -> AnyState {
        for _ in 0..4800 {
            if let Ok(Some(s)) = witness_trap::trap::state::read_file(&self.state_file) {
                if what(&s) {
                    return s;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the state never became what was expected: {:?}", witness_trap::trap::state::read_file(&self.state_file))
    }

    fn backup_produced_after(&self, seq: u64) -> bool {
        self.sim.events().iter().any(|r| r.seq > seq && matches!(r.event, SimEvent::BackupProducing { .. }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_primary_is_paused_through_its_agent_and_the_backup_resumed() {
    let w = world(61, 252).await;
    let (trap, _stop) = w.spawn();
    w.wait_state(|s| s.phase.name() == "armed").await;
    let seq = w.sim.last_seq();
    // The primary's nodeos hangs: it answers its API but produces nothing.
    w.sim.set_stalled(ApiNode::Primary, true);
    let fired = w.wait_state(|s| matches!(s.phase, Phase::Fired { .. })).await;
    let Phase::Fired { target, from, .. } = &fired.phase else { unreachable!() };
    assert_eq!((target.as_str(), from.as_deref()), ("node:bp2", Some("node:bp1")));
    assert!(w.sim.paused(ApiNode::Primary), "paused through its agent");
    assert!(!w.sim.paused(ApiNode::Backup), "the backup resumed");
    assert!(w.backup_produced_after(seq), "confirmed on chain: the backup signs the producer's slots");
    assert_eq!(w.sim.double_productions(), 0, "never two nodes producing");
    // The stalled node recovering does not produce again: it is paused.
    w.sim.set_stalled(ApiNode::Primary, false);
    w.clock.sleep(Duration::from_secs(30)).await;
    assert_eq!(w.sim.double_productions(), 0);
    let status = tokio::time::timeout(Duration::from_secs(60), trap).await.expect("ends").expect("task");
    assert_eq!(status, witness_trap::cli::ExitStatus::Ok);
    let fired_sms: Vec<String> =
        w.sms.messages().into_iter().map(|m| m.body).filter(|b| b.starts_with("FIRED")).collect();
    assert_eq!(fired_sms.len(), 1, "{fired_sms:?}");
    assert!(fired_sms[0].contains("node:bp2"), "{fired_sms:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_primary_host_is_fenced_by_the_chains_silence_before_the_backup_resumes() {
    let w = world(67, 252).await;
    let (trap, _stop) = w.spawn();
    w.wait_state(|s| s.phase.name() == "armed").await;
    // The whole host goes: nodeos and its agent.
    w.agents[0].cancel();
    w.sim.fail_primary();
    let died_at = w.sim.with_chain(|c| c.head().time_ms);
    let resumed = w
        .sim
        .wait_for_event(
            0,
            Duration::from_secs(120),
            |e| matches!(e, SimEvent::NodePaused { node, paused: false } if node == "backup"),
        )
        .await
        .expect("the backup resumed");
    let last_primary_block = w
        .sim
        .events()
        .iter()
        .filter(|r| r.seq < resumed.seq)
        .filter_map(|r| match &r.event {
            SimEvent::BlockProduced { producer, time_ms, .. } if producer == "alice" => Some(*time_ms),
            _ => None,
        })
        .max()
        .unwrap_or(died_at);
    // The event carries the head block's time, which stands still while the producer's own (missed) turn
    // passes: up to one turn (6 s) behind the trap's clock.
    assert!(
        resumed.time_ms + 6_000 >= last_primary_block + 252_000,
        "resumed {} ms after the producer's last block: PAUSE_FENCE_SECS 252 must pass first",
        resumed.time_ms.saturating_sub(last_primary_block)
    );
    let fired = w.wait_state(|s| matches!(s.phase, Phase::Fired { .. })).await;
    assert!(matches!(&fired.phase, Phase::Fired { target, .. } if target == "node:bp2"));
    // The dead primary comes back (pause-on-startup): still one producer.
    w.sim.restore_primary();
    w.clock.sleep(Duration::from_secs(30)).await;
    assert_eq!(w.sim.double_productions(), 0);
    let _ = tokio::time::timeout(Duration::from_secs(60), trap).await.expect("ends");
}

#[tokio::test]
async fn arming_refuses_two_live_nodes_and_an_unreachable_agent() {
    let w = world(71, 252).await;
    w.sim.set_paused(ApiNode::Backup, false);
    let settings = witness_trap::config::load(&w.vars).unwrap_or_else(|r| panic!("{r}"));
    let Err(failure) = witness_trap::service::check(settings, w.clock.clone()).await else {
        panic!("two unpaused nodes must be refused")
    };
    let text = failure.error.to_string();
    assert!(text.contains("AGENT_URLS") && text.contains("unpaused"), "{text}");
    w.sim.set_paused(ApiNode::Backup, true);
    w.agents[1].cancel();
    let settings = witness_trap::config::load(&w.vars).unwrap_or_else(|r| panic!("{r}"));
    let Err(failure) = witness_trap::service::check(settings, w.clock.clone()).await else {
        panic!("an unreachable agent must be refused")
    };
    let text = failure.error.to_string();
    assert!(text.contains("AGENT_URLS") && text.contains("bp2"), "{text}");
    // A backup still syncing is named too.
    let w = world(72, 252).await;
    w.sim.set_node_lag(ApiNode::Backup, 100);
    let settings = witness_trap::config::load(&w.vars).unwrap_or_else(|r| panic!("{r}"));
    let Err(failure) = witness_trap::service::check(settings, w.clock.clone()).await else {
        panic!("an unsynced backup must be refused")
    };
    let text = failure.error.to_string();
    assert!(text.contains("not synced") && text.contains("bp2"), "{text}");
    w.sim.set_node_lag(ApiNode::Backup, 2);
    let settings = witness_trap::config::load(&w.vars).unwrap_or_else(|r| panic!("{r}"));
    assert!(witness_trap::service::check(settings, w.clock.clone()).await.is_ok(), "two blocks behind is synced");
    // Settings that cannot work are named before anything is read.
    let mut bad = w.vars.clone();
    bad.insert(v::AGENT_URLS.into(), "bp1=ftp://x".into());
    bad.insert(v::FAILOVER_WIF.into(), "5K".into());
    bad.insert(v::PAUSE_FENCE_SECS.into(), "60".into());
    let Err(report) = witness_trap::config::load(&bad) else { panic!("refused") };
    let vars: Vec<&str> = report.problems.iter().map(|p| p.var.as_str()).collect();
    assert!(
        vars.contains(&v::AGENT_URLS) && vars.contains(&v::FAILOVER_WIF) && vars.contains(&v::PAUSE_FENCE_SECS),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_cut_off_from_the_trap_that_still_produces_is_never_joined_by_the_backup() {
    let mut w = world(73, 252).await;
    w.vars.insert(v::FIRE_TIMEOUT_SECS.into(), "330".into());
    let (trap, _stop) = w.spawn();
    w.wait_state(|s| s.phase.name() == "armed").await;
    // The primary's host is cut off from the trap (its agent unreachable) and its node misses one turn...
    w.agents[0].cancel();
    w.sim.set_stalled(ApiNode::Primary, true);
    w.wait_state(|s| s.phase.name() == "firing").await;
    // ...then produces again: the chain is never silent for PAUSE_FENCE_SECS, so the backup is never resumed.
    w.sim.set_stalled(ApiNode::Primary, false);
    let fired = w.wait_state(|s| matches!(s.phase, Phase::Fired { .. })).await;
    let Phase::Fired { outcome, .. } = &fired.phase else { unreachable!() };
    assert!(
        matches!(outcome, witness_trap::trap::state::Outcome::Failed { reason } if reason.contains("PAUSE_FENCE_SECS")),
        "the fire gives up, saying why: {outcome:?}"
    );
    assert!(w.sim.paused(ApiNode::Backup), "the backup was never resumed");
    assert_eq!(w.sim.double_productions(), 0);
    // `fired` is persisted with its alerts pending and sent just after: read the SMS once the trap has ended.
    let _ = tokio::time::timeout(Duration::from_secs(60), trap).await.expect("ends");
    let failed: Vec<String> = w.sms.messages().into_iter().map(|m| m.body).filter(|b| b.contains("FAILED")).collect();
    assert_eq!(failed.len(), 1, "the operator hears it: {failed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_the_resume_hangs_finishes_the_same_failover_once() {
    let w = world(79, 252).await;
    let (trap, _stop) = w.spawn();
    w.wait_state(|s| s.phase.name() == "armed").await;
    // The backup's nodeos hangs on every call: the resume cannot go through.
    w.sim.set_api_fault(ApiNode::Backup, antelope_sim::ApiFault::Hang);
    w.sim.set_stalled(ApiNode::Primary, true);
    w.wait_state(|s| s.phase.name() == "firing" && !s.attempts().is_empty()).await;
    for _ in 0..1200 {
        if w.sim.paused(ApiNode::Primary) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // The trap dies mid-failover (no graceful stop).
    trap.abort();
    let _ = trap.await;
    assert!(w.sim.paused(ApiNode::Primary), "the primary was paused before any resume");
    assert!(w.sim.paused(ApiNode::Backup));
    w.sim.set_api_fault(ApiNode::Backup, antelope_sim::ApiFault::None);
    // The restarted trap finishes the same failover: pause (again, harmless), then resume.
    let (trap, _stop) = w.spawn();
    let fired = w.wait_state(|s| matches!(s.phase, Phase::Fired { .. })).await;
    assert!(
        matches!(&fired.phase, Phase::Fired { target, outcome: witness_trap::trap::state::Outcome::Swapped { .. }, .. } if target == "node:bp2")
    );
    assert!(!w.sim.paused(ApiNode::Backup) && w.sim.paused(ApiNode::Primary));
    assert_eq!(w.sim.double_productions(), 0);
    let _ = tokio::time::timeout(Duration::from_secs(60), trap).await.expect("ends");
    let fired_sms = w.sms.messages().into_iter().filter(|m| m.body.starts_with("FIRED")).count();
    assert_eq!(fired_sms, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_mid_request_leaves_the_fence_to_the_chain() {
    let w = world(83, 252).await;
    let (trap, _stop) = w.spawn();
    w.wait_state(|s| s.phase.name() == "armed").await;
    // The primary's nodeos hangs on its API and stops producing; its agent dies while the pause is in flight.
    w.sim.set_api_fault(ApiNode::Primary, antelope_sim::ApiFault::Hang);
    w.sim.set_stalled(ApiNode::Primary, true);
    w.wait_state(|s| s.phase.name() == "firing").await;
    for _ in 0..3000 {
        if w.sim.producer_api_calls(ApiNode::Primary).contains_key("/v1/producer/pause") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        w.sim.producer_api_calls(ApiNode::Primary).contains_key("/v1/producer/pause"),
        "the pause reached the node before its agent was killed"
    );
    w.agents[0].cancel();
    let fired = w.wait_state(|s| matches!(s.phase, Phase::Fired { .. })).await;
    assert!(matches!(&fired.phase, Phase::Fired { target, .. } if target == "node:bp2"), "{:?}", fired.phase);
    assert!(!w.sim.paused(ApiNode::Primary), "the hung pause never took effect");
    assert!(!w.sim.paused(ApiNode::Backup), "resumed once the chain had been silent long enough");
    assert_eq!(w.sim.double_productions(), 0, "the stalled primary produces nothing");
    let _ = tokio::time::timeout(Duration::from_secs(60), trap).await.expect("ends");
}
