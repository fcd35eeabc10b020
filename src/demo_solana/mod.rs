//! `witness-trap demo --chain solana`: a validator that stops voting, and the staked identity moved to the
//! backup through the node agents, narrated.
//!
//! Builds the [`stage`] (a simulated cluster, three RPC endpoints, two validators, the real `solana-admin`
//! agent beside each) and a fake Twilio, arms the real trap (`service::run`, `CHAIN=solana`), then hangs the
//! primary validator (alive, still holding the staked identity, no longer voting) and narrates from the
//! cluster's side: the slot and the vote account's last vote, each identity change on each validator, the
//! trap's decisions, the backup's first vote, the SMS. The summary gives the slots from the last vote to the
//! backup's first vote and how many times the cluster saw two validators with the staked identity (it
//! must be 0).

pub mod stage;

use std::io::Write;
use std::time::Duration;

use graphene_sim::SmsSink;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::demo::DemoError;
use crate::service::{self, RunOptions, RunOutcome, ServiceError};
use stage::{Stage, StageOptions, NODES};

const SID: &str = "ACdemo0000000000000000000000000000";
/// The longest story the demo waits for, in slots (it takes about 400).
const DEADLINE_SLOTS: u64 = 3_000;
/// The default speed: a 400 ms slot every 20 ms.
pub const DEFAULT_SPEEDUP: f64 = 20.0;

fn say(out: &mut impl Write, who: &str, text: &str) {
    let _ = writeln!(out, "{who:>6} │ {text}");
    let _ = out.flush();
}

fn short(pubkey: &str) -> String {
    format!("{}…", pubkey.chars().take(8).collect::<String>())
}

/// Run the demo, narrating to `out`. The trap's own result is inside: the CLI turns it into the exit status.
pub async fn run(speedup: f64, out: &mut (impl Write + Send)) -> Result<Result<RunOutcome, ServiceError>, DemoError> {
    let stage = Stage::start(StageOptions { speedup, ..Default::default() }).await.map_err(DemoError::Stuck)?;
    let token = format!("demo-token-{}", hex::encode(rand::random::<[u8; 8]>()));
    let sms = SmsSink::start(SID, SecretString::from(token.clone())).await?;
    let state_file = stage.dir.join("witness-trap-state.json");
    let c = &stage.cluster;
    say(
        out,
        "demo",
        &format!(
            "a simulated Solana cluster ({}× real time: a 400 ms slot every {} ms), genesis {}, endpoints {}",
            speedup,
            (400.0 / speedup).round() as u64,
            short(&c.genesis_hash()),
            stage.endpoints.iter().map(|e| e.url()).collect::<Vec<_>>().join(", ")
        ),
    );
    say(
        out,
        "demo",
        &format!(
            "vote account {}, staked identity {}: {} votes with it; {} runs with its junk identity \
             (--identity junk, --authorized-voter staked)",
            short(&c.vote_account()),
            short(&c.staked().pubkey()),
            NODES[0],
            NODES[1]
        ),
    );
    say(out, "demo", &format!("a solana-admin agent beside each validator's admin.rpc: {}", stage.agent_urls()));
    say(
        out,
        "demo",
        "the trap: MAX_VOTE_LAG_SLOTS=128, CONFIRMATIONS=3, POLL_INTERVAL_SECS=10; it holds no Solana key, only \
         an agent key the agents trust",
    );
    let vars = stage.vars(&state_file).with_twilio(sms.url(), SID, &token, "+15005550006", "+14155550123");
    let result = match crate::config::load(&vars) {
        Ok(settings) => narrate(&stage, &sms, settings, &state_file, out).await,
        Err(report) => Ok(Err(ServiceError::Config(report))),
    };
    result
}

async fn narrate(
    stage: &Stage,
    sms: &SmsSink,
    settings: crate::config::Settings,
    state_file: &std::path::Path,
    out: &mut (impl Write + Send),
) -> Result<Result<RunOutcome, ServiceError>, DemoError> {
    let (c, clock) = (&stage.cluster, stage.clock.clone());
    let shutdown = CancellationToken::new();
    let (trap_clock, trap_shutdown) = (clock.clone(), shutdown.clone());
    let options = RunOptions { exit_when_disarmed: true };
    let mut trap = tokio::spawn(async move { service::run(settings, trap_clock, trap_shutdown, options).await });
    let staked = c.staked().pubkey();
    let deadline = c.slot() + DEADLINE_SLOTS;
    let mut hung_at: Option<u64> = None;
    let mut last_vote_before: Option<u64> = None;
    let mut first_backup_vote: Option<u64> = None;
    let mut identities: Vec<Option<String>> = stage.validators.iter().map(|v| v.identity()).collect();
    let mut sms_seen = 0;
    let mut shown_slot = 0;
    let mut status = None;
    loop {
        if c.slot() > deadline {
            shutdown.cancel();
            return Err(DemoError::Stuck(format!("the backup did not vote within {DEADLINE_SLOTS} slots")));
        }
        tokio::select! {
            done = &mut trap, if status.is_none() => {
                let s = done.map_err(|e| DemoError::Stuck(e.to_string()))?;
                say(out, "trap", &format!("finished: {}", crate::demo::describe(&s)));
                status = Some(s);
            }
            () = clock.sleep(Duration::from_millis(400 * 8)) => {}
        }
        let slot = c.slot();
        if hung_at.is_none() && state_file.exists() && c.last_vote().is_some() {
            stage.validators[0].stall(true);
            hung_at = Some(slot);
            last_vote_before = c.last_vote();
            say(out, "demo", &format!(
                "*** slot {slot}: {}'s validator hangs: the process is alive and keeps the staked identity, but votes no more ***",
                NODES[0]
            ));
        }
        if slot >= shown_slot + 50 {
            shown_slot = slot;
            let lv = c.last_vote().map_or("none".into(), |v| v.to_string());
            let lag = c.last_vote().map_or(0, |v| slot.saturating_sub(v));
            say(out, "chain", &format!("slot {slot}: vote account's last vote {lv} ({lag} slots ago)"));
        }
        for (i, v) in stage.validators.iter().enumerate() {
            let now = v.identity();
            if now != identities[i] {
                let what = match &now {
                    Some(id) if *id == staked => format!("the STAKED identity {}", short(id)),
                    Some(id) => format!("its junk identity {}", short(id)),
                    None => "nothing (down)".into(),
                };
                say(out, "node", &format!("{}: admin.rpc setIdentity → now runs with {what}", NODES[i]));
                identities[i] = now;
            }
        }
        if first_backup_vote.is_none() {
            if let Some(at) = hung_at {
                first_backup_vote = c.first_vote_after(NODES[1], at);
                if let Some(s) = first_backup_vote {
                    say(
                        out,
                        "chain",
                        &format!("slot {s}: the vote account votes again, from {} with the primary's tower", NODES[1]),
                    );
                }
            }
        }
        let messages = sms.messages();
        for m in messages.iter().skip(sms_seen) {
            say(out, "sms", &format!("to {}: \"{}\" ({} characters)", m.to, m.body, m.body.chars().count()));
        }
        sms_seen = messages.len();
        if let Some(s) = &status {
            if first_backup_vote.is_some() || !matches!(s, Ok(RunOutcome::Fired(f)) if f.swapped()) {
                break;
            }
        }
    }
    shutdown.cancel();
    say(out, "demo", "summary");
    if let (Some(last), Some(first)) = (last_vote_before, first_backup_vote) {
        say(
            out,
            "",
            &format!("slots from the last vote ({last}) to the backup's first vote ({first}): {}", first - last),
        );
    }
    let violations = c.violations();
    say(
        out,
        "",
        &format!(
            "moments two validators held the staked identity, or one voted without a safe tower: {}; SMS sent: {}",
            violations.len(),
            sms.messages().len()
        ),
    );
    for v in &violations {
        say(out, "", &format!("!!! slot {}: {:?}: {}", v.slot, v.kind, v.detail));
    }
    say(
        out,
        "",
        &format!(
            "had {}'s agent been unreachable, the trap would have promoted {} only once the cluster had seen no \
             vote for TOWER_SAFE_SLOTS (200) slots, without the tower (UNREACHABLE_PRIMARY=refuse: never)",
            NODES[0], NODES[1]
        ),
    );
    Ok(status.unwrap_or_else(|| Err(ServiceError::Failure("the trap did not finish".into()))))
}

/// The trap's log lines (prefixed `trap`) and the agents' (prefixed `agent`), interleaved with the narration.
pub fn init_logging() {
    crate::demo_pause_resume::init_trap_and_agent_logging("witness_trap::chain::solana=info");
}
