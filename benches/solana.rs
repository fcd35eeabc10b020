//! The Solana failover benchmark (issue 18, item 6): slots from the primary's last vote to the backup's
//! first vote, with and without a reachable primary agent, and the trap's RPC calls per hour.
//!
//! Every run builds a fresh [`Stage`] (the simulated cluster of `solana-sim`: three RPC endpoints, 400 ms
//! slots on a time-compressed clock, two validators, the real `solana-admin` agent beside each), arms the
//! real trap (`service::run`, `CHAIN=solana`) at its defaults (MAX_VOTE_LAG_SLOTS, CONFIRMATIONS,
//! POLL_INTERVAL_SECS and TOWER_SAFE_SLOTS untouched), waits a random number of slots (so the failure falls
//! anywhere in the 10 s poll cycle) and fails the primary in one of two ways:
//! * "primary agent reachable": the validator hangs (alive, still holding the staked identity); the trap
//!   demotes it through its agent and moves the tower to the backup, which may vote at once;
//! * "primary host gone": validator and agent gone; the trap promotes the backup without the tower, only
//!   once the cluster has seen no vote for TOWER_SAFE_SLOTS.
//!
//! Everything is read from the cluster (the vote account's last vote, the backup's first vote with the
//! staked identity, the checker's safety violations) and from the trap's state file (the slot at which it
//! was first seen firing), never from wall-clock timings. A safety violation, a run that does not finish or
//! a trap that does not swap makes the bench exit non-zero.
//!
//! A last part arms the trap against a healthy voting validator for a stretch of chain time and counts the
//! JSON-RPC requests the simulated endpoints answered (only the trap calls them), scaled to one hour.
//!
//! Run: `cargo bench --bench solana` (about 3 minutes at the defaults). Knobs (arguments after `--`, or
//! environment variables): `SOLANA_RUNS` / `--runs N` runs per case (default 5), `SOLANA_SPEEDUP` /
//! `--speedup X` chain seconds per wall second (default 20: a slot every 20 ms), `SOLANA_WATCH_MINUTES` /
//! `--watch-minutes M` chain minutes of the RPC count (default 30; 0 skips it).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use graphene_sim::SmsSink;
use rand::Rng;
use secrecy::SecretString;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use witness_trap::config::{solana::DEFAULT_POLL_INTERVAL_SECS, vars};
use witness_trap::demo_solana::stage::{Stage, StageOptions, NODES};
use witness_trap::service::{self, RunOptions, RunOutcome, ServiceError};
use witness_trap::trap::state as trap_state;

const SID: &str = "ACbench000000000000000000000000000";
const TOKEN: &str = "bench-token-0123456789";
const SLOT_MS: u64 = 400;
/// Slots a failover may take before the run is declared stuck (one takes 200 to 300).
const FAILOVER_SLOTS: u64 = 3_000;
/// Slots watched after the backup's first vote, so a late violation (two holders) is still seen.
const AFTER_SLOTS: u64 = 40;

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

#[derive(Debug, Clone, Copy)]
enum Case {
    AgentReachable,
    HostGone,
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::AgentReachable => "primary agent reachable: demote + tower",
            Case::HostGone => "primary host gone: TOWER_SAFE_SLOTS wait",
        }
    }
}

/// A stage with the trap armed on it.
struct Armed {
    stage: Stage,
    _sms: SmsSink,
    state_file: PathBuf,
    trap: JoinHandle<Result<RunOutcome, ServiceError>>,
    shutdown: CancellationToken,
    speedup: f64,
}

impl Armed {
    /// Real time for `slots` slots at this speed, doubled, and never under 30 s: a loaded machine must not
    /// turn a slow run into a failed one.
    fn limit(&self, slots: u64) -> Duration {
        let real = Duration::from_millis(SLOT_MS * slots).div_f64(self.speedup);
        (real * 2).max(Duration::from_secs(30))
    }

    fn phase(&self) -> Option<String> {
        trap_state::read_file(&self.state_file).ok().flatten().map(|s| s.phase.name().to_string())
    }

    /// Poll `done` every 10 ms until it holds, or fail after `limit` of real time.
    async fn wait(&self, what: &str, limit: Duration, mut done: impl FnMut(&Self) -> bool) -> Result<(), String> {
        let until = Instant::now() + limit;
        while !done(self) {
            if Instant::now() > until {
                return Err(format!("{what}: not within {} s (trap state {:?})", limit.as_secs(), self.phase()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    async fn for_slots(&self, slots: u64) -> Result<(), String> {
        let target = self.stage.cluster.slot() + slots;
        self.wait("slots passing", self.limit(slots), |a| a.stage.cluster.slot() >= target).await
    }
}

/// A fresh stage and the real trap armed on it, with a fake Twilio as its one alert channel (the
/// configuration requires one).
async fn arm(speedup: f64) -> Result<Armed, String> {
    let stage = Stage::start(StageOptions { speedup, ..Default::default() }).await?;
    let sms = SmsSink::start(SID, SecretString::from(TOKEN.to_string())).await.map_err(|e| e.to_string())?;
    let state_file = stage.dir.join("state.json");
    let vars = stage.vars(&state_file).with_twilio(sms.url(), SID, TOKEN, "+15005550006", "+14155550123");
    let settings = witness_trap::config::load(&vars).map_err(|r| r.to_string())?;
    let shutdown = CancellationToken::new();
    let (clock, stop) = (stage.clock.clone(), shutdown.clone());
    let options = RunOptions { exit_when_disarmed: true };
    let trap = tokio::spawn(async move { service::run(settings, clock, stop, options).await });
    let armed = Armed { stage, _sms: sms, state_file, trap, shutdown, speedup };
    let limit = armed.limit(500);
    armed.wait("arming", limit, |a| a.phase().as_deref() == Some("armed")).await?;
    Ok(armed)
}

/// One failover's figures, in slots after the primary's last vote.
struct Failover {
    fire_began: u64,
    first_vote: u64,
    violations: usize,
}

async fn failover(case: Case, speedup: f64) -> Result<Failover, String> {
    let mut a = arm(speedup).await?;
    let result = failover_on(&mut a, case).await;
    a.shutdown.cancel();
    result
}

async fn failover_on(a: &mut Armed, case: Case) -> Result<Failover, String> {
    // A random point of the 25-slot poll cycle (and beyond: the trap has polled a few times).
    let pause = rand::thread_rng().gen_range(5..60);
    a.for_slots(pause).await?;
    let at = a.stage.cluster.slot();
    match case {
        Case::AgentReachable => a.stage.validators[0].stall(true),
        Case::HostGone => {
            a.stage.stop_agent(0);
            a.stage.validators[0].crash();
        }
    }
    // A vote already under way may still land; none can after a few slots (the backup needs 128 + more).
    a.for_slots(5).await?;
    let last = a.stage.cluster.last_vote().ok_or("the primary never voted")?;
    let mut fire_began = None;
    let limit = a.limit(FAILOVER_SLOTS);
    a.wait("the backup's first vote", limit, |a| {
        if fire_began.is_none() && matches!(a.phase().as_deref(), Some("firing" | "fired")) {
            fire_began = Some(a.stage.cluster.slot());
        }
        a.stage.cluster.first_vote_after(NODES[1], at).is_some() || a.trap.is_finished() && fire_began.is_none()
    })
    .await?;
    let first = a.stage.cluster.first_vote_after(NODES[1], at);
    // With exit_when_disarmed the trap returns once the fire is done (alerts sent).
    let outcome = tokio::time::timeout(a.limit(FAILOVER_SLOTS), &mut a.trap)
        .await
        .map_err(|_| "the trap did not finish after firing".to_string())?
        .map_err(|e| format!("the trap panicked: {e}"))?;
    match outcome {
        Ok(RunOutcome::Fired(f)) if f.swapped() => {}
        Ok(RunOutcome::Fired(f)) => return Err(format!("fired without a swap: {:?}", f.outcome)),
        Ok(other) => return Err(format!("the trap returned {other:?}")),
        Err(e) => return Err(format!("the trap failed: {e}")),
    }
    let first = first.ok_or("the trap finished but the backup never voted")?;
    a.for_slots(AFTER_SLOTS).await?;
    let violations = a.stage.cluster.violations();
    for v in &violations {
        eprintln!("  !!! {} slot {}: {:?}: {}", case.name(), v.slot, v.kind, v.detail);
    }
    Ok(Failover {
        fire_began: fire_began.unwrap_or(first).saturating_sub(last),
        first_vote: first.saturating_sub(last),
        violations: violations.len(),
    })
}

/// The trap's RPC calls over `minutes` chain minutes, armed and healthy: (calls per endpoint, chain seconds).
async fn watch(speedup: f64, minutes: u64) -> Result<(Vec<u64>, f64), String> {
    let mut a = arm(speedup).await?;
    let result = watch_on(&mut a, minutes).await;
    a.shutdown.cancel();
    result
}

async fn watch_on(a: &mut Armed, minutes: u64) -> Result<(Vec<u64>, f64), String> {
    // Counted from arming on, so the pre-arming checks are not in the figure.
    let calls = |a: &Armed| a.stage.endpoints.iter().map(|e| e.calls()).collect::<Vec<_>>();
    let (before, t0) = (calls(a), a.stage.clock.now());
    let stretch = Duration::from_secs(minutes * 60);
    tokio::select! {
        done = &mut a.trap => return Err(format!("the trap stopped while healthy: {done:?}")),
        () = a.stage.clock.sleep(stretch) => {}
    }
    let (after, t1) = (calls(a), a.stage.clock.now());
    if a.phase().as_deref() != Some("armed") {
        return Err(format!("the trap left armed on a healthy validator: {:?}", a.phase()));
    }
    let violations = a.stage.cluster.violations();
    if !violations.is_empty() {
        return Err(format!("safety violations while healthy: {violations:?}"));
    }
    let per_endpoint = after.iter().zip(&before).map(|(x, y)| x - y).collect();
    Ok((per_endpoint, t1.saturating_sub(t0).as_secs_f64()))
}

fn min_median_max(mut xs: Vec<u64>) -> (u64, u64, u64) {
    xs.sort_unstable();
    (xs[0], xs[xs.len() / 2], xs[xs.len() - 1])
}

fn secs(slots: u64) -> f64 {
    (slots * SLOT_MS) as f64 / 1000.0
}

fn main() -> ExitCode {
    let runs = (knob("SOLANA_RUNS", "--runs", 5.0) as usize).max(1);
    let speedup = knob("SOLANA_SPEEDUP", "--speedup", 20.0);
    let watch_minutes = knob("SOLANA_WATCH_MINUTES", "--watch-minutes", 30.0) as u64;
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let start = Instant::now();
    let mut failed = false;
    println!(
        "Solana failover on the simulated cluster (3 endpoints, {SLOT_MS} ms slots, {speedup}× real time); the trap \
         at its defaults: MAX_VOTE_LAG_SLOTS={}, CONFIRMATIONS={}, POLL_INTERVAL_SECS={DEFAULT_POLL_INTERVAL_SECS}, \
         TOWER_SAFE_SLOTS={}",
        vars::DEFAULT_MAX_VOTE_LAG_SLOTS,
        vars::DEFAULT_CONFIRMATIONS,
        vars::DEFAULT_TOWER_SAFE_SLOTS
    );
    println!("{runs} runs per case; slots counted from the primary's last vote");
    println!(
        "| case | runs | to the backup's first vote, slots min / median / max | seconds | fire began, slots \
         min / median / max | safety violations |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for case in [Case::AgentReachable, Case::HostGone] {
        let (mut done, mut errors) = (Vec::new(), Vec::new());
        // One run at a time: the cluster's timing is what is measured, and the machine is small.
        for _ in 0..runs {
            match rt.block_on(failover(case, speedup)) {
                Ok(f) => done.push(f),
                Err(e) => errors.push(e),
            }
        }
        let violations: usize = done.iter().map(|f| f.violations).sum();
        if done.is_empty() {
            println!("| {} | 0 | – | – | – | – |", case.name());
        } else {
            let (lo, mid, hi) = min_median_max(done.iter().map(|f| f.first_vote).collect());
            let (f_lo, f_mid, f_hi) = min_median_max(done.iter().map(|f| f.fire_began).collect());
            println!(
                "| {} | {} | {lo} / {mid} / {hi} | {:.1} / {:.1} / {:.1} | {f_lo} / {f_mid} / {f_hi} | {violations} |",
                case.name(),
                done.len(),
                secs(lo),
                secs(mid),
                secs(hi)
            );
        }
        for e in &errors {
            println!("  run failed ({}): {e}", case.name());
        }
        failed |= !errors.is_empty() || violations > 0;
    }
    if watch_minutes > 0 {
        println!();
        println!("RPC calls of the armed trap, healthy validator, over {watch_minutes} chain minutes");
        match rt.block_on(watch(speedup, watch_minutes)) {
            Ok((calls, chain_secs)) => {
                let per_hour = |n: u64| n as f64 * 3600.0 / chain_secs;
                let total: u64 = calls.iter().sum();
                println!("| endpoint | calls | per hour |");
                println!("| --- | ---: | ---: |");
                for (i, n) in calls.iter().enumerate() {
                    println!("| {} | {n} | {:.0} |", i + 1, per_hour(*n));
                }
                println!("| total | {total} | {:.0} |", per_hour(total));
                let polls = chain_secs / DEFAULT_POLL_INTERVAL_SECS as f64;
                println!("({:.1} calls per {DEFAULT_POLL_INTERVAL_SECS} s poll)", total as f64 / polls);
            }
            Err(e) => {
                println!("  watch failed: {e}");
                failed = true;
            }
        }
    }
    println!("({} s of wall time)", start.elapsed().as_secs());
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
