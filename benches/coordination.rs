//! The redundant traps' numbers (`COORDINATION=etcd`), measured against a real etcd (Debian's
//! `etcd-server`) and, for the second part, the simulated Hive chain in real time:
//!
//! 1. **Lock handover**: three replicas' sessions at the default `LEASE_TTL_SECS=10`, campaigning as the
//!    service does (a look every TTL/3); the holder dies (its renewals stop, as a SIGKILL leaves it) and the
//!    time until another replica holds the lock is measured. `--trials N` (default 30), all at once, each
//!    on its own trap scope.
//! 2. **Blocks lost when the holder dies at the worst moment**: three replicas of the real service in
//!    process, on the system clock, the default TTL, `MISSED_BLOCKS_ALLOWED=1`; the primary node fails and
//!    the holder is killed (its task aborted, its lease left to run out) the moment the witness's first
//!    missed slot shows on chain, when it would have fired. Counted: the witness's missed slots until the
//!    key change, against the same outage with no replica killed. `--outages N` (default 6), all at once.
//!
//! Run: `cargo bench --features etcd --bench coordination [-- --trials N --outages N]`. Prints a Markdown
//! table. Figures are wall time (part 1) and chain slots (part 2); the machine is shared, so they are
//! measured, never asserted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chain_clock::{SharedClock, SystemClock};
use coordination::testing::EtcdServer;
use coordination::{EtcdOptions, Session};
use graphene_protocol::chain::ChainSpec;
use graphene_protocol::keys::PrivateKey;
use graphene_sim::{SimConfig, SimEvent, SimNode, SmsSink};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use witness_trap::config::{vars as v, VarMap};
use witness_trap::service::RunOptions;

const SID: &str = "ACbenchcoordination000000000000000";
const TOKEN: &str = "bench-coordination-token-01234";

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p / 100.0).round() as usize]
}

/// Part 1: one trial on its own scope; the seconds from the holder's last renewal to a new holder.
async fn handover(etcd: String, scope: String) -> Result<f64, String> {
    let ttl = Duration::from_secs(10);
    let open = |name: &str| {
        let mut o = EtcdOptions::new(vec![etcd.clone()], name);
        o.lease_ttl = ttl;
        Session::open(o, &scope)
    };
    let sessions = [open("a").await, open("b").await, open("c").await];
    let sessions: Vec<Session> = sessions.into_iter().collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    // Campaign as the service does, from a random phase, until one holds the lock.
    let holder = loop {
        let mut found = None;
        for (i, s) in sessions.iter().enumerate() {
            if let Ok(None) = s.try_acquire().await {
                found = Some(i);
                break;
            }
        }
        if let Some(i) = found {
            break i;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Die a random moment after the last renewal (renewals run every TTL/3).
    tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 3333)).await;
    sessions[holder].stop_renewing();
    let died = Instant::now();
    let others: Vec<&Session> = sessions.iter().enumerate().filter(|(i, _)| *i != holder).map(|(_, s)| s).collect();
    // Each standby looks every TTL/3 from its own phase.
    let phases: Vec<Duration> = others.iter().map(|_| Duration::from_millis(rand::random::<u64>() % 3333)).collect();
    let mut next: Vec<Instant> = phases.iter().map(|p| died + *p).collect();
    loop {
        if died.elapsed() > Duration::from_secs(60) {
            return Err("no handover within 60 s".into());
        }
        for (k, s) in others.iter().enumerate() {
            if Instant::now() >= next[k] {
                next[k] += ttl / 3;
                if let Ok(None) = s.try_acquire().await {
                    return Ok(died.elapsed().as_secs_f64());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Part 2: one outage; the witness's missed slots until the key change (`kill`: the holder dies at the
/// first missed slot).
async fn outage(etcd: String, sms_url: String, kill: bool) -> Result<u64, String> {
    let primary = PrivateKey::generate();
    let backup = PrivateKey::generate();
    let active = PrivateKey::generate();
    let mut cfg =
        SimConfig::new(ChainSpec::hive(), "alice", primary.public_key(), backup.public_key(), active.public_key());
    cfg.endpoints = 2;
    cfg.seed = rand::random();
    let sim = SimNode::start(cfg).await.map_err(|e| e.to_string())?;
    let scope_account = "alice";
    let clock: SharedClock = Arc::new(SystemClock);
    let prefix = format!("/bench-{}/", rand::random::<u32>());
    let mut tasks = HashMap::new();
    let mut dirs = Vec::new();
    for name in ["r1", "r2", "r3"] {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let vars = VarMap::graphene(
            scope_account,
            &ChainSpec::hive(),
            &sim.urls(),
            &backup.public_key(),
            &primary.to_wif(),
            &dir.path().join("state.json"),
        )
        .with(v::MISSED_BLOCKS_ALLOWED, 1)
        .with(v::POLL_INTERVAL_SECS, 3)
        .with(v::COORDINATION, "etcd")
        .with(v::ETCD_ENDPOINTS, &etcd)
        .with(v::ETCD_PREFIX, &prefix)
        .with(v::REPLICA_NAME, name)
        .with_twilio(&sms_url, SID, TOKEN, "+15005550006", "+14155550123");
        let settings = witness_trap::config::load(&vars).map_err(|r| r.to_string())?;
        let (clock, stop) = (clock.clone(), CancellationToken::new());
        let s = stop.clone();
        let task = tokio::spawn(async move {
            witness_trap::service::run(settings, clock, s, RunOptions { exit_when_disarmed: true }).await
        });
        tasks.insert(name.to_string(), (task, stop));
        dirs.push(dir);
    }
    let mut o = EtcdOptions::new(vec![etcd.clone()], "bench");
    o.prefix = prefix.clone();
    let coord = coordination::Coordinator::connect(o, "hive/alice").await.map_err(|e| e.to_string())?;
    let t = Instant::now();
    while coord.read().await.ok().flatten().is_none() {
        if t.elapsed() > Duration::from_secs(60) {
            return Err("not armed".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 63_000)).await;
    let seq = sim.last_seq();
    sim.fail_primary();
    if kill {
        sim.wait_for_event(
            seq,
            Duration::from_secs(120),
            |e| matches!(e, SimEvent::SlotMissed { witness, .. } if witness == "alice"),
        )
        .await
        .map_err(|e| e.to_string())?;
        let holder = coord.holder().await.map_err(|e| e.to_string())?.ok_or("no holder")?;
        if let Some((task, _)) = tasks.remove(&holder) {
            task.abort();
        }
    }
    sim.wait_for_event(seq, Duration::from_secs(300), |e| matches!(e, SimEvent::SigningKeyChanged { .. }))
        .await
        .map_err(|e| format!("no key change: {e}"))?;
    let events = sim.events();
    let changed = events
        .iter()
        .filter(|r| r.seq > seq)
        .position(|r| matches!(r.event, SimEvent::SigningKeyChanged { .. }))
        .unwrap_or(events.len());
    let lost = events
        .iter()
        .filter(|r| r.seq > seq)
        .take(changed)
        .filter(|r| matches!(&r.event, SimEvent::SlotMissed { witness, .. } if witness == "alice"))
        .count() as u64;
    let changes = events.iter().filter(|r| matches!(r.event, SimEvent::SigningKeyChanged { .. })).count();
    for (_, (task, stop)) in tasks {
        stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(20), task).await;
    }
    if changes != 1 {
        return Err(format!("{changes} key changes"));
    }
    Ok(lost)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let trials = arg("--trials", 30);
    let outages = arg("--outages", 6);
    let etcd = match EtcdServer::start() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("coordination bench: {e}");
            std::process::exit(1);
        }
    };
    let began = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..trials {
        set.spawn(handover(etcd.url(), format!("hive/trial{i}")));
    }
    let mut times = Vec::new();
    let mut errors = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(t)) => times.push(t),
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(e.to_string()),
        }
    }
    times.sort_by(f64::total_cmp);
    eprintln!("coordination: {} handovers in {:.0} s", times.len(), began.elapsed().as_secs_f64());

    let sms = match SmsSink::start(SID, SecretString::from(TOKEN.to_string())).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("coordination bench: sms sink: {e}");
            std::process::exit(1);
        }
    };
    let began2 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..outages * 2 {
        let kill = i % 2 == 0;
        set.spawn(outage(etcd.url(), sms.url().to_string(), kill).await_kind(kill));
    }
    let (mut killed, mut calm) = (Vec::new(), Vec::new());
    while let Some(r) = set.join_next().await {
        match r {
            Ok((true, Ok(n))) => killed.push(n),
            Ok((false, Ok(n))) => calm.push(n),
            Ok((_, Err(e))) => errors.push(e),
            Err(e) => errors.push(e.to_string()),
        }
    }
    killed.sort();
    calm.sort();
    println!("| measure (3 replicas, LEASE_TTL_SECS=10, real etcd) | runs | min | median | p95 | max |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| holder's death → another replica holds the lock, s | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
        times.len(),
        pct(&times, 0.0),
        pct(&times, 50.0),
        pct(&times, 95.0),
        pct(&times, 100.0)
    );
    let show = |v: &[u64], name: &str| {
        let f: Vec<f64> = v.iter().map(|x| *x as f64).collect();
        println!(
            "| {name}, missed slots until the key change | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
            v.len(),
            pct(&f, 0.0),
            pct(&f, 50.0),
            pct(&f, 95.0),
            pct(&f, 100.0)
        );
    };
    show(&killed, "holder killed at the first missed slot (Hive, MISSED_BLOCKS_ALLOWED=1)");
    show(&calm, "no replica killed (outages of the same kind)");
    println!();
    println!(
        "{:.0} s for the handovers, {:.0} s for the outages (real time); {} run(s) failed{}",
        began2.duration_since(began).as_secs_f64(),
        began2.elapsed().as_secs_f64(),
        errors.len(),
        errors.first().map(|e| format!(": {e}")).unwrap_or_default()
    );
}

/// Tag an outage's result with whether its holder was killed.
trait Kind: std::future::Future + Sized {
    fn await_kind(self, kill: bool) -> impl std::future::Future<Output = (bool, Self::Output)> {
        async move { (kill, self.await) }
    }
}
impl<F: std::future::Future> Kind for F {}
