//! Hive and Steem (Graphene chains): the witness's `total_missed`, and the swap of its block signing key.
//!
//! Reading: every endpoint through [`rpc::reading::Reader`]; the observation is the highest fresh
//! `total_missed` (the most pessimistic honest answer), which [`Producer::corroborate`] then checks against an
//! independent endpoint, or the same endpoint one block later (protocol.md §6.2). Misses are counted from the
//! counter at arming ([`GrapheneBaseline`]).
//! Swapping: `witness_set_properties` (op 42) signed by the current signing key when the trap holds it and
//! it is the on-chain key, else `witness_update` (op 11) signed by the active key with url and props copied
//! unchanged from the chain (§4.3, §0 item 6). TaPoS and expiration come from the head block (§3.3, §3.4);
//! the legacy digest is signed on both chains (§1.4) and the signature is checked by recovery before
//! anything is broadcast. Slot-aware watching is in `slots.rs`.

pub mod blocks;
pub mod rpc;
mod slots;
mod swap;
mod trust;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    Baseline, ChainTime, Corroboration, EndpointHealth, Evidence, Finding, Identity, Observation, Preflight, Producer,
    Subject, SwapAttempt, SwapError, SwapStatus,
};
use chain_clock::SharedClock;
use graphene_protocol::chain::ChainSpec;
use graphene_protocol::keys::{PrivateKey, PublicKey};
use rpc::api;
use rpc::reading::{Poll, Reader, ReaderSettings, Snapshot};
use rpc::RpcError;

/// What a Hive/Steem trap records at arming: the witness's `total_missed` then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrapheneBaseline {
    pub total_missed: u64,
    /// Head block time at arming: a witness has at most one slot a round, so no honest count can grow
    /// faster than the rounds since then. Absent in states armed by version 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_time: Option<u64>,
}

impl Baseline for GrapheneBaseline {
    fn counter(&self) -> Option<u64> {
        Some(self.total_missed)
    }
    fn from_legacy_counter(counter: u64) -> Option<Self> {
        Some(Self { total_missed: counter, head_time: None })
    }
}

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
    /// `BACKUP_SIGNING_WIF`: the backup's signing key, which signs op 42 once the roles are swapped.
    pub backup_signing_key: Option<PrivateKey>,
    /// Every backup key in order (`BACKUP_SIGNING_KEYS`; the first is `backup_key` as configured).
    pub backups: Vec<PublicKey>,
    /// `DISABLE_AFTER_LAST_BACKUP`: after the last backup, the null key.
    pub disable_after_last: bool,
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
    next_look: Option<ChainTime>,
    watch_note: String,
    /// The search for the swap in blocks, and the TaPoS choice.
    search: swap::Search,
    /// Each endpoint's standing (strikes, untrusted) and what it said recently.
    standing: Vec<trust::Standing>,
    history: Vec<std::collections::VecDeque<(u64, u64)>>,
    /// For the operator, taken by the trap (`Producer::take_notices`).
    notices: Vec<String>,
    /// A crossing the endpoints dispute and the blocks have not settled, while it lasts.
    dispute: Option<String>,
    /// A planned switch swapped the roles: SIGNING_WIF (the primary's) is not expected to be on chain.
    roles_swapped: bool,
}

impl GrapheneProducer {
    pub fn new(settings: GrapheneSettings, clock: SharedClock) -> Result<Self, RpcError> {
        let reader = Reader::new(settings.reader.clone(), clock)?;
        let n = reader.endpoints().len();
        Ok(Self {
            search: swap::Search::default(),
            roles_swapped: false,
            standing: vec![trust::Standing::default(); n],
            history: vec![std::collections::VecDeque::new(); n],
            notices: Vec::new(),
            dispute: None,
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

    /// The signing WIF the trap holds for the on-chain key `on_chain` (`SIGNING_WIF`, or `BACKUP_SIGNING_WIF`
    /// once a planned switch made the backup's key current), never for the null key.
    fn signer_for(&self, on_chain: PublicKey) -> Option<&PrivateKey> {
        [&self.settings.signing_key, &self.settings.backup_signing_key]
            .into_iter()
            .flatten()
            .find(|k| k.public_key() == on_chain && !on_chain.is_null())
    }

    fn parse_key(&self, text: &str) -> Option<PublicKey> {
        PublicKey::from_text(text, &self.settings.chain.key_prefix).ok()
    }

    fn evidence(&self, s: &Snapshot, baseline: &GrapheneBaseline) -> Evidence {
        Evidence {
            misses: s.witness.total_missed.saturating_sub(baseline.total_missed),
            counter: Some(s.witness.total_missed),
            height: u64::from(s.head_block_number),
            chain_time: ChainTime::from_secs(s.head_time),
            source: s.url.clone(),
            source_index: s.endpoint,
            current_key: s.witness.signing_key.clone(),
        }
    }

    /// Read every endpoint; untrusted endpoints' answers are left out (as skipped, with the reason).
    async fn poll(&mut self) -> Poll {
        let mut poll = self.reader.poll().await;
        self.remember(&poll);
        self.apply_trust(&mut poll);
        self.last_poll = poll.clone();
        poll
    }

    /// Record a crossing that `contra` disputes and the blocks did not settle: the operator hears of it
    /// once, `health` reports it while it lasts.
    fn disputed(&mut self, claim: &Snapshot, contra: &Snapshot, why: &str) {
        let text = format!(
            "endpoints disagree: {} says total_missed {}, {} says {}; not firing on this ({why})",
            claim.url, claim.witness.total_missed, contra.url, contra.witness.total_missed
        );
        if self.dispute.is_none() {
            self.notices.push(text.clone());
        }
        self.dispute = Some(text);
    }

    /// Read some endpoints, with the same trust rules.
    async fn poll_some(&mut self, endpoints: &[usize]) -> Poll {
        let mut poll = self.reader.poll_some(endpoints).await;
        self.remember(&poll);
        self.apply_trust(&mut poll);
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
    async fn check_chain(&mut self) -> (Option<Snapshot>, Vec<Finding>) {
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
                    if let Ok(secs) = api::block_interval(&ep).await {
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
                    subject: Subject::Producer,
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
        // The null key is a target only at the very end of ordered backups (DISABLE_AFTER_LAST_BACKUP).
        if backup.is_null() && !(self.roles_swapped && self.settings.disable_after_last) {
            findings.push(Finding {
                subject: Subject::Target,
                fatal: true,
                message: "is the null key, which disables the witness instead of failing over".into(),
                fix: "set it to the public signing key of the backup node".into(),
            });
        }
        if on_chain == Some(backup) {
            findings.push(Finding {
                subject: Subject::Target,
                fatal: true,
                message: "equals the witness's current on-chain signing key: the swap would change nothing (if the trap \
                          was armed, it may have fired without recording it, e.g. on a full disk)"
                    .into(),
                fix: "set it to the backup node's key, not the primary's (if the backup already produces, fix the primary and rearm later)".into(),
            });
        }
        let signing_ok = match (on_chain.and_then(|cur| self.signer_for(cur)), &self.settings.signing_key) {
            (Some(_), _) => true,
            // Swapped roles with only ACTIVE_WIF to swap back: the primary's key is expected off chain.
            (None, Some(_)) if self.roles_swapped && self.settings.active_key.is_some() => false,
            (None, Some(k)) => {
                findings.push(Finding {
                    subject: Subject::SwapKey,
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
            (None, None) => false,
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
                            subject: Subject::FallbackKey,
                            fatal: true,
                            message: format!(
                                "has weight {w} in the active authority, which needs {}",
                                acc.active.weight_threshold
                            ),
                            fix: "give a key that can sign for the active authority alone".into(),
                        }),
                        None => findings.push(Finding {
                            subject: Subject::FallbackKey,
                            fatal: true,
                            message: format!("belongs to {text}, which is not in @{}'s active authority", acc.name),
                            fix: "give the account's active private key (not owner, posting or memo)".into(),
                        }),
                    }
                }
                Ok(None) => findings.push(Finding {
                    subject: Subject::Producer,
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
                subject: Subject::SwapKey,
                fatal: true,
                message: "no key to sign the swap with".into(),
                fix: "set SIGNING_WIF (preferred: it cannot move funds) or ACTIVE_WIF".into(),
            });
        } else if !signing_ok && !active_ok && on_chain.is_some_and(|k| k.is_null()) {
            findings.push(Finding {
                subject: Subject::FallbackKey,
                fatal: true,
                message: "the on-chain signing key is the null key (witness disabled): only the active key can swap"
                    .into(),
                fix: "set ACTIVE_WIF".into(),
            });
        }
        // Finally, build (never broadcast) the swap from live data: whatever would stop it at 4 a.m. shows now.
        if !findings.iter().any(|f| f.fatal) {
            if let Err(e) = self.build_from_head(&best) {
                findings.push(Finding {
                    subject: if self.settings.signing_key.is_some() { Subject::SwapKey } else { Subject::FallbackKey },
                    fatal: true,
                    message: format!("the swap cannot be built from the chain's data: {e}"),
                    fix: "check CHAIN/CHAIN_ID and the keys; `witness-trap fire --dry-run` shows the swap".into(),
                });
            }
        }
        (Some(best), findings)
    }
}

impl Producer for GrapheneProducer {
    type Baseline = GrapheneBaseline;

    fn identity(&self) -> Identity {
        Identity { producer: self.settings.reader.account.clone(), chain: self.settings.chain.name.clone() }
    }

    fn target(&self) -> String {
        self.key_text(&self.settings.backup_key)
    }

    fn assume_roles(&mut self, current: &str, backup: &str) -> Result<(), String> {
        let parse = |what: &str, text: &str| {
            self.parse_key(text).ok_or_else(|| format!("the state's {what} key {text:?} is not a key of this chain"))
        };
        let (current, backup) = (parse("current", current)?, parse("backup", backup)?);
        if self.signer_for(current).is_none() && self.settings.active_key.is_none() {
            return Err(format!(
                "a planned switch made {} the current key, and the trap holds no key to swap back from it: set \
                 BACKUP_SIGNING_WIF (the WIF of that key) or ACTIVE_WIF",
                self.key_text(&current)
            ));
        }
        self.settings.backup_key = backup;
        self.roles_swapped = true;
        Ok(())
    }

    fn block_interval(&self) -> Duration {
        self.block_interval
    }

    async fn preflight(&mut self) -> Preflight<GrapheneBaseline> {
        let (best, findings) = self.check_chain().await;
        let mut endpoints: Vec<EndpointHealth> = self
            .last_poll
            .fresh
            .iter()
            .map(|s| EndpointHealth { url: s.url.clone(), health: Ok(u64::from(s.head_block_number)) })
            .collect();
        endpoints.extend(
            self.last_poll.skipped.iter().map(|s| EndpointHealth { url: s.url.clone(), health: Err(s.reason.clone()) }),
        );
        let summary = best.as_ref().map(|b| {
            format!(
                "@{} on-chain key {}, total_missed {}; the trap can sign the swap to {}",
                b.witness.owner,
                b.witness.signing_key,
                b.witness.total_missed,
                self.target()
            )
        });
        let reading = best.map(|b| {
            let baseline = GrapheneBaseline { total_missed: b.witness.total_missed, head_time: Some(b.head_time) };
            (self.evidence(&b, &baseline), baseline)
        });
        Preflight { reading, findings, endpoints, summary }
    }

    async fn dry_run(&mut self) -> Result<SwapAttempt, SwapError> {
        // The very swap the trap would send now (agreed TaPoS, agreed url and props), never broadcast.
        self.prepare_swap().await
    }

    async fn observe(&mut self, baseline: &GrapheneBaseline) -> Observation {
        let poll = self.poll().await;
        match poll.best().cloned() {
            Some(best) => self.plan_slots(&best).await,
            None => {
                // Blind: no plan; the trap falls back to its poll interval until a fresh reading returns.
                self.next_look = None;
                self.watched_slot = None;
            }
        }
        // A dispute ends when every fresh endpoint gives the same count again.
        if self.dispute.is_some() {
            let mut counts = poll.fresh.iter().map(|s| s.witness.total_missed);
            if let Some(c) = counts.next() {
                if counts.all(|x| x == c) {
                    tracing::info!("the endpoints agree on total_missed again");
                    self.dispute = None;
                }
            }
        }
        // The highest fresh counter; ties go to the most advanced head.
        match poll.fresh.iter().max_by_key(|s| (s.witness.total_missed, s.head_block_number)) {
            Some(s) => Observation::Reading(self.evidence(s, baseline)),
            None => Observation::Blind(Self::blind_reason(&poll)),
        }
    }

    fn next_look(&self) -> Option<ChainTime> {
        self.next_look
    }

    fn watch_note(&self) -> String {
        self.watch_note.clone()
    }

    fn counter_name(&self) -> &'static str {
        "total_missed"
    }

    fn calls(&self) -> u64 {
        self.reader.calls()
    }

    async fn turns(&mut self) -> Result<crate::chain::Turns, String> {
        self.turns_now().await
    }

    fn take_endpoint_stats(&mut self) -> Vec<crate::chain::EndpointStat> {
        self.reader.take_endpoint_stats()
    }

    fn endpoint_urls(&self) -> Vec<String> {
        self.reader.endpoints().iter().map(|e| e.url().to_string()).collect()
    }

    async fn corroborate(&mut self, first: &Evidence, baseline: &GrapheneBaseline, allowed: u64) -> Corroboration {
        let threshold = baseline.total_missed.saturating_add(allowed);
        let n = self.reader.endpoints().len();
        let first_ep = first.source_index;
        let others: Vec<usize> = (0..n).filter(|i| *i != first_ep && !self.is_untrusted(*i)).collect();
        if !others.is_empty() {
            // Another endpoint may be one block behind (a miss shows only once the next block is applied):
            // ask now, and once more a block later before calling it a contradiction.
            let mut last_contra: Option<Snapshot> = None;
            for round in 0..2 {
                if round == 1 {
                    self.reader.clock().sleep(self.block_interval).await;
                }
                let poll = self.poll_some(&others).await;
                if let Some(s) = poll
                    .fresh
                    .iter()
                    .filter(|s| s.witness.total_missed >= threshold)
                    .max_by_key(|s| s.head_block_number)
                {
                    return Corroboration::Confirmed(self.evidence(s, baseline));
                }
                if let Some(s) = poll.best() {
                    last_contra = Some(s.clone());
                }
            }
            if let Some(contra) = last_contra {
                // One endpoint's word against another's: the blocks settle it.
                let Some(claim) = self.last_poll.fresh.iter().find(|s| s.endpoint == first_ep).cloned() else {
                    return Corroboration::Contradicted(self.evidence(&contra, baseline));
                };
                return match self.settle(&claim, &contra, baseline, threshold).await {
                    trust::Settlement::Confirmed => {
                        tracing::warn!(contradicted_by = %contra.url, "the blocks prove the miss: the crossing stands");
                        self.dispute = None;
                        Corroboration::Confirmed(self.evidence(&claim, baseline))
                    }
                    trust::Settlement::NotProven(reason) => {
                        tracing::warn!(%reason, "the blocks do not prove the crossing");
                        self.disputed(&claim, &contra, &reason);
                        Corroboration::Contradicted(self.evidence(&contra, baseline))
                    }
                    trust::Settlement::Unknown(why) => {
                        self.disputed(&claim, &contra, &why);
                        Corroboration::Blind(format!(
                            "{} contradicts {}, and the blocks cannot settle it yet: {why}",
                            contra.url, claim.url
                        ))
                    }
                };
            }
            // No other endpoint is healthy: fall back to the single-source rule (issue 4: "otherwise by a
            // fresh read one block later"). A lying node whose peers are all down can therefore fire the
            // trap; the README says so under "What it does not protect against".
            tracing::warn!("no second endpoint is healthy; corroborating with the same endpoint one block later");
        }
        // One source: a fresh read one block later, with the head advanced.
        self.reader.clock().sleep(self.block_interval).await;
        let poll = self.poll_some(&[first_ep]).await;
        match poll.fresh.first() {
            Some(s) if u64::from(s.head_block_number) > first.height && s.witness.total_missed >= threshold => {
                Corroboration::Confirmed(self.evidence(s, baseline))
            }
            Some(s) if s.witness.total_missed < threshold => Corroboration::Contradicted(self.evidence(s, baseline)),
            Some(s) => Corroboration::Blind(format!(
                "head did not advance past block {} (still {})",
                first.height, s.head_block_number
            )),
            None => Corroboration::Blind(Self::blind_reason(&poll)),
        }
    }

    async fn prepare(&mut self) -> Result<SwapAttempt, SwapError> {
        self.prepare_swap().await
    }

    async fn execute(&mut self, swap: &SwapAttempt) -> Result<(), SwapError> {
        self.execute_swap(swap).await
    }

    async fn status(&mut self, attempts: &[String], expires_at: Option<ChainTime>) -> SwapStatus {
        self.confirm(attempts, expires_at).await
    }

    fn take_notices(&mut self) -> Vec<String> {
        self.notices.extend(self.reader.take_notices());
        std::mem::take(&mut self.notices)
    }

    fn troubles(&self) -> Vec<String> {
        let mut t = self.untrusted_troubles();
        t.extend(self.reader.troubles());
        t.extend(self.dispute.clone());
        t
    }
}
