//! `witness-trap demo --chain eos --swap producer-api`: the same-key pause/resume failover, narrated.
//!
//! Starts a simulated nodeos (`antelope-sim`) whose producer runs two nodes with one signing key behind fake
//! `producer_api`s (the primary producing, the backup paused), the real node agent in front of each (in
//! process, on 127.0.0.1, requests signed by the trap's throwaway agent key) and a fake Twilio; arms the real
//! trap (`service::run`) with `SWAP=producer-api`; hangs the primary's nodeos right after one of its turns (it
//! still answers its API but signs nothing), and narrates: the missed slots, the trap's decisions, the agents
//! pausing the primary and reading the pause back, the backup resumed, its first block, the SMS. Ends with a
//! summary: blocks lost, chain seconds from the first miss to the backup's first block, and how many times
//! the simulator saw both nodes producing (it must be 0).
//!
//! No schedule change is involved, so the story is one round (126 s) of chain time, not the several minutes
//! a `regproducer` swap takes.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use antelope_protocol::chain::network;
use antelope_protocol::keys::PrivateKey;
use antelope_protocol::schedule::{unix_ms_of_slot, BLOCKS_PER_TURN};
use antelope_sim::{ApiNode, EventRecord, Signer, SimConfig, SimEvent, SimNode};
use chain_clock::{ScaledClock, SharedClock};
use graphene_sim::SmsSink;
use secrecy::SecretString;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::agent::{Agent, AgentSigningKey, AntelopeProducerApi, ProducerApi, Verifier};
use crate::config::{vars, VarMap};
use crate::demo::{DemoError, PrefixWriter};
use crate::demo_antelope::{core_symbol, AntelopeDemoOptions};
use crate::service::{self, RunOptions, RunOutcome, ServiceError};

const PRODUCER: &str = "demoproducer";
const SID: &str = "ACdemo0000000000000000000000000000";
/// The agents' node names, as `AGENT_URLS` gives them.
const NODES: [&str; 2] = ["bp1", "bp2"];
/// The longest story the demo waits for, in chain seconds (it takes about 150).
const DEADLINE_SECS: u64 = 900;

fn say(out: &mut impl Write, who: &str, text: &str) {
    let _ = writeln!(out, "{who:>6} │ {text}");
    let _ = out.flush();
}

/// One turn of the producer: how many of its slots were signed, by which node, and how many were missed.
#[derive(Debug, Default)]
struct Turn {
    first_block: Option<u32>,
    last_block: u32,
    by_primary: u32,
    by_backup: u32,
    missed: u32,
}

impl Turn {
    fn line(&self, next: u32) -> String {
        let slots = BLOCKS_PER_TURN as u32;
        let by = match (self.by_primary, self.by_backup) {
            (p, 0) => format!("{p} of {slots} blocks signed by its primary node"),
            (0, b) => format!("{b} of {slots} blocks signed by its BACKUP node"),
            (p, b) => format!("{p} signed by its primary node, {b} by its BACKUP node"),
        };
        match (self.first_block, self.missed) {
            (Some(first), 0) => format!("blocks {first}–{}: {PRODUCER}'s turn, {by}", self.last_block),
            (Some(first), m) => {
                format!("blocks {first}–{}: {PRODUCER}'s turn, {by}, {m} slot(s) missed", self.last_block)
            }
            (None, m) => format!("{PRODUCER}'s turn before block {next}: {m} of {slots} slots missed, no block"),
        }
    }
}

/// An agent in front of one simulated node's `producer_api`, trusting only the trap's key.
async fn start_agent(
    producer_api: &str,
    name: &str,
    trap_key: &AgentSigningKey,
    clock: &SharedClock,
    stop: &CancellationToken,
) -> Result<String, DemoError> {
    let api = ProducerApi::parse(producer_api).map_err(|e| DemoError::Stuck(e.to_string()))?;
    let backend = AntelopeProducerApi::new(api, Duration::from_secs(2));
    let verifier = Verifier::new(vec![trap_key.public_key()], name.into());
    let agent = Arc::new(Agent::new(verifier, Arc::new(backend), clock.clone()));
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let (addr, _task) = crate::agent::serve(listen, None, agent, stop.clone())
        .await
        .map_err(|e| DemoError::Stuck(format!("the demo agent for {name} did not start: {e}")))?;
    Ok(format!("http://{addr}"))
}

/// Run the demo, narrating to `out`. The trap's own result is inside: the CLI turns it into the exit status.
pub async fn run(
    opts: AntelopeDemoOptions,
    out: &mut (impl Write + Send),
) -> Result<Result<RunOutcome, ServiceError>, DemoError> {
    let net = network(&opts.network).ok_or_else(|| DemoError::Stuck(format!("no network {:?}", opts.network)))?;
    let signing = PrivateKey::generate();
    let clock: SharedClock = Arc::new(ScaledClock::starting_now(opts.speedup));
    // Both nodes hold `signing`; the backup key, active and failover keys are never used by this swap.
    let mut cfg = SimConfig::new(
        net.chain_id,
        PRODUCER,
        signing.public_key(),
        PrivateKey::generate().public_key(),
        PrivateKey::generate().public_key(),
        PrivateKey::generate().public_key(),
    );
    cfg.network = net.name.to_string();
    cfg.core_symbol = core_symbol(net.name).to_string();
    cfg.clock = Some(clock.clone());
    cfg.endpoints = 2;
    cfg.seed = rand::random();
    cfg.producer_api = true;
    cfg.pause_on_startup = true;
    let node = SimNode::start(cfg).await.map_err(DemoError::AntelopeSim)?;
    let token = format!("demo-token-{}", hex::encode(rand::random::<[u8; 8]>()));
    let sms = SmsSink::start(SID, SecretString::from(token.clone())).await?;
    let trap_key = AgentSigningKey::generate();
    let agents_stop = CancellationToken::new();
    let mut agent_urls = Vec::new();
    for (name, which) in NODES.iter().zip([ApiNode::Primary, ApiNode::Backup]) {
        let api = node.producer_api_url(which).ok_or_else(|| DemoError::Stuck("no producer_api".into()))?;
        agent_urls.push(format!("{name}={}", start_agent(&api, name, &trap_key, &clock, &agents_stop).await?));
    }
    let dir = crate::demo::tempfile_dir()?;
    let state_file = dir.join("witness-trap-state.json");
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
            "{PRODUCER} runs two synced nodes with ONE signing key {}: {} produces, {} waits paused \
             (producer_api /v1/producer/pause)",
            signing.public_key().to_legacy(),
            NODES[0],
            NODES[1]
        ),
    );
    say(out, "demo", &format!("a node agent beside each: {}", agent_urls.join(", ")));
    say(
        out,
        "demo",
        &format!(
            "the trap: SWAP=producer-api, MISSED_BLOCKS_ALLOWED={}; it holds no chain key, only an agent key \
             the agents trust ({})",
            opts.missed_blocks_allowed,
            trap_key.public_key()
        ),
    );
    let vars = VarMap::new()
        .with(vars::CHAIN, &opts.network)
        .with(vars::PRODUCER_ACCOUNT, PRODUCER)
        .with(vars::RPC_URLS, node.urls().join(","))
        .with(vars::STATE_FILE, state_file.display())
        .with(vars::SWAP, "producer-api")
        .with(vars::AGENT_URLS, agent_urls.join(","))
        .with(vars::AGENT_CLIENT_KEY, trap_key.to_secret_text().as_str())
        .with(vars::MISSED_BLOCKS_ALLOWED, opts.missed_blocks_allowed)
        .with(vars::POLL_INTERVAL_SECS, 5)
        .with_twilio(sms.url(), SID, &token, "+15005550006", "+14155550123");
    let result = match crate::config::load(&vars) {
        Ok(settings) => narrate(&node, &sms, settings, &state_file, clock, out).await,
        Err(report) => Ok(Err(ServiceError::Config(report))),
    };
    agents_stop.cancel();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn narrate(
    node: &SimNode,
    sms: &SmsSink,
    settings: crate::config::Settings,
    state_file: &std::path::Path,
    clock: SharedClock,
    out: &mut (impl Write + Send),
) -> Result<Result<RunOutcome, ServiceError>, DemoError> {
    let mut events = node.subscribe();
    let shutdown = CancellationToken::new();
    let (trap_clock, trap_shutdown) = (clock.clone(), shutdown.clone());
    let options = RunOptions { exit_when_disarmed: true };
    let mut trap = tokio::spawn(async move { service::run(settings, trap_clock, trap_shutdown, options).await });

    let mut turn = Turn::default();
    let mut backup_turn_done = false;
    let mut failed = false;
    let mut first_miss_ms: Option<u64> = None;
    let mut missed = 0u32;
    let mut backup_block: Option<(u32, u64)> = None;
    let mut status: Option<Result<RunOutcome, ServiceError>> = None;
    let mut sms_seen = 0usize;
    let deadline = clock.now() + Duration::from_secs(DEADLINE_SECS);
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
                let EventRecord { event, .. } = match ev {
                    Ok(r) => r,
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return Err(DemoError::Stuck("the simulated chain stopped".into())),
                };
                match event {
                    SimEvent::BlockProduced { num, producer, signer, .. } => {
                        if producer == PRODUCER {
                            turn.first_block.get_or_insert(num);
                            turn.last_block = num;
                            if signer == Signer::Backup { turn.by_backup += 1 } else { turn.by_primary += 1 }
                        } else if turn.first_block.is_some() || turn.missed > 0 {
                            say(out, "chain", &turn.line(num));
                            backup_turn_done |= turn.by_backup > 0 && turn.missed == 0;
                            let just_produced = turn.by_primary > 0 && turn.by_backup == 0;
                            turn = Turn::default();
                            if just_produced && !failed && state_file.exists() {
                                node.set_stalled(ApiNode::Primary, true);
                                failed = true;
                                say(out, "demo", &format!(
                                    "*** {}'s nodeos hangs, right after its turn: it answers its API but signs nothing ***",
                                    NODES[0]
                                ));
                                say(out, "demo", "keepalived's `pidof nodeos` would see it alive; the next turn is one round (126 s) away");
                            }
                        }
                    }
                    SimEvent::SlotMissed { producer, slot, block_num } if producer == PRODUCER => {
                        missed += 1;
                        turn.missed += 1;
                        first_miss_ms.get_or_insert(unix_ms_of_slot(slot));
                        say(out, "chain", &format!(
                            "slot {slot}: no block from {PRODUCER} (a gap before block {block_num}); missed so far: {missed}"
                        ));
                    }
                    SimEvent::NodePaused { node: which, paused } => {
                        let name = if which == "primary" { NODES[0] } else { NODES[1] };
                        say(out, "node", &format!(
                            "{name} ({which}): producer_api {} → {{\"result\":\"ok\"}}",
                            if paused { "pause" } else { "RESUME" }
                        ));
                    }
                    SimEvent::DoubleProduction { slot, block_num } => {
                        say(out, "chain", &format!(
                            "!!! DOUBLE PRODUCTION at slot {slot} (block {block_num}): both nodes sign with one key"
                        ));
                    }
                    SimEvent::BackupProducing { block_num, slot } => {
                        backup_block = Some((block_num, unix_ms_of_slot(slot)));
                        say(out, "chain", &format!(
                            "block {block_num}: {PRODUCER}'s slot, signed by {} (the BACKUP node): producing again, same key, no schedule change",
                            NODES[1]
                        ));
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
    say(out, "demo", "summary");
    say(
        out,
        "",
        &format!("blocks lost: {missed} missed slots of {PRODUCER} (no schedule latency: the same key resumes)"),
    );
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
            "{} paused: {}; {} paused: {}; double productions seen: {}; SMS sent: {}",
            NODES[0],
            node.paused(ApiNode::Primary),
            NODES[1],
            node.paused(ApiNode::Backup),
            node.double_productions(),
            messages.len()
        ),
    );
    say(
        out,
        "",
        "had bp1's agent been unreachable, the trap would have waited PAUSE_FENCE_SECS (252 s, two turns) of \
         chain silence from the producer before resuming bp2",
    );
    Ok(status.unwrap_or_else(|| Err(ServiceError::Failure("the trap did not finish".into()))))
}

/// The trap's log lines (prefixed `trap`) and the agents' (prefixed `agent`), interleaved with the narration.
pub fn init_logging() {
    init_trap_and_agent_logging("witness_trap::chain::antelope=info");
}

/// Two log layers for a demo with node agents: the trap's warnings and its `trap` module's info lines (and
/// `chain`'s, e.g. `witness_trap::chain::antelope=info`) prefixed `trap`, the agents' info lines prefixed
/// `agent`.
pub(crate) fn init_trap_and_agent_logging(chain: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{fmt, EnvFilter, Layer};
    let trap = fmt::layer()
        .with_writer(PrefixWriter::new("  trap │ "))
        .without_time()
        .with_target(false)
        .with_ansi(false)
        .with_filter(EnvFilter::new(format!("warn,witness_trap::agent=off,witness_trap::trap=info,{chain}")));
    let agent = fmt::layer()
        .with_writer(PrefixWriter::new(" agent │ "))
        .without_time()
        .with_target(false)
        .with_ansi(false)
        .with_filter(EnvFilter::new("off,witness_trap::agent=info"));
    let _ = tracing_subscriber::registry().with(trap).with(agent).try_init();
}
