//! `switch`: a planned key change (an upgrade, a move, a test of the backup), made by the trap's own
//! machinery and timed by the schedule so that no block is missed.
//!
//! The order: the state file (a running trap is asked to step aside through `store::handoff` and the
//! switch takes its lock; a second switch is refused at once), the pre-arming checks against the chain with
//! the requested key as the target (signable, different from the on-chain key, fresh and corroborated
//! readings), then, with `--when safe`, a wait for the moment that leaves the most time before the
//! producer's next turn (right after its own slot, or its 12-block turn on Antelope), a swap signed with
//! fresh TaPoS, its confirmation in a block (on Antelope, then the active schedule carrying the key), and a
//! look at the producer's next turn: produced or missed. Then the trap's state: with `--swap-roles` armed
//! again, guarding the new key with the old one as its backup; otherwise an armed trap is left disarmed
//! (`switched`). Ctrl-C before the broadcast changes nothing. `--dry-run` signs and prints, never
//! broadcasts, and needs no lock.

use std::time::Duration;

use chain_clock::SharedClock;
use tokio_util::sync::CancellationToken;

use super::run::fmt_time;
use super::ServiceError;
use crate::chain::antelope::AntelopeProducer;
use crate::chain::graphene::GrapheneProducer;
use crate::chain::{ChainKind, ChainTime, Observation, Producer, SwapAttempt, SwapError, SwapStatus, Turns};
use crate::config::check::check as check_chain;
use crate::config::vars::{self, Problem};
use crate::config::{ChainSettings, Report, Settings};
use crate::store::handoff::{self, Claim};
use crate::store::{FileStore, StateStore, StoreError};
use crate::trap::state::{Phase, Roles, TrapState};
use crate::trap::{load_state, TrapSettings, Trigger};

/// A turn this many blocks away or more leaves room for the swap to land (in the first or second block
/// after the broadcast) and for every node to have that block before the turn.
pub const SAFE_BLOCKS: u64 = 4;

/// When to broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Right after the producer's own slot, with at least [`SAFE_BLOCKS`] before its next turn.
    Safe,
    /// At once.
    Now,
}

/// The key to switch to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `BACKUP_SIGNING_KEY`.
    Backup,
    /// The key `SIGNING_WIF` signs for: the primary the trap guards.
    Primary,
    /// A public key as text.
    Key(String),
}

/// How long a switch waits for a running trap to step aside by default.
pub const WAIT_FOR_TRAP: Duration = Duration::from_secs(90);

/// What `switch` was asked to do.
#[derive(Debug, Clone)]
pub struct SwitchRequest {
    pub to: Target,
    pub when: When,
    pub dry_run: bool,
    /// `--swap-roles`: re-arm the trap guarding the new key, with the old one as its backup.
    pub swap_roles: bool,
    /// How long to wait for a running trap to step aside ([`WAIT_FOR_TRAP`]).
    pub wait_for_trap: Duration,
}

impl SwitchRequest {
    pub fn new(to: Target, when: When) -> Self {
        Self { to, when, dry_run: false, swap_roles: false, wait_for_trap: WAIT_FOR_TRAP }
    }
}

/// What became of the producer's turn after the switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextTurn {
    /// The turn was produced (the missed counter did not move).
    Produced { at: ChainTime },
    /// The turn was missed: the new key's node did not produce it.
    Missed { at: ChainTime, before: u64, after: u64 },
    /// It could not be told (no turn before the schedule changed, or no reading).
    Unknown(String),
}

/// How `switch` ended.
#[derive(Debug, Clone)]
pub enum SwitchOutcome {
    /// `--dry-run`: the signed transaction, never broadcast.
    DryRun(serde_json::Value),
    /// The key is in effect on chain; `trap` says what became of the trap's state.
    Switched { txid: String, key: String, broadcast_at: ChainTime, next: NextTurn, trap: String },
    /// Stopped (Ctrl-C) before anything was broadcast.
    Cancelled,
}

/// Progress lines for the operator, as they happen.
pub type Progress<'a> = &'a mut (dyn FnMut(String) + Send);

fn config_error(var: &str, message: impl Into<String>, fix: impl Into<String>) -> ServiceError {
    ServiceError::Config(Report { problems: vec![Problem::new(var, message, fix)] })
}

/// `switch`.
pub async fn switch(
    settings: Settings,
    request: SwitchRequest,
    clock: SharedClock,
    shutdown: CancellationToken,
    progress: Progress<'_>,
) -> Result<SwitchOutcome, ServiceError> {
    // Held to the end (the claim released before the lock): the trap stands aside and a second switch is
    // refused while this one waits. A dry run only reads.
    let held = if request.dry_run {
        None
    } else {
        #[cfg(feature = "etcd")]
        let taken = match &settings.coordination {
            Some(c) => {
                let id = settings.identity();
                take_group(c, &id, &settings.state_file, request.wait_for_trap, &shutdown, progress).await?
            }
            None => take_state(&settings.state_file, request.wait_for_trap, &shutdown, progress)
                .await?
                .map(|(claim, store)| Held::File(claim, store)),
        };
        #[cfg(not(feature = "etcd"))]
        let taken = take_state(&settings.state_file, request.wait_for_trap, &shutdown, progress)
            .await?
            .map(|(claim, store)| Held::File(claim, store));
        match taken {
            Some(held) => Some(held),
            None => return Ok(SwitchOutcome::Cancelled),
        }
    };
    let kind = settings.kind();
    let trap = settings.trap.clone();
    let store = held.as_ref().map(Held::store);
    let settings_swap = match &settings.chain {
        ChainSettings::Antelope(a) => Some(a.pause_resume.is_some()),
        ChainSettings::Graphene(_) | ChainSettings::Solana(_) => None,
    };
    let outcome = match settings.chain {
        ChainSettings::Graphene(mut g) => {
            let prefix = g.chain.key_prefix.clone();
            let configured = g.backup_key.to_text(&prefix);
            let target = match &request.to {
                Target::Backup => g.backup_key,
                Target::Primary => match &g.signing_key {
                    Some(k) => k.public_key(),
                    None => {
                        return Err(config_error(
                            "--to",
                            "primary is the key SIGNING_WIF signs for, and SIGNING_WIF is not set",
                            "give the key itself (--to STM…) or set SIGNING_WIF",
                        ))
                    }
                },
                Target::Key(text) => {
                    graphene_protocol::keys::PublicKey::from_text(text.trim(), &prefix).map_err(|e| {
                        config_error(
                            "--to",
                            format!("{text:?} is not a public key: {e}"),
                            "give STM… (or backup, primary)",
                        )
                    })?
                }
            };
            let key = target.to_text(&prefix);
            let signs_back =
                [&g.signing_key, &g.backup_signing_key].into_iter().flatten().any(|k| k.public_key() == target);
            if request.swap_roles && !signs_back && g.active_key.is_none() {
                return Err(config_error(
                    "--swap-roles",
                    format!(
                        "the trap could not swap back from {key}: neither BACKUP_SIGNING_WIF (the WIF of {key}) nor \
                         ACTIVE_WIF is set"
                    ),
                    "set BACKUP_SIGNING_WIF to the new key's WIF (it signs witness_set_properties) or ACTIVE_WIF, or \
                     switch without --swap-roles",
                ));
            }
            g.backup_key = target;
            let producer = GrapheneProducer::new(g, clock.clone()).map_err(|e| ServiceError::Failure(e.to_string()))?;
            let plan = Plan { kind, key, configured, trap, store };
            switch_with(producer, plan, request, clock, shutdown, progress).await
        }
        ChainSettings::Solana(_) => Err(config_error(
            "CHAIN",
            "a planned switch is not built for Solana validators yet",
            "move the identity by hand (set-identity junk on the active node, copy the tower, set-identity \
             --require-tower on the other), then `witness-trap rearm`",
        )),
        ChainSettings::Antelope(_) if matches!(&settings_swap, Some(true)) => Err(config_error(
            "SWAP",
            "a planned switch moves a key; with SWAP=producer-api the nodes share one key",
            "pause and resume the nodes through their hosts for a planned move (a planned pause/resume is not built yet)",
        )),
        ChainSettings::Antelope(mut a) => {
            let configured = a.backup_key.to_legacy();
            let target = match &request.to {
                Target::Backup => a.backup_key,
                Target::Primary => {
                    return Err(config_error(
                        "--to",
                        "an Antelope trap holds no key of the primary (FAILOVER_WIF signs regproducer for any key)",
                        "give the primary's public key itself: --to EOS… or --to PUB_K1_…",
                    ))
                }
                Target::Key(text) => antelope_protocol::keys::PublicKey::from_text(text.trim()).map_err(|e| {
                    config_error(
                        "--to",
                        format!("{text:?} is not an Antelope public key: {e}"),
                        "give EOS… or PUB_K1_… (or backup)",
                    )
                })?,
            };
            if target.is_null() {
                return Err(config_error(
                    "--to",
                    "is the null key, which stops the producer instead of moving it",
                    "give the public key of the node that is to produce",
                ));
            }
            let key = target.to_legacy();
            a.backup_key = target;
            let producer = AntelopeProducer::new(a, clock.clone()).map_err(|e| ServiceError::Failure(e.to_string()))?;
            let plan = Plan { kind, key, configured, trap, store };
            switch_with(producer, plan, request, clock, shutdown, progress).await
        }
    };
    if let Some(held) = held {
        held.release().await;
    }
    outcome
}

/// What a switch holds while it runs: the state file (beside a lone trap) or the group's lock (replicas).
enum Held {
    /// The claim first, the lock second: the trap stands aside while the claim lives.
    File(Claim, FileStore),
    /// The switch's own etcd session holding the trap's lock and the switch request, and the state in etcd.
    #[cfg(feature = "etcd")]
    Group(std::sync::Arc<coordination::Session>, crate::store::etcd::EtcdStore),
}

impl Held {
    fn store(&self) -> &dyn StateStore {
        match self {
            Held::File(_, store) => store,
            #[cfg(feature = "etcd")]
            Held::Group(_, store) => store,
        }
    }

    /// Let the trap (or the replicas) have the state back.
    async fn release(self) {
        match self {
            Held::File(claim, store) => {
                drop(claim);
                drop(store);
            }
            #[cfg(feature = "etcd")]
            Held::Group(session, store) => {
                drop(store);
                session.close().await;
            }
        }
    }
}

/// With coordination: ask the group's holder to step aside (a request key under the switch's own lease),
/// then take the trap's lock as a replica would. One switch at a time; the lock holder steps aside only
/// while armed, between two looks.
#[cfg(feature = "etcd")]
async fn take_group(
    c: &crate::config::coordination::CoordinationSettings,
    id: &crate::chain::Identity,
    state_file: &std::path::Path,
    wait: Duration,
    shutdown: &CancellationToken,
    progress: Progress<'_>,
) -> Result<Option<Held>, ServiceError> {
    use std::sync::Arc;
    let scope = format!("{}/{}", id.chain, id.producer);
    let mut etcd = c.etcd.clone();
    etcd.replica = format!("switch-{}", c.replica());
    let unavailable = |e: coordination::CoordError| {
        ServiceError::Coordination(format!("{e}; a switch with COORDINATION=etcd needs etcd: nothing changed"))
    };
    let session = Arc::new(coordination::Session::open(etcd, &scope).await.map_err(unavailable)?);
    match session.request_switch().await {
        Ok(None) => {}
        Ok(Some(by)) => {
            session.close().await;
            return Err(ServiceError::Busy(format!(
                "a planned switch ({by}) is already waiting for the trap: one switch at a time; nothing changed"
            )));
        }
        Err(e) => {
            session.close().await;
            return Err(unavailable(e));
        }
    }
    let started = std::time::Instant::now();
    let mut asked = false;
    loop {
        match session.try_acquire().await {
            Ok(None) => {
                if asked {
                    progress("the replica stepped aside; this switch holds the trap's lock until it ends".into());
                }
                let store = crate::store::etcd::EtcdStore::new(session.clone(), state_file);
                return Ok(Some(Held::Group(session, store)));
            }
            Ok(Some(holder)) if !asked => {
                progress(format!(
                    "replica {holder} holds the trap: asking it to step aside (it does so while armed, between two looks)"
                ));
                asked = true;
            }
            Ok(Some(_)) => {}
            Err(e) => {
                session.close().await;
                return Err(unavailable(e));
            }
        }
        if started.elapsed() >= wait {
            session.close().await;
            return Err(ServiceError::Busy(format!(
                "the replica holding the trap did not step aside within {} s: it does so only while armed (if it is \
                 firing, let it finish; `witness-trap status` shows it); nothing changed",
                wait.as_secs()
            )));
        }
        tokio::select! {
            _ = shutdown.cancelled() => {
                session.close().await;
                return Ok(None);
            }
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

/// Claim the state file and take its lock, asking a running trap to step aside; `None`: stopped while waiting.
async fn take_state(
    state_file: &std::path::Path,
    wait: Duration,
    shutdown: &CancellationToken,
    progress: Progress<'_>,
) -> Result<Option<(Claim, FileStore)>, ServiceError> {
    let mut claim = Claim::create(state_file).map_err(|e| match e {
        handoff::HandoffError::AlreadyRequested { .. } => ServiceError::Busy(format!(
            "{e}: one switch at a time; wait for it to finish (or stop it with Ctrl-C), then try again"
        )),
        other => ServiceError::Failure(other.to_string()),
    })?;
    let started = std::time::Instant::now();
    let mut asked = false;
    loop {
        match FileStore::open_exclusive(state_file) {
            Ok(store) => {
                claim.mark_holds_lock();
                if asked {
                    progress("the trap stepped aside; this switch holds the state until it ends".into());
                }
                return Ok(Some((claim, store)));
            }
            Err(StoreError::Locked(_)) => {
                if !asked {
                    progress(
                        "a trap runs on this state file: asking it to step aside (it does so while armed, between \
                         two looks)"
                            .into(),
                    );
                    asked = true;
                }
                if started.elapsed() >= wait {
                    return Err(ServiceError::Busy(format!(
                        "the process holding {} did not step aside within {} s: a trap steps aside only while armed \
                         (if it is firing, let it finish; `witness-trap status` shows it); nothing changed",
                        state_file.display(),
                        wait.as_secs()
                    )));
                }
            }
            Err(error) => {
                return Err(ServiceError::Locked {
                    error,
                    hint: "the switch needs the state file to coordinate with the trap",
                })
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(None),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

/// What the switch knows besides the producer.
struct Plan<'a> {
    kind: ChainKind,
    /// The key to move to, as the chain writes it.
    key: String,
    /// `BACKUP_SIGNING_KEY` as configured: roles that come back to it are the configured ones.
    configured: String,
    trap: TrapSettings,
    /// The trap's state, held (`None` for a dry run).
    store: Option<&'a dyn StateStore>,
}

async fn switch_with<P: Producer>(
    mut producer: P,
    plan: Plan<'_>,
    request: SwitchRequest,
    clock: SharedClock,
    shutdown: CancellationToken,
    progress: Progress<'_>,
) -> Result<SwitchOutcome, ServiceError> {
    let id = producer.identity();
    let key = plan.key.clone();
    let existing = match plan.store {
        Some(store) => load_state::<P::Baseline>(store, &id).await?,
        None => None,
    };
    if let Some((TrapState { phase: Phase::Firing { target, .. }, .. }, _)) = &existing {
        return Err(ServiceError::Busy(format!(
            "the trap was firing (to {target}) when it stopped: start it so that it finishes that swap, then switch"
        )));
    }
    // The trap's own pre-arming checks, with the requested key as the target.
    let mut result = check_chain(&mut producer, plan.kind, Trigger::Allowed(1), false).await;
    for p in result.errors.iter_mut().filter(|p| p.var == vars::BACKUP_SIGNING_KEY) {
        p.var = "--to".into();
        p.fix = "choose a key other than the one on chain (backup, primary or a public key)".into();
    }
    let unreachable = result.chain_unreachable();
    let Some((reading, baseline)) = result.reading else {
        let report = Report { problems: result.errors };
        return Err(if unreachable { ServiceError::ChainUnavailable(report) } else { ServiceError::Config(report) });
    };
    if !result.errors.is_empty() {
        return Err(ServiceError::Config(Report { problems: result.errors }));
    }
    if request.dry_run {
        let swap = producer.dry_run().await.map_err(|e| swap_error(&e))?;
        return Ok(SwitchOutcome::DryRun(serde_json::json!({
            "broadcast": false,
            "action": swap.label,
            "txid": swap.id,
            "expires_at": fmt_time(swap.expires_at),
            "transaction": swap.payload,
        })));
    }
    let interval = producer.block_interval();
    if request.when == When::Safe {
        progress(format!("waiting for the safe moment: right after @{}'s own turn on {}", id.producer, id.chain));
        if !wait_for_safe_moment(&mut producer, interval, &clock, &shutdown, progress).await? {
            progress("stopped before anything was broadcast; nothing changed".into());
            return Ok(SwitchOutcome::Cancelled);
        }
    } else if shutdown.is_cancelled() {
        return Ok(SwitchOutcome::Cancelled);
    }

    let broadcast_at = ChainTime::now(clock.as_ref());
    let txid = broadcast_and_confirm(&mut producer, interval, &clock, progress).await?;
    progress(format!("confirmed in a block: @{}'s signing key is now {key} (txid {txid})", id.producer));
    wait_until_active(&mut producer, interval, &clock, progress).await;
    let next = watch_next_turn(&mut producer, &baseline, interval, &clock).await;
    let trap = match plan.store {
        Some(store) => {
            settle_trap(
                &mut producer,
                &plan,
                store,
                existing,
                reading.current_key,
                &txid,
                broadcast_at,
                request.swap_roles,
                &clock,
            )
            .await
        }
        None => String::new(),
    };
    Ok(SwitchOutcome::Switched { txid, key, broadcast_at, next, trap })
}

/// Leave the trap's state as the switch requires: re-armed with swapped roles (`--swap-roles`), disarmed
/// (`switched`) if it was armed, or as it was. Says what it did, for the operator.
#[allow(clippy::too_many_arguments)]
async fn settle_trap<P: Producer>(
    producer: &mut P,
    plan: &Plan<'_>,
    store: &dyn StateStore,
    existing: Option<(TrapState<P::Baseline>, crate::store::Revision)>,
    old_key: String,
    txid: &str,
    at: ChainTime,
    swap_roles: bool,
    clock: &SharedClock,
) -> String {
    let id = producer.identity();
    let revision = existing.as_ref().map(|(_, r)| *r);
    let new_state = if swap_roles {
        if let Err(e) = producer.assume_roles(&plan.key, &old_key) {
            return format!("the trap was NOT re-armed: {e}");
        }
        let preflight = producer.preflight().await;
        let fatal: Vec<String> = preflight.findings.iter().filter(|f| f.fatal).map(|f| f.message.clone()).collect();
        let Some((_, baseline)) = preflight.reading.filter(|_| fatal.is_empty()) else {
            return format!(
                "the trap was NOT re-armed for the swapped roles ({}); re-arm it by hand",
                if fatal.is_empty() { "no fresh reading".to_string() } else { fatal.join("; ") }
            );
        };
        let allowed = match plan.trap.trigger.allowed(baseline_counter::<P>(&baseline)) {
            Ok(a) => a,
            Err(e) => return format!("the trap was NOT re-armed: {e}"),
        };
        let mut state = TrapState::armed(&id, ChainTime::now(clock.as_ref()), baseline, allowed);
        let backup = producer.target();
        state.roles = (backup != plan.configured).then(|| Roles { current: plan.key.clone(), backup: backup.clone() });
        let what = format!(
            "the trap is armed again: it guards {} and would swap back to {backup}{}",
            plan.key,
            if state.roles.is_none() { " (the configured roles)" } else { "" }
        );
        (state, what)
    } else {
        match existing {
            Some((mut state, _)) if state.phase == Phase::Armed => {
                state.phase = Phase::Switched { to: plan.key.clone(), txid: txid.to_string(), switched_at: at };
                state.roles = None;
                (
                    state,
                    "the trap is disarmed (switched): set .env for the new roles and `witness-trap rearm`, or use \
                     --swap-roles next time"
                        .to_string(),
                )
            }
            Some((state, _)) => return format!("the trap stays {}", state.phase.name()),
            None => return "no trap state: nothing to re-arm".into(),
        }
    };
    let (state, what) = new_state;
    let written = match state.encode() {
        Ok(bytes) => store.compare_and_swap(revision, &bytes).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match written {
        Ok(_) => {
            tracing::info!(state = state.phase.name(), roles = ?state.roles, "the switch left the trap's state");
            what
        }
        Err(e) => format!("the trap's state could NOT be written ({e}); re-arm it by hand"),
    }
}

fn baseline_counter<P: Producer>(b: &P::Baseline) -> Option<u64> {
    crate::chain::Baseline::counter(b)
}

fn swap_error(e: &SwapError) -> ServiceError {
    match e {
        SwapError::Transient(reason) => ServiceError::ChainUnavailable(Report {
            problems: vec![Problem::new(
                vars::RPC_URLS,
                format!("no endpoint gave a fresh reading: {reason}"),
                "give at least one reachable, synced RPC node in RPC_URLS",
            )],
        }),
        other => config_error(
            vars::SIGNING_WIF,
            format!("cannot build the swap: {other}"),
            "check the keys; `witness-trap check` names what is wrong",
        ),
    }
}

/// Whether `turns` is the moment to broadcast: right after the producer's own slot (or no turn of it in
/// this schedule at all), with its next possible turn at least [`SAFE_BLOCKS`] away.
pub fn is_safe(turns: &Turns) -> bool {
    let next_possible = turns.until_next.unwrap_or(turns.until_reshuffle);
    let just_after_own = matches!(turns.since_last, Some(j) if j <= 1);
    let no_turn_this_round = turns.since_last.is_none() && turns.until_next.is_none();
    next_possible >= SAFE_BLOCKS && (just_after_own || no_turn_this_round)
}

/// Wait until [`is_safe`]; `false` if stopped first.
async fn wait_for_safe_moment<P: Producer>(
    producer: &mut P,
    interval: Duration,
    clock: &SharedClock,
    shutdown: &CancellationToken,
    progress: Progress<'_>,
) -> Result<bool, ServiceError> {
    let margin = interval / 3;
    // Two rounds of 21 at most, however the schedule falls, plus reads that fail now and then.
    for _ in 0..64 {
        let turns = match producer.turns().await {
            Ok(t) => t,
            Err(reason) => {
                progress(format!("cannot read the schedule now ({reason}); trying again"));
                if sleep_or_stop(clock, interval, shutdown).await {
                    return Ok(false);
                }
                continue;
            }
        };
        if is_safe(&turns) {
            return Ok(!shutdown.is_cancelled());
        }
        // Wake just after the next turn (or the reshuffle), when its block has been applied.
        let blocks = turns.until_next.unwrap_or(turns.until_reshuffle).max(1);
        let wait = interval.saturating_mul(u32::try_from(blocks).unwrap_or(u32::MAX)) + margin;
        progress(format!(
            "head block {}: the next turn is {blocks} block(s) away; waiting {} s",
            turns.head,
            wait.as_secs()
        ));
        if sleep_or_stop(clock, wait, shutdown).await {
            return Ok(false);
        }
    }
    Err(ServiceError::Failure("no safe moment came within two rounds: the schedule could not be read".into()))
}

/// Sleep `d`; `true` if stopped first.
async fn sleep_or_stop(clock: &SharedClock, d: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = clock.sleep(d) => false,
    }
}

/// Sign with fresh TaPoS, broadcast, and follow the swap until a block holds it; a swap that expired is
/// rebuilt. After the broadcast the switch no longer stops for Ctrl-C: it finds out what happened.
async fn broadcast_and_confirm<P: Producer>(
    producer: &mut P,
    interval: Duration,
    clock: &SharedClock,
    progress: Progress<'_>,
) -> Result<String, ServiceError> {
    let mut attempts: Vec<String> = Vec::new();
    let mut pending: Option<SwapAttempt> = None;
    // 40 blocks, or three minutes where a key reaches the schedule through a proposal (Antelope: at most one
    // a minute, then finality).
    let budget = interval.saturating_mul(40).max(CONFIRM_AT_LEAST);
    let deadline = ChainTime::now(clock.as_ref()).saturating_add(budget);
    while ChainTime::now(clock.as_ref()) < deadline {
        if pending.is_none() {
            let swap = match producer.prepare().await {
                Ok(s) => s,
                // One endpoint's view (a block for TaPoS not served yet): try again next block.
                Err(SwapError::Transient(reason)) if attempts.is_empty() => {
                    progress(format!("cannot build the swap yet ({reason}); trying again"));
                    clock.sleep(interval).await;
                    continue;
                }
                Err(e) => return Err(swap_error(&e)),
            };
            if let Err(e) = producer.execute(&swap).await {
                progress(format!("broadcast failed ({e}); trying again"));
                clock.sleep(interval).await;
                continue;
            }
            progress(format!("broadcast {} (txid {}, expires {})", swap.label, swap.id, fmt_time(swap.expires_at)));
            attempts.push(swap.id.clone());
            pending = Some(swap);
        }
        clock.sleep(interval).await;
        let expires = pending.as_ref().map(|s| s.expires_at);
        match producer.status(&attempts, expires).await {
            SwapStatus::InEffect { id } => return Ok(id.or_else(|| attempts.last().cloned()).unwrap_or_default()),
            SwapStatus::Expired => {
                progress("the swap expired without landing; signing it again with fresh TaPoS".into());
                pending = None;
            }
            SwapStatus::Pending | SwapStatus::Unknown(_) => {}
        }
    }
    Err(ServiceError::Failure(format!(
        "the swap was not confirmed within {} s (txids {}); check `witness-trap status`",
        budget.as_secs(),
        attempts.join(", ")
    )))
}

/// The least time given to confirm a swap.
const CONFIRM_AT_LEAST: Duration = Duration::from_secs(180);
/// How long a confirmed key may take to be the one the chain produces with (Antelope: one to two rounds of
/// 126 s after the schedule carries it).
const ACTIVATE_WITHIN: Duration = Duration::from_secs(600);

/// Wait until the chain produces with the new key (at once on Hive/Steem; Antelope's active schedule).
async fn wait_until_active<P: Producer>(
    producer: &mut P,
    interval: Duration,
    clock: &SharedClock,
    progress: Progress<'_>,
) {
    let deadline = ChainTime::now(clock.as_ref()).saturating_add(ACTIVATE_WITHIN);
    let mut told = false;
    while ChainTime::now(clock.as_ref()) < deadline {
        match producer.target_active().await {
            Ok(true) => {
                if told {
                    progress("the active schedule carries the new key".into());
                }
                return;
            }
            Ok(false) if !told => {
                progress("waiting for the active schedule to carry the new key (one to two rounds)".into());
                told = true;
            }
            Ok(false) => {}
            Err(reason) => progress(format!("cannot read the schedule now ({reason}); trying again")),
        }
        clock.sleep(interval.saturating_mul(4)).await;
    }
    progress("the active schedule does not carry the new key yet; watching the next turn anyway".into());
}

/// Wait for the producer's next turn and say whether it was produced: the misses counted before it and
/// after its last block.
async fn watch_next_turn<P: Producer>(
    producer: &mut P,
    baseline: &P::Baseline,
    interval: Duration,
    clock: &SharedClock,
) -> NextTurn {
    let before = match first_reading(producer, baseline, interval, clock).await {
        Some(e) => e.misses,
        None => return NextTurn::Unknown("no fresh reading to count from".into()),
    };
    // The next turn may be in the next schedule: then look again once it is known.
    let mut found = None;
    for _ in 0..4 {
        let turns = match producer.turns().await {
            Ok(t) => t,
            Err(reason) => return NextTurn::Unknown(reason),
        };
        match turns.until_next {
            Some(blocks) => {
                found = Some((turns, blocks));
                break;
            }
            None => {
                let blocks = u32::try_from(turns.until_reshuffle.max(1)).unwrap_or(u32::MAX);
                clock.sleep(interval.saturating_mul(blocks) + interval / 3).await;
            }
        }
    }
    let Some((turns, blocks)) = found else {
        return NextTurn::Unknown("the producer has no turn in the next schedules".into());
    };
    let blocks_u32 = |b: u64| u32::try_from(b).unwrap_or(u32::MAX);
    let at = turns.head_time.saturating_add(interval.saturating_mul(blocks_u32(blocks)));
    // A miss shows when the block after the turn is applied.
    let done = at.saturating_add(interval.saturating_mul(blocks_u32(turns.turn_blocks.max(1))));
    let give_up = done.saturating_add(interval.saturating_mul(40));
    while ChainTime::now(clock.as_ref()) < give_up {
        // Looks along the way keep a producer that follows blocks (Antelope) close to the head.
        let wait = match producer.next_look() {
            Some(t) if t > ChainTime::now(clock.as_ref()) => t.since(ChainTime::now(clock.as_ref())).min(interval * 12),
            _ => interval,
        };
        clock.sleep(wait.max(interval / 2)).await;
        if let Observation::Reading(e) = producer.observe(baseline).await {
            if e.chain_time >= done.saturating_add(interval / 2) {
                return if e.misses > before {
                    NextTurn::Missed { at, before, after: e.misses }
                } else {
                    NextTurn::Produced { at }
                };
            }
        }
    }
    NextTurn::Unknown("no fresh reading after the turn".into())
}

/// The first fresh reading from `baseline`, retrying a few blocks.
async fn first_reading<P: Producer>(
    producer: &mut P,
    baseline: &P::Baseline,
    interval: Duration,
    clock: &SharedClock,
) -> Option<crate::chain::Evidence> {
    for _ in 0..10 {
        if let Observation::Reading(e) = producer.observe(baseline).await {
            return Some(e);
        }
        clock.sleep(interval).await;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turns(since_last: Option<u64>, until_next: Option<u64>, until_reshuffle: u64) -> Turns {
        Turns {
            head: 100,
            head_time: ChainTime::from_secs(300),
            since_last,
            until_next,
            until_reshuffle,
            turn_blocks: 1,
        }
    }

    #[test]
    fn safe_is_right_after_the_own_slot_with_room_before_the_next() {
        let cases = [
            (turns(Some(0), Some(20), 21), true, "the head is its block, next turn a round away"),
            (turns(Some(1), Some(19), 20), true, "one block after its slot"),
            (turns(Some(2), Some(18), 19), false, "later: wait for the next own slot, the most room"),
            (turns(Some(0), Some(3), 21), false, "its next turn is too close"),
            (turns(Some(0), Some(4), 21), true, "four blocks are enough"),
            (turns(Some(0), None, 10), true, "no more turns this round, the reshuffle far enough"),
            (turns(Some(0), None, 2), false, "the next round may start with it"),
            (turns(None, None, 15), true, "not scheduled this round at all"),
            (turns(None, Some(12), 15), false, "its turn comes this round: wait for it"),
        ];
        for (t, safe, why) in cases {
            assert_eq!(is_safe(&t), safe, "{why}: {t:?}");
        }
    }
}
