//! The swap: `regproducer` to the backup key (plus `actfinkey`), built from live data, signed by the
//! failover permission, pushed to every fresh endpoint, and confirmed in two steps: the producers row,
//! then the schedule (antelope-chain.md §1.4, antelope-protocol.md §0 items 9–12, 16–18).

use serde_json::Value;

use super::api;
use super::AntelopeProducer;
use crate::chain::{ChainTime, SwapAttempt, SwapError, SwapStatus};
use antelope_protocol::action::{ActFinKey, Action, PermissionLevel, RegProducer};
use antelope_protocol::name::Name;
use antelope_protocol::transaction::{packed_transaction_json, Tapos, Transaction};

fn name(text: &str) -> Result<Name, SwapError> {
    Name::new(text).map_err(|e| SwapError::Rejected(format!("{text:?} is not an Antelope name: {e}")))
}

impl AntelopeProducer {
    /// The freshest endpoint, polling first if no look has been made.
    async fn fresh_leader(&mut self) -> Result<usize, SwapError> {
        if self.fresh().is_empty() || self.leader.is_none() {
            self.poll().await;
        }
        self.fresh()
            .first()
            .copied()
            .ok_or_else(|| SwapError::Transient(format!("no fresh endpoint: {}", self.blind_reason())))
    }

    /// Whether the backup finalizer key is already the producer's active one (then `actfinkey` would fail
    /// the whole transaction, §0 item 11). `None`: the tables could not be read.
    pub(super) async fn finalizer_key_active(&self, ep: usize, key: &str) -> Result<(bool, bool), String> {
        let e = &self.endpoints[ep];
        let producer = &self.settings.producer;
        let keys = api::finalizer_rows(e, "finkeys", producer).await.map_err(|e| e.to_string())?;
        let Some(registered) = keys.iter().find(|r| r.get("finalizer_key").and_then(Value::as_str) == Some(key)) else {
            return Ok((false, false));
        };
        let id = registered.get("id").and_then(Value::as_u64);
        let fins = api::finalizer_rows(e, "finalizers", producer).await.map_err(|e| e.to_string())?;
        let active = fins.iter().any(|f| f.get("active_key_id").and_then(Value::as_u64) == id && id.is_some());
        Ok((true, active))
    }

    /// Build and sign the swap from the leader's head: `url` and `location` from the producers row, TaPoS
    /// from the last irreversible block, expiration from head time.
    pub(super) async fn prepare_swap(&mut self) -> Result<SwapAttempt, SwapError> {
        self.poll().await;
        let ep = self.fresh_leader().await?;
        let info = self.head(ep).cloned().ok_or_else(|| SwapError::Transient("no head".into()))?;
        let row = api::producer_row(&self.endpoints[ep], &self.settings.producer)
            .await
            .map_err(|e| SwapError::Transient(e.to_string()))?
            .ok_or_else(|| SwapError::Rejected(format!("{} is not a registered producer", self.settings.producer)))?;
        let producer = name(&self.settings.producer)?;
        let auth = vec![PermissionLevel { actor: producer, permission: name(&self.settings.permission)? }];
        let eosio = name("eosio")?;
        let reg = RegProducer {
            producer,
            producer_key: self.settings.backup_key,
            url: row.url.clone(),
            location: row.location,
        };
        let mut actions = vec![Action::new(eosio, name("regproducer")?, auth.clone(), &reg)];
        let mut label = "regproducer".to_string();
        if let Some(fin) = self.settings.backup_finalizer_key.clone() {
            match self.finalizer_key_active(ep, &fin).await {
                Ok((_, true)) => tracing::info!("the backup finalizer key is already active: regproducer alone"),
                Ok((_, false)) => {
                    let act = ActFinKey { finalizer_name: producer, finalizer_key: fin };
                    actions.push(Action::new(eosio, name("actfinkey")?, auth, &act));
                    label.push_str(" + actfinkey");
                }
                Err(e) => return Err(SwapError::Transient(format!("cannot read the finalizer tables: {e}"))),
            }
        }
        let tapos = Tapos::from_block_id(&info.lib_id);
        let head_secs = info.head_time_ms / 1000;
        let expiration = head_secs.saturating_add(self.settings.tx_expiration.as_secs());
        let expiration_u32 =
            u32::try_from(expiration).map_err(|_| SwapError::Rejected("expiration out of range".into()))?;
        let tx = Transaction::new(expiration_u32, tapos, actions);
        // Sign, then check by recovery and canonicality before anything leaves (inside `sign`).
        let sig = tx
            .sign(
                &self.settings.chain_id,
                self.settings.failover_key.as_ref().ok_or_else(|| {
                    SwapError::NoUsableKey("FAILOVER_WIF is not set (SWAP=producer-api signs nothing)".into())
                })?,
            )
            .map_err(|e| SwapError::Rejected(format!("the signature failed its own check: {e}")))?;
        Ok(SwapAttempt {
            id: hex::encode(tx.id()),
            expires_at: ChainTime::from_secs(expiration),
            label: format!("{label} @{}@{} → {}", self.settings.producer, self.settings.permission, self.target_text()),
            payload: packed_transaction_json(&tx, &[sig]),
        })
    }

    pub(super) fn target_text(&self) -> String {
        self.settings.backup_key.to_legacy()
    }

    /// Push to every fresh endpoint; accepted by one (or a duplicate of an accepted one) is enough.
    pub(super) async fn push_swap(&mut self, attempt: &SwapAttempt) -> Result<(), SwapError> {
        self.poll().await;
        let targets = self.fresh();
        if targets.is_empty() {
            return Err(SwapError::Transient(format!("no fresh endpoint to send to: {}", self.blind_reason())));
        }
        let mut accepted = false;
        let mut transient = Vec::new();
        let mut rejected = Vec::new();
        for ep in targets {
            let e = &self.endpoints[ep];
            match api::push(e, &attempt.payload).await {
                Ok(Ok(p)) if p.transaction_id.eq_ignore_ascii_case(&attempt.id) => {
                    tracing::info!(endpoint = %e.url(), txid = %attempt.id, "the swap was accepted");
                    accepted = true;
                }
                Ok(Ok(p)) => rejected.push(format!(
                    "{} accepted it under another id {} (not {}): not trusted",
                    e.url(),
                    crate::chain::body::bounded_text(&p.transaction_id),
                    attempt.id
                )),
                Ok(Err(why)) => rejected.push(format!("{}: {why}", e.url())),
                Err(err) if err.is_duplicate() => accepted = true,
                Err(err)
                    if err.is_authorization()
                        || matches!(err, super::rpc::NodeosError::Remote { code: 3_050_003, .. }) =>
                {
                    rejected.push(err.to_string())
                }
                Err(err) => transient.push(err.to_string()),
            }
        }
        if accepted {
            self.accepted = Some(attempt.id.clone());
            Ok(())
        } else if transient.is_empty() {
            Err(SwapError::Rejected(rejected.join("; ")))
        } else {
            transient.extend(rejected);
            Err(SwapError::Transient(transient.join("; ")))
        }
    }

    /// Where the backup key stands: in the producers row, in the pending schedule, in the active one (what
    /// `status` shows until the backup produces).
    pub(super) async fn describe_key_progress(&mut self) -> String {
        if self.fresh().is_empty() {
            self.poll().await;
        }
        let Some(&ep) = self.fresh().first() else { return format!("unreadable: {}", self.blind_reason()) };
        let row = match api::producer_row(&self.endpoints[ep], &self.settings.producer).await {
            Ok(Some(r)) => r,
            Ok(None) => return format!("{} has no producers row", self.settings.producer),
            Err(e) => return format!("unreadable: {e}"),
        };
        let mut keys = row.authority_keys.clone();
        keys.push(row.producer_key.clone());
        let in_row = self.has_backup(&keys);
        if let Err(e) = self.seat(ep, true).await {
            return format!("unreadable: {e}");
        }
        let Some(s) = self.schedules.clone() else { return "unreadable".into() };
        let carries = |sch: Option<&api::Schedule>| {
            sch.and_then(|x| x.keys_of(&self.settings.producer)).is_some_and(|k| self.has_backup(k))
        };
        match (in_row, carries(s.pending.as_ref()) || carries(s.proposed.as_ref()), carries(Some(&s.active))) {
            (_, _, true) => format!("the backup key is active (schedule version {}): the backup produces", s.active.version),
            (_, true, false) => format!(
                "the backup key is pending; active schedule version {} still lists the old key (one to two rounds)",
                s.active.version
            ),
            (true, false, false) => "the producers row holds the backup key; the schedule does not yet (a change is proposed at most every 60 s)".into(),
            (false, _, _) => format!("the producer's key is {} (not the backup key)", row.producer_key),
        }
    }

    /// In effect once the producers row carries the backup key and the schedule (`pending` or `active`) does
    /// too; pending while either is still to come; expired when the row does not and the attempt's
    /// expiration has passed in chain time.
    pub(super) async fn confirm(&mut self, attempts: &[String], expires_at: Option<ChainTime>) -> SwapStatus {
        self.poll().await;
        let Some(&ep) = self.fresh().first() else {
            return SwapStatus::Unknown(format!("no fresh endpoint: {}", self.blind_reason()));
        };
        let head_ms = self.head(ep).map_or(0, |i| i.head_time_ms);
        let row = match api::producer_row(&self.endpoints[ep], &self.settings.producer).await {
            Ok(Some(r)) => r,
            Ok(None) => return SwapStatus::Unknown(format!("{} has no producers row", self.settings.producer)),
            Err(e) => return SwapStatus::Unknown(e.to_string()),
        };
        let mut row_keys = row.authority_keys.clone();
        row_keys.push(row.producer_key.clone());
        if !self.has_backup(&row_keys) {
            self.watch_note = "firing: the producers row does not show the backup key yet".into();
            return match expires_at {
                Some(t) if head_ms > t.as_millis() => SwapStatus::Expired,
                _ => SwapStatus::Pending,
            };
        }
        let schedules = match self.seat(ep, true).await {
            Ok(_) => self.schedules.clone(),
            Err(e) => return SwapStatus::Unknown(format!("cannot read the schedule: {e}")),
        };
        let Some(s) = schedules else { return SwapStatus::Unknown("no schedule".into()) };
        let carries = |sch: Option<&api::Schedule>| {
            sch.and_then(|x| x.keys_of(&self.settings.producer)).is_some_and(|k| self.has_backup(k))
        };
        let in_active = carries(Some(&s.active));
        let in_pending = carries(s.pending.as_ref()) || carries(s.proposed.as_ref());
        self.watch_note = match (in_active, in_pending) {
            (true, _) => format!("the backup key is in the active schedule (version {})", s.active.version),
            (false, true) => "the backup key is in the pending schedule; the backup produces once it is active".into(),
            (false, false) => "the producers row shows the backup key; waiting for the schedule to carry it".into(),
        };
        if in_active || in_pending {
            SwapStatus::InEffect { id: self.accepted.clone().or_else(|| attempts.last().cloned()) }
        } else {
            SwapStatus::Pending
        }
    }
}
