//! One poll across every endpoint: which answers are fresh, well-formed and from the right chain.
//!
//! The trap must never act on bad data (protocol.md §6.2: "check that your RPC node itself is not stale").
//! Each endpoint is read concurrently (global properties, then the witness); an answer counts only if the
//! head block time is within `max_head_age` of now (either way: a head from the future means a wrong clock),
//! the head did not go backwards, the witness exists, and its `total_missed` did not go backwards on that
//! endpoint. The chain id of an endpoint is checked on first contact; a wrong one disables the endpoint.
//! Everything skipped is returned with its reason, for the log and for `status`.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use super::api::{self, Witness};
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

#[derive(Debug, Default, Clone)]
struct Memory {
    chain_checked: bool,
    disabled: Option<String>,
    last_head: Option<u32>,
    last_missed: Option<u64>,
    /// Consecutive answers below `last_missed`; after a few, the earlier (higher) value was the bogus one.
    backwards: u32,
}

/// After this many consecutive lower answers, an endpoint's remembered counter is reset to what it says
/// now, so one bogus high answer (a bad backend behind a load balancer) cannot disable it for good.
const BACKWARDS_RESET: u32 = 3;

/// Reads the chain from several endpoints and remembers, per endpoint, what it said last.
pub struct Reader {
    settings: ReaderSettings,
    endpoints: Vec<Arc<Endpoint>>,
    memory: Vec<Memory>,
    clock: SharedClock,
}

enum Answer {
    Fresh(Snapshot),
    Skipped(String),
    WrongChain(String),
}

impl Reader {
    pub fn new(settings: ReaderSettings, clock: SharedClock) -> Result<Self, RpcError> {
        let endpoints = settings
            .urls
            .iter()
            .map(|u| Endpoint::new(u, settings.timeout).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let memory = vec![Memory::default(); endpoints.len()];
        Ok(Self { settings, endpoints, memory, clock })
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
            if let Some(reason) = &self.memory[i].disabled {
                poll.skipped.push(Skip { url: ep.url().to_string(), reason: reason.clone() });
                continue;
            }
            let ep = Arc::clone(ep);
            let check_chain = !self.memory[i].chain_checked;
            let account = self.settings.account.clone();
            let clock = Arc::clone(&self.clock);
            // Bound the whole read (up to three calls), so one slow endpoint cannot hold the poll.
            let deadline = self.settings.timeout * 2;
            set.spawn(async move {
                let read = tokio::time::timeout(deadline, read_endpoint(&ep, &account, check_chain)).await;
                let result = read.unwrap_or_else(|_| {
                    Err(RpcError::Timeout { endpoint: ep.url().to_string(), secs: deadline.as_secs() })
                });
                // Freshness is judged at the moment this endpoint answered, not when the slowest one did.
                (i, clock.now().as_secs(), result)
            });
        }
        let mut raw = Vec::new();
        while let Some(joined) = set.join_next().await {
            if let Ok(r) = joined {
                raw.push(r);
            }
        }
        raw.sort_by_key(|(i, _, _)| *i);
        for (i, now, result) in raw {
            let url = self.endpoints[i].url().to_string();
            match self.judge(i, now, result) {
                Answer::Fresh(s) => poll.fresh.push(s),
                Answer::Skipped(reason) => {
                    tracing::warn!(endpoint = %url, %reason, "endpoint skipped");
                    poll.skipped.push(Skip { url, reason });
                }
                Answer::WrongChain(reason) => {
                    tracing::error!(endpoint = %url, %reason, "endpoint disabled: wrong chain");
                    self.memory[i].disabled = Some(reason.clone());
                    poll.skipped.push(Skip { url, reason });
                }
            }
        }
        poll
    }

    fn judge(&mut self, i: usize, now: u64, result: Result<Raw, RpcError>) -> Answer {
        let raw = match result {
            Ok(r) => r,
            Err(e) => return Answer::Skipped(e.to_string()),
        };
        let mem = &mut self.memory[i];
        if let Some(id) = &raw.chain_id {
            if !id.eq_ignore_ascii_case(&self.settings.chain_id_hex) {
                return Answer::WrongChain(format!(
                    "chain id {id} differs from the configured {}",
                    self.settings.chain_id_hex
                ));
            }
            mem.chain_checked = true;
        }
        let head_time = match raw.dgp.time.parse::<TimePointSec>() {
            Ok(t) => u64::from(t.0),
            Err(_) => return Answer::Skipped(format!("head block time {:?} is not a timestamp", raw.dgp.time)),
        };
        let age = self.settings.max_head_age.as_secs();
        if now > head_time + age {
            return Answer::Skipped(format!(
                "stale: head block {} is {} s old (limit {age} s)",
                raw.dgp.head_block_number,
                now - head_time
            ));
        }
        if head_time > now + age {
            return Answer::Skipped(format!(
                "head block time is {} s in the future: check this machine's clock",
                head_time - now
            ));
        }
        if let Some(last) = mem.last_head {
            if raw.dgp.head_block_number < last {
                return Answer::Skipped(format!("head went backwards from {last} to {}", raw.dgp.head_block_number));
            }
        }
        let Some(witness) = raw.witness else {
            return Answer::Skipped(format!("no witness named {:?} on this chain", self.settings.account));
        };
        if witness.owner != self.settings.account {
            return Answer::Skipped(format!("answered for witness {:?}", witness.owner));
        }
        if let Some(last) = mem.last_missed {
            if witness.total_missed < last {
                // The counter never decreases on chain (§6.2): this endpoint is lying or on a fork.
                mem.backwards += 1;
                if mem.backwards >= BACKWARDS_RESET {
                    mem.last_missed = Some(witness.total_missed);
                    mem.backwards = 0;
                }
                return Answer::Skipped(format!(
                    "distrusted: total_missed went backwards from {last} to {}",
                    witness.total_missed
                ));
            }
        }
        mem.backwards = 0;
        mem.last_head = Some(raw.dgp.head_block_number);
        mem.last_missed = Some(witness.total_missed);
        Answer::Fresh(Snapshot {
            endpoint: i,
            url: self.endpoints[i].url().to_string(),
            head_block_number: raw.dgp.head_block_number,
            head_block_id: raw.dgp.head_block_id,
            head_time,
            last_irreversible_block_num: raw.dgp.last_irreversible_block_num,
            current_aslot: raw.dgp.current_aslot,
            witness,
        })
    }
}

struct Raw {
    chain_id: Option<String>,
    dgp: api::GlobalProperties,
    witness: Option<Witness>,
}

async fn read_endpoint(ep: &Endpoint, account: &str, check_chain: bool) -> Result<Raw, RpcError> {
    let chain_id = if check_chain { Some(api::version(ep).await?.chain_id) } else { None };
    let dgp = api::global_properties(ep).await?;
    let witness = api::witness(ep, account).await?;
    Ok(Raw { chain_id, dgp, witness })
}
