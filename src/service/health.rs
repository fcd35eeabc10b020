//! `health`: is the trap armed and polling well? Reads only the state and this instance's last poll, so it
//! is fast and needs no network (docker's HEALTHCHECK runs it every 30 s).

use std::path::Path;
use std::time::Duration;

use crate::alert::Delivery;
use crate::chain::ChainTime;
use crate::trap::state::{read_file, read_instance_file, AnyState, InstanceFacts, Phase};

use super::run::disarmed_message;

/// The verdict and the line that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub healthy: bool,
    pub line: String,
}

/// The health of the trap whose state is in `state_file`, at `now`.
pub fn health(state_file: &Path, now: ChainTime, poll_interval: Duration) -> Health {
    match read_file(state_file) {
        Ok(Some(state)) => {
            let facts = read_instance_file(state_file);
            let (healthy, line) = health_of(&state, &facts, now, poll_interval);
            Health { healthy, line }
        }
        Ok(None) => {
            // No state yet, but this instance may know why (a replica that cannot reach etcd).
            let why = read_instance_file(state_file).last_poll.map(|p| p.problems).unwrap_or_default();
            let line = match why.is_empty() {
                true => format!("unhealthy: no state file at {} (not armed yet)", state_file.display()),
                false => format!("unhealthy: not armed: {}", why.join("; ")),
            };
            Health { healthy: false, line }
        }
        Err(e) => Health { healthy: false, line: format!("unhealthy: {e}") },
    }
}

/// The health verdict for a state at `now`: armed with a recent healthy poll, or firing.
pub fn health_of(state: &AnyState, facts: &InstanceFacts, now: ChainTime, poll_interval: Duration) -> (bool, String) {
    // Three missed polls (at least 90 s) before calling the trap stuck.
    let limit = (poll_interval * 3).max(Duration::from_secs(90));
    match &state.phase {
        Phase::Firing { .. } => (true, "firing: the key swap is in progress".into()),
        Phase::Fired { alerts, .. } => {
            let failed: Vec<&str> = alerts
                .iter()
                .filter(|(_, d)| matches!(d, Delivery::Failed { .. }))
                .map(|(name, _)| name.as_str())
                .collect();
            let alert = if failed.is_empty() {
                String::new()
            } else {
                format!(" (the alert was NOT delivered by {})", failed.join(", "))
            };
            (false, format!("disarmed: {}{alert}", disarmed_message(state)))
        }
        Phase::Switched { .. } => (false, format!("disarmed: {}", disarmed_message(state))),
        Phase::Armed => match &facts.last_poll {
            None if now.since(state.armed_at) <= limit => (true, "armed: starting".into()),
            None => (false, "armed but no poll recorded".into()),
            Some(p) if now.since(p.at) > limit => {
                (false, format!("armed but the last poll was {} s ago", now.since(p.at).as_secs()))
            }
            Some(p) if !p.healthy => (false, format!("armed but BLIND: {}", p.note)),
            Some(p) if !p.problems.is_empty() => (false, format!("armed but: {}", p.problems.join("; "))),
            Some(p) => (
                true,
                match p.counter {
                    Some(c) => format!("armed: total_missed {c} at block {}", p.height.unwrap_or(0)),
                    None => format!("armed: {} missed at block {}", p.misses.unwrap_or(0), p.height.unwrap_or(0)),
                },
            ),
        },
    }
}
