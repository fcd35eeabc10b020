//! The Hive/Steem key swap: which operation and key (§4.3), built only from data the endpoints agree on,
//! broadcast to every fresh endpoint, and confirmed only when the transaction is in a block.
//!
//! - **TaPoS** comes from a block at least two fresh endpoints agree on (the lowest last irreversible block
//!   among them, or the block below the lowest head), never from one endpoint's claimed head; after a TaPoS
//!   refusal the endpoints that supplied the block are left out of the next choice.
//! - **op 11** (`witness_update`, active key) re-sends url and props unchanged (§0 item 6): only when every
//!   fresh endpoint shows the same url and props; otherwise it is not sent and the operator is told.
//! - **Confirmed** means the attempt is in a block (Hive's `transaction_status_api.find_transaction`, else
//!   the blocks' `transaction_ids`) and a second fresh endpoint shows the backup key at or after that block.
//!   Without an attempt in a block (an earlier run's swap), two fresh endpoints must show the key in place.

use std::collections::BTreeSet;

use serde_json::Value;

use super::blocks;
use super::rpc::api;
use super::rpc::reading::{Poll, Snapshot};
use super::GrapheneProducer;
use crate::chain::{ChainTime, SwapAttempt, SwapError, SwapStatus};
use graphene_protocol::asset::{Asset, AssetSymbol};
use graphene_protocol::json::{transaction_from_json, transaction_to_json};
use graphene_protocol::keys::PrivateKey;
use graphene_protocol::operation::{LegacyChainProperties, Operation, WitnessSetProperties, WitnessUpdate};
use graphene_protocol::transaction::{sign_transaction, BlockId, PackMode, TimePointSec, Transaction};

/// Blocks read at most per status look when searching for the attempt (Steem; Hive asks the node).
const SCAN_PER_LOOK: u32 = 20;
/// How far below the head the search starts when nothing is known of where the attempt went.
const SCAN_BACK: u32 = 40;

/// Where the swap's TaPoS block came from.
#[derive(Debug, Clone)]
pub(super) struct Tapos {
    pub id: BlockId,
    pub sources: Vec<usize>,
}

/// The swap's transaction found in a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Included {
    pub txid: String,
    pub block: u32,
    pub endpoint: usize,
}

/// What the search for the attempts in blocks keeps between looks.
#[derive(Debug, Default)]
pub(super) struct Search {
    /// The next block to read (scan), once started.
    pub next_block: Option<u32>,
    /// Every inclusion of an attempt seen so far (on some endpoint's chain; forks may differ).
    pub found: Vec<Included>,
    /// Endpoints that supplied a TaPoS block the chain refused.
    pub tapos_avoid: BTreeSet<usize>,
    pub last_tapos: Vec<usize>,
    /// The url/props disagreement was reported (once per episode).
    pub props_noted: bool,
}

impl GrapheneProducer {
    /// The operation that swaps to the backup key from `snap`, and the key that signs it.
    fn plan(&self, snap: &Snapshot, peers: &[Snapshot]) -> Result<(Operation, &PrivateKey), SwapError> {
        let account = &self.settings.reader.account;
        let on_chain = self.parse_key(&snap.witness.signing_key);
        if let (Some(cur), false) = (on_chain, self.set_properties_refused) {
            if let Some(k) = self.signer_for(cur) {
                let op = WitnessSetProperties::key_swap(account, cur, self.settings.backup_key);
                return Ok((Operation::WitnessSetProperties(op), k));
            }
        }
        if let Some(k) = &self.settings.active_key {
            return Ok((Operation::WitnessUpdate(self.witness_update(snap, peers)?), k));
        }
        Err(SwapError::NoUsableKey(format!(
            "the on-chain signing key is {} and the trap holds no matching SIGNING_WIF (or BACKUP_SIGNING_WIF) and no ACTIVE_WIF",
            snap.witness.signing_key
        )))
    }

    /// op 11 re-sends the url and props the chain has now (§0 item 6), only the key changes; every fresh
    /// endpoint in `peers` must show the same url and props, so one lying endpoint cannot rewrite them.
    fn witness_update(&self, snap: &Snapshot, peers: &[Snapshot]) -> Result<WitnessUpdate, SwapError> {
        let mine = self.url_and_props(snap)?;
        for other in peers {
            let theirs = self.url_and_props(other)?;
            if theirs != mine {
                return Err(SwapError::Transient(format!(
                    "the fresh endpoints disagree on @{}'s url or props ({} and {}): witness_update is not sent",
                    self.settings.reader.account, snap.url, other.url
                )));
            }
        }
        let (url, props) = mine;
        Ok(WitnessUpdate {
            owner: self.settings.reader.account.clone(),
            url,
            block_signing_key: self.settings.backup_key,
            props,
            fee: Asset { amount: 0, symbol: AssetSymbol::Core },
        })
    }

    fn url_and_props(&self, snap: &Snapshot) -> Result<(String, LegacyChainProperties), SwapError> {
        let chain = &self.settings.chain;
        let props = &snap.witness.props;
        let bad = |what: &str| SwapError::Transient(format!("witness props from {}: {what}", snap.url));
        let fee_text =
            props.get("account_creation_fee").and_then(Value::as_str).ok_or_else(|| bad("no account_creation_fee"))?;
        let account_creation_fee = Asset::from_legacy_str(fee_text, chain).map_err(|e| bad(&e.to_string()))?;
        let maximum_block_size = props
            .get("maximum_block_size")
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| bad("no maximum_block_size"))?;
        let rate_field = chain.interest_rate_field();
        let interest_rate = props
            .get(rate_field)
            .and_then(Value::as_u64)
            .and_then(|v| u16::try_from(v).ok())
            .ok_or_else(|| bad(&format!("no {rate_field}")))?;
        Ok((
            snap.witness.url.clone(),
            LegacyChainProperties { account_creation_fee, maximum_block_size, interest_rate },
        ))
    }

    /// Build, validate, sign and self-check the swap from `snap` with TaPoS on `tapos` (no I/O).
    /// Expiration counts from `base_time`, the earliest head time of the fresh endpoints.
    pub(super) fn build_swap(
        &self,
        snap: &Snapshot,
        peers: &[Snapshot],
        tapos: &BlockId,
        base_time: u64,
    ) -> Result<SwapAttempt, SwapError> {
        let (op, key) = self.plan(snap, peers)?;
        op.validate_for(&self.settings.chain)
            .map_err(|e| SwapError::Rejected(format!("the swap would be invalid: {e}")))?;
        let expires_at = base_time + self.settings.tx_expiration.as_secs();
        let expiration = TimePointSec(u32::try_from(expires_at).unwrap_or(u32::MAX));
        let action = op.name().to_string();
        let tx = Transaction::with_tapos(tapos, expiration, vec![op]);
        // sign_transaction recovers the key from the signature and compares it before returning.
        let signed = sign_transaction(&tx, &self.settings.chain, key)
            .map_err(|e| SwapError::Rejected(format!("signing failed its self-check: {e}")))?;
        Ok(SwapAttempt {
            id: tx.id_for(&self.settings.chain, PackMode::Legacy).to_string(),
            expires_at: ChainTime::from_secs(expires_at),
            label: action,
            payload: transaction_to_json(&signed, &self.settings.chain),
        })
    }

    /// Build the swap from the head of `snap` (pre-arming check: nothing is sent).
    pub(super) fn build_from_head(&self, snap: &Snapshot) -> Result<SwapAttempt, SwapError> {
        let head = BlockId::from_hex(&snap.head_block_id)
            .map_err(|e| SwapError::Transient(format!("head block id from {}: {e}", snap.url)))?;
        self.build_swap(snap, &[], &head, snap.head_time)
    }

    /// A block that at least two fresh endpoints agree is on the chain (one, when only one is fresh).
    pub(super) async fn tapos_block(&mut self, poll: &Poll) -> Result<Tapos, SwapError> {
        let mut fresh: Vec<&Snapshot> = poll.fresh.iter().collect();
        if fresh.len() > 1 {
            let avoid = &self.search.tapos_avoid;
            let kept: Vec<&Snapshot> = fresh.iter().copied().filter(|s| !avoid.contains(&s.endpoint)).collect();
            if !kept.is_empty() {
                fresh = kept;
            }
        }
        let lowest_head = fresh.iter().map(|s| s.head_block_number).min().unwrap_or(0);
        let lowest_lib = fresh.iter().map(|s| s.last_irreversible_block_num).min().unwrap_or(0);
        // The id of block n is read as the `previous` of block n + 1, which every fresh endpoint must have.
        let n = lowest_lib.min(lowest_head.saturating_sub(1));
        if n == 0 {
            return Err(SwapError::Transient("no block below the head to take TaPoS from".into()));
        }
        let mut answers: Vec<(BlockId, usize)> = Vec::new();
        let mut problems = Vec::new();
        for s in fresh.iter().take(3) {
            let Some(ep) = self.reader.endpoints().get(s.endpoint).cloned() else { continue };
            match blocks::block_id(&ep, n).await {
                Ok(Some(id)) => answers.push((id, s.endpoint)),
                Ok(None) => problems.push(format!("{} has no block {}", ep.url(), n + 1)),
                Err(e) => problems.push(e.to_string()),
            }
        }
        let needed = if fresh.len() > 1 { 2 } else { 1 };
        for (id, _) in &answers {
            let sources: Vec<usize> = answers.iter().filter(|(other, _)| other == id).map(|(_, e)| *e).collect();
            if sources.len() >= needed {
                return Ok(Tapos { id: *id, sources });
            }
        }
        // No two agree (one is on another fork, or lies): take one endpoint's block, one not refused before;
        // a TaPoS refusal then moves the next attempt to another endpoint's block.
        if let Some((id, e)) = answers.iter().find(|(_, e)| !self.search.tapos_avoid.contains(e)).or(answers.first()) {
            tracing::warn!(block = n, "the endpoints disagree on block {n}; trying one endpoint's block for TaPoS");
            return Ok(Tapos { id: *id, sources: vec![*e] });
        }
        Err(SwapError::Transient(format!(
            "no block for TaPoS (block {n}): {}",
            if problems.is_empty() { "no answer".to_string() } else { problems.join("; ") }
        )))
    }

    /// `Producer::prepare`: poll, agree on a TaPoS block, build and sign.
    pub(super) async fn prepare_swap(&mut self) -> Result<SwapAttempt, SwapError> {
        let poll = self.poll().await;
        if poll.fresh.is_empty() {
            return Err(SwapError::Transient(Self::blind_reason(&poll)));
        }
        let tapos = self.tapos_block(&poll).await?;
        // Build from the view of the chain the TaPoS block is on (its on-chain key decides the operation).
        let best = poll
            .fresh
            .iter()
            .filter(|s| tapos.sources.contains(&s.endpoint))
            .max_by_key(|s| s.head_block_number)
            .or(poll.best())
            .cloned()
            .ok_or_else(|| SwapError::Transient(Self::blind_reason(&poll)))?;
        let base_time = poll.fresh.iter().map(|s| s.head_time).min().unwrap_or(best.head_time);
        let peers: Vec<Snapshot> = poll.fresh.iter().filter(|s| s.endpoint != best.endpoint).cloned().collect();
        let built = self.build_swap(&best, &peers, &tapos.id, base_time);
        if let Err(SwapError::Transient(reason)) = &built {
            if reason.contains("disagree") && !self.search.props_noted {
                self.search.props_noted = true;
                self.notices.push(reason.clone());
            }
        }
        self.search.last_tapos = tapos.sources;
        built
    }

    /// `Producer::execute`: send to every endpoint fresh in the last poll; a duplicate counts as accepted.
    pub(super) async fn execute_swap(&mut self, swap: &SwapAttempt) -> Result<(), SwapError> {
        let mut set = tokio::task::JoinSet::new();
        // Only endpoints that were fresh and on the right chain in the last poll (prepare just polled).
        let fresh: Vec<usize> = self.last_poll.fresh.iter().map(|s| s.endpoint).collect();
        for ep in fresh.iter().filter_map(|i| self.reader.endpoints().get(*i).cloned()) {
            let payload = swap.payload.clone();
            set.spawn(async move { (ep.url().to_string(), api::broadcast(&ep, &payload).await) });
        }
        let mut accepted = 0;
        let mut refusals = Vec::new();
        let mut failures = Vec::new();
        while let Some(Ok((url, result))) = set.join_next().await {
            match result {
                Ok(()) => {
                    tracing::info!(endpoint = %url, txid = %swap.id, "broadcast accepted");
                    accepted += 1;
                }
                Err(e) if e.is_duplicate() => {
                    tracing::info!(endpoint = %url, txid = %swap.id, "endpoint already has the transaction");
                    accepted += 1;
                }
                Err(e) if e.is_unreachable() => {
                    tracing::warn!(endpoint = %url, error = %e, "broadcast failed");
                    failures.push(e.to_string());
                }
                Err(e) => {
                    tracing::warn!(endpoint = %url, error = %e, "broadcast refused");
                    let op42_impossible = e.is_missing_authority() || e.is_key_mismatch();
                    refusals.push((e.to_string(), op42_impossible));
                }
            }
        }
        if refusals.iter().any(|(r, _)| r.contains("tapos")) {
            // The block we took TaPoS from is not on the chain some nodes follow (even if another accepted
            // it, on its own fork): the next attempt takes its block from other endpoints.
            let sources = std::mem::take(&mut self.search.last_tapos);
            tracing::warn!(?sources, "TaPoS refused; the next attempt takes its block from other endpoints");
            self.search.tapos_avoid.extend(sources);
        }
        if accepted > 0 {
            return Ok(());
        }
        if let Some((first, _)) = refusals.first() {
            // Every endpoint that answered says op 42 cannot work (key mismatch or missing authority):
            // further attempts use op 11 if an active key is held.
            if is_set_properties(&swap.payload, &self.settings.chain)
                && refusals.iter().all(|(_, impossible)| *impossible)
            {
                self.set_properties_refused = true;
            }
            Err(SwapError::Rejected(first.clone()))
        } else if failures.is_empty() {
            Err(SwapError::Transient("no fresh endpoint to broadcast to".into()))
        } else {
            Err(SwapError::Transient(failures.join("; ")))
        }
    }

    /// `Producer::status`: in effect only with the attempt in a block and a second endpoint agreeing.
    pub(super) async fn confirm(&mut self, attempts: &[String], expires_at: Option<ChainTime>) -> SwapStatus {
        let poll = self.poll().await;
        let Some(best) = poll.best().cloned() else {
            return SwapStatus::Unknown(Self::blind_reason(&poll));
        };
        let backup = self.settings.backup_key;
        let showing: Vec<&Snapshot> =
            poll.fresh.iter().filter(|s| self.parse_key(&s.witness.signing_key) == Some(backup)).collect();
        if !showing.is_empty() {
            if !attempts.is_empty() {
                if let Some(inc) = self.find_included(&poll, attempts).await {
                    if !self.search.found.contains(&inc) {
                        self.search.found.push(inc);
                    }
                }
            }
            let only_fresh = poll.fresh.len() == 1;
            let only_configured = self.reader.endpoints().len() == 1;
            // An inclusion counts when a second fresh endpoint (where there is one) shows the key at or
            // after that block.
            let agreed = self.search.found.iter().find(|inc| {
                showing.iter().any(|s| (s.endpoint != inc.endpoint || only_fresh) && s.head_block_number >= inc.block)
            });
            if let Some(inc) = agreed {
                tracing::info!(txid = %inc.txid, block = inc.block, "the swap is in a block and the key is in place");
                return SwapStatus::InEffect { id: Some(inc.txid.clone()) };
            }
            if self.search.found.is_empty() && (showing.len() >= 2 || (only_fresh && only_configured)) {
                // No attempt of ours found in a block, but independent endpoints (or the only one configured)
                // show the key in place: an earlier run's attempt, or the operator, made the change.
                let id = expires_at.and(attempts.last().cloned());
                return SwapStatus::InEffect { id };
            }
        }
        if expires_at.is_some_and(|e| ChainTime::from_secs(best.head_time) >= e) {
            SwapStatus::Expired
        } else {
            SwapStatus::Pending
        }
    }

    /// The first of `attempts` found in a block, asking the node (Hive) or reading the new blocks.
    async fn find_included(&mut self, poll: &Poll, attempts: &[String]) -> Option<Included> {
        for s in &poll.fresh {
            let ep = self.reader.endpoints().get(s.endpoint)?.clone();
            for txid in attempts.iter().rev() {
                match blocks::find_transaction(&ep, txid).await {
                    Ok(Some(block)) => {
                        let inc = Included { txid: txid.clone(), block, endpoint: s.endpoint };
                        if !self.search.found.contains(&inc) {
                            return Some(inc);
                        }
                    }
                    Ok(None) => {}
                    // Steem, or a node without the plugin: read the blocks instead.
                    Err(_) => return self.scan_blocks(poll, attempts).await,
                }
            }
        }
        None
    }

    /// Read the blocks since the last look (bounded per look) for any of `attempts`.
    async fn scan_blocks(&mut self, poll: &Poll, attempts: &[String]) -> Option<Included> {
        let best = poll.best()?;
        let ep = self.reader.endpoints().get(best.endpoint)?.clone();
        let head = best.head_block_number;
        // Never further back than SCAN_BACK, and never more than SCAN_PER_LOOK blocks per look: the newest
        // blocks first once the search has fallen behind (the swap was sent recently).
        let oldest = head.saturating_sub(SCAN_BACK).max(1);
        let mut n = self.search.next_block.unwrap_or(oldest).max(oldest);
        if head.saturating_sub(n) >= SCAN_PER_LOOK {
            n = head + 1 - SCAN_PER_LOOK;
        }
        while n <= head {
            match blocks::transaction_ids(&ep, n).await {
                Ok(Some(ids)) => {
                    if let Some(txid) = attempts.iter().find(|t| ids.iter().any(|i| i.eq_ignore_ascii_case(t))) {
                        self.search.next_block = Some(n + 1);
                        return Some(Included { txid: txid.clone(), block: n, endpoint: best.endpoint });
                    }
                }
                // Pruned or not there yet: go on with the next one.
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(error = %e, block = n, "cannot read a block while looking for the swap");
                    break;
                }
            }
            n += 1;
        }
        self.search.next_block = Some(n);
        None
    }
}

/// Whether a signed transaction (as the trap persisted it) is the op-42 swap.
fn is_set_properties(payload: &Value, chain: &graphene_protocol::chain::ChainSpec) -> bool {
    transaction_from_json(payload, chain).is_ok_and(|signed| {
        signed.transaction.operations.iter().any(|op| matches!(op, Operation::WitnessSetProperties(_)))
    })
}
