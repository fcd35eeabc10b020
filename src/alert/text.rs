//! What happened, as text: one SMS of at most 160 GSM-7 characters.
//!
//! The trap describes an [`Incident`]; this module turns it into text for the notifiers. The SMS text
//! avoids GSM-7 "extension" characters (`{}[]~\^|€`, which count twice) and anything outside GSM-7 (which
//! would switch the whole SMS to UCS-2 and a 70-character limit), so a 160-character body is one SMS.

use crate::chain::antelope::pause_resume::NODE_PREFIX;

/// ` (replica NAME)` when several replicas coordinate.
fn by_replica(by: &Option<String>) -> String {
    by.as_ref().map_or(String::new(), |r| format!(" (replica {r})"))
}

/// The longest body that fits one GSM-7 SMS.
pub const MAX_SMS_LEN: usize = 160;

/// The shortest txid prefix an SMS keeps when it shortens the txid to fit (enough to find it by eye).
const MIN_SMS_TXID: usize = 12;

/// What the operator must learn from the SMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incident {
    /// The signing key was moved to the backup and the chain shows it.
    /// `by`: the replica that fired, when several coordinate (`REPLICA_NAME`).
    Swapped { witness: String, chain: String, missed: u64, new_key: String, txid: String, by: Option<String> },
    /// The trap tried and could not get the swap onto the chain in time.
    SwapFailed { witness: String, chain: String, missed: u64, reason: String, by: Option<String> },
    /// `witness-trap test-alert`.
    Test { witness: String, chain: String },
    /// Something the operator must act on while the trap keeps guarding (the state cannot be written).
    /// Always sent, whatever `ALERT_EVENTS` says.
    Warning { witness: String, chain: String, text: String },
    /// The data cannot be trusted (an endpoint dropped for another chain, untrusted, a dispute).
    Distrust { witness: String, chain: String, text: String },
    /// The trap armed or resumed armed.
    Armed { witness: String, chain: String, allowed: u64 },
    /// No healthy endpoint for `secs` seconds.
    Blind { witness: String, chain: String, secs: u64, reason: String },
    /// Healthy again after a `Blind` alert.
    Recovered { witness: String, chain: String },
    /// A fired trap was started again; `text` says when it fired and how to re-arm.
    DisarmedStart { witness: String, chain: String, text: String },
}

impl Incident {
    /// The event's name, as webhooks and logs carry it.
    pub fn event(&self) -> &'static str {
        match self.kind() {
            Some(e) => e.name(),
            None if matches!(self, Incident::Test { .. }) => "test",
            None => "warning",
        }
    }

    /// The `ALERT_EVENTS` event this is; `None` for what is always sent (a test, a warning).
    pub fn kind(&self) -> Option<super::events::Event> {
        use super::events::Event;
        match self {
            Incident::Swapped { .. } => Some(Event::Fired),
            Incident::SwapFailed { .. } => Some(Event::FireFailed),
            Incident::Distrust { .. } => Some(Event::Distrust),
            Incident::Armed { .. } => Some(Event::Armed),
            Incident::Blind { .. } => Some(Event::Blind),
            Incident::Recovered { .. } => Some(Event::Recovered),
            Incident::DisarmedStart { .. } => Some(Event::DisarmedStart),
            Incident::Test { .. } | Incident::Warning { .. } => None,
        }
    }

    /// Who is concerned: (account, chain).
    pub fn subject(&self) -> (&str, &str) {
        match self {
            Incident::Swapped { witness, chain, .. }
            | Incident::SwapFailed { witness, chain, .. }
            | Incident::Test { witness, chain }
            | Incident::Warning { witness, chain, .. }
            | Incident::Distrust { witness, chain, .. }
            | Incident::Armed { witness, chain, .. }
            | Incident::Blind { witness, chain, .. }
            | Incident::Recovered { witness, chain }
            | Incident::DisarmedStart { witness, chain, .. } => (witness, chain),
        }
    }

    /// A one-line headline for channels that show one (chat, e-mail subject, PagerDuty summary).
    pub fn title(&self) -> String {
        let (account, chain) = self.subject();
        let what = match self {
            Incident::Swapped { .. } => "FIRED, signing key swapped",
            Incident::SwapFailed { .. } => "FIRE FAILED, act now",
            Incident::Test { .. } => "test alert",
            Incident::Warning { .. } => "warning",
            Incident::Distrust { .. } => "data distrusted",
            Incident::Armed { .. } => "armed",
            Incident::Blind { .. } => "BLIND, no healthy endpoint",
            Incident::Recovered { .. } => "recovered",
            Incident::DisarmedStart { .. } => "started disarmed",
        };
        format!("witness-trap @{account} on {chain}: {what}")
    }

    /// The SMS body: GSM-7 only, at most [`MAX_SMS_LEN`] characters.
    pub fn sms_text(&self) -> String {
        // An Antelope txid is 64 hex characters: with a long account and a replica's name the whole SMS
        // would pass 160 and the cut would take the replica's name. The txid gives way first (shortened,
        // ending in ".."); `status` and the other channels carry it whole.
        if let Incident::Swapped { txid, .. } = self {
            let over = self.text().chars().count().saturating_sub(MAX_SMS_LEN);
            if over > 0 && txid.is_ascii() && txid.len() >= over + 2 + MIN_SMS_TXID {
                let mut shorter = self.clone();
                if let Incident::Swapped { txid: t, .. } = &mut shorter {
                    *t = format!("{}..", &txid[..txid.len() - over - 2]);
                }
                return fit_sms(&shorter.text());
            }
        }
        fit_sms(&self.text())
    }

    /// The whole message, for channels without the SMS's limits (chat, e-mail, webhooks): the same words,
    /// nothing cut.
    pub fn text(&self) -> String {
        match self {
            // A node-side swap (`SWAP=producer-api`) has no transaction: it names the node now producing.
            Incident::Swapped { witness, chain, missed, new_key, by, .. } if new_key.starts_with(NODE_PREFIX) => {
                format!(
                    "FIRED @{} {}: missed {}, now producing on {}{}",
                    witness,
                    chain,
                    missed,
                    new_key,
                    by_replica(by)
                )
            }
            Incident::Swapped { witness, chain, missed, new_key, txid, by } => format!(
                // Hive/Steem's worst case (16-char name, 10-digit count, 53-char key, 40-char txid) is 156
                // characters; Antelope's 64-char txid is shortened by `sms_text` when it would not fit.
                "FIRED @{} {}: missed {}, key now {} tx {}{}",
                witness,
                chain,
                missed,
                new_key,
                txid,
                by_replica(by)
            ),
            Incident::SwapFailed { witness, chain, missed, reason, by } => format!(
                "TRAP FAILED @{} {}{}: missed {}, KEY SWAP FAILED: {}. Act now.",
                witness,
                chain,
                by_replica(by),
                missed,
                reason
            ),
            Incident::Warning { witness, chain, text } | Incident::Distrust { witness, chain, text } => {
                format!("witness-trap @{} {}: {}", witness, chain, text)
            }
            Incident::Armed { witness, chain, allowed } => {
                format!("witness-trap armed for @{} on {}: fires after {} missed block(s).", witness, chain, allowed)
            }
            Incident::Blind { witness, chain, secs, reason } => format!(
                "witness-trap @{} {}: BLIND for {} s, no healthy endpoint; the trap cannot see misses: {}",
                witness, chain, secs, reason
            ),
            Incident::Recovered { witness, chain } => {
                format!("witness-trap @{} {}: recovered, endpoints healthy again; guarding.", witness, chain)
            }
            Incident::DisarmedStart { witness, chain, text } => {
                format!("witness-trap @{} {} started DISARMED: {}", witness, chain, text)
            }
            Incident::Test { witness, chain } => {
                format!("witness-trap: test alert for @{} on {}. The trap can reach you.", witness, chain)
            }
        }
    }
}

/// Is `c` in the GSM 03.38 basic character set (one septet)?
pub fn is_gsm7_basic(c: char) -> bool {
    const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    BASIC.contains(c)
}

/// Replace non-GSM-7 characters by `?` and cut to [`MAX_SMS_LEN`] characters (ending in `...` when cut),
/// so whatever the trap says (an endpoint's error text, say) still goes out as one SMS.
pub fn fit_sms(text: &str) -> String {
    let clean: String = text.chars().map(|c| if is_gsm7_basic(c) { c } else { '?' }).collect();
    cut(clean, MAX_SMS_LEN)
}

/// `text` at most `max` characters long, ending in `...` when it had to be cut (a channel's limit).
pub fn cut(text: String, max: usize) -> String {
    if text.chars().count() <= max {
        return text;
    }
    let mut cut: String = text.chars().take(max.saturating_sub(3)).collect();
    cut.push_str("...");
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long_key() -> String {
        "STM7brYP9rXyMynTPaoaJkMm6BC4Sfw8wkdRiGkmkWPdNpgVryr35".to_string()
    }

    #[test]
    fn swap_text_names_witness_chain_key_and_txid_within_160() {
        let i = Incident::Swapped {
            witness: "a-sixteen-chars1".into(),
            chain: "steem".into(),
            missed: 4_294_967_295,
            new_key: long_key(),
            txid: "0aa98236d8bb88a32d7436d58a8114b2e3c2e53d".into(),
            by: None,
        };
        let t = i.sms_text();
        assert!(t.chars().count() <= MAX_SMS_LEN, "{} chars: {t}", t.chars().count());
        for part in ["a-sixteen-chars1", "steem", &long_key(), "0aa98236d8bb88a32d7436d58a8114b2e3c2e53d"] {
            assert!(t.contains(part), "missing {part} in {t}");
        }
        assert!(t.chars().all(is_gsm7_basic));
    }

    #[test]
    fn a_node_side_swap_names_the_node_now_producing_and_no_transaction() {
        let i = Incident::Swapped {
            witness: "demoproducer".into(),
            chain: "eos".into(),
            missed: 12,
            new_key: "node:bp2".into(),
            txid: "(already in effect)".into(),
            by: None,
        };
        assert_eq!(i.sms_text(), "FIRED @demoproducer eos: missed 12, now producing on node:bp2");
        let by = Incident::Swapped {
            witness: "alice".into(),
            chain: "hive".into(),
            missed: 3,
            new_key: "STM1".into(),
            txid: "ab".into(),
            by: Some("trap-b".into()),
        };
        assert_eq!(by.sms_text(), "FIRED @alice hive: missed 3, key now STM1 tx ab (replica trap-b)");
    }

    #[test]
    fn an_antelope_swap_by_a_replica_shortens_the_txid_and_keeps_key_and_replica() {
        let key = "EOS5pikBKLtVY46vgpKj7HqNU7iEafexnmWRd9is9U8S37kACoDun";
        let txid = "06f70c23a1fbb01b87b7bb21620287435b0a887dddbc40d3f1adc858870189d1";
        let i = Incident::Swapped {
            witness: "twelvechars1".into(),
            chain: "eos".into(),
            missed: 12,
            new_key: key.into(),
            txid: txid.into(),
            by: Some("trap-b".into()),
        };
        let t = i.sms_text();
        assert_eq!(t.chars().count(), MAX_SMS_LEN, "{t}");
        assert!(t.contains(key) && t.ends_with(" (replica trap-b)"), "{t}");
        assert!(t.contains(&format!(" tx {}", &txid[..MIN_SMS_TXID])) && t.contains(".. (replica"), "{t}");
        // Without a replica's name it fits whole.
        let alone = Incident::Swapped {
            witness: "alice".into(),
            chain: "eos".into(),
            missed: 12,
            new_key: key.into(),
            txid: txid.into(),
            by: None,
        };
        assert!(alone.sms_text().contains(txid), "{}", alone.sms_text());
        // The other channels get the whole txid.
        assert!(i.text().contains(txid));
    }

    #[test]
    fn failure_text_is_cut_and_cleaned() {
        let i = Incident::SwapFailed {
            witness: "alice".into(),
            chain: "hive".into(),
            missed: 3,
            reason: "x{y}€".repeat(100),
            by: None,
        };
        let t = i.sms_text();
        assert_eq!(t.chars().count(), MAX_SMS_LEN);
        assert!(t.ends_with("..."));
        assert!(t.chars().all(is_gsm7_basic), "{t}");
        assert!(t.contains("KEY SWAP FAILED"));
    }
}
