//! Where an Antelope producer stands in the active schedule, for a planned switch (`witness-trap switch`).
//!
//! A producer signs 12 consecutive slots per round of 12 × n slots (n producers, in schedule order). A turn
//! counts as the producer's last slot of its 12: "right after its own block" is right after its turn ends,
//! which leaves the most room (a whole round less one turn) before its next one. A pending or proposed
//! schedule takes over at a round boundary, so a turn past the end of the round is not known yet.

use antelope_protocol::schedule::{slot_of_unix_ms, BLOCKS_PER_TURN};

use super::follow::Seat;
use super::AntelopeProducer;
use crate::chain::{ChainTime, Turns};

/// The producer's turns seen from the head slot `head_slot` (block `head`), for its `seat` in the active
/// schedule (`None`: not in it); `changing`: a pending or proposed schedule may take over at the round's end.
pub fn turns_at(head: u64, head_time: ChainTime, head_slot: u64, seat: Option<&Seat>, changing: bool) -> Turns {
    let unseated = |producers: usize| {
        let round = BLOCKS_PER_TURN * producers.max(1) as u64;
        Turns {
            head,
            head_time,
            since_last: None,
            until_next: None,
            until_reshuffle: round - head_slot % round,
            turn_blocks: BLOCKS_PER_TURN,
        }
    };
    let Some(seat) = seat else { return unseated(21) };
    let round = BLOCKS_PER_TURN * seat.producers.max(1) as u64;
    let pos = head_slot % round;
    let start = seat.index as u64 * BLOCKS_PER_TURN;
    // Slots since the start of its current or last turn.
    let offset = (pos + round - start) % round;
    let last = BLOCKS_PER_TURN - 1;
    let (since_last, until_next) = if offset < last { (None, 1) } else { (Some(offset - last), round - offset) };
    let until_round_end = round - pos;
    let until_reshuffle = if changing { until_round_end } else { until_round_end + round };
    Turns {
        head,
        head_time,
        since_last,
        until_next: (until_next <= until_reshuffle).then_some(until_next),
        until_reshuffle,
        turn_blocks: BLOCKS_PER_TURN,
    }
}

impl AntelopeProducer {
    /// [`turns_at`] from the leading endpoint's head and its schedule, read fresh.
    pub(super) async fn turns_now(&mut self) -> Result<Turns, String> {
        self.poll().await;
        let Some(&ep) = self.fresh().first() else { return Err(self.blind_reason()) };
        let info = self.head(ep).cloned().ok_or_else(|| "no head block".to_string())?;
        let seat = self.seat(ep, true).await?;
        let changing = self.schedules.as_ref().is_some_and(|s| s.pending.is_some() || s.proposed.is_some());
        Ok(turns_at(
            info.head_num,
            ChainTime::from_millis(info.head_time_ms),
            slot_of_unix_ms(info.head_time_ms),
            seat.as_ref(),
            changing,
        ))
    }

    /// Whether the active schedule carries the target key.
    pub(super) async fn target_in_active_schedule(&mut self) -> Result<bool, String> {
        self.poll().await;
        let Some(&ep) = self.fresh().first() else { return Err(self.blind_reason()) };
        self.seat(ep, true).await?;
        let keys = self.schedules.as_ref().and_then(|s| s.active.keys_of(&self.settings.producer).map(<[_]>::to_vec));
        Ok(keys.is_some_and(|k| self.has_backup(&k)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(index: usize) -> Seat {
        Seat { index, producers: 21, version: 1 }
    }

    fn at(slot: u64, index: usize, changing: bool) -> Turns {
        turns_at(1000, ChainTime::from_secs(5), slot, Some(&seat(index)), changing)
    }

    #[test]
    fn a_turn_is_twelve_slots_and_its_end_is_the_safe_moment() {
        let round = 12 * 21;
        // Producer 2 owns slots 24..=35 of each round.
        let t = at(round * 10 + 35, 2, false);
        assert_eq!((t.since_last, t.until_next), (Some(0), Some(round - 11)), "its last slot: {t:?}");
        let t = at(round * 10 + 36, 2, false);
        assert_eq!((t.since_last, t.until_next), (Some(1), Some(round - 12)), "one after: {t:?}");
        let t = at(round * 10 + 30, 2, false);
        assert_eq!((t.since_last, t.until_next), (None, Some(1)), "inside its turn: {t:?}");
        let t = at(round * 10 + 23, 2, false);
        assert_eq!(t.until_next, Some(1), "the slot before its turn: {t:?}");
        assert_eq!(t.since_last, Some(round - 12));
        assert_eq!(t.turn_blocks, 12);
        assert!(crate::service::switch::is_safe(&at(round * 10 + 35, 2, false)));
        assert!(!crate::service::switch::is_safe(&at(round * 10 + 30, 2, false)));
    }

    #[test]
    fn a_changing_schedule_hides_turns_past_the_round() {
        let round = 12 * 21;
        // Producer 0's last slot is 11; its next turn starts the next round, exactly at the boundary.
        let t = at(round * 3 + 11, 0, true);
        assert_eq!(t.until_reshuffle, round - 11);
        assert_eq!(t.until_next, Some(round - 11), "its next turn starts right at the boundary");
        // Producer 20's turn is the round's last; seen from slot 30 with a change coming, it is still this round.
        let t = at(round * 3 + 30, 20, true);
        assert_eq!(t.until_next, Some(240 - 30));
        // Unseated: no turn at all.
        let t = turns_at(1, ChainTime::from_secs(1), 5, None, false);
        assert_eq!((t.since_last, t.until_next), (None, None));
        assert!(crate::service::switch::is_safe(&t));
    }
}
