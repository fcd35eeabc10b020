//! One endpoint of two lies, lags or forks, and the disk fills: the trap neither fires on it nor is stopped
//! by it, sends on chain only what the endpoints agree on, and calls a swap confirmed only when it is in a
//! block and a second endpoint agrees.

use std::path::Path;
use std::time::Duration;

use chain_clock::SharedClock;
use graphene_protocol::chain::ChainSpec;
use witness_trap::cli::ExitStatus;
use witness_trap::config::vars as v;
use witness_trap::trap::state::{Outcome, Phase};

use crate::support::*;

async fn two_nodes(keys: &Keys, clock: &SharedClock) -> (FakeNode, FakeNode) {
    let a =
        FakeNode::start(ChainSpec::hive(), "alice", keys.primary.public_key(), keys.active.public_key(), clock.clone())
            .await;
    let b =
        FakeNode::start(ChainSpec::hive(), "alice", keys.primary.public_key(), keys.active.public_key(), clock.clone())
            .await;
    (a, b)
}

fn raise_after_arming(nodes: &[&FakeNode], state_file: &Path, missed: u64) {
    let nodes: Vec<FakeNode> = nodes.iter().map(|n| (*n).clone()).collect();
    let state_file = state_file.to_path_buf();
    tokio::spawn(async move {
        for _ in 0..600 {
            if state_file.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for n in nodes {
            n.set(|s| s.total_missed = missed);
        }
    });
}

/// Case 7: an endpoint that shows the backup key without the swap in any block (its pending state, or a
/// lie) does not disarm the trap; the swap is not called confirmed, and the operator hears it failed.
#[tokio::test]
async fn an_endpoint_showing_the_key_without_a_block_does_not_confirm_the_swap() {
    let keys = Keys::new();
    let clock = fast_clock();
    let (a, b) = two_nodes(&keys, &clock).await;
    // a accepts every broadcast and never applies it; b shows the backup key once the trap is firing.
    a.set(|s| s.swallow = usize::MAX);
    b.set(|s| s.swallow = usize::MAX);
    let sms = twilio_any().await;
    let (_d, state_file) = temp_state();
    let mut vars = vars(&keys, &[&a.url, &b.url], &state_file, &sms.uri());
    vars.insert(v::FIRE_TIMEOUT_SECS.into(), "120".into());
    vars.insert(v::TX_EXPIRATION_SECS.into(), "30".into());
    raise_after_arming(&[&a, &b], &state_file, 12);
    let liar = b.clone();
    let backup = keys.backup.public_key();
    tokio::spawn(async move {
        for _ in 0..600 {
            if liar.get(|s| s.broadcasts) > 0 {
                liar.set(|s| s.signing_key = backup);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let status = run_for(vars, clock, Duration::from_secs(60)).await;
    assert_eq!(status, ExitStatus::SwapFailed, "one endpoint's view is not a confirmation");
    let Phase::Fired { outcome: Outcome::Failed { .. }, .. } = load_state(&state_file).phase else {
        panic!("{:?}", load_state(&state_file))
    };
    assert!(sms_bodies(&sms).await.iter().any(|b| b.contains("FAILED")));
}

/// Case 7, the good path: in a block on one endpoint, the key shown by the other: confirmed with its txid.
#[tokio::test]
async fn a_swap_in_a_block_with_a_second_endpoint_agreeing_is_confirmed() {
    let keys = Keys::new();
    let clock = fast_clock();
    let (a, b) = two_nodes(&keys, &clock).await;
    let sms = twilio_any().await;
    let (_d, state_file) = temp_state();
    raise_after_arming(&[&a, &b], &state_file, 12);
    let status = run_for(vars(&keys, &[&a.url, &b.url], &state_file, &sms.uri()), clock, Duration::from_secs(60)).await;
    assert_eq!(status, ExitStatus::Ok);
    let Phase::Fired { outcome: Outcome::Swapped { txid: Some(txid) }, .. } = load_state(&state_file).phase else {
        panic!("not swapped with a txid")
    };
    assert_eq!(txid.len(), 40);
    assert!(sms_bodies(&sms).await.iter().any(|b| b.contains(&txid)));
}

/// Case 5: the endpoint ahead of the other is on its own fork. The first attempt may take its block for
/// TaPoS and be refused by the honest node; the next attempt takes the other endpoint's block and lands.
#[tokio::test]
async fn a_forked_endpoint_ahead_of_the_other_does_not_block_the_swap() {
    let keys = Keys::new();
    let clock = fast_clock();
    let (forked, honest) = two_nodes(&keys, &clock).await;
    forked.set(|s| {
        s.fork = true;
        s.ahead = 2;
    });
    let sms = twilio_any().await;
    let (_d, state_file) = temp_state();
    let mut vars = vars(&keys, &[&forked.url, &honest.url], &state_file, &sms.uri());
    vars.insert(v::TX_EXPIRATION_SECS.into(), "30".into());
    raise_after_arming(&[&forked, &honest], &state_file, 12);
    let status = run_for(vars, clock, Duration::from_secs(60)).await;
    assert_eq!(status, ExitStatus::Ok, "the swap landed on the honest chain");
    assert_eq!(honest.get(|s| s.signing_key), keys.backup.public_key());
    assert!(honest.get(|s| s.accepted.len()) >= 1);
}

/// Case 3: `witness_update` (active key) re-sends url and props; when the endpoints disagree on them it is
/// not sent at all, the operator is told, and the fire ends failed rather than rewriting the url.
#[tokio::test]
async fn witness_update_is_not_sent_when_the_endpoints_disagree_on_url_or_props() {
    let keys = Keys::new();
    let clock = fast_clock();
    let (a, b) = two_nodes(&keys, &clock).await;
    b.set(|s| s.url = "https://evil.example/".into());
    let sms = twilio_any().await;
    let (_d, state_file) = temp_state();
    let mut vars = vars(&keys, &[&a.url, &b.url], &state_file, &sms.uri());
    vars.remove(v::SIGNING_WIF);
    vars.insert(v::ACTIVE_WIF.into(), keys.active.to_wif().to_string());
    vars.insert(v::FIRE_TIMEOUT_SECS.into(), "90".into());
    vars.insert(v::TX_EXPIRATION_SECS.into(), "30".into());
    raise_after_arming(&[&a, &b], &state_file, 12);
    let status = run_for(vars, clock, Duration::from_secs(60)).await;
    assert_eq!(status, ExitStatus::SwapFailed);
    assert_eq!(a.get(|s| s.broadcasts) + b.get(|s| s.broadcasts), 0, "nothing sent with a disputed url");
    let bodies = sms_bodies(&sms).await;
    assert!(bodies.iter().any(|b| b.contains("disagree")), "the operator is told: {bodies:?}");
    assert!(bodies.iter().any(|b| b.contains("FAILED")), "{bodies:?}");
}

/// Case 2 with a liar: an endpoint claiming a crossing the other does not see never fires the trap; the
/// dispute is not silent: an alert, and `health` reports it while it lasts.
#[tokio::test]
async fn a_disputed_crossing_does_not_fire_and_is_reported() {
    let keys = Keys::new();
    let clock = fast_clock();
    let (liar, honest) = two_nodes(&keys, &clock).await;
    let sms = twilio_any().await;
    let (_d, state_file) = temp_state();
    let vars = vars(&keys, &[&liar.url, &honest.url], &state_file, &sms.uri());
    raise_after_arming(&[&liar], &state_file, 12);
    let named = |t: &str| {
        (t.contains("disagree") || t.contains("untrusted") || t.contains("UNTRUSTED")) && t.contains(&liar.url)
    };
    // Until both the poll facts and an alert have named the liar.
    let seen = || async {
        last_poll(&state_file).is_some_and(|p| p.problems.iter().any(|t| named(t)))
            && sms_bodies(&sms).await.iter().any(|b| named(b))
    };
    let status = run_until(vars, clock, "the liar named in the poll and an alert", seen).await;
    assert_eq!(status, ExitStatus::Ok, "stopped while armed");
    assert_eq!(liar.get(|s| s.broadcasts) + honest.get(|s| s.broadcasts), 0);
    assert_eq!(load_state(&state_file).phase, Phase::Armed);
    // Reported either as a dispute or, once the blocks refute the liar (it claims more misses than the
    // witness had slots), as an untrusted endpoint: named in the health facts and in an alert.
    let poll = last_poll(&state_file).expect("polled");
    assert!(poll.problems.iter().any(|p| named(p)), "{poll:?}");
    let bodies = sms_bodies(&sms).await;
    assert!(bodies.iter().any(|b| named(b)), "{bodies:?}");
    assert!(!bodies.iter().any(|b| b.starts_with("FIRED")), "{bodies:?}");
}

/// Case 10: an endpoint that starts answering for another chain is dropped, logged and alerted; the trap
/// keeps watching on the other one, and the poll facts name it (so `health` is unhealthy).
#[tokio::test]
async fn an_endpoint_that_changes_chain_is_dropped_and_alerted() {
    let keys = Keys::new();
    let clock = fast_clock();
    let (a, b) = two_nodes(&keys, &clock).await;
    let sms = twilio_any().await;
    let (_d, state_file) = temp_state();
    let vars = vars(&keys, &[&a.url, &b.url], &state_file, &sms.uri());
    let switch = b.clone();
    let sf = state_file.clone();
    tokio::spawn(async move {
        wait_for("arming", || sf.exists()).await;
        switch.set(|s| s.fault = Fault::WrongChain);
    });
    // The chain id is re-read every 10 reads of an endpoint: 3 s polls at 20x, a few seconds of wall time.
    let seen = || async {
        last_poll(&state_file).is_some_and(|p| p.healthy && p.problems.iter().any(|t| t.contains(&b.url)))
            && sms_bodies(&sms).await.iter().any(|t| t.contains("chain id") && t.contains("dropped"))
    };
    assert_eq!(run_until(vars, clock, "the endpoint dropped and alerted", seen).await, ExitStatus::Ok);
    let bodies = sms_bodies(&sms).await;
    assert!(bodies.iter().any(|t| t.contains("chain id") && t.contains("dropped")), "{bodies:?}");
    let poll = last_poll(&state_file).expect("polled");
    assert!(poll.healthy, "still watching on the other endpoint");
    assert!(poll.problems.iter().any(|p| p.contains(&b.url)), "{poll:?}");
}
