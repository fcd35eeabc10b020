//! Same-key nodes driven through their fake `producer_api` over real loopback HTTP: pause and resume move
//! production from one node to the other, two live nodes are a recorded double production (at once and in
//! the producer's slots), `--pause-on-startup` is honoured, and a down, hung or failing API changes nothing.

use std::time::Duration;

use antelope_protocol::chain::ChainId;
use antelope_protocol::keys::PrivateKey;
use antelope_sim::chain::Signer;
use antelope_sim::{ApiFault, ApiNode, SimConfig, SimEvent, SimNode};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

fn config(pause_on_startup: bool) -> SimConfig {
    let k: Vec<PrivateKey> = (0..4).map(|_| PrivateKey::generate()).collect();
    let mut cfg = SimConfig::new(
        ChainId::from_hex("73e4385a2708e6d7048834fbc1079f2fabb17b3c125b146af438971e90716c4d").unwrap(),
        "alice",
        k[0].public_key(),
        k[1].public_key(),
        k[2].public_key(),
        k[3].public_key(),
    );
    cfg.speedup = 40.0;
    cfg.producer_position = Some(1);
    cfg.producer_api = true;
    cfg.pause_on_startup = pause_on_startup;
    cfg
}

async fn call(node: &SimNode, which: ApiNode, action: &str) -> (u16, String) {
    let url = format!("{}/v1/producer/{action}", node.producer_api_url(which).expect("producer_api"));
    let r = reqwest::Client::new().post(url).timeout(Duration::from_secs(2)).send().await.expect("answer");
    (r.status().as_u16(), r.text().await.expect("body"))
}

/// The signer of the producer's next block after `seq`.
async fn next_signer(node: &SimNode, seq: u64) -> Signer {
    let rec = node
        .wait_for_event(seq, WAIT, |e| matches!(e, SimEvent::BlockProduced { producer, .. } if producer == "alice"))
        .await
        .expect("a block of alice");
    match rec.event {
        SimEvent::BlockProduced { signer, .. } => signer,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn without_the_mode_there_is_no_producer_api() {
    let mut cfg = config(true);
    cfg.producer_api = false;
    let node = SimNode::start(cfg).await.expect("starts");
    assert_eq!(node.producer_api_url(ApiNode::Primary), None);
    assert!(!node.paused(ApiNode::Backup), "no pause flags in play without the mode");
}

#[tokio::test]
async fn pause_then_resume_moves_production_without_double_production() {
    let node = SimNode::start(config(true)).await.expect("starts");
    assert_eq!(next_signer(&node, 0).await, Signer::Primary);
    assert_eq!(call(&node, ApiNode::Backup, "paused").await, (201, "true".into()));
    assert_eq!(call(&node, ApiNode::Primary, "paused").await, (201, "false".into()));

    assert_eq!(call(&node, ApiNode::Primary, "pause").await, (201, r#"{"result":"ok"}"#.into()));
    let seq = node.last_seq();
    node.wait_for_event(seq, WAIT, |e| matches!(e, SimEvent::SlotMissed { producer, .. } if producer == "alice"))
        .await
        .expect("both paused: the producer's slots are missed");
    assert_eq!(call(&node, ApiNode::Backup, "resume").await.0, 201);
    let seq = node.last_seq();
    assert_eq!(next_signer(&node, seq).await, Signer::Backup);
    assert_eq!(node.double_productions(), 0);
    assert!(node.paused(ApiNode::Primary) && !node.paused(ApiNode::Backup));
    assert_eq!(node.producer_api_calls(ApiNode::Primary).get("/v1/producer/pause"), Some(&1));
    // The node's own view.
    let info: Value = reqwest::get(format!("{}/v1/chain/get_info", node.producer_api_url(ApiNode::Backup).unwrap()))
        .await
        .expect("get_info")
        .json()
        .await
        .expect("json");
    assert!(info["head_block_num"].as_u64().is_some_and(|n| n >= node.head().num as u64 - 2), "{info}");
}

#[tokio::test]
async fn two_live_nodes_are_a_double_production_at_once_and_in_each_slot() {
    let node = SimNode::start(config(true)).await.expect("starts");
    let seq = node.last_seq();
    assert_eq!(call(&node, ApiNode::Backup, "resume").await.0, 201);
    node.wait_for_event(seq, Duration::from_secs(1), |e| matches!(e, SimEvent::DoubleProduction { .. }))
        .await
        .expect("recorded the moment it began");
    let at_once = node.double_productions();
    assert!(at_once >= 1);
    // And again in the producer's next slot.
    let seq = node.last_seq();
    next_signer(&node, seq).await;
    assert!(node.double_productions() > at_once, "{}", node.double_productions());
}

#[tokio::test]
async fn a_restarted_node_comes_back_paused_only_with_pause_on_startup() {
    for (pause_on_startup, doubles) in [(true, false), (false, true)] {
        let node = SimNode::start(config(pause_on_startup)).await.expect("starts");
        node.fail_primary();
        node.set_paused(ApiNode::Backup, false);
        assert_eq!(node.double_productions(), 0, "the primary is down");
        node.restore_primary();
        assert_eq!(node.paused(ApiNode::Primary), pause_on_startup);
        assert_eq!(node.double_productions() > 0, doubles, "pause_on_startup {pause_on_startup}");
    }
}

#[tokio::test]
async fn a_down_hung_or_failing_api_changes_nothing() {
    let node = SimNode::start(config(true)).await.expect("starts");
    node.fail_backup();
    assert_eq!(call(&node, ApiNode::Backup, "resume").await.0, 502);
    assert!(node.paused(ApiNode::Backup), "a down node's API resumes nothing");
    node.restore_backup();

    node.set_api_fault(ApiNode::Primary, ApiFault::Http500);
    assert_eq!(call(&node, ApiNode::Primary, "pause").await.0, 500);
    assert!(!node.paused(ApiNode::Primary));

    node.set_api_fault(ApiNode::Primary, ApiFault::Hang);
    let url = format!("{}/v1/producer/pause", node.producer_api_url(ApiNode::Primary).unwrap());
    let hung = reqwest::Client::new().post(url).timeout(Duration::from_millis(500)).send().await;
    assert!(hung.is_err(), "a hung API never answers");
    assert!(!node.paused(ApiNode::Primary), "and pauses nothing");
    node.set_api_fault(ApiNode::Primary, ApiFault::None);
    assert_eq!(call(&node, ApiNode::Primary, "pause").await.0, 201);
    assert!(node.paused(ApiNode::Primary));
    assert_eq!(node.double_productions(), 0);
}
