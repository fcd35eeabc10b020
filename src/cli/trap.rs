//! The trap's commands: `run`, `check`, `status`, `fire --dry-run`, `rearm`, `test-alert`, `health`.
//!
//! Each loads the configuration first and reports every problem before a runtime or a socket exists;
//! then it builds a tokio runtime, talks to the chain through the producer and returns an exit status.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Command, ExitStatus};
use crate::alert::{self, Incident};
use crate::config::{self, check::CheckResult, EnvSource, Problem, Report, Settings, Source};
use crate::logging;
use crate::producer::graphene::GrapheneProducer;
use crate::producer::Producer;
use crate::trap::state::{AlertState, Outcome, Phase, TrapState};
use crate::trap::{self, RunOutcome, Trap, Trigger};
use chain_clock::{Clock, SharedClock, SystemClock};

/// Dispatch a trap command.
pub fn run_command(command: Command, env_file: Option<&Path>) -> ExitStatus {
    let src = match EnvSource::load(env_file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("witness-trap: {e}");
            return ExitStatus::Config;
        }
    };
    let (format, level) = config::log_settings(&src);
    logging::init(format, level.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("witness-trap: cannot start the async runtime: {e}");
            return ExitStatus::Failure;
        }
    };
    let clock: SharedClock = Arc::new(SystemClock);
    match command {
        Command::Health => health(&src, clock.as_ref()),
        Command::TestAlert => runtime.block_on(test_alert(&src)),
        Command::Run { exit_when_disarmed } => {
            let shutdown = CancellationToken::new();
            runtime.block_on(async {
                spawn_signal_handler(shutdown.clone());
                run(&src, clock, shutdown, exit_when_disarmed).await
            })
        }
        Command::Check => with_settings(&src, |s| runtime.block_on(check(s, clock))),
        Command::Status => with_settings(&src, |s| runtime.block_on(status(s, clock))),
        Command::Fire { dry_run } => {
            if !dry_run {
                eprintln!("witness-trap: `fire` only builds and prints the swap; add --dry-run. The trap fires by itself when armed with `run`.");
                return ExitStatus::Usage;
            }
            with_settings(&src, |s| runtime.block_on(fire_dry_run(s, clock)))
        }
        Command::Rearm => with_settings(&src, |s| runtime.block_on(rearm(s, clock))),
        Command::Key { .. } | Command::Tx { .. } | Command::Demo { .. } => ExitStatus::Usage,
    }
}

fn with_settings(src: &dyn Source, f: impl FnOnce(Settings) -> ExitStatus) -> ExitStatus {
    match config::load(src) {
        Ok(s) => f(s),
        Err(report) => config_error(&report),
    }
}

fn config_error(report: &Report) -> ExitStatus {
    eprint!("witness-trap: {report}");
    ExitStatus::Config
}

fn print_problems(title: &str, problems: &[Problem]) {
    if problems.is_empty() {
        return;
    }
    eprintln!("{title}");
    for p in problems {
        eprintln!("  {}: {}\n    fix: {}", p.var, p.message, p.fix);
    }
}

/// SIGTERM (docker stop) and SIGINT (Ctrl-C) cancel `token`; the log names the signal.
fn spawn_signal_handler(token: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
                tracing::error!("cannot install signal handlers");
                return;
            };
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "signal received");
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!(signal = "ctrl-c", "signal received");
        }
        token.cancel();
    });
}

fn log_settings(s: &Settings) {
    let p = &s.producer;
    tracing::info!(
        witness = %s.witness,
        chain = %s.chain.name,
        chain_id = %s.chain.chain_id_hex(),
        rpc_urls = %p.reader.urls.iter().map(|u| crate::rpc::client::redact(u)).collect::<Vec<_>>().join(","),
        backup_key = %p.backup_key.to_text(&s.chain.key_prefix),
        signing_wif = if p.signing_key.is_some() { "set" } else { "not set" },
        active_wif = if p.active_key.is_some() { "set" } else { "not set" },
        trigger = ?s.trap.trigger,
        poll_interval_secs = s.trap.poll_interval.as_secs(),
        state_file = %s.trap.state_file.display(),
        sms_recipients = s.trap.alert.as_ref().map_or(0, |a| a.to.len()),
        "settings"
    );
}

fn producer(s: Settings, clock: SharedClock) -> Result<(GrapheneProducer, crate::trap::TrapSettings), ExitStatus> {
    let trap = s.trap;
    match GrapheneProducer::new(s.producer, clock) {
        Ok(p) => Ok((p, trap)),
        Err(e) => {
            eprintln!("witness-trap: {e}");
            Err(ExitStatus::Failure)
        }
    }
}

/// `run`: the product.
pub async fn run(
    src: &dyn Source,
    clock: SharedClock,
    shutdown: CancellationToken,
    exit_when_disarmed: bool,
) -> ExitStatus {
    let settings = match config::load(src) {
        Ok(s) => s,
        Err(report) => return config_error(&report),
    };
    log_settings(&settings);
    let lock = match crate::persist::lock(&settings.trap.state_file) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("witness-trap: {e}; stop it first");
            return ExitStatus::Failure;
        }
    };
    let existing = match TrapState::load(&settings.trap.state_file, &settings.witness, &settings.chain.name) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("witness-trap: {e}");
            return ExitStatus::Failure;
        }
    };
    let trigger = settings.trap.trigger;
    let (mut producer, trap_settings) = match producer(settings, clock.clone()) {
        Ok(p) => p,
        Err(s) => return s,
    };
    let phase = existing.as_ref().map(|s| s.phase.name());
    let mut baseline = None;
    match phase {
        // A fired trap neither polls nor signs; a firing one must finish whatever the keys say now.
        Some("fired") | Some("firing") => {}
        _ => {
            let arming = existing.is_none();
            let mut result = config::check::check(&mut producer, trigger, arming).await;
            if !arming {
                // Resuming an armed trap: an endpoint problem (one node down, on another chain, or failing to
                // answer a check) is a warning; the reader skips such endpoints and the trap keeps watching.
                let (endpoint, other): (Vec<_>, Vec<_>) =
                    result.errors.drain(..).partition(|p| p.var == crate::config::vars::RPC_URLS);
                result.warnings.extend(endpoint);
                result.errors = other;
            }
            print_problems("warnings:", &result.warnings);
            match (&result.snapshot, arming) {
                (None, true) => {
                    print_problems("cannot arm:", &result.errors);
                    return if result.chain_unreachable() { ExitStatus::ChainUnavailable } else { ExitStatus::Config };
                }
                (None, false) => tracing::warn!("the chain cannot be read now; resuming the armed trap blind"),
                (Some(_), _) if !result.errors.is_empty() => {
                    eprint!("witness-trap: {}", Report { problems: result.errors.clone() });
                    return ExitStatus::Config;
                }
                (Some(snap), _) => baseline = Some(snap.witness.total_missed),
            }
        }
    }
    let mut trap = match Trap::open(trap_settings, producer, clock, baseline) {
        Ok(t) => t,
        Err(e @ crate::trap::TrapError::State(_)) => {
            eprintln!("witness-trap: {e}");
            return ExitStatus::Failure;
        }
        Err(e) => {
            eprintln!("witness-trap: {e}");
            return ExitStatus::Config;
        }
    };
    tracing::info!(
        state = trap.state().phase.name(),
        threshold = trap.threshold(),
        baseline_missed = trap.state().baseline_missed,
        "trap ready"
    );
    match trap::run(&mut trap, shutdown.clone()).await {
        Ok(RunOutcome::Stopped) => ExitStatus::Ok,
        Ok(RunOutcome::Fired(f)) => finish_status(f.swapped(), f.alert_ok()),
        Ok(RunOutcome::AlreadyFired(_)) => {
            let msg = disarmed_message(trap.state());
            eprintln!("{msg}");
            tracing::warn!("{msg}");
            if !exit_when_disarmed {
                // Stay up, idle: under `restart: unless-stopped` an exiting container would be restarted
                // over and over; an idle one is restarted after a reboot and still never fires again.
                // The lock is released so `rearm` can run beside the idle process.
                drop(lock);
                shutdown.cancelled().await;
            }
            ExitStatus::Ok
        }
        Err(e) => {
            eprintln!("witness-trap: {e}");
            ExitStatus::Failure
        }
    }
}

fn finish_status(swapped: bool, alert_ok: bool) -> ExitStatus {
    match (swapped, alert_ok) {
        (true, true) => ExitStatus::Ok,
        (true, false) => ExitStatus::AlertFailed,
        (false, _) => ExitStatus::SwapFailed,
    }
}

fn format_time(secs: u64) -> String {
    graphene_protocol::transaction::TimePointSec(u32::try_from(secs).unwrap_or(u32::MAX)).to_string() + "Z"
}

/// What a fired trap says at start.
pub fn disarmed_message(state: &TrapState) -> String {
    match &state.phase {
        Phase::Fired { fired_at, outcome, target, .. } => {
            let what = match outcome {
                Outcome::Swapped { txid } => format!(
                    "swapped the signing key to {target} (txid {})",
                    txid.as_deref().unwrap_or("none: the key was already in place")
                ),
                Outcome::Failed { reason } => format!("tried to swap the signing key to {target} and FAILED: {reason}"),
            };
            format!(
                "The trap is disarmed: it fired at {} and {what}. It will not poll or sign again. \
                 Fix the primary node, then re-arm with `witness-trap rearm`.",
                format_time(*fired_at)
            )
        }
        other => format!("the trap is {}", other.name()),
    }
}

async fn check(s: Settings, clock: SharedClock) -> ExitStatus {
    log_settings(&s);
    let state = TrapState::load(&s.trap.state_file, &s.witness, &s.chain.name);
    let arming = !matches!(state, Ok(Some(_)));
    let trigger = s.trap.trigger;
    let (mut producer, _) = match producer(s, clock) {
        Ok(p) => p,
        Err(st) => return st,
    };
    let result: CheckResult = config::check::check(&mut producer, trigger, arming).await;
    for ep in producer.last_poll().fresh.iter() {
        println!("endpoint {}: healthy, head block {} ", ep.url, ep.head_block_number);
    }
    for skip in producer.last_poll().skipped.iter() {
        println!("endpoint {}: UNHEALTHY: {}", skip.url, skip.reason);
    }
    print_problems("warnings:", &result.warnings);
    if !result.errors.is_empty() {
        eprint!("witness-trap: {}", Report { problems: result.errors.clone() });
        return if result.chain_unreachable() { ExitStatus::ChainUnavailable } else { ExitStatus::Config };
    }
    if let Some(snap) = &result.snapshot {
        println!(
            "ok: @{} on-chain key {}, total_missed {}; the trap can sign the swap to {}",
            snap.witness.owner,
            snap.witness.signing_key,
            snap.witness.total_missed,
            producer.target()
        );
    }
    ExitStatus::Ok
}

async fn status(s: Settings, clock: SharedClock) -> ExitStatus {
    let state = match TrapState::load(&s.trap.state_file, &s.witness, &s.chain.name) {
        Ok(st) => st,
        Err(e) => {
            eprintln!("witness-trap: {e}");
            return ExitStatus::Failure;
        }
    };
    let trigger = s.trap.trigger;
    let witness = s.witness.clone();
    let chain = s.chain.name.clone();
    let (mut producer, _) = match producer(s, clock) {
        Ok(p) => p,
        Err(st) => return st,
    };
    println!("witness:    @{witness}");
    println!("chain:      {chain}");
    println!("backup key: {}", producer.target());
    match producer.observe().await {
        crate::producer::Observation::Reading(r) => {
            println!("on-chain key: {}", r.current_key);
            println!("total_missed: {} (block {}, from {})", r.missed, r.height, r.source);
        }
        crate::producer::Observation::Blind(reason) => println!("chain: UNREADABLE: {reason}"),
    }
    match &state {
        None => println!("state:      not armed yet (no state file)"),
        Some(st) => {
            let threshold = trigger.threshold(st.baseline_missed);
            println!("state:      {}", st.phase.name());
            println!(
                "threshold:  fires at total_missed {threshold} (baseline {} at arming, {})",
                st.baseline_missed,
                format_time(st.armed_at)
            );
            if let Some(p) = &st.last_poll {
                println!(
                    "last poll:  {} {} {}",
                    format_time(p.at),
                    if p.healthy { "healthy" } else { "BLIND" },
                    p.note
                );
            }
            if matches!(st.phase, Phase::Fired { .. }) {
                println!("{}", disarmed_message(st));
            }
        }
    }
    if let Trigger::Absolute(t) = trigger {
        tracing::debug!(threshold = t, "absolute threshold");
    }
    ExitStatus::Ok
}

async fn fire_dry_run(s: Settings, clock: SharedClock) -> ExitStatus {
    let (mut producer, _) = match producer(s, clock) {
        Ok(p) => p,
        Err(st) => return st,
    };
    let (snap, _) = producer.preflight().await;
    let Some(snap) = snap else {
        eprintln!("witness-trap: no endpoint gave a fresh reading; nothing built");
        return ExitStatus::ChainUnavailable;
    };
    match producer.build_swap(&snap) {
        Ok(swap) => {
            let out = serde_json::json!({
                "broadcast": false,
                "action": swap.action,
                "txid": swap.id,
                "expires_at": format_time(swap.expires_at),
                "transaction": swap.payload,
            });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            ExitStatus::Ok
        }
        Err(e) => {
            eprintln!("witness-trap: cannot build the swap: {e}");
            ExitStatus::Config
        }
    }
}

async fn rearm(s: Settings, clock: SharedClock) -> ExitStatus {
    let witness = s.witness.clone();
    let chain = s.chain.name.clone();
    let trigger = s.trap.trigger;
    let (mut producer, trap_settings) = match producer(s, clock.clone()) {
        Ok(p) => p,
        Err(st) => return st,
    };
    let _lock = match crate::persist::lock(&trap_settings.state_file) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("witness-trap: {e}; stop the running trap first (`docker compose stop`), then re-arm");
            return ExitStatus::Failure;
        }
    };
    let result = config::check::check(&mut producer, trigger, true).await;
    print_problems("warnings:", &result.warnings);
    let Some(snap) = result.snapshot.clone() else {
        print_problems("cannot re-arm:", &result.errors);
        return if result.chain_unreachable() { ExitStatus::ChainUnavailable } else { ExitStatus::Config };
    };
    if !result.errors.is_empty() {
        eprint!("witness-trap: refusing to re-arm: {}", Report { problems: result.errors });
        return ExitStatus::Config;
    }
    let previous = TrapState::load_any(&trap_settings.state_file).ok().flatten();
    match trap::rearm(&trap_settings, &witness, &chain, clock.now_secs(), snap.witness.total_missed) {
        Ok(st) => {
            println!(
                "re-armed: @{witness} on {chain}, total_missed {} now, fires at {} (was: {})",
                st.baseline_missed,
                trigger.threshold(st.baseline_missed),
                previous.map_or("no state".to_string(), |p| p.phase.name().to_string())
            );
            ExitStatus::Ok
        }
        Err(e) => {
            eprintln!("witness-trap: {e}");
            ExitStatus::Config
        }
    }
}

async fn test_alert(src: &dyn Source) -> ExitStatus {
    let (witness, chain, twilio) = match config::load_alert(src) {
        Ok(v) => v,
        Err(report) => return config_error(&report),
    };
    let body = Incident::Test { witness, chain: chain.name }.sms_text();
    let results = alert::twilio::send_sms(&twilio, &body, &SystemClock).await;
    let mut ok = true;
    for (to, r) in twilio.to.iter().zip(results) {
        match r {
            Ok(()) => println!("sent to {to}"),
            Err(e) => {
                ok = false;
                eprintln!("witness-trap: {e}");
            }
        }
    }
    if ok {
        ExitStatus::Ok
    } else {
        ExitStatus::AlertFailed
    }
}

/// `health`: reads only the state file, so it is fast and needs no network.
fn health(src: &dyn Source, clock: &dyn Clock) -> ExitStatus {
    let (path, poll) = match config::load_health(src) {
        Ok(v) => v,
        Err(report) => return config_error(&report),
    };
    let state = match TrapState::load_any(&path) {
        Ok(Some(s)) => s,
        Ok(None) => {
            println!("unhealthy: no state file at {} (not armed yet)", path.display());
            return ExitStatus::Unhealthy;
        }
        Err(e) => {
            println!("unhealthy: {e}");
            return ExitStatus::Unhealthy;
        }
    };
    let (healthy, line) = health_of(&state, clock.now_secs(), poll);
    println!("{line}");
    if healthy {
        ExitStatus::Ok
    } else {
        ExitStatus::Unhealthy
    }
}

/// The health verdict for a state at `now`: armed with a recent healthy poll, or firing.
pub fn health_of(state: &TrapState, now: u64, poll_interval: Duration) -> (bool, String) {
    // Three missed polls (at least 90 s) before calling the trap stuck.
    let limit = (poll_interval.as_secs() * 3).max(90);
    match &state.phase {
        Phase::Firing { .. } => (true, "firing: the key swap is in progress".into()),
        Phase::Fired { alert, .. } => {
            let alert = match alert {
                AlertState::Failed { .. } => " (the SMS was NOT delivered)",
                _ => "",
            };
            (false, format!("disarmed: {}{alert}", disarmed_message(state)))
        }
        Phase::Armed => match &state.last_poll {
            None if now.saturating_sub(state.armed_at) <= limit => (true, "armed: starting".into()),
            None => (false, "armed but no poll recorded".into()),
            Some(p) if now.saturating_sub(p.at) > limit => {
                (false, format!("armed but the last poll was {} s ago", now.saturating_sub(p.at)))
            }
            Some(p) if !p.healthy => (false, format!("armed but BLIND: {}", p.note)),
            Some(p) => {
                (true, format!("armed: total_missed {} at block {}", p.missed.unwrap_or(0), p.height.unwrap_or(0)))
            }
        },
    }
}
