//! PagerDuty: the Events API v2.
//!
//! `POST {PAGERDUTY_API_URL}/v2/enqueue` with `{"routing_key", "event_action", "dedup_key", "payload"}`.
//! PagerDuty answers `202`; `429` (throttled) and 5xx are retried, a `400` (a bad routing key or payload)
//! is final. The routing key is a secret: it travels only in the body.
//!
//! Dedup keys, so that one problem is one PagerDuty incident:
//! - `witness-trap/<chain>/<account>` for the fire (`fired`, `fire_failed`) and a fired trap started again
//!   (`disarmed_start`): `rearm` resolves it;
//! - `…/blind` for `blind`, resolved by `recovered`;
//! - `…/<event>` for the rest (`distrust`, `armed`, warnings, tests), each its own incident.

use secrecy::{ExposeSecret, SecretString};

use chain_clock::SharedClock;

use super::http::{self, Answer, Policy};
use super::{Incident, Notifier, SendFuture};

/// The Events API's base URL.
pub const DEFAULT_API_URL: &str = "https://events.pagerduty.com";

/// PagerDuty's limit on `payload.summary`.
const MAX_SUMMARY: usize = 1024;

/// Everything needed to page through one PagerDuty service.
#[derive(Debug, Clone)]
pub struct PagerDutySettings {
    /// Base URL; the trap appends `/v2/enqueue`.
    pub api_url: String,
    /// The service integration's routing key (32 characters).
    pub routing_key: SecretString,
    pub policy: Policy,
}

/// Whether `key` looks like an Events API v2 routing key, without echoing it.
pub fn check_routing_key(key: &str) -> Result<(), &'static str> {
    if key.len() == 32 && key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err("is not an Events API v2 routing key (32 letters and digits, from the service's Integrations tab)")
    }
}

/// The dedup key of the fire of `account` on `chain`: what `rearm` resolves.
pub fn dedup_key(account: &str, chain: &str) -> String {
    format!("witness-trap/{chain}/{account}")
}

/// What PagerDuty is told for `incident`: the action, its dedup key and the severity.
fn action(incident: &Incident) -> (&'static str, String, &'static str) {
    let (account, chain) = incident.subject();
    let fire = dedup_key(account, chain);
    match incident {
        Incident::Swapped { .. } => ("trigger", fire, "critical"),
        Incident::SwapFailed { .. } => ("trigger", fire, "critical"),
        Incident::DisarmedStart { .. } => ("trigger", fire, "warning"),
        Incident::Blind { .. } => ("trigger", format!("{fire}/blind"), "error"),
        Incident::Recovered { .. } => ("resolve", format!("{fire}/blind"), "info"),
        Incident::Distrust { .. } => ("trigger", format!("{fire}/distrust"), "warning"),
        Incident::Warning { .. } => ("trigger", format!("{fire}/warning"), "error"),
        Incident::Armed { .. } => ("trigger", format!("{fire}/armed"), "info"),
        Incident::Test { .. } => ("trigger", format!("{fire}/test"), "info"),
    }
}

fn summary(title: &str, text: &str) -> String {
    super::text::cut(format!("{title}: {text}"), MAX_SUMMARY)
}

/// The PagerDuty channel.
pub struct PagerDutyNotifier {
    settings: PagerDutySettings,
    clock: SharedClock,
}

impl PagerDutyNotifier {
    pub fn new(settings: PagerDutySettings, clock: SharedClock) -> Self {
        Self { settings, clock }
    }

    fn url(&self) -> String {
        format!("{}/v2/enqueue", self.settings.api_url.trim_end_matches('/'))
    }

    async fn enqueue(&self, body: serde_json::Value) -> Result<(), String> {
        let s = &self.settings;
        let client = http::client(&s.policy)?;
        let url = self.url();
        http::post_with_retries(
            "pagerduty",
            &s.policy,
            self.clock.as_ref(),
            || client.post(&url).json(&body),
            |a: &Answer<'_>| a.standard(),
        )
        .await
    }

    /// Resolve the fire's incident of `account` on `chain` (`rearm`).
    pub async fn resolve(&self, account: &str, chain: &str) -> Result<(), String> {
        self.enqueue(serde_json::json!({
            "routing_key": self.settings.routing_key.expose_secret(),
            "event_action": "resolve",
            "dedup_key": dedup_key(account, chain),
        }))
        .await
    }
}

impl Notifier for PagerDutyNotifier {
    fn name(&self) -> &'static str {
        "pagerduty"
    }

    fn send<'a>(&'a self, incident: &'a Incident) -> SendFuture<'a> {
        Box::pin(async move {
            let (account, chain) = incident.subject();
            let (event_action, dedup_key, severity) = action(incident);
            let mut body = serde_json::json!({
                "routing_key": self.settings.routing_key.expose_secret(),
                "event_action": event_action,
                "dedup_key": dedup_key,
            });
            // A resolve carries no payload; a trigger must.
            if event_action == "trigger" {
                body["payload"] = serde_json::json!({
                    "summary": summary(&incident.title(), &incident.text()),
                    "source": format!("witness-trap/{chain}/{account}"),
                    "severity": severity,
                    "component": chain,
                    "group": account,
                    "class": incident.event(),
                    "custom_details": { "event": incident.event(), "account": account, "chain": chain, "text": incident.text() },
                });
            }
            self.enqueue(body).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_problem_is_one_incident() {
        let w = || ("alice".to_string(), "hive".to_string());
        let (witness, chain) = w();
        let fired = Incident::Swapped { witness, chain, missed: 3, new_key: "K".into(), txid: "T".into(), by: None };
        let (witness, chain) = w();
        let failed = Incident::SwapFailed { witness, chain, missed: 3, reason: "r".into(), by: None };
        let (witness, chain) = w();
        let blind = Incident::Blind { witness, chain, secs: 300, reason: "r".into() };
        let (witness, chain) = w();
        let recovered = Incident::Recovered { witness, chain };
        assert_eq!(action(&fired).1, "witness-trap/hive/alice");
        assert_eq!(action(&failed).1, action(&fired).1);
        assert_eq!((action(&blind).0, action(&recovered).0), ("trigger", "resolve"));
        assert_eq!(action(&blind).1, action(&recovered).1);
        assert_ne!(action(&blind).1, action(&fired).1, "recovering from blindness must not resolve a fire");
        assert!(check_routing_key("R0123456789abcdefghijklmnopqrstu").is_ok());
        assert!(check_routing_key("short").is_err());
        assert_eq!(summary("t", &"x".repeat(2000)).chars().count(), MAX_SUMMARY);
    }
}
