//! The second stage of configuration: the settings against the chain, before anything is armed.
//!
//! The producer finds what is wrong on chain (`GrapheneProducer::preflight`); this module names the
//! variable behind each finding, adds the threshold check, and splits errors from warnings.

use super::vars::{self, Problem};
use crate::producer::graphene::{Finding, GrapheneProducer, Subject};
use crate::rpc::reading::Snapshot;
use crate::trap::Trigger;

/// What the check found.
#[derive(Debug, Default)]
pub struct CheckResult {
    /// The freshest reading, if the chain could be read.
    pub snapshot: Option<Snapshot>,
    /// Problems that stop arming.
    pub errors: Vec<Problem>,
    /// Things the operator should know (an unhealthy endpoint among healthy ones).
    pub warnings: Vec<Problem>,
}

impl CheckResult {
    /// The chain could not be read at all.
    pub fn chain_unreachable(&self) -> bool {
        self.snapshot.is_none() && !self.errors.iter().any(|p| p.var == vars::WITNESS_ACCOUNT)
    }
}

fn variable(subject: &Subject) -> &'static str {
    match subject {
        Subject::Account => vars::WITNESS_ACCOUNT,
        Subject::Endpoint(_) => vars::RPC_URLS,
        Subject::SigningKey => vars::SIGNING_WIF,
        Subject::ActiveKey => vars::ACTIVE_WIF,
        Subject::BackupKey => vars::BACKUP_SIGNING_KEY,
    }
}

/// Run the chain checks. `arming` is true when this start would arm a fresh trap: then a `THRESHOLD`
/// already reached is an error (an armed trap that finds it reached after a restart fires instead).
pub async fn check(producer: &mut GrapheneProducer, trigger: Trigger, arming: bool) -> CheckResult {
    let (snapshot, findings) = producer.preflight().await;
    let mut result = CheckResult { snapshot, ..Default::default() };
    for Finding { subject, fatal, message, fix } in findings {
        let p = Problem::new(variable(&subject), message, fix);
        if fatal {
            result.errors.push(p);
        } else {
            result.warnings.push(p);
        }
    }
    if let (Some(snap), Trigger::Absolute(t), true) = (&result.snapshot, trigger, arming) {
        let current = snap.witness.total_missed;
        if current >= t {
            result.errors.push(Problem::new(
                vars::THRESHOLD,
                format!("total_missed is already {current}, at or past THRESHOLD {t}: the trap would fire at once"),
                format!("set THRESHOLD above {current}, or use MISSED_BLOCKS_ALLOWED to count from now"),
            ));
        }
    }
    result
}
