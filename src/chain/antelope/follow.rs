//! Counting the producer's missed slots from block headers, slot-exactly (antelope-chain.md §1.3).
//!
//! Antelope keeps no missed-block counter. Each 0.5 s slot belongs to the producer the active schedule names
//! for it (`antelope_protocol::schedule::scheduled_index`); for consecutive blocks *b*, *b+1*, every slot
//! strictly between their timestamps was missed by its producer. The [`Follower`] walks the chain block by
//! block only where the producer has a slot (elsewhere it jumps to the head: nothing there can be its miss),
//! checks that each block's `previous` is the block before it, and records every gap in the producer's
//! slots as a [`Gap`] bounded by the two blocks around it.
//!
//! A fork (a microfork, a late block that replaced a gap, a switch to an endpoint on another branch) shows
//! as a `previous` that is not our block: [`Follower::rewind`] drops every gap recorded after the common
//! ancestor, so a replaced gap is never counted, and a gap seen on two branches is counted once. The gap's
//! bounding blocks are what another endpoint is asked about to corroborate it.

use std::collections::VecDeque;

use super::api::{Header, Info};
use antelope_protocol::schedule::{scheduled_index, slot_of_unix_ms};

/// Blocks kept behind the cursor to find a fork's common ancestor: deeper than any microfork; a deeper
/// divergence re-anchors at the head instead (those blocks are final long since).
pub const DEPTH: usize = 64;
/// Most headers read in one look: a trap that fell this far behind jumps to the head and says so.
pub const MAX_FETCH: u64 = 48;
/// Most gaps remembered: misses beyond this many gaps are still counted (in `dropped`), only their blocks
/// are forgotten, and the trap fires long before.
const MAX_GAPS: usize = 4096;

/// One block the follower has walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub num: u64,
    pub id: [u8; 32],
    pub slot: u64,
}

impl Mark {
    pub fn of_header(h: &Header) -> Self {
        Self { num: h.num, id: h.id, slot: slot_of_unix_ms(h.time_ms) }
    }

    pub fn of_head(i: &Info) -> Self {
        Self { num: i.head_num, id: i.head_id, slot: slot_of_unix_ms(i.head_time_ms) }
    }
}

/// The producer's slots missed between two consecutive blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub after: Mark,
    pub before: Mark,
    /// The producer's missed slots, ascending.
    pub slots: Vec<u64>,
    /// The active schedule's version the slots were attributed by.
    pub schedule_version: u32,
    /// Another endpoint (or the same one later) has the same two blocks.
    pub corroborated: bool,
}

/// What the next look should read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Nothing followed yet, or the cursor is far behind: start at the head.
    Anchor,
    /// No slot of the producer lies between the cursor and the head: move the cursor to the head.
    Jump,
    /// Read these headers in order.
    Fetch { from: u64, to: u64 },
    /// The head is at (or behind) the cursor.
    Wait,
}

/// A header that does not continue the followed chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// Its `previous` is not our block at `num − 1`: a fork.
    Fork { num: u64 },
    /// Its time is not after its predecessor's: a malformed answer.
    Time { num: u64 },
}

/// The producer's schedule position, as the follower needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seat {
    pub index: usize,
    pub producers: usize,
    pub version: u32,
}

impl Seat {
    pub fn owns(&self, slot: u64) -> bool {
        scheduled_index(slot, self.producers) == self.index
    }

    /// The producer's slots strictly between `a` and `b`.
    pub fn slots_between(&self, a: u64, b: u64) -> Vec<u64> {
        if b <= a.saturating_add(1) {
            return Vec::new();
        }
        // A gap longer than a few rounds is a halted chain, not this producer's miss alone; cap the scan.
        let end = b.min(a.saturating_add(1 + 4 * 12 * self.producers as u64));
        (a + 1..end).filter(|s| self.owns(*s)).collect()
    }

    /// The producer's first slot after `slot`.
    pub fn next_slot_after(&self, slot: u64) -> u64 {
        let round = 12 * self.producers as u64;
        let start = slot + 1;
        let pos = start % round;
        let turn = 12 * self.index as u64;
        if pos >= turn && pos < turn + 12 {
            start
        } else if pos < turn {
            start + (turn - pos)
        } else {
            start + (round - pos) + turn
        }
    }
}

/// The walk along the chain and the gaps found since arming.
#[derive(Debug, Default)]
pub struct Follower {
    recent: VecDeque<Mark>,
    gaps: Vec<Gap>,
    /// Misses of gaps forgotten for [`MAX_GAPS`].
    dropped: u64,
}

impl Follower {
    pub fn cursor(&self) -> Option<Mark> {
        self.recent.back().copied()
    }

    /// Misses counted since arming.
    pub fn misses(&self) -> u64 {
        self.dropped + self.gaps.iter().map(|g| g.slots.len() as u64).sum::<u64>()
    }

    pub fn gaps(&self) -> &[Gap] {
        &self.gaps
    }

    /// What to read next, given the leader's head and the producer's seat (none: it has no slots).
    pub fn plan(&self, head: &Info, seat: Option<Seat>) -> Plan {
        let Some(cur) = self.cursor() else { return Plan::Anchor };
        if head.head_num <= cur.num {
            return Plan::Wait;
        }
        let head_slot = slot_of_unix_ms(head.head_time_ms);
        let ours = seat.is_some_and(|s| !s.slots_between(cur.slot, head_slot).is_empty());
        if !ours {
            Plan::Jump
        } else if head.head_num - cur.num > MAX_FETCH {
            Plan::Anchor
        } else {
            Plan::Fetch { from: cur.num + 1, to: head.head_num }
        }
    }

    /// Start (again) at `mark`, forgetting the walk but not the gaps.
    pub fn anchor(&mut self, mark: Mark) {
        self.recent.clear();
        self.recent.push_back(mark);
    }

    /// Forget the walk (the next look anchors at the head); the gaps stay.
    pub fn reset_walk(&mut self) {
        self.recent.clear();
    }

    /// Move to the head without reading the blocks between (no slot of the producer lies there).
    pub fn jump(&mut self, mark: Mark) {
        self.push(mark);
    }

    fn push(&mut self, mark: Mark) {
        self.recent.push_back(mark);
        while self.recent.len() > DEPTH {
            self.recent.pop_front();
        }
    }

    /// Walk one header; returns the new gap's misses (0 if none).
    pub fn step(&mut self, h: &Header, seat: Option<Seat>) -> Result<u64, Break> {
        let mark = Mark::of_header(h);
        let Some(cur) = self.cursor() else {
            self.anchor(mark);
            return Ok(0);
        };
        if h.num != cur.num + 1 || h.previous != cur.id {
            return Err(Break::Fork { num: h.num });
        }
        if mark.slot <= cur.slot {
            return Err(Break::Time { num: h.num });
        }
        self.push(mark);
        let Some(seat) = seat else { return Ok(0) };
        let slots = seat.slots_between(cur.slot, mark.slot);
        if slots.is_empty() {
            return Ok(0);
        }
        let n = slots.len() as u64;
        self.gaps.push(Gap { after: cur, before: mark, slots, schedule_version: seat.version, corroborated: false });
        if self.gaps.len() > MAX_GAPS {
            let old = self.gaps.remove(0);
            self.dropped += old.slots.len() as u64;
        }
        Ok(n)
    }

    /// Our block at `num`, if it is still in the walk.
    pub fn mark_at(&self, num: u64) -> Option<Mark> {
        self.recent.iter().rev().find(|m| m.num == num).copied()
    }

    /// The chain is the same up to `ancestor` (a block of our walk): forget everything after it, and every
    /// gap ended by a block after it. Returns the misses dropped.
    pub fn rewind(&mut self, ancestor: u64) -> u64 {
        while self.recent.back().is_some_and(|m| m.num > ancestor) {
            self.recent.pop_back();
        }
        self.drop_gaps_where(|g| g.before.num > ancestor)
    }

    /// Forget gaps matching `f` (refuted by another endpoint, or attributed by a schedule that changed).
    pub fn drop_gaps_where(&mut self, f: impl Fn(&Gap) -> bool) -> u64 {
        let before = self.misses();
        self.gaps.retain(|g| !f(g));
        before - self.misses()
    }

    pub fn gaps_mut(&mut self) -> &mut [Gap] {
        &mut self.gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use antelope_protocol::schedule::unix_ms_of_slot;

    /// 3 producers; ours is index 1: slots 12..24 of each 36.
    const SEAT: Seat = Seat { index: 1, producers: 3, version: 1 };

    fn id(num: u64, fork: u8) -> [u8; 32] {
        let mut id = [fork; 32];
        id[..4].copy_from_slice(&(num as u32).to_be_bytes());
        id
    }

    fn header(num: u64, slot: u64, fork: u8, prev_fork: u8) -> Header {
        Header {
            num,
            id: id(num, fork),
            previous: id(num - 1, prev_fork),
            time_ms: unix_ms_of_slot(slot),
            producer: String::new(),
        }
    }

    fn walk(f: &mut Follower, blocks: &[(u64, u64)]) -> u64 {
        blocks.iter().map(|&(n, s)| f.step(&header(n, s, 0, 0), Some(SEAT)).expect("continues")).sum()
    }

    #[test]
    fn gaps_in_the_producers_slots_are_its_misses_and_others_are_not() {
        let mut f = Follower::default();
        f.anchor(Mark::of_header(&header(100, 3600 + 10, 0, 0)));
        // Slots 3611 (ours? 3611 % 36 = 11: no), 3612..3623 ours. Produce 3611, miss 3612-3614, produce the rest.
        let mut blocks = vec![(101, 3611)];
        let mut n = 102;
        for s in 3615..3624 {
            blocks.push((n, s));
            n += 1;
        }
        assert_eq!(walk(&mut f, &blocks), 3);
        assert_eq!(f.gaps()[0].slots, vec![3612, 3613, 3614]);
        // Another producer's miss (slot 3624 of index 2) is not ours.
        assert_eq!(walk(&mut f, &[(n, 3625)]), 0);
        assert_eq!(f.misses(), 3);
    }

    #[test]
    fn a_replaced_gap_is_dropped_on_rewind_and_never_counted_twice() {
        let mut f = Follower::default();
        f.anchor(Mark::of_header(&header(100, 3611, 0, 0)));
        // Fork 0 misses 3612; the chain then switches to fork 1 where 3612 was produced late.
        assert_eq!(f.step(&header(101, 3613, 0, 0), Some(SEAT)), Ok(1));
        let late = header(101, 3612, 1, 0);
        assert_eq!(f.step(&late, Some(SEAT)), Err(Break::Fork { num: 101 }));
        assert_eq!(f.rewind(100), 1);
        assert_eq!(f.misses(), 0);
        assert_eq!(f.step(&late, Some(SEAT)), Ok(0));
        assert_eq!(f.step(&header(102, 3613, 1, 1), Some(SEAT)), Ok(0));
        assert_eq!(f.misses(), 0);
    }

    #[test]
    fn a_header_that_does_not_continue_the_walk_is_a_break() {
        let mut f = Follower::default();
        f.anchor(Mark::of_header(&header(100, 3611, 0, 0)));
        assert_eq!(f.step(&header(101, 3611, 0, 0), Some(SEAT)), Err(Break::Time { num: 101 }));
        assert_eq!(f.step(&header(102, 3613, 0, 0), Some(SEAT)), Err(Break::Fork { num: 102 }));
        assert_eq!(f.misses(), 0);
    }

    #[test]
    fn the_plan_jumps_where_the_producer_has_no_slot_and_reads_where_it_has() {
        let mut f = Follower::default();
        let info = |num: u64, slot: u64| Info {
            chain_id: String::new(),
            head_num: num,
            head_id: id(num, 0),
            head_time_ms: unix_ms_of_slot(slot),
            head_producer: String::new(),
            lib_num: num,
            lib_id: id(num, 0),
            server_version: String::new(),
        };
        assert_eq!(f.plan(&info(100, 3600), Some(SEAT)), Plan::Anchor);
        f.anchor(Mark::of_head(&info(100, 3600)));
        assert_eq!(f.plan(&info(100, 3600), Some(SEAT)), Plan::Wait);
        assert_eq!(f.plan(&info(105, 3605), Some(SEAT)), Plan::Jump);
        assert_eq!(f.plan(&info(112, 3613), Some(SEAT)), Plan::Fetch { from: 101, to: 112 });
        assert_eq!(f.plan(&info(112, 3613), None), Plan::Jump, "not in the schedule: nothing to count");
        assert_eq!(f.plan(&info(100 + MAX_FETCH + 1, 3700), Some(SEAT)), Plan::Anchor);
    }

    #[test]
    fn the_next_slot_is_the_start_of_the_next_turn_or_the_next_slot_in_it() {
        assert_eq!(SEAT.next_slot_after(0), 12);
        assert_eq!(SEAT.next_slot_after(12), 13);
        assert_eq!(SEAT.next_slot_after(23), 48);
        assert_eq!(SEAT.next_slot_after(35), 48);
        assert!((0..200).all(|s| SEAT.owns(SEAT.next_slot_after(s)) && SEAT.next_slot_after(s) > s));
    }
}
