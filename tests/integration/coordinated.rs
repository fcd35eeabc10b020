//! `COORDINATION=etcd`: three trap replicas (the real service, in process, each with its own state file and
//! `REPLICA_NAME`) against one real etcd (Debian's, started by the test on a free loopback port) and the
//! simulated Hive chain. Each scenario asserts what the issue asks every time: exactly one key change on
//! chain, to the backup, and one FIRED SMS per number. All healthy; the holder killed (its task aborted, its
//! lease left to expire) the moment it committed the fire, so another replica finishes that same fire; etcd
//! stopped during the incident (nobody fires) and started again (the trap fires); a replica started after
//! the fire idles and alerts nothing; `status` names the holder and every replica; `rearm` re-arms the group.
//! A replica stopped past its TTL (SIGSTOP) is covered by the coordination crate's tests of the fence.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chain_clock::{ScaledClock, SharedClock};
use coordination::testing::EtcdServer;
use coordination::{Coordinator, EtcdOptions};
use graphene_protocol::chain::ChainSpec;
use graphene_protocol::keys::{PrivateKey, PublicKey};
use graphene_sim::{SimConfig, SimEvent, SimNode, SmsSink};
use secrecy::SecretString;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use witness_trap::cli::ExitStatus;
use witness_trap::config::{vars as v, VarMap};
use witness_trap::trap::state::{AnyState, Phase};

use crate::support::*;

const SID: &str = "ACcoordinated00000000000000000000";
const TOKEN: &str = "coordinated-token-0123456789";
const TO: &str = "+14155550123";

struct World {
    etcd: EtcdServer,
    sim: SimNode,
    sms: SmsSink,
    clock: SharedClock,
    primary: PrivateKey,
    backup_wif: PrivateKey,
    backup: PublicKey,
    /// One map of variables per replica (r1, r2, r3), each with its own state file.
    vars: Vec<HashMap<String, String>>,
    _dirs: Vec<tempfile::TempDir>,
}

async fn world(seed: u64) -> World {
    let etcd = EtcdServer::start().expect("etcd starts (Debian's etcd-server; .ci/run installs it)");
    let primary = PrivateKey::generate();
    let backup = PrivateKey::generate();
    let active = PrivateKey::generate();
    let clock: SharedClock = Arc::new(ScaledClock::starting_now(10.0));
    let mut cfg =
        SimConfig::new(ChainSpec::hive(), "alice", primary.public_key(), backup.public_key(), active.public_key());
    cfg.clock = Some(clock.clone());
    cfg.endpoints = 2;
    cfg.seed = seed;
    let sim = SimNode::start(cfg).await.expect("sim starts");
    let sms = SmsSink::start(SID, SecretString::from(TOKEN.to_string())).await.expect("sms sink");
    let mut vars = Vec::new();
    let mut dirs = Vec::new();
    for name in ["r1", "r2", "r3"] {
        let (dir, state_file) = temp_state();
        let map = VarMap::graphene(
            "alice",
            &ChainSpec::hive(),
            &sim.urls(),
            &backup.public_key(),
            &primary.to_wif(),
            &state_file,
        )
        .with(v::MISSED_BLOCKS_ALLOWED, 1)
        .with(v::RPC_TIMEOUT_SECS, 2)
        .with(v::POLL_INTERVAL_SECS, 1)
        .with(v::COORDINATION, "etcd")
        .with(v::ETCD_ENDPOINTS, etcd.url())
        .with(v::LEASE_TTL_SECS, 4)
        .with(v::REPLICA_NAME, name)
        .with_twilio(sms.url(), SID, TOKEN, "+15005550006", TO)
        .into_map();
        vars.push(map);
        dirs.push(dir);
    }
    World { etcd, sim, sms, clock, primary, backup: backup.public_key(), backup_wif: backup, vars, _dirs: dirs }
}

impl World {
    fn spawn(&self, i: usize) -> (JoinHandle<ExitStatus>, CancellationToken) {
        let stop = CancellationToken::new();
        let (vars, clock, s) = (self.vars[i].clone(), self.clock.clone(), stop.clone());
        (tokio::spawn(async move { run(&vars, clock, s, true).await }), stop)
    }

    async fn coordinator(&self) -> Coordinator {
        let mut o = EtcdOptions::new(vec![self.etcd.url()], "test");
        o.request_timeout = Duration::from_millis(800);
        Coordinator::connect(o, "hive/alice").await.expect("etcd client")
    }

    /// The trap's state in etcd, once `what` holds (waits in wall time).
    async fn wait_record(&self, what: impl Fn(&AnyState) -> bool) -> AnyState {
        etcd_record(&self.coordinator().await, what).await
    }

    async fn holder(&self) -> Option<String> {
        self.coordinator().await.holder().await.ok().flatten()
    }

    fn key_changes(&self) -> Vec<PublicKey> {
        self.sim
            .events()
            .into_iter()
            .filter_map(|r| match r.event {
                SimEvent::SigningKeyChanged { witness, new, .. } if witness == "alice" => Some(new),
                _ => None,
            })
            .collect()
    }

    fn fired_sms(&self) -> Vec<String> {
        self.sms.messages().into_iter().filter(|m| m.to == TO && m.body.starts_with("FIRED")).map(|m| m.body).collect()
    }

    /// Exactly one key change, to the backup, and one FIRED SMS, naming the replica that fired.
    fn assert_fired_once(&self) {
        assert_eq!(self.key_changes(), vec![self.backup], "exactly one key change, to the backup");
        let sms = self.fired_sms();
        assert_eq!(sms.len(), 1, "one FIRED SMS for the whole group: {sms:?}");
        assert!(["r1", "r2", "r3"].iter().any(|r| sms[0].ends_with(&format!("(replica {r})"))), "{sms:?}");
    }
}

fn index_of(name: &str) -> usize {
    ["r1", "r2", "r3"].iter().position(|n| *n == name).expect("a replica's name")
}

async fn end_all(tasks: Vec<(JoinHandle<ExitStatus>, CancellationToken)>) -> Vec<Option<ExitStatus>> {
    let mut out = Vec::new();
    for (task, stop) in tasks {
        let done = tokio::time::timeout(Duration::from_secs(30), task).await;
        stop.cancel();
        out.push(done.ok().and_then(Result::ok));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_three_healthy_replicas_exactly_one_fires() {
    let w = world(81).await;
    let tasks: Vec<_> = (0..3).map(|i| w.spawn(i)).collect();
    w.wait_record(|s| s.phase.name() == "armed").await;
    let holder = w.holder().await.expect("a holder");
    // `status` from any host: the holder and every replica.
    let settings = witness_trap::config::load(&w.vars[0]).expect("settings");
    let status = witness_trap::service::status(settings, w.clock.clone()).await.expect("status").lines.join("\n");
    assert!(status.contains(&format!("lock holder: {holder}")), "{status}");
    assert!(status.contains("state:      armed"), "{status}");
    for r in ["r1", "r2", "r3"] {
        assert!(status.contains(&format!("replica {r}: last poll")), "{status}");
    }
    // The standbys watch the chain too (each reports its own reading).
    for _ in 0..1200 {
        let replicas = w.coordinator().await.replicas().await.expect("replicas");
        let reading = |name: &str| {
            replicas
                .iter()
                .any(|r| r.name == name && r.report.contains("chain read from") && r.report.contains("\"height\""))
        };
        if ["r1", "r2", "r3"].iter().filter(|n| **n != holder).all(|n| reading(n)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let replicas = w.coordinator().await.replicas().await.expect("replicas");
    for r in replicas.iter().filter(|r| r.name != holder) {
        assert!(r.report.contains("standby: lock holder") && r.report.contains("chain read from"), "{r:?}");
    }
    w.sim.fail_primary();
    let fired = w.wait_record(|s| matches!(s.phase, Phase::Fired { .. })).await;
    assert!(matches!(&fired.phase, Phase::Fired { target, .. } if *target == w.backup.to_text("STM")));
    let ends = end_all(tasks).await;
    w.assert_fired_once();
    assert_eq!(ends[index_of(&holder)], Some(ExitStatus::Ok), "the holder fired: {ends:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_holder_killed_as_it_commits_the_fire_is_finished_by_another_replica() {
    let w = world(83).await;
    let mut tasks: Vec<_> = (0..3).map(|i| w.spawn(i)).collect();
    w.wait_record(|s| s.phase.name() == "armed").await;
    let holder = w.holder().await.expect("a holder");
    w.sim.fail_primary();
    // The moment the fire is committed (before or around the broadcast), the holder dies without a word:
    // its lease is left to run out.
    w.wait_record(|s| matches!(s.phase, Phase::Firing { .. })).await;
    tasks[index_of(&holder)].0.abort();
    let fired = w.wait_record(|s| matches!(s.phase, Phase::Fired { .. })).await;
    assert!(matches!(&fired.phase, Phase::Fired { target, .. } if *target == w.backup.to_text("STM")));
    let new_holder = w.holder().await;
    assert_ne!(new_holder.as_deref(), Some(holder.as_str()), "another replica finished it");
    tasks.remove(index_of(&holder));
    end_all(tasks).await;
    w.assert_fired_once();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_etcd_down_nobody_fires_and_once_it_is_back_the_trap_fires() {
    let mut w = world(87).await;
    let tasks: Vec<_> = (0..3).map(|i| w.spawn(i)).collect();
    w.wait_record(|s| s.phase.name() == "armed").await;
    // Every replica has seen the armed record (its local copy, which `health` reads).
    for vars in &w.vars {
        let path = std::path::PathBuf::from(&vars[v::STATE_FILE]);
        for _ in 0..400 {
            if path.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    w.etcd.stop();
    w.sim.fail_primary();
    // Two witness rounds (126 chain s) with the witness missing and no etcd: no replica may fire.
    w.clock.sleep(Duration::from_secs(126)).await;
    assert!(w.key_changes().is_empty(), "nobody fires without coordination");
    // The replica records it beside its loop: wait (wall time) until its local file says so.
    let health = || {
        witness_trap::service::health(
            std::path::Path::new(&w.vars[0][v::STATE_FILE]),
            now(&w.clock),
            Duration::from_secs(1),
        )
    };
    for _ in 0..300 {
        if health().line.contains("coordination unavailable") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let health = health();
    assert!(!health.healthy, "{health:?}");
    assert!(health.line.contains("coordination unavailable"), "{health:?}");
    w.etcd.resume().expect("etcd again");
    w.wait_record(|s| matches!(s.phase, Phase::Fired { .. })).await;
    end_all(tasks).await;
    w.assert_fired_once();
    let warnings: Vec<String> =
        w.sms.messages().into_iter().filter(|m| m.body.contains("coordination unavailable")).map(|m| m.body).collect();
    assert!(!warnings.is_empty() && warnings.len() <= 3, "one alert per replica and episode: {warnings:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_started_after_the_fire_idles_and_rearm_rearms_the_group() {
    let w = world(89).await;
    let tasks: Vec<_> = (0..2).map(|i| w.spawn(i)).collect();
    w.wait_record(|s| s.phase.name() == "armed").await;
    w.sim.fail_primary();
    w.wait_record(|s| matches!(s.phase, Phase::Fired { .. })).await;
    end_all(tasks).await;
    // r3 starts after the fire: it finds the fired record, says so and exits (exit_when_disarmed), alerting
    // nothing and signing nothing.
    let (late, _stop) = w.spawn(2);
    let status = tokio::time::timeout(Duration::from_secs(30), late).await.expect("ends").expect("task");
    assert_eq!(status, ExitStatus::Ok, "a fired record: it idles (here, exits) without acting");
    w.assert_fired_once();
    // After the incident the operator swaps the roles in .env (the backup's key is current now, the mended
    // primary the backup) and re-arms from any host, no replica running: on the record's revision, in etcd.
    let before = w.coordinator().await.read().await.expect("read").expect("record").revision;
    let mut vars = w.vars[0].clone();
    vars.insert(v::SIGNING_WIF.into(), w.backup_wif.to_wif().as_str().to_string());
    vars.insert(v::BACKUP_SIGNING_KEY.into(), w.primary.public_key().to_text("STM"));
    w.sim.restore_primary();
    let settings = witness_trap::config::load(&vars).unwrap_or_else(|r| panic!("{r}"));
    let rearmed = witness_trap::service::rearm(settings, w.clock.clone()).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(rearmed.line.contains("re-armed"), "{}", rearmed.line);
    let record = w.coordinator().await.read().await.expect("read").expect("record");
    assert!(record.revision > before);
    let armed = AnyState::decode(record.value.as_bytes(), "etcd").expect("state");
    assert_eq!(armed.phase.name(), "armed");
    // A replica started now guards the new roles.
    let stop = CancellationToken::new();
    let (clock, s) = (w.clock.clone(), stop.clone());
    let task = tokio::spawn(async move { run(&vars, clock, s, true).await });
    for _ in 0..400 {
        if w.holder().await.as_deref() == Some("r1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(w.holder().await.as_deref(), Some("r1"));
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    w.assert_fired_once();
}

/// A valid replica's variables (no etcd needs to run: these are the checks made before anything starts).
fn replica_vars(dir: &std::path::Path) -> VarMap {
    let primary = PrivateKey::generate();
    let backup = PrivateKey::generate();
    VarMap::graphene(
        "alice",
        &ChainSpec::hive(),
        &["http://127.0.0.1:1".to_string()],
        &backup.public_key(),
        &primary.to_wif(),
        &dir.join("state.json"),
    )
    .with(v::MISSED_BLOCKS_ALLOWED, 1)
    .with(v::POLL_INTERVAL_SECS, 3)
    .with(v::COORDINATION, "etcd")
    .with(v::ETCD_ENDPOINTS, "http://127.0.0.1:2379")
    .with_twilio("http://127.0.0.1:1", SID, TOKEN, "+15005550006", TO)
}

fn problems(vars: &VarMap) -> Vec<(String, String)> {
    match witness_trap::config::load(vars) {
        Ok(_) => Vec::new(),
        Err(r) => r.problems.into_iter().map(|p| (p.var, p.message)).collect(),
    }
}

#[test]
fn every_coordination_setting_is_checked_before_anything_starts_each_naming_its_variable() {
    let dir = tempfile::tempdir().expect("dir");
    let base = || replica_vars(dir.path());
    assert_eq!(problems(&base()), vec![], "the base replica settings are valid");
    let pem = dir.path().join("ca.pem");
    std::fs::write(&pem, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").expect("pem");
    let not_pem = dir.path().join("ca.txt");
    std::fs::write(&not_pem, "hello").expect("file");
    let tls3 = "https://10.0.0.1:2379,https://10.0.0.2:2379,https://10.0.0.3:2379";
    let cases: Vec<(VarMap, &str, &str)> = vec![
        (base().with(v::COORDINATION, "zookeeper"), v::COORDINATION, "not a coordination"),
        (base().with(v::ETCD_ENDPOINTS, "http://a:2379,http://b:2379"), v::ETCD_ENDPOINTS, "2 members"),
        (base().with(v::ETCD_ENDPOINTS, "a:2379"), v::ETCD_ENDPOINTS, "http://host:port"),
        (base().with(v::ETCD_ENDPOINTS, "http://a:2379,https://b:2379,http://c:2379"), v::ETCD_ENDPOINTS, "mixes"),
        (base().with(v::ETCD_ENDPOINTS, tls3), v::ETCD_CA_FILE, "is not set"),
        (
            base().with(v::ETCD_ENDPOINTS, tls3).with(v::ETCD_CA_FILE, "/nonexistent.pem"),
            v::ETCD_CA_FILE,
            "cannot read",
        ),
        (base().with(v::ETCD_ENDPOINTS, tls3).with(v::ETCD_CA_FILE, not_pem.display()), v::ETCD_CA_FILE, "not a PEM"),
        (
            base()
                .with(v::ETCD_ENDPOINTS, tls3)
                .with(v::ETCD_CA_FILE, pem.display())
                .with(v::ETCD_CERT_FILE, pem.display()),
            v::ETCD_KEY_FILE,
            "is not set",
        ),
        (base().with(v::ETCD_CA_FILE, pem.display()), v::ETCD_CA_FILE, "without TLS"),
        (base().with(v::ETCD_USERNAME, "trap"), v::ETCD_PASSWORD, "is not set"),
        (base().with(v::ETCD_PASSWORD, "secret"), v::ETCD_USERNAME, "is not set"),
        (base().with(v::ETCD_PREFIX, "witness-trap"), v::ETCD_PREFIX, "must start and end"),
        (base().with(v::LEASE_TTL_SECS, 63), v::LEASE_TTL_SECS, "round"),
        (base().with(v::LEASE_TTL_SECS, 2), v::LEASE_TTL_SECS, "too short"),
        (base().with(v::POLL_INTERVAL_SECS, 4), v::POLL_INTERVAL_SECS, "a third of LEASE_TTL_SECS"),
        (base().with(v::REPLICA_NAME, "trap a"), v::REPLICA_NAME, "not a name"),
    ];
    for (vars, var, what) in cases {
        let found = problems(&vars);
        assert!(found.iter().any(|(v, m)| v == var && m.contains(what)), "{var} {what:?}: {found:?}");
    }
    // Valid TLS with a client certificate, and credentials, pass.
    let ok = base()
        .with(v::ETCD_ENDPOINTS, tls3)
        .with(v::ETCD_CA_FILE, pem.display())
        .with(v::ETCD_CERT_FILE, pem.display())
        .with(v::ETCD_KEY_FILE, pem.display())
        .with(v::ETCD_USERNAME, "trap")
        .with(v::ETCD_PASSWORD, "secret");
    assert_eq!(problems(&ok), vec![]);
    // etcd variables without COORDINATION=etcd are a mistake, not ignored.
    let mut stray = base();
    stray.unset(v::COORDINATION);
    assert!(problems(&stray).iter().any(|(v, _)| v == v::ETCD_ENDPOINTS));
}

#[tokio::test]
async fn check_names_etcd_endpoints_when_no_member_answers() {
    let dir = tempfile::tempdir().expect("dir");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let vars = replica_vars(dir.path()).with(v::ETCD_ENDPOINTS, format!("http://127.0.0.1:{port}"));
    let settings = witness_trap::config::load(&vars).unwrap_or_else(|r| panic!("{r}"));
    let clock: SharedClock = Arc::new(chain_clock::SystemClock);
    let Err(failure) = witness_trap::service::check(settings, clock).await else { panic!("etcd is down") };
    let text = failure.error.to_string();
    assert!(text.contains("ETCD_ENDPOINTS") && text.contains(&port.to_string()), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planned_switch_takes_the_groups_lock_and_the_replicas_guard_the_swapped_roles() {
    use witness_trap::service::switch::{SwitchRequest, Target, When};
    use witness_trap::service::SwitchOutcome;
    let mut w = world(91).await;
    let backup_wif = w.backup_wif.to_wif().as_str().to_string();
    for vars in &mut w.vars {
        vars.insert(v::BACKUP_SIGNING_WIF.into(), backup_wif.clone());
    }
    let tasks: Vec<_> = (0..2).map(|i| w.spawn(i)).collect();
    w.wait_record(|s| s.phase.name() == "armed").await;
    let holder = w.holder().await.expect("a holder");
    let settings = witness_trap::config::load(&w.vars[2]).expect("settings");
    let request = SwitchRequest { swap_roles: true, ..SwitchRequest::new(Target::Backup, When::Now) };
    let mut lines = Vec::new();
    let mut progress = |l: String| lines.push(l);
    let outcome = tokio::time::timeout(
        Duration::from_secs(120),
        witness_trap::service::switch(settings, request, w.clock.clone(), CancellationToken::new(), &mut progress),
    )
    .await
    .expect("in time")
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(outcome, SwitchOutcome::Switched { .. }), "{outcome:?}");
    assert!(lines.iter().any(|l| l.contains(&format!("replica {holder} holds the trap"))), "{lines:?}");
    assert_eq!(w.key_changes(), vec![w.backup], "one key change, made by the switch");
    // The record carries the swapped roles, and a replica holds the lock again to guard them.
    let armed = w.wait_record(|s| s.phase.name() == "armed" && s.roles.is_some()).await;
    assert_eq!(armed.roles.as_ref().map(|r| r.current.clone()), Some(w.backup.to_text("STM")));
    for _ in 0..400 {
        if w.holder().await.is_some_and(|h| h.starts_with('r')) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(w.holder().await.is_some_and(|h| h == "r1" || h == "r2"), "{:?}", w.holder().await);
    assert!(w.fired_sms().is_empty(), "a planned switch is not a fire");
    for (task, stop) in tasks {
        stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    }
}
