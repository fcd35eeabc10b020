//! The cluster JSON-RPC over real loopback HTTP: Agave's shapes for every method, the JSON-RPC envelope rules
//! (batches, parse and method errors, the body limit), each endpoint [`Behaviour`], delinquency after 128 slots
//! without votes, and skipped leader slots in `getBlockProduction`.

mod common;

use common::{cluster, post_raw, result, rpc, vote_entry, wait_until, wait_until_async};
use serde_json::{json, Value};
use solana_sim::{Behaviour, Keypair};

#[tokio::test]
async fn method_shapes_follow_agave() {
    let c = cluster(40.0).await;
    let dir = tempfile::tempdir().unwrap();
    let v = c.add_validator("a", dir.path(), Keypair::generate(), true).await.unwrap();
    let ep = c.endpoint().await.unwrap();
    let url = ep.url();
    assert!(url.starts_with("http://127.0.0.1:"));
    wait_until("a first vote", || c.last_vote().is_some()).await;

    assert_eq!(result(&url, "getGenesisHash", json!([])).await, json!(c.genesis_hash()));
    assert_eq!(result(&url, "getHealth", Value::Null).await, json!("ok"));

    let processed = result(&url, "getSlot", json!([{"commitment": "processed"}])).await.as_u64().unwrap();
    let finalized = result(&url, "getSlot", json!([{"commitment": "finalized"}])).await.as_u64().unwrap();
    let default = result(&url, "getSlot", json!([])).await.as_u64().unwrap();
    assert!(processed >= 330_000_000 && finalized >= 330_000_000);
    assert!(finalized <= processed && default <= c.slot());
    let now = c.slot();
    assert!(processed <= now);
    // A slot well past the start: finalized is 32 behind processed within a slot or two.
    wait_until("slot 100", || c.slot() > 330_000_100).await;
    let p = result(&url, "getSlot", json!([{"commitment": "processed"}])).await.as_u64().unwrap();
    let f = result(&url, "getSlot", json!([{"commitment": "finalized"}])).await.as_u64().unwrap();
    let conf = result(&url, "getSlot", json!([{"commitment": "confirmed"}])).await.as_u64().unwrap();
    assert!(f + 32 >= p && f + 32 <= c.slot(), "finalized {f} processed {p}");
    assert!(conf < c.slot());

    let (entry, delinquent) = vote_entry(&url).await.expect("the vote account");
    assert!(!delinquent, "{entry}");
    assert_eq!(entry["votePubkey"], json!(c.vote_account()));
    assert_eq!(entry["nodePubkey"], json!(c.staked().pubkey()));
    assert_eq!(entry["activatedStake"], json!(42_000_000_000_000u64));
    assert_eq!(entry["epochVoteAccount"], json!(true));
    assert!(entry["commission"].is_u64());
    let last_vote = entry["lastVote"].as_u64().unwrap();
    assert_eq!(entry["rootSlot"].as_u64().unwrap(), last_vote - 31);
    let credits = entry["epochCredits"].as_array().unwrap();
    let latest = credits.last().unwrap().as_array().unwrap();
    assert_eq!(latest.len(), 3);
    assert_eq!(latest[0].as_u64().unwrap(), last_vote / 8192);
    assert!(latest[1].as_u64().unwrap() > latest[2].as_u64().unwrap());

    // The filter: the vote account itself, another valid address, an invalid one.
    let mine = result(
        &url,
        "getVoteAccounts",
        json!([{"votePubkey": c.vote_account(), "commitment": "confirmed",
        "keepUnstakedDelinquents": false, "delinquentSlotDistance": 128}]),
    )
    .await;
    assert_eq!(mine["current"].as_array().unwrap().len(), 1);
    let other = result(&url, "getVoteAccounts", json!([{"votePubkey": Keypair::generate().pubkey()}])).await;
    assert_eq!(other, json!({"current": [], "delinquent": []}));
    let bad = rpc(&url, "getVoteAccounts", json!([{"votePubkey": "not-a-key"}])).await;
    assert_eq!(bad["error"]["code"], -32602);

    let bal = result(&url, "getBalance", json!([c.staked().pubkey(), {"commitment": "confirmed"}])).await;
    assert_eq!(bal["value"], json!(5_000_000_000u64));
    assert!(bal["context"]["slot"].as_u64().unwrap() >= 330_000_000);
    assert_eq!(bal["context"]["apiVersion"], "2.2.0");
    c.set_identity_balance(890_880);
    let bal = result(&url, "getBalance", json!([c.staked().pubkey()])).await;
    assert_eq!(bal["value"], json!(890_880));
    assert_eq!(v.identity(), Some(c.staked().pubkey()));
    let none = result(&url, "getBalance", json!([Keypair::generate().pubkey()])).await;
    assert_eq!(none["value"], json!(0));
    assert_eq!(rpc(&url, "getBalance", json!([])).await["error"]["code"], -32602);

    let info = result(&url, "getEpochInfo", json!([{"commitment": "processed"}])).await;
    let abs = info["absoluteSlot"].as_u64().unwrap();
    assert_eq!(info["epoch"].as_u64().unwrap(), abs / 8192);
    assert_eq!(info["slotIndex"].as_u64().unwrap(), abs % 8192);
    assert_eq!(info["slotsInEpoch"], json!(8192));
    assert!(info["blockHeight"].as_u64().unwrap() < abs);
    assert!(info["transactionCount"].is_u64());
}

#[tokio::test]
async fn envelope_batches_errors_and_counting() {
    let c = cluster(40.0).await;
    let ep = c.endpoint().await.unwrap();
    let url = ep.url();

    let unknown = rpc(&url, "getFoo", json!([])).await;
    assert_eq!(unknown["error"], json!({"code": -32601, "message": "Method not found"}));
    let bad_params = rpc(&url, "getSlot", json!([{"commitment": "soon"}])).await;
    assert_eq!(bad_params["error"]["code"], -32602);
    let bad_params = rpc(&url, "getSlot", json!({"commitment": "processed"})).await;
    assert_eq!(bad_params["error"]["code"], -32602);

    let (status, text) = post_raw(&url, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":").await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"], json!({"code": -32700, "message": "Parse error"}));
    assert_eq!(v["id"], Value::Null);

    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "getGenesisHash"},
        {"jsonrpc": "2.0", "id": "two", "method": "getSlot", "params": [{"commitment": "processed"}]},
        {"jsonrpc": "2.0", "id": 3, "method": "nope"},
    ]);
    let (status, text) = post_raw(&url, batch.to_string()).await;
    assert_eq!(status, 200);
    let answers: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(answers.len(), 3);
    assert_eq!(answers[0]["result"], json!(c.genesis_hash()));
    assert_eq!(answers[1]["id"], "two");
    assert!(answers[1]["result"].is_u64());
    assert_eq!(answers[2]["error"]["code"], -32601);

    assert_eq!(ep.calls(), 7, "three single calls, one unparsable body, a batch of three");
    let (status, _) = post_raw(&url, vec![b' '; 70 * 1024]).await;
    assert_eq!(status, 413, "bodies over 64 KiB are refused");
}

#[tokio::test]
async fn each_behaviour() {
    let c = cluster(40.0).await;
    let dir = tempfile::tempdir().unwrap();
    c.add_validator("a", dir.path(), Keypair::generate(), true).await.unwrap();
    let ep = c.endpoint().await.unwrap();
    let url = ep.url();
    wait_until("slot 60", || c.slot() > 330_000_060).await;

    ep.set(Behaviour::Behind(42));
    assert_eq!(ep.behaviour(), Behaviour::Behind(42));
    let h = rpc(&url, "getHealth", json!([])).await;
    assert_eq!(
        h["error"],
        json!({"code": -32005, "message": "Node is behind by 42 slots", "data": {"numSlotsBehind": 42}})
    );
    let slot = result(&url, "getSlot", json!([{"commitment": "processed"}])).await.as_u64().unwrap();
    let now = c.slot();
    assert!(slot + 42 <= now, "behind: {slot} vs {now}");
    let (entry, _) = vote_entry(&url).await.unwrap();
    assert!(entry["lastVote"].as_u64().unwrap() + 42 <= c.slot());
    assert!(
        entry["lastVote"].as_u64().unwrap()
            <= result(&url, "getSlot", json!([{"commitment": "processed"}])).await.as_u64().unwrap()
    );

    ep.set(Behaviour::Unhealthy);
    let h = rpc(&url, "getHealth", json!([])).await;
    assert_eq!(h["error"], json!({"code": -32005, "message": "Node is unhealthy", "data": {}}));
    assert!(result(&url, "getSlot", json!([])).await.is_u64());

    let other = Keypair::generate().pubkey();
    ep.set(Behaviour::WrongGenesis(other.clone()));
    assert_eq!(result(&url, "getGenesisHash", json!([])).await, json!(other));
    assert_eq!(result(&url, "getHealth", json!([])).await, json!("ok"));

    ep.set(Behaviour::Down);
    let calls = ep.calls();
    let (status, body) = post_raw(&url, json!({"jsonrpc": "2.0", "id": 1, "method": "getSlot"}).to_string()).await;
    assert_eq!((status, body.as_str()), (503, ""));
    assert_eq!(ep.calls(), calls, "a dead node answers no JSON-RPC");

    ep.set(Behaviour::Error(-32000, "something broke".into()));
    let e = rpc(&url, "getSlot", json!([])).await;
    assert_eq!(e["error"], json!({"code": -32000, "message": "something broke"}));

    ep.set(Behaviour::FrozenVotes);
    let (frozen, _) = vote_entry(&url).await.unwrap();
    let frozen = frozen["lastVote"].as_u64().unwrap();
    let start = c.slot();
    wait_until("10 more slots", || c.slot() > start + 10).await;
    let (entry, _) = vote_entry(&url).await.unwrap();
    assert_eq!(entry["lastVote"].as_u64().unwrap(), frozen);
    assert!(c.last_vote().unwrap() > frozen + 5, "the real vote moves on");
    assert!(result(&url, "getSlot", json!([{"commitment": "processed"}])).await.as_u64().unwrap() > frozen + 5);
    assert_eq!(result(&url, "getHealth", json!([])).await, json!("ok"));

    ep.set(Behaviour::Honest);
    let (entry, delinquent) = vote_entry(&url).await.unwrap();
    assert!(!delinquent && entry["lastVote"].as_u64().unwrap() > frozen);
}

#[tokio::test]
async fn crashed_staked_validator_turns_delinquent_after_128_slots() {
    let c = cluster(40.0).await;
    let dir = tempfile::tempdir().unwrap();
    let v = c.add_validator("a", dir.path(), Keypair::generate(), true).await.unwrap();
    let ep = c.endpoint().await.unwrap();
    let url = ep.url();
    wait_until("a vote", || c.last_vote().is_some()).await;
    v.crash();
    let last = c.last_vote().unwrap();
    assert!(v.identity().is_none() && !v.is_voting());

    wait_until_async("delinquent", || async { vote_entry(&url).await.is_some_and(|(_, d)| d) }).await;
    let (entry, _) = vote_entry(&url).await.unwrap();
    assert_eq!(entry["lastVote"].as_u64().unwrap(), last, "no votes after the crash");
    let slot = result(&url, "getSlot", json!([{"commitment": "processed"}])).await.as_u64().unwrap();
    assert!(slot >= last + 128, "delinquent only from 128 slots: slot {slot}, last vote {last}");

    // A larger distance still calls it current while the slot is short of it.
    let wide =
        result(&url, "getVoteAccounts", json!([{"commitment": "processed", "delinquentSlotDistance": 1_000_000}]))
            .await;
    assert_eq!(wide["current"].as_array().unwrap().len(), 1);

    // Unstaked delinquents are dropped unless asked for.
    c.set_stake(0);
    let dropped = result(&url, "getVoteAccounts", json!([{"commitment": "processed"}])).await;
    assert_eq!(dropped, json!({"current": [], "delinquent": []}));
    let kept =
        result(&url, "getVoteAccounts", json!([{"commitment": "processed", "keepUnstakedDelinquents": true}])).await;
    assert_eq!(kept["delinquent"][0]["activatedStake"], json!(0));
    assert_eq!(kept["delinquent"][0]["epochVoteAccount"], json!(false));
}

#[tokio::test]
async fn block_production_counts_skipped_leader_slots() {
    let c = cluster(40.0).await;
    let dir = tempfile::tempdir().unwrap();
    let v = c.add_validator("a", dir.path(), Keypair::generate(), false).await.unwrap();
    let ep = c.endpoint().await.unwrap();
    let url = ep.url();
    let staked = c.staked().pubkey();
    let start = c.slot() + 1;
    wait_until("80 slots without a voter", || c.slot() > start + 80).await;
    let r = result(
        &url,
        "getBlockProduction",
        json!([{"identity": staked, "range": {"firstSlot": start, "lastSlot": start + 79}, "commitment": "confirmed"}]),
    )
    .await;
    assert!(r["context"]["slot"].as_u64().unwrap() >= start + 79);
    assert_eq!(r["value"]["range"], json!({"firstSlot": start, "lastSlot": start + 79}));
    let counts = r["value"]["byIdentity"][&staked].as_array().expect("the staked identity leads in 80 slots").clone();
    assert_eq!(counts, vec![json!(8), json!(0)], "4 leader slots in every 40, all skipped");

    // Another identity leads nothing: absent.
    let other = result(&url, "getBlockProduction", json!([{"identity": v.identity().unwrap()}])).await;
    assert_eq!(other["value"]["byIdentity"], json!({}));
    // The default range is the epoch so far.
    let epoch = result(&url, "getBlockProduction", json!([])).await;
    let slot = epoch["context"]["slot"].as_u64().unwrap();
    assert_eq!(epoch["value"]["range"], json!({"firstSlot": slot - slot % 8192, "lastSlot": slot}));
    let bad = rpc(&url, "getBlockProduction", json!([{"range": {"firstSlot": 10, "lastSlot": 5}}])).await;
    assert_eq!(bad["error"]["code"], -32602);

    // With a voter every leader slot is produced.
    let dir2 = tempfile::tempdir().unwrap();
    c.add_validator("b", dir2.path(), Keypair::generate(), true).await.unwrap();
    let from = c.slot() + 2;
    wait_until("80 voting slots", || c.slot() > from + 80).await;
    let r = result(
        &url,
        "getBlockProduction",
        json!([{"identity": staked, "range": {"firstSlot": from, "lastSlot": from + 79}, "commitment": "processed"}]),
    )
    .await;
    assert_eq!(r["value"]["byIdentity"][&staked], json!([8, 8]));
}
