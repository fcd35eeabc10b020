//! The operator's one-shot commands: `check`, `status`, `fire --dry-run`, `rearm`, `test-alert`.
//!
//! Each returns what it found as data; the CLI prints it.

use chain_clock::SharedClock;

use super::run::{disarmed_message, fmt_time};
use super::{fanout, ServiceError};
use crate::alert::Incident;
use crate::chain::graphene::GrapheneProducer;
use crate::chain::{Baseline, ChainKind, ChainTime, EndpointHealth, Identity, Observation, Producer};
use crate::config::check::check as check_chain;
use crate::config::vars::Problem;
use crate::config::{AlertSettings, ChainSettings, Report, Settings};
use crate::store::{FileStore, StateStore};
use crate::trap::state::read_instance_file;
use crate::trap::{self, load_state, Trigger};

/// What `check` found when nothing stops arming.
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub endpoints: Vec<EndpointHealth>,
    pub warnings: Vec<Problem>,
    pub summary: Option<String>,
}

/// The failure of `check`, with what was seen on the way (the endpoints are shown either way).
#[derive(Debug)]
pub struct CheckFailure {
    pub endpoints: Vec<EndpointHealth>,
    pub warnings: Vec<Problem>,
    pub error: ServiceError,
}

fn producer_error(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Failure(e.to_string())
}

fn antelope(
    settings: crate::chain::antelope::AntelopeSettings,
    clock: SharedClock,
) -> Result<crate::chain::antelope::AntelopeProducer, ServiceError> {
    crate::chain::antelope::AntelopeProducer::new(settings, clock).map_err(producer_error)
}

fn pause_resume(
    settings: crate::chain::antelope::AntelopeSettings,
    pr: crate::chain::antelope::pause_resume::PauseResumeSettings,
    clock: SharedClock,
) -> Result<crate::chain::antelope::pause_resume::PauseResumeProducer, ServiceError> {
    let watch = antelope(settings, clock.clone())?;
    crate::chain::antelope::pause_resume::PauseResumeProducer::new(watch, pr, clock).map_err(ServiceError::Failure)
}

fn solana(
    settings: crate::chain::solana::SolanaSettings,
    clock: SharedClock,
) -> Result<crate::chain::solana::SolanaProducer, ServiceError> {
    crate::chain::solana::SolanaProducer::new(settings, clock).map_err(ServiceError::Failure)
}

/// Run `$body` with `$p` bound to the Antelope producer the settings ask for (regproducer or pause/resume).
macro_rules! with_antelope {
    ($a:expr, $clock:expr, $map:expr, |$p:ident| $body:expr) => {{
        let a = $a;
        match a.pause_resume.clone() {
            None => {
                let $p = antelope(a, $clock).map_err($map)?;
                $body
            }
            Some(pr) => {
                let $p = pause_resume(a, pr, $clock).map_err($map)?;
                $body
            }
        }
    }};
}

fn graphene(
    settings: crate::chain::graphene::GrapheneSettings,
    clock: SharedClock,
) -> Result<GrapheneProducer, ServiceError> {
    GrapheneProducer::new(settings, clock).map_err(producer_error)
}

/// `check`: every pre-arming check against the chain; arms nothing.
pub async fn check(settings: Settings, clock: SharedClock) -> Result<CheckReport, CheckFailure> {
    let kind = settings.kind();
    let store = FileStore::open_shared(&settings.state_file);
    let trigger = settings.trap.trigger;
    let fail = |error| CheckFailure { endpoints: Vec::new(), warnings: Vec::new(), error };
    // A replica: every etcd member must answer as a healthy member with a leader.
    #[cfg(feature = "etcd")]
    if let Some(c) = &settings.coordination {
        if let Err(why) = coordination::check_reachable(&c.etcd).await {
            let problem = Problem::new(
                crate::config::vars::ETCD_ENDPOINTS,
                why.trim_start_matches("ETCD_ENDPOINTS: "),
                "start or repair the etcd members (a replica does not act while etcd is unreachable), or fix the list",
            );
            return Err(fail(ServiceError::Config(Report { problems: vec![problem] })));
        }
    }
    match settings.chain {
        ChainSettings::Graphene(g) => {
            let producer = graphene(g, clock).map_err(fail)?;
            check_with(producer, kind, trigger, &store).await
        }
        ChainSettings::Antelope(a) => {
            with_antelope!(a, clock, fail, |producer| check_with(producer, kind, trigger, &store).await)
        }
        ChainSettings::Solana(s) => {
            let producer = solana(s, clock).map_err(fail)?;
            check_with(producer, kind, trigger, &store).await
        }
    }
}

async fn check_with<P: Producer>(
    mut producer: P,
    kind: ChainKind,
    trigger: Trigger,
    store: &dyn StateStore,
) -> Result<CheckReport, CheckFailure> {
    let arming = !matches!(load_state::<P::Baseline>(store, &producer.identity()).await, Ok(Some(_)));
    let result = check_chain(&mut producer, kind, trigger, arming).await;
    if !result.errors.is_empty() {
        let unreachable = result.chain_unreachable();
        let report = Report { problems: result.errors };
        return Err(CheckFailure {
            endpoints: result.endpoints,
            warnings: result.warnings,
            error: if unreachable { ServiceError::ChainUnavailable(report) } else { ServiceError::Config(report) },
        });
    }
    Ok(CheckReport { endpoints: result.endpoints, warnings: result.warnings, summary: result.summary })
}

/// What `status` shows, line by line.
#[derive(Debug, Clone)]
pub struct StatusReport {
    pub lines: Vec<String>,
}

/// `status`: the producer, the chain now, the trap's state and its last poll.
pub async fn status(settings: Settings, clock: SharedClock) -> Result<StatusReport, ServiceError> {
    let trigger = settings.trap.trigger;
    let facts = read_instance_file(&settings.state_file);
    #[cfg(feature = "etcd")]
    if let Some(c) = &settings.coordination {
        let admin = etcd_admin(c, &settings.identity()).await?;
        let mut report = match settings.chain {
            ChainSettings::Graphene(g) => status_with(graphene(g, clock)?, trigger, &admin, facts).await,
            ChainSettings::Antelope(a) => {
                with_antelope!(a, clock, std::convert::identity, |p| status_with(p, trigger, &admin, facts).await)
            }
            ChainSettings::Solana(s) => status_with(solana(s, clock)?, trigger, &admin, facts).await,
        };
        if let Ok(r) = report.as_mut() {
            r.lines.extend(replica_lines(admin.coordinator(), c.replica()).await);
        }
        return report;
    }
    let store = FileStore::open_shared(&settings.state_file);
    match settings.chain {
        ChainSettings::Graphene(g) => status_with(graphene(g, clock)?, trigger, &store, facts).await,
        ChainSettings::Antelope(a) => {
            with_antelope!(a, clock, std::convert::identity, |p| status_with(p, trigger, &store, facts).await)
        }
        ChainSettings::Solana(s) => status_with(solana(s, clock)?, trigger, &store, facts).await,
    }
}

/// The trap's record in etcd, for `status` and `rearm`.
#[cfg(feature = "etcd")]
async fn etcd_admin(
    c: &crate::config::coordination::CoordinationSettings,
    id: &Identity,
) -> Result<crate::store::etcd::EtcdAdmin, ServiceError> {
    let scope = format!("{}/{}", id.chain, id.producer);
    let coord = coordination::Coordinator::connect(c.etcd.clone(), &scope)
        .await
        .map_err(|e| ServiceError::Coordination(format!("{e}; check ETCD_ENDPOINTS")))?;
    Ok(crate::store::etcd::EtcdAdmin::new(coord))
}

/// `status` with coordination: the lock holder and every replica's last report.
#[cfg(feature = "etcd")]
async fn replica_lines(coord: &coordination::Coordinator, me: &str) -> Vec<String> {
    let mut lines = vec![format!("replica:    {me} (this one)")];
    match coord.holder().await {
        Ok(holder) => lines.push(format!("lock holder: {}", holder.as_deref().unwrap_or("none"))),
        Err(e) => {
            lines.push("lock holder: unknown".into());
            lines.push(format!("problem:    coordination unavailable: {e}; no replica fires until etcd answers"));
            return lines;
        }
    }
    match coord.replicas().await {
        Ok(replicas) if replicas.is_empty() => lines.push("replicas:   none reporting".into()),
        Ok(replicas) => {
            for r in replicas {
                let facts = crate::trap::state::InstanceFacts::decode(r.report.as_bytes());
                let poll = facts.last_poll.map_or("no poll yet".to_string(), |p| {
                    format!(
                        "last poll {} {} {}",
                        fmt_time(p.at),
                        if p.healthy { "healthy" } else { "UNHEALTHY" },
                        p.note
                    )
                });
                lines.push(format!("replica {}: {poll}", r.name));
            }
        }
        Err(e) => lines.push(format!("problem:    cannot list the replicas: {e}")),
    }
    lines
}

async fn status_with<P: Producer>(
    mut producer: P,
    trigger: Trigger,
    store: &dyn StateStore,
    facts: crate::trap::state::InstanceFacts,
) -> Result<StatusReport, ServiceError> {
    let id = producer.identity();
    let state = load_state::<P::Baseline>(store, &id).await?.map(|(s, _)| s);
    let counter = producer.counter_name();
    let mut lines = vec![format!("producer:   @{}", id.producer), format!("chain:      {}", id.chain)];
    match state.as_ref().and_then(|s| s.roles.as_ref()) {
        Some(roles) => {
            lines.push(format!("current key: {} (roles swapped by a planned switch)", roles.current));
            lines.push(format!("backup key: {}", roles.backup));
            // Read the chain as the trap does, with the roles it guards.
            if let Err(e) = producer.assume_roles(&roles.current, &roles.backup) {
                lines.push(format!("problem:    {e}"));
            }
        }
        None => lines.push(format!("backup key: {}", producer.target())),
    }
    let baseline = state.as_ref().map(|s| s.baseline.clone());
    let reading = match &baseline {
        Some(b) => producer.observe(b).await,
        // Not armed: read against the chain's own counter (a baseline from the preflight reading).
        None => match producer.preflight().await.reading {
            Some((_, b)) => producer.observe(&b).await,
            None => Observation::Blind("no endpoint gave a fresh reading".into()),
        },
    };
    match reading {
        Observation::Reading(e) => {
            lines.push(format!("on-chain key: {}", e.current_key));
            lines.push(format!(
                "{counter}: {} (block {}, from {})",
                e.counter.map_or_else(|| e.misses.to_string(), |c| c.to_string()),
                e.height,
                e.source
            ));
        }
        Observation::Blind(reason) => lines.push(format!("chain: UNREADABLE: {reason}")),
    }
    lines.push(format!("watching:   {}", producer.watch_note()));
    if let Some(progress) = producer.key_progress().await {
        lines.push(format!("schedule:   {progress}"));
    }
    match &state {
        None => lines.push("state:      not armed yet (no state file)".into()),
        Some(st) => {
            lines.push(format!("state:      {}", st.phase.name()));
            let at = match st.threshold_counter() {
                Some(t) => format!("fires at {counter} {t}"),
                None => format!("fires after {} missed", st.allowed),
            };
            let base = st.baseline.counter().map_or(String::new(), |c| format!("baseline {c} "));
            lines.push(format!("threshold:  {at} ({base}at arming, {})", fmt_time(st.armed_at)));
            if let Some(p) = &facts.last_poll {
                lines.push(format!(
                    "last poll:  {} {} {}",
                    fmt_time(p.at),
                    if p.healthy { "healthy" } else { "BLIND" },
                    p.note
                ));
                for problem in &p.problems {
                    lines.push(format!("problem:    {problem}"));
                }
            }
            if st.phase.is_disarmed() {
                lines.push(disarmed_message(st));
            }
        }
    }
    if let Trigger::Absolute(t) = trigger {
        tracing::debug!(threshold = t, "absolute threshold");
    }
    Ok(StatusReport { lines })
}

/// `fire --dry-run`: the swap built and signed from live data, never broadcast, as JSON.
pub async fn dry_run(settings: Settings, clock: SharedClock) -> Result<serde_json::Value, ServiceError> {
    let attempt = match settings.chain {
        ChainSettings::Graphene(g) => graphene(g, clock)?.dry_run().await,
        ChainSettings::Antelope(a) => with_antelope!(a, clock, std::convert::identity, |p| {
            let mut p = p;
            p.dry_run().await
        }),
        ChainSettings::Solana(s) => solana(s, clock)?.dry_run().await,
    };
    match attempt {
        Ok(swap) => Ok(serde_json::json!({
            "broadcast": false,
            "action": swap.label,
            "txid": swap.id,
            "expires_at": fmt_time(swap.expires_at),
            "transaction": swap.payload,
        })),
        Err(crate::chain::SwapError::Transient(reason)) => Err(ServiceError::ChainUnavailable(Report {
            problems: vec![Problem::new(
                crate::config::vars::RPC_URLS,
                format!("no endpoint gave a fresh reading; nothing built: {reason}"),
                "give at least one reachable, synced RPC node in RPC_URLS",
            )],
        })),
        Err(e) => Err(ServiceError::Config(Report {
            problems: vec![Problem::new(
                crate::config::vars::SIGNING_WIF,
                format!("cannot build the swap: {e}"),
                "check the keys and CHAIN/CHAIN_ID; `witness-trap check` names what is wrong",
            )],
        })),
    }
}

/// What `rearm` did.
#[derive(Debug, Clone)]
pub struct Rearmed {
    pub line: String,
    pub warnings: Vec<Problem>,
    /// PagerDuty's `resolve` of the fire's incident, when PagerDuty is configured: its dedup key and result.
    pub pagerduty: Option<(String, Result<(), String>)>,
}

/// `rearm`: a fresh armed state from the chain now, after every pre-arming check passes.
pub async fn rearm(settings: Settings, clock: SharedClock) -> Result<Rearmed, ServiceError> {
    // With coordination the state is the group's, in etcd: replaced with a compare on its revision, while
    // the replicas run (they idle on a fired record and campaign again once it is armed).
    #[cfg(feature = "etcd")]
    let store: Box<dyn StateStore> = match &settings.coordination {
        Some(c) => Box::new(etcd_admin(c, &settings.identity()).await?),
        None => Box::new(lone_store(&settings)?),
    };
    #[cfg(not(feature = "etcd"))]
    let store: Box<dyn StateStore> = Box::new(lone_store(&settings)?);
    let store = store.as_ref();
    let kind = settings.kind();
    let (mut done, id) = match settings.chain {
        ChainSettings::Graphene(g) => {
            rearm_with(graphene(g, clock.clone())?, kind, settings.trap, store, clock.clone()).await?
        }
        ChainSettings::Antelope(a) => {
            with_antelope!(a, clock.clone(), std::convert::identity, |p| rearm_with(
                p,
                kind,
                settings.trap,
                store,
                clock.clone()
            )
            .await?)
        }
        ChainSettings::Solana(s) => {
            rearm_with(solana(s, clock.clone())?, kind, settings.trap, store, clock.clone()).await?
        }
    };
    // Re-armed: the fire is dealt with, so its PagerDuty incident is resolved (a failure is reported, the
    // trap stays armed).
    if let Some(pd) = settings.alerts.pagerduty {
        let key = crate::alert::pagerduty::dedup_key(&id.producer, &id.chain);
        let result = crate::alert::PagerDutyNotifier::new(pd, clock).resolve(&id.producer, &id.chain).await;
        done.pagerduty = Some((key, result));
    }
    Ok(done)
}

/// The lone trap's state file, locked: `rearm` never runs beside a running trap.
fn lone_store(settings: &Settings) -> Result<FileStore, ServiceError> {
    FileStore::open_exclusive(&settings.state_file).map_err(|error| ServiceError::Locked {
        error,
        hint: "stop the running trap first (`docker compose stop`), then re-arm",
    })
}

async fn rearm_with<P: Producer>(
    mut producer: P,
    kind: ChainKind,
    settings: trap::TrapSettings,
    store: &dyn StateStore,
    clock: SharedClock,
) -> Result<(Rearmed, Identity), ServiceError> {
    let result = check_chain(&mut producer, kind, settings.trigger, true).await;
    let unreachable = result.chain_unreachable();
    let Some((_, baseline)) = result.reading else {
        let report = Report { problems: result.errors };
        return Err(if unreachable { ServiceError::ChainUnavailable(report) } else { ServiceError::Config(report) });
    };
    if !result.errors.is_empty() {
        return Err(ServiceError::Config(Report { problems: result.errors }));
    }
    let id = producer.identity();
    let (state, was) = trap::rearm(&settings, store, &id, ChainTime::now(clock.as_ref()), baseline).await?;
    let counter = producer.counter_name();
    let now = state.baseline.counter().map_or(String::new(), |c| format!(", {counter} {c} now"));
    let fires = match state.threshold_counter() {
        Some(t) => format!("fires at {t}"),
        None => format!("fires after {} missed", state.allowed),
    };
    let line = format!("re-armed: @{} on {}{now}, {fires} (was: {})", id.producer, id.chain, was.unwrap_or("no state"));
    Ok((Rearmed { line, warnings: result.warnings, pagerduty: None }, id))
}

/// `test-alert`: one test alert through every configured channel; one result per channel.
pub async fn test_alert(
    identity: Identity,
    alerts: AlertSettings,
    clock: SharedClock,
) -> Vec<(&'static str, Result<(), String>)> {
    let fanout = fanout(&alerts, clock);
    let incident = Incident::Test { witness: identity.producer, chain: identity.chain };
    fanout.test(&incident).await
}
