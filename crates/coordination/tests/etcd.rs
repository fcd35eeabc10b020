//! The coordination primitives against a real etcd (Debian's `etcd-server`, started per test on free
//! loopback ports): one lock holder among replicas; the lock passes on when the holder's lease ends; the
//! fence refuses a commit from a replica that lost its lease (stopped past its TTL), from one that never held
//! the lock, and on a stale revision; `replace` (rearm) compares revisions; etcd down makes every replica
//! stop trusting its lease within the TTL, and nothing can be committed.

use std::time::Duration;

use coordination::testing::EtcdServer;
use coordination::{CoordError, Coordinator, EtcdOptions, Session};

const SCOPE: &str = "hive/alice";

fn options(etcd: &EtcdServer, replica: &str, ttl_secs: u64) -> EtcdOptions {
    let mut o = EtcdOptions::new(vec![etcd.url()], replica);
    o.lease_ttl = Duration::from_secs(ttl_secs);
    o.request_timeout = Duration::from_millis(800);
    o
}

async fn session(etcd: &EtcdServer, replica: &str, ttl_secs: u64) -> Session {
    Session::open(options(etcd, replica, ttl_secs), SCOPE).await.unwrap_or_else(|e| panic!("{replica}: {e}"))
}

/// Poll `try_acquire` until this replica holds the lock, within `limit`.
async fn acquire_within(s: &Session, limit: Duration) -> Duration {
    let t = tokio::time::Instant::now();
    while t.elapsed() < limit {
        if let Ok(None) = s.try_acquire().await {
            return t.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} did not get the lock within {limit:?}", s.coordinator().replica());
}

#[tokio::test]
async fn exactly_one_of_three_replicas_holds_the_lock_and_only_it_can_commit() {
    let etcd = EtcdServer::start().expect("etcd");
    let replicas = [session(&etcd, "r1", 5).await, session(&etcd, "r2", 5).await, session(&etcd, "r3", 5).await];
    let answers = futures_like_join(&replicas).await;
    let holders: Vec<&str> =
        answers.iter().zip(&replicas).filter(|(a, _)| a.is_none()).map(|(_, s)| s.coordinator().replica()).collect();
    assert_eq!(holders.len(), 1, "{answers:?}");
    let holder = holders[0].to_string();
    for a in answers.iter().flatten() {
        assert_eq!(a, &holder, "the others name the holder");
    }
    let coord = Coordinator::connect(options(&etcd, "status", 5), SCOPE).await.expect("client");
    assert_eq!(coord.holder().await.expect("holder").as_deref(), Some(holder.as_str()));
    for s in &replicas {
        let mine = s.coordinator().replica() == holder;
        assert_eq!(s.holds_lock().await.expect("ask"), mine);
        let r = s.commit(0, &format!("firing by {}", s.coordinator().replica())).await;
        if mine {
            assert!(r.is_ok(), "{r:?}");
        } else {
            assert!(matches!(&r, Err(CoordError::Fenced { holder: h }) if *h == holder), "{r:?}");
        }
    }
    let record = coord.read().await.expect("read").expect("a record");
    assert_eq!(record.value, format!("firing by {holder}"));
}

async fn futures_like_join(replicas: &[Session; 3]) -> Vec<Option<String>> {
    let (a, b, c) = tokio::join!(replicas[0].try_acquire(), replicas[1].try_acquire(), replicas[2].try_acquire());
    [a, b, c].into_iter().map(|r| r.expect("etcd answers")).collect()
}

#[tokio::test]
async fn a_closed_holder_hands_the_lock_on_at_once_a_dead_one_at_its_ttl() {
    let etcd = EtcdServer::start().expect("etcd");
    let a = session(&etcd, "a", 3).await;
    let b = session(&etcd, "b", 3).await;
    assert_eq!(a.try_acquire().await.expect("etcd"), None);
    assert_eq!(b.try_acquire().await.expect("etcd").as_deref(), Some("a"));
    a.close().await;
    let waited = acquire_within(&b, Duration::from_secs(2)).await;
    assert!(waited < Duration::from_secs(2));
    // b stops renewing (a crash): c gets the lock only once b's lease has run out.
    b.stop_renewing();
    let c = session(&etcd, "c", 3).await;
    assert_eq!(c.try_acquire().await.expect("etcd").as_deref(), Some("b"));
    acquire_within(&c, Duration::from_secs(8)).await;
}

#[tokio::test]
async fn a_replica_stopped_past_its_ttl_is_fenced_when_it_wakes() {
    let etcd = EtcdServer::start().expect("etcd");
    let stopped = session(&etcd, "stopped", 3).await;
    assert_eq!(stopped.try_acquire().await.expect("etcd"), None);
    let r0 = stopped.commit(0, "armed").await.expect("holder commits");
    // SIGSTOP: no renewal. Its own clock tells it to stop trusting the lease before the TTL ends.
    stopped.stop_renewing();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert!(!stopped.is_live(), "two thirds of the TTL without a renewal: not live");
    assert!(matches!(stopped.commit(r0, "firing by stopped").await, Err(CoordError::NotLive)));
    // Another replica takes over once etcd has expired the lease, and fires.
    let other = session(&etcd, "other", 3).await;
    acquire_within(&other, Duration::from_secs(8)).await;
    let r1 = other.commit(r0, "firing by other").await.expect("the new holder commits");
    assert!(r1 > r0);
    // Even a stopped replica that believed itself live would be refused by etcd: its lease is gone, and
    // the lock key carries the other's.
    let coord = Coordinator::connect(options(&etcd, "status", 3), SCOPE).await.expect("client");
    let record = coord.read().await.expect("read").expect("record");
    assert_eq!((record.value.as_str(), record.revision), ("firing by other", r1));
    assert_eq!(coord.holder().await.expect("holder").as_deref(), Some("other"));
}

#[tokio::test]
async fn commits_and_rearm_compare_revisions() {
    let etcd = EtcdServer::start().expect("etcd");
    let s = session(&etcd, "r1", 5).await;
    assert_eq!(s.try_acquire().await.expect("etcd"), None);
    let r1 = s.commit(0, "armed").await.expect("first");
    // A second "first" commit (another incarnation that read nothing) is a conflict, not an overwrite.
    assert!(
        matches!(s.commit(0, "armed again").await, Err(CoordError::Conflict { expected: 0, found }) if found == r1)
    );
    let r2 = s.commit(r1, "fired").await.expect("second");
    let coord = Coordinator::connect(options(&etcd, "rearm", 5), SCOPE).await.expect("client");
    assert!(matches!(coord.replace(r1, "armed").await, Err(CoordError::Conflict { .. })), "stale rearm refused");
    let r3 = coord.replace(r2, "armed").await.expect("rearm on the current revision");
    assert_eq!(coord.read().await.expect("read").expect("record").revision, r3);
}

#[tokio::test]
async fn replicas_report_under_their_lease() {
    let etcd = EtcdServer::start().expect("etcd");
    let a = session(&etcd, "a", 3).await;
    let b = session(&etcd, "b", 3).await;
    a.report(r#"{"last_poll":1}"#).await.expect("report");
    b.report(r#"{"last_poll":2}"#).await.expect("report");
    let coord = Coordinator::connect(options(&etcd, "status", 3), SCOPE).await.expect("client");
    let names: Vec<String> = coord.replicas().await.expect("list").into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["a", "b"]);
    b.close().await;
    let left = coord.replicas().await.expect("list");
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].name.as_str(), left[0].report.as_str()), ("a", r#"{"last_poll":1}"#));
}

#[tokio::test]
async fn with_etcd_down_no_replica_stays_live_or_commits_and_it_recovers_after() {
    let mut etcd = EtcdServer::start().expect("etcd");
    let s = session(&etcd, "r1", 3).await;
    assert_eq!(s.try_acquire().await.expect("etcd"), None);
    let r1 = s.commit(0, "armed").await.expect("commit");
    etcd.stop();
    let r = s.commit(r1, "firing").await;
    assert!(matches!(r, Err(CoordError::Unavailable(_)) | Err(CoordError::NotLive)), "{r:?}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!s.is_live(), "no renewal answered: not live before the TTL ends");
    assert!(matches!(s.commit(r1, "firing").await, Err(CoordError::NotLive)));
    etcd.resume().expect("etcd again");
    // etcd restores its leases with a full TTL: the replica's renewals get through again and it is live
    // (or, had the lease expired, it opens a new session and campaigns again).
    let t = tokio::time::Instant::now();
    while !s.is_live() && !s.is_expired() && t.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let holder = if s.is_live() { s } else { session(&etcd, "r1", 3).await };
    acquire_within(&holder, Duration::from_secs(8)).await;
    let record = holder.coordinator().read().await.expect("read").expect("record survives");
    assert_eq!(record.value, "armed");
    holder.commit(record.revision, "firing").await.expect("commit after etcd is back");
}
