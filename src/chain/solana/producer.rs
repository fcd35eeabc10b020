//! [`SolanaProducer`]: the guarded validator as the trap sees it. Each look reads every endpoint at once
//! (`getHealth`, `getSlot`, `getVoteAccounts`, and `getBalance` where the view is down), checks each
//! endpoint's `getGenesisHash` on first use and every [`GENESIS_RECHECK`] looks, and decides with
//! [`super::look::judge`]. A look that shows the validator down adds one to a streak; any other resets it,
//! so `CONFIRMATIONS` is consecutive looks. The failover itself is [`super::promotion`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::look::{judge, Answered, EndpointRead, Verdict, View, MIN_VOTE_BALANCE};
use super::promotion::Promotion;
use super::rpc::{Health, Production, RpcError, SolanaRpc};
use super::{SolanaBaseline, SolanaSettings, SLOT};
use crate::chain::{
    ChainTime, Corroboration, EndpointHealth, EndpointStat, Evidence, Finding, Identity, Observation, Preflight,
    Producer, Subject, SwapAttempt, SwapError, SwapStatus,
};
use chain_clock::SharedClock;

/// Looks between two checks of an endpoint's genesis hash (a load balancer can be repointed).
pub const GENESIS_RECHECK: u64 = 100;

/// An endpoint's genesis hash as last checked.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Genesis {
    Unchecked,
    Right,
    /// Another cluster's: never used again.
    Wrong(String),
}

/// A standing condition the operator hears of once when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    Fine,
    Disagree,
    Unstaked,
    Broke,
}

/// The cluster side: every endpoint, the looks, the streak.
pub struct Watch {
    pub(super) endpoints: Vec<Arc<SolanaRpc>>,
    genesis: Vec<Genesis>,
    expected_genesis: String,
    pub(super) vote_account: String,
    pub(super) identity: String,
    pub(super) max_lag: u64,
    looks: u64,
    pub(super) streak: u64,
    condition: Condition,
    /// The last decided look, for `status`.
    last: Option<String>,
    pub(super) production: Option<Production>,
    /// The smallest lag of the last look that showed the validator down.
    lag: Option<u64>,
    notices: Vec<String>,
    stats: Vec<EndpointStat>,
    latencies: Vec<Option<Duration>>,
}

impl Watch {
    fn new(settings: &SolanaSettings) -> Result<Self, RpcError> {
        let endpoints = settings
            .urls
            .iter()
            .map(|u| SolanaRpc::new(u, settings.timeout).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let n = endpoints.len();
        Ok(Self {
            stats: endpoints.iter().map(|e| EndpointStat { url: e.label().into(), up: false, latency: None }).collect(),
            endpoints,
            genesis: vec![Genesis::Unchecked; n],
            expected_genesis: settings.genesis_hash.clone(),
            vote_account: settings.vote_account.clone(),
            identity: settings.identity.clone(),
            max_lag: settings.max_lag,
            looks: 0,
            streak: 0,
            condition: Condition::Fine,
            last: None,
            production: None,
            lag: None,
            notices: Vec::new(),
            latencies: vec![None; n],
        })
    }

    /// Check the genesis hash of every endpoint due for it; a wrong one is dropped for good, with a notice.
    async fn check_genesis(&mut self) {
        let due = self.looks.is_multiple_of(GENESIS_RECHECK);
        for (i, e) in self.endpoints.iter().enumerate() {
            if !(self.genesis[i] == Genesis::Unchecked || (due && self.genesis[i] == Genesis::Right)) {
                continue;
            }
            match e.genesis_hash().await {
                Ok(h) if h == self.expected_genesis => self.genesis[i] = Genesis::Right,
                Ok(h) => {
                    self.notices.push(format!(
                        "{} serves another cluster (genesis hash {h}, expected {}): it is no longer used",
                        e.label(),
                        self.expected_genesis
                    ));
                    self.genesis[i] = Genesis::Wrong(h);
                }
                // Unreachable now: asked again on the next look, never used before it answers.
                Err(_) => {}
            }
        }
    }

    /// Read every endpoint once, at the same time.
    pub(super) async fn read_all(&mut self) -> Vec<EndpointRead> {
        self.check_genesis().await;
        self.looks += 1;
        let mut tasks = JoinSet::new();
        for (i, e) in self.endpoints.iter().enumerate() {
            let url = e.label().to_string();
            match &self.genesis[i] {
                Genesis::Right => {}
                Genesis::Unchecked => {
                    tasks.spawn(async move {
                        (EndpointRead { index: i, url, answer: Err("its genesis hash could not be read".into()) }, None)
                    });
                    continue;
                }
                Genesis::Wrong(h) => {
                    let why = format!("serves another cluster (genesis {h})");
                    tasks.spawn(async move { (EndpointRead { index: i, url, answer: Err(why) }, None) });
                    continue;
                }
            }
            let (e, vote, identity, max_lag) =
                (e.clone(), self.vote_account.clone(), self.identity.clone(), self.max_lag);
            tasks.spawn(async move {
                let started = Instant::now();
                let answer = read_one(&e, &vote, &identity, max_lag).await.map_err(|e| e.to_string());
                (EndpointRead { index: i, url, answer }, Some(started.elapsed()))
            });
        }
        let mut reads = Vec::new();
        while let Some(done) = tasks.join_next().await {
            if let Ok((read, latency)) = done {
                if latency.is_some() {
                    self.latencies[read.index] = latency;
                }
                reads.push(read);
            }
        }
        reads.sort_by_key(|r| r.index);
        reads
    }

    /// One look, decided; the per-endpoint stats updated.
    pub(super) async fn look(&mut self) -> Verdict {
        let reads = self.read_all().await;
        let verdict = judge(&reads, self.max_lag);
        let counted: Vec<usize> = match &verdict {
            Verdict::Voting { views } | Verdict::Down { views } | Verdict::Unstaked { views } => {
                views.iter().map(|v| v.index).collect()
            }
            Verdict::Broke { views, .. } => views.iter().map(|v| v.index).collect(),
            Verdict::Disagree { voting, down } => voting.iter().chain(down).map(|v| v.index).collect(),
            Verdict::Blind(_) => Vec::new(),
        };
        for (i, s) in self.stats.iter_mut().enumerate() {
            s.up = counted.contains(&i);
        }
        self.lag = match &verdict {
            Verdict::Down { views } => views.iter().map(View::lag).min(),
            _ => None,
        };
        if let Verdict::Down { views } = &verdict {
            // Skipped leader slots are context for the operator, never a reason to fire.
            if let Some(e) = views.first().map(|v| self.endpoints[v.index].clone()) {
                if let Ok(p) = e.production(&self.identity).await {
                    self.production = Some(p);
                }
            }
        }
        self.last = Some(describe(&verdict, self.max_lag));
        verdict
    }

    /// A look turned into what the trap decides on; the streak and the conditions kept.
    pub(super) async fn observe(&mut self, current_key: &str) -> Observation {
        let verdict = self.look().await;
        self.note_condition(&verdict);
        match verdict {
            Verdict::Down { views } => {
                self.streak += 1;
                Observation::Reading(self.evidence(&views, self.streak, current_key))
            }
            Verdict::Blind(why) => {
                self.streak = 0;
                Observation::Blind(why)
            }
            Verdict::Voting { views } | Verdict::Unstaked { views } | Verdict::Broke { views, .. } => {
                self.streak = 0;
                Observation::Reading(self.evidence(&views, 0, current_key))
            }
            Verdict::Disagree { voting, .. } => {
                self.streak = 0;
                Observation::Reading(self.evidence(&voting, 0, current_key))
            }
        }
    }

    fn evidence(&self, views: &[View], misses: u64, current_key: &str) -> Evidence {
        let first = views.first();
        Evidence {
            misses,
            counter: None,
            height: views.iter().map(|v| v.slot).max().unwrap_or(0),
            chain_time: ChainTime::from_millis(0),
            source: views.iter().map(|v| v.url.as_str()).collect::<Vec<_>>().join(" + "),
            source_index: first.map_or(0, |v| v.index),
            current_key: current_key.to_string(),
        }
    }

    /// Tell the operator once when a reason not to fire begins.
    fn note_condition(&mut self, verdict: &Verdict) {
        let now = match verdict {
            Verdict::Disagree { .. } => Condition::Disagree,
            Verdict::Unstaked { .. } => Condition::Unstaked,
            Verdict::Broke { .. } => Condition::Broke,
            Verdict::Voting { .. } | Verdict::Down { .. } => Condition::Fine,
            Verdict::Blind(_) => return,
        };
        if now != self.condition && now != Condition::Fine {
            let text = match verdict {
                Verdict::Disagree { voting, down } => format!(
                    "endpoints disagree, not firing: {} see votes, {} see none for more than {} slots",
                    urls(voting),
                    urls(down),
                    self.max_lag
                ),
                Verdict::Unstaked { .. } => {
                    "not voting, but unstaked (no activated stake): a failover would not help; not firing".to_string()
                }
                Verdict::Broke { balance, .. } => format!(
                    "not voting: identity has {balance} lamports, below the {MIN_VOTE_BALANCE} a vote needs; top it \
                     up. No failover: it cannot vote on any node ({})",
                    self.identity
                ),
                _ => String::new(),
            };
            self.notices.push(text);
        }
        self.condition = now;
    }

    /// The skipped leader slots of the epoch so far, as a sentence (or nothing when unknown).
    pub(super) fn production_note(&self) -> Option<String> {
        self.production.map(|p| {
            format!(
                "skipped {} of {} leader slots in slots {}..{} (getBlockProduction)",
                p.skipped(),
                p.leader_slots,
                p.first_slot,
                p.last_slot
            )
        })
    }

    pub(super) fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    fn troubles(&self) -> Vec<String> {
        self.endpoints
            .iter()
            .zip(&self.genesis)
            .filter_map(|(e, g)| match g {
                Genesis::Wrong(h) => Some(format!("{} serves another cluster (genesis {h})", e.label())),
                _ => None,
            })
            .collect()
    }

    fn calls(&self) -> u64 {
        self.endpoints.iter().map(|e| e.calls()).sum()
    }
}

fn urls(views: &[View]) -> String {
    views.iter().map(|v| v.url.as_str()).collect::<Vec<_>>().join(", ")
}

/// A look in one line, for `status` and the log.
fn describe(verdict: &Verdict, max_lag: u64) -> String {
    let lags = |views: &[View]| views.iter().map(|v| format!("{} behind at {}", v.lag(), v.url)).collect::<Vec<_>>();
    match verdict {
        Verdict::Voting { views } => format!("voting: last vote {}", lags(views).join(", ")),
        Verdict::Down { views } => {
            format!("NOT VOTING (more than {max_lag} slots): last vote {}", lags(views).join(", "))
        }
        Verdict::Disagree { voting, down } => {
            format!("endpoints disagree: voting per {}; not per {}", urls(voting), urls(down))
        }
        Verdict::Unstaked { .. } => "not voting, but unstaked".into(),
        Verdict::Broke { balance, .. } => format!("not voting, identity balance {balance} lamports (broke)"),
        Verdict::Blind(why) => format!("blind: {why}"),
    }
}

/// Health, slot and the vote account of one endpoint; the identity's balance where its view is down.
async fn read_one(e: &SolanaRpc, vote: &str, identity: &str, max_lag: u64) -> Result<Answered, RpcError> {
    let health = e.health().await?;
    if health != Health::Ok {
        return Ok(Answered { health, slot: 0, vote: None, balance: None });
    }
    let slot = e.slot().await?;
    let account = e.vote_account(vote).await?;
    let balance = match &account {
        Some(a) if slot.saturating_sub(a.last_vote) > max_lag => Some(e.balance(identity).await?),
        _ => None,
    };
    Ok(Answered { health, slot, vote: account, balance })
}

/// The Solana validator the trap guards.
pub struct SolanaProducer {
    pub(super) watch: Watch,
    pub(super) promotion: Promotion,
    cluster: String,
    clock: SharedClock,
}

impl SolanaProducer {
    pub fn new(settings: SolanaSettings, clock: SharedClock) -> Result<Self, String> {
        let watch = Watch::new(&settings).map_err(|e| e.to_string())?;
        let promotion = Promotion::new(&settings, clock.clone())?;
        Ok(Self { watch, promotion, cluster: settings.cluster.clone(), clock })
    }

    fn now(&self) -> ChainTime {
        ChainTime::now(self.clock.as_ref())
    }

    fn stamp(&self, mut o: Observation) -> Observation {
        if let Observation::Reading(e) = &mut o {
            e.chain_time = self.now();
        }
        o
    }
}

impl Producer for SolanaProducer {
    type Baseline = SolanaBaseline;

    fn identity(&self) -> Identity {
        Identity { producer: self.watch.vote_account.clone(), chain: self.cluster.clone() }
    }

    fn target(&self) -> String {
        self.promotion.target_label()
    }

    fn block_interval(&self) -> Duration {
        // While firing, a look every five slots: agents and endpoints are asked each time.
        SLOT * 5
    }

    async fn preflight(&mut self) -> Preflight<SolanaBaseline> {
        let mut findings = Vec::new();
        let mut endpoints = Vec::new();
        let reads = self.watch.read_all().await;
        for r in &reads {
            let e = &self.watch.endpoints[r.index];
            let health = match &r.answer {
                Ok(a) if a.health == Health::Ok => Ok(a.slot),
                Ok(a) => Err(format!("{:?}", a.health)),
                Err(why) => Err(why.clone()),
            };
            if let Err(why) = &health {
                findings.push(Finding {
                    subject: Subject::Endpoint(e.label().to_string()),
                    fatal: false,
                    message: format!("{}: {why}", e.label()),
                    fix: "repair or replace that endpoint; the trap needs two healthy endpoints to fire".into(),
                });
            }
            endpoints.push(EndpointHealth { url: e.label().to_string(), health });
            if let Ok(Answered { vote: Some(v), .. }) = &r.answer {
                if v.node_pubkey != self.watch.identity {
                    findings.push(Finding {
                        subject: Subject::Producer,
                        fatal: true,
                        message: format!(
                            "{} says vote account {}'s identity is {}, not IDENTITY {}",
                            e.label(),
                            self.watch.vote_account,
                            v.node_pubkey,
                            self.watch.identity
                        ),
                        fix: "set IDENTITY to the vote account's identity (`solana vote-account VOTE_ACCOUNT`)".into(),
                    });
                }
            }
        }
        for (e, g) in self.watch.endpoints.iter().zip(&self.watch.genesis) {
            if let Genesis::Wrong(h) = g {
                findings.push(Finding {
                    subject: Subject::Chain,
                    fatal: true,
                    message: format!("{} serves genesis hash {h}, not {}", e.label(), self.watch.expected_genesis),
                    fix: "point RPC_URLS at the cluster you guard, or fix SOLANA_CLUSTER / GENESIS_HASH".into(),
                });
            }
        }
        let verdict = judge(&reads, self.watch.max_lag);
        let mut reading = None;
        match &verdict {
            Verdict::Voting { views } if views.len() >= 2 || reads.len() < 2 => {
                let slot = views.iter().map(|v| v.slot).max().unwrap_or(0);
                let last_vote = views.iter().map(|v| v.last_vote).max().unwrap_or(0);
                let e = self.watch.evidence(views, 0, &self.promotion.current_label());
                reading = Some((
                    Evidence { chain_time: self.now(), ..e },
                    SolanaBaseline { vote_account: self.watch.vote_account.clone(), slot, last_vote },
                ));
                if views.iter().all(|v| v.stake == 0) {
                    findings.push(Finding {
                        subject: Subject::Producer,
                        fatal: false,
                        message: format!("vote account {} has no activated stake", self.watch.vote_account),
                        fix: "the trap never fails over an unstaked vote account; stake it, or ignore this".into(),
                    });
                }
            }
            Verdict::Voting { .. } => findings.push(Finding {
                subject: Subject::Endpoint(String::new()),
                fatal: true,
                message: "only one endpoint answers healthy: detection needs two that agree".into(),
                fix: "add or repair RPC_URLS so at least two healthy endpoints of the cluster answer".into(),
            }),
            Verdict::Down { views } | Verdict::Unstaked { views } | Verdict::Broke { views, .. } => {
                findings.push(Finding {
                    subject: Subject::Producer,
                    fatal: true,
                    message: format!(
                        "vote account {} is not voting now (last vote {} slots ago): the trap would fire at once",
                        self.watch.vote_account,
                        views.first().map_or(0, View::lag)
                    ),
                    fix: "bring the validator back to voting (or fail over by hand) before arming".into(),
                })
            }
            Verdict::Disagree { .. } => findings.push(Finding {
                subject: Subject::Endpoint(String::new()),
                fatal: true,
                message: describe(&verdict, self.watch.max_lag),
                fix: "check the endpoints: some see the validator voting and some do not".into(),
            }),
            Verdict::Blind(why) => findings.push(Finding {
                subject: Subject::Endpoint(String::new()),
                fatal: true,
                message: format!("the cluster cannot be read: {why}"),
                fix: "check RPC_URLS: at least two healthy endpoints of the cluster must answer".into(),
            }),
        }
        if let Ok(Some(balance)) = self.balance().await {
            if balance < MIN_VOTE_BALANCE {
                findings.push(Finding {
                    subject: Subject::Producer,
                    fatal: false,
                    message: format!(
                        "identity {} has {balance} lamports: it can no longer pay for votes",
                        self.watch.identity
                    ),
                    fix: "top up the identity account".into(),
                });
            }
        }
        self.promotion.preflight(&mut findings).await;
        let summary = (findings.iter().all(|f| !f.fatal) && reading.is_some()).then(|| {
            format!(
                "vote account {} votes; {} holds identity {}; a fire moves it to {} through their agents",
                self.watch.vote_account,
                self.promotion.current_name(),
                self.watch.identity,
                self.promotion.target_name()
            )
        });
        Preflight { reading, findings, endpoints, summary }
    }

    async fn dry_run(&mut self) -> Result<SwapAttempt, SwapError> {
        self.prepare().await
    }

    async fn observe(&mut self, _baseline: &SolanaBaseline) -> Observation {
        let current = self.promotion.current_label();
        let o = self.watch.observe(&current).await;
        self.stamp(o)
    }

    async fn corroborate(&mut self, first: &Evidence, _baseline: &SolanaBaseline, allowed: u64) -> Corroboration {
        // One more look, right away: the streak must still be a streak.
        let current = self.promotion.current_label();
        let o = self.watch.observe(&current).await;
        match self.stamp(o) {
            Observation::Reading(e) if e.misses >= allowed => {
                // Short first (an SMS keeps 160 characters): the lag, the looks, the skipped leader slots.
                let mut text = format!("no vote for {} slots ({} looks)", self.watch.lag.unwrap_or(0), e.misses);
                if let Some(p) = self.watch.production {
                    text = format!(
                        "{text}; skipped {} of {} leader slots this epoch (getBlockProduction)",
                        p.skipped(),
                        p.leader_slots
                    );
                }
                text = format!("{text}; slot {}, per {}", e.height, e.source);
                self.watch.notices.push(text);
                Corroboration::Confirmed(e)
            }
            Observation::Reading(e) if e.misses == 0 => Corroboration::Contradicted(e),
            Observation::Reading(_) => Corroboration::Confirmed(first.clone()),
            Observation::Blind(why) => Corroboration::Blind(why),
        }
    }

    async fn prepare(&mut self) -> Result<SwapAttempt, SwapError> {
        let now = self.now();
        self.promotion.prepare(&mut self.watch, now).await
    }

    async fn execute(&mut self, attempt: &SwapAttempt) -> Result<(), SwapError> {
        self.promotion.execute(&mut self.watch, attempt).await
    }

    async fn status(&mut self, _attempts: &[String], expires_at: Option<ChainTime>) -> SwapStatus {
        let now = self.now();
        self.promotion.status(&mut self.watch, expires_at, now).await
    }

    fn watch_note(&self) -> String {
        let mut note = self.watch.last.clone().unwrap_or_else(|| "not looked yet".into());
        if let Some(p) = self.watch.production_note() {
            note = format!("{note}; {p}");
        }
        format!("{note} (identity on: {})", self.promotion.current_name())
    }

    fn counter_name(&self) -> &'static str {
        "down looks"
    }

    fn take_notices(&mut self) -> Vec<String> {
        let mut n = self.watch.take_notices();
        n.append(&mut self.promotion.take_notices());
        n
    }

    fn troubles(&self) -> Vec<String> {
        self.watch.troubles()
    }

    fn take_endpoint_stats(&mut self) -> Vec<EndpointStat> {
        let mut stats = self.watch.stats.clone();
        for (s, l) in stats.iter_mut().zip(self.watch.latencies.iter_mut()) {
            s.latency = l.take();
        }
        stats
    }

    fn endpoint_urls(&self) -> Vec<String> {
        self.watch.endpoints.iter().map(|e| e.label().to_string()).collect()
    }

    fn calls(&self) -> u64 {
        self.watch.calls()
    }

    fn canonical_key(&self, _text: &str) -> String {
        self.promotion.current_label()
    }

    fn assume_roles(&mut self, current: &str, backup: &str) -> Result<(), String> {
        // A new node guarded: its down looks count from zero.
        self.watch.streak = 0;
        self.promotion.assume_roles(current, backup)
    }
}

impl SolanaProducer {
    /// The identity's balance as the first endpoint that answers says.
    async fn balance(&self) -> Result<Option<u64>, RpcError> {
        for (e, g) in self.watch.endpoints.iter().zip(&self.watch.genesis) {
            if *g == Genesis::Right {
                if let Ok(b) = e.balance(&self.watch.identity).await {
                    return Ok(Some(b));
                }
            }
        }
        Ok(None)
    }
}
