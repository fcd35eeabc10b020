//! The safety checker: two running holders of the staked identity are a TwoStaked violation; a promotion right
//! after the last vote without the tower is an UnsafeTower violation, and none when the tower was copied or
//! 200 slots have passed. Also a stalled validator and the bench's `first_vote_after`.

mod common;

use common::{cluster, set_identity, wait_until};
use solana_sim::{Keypair, ViolationKind};

#[tokio::test]
async fn two_staked_holders_are_recorded() {
    let c = cluster(40.0).await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let _a = c.add_validator("a", da.path(), Keypair::generate(), true).await.unwrap();
    let b = c.add_validator("b", db.path(), Keypair::generate(), false).await.unwrap();
    wait_until("a vote", || c.last_vote().is_some()).await;
    assert!(c.violations().is_empty());

    let staked_file = db.path().join("staked.json");
    c.staked().write_file(&staked_file).unwrap();
    let r = set_identity(&b.admin_socket(), &staked_file, false).await;
    assert_eq!(r["result"], serde_json::Value::Null, "{r}");
    assert_eq!(c.holders(), ["a", "b"]);
    let now = c.slot();
    wait_until("several slots with two holders", || c.slot() > now + 5).await;
    let v = c.violations();
    let two: Vec<_> = v.iter().filter(|v| v.kind == ViolationKind::TwoStaked).collect();
    assert_eq!(two.len(), 1, "one record per episode: {v:?}");
    assert!(two[0].slot <= now && two[0].detail.contains('a') && two[0].detail.contains('b'));

    // Crashing one ends the episode; a second episode is recorded again.
    b.crash();
    assert_eq!(c.holders(), ["a"]);
    b.restart().await.unwrap();
    assert_eq!(c.holders(), ["a"], "b restarts junk");
    set_identity(&b.admin_socket(), &staked_file, false).await;
    assert_eq!(c.violations().iter().filter(|v| v.kind == ViolationKind::TwoStaked).count(), 2);
}

#[tokio::test]
async fn promotion_without_tower_right_after_the_last_vote_is_unsafe() {
    // Slow enough that the promotion lands well inside 200 slots (20 s of wall time) even on a loaded machine.
    let c = cluster(4.0).await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = c.add_validator("a", da.path(), Keypair::generate(), true).await.unwrap();
    let b = c.add_validator("b", db.path(), Keypair::generate(), false).await.unwrap();
    wait_until("a vote", || c.last_vote().is_some()).await;
    a.crash();
    let last = c.last_vote().unwrap();
    let staked_file = db.path().join("staked.json");
    c.staked().write_file(&staked_file).unwrap();
    let r = set_identity(&b.admin_socket(), &staked_file, false).await;
    assert_eq!(r["result"], serde_json::Value::Null, "{r}");
    wait_until("b votes", || c.first_vote_after("b", last).is_some()).await;
    let v = c.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].kind, ViolationKind::UnsafeTower);
    assert!(v[0].slot < last + 200 && v[0].detail.starts_with("b:"), "{v:?}");
}

#[tokio::test]
async fn promotion_with_the_copied_tower_is_safe() {
    let c = cluster(4.0).await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = c.add_validator("a", da.path(), Keypair::generate(), true).await.unwrap();
    let b = c.add_validator("b", db.path(), Keypair::generate(), false).await.unwrap();
    wait_until("a few votes", || c.last_vote().is_some_and(|v| v > 330_000_003)).await;

    // The operators' move: demote a, copy its tower, promote b with --require-tower.
    let junk_file = da.path().join("junk.json");
    Keypair::generate().write_file(&junk_file).unwrap();
    assert_eq!(set_identity(&a.admin_socket(), &junk_file, false).await["result"], serde_json::Value::Null);
    assert!(!a.is_voting());
    let last = c.last_vote().unwrap();
    let name = solana_sim::tower::file_name(&c.staked().pubkey());
    std::fs::copy(da.path().join(&name), db.path().join(&name)).unwrap();
    let staked_file = db.path().join("staked.json");
    c.staked().write_file(&staked_file).unwrap();
    let r = set_identity(&b.admin_socket(), &staked_file, true).await;
    assert_eq!(r["result"], serde_json::Value::Null, "{r}");

    wait_until("b votes", || c.first_vote_after("b", last).is_some()).await;
    let first = c.first_vote_after("b", last).unwrap();
    assert!(first > last);
    assert_eq!(c.first_vote_after("a", last), None, "a stopped voting");
    assert!(c.violations().is_empty(), "{:?}", c.violations());
    assert_eq!(c.holders(), ["b"]);
}

#[tokio::test]
async fn promotion_without_tower_after_200_slots_is_safe() {
    let c = cluster(40.0).await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = c.add_validator("a", da.path(), Keypair::generate(), true).await.unwrap();
    let b = c.add_validator("b", db.path(), Keypair::generate(), false).await.unwrap();
    wait_until("a vote", || c.last_vote().is_some()).await;
    a.crash();
    let last = c.last_vote().unwrap();
    wait_until("200 slots past the last vote", || c.slot() >= last + 200).await;
    let staked_file = db.path().join("staked.json");
    c.staked().write_file(&staked_file).unwrap();
    set_identity(&b.admin_socket(), &staked_file, false).await;
    wait_until("b votes", || c.first_vote_after("b", last).is_some()).await;
    assert!(c.violations().is_empty(), "{:?}", c.violations());
}

#[tokio::test]
async fn a_stalled_validator_holds_the_identity_without_voting() {
    let c = cluster(40.0).await;
    let da = tempfile::tempdir().unwrap();
    let a = c.add_validator("a", da.path(), Keypair::generate(), true).await.unwrap();
    wait_until("a vote", || c.last_vote().is_some()).await;
    a.stall(true);
    let last = c.last_vote().unwrap();
    let now = c.slot();
    wait_until("some slots", || c.slot() > now + 10).await;
    assert_eq!(c.last_vote(), Some(last));
    assert_eq!(a.identity(), Some(c.staked().pubkey()));
    assert!(!a.is_voting());
    assert_eq!(c.holders(), ["a"]);
    a.stall(false);
    wait_until("votes again", || c.last_vote().is_some_and(|v| v > last)).await;
    let tower = solana_sim::tower::read(da.path(), &c.staked().pubkey()).unwrap();
    assert!(tower.last_vote.is_some_and(|v| v > last));
    assert!(c.violations().is_empty());
}
