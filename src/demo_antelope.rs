//! `witness-trap demo --chain eos` (or wax, telos, jungle): an Antelope producer's incident on the operator's
//! own machine, narrated, in well under a minute.
//!
//! Starts a simulated nodeos (`antelope-sim`) with two endpoints and a fake Twilio on 127.0.0.1, generates
//! throwaway keys (primary, backup, active and the `failover` permission's), arms the real trap
//! (`service::run`, the code `witness-trap run` executes) against them with a time-compressed chain, fails
//! the producer's primary node right after one of its turns, and narrates as it happens: the producer's
//! turns of 12 blocks, its missed slots, the trap's own decisions (its log lines), the `regproducer`
//! transaction and its inclusion, the producers row, the schedule going pending and then active, the
//! backup's first block, and the SMS. Ends with a summary: blocks lost, and chain seconds from the first
//! missed slot to the swap in a block and to the backup producing.
//!
//! Antelope's schedule latency (a proposal at most every 60 s, active one to two rounds of 126 s later)
//! makes the story several chain minutes long, hence a faster default speed than the Hive demo's.

use std::io::Write;
use std::time::Duration;

use antelope_protocol::chain::network;
use antelope_protocol::keys::PrivateKey;
use antelope_protocol::name::Name;
use antelope_protocol::schedule::{unix_ms_of_slot, BLOCKS_PER_TURN};
use antelope_sim::{EventRecord, Signer, SimConfig, SimEvent, SimNode};
use chain_clock::{ScaledClock, SharedClock};
use graphene_sim::SmsSink;
use secrecy::SecretString;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::config::{vars, VarMap};
use crate::demo::{DemoError, PrefixWriter};
use crate::service::{self, RunOptions, RunOutcome, ServiceError};

/// The Antelope networks the demo runs as.
pub const NETWORKS: &[&str] = &["eos", "wax", "telos", "jungle"];

/// Default speed-up: a 0.5 s block every 25 ms, the whole story in about 10 to 35 s of wall time.
pub const DEFAULT_SPEEDUP: f64 = 20.0;

/// Antelope demo settings.
#[derive(Debug, Clone)]
pub struct AntelopeDemoOptions {
    /// `eos`, `wax`, `telos` or `jungle`.
    pub network: String,
    /// How many times faster than real time the chain runs.
    pub speedup: f64,
    /// `MISSED_BLOCKS_ALLOWED` of the demo trap.
    pub missed_blocks_allowed: u64,
}

impl Default for AntelopeDemoOptions {
    fn default() -> Self {
        Self { network: "eos".into(), speedup: DEFAULT_SPEEDUP, missed_blocks_allowed: 2 }
    }
}

const PRODUCER: &str = "demoproducer";
const SID: &str = "ACdemo0000000000000000000000000000";
/// The longest story the demo waits for, in chain seconds (the worst case is about 700).
const DEADLINE_SECS: u64 = 1800;

fn say(out: &mut impl Write, who: &str, text: &str) {
    let _ = writeln!(out, "{who:>6} │ {text}");
    let _ = out.flush();
}

fn short(id: &[u8; 32]) -> String {
    hex::encode(&id[..5])
}

/// The core token symbol of a network (as `get_account` shows balances).
pub(crate) fn core_symbol(network: &str) -> &'static str {
    match network {
        "wax" => "WAX",
        "telos" => "TLOS",
        _ => "EOS",
    }
}

/// One turn of the producer (12 slots): what became of its slots.
#[derive(Debug, Default)]
struct Turn {
    first_block: Option<u32>,
    last_block: u32,
    produced: u32,
    missed: u32,
    by_backup: bool,
}

/// Run the demo, narrating to `out`. The trap's own result is inside: the CLI turns it into the exit status.
pub async fn run(
    opts: AntelopeDemoOptions,
    out: &mut (impl Write + Send),
) -> Result<Result<RunOutcome, ServiceError>, DemoError> {
    let net = network(&opts.network).ok_or_else(|| DemoError::Stuck(format!("no network {:?}", opts.network)))?;
    let primary = PrivateKey::generate();
    let backup = PrivateKey::generate();
    let active = PrivateKey::generate();
    let failover = PrivateKey::generate();
    let clock: SharedClock = std::sync::Arc::new(ScaledClock::starting_now(opts.speedup));
    let mut cfg = SimConfig::new(
        net.chain_id,
        PRODUCER,
        primary.public_key(),
        backup.public_key(),
        active.public_key(),
        failover.public_key(),
    );
    cfg.network = net.name.to_string();
    cfg.core_symbol = core_symbol(net.name).to_string();
    cfg.clock = Some(clock.clone());
    cfg.endpoints = 2;
    cfg.seed = rand::random();
    let node = SimNode::start(cfg).await.map_err(DemoError::AntelopeSim)?;
    let token = format!("demo-token-{}", hex::encode(rand::random::<[u8; 8]>()));
    let sms = SmsSink::start(SID, SecretString::from(token.clone())).await?;
    let dir = crate::demo::tempfile_dir()?;
    let state_file = dir.join("witness-trap-state.json");
    let result = narrate(&opts, &node, &sms, &token, &backup, &failover, &primary, &state_file, clock, out).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

#[allow(clippy::too_many_arguments)]
async fn narrate(
    opts: &AntelopeDemoOptions,
    node: &SimNode,
    sms: &SmsSink,
    token: &str,
    backup: &PrivateKey,
    failover: &PrivateKey,
    primary: &PrivateKey,
    state_file: &std::path::Path,
    clock: SharedClock,
    out: &mut (impl Write + Send),
) -> Result<Result<RunOutcome, ServiceError>, DemoError> {
    let backup_text = backup.public_key().to_legacy();
    let primary_text = primary.public_key().to_legacy();
    let watched = Name::new(PRODUCER).map_err(|e| DemoError::Stuck(e.to_string()))?;
    say(
        out,
        "demo",
        &format!(
            "a simulated {} on {} ({}× real time: a 0.5 s block every {} ms), 21 producers, one of them {PRODUCER}",
            opts.network,
            node.urls().join(" and "),
            opts.speedup,
            (500.0 / opts.speedup).round() as u64
        ),
    );
    say(
        out,
        "demo",
        &format!(
            "each producer signs a turn of {BLOCKS_PER_TURN} blocks (6 s) per round of 21 turns (126 s); a changed key \
             is proposed at most every 60 s and is active 1–2 rounds later"
        ),
    );
    say(out, "demo", &format!("primary node key {primary_text}"));
    say(out, "demo", &format!("backup node key  {backup_text}  (the trap swaps to this one)"));
    say(
        out,
        "demo",
        &format!(
            "the trap: MISSED_BLOCKS_ALLOWED={}, signing regproducer with {PRODUCER}@failover (a key that can do \
             nothing else), the active key stays offline",
            opts.missed_blocks_allowed
        ),
    );

    let vars =
        VarMap::antelope(&opts.network, PRODUCER, &node.urls(), &backup.public_key(), &failover.to_wif(), state_file)
            .with(vars::MISSED_BLOCKS_ALLOWED, opts.missed_blocks_allowed)
            .with(vars::POLL_INTERVAL_SECS, 5)
            .with_twilio(sms.url(), SID, token, "+15005550006", "+14155550123");
    let settings = match crate::config::load(&vars) {
        Ok(s) => s,
        Err(report) => return Ok(Err(ServiceError::Config(report))),
    };

    let mut events = node.subscribe();
    let shutdown = CancellationToken::new();
    let trap_clock = clock.clone();
    let trap_shutdown = shutdown.clone();
    let options = RunOptions { exit_when_disarmed: true };
    let mut trap = tokio::spawn(async move { service::run(settings, trap_clock, trap_shutdown, options).await });

    let mut turn = Turn::default();
    let mut backup_turn_done = false;
    let mut failed = false;
    let mut first_miss_ms: Option<u64> = None;
    let mut missed = 0u32;
    let mut missed_turns = 0u32;
    let mut swap_block: Option<(u32, u64)> = None;
    let mut backup_block: Option<(u32, u64)> = None;
    let mut status: Option<Result<RunOutcome, ServiceError>> = None;
    let mut sms_seen = 0usize;
    let deadline = clock.now() + Duration::from_secs(DEADLINE_SECS);
    // Until the backup's first turn is over and the trap has finished.
    while !backup_turn_done || status.is_none() {
        if clock.now() > deadline {
            shutdown.cancel();
            return Err(DemoError::Stuck(format!(
                "the backup did not produce within {} chain minutes",
                DEADLINE_SECS / 60
            )));
        }
        if let Some(s) = &status {
            if !matches!(s, Ok(RunOutcome::Fired(f)) if f.swapped()) {
                break;
            }
        }
        tokio::select! {
            done = &mut trap, if status.is_none() => {
                let s = done.map_err(|e| DemoError::Stuck(e.to_string()))?;
                say(out, "trap", &format!("finished: {}", crate::demo::describe(&s)));
                status = Some(s);
            }
            ev = events.recv() => {
                let EventRecord { time_ms, event, .. } = match ev {
                    Ok(r) => r,
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return Err(DemoError::Stuck("the simulated chain stopped".into())),
                };
                match event {
                    SimEvent::BlockProduced { num, producer, signer, txids, .. } => {
                        if producer == PRODUCER {
                            turn.first_block.get_or_insert(num);
                            turn.last_block = num;
                            turn.produced += 1;
                            turn.by_backup |= signer == Signer::Backup;
                        } else if turn.first_block.is_some() || turn.missed > 0 {
                            // The producer's turn is over: say what became of it.
                            say(out, "chain", &turn_line(&turn, num));
                            backup_turn_done |= turn.by_backup;
                            if turn.missed > 0 {
                                missed_turns += 1;
                            }
                            let just_produced = turn.produced > 0 && !turn.by_backup;
                            turn = Turn::default();
                            if just_produced && !failed && state_file.exists() {
                                node.fail_primary();
                                failed = true;
                                say(out, "demo", &format!("*** {PRODUCER}'s primary node goes down, right after its turn ***"));
                                say(out, "demo", "its next turn is one round (126 s) away");
                            }
                        }
                        if !txids.is_empty() {
                            let ids: Vec<String> = txids.iter().map(|t| format!("{}…", short(t))).collect();
                            say(out, "chain", &format!("block {num} (by {producer}) includes transaction {}", ids.join(", ")));
                        }
                    }
                    SimEvent::SlotMissed { producer, slot, block_num } if producer == PRODUCER => {
                        missed += 1;
                        turn.missed += 1;
                        first_miss_ms.get_or_insert(unix_ms_of_slot(slot));
                        if missed_turns == 0 {
                            say(out, "chain", &format!(
                                "slot {slot}: no block from {PRODUCER} (a gap before block {block_num}); missed so far: {missed}"
                            ));
                        }
                    }
                    SimEvent::TxAccepted { txid, endpoint, .. } => {
                        say(out, "chain", &format!("endpoint {endpoint} accepted transaction {}… (regproducer) into its pool", short(&txid)));
                    }
                    SimEvent::TxIncluded { block_num, .. } => {
                        swap_block.get_or_insert((block_num, time_ms));
                    }
                    SimEvent::TxDropped { txid, reason } => {
                        say(out, "chain", &format!("transaction {}… was dropped: {reason}", short(&txid)));
                    }
                    SimEvent::ProducerRegistered { producer, authority, block_num } if producer == PRODUCER => {
                        let keys: Vec<String> = authority.keys.iter().map(|(k, _)| k.to_legacy()).collect();
                        say(out, "chain", &format!(
                            "block {block_num}: the producers row of {PRODUCER} now names {}; the schedule still has the old key",
                            keys.join(", ")
                        ));
                    }
                    SimEvent::FinalizerKeyActivated { finalizer, key, block_num } => {
                        say(out, "chain", &format!("block {block_num}: {finalizer}'s active finalizer key is now {}…", key.chars().take(20).collect::<String>()));
                    }
                    SimEvent::ScheduleProposed { version, block_num, activates_at_slot } => {
                        let (_, pending) = node.schedule();
                        let carries = pending
                            .as_ref()
                            .and_then(|p| p.authority_of(watched))
                            .is_some_and(|a| a.satisfied_by(&backup.public_key()));
                        let secs = unix_ms_of_slot(activates_at_slot).saturating_sub(time_ms) / 1000;
                        say(out, "chain", &format!(
                            "block {block_num}: producer schedule v{version} proposed{}: PENDING, active from slot {activates_at_slot} (in {secs} s, a round boundary)",
                            if carries { " with the backup key" } else { "" }
                        ));
                    }
                    SimEvent::ScheduleActivated { version, block_num } => {
                        say(out, "chain", &format!("block {block_num}: producer schedule v{version} is ACTIVE: the backup node may sign {PRODUCER}'s slots"));
                    }
                    SimEvent::BackupProducing { block_num, slot } => {
                        backup_block = Some((block_num, unix_ms_of_slot(slot)));
                        say(out, "chain", &format!("block {block_num}: {PRODUCER}'s slot, signed by the BACKUP node: the producer is producing again"));
                    }
                    _ => {}
                }
                let messages = sms.messages();
                for m in messages.iter().skip(sms_seen) {
                    say(out, "sms", &format!("to {}: \"{}\" ({} characters)", m.to, m.body, m.body.chars().count()));
                }
                sms_seen = messages.len();
            }
        }
    }
    shutdown.cancel();
    let messages = sms.messages();
    for m in messages.iter().skip(sms_seen) {
        say(out, "sms", &format!("to {}: \"{}\" ({} characters)", m.to, m.body, m.body.chars().count()));
    }
    let row_key = node.producer_row(PRODUCER).and_then(|r| r.producer_key).map(|k| k.to_legacy());
    let (active_schedule, _) = node.schedule();
    let scheduled = active_schedule
        .authority_of(watched)
        .and_then(|a| a.keys.first())
        .map(|(k, _)| k.to_legacy())
        .unwrap_or_else(|| "none".into());
    say(out, "demo", "summary");
    say(
        out,
        "",
        &format!(
            "blocks lost: {missed} missed slots of {PRODUCER} (MISSED_BLOCKS_ALLOWED={}; the schedule latency decides the rest)",
            opts.missed_blocks_allowed
        ),
    );
    if let (Some(miss), Some((block, at))) = (first_miss_ms, swap_block) {
        say(
            out,
            "",
            &format!("first missed slot → swap in block {block}: {} chain seconds", at.saturating_sub(miss) / 1000),
        );
    }
    if let (Some((swap, swapped_at)), Some((block, at))) = (swap_block, backup_block) {
        say(
            out,
            "",
            &format!(
                "swap in block {swap} → backup's first block {block}: {} chain seconds (the schedule latency)",
                at.saturating_sub(swapped_at) / 1000
            ),
        );
    }
    if let (Some(miss), Some((block, at))) = (first_miss_ms, backup_block) {
        say(
            out,
            "",
            &format!(
                "first missed slot → backup's first block {block}: {} chain seconds",
                at.saturating_sub(miss) / 1000
            ),
        );
    }
    say(
        out,
        "",
        &format!(
            "producers row: {}; active schedule: {scheduled}; SMS sent: {}",
            row_key.unwrap_or_else(|| "none".into()),
            messages.len()
        ),
    );
    Ok(status.unwrap_or_else(|| Err(ServiceError::Failure("the trap did not finish".into()))))
}

/// What became of one turn, said when the next producer's block `next` arrives.
fn turn_line(turn: &Turn, next: u32) -> String {
    let slots = BLOCKS_PER_TURN as u32;
    match (turn.first_block, turn.missed) {
        (Some(first), 0) => format!(
            "blocks {first}–{}: {PRODUCER}'s turn, {} of {slots} blocks signed by its {} node",
            turn.last_block,
            turn.produced,
            if turn.by_backup { "BACKUP" } else { "primary" }
        ),
        (Some(first), m) => format!(
            "blocks {first}–{}: {PRODUCER}'s turn, {} signed, {m} slot(s) missed",
            turn.last_block, turn.produced
        ),
        (None, m) => format!(
            "{PRODUCER}'s turn before block {next}: {m} of {slots} slots missed, no block (the active schedule still lists the primary key)"
        ),
    }
}

/// The trap's own log lines, interleaved with the narration: warnings, the trap module's info lines (armed,
/// confirmed, alert) and the Antelope producer's (missed slots, the swap accepted), without timestamps.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::new("warn,witness_trap::trap=info,witness_trap::chain::antelope=info");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(PrefixWriter::new("  trap │ "))
        .without_time()
        .with_target(false)
        .with_ansi(false)
        .try_init();
}
