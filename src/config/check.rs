//! The second stage of configuration: the settings against the chain, before anything is armed.
//!
//! The producer finds what is wrong on chain (`Producer::preflight`); this module names the variable behind
//! each finding for the chain family, adds the threshold check, and splits errors from warnings.

use super::vars::{self, Problem};
use crate::chain::{Baseline, ChainKind, EndpointHealth, Evidence, Finding, Producer, Subject};
use crate::trap::{TrapError, Trigger};

/// What the check found.
#[derive(Debug)]
pub struct CheckResult<B> {
    /// The reading arming would start from, if the chain could be read.
    pub reading: Option<(Evidence, B)>,
    /// Problems that stop arming.
    pub errors: Vec<Problem>,
    /// Things the operator should know (an unhealthy endpoint among healthy ones).
    pub warnings: Vec<Problem>,
    pub endpoints: Vec<EndpointHealth>,
    /// The producer's one-line summary when the chain could be read.
    pub summary: Option<String>,
}

impl<B> CheckResult<B> {
    /// The chain could not be read at all.
    pub fn chain_unreachable(&self) -> bool {
        self.reading.is_none() && !self.errors.iter().any(|p| names_the_configuration(&p.var))
    }

    /// Endpoint problems become warnings: a resumed trap skips such endpoints and keeps watching.
    pub fn endpoint_errors_as_warnings(&mut self) {
        let (endpoint, other): (Vec<_>, Vec<_>) = self.errors.drain(..).partition(|p| p.var == vars::RPC_URLS);
        self.warnings.extend(endpoint);
        self.errors = other;
    }
}

/// A chain that cannot be read for one of these is the configuration's fault, not the chain's: a producer
/// that does not exist, endpoints that all serve another chain.
pub fn names_the_configuration(var: &str) -> bool {
    [
        vars::WITNESS_ACCOUNT,
        vars::PRODUCER_ACCOUNT,
        vars::VOTE_ACCOUNT,
        vars::CHAIN,
        vars::CHAIN_ID,
        vars::SOLANA_CLUSTER,
    ]
    .contains(&var)
}

/// The variable an operator changes to fix a finding, on this chain family.
fn variable(kind: ChainKind, subject: &Subject) -> &'static str {
    match (kind, subject) {
        (ChainKind::Solana, Subject::Producer) => vars::VOTE_ACCOUNT,
        (ChainKind::Solana, Subject::Endpoint(_)) => vars::RPC_URLS,
        (ChainKind::Solana, Subject::Chain | Subject::ChainId) => vars::SOLANA_CLUSTER,
        (ChainKind::Solana, Subject::SwapKey | Subject::FallbackKey | Subject::Target) => vars::AGENT_URLS,
        (ChainKind::Graphene, Subject::Producer) => vars::WITNESS_ACCOUNT,
        (ChainKind::Graphene, Subject::Endpoint(_)) => vars::RPC_URLS,
        (ChainKind::Graphene, Subject::SwapKey) => vars::SIGNING_WIF,
        (ChainKind::Graphene, Subject::FallbackKey) => vars::ACTIVE_WIF,
        (_, Subject::Target) => vars::BACKUP_SIGNING_KEY,
        (_, Subject::Chain) => vars::CHAIN,
        (_, Subject::ChainId) => vars::CHAIN_ID,
        (_, Subject::Permission) => vars::FAILOVER_PERMISSION,
        (_, Subject::FinalizerKey) => vars::BACKUP_FINALIZER_KEY,
        (_, Subject::Agent) => vars::AGENT_URLS,
        (ChainKind::Antelope, Subject::Producer) => vars::PRODUCER_ACCOUNT,
        (ChainKind::Antelope, Subject::Endpoint(_)) => vars::RPC_URLS,
        (ChainKind::Antelope, Subject::SwapKey | Subject::FallbackKey) => vars::FAILOVER_WIF,
    }
}

/// Run the chain checks. `arming` is true when this start would arm a fresh trap: then a `THRESHOLD`
/// already reached is an error (an armed trap that finds it reached after a restart fires instead).
pub async fn check<P: Producer>(
    producer: &mut P,
    kind: ChainKind,
    trigger: Trigger,
    arming: bool,
) -> CheckResult<P::Baseline> {
    let pre = producer.preflight().await;
    let mut result = CheckResult {
        reading: pre.reading,
        errors: Vec::new(),
        warnings: Vec::new(),
        endpoints: pre.endpoints,
        summary: pre.summary,
    };
    for Finding { subject, fatal, message, fix } in pre.findings {
        let p = Problem::new(variable(kind, &subject), message, fix);
        if fatal {
            result.errors.push(p);
        } else {
            result.warnings.push(p);
        }
    }
    if let (Some((_, baseline)), true) = (&result.reading, arming) {
        match trigger.allowed(baseline.counter()) {
            Ok(_) => {}
            Err(TrapError::ThresholdReached { current, threshold }) => result.errors.push(Problem::new(
                vars::THRESHOLD,
                format!(
                    "{} is already {current}, at or past THRESHOLD {threshold}: the trap would fire at once",
                    producer.counter_name()
                ),
                format!("set THRESHOLD above {current}, or use MISSED_BLOCKS_ALLOWED to count from now"),
            )),
            Err(e) => result.errors.push(Problem::new(vars::THRESHOLD, e.to_string(), "use MISSED_BLOCKS_ALLOWED")),
        }
    }
    result
}
