//! The trap's commands at the edge: read the variables, parse the configuration (every problem reported
//! before a runtime or a socket exists), build the runtime, call the service, print its outcome once, and
//! return the exit status that [`super::exit`] assigns to it.

use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Command, ExitStatus};
use crate::config::vars::Problem;
use crate::config::{self, EnvSource, Source};
use crate::logging;
use crate::service::{self, RunOptions, ServiceError};
use chain_clock::{SharedClock, SystemClock};

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
    let clock: SharedClock = Arc::new(SystemClock);
    match command {
        Command::Health => health(&src, &clock),
        Command::TestAlert => match config::load_alert(&src) {
            Err(report) => report_error(&ServiceError::Config(report)),
            Ok((identity, alerts)) => {
                with_runtime(|rt| test_alert(rt.block_on(service::test_alert(identity, alerts, clock))))
            }
        },
        Command::Agent => match config::agent::load(&src) {
            Err(report) => {
                eprint!(
                    "witness-trap: {}",
                    report.to_string().replacen("the trap will not run", "the agent will not run", 1)
                );
                ExitStatus::Config
            }
            Ok(settings) => with_runtime(|rt| rt.block_on(agent(settings, clock))),
        },
        Command::Fire { dry_run: false } => {
            eprintln!("witness-trap: `fire` only builds and prints the swap; add --dry-run. The trap fires by itself when armed with `run`.");
            ExitStatus::Usage
        }
        other => {
            let settings = match config::load(&src) {
                Ok(s) => s,
                Err(report) => return report_error(&ServiceError::Config(report)),
            };
            with_runtime(|rt| rt.block_on(settings_command(other, settings, clock)))
        }
    }
}

async fn settings_command(command: Command, settings: config::Settings, clock: SharedClock) -> ExitStatus {
    match command {
        Command::Run { exit_when_disarmed } => {
            let shutdown = CancellationToken::new();
            spawn_signal_handler(shutdown.clone());
            let result = service::run(settings, clock, shutdown, RunOptions { exit_when_disarmed }).await;
            match &result {
                Ok(service::RunOutcome::AlreadyFired { message, .. }) => eprintln!("{message}"),
                Err(e) => return report_error(e),
                Ok(_) => {}
            }
            ExitStatus::of_run(&result)
        }
        Command::Check => match service::check(settings, clock).await {
            Ok(report) => {
                print_endpoints(&report.endpoints);
                print_problems("warnings:", &report.warnings);
                if let Some(summary) = &report.summary {
                    println!("ok: {summary}");
                }
                ExitStatus::Ok
            }
            Err(failure) => {
                print_endpoints(&failure.endpoints);
                print_problems("warnings:", &failure.warnings);
                report_error(&failure.error)
            }
        },
        Command::Status => match service::status(settings, clock).await {
            Ok(report) => {
                for line in report.lines {
                    println!("{line}");
                }
                ExitStatus::Ok
            }
            Err(e) => report_error(&e),
        },
        Command::Fire { .. } => match service::dry_run(settings, clock).await {
            Ok(json) => {
                println!("{}", serde_json::to_string_pretty(&json).unwrap_or_default());
                ExitStatus::Ok
            }
            Err(e) => report_error(&e),
        },
        Command::Switch { to, when, dry_run, swap_roles } => {
            use crate::service::switch::{SwitchRequest, Target, When};
            let to = match to.trim() {
                "backup" => Target::Backup,
                "primary" => Target::Primary,
                key => Target::Key(key.to_string()),
            };
            let when = match when {
                super::WhenArg::Safe => When::Safe,
                super::WhenArg::Now => When::Now,
            };
            let shutdown = CancellationToken::new();
            spawn_signal_handler(shutdown.clone());
            let mut progress = |line: String| println!("{line}");
            let request = SwitchRequest { dry_run, swap_roles, ..SwitchRequest::new(to, when) };
            let result = service::switch(settings, request, clock, shutdown, &mut progress).await;
            print_switch(&result)
        }
        Command::Rearm => match service::rearm(settings, clock).await {
            Ok(done) => {
                print_problems("warnings:", &done.warnings);
                println!("{}", done.line);
                match &done.pagerduty {
                    Some((key, Ok(()))) => println!("pagerduty: incident {key} resolved"),
                    Some((key, Err(why))) => {
                        println!("pagerduty: could NOT resolve incident {key}: {why}; resolve it by hand")
                    }
                    None => {}
                }
                ExitStatus::Ok
            }
            Err(e) => report_error(&e),
        },
        // Dispatched before the configuration is loaded.
        Command::Agent
        | Command::Health
        | Command::TestAlert
        | Command::Key { .. }
        | Command::Tx { .. }
        | Command::Demo { .. }
        | Command::Sim { .. } => ExitStatus::Usage,
    }
}

/// `witness-trap agent`: serve until SIGTERM or SIGINT.
async fn agent(settings: config::agent::AgentSettings, clock: SharedClock) -> ExitStatus {
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());
    match crate::agent::server::run(settings, clock, shutdown).await {
        Ok(()) => ExitStatus::Ok,
        Err(e) => {
            eprintln!("witness-trap: {e}");
            ExitStatus::Failure
        }
    }
}

fn print_switch(result: &Result<service::SwitchOutcome, ServiceError>) -> ExitStatus {
    use service::{NextTurn, SwitchOutcome};
    match result {
        Ok(SwitchOutcome::DryRun(json)) => println!("{}", serde_json::to_string_pretty(json).unwrap_or_default()),
        Ok(SwitchOutcome::Cancelled) => println!("switch cancelled before the broadcast: nothing changed"),
        Ok(SwitchOutcome::Switched { next, key, trap, .. }) => {
            if !trap.is_empty() {
                println!("{trap}");
            }
            match next {
            NextTurn::Produced { at } => {
                println!("the next turn at {} was produced: the node with {key} is producing", super::super::service::run::fmt_time(*at))
            }
            NextTurn::Missed { at, before, after } => println!(
                "the next turn at {} was MISSED (misses {before} → {after}): is the node with {key} running with that key?",
                super::super::service::run::fmt_time(*at)
            ),
            NextTurn::Unknown(why) => println!("the key is switched; whether the next turn was produced is unknown: {why}"),
            }
        }
        Err(e) => return report_error(e),
    }
    ExitStatus::of_switch(result)
}

/// Build the tokio runtime (after the configuration parsed) and run `f` on it.
pub fn with_runtime(f: impl FnOnce(&tokio::runtime::Runtime) -> ExitStatus) -> ExitStatus {
    match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => f(&rt),
        Err(e) => {
            eprintln!("witness-trap: cannot start the async runtime: {e}");
            ExitStatus::Failure
        }
    }
}

/// Print a service error once, and say which exit status it is.
pub fn report_error(e: &ServiceError) -> ExitStatus {
    match e {
        ServiceError::Config(report) | ServiceError::ChainUnavailable(report) => eprint!("witness-trap: {report}"),
        other => eprintln!("witness-trap: {other}"),
    }
    ExitStatus::of_error(e)
}

fn print_endpoints(endpoints: &[crate::chain::EndpointHealth]) {
    for ep in endpoints {
        match &ep.health {
            Ok(head) => println!("endpoint {}: healthy, head block {head} ", ep.url),
            Err(reason) => println!("endpoint {}: UNHEALTHY: {reason}", ep.url),
        }
    }
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

fn test_alert(results: Vec<(&'static str, Result<(), String>)>) -> ExitStatus {
    let mut ok = true;
    for (channel, r) in results {
        match r {
            Ok(()) => println!("{channel}: delivered"),
            Err(reason) => {
                ok = false;
                println!("{channel}: NOT delivered: {reason}");
            }
        }
    }
    if ok {
        ExitStatus::Ok
    } else {
        ExitStatus::AlertFailed
    }
}

fn health(src: &dyn Source, clock: &SharedClock) -> ExitStatus {
    let (path, poll) = match config::load_health(src) {
        Ok(v) => v,
        Err(report) => return report_error(&ServiceError::Config(report)),
    };
    let h = service::health(&path, crate::chain::ChainTime::now(clock.as_ref()), poll);
    println!("{}", h.line);
    if h.healthy {
        ExitStatus::Ok
    } else {
        ExitStatus::Unhealthy
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
