//! The trap driven through the `Producer` boundary by a scripted producer: every phase, in order, with no
//! chain and no network. The producer here has no counter of its own (misses are counted, as on Antelope),
//! so these tests also show that nothing in the trap is Hive/Steem-shaped.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::*;
use crate::alert::{Delivery, Notifier, SendFuture};
use crate::chain::{Baseline, Evidence};
use crate::store::MemoryStore;
use chain_clock::ScaledClock;

/// What arming records for the scripted chain: a height, no counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ArmedAt {
    height: u64,
}

impl Baseline for ArmedAt {
    fn counter(&self) -> Option<u64> {
        None
    }
    fn from_legacy_counter(_: u64) -> Option<Self> {
        None
    }
}

/// Answers, in order, for each call; and a log of the calls.
#[derive(Default)]
struct Script {
    observations: VecDeque<Observation>,
    corroborations: VecDeque<Corroboration>,
    prepares: VecDeque<Result<SwapAttempt, SwapError>>,
    executes: VecDeque<Result<(), SwapError>>,
    statuses: VecDeque<SwapStatus>,
    log: Vec<String>,
}

struct Scripted {
    script: Arc<Mutex<Script>>,
    store: Arc<MemoryStore>,
}

impl Scripted {
    fn with<T>(&self, f: impl FnOnce(&mut Script) -> T) -> T {
        f(&mut self.script.lock().expect("script"))
    }

    /// The phase stored now, for checking what was persisted before an action.
    fn stored_phase(&self) -> String {
        let Some(bytes) = self.store.shared() else { return "nothing".into() };
        let state = TrapState::<ArmedAt>::decode(&bytes, "memory").expect("stored state decodes");
        format!("{}/{}", state.phase.name(), state.attempts().len())
    }
}

impl Producer for Scripted {
    type Baseline = ArmedAt;

    fn identity(&self) -> Identity {
        Identity { producer: "prod".into(), chain: "scripted".into() }
    }
    fn target(&self) -> String {
        "BACKUP".into()
    }
    fn block_interval(&self) -> Duration {
        Duration::from_millis(500)
    }
    async fn preflight(&mut self) -> crate::chain::Preflight<ArmedAt> {
        unreachable!("the trap never runs the preflight; the service does")
    }
    async fn dry_run(&mut self) -> Result<SwapAttempt, SwapError> {
        unreachable!("the trap never dry-runs")
    }
    async fn observe(&mut self, baseline: &ArmedAt) -> Observation {
        self.with(|s| {
            s.log.push(format!("observe from {}", baseline.height));
            s.observations.pop_front().unwrap_or(Observation::Blind("script ended".into()))
        })
    }
    async fn corroborate(&mut self, first: &Evidence, _: &ArmedAt, allowed: u64) -> Corroboration {
        self.with(|s| {
            s.log.push(format!("corroborate {} of {allowed}", first.misses));
            s.corroborations.pop_front().unwrap_or(Corroboration::Blind("script ended".into()))
        })
    }
    async fn prepare(&mut self) -> Result<SwapAttempt, SwapError> {
        self.with(|s| {
            s.log.push("prepare".into());
            s.prepares.pop_front().unwrap_or(Err(SwapError::Transient("script ended".into())))
        })
    }
    async fn fence(&mut self, attempt: &SwapAttempt) -> Result<(), SwapError> {
        let stored = self.stored_phase();
        self.with(|s| s.log.push(format!("fence {} (stored {stored})", attempt.id)));
        Ok(())
    }
    async fn execute(&mut self, attempt: &SwapAttempt) -> Result<(), SwapError> {
        self.with(|s| {
            s.log.push(format!("execute {}", attempt.id));
            s.executes.pop_front().unwrap_or(Err(SwapError::Transient("script ended".into())))
        })
    }
    async fn status(&mut self, _attempts: &[String], expires_at: Option<ChainTime>) -> SwapStatus {
        self.with(|s| {
            s.log.push(format!("status {}", if expires_at.is_some() { "pending" } else { "none" }));
            s.statuses.pop_front().unwrap_or(SwapStatus::Unknown("script ended".into()))
        })
    }
}

struct FakeChannel {
    ok: bool,
    sent: Mutex<Vec<String>>,
}

impl Notifier for FakeChannel {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn send<'a>(&'a self, incident: &'a Incident) -> SendFuture<'a> {
        self.sent.lock().expect("sent").push(incident.sms_text());
        let ok = self.ok;
        Box::pin(async move {
            if ok {
                Ok(())
            } else {
                Err("channel down".into())
            }
        })
    }
}

fn evidence(misses: u64) -> Evidence {
    Evidence {
        misses,
        counter: None,
        height: 100 + misses,
        chain_time: ChainTime::from_millis(1_000_500),
        source: "scripted".into(),
        source_index: 0,
        current_key: "PRIMARY".into(),
    }
}

fn attempt(id: &str, expires_in: Duration, clock: &SharedClock) -> SwapAttempt {
    SwapAttempt {
        id: id.into(),
        expires_at: ChainTime::now(clock.as_ref()).saturating_add(expires_in),
        label: "scripted_swap".into(),
        payload: serde_json::json!({ "id": id }),
    }
}

struct Rig {
    script: Arc<Mutex<Script>>,
    store: Arc<MemoryStore>,
    channel: Arc<FakeChannel>,
    clock: SharedClock,
}

impl Rig {
    fn new(channel_ok: bool) -> Self {
        Self {
            script: Arc::new(Mutex::new(Script::default())),
            store: Arc::new(MemoryStore::new()),
            channel: Arc::new(FakeChannel { ok: channel_ok, sent: Mutex::new(Vec::new()) }),
            // 1000× real time: a 0.5 s block passes in half a millisecond.
            clock: Arc::new(ScaledClock::starting_now(1000.0)),
        }
    }

    async fn open(&self, allowed: u64) -> Result<Trap<Scripted>, TrapError> {
        let producer = Scripted { script: self.script.clone(), store: self.store.clone() };
        let settings = TrapSettings {
            poll_interval: Duration::from_secs(30),
            trigger: Trigger::Allowed(allowed),
            fire_timeout: Duration::from_secs(6000),
            blind_alert_after: Duration::from_secs(300),
            backups: Vec::new(),
            after_last: None,
        };
        let alerts = Fanout::new(vec![self.channel.clone() as Arc<dyn Notifier>]);
        Trap::open(settings, producer, self.clock.clone(), self.store.clone(), alerts, Some(ArmedAt { height: 100 }))
            .await
    }

    fn script(&self, f: impl FnOnce(&mut Script)) {
        f(&mut self.script.lock().expect("script"))
    }

    fn log(&self) -> Vec<String> {
        self.script.lock().expect("script").log.clone()
    }

    fn stored(&self) -> TrapState<ArmedAt> {
        TrapState::decode(&self.store.shared().expect("stored"), "memory").expect("decodes")
    }
}

#[tokio::test]
async fn every_phase_through_the_boundary() {
    let rig = Rig::new(true);
    let mut trap = rig.open(1).await.expect("arms");
    assert_eq!(rig.stored().phase, Phase::Armed, "arming is stored before the first look");
    assert_eq!(rig.stored().baseline, ArmedAt { height: 100 });
    let a = attempt("A", Duration::from_secs(30), &rig.clock);
    let b = attempt("B", Duration::from_secs(30), &rig.clock);
    rig.script(|s| {
        s.observations.extend([
            Observation::Reading(evidence(0)),
            Observation::Blind("every endpoint stale".into()),
            Observation::Reading(evidence(1)),
            Observation::Reading(evidence(1)),
        ]);
        s.corroborations.extend([Corroboration::Contradicted(evidence(0)), Corroboration::Confirmed(evidence(1))]);
        s.prepares.extend([Ok(a.clone()), Ok(b.clone())]);
        s.executes.extend([Err(SwapError::Transient("node down".into())), Ok(())]);
        s.statuses.extend([
            SwapStatus::Pending,
            SwapStatus::Unknown("one bad read".into()),
            SwapStatus::Pending,
            SwapStatus::InEffect { id: Some("B".into()) },
        ]);
    });

    assert_eq!(trap.step().await.expect("step"), StepOutcome::Held { misses: 0, allowed: 1 });
    assert!(matches!(trap.step().await.expect("step"), StepOutcome::Blind(r) if r.contains("stale")));
    let StepOutcome::Distrusted(why) = trap.step().await.expect("step") else { panic!("a contradicted crossing") };
    assert!(why.contains("not firing"), "{why}");
    assert_eq!(rig.stored().phase, Phase::Armed, "a contradicted crossing changes nothing");

    let StepOutcome::Fired(finish) = trap.step().await.expect("step") else { panic!("fires") };
    assert_eq!(finish.outcome, Outcome::Swapped { txid: Some("B".into()) });
    assert!(finish.swapped() && finish.alert_ok());
    assert_eq!(finish.alerts["fake"], Delivery::Sent);
    assert_eq!(
        rig.log(),
        [
            "observe from 100",
            "observe from 100",
            "observe from 100",
            "corroborate 1 of 1",
            "observe from 100",
            "corroborate 1 of 1",
            "status none",
            "prepare",
            "fence A (stored firing/1)",
            "execute A",
            "status none",
            "prepare",
            "fence B (stored firing/2)",
            "execute B",
            "status pending",
            "status pending",
        ],
        "each attempt is stored before its fence and its execution"
    );
    let stored = rig.stored();
    let Phase::Fired { trigger_misses, attempts, alerts, target, .. } = &stored.phase else { panic!("{stored:?}") };
    assert_eq!((*trigger_misses, target.as_str()), (1, "BACKUP"));
    assert_eq!(attempts.iter().map(|a| a.txid.as_str()).collect::<Vec<_>>(), ["A", "B"]);
    assert_eq!(attempts[1].payload, Some(b.payload.clone()));
    assert_eq!(alerts["fake"], Delivery::Sent);
    assert_eq!(rig.channel.sent.lock().expect("sent").len(), 1, "one alert");
    assert!(rig.channel.sent.lock().expect("sent")[0].contains("FIRED @prod scripted"));

    assert_eq!(trap.step().await.expect("step"), StepOutcome::Disarmed);
    assert_eq!(rig.log().len(), 16, "a fired trap neither looks nor acts");
}

#[tokio::test]
async fn a_restart_in_firing_resends_the_recorded_attempt_and_never_prepares_another() {
    let rig = Rig::new(true);
    let recorded = attempt("R", Duration::from_secs(3600), &rig.clock);
    let mut state = TrapState::armed(
        &Identity { producer: "prod".into(), chain: "scripted".into() },
        ChainTime::now(rig.clock.as_ref()),
        ArmedAt { height: 100 },
        1,
    );
    state.phase = Phase::Firing {
        from: None,
        target: "BACKUP".into(),
        seen_at: ChainTime::now(rig.clock.as_ref()),
        started_at: ChainTime::now(rig.clock.as_ref()),
        trigger_misses: 1,
        attempts: vec![Attempt {
            txid: recorded.id.clone(),
            action: recorded.label.clone(),
            expires_at: recorded.expires_at,
            at: ChainTime::now(rig.clock.as_ref()),
            payload: Some(recorded.payload.clone()),
        }],
    };
    rig.store.compare_and_swap(None, &state.encode().expect("encodes")).await.expect("stored");
    rig.script(|s| {
        s.executes.push_back(Ok(()));
        s.statuses.extend([SwapStatus::Pending, SwapStatus::InEffect { id: Some("R".into()) }]);
    });
    let mut trap = rig.open(1).await.expect("resumes");
    let RunOutcome::Fired(finish) = run(&mut trap, CancellationToken::new()).await.expect("runs") else {
        panic!("finishes the fire")
    };
    assert_eq!(finish.outcome, Outcome::Swapped { txid: Some("R".into()) });
    assert_eq!(rig.log(), ["status pending", "execute R", "status pending"]);
}

#[tokio::test]
async fn a_swap_that_can_never_be_made_fails_and_a_dead_channel_is_recorded() {
    let rig = Rig::new(false);
    let mut trap = rig.open(2).await.expect("arms");
    rig.script(|s| {
        s.observations.push_back(Observation::Reading(evidence(3)));
        s.corroborations.push_back(Corroboration::Confirmed(evidence(3)));
        s.statuses.push_back(SwapStatus::Pending);
        s.prepares.push_back(Err(SwapError::Rejected("invalid operation".into())));
    });
    let StepOutcome::Fired(finish) = trap.step().await.expect("step") else { panic!("fires") };
    assert!(matches!(&finish.outcome, Outcome::Failed { reason } if reason.contains("invalid operation")));
    assert!(!finish.alert_ok());
    assert_eq!(finish.alerts["fake"], Delivery::Failed { reason: "channel down".into() });
    assert!(!rig.log().iter().any(|l| l.starts_with("execute")), "nothing executed: {:?}", rig.log());
    // A restart does not resend a failed channel: only pending ones go out again.
    let mut trap = rig.open(2).await.expect("reopens");
    let RunOutcome::AlreadyFired(again) = run(&mut trap, CancellationToken::new()).await.expect("runs") else {
        panic!("already fired")
    };
    assert_eq!(again.alerts, finish.alerts);
    assert_eq!(rig.channel.sent.lock().expect("sent").len(), 1);
}

#[tokio::test]
async fn the_trigger_is_fixed_at_arming_and_a_stale_writer_is_refused() {
    let rig = Rig::new(true);
    drop(rig.open(1).await.expect("arms"));
    assert!(matches!(rig.open(2).await, Err(TrapError::TriggerChanged { recorded: 1, configured: 2 })));
    // Another writer changes the stored state under an open trap: its next save is refused, not merged.
    let mut trap = rig.open(1).await.expect("resumes");
    let stored = rig.store.load().await.expect("loads").expect("stored");
    rig.store.compare_and_swap(Some(stored.revision), &stored.bytes).await.expect("another writer");
    rig.script(|s| {
        s.observations.push_back(Observation::Reading(evidence(1)));
        s.corroborations.push_back(Corroboration::Confirmed(evidence(1)));
    });
    let e = trap.step().await.expect_err("the firing state cannot be stored over a newer revision");
    assert!(e.to_string().contains("changed since it was read"), "{e}");
    assert!(!rig.log().iter().any(|l| l == "prepare"), "nothing prepared without the stored firing state");
}

/// A store whose disk can fill up: writes fail with an I/O error while `full`.
struct FillingStore {
    inner: MemoryStore,
    full: std::sync::atomic::AtomicBool,
}

impl FillingStore {
    fn disk_full() -> StoreError {
        StoreError::Io(crate::store::atomic::PersistError::Write {
            path: "/state/witness-trap-state.json".into(),
            source: std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device"),
        })
    }
    fn is_full(&self) -> bool {
        self.full.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl StateStore for FillingStore {
    fn describe(&self) -> String {
        "filling".into()
    }
    fn load(&self) -> crate::store::StoreFuture<'_, Option<crate::store::Stored>> {
        self.inner.load()
    }
    fn compare_and_swap<'a>(
        &'a self,
        expected: Option<Revision>,
        bytes: &'a [u8],
    ) -> crate::store::StoreFuture<'a, Revision> {
        if self.is_full() {
            return Box::pin(async { Err(Self::disk_full()) });
        }
        self.inner.compare_and_swap(expected, bytes)
    }
    fn put_instance<'a>(&'a self, bytes: &'a [u8]) -> crate::store::StoreFuture<'a, ()> {
        if self.is_full() {
            return Box::pin(async { Err(Self::disk_full()) });
        }
        self.inner.put_instance(bytes)
    }
    fn load_instance(&self) -> crate::store::StoreFuture<'_, Option<Vec<u8>>> {
        self.inner.load_instance()
    }
}

/// Issue 12 case 1: a full disk never stops the guard. The trap keeps watching from memory, says so
/// (an alert, and a problem in the poll facts when they can be written), fires when it must, and still
/// alerts after the swap landed.
#[tokio::test]
async fn a_full_disk_never_stops_the_guard() {
    let rig = Rig::new(true);
    let store = Arc::new(FillingStore { inner: MemoryStore::new(), full: false.into() });
    let producer = Scripted { script: rig.script.clone(), store: Arc::new(MemoryStore::new()) };
    let settings = TrapSettings {
        poll_interval: Duration::from_secs(30),
        trigger: Trigger::Allowed(1),
        fire_timeout: Duration::from_secs(6000),
        blind_alert_after: Duration::from_secs(300),
        backups: Vec::new(),
        after_last: None,
    };
    let alerts = Fanout::new(vec![rig.channel.clone() as Arc<dyn Notifier>]);
    let mut trap =
        Trap::open(settings, producer, rig.clock.clone(), store.clone(), alerts, Some(ArmedAt { height: 1 }))
            .await
            .expect("arms");
    let b = attempt("B", Duration::from_secs(30), &rig.clock);
    rig.script(|s| {
        s.observations.extend([Observation::Reading(evidence(0)), Observation::Reading(evidence(1))]);
        s.corroborations.push_back(Corroboration::Confirmed(evidence(1)));
        s.statuses.extend([SwapStatus::Pending, SwapStatus::InEffect { id: Some("B".into()) }]);
        s.prepares.push_back(Ok(b));
        s.executes.push_back(Ok(()));
    });
    store.full.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        trap.step().await.expect("a failed poll record is bookkeeping"),
        StepOutcome::Held { misses: 0, allowed: 1 }
    );
    let StepOutcome::Fired(finish) = trap.step().await.expect("fires without a stored firing state") else {
        panic!("fires")
    };
    assert!(finish.swapped() && finish.alert_ok(), "{finish:?}");
    trap.flush_warnings().await;
    let sent = rig.channel.sent.lock().expect("sent").clone();
    assert!(sent.iter().any(|t| t.contains("state not writable")), "{sent:?}");
    assert!(sent.iter().any(|t| t.starts_with("FIRED")), "{sent:?}");
    assert_eq!(sent.iter().filter(|t| t.contains("state not writable")).count(), 1, "alerted once: {sent:?}");
    // What is stored is still the armed state (the disk is full); once it has room, the fired state goes in.
    let stored = TrapState::<ArmedAt>::decode(&store.inner.shared().expect("armed was stored"), "m").expect("ok");
    assert_eq!(stored.phase, Phase::Armed);
    store.full.store(false, std::sync::atomic::Ordering::SeqCst);
    trap.save().await.expect("stores again");
    let stored = TrapState::<ArmedAt>::decode(&store.inner.shared().expect("stored"), "m").expect("ok");
    assert!(matches!(stored.phase, Phase::Fired { .. }));
}

/// Issue 13: events beyond "fired". With every event chosen: `armed` at start, `blind` once per episode
/// after `blind_alert_after`, `recovered` when a healthy reading returns; a restart of the fired trap
/// says `disarmed_start`. With the default events, `armed` is not sent.
#[tokio::test]
async fn blind_episodes_and_other_events_reach_the_chosen_channels_once() {
    let rig = Rig::new(true);
    let producer = Scripted { script: rig.script.clone(), store: rig.store.clone() };
    let settings = TrapSettings {
        poll_interval: Duration::from_secs(30),
        trigger: Trigger::Allowed(1),
        fire_timeout: Duration::from_secs(6000),
        blind_alert_after: Duration::from_secs(60),
        backups: Vec::new(),
        after_last: None,
    };
    let all = Fanout::with_events(vec![rig.channel.clone() as Arc<dyn Notifier>], crate::alert::EventSet::all());
    let mut trap =
        Trap::open(settings.clone(), producer, rig.clock.clone(), rig.store.clone(), all, Some(ArmedAt { height: 1 }))
            .await
            .expect("arms");
    rig.script(|s| {
        s.observations.extend([
            Observation::Blind("every endpoint down".into()),
            Observation::Blind("every endpoint down".into()),
            Observation::Blind("every endpoint down".into()),
            Observation::Reading(evidence(0)),
            Observation::Reading(evidence(0)),
        ]);
    });
    trap.step().await.expect("blind 1");
    // 60 chain seconds later (60 ms of wall time at 1000x), still blind: the alert goes out, once.
    rig.clock.sleep(Duration::from_secs(61)).await;
    trap.step().await.expect("blind 2");
    trap.step().await.expect("blind 3");
    trap.step().await.expect("healthy");
    trap.step().await.expect("healthy again");
    trap.flush_warnings().await;
    let sent = rig.channel.sent.lock().expect("sent").clone();
    let count = |needle: &str| sent.iter().filter(|t| t.contains(needle)).count();
    assert_eq!(count("armed for @prod"), 1, "{sent:?}");
    assert_eq!(count("BLIND for"), 1, "{sent:?}");
    assert_eq!(count("recovered"), 1, "{sent:?}");

    // The default events leave `armed` out.
    let rig = Rig::new(true);
    let _trap = rig.open(1).await.expect("arms");
    let mut trap = rig.open(1).await.expect("resumes");
    trap.flush_warnings().await;
    assert!(rig.channel.sent.lock().expect("sent").is_empty(), "armed is not a default event");
}
