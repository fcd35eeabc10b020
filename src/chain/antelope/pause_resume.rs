//! The pause/resume failover of an Antelope producer (`SWAP=producer-api`): two or more synced nodeos with
//! the same signing key, exactly one unpaused; the trap watches off-host as for `regproducer`, and fails
//! over through the node agents (`crate::agent`) with `producer_api` pause and resume.
//!
//! The order is the point. Execute (and every re-execution after a restart) first **fences** the node that
//! produces now: pause it through its agent and read back `paused = true`. Only when that is not possible
//! (its agent unreachable, refusing, or its nodeos not answering) does it fall back to the chain: the
//! producer's last block must be at least `PAUSE_FENCE_SECS` old (default two rounds), so a node that is
//! cut off from the trap but still producing is never joined by a second one. Then it resumes the target
//! node. Confirmation is on chain: a block of the producer after the resume. Nothing here signs a chain
//! transaction; the trap's own machinery persists each attempt before it is executed.
//!
//! Keys do not identify nodes here (they all hold the same one), so the "keys" the trap records are node
//! names: `node:bp2`. Ordered backups are the agents after the first in `AGENT_URLS`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{AntelopeBaseline, AntelopeProducer};
use crate::agent::client::{AgentClient, ClientError, ClientOptions};
use crate::agent::keys::AgentSigningKey;
use crate::chain::{
    ChainTime, Corroboration, EndpointStat, Evidence, Finding, Identity, Observation, Preflight, Producer, Subject,
    SwapAttempt, SwapError, SwapStatus, Turns,
};
use chain_clock::SharedClock;

/// The prefix of a node as the trap records it in place of a key.
pub const NODE_PREFIX: &str = "node:";

/// One node and its agent (`AGENT_URLS` entry `NAME=URL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentNode {
    pub name: String,
    pub url: String,
}

/// What the pause/resume failover needs.
#[derive(Clone)]
pub struct PauseResumeSettings {
    /// The primary first, then the backups in order.
    pub nodes: Vec<AgentNode>,
    /// `PAUSE_FENCE_SECS`: the silence that stands in for a confirmed pause.
    pub fence: Duration,
    /// `AGENT_CLIENT_KEY_FILE`: the trap's Ed25519 key the agents trust.
    pub client_key: Arc<AgentSigningKey>,
    /// `AGENT_CA_FILE`: a PEM certificate to trust for `https://` agents.
    pub ca_pem: Option<Vec<u8>>,
    /// How long one agent request may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for PauseResumeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PauseResumeSettings").field("nodes", &self.nodes).field("fence", &self.fence).finish()
    }
}

/// How far behind the chain a backup node's head may be and still count as synced: one turn.
pub const SYNC_TOLERANCE: u64 = 12;

/// Blocks of one round on a 21-producer schedule, and so the default fence: two rounds.
pub const DEFAULT_FENCE: Duration = Duration::from_millis(2 * 21 * 12 * 500);

/// Why a node could not be driven.
fn agent_problem(e: &ClientError) -> String {
    e.to_string()
}

/// The Antelope producer with the pause/resume failover.
pub struct PauseResumeProducer {
    watch: AntelopeProducer,
    nodes: Vec<(AgentNode, AgentClient)>,
    /// The node producing now (guarded), and the one a fire resumes.
    current: usize,
    target: usize,
    fence: Duration,
    clock: SharedClock,
    /// When this process resumed the target (chain time), for the confirmation.
    resumed_at: Option<ChainTime>,
    notices: Vec<String>,
}

impl PauseResumeProducer {
    pub fn new(watch: AntelopeProducer, settings: PauseResumeSettings, clock: SharedClock) -> Result<Self, String> {
        if settings.nodes.len() < 2 {
            return Err("AGENT_URLS needs the primary's agent and at least one backup's".into());
        }
        let options = ClientOptions {
            timeout: settings.timeout,
            root_certificate_pem: settings.ca_pem.clone(),
            ..Default::default()
        };
        let nodes = settings
            .nodes
            .iter()
            .map(|n| {
                AgentClient::new(&n.url, settings.client_key.clone(), clock.clone(), options.clone())
                    .map(|c| (n.clone(), c))
                    .map_err(|e| format!("agent {}: {e}", n.name))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            watch,
            nodes,
            current: 0,
            target: 1,
            fence: settings.fence,
            clock,
            resumed_at: None,
            notices: Vec::new(),
        })
    }

    fn now(&self) -> ChainTime {
        ChainTime::now(self.clock.as_ref())
    }

    fn label(&self, i: usize) -> String {
        format!("{NODE_PREFIX}{}", self.nodes[i].0.name)
    }

    fn index_of(&self, text: &str) -> Option<usize> {
        let name = text.strip_prefix(NODE_PREFIX).unwrap_or(text);
        self.nodes.iter().position(|(n, _)| n.name == name)
    }

    /// Pause the current node and read the pause back; otherwise the chain's silence must stand in.
    async fn fence_current(&mut self) -> Result<String, SwapError> {
        let (node, client) = &self.nodes[self.current];
        let paused = match client.pause(&node.name).await {
            Ok(_) => client.paused(&node.name).await,
            Err(e) => Err(e),
        };
        match paused {
            Ok(true) => return Ok(format!("{} paused through its agent", node.name)),
            Ok(false) => tracing::warn!(node = %node.name, "the node answered paused = false after a pause"),
            Err(e) => tracing::warn!(node = %node.name, error = %agent_problem(&e), "cannot pause the producing node"),
        }
        // The agent cannot confirm the pause: only the chain's silence may stand in for it, read up to the
        // head now (a block of the producer since the last look must count).
        if let Err(why) = self.watch.catch_up().await {
            return Err(SwapError::Transient(format!(
                "{} could not be paused and the chain cannot be read to its head ({why}): not resuming {}",
                node.name, self.nodes[self.target].0.name
            )));
        }
        let now = self.now().as_millis();
        let last = self.watch.last_possible_block_ms().unwrap_or(now);
        let silent = Duration::from_millis(now.saturating_sub(last));
        if silent >= self.fence {
            let note = format!(
                "{} could not be paused through its agent; the chain has shown no block of the producer for {} s \
                 (PAUSE_FENCE_SECS {}), so it is taken as stopped",
                node.name,
                silent.as_secs(),
                self.fence.as_secs()
            );
            self.notices.push(note.clone());
            return Ok(note);
        }
        Err(SwapError::Transient(format!(
            "{} could not be paused and the producer's last block is {} s old: waiting for {} s of silence \
             (PAUSE_FENCE_SECS) before resuming {}",
            node.name,
            silent.as_secs(),
            self.fence.as_secs(),
            self.nodes[self.target].0.name
        )))
    }
}

impl Producer for PauseResumeProducer {
    type Baseline = AntelopeBaseline;

    fn identity(&self) -> Identity {
        self.watch.identity()
    }

    fn target(&self) -> String {
        self.label(self.target)
    }

    fn block_interval(&self) -> Duration {
        self.watch.block_interval()
    }

    async fn preflight(&mut self) -> Preflight<AntelopeBaseline> {
        let mut p = self.watch.preflight().await;
        // Every agent reachable and authenticated, exactly one node unpaused: the current one.
        let mut unpaused = Vec::new();
        for (i, (node, client)) in self.nodes.iter().enumerate() {
            match client.paused(&node.name).await {
                Ok(false) => unpaused.push(i),
                Ok(true) => {}
                Err(e) => p.findings.push(Finding {
                    subject: Subject::Agent,
                    fatal: true,
                    message: format!("node {}: {}", node.name, agent_problem(&e)),
                    fix:
                        "start `witness-trap agent` on that host with this trap's key in AGENT_TRUSTED_KEYS, and check \
                          AGENT_URLS"
                            .into(),
                }),
            }
        }
        // Every other node synced: its local head within a turn of the chain's.
        let chain_head = p.reading.as_ref().map(|(_, b)| b.head_block);
        if let Some(chain_head) = chain_head {
            for (i, (node, client)) in self.nodes.iter().enumerate() {
                if i == self.current {
                    continue;
                }
                match client.head(&node.name).await {
                    Ok(h) if h + SYNC_TOLERANCE < chain_head => p.findings.push(Finding {
                        subject: Subject::Agent,
                        fatal: true,
                        message: format!(
                            "node {} is not synced: its head is block {h}, the chain's {chain_head} ({} behind)",
                            node.name,
                            chain_head - h
                        ),
                        fix: "let that nodeos catch up (a failover to it would miss blocks), then check again".into(),
                    }),
                    Ok(_) => {}
                    Err(e) => {
                        if p.findings.iter().all(|f| !f.message.starts_with(&format!("node {}:", node.name))) {
                            p.findings.push(Finding {
                                subject: Subject::Agent,
                                fatal: true,
                                message: format!("node {}: cannot read its head: {}", node.name, agent_problem(&e)),
                                fix: "check that agent and its nodeos".into(),
                            });
                        }
                    }
                }
            }
        }
        let names = |v: &[usize]| v.iter().map(|i| self.nodes[*i].0.name.clone()).collect::<Vec<_>>().join(", ");
        if p.findings.iter().all(|f| f.subject != Subject::Agent) && unpaused != [self.current] {
            p.findings.push(Finding {
                subject: Subject::Agent,
                fatal: true,
                message: if unpaused.is_empty() {
                    "every node is paused: nothing produces".into()
                } else {
                    format!(
                        "unpaused: {} — exactly one node, {}, must produce (the others paused)",
                        names(&unpaused),
                        self.nodes[self.current].0.name
                    )
                },
                fix: "pause every node but the current one (`curl -X POST …/v1/producer/pause` on its host)".into(),
            });
        }
        if p.findings.iter().all(|f| !f.fatal) {
            p.summary = p.summary.map(|_| {
                format!(
                    "{} produces; a fire pauses it and resumes {} through their agents",
                    self.nodes[self.current].0.name, self.nodes[self.target].0.name
                )
            });
        }
        p
    }

    async fn dry_run(&mut self) -> Result<SwapAttempt, SwapError> {
        self.prepare().await
    }

    async fn observe(&mut self, baseline: &AntelopeBaseline) -> Observation {
        self.watch.observe(baseline).await
    }

    async fn corroborate(&mut self, first: &Evidence, baseline: &AntelopeBaseline, allowed: u64) -> Corroboration {
        self.watch.corroborate(first, baseline, allowed).await
    }

    async fn prepare(&mut self) -> Result<SwapAttempt, SwapError> {
        let (from, to) = (&self.nodes[self.current].0.name, &self.nodes[self.target].0.name);
        let now = self.now();
        Ok(SwapAttempt {
            id: format!("pause-resume:{from}->{to}@{}", now.as_millis()),
            // A resumed node that has not produced within two rounds plus the fence: try again.
            expires_at: now.saturating_add(self.fence + DEFAULT_FENCE),
            label: format!("producer_api pause {from}, resume {to}"),
            payload: json!({ "pause": from, "resume": to }),
        })
    }

    /// Fence first, resume second, every time (a restart re-executes the recorded attempt through here).
    async fn execute(&mut self, _attempt: &SwapAttempt) -> Result<(), SwapError> {
        let how = self.fence_current().await?;
        let (node, client) = &self.nodes[self.target];
        client.resume(&node.name).await.map_err(|e| SwapError::Transient(format!("resume {}: {e}", node.name)))?;
        tracing::warn!(fence = %how, resumed = %node.name, "resumed the backup node");
        self.resumed_at = Some(self.now());
        Ok(())
    }

    async fn status(&mut self, _attempts: &[String], expires_at: Option<ChainTime>) -> SwapStatus {
        let Some(resumed) = self.resumed_at else {
            return match expires_at {
                Some(t) if self.now() > t => SwapStatus::Expired,
                _ => SwapStatus::Pending,
            };
        };
        // Any look polls the heads; a block of the producer after the resume is the new node's.
        let _ = self.watch.turns().await;
        match self.watch.last_produced_ms() {
            Some(t) if t > resumed.as_millis() => SwapStatus::InEffect { id: None },
            _ if expires_at.is_some_and(|t| self.now() > t) => SwapStatus::Expired,
            _ => SwapStatus::Pending,
        }
    }

    fn next_look(&self) -> Option<ChainTime> {
        self.watch.next_look()
    }

    fn watch_note(&self) -> String {
        format!("{} (producing: {})", self.watch.watch_note(), self.nodes[self.current].0.name)
    }

    fn counter_name(&self) -> &'static str {
        self.watch.counter_name()
    }

    fn take_notices(&mut self) -> Vec<String> {
        let mut n = self.watch.take_notices();
        n.append(&mut self.notices);
        n
    }

    fn troubles(&self) -> Vec<String> {
        self.watch.troubles()
    }

    async fn turns(&mut self) -> Result<Turns, String> {
        self.watch.turns().await
    }

    fn take_endpoint_stats(&mut self) -> Vec<EndpointStat> {
        self.watch.take_endpoint_stats()
    }

    fn endpoint_urls(&self) -> Vec<String> {
        self.watch.endpoint_urls()
    }

    fn calls(&self) -> u64 {
        self.watch.calls()
    }

    fn canonical_key(&self, _text: &str) -> String {
        // Every node holds the same key: what is given up is the node producing now.
        self.label(self.current)
    }

    fn assume_roles(&mut self, current: &str, backup: &str) -> Result<(), String> {
        let find = |t: &str| self.index_of(t).ok_or_else(|| format!("{t} is not a node of AGENT_URLS"));
        let (c, b) = (find(current)?, find(backup)?);
        self.current = c;
        self.target = b;
        self.resumed_at = None;
        Ok(())
    }
}
