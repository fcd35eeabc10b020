//! Slot-aware watching (`DETECTION=slots`): from the witness schedule, plan a look right after the block
//! that follows each of the witness's own slots, so a miss is seen about one block after it becomes visible.

use super::rpc::api;
use super::rpc::reading::Snapshot;
use super::{Detection, GrapheneProducer};
use crate::chain::ChainTime;
use graphene_protocol::transaction::TimePointSec;

impl GrapheneProducer {
    /// Plan the next look from the witness schedule (protocol.md §5.4, §6.1): the witness of the k-th slot
    /// after the head is `current_shuffled_witnesses[(current_aslot + k) % num_scheduled_witnesses]`, at
    /// head time + k intervals; a miss in it becomes visible when the next block is applied (§6.2), so the
    /// look is one interval after the slot plus a margin for the block to reach the RPC node.
    pub(super) async fn plan_slots(&mut self, best: &Snapshot) {
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
                self.next_look = Some(ChainTime::from_secs(planned.max(next_block) + margin));
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
            match api::witness_schedule_near(&ep, best.head_block_number).await {
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
            self.next_look =
                Some(ChainTime::from_secs(best.head_time.saturating_add(to_shuffle.saturating_mul(interval)) + margin));
            self.watch_note = "slots: the next slot is in the next round; looking again at the reshuffle".into();
            return;
        }
        let slot = best.head_time.saturating_add(k.saturating_mul(interval));
        self.watched_slot = Some(slot);
        self.next_look = Some(ChainTime::from_secs(slot.saturating_add(interval + margin)));
        self.watch_note =
            format!("slots: next slot of @{account} at {}", TimePointSec(u32::try_from(slot).unwrap_or(u32::MAX)));
    }

    /// The witness's turns around the head, from a fresh read and the witness schedule: how many blocks
    /// since its last slot and until its next one in this round (missed slots count: `current_aslot`
    /// advances with every slot).
    pub(super) async fn turns_now(&mut self) -> Result<crate::chain::Turns, String> {
        let poll = self.reader.poll().await;
        let best = poll.best().cloned().ok_or_else(|| {
            let why: Vec<String> = poll.skipped.iter().map(|s| format!("{}: {}", s.url, s.reason)).collect();
            format!("no endpoint gave a fresh reading ({})", why.join("; "))
        })?;
        let aslot = best.current_aslot.ok_or("the node does not report current_aslot")?;
        let stale = self.schedule.as_ref().is_none_or(|s| best.head_block_number >= s.next_shuffle_block_num);
        if stale {
            let ep = self.reader.endpoints()[best.endpoint].clone();
            let schedule = api::witness_schedule_near(&ep, best.head_block_number)
                .await
                .map_err(|e| format!("cannot read the witness schedule: {e}"))?;
            self.schedule = Some(schedule);
        }
        let schedule = self.schedule.as_ref().ok_or("no witness schedule")?;
        let num = u64::from(schedule.num_scheduled_witnesses).min(schedule.current_shuffled_witnesses.len() as u64);
        let num = num.max(1);
        let account = &self.settings.reader.account;
        let at = |slot: u64| {
            usize::try_from(slot % num).ok().and_then(|i| schedule.current_shuffled_witnesses.get(i)) == Some(account)
        };
        let until_reshuffle = u64::from(schedule.next_shuffle_block_num.saturating_sub(best.head_block_number));
        let until_next = (1..=num).find(|k| at(aslot + k)).filter(|k| *k <= until_reshuffle);
        // Only within this round: earlier slots belonged to the previous schedule.
        let into_round = num.saturating_sub(until_reshuffle);
        let since_last = (0..=into_round).find(|j| aslot >= *j && at(aslot - j));
        Ok(crate::chain::Turns {
            head: u64::from(best.head_block_number),
            head_time: ChainTime::from_secs(best.head_time),
            since_last,
            until_next,
            until_reshuffle,
            turn_blocks: 1,
        })
    }
}
