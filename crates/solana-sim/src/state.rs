//! The cluster's state and its slot-by-slot rules: who votes, the vote account's last vote and credits, skipped
//! leader slots, and the safety checker (two running holders of the staked identity; a first vote without the
//! tower inside the lockout window).
//!
//! Everything here is synchronous and runs under the one cluster lock; the slot ticker, the RPC endpoints and
//! the admin sockets all call [`State::advance_to`] first, so every answer and every identity change happens at
//! the clock's current slot.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use crate::keys::Keypair;
use crate::tower;
use crate::validator::AdminFault;

/// A node that votes with the staked identity sooner than this many slots after the cluster's last vote,
/// without that vote in its tower, may vote against its own lockout (the docs' "wait ~200 slots").
pub const TOWER_SAFE_SLOTS: u64 = 200;

/// Root slot distance behind the last vote (a full tower of 31 lockouts).
pub const ROOT_DISTANCE: u64 = 31;

/// A recorded safety violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub slot: u64,
    pub kind: ViolationKind,
    pub detail: String,
}

/// What rule was broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViolationKind {
    /// Two running validators held the staked identity at the same moment.
    TwoStaked,
    /// A validator started voting with the staked identity without a tower holding the cluster's last vote,
    /// fewer than [`TOWER_SAFE_SLOTS`] slots after it.
    UnsafeTower,
}

/// The fixed settings the rules need.
#[derive(Debug, Clone)]
pub struct Params {
    pub staked: String,
    pub first_slot: u64,
    pub slots_per_epoch: u64,
    pub leader_every: u64,
    pub leader_run: u64,
}

impl Params {
    /// Whether the staked identity leads `slot`: the first `leader_run` of every `leader_every` slots.
    pub fn is_leader(&self, slot: u64) -> bool {
        self.leader_every > 0 && slot % self.leader_every < self.leader_run
    }

    /// How many of the slots in `[from, to]` the staked identity leads.
    pub fn leader_slots(&self, from: u64, to: u64) -> u64 {
        if to < from || self.leader_every == 0 {
            return 0;
        }
        let below = |n: u64| {
            (n / self.leader_every) * self.leader_run.min(self.leader_every)
                + (n % self.leader_every).min(self.leader_run)
        };
        below(to.saturating_add(1)) - below(from)
    }

    pub fn epoch(&self, slot: u64) -> u64 {
        slot / self.slots_per_epoch
    }
}

/// One validator process.
pub struct Node {
    pub ledger: PathBuf,
    pub junk: Keypair,
    /// The identity it runs with; `None` while crashed.
    pub identity: Option<String>,
    pub stalled: bool,
    pub fault: AdminFault,
    pub calls: Vec<String>,
    /// It votes from this slot on (the slot after it took the staked identity).
    pub vote_from: u64,
    /// The tower rule is still to be checked before its next vote (set on taking the staked identity).
    pub unchecked: bool,
    /// Slots at which it voted with the staked identity.
    pub votes: BTreeSet<u64>,
    /// Stops this process's admin socket (a crash).
    pub admin_stop: CancellationToken,
    /// Bumped on each crash, so an admin request in flight on a dead process changes nothing.
    pub generation: u64,
}

impl Node {
    pub fn running(&self) -> bool {
        self.identity.is_some()
    }
}

/// The cluster as of `slot`.
pub struct State {
    pub p: Params,
    /// The last processed slot: the cluster's current slot.
    pub slot: u64,
    /// The vote account's last vote.
    pub last_vote: Option<u64>,
    /// Every slot the vote account voted at (answers "as of slot N" for lagging endpoints).
    votes: BTreeSet<u64>,
    /// `epochCredits`: epoch → (credits, previous credits).
    pub credits: BTreeMap<u64, (u64, u64)>,
    /// The staked identity's leader slots since the start in which nobody voted with it.
    pub skipped: BTreeSet<u64>,
    pub stake: u64,
    pub identity_balance: u64,
    pub nodes: BTreeMap<String, Node>,
    pub violations: Vec<Violation>,
    /// A TwoStaked episode is under way (record it once, at its first slot).
    two_staked_open: bool,
}

impl State {
    pub fn new(p: Params, stake: u64, identity_balance: u64) -> Self {
        let epoch = p.epoch(p.first_slot);
        // Credits the account earned before the sim started: a full previous epoch and this one so far.
        let prev = 100_000 + epoch;
        let now = prev + p.first_slot % p.slots_per_epoch;
        let credits = BTreeMap::from([(epoch, (now, prev))]);
        Self {
            slot: p.first_slot,
            p,
            last_vote: None,
            votes: BTreeSet::new(),
            credits,
            skipped: BTreeSet::new(),
            stake,
            identity_balance,
            nodes: BTreeMap::new(),
            violations: Vec::new(),
            two_staked_open: false,
        }
    }

    /// Process every slot after the current one up to `target`.
    pub fn advance_to(&mut self, target: u64) {
        while self.slot < target {
            let s = self.slot + 1;
            self.process_slot(s);
        }
    }

    fn process_slot(&mut self, s: u64) {
        let before = self.last_vote;
        let mut voted = false;
        let mut found = Vec::new();
        for (name, n) in self.nodes.iter_mut() {
            if n.identity.as_deref() != Some(self.p.staked.as_str()) || n.stalled || s < n.vote_from {
                continue;
            }
            if n.unchecked {
                n.unchecked = false;
                if let Some(detail) = unsafe_tower(n, &self.p.staked, before, s) {
                    found.push(Violation {
                        slot: s,
                        kind: ViolationKind::UnsafeTower,
                        detail: format!("{name}: {detail}"),
                    });
                }
            }
            n.votes.insert(s);
            // A ledger the test already removed just loses the tower; the vote still counts.
            let _ = tower::write(&n.ledger, &self.p.staked, Some(s));
            voted = true;
        }
        self.violations.extend(found);
        if voted {
            self.last_vote = Some(s);
            self.votes.insert(s);
            let epoch = self.p.epoch(s);
            let last_total = self.credits.values().next_back().map_or(0, |c| c.0);
            self.credits.entry(epoch).or_insert((last_total, last_total)).0 += 1;
            while self.credits.len() > 5 {
                self.credits.pop_first();
            }
        } else if self.p.is_leader(s) {
            self.skipped.insert(s);
        }
        self.slot = s;
        self.check_two_staked();
    }

    /// Names of running validators holding the staked identity.
    pub fn holders(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.identity.as_deref() == Some(self.p.staked.as_str()))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Record a TwoStaked violation when a new episode of several holders begins (call after any change).
    pub fn check_two_staked(&mut self) {
        let holders = self.holders();
        if holders.len() > 1 {
            if !self.two_staked_open {
                self.two_staked_open = true;
                self.violations.push(Violation {
                    slot: self.slot,
                    kind: ViolationKind::TwoStaked,
                    detail: format!("running with the staked identity at once: {}", holders.join(", ")),
                });
            }
        } else {
            self.two_staked_open = false;
        }
    }

    /// The vote account's last vote as a node at `slot` saw it.
    pub fn last_vote_at(&self, slot: u64) -> Option<u64> {
        self.votes.range(..=slot).next_back().copied()
    }

    /// Set `name`'s identity (the process must be running); taking the staked identity arms voting from the
    /// next slot and the tower check. Returns false when the process is not running.
    pub fn set_identity(&mut self, name: &str, identity: String) -> bool {
        let slot = self.slot;
        let staked = self.p.staked.clone();
        let Some(n) = self.nodes.get_mut(name) else { return false };
        if !n.running() {
            return false;
        }
        if n.identity.as_deref() != Some(identity.as_str()) {
            if identity == staked {
                n.vote_from = slot + 1;
                n.unchecked = true;
            }
            n.identity = Some(identity);
        }
        self.check_two_staked();
        true
    }
}

/// Why `n`'s first vote at `slot` would be unsafe, if it is.
fn unsafe_tower(n: &Node, staked: &str, cluster_last: Option<u64>, slot: u64) -> Option<String> {
    let last = cluster_last?;
    if slot >= last + TOWER_SAFE_SLOTS {
        return None;
    }
    match tower::read(&n.ledger, staked) {
        Ok(t) if t.last_vote.is_some_and(|v| v >= last) => None,
        Ok(t) => Some(format!(
            "first vote at {slot}, {} slots after the cluster's last vote {last}, with a tower whose last vote is {:?}",
            slot - last,
            t.last_vote
        )),
        Err(e) => Some(format!(
            "first vote at {slot}, {} slots after the cluster's last vote {last}, without a tower ({e})",
            slot - last
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(every: u64, run: u64) -> Params {
        Params { staked: "S".into(), first_slot: 1000, slots_per_epoch: 8192, leader_every: every, leader_run: run }
    }

    #[test]
    fn leader_slot_counting_matches_enumeration() {
        for (every, run) in [(40, 4), (4, 1), (10, 10), (5, 7), (0, 4)] {
            let p = params(every, run);
            for (a, b) in [(0, 0), (0, 39), (3, 41), (38, 120), (1000, 1000), (7, 6)] {
                let brute = (a..=b).filter(|s| p.is_leader(*s)).count() as u64;
                assert_eq!(p.leader_slots(a, b), brute, "every {every} run {run} range {a}..={b}");
            }
        }
    }

    #[test]
    fn empty_cluster_skips_leader_slots_and_never_votes() {
        let mut st = State::new(params(40, 4), 1, 1);
        st.advance_to(1080);
        assert_eq!(st.slot, 1080);
        assert_eq!(st.last_vote, None);
        assert_eq!(st.skipped.len() as u64, st.p.leader_slots(1001, 1080));
        assert!(st.violations.is_empty());
    }
}
