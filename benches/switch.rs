//! The planned-switch benchmark (issue 19): missed blocks over many `witness-trap switch` runs at
//! `--when safe` against `--when now`.
//!
//! Each switch starts a fresh simulated Hive chain (new seed, so a new schedule; two endpoints; 3 s blocks;
//! the witness's nodes see a key change one block late, as on a real network) on a time-compressed clock,
//! waits a random part of a round (so `now` falls anywhere in the schedule), runs the real
//! `service::switch` to the backup key, and reads from the chain how many of the witness's blocks were
//! missed from the start of the switch to its next turn after the swap. Nothing is asserted; the figures
//! are printed.
//!
//! With `--chain antelope` the same runs on the simulated nodeos (EOS, 21 producers, 12-block turns, the key
//! reaching the active schedule through a proposal one to two rounds later); the misses counted are the
//! producer's slots missed from the start of the switch to its first turn under the new schedule.
//!
//! Knobs: `SWITCH_RUNS` / `--runs N` switches per mode (default 100), `SWITCH_CONCURRENCY` /
//! `--concurrency N` in flight (default 20), `SWITCH_SPEEDUP` / `--speedup X` (default 20),
//! `SWITCH_CHAIN` / `--chain hive|antelope` (default hive).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chain_clock::{Clock, ScaledClock, SharedClock};
use graphene_protocol::chain::ChainSpec;
use graphene_protocol::keys::PrivateKey;
use graphene_sim::{SimConfig, SimNode};
use tokio_util::sync::CancellationToken;
use witness_trap::config::{vars as v, VarMap};
use witness_trap::service::switch::{SwitchRequest, Target, When};
use witness_trap::service::{NextTurn, SwitchOutcome};

/// What the switch said of the producer's next turn.
fn verdict(outcome: SwitchOutcome) -> String {
    match outcome {
        SwitchOutcome::Switched { next: NextTurn::Produced { .. }, .. } => "produced".to_string(),
        SwitchOutcome::Switched { next: NextTurn::Missed { .. }, .. } => "missed".to_string(),
        other => format!("{other:?}"),
    }
}

fn knob(name: &str, flag: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .or_else(|| std::env::var(name).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// One switch: (blocks the witness missed, the outcome's verdict on its next turn).
async fn one(seed: u64, when: When, speedup: f64) -> Result<(u64, String), String> {
    let (primary, backup, active) = (PrivateKey::generate(), PrivateKey::generate(), PrivateKey::generate());
    let clock: SharedClock = Arc::new(ScaledClock::starting_now(speedup));
    let mut cfg =
        SimConfig::new(ChainSpec::hive(), "alice", primary.public_key(), backup.public_key(), active.public_key());
    cfg.clock = Some(clock.clone());
    cfg.endpoints = 2;
    cfg.seed = seed;
    cfg.key_view_lag = 1;
    let sim = SimNode::start(cfg).await.map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let vars: HashMap<String, String> = VarMap::graphene(
        "alice",
        &ChainSpec::hive(),
        &sim.urls(),
        &backup.public_key(),
        &primary.to_wif(),
        &dir.path().join("state.json"),
    )
    .with(v::MISSED_BLOCKS_ALLOWED, 1)
    .with_twilio("http://127.0.0.1:9", "AC0123456789abcdef", "token-0123456789", "+15005550006", "+14155550123")
    .into_map();
    // A few blocks for TaPoS, then a random point of the round.
    let phase = 9 + seed.wrapping_mul(2654435761) % 63;
    clock.sleep(Duration::from_secs(phase)).await;
    let before = sim.witness().total_missed;
    let settings = witness_trap::config::load(&vars).map_err(|r| r.to_string())?;
    let mut quiet = |_line: String| {};
    let request = SwitchRequest::new(Target::Backup, when);
    let outcome = witness_trap::service::switch(settings, request, clock.clone(), CancellationToken::new(), &mut quiet)
        .await
        .map_err(|e| e.to_string())?;
    let verdict = verdict(outcome);
    Ok((u64::from(sim.witness().total_missed - before), verdict))
}

/// One switch on the simulated nodeos: (slots the producer missed, the verdict on its next turn).
async fn one_antelope(seed: u64, when: When, speedup: f64) -> Result<(u64, String), String> {
    use antelope_protocol::keys::PrivateKey as AKey;
    let keys = [AKey::generate(), AKey::generate(), AKey::generate(), AKey::generate()];
    let clock: SharedClock = Arc::new(ScaledClock::starting_now(speedup));
    let eos = antelope_protocol::chain::network("eos").ok_or("no eos network")?;
    let mut cfg = antelope_sim::SimConfig::new(
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
    let sim = antelope_sim::SimNode::start(cfg).await.map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let vars: HashMap<String, String> = VarMap::antelope(
        "eos",
        "alice",
        &sim.urls(),
        &keys[1].public_key(),
        &keys[3].to_wif(),
        &dir.path().join("state.json"),
    )
    .with(v::MISSED_BLOCKS_ALLOWED, 2)
    .with_twilio("http://127.0.0.1:9", "AC0123456789abcdef", "token-0123456789", "+15005550006", "+14155550123")
    .into_map();
    // A random point of the 126 s round.
    let phase = 3 + seed.wrapping_mul(2654435761) % 126;
    clock.sleep(Duration::from_secs(phase)).await;
    let seq = sim.last_seq();
    let settings = witness_trap::config::load(&vars).map_err(|r| r.to_string())?;
    let mut quiet = |_line: String| {};
    let request = SwitchRequest::new(Target::Backup, when);
    let outcome = witness_trap::service::switch(settings, request, clock.clone(), CancellationToken::new(), &mut quiet)
        .await
        .map_err(|e| e.to_string())?;
    let verdict = verdict(outcome);
    let missed = sim
        .events()
        .iter()
        .filter(|r| r.seq > seq)
        .filter(|r| matches!(&r.event, antelope_sim::SimEvent::SlotMissed { producer, .. } if producer == "alice"))
        .count() as u64;
    Ok((missed, verdict))
}

async fn mode(when: When, runs: u64, concurrency: usize, speedup: f64, antelope: bool) -> (u64, u64, u64, Vec<String>) {
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut set = tokio::task::JoinSet::new();
    for seed in 0..runs {
        let sem = sem.clone();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            if antelope {
                one_antelope(1000 + seed, when, speedup).await
            } else {
                one(1000 + seed, when, speedup).await
            }
        });
    }
    let (mut missed, mut switches_with_miss, mut done, mut errors) = (0, 0, 0, Vec::new());
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok((m, _verdict))) => {
                done += 1;
                missed += m;
                switches_with_miss += u64::from(m > 0);
            }
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(e.to_string()),
        }
    }
    (done, missed, switches_with_miss, errors)
}

fn main() {
    let runs = knob("SWITCH_RUNS", "--runs", 100.0) as u64;
    let concurrency = knob("SWITCH_CONCURRENCY", "--concurrency", 20.0) as usize;
    let speedup = knob("SWITCH_SPEEDUP", "--speedup", 20.0);
    let args: Vec<String> = std::env::args().collect();
    let chain = args
        .iter()
        .position(|a| a == "--chain")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var("SWITCH_CHAIN").ok())
        .unwrap_or_else(|| "hive".into());
    let antelope = chain == "antelope";
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return;
        }
    };
    let wall = chain_clock::SystemClock;
    let start = wall.now();
    if antelope {
        println!("planned switches on the simulated EOS chain (21 producers, 12-block turns, the schedule's latency)");
    } else {
        println!("planned switches on the simulated Hive chain (21 witnesses, 3 s blocks, key seen one block late)");
    }
    println!("{runs} switches per mode, {concurrency} in flight, {speedup}× real time");
    println!("| --when | switches | missed blocks | switches with a miss |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, when) in [("safe", When::Safe), ("now", When::Now)] {
        let (done, missed, with_miss, errors) = rt.block_on(mode(when, runs, concurrency, speedup, antelope));
        println!("| {name} | {done} | {missed} | {with_miss} |");
        for e in errors.iter().take(3) {
            println!("  error ({name}): {e}");
        }
    }
    println!("({} s of wall time)", wall.now().saturating_sub(start).as_secs());
}
