//! `switch`: a planned key change (an upgrade, a move, a test of the backup), made by the trap's own
//! machinery and timed by the schedule so that no block is missed.
//!
//! The order: the state file's lock (a running trap or a second switch holds it: refused at once), the
//! pre-arming checks against the chain with the requested key as the target (signable, different from
//! the on-chain key, fresh and corroborated readings), then, with `--when safe`, a wait for the moment that
//! leaves the most time before the producer's next turn (right after its own slot), a swap signed with
//! fresh TaPoS, its confirmation in a block, and a look at the producer's next turn: produced or missed.
//! Ctrl-C before the broadcast changes nothing. `--dry-run` signs and prints, never broadcasts.

use std::time::Duration;

use chain_clock::SharedClock;
use tokio_util::sync::CancellationToken;

use super::run::fmt_time;
use super::ServiceError;
use crate::chain::graphene::GrapheneProducer;
use crate::chain::{ChainKind, ChainTime, Observation, Producer, SwapAttempt, SwapError, SwapStatus, Turns};
use crate::config::check::check as check_chain;
use crate::config::vars::{self, Problem};
use crate::config::{ChainSettings, Report, Settings};
use crate::store::FileStore;
use crate::trap::Trigger;

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

/// What `switch` was asked to do.
#[derive(Debug, Clone)]
pub struct SwitchRequest {
    pub to: Target,
    pub when: When,
    pub dry_run: bool,
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
    /// The key is in effect on chain.
    Switched { txid: String, key: String, broadcast_at: ChainTime, next: NextTurn },
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
    // Held to the end: a trap cannot start, and a second switch is refused, while this one waits.
    let _lock = FileStore::open_exclusive(&settings.state_file).map_err(|error| ServiceError::Locked {
        error,
        hint: "a running trap or another switch holds it: stop the trap first (`docker compose stop`), switch, then \
               re-arm it for the new roles (`witness-trap rearm`)",
    })?;
    let kind = settings.kind();
    match settings.chain {
        ChainSettings::Graphene(mut g) => {
            let prefix = g.chain.key_prefix.clone();
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
            g.backup_key = target;
            let key = target.to_text(&prefix);
            let producer = GrapheneProducer::new(g, clock.clone()).map_err(|e| ServiceError::Failure(e.to_string()))?;
            switch_with(producer, kind, key, request, clock, shutdown, progress).await
        }
        // Planned switches on Antelope need the schedule latency in their timing: issue 19, part 3.
        ChainSettings::Antelope(_) => Err(config_error(
            "CHAIN",
            "a planned switch is not available on Antelope chains yet",
            "let the trap fire, or send regproducer yourself (`witness-trap tx sign --chain …`)",
        )),
    }
}

async fn switch_with<P: Producer>(
    mut producer: P,
    kind: ChainKind,
    key: String,
    request: SwitchRequest,
    clock: SharedClock,
    shutdown: CancellationToken,
    progress: Progress<'_>,
) -> Result<SwitchOutcome, ServiceError> {
    let id = producer.identity();
    // The trap's own pre-arming checks, with the requested key as the target.
    let mut result = check_chain(&mut producer, kind, Trigger::Allowed(1), false).await;
    for p in result.errors.iter_mut().filter(|p| p.var == vars::BACKUP_SIGNING_KEY) {
        p.var = "--to".into();
        p.fix = "choose a key other than the one on chain (backup, primary or STM…)".into();
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
        progress(format!("waiting for the safe moment: right after @{}'s own slot on {}", id.producer, id.chain));
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
    let next = watch_next_turn(&mut producer, &baseline, reading.counter, interval, &clock).await;
    Ok(SwitchOutcome::Switched { txid, key, broadcast_at, next })
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
    for _ in 0..40 {
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
        "the swap was not confirmed in 40 blocks (txids {}); check `witness-trap status`",
        attempts.join(", ")
    )))
}

/// Wait for the producer's next turn and say whether it was produced.
async fn watch_next_turn<P: Producer>(
    producer: &mut P,
    baseline: &P::Baseline,
    before: Option<u64>,
    interval: Duration,
    clock: &SharedClock,
) -> NextTurn {
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
    let at = turns.head_time.saturating_add(interval.saturating_mul(u32::try_from(blocks).unwrap_or(u32::MAX)));
    // A miss shows when the block after the turn is applied.
    clock.sleep(interval.saturating_mul(u32::try_from(blocks + 1).unwrap_or(u32::MAX)) + interval / 2).await;
    for _ in 0..10 {
        match producer.observe(baseline).await {
            Observation::Reading(e) if e.chain_time >= at.saturating_add(interval) => {
                return match (before, e.counter) {
                    (Some(b), Some(a)) if a > b => NextTurn::Missed { at, before: b, after: a },
                    (Some(_), Some(_)) => NextTurn::Produced { at },
                    _ => NextTurn::Unknown("the chain keeps no missed-block counter".into()),
                };
            }
            _ => clock.sleep(interval).await,
        }
    }
    NextTurn::Unknown("no fresh reading after the turn".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turns(since_last: Option<u64>, until_next: Option<u64>, until_reshuffle: u64) -> Turns {
        Turns { head: 100, head_time: ChainTime::from_secs(300), since_last, until_next, until_reshuffle }
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
