//! `COORDINATION=etcd` with separate processes of the real binary (built with `--features etcd`): three
//! replicas, one real etcd, the simulated Hive chain in real time (a witness slot every 63 s). The holder is
//! killed (SIGKILL) the moment it commits the fire; in another run it is stopped (SIGSTOP) past its TTL, a
//! second replica fires, and the stopped one is resumed (SIGCONT): the fence must refuse it. The moment of
//! the failure is randomised in each run. Asserted every time: exactly one key change on chain, to the
//! backup, and one FIRED SMS per number.

use std::process::{Child, Stdio};
use std::time::Duration;

use coordination::testing::EtcdServer;
use coordination::{Coordinator, EtcdOptions};
use graphene_protocol::chain::ChainSpec;
use graphene_protocol::keys::{PrivateKey, PublicKey};
use graphene_sim::{SimConfig, SimEvent, SimNode, SmsSink};
use secrecy::SecretString;
use witness_trap::config::{vars as v, VarMap};
use witness_trap::trap::state::{AnyState, Phase};

use crate::support::*;

const SID: &str = "ACreplicaprocs0000000000000000000";
const TOKEN: &str = "replica-procs-token-0123456789";
const TO: &str = "+14155550123";
const NAMES: [&str; 3] = ["p1", "p2", "p3"];

struct Group {
    etcd: EtcdServer,
    sim: SimNode,
    sms: SmsSink,
    backup: PublicKey,
    replicas: Vec<Option<Child>>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Drop for Group {
    fn drop(&mut self) {
        for child in self.replicas.iter_mut().flatten() {
            let _ = signal(child, "CONT");
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(child: &Child, sig: &str) -> std::io::Result<std::process::ExitStatus> {
    std::process::Command::new("kill").arg(format!("-{sig}")).arg(child.id().to_string()).status()
}

async fn group(seed: u64) -> Group {
    let etcd = EtcdServer::start().expect("etcd starts (Debian's etcd-server; .ci/run installs it)");
    let primary = PrivateKey::generate();
    let backup = PrivateKey::generate();
    let active = PrivateKey::generate();
    // Real time: the replicas are separate processes on the system clock.
    let mut cfg =
        SimConfig::new(ChainSpec::hive(), "alice", primary.public_key(), backup.public_key(), active.public_key());
    cfg.endpoints = 2;
    cfg.seed = seed;
    let sim = SimNode::start(cfg).await.expect("sim starts");
    let sms = SmsSink::start(SID, SecretString::from(TOKEN.to_string())).await.expect("sms sink");
    let mut replicas = Vec::new();
    let mut dirs = Vec::new();
    for name in NAMES {
        let (dir, state_file) = temp_state();
        let vars = VarMap::graphene(
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
        let child = bin()
            .arg("run")
            .envs(&vars)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts");
        replicas.push(Some(child));
        dirs.push(dir);
    }
    Group { etcd, sim, sms, backup: backup.public_key(), replicas, _dirs: dirs }
}

impl Group {
    async fn coordinator(&self) -> Coordinator {
        let mut o = EtcdOptions::new(vec![self.etcd.url()], "test");
        o.request_timeout = Duration::from_millis(800);
        Coordinator::connect(o, "hive/alice").await.expect("etcd client")
    }

    async fn wait_record(&self, limit: Duration, what: impl Fn(&AnyState) -> bool) -> AnyState {
        let coord = self.coordinator().await;
        let t = std::time::Instant::now();
        while t.elapsed() < limit {
            if let Ok(Some(r)) = coord.read().await {
                if let Ok(s) = AnyState::decode(r.value.as_bytes(), "etcd") {
                    if what(&s) {
                        return s;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the record never became what was expected: {:?}", coord.read().await)
    }

    async fn holder(&self) -> usize {
        let coord = self.coordinator().await;
        for _ in 0..200 {
            if let Ok(Some(h)) = coord.holder().await {
                if let Some(i) = NAMES.iter().position(|n| *n == h) {
                    return i;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no replica holds the lock")
    }

    fn assert_fired_once(&self) {
        let changes: Vec<PublicKey> = self
            .sim
            .events()
            .into_iter()
            .filter_map(|r| match r.event {
                SimEvent::SigningKeyChanged { witness, new, .. } if witness == "alice" => Some(new),
                _ => None,
            })
            .collect();
        assert_eq!(changes, vec![self.backup], "exactly one key change, to the backup");
        let fired: Vec<String> = self
            .sms
            .messages()
            .into_iter()
            .filter(|m| m.to == TO && m.body.starts_with("FIRED"))
            .map(|m| m.body)
            .collect();
        assert_eq!(fired.len(), 1, "one FIRED SMS: {fired:?}");
    }
}

/// A random pause of up to one witness round before the primary fails, so the failure falls anywhere
/// relative to the witness's slot.
async fn random_delay() {
    tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 63_000)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_the_holder_sigkilled_as_it_commits_the_fire() {
    let mut g = group(rand::random()).await;
    g.wait_record(Duration::from_secs(60), |s| s.phase.name() == "armed").await;
    let holder = g.holder().await;
    random_delay().await;
    g.sim.fail_primary();
    g.wait_record(Duration::from_secs(150), |s| matches!(s.phase, Phase::Firing { .. } | Phase::Fired { .. })).await;
    if let Some(mut child) = g.replicas[holder].take() {
        let _ = child.kill();
        let _ = child.wait();
    }
    g.wait_record(Duration::from_secs(90), |s| matches!(s.phase, Phase::Fired { .. })).await;
    // Another replica finished the fire; give any stray second attempt time to show.
    tokio::time::sleep(Duration::from_secs(10)).await;
    g.assert_fired_once();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_the_holder_sigstopped_past_its_ttl_is_fenced_when_resumed() {
    let g = group(rand::random()).await;
    g.wait_record(Duration::from_secs(60), |s| s.phase.name() == "armed").await;
    let holder = g.holder().await;
    let stopped = g.replicas[holder].as_ref().expect("running");
    signal(stopped, "STOP").expect("SIGSTOP");
    random_delay().await;
    g.sim.fail_primary();
    // Past its TTL another replica holds the lock and fires.
    g.wait_record(Duration::from_secs(150), |s| matches!(s.phase, Phase::Fired { .. })).await;
    // The fire's SMS (sent once the fire is recorded) names the replica that fired: not the stopped one.
    let fired_sms =
        || -> Vec<String> { g.sms.messages().into_iter().map(|m| m.body).filter(|b| b.starts_with("FIRED")).collect() };
    for _ in 0..300 {
        if !fired_sms().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fired = fired_sms();
    assert!(
        fired.iter().all(|b| !b.ends_with(&format!("(replica {})", NAMES[holder]))) && !fired.is_empty(),
        "{fired:?}"
    );
    // The stopped one wakes up believing it holds the lock: nothing it does may sign or change the key.
    signal(stopped, "CONT").expect("SIGCONT");
    tokio::time::sleep(Duration::from_secs(15)).await;
    g.assert_fired_once();
}
