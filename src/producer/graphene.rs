//! Hive and Steem (Graphene chains): the witness's `total_missed`, and the swap of its block signing key.
//!
//! Reading: every endpoint through [`Reader`]; the observation is the highest fresh `total_missed` (the most
//! pessimistic honest answer), which [`Producer::corroborate`] then checks against an independent endpoint,
//! or the same endpoint one block later (protocol.md §6.2).
//! Swapping: `witness_set_properties` (op 42) signed by the current signing key when the trap holds it and
//! it is the on-chain key, else `witness_update` (op 11) signed by the active key with url and props copied
//! unchanged from the chain (§4.3, §0 item 6). TaPoS and expiration come from the head block (§3.3, §3.4);
//! the legacy digest is signed on both chains (§1.4) and the signature is checked by recovery before
//! anything is broadcast.

use std::time::Duration;

use serde_json::Value;

use super::{Corroboration, Observation, PreparedSwap, Producer, Reading, SwapError, SwapStatus};
use crate::rpc::api;
use crate::rpc::reading::{Poll, Reader, ReaderSettings, Snapshot};
use crate::rpc::RpcError;
use chain_clock::SharedClock;
use graphene_protocol::asset::{Asset, AssetSymbol};
use graphene_protocol::chain::ChainSpec;
use graphene_protocol::json::transaction_to_json;
use graphene_protocol::keys::{PrivateKey, PublicKey};
use graphene_protocol::operation::{LegacyChainProperties, Operation, WitnessSetProperties, WitnessUpdate};
use graphene_protocol::transaction::sign_transaction;
use graphene_protocol::transaction::{BlockId, PackMode, TimePointSec, Transaction};

/// What the Hive/Steem producer needs.
pub struct GrapheneSettings {
    pub chain: ChainSpec,
    pub reader: ReaderSettings,
    /// The backup node's public key: the only key the trap ever swaps to.
    pub backup_key: PublicKey,
    /// The current block signing key, for op 42.
    pub signing_key: Option<PrivateKey>,
    /// The account's active key, for op 11.
    pub active_key: Option<PrivateKey>,
    /// Expiration of the swap transaction after head block time.
    pub tx_expiration: Duration,
    /// When to look: right after the witness's own slots, or only every poll interval.
    pub detection: Detection,
}

/// How the trap decides when to read `total_missed` (`DETECTION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detection {
    /// Read right after the block that follows each of the witness's slots (and every poll interval).
    Slots,
    /// Read every poll interval only.
    Poll,
}

/// What a pre-arming check is about; `config` maps each to the variable the operator must change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Account,
    Endpoint(String),
    SigningKey,
    ActiveKey,
    BackupKey,
}

/// One finding of [`GrapheneProducer::preflight`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub subject: Subject,
    /// An error stops arming; a warning is only reported.
    pub fatal: bool,
    pub message: String,
    pub fix: String,
}

/// The Hive/Steem implementation of [`Producer`].
pub struct GrapheneProducer {
    settings: GrapheneSettings,
    reader: Reader,
    block_interval: Duration,
    /// Set when the chain refused op 42 for good: further attempts use op 11 if an active key is held.
    set_properties_refused: bool,
    last_poll: Poll,
    /// The witness schedule of the current round (refreshed when the head reaches `next_shuffle_block_num`).
    schedule: Option<api::WitnessSchedule>,
    /// Chain time of the witness slot being watched: a miss in it shows once the next block is applied.
    watched_slot: Option<u64>,
    /// When the next look is due (chain time), if slot-aware watching has a plan.
    next_look: Option<u64>,
    watch_note: String,
}

impl GrapheneProducer {
    pub fn new(settings: GrapheneSettings, clock: SharedClock) -> Result<Self, RpcError> {
        let reader = Reader::new(settings.reader.clone(), clock)?;
        Ok(Self {
            settings,
            reader,
            block_interval: Duration::from_secs(3),
            set_properties_refused: false,
            last_poll: Poll::default(),
            schedule: None,
            watched_slot: None,
            next_look: None,
            watch_note: "poll: no reading yet".into(),
        })
    }

    pub fn chain(&self) -> &ChainSpec {
        &self.settings.chain
    }

    /// The last poll, for `status` and the health file.
    pub fn last_poll(&self) -> &Poll {
        &self.last_poll
    }

    /// Total RPC calls made so far.
    pub fn rpc_calls(&self) -> u64 {
        self.reader.calls()
    }

    fn key_text(&self, key: &PublicKey) -> String {
        key.to_text(&self.settings.chain.key_prefix)
    }

    fn parse_key(&self, text: &str) -> Option<PublicKey> {
        PublicKey::from_text(text, &self.settings.chain.key_prefix).ok()
    }

    fn reading(&self, s: &Snapshot) -> Reading {
        Reading {
            missed: s.witness.total_missed,
            height: u64::from(s.head_block_number),
            chain_time: s.head_time,
            source: s.url.clone(),
            source_index: s.endpoint,
            current_key: s.witness.signing_key.clone(),
        }
    }

    async fn poll(&mut self) -> Poll {
        let poll = self.reader.poll().await;
        self.last_poll = poll.clone();
        poll
    }

    fn blind_reason(poll: &Poll) -> String {
        if poll.skipped.is_empty() {
            return "no endpoint answered".into();
        }
        poll.skipped.iter().map(|s| format!("{}: {}", s.url, s.reason)).collect::<Vec<_>>().join("; ")
    }

    /// Everything that can be checked against the chain before arming: each endpoint's chain id and
    /// health, the witness, the keys against the on-chain key and active authority, the backup key.
    /// Also learns the block interval. Returns the freshest snapshot, if any.
    pub async fn preflight(&mut self) -> (Option<Snapshot>, Vec<Finding>) {
        let mut findings = Vec::new();
        let chain_id = self.settings.chain.chain_id_hex();
        for ep in self.reader.endpoints().to_vec() {
            match api::version(&ep).await {
                Ok(v) if !v.chain_id.eq_ignore_ascii_case(&chain_id) => findings.push(Finding {
                    subject: Subject::Endpoint(ep.url().to_string()),
                    fatal: true,
                    message: format!("{} serves chain id {}, not {chain_id}", ep.url(), v.chain_id),
                    fix: "remove this endpoint or set CHAIN/CHAIN_ID to the chain it serves".into(),
                }),
                Ok(_) => {
                    // Real chains use 3 s; anything outside 1-60 s is a broken or hostile answer.
                    if let Ok(secs @ 1..=60) = api::block_interval(&ep).await {
                        self.block_interval = Duration::from_secs(secs);
                    }
                }
                Err(e) => findings.push(Finding {
                    subject: Subject::Endpoint(ep.url().to_string()),
                    fatal: false,
                    message: format!("unhealthy: {e}"),
                    fix: "check the URL; the trap skips this endpoint while it fails".into(),
                }),
            }
        }
        let poll = self.poll().await;
        for skip in &poll.skipped {
            if !findings.iter().any(|f| f.subject == Subject::Endpoint(skip.url.clone())) {
                findings.push(Finding {
                    subject: Subject::Endpoint(skip.url.clone()),
                    fatal: false,
                    message: format!("unhealthy: {}", skip.reason),
                    fix: "the trap skips this endpoint while it fails".into(),
                });
            }
        }
        let Some(best) = poll.best().cloned() else {
            let no_witness = poll.skipped.iter().any(|s| s.reason.starts_with("no witness named"));
            findings.push(if no_witness {
                Finding {
                    subject: Subject::Account,
                    fatal: true,
                    message: format!(
                        "{:?} is not a witness on {}",
                        self.settings.reader.account, self.settings.chain.name
                    ),
                    fix: "set WITNESS_ACCOUNT to the witness's account name (without @)".into(),
                }
            } else {
                Finding {
                    subject: Subject::Endpoint(String::new()),
                    fatal: true,
                    message: format!("no endpoint gave a fresh reading: {}", Self::blind_reason(&poll)),
                    fix: "give at least one reachable, synced RPC node in RPC_URLS".into(),
                }
            });
            return (None, findings);
        };
        let on_chain = self.parse_key(&best.witness.signing_key);
        let backup = self.settings.backup_key;
        if backup.is_null() {
            findings.push(Finding {
                subject: Subject::BackupKey,
                fatal: true,
                message: "is the null key, which disables the witness instead of failing over".into(),
                fix: "set it to the public signing key of the backup node".into(),
            });
        }
        if on_chain == Some(backup) {
            findings.push(Finding {
                subject: Subject::BackupKey,
                fatal: true,
                message: "equals the witness's current on-chain signing key: the swap would change nothing".into(),
                fix: "set it to the backup node's key, not the primary's (if the backup already produces, fix the primary and rearm later)".into(),
            });
        }
        let signing_ok = match (&self.settings.signing_key, on_chain) {
            (Some(k), Some(cur)) if k.public_key() == cur && !cur.is_null() => true,
            (Some(k), _) => {
                findings.push(Finding {
                    subject: Subject::SigningKey,
                    fatal: true,
                    message: format!(
                        "belongs to {}, but the witness's on-chain signing key is {}",
                        self.key_text(&k.public_key()),
                        best.witness.signing_key
                    ),
                    fix:
                        "give the WIF of the key the witness signs blocks with now (check with `witness-trap key pub`)"
                            .into(),
                });
                false
            }
            (None, _) => false,
        };
        let mut active_ok = false;
        if let Some(k) = &self.settings.active_key {
            let ep = self.reader.endpoints()[best.endpoint].clone();
            match api::account(&ep, &self.settings.reader.account).await {
                Ok(Some(acc)) => {
                    let text = self.key_text(&k.public_key());
                    let weight = acc.active.key_auths.iter().find(|(key, _)| *key == text).map(|(_, w)| *w);
                    match weight {
                        Some(w) if w >= acc.active.weight_threshold => active_ok = true,
                        Some(w) => findings.push(Finding {
                            subject: Subject::ActiveKey,
                            fatal: true,
                            message: format!(
                                "has weight {w} in the active authority, which needs {}",
                                acc.active.weight_threshold
                            ),
                            fix: "give a key that can sign for the active authority alone".into(),
                        }),
                        None => findings.push(Finding {
                            subject: Subject::ActiveKey,
                            fatal: true,
                            message: format!("belongs to {text}, which is not in @{}'s active authority", acc.name),
                            fix: "give the account's active private key (not owner, posting or memo)".into(),
                        }),
                    }
                }
                Ok(None) => findings.push(Finding {
                    subject: Subject::Account,
                    fatal: true,
                    message: "the account does not exist".into(),
                    fix: "check WITNESS_ACCOUNT".into(),
                }),
                Err(e) => findings.push(Finding {
                    subject: Subject::Endpoint(ep.url().to_string()),
                    fatal: true,
                    message: format!("cannot read the account's active authority to check ACTIVE_WIF: {e}"),
                    fix: "retry when the endpoint answers".into(),
                }),
            }
        }
        if self.settings.signing_key.is_none() && self.settings.active_key.is_none() {
            findings.push(Finding {
                subject: Subject::SigningKey,
                fatal: true,
                message: "no key to sign the swap with".into(),
                fix: "set SIGNING_WIF (preferred: it cannot move funds) or ACTIVE_WIF".into(),
            });
        } else if !signing_ok && !active_ok && on_chain.is_some_and(|k| k.is_null()) {
            findings.push(Finding {
                subject: Subject::ActiveKey,
                fatal: true,
                message: "the on-chain signing key is the null key (witness disabled): only the active key can swap"
                    .into(),
                fix: "set ACTIVE_WIF".into(),
            });
        }
        // Finally, build (never broadcast) the swap from live data: whatever would stop it at 4 a.m. shows now.
        if !findings.iter().any(|f| f.fatal) {
            if let Err(e) = self.build_swap(&best) {
                findings.push(Finding {
                    subject: if self.settings.signing_key.is_some() { Subject::SigningKey } else { Subject::ActiveKey },
                    fatal: true,
                    message: format!("the swap cannot be built from the chain's data: {e}"),
                    fix: "check CHAIN/CHAIN_ID and the keys; `witness-trap fire --dry-run` shows the swap".into(),
                });
            }
        }
        (Some(best), findings)
    }

    /// Plan the next look from the witness schedule (protocol.md §5.4, §6.1): the witness of the k-th slot
    /// after the head is `current_shuffled_witnesses[(current_aslot + k) % num_scheduled_witnesses]`, at
    /// head time + k intervals; a miss in it becomes visible when the next block is applied (§6.2), so the
    /// look is one interval after the slot plus a margin for the block to reach the RPC node.
    async fn plan_slots(&mut self, best: &Snapshot) {
        self.next_look = None;
        if self.settings.detection == Detection::Poll {
            self.watch_note = "poll (DETECTION=poll)".into();
            return;
        }
        let interval = self.block_interval.as_secs().max(1);
        let margin = interval.div_ceil(3);
        // Still waiting for the block after the watched slot (the next witness missed too, or the node lags).
        if let Some(slot) = self.watched_slot {
            if best.head_time < slot.saturating_add(interval) {
                // Keep the planned look; once the slot's time has passed, look one block after the head
                // (a regular poll before the slot must not turn into a look every block).
                let planned = slot.saturating_add(interval);
                let next_block = best.head_time.saturating_add(interval);
                self.next_look = Some(planned.max(next_block) + margin);
                return;
            }
            self.watched_slot = None;
        }
        let Some(aslot) = best.current_aslot else {
            self.watch_note = "poll: the node does not report current_aslot".into();
            return;
        };
        let stale = self.schedule.as_ref().is_none_or(|s| best.head_block_number >= s.next_shuffle_block_num);
        if stale {
            let ep = self.reader.endpoints()[best.endpoint].clone();
            match api::witness_schedule(&ep).await {
                Ok(s) => self.schedule = Some(s),
                Err(e) => {
                    self.schedule = None;
                    self.watch_note = format!("poll: cannot read the witness schedule: {e}");
                    return;
                }
            }
        }
        let Some(schedule) = &self.schedule else { return };
        let num = u64::from(schedule.num_scheduled_witnesses).min(schedule.current_shuffled_witnesses.len() as u64);
        let account = &self.settings.reader.account;
        let num = num.max(1);
        let k = (1..=num).find(|k| {
            usize::try_from((aslot % num + k) % num)
                .ok()
                .and_then(|i| schedule.current_shuffled_witnesses.get(i))
                .is_some_and(|w| w == account)
        });
        let Some(k) = k else {
            self.watch_note = format!("poll: @{account} is not in the current schedule");
            return;
        };
        // Blocks until the reshuffle; past it the schedule may differ, so look again there instead.
        let to_shuffle = u64::from(schedule.next_shuffle_block_num.saturating_sub(best.head_block_number));
        if k > to_shuffle {
            self.next_look = Some(best.head_time.saturating_add(to_shuffle.saturating_mul(interval)) + margin);
            self.watch_note = "slots: the next slot is in the next round; looking again at the reshuffle".into();
            return;
        }
        let slot = best.head_time.saturating_add(k.saturating_mul(interval));
        self.watched_slot = Some(slot);
        self.next_look = Some(slot.saturating_add(interval + margin));
        self.watch_note =
            format!("slots: next slot of @{account} at {}", TimePointSec(u32::try_from(slot).unwrap_or(u32::MAX)));
    }

    /// The operation that swaps to the backup key from this snapshot, and the key that signs it.
    fn plan(&self, snap: &Snapshot) -> Result<(Operation, &PrivateKey), SwapError> {
        let account = &self.settings.reader.account;
        let on_chain = self.parse_key(&snap.witness.signing_key);
        if let (Some(k), Some(cur), false) = (&self.settings.signing_key, on_chain, self.set_properties_refused) {
            if k.public_key() == cur && !cur.is_null() {
                let op = WitnessSetProperties::key_swap(account, cur, self.settings.backup_key);
                return Ok((Operation::WitnessSetProperties(op), k));
            }
        }
        if let Some(k) = &self.settings.active_key {
            return Ok((Operation::WitnessUpdate(self.witness_update(snap)?), k));
        }
        Err(SwapError::NoUsableKey(format!(
            "the on-chain signing key is {} and the trap holds no matching SIGNING_WIF and no ACTIVE_WIF",
            snap.witness.signing_key
        )))
    }

    /// op 11 re-sends the url and props the chain has now (§0 item 6), only the key changes.
    fn witness_update(&self, snap: &Snapshot) -> Result<WitnessUpdate, SwapError> {
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
        Ok(WitnessUpdate {
            owner: self.settings.reader.account.clone(),
            url: snap.witness.url.clone(),
            block_signing_key: self.settings.backup_key,
            props: LegacyChainProperties { account_creation_fee, maximum_block_size, interest_rate },
            fee: Asset { amount: 0, symbol: AssetSymbol::Core },
        })
    }

    /// Build, validate, sign and self-check the swap from `snap` (no I/O).
    pub fn build_swap(&self, snap: &Snapshot) -> Result<PreparedSwap, SwapError> {
        let (op, key) = self.plan(snap)?;
        op.validate_for(&self.settings.chain)
            .map_err(|e| SwapError::Rejected(format!("the swap would be invalid: {e}")))?;
        let head = BlockId::from_hex(&snap.head_block_id)
            .map_err(|e| SwapError::Transient(format!("head block id from {}: {e}", snap.url)))?;
        let expires_at = snap.head_time + self.settings.tx_expiration.as_secs();
        let expiration = TimePointSec(u32::try_from(expires_at).unwrap_or(u32::MAX));
        let action = op.name().to_string();
        let tx = Transaction::with_tapos(&head, expiration, vec![op]);
        // sign_transaction recovers the key from the signature and compares it before returning.
        let signed = sign_transaction(&tx, &self.settings.chain, key)
            .map_err(|e| SwapError::Rejected(format!("signing failed its self-check: {e}")))?;
        Ok(PreparedSwap {
            id: tx.id_for(&self.settings.chain, PackMode::Legacy).to_string(),
            expires_at,
            action,
            payload: transaction_to_json(&signed, &self.settings.chain),
        })
    }
}

impl Producer for GrapheneProducer {
    fn identity(&self) -> (String, String) {
        (self.settings.reader.account.clone(), self.settings.chain.name.clone())
    }

    fn target(&self) -> String {
        self.key_text(&self.settings.backup_key)
    }

    fn block_interval(&self) -> Duration {
        self.block_interval
    }

    async fn observe(&mut self) -> Observation {
        let poll = self.poll().await;
        match poll.best().cloned() {
            Some(best) => self.plan_slots(&best).await,
            None => {
                // Blind: no plan; the trap falls back to its poll interval until a fresh reading returns.
                self.next_look = None;
                self.watched_slot = None;
            }
        }
        // The highest fresh counter; ties go to the most advanced head.
        match poll.fresh.iter().max_by_key(|s| (s.witness.total_missed, s.head_block_number)) {
            Some(s) => Observation::Reading(self.reading(s)),
            None => Observation::Blind(Self::blind_reason(&poll)),
        }
    }

    fn next_look(&self) -> Option<u64> {
        self.next_look
    }

    fn watch_note(&self) -> String {
        self.watch_note.clone()
    }

    async fn corroborate(&mut self, first: &Reading, threshold: u64) -> Corroboration {
        let n = self.reader.endpoints().len();
        let first_ep = first.source_index;
        let others: Vec<usize> = (0..n).filter(|i| *i != first_ep).collect();
        if !others.is_empty() {
            // Another endpoint may be one block behind (a miss shows only once the next block is applied):
            // ask now, and once more a block later before calling it a contradiction.
            let mut last_contra = None;
            for round in 0..2 {
                if round == 1 {
                    self.reader.clock().sleep(self.block_interval).await;
                }
                let poll = self.reader.poll_some(&others).await;
                if let Some(s) = poll
                    .fresh
                    .iter()
                    .filter(|s| s.witness.total_missed >= threshold)
                    .max_by_key(|s| s.head_block_number)
                {
                    return Corroboration::Confirmed(self.reading(s));
                }
                if let Some(s) = poll.best() {
                    last_contra = Some(self.reading(s));
                }
            }
            if let Some(r) = last_contra {
                return Corroboration::Contradicted(r);
            }
            // No other endpoint is healthy: fall back to the single-source rule (issue 4: "otherwise by a
            // fresh read one block later"). A lying node whose peers are all down can therefore fire the
            // trap; the README says so under "What it does not protect against".
            tracing::warn!("no second endpoint is healthy; corroborating with the same endpoint one block later");
        }
        // One source: a fresh read one block later, with the head advanced.
        self.reader.clock().sleep(self.block_interval).await;
        let poll = self.reader.poll_some(&[first_ep]).await;
        match poll.fresh.first() {
            Some(s) if u64::from(s.head_block_number) > first.height && s.witness.total_missed >= threshold => {
                Corroboration::Confirmed(self.reading(s))
            }
            Some(s) if s.witness.total_missed < threshold => Corroboration::Contradicted(self.reading(s)),
            Some(s) => Corroboration::Blind(format!(
                "head did not advance past block {} (still {})",
                first.height, s.head_block_number
            )),
            None => Corroboration::Blind(Self::blind_reason(&poll)),
        }
    }

    async fn prepare_swap(&mut self) -> Result<PreparedSwap, SwapError> {
        let poll = self.poll().await;
        let best = poll.best().cloned().ok_or_else(|| SwapError::Transient(Self::blind_reason(&poll)))?;
        self.build_swap(&best)
    }

    async fn broadcast(&mut self, swap: &PreparedSwap) -> Result<(), SwapError> {
        let mut set = tokio::task::JoinSet::new();
        // Only endpoints that were fresh and on the right chain in the last poll (prepare_swap just polled).
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
        if accepted > 0 {
            Ok(())
        } else if let Some((first, _)) = refusals.first() {
            // Every endpoint that answered says op 42 cannot work (key mismatch or missing authority):
            // further attempts use op 11 if an active key is held.
            if swap.action == "witness_set_properties" && refusals.iter().all(|(_, impossible)| *impossible) {
                self.set_properties_refused = true;
            }
            Err(SwapError::Rejected(first.clone()))
        } else if failures.is_empty() {
            Err(SwapError::Transient("no fresh endpoint to broadcast to".into()))
        } else {
            Err(SwapError::Transient(failures.join("; ")))
        }
    }

    async fn swap_status(&mut self, expires_at: Option<u64>) -> SwapStatus {
        let poll = self.poll().await;
        let Some(best) = poll.best() else {
            return SwapStatus::Unknown(Self::blind_reason(&poll));
        };
        if self.parse_key(&best.witness.signing_key) == Some(self.settings.backup_key) {
            SwapStatus::InEffect
        } else if expires_at.is_some_and(|e| best.head_time >= e) {
            SwapStatus::Expired
        } else {
            SwapStatus::Pending
        }
    }
}
