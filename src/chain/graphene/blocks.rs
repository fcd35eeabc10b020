//! Evidence from the blocks themselves, where one endpoint's word is not enough (protocol.md §5.5, §5.7,
//! §6.1, §6.2): the id of a block that several endpoints agree on (TaPoS), the block a transaction is in
//! (confirmation), and whether the witness's last slot was filled (a crossing another endpoint contradicts).
//!
//! Every fact here is read from at least two endpoints where there are two, and compared: blocks are the
//! same on every honest node of one fork, while counters and pending state are each node's own view.

use serde::Deserialize;
use serde_json::json;

use super::rpc::api::WitnessSchedule;
use super::rpc::reading::Snapshot;
use super::rpc::{Endpoint, RpcError};
use graphene_protocol::transaction::{BlockId, TimePointSec};

/// The most blocks read from one endpoint for one piece of evidence (a round is 21 slots).
pub const MAX_SCAN: u32 = 24;

/// A block header as `condenser_api.get_block_header` and `get_block` give it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Header {
    pub previous: String,
    pub timestamp: String,
    pub witness: String,
}

/// The part of `condenser_api.get_block` the trap reads.
#[derive(Debug, Clone, Deserialize)]
struct Block {
    #[serde(default)]
    transaction_ids: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct TxStatus {
    status: String,
    #[serde(default)]
    block_num: Option<u32>,
}

impl Header {
    /// Block time, seconds since the epoch.
    pub fn time(&self) -> Option<u64> {
        self.timestamp.parse::<TimePointSec>().ok().map(|t| u64::from(t.0))
    }
}

/// `condenser_api.get_block_header [n]`; `None` if the node has no such block.
pub async fn header(ep: &Endpoint, n: u32) -> Result<Option<Header>, RpcError> {
    ep.call("condenser_api.get_block_header", json!([n])).await
}

/// The transaction ids of block `n` (`condenser_api.get_block`); `None` if the node has no such block.
pub async fn transaction_ids(ep: &Endpoint, n: u32) -> Result<Option<Vec<String>>, RpcError> {
    let block: Option<Block> = ep.call("condenser_api.get_block", json!([n])).await?;
    Ok(block.map(|b| b.transaction_ids))
}

/// Hive's `transaction_status_api.find_transaction`: the block holding `txid`, if it is in one.
pub async fn find_transaction(ep: &Endpoint, txid: &str) -> Result<Option<u32>, RpcError> {
    let s: TxStatus = ep.call("transaction_status_api.find_transaction", json!({ "transaction_id": txid })).await?;
    Ok(match s.status.as_str() {
        "within_reversible_block" | "within_irreversible_block" => s.block_num,
        _ => None,
    })
}

/// The id of block `n` (the `previous` of block `n + 1`), checked to be a 20-byte id that names `n`.
pub async fn block_id(ep: &Endpoint, n: u32) -> Result<Option<BlockId>, RpcError> {
    let Some(next) = header(ep, n.saturating_add(1)).await? else { return Ok(None) };
    match BlockId::from_hex(&next.previous) {
        Ok(id) if id.block_num() == n => Ok(Some(id)),
        _ => Err(RpcError::Garbage {
            endpoint: ep.url().to_string(),
            method: "condenser_api.get_block_header".into(),
            detail: format!("block {}'s previous is not an id of block {n}", n.saturating_add(1)),
        }),
    }
}

/// What the blocks say of the witness's last slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotEvidence {
    /// No block holds the slot, and the endpoints agree on the blocks around it.
    Missed { slot_time: u64 },
    /// The witness signed the block of its slot.
    Produced { slot_time: u64, block: u32 },
    /// The blocks cannot settle it (the slot is in an earlier round, the endpoints disagree or fail).
    Unknown(String),
}

/// The witness's most recent slot at or before the head of `snap`, within the current round of
/// `schedule` (earlier rounds had another order, which the node no longer tells): `(slots before the head,
/// slot time)`.
pub fn last_slot(snap: &Snapshot, schedule: &WitnessSchedule, account: &str, interval: u64) -> Option<(u64, u64)> {
    let aslot = snap.current_aslot?;
    let num = u64::from(schedule.num_scheduled_witnesses).min(schedule.current_shuffled_witnesses.len() as u64);
    if num == 0 {
        return None;
    }
    let round_start = u64::from(schedule.next_shuffle_block_num).checked_sub(num)?;
    // Blocks after `round_start` were made under this schedule; at least that many of its slots are at or
    // before the head (missed slots add more), the head's own slot among them.
    let in_round = u64::from(snap.head_block_number).checked_sub(round_start)?;
    (0..in_round.min(num)).find_map(|k| {
        let i = usize::try_from((aslot.checked_sub(k)?) % num).ok()?;
        (schedule.current_shuffled_witnesses.get(i)? == account)
            .then(|| (k, snap.head_time.saturating_sub(k * interval)))
    })
}

/// Read the blocks around the witness's slot at `slot_time` (`k` slots before `head`) from every endpoint in
/// `sources`, require them to agree, and say whether the slot was filled.
pub async fn slot_evidence(sources: &[&Endpoint], account: &str, head: u32, k: u64, slot_time: u64) -> SlotEvidence {
    // The block of the slot, if any, is at most k blocks below the head; the one before it at most k + 1.
    let k = u32::try_from(k).unwrap_or(u32::MAX).min(MAX_SCAN - 1);
    let first = head.saturating_sub(k + 1).max(1);
    let mut agreed: Option<Vec<Header>> = None;
    for ep in sources {
        let mut headers = Vec::new();
        for n in first..=head {
            match header(ep, n).await {
                Ok(Some(h)) => headers.push(h),
                Ok(None) => return SlotEvidence::Unknown(format!("{} has no block {n} yet", ep.url())),
                Err(e) => return SlotEvidence::Unknown(format!("cannot read block {n}: {e}")),
            }
        }
        match &agreed {
            None => agreed = Some(headers),
            Some(a) if *a == headers => {}
            Some(a) => {
                let at = a.iter().zip(&headers).position(|(x, y)| x != y).map_or(head, |i| first + i as u32);
                return SlotEvidence::Unknown(format!(
                    "the endpoints disagree on block {at} (different forks, or one lies): the blocks cannot settle it"
                ));
            }
        }
    }
    let Some(headers) = agreed else { return SlotEvidence::Unknown("no endpoint to read blocks from".into()) };
    let times: Vec<Option<u64>> = headers.iter().map(Header::time).collect();
    if times.iter().any(Option::is_none) {
        return SlotEvidence::Unknown("a block header has no valid timestamp".into());
    }
    for (i, h) in headers.iter().enumerate() {
        if times[i] == Some(slot_time) {
            return if h.witness == account {
                SlotEvidence::Produced { slot_time, block: first + i as u32 }
            } else {
                SlotEvidence::Unknown(format!("the block at the slot was signed by @{}: the schedule moved", h.witness))
            };
        }
    }
    let before = times.iter().any(|t| t.is_some_and(|t| t < slot_time));
    let after = times.iter().any(|t| t.is_some_and(|t| t > slot_time));
    if before && after {
        SlotEvidence::Missed { slot_time }
    } else {
        SlotEvidence::Unknown("the blocks read do not span the slot".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(head: u32, aslot: u64, head_time: u64) -> Snapshot {
        Snapshot {
            endpoint: 0,
            url: "e".into(),
            head_block_number: head,
            head_block_id: String::new(),
            head_time,
            last_irreversible_block_num: head - 1,
            current_aslot: Some(aslot),
            witness: serde_json::from_value(serde_json::json!({"owner": "alice", "url": "", "total_missed": 0,
                "signing_key": "STM1", "props": {}}))
            .unwrap(),
        }
    }

    fn schedule(order: &[&str], next_shuffle: u32) -> WitnessSchedule {
        WitnessSchedule {
            current_shuffled_witnesses: order.iter().map(|s| s.to_string()).collect(),
            num_scheduled_witnesses: order.len() as u32,
            next_shuffle_block_num: next_shuffle,
        }
    }

    #[test]
    fn the_last_slot_is_found_only_within_the_current_round() {
        // 3 witnesses, the round started at block 99 (next shuffle at 102); head 101 at aslot 1001.
        let s = schedule(&["a", "alice", "c"], 102);
        // aslot 1001 % 3 = 2 → "c" has the head slot; alice's is one slot earlier (aslot 1000 % 3 = 1).
        assert_eq!(last_slot(&snap(101, 1001, 3000), &s, "alice", 3), Some((1, 2997)));
        assert_eq!(last_slot(&snap(101, 1001, 3000), &s, "c", 3), Some((0, 3000)));
        // "a" (aslot 999) would be two slots back, but only 2 blocks of this round are known: not this round.
        assert_eq!(last_slot(&snap(101, 1001, 3000), &s, "a", 3), None);
        // Right at the shuffle (head 99 made under the old order) nothing of this round is known.
        assert_eq!(last_slot(&snap(99, 1001, 3000), &s, "c", 3), None);
        assert_eq!(last_slot(&snap(101, 1001, 3000), &s, "bob", 3), None);
    }
}
