//! The trap: arm, watch the missed-block counter, fire the key swap exactly once, confirm it, alert, disarm.
//!
//! ```text
//!            observe ──► decide ──► Hold / Blind / Distrust ──► sleep POLL_INTERVAL ──┐
//!   armed ◄──────────────────────────────────────────────────────────────────────────┘
//!     │ Crossing, corroborated
//!     ▼
//!   firing   (persisted first)  prepare ─► persist attempt ─► broadcast ─► status each block
//!     │                           ▲          InEffect ─► fired(swapped)
//!     │                           └───────── Expired / refused, until FIRE_TIMEOUT ─► fired(failed)
//!     ▼
//!   fired    (persisted, alert pending) ─► SMS ─► alert sent/failed ─► exit; restarts stay disarmed
//! ```
//! [`Trap::step`] does one poll-decide-act cycle; [`run`] only loops, sleeps and checks for shutdown
//! between steps, never inside firing. The trap sees the chain only through [`Producer`].

pub mod decide;
pub mod state;

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::alert::{self, Incident, TwilioSettings};
use crate::producer::{Corroboration, Observation, PreparedSwap, Producer, SwapError, SwapStatus};
use chain_clock::SharedClock;
use decide::{decide, Decision};
use state::{AlertState, Attempt, LastPoll, Outcome, Phase, StateError, TrapState};

/// When to fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Fire when the counter reaches this value (`THRESHOLD`).
    Absolute(u64),
    /// Fire when the counter has grown by this much since arming (`MISSED_BLOCKS_ALLOWED`).
    Allowed(u64),
}

impl Trigger {
    /// The absolute counter value at which to fire, given the counter at arming.
    pub fn threshold(&self, baseline: u64) -> u64 {
        match *self {
            Trigger::Absolute(t) => t,
            Trigger::Allowed(n) => baseline.saturating_add(n),
        }
    }
}

/// The trap's own settings.
#[derive(Debug, Clone)]
pub struct TrapSettings {
    pub state_file: PathBuf,
    pub poll_interval: Duration,
    pub trigger: Trigger,
    /// How long firing may take, from the first attempt, before it is declared failed.
    pub fire_timeout: Duration,
    /// `None`: no SMS (the alert state says so).
    pub alert: Option<TwilioSettings>,
}

/// Why the trap could not go on.
#[derive(Debug, thiserror::Error)]
pub enum TrapError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("total_missed is already {current}, at or past THRESHOLD {threshold}: arming now would fire at once")]
    ThresholdReached { current: u64, threshold: u64 },
    #[error("no state file yet and no reading to arm from")]
    NoBaseline,
    #[error("the trap was armed to fire at total_missed {recorded}, but the settings now say {configured}; run `witness-trap rearm` to arm with the new trigger")]
    ThresholdChanged { recorded: u64, configured: u64 },
    #[error("the state file is firing toward {recorded}, but the backup key is now {configured}; the trap never swaps to another key than the one it started with")]
    TargetChanged { recorded: String, configured: String },
}

/// What one [`Trap::step`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    Held {
        missed: u64,
        threshold: u64,
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
    pub alert: AlertState,
}

impl Finish {
    pub fn swapped(&self) -> bool {
        matches!(self.outcome, Outcome::Swapped { .. })
    }
    pub fn alert_ok(&self) -> bool {
        matches!(self.alert, AlertState::Sent | AlertState::NotConfigured)
    }
}

/// The trap over one producer.
pub struct Trap<P: Producer> {
    settings: TrapSettings,
    producer: P,
    clock: SharedClock,
    state: TrapState,
    last_missed: Option<u64>,
}

impl<P: Producer> Trap<P> {
    /// Load the state file, or arm from `current` (the counter now) if there is none.
    pub fn open(
        settings: TrapSettings,
        producer: P,
        clock: SharedClock,
        current: Option<u64>,
    ) -> Result<Self, TrapError> {
        let (witness, chain) = producer.identity();
        let state = match TrapState::load(&settings.state_file, &witness, &chain)? {
            Some(s) => s,
            None => {
                let baseline = current.ok_or(TrapError::NoBaseline)?;
                let state = arm_state(&settings, &witness, &chain, clock.now_secs(), baseline)?;
                state.save(&settings.state_file)?;
                tracing::info!(witness = %witness, chain = %chain, baseline_missed = baseline,
                    threshold = settings.trigger.threshold(baseline), "trap armed");
                state
            }
        };
        if let Phase::Firing { target, .. } = &state.phase {
            if *target != producer.target() {
                return Err(TrapError::TargetChanged { recorded: target.clone(), configured: producer.target() });
            }
        }
        // The trigger is fixed at arming: a THRESHOLD edited below the counter must not fire a healthy witness.
        let configured = settings.trigger.threshold(state.baseline_missed);
        if let (Phase::Armed, Some(recorded)) = (&state.phase, state.threshold) {
            if recorded != configured {
                return Err(TrapError::ThresholdChanged { recorded, configured });
            }
        }
        Ok(Self { settings, producer, clock, state, last_missed: None })
    }

    pub fn state(&self) -> &TrapState {
        &self.state
    }

    pub fn producer(&self) -> &P {
        &self.producer
    }

    pub fn producer_mut(&mut self) -> &mut P {
        &mut self.producer
    }

    /// The absolute counter value at which this trap fires (fixed at arming).
    pub fn threshold(&self) -> u64 {
        self.state.threshold.unwrap_or_else(|| self.settings.trigger.threshold(self.state.baseline_missed))
    }

    /// How long to wait before the next step: the poll interval, or less when the producer knows a more
    /// informative moment (slot-aware watching). A look that is already due waits one block, so a halted
    /// chain cannot spin the loop.
    pub fn next_wait(&self) -> Duration {
        let poll = self.settings.poll_interval;
        match self.producer.next_look() {
            None => poll,
            Some(at) => {
                let at = Duration::from_secs(at);
                let now = self.clock.now();
                if at > now {
                    (at - now).min(poll)
                } else {
                    self.producer.block_interval().min(poll)
                }
            }
        }
    }

    fn save(&self) -> Result<(), TrapError> {
        Ok(self.state.save(&self.settings.state_file)?)
    }

    /// One poll-decide-act cycle. In `firing` it finishes the fire; in `fired` it does nothing.
    pub async fn step(&mut self) -> Result<StepOutcome, TrapError> {
        match self.state.phase {
            Phase::Armed => {}
            Phase::Firing { .. } => return self.finish_firing().await.map(StepOutcome::Fired),
            Phase::Fired { .. } => return Ok(StepOutcome::Disarmed),
        }
        let obs = self.producer.observe().await;
        let threshold = self.threshold();
        let decision = decide(threshold, self.last_missed, &obs);
        self.state.last_poll = Some(self.last_poll(&obs, &decision));
        self.save()?;
        match decision {
            Decision::Hold { missed, threshold } => {
                self.last_missed = Some(missed);
                tracing::debug!(missed, threshold, "holding");
                Ok(StepOutcome::Held { missed, threshold })
            }
            Decision::Blind(reason) => {
                tracing::warn!(%reason, "blind: no trustworthy reading, the trap will not fire on this poll");
                Ok(StepOutcome::Blind(reason))
            }
            Decision::Distrust(reason) => {
                tracing::warn!(%reason, "distrusted reading ignored");
                Ok(StepOutcome::Distrusted(reason))
            }
            Decision::Crossing { missed, threshold } => {
                let Observation::Reading(first) = &obs else { return Ok(StepOutcome::Blind("no reading".into())) };
                let seen_at = self.clock.now_secs();
                tracing::warn!(missed, threshold, source = %first.source, "threshold reached; corroborating");
                match self.producer.corroborate(first, threshold).await {
                    Corroboration::Confirmed(r) => {
                        tracing::warn!(missed = r.missed, source = %r.source, "crossing corroborated: firing");
                        self.last_missed = Some(r.missed);
                        self.begin_firing(r.missed, seen_at)?;
                        self.finish_firing().await.map(StepOutcome::Fired)
                    }
                    Corroboration::Contradicted(r) => {
                        let reason = format!(
                            "{} said total_missed {} but {} says {}: not firing",
                            first.source, first.missed, r.source, r.missed
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
        let at = self.clock.now_secs();
        match obs {
            Observation::Reading(r) => LastPoll {
                at,
                healthy: true,
                missed: Some(r.missed),
                height: Some(r.height),
                current_key: Some(r.current_key.clone()),
                watch: Some(self.producer.watch_note()),
                note: match decision {
                    Decision::Distrust(d) => d.clone(),
                    _ => format!("from {}", r.source),
                },
            },
            Observation::Blind(reason) => LastPoll {
                at,
                healthy: false,
                missed: None,
                height: None,
                current_key: None,
                watch: Some(self.producer.watch_note()),
                note: reason.clone(),
            },
        }
    }

    fn begin_firing(&mut self, trigger_missed: u64, seen_at: u64) -> Result<(), TrapError> {
        self.state.phase = Phase::Firing {
            target: self.producer.target(),
            seen_at,
            started_at: self.clock.now_secs(),
            trigger_missed,
            attempts: Vec::new(),
        };
        self.save()
    }

    /// Drive the swap to a confirmed key change or to the fire timeout, then alert. Resumable: a restart in
    /// `firing` calls this again and it first checks whether an earlier attempt already took effect.
    async fn finish_firing(&mut self) -> Result<Finish, TrapError> {
        let (trigger_missed, seen_at) = match &self.state.phase {
            Phase::Firing { trigger_missed, seen_at, .. } => (*trigger_missed, *seen_at),
            _ => return Err(TrapError::NoBaseline),
        };
        // The window counts from this (re)start: a trap that comes back after a long power cut must still
        // try, not declare failure on its first look.
        let deadline = self.clock.now_secs().saturating_add(self.settings.fire_timeout.as_secs());
        let block = self.producer.block_interval();
        let mut pending_expiry = self.attempts().last().map(|a| a.expires_at);
        // A restart re-sends the last attempt while it can still be included ("Duplicate" counts as accepted),
        // once the first status read has found fresh endpoints to send it to.
        let mut resend = self.attempts().last().cloned().and_then(|last| {
            let payload = last.payload?;
            (last.expires_at > self.clock.now_secs()).then_some(PreparedSwap {
                id: last.txid,
                expires_at: last.expires_at,
                action: last.action,
                payload,
            })
        });
        let mut last_problem = String::from("no attempt could be broadcast");
        let outcome = loop {
            match self.producer.swap_status(pending_expiry).await {
                SwapStatus::InEffect => {
                    let txid = self.attempts().last().map(|a| a.txid.clone());
                    tracing::info!(txid = ?txid, "swap confirmed: the chain now expects the backup key");
                    break Outcome::Swapped { txid };
                }
                SwapStatus::Pending if pending_expiry.is_some() => {
                    if let Some(swap) = resend.take() {
                        tracing::warn!(txid = %swap.id, "re-broadcasting the pending attempt after a restart");
                        if let Err(e) = self.producer.broadcast(&swap).await {
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
            let now = self.clock.now_secs();
            // Give up only when no attempt can still land: an attempt inside its expiration may yet be included.
            if now >= deadline && pending_expiry.is_none_or(|e| now > e) {
                let reason = format!("not confirmed within {} s: {last_problem}", self.settings.fire_timeout.as_secs());
                tracing::error!(%reason, "firing failed");
                break Outcome::Failed { reason };
            }
            if pending_expiry.is_none() {
                match self.producer.prepare_swap().await {
                    Ok(swap) => {
                        if let Phase::Firing { attempts, .. } = &mut self.state.phase {
                            attempts.push(Attempt {
                                txid: swap.id.clone(),
                                action: swap.action.clone(),
                                expires_at: swap.expires_at,
                                at: now,
                                payload: Some(swap.payload.clone()),
                            });
                        }
                        self.save()?;
                        tracing::warn!(txid = %swap.id, action = %swap.action, expires_at = swap.expires_at, "broadcasting the key swap");
                        match self.producer.broadcast(&swap).await {
                            Ok(()) => pending_expiry = Some(swap.expires_at),
                            Err(e) => {
                                tracing::warn!(error = %e, "broadcast failed; will rebuild and retry");
                                last_problem = e.to_string();
                            }
                        }
                    }
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
        let alert = if self.settings.alert.is_some() { AlertState::Pending } else { AlertState::NotConfigured };
        self.state.phase = Phase::Fired {
            target: self.producer.target(),
            seen_at,
            trigger_missed,
            fired_at: self.clock.now_secs(),
            outcome,
            alert,
            attempts: self.attempts().to_vec(),
        };
        self.save()?;
        self.send_pending_alert().await
    }

    fn attempts(&self) -> &[Attempt] {
        match &self.state.phase {
            Phase::Firing { attempts, .. } | Phase::Fired { attempts, .. } => attempts,
            Phase::Armed => &[],
        }
    }

    /// Send the SMS of a `fired` state whose alert is still pending; record the result.
    pub async fn send_pending_alert(&mut self) -> Result<Finish, TrapError> {
        let Phase::Fired { outcome, alert, target, trigger_missed, .. } = &self.state.phase else {
            return Err(TrapError::NoBaseline);
        };
        let (witness, chain) = self.producer.identity();
        let missed = trigger_missed.saturating_sub(self.state.baseline_missed).max(1);
        let incident = match outcome {
            Outcome::Swapped { txid } => Incident::Swapped {
                witness,
                chain,
                missed,
                new_key: target.clone(),
                txid: txid.clone().unwrap_or_else(|| "(already in effect)".into()),
            },
            Outcome::Failed { reason } => Incident::SwapFailed { witness, chain, missed, reason: reason.clone() },
        };
        let new_alert = match (&self.settings.alert, alert) {
            (Some(twilio), AlertState::Pending) => {
                let body = incident.sms_text();
                tracing::info!(%body, "sending the alert");
                let failures: Vec<String> = alert::twilio::send_sms(twilio, &body, self.clock.as_ref())
                    .await
                    .into_iter()
                    .filter_map(|r| r.err().map(|e| e.to_string()))
                    .collect();
                if failures.is_empty() {
                    AlertState::Sent
                } else {
                    let reason = failures.join("; ");
                    tracing::error!(%reason, "the alert SMS was not delivered");
                    AlertState::Failed { reason }
                }
            }
            (_, other) => other.clone(),
        };
        if let Phase::Fired { alert, .. } = &mut self.state.phase {
            *alert = new_alert.clone();
        }
        self.save()?;
        let Phase::Fired { outcome, .. } = &self.state.phase else { return Err(TrapError::NoBaseline) };
        Ok(Finish { outcome: outcome.clone(), alert: new_alert })
    }
}

fn arm_state(
    settings: &TrapSettings,
    witness: &str,
    chain: &str,
    now: u64,
    baseline: u64,
) -> Result<TrapState, TrapError> {
    if let Trigger::Absolute(threshold) = settings.trigger {
        if baseline >= threshold {
            return Err(TrapError::ThresholdReached { current: baseline, threshold });
        }
    }
    let mut state = TrapState::armed(witness, chain, now, baseline);
    state.threshold = Some(settings.trigger.threshold(baseline));
    Ok(state)
}

/// Re-arm: a fresh `armed` state with the counter now as baseline, whatever the state was.
pub fn rearm(
    settings: &TrapSettings,
    witness: &str,
    chain: &str,
    now: u64,
    current: u64,
) -> Result<TrapState, TrapError> {
    let state = arm_state(settings, witness, chain, now, current)?;
    state.save(&settings.state_file)?;
    tracing::info!(witness, chain, baseline_missed = current, threshold = ?state.threshold, "trap re-armed");
    Ok(state)
}

/// How [`run`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Shutdown was requested while armed.
    Stopped,
    /// The state file says the trap already fired; nothing was polled or signed.
    AlreadyFired(Finish),
    /// The trap fired in this run.
    Fired(Finish),
}

/// Watch until the trap fires or `shutdown` is cancelled. Shutdown is honoured between steps only.
pub async fn run<P: Producer>(trap: &mut Trap<P>, shutdown: CancellationToken) -> Result<RunOutcome, TrapError> {
    match &trap.state.phase {
        Phase::Fired { alert, outcome, .. } => {
            let finish = if *alert == AlertState::Pending {
                trap.send_pending_alert().await?
            } else {
                Finish { outcome: outcome.clone(), alert: alert.clone() }
            };
            return Ok(RunOutcome::AlreadyFired(finish));
        }
        Phase::Firing { attempts, .. } => {
            tracing::warn!(attempts = attempts.len(), "restarted while firing: finishing the same swap");
        }
        Phase::Armed => {}
    }
    loop {
        match trap.step().await? {
            StepOutcome::Fired(f) => return Ok(RunOutcome::Fired(f)),
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
            _ = trap.clock.sleep(wait) => {}
        }
    }
}
