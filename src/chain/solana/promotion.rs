//! The Solana failover through the node agents: demote, move the tower, promote, confirm. The order is
//! the point, and every step is safe to repeat (a restart re-executes the recorded attempt from the top):
//!
//! 1. **Demote** the node that holds the staked identity: its agent sets the junk identity and reads it
//!    back, and hands over the staked identity's tower file.
//! 2. When that is impossible (its agent unreachable or refusing, its validator down), the cluster's
//!    silence stands in: the staked identity's last vote must be at least `TOWER_SAFE_SLOTS` slots old on
//!    the counting endpoints (never while any of them sees it voting), or, with
//!    `UNREACHABLE_PRIMARY=refuse`, nothing is promoted and the operator is told.
//! 3. No other node may hold the staked identity (each reachable agent is asked).
//! 4. **Promote** the target: its agent writes the tower and sets the staked identity with
//!    `require_tower` (without a tower only after the silence of step 2), and reads it back.
//! 5. Confirmed when the target's agent reports the staked identity and the cluster sees the vote
//!    account voting again.
//!
//! A failed or hung request (the agent client's timeout) is an alert and a retry of the same order; the
//! primary is never promoted back automatically, so the staked identity is on one node at most.

use std::sync::Arc;

use serde_json::json;

use super::look::{judge, Verdict};
use super::producer::Watch;
use super::{SolanaSettings, UnreachablePrimary};
use crate::agent::client::{AgentClient, ClientError, ClientOptions};
use crate::chain::antelope::pause_resume::{AgentNode, NODE_PREFIX};
use crate::chain::{ChainTime, Finding, Subject, SwapAttempt, SwapError, SwapStatus};
use chain_clock::SharedClock;

/// Whether `e` says the node cannot be reached at all (its agent gone, or its validator's process down: no
/// admin socket), as opposed to a node that answered and could not be demoted. Only the first may be stood
/// in for by the cluster's silence: a validator that answers but keeps the staked identity (a junk file it
/// cannot read, a hung admin call) would vote with it again when it recovers.
fn unreachable(e: &ClientError) -> bool {
    match e {
        ClientError::Unreachable { .. } | ClientError::Timeout { .. } => true,
        ClientError::ActionFailed { code, .. } => code == "validator_unreachable",
        _ => false,
    }
}

/// How long an attempt stands before a new one is made (each runs the whole order again).
pub const ATTEMPT_VALIDITY: std::time::Duration = std::time::Duration::from_secs(30);

/// The nodes, their agents, and where the staked identity is meant to be.
pub struct Promotion {
    nodes: Vec<(AgentNode, AgentClient)>,
    current: usize,
    target: usize,
    staked: String,
    tower_safe_slots: u64,
    policy: UnreachablePrimary,
    /// The tower the demoted node handed over, for the promotion.
    tower: Option<Vec<u8>>,
    /// The current node's agent confirmed its junk identity in this incident (this process).
    demoted: bool,
    notices: Vec<String>,
    /// Notices already given in this incident (each once).
    told: Vec<String>,
}

impl Promotion {
    pub fn new(settings: &SolanaSettings, clock: SharedClock) -> Result<Self, String> {
        if settings.nodes.len() < 2 {
            return Err("AGENT_URLS needs the primary's agent and at least one backup's".into());
        }
        let options = ClientOptions {
            timeout: settings.agent_timeout,
            root_certificate_pem: settings.ca_pem.clone(),
            ..Default::default()
        };
        let key: Arc<_> = settings.client_key.clone();
        let nodes = settings
            .nodes
            .iter()
            .map(|n| {
                AgentClient::new(&n.url, key.clone(), clock.clone(), options.clone())
                    .map(|c| (n.clone(), c))
                    .map_err(|e| format!("agent {}: {e}", n.name))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            nodes,
            current: 0,
            target: 1,
            staked: settings.identity.clone(),
            tower_safe_slots: settings.tower_safe_slots,
            policy: settings.unreachable_primary,
            tower: None,
            demoted: false,
            notices: Vec::new(),
            told: Vec::new(),
        })
    }

    fn label(&self, i: usize) -> String {
        format!("{NODE_PREFIX}{}", self.nodes[i].0.name)
    }

    pub fn current_label(&self) -> String {
        self.label(self.current)
    }

    pub fn target_label(&self) -> String {
        self.label(self.target)
    }

    pub fn current_name(&self) -> &str {
        &self.nodes[self.current].0.name
    }

    pub fn target_name(&self) -> &str {
        &self.nodes[self.target].0.name
    }

    /// Tell the operator `text` once per incident for each `kind` of news. Texts start with what matters:
    /// an SMS keeps its first 160 characters.
    fn tell(&mut self, kind: &str, text: String) {
        if !self.told.iter().any(|k| k == kind) {
            self.told.push(kind.to_string());
            self.notices.push(text);
        }
    }

    pub fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    /// Every agent answers, and exactly the current node holds the staked identity.
    pub async fn preflight(&self, findings: &mut Vec<Finding>) {
        for (node, _) in &self.nodes {
            // Answers are not signed: over plain HTTP a forged "demoted" could leave two staked nodes.
            let plain = reqwest::Url::parse(&node.url).is_ok_and(|u| {
                u.scheme() == "http"
                    && !matches!(u.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
                    && u.host_str() != Some("localhost")
                    && !matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
            });
            if plain {
                findings.push(Finding {
                    subject: Subject::Agent,
                    fatal: false,
                    message: format!(
                        "node {}'s agent is plain http:// off this host: a machine on the path could forge its answers",
                        node.name
                    ),
                    fix: "serve the agent with AGENT_TLS_CERT_FILE / AGENT_TLS_KEY_FILE and use https:// in AGENT_URLS"
                        .into(),
                });
            }
        }
        let mut holders = Vec::new();
        let mut all_answered = true;
        for (i, (node, client)) in self.nodes.iter().enumerate() {
            match client.identity(&node.name).await {
                Ok(id) if id == self.staked => holders.push(i),
                Ok(_) => {}
                Err(e) => {
                    all_answered = false;
                    findings.push(Finding {
                        subject: Subject::Agent,
                        fatal: true,
                        message: format!("node {}: {e}", node.name),
                        fix:
                            "start `witness-trap agent` (AGENT_ACTION=solana-admin) on that host with this trap's key \
                              in AGENT_TRUSTED_KEYS, and check AGENT_URLS"
                                .into(),
                    });
                }
            }
        }
        let names = |v: &[usize]| v.iter().map(|i| self.nodes[*i].0.name.clone()).collect::<Vec<_>>().join(", ");
        if all_answered && holders != [self.current] {
            findings.push(Finding {
                subject: Subject::Agent,
                fatal: true,
                message: if holders.is_empty() {
                    format!("no node holds the staked identity {}: nothing votes", self.staked)
                } else {
                    format!(
                        "the staked identity {} is on {} — exactly one node, {}, must hold it (the others their junk \
                         identity)",
                        self.staked,
                        names(&holders),
                        self.nodes[self.current].0.name
                    )
                },
                fix: "set-identity the junk keypair on every node but the primary (the first of AGENT_URLS)".into(),
            });
        }
    }

    /// Slots since the cluster's last vote from the staked identity, on the counting endpoints; an error
    /// when any of them sees it voting, or the cluster cannot be read.
    async fn silence(&self, watch: &mut Watch) -> Result<u64, String> {
        let reads = watch.read_all().await;
        match judge(&reads, watch.max_lag) {
            Verdict::Down { views } | Verdict::Unstaked { views } | Verdict::Broke { views, .. } => {
                Ok(views.iter().map(|v| v.lag()).min().unwrap_or(0))
            }
            Verdict::Voting { views } => Err(format!(
                "the cluster still sees votes from the staked identity (per {})",
                views.iter().map(|v| v.url.as_str()).collect::<Vec<_>>().join(", ")
            )),
            Verdict::Disagree { voting, .. } => Err(format!(
                "some endpoints still see votes from the staked identity ({})",
                voting.iter().map(|v| v.url.as_str()).collect::<Vec<_>>().join(", ")
            )),
            Verdict::Blind(why) => Err(format!("the cluster cannot be read: {why}")),
        }
    }

    /// The primary's agent answered, but the primary could not be demoted: never promote over it.
    fn answered_but(&mut self, e: &ClientError) -> SwapError {
        let (primary, target) = (self.current_name().to_string(), self.target_name().to_string());
        let text = format!(
            "{primary} answered but could not be demoted, so {target} is not promoted (the staked identity may \
             still be on {primary}); retrying until FIRE_TIMEOUT_SECS: {e}"
        );
        self.tell("answered", text.clone());
        SwapError::Transient(text)
    }

    fn waiting(&self, primary: &str, target: &str, why: &str, silent: u64) -> SwapError {
        SwapError::Transient(format!(
            "{primary} {why}; the staked identity's last vote is {silent} slots old: waiting for {} \
             (TOWER_SAFE_SLOTS) before promoting {target} without its tower",
            self.tower_safe_slots
        ))
    }

    /// The silence that stands in for a tower: at least `TOWER_SAFE_SLOTS` since the last vote.
    async fn tower_safe(&mut self, watch: &mut Watch, why: &str) -> Result<u64, SwapError> {
        let (primary, target) = (self.current_name().to_string(), self.target_name().to_string());
        let silent = self
            .silence(watch)
            .await
            .map_err(|w| SwapError::Transient(format!("{why} and {w}: not promoting {target}")))?;
        if silent < self.tower_safe_slots {
            let why = why.strip_prefix(primary.as_str()).unwrap_or(why).trim_start();
            return Err(self.waiting(&primary, &target, why, silent));
        }
        Ok(silent)
    }

    /// Whether the primary may be left undemoted: the policy allows it and the silence is long enough.
    async fn stands_in(&mut self, watch: &mut Watch, why: &str) -> Result<u64, SwapError> {
        let (primary, target) = (self.current_name().to_string(), self.target_name().to_string());
        if self.policy == UnreachablePrimary::Refuse {
            self.tell(
                "refuse",
                format!(
                    "UNREACHABLE_PRIMARY=refuse: {primary} cannot be demoted, so {target} is not promoted. Demote \
                     {primary} by hand (set-identity to its junk keypair) or restore its agent; retrying until \
                     FIRE_TIMEOUT_SECS ({why})"
                ),
            );
            return Err(SwapError::Transient(format!(
                "{primary} cannot be demoted ({why}); UNREACHABLE_PRIMARY=refuse"
            )));
        }
        let silent = self.tower_safe(watch, &format!("{primary} cannot be demoted ({why})")).await?;
        self.tell(
            "stand-in",
            format!(
                "{primary} not demoted; no vote for {silent} slots >= TOWER_SAFE_SLOTS {}: promoting {target} without \
                 its tower ({why})",
                self.tower_safe_slots
            ),
        );
        Ok(silent)
    }

    pub async fn prepare(&mut self, watch: &mut Watch, now: ChainTime) -> Result<SwapAttempt, SwapError> {
        let (from, to) = (self.current_name().to_string(), self.target_name().to_string());
        // A read-only question first: an unreachable primary waits here, without recording attempts.
        let (node, client) = &self.nodes[self.current];
        let reachable = client.identity(&node.name).await;
        let without_demotion = match reachable {
            Ok(_) => false,
            // Demoted earlier in this incident: `execute` decides with the tower it gave.
            Err(e) if unreachable(&e) && self.demoted => true,
            Err(e) if unreachable(&e) => {
                self.stands_in(watch, &e.to_string()).await?;
                true
            }
            Err(e) => return Err(self.answered_but(&e)),
        };
        Ok(SwapAttempt {
            id: format!("set-identity:{from}->{to}@{}", now.as_millis()),
            expires_at: now.saturating_add(ATTEMPT_VALIDITY),
            label: format!("set-identity: demote {from} to its junk identity, promote {to} with the staked identity"),
            payload: json!({ "demote": from, "promote": to, "primary_unreachable": without_demotion }),
        })
    }

    /// Demote (or stand in), check, promote: every time from the top.
    pub async fn execute(&mut self, watch: &mut Watch, _attempt: &SwapAttempt) -> Result<(), SwapError> {
        let (primary, target) = (self.current_name().to_string(), self.target_name().to_string());
        let (node, client) = &self.nodes[self.current];
        match client.demote(&node.name).await {
            Ok(d) if d.identity == self.staked => {
                return Err(SwapError::Transient(format!(
                    "{primary} still reports the staked identity after the demotion: not promoting {target}"
                )))
            }
            Ok(d) => {
                tracing::warn!(node = %primary, identity = %d.identity, tower = d.tower.is_some(), "demoted");
                self.demoted = true;
                if d.tower.is_some() {
                    self.tower = d.tower;
                }
                if self.tower.is_none() {
                    // Demoted, but no tower came (another TOWER_PATH, a missing file): only the silence can
                    // stand in for it, whatever UNREACHABLE_PRIMARY says (the demotion itself is confirmed).
                    self.tower_safe(watch, &format!("{primary} is demoted but handed over no tower")).await?;
                }
            }
            // Demoted earlier in this incident and unreachable now: it cannot have taken the identity back
            // (it restarts junk), so the tower it gave then still holds, unless the cluster sees votes.
            Err(e) if unreachable(&e) && self.demoted => {
                tracing::warn!(node = %primary, error = %e, "unreachable now, demoted earlier in this incident");
                let silent = self.silence(watch).await.map_err(|w| {
                    SwapError::Transient(format!("{primary} was demoted but {w}: not promoting {target}"))
                })?;
                if self.tower.is_none() && silent < self.tower_safe_slots {
                    return Err(self.waiting(&primary, &target, "handed over no tower", silent));
                }
            }
            Err(e) if unreachable(&e) => {
                let why = e.to_string();
                self.stands_in(watch, &why).await?;
                // A tower from an earlier demotion in this incident would be stale: none now.
                self.tower = None;
            }
            Err(e) => return Err(self.answered_but(&e)),
        }
        for (i, (node, client)) in self.nodes.iter().enumerate() {
            if i == self.target || i == self.current {
                continue;
            }
            if let Ok(id) = client.identity(&node.name).await {
                if id == self.staked {
                    return Err(SwapError::Rejected(format!(
                        "{} holds the staked identity too: not promoting {target}; demote it by hand",
                        node.name
                    )));
                }
            }
        }
        let (node, client) = &self.nodes[self.target];
        match client.promote(&node.name, self.tower.as_deref()).await {
            Ok(id) if id == self.staked => {
                tracing::warn!(node = %target, tower = self.tower.is_some(), "promoted with the staked identity");
                Ok(())
            }
            Ok(id) => Err(SwapError::Transient(format!("{target} reports identity {id} after the promotion"))),
            Err(e) => {
                let primary_is = if self.demoted { "is demoted" } else { "is unreachable" };
                let text = format!(
                    "promotion of {target} failed, retrying until FIRE_TIMEOUT_SECS; {primary} {primary_is}, the \
                     staked identity is on no node the trap can see: {e}"
                );
                self.tell("promotion", text.clone());
                Err(SwapError::Transient(text))
            }
        }
    }

    pub async fn status(&mut self, watch: &mut Watch, expires_at: Option<ChainTime>, now: ChainTime) -> SwapStatus {
        let (node, client) = &self.nodes[self.target];
        let held = match client.identity(&node.name).await {
            Ok(id) => id == self.staked,
            Err(e) => return SwapStatus::Unknown(format!("{}: {e}", node.name)),
        };
        if held {
            match watch.look().await {
                Verdict::Voting { .. } => return SwapStatus::InEffect { id: None },
                Verdict::Blind(why) => return SwapStatus::Unknown(why),
                _ => {}
            }
        }
        match expires_at {
            Some(t) if now > t => SwapStatus::Expired,
            _ => SwapStatus::Pending,
        }
    }

    fn index_of(&self, text: &str) -> Option<usize> {
        let name = text.strip_prefix(NODE_PREFIX).unwrap_or(text);
        self.nodes.iter().position(|(n, _)| n.name == name)
    }

    pub fn assume_roles(&mut self, current: &str, backup: &str) -> Result<(), String> {
        let find = |t: &str| self.index_of(t).ok_or_else(|| format!("{t} is not a node of AGENT_URLS"));
        let (c, b) = (find(current)?, find(backup)?);
        self.current = c;
        self.target = b;
        self.tower = None;
        self.demoted = false;
        self.told.clear();
        Ok(())
    }
}
