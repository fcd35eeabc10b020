//! `COORDINATION=etcd` on an Antelope chain: three trap replicas (the real service, in process, each its own
//! state file and `REPLICA_NAME`) against one real etcd and the simulated EOS (`antelope-sim`, ten times
//! real time). The same fence as for Hive, through the other family's swap (`regproducer` signed by the
//! linked failover permission): the holder is killed the moment it commits the fire, another replica
//! finishes that same fire. Asserted: exactly one `regproducer`, to the backup key, one FIRED SMS naming a
//! replica, and the lock held by a replica other than the dead one.

use std::collections::HashMap;
use std::time::Duration;

use coordination::testing::EtcdServer;
use coordination::{Coordinator, EtcdOptions};
use witness_trap::config::vars as v;
use witness_trap::trap::state::Phase;

use crate::antelope::world;
use crate::support::{etcd_record, spawn_service};

const NAMES: [&str; 3] = ["a1", "a2", "a3"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn antelope_replicas_the_holder_killed_as_it_commits_one_regproducer_to_the_backup() {
    let etcd = EtcdServer::start().expect("etcd starts (Debian's etcd-server; .ci/run installs it)");
    let w = world(2, 10.0, 91, |_| {}).await;
    let dirs: Vec<tempfile::TempDir> = NAMES.iter().map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let vars: Vec<HashMap<String, String>> = NAMES
        .iter()
        .zip(&dirs)
        .map(|(name, dir)| {
            let mut m = w.vars.clone();
            m.insert(v::STATE_FILE.into(), dir.path().join("state.json").display().to_string());
            m.insert(v::POLL_INTERVAL_SECS.into(), "1".into());
            m.insert(v::COORDINATION.into(), "etcd".into());
            m.insert(v::ETCD_ENDPOINTS.into(), etcd.url());
            m.insert(v::LEASE_TTL_SECS.into(), "4".into());
            m.insert(v::REPLICA_NAME.into(), name.to_string());
            m
        })
        .collect();
    let mut tasks: Vec<_> = vars.iter().map(|m| spawn_service(m, &w.clock)).collect();
    let mut o = EtcdOptions::new(vec![etcd.url()], "test");
    o.request_timeout = Duration::from_millis(800);
    let coord = Coordinator::connect(o, "eos/alice").await.expect("etcd client");
    etcd_record(&coord, |s| s.phase.name() == "armed").await;
    let holder = coord.holder().await.expect("etcd answers").expect("a replica holds the lock");
    let at = NAMES.iter().position(|n| *n == holder).expect("one of ours");

    w.sim.fail_primary();
    etcd_record(&coord, |s| matches!(s.phase, Phase::Firing { .. })).await;
    // The holder dies without a word, its lease left to run out.
    tasks[at].0.abort();
    let fired = etcd_record(&coord, |s| matches!(s.phase, Phase::Fired { .. })).await;
    let Phase::Fired { target, .. } = &fired.phase else { unreachable!("matched above") };
    assert_eq!(*target, w.keys.backup.public_key().to_legacy(), "the backup key");
    let now = coord.holder().await.expect("etcd answers");
    assert_ne!(now.as_deref(), Some(holder.as_str()), "another replica finished the fire");

    tasks.remove(at);
    for (task, stop) in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        stop.cancel();
    }
    let regs = w.registrations();
    assert_eq!(regs.len(), 1, "exactly one regproducer: {regs:?}");
    assert_eq!(w.sim.producer_row("alice").expect("row").producer_key, Some(w.keys.backup.public_key()));
    let fired_sms: Vec<String> =
        w.sms.messages().into_iter().map(|m| m.body).filter(|b| b.starts_with("FIRED")).collect();
    assert_eq!(fired_sms.len(), 1, "one FIRED SMS for the group: {fired_sms:?}");
    assert!(NAMES.iter().any(|r| fired_sms[0].ends_with(&format!("(replica {r})"))), "{fired_sms:?}");
}
