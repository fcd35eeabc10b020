//! The fake admin socket over a real Unix socket: jsonrpc-ipc-server's framing (no delimiter needed, requests
//! split across writes, several per connection, one answer line each), `setIdentity` with and without
//! `--require-tower`, `setIdentityFromBytes`, `contactInfo`, the faults, and crash and restart.

mod common;

use std::time::Duration;

use common::{cluster, set_identity, wait_until, Admin};
use serde_json::json;
use solana_sim::{AdminFault, Keypair};

#[tokio::test]
async fn framing_without_newline_split_and_pipelined() {
    let c = cluster(40.0).await;
    let dir = tempfile::tempdir().unwrap();
    let junk = Keypair::generate();
    let junk_id = junk.pubkey();
    let v = c.add_validator("a", dir.path(), junk, false).await.unwrap();
    assert_eq!(v.admin_socket(), dir.path().join("admin.rpc"));
    assert_eq!(v.ledger(), dir.path());
    assert_eq!(v.identity(), Some(junk_id.clone()));

    let mut a = Admin::connect(&v.admin_socket()).await.unwrap();
    // No trailing newline at all.
    a.send_raw(br#"{"jsonrpc":"2.0","id":1,"method":"contactInfo","params":[]}"#).await;
    let info = a.read().await.unwrap();
    assert_eq!(info["id"], 1);
    assert_eq!(info["result"]["id"], json!(junk_id));
    assert_eq!(info["result"]["gossip"], "127.0.0.1:8001");
    assert_eq!(info["result"]["tvu"], "127.0.0.1:8002");
    assert_eq!(info["result"]["tpu"], "127.0.0.1:8003");
    assert_eq!(info["result"]["rpc"], "127.0.0.1:8899");
    assert_eq!(info["result"]["shredVersion"], 1);

    // A second request on the same connection, split across two writes.
    let other = Keypair::generate();
    let file = dir.path().join("other.json");
    other.write_file(&file).unwrap();
    let req = json!({"jsonrpc": "2.0", "id": 2, "method": "setIdentity", "params": [file.to_str().unwrap(), false]})
        .to_string();
    let (head, tail) = req.as_bytes().split_at(req.len() / 2);
    a.send_raw(head).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    a.send_raw(tail).await;
    assert_eq!(a.read().await.unwrap(), json!({"jsonrpc": "2.0", "result": null, "id": 2}));
    assert_eq!(v.identity(), Some(other.pubkey()));

    // Two requests in one write, back to back without a separator.
    let two = format!(
        "{}{}\n",
        json!({"jsonrpc": "2.0", "id": 3, "method": "contactInfo", "params": []}),
        json!({"jsonrpc": "2.0", "id": 4, "method": "exitNow", "params": []})
    );
    a.send_raw(two.as_bytes()).await;
    let third = a.read().await.unwrap();
    assert_eq!((third["id"].clone(), third["result"]["id"].clone()), (json!(3), json!(other.pubkey())));
    let fourth = a.read().await.unwrap();
    assert_eq!(fourth["error"]["code"], -32601);

    // Setting the identity it has is a no-op success.
    assert_eq!(a.call(5, "setIdentity", json!([file.to_str().unwrap(), true])).await["result"], json!(null));

    // Garbage: a parse error, then the server hangs up.
    a.send_raw(b"}{not json\n").await;
    assert_eq!(a.read().await.unwrap()["error"]["code"], -32700);
    assert!(a.read().await.is_none());

    assert_eq!(v.admin_calls(), ["contactInfo", "setIdentity", "contactInfo", "exitNow", "setIdentity"]);
}

#[tokio::test]
async fn require_tower_bad_keypairs_and_from_bytes() {
    let c = cluster(40.0).await;
    let dir = tempfile::tempdir().unwrap();
    let v = c.add_validator("a", dir.path(), Keypair::generate(), false).await.unwrap();
    let junk_id = v.identity().unwrap();
    let staked_file = dir.path().join("staked.json");
    c.staked().write_file(&staked_file).unwrap();

    // No tower for the staked identity in this ledger: refused, nothing changes.
    let r = set_identity(&v.admin_socket(), &staked_file, true).await;
    assert_eq!(r["error"]["code"], -32603);
    let msg = r["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with(&format!("Unable to load tower file for identity {}: ", c.staked().pubkey())), "{msg}");
    assert_eq!(v.identity(), Some(junk_id.clone()));
    assert!(c.holders().is_empty());

    // A missing file and a file that is not a keypair.
    let missing = dir.path().join("missing.json");
    let r = set_identity(&v.admin_socket(), &missing, false).await;
    assert_eq!(r["error"]["code"], -32602);
    let msg = r["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with(&format!("Failed to read identity keypair from {}: ", missing.display())), "{msg}");
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "[1,2,3]").unwrap();
    assert_eq!(set_identity(&v.admin_socket(), &garbage, false).await["error"]["code"], -32602);

    // Wrong parameter shapes.
    let mut a = Admin::connect(&v.admin_socket()).await.unwrap();
    assert_eq!(a.call(1, "setIdentity", json!([staked_file.to_str().unwrap()])).await["error"]["code"], -32602);
    assert_eq!(a.call(2, "setIdentity", json!([staked_file.to_str().unwrap(), "yes"])).await["error"]["code"], -32602);

    // With the tower in the ledger it goes through, and the validator votes.
    solana_sim::tower::write(dir.path(), &c.staked().pubkey(), None).unwrap();
    let r = set_identity(&v.admin_socket(), &staked_file, true).await;
    assert_eq!(r["result"], json!(null), "{r}");
    assert_eq!(c.holders(), ["a"]);
    wait_until("a vote", || c.last_vote().is_some()).await;
    assert!(v.is_voting());

    // Back to junk from bytes.
    let junk2 = Keypair::generate();
    let r = a.call(3, "setIdentityFromBytes", json!([junk2.to_bytes().to_vec(), false])).await;
    assert_eq!(r["result"], json!(null), "{r}");
    assert_eq!(v.identity(), Some(junk2.pubkey()));
    assert!(!v.is_voting());
    let r = a.call(4, "setIdentityFromBytes", json!([[1, 2, 3], false])).await;
    assert_eq!(r["error"]["code"], -32602);
    assert!(c.violations().is_empty(), "{:?}", c.violations());
}

#[tokio::test]
async fn admin_faults() {
    let c = cluster(40.0).await;
    let dir = tempfile::tempdir().unwrap();
    let junk = Keypair::generate();
    let junk_id = junk.pubkey();
    let v = c.add_validator("a", dir.path(), junk, false).await.unwrap();
    let other = Keypair::generate();
    let file = dir.path().join("other.json");
    other.write_file(&file).unwrap();

    v.set_admin_fault(AdminFault::Refuse("not now".into()));
    let r = set_identity(&v.admin_socket(), &file, false).await;
    assert_eq!(r["error"], json!({"code": -32603, "message": "not now"}));
    assert_eq!(v.identity(), Some(junk_id.clone()));

    v.set_admin_fault(AdminFault::Hang);
    let mut a = Admin::connect(&v.admin_socket()).await.unwrap();
    let req = json!({"jsonrpc": "2.0", "id": 1, "method": "setIdentity", "params": [file.to_str().unwrap(), false]});
    a.send_raw(format!("{req}\n").as_bytes()).await;
    wait_until("the hung call is recorded", || v.admin_calls().len() == 2).await;
    // Unanswered for a while (no answer is the point; a short wait cannot make this flaky).
    let answered = tokio::time::timeout(Duration::from_millis(300), a.read()).await;
    assert!(answered.is_err(), "a hung socket never answers");
    assert_eq!(v.identity(), Some(junk_id.clone()), "nor applies the request");
    drop(a);

    v.set_admin_fault(AdminFault::Delay(Duration::from_millis(200)));
    let r = set_identity(&v.admin_socket(), &file, false).await;
    assert_eq!(r["result"], json!(null));
    assert_eq!(v.identity(), Some(other.pubkey()));
    assert_eq!(v.admin_calls(), ["setIdentity", "setIdentity", "setIdentity"]);
}

#[tokio::test]
async fn crash_closes_the_socket_and_restart_comes_back_junk() {
    let c = cluster(40.0).await;
    let dir = tempfile::tempdir().unwrap();
    let junk = Keypair::generate();
    let junk_id = junk.pubkey();
    let v = c.add_validator("a", dir.path(), junk, true).await.unwrap();
    assert_eq!(c.holders(), ["a"]);
    let mut open = Admin::connect(&v.admin_socket()).await.unwrap();
    wait_until("a vote", || c.last_vote().is_some()).await;

    v.crash();
    assert_eq!(v.identity(), None);
    assert!(!v.is_voting() && c.holders().is_empty());
    assert!(!v.admin_socket().exists(), "the socket file is removed");
    assert!(Admin::connect(&v.admin_socket()).await.is_err(), "connections are refused");
    assert!(open.read().await.is_none(), "an open connection is closed");
    let stopped = c.last_vote().unwrap();

    v.restart().await.unwrap();
    assert_eq!(v.identity(), Some(junk_id.clone()), "every node starts junk");
    assert!(c.holders().is_empty());
    let mut a = Admin::connect(&v.admin_socket()).await.unwrap();
    assert_eq!(a.call(1, "contactInfo", json!([])).await["result"]["id"], json!(junk_id));
    let now = c.slot();
    wait_until("a few slots", || c.slot() > now + 5).await;
    assert_eq!(c.last_vote(), Some(stopped), "a junk node does not vote");
    assert!(c.validator("a").is_some() && c.validator("b").is_none());
    assert!(c.add_validator("a", dir.path(), Keypair::generate(), false).await.is_err(), "names are unique");
}
