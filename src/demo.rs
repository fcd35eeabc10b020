//! `witness-trap demo`: the whole story on the operator's own machine, in under a minute.
//!
//! Starts a simulated Hive (or Steem) node with two endpoints and a fake Twilio on 127.0.0.1, generates
//! throwaway keys, arms the real trap (`service::run`, the code `witness-trap run` executes) against them
//! with a time-compressed chain, fails the witness's primary node, and narrates as it happens: the
//! witness's slots, the misses, the trap's decisions (its own log lines), the transaction, its inclusion,
//! the first block signed by the backup, and the SMS. Ends with a summary. No network, no configuration.

use std::io::Write;
use std::time::Duration;

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::config::{vars, VarMap};
use crate::service::{self, RunOptions, RunOutcome, ServiceError};
use chain_clock::{ScaledClock, SharedClock};
use graphene_protocol::chain::ChainSpec;
use graphene_protocol::keys::PrivateKey;
use graphene_sim::{EventRecord, Signer, SimConfig, SimEvent, SimNode, SmsSink};

/// Demo settings.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub chain: ChainSpec,
    /// How many times faster than real time the chain runs.
    pub speedup: f64,
    /// `MISSED_BLOCKS_ALLOWED` of the demo trap.
    pub missed_blocks_allowed: u64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self { chain: ChainSpec::hive(), speedup: 6.0, missed_blocks_allowed: 1 }
    }
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot start the simulated chain: {0}")]
    Sim(#[from] graphene_sim::SimError),
    #[error("cannot start the simulated chain: {0}")]
    AntelopeSim(antelope_sim::SimError),
    #[error("cannot start the simulated Twilio: {0}")]
    Sms(#[from] graphene_sim::SmsSinkError),
    #[error("cannot create a temporary directory for the state file: {0}")]
    TempDir(std::io::Error),
    #[error("the demo did not finish: {0}")]
    Stuck(String),
}

const WITNESS: &str = "demo-witness";
const SID: &str = "ACdemo0000000000000000000000000000";

fn say(out: &mut impl Write, who: &str, text: &str) {
    let _ = writeln!(out, "{who:>6} │ {text}");
    let _ = out.flush();
}

fn hex8(id: &[u8; 20]) -> String {
    hex::encode(&id[..]).chars().take(10).collect()
}

/// Run the demo, narrating to `out`.
/// The trap's own result is inside: the CLI turns it into the exit status.
pub async fn run(
    opts: DemoOptions,
    out: &mut (impl Write + Send),
) -> Result<Result<RunOutcome, ServiceError>, DemoError> {
    let primary = PrivateKey::generate();
    let backup = PrivateKey::generate();
    let active = PrivateKey::generate();
    let prefix = opts.chain.key_prefix.clone();
    let clock: SharedClock = std::sync::Arc::new(ScaledClock::starting_now(opts.speedup));
    let mut cfg =
        SimConfig::new(opts.chain.clone(), WITNESS, primary.public_key(), backup.public_key(), active.public_key());
    cfg.clock = Some(clock.clone());
    cfg.endpoints = 2;
    cfg.initial_total_missed = 7;
    cfg.seed = rand::random();
    let node = SimNode::start(cfg).await?;
    let token = format!("demo-token-{}", hex::encode(rand::random::<[u8; 8]>()));
    let sms = SmsSink::start(SID, SecretString::from(token.clone())).await?;
    let dir = tempfile_dir()?;
    let state_file = dir.join("witness-trap-state.json");

    say(
        out,
        "demo",
        &format!(
            "a simulated {} chain on {} ({}× real time: a 3 s block every {} ms), 21 witnesses, one of them @{WITNESS}",
            opts.chain.name,
            node.urls().join(" and "),
            opts.speedup,
            (3000.0 / opts.speedup) as u64
        ),
    );
    say(out, "demo", &format!("primary node key {}", primary.public_key().to_text(&prefix)));
    say(
        out,
        "demo",
        &format!("backup node key  {}  (the trap swaps to this one)", backup.public_key().to_text(&prefix)),
    );
    say(out, "demo", &format!("the trap: MISSED_BLOCKS_ALLOWED={}, POLL_INTERVAL_SECS=30, DETECTION=slots, signing with the current signing key", opts.missed_blocks_allowed));

    let vars =
        VarMap::graphene(WITNESS, &opts.chain, &node.urls(), &backup.public_key(), &primary.to_wif(), &state_file)
            .with(vars::MISSED_BLOCKS_ALLOWED, opts.missed_blocks_allowed)
            .with(vars::POLL_INTERVAL_SECS, 30)
            .with_twilio(sms.url(), SID, &token, "+15005550006", "+14155550123");
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

    // Let the witness produce a couple of its slots with the trap armed, then pull the plug.
    let mut own_slots = 0;
    let mut failed_at: Option<u64> = None;
    let mut first_miss: Option<u64> = None;
    let mut missed_count = 0u32;
    let mut swap_block: Option<(u32, u64)> = None;
    let mut backup_block: Option<(u32, u64)> = None;
    let mut status: Option<Result<RunOutcome, ServiceError>> = None;
    let deadline = clock.now() + Duration::from_secs(1800);
    while backup_block.is_none() || status.is_none() {
        if clock.now() > deadline {
            shutdown.cancel();
            return Err(DemoError::Stuck("no key swap within 30 chain minutes".into()));
        }
        tokio::select! {
            done = &mut trap, if status.is_none() => {
                let s = done.map_err(|e| DemoError::Stuck(e.to_string()))?;
                say(out, "trap", &format!("finished: {}", describe(&s)));
                status = Some(s);
            }
            ev = events.recv() => {
                let Ok(EventRecord { time, event, .. }) = ev else { continue };
                match event {
                    SimEvent::BlockProduced { num, witness, producer, txids, .. } if witness == WITNESS => {
                        match producer {
                            Signer::Primary => {
                                own_slots += 1;
                                say(out, "chain", &format!("block {num}: @{WITNESS}'s slot, signed by its primary node"));
                                if own_slots == 2 && failed_at.is_none() {
                                    node.fail_primary();
                                    failed_at = Some(time);
                                    say(out, "demo", "*** the primary node goes down ***");
                                }
                            }
                            Signer::Backup => {
                                backup_block = Some((num, time));
                                say(out, "chain", &format!("block {num}: @{WITNESS}'s slot, signed by the BACKUP node: the witness is producing again"));
                            }
                            Signer::Other | Signer::Standby(_) => {}
                        }
                        if !txids.is_empty() {
                            say(out, "chain", &format!("block {num} includes {} transaction(s)", txids.len()));
                        }
                    }
                    SimEvent::BlockProduced { num, txids, .. } if !txids.is_empty() => {
                        let ids: Vec<String> = txids.iter().map(hex8).collect();
                        say(out, "chain", &format!("block {num} includes transaction {}…", ids.join(", ")));
                    }
                    SimEvent::SlotMissed { witness, total_missed, counted_in_block, slot_time, .. } if witness == WITNESS => {
                        missed_count += 1;
                        let _ = time;
                        first_miss.get_or_insert(slot_time);
                        say(out, "chain", &format!("@{WITNESS} MISSED its slot (seen when block {counted_in_block} was applied): total_missed = {total_missed}"));
                    }
                    SimEvent::TxAccepted { txid, endpoint, .. } => {
                        say(out, "chain", &format!("endpoint {endpoint} accepted transaction {}… into its pending pool", hex8(&txid)));
                    }
                    SimEvent::SigningKeyChanged { witness, new, block_num, .. } if witness == WITNESS => {
                        swap_block = Some((block_num, time));
                        say(out, "chain", &format!("block {block_num}: @{WITNESS}'s signing key is now {}", new.to_text(&prefix)));
                    }
                    _ => {}
                }
            }
        }
    }
    let messages = sms.messages();
    for m in &messages {
        say(out, "sms", &format!("to {}: \"{}\" ({} characters)", m.to, m.body, m.body.chars().count()));
    }
    shutdown.cancel();
    let w = node.witness();
    say(out, "demo", "summary");
    say(out, "", &format!("missed blocks: {missed_count} (MISSED_BLOCKS_ALLOWED={})", opts.missed_blocks_allowed));
    if let (Some(miss), Some((block, at))) = (first_miss, swap_block) {
        say(
            out,
            "",
            &format!("first missed slot → key swap in block {block}: {} chain seconds", at.saturating_sub(miss)),
        );
    }
    if let (Some(down), Some((block, at))) = (failed_at, backup_block) {
        say(
            out,
            "",
            &format!("primary down → backup's first block {block}: {} chain seconds", at.saturating_sub(down)),
        );
    }
    say(out, "", &format!("on-chain key: {}; SMS sent: {}", w.signing_key.to_text(&prefix), messages.len()));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(status.unwrap_or_else(|| Err(ServiceError::Failure("the trap did not finish".into()))))
}

/// The trap's outcome in a few words.
pub(crate) fn describe(result: &Result<RunOutcome, ServiceError>) -> String {
    match result {
        Ok(RunOutcome::Fired(f)) => format!(
            "fired; {}; alerts {}",
            if f.swapped() { "the swap is confirmed" } else { "the swap FAILED" },
            if f.alert_ok() { "delivered" } else { "NOT delivered" }
        ),
        Ok(RunOutcome::Stopped) => "stopped".into(),
        Ok(RunOutcome::AlreadyFired { .. }) => "had already fired".into(),
        Err(e) => format!("error: {e}"),
    }
}

pub(crate) fn tempfile_dir() -> Result<std::path::PathBuf, DemoError> {
    let dir = std::env::temp_dir().join(format!(
        "witness-trap-demo-{}-{}",
        std::process::id(),
        hex::encode(rand::random::<[u8; 4]>())
    ));
    std::fs::create_dir_all(&dir).map_err(DemoError::TempDir)?;
    Ok(dir)
}

/// The trap's own log lines, interleaved with the narration: warnings, and the trap module's info lines
/// (armed, confirmed, alert), without timestamps or colours.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::new("warn,witness_trap::trap=info");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(PrefixWriter::new("  trap │ "))
        .without_time()
        .with_target(false)
        .with_ansi(false)
        .try_init();
}

/// A log writer that prefixes every line, so the trap's own log lines read as part of the narration.
#[derive(Clone)]
pub struct PrefixWriter {
    prefix: &'static str,
}

impl PrefixWriter {
    pub fn new(prefix: &'static str) -> Self {
        Self { prefix }
    }
}

impl Write for PrefixWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let mut stdout = std::io::stdout().lock();
        for line in text.lines() {
            writeln!(stdout, "{}{}", self.prefix, line)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for PrefixWriter {
    type Writer = PrefixWriter;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
