//! One poll across every endpoint: which answers are fresh, well-formed and from the right chain.
//!
//! The trap must never act on bad data (protocol.md §6.2: "check that your RPC node itself is not stale").
//! Each endpoint is read concurrently (global properties, then the witness); an answer counts only if the
//! head block time is within `max_head_age` of now (either way: a head from the future means a wrong clock),
//! the head did not go backwards, the witness exists, and its `total_missed` did not go backwards on that
//! endpoint. Everything skipped is returned with its reason, for the log and for `status`.
//!
//! **Every endpoint can recover.** The head block number and `total_missed` never decrease on chain, and
//! both follow one rule ([`BACKWARDS_RESET`]): an answer below what the endpoint said before is skipped,
//! and after that many lower answers in a row the remembered value is taken to be the bogus one (a bad
//! backend behind a load balancer, a node that was briefly on a fork) and forgotten, so the endpoint is
//! fresh again at the next answer that does not go backwards: one bad answer (head or counter far ahead)
//! costs at most `BACKWARDS_RESET + 1` reads of that endpoint, never the endpoint for good.
//!
//! **The chain id is re-checked.** On first contact, every [`CHAIN_RECHECK_READS`] reads of an endpoint,
//! and at the first read after a failed one (a node that went away may come back restarted on another
//! chain). An endpoint serving another chain id is dropped: skipped with that reason, logged (warn), and
//! reported once through [`Reader::take_notices`] for the operator's alert channels. A dropped endpoint is
//! probed (its chain id only) every [`CHAIN_RECHECK_READS`] polls; when it serves the configured chain
//! again it comes back with nothing remembered of it (a notice says so too).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use super::api::{self, GlobalProperties, Witness};
use super::client::{Endpoint, RpcError};
use chain_clock::SharedClock;
use graphene_protocol::transaction::TimePointSec;

/// What the reader needs to know.
#[derive(Debug, Clone)]
pub struct ReaderSettings {
    pub urls: Vec<String>,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// A head block older (or newer) than this is stale.
    pub max_head_age: Duration,
    /// The witness account.
    pub account: String,
    /// The configured chain id, lower-case hex.
    pub chain_id_hex: String,
}

/// A fresh, well-formed answer of one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub endpoint: usize,
    pub url: String,
    pub head_block_number: u32,
    pub head_block_id: String,
    /// Head block time, seconds since the epoch.
    pub head_time: u64,
    pub last_irreversible_block_num: u32,
    /// Absolute slot of the head block, when the node gives it (§5.3); needed for slot-aware watching.
    pub current_aslot: Option<u64>,
    pub witness: Witness,
}

/// An endpoint left out of a poll, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub url: String,
    pub reason: String,
}

/// The result of one poll.
#[derive(Debug, Clone, Default)]
pub struct Poll {
    pub fresh: Vec<Snapshot>,
    pub skipped: Vec<Skip>,
}

impl Poll {
    /// The fresh snapshot with the highest head.
    pub fn best(&self) -> Option<&Snapshot> {
        self.fresh.iter().max_by_key(|s| s.head_block_number)
    }
}

/// After this many consecutive answers below what an endpoint said before (its head block number or its
/// `total_missed`, the same rule for both), the remembered value is forgotten and replaced by the new one,
/// so one bogus high answer (a bad backend behind a load balancer) cannot disable the endpoint for good.
/// Three: a single lagging answer or two are still distrusted, and a sane endpoint is fresh again within
/// four reads of one bad answer.
pub const BACKWARDS_RESET: u32 = 3;

/// The chain id of an endpoint is read again every this many reads of it (besides first contact and the
/// read after a failed one), and a dropped endpoint is probed every this many polls. At the default 30 s
/// poll that is every 5 minutes (sooner when slot-aware watching adds looks); the cost is one
/// `get_version` call per ten reads of two calls: 5 % more calls.
pub const CHAIN_RECHECK_READS: u32 = 10;

/// A value that never decreases on chain, as one endpoint reported it (the same rule for the head block
/// number and for `total_missed`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Monotone {
    /// The last value accepted.
    last: Option<u64>,
    /// Consecutive answers below `last`.
    lower: u32,
}

/// A value below the one remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WentBack {
    from: u64,
    to: u64,
    /// This was the [`BACKWARDS_RESET`]-th lower answer in a row: `from` is forgotten, `to` remembered.
    forgotten: bool,
}

impl Monotone {
    /// Judge `value` without accepting it: `Some` if it is below the remembered value. The
    /// [`BACKWARDS_RESET`]-th lower value in a row replaces the remembered one (and is still distrusted
    /// itself), so the next value at or above it is accepted.
    fn observe(&mut self, value: u64) -> Option<WentBack> {
        match self.last {
            Some(from) if value < from => {
                self.lower += 1;
                let forgotten = self.lower >= BACKWARDS_RESET;
                if forgotten {
                    self.last = Some(value);
                    self.lower = 0;
                }
                Some(WentBack { from, to: value, forgotten })
            }
            _ => {
                self.lower = 0;
                None
            }
        }
    }

    /// Remember `value` as the endpoint's latest (the answer was fresh).
    fn accept(&mut self, value: u64) {
        self.last = Some(value);
        self.lower = 0;
    }
}

/// What the reader remembers of one endpoint (at first: nothing, and the chain id is read at first contact).
#[derive(Debug, Clone, Default)]
struct Memory {
    head: Monotone,
    missed: Monotone,
    /// Reads (or, while dropped, polls) left before the chain id is read again; 0: at the next read.
    until_chain_check: u32,
    /// The endpoint served the configured chain id at least once.
    chain_confirmed: bool,
    /// Why the endpoint is dropped (it serves another chain), if it is.
    dropped: Option<String>,
    /// Its last read was fresh.
    up: bool,
    /// How long its reads since the last [`Reader::take_endpoint_stats`] took (wall time).
    latencies: Vec<Duration>,
}

impl Memory {
    /// Whether this read includes the chain id; counts the read.
    fn take_chain_check(&mut self) -> bool {
        if self.until_chain_check == 0 {
            true
        } else {
            self.until_chain_check -= 1;
            false
        }
    }

    fn chain_checked(&mut self) {
        self.until_chain_check = CHAIN_RECHECK_READS - 1;
    }
}

/// Reads the chain from several endpoints and remembers, per endpoint, what it said last.
pub struct Reader {
    settings: ReaderSettings,
    endpoints: Vec<Arc<Endpoint>>,
    memory: Vec<Memory>,
    clock: SharedClock,
    /// Events the operator must hear of, since the last [`Reader::take_notices`].
    notices: Vec<String>,
}

enum Answer {
    Fresh(Snapshot),
    Skipped(String),
    /// Dropped just now: it serves another chain (logged and noticed once; later polls only skip it).
    Dropped(String),
}

impl Reader {
    pub fn new(settings: ReaderSettings, clock: SharedClock) -> Result<Self, RpcError> {
        let endpoints = settings
            .urls
            .iter()
            .map(|u| Endpoint::new(u, settings.timeout).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let memory = vec![Memory::default(); endpoints.len()];
        Ok(Self { settings, endpoints, memory, clock, notices: Vec::new() })
    }

    pub fn endpoints(&self) -> &[Arc<Endpoint>] {
        &self.endpoints
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Total RPC calls made so far, all endpoints.
    pub fn calls(&self) -> u64 {
        self.endpoints.iter().map(|e| e.calls()).sum()
    }

    /// Human-readable events since the last call, each reported once, for the operator's alert channels:
    /// an endpoint dropped because it serves another chain id, and one that came back to the configured
    /// chain.
    pub fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    /// Standing problems while they last: every endpoint dropped for serving another chain, with why.
    pub fn troubles(&self) -> Vec<String> {
        self.endpoints
            .iter()
            .zip(&self.memory)
            .filter_map(|(ep, m)| m.dropped.as_ref().map(|reason| format!("{}: {reason}", ep.url())))
            .collect()
    }

    /// Each endpoint: whether its last read was fresh, and one entry per read since the last call with
    /// how long it took (an endpoint not read since gives one entry without a latency).
    pub fn take_endpoint_stats(&mut self) -> Vec<crate::chain::EndpointStat> {
        let mut stats = Vec::new();
        for (ep, m) in self.endpoints.iter().zip(&mut self.memory) {
            let up = m.up && m.dropped.is_none();
            let url = ep.url().to_string();
            if m.latencies.is_empty() {
                stats.push(crate::chain::EndpointStat { url: url.clone(), up, latency: None });
            }
            for took in m.latencies.drain(..) {
                stats.push(crate::chain::EndpointStat { url: url.clone(), up, latency: Some(took) });
            }
        }
        stats
    }

    /// Read every usable endpoint concurrently.
    pub async fn poll(&mut self) -> Poll {
        let all: Vec<usize> = (0..self.endpoints.len()).collect();
        self.poll_some(&all).await
    }

    /// Read the given endpoints concurrently.
    pub async fn poll_some(&mut self, which: &[usize]) -> Poll {
        let mut set = JoinSet::new();
        let mut poll = Poll::default();
        for &i in which {
            let Some(ep) = self.endpoints.get(i) else { continue };
            let mem = &mut self.memory[i];
            let check_chain = mem.take_chain_check();
            if let Some(reason) = &mem.dropped {
                if !check_chain {
                    poll.skipped.push(Skip { url: ep.url().to_string(), reason: reason.clone() });
                    continue;
                }
            }
            let ep = Arc::clone(ep);
            let expect_chain = check_chain.then(|| self.settings.chain_id_hex.clone());
            let account = self.settings.account.clone();
            let clock = Arc::clone(&self.clock);
            // Bound the whole read (up to three calls), so one slow endpoint cannot hold the poll.
            let deadline = self.settings.timeout * 2;
            set.spawn(async move {
                // Latency is the endpoint's, in wall time, whatever the chain clock does.
                let started = std::time::Instant::now();
                let read = tokio::time::timeout(deadline, read_endpoint(&ep, &account, expect_chain)).await;
                let took = started.elapsed();
                let result = read.unwrap_or_else(|_| {
                    Err(RpcError::Timeout { endpoint: ep.url().to_string(), secs: deadline.as_secs() })
                });
                // Freshness is judged at the moment this endpoint answered, not when the slowest one did.
                (i, clock.now().as_secs(), result, took)
            });
        }
        let mut raw = Vec::new();
        while let Some(joined) = set.join_next().await {
            if let Ok(r) = joined {
                raw.push(r);
            }
        }
        raw.sort_by_key(|(i, _, _, _)| *i);
        for (i, now, result, took) in raw {
            let url = self.endpoints[i].url().to_string();
            let answer = self.judge(i, now, result);
            let mem = &mut self.memory[i];
            mem.up = matches!(answer, Answer::Fresh(_));
            // Bounded: one reading a poll, drained at every poll.
            if mem.latencies.len() < 64 {
                mem.latencies.push(took);
            }
            match answer {
                Answer::Fresh(s) => poll.fresh.push(s),
                Answer::Skipped(reason) => {
                    tracing::warn!(endpoint = %url, %reason, "endpoint skipped");
                    poll.skipped.push(Skip { url, reason });
                }
                Answer::Dropped(reason) => {
                    tracing::warn!(endpoint = %url, %reason, "endpoint dropped: it serves another chain");
                    poll.skipped.push(Skip { url, reason });
                }
            }
        }
        poll
    }

    fn judge(&mut self, i: usize, now: u64, result: Result<Read, RpcError>) -> Answer {
        let configured = &self.settings.chain_id_hex;
        let url = self.endpoints[i].url();
        let mem = &mut self.memory[i];
        let (dgp, witness) = match result {
            Err(e) => {
                if let Some(reason) = mem.dropped.clone() {
                    // The probe of a dropped endpoint failed: probe again in CHAIN_RECHECK_READS polls.
                    mem.chain_checked();
                    return Answer::Skipped(format!("{reason} (re-check failed: {e})"));
                }
                // When it answers again, check first that it still serves this chain (a restart).
                mem.until_chain_check = 0;
                return Answer::Skipped(e.to_string());
            }
            Ok(Read::OtherChain(id)) => {
                mem.chain_checked();
                let now_serves = if mem.chain_confirmed { "now serves" } else { "serves" };
                // "dropped" first: an SMS is cut at 160 characters, and chain ids are long.
                let reason = format!("dropped: {now_serves} chain id {id}, not the configured {configured}");
                if mem.dropped.is_some() {
                    // Still on another chain: no new notice (the chain id shown is the latest).
                    mem.dropped = Some(reason.clone());
                    return Answer::Skipped(reason);
                }
                // What it said on the other chain means nothing here, nor what it said before.
                mem.dropped = Some(reason.clone());
                mem.head = Monotone::default();
                mem.missed = Monotone::default();
                self.notices.push(format!("{url} {reason}"));
                return Answer::Dropped(reason);
            }
            Ok(Read::Chain { chain_checked, dgp, witness }) => {
                if chain_checked {
                    mem.chain_checked();
                    mem.chain_confirmed = true;
                    if mem.dropped.take().is_some() {
                        let notice = format!("{url} serves the configured chain id {configured} again: back in use");
                        tracing::info!(endpoint = %url, "endpoint back in use: it serves the configured chain again");
                        self.notices.push(notice);
                    }
                }
                (dgp, witness)
            }
        };
        let head_time = match dgp.time.parse::<TimePointSec>() {
            Ok(t) => u64::from(t.0),
            Err(_) => return Answer::Skipped(format!("head block time {:?} is not a timestamp", dgp.time)),
        };
        let age = self.settings.max_head_age.as_secs();
        if now > head_time + age {
            return Answer::Skipped(format!(
                "stale: head block {} is {} s old (limit {age} s)",
                dgp.head_block_number,
                now - head_time
            ));
        }
        if head_time > now + age {
            return Answer::Skipped(format!(
                "head block time is {} s in the future: check this machine's clock",
                head_time - now
            ));
        }
        let Some(witness) = witness else {
            return Answer::Skipped(format!("no witness named {:?} on this chain", self.settings.account));
        };
        if witness.owner != self.settings.account {
            return Answer::Skipped(format!("answered for witness {:?}", witness.owner));
        }
        // Both never decrease on chain (§6.2): lower means lying, on a fork, or a lagging backend. Both are
        // judged on every answer, so one bad answer that moved both costs BACKWARDS_RESET reads, not twice.
        let head = u64::from(dgp.head_block_number);
        let head_back = mem.head.observe(head);
        let missed_back = mem.missed.observe(witness.total_missed);
        if head_back.is_some() || missed_back.is_some() {
            let mut reasons = Vec::new();
            if let Some(b) = head_back {
                reasons.push(format!("head went backwards from {} to {}", b.from, b.to));
            }
            if let Some(b) = missed_back {
                reasons.push(format!("distrusted: total_missed went backwards from {} to {}", b.from, b.to));
            }
            let mut reason = reasons.join("; ");
            if head_back.is_some_and(|b| b.forgotten) || missed_back.is_some_and(|b| b.forgotten) {
                reason
                    .push_str(&format!(" ({BACKWARDS_RESET} lower answers in a row: the earlier value is forgotten)"));
            }
            return Answer::Skipped(reason);
        }
        mem.head.accept(head);
        mem.missed.accept(witness.total_missed);
        Answer::Fresh(Snapshot {
            endpoint: i,
            url: url.to_string(),
            head_block_number: dgp.head_block_number,
            head_block_id: dgp.head_block_id,
            head_time,
            last_irreversible_block_num: dgp.last_irreversible_block_num,
            current_aslot: dgp.current_aslot,
            witness,
        })
    }
}

/// What one read of an endpoint gave.
enum Read {
    /// It serves this chain id, not the configured one; nothing else was read.
    OtherChain(String),
    /// Its head and the witness; `chain_checked`: its chain id was read and is the configured one.
    Chain { chain_checked: bool, dgp: GlobalProperties, witness: Option<Witness> },
}

async fn read_endpoint(ep: &Endpoint, account: &str, expect_chain: Option<String>) -> Result<Read, RpcError> {
    let chain_checked = expect_chain.is_some();
    if let Some(expected) = expect_chain {
        let id = api::version(ep).await?.chain_id;
        if !id.eq_ignore_ascii_case(&expected) {
            return Ok(Read::OtherChain(id));
        }
    }
    let dgp = api::global_properties(ep).await?;
    let witness = api::witness(ep, account).await?;
    Ok(Read::Chain { chain_checked, dgp, witness })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chain_clock::ScaledClock;

    const CHAIN: &str = "beeab0de00000000000000000000000000000000000000000000000000000000";
    const OTHER: &str = "4242424242424242424242424242424242424242424242424242424242424242";
    /// "now" of every judged answer; the head block time is the same second.
    const NOW: u64 = 1_750_000_000;

    fn reader() -> Reader {
        let settings = ReaderSettings {
            urls: vec!["http://127.0.0.1:9/".into(), "http://127.0.0.1:10/".into()],
            timeout: Duration::from_secs(1),
            max_head_age: Duration::from_secs(15),
            account: "alice".into(),
            chain_id_hex: CHAIN.into(),
        };
        Reader::new(settings, Arc::new(ScaledClock::starting_now(1.0))).expect("reader")
    }

    fn answer(head: u32, missed: u64, chain_checked: bool) -> Result<Read, RpcError> {
        let dgp = GlobalProperties {
            head_block_number: head,
            head_block_id: format!("{head:08x}{}", "ab".repeat(16)),
            time: TimePointSec(NOW as u32).to_string(),
            last_irreversible_block_num: head.saturating_sub(15),
            current_aslot: Some(u64::from(head) + 100),
        };
        let witness = Witness {
            owner: "alice".into(),
            url: "https://example.org".into(),
            total_missed: missed,
            signing_key: "STM1".into(),
            props: Default::default(),
            running_version: None,
        };
        Ok(Read::Chain { chain_checked, dgp, witness: Some(witness) })
    }

    fn failure() -> Result<Read, RpcError> {
        Err(RpcError::Http { endpoint: "http://127.0.0.1:9/".into(), status: 503 })
    }

    /// Judge one answer of endpoint 0: `Ok(head)` if fresh, else the reason.
    fn judge(r: &mut Reader, result: Result<Read, RpcError>) -> Result<u32, String> {
        match r.judge(0, NOW, result) {
            Answer::Fresh(s) => Ok(s.head_block_number),
            Answer::Skipped(reason) | Answer::Dropped(reason) => Err(reason),
        }
    }

    #[test]
    fn monotone_forgets_the_remembered_value_after_the_reset_count() {
        let mut m = Monotone::default();
        assert_eq!(m.observe(10), None);
        m.accept(10);
        assert_eq!(m.observe(1_000_000), None);
        m.accept(1_000_000);
        for n in 1..BACKWARDS_RESET {
            assert_eq!(m.observe(11), Some(WentBack { from: 1_000_000, to: 11, forgotten: false }), "lower answer {n}");
        }
        assert_eq!(m.observe(11), Some(WentBack { from: 1_000_000, to: 11, forgotten: true }));
        assert_eq!(m.observe(11), None, "the bogus value is forgotten");
        assert_eq!(m.observe(10), Some(WentBack { from: 11, to: 10, forgotten: false }), "and 11 is remembered");
    }

    #[test]
    fn monotone_needs_consecutive_lower_answers() {
        let mut m = Monotone::default();
        m.accept(100);
        for _ in 0..10 {
            // A lagging answer now and then never resets the memory.
            assert!(m.observe(99).is_some_and(|b| !b.forgotten));
            assert_eq!(m.observe(100), None);
            m.accept(100);
        }
        assert_eq!(m.last, Some(100));
    }

    #[test]
    fn one_answer_far_ahead_in_head_and_counter_costs_a_bounded_number_of_reads() {
        let mut r = reader();
        assert_eq!(judge(&mut r, answer(1000, 10, true)), Ok(1000));
        // One bogus answer: head and counter a million ahead (it looks fresh: its time is right).
        assert_eq!(judge(&mut r, answer(1_001_000, 1_000_010, false)), Ok(1_001_000));
        let mut polls = 0;
        let mut head = 1000;
        let recovered = loop {
            polls += 1;
            head += 1;
            match judge(&mut r, answer(head, 10, false)) {
                Ok(h) => break h,
                Err(reason) => {
                    assert!(reason.contains("head went backwards from 1001000"), "{reason}");
                    assert!(reason.contains("total_missed went backwards from 1000010 to 10"), "{reason}");
                    assert!(polls <= BACKWARDS_RESET, "still skipped after {polls} answers: {reason}");
                }
            }
        };
        assert_eq!(polls, BACKWARDS_RESET + 1, "fresh again at the first answer after the reset");
        assert_eq!(recovered, head);
        // And it stays fresh.
        for _ in 0..20 {
            head += 1;
            assert_eq!(judge(&mut r, answer(head, 10, false)), Ok(head));
        }
    }

    #[test]
    fn head_and_counter_follow_the_same_rule() {
        for bogus_head in [false, true] {
            let mut r = reader();
            assert_eq!(judge(&mut r, answer(1000, 10, true)), Ok(1000));
            let (h, m) = if bogus_head { (5_000_000, 10) } else { (1001, 5_000_000) };
            assert_eq!(judge(&mut r, answer(h, m, false)), Ok(h));
            let what = if bogus_head { "head went backwards" } else { "total_missed went backwards" };
            for n in 1..=BACKWARDS_RESET {
                let reason = judge(&mut r, answer(1001 + n, 10, false)).expect_err("distrusted");
                assert!(reason.contains(what), "{reason}");
                assert_eq!(reason.contains("forgotten"), n == BACKWARDS_RESET, "{reason}");
            }
            assert_eq!(judge(&mut r, answer(1010, 10, false)), Ok(1010), "bogus head: {bogus_head}");
        }
    }

    #[test]
    fn a_single_lagging_answer_is_skipped_and_changes_nothing() {
        let mut r = reader();
        assert_eq!(judge(&mut r, answer(1000, 10, true)), Ok(1000));
        assert!(judge(&mut r, answer(999, 10, false)).is_err_and(|e| e.contains("head went backwards")));
        assert!(judge(&mut r, answer(1001, 9, false)).is_err_and(|e| e.contains("total_missed went backwards")));
        assert_eq!(judge(&mut r, answer(1001, 10, false)), Ok(1001));
        assert_eq!(r.memory[0].head.last, Some(1001));
        assert_eq!(r.memory[0].missed.last, Some(10));
    }

    #[test]
    fn the_chain_id_is_read_on_first_contact_then_every_n_reads() {
        let mut r = reader();
        let mut checks = Vec::new();
        for n in 0..(3 * CHAIN_RECHECK_READS) {
            let check = r.memory[0].take_chain_check();
            if check {
                checks.push(n);
            }
            assert!(judge(&mut r, answer(1000 + n, 10, check)).is_ok());
        }
        assert_eq!(checks, vec![0, CHAIN_RECHECK_READS, 2 * CHAIN_RECHECK_READS]);
    }

    #[test]
    fn the_chain_id_is_read_again_after_a_failure() {
        let mut r = reader();
        assert!(r.memory[0].take_chain_check());
        assert!(judge(&mut r, answer(1000, 10, true)).is_ok());
        assert!(!r.memory[0].take_chain_check());
        assert!(judge(&mut r, failure()).is_err());
        assert!(r.memory[0].take_chain_check(), "the first read after a failure checks the chain");
        assert!(judge(&mut r, failure()).is_err());
        assert!(r.memory[0].take_chain_check(), "and every one until it answers");
        assert!(judge(&mut r, answer(1001, 10, true)).is_ok());
        assert!(!r.memory[0].take_chain_check());
    }

    #[test]
    fn an_endpoint_that_changes_chain_is_dropped_noticed_once_and_may_come_back() {
        let mut r = reader();
        assert!(judge(&mut r, answer(1000, 10, true)).is_ok());
        assert!(r.take_notices().is_empty());
        let reason = judge(&mut r, Ok(Read::OtherChain(OTHER.into()))).expect_err("dropped");
        assert!(matches!(r.judge(1, NOW, Ok(Read::OtherChain(OTHER.into()))), Answer::Dropped(_)));
        assert!(reason.contains(&format!("now serves chain id {OTHER}, not the configured {CHAIN}")), "{reason}");
        let notices = r.take_notices();
        assert_eq!(notices.len(), 2, "{notices:?}");
        assert_eq!(
            notices[0],
            format!("http://127.0.0.1:9/ dropped: now serves chain id {OTHER}, not the configured {CHAIN}")
        );
        assert!(
            notices[1].starts_with("http://127.0.0.1:10/ dropped: serves chain id"),
            "never confirmed: {}",
            notices[1]
        );
        assert_eq!(r.troubles().len(), 2);
        // Still on the other chain at the next probe: skipped, no new notice.
        assert!(judge(&mut r, Ok(Read::OtherChain(OTHER.into()))).is_err_and(|e| e.contains("dropped")));
        assert!(judge(&mut r, failure()).is_err_and(|e| e.contains("dropped") && e.contains("re-check failed")));
        assert!(r.take_notices().is_empty());
        assert!(!r.memory[0].take_chain_check(), "a dropped endpoint is probed every N polls");
        // Back on the configured chain: used again, with nothing remembered from before (a lower head is fine).
        assert_eq!(judge(&mut r, answer(900, 3, true)), Ok(900));
        assert_eq!(
            r.take_notices(),
            vec![format!("http://127.0.0.1:9/ serves the configured chain id {CHAIN} again: back in use")]
        );
        assert_eq!(r.troubles().len(), 1, "endpoint 1 is still dropped");
    }
}
