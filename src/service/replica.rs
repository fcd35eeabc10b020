//! `run` with `COORDINATION=etcd`: this process is one replica of a trap run on several hosts, of which
//! exactly one acts.
//!
//! The loop: open a session (an etcd lease); campaign for the trap's lock, a standby meanwhile reporting
//! itself (`status`) and keeping `health` honest; once holder, open the trap on the state in etcd
//! ([`EtcdStore`]: every step is a fenced commit) and watch, stepping down the moment the lease is no longer
//! trusted (the session stops trusting it a third of the TTL early). A new holder that finds the state
//! firing finishes that same fire, as a restart would. A fired state idles every replica without opening
//! it (so nobody alerts twice) until `rearm` re-arms the group. A planned switch asks through etcd: the
//! holder steps aside between two looks and every replica waits until the switch is done. With etcd unreachable nobody holds a live
//! lease, so nobody fires: each replica says so in its log and `health`, and alerts once per episode.

use std::sync::Arc;
use std::time::Duration;

use chain_clock::SharedClock;
use coordination::{CoordError, Session};
use tokio_util::sync::CancellationToken;

use super::run::{open, Run};
use super::{RunOptions, RunOutcome, ServiceError};
use crate::alert::{Fanout, Incident};
use crate::chain::{ChainTime, Producer};
use crate::config::coordination::CoordinationSettings;
use crate::metrics::Metrics;
use crate::store::etcd::EtcdStore;
use crate::store::{FileStore, StateStore};
use crate::trap::state::{AnyState, InstanceFacts, LastPoll, Outcome, Phase};
use crate::trap::Finish;

/// How often the holder checks that its lease is still trusted (and, every fifth time, for a switch).
const LIVENESS_EVERY: Duration = Duration::from_millis(200);
/// How often a standby looks whether a planned switch is over.
const SWITCH_LOOK_EVERY: Duration = Duration::from_millis(250);

/// Run as one replica until the trap fires here, or `shutdown`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run_replica<P: Producer>(
    producer: P,
    run: Run,
    coordination: CoordinationSettings,
    clock: SharedClock,
    alerts: Fanout,
    metrics: Option<Arc<Metrics>>,
    shutdown: CancellationToken,
    options: RunOptions,
) -> Result<RunOutcome, ServiceError> {
    let state_file =
        run.state_file.clone().ok_or_else(|| ServiceError::Failure("a replica needs STATE_FILE".into()))?;
    let scope = format!("{}/{}", run.identity.chain, run.identity.producer);
    let replica = coordination.replica().to_string();
    let mut outage = Outage::default();
    let local = FileStore::open_shared(&state_file);
    let retry = coordination.etcd.lease_ttl / 3;
    // The producer (and its keys) passes from one holder term to the next.
    let mut producer = Some(producer);
    tracing::info!(%replica, endpoints = ?coordination.etcd.endpoints, %scope, "coordinated by etcd: one replica of several");
    loop {
        if shutdown.is_cancelled() {
            return Ok(RunOutcome::Stopped);
        }
        let session = match Session::open(coordination.etcd.clone(), &scope).await {
            Ok(s) => Arc::new(s),
            Err(e) => {
                outage.begin(&e, &run, &alerts, &local, &clock).await;
                if sleep_or_stop(retry, &shutdown).await {
                    return Ok(RunOutcome::Stopped);
                }
                continue;
            }
        };
        // Campaign: until this replica holds the lock, or its lease is no longer trusted.
        let held = loop {
            if !session.is_live() {
                break false;
            }
            let record = session.coordinator().read().await;
            // A standby watches the chain too, against the armed record's baseline (as `status` reads it).
            let mut baseline: Option<P::Baseline> = None;
            match record {
                Ok(Some(r)) => {
                    baseline = crate::trap::state::TrapState::<P::Baseline>::decode(r.value.as_bytes(), "etcd")
                        .ok()
                        .filter(|s| matches!(s.phase, Phase::Armed))
                        .map(|s| s.baseline);
                    // The local copy `health` reads, standbys included.
                    if let Err(e) = crate::store::atomic::write_atomic(&state_file, r.value.as_bytes()) {
                        tracing::warn!(error = %e, "cannot keep the local copy of the etcd state (health reads it)");
                    }
                    if let Some(finish) = disarmed(&r.value) {
                        outage.end();
                        standby(
                            &session,
                            &local,
                            &clock,
                            "disarmed: the trap fired; `witness-trap rearm` re-arms every replica",
                        )
                        .await;
                        if options.exit_when_disarmed {
                            session_close(session).await;
                            let message = disarmed_text(&r.value);
                            return Ok(RunOutcome::AlreadyFired { finish, message });
                        }
                        if sleep_or_stop(retry, &shutdown).await {
                            return Ok(RunOutcome::Stopped);
                        }
                        continue;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    outage.begin(&e, &run, &alerts, &local, &clock).await;
                    if sleep_or_stop(retry, &shutdown).await {
                        return Ok(RunOutcome::Stopped);
                    }
                    continue;
                }
            }
            // A planned switch waiting for the lock gets it first.
            if let Ok(Some(by)) = session.coordinator().switch_request().await {
                standby(&session, &local, &clock, &format!("stepped aside: a planned switch ({by}) holds the trap"))
                    .await;
                if sleep_or_stop(SWITCH_LOOK_EVERY, &shutdown).await {
                    return Ok(RunOutcome::Stopped);
                }
                continue;
            }
            match session.try_acquire().await {
                Ok(None) => break true,
                Ok(Some(holder)) => {
                    outage.end();
                    let note = format!("standby: lock holder {holder}");
                    match (producer.as_mut(), baseline.as_ref()) {
                        (Some(p), Some(b)) => {
                            let observation = p.observe(b).await;
                            report(&session, &local, &standby_poll(&clock, &note, &observation)).await;
                        }
                        _ => standby(&session, &local, &clock, &note).await,
                    }
                }
                Err(CoordError::NotLive) => break false,
                Err(e) => outage.begin(&e, &run, &alerts, &local, &clock).await,
            }
            if sleep_or_stop(retry, &shutdown).await {
                return Ok(RunOutcome::Stopped);
            }
        };
        if !held {
            tracing::warn!(%replica, "the etcd lease is no longer trusted; opening a new session");
            // Revoke the old lease (best effort, bounded): its keys go now rather than at its TTL.
            session_close(session).await;
            continue;
        }
        outage.end();
        tracing::warn!(%replica, "holding the trap's lock: this replica watches and may fire");
        let store: Arc<dyn StateStore> = Arc::new(EtcdStore::new(session.clone(), &state_file));
        let Some(p) = producer.take() else {
            return Err(ServiceError::Failure("the producer was lost in an earlier holder term".into()));
        };
        let mut trap = match open(p, run.kind, run.trap.clone(), clock.clone(), store, alerts.clone()).await {
            Ok(t) => t
                .with_heartbeat(run.heartbeat.clone())
                .with_metrics(metrics.clone())
                .with_replica(Some(replica.clone())),
            Err((e, Some(p))) if coordination_failure(&e) => {
                tracing::warn!(error = %e, "could not open the trap on etcd; stepping down");
                producer = Some(p);
                session_close(session).await;
                continue;
            }
            Err((e, _)) => {
                session_close(session).await;
                return Err(e);
            }
        };
        // Step down when the lease is no longer trusted, between two looks. A fire in progress goes on only
        // through committed steps, which the fence refuses without the lease.
        let pause = CancellationToken::new();
        let watching = CancellationToken::new();
        tokio::spawn(step_down_when_not_live(Arc::downgrade(&session), pause.clone(), watching.clone()));
        let stop_watching = watching.drop_guard();
        let watched = crate::trap::run_pausable(&mut trap, shutdown.clone(), pause).await;
        drop(stop_watching);
        match watched {
            Ok(crate::trap::RunOutcome::Stopped) => {
                session_close(session).await;
                return Ok(RunOutcome::Stopped);
            }
            Ok(crate::trap::RunOutcome::Fired(f)) => {
                session_close(session).await;
                return Ok(RunOutcome::Fired(f));
            }
            Ok(crate::trap::RunOutcome::AlreadyFired(_)) => {
                // Fired with nothing left to move on to: the campaign loop idles on the record from here.
                producer = Some(trap.into_producer());
                session_close(session).await;
            }
            Ok(crate::trap::RunOutcome::Paused) => {
                producer = Some(trap.into_producer());
                if let Ok(Some(by)) = session.coordinator().switch_request().await {
                    tracing::warn!(%replica, switch = %by, "stepped aside for a planned switch: released the lock");
                    session_close(session).await;
                    continue;
                }
                tracing::error!(%replica, "the etcd lease is no longer trusted: stopped acting, campaigning again");
                // The lock goes now, not at the old lease's TTL, so another replica need not wait it out.
                session_close(session).await;
            }
            Err(e) => {
                let e = ServiceError::from(e);
                if !coordination_failure(&e) {
                    session_close(session).await;
                    return Err(e);
                }
                tracing::error!(%replica, error = %e, "etcd refused a step (fenced, or unavailable): stopped acting");
                producer = Some(trap.into_producer());
                session_close(session).await;
            }
        }
    }
}

async fn session_close(session: Arc<Session>) {
    session.close().await;
}

/// Holds the session weakly: a replica that is gone (its task aborted) must not be kept alive by this
/// watcher, or its lease would be renewed for ever.
async fn step_down_when_not_live(session: std::sync::Weak<Session>, pause: CancellationToken, stop: CancellationToken) {
    let mut looks = 0u32;
    loop {
        let Some(s) = session.upgrade() else { return };
        if !s.is_live() {
            pause.cancel();
            return;
        }
        // A planned switch asks through etcd (`witness-trap switch` with coordination): step aside.
        looks += 1;
        if looks.is_multiple_of(5) && matches!(s.coordinator().switch_request().await, Ok(Some(_))) {
            pause.cancel();
            return;
        }
        drop(s);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(LIVENESS_EVERY) => {}
        }
    }
}

/// `true` when stopped.
async fn sleep_or_stop(d: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

/// An error that came from etcd (fenced, not live, unavailable, a revision conflict), as opposed to the
/// settings or the chain.
fn coordination_failure(e: &ServiceError) -> bool {
    matches!(e, ServiceError::Coordination(_))
}

/// The record's state when it leaves nothing to watch (fired with no next backup, or switched).
fn disarmed(value: &str) -> Option<Finish> {
    let state = AnyState::decode(value.as_bytes(), "etcd").ok()?;
    match state.phase {
        Phase::Fired { next: None, outcome, alerts, .. } => Some(Finish { outcome, alerts }),
        Phase::Switched { txid, .. } => {
            Some(Finish { outcome: Outcome::Swapped { txid: Some(txid) }, alerts: Default::default() })
        }
        _ => None,
    }
}

fn disarmed_text(value: &str) -> String {
    AnyState::decode(value.as_bytes(), "etcd")
        .map(|s| super::run::disarmed_message(&s))
        .unwrap_or_else(|e| e.to_string())
}

/// A standby's report: in etcd for `status`, and locally for `health` (a standby is healthy while etcd
/// answers).
async fn standby(session: &Session, local: &FileStore, clock: &SharedClock, note: &str) {
    report(session, local, &facts(clock, note, Vec::new())).await;
}

async fn report(session: &Session, local: &FileStore, facts: &[u8]) {
    let _ = local.put_instance(facts).await;
    if let Err(e) = session.report(&String::from_utf8_lossy(facts)).await {
        tracing::warn!(error = %e, "cannot report to etcd");
    }
}

/// A standby's own look at the chain: what it would see if it held the lock (it never decides on it).
fn standby_poll(clock: &SharedClock, note: &str, observation: &crate::chain::Observation) -> Vec<u8> {
    let note = match observation {
        crate::chain::Observation::Reading(e) => format!("{note}; chain read from {}", e.source),
        crate::chain::Observation::Blind(reason) => format!("{note}; BLIND: {reason}"),
    };
    let poll = LastPoll::of(ChainTime::now(clock.as_ref()), observation, None, note);
    InstanceFacts { last_poll: Some(poll) }.encode()
}

fn facts(clock: &SharedClock, note: &str, problems: Vec<String>) -> Vec<u8> {
    let poll = LastPoll {
        at: ChainTime::now(clock.as_ref()),
        healthy: problems.is_empty(),
        misses: None,
        counter: None,
        height: None,
        current_key: None,
        watch: None,
        note: note.to_string(),
        problems,
    };
    InstanceFacts { last_poll: Some(poll) }.encode()
}

/// One episode of etcd being unreachable: logged at each try, alerted once, shown by `health`.
#[derive(Default)]
struct Outage {
    alerted: bool,
    since: Option<std::time::Instant>,
}

impl Outage {
    async fn begin(&mut self, e: &CoordError, run: &Run, alerts: &Fanout, local: &FileStore, clock: &SharedClock) {
        let text = format!("coordination unavailable: {e}; no replica fires until etcd answers");
        tracing::error!(error = %e, "coordination unavailable: this replica does not act");
        let _ = local.put_instance(&facts(clock, &text, vec![text.clone()])).await;
        self.since.get_or_insert_with(std::time::Instant::now);
        if !self.alerted {
            self.alerted = true;
            let incident = Incident::Warning {
                witness: run.identity.producer.clone(),
                chain: run.identity.chain.clone(),
                text: "coordination unavailable (etcd): no replica fires until it is back".into(),
            };
            let alerts = alerts.clone();
            tokio::spawn(async move { alerts.notify(&incident).await });
        }
    }

    fn end(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::warn!(secs = since.elapsed().as_secs(), "coordination available again");
            self.alerted = false;
        }
    }
}
