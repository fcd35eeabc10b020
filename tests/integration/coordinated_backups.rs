//! Ordered backups (`BACKUP_SIGNING_KEYS`) with `COORDINATION=etcd`: three replicas (the real service, in
//! process) against a real etcd and the simulated Hive chain with standby nodes. The primary dies: the group
//! moves to the first backup and guards it; the holder then dies, and when the first backup dies too
//! another replica moves to the second, never back to a key the group gave up (the abandoned list lives in
//! the etcd record, so a new holder knows it). Asserted: the key changes exactly [first, second], one FIRED
//! SMS per swap, and nothing more once the last backup is in place.

use std::sync::Arc;
use std::time::Duration;

use chain_clock::{ScaledClock, SharedClock};
use coordination::testing::EtcdServer;
use coordination::{Coordinator, EtcdOptions};
use graphene_protocol::chain::ChainSpec;
use graphene_protocol::keys::{PrivateKey, PublicKey};
use graphene_sim::{SimConfig, SimEvent, SimNode, SmsSink};
use secrecy::SecretString;
use witness_trap::config::{vars as v, VarMap};
use witness_trap::trap::state::Phase;

use crate::support::*;

const SID: &str = "ACcoordbackups0000000000000000000";
const TOKEN: &str = "coord-backups-token-0123456789";
const NAMES: [&str; 3] = ["b1", "b2", "b3"];

fn text(k: &PrivateKey) -> String {
    k.public_key().to_text("STM")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_moves_down_the_backup_list_across_a_holders_death_never_back() {
    let etcd = EtcdServer::start().expect("etcd starts (Debian's etcd-server; .ci/run installs it)");
    let primary = PrivateKey::generate();
    let backups = [PrivateKey::generate(), PrivateKey::generate()];
    let active = PrivateKey::generate();
    let clock: SharedClock = Arc::new(ScaledClock::starting_now(10.0));
    let mut cfg =
        SimConfig::new(ChainSpec::hive(), "alice", primary.public_key(), backups[0].public_key(), active.public_key());
    cfg.standby_keys = vec![backups[1].public_key()];
    cfg.clock = Some(clock.clone());
    cfg.endpoints = 2;
    cfg.seed = 97;
    let sim = SimNode::start(cfg).await.expect("sim starts");
    let sms = SmsSink::start(SID, SecretString::from(TOKEN.to_string())).await.expect("sms sink");
    let list = backups.iter().map(text).collect::<Vec<_>>().join(",");
    let mut dirs = Vec::new();
    let mut all_vars = Vec::new();
    for name in NAMES {
        let (dir, state_file) = temp_state();
        let mut vars = VarMap::graphene(
            "alice",
            &ChainSpec::hive(),
            &sim.urls(),
            &backups[0].public_key(),
            &primary.to_wif(),
            &state_file,
        )
        .with(v::MISSED_BLOCKS_ALLOWED, 1)
        .with(v::RPC_TIMEOUT_SECS, 2)
        .with(v::POLL_INTERVAL_SECS, 1)
        .with(v::BACKUP_SIGNING_WIF, backups[0].to_wif().as_str())
        .with(v::COORDINATION, "etcd")
        .with(v::ETCD_ENDPOINTS, etcd.url())
        .with(v::LEASE_TTL_SECS, 4)
        .with(v::REPLICA_NAME, name)
        .with_twilio(sms.url(), SID, TOKEN, "+15005550006", "+14155550123")
        .into_map();
        vars.remove(v::BACKUP_SIGNING_KEY);
        vars.insert(v::BACKUP_SIGNING_KEYS.into(), list.clone());
        all_vars.push(vars);
        dirs.push(dir);
    }
    let mut tasks: Vec<_> = all_vars.iter().map(|m| spawn_service(m, &clock)).collect();
    let mut o = EtcdOptions::new(vec![etcd.url()], "test");
    o.request_timeout = Duration::from_millis(800);
    let coord = Coordinator::connect(o, "hive/alice").await.expect("etcd client");
    etcd_record(&coord, |s| s.phase.name() == "armed").await;

    // The primary dies: the group moves to the first backup and guards it, the second as its target.
    sim.fail_primary();
    let guarding = etcd_record(&coord, |s| s.roles.is_some() && s.phase.name() == "armed").await;
    let roles = guarding.roles.clone().expect("roles");
    assert_eq!((roles.current, roles.backup), (text(&backups[0]), text(&backups[1])));
    assert_eq!(guarding.abandoned, vec![text(&primary)]);

    // The replica that holds the lock dies; another takes the lock and guards the same roles.
    let holder = coord.holder().await.expect("etcd answers").expect("a holder");
    let at = NAMES.iter().position(|n| *n == holder).expect("one of ours");
    tasks.remove(at).0.abort();
    for _ in 0..1200 {
        if matches!(coord.holder().await, Ok(Some(h)) if h != holder) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let successor = coord.holder().await.expect("etcd answers").expect("another holder");
    assert_ne!(successor, holder);

    // The first backup dies too: on to the second, never back to the primary.
    sim.fail_backup();
    let fired = etcd_record(&coord, |s| matches!(&s.phase, Phase::Fired { .. })).await;
    let Phase::Fired { target, next, .. } = &fired.phase else { unreachable!("matched above") };
    assert_eq!(target, &text(&backups[1]));
    assert_eq!(next, &None, "the last backup: nothing to move on to");
    for (task, stop) in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        stop.cancel();
    }
    let changes: Vec<PublicKey> = sim
        .events()
        .into_iter()
        .filter_map(|r| match r.event {
            SimEvent::SigningKeyChanged { witness, new, .. } if witness == "alice" => Some(new),
            _ => None,
        })
        .collect();
    assert_eq!(changes, vec![backups[0].public_key(), backups[1].public_key()], "down the list, never back");
    let fired_sms: Vec<String> =
        sms.messages().into_iter().map(|m| m.body).filter(|b| b.starts_with("FIRED")).collect();
    assert_eq!(fired_sms.len(), 2, "one FIRED SMS per swap: {fired_sms:?}");
    // The second swap was made by a live replica, not the dead one.
    assert!(
        fired_sms[1].contains("(replica ") && !fired_sms[1].ends_with(&format!("(replica {holder})")),
        "{fired_sms:?}"
    );
}
