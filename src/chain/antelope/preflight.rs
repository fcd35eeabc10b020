//! Every check that can be made against an Antelope chain before arming (issue 15, item 5), each finding
//! naming what is wrong and what to do; `config::check` names the variable.

use super::api;
use super::{AntelopeBaseline, AntelopeProducer};
use crate::chain::{EndpointHealth, Finding, Preflight, Subject, SwapError};
use antelope_protocol::keys::{PrivateKey, PublicKey};

fn finding(subject: Subject, message: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding { subject, fatal: true, message: message.into(), fix: fix.into() }
}

impl AntelopeProducer {
    pub(super) async fn check_chain(&mut self) -> Preflight<AntelopeBaseline> {
        let mut findings = Vec::new();
        self.poll().await;
        let want = self.settings.chain_id.to_hex();
        let chain_subject = if self.settings.custom_chain { Subject::ChainId } else { Subject::Chain };
        let mut endpoints = Vec::new();
        for (view, ep) in self.views.iter().zip(&self.endpoints) {
            match (&view.info, &view.problem) {
                (Some(i), None) => endpoints.push(EndpointHealth { url: ep.url().into(), health: Ok(i.head_num) }),
                (_, Some(p)) => {
                    endpoints.push(EndpointHealth { url: ep.url().into(), health: Err(p.clone()) });
                    if p.starts_with("serves chain id") {
                        findings.push(finding(
                            chain_subject.clone(),
                            format!("{} {p}", ep.url()),
                            if self.settings.custom_chain {
                                "set CHAIN_ID to the chain the endpoints serve, or remove the endpoint from RPC_URLS"
                            } else {
                                "set CHAIN to the network the endpoints serve (eos, wax, telos, jungle, or antelope with \
                                 CHAIN_ID), or remove the endpoint from RPC_URLS"
                            },
                        ));
                    } else {
                        findings.push(Finding {
                            subject: Subject::Endpoint(ep.url().into()),
                            fatal: false,
                            message: format!("unhealthy: {p}"),
                            fix: "check the URL; the trap skips this endpoint while it fails".into(),
                        });
                    }
                }
                (None, None) => {}
            }
        }
        let Some(&ep) = self.fresh().first() else {
            if !findings.iter().any(|f| f.fatal) {
                findings.push(finding(
                    Subject::Endpoint(String::new()),
                    format!("no endpoint gave a fresh reading of {want}: {}", self.blind_reason()),
                    "give at least one reachable, synced nodeos API endpoint in RPC_URLS",
                ));
            }
            return Preflight { reading: None, findings, endpoints, summary: None };
        };
        let producer = self.settings.producer.clone();
        let e = self.endpoints[ep].clone();
        // With SWAP=producer-api nothing is signed on chain: the regproducer checks do not apply.
        let regproducer = self.settings.pause_resume.is_none();
        // The producer's row.
        let row = match api::producer_row(&e, &producer).await {
            Ok(Some(r)) => Some(r),
            Ok(None) => {
                findings.push(finding(
                    Subject::Producer,
                    format!("{producer:?} is not in eosio's producers table on {}", self.settings.network),
                    "set PRODUCER_ACCOUNT to the registered producer's account",
                ));
                None
            }
            Err(err) => {
                findings.push(finding(
                    Subject::Endpoint(e.url().into()),
                    format!("cannot read the producers table: {err}"),
                    "retry when the endpoint answers",
                ));
                None
            }
        };
        if let Some(r) = &row {
            if !r.is_active {
                findings.push(finding(
                    Subject::Producer,
                    format!("{producer} is registered but not active (unregprod): nothing to guard"),
                    "register the producer again (regproducer) before arming; the trap's swap would re-activate it",
                ));
            }
            let mut keys = r.authority_keys.clone();
            keys.push(r.producer_key.clone());
            if regproducer && self.has_backup(&keys) {
                findings.push(finding(
                    Subject::Target,
                    "is already the producer's key in the producers row: the swap would change nothing",
                    "set BACKUP_SIGNING_KEY to the backup node's key, not the primary's (if the backup already \
                     produces, fix the primary and rearm later)",
                ));
            }
        }
        // A key change already in flight.
        match self.seat(ep, true).await {
            Ok(_) => {
                if let Some(s) = &self.schedules {
                    let inflight = [s.pending.as_ref(), s.proposed.as_ref()]
                        .into_iter()
                        .flatten()
                        .any(|x| x.keys_of(&producer).is_some_and(|k| self.has_backup(k)));
                    if inflight && regproducer {
                        findings.push(finding(
                            Subject::Target,
                            "is already in the pending schedule: a key change is in flight",
                            "wait until it is active, then rearm with a new backup key",
                        ));
                    }
                    if s.active.position(&producer).is_none() {
                        findings.push(Finding {
                            subject: Subject::Producer,
                            fatal: false,
                            message: format!(
                                "{producer} is not in the active schedule: its misses count only once it is"
                            ),
                            fix: "nothing to do if it is a standby producer".into(),
                        });
                    }
                }
            }
            Err(err) => findings.push(finding(
                Subject::Endpoint(e.url().into()),
                format!("cannot read the producer schedule: {err}"),
                "retry when the endpoint answers",
            )),
        }
        if regproducer {
            self.check_permission(&e, &mut findings).await;
        }
        if let Some(fin) = self.settings.backup_finalizer_key.clone().filter(|_| regproducer) {
            match self.finalizer_key_active(ep, &fin).await {
                Ok((false, _)) => findings.push(finding(
                    Subject::FinalizerKey,
                    format!("is not registered for {producer} (eosio's finkeys table)"),
                    "register it first with regfinkey (signed by the active key), or remove BACKUP_FINALIZER_KEY",
                )),
                Ok((true, true)) => findings.push(Finding {
                    subject: Subject::FinalizerKey,
                    fatal: false,
                    message: "is already the active finalizer key: the swap will send regproducer alone".into(),
                    fix: "nothing to do".into(),
                }),
                Ok((true, false)) => {}
                Err(err) => findings.push(finding(
                    Subject::Endpoint(e.url().into()),
                    format!("cannot read the finalizer tables: {err}"),
                    "retry when the endpoint answers",
                )),
            }
        }
        // Build (never push) the swap from live data: whatever would stop it at 4 a.m. shows now.
        if regproducer && !findings.iter().any(|f| f.fatal) {
            if let Err(err) = self.prepare_swap().await {
                let subject = match err {
                    SwapError::Transient(_) => Subject::Endpoint(e.url().into()),
                    _ => Subject::SwapKey,
                };
                findings.push(finding(
                    subject,
                    format!("the swap cannot be built from the chain's data: {err}"),
                    "`witness-trap fire --dry-run` shows the swap",
                ));
            }
        }
        let info = self.head(ep).cloned();
        let summary = info.as_ref().map(|i| {
            format!(
                "{producer} on {} (head {}), key {}; the trap can sign regproducer to {} with {producer}@{}",
                self.settings.network,
                i.head_num,
                self.evidence(ep).current_key,
                self.target_text(),
                self.settings.permission
            )
        });
        let reading = info.map(|i| {
            let baseline = AntelopeBaseline { head_block: i.head_num, head_time_ms: i.head_time_ms };
            (self.evidence(ep), baseline)
        });
        Preflight { reading, findings, endpoints, summary }
    }

    /// The failover permission: holds FAILOVER_WIF's key with enough weight, is neither owner nor active,
    /// is linked to `eosio::regproducer` (and `actfinkey` with a finalizer key) and to nothing else; the key
    /// is not also in owner or active; the account has CPU and NET for one more transaction.
    async fn check_permission(&self, e: &super::rpc::Nodeos, findings: &mut Vec<Finding>) {
        let producer = &self.settings.producer;
        let perm_name = &self.settings.permission;
        let account = match api::account(e, producer).await {
            Ok(a) => a,
            Err(err) => {
                findings.push(finding(
                    Subject::Producer,
                    format!("cannot read the account: {err}"),
                    "check PRODUCER_ACCOUNT",
                ));
                return;
            }
        };
        let Some(key) = self.settings.failover_key.as_ref().map(PrivateKey::public_key) else { return };
        let holds = |p: &api::Permission| -> Option<u16> {
            p.keys.iter().find(|(k, _)| PublicKey::from_text(k).is_ok_and(|k| k == key)).map(|(_, w)| *w)
        };
        for strong in ["owner", "active"] {
            if account.permission(strong).and_then(holds).is_some() {
                findings.push(finding(
                    Subject::SwapKey,
                    format!("its key {} is also in {producer}@{strong}: a stolen trap key could do anything", key.to_legacy()),
                    format!("give {producer}@{perm_name} a key of its own (`witness-trap key new`), then set FAILOVER_WIF to it"),
                ));
            }
        }
        let Some(perm) = account.permission(perm_name) else {
            findings.push(finding(
                Subject::Permission,
                format!("{producer} has no permission {perm_name:?}"),
                format!(
                    "create it once with `witness-trap tx setup-permission --chain {} --account {producer} --key {}`",
                    self.settings.network,
                    key.to_legacy()
                ),
            ));
            return;
        };
        match holds(perm) {
            Some(w) if u32::from(w) >= perm.threshold => {}
            Some(w) => findings.push(finding(
                Subject::SwapKey,
                format!("has weight {w} in {producer}@{perm_name}, which needs {}", perm.threshold),
                "give a key that can sign for the permission alone",
            )),
            None => findings.push(finding(
                Subject::SwapKey,
                format!("belongs to {}, which is not in {producer}@{perm_name}", key.to_legacy()),
                format!("set FAILOVER_WIF to the key of {producer}@{perm_name} (check with `witness-trap key pub --chain {}`)", self.settings.network),
            )),
        }
        let mut needed = vec!["regproducer"];
        if self.settings.backup_finalizer_key.is_some() {
            needed.push("actfinkey");
        }
        for action in &needed {
            if !perm.linked.iter().any(|(c, a)| c == "eosio" && a == action) {
                findings.push(finding(
                    Subject::Permission,
                    format!("{producer}@{perm_name} is not linked to eosio::{action}: the swap would need active"),
                    format!("link it once: cleos set action permission {producer} eosio {action} {perm_name} -p {producer}@active"),
                ));
            }
        }
        let extra: Vec<String> = perm
            .linked
            .iter()
            .filter(|(c, a)| !(c == "eosio" && needed.contains(&a.as_str())))
            .map(|(c, a)| if a.is_empty() { format!("{c}::*") } else { format!("{c}::{a}") })
            .collect();
        if !extra.is_empty() {
            findings.push(finding(
                Subject::Permission,
                format!(
                    "{producer}@{perm_name} is also linked to {}: its key can do more than the swap",
                    extra.join(", ")
                ),
                "use a permission linked to eosio::regproducer (and actfinkey) alone",
            ));
        }
        if account.cpu_available <= 0 || account.net_available <= 0 {
            findings.push(finding(
                Subject::Producer,
                format!(
                    "{producer} has no CPU or NET left (cpu available {}, net available {}): the swap would fail with tx_cpu_usage_exceeded",
                    account.cpu_available, account.net_available
                ),
                "stake or power up CPU and NET for the producer account",
            ));
        }
    }
}
