//! Watching: each endpoint's head, the leader's headers where the producer has slots, and the
//! corroboration of a crossing by the blocks of another endpoint.

use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::api::{self, Header, Info};
use super::follow::{Break, Mark, Plan, Seat, DEPTH};
use super::{AntelopeBaseline, AntelopeProducer};
use crate::chain::{ChainTime, Corroboration, Evidence, Observation};
use antelope_protocol::schedule::{slot_of_unix_ms, unix_ms_of_slot};

/// The schedule is read again when older than this (chain time): a schedule change must never attribute a
/// slot to the wrong producer, and the check after each gap catches the rest.
const SCHEDULE_MAX_AGE: Duration = Duration::from_secs(10);
/// How a disagreement between the leader and a witness about a gap's blocks was settled.
enum Judgement {
    ForkSwitch,
    WitnessOnDeadFork,
    LeaderRefuted,
    Undecided,
}

/// An endpoint within this many blocks of another backs its head (see `fresh`).
const LEAD_TOLERANCE: u64 = 12;
/// An endpoint whose blocks could not be followed is left out of leading for this many polls.
const FOLLOW_FAILURE_POLLS: u64 = 3;
/// More fork rewinds than this in one look: the endpoint's blocks do not hold together.
const MAX_FORKS_PER_LOOK: u32 = 3;
/// A refuted endpoint is left out for this many polls.
const DISTRUST_POLLS: u64 = 20;
/// Looks (a block apart) a corroboration may take: enough for Savanna finality (two or three blocks) to
/// reach the gap, and for a legacy chain's gap to sink [`SETTLE_DEPTH`] blocks.
const CORROBORATION_ROUNDS: usize = 10;
/// Where the last irreversible block trails the head by more than this, the chain finalizes the legacy way
/// (minutes behind); a gap then counts once its later block is this many blocks deep.
const LEGACY_LIB_LAG: u64 = 24;
const SETTLE_DEPTH: u64 = 3;
/// How long after a slot ends the next block is looked for (propagation to the API nodes).
const LOOK_MARGIN_MS: u64 = 250;

impl AntelopeProducer {
    /// Every endpoint's `get_info`, checked: the right chain, a fresh head.
    pub(super) async fn poll(&mut self) {
        self.polls += 1;
        if self.watching_since_ms.is_none() {
            self.watching_since_ms = Some(self.now().as_millis());
        }
        let mut set = JoinSet::new();
        for (i, ep) in self.endpoints.iter().enumerate() {
            let ep = ep.clone();
            set.spawn(async move {
                let t = Instant::now();
                (i, api::info(&ep).await, t.elapsed())
            });
        }
        let now = self.now();
        let max_age = self.settings.max_head_age;
        let want = self.settings.chain_id.to_hex();
        while let Some(joined) = set.join_next().await {
            let Ok((i, answer, took)) = joined else { continue };
            let label = self.endpoints[i].url().to_string();
            let view = &mut self.views[i];
            view.latency = Some(took);
            match answer {
                Err(e) => {
                    view.info = None;
                    view.problem = Some(e.to_string());
                }
                Ok(info) if info.chain_id != want => {
                    if !view.wrong_chain_noticed {
                        view.wrong_chain_noticed = true;
                        self.notices.push(format!(
                            "{label} serves chain id {}, not {want}: it is left out until it serves the right chain",
                            info.chain_id
                        ));
                    }
                    view.problem = Some(format!("serves chain id {}, not {want}", info.chain_id));
                    view.info = None;
                }
                Ok(info) => {
                    if info.head_producer == self.settings.producer
                        && self.last_produced_ms.is_none_or(|t| t < info.head_time_ms)
                    {
                        self.last_produced_ms = Some(info.head_time_ms);
                    }
                    let view = &mut self.views[i];
                    let age = now.since(ChainTime::from_millis(info.head_time_ms));
                    let went_back = view.info.as_ref().is_some_and(|old| info.head_num + 12 < old.head_num);
                    view.problem = if age > max_age {
                        Some(format!(
                            "stale: head block {} is {} s old (MAX_HEAD_AGE_SECS {})",
                            info.head_num,
                            age.as_secs(),
                            max_age.as_secs()
                        ))
                    } else if went_back {
                        Some(format!("its head went back to block {}", info.head_num))
                    } else if view.distrusted_until > self.polls {
                        Some(format!("distrusted: {}", view.distrust_reason))
                    } else {
                        None
                    };
                    view.info = Some(info);
                }
            }
        }
    }

    /// The fresh, trusted endpoints, most advanced first.
    /// The fresh, trusted endpoints, the one to lead first: among those whose head another fresh endpoint is
    /// near (within [`LEAD_TOLERANCE`] blocks; so one endpoint claiming a head far ahead of every other cannot
    /// lead the walk off the chain), the one with the highest last irreversible block, then the highest head:
    /// a node on a dead fork keeps a fresh head but its finality stands still, so it never leads for long.
    pub(super) fn fresh(&self) -> Vec<usize> {
        let head = |i: usize| self.views[i].info.as_ref().map_or(0, |x| x.head_num);
        let mut v: Vec<usize> = (0..self.views.len())
            .filter(|i| {
                let view = &self.views[*i];
                view.problem.is_none() && view.info.is_some() && view.distrusted_until <= self.polls
            })
            .collect();
        let backed = |i: usize| v.iter().any(|&j| j != i && head(i).abs_diff(head(j)) <= LEAD_TOLERANCE);
        let backing: Vec<bool> = v.iter().map(|&i| v.len() == 1 || backed(i)).collect();
        let mut order: Vec<(bool, usize)> = backing.into_iter().zip(v.iter().copied()).collect();
        let lib = |i: usize| self.views[i].info.as_ref().map_or(0, |x| x.lib_num);
        order.sort_by_key(|&(b, i)| (!b, std::cmp::Reverse(lib(i)), std::cmp::Reverse(head(i)), i));
        v = order.into_iter().map(|(_, i)| i).collect();
        v
    }

    pub(super) fn blind_reason(&self) -> String {
        let parts: Vec<String> = self
            .views
            .iter()
            .zip(&self.endpoints)
            .map(|(v, e)| format!("{}: {}", e.url(), v.problem.as_deref().unwrap_or("no answer")))
            .collect();
        if parts.is_empty() {
            "no endpoint".into()
        } else {
            parts.join("; ")
        }
    }

    /// The producer's seat in the active schedule, reading the schedule from `ep` when it is old.
    pub(super) async fn seat(&mut self, ep: usize, force: bool) -> Result<Option<Seat>, String> {
        let now = self.now();
        let stale = self.schedules_at.is_none_or(|at| now.since(at) > SCHEDULE_MAX_AGE);
        if force || stale || self.schedules.is_none() {
            let s = api::schedules(&self.endpoints[ep]).await.map_err(|e| e.to_string())?;
            self.schedules = Some(s);
            self.schedules_at = Some(now);
        }
        Ok(self.schedules.as_ref().and_then(|s| {
            s.active.position(&self.settings.producer).map(|index| Seat {
                index,
                producers: s.active.producers.len(),
                version: s.active.version,
            })
        }))
    }

    /// One look: poll, follow the leader, count.
    pub(super) async fn look(&mut self, _baseline: &AntelopeBaseline) -> Observation {
        self.poll().await;
        let fresh = self.fresh();
        let Some(&leader) = fresh.first() else {
            self.next_look = None;
            self.leader = None;
            self.watch_note = "blind: no fresh endpoint".into();
            return Observation::Blind(self.blind_reason());
        };
        self.leader = Some(leader);
        let seat = match self.seat(leader, false).await {
            Ok(s) => s,
            Err(e) => {
                self.next_look = None;
                return Observation::Blind(format!("cannot read the producer schedule: {e}"));
            }
        };
        if let Err(e) = self.follow(leader, seat).await {
            // A look that could not follow counts nothing; another endpoint leads the next few looks, so one
            // endpoint whose blocks do not hold together cannot stop the count.
            tracing::warn!(endpoint = %self.endpoints[leader].url(), "following the blocks failed: {e}");
            self.distrust(leader, FOLLOW_FAILURE_POLLS, format!("its blocks could not be followed ({e})"));
        }
        self.plan_next(leader);
        Observation::Reading(self.evidence(leader))
    }

    /// Read the chain up to its head now (poll, follow the producer's slots), so that every block of the
    /// producer since the last look is seen; `Err` when no endpoint could be read or followed.
    pub async fn catch_up(&mut self) -> Result<(), String> {
        match self.look(&AntelopeBaseline { head_block: 0, head_time_ms: 0 }).await {
            Observation::Reading(_) if self.leader.is_some_and(|l| self.views[l].distrusted_until <= self.polls) => {
                Ok(())
            }
            Observation::Reading(_) => Err("the leading endpoint's blocks could not be followed".into()),
            Observation::Blind(reason) => Err(reason),
        }
    }

    pub(super) fn head(&self, ep: usize) -> Option<&Info> {
        self.views[ep].info.as_ref()
    }

    pub(super) fn evidence(&self, ep: usize) -> Evidence {
        let info = self.head(ep);
        let current_key = self
            .schedules
            .as_ref()
            .and_then(|s| s.active.keys_of(&self.settings.producer))
            .and_then(|k| k.first().cloned())
            .unwrap_or_else(|| "(not in the active schedule)".into());
        Evidence {
            misses: self.follower.misses(),
            counter: None,
            height: self.follower.cursor().map_or(info.map_or(0, |i| i.head_num), |c| c.num),
            chain_time: ChainTime::from_millis(info.map_or(0, |i| i.head_time_ms)),
            source: self.endpoints[ep].url().to_string(),
            source_index: ep,
            current_key,
        }
    }

    /// Walk the leader's blocks as the plan says; a fork rewinds to the common ancestor.
    async fn follow(&mut self, ep: usize, seat: Option<Seat>) -> Result<(), String> {
        let Some(head) = self.head(ep).cloned() else { return Ok(()) };
        match self.follower.plan(&head, seat) {
            Plan::Wait => Ok(()),
            Plan::Anchor => {
                self.follower.anchor(Mark::of_head(&head));
                Ok(())
            }
            Plan::Jump => {
                self.follower.jump(Mark::of_head(&head));
                Ok(())
            }
            Plan::Fetch { from, to } => {
                let mut num = from;
                let mut new_gaps = false;
                let mut forks = 0;
                while num <= to {
                    let h = api::header(&self.endpoints[ep], num).await.map_err(|e| e.to_string())?;
                    self.saw_block_of_producer(&h.producer.clone(), h.time_ms);
                    match self.follower.step(&h, seat) {
                        Ok(n) => {
                            if n > 0 {
                                new_gaps = true;
                                tracing::info!(block = h.num, missed = n, producer = %self.settings.producer,
                                    "the producer missed {n} slot(s) before block {}", h.num);
                            }
                            num += 1;
                        }
                        Err(Break::Fork { num: at }) => {
                            forks += 1;
                            if forks > MAX_FORKS_PER_LOOK {
                                return Err(format!("block {at} does not continue the chain after {forks} rewinds"));
                            }
                            let dropped = self.rewind(ep, at).await?;
                            if dropped > 0 {
                                tracing::info!(
                                    dropped,
                                    "a fork replaced blocks: {dropped} missed slot(s) no longer count"
                                );
                            }
                            num = self.follower.cursor().map_or(to + 1, |c| c.num + 1);
                        }
                        Err(Break::Time { num: at }) => {
                            return Err(format!("block {at}'s time is not after its predecessor's"));
                        }
                    }
                }
                if new_gaps {
                    self.recheck_schedule(ep, seat).await;
                }
                Ok(())
            }
        }
    }

    /// After gaps were attributed by `seat`, read the schedule again: if it changed meanwhile, the slots
    /// just counted may belong to someone else, so they are dropped (never a miss on an unknown schedule).
    async fn recheck_schedule(&mut self, ep: usize, used: Option<Seat>) {
        let Some(used) = used else { return };
        match self.seat(ep, true).await {
            Ok(now) if now.map(|s| s.version) == Some(used.version) => {}
            _ => {
                let dropped = self.follower.drop_gaps_where(|g| g.schedule_version == used.version && !g.corroborated);
                if dropped > 0 {
                    tracing::warn!(dropped, "the schedule changed while counting: {dropped} slot(s) not counted");
                }
            }
        }
    }

    /// Find where the endpoint's chain meets our walk below block `at`, and rewind there.
    async fn rewind(&mut self, ep: usize, at: u64) -> Result<u64, String> {
        let lowest = at.saturating_sub(DEPTH as u64);
        let mut k = at.saturating_sub(1);
        while k >= lowest && k > 0 {
            let Some(ours) = self.follower.mark_at(k) else { break };
            let theirs: Header = api::header(&self.endpoints[ep], k).await.map_err(|e| e.to_string())?;
            if theirs.id == ours.id {
                return Ok(self.follower.rewind(k));
            }
            k -= 1;
        }
        // Deeper than our walk: start again at the head, forgetting gaps in the blocks we can no longer check.
        let oldest = self.follower.cursor().map_or(0, |c| c.num.saturating_sub(DEPTH as u64));
        let dropped = self.follower.rewind(oldest);
        if let Some(head) = self.head(ep).cloned() {
            self.follower.anchor(Mark::of_head(&head));
        }
        Ok(dropped)
    }

    /// Look again right after the producer's next slot can be judged (the block after it is out).
    fn plan_next(&mut self, ep: usize) {
        let seat = self.schedules.as_ref().and_then(|s| {
            s.active.position(&self.settings.producer).map(|index| Seat {
                index,
                producers: s.active.producers.len(),
                version: s.active.version,
            })
        });
        let Some(head) = self.head(ep) else { return };
        let head_slot = slot_of_unix_ms(head.head_time_ms);
        match seat {
            Some(seat) => {
                let next = seat.next_slot_after(head_slot);
                let at = unix_ms_of_slot(next + 1) + LOOK_MARGIN_MS;
                self.next_look = Some(ChainTime::from_millis(at));
                self.watch_note = format!(
                    "slots: {} missed since arming; next slot {} at {}",
                    self.follower.misses(),
                    next,
                    ChainTime::from_millis(unix_ms_of_slot(next)).to_rfc3339()
                );
            }
            None => {
                self.next_look = None;
                self.watch_note = format!(
                    "{} is not in the active schedule: no slots to miss ({} missed since arming)",
                    self.settings.producer,
                    self.follower.misses()
                );
            }
        }
    }

    /// Check every gap not yet corroborated against the blocks of another endpoint: the same two blocks
    /// around it (a gap between them is then the same gap), and the later one final there — irreversible,
    /// or, where finality lags by minutes (legacy consensus), [`SETTLE_DEPTH`] blocks deep — so a late block
    /// that replaces the gap a moment later never fires the trap. A block the other endpoint does not have
    /// yet is asked again a block later. With one endpoint, the same one is asked again.
    pub(super) async fn corroborate_gaps(&mut self, first: &Evidence, allowed: u64) -> Corroboration {
        let leader = first.source_index;
        // Witnesses that cannot show the blocks in time (behind, or on a branch without them) while the
        // leader's are final: left out of this corroboration, as an endpoint that is down would be.
        let mut unable: Vec<usize> = Vec::new();
        for round in 0..CORROBORATION_ROUNDS {
            // Asked afresh each round: an endpoint found on a dead fork drops out meanwhile.
            let others: Vec<usize> = self.fresh().into_iter().filter(|i| *i != leader && !unable.contains(i)).collect();
            let witnesses = if others.is_empty() {
                if round == 0 {
                    tracing::warn!("no second endpoint is fresh; corroborating with the same endpoint a block later");
                }
                vec![leader]
            } else {
                others
            };
            if round > 0 || witnesses == [leader] {
                self.clock.sleep(self.block_interval_dur()).await;
            }
            for &w in &witnesses {
                let Ok(info) = api::info(&self.endpoints[w]).await else { continue };
                let settled = |num: u64| {
                    info.lib_num >= num
                        || (info.head_num.saturating_sub(info.lib_num) > LEGACY_LIB_LAG
                            && info.head_num >= num + SETTLE_DEPTH)
                };
                let pending: Vec<usize> =
                    (0..self.follower.gaps().len()).filter(|g| !self.follower.gaps()[*g].corroborated).collect();
                for g in pending {
                    let gap = self.follower.gaps()[g].clone();
                    let a = api::header(&self.endpoints[w], gap.after.num).await;
                    let b = api::header(&self.endpoints[w], gap.before.num).await;
                    match (a, b) {
                        (Ok(a), Ok(b)) if a.id == gap.after.id && b.id == gap.before.id => {
                            if settled(gap.before.num) {
                                self.follower.gaps_mut()[g].corroborated = true;
                            }
                        }
                        (Ok(a), Ok(b)) => match self.judge(leader, w, &gap, (&a, &b), info.lib_num).await {
                            Judgement::ForkSwitch => {
                                let dropped = self.follower.rewind(gap.after.num.saturating_sub(1));
                                self.follower.reset_walk();
                                tracing::info!(
                                    dropped,
                                    "the chain switched forks: {dropped} missed slot(s) no longer count"
                                );
                                return Corroboration::Contradicted(self.evidence(w));
                            }
                            Judgement::WitnessOnDeadFork => break,
                            Judgement::LeaderRefuted => return self.refuted(leader, w, &gap),
                            Judgement::Undecided => {}
                        },
                        (Err(e), _) | (_, Err(e)) => {
                            if !e.is_unknown_block() {
                                tracing::warn!(endpoint = %self.endpoints[w].url(), "cannot corroborate: {e}");
                            }
                            // Half the patience spent and still without the blocks the leader holds as final.
                            if w != leader && round >= CORROBORATION_ROUNDS / 2 && info.head_num < gap.before.num {
                                let leader_lib = api::info(&self.endpoints[leader]).await.map_or(0, |i| i.lib_num);
                                if leader_lib >= gap.before.num {
                                    tracing::warn!(endpoint = %self.endpoints[w].url(),
                                        "cannot show blocks {}..{} the leader holds as final; left out of this check",
                                        gap.after.num, gap.before.num);
                                    unable.push(w);
                                    break;
                                }
                            }
                        }
                    }
                }
            }
            let confirmed: u64 =
                self.follower.gaps().iter().filter(|g| g.corroborated).map(|g| g.slots.len() as u64).sum();
            if confirmed >= allowed {
                self.dispute = None;
                let mut e = self.evidence(leader);
                e.misses = self.follower.misses();
                if let Some(&w) = witnesses.first() {
                    e.source = self.endpoints[w].url().to_string();
                    e.source_index = w;
                }
                return Corroboration::Confirmed(e);
            }
        }
        Corroboration::Blind("no other endpoint could show the blocks around the missed slots as final yet".into())
    }

    /// The witness `w` has other blocks (`theirs`) where the leader showed `gap`. Either the chain switched
    /// forks (the leader shows them too now), or one of the two is on a dead fork: the one whose blocks there
    /// are above its own last irreversible block while the other's are final. Until finality decides it,
    /// nothing is decided (a live microfork).
    async fn judge(
        &mut self,
        leader: usize,
        w: usize,
        gap: &super::follow::Gap,
        theirs: (&Header, &Header),
        witness_lib: u64,
    ) -> Judgement {
        let la = api::header(&self.endpoints[leader], gap.after.num).await;
        let lb = api::header(&self.endpoints[leader], gap.before.num).await;
        if matches!((&la, &lb), (Ok(x), Ok(y)) if x.id == theirs.0.id && y.id == theirs.1.id) {
            return Judgement::ForkSwitch;
        }
        let leader_lib = api::info(&self.endpoints[leader]).await.map_or(0, |i| i.lib_num);
        match (leader_lib >= gap.before.num, witness_lib >= gap.before.num) {
            (true, false) => {
                let text = format!(
                    "{} serves blocks {}..{} that conflict with final blocks of {}: it is left out (a dead fork)",
                    self.endpoints[w].url(),
                    gap.after.num,
                    gap.before.num,
                    self.endpoints[leader].url()
                );
                tracing::warn!("{text}");
                self.notices.push(text);
                self.distrust(w, DISTRUST_POLLS, "its blocks conflict with another endpoint's final blocks".into());
                Judgement::WitnessOnDeadFork
            }
            (false, false) => Judgement::Undecided,
            // The witness's blocks are final, or both claim finality for different blocks (one lies): never
            // fire on the leader's word.
            _ => Judgement::LeaderRefuted,
        }
    }

    /// Another endpoint has other blocks where the leader showed a gap: not firing on it. The gap is
    /// forgotten, the leader left out for a while, and the walk starts again.
    fn refuted(&mut self, leader: usize, by: usize, gap: &super::follow::Gap) -> Corroboration {
        let text = format!(
            "endpoints disagree: {} shows {} missed slot(s) between blocks {} and {}, {} has other blocks there; \
             not firing on this",
            self.endpoints[leader].url(),
            gap.slots.len(),
            gap.after.num,
            gap.before.num,
            self.endpoints[by].url()
        );
        if self.dispute.is_none() {
            self.notices.push(text.clone());
        }
        self.dispute = Some(text);
        let after = gap.after.num;
        self.follower.drop_gaps_where(|g| !g.corroborated && g.before.num > after);
        self.distrust(leader, DISTRUST_POLLS, "its blocks were refuted by another endpoint's".into());
        self.follower.reset_walk();
        let mut e = self.evidence(by);
        e.misses = self.follower.misses();
        Corroboration::Contradicted(e)
    }

    fn distrust(&mut self, ep: usize, polls: u64, reason: String) {
        let view = &mut self.views[ep];
        view.distrusted_until = self.polls + polls;
        view.distrust_reason = crate::chain::body::bounded_text(&reason);
    }

    fn block_interval_dur(&self) -> Duration {
        Duration::from_millis(antelope_protocol::schedule::BLOCK_INTERVAL_MS)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::super::{AntelopeProducer, AntelopeSettings};
    use super::api::Info;
    use antelope_protocol::chain::network;
    use antelope_protocol::keys::PrivateKey;

    fn producer(n: usize) -> AntelopeProducer {
        let settings = AntelopeSettings {
            network: "eos".into(),
            chain_id: network("eos").expect("eos").chain_id,
            custom_chain: false,
            urls: (0..n).map(|i| format!("http://127.0.0.1:{}/", 9 + i)).collect(),
            timeout: Duration::from_secs(1),
            max_head_age: Duration::from_secs(15),
            producer: "alice".into(),
            backup_key: PrivateKey::generate().public_key(),
            backups: Vec::new(),
            permission: "failover".into(),
            failover_key: Some(PrivateKey::generate()),
            backup_finalizer_key: None,
            tx_expiration: Duration::from_secs(60),
            pause_resume: None,
        };
        AntelopeProducer::new(settings, Arc::new(chain_clock::SystemClock)).expect("producer")
    }

    fn info(head: u64) -> Info {
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&(head as u32).to_be_bytes());
        Info {
            chain_id: String::new(),
            head_num: head,
            head_id: id,
            head_time_ms: 0,
            head_producer: String::new(),
            lib_num: head,
            lib_id: id,
            server_version: String::new(),
        }
    }

    #[test]
    fn an_endpoint_far_ahead_of_every_other_does_not_lead() {
        let mut p = producer(3);
        for (i, head) in [1000, 5000, 1003].into_iter().enumerate() {
            p.views[i].info = Some(info(head));
        }
        assert_eq!(p.fresh(), vec![2, 0, 1], "the most advanced head another endpoint backs leads");
        // Alone, an endpoint leads whatever its head.
        let mut q = producer(1);
        q.views[0].info = Some(info(5000));
        assert_eq!(q.fresh(), vec![0]);
        // A distrusted (problem) endpoint is not fresh.
        p.views[2].problem = Some("distrusted".into());
        assert_eq!(p.fresh(), vec![1, 0], "no head is backed: the most advanced first");
    }
}
