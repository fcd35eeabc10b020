//! The trap: arm, watch the missed-block counter, fire the key swap exactly once, confirm it, alert, disarm.
//!
//! ```text
//!            observe ──► decide ──► Hold / Blind / Distrust ──► sleep POLL_INTERVAL ──┐
//!   armed ◄──────────────────────────────────────────────────────────────────────────┘
//!     │ Crossing, corroborated
//!     ▼
//!   firing   (persisted first)  prepare ─► persist attempt ─► fence ─► execute ─► status each block
//!     │                           ▲          InEffect ─► fired(swapped)
//!     │                           └───────── Expired / refused, until FIRE_TIMEOUT ─► fired(failed)
//!     ▼
//!   fired    (persisted, alerts pending) ─► every channel ─► each sent/failed ─► exit; restarts stay disarmed
//! ```
//! [`Trap::step`] does one poll-decide-act cycle; [`run`] only loops, sleeps and checks for shutdown
//! between steps, never inside firing. The trap sees the chain only through [`Producer`], its state only
//! through a [`StateStore`], and the operator only through the alert [`Fanout`].

pub mod decide;
pub mod state;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::alert::{self, Deliveries, Fanout, Incident};
use crate::chain::{
    Baseline, ChainTime, Corroboration, Evidence, Identity, Observation, Producer, SwapAttempt, SwapError, SwapStatus,
};
use crate::metrics::{Metrics, PollResult, TrapPhase};
use crate::store::{Revision, StateStore, StoreError};
use chain_clock::SharedClock;
use decide::{decide, Decision};
use state::{Attempt, InstanceFacts, LastPoll, Outcome, Phase, StateError, TrapState};

/// When to fire, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Fire when the chain's counter reaches this value (`THRESHOLD`; chains that keep a counter).
    Absolute(u64),
    /// Fire when this many misses happened since arming (`MISSED_BLOCKS_ALLOWED`).
    Allowed(u64),
}

impl Trigger {
    /// The misses allowed since arming, given the chain's counter at arming (if it keeps one).
    pub fn allowed(&self, counter_at_arming: Option<u64>) -> Result<u64, TrapError> {
        match (*self, counter_at_arming) {
            (Trigger::Allowed(n), _) => Ok(n),
            (Trigger::Absolute(t), Some(c)) if c >= t => Err(TrapError::ThresholdReached { current: c, threshold: t }),
            (Trigger::Absolute(t), Some(c)) => Ok(t - c),
            (Trigger::Absolute(_), None) => Err(TrapError::NoCounter),
        }
    }
}

/// The trap's own settings.
#[derive(Debug, Clone)]
pub struct TrapSettings {
    pub poll_interval: Duration,
    pub trigger: Trigger,
    /// How long firing may take, from the first attempt, before it is declared failed.
    pub fire_timeout: Duration,
    /// How long without a healthy endpoint before the `blind` alert (once per episode, then `recovered`).
    pub blind_alert_after: Duration,
    /// Every backup key in order, as the producer writes keys (`BACKUP_SIGNING_KEYS`). After a fire to one
    /// with another left, the trap guards the new key and would move on to the next.
    pub backups: Vec<String>,
    /// The key moved to after the last backup (`DISABLE_AFTER_LAST_BACKUP`: the null key), if any.
    pub after_last: Option<String>,
}

/// Why the trap could not go on.
#[derive(Debug, thiserror::Error)]
pub enum TrapError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("total_missed is already {current}, at or past THRESHOLD {threshold}: arming now would fire at once")]
    ThresholdReached { current: u64, threshold: u64 },
    #[error("THRESHOLD needs a chain that keeps a missed-block counter; use MISSED_BLOCKS_ALLOWED")]
    NoCounter,
    #[error("no state yet and no reading to arm from")]
    NoBaseline,
    #[error("the trap was armed to allow {recorded} missed blocks, but the settings now say {configured}; run `witness-trap rearm` to arm with the new trigger")]
    TriggerChanged { recorded: u64, configured: u64 },
    #[error("the state is firing toward {recorded}, but the backup key is now {configured}; the trap never swaps to another key than the one it started with")]
    TargetChanged { recorded: String, configured: String },
    #[error("the state is {0}, which this step cannot handle")]
    WrongPhase(&'static str),
}

impl From<crate::store::StoreError> for TrapError {
    fn from(e: crate::store::StoreError) -> Self {
        TrapError::State(StateError::Store(e))
    }
}

/// What one [`Trap::step`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    Held {
        misses: u64,
        allowed: u64,
    },
    Blind(String),
    Distrusted(String),
    /// The trap fired (or finished firing); see [`Finish`].
    Fired(Finish),
    /// The trap had already fired: nothing to do.
    Disarmed,
}

/// How a fire ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    pub outcome: Outcome,
    pub alerts: Deliveries,
}

impl Finish {
    pub fn swapped(&self) -> bool {
        matches!(self.outcome, Outcome::Swapped { .. })
    }
    /// The operator was told: at least one channel delivered the alert (true when none was to).
    pub fn alert_ok(&self) -> bool {
        alert::any_sent(&self.alerts)
    }
}

/// The trap over one producer.
pub struct Trap<P: Producer> {
    settings: TrapSettings,
    producer: P,
    clock: SharedClock,
    store: Arc<dyn StateStore>,
    revision: Option<Revision>,
    alerts: Fanout,
    state: TrapState<P::Baseline>,
    last_counter: Option<u64>,
    /// Why the state could not be stored, while it cannot: the trap guards from memory meanwhile.
    unsaved: Option<String>,
    /// Warnings on their way to the operator: sent beside the watch, never in its way.
    warnings: tokio::task::JoinSet<()>,
    /// Since when no endpoint has been healthy, and whether the `blind` alert went out.
    blind_since: Option<(ChainTime, bool)>,
    /// The dead-man's switch, if configured.
    heartbeat: Option<Arc<alert::heartbeat::Heartbeat>>,
    /// The Prometheus metrics, if `METRICS_ADDR` is set.
    metrics: Option<Arc<Metrics>>,
    /// `REPLICA_NAME` when several replicas coordinate: named in the fire's alerts.
    replica: Option<String>,
}

/// Load the stored state of `identity`, with its revision; `None` if there is none yet.
pub async fn load_state<B: crate::chain::Baseline>(
    store: &dyn StateStore,
    identity: &Identity,
) -> Result<Option<(TrapState<B>, Revision)>, TrapError> {
    let Some(stored) = store.load().await? else { return Ok(None) };
    let state = TrapState::<B>::decode(&stored.bytes, &store.describe())?;
    state.check_owner(identity, &store.describe())?;
    Ok(Some((state, stored.revision)))
}

/// A fresh armed state from `baseline` (the chain now).
fn arm_state<B: crate::chain::Baseline>(
    settings: &TrapSettings,
    identity: &Identity,
    now: ChainTime,
    baseline: B,
) -> Result<TrapState<B>, TrapError> {
    let allowed = settings.trigger.allowed(baseline.counter())?;
    Ok(TrapState::armed(identity, now, baseline, allowed))
}

impl<P: Producer> Trap<P> {
    /// Load the stored state, or arm from `baseline` (the chain now) if there is none.
    pub async fn open(
        settings: TrapSettings,
        producer: P,
        clock: SharedClock,
        store: Arc<dyn StateStore>,
        alerts: Fanout,
        baseline: Option<P::Baseline>,
    ) -> Result<Self, TrapError> {
        let identity = producer.identity();
        let mut unsaved = None;
        let (state, revision) = match load_state::<P::Baseline>(store.as_ref(), &identity).await? {
            Some((s, r)) => (s, Some(r)),
            None => {
                let baseline = baseline.ok_or(TrapError::NoBaseline)?;
                let state = arm_state(&settings, &identity, ChainTime::now(clock.as_ref()), baseline)?;
                let revision = match store.compare_and_swap(None, &state.encode()?).await {
                    Ok(r) => Some(r),
                    // Guard first: an armed trap that cannot be stored still watches (from memory).
                    Err(StoreError::Io(e)) => {
                        unsaved = Some(e.to_string());
                        None
                    }
                    Err(e) => return Err(e.into()),
                };
                tracing::info!(producer = %identity.producer, chain = %identity.chain, baseline = ?state.baseline,
                    allowed = state.allowed, stored = revision.is_some(), "trap armed");
                (state, revision)
            }
        };
        if let Phase::Firing { target, .. } = &state.phase {
            if *target != producer.target() {
                return Err(TrapError::TargetChanged { recorded: target.clone(), configured: producer.target() });
            }
        }
        // The trigger is fixed at arming: a THRESHOLD edited below the counter must not fire a healthy producer.
        if let Phase::Armed = state.phase {
            let configured = match settings.trigger {
                Trigger::Allowed(n) => n,
                Trigger::Absolute(t) => state.baseline.counter().map_or(state.allowed, |c| t.saturating_sub(c)),
            };
            if configured != state.allowed {
                return Err(TrapError::TriggerChanged { recorded: state.allowed, configured });
            }
        }
        let mut trap = Self {
            settings,
            producer,
            clock,
            store,
            revision,
            alerts,
            state,
            last_counter: None,
            unsaved,
            warnings: tokio::task::JoinSet::new(),
            blind_since: None,
            heartbeat: None,
            metrics: None,
            replica: None,
        };
        if let Some(reason) = trap.unsaved.clone() {
            trap.state_not_writable(&reason);
        }
        if trap.state.phase == Phase::Armed {
            let id = trap.producer.identity();
            let allowed = trap.state.allowed;
            trap.tell(Incident::Armed { witness: id.producer, chain: id.chain, allowed });
        }
        Ok(trap)
    }

    /// Ping `heartbeat` after healthy polls, `/fail` while blind, and once when the trap fires.
    pub fn with_heartbeat(mut self, heartbeat: Option<Arc<alert::heartbeat::Heartbeat>>) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// Keep `metrics` up to date: phase, trigger, polls, misses, endpoints, fires.
    /// Name this replica in the fire's alerts.
    pub fn with_replica(mut self, replica: Option<String>) -> Self {
        self.replica = replica;
        self
    }

    pub fn with_metrics(mut self, metrics: Option<Arc<Metrics>>) -> Self {
        self.metrics = metrics;
        self.export_phase();
        self
    }

    fn export_phase(&self) {
        let Some(m) = &self.metrics else { return };
        m.set_phase(match self.state.phase {
            Phase::Armed => TrapPhase::Armed,
            Phase::Firing { .. } => TrapPhase::Firing,
            Phase::Fired { .. } => TrapPhase::Fired,
            Phase::Switched { .. } => TrapPhase::Switched,
        });
        m.trigger(self.state.allowed);
    }

    fn export_poll(&mut self, obs: &Observation, decision: &Decision) {
        let Some(m) = self.metrics.clone() else { return };
        let result = match decision {
            Decision::Blind(_) => PollResult::Blind,
            Decision::Distrust(_) => PollResult::Distrusted,
            Decision::Hold { .. } | Decision::Crossing { .. } => PollResult::Healthy,
        };
        m.poll(result, self.clock.now().as_secs_f64());
        if let Observation::Reading(e) = obs {
            m.missed(e.misses);
        }
        for ep in self.producer.take_endpoint_stats() {
            m.endpoint(&ep.url, ep.up, ep.latency);
        }
    }

    /// Send a heartbeat beside the watch.
    fn pulse(&mut self, beat: alert::heartbeat::Beat) {
        if let Some(hb) = self.heartbeat.clone() {
            self.warnings.spawn(async move { hb.beat(beat).await });
        }
    }

    pub fn state(&self) -> &TrapState<P::Baseline> {
        &self.state
    }

    pub fn producer(&self) -> &P {
        &self.producer
    }

    /// Give the producer back (the trap steps aside for a planned switch and is opened again after it).
    pub fn into_producer(self) -> P {
        self.producer
    }

    pub fn producer_mut(&mut self) -> &mut P {
        &mut self.producer
    }

    /// The misses this trap allows since arming (fixed at arming).
    pub fn allowed(&self) -> u64 {
        self.state.allowed
    }

    /// How long to wait before the next step: the poll interval, or less when the producer knows a more
    /// informative moment (slot-aware watching). A look that is already due waits one block, so a halted
    /// chain cannot spin the loop.
    pub fn next_wait(&self) -> Duration {
        let poll = self.settings.poll_interval;
        match self.producer.next_look() {
            None => poll,
            Some(at) => {
                let now = ChainTime::now(self.clock.as_ref());
                if at > now {
                    at.since(now).min(poll)
                } else {
                    self.producer.block_interval().min(poll)
                }
            }
        }
    }

    fn now(&self) -> ChainTime {
        ChainTime::now(self.clock.as_ref())
    }

    /// Store the state, compare-and-swap on the revision this trap last wrote or read.
    ///
    /// Guard first, bookkeeping second: when the store cannot be written (a full disk, a read-only volume)
    /// the trap goes on from memory, alerts once, and reports unhealthy; it still fires when it must. A
    /// conflict (another writer changed the state) or a lock problem stops it: two writers must never both act.
    async fn save(&mut self) -> Result<(), TrapError> {
        // Every transition is saved: the metrics follow the phase from here, stored or not.
        self.export_phase();
        let bytes = self.state.encode()?;
        match self.store.compare_and_swap(self.revision, &bytes).await {
            Ok(revision) => {
                self.revision = Some(revision);
                if self.unsaved.take().is_some() {
                    tracing::info!(store = %self.store.describe(), "the state can be stored again");
                }
                Ok(())
            }
            Err(StoreError::Io(e)) => {
                let reason = e.to_string();
                tracing::error!(error = %reason, phase = self.state.phase.name(),
                    "cannot store the trap's state; guarding from memory");
                if self.unsaved.is_none() {
                    self.unsaved = Some(reason.clone());
                    self.state_not_writable(&reason);
                }
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn state_not_writable(&mut self, reason: &str) {
        self.warn_operator(&format!("state not writable, guarding from memory; free the disk: {reason}"));
    }

    /// A warning that is always sent (the state cannot be written).
    fn warn_operator(&mut self, text: &str) {
        let id = self.producer.identity();
        tracing::warn!(%text, "alerting the operator");
        self.tell(Incident::Warning { witness: id.producer, chain: id.chain, text: text.to_string() });
    }

    /// Tell the operator something that is not a fire, on every channel whose event is chosen, in the
    /// background: a slow or dead channel never delays a look or a swap. [`Self::flush_warnings`] waits for
    /// them before the trap ends.
    fn tell(&mut self, incident: Incident) {
        let alerts = self.alerts.clone();
        self.warnings.spawn(async move { alerts.notify(&incident).await });
    }

    /// Follow blind episodes: the `blind` alert after `blind_alert_after` without a healthy endpoint (once),
    /// `recovered` when a healthy reading returns after it.
    fn track_blindness(&mut self, blind: Option<&str>) {
        let now = self.now();
        let id = self.producer.identity();
        match (blind, self.blind_since) {
            (Some(_), None) => self.blind_since = Some((now, false)),
            (Some(reason), Some((since, false))) if now.since(since) >= self.settings.blind_alert_after => {
                self.blind_since = Some((since, true));
                let secs = now.since(since).as_secs();
                tracing::error!(secs, %reason, "blind: no healthy endpoint; alerting");
                self.tell(Incident::Blind { witness: id.producer, chain: id.chain, secs, reason: reason.to_string() });
            }
            (None, Some((_, alerted))) => {
                self.blind_since = None;
                if alerted {
                    tracing::info!("healthy again after a blind episode");
                    self.tell(Incident::Recovered { witness: id.producer, chain: id.chain });
                }
            }
            _ => {}
        }
    }

    /// Wait (bounded) for the warnings still on their way.
    pub async fn flush_warnings(&mut self) {
        let flush = async { while self.warnings.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(60), flush).await.is_err() {
            tracing::warn!("some warnings could not be delivered before the trap ended");
        }
    }

    /// Forward what the producer noticed (each once) to the log and the operator.
    async fn forward_notices(&mut self) {
        for notice in self.producer.take_notices() {
            let id = self.producer.identity();
            tracing::warn!(%notice, "notice for the operator; alerting");
            self.tell(Incident::Distrust { witness: id.producer, chain: id.chain, text: notice });
        }
    }

    /// Record this instance's last poll. Bookkeeping: a failure never stops the guard, but the operator
    /// hears that the disk is full (once) even while nothing else needs storing.
    async fn record_poll(&mut self, mut poll: LastPoll) {
        if let Some(reason) = &self.unsaved {
            poll.problems.push(format!("state not writable: {reason}"));
        }
        poll.problems.extend(self.producer.troubles());
        let facts = InstanceFacts { last_poll: Some(poll) };
        let written = self.store.put_instance(&facts.encode()).await;
        if written.is_ok() && self.unsaved.is_some() {
            // The disk may have room again: storing the state is the test (and clears the warning).
            if let Err(e) = self.save().await {
                tracing::warn!(error = %e, "the state still cannot be stored");
            }
        }
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot record the last poll; the trap keeps guarding");
            if matches!(e, StoreError::Io(_)) && self.unsaved.is_none() {
                let reason = e.to_string();
                self.unsaved = Some(reason.clone());
                self.state_not_writable(&reason);
            }
        }
    }

    /// One poll-decide-act cycle. In `firing` it finishes the fire; in `fired` it does nothing.
    pub async fn step(&mut self) -> Result<StepOutcome, TrapError> {
        match self.state.phase {
            Phase::Armed => {}
            Phase::Firing { .. } => return self.finish_firing().await.map(StepOutcome::Fired),
            Phase::Fired { .. } | Phase::Switched { .. } => return Ok(StepOutcome::Disarmed),
        }
        let obs = self.producer.observe(&self.state.baseline).await;
        self.forward_notices().await;
        match &obs {
            Observation::Blind(reason) => {
                self.track_blindness(Some(reason));
                self.pulse(alert::heartbeat::Beat::Fail);
            }
            Observation::Reading(_) => {
                self.track_blindness(None);
                self.pulse(alert::heartbeat::Beat::Ok);
            }
        }
        let allowed = self.allowed();
        let decision = decide(allowed, self.last_counter, self.producer.counter_name(), &obs);
        self.export_poll(&obs, &decision);
        self.record_poll(self.last_poll(&obs, &decision)).await;
        match decision {
            Decision::Hold { misses, allowed } => {
                if let Observation::Reading(e) = &obs {
                    self.last_counter = e.counter;
                }
                tracing::debug!(misses, allowed, "holding");
                Ok(StepOutcome::Held { misses, allowed })
            }
            Decision::Blind(reason) => {
                tracing::warn!(%reason, "blind: no trustworthy reading, the trap will not fire on this poll");
                Ok(StepOutcome::Blind(reason))
            }
            Decision::Distrust(reason) => {
                tracing::warn!(%reason, "distrusted reading ignored");
                Ok(StepOutcome::Distrusted(reason))
            }
            Decision::Crossing { misses, allowed } => {
                let Observation::Reading(first) = &obs else { return Ok(StepOutcome::Blind("no reading".into())) };
                let seen_at = self.now();
                let name = self.producer.counter_name();
                tracing::warn!(misses, allowed, counter = ?first.counter, counter_name = name, source = %first.source,
                    "threshold reached; corroborating");
                match self.producer.corroborate(first, &self.state.baseline, allowed).await {
                    Corroboration::Confirmed(e) => {
                        tracing::warn!(misses = e.misses, counter = ?e.counter, source = %e.source,
                            "crossing corroborated: firing");
                        self.last_counter = e.counter;
                        let from = self.producer.canonical_key(&e.current_key);
                        self.begin_firing(e.misses, seen_at, from).await?;
                        self.finish_firing().await.map(StepOutcome::Fired)
                    }
                    Corroboration::Contradicted(e) => {
                        let reason = format!(
                            "{} said {name} {} but {} says {}: not firing",
                            first.source,
                            shown(first),
                            e.source,
                            shown(&e)
                        );
                        tracing::warn!(%reason, "crossing not corroborated");
                        Ok(StepOutcome::Distrusted(reason))
                    }
                    Corroboration::Blind(reason) => {
                        tracing::warn!(%reason, "crossing could not be corroborated; not firing on this poll");
                        Ok(StepOutcome::Blind(reason))
                    }
                }
            }
        }
    }

    fn last_poll(&self, obs: &Observation, decision: &Decision) -> LastPoll {
        let note = match (obs, decision) {
            (Observation::Reading(_), Decision::Distrust(d)) => d.clone(),
            (Observation::Reading(e), _) => format!("from {}", e.source),
            (Observation::Blind(reason), _) => reason.clone(),
        };
        LastPoll::of(self.now(), obs, Some(self.producer.watch_note()), note)
    }

    async fn begin_firing(&mut self, trigger_misses: u64, seen_at: ChainTime, from: String) -> Result<(), TrapError> {
        self.state.phase = Phase::Firing {
            target: self.producer.target(),
            seen_at,
            started_at: self.now(),
            trigger_misses,
            attempts: Vec::new(),
            from: Some(from),
        };
        self.save().await
    }

    /// The key to move on to after a fire to `target` that gave up `from`: the first backup that is neither
    /// on chain nor given up in this incident, then the key after the last (`DISABLE_AFTER_LAST_BACKUP`).
    fn next_after(&self, target: &str, from: Option<&str>) -> Option<String> {
        let given_up = |k: &String| self.state.abandoned.contains(k) || from == Some(k.as_str());
        self.settings
            .backups
            .iter()
            .find(|k| k.as_str() != target && !given_up(k))
            .cloned()
            .or_else(|| self.settings.after_last.clone().filter(|k| k.as_str() != target && !given_up(k)))
    }

    /// Ordered backups: after the fire to the key now on chain, guard it with `next` as the target, from a
    /// fresh baseline, the given-up key remembered. Nothing changes on chain here. If the roles cannot be
    /// taken or no reading comes, the trap stays disarmed and says so.
    async fn move_on(&mut self, next: String) -> Result<bool, TrapError> {
        let (current, from) = match &self.state.phase {
            Phase::Fired { target, from, .. } => (target.clone(), from.clone()),
            other => return Err(TrapError::WrongPhase(other.name())),
        };
        let stay = |trap: &mut Self, why: String| {
            trap.warn_operator(&format!(
                "the trap could not go on guarding {current} with {next} as the next backup ({why}); it stays disarmed"
            ));
        };
        if let Err(why) = self.producer.assume_roles(&current, &next) {
            stay(self, why);
            return Ok(false);
        }
        let block = self.producer.block_interval();
        let mut baseline = None;
        for _ in 0..20 {
            if let Some((_, b)) = self.producer.preflight().await.reading {
                baseline = Some(b);
                break;
            }
            self.clock.sleep(block).await;
        }
        let Some(baseline) = baseline else {
            stay(self, "no fresh reading to count misses from".into());
            return Ok(false);
        };
        let mut abandoned = self.state.abandoned.clone();
        abandoned.extend(from.filter(|f| !abandoned.contains(f)));
        let id = self.producer.identity();
        let mut state = TrapState::armed(&id, self.now(), baseline, self.state.allowed);
        state.roles = Some(state::Roles { current: current.clone(), backup: next.clone() });
        state.abandoned = abandoned;
        let previous = std::mem::replace(&mut self.state, state);
        if let Err(e) = self.save().await {
            self.state = previous;
            return Err(e);
        }
        self.last_counter = None;
        self.export_phase();
        tracing::warn!(current = %current, next = %next, abandoned = ?self.state.abandoned,
            "guarding the backup now on chain; a further miss moves on to the next key");
        self.warn_operator(&format!(
            "now guarding {current} (the backup now producing); if it misses too, the trap moves on to {next}"
        ));
        Ok(true)
    }

    /// Drive the swap to a confirmed key change or to the fire timeout, then alert. Resumable: a restart in
    /// `firing` calls this again and it first checks whether an earlier attempt already took effect.
    async fn finish_firing(&mut self) -> Result<Finish, TrapError> {
        let (trigger_misses, seen_at) = match &self.state.phase {
            Phase::Firing { trigger_misses, seen_at, .. } => (*trigger_misses, *seen_at),
            other => return Err(TrapError::WrongPhase(other.name())),
        };
        // The window counts from this (re)start: a trap that comes back after a long power cut must still
        // try, not declare failure on its first look.
        let deadline = self.now().saturating_add(self.settings.fire_timeout);
        let block = self.producer.block_interval();
        let mut pending_expiry = self.state.attempts().last().map(|a| a.expires_at);
        // A restart re-sends the last attempt while it can still take effect ("Duplicate" counts as accepted),
        // once the first status read has found fresh endpoints to send it to.
        let now = self.now();
        let mut resend = self.state.attempts().last().cloned().and_then(|last| {
            let payload = last.payload?;
            (last.expires_at > now).then_some(SwapAttempt {
                id: last.txid,
                expires_at: last.expires_at,
                label: last.action,
                payload,
            })
        });
        let mut last_problem = String::from("no attempt could be broadcast");
        let outcome = loop {
            let ids: Vec<String> = self.state.attempts().iter().map(|a| a.txid.clone()).collect();
            let status = self.producer.status(&ids, pending_expiry).await;
            self.forward_notices().await;
            match status {
                SwapStatus::InEffect { id } => {
                    tracing::info!(txid = ?id, "swap confirmed: the backup is in effect on chain");
                    break Outcome::Swapped { txid: id };
                }
                SwapStatus::Pending if pending_expiry.is_some() => {
                    if let Some(swap) = resend.take() {
                        tracing::warn!(txid = %swap.id, "re-broadcasting the pending attempt after a restart");
                        if let Err(e) = self.producer.execute(&swap).await {
                            tracing::warn!(error = %e, "re-broadcast failed; will rebuild once it expires");
                        }
                    }
                }
                SwapStatus::Unknown(reason) => {
                    tracing::warn!(%reason, "cannot read the chain while firing");
                    last_problem = reason;
                }
                SwapStatus::Expired | SwapStatus::Pending => pending_expiry = None,
            }
            let now = self.now();
            // Give up only when no attempt can still land: an attempt inside its expiration may yet be included.
            if now >= deadline && pending_expiry.is_none_or(|e| now > e) {
                let reason = format!("not confirmed within {} s: {last_problem}", self.settings.fire_timeout.as_secs());
                tracing::error!(%reason, "firing failed");
                break Outcome::Failed { reason };
            }
            if pending_expiry.is_none() {
                match self.producer.prepare().await {
                    Ok(swap) => match self.attempt(swap, now).await? {
                        Ok(expires) => pending_expiry = Some(expires),
                        Err(problem) => last_problem = problem,
                    },
                    // A swap that would be invalid will be invalid on every attempt: stop and say so.
                    Err(e @ SwapError::Rejected(_)) => {
                        tracing::error!(error = %e, "the swap cannot be made");
                        break Outcome::Failed { reason: e.to_string() };
                    }
                    // No usable key may be one endpoint's stale view: retry until the deadline.
                    Err(e @ (SwapError::Transient(_) | SwapError::NoUsableKey(_))) => {
                        tracing::warn!(error = %e, "cannot build the swap now; retrying");
                        last_problem = e.to_string();
                    }
                }
            }
            self.clock.sleep(block).await;
        };
        let target = self.producer.target();
        let from = match &self.state.phase {
            Phase::Firing { from, .. } => from.clone(),
            _ => None,
        };
        let next = match outcome {
            Outcome::Swapped { .. } => self.next_after(&target, from.as_deref()),
            Outcome::Failed { .. } => None,
        };
        if matches!(outcome, Outcome::Swapped { .. }) && next.is_none() && self.settings.backups.len() > 1 {
            self.warn_operator(&format!(
                "{target} is the last backup: if it misses, nothing moves; the trap stops here"
            ));
        }
        self.state.phase = Phase::Fired {
            target,
            from,
            next,
            seen_at,
            trigger_misses,
            fired_at: self.now(),
            alerts: self.alerts.pending_for(match outcome {
                Outcome::Swapped { .. } => alert::Event::Fired,
                Outcome::Failed { .. } => alert::Event::FireFailed,
            }),
            outcome,
            attempts: self.state.attempts().to_vec(),
        };
        if let (Some(m), Phase::Fired { outcome, .. }) = (&self.metrics, &self.state.phase) {
            m.fire(matches!(outcome, Outcome::Swapped { .. }));
        }
        self.save().await?;
        self.pulse(alert::heartbeat::Beat::Fired);
        self.send_pending_alerts().await
    }

    /// Persist `swap`, fence, execute. The outer error stops the trap (the state cannot be stored); the inner
    /// one is this attempt's failure, retried with a new attempt.
    async fn attempt(&mut self, swap: SwapAttempt, now: ChainTime) -> Result<Result<ChainTime, String>, TrapError> {
        if let Phase::Firing { attempts, .. } = &mut self.state.phase {
            attempts.push(Attempt {
                txid: swap.id.clone(),
                action: swap.label.clone(),
                expires_at: swap.expires_at,
                at: now,
                payload: Some(swap.payload.clone()),
            });
        }
        self.save().await?;
        if let Err(e) = self.producer.fence(&swap).await {
            tracing::warn!(error = %e, "the fence before the swap failed; will retry");
            return Ok(Err(e.to_string()));
        }
        tracing::warn!(txid = %swap.id, action = %swap.label, expires_at = %swap.expires_at, "broadcasting the key swap");
        match self.producer.execute(&swap).await {
            Ok(()) => Ok(Ok(swap.expires_at)),
            Err(e) => {
                tracing::warn!(error = %e, "broadcast failed; will rebuild and retry");
                Ok(Err(e.to_string()))
            }
        }
    }

    /// Send the alerts of a `fired` state that are still pending; record each channel's result.
    pub async fn send_pending_alerts(&mut self) -> Result<Finish, TrapError> {
        let Phase::Fired { outcome, alerts, target, trigger_misses, .. } = &self.state.phase else {
            return Err(TrapError::WrongPhase(self.state.phase.name()));
        };
        let id = self.producer.identity();
        let missed = (*trigger_misses).max(1);
        let incident = match outcome {
            Outcome::Swapped { txid } => Incident::Swapped {
                witness: id.producer,
                chain: id.chain,
                missed,
                new_key: target.clone(),
                txid: txid.clone().unwrap_or_else(|| "(already in effect)".into()),
                by: self.replica.clone(),
            },
            Outcome::Failed { reason } => Incident::SwapFailed {
                witness: id.producer,
                chain: id.chain,
                missed,
                reason: reason.clone(),
                by: self.replica.clone(),
            },
        };
        let mut deliveries = alerts.clone();
        if deliveries.values().any(|d| *d == alert::Delivery::Pending) {
            self.alerts.deliver(&incident, &mut deliveries).await;
            if let Phase::Fired { alerts, .. } = &mut self.state.phase {
                *alerts = deliveries.clone();
            }
            self.save().await?;
        }
        let outcome = outcome_of(&self.state.phase);
        Ok(Finish { outcome, alerts: deliveries })
    }
}

fn outcome_of(phase: &Phase) -> Outcome {
    match phase {
        Phase::Fired { outcome, .. } => outcome.clone(),
        other => Outcome::Failed { reason: format!("the trap is {}", other.name()) },
    }
}

/// A reading as the log shows it: the chain's counter where there is one, else the misses counted.
fn shown(e: &Evidence) -> u64 {
    e.counter.unwrap_or(e.misses)
}

/// Re-arm: a fresh `armed` state from `baseline` (the chain now), whatever the state was. Returns the
/// previous state's phase name, if there was one.
pub async fn rearm<B: crate::chain::Baseline>(
    settings: &TrapSettings,
    store: &dyn StateStore,
    identity: &Identity,
    now: ChainTime,
    baseline: B,
) -> Result<(TrapState<B>, Option<&'static str>), TrapError> {
    let state = arm_state(settings, identity, now, baseline)?;
    // Whatever was stored before (even another version or a corrupt file) is replaced, on its revision.
    let previous = store.load().await?;
    let was = previous.as_ref().and_then(|p| state::AnyState::decode(&p.bytes, &store.describe()).ok());
    store.compare_and_swap(previous.map(|p| p.revision), &state.encode()?).await?;
    tracing::info!(producer = %identity.producer, chain = %identity.chain, baseline = ?state.baseline,
        allowed = state.allowed, "trap re-armed");
    Ok((state, was.map(|w| w.phase.name())))
}

/// How [`run`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Shutdown was requested while armed.
    Stopped,
    /// The state says the trap is disarmed (it fired, or a planned switch disarmed it); nothing was polled
    /// or signed.
    AlreadyFired(Finish),
    /// The trap fired in this run.
    Fired(Finish),
    /// A planned switch asked the armed trap to step aside (`witness-trap switch`); it stopped between two
    /// looks, armed, with nothing in flight.
    Paused,
}

/// Watch until the trap fires or `shutdown` is cancelled. Shutdown is honoured between steps only.
pub async fn run<P: Producer>(trap: &mut Trap<P>, shutdown: CancellationToken) -> Result<RunOutcome, TrapError> {
    run_pausable(trap, shutdown, CancellationToken::new()).await
}

/// [`run`], also stopping (as [`RunOutcome::Paused`]) when `pause` is cancelled while the trap is armed:
/// between two looks, never while firing.
pub async fn run_pausable<P: Producer>(
    trap: &mut Trap<P>,
    shutdown: CancellationToken,
    pause: CancellationToken,
) -> Result<RunOutcome, TrapError> {
    let outcome = watch(trap, shutdown, pause).await;
    trap.flush_warnings().await;
    outcome
}

async fn watch<P: Producer>(
    trap: &mut Trap<P>,
    shutdown: CancellationToken,
    pause: CancellationToken,
) -> Result<RunOutcome, TrapError> {
    match &trap.state.phase {
        Phase::Fired { next: Some(next), .. } => {
            // Ordered backups: the alerts of the fire first, then go on guarding.
            let next = next.clone();
            let finish = trap.send_pending_alerts().await?;
            if !trap.move_on(next).await? {
                return Ok(RunOutcome::AlreadyFired(finish));
            }
        }
        Phase::Fired { .. } => {
            let finish = trap.send_pending_alerts().await?;
            let id = trap.producer.identity();
            let text = match &finish.outcome {
                Outcome::Swapped { txid } => format!(
                    "it fired before (txid {}); it neither polls nor signs; re-arm with `witness-trap rearm`",
                    txid.as_deref().unwrap_or("none")
                ),
                Outcome::Failed { reason } => format!("it fired before and FAILED ({reason}); act, then rearm"),
            };
            trap.tell(Incident::DisarmedStart { witness: id.producer, chain: id.chain, text });
            return Ok(RunOutcome::AlreadyFired(finish));
        }
        Phase::Switched { to, txid, .. } => {
            let id = trap.producer.identity();
            let text = format!(
                "a planned switch moved the key to {to} (txid {txid}); it neither polls nor signs; re-arm with \
                 `witness-trap rearm` once .env names the new roles"
            );
            let finish = Finish { outcome: Outcome::Swapped { txid: Some(txid.clone()) }, alerts: Deliveries::new() };
            trap.tell(Incident::DisarmedStart { witness: id.producer, chain: id.chain, text });
            return Ok(RunOutcome::AlreadyFired(finish));
        }
        Phase::Firing { attempts, .. } => {
            tracing::warn!(attempts = attempts.len(), "restarted while firing: finishing the same swap");
        }
        Phase::Armed => {}
    }
    loop {
        match trap.step().await? {
            StepOutcome::Fired(f) => {
                let next = match &trap.state.phase {
                    Phase::Fired { next: Some(n), .. } => Some(n.clone()),
                    _ => None,
                };
                let moved_on = match next {
                    Some(next) => trap.move_on(next).await?,
                    None => false,
                };
                if !moved_on {
                    return Ok(RunOutcome::Fired(f));
                }
            }
            // Cannot happen (an armed trap becomes fired only inside step), but never panic over it.
            StepOutcome::Disarmed => return Ok(RunOutcome::Stopped),
            _ => {}
        }
        let wait = trap.next_wait();
        tokio::select! {
            _ = shutdown.cancelled() => {
                tracing::info!("shutdown requested; the trap stops armed and resumes on the next start");
                return Ok(RunOutcome::Stopped);
            }
            _ = pause.cancelled() => {
                tracing::info!("a planned switch asked the trap to step aside; it stops armed, between two looks");
                return Ok(RunOutcome::Paused);
            }
            _ = trap.clock.sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests;
