//! Which endpoints to believe, decided by evidence and never in silence.
//!
//! When a fresh endpoint contradicts a crossing (it reports a lower `total_missed`), the blocks settle it:
//! the witness's last slot, read from both endpoints ([`super::blocks::slot_evidence`]), either holds a block
//! the witness signed or holds none. The endpoint whose claim the blocks refute gets a strike; after
//! [`STRIKES_TO_DISTRUST`] strikes it is **untrusted**: its answers are left out of every reading (so it can
//! neither fire the trap nor stop it), it is named in the log, in an alert, in `status` and by `health`.
//! It is trusted again after [`AGREEMENTS_TO_TRUST`] consecutive answers that match the trusted endpoints.

use super::blocks::{self, SlotEvidence};
use super::rpc::reading::{Poll, Skip, Snapshot};
use super::GrapheneProducer;

/// Strikes after which an endpoint is untrusted.
pub const STRIKES_TO_DISTRUST: u32 = 2;
/// Consecutive agreeing answers after which an untrusted endpoint is trusted again.
pub const AGREEMENTS_TO_TRUST: u32 = 3;
/// Readings remembered per endpoint (with a look every slot, more than a round).
const HISTORY: usize = 64;

/// One endpoint's standing.
#[derive(Debug, Clone, Default)]
pub(super) struct Standing {
    pub strikes: u32,
    pub untrusted: bool,
    pub agreements: u32,
    /// Why it was last struck.
    pub reason: String,
}

/// How a contradicted crossing was settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Settlement {
    /// The blocks show the witness missed its last slot, and the contradicting endpoint's own count plus
    /// that miss reaches the threshold: the crossing is real.
    Confirmed,
    /// The blocks side with one of them, but the crossing is not proven.
    NotProven(String),
    /// The blocks could not settle it this time.
    Unknown(String),
}

impl GrapheneProducer {
    /// Leave untrusted endpoints' answers out of `poll` (as skipped, with the reason), and count the
    /// agreement of each untrusted endpoint with the trusted ones toward its recovery.
    pub(super) fn apply_trust(&mut self, poll: &mut Poll) {
        if self.standing.iter().all(|s| !s.untrusted) {
            return;
        }
        let trusted_best = poll
            .fresh
            .iter()
            .filter(|s| !self.is_untrusted(s.endpoint))
            .map(|s| (s.witness.total_missed, s.witness.signing_key.clone()))
            .max();
        let (kept, left): (Vec<Snapshot>, Vec<Snapshot>) =
            poll.fresh.drain(..).partition(|s| !self.is_untrusted(s.endpoint));
        poll.fresh = kept;
        for s in left {
            let agrees = trusted_best
                .as_ref()
                .is_some_and(|(missed, key)| s.witness.total_missed == *missed && s.witness.signing_key == *key);
            let url = s.url.clone();
            let Some(st) = self.standing.get_mut(s.endpoint) else { continue };
            st.agreements = if agrees { st.agreements + 1 } else { 0 };
            if st.agreements >= AGREEMENTS_TO_TRUST {
                *st = Standing::default();
                let text = format!("endpoint {url} agrees with the others again: trusted again");
                tracing::warn!(endpoint = %url, "{text}");
                self.notices.push(text);
            } else {
                poll.skipped.push(Skip { url, reason: format!("untrusted: {}", st.reason) });
            }
        }
    }

    /// Remember what each endpoint said, for [`Self::counter_before`].
    pub(super) fn remember(&mut self, poll: &Poll) {
        for s in &poll.fresh {
            if let Some(h) = self.history.get_mut(s.endpoint) {
                if h.back().is_some_and(|(_, t)| *t >= s.head_time) {
                    continue;
                }
                h.push_back((s.witness.total_missed, s.head_time));
                while h.len() > HISTORY {
                    h.pop_front();
                }
            }
        }
    }

    /// The last `(total_missed, head time)` `endpoint` gave with its head before `time`.
    fn counter_before(&self, endpoint: usize, time: u64) -> Option<(u64, u64)> {
        self.history.get(endpoint)?.iter().rev().find(|(_, t)| *t < time).copied()
    }

    pub(super) fn is_untrusted(&self, endpoint: usize) -> bool {
        self.standing.get(endpoint).is_some_and(|s| s.untrusted)
    }

    /// A strike against `endpoint`; the one that makes it untrusted is alerted.
    pub(super) fn strike(&mut self, endpoint: usize, url: &str, reason: String) {
        let Some(st) = self.standing.get_mut(endpoint) else { return };
        st.strikes += 1;
        st.reason = reason.clone();
        tracing::warn!(endpoint = %url, strikes = st.strikes, %reason, "endpoint contradicts the blocks");
        if !st.untrusted && st.strikes >= STRIKES_TO_DISTRUST {
            st.untrusted = true;
            st.agreements = 0;
            let text = format!("endpoint {url} is UNTRUSTED: {reason}; its answers are ignored until it agrees again");
            tracing::error!(endpoint = %url, "{text}");
            self.notices.push(text);
        }
    }

    pub(super) fn untrusted_troubles(&self) -> Vec<String> {
        self.reader
            .endpoints()
            .iter()
            .zip(&self.standing)
            .filter(|(_, s)| s.untrusted)
            .map(|(ep, s)| format!("endpoint {} untrusted ({})", ep.url(), s.reason))
            .collect()
    }

    /// Settle `first` (at or past `threshold`) against `contra` (below it) with the blocks of the witness's
    /// last slot, read from both.
    pub(super) async fn settle(
        &mut self,
        first: &Snapshot,
        contra: &Snapshot,
        baseline: &super::GrapheneBaseline,
        threshold: u64,
    ) -> Settlement {
        let account = self.settings.reader.account.clone();
        let interval = self.block_interval.as_secs().max(1);
        // A witness has one slot a round: more misses since arming than rounds since then cannot be true.
        if let Some(armed) = baseline.head_time {
            let rounds = first.head_time.saturating_sub(armed) / (interval * 21) + 1;
            let claimed = first.witness.total_missed.saturating_sub(baseline.total_missed);
            if claimed > rounds {
                let reason = format!(
                    "it claims {claimed} misses since arming, but @{account} had at most {rounds} slots since then"
                );
                self.strike(first.endpoint, &first.url, reason.clone());
                return Settlement::NotProven(reason);
            }
        }
        let schedule = match &self.schedule {
            Some(s) => s.clone(),
            None => {
                let Some(ep) = self.reader.endpoints().get(first.endpoint).cloned() else {
                    return Settlement::Unknown("no endpoint".into());
                };
                match super::rpc::api::witness_schedule_near(&ep, first.head_block_number).await {
                    Ok(s) => s,
                    Err(e) => return Settlement::Unknown(format!("cannot read the witness schedule: {e}")),
                }
            }
        };
        // Judge on the view both endpoints have: the lower head.
        let view = if contra.head_block_number < first.head_block_number { contra } else { first };
        let Some((k, slot_time)) = blocks::last_slot(view, &schedule, &account, interval) else {
            return Settlement::Unknown(format!("@{account}'s last slot is not in this round; looking again later"));
        };
        let sources: Vec<_> =
            [first.endpoint, contra.endpoint].iter().filter_map(|i| self.reader.endpoints().get(*i).cloned()).collect();
        let refs: Vec<&_> = sources.iter().map(|e| e.as_ref()).collect();
        let evidence = blocks::slot_evidence(&refs, &account, view.head_block_number, k, slot_time).await;
        let round = u64::from(schedule.num_scheduled_witnesses).max(1) * interval;
        match evidence {
            SlotEvidence::Missed { slot_time } => match self.counter_before(contra.endpoint, slot_time) {
                // Its count did not move across a missed slot the blocks show: its witness data lags.
                Some((before, _)) if before == contra.witness.total_missed => {
                    let reason = format!(
                        "its total_missed {} does not count @{account}'s missed slot at {slot_time} that the blocks show",
                        contra.witness.total_missed
                    );
                    self.strike(contra.endpoint, &contra.url, reason);
                    if contra.witness.total_missed.saturating_add(1) >= threshold {
                        Settlement::Confirmed
                    } else {
                        Settlement::NotProven(format!(
                            "the blocks prove one more miss than {} counts, not enough to reach the threshold",
                            contra.url
                        ))
                    }
                }
                // It counted the miss and still says less: the higher claim is the unproven one.
                Some(_) => {
                    let reason = format!(
                        "it claims total_missed {} while {}, which counted the last missed slot, says {}",
                        first.witness.total_missed, contra.url, contra.witness.total_missed
                    );
                    self.strike(first.endpoint, &first.url, reason.clone());
                    Settlement::NotProven(reason)
                }
                None => Settlement::Unknown(format!("no earlier reading of {} to compare with", contra.url)),
            },
            SlotEvidence::Produced { block, .. } => {
                let reason = format!(
                    "it claims total_missed {} while @{account} signed its last slot (block {block})",
                    first.witness.total_missed
                );
                // A count that rose across a produced slot, with no other slot of the witness in between
                // (the earlier reading is less than a round before it), is refuted by the blocks.
                if let Some((before, at)) = self.counter_before(first.endpoint, slot_time) {
                    if before < first.witness.total_missed && slot_time.saturating_sub(at) < round {
                        self.strike(first.endpoint, &first.url, reason.clone());
                    }
                }
                Settlement::NotProven(reason)
            }
            SlotEvidence::Unknown(why) => Settlement::Unknown(why),
        }
    }
}
