//! `run`: check, arm or resume, and watch until the trap fires or is stopped.
//!
//! The policy: a fired trap neither polls nor signs (it sends alerts still pending, says how to re-arm, and
//! idles until stopped, so a container under `restart: unless-stopped` never loops); a firing trap finishes
//! the same swap whatever the keys say now; an armed trap resumes with the baseline it armed with, treating
//! an endpoint problem as a warning; a new trap arms only when every pre-arming check passes.

use std::sync::Arc;

use chain_clock::SharedClock;
use tokio_util::sync::CancellationToken;

use super::{fanout, ServiceError};
use crate::chain::graphene::GrapheneProducer;
use crate::chain::{ChainTime, Producer};
use crate::config::check::check;
use crate::config::{ChainSettings, Report, Settings};
use crate::metrics::Metrics;
use crate::store::{handoff, FileStore, StateStore};
use crate::trap::state::{Outcome, Phase, TrapState};
use crate::trap::{self, load_state, Finish, Trap};

/// How `run` behaves once the trap is disarmed.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Exit at once when the state says the trap already fired, instead of staying up idle.
    pub exit_when_disarmed: bool,
}

/// How `run` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Stopped by a shutdown request while armed (or while idle after a fire).
    Stopped,
    /// The trap fired in this run.
    Fired(Finish),
    /// The state says the trap had already fired; nothing was polled or signed.
    AlreadyFired { finish: Finish, message: String },
}

/// Run the trap of `settings` until it fires or `shutdown` is cancelled.
pub async fn run(
    settings: Settings,
    clock: SharedClock,
    shutdown: CancellationToken,
    options: RunOptions,
) -> Result<RunOutcome, ServiceError> {
    log_settings(&settings);
    let store = FileStore::open_exclusive(&settings.state_file)
        .map_err(|error| ServiceError::Locked { error, hint: "stop it first" })?;
    let store: Arc<dyn StateStore> = Arc::new(store);
    let kind = settings.kind();
    let identity = settings.identity();
    let alerts = fanout(&settings.alerts, clock.clone());
    let heartbeat =
        settings.alerts.heartbeat.clone().map(|h| Arc::new(crate::alert::heartbeat::Heartbeat::new(h, clock.clone())));
    // The metrics endpoint lives as long as this run, the idle disarmed wait included.
    let serving = shutdown.child_token();
    let _stop_serving = serving.clone().drop_guard();
    let failure = |e: &dyn std::fmt::Display| ServiceError::Failure(e.to_string());
    let run = Run {
        kind,
        trap: settings.trap,
        metrics_addr: settings.alerts.metrics_addr,
        identity,
        heartbeat,
        state_file: Some(settings.state_file.clone()),
    };
    #[cfg(feature = "etcd")]
    let coordination = settings.coordination;
    #[cfg(not(feature = "etcd"))]
    let coordination = None;
    let go = Go { run, clock: clock.clone(), store, alerts, serving, shutdown, options, coordination };
    match settings.chain {
        ChainSettings::Graphene(g) => {
            let producer = GrapheneProducer::new(g, clock.clone()).map_err(|e| failure(&e))?;
            go.run(producer).await
        }
        ChainSettings::Antelope(a) => {
            let pause_resume = a.pause_resume.clone();
            let producer = crate::chain::antelope::AntelopeProducer::new(a, clock.clone()).map_err(|e| failure(&e))?;
            match pause_resume {
                None => go.run(producer).await,
                Some(pr) => {
                    let producer =
                        crate::chain::antelope::pause_resume::PauseResumeProducer::new(producer, pr, clock.clone())
                            .map_err(ServiceError::Failure)?;
                    go.run(producer).await
                }
            }
        }
        ChainSettings::Solana(s) => {
            let producer =
                crate::chain::solana::SolanaProducer::new(s, clock.clone()).map_err(ServiceError::Failure)?;
            go.run(producer).await
        }
    }
}

#[cfg(feature = "etcd")]
type Coordination = Option<crate::config::coordination::CoordinationSettings>;
#[cfg(not(feature = "etcd"))]
type Coordination = Option<std::convert::Infallible>;

/// Everything but the producer: a lone trap on its state file, or a replica coordinated by etcd.
struct Go {
    run: Run,
    clock: SharedClock,
    /// The state file, locked for this process (a replica keeps only a copy there).
    store: Arc<dyn StateStore>,
    alerts: crate::alert::Fanout,
    serving: CancellationToken,
    shutdown: CancellationToken,
    options: RunOptions,
    coordination: Coordination,
}

impl Go {
    async fn run<P: Producer>(self, producer: P) -> Result<RunOutcome, ServiceError> {
        let Go { run, clock, store, alerts, serving, shutdown, options, coordination } = self;
        match coordination {
            None => run_with(producer, run, clock, store, alerts, serving, shutdown, options).await,
            #[cfg(feature = "etcd")]
            Some(c) => {
                let metrics = serve_metrics(run.metrics_addr, &run.identity, &producer, &alerts, serving).await?;
                let alerts = alerts.with_metrics(metrics.clone());
                let _locked = store;
                super::replica::run_replica(producer, run, c, clock, alerts, metrics, shutdown, options).await
            }
            #[cfg(not(feature = "etcd"))]
            Some(never) => match never {},
        }
    }
}

/// What `run` hands every chain family's trap.
pub(super) struct Run {
    pub(super) kind: crate::chain::ChainKind,
    pub(super) trap: trap::TrapSettings,
    pub(super) metrics_addr: Option<std::net::SocketAddr>,
    pub(super) identity: crate::chain::Identity,
    pub(super) heartbeat: Option<Arc<crate::alert::heartbeat::Heartbeat>>,
    /// The state file, whose lock a planned switch may ask for (`None`: a store without one).
    pub(super) state_file: Option<std::path::PathBuf>,
}

/// Serve the metrics, open (arm or resume) the trap of `producer` and watch until it fires or stops. A
/// planned switch may ask the armed trap to step aside (`store::handoff`): it then releases the state, waits
/// for the switch to finish, and opens the state the switch left (armed with swapped roles, or disarmed).
#[allow(clippy::too_many_arguments)]
async fn run_with<P: Producer>(
    producer: P,
    run: Run,
    clock: SharedClock,
    mut store: Arc<dyn StateStore>,
    alerts: crate::alert::Fanout,
    serving: CancellationToken,
    shutdown: CancellationToken,
    options: RunOptions,
) -> Result<RunOutcome, ServiceError> {
    let metrics = serve_metrics(run.metrics_addr, &run.identity, &producer, &alerts, serving).await?;
    let alerts = alerts.with_metrics(metrics.clone());
    let mut producer = producer;
    loop {
        let trap = open(producer, run.kind, run.trap.clone(), clock.clone(), store, alerts.clone())
            .await
            .map_err(|(e, _)| e)?
            .with_heartbeat(run.heartbeat.clone())
            .with_metrics(metrics.clone());
        let pause = CancellationToken::new();
        let _stop_looking = run.state_file.clone().map(|path| {
            let looking = CancellationToken::new();
            tokio::spawn(look_for_switch(path, pause.clone(), looking.clone()));
            looking.drop_guard()
        });
        match watch(trap, shutdown.clone(), options, pause).await? {
            Watched::Done(outcome) => return Ok(outcome),
            Watched::Paused(p) => {
                let Some(path) = run.state_file.as_deref() else {
                    return Err(ServiceError::Failure("paused without a state file to wait on".into()));
                };
                match wait_for_switch(path, &shutdown).await? {
                    Some(reopened) => {
                        store = Arc::new(reopened);
                        producer = p;
                    }
                    None => return Ok(RunOutcome::Stopped),
                }
            }
        }
    }
}

/// How often the trap looks for a switch's request, and, while it steps aside, for its end.
const SWITCH_LOOK_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Cancel `pause` when a living switch asks for the state file.
async fn look_for_switch(state_file: std::path::PathBuf, pause: CancellationToken, stop: CancellationToken) {
    loop {
        if !matches!(handoff::look(&state_file), handoff::Seen::Nothing) {
            pause.cancel();
            return;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(SWITCH_LOOK_EVERY) => {}
        }
    }
}

/// While a switch runs: wait until it is gone and take the state file back (`None`: stopped meanwhile).
async fn wait_for_switch(
    state_file: &std::path::Path,
    shutdown: &CancellationToken,
) -> Result<Option<FileStore>, ServiceError> {
    tracing::warn!("stepped aside for a planned switch: not watching until it ends");
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(None),
            _ = tokio::time::sleep(SWITCH_LOOK_EVERY) => {}
        }
        let seen = handoff::look(state_file);
        // A switch still waiting for the lock gets it first; a gone one (stale, or claiming a lock that is
        // free) no longer counts.
        if matches!(seen, handoff::Seen::Waiting(_)) {
            continue;
        }
        match FileStore::open_exclusive(state_file) {
            Ok(store) => {
                if matches!(seen, handoff::Seen::HoldsLock(_)) {
                    tracing::warn!("the switch that held the state is gone; taking the state back");
                    handoff::clear(state_file);
                }
                tracing::info!("the planned switch is over; reopening the state it left");
                return Ok(Some(store));
            }
            Err(crate::store::StoreError::Locked(_)) => continue,
            Err(error) => return Err(ServiceError::Locked { error, hint: "after the planned switch" }),
        }
    }
}

/// Start the `/metrics` endpoint if `METRICS_ADDR` is set, with every family present from the start
/// (each endpoint and each channel known already). A port that cannot be bound stops the run before
/// anything is armed, naming the variable.
pub(super) async fn serve_metrics<P: Producer>(
    addr: Option<std::net::SocketAddr>,
    identity: &crate::chain::Identity,
    producer: &P,
    alerts: &crate::alert::Fanout,
    stop: CancellationToken,
) -> Result<Option<Arc<Metrics>>, ServiceError> {
    let Some(addr) = addr else { return Ok(None) };
    let metrics =
        Arc::new(Metrics::new(&identity.producer, &identity.chain, &producer.endpoint_urls(), &alerts.names()));
    match crate::metrics::serve(addr, metrics.clone(), stop).await {
        Ok((bound, _task)) => {
            tracing::info!(address = %bound, "metrics served at http://{bound}/metrics");
            Ok(Some(metrics))
        }
        Err(e) => Err(ServiceError::Config(Report {
            problems: vec![crate::config::vars::Problem::new(
                crate::config::vars::METRICS_ADDR,
                format!("cannot listen on {addr}: {e}"),
                "choose a free port, or remove METRICS_ADDR",
            )],
        })),
    }
}

/// Check the chain as the state requires, then open (arm or resume) the trap.
/// On failure the producer comes back when it was not consumed yet (a replica campaigns again with it).
pub(super) async fn open<P: Producer>(
    mut producer: P,
    kind: crate::chain::ChainKind,
    settings: trap::TrapSettings,
    clock: SharedClock,
    store: Arc<dyn StateStore>,
    alerts: crate::alert::Fanout,
) -> Result<Trap<P>, (ServiceError, Option<P>)> {
    let existing = match load_state::<P::Baseline>(store.as_ref(), &producer.identity()).await {
        Ok(e) => e,
        Err(e) => return Err((ServiceError::from(e), Some(producer))),
    };
    if let Some(roles) = existing.as_ref().and_then(|(s, _)| s.roles.as_ref()) {
        if let Err(e) = producer.assume_roles(&roles.current, &roles.backup) {
            let problem = crate::config::vars::Problem::new(
                crate::config::vars::BACKUP_SIGNING_WIF,
                e,
                "set BACKUP_SIGNING_WIF or ACTIVE_WIF, or re-arm with the configured roles (`witness-trap rearm`)",
            );
            return Err((ServiceError::Config(Report { problems: vec![problem] }), Some(producer)));
        }
        tracing::info!(current = %roles.current, backup = %roles.backup, "guarding the roles a planned switch swapped");
    }
    let mut baseline = None;
    match existing.as_ref().map(|(s, _)| &s.phase) {
        // A fired trap neither polls nor signs; a firing one must finish whatever the keys say now.
        Some(Phase::Fired { .. } | Phase::Firing { .. } | Phase::Switched { .. }) => {}
        _ => {
            let arming = existing.is_none();
            let mut result = check(&mut producer, kind, settings.trigger, arming).await;
            if !arming {
                // Resuming an armed trap: an endpoint problem (one node down, on another chain, or failing to
                // answer a check) is a warning; the reader skips such endpoints and the trap keeps watching.
                result.endpoint_errors_as_warnings();
            }
            for w in &result.warnings {
                tracing::warn!(variable = %w.var, problem = %w.message, fix = %w.fix, "warning");
            }
            match (result.reading, arming) {
                (None, true) => {
                    let report = Report { problems: result.errors };
                    let e = if chain_unreachable(&report) {
                        ServiceError::ChainUnavailable(report)
                    } else {
                        ServiceError::Config(report)
                    };
                    return Err((e, Some(producer)));
                }
                (None, false) => tracing::warn!("the chain cannot be read now; resuming the armed trap blind"),
                (Some(_), _) if !result.errors.is_empty() => {
                    return Err((ServiceError::Config(Report { problems: result.errors }), Some(producer)))
                }
                (Some((_, b)), _) => baseline = Some(b),
            }
        }
    }
    let trap = Trap::open(settings, producer, clock, store, alerts, baseline)
        .await
        .map_err(|e| (ServiceError::from(e), None))?;
    tracing::info!(
        state = trap.state().phase.name(),
        allowed = trap.allowed(),
        baseline = ?trap.state().baseline,
        "trap ready"
    );
    Ok(trap)
}

/// The chain could not be read, as opposed to a setting being wrong.
fn chain_unreachable(report: &Report) -> bool {
    !report.problems.iter().any(|p| crate::config::check::names_the_configuration(&p.var))
}

/// How one watch ended: for good, or stepped aside for a switch with the producer handed back.
pub(super) enum Watched<P> {
    Done(RunOutcome),
    Paused(P),
}

pub(super) async fn watch<P: Producer>(
    mut trap: Trap<P>,
    shutdown: CancellationToken,
    options: RunOptions,
    pause: CancellationToken,
) -> Result<Watched<P>, ServiceError> {
    match trap::run_pausable(&mut trap, shutdown.clone(), pause).await? {
        trap::RunOutcome::Stopped => Ok(Watched::Done(RunOutcome::Stopped)),
        trap::RunOutcome::Fired(f) => Ok(Watched::Done(RunOutcome::Fired(f))),
        trap::RunOutcome::Paused => Ok(Watched::Paused(trap.into_producer())),
        trap::RunOutcome::AlreadyFired(finish) => {
            let message = disarmed_message(trap.state());
            tracing::warn!("{message}");
            // Release the store (and its lock) so `rearm` can run beside the idle process.
            drop(trap);
            if !options.exit_when_disarmed {
                // Stay up, idle: under `restart: unless-stopped` an exiting container would be restarted
                // over and over; an idle one is restarted after a reboot and still never fires again.
                shutdown.cancelled().await;
            }
            Ok(Watched::Done(RunOutcome::AlreadyFired { finish, message }))
        }
    }
}

fn log_settings(s: &Settings) {
    let id = s.identity();
    match &s.chain {
        ChainSettings::Graphene(p) => tracing::info!(
            producer = %id.producer,
            chain = %id.chain,
            chain_id = %p.chain.chain_id_hex(),
            rpc_urls = %p.reader.urls.iter().map(|u| crate::redact::url(u)).collect::<Vec<_>>().join(","),
            backup_key = %p.backup_key.to_text(&p.chain.key_prefix),
            signing_wif = if p.signing_key.is_some() { "set" } else { "not set" },
            active_wif = if p.active_key.is_some() { "set" } else { "not set" },
            trigger = ?s.trap.trigger,
            poll_interval_secs = s.trap.poll_interval.as_secs(),
            state_file = %s.state_file.display(),
            alert_channels = ?crate::service::fanout(&s.alerts, Arc::new(chain_clock::SystemClock)).names(),
            "settings"
        ),
        ChainSettings::Antelope(p) => tracing::info!(
            producer = %id.producer,
            chain = %id.chain,
            chain_id = %p.chain_id.to_hex(),
            rpc_urls = %p.urls.iter().map(|u| crate::redact::url(u)).collect::<Vec<_>>().join(","),
            backup_key = %p.backup_key.to_legacy(),
            permission = %p.permission,
            failover_wif = "set",
            backup_finalizer_key = p.backup_finalizer_key.as_deref().unwrap_or("not set"),
            trigger = ?s.trap.trigger,
            poll_interval_secs = s.trap.poll_interval.as_secs(),
            state_file = %s.state_file.display(),
            alert_channels = ?crate::service::fanout(&s.alerts, Arc::new(chain_clock::SystemClock)).names(),
            "settings"
        ),
        ChainSettings::Solana(p) => tracing::info!(
            vote_account = %id.producer,
            cluster = %id.chain,
            genesis_hash = %p.genesis_hash,
            identity = %p.identity,
            rpc_urls = %p.urls.iter().map(|u| crate::redact::url(u)).collect::<Vec<_>>().join(","),
            agents = %p.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(","),
            max_vote_lag_slots = p.max_lag,
            tower_safe_slots = p.tower_safe_slots,
            unreachable_primary = ?p.unreachable_primary,
            trigger = ?s.trap.trigger,
            poll_interval_secs = s.trap.poll_interval.as_secs(),
            state_file = %s.state_file.display(),
            alert_channels = ?crate::service::fanout(&s.alerts, Arc::new(chain_clock::SystemClock)).names(),
            "settings"
        ),
    }
}

/// What a fired trap says at start and in `status` and `health`.
pub fn disarmed_message<B>(state: &TrapState<B>) -> String {
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
                fmt_time(*fired_at)
            )
        }
        Phase::Switched { to, txid, switched_at } => format!(
            "The trap is disarmed: a planned switch moved the signing key to {to} at {} (txid {txid}). It will not \
             poll or sign again until re-armed: set .env for the new roles, then `witness-trap rearm` (or switch \
             with `--swap-roles` next time).",
            fmt_time(*switched_at)
        ),
        other => format!("the trap is {}", other.name()),
    }
}

/// Times as the operator reads them: whole seconds, UTC.
pub fn fmt_time(t: ChainTime) -> String {
    ChainTime::from_secs(t.as_secs()).to_rfc3339()
}
