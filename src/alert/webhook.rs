//! A generic JSON webhook, for whatever the operator runs (n8n, a home-made relay, an incident bot).
//!
//! `POST WEBHOOK_URL` with this body (the README documents it; fields are only ever added):
//! ```json
//! {"event": "fired", "account": "alice", "chain": "hive", "time": "2026-12-02T04:00:00Z",
//!  "title": "witness-trap @alice on hive: FIRED, signing key swapped", "text": "FIRED @alice hive: …",
//!  "sms": "the same in 160 GSM-7 characters",
//!  "details": {"missed": 3, "new_key": "STM…", "txid": "0aa9…"}}
//! ```
//! `event` is an `ALERT_EVENTS` name, or `test` / `warning`. `details` holds the event's own facts:
//! `fired` `missed`, `new_key`, `txid`; `fire_failed` `missed`, `reason`; `armed` `allowed`; `blind`
//! `secs`, `reason`; `distrust`, `warning`, `disarmed_start` `text`; nothing for the rest.
//!
//! Headers: `Content-Type: application/json`, `X-Witness-Trap-Event: <event>`, `Authorization: Bearer
//! <WEBHOOK_BEARER_TOKEN>` when set, and `X-Witness-Trap-Signature: sha256=<hex>` (HMAC-SHA256 of the
//! raw body with `WEBHOOK_HMAC_SECRET`) when set. The standard retry policy applies (`alert::http`).

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use chain_clock::SharedClock;

use super::http::{self, Answer, Policy};
use super::{Incident, Notifier, SendFuture};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Witness-Trap-Signature";
/// The event header, so a receiver can route without parsing the body.
pub const EVENT_HEADER: &str = "X-Witness-Trap-Event";

/// Everything needed to call one webhook.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: SecretString,
    pub bearer_token: Option<SecretString>,
    pub hmac_secret: Option<SecretString>,
    pub policy: Policy,
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length: new_from_slice cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// `"replica": NAME` added when several replicas coordinate (absent otherwise, as before).
fn with_replica(mut v: serde_json::Value, by: &Option<String>) -> serde_json::Value {
    if let (Some(name), Some(map)) = (by, v.as_object_mut()) {
        map.insert("replica".into(), serde_json::Value::String(name.clone()));
    }
    v
}

/// The event's own facts.
fn details(incident: &Incident) -> serde_json::Value {
    use serde_json::json;
    match incident {
        Incident::Swapped { missed, new_key, txid, by, .. } => {
            with_replica(json!({ "missed": missed, "new_key": new_key, "txid": txid }), by)
        }
        Incident::SwapFailed { missed, reason, by, .. } => {
            with_replica(json!({ "missed": missed, "reason": reason }), by)
        }
        Incident::Armed { allowed, .. } => json!({ "allowed": allowed }),
        Incident::Blind { secs, reason, .. } => json!({ "secs": secs, "reason": reason }),
        Incident::Distrust { text, .. } | Incident::Warning { text, .. } | Incident::DisarmedStart { text, .. } => {
            json!({ "text": text })
        }
        Incident::Test { .. } | Incident::Recovered { .. } => json!({}),
    }
}

/// The documented body, as bytes: what is signed is exactly what is sent.
pub fn body(incident: &Incident, now_unix_secs: u64) -> Vec<u8> {
    let (account, chain) = incident.subject();
    let time = time::OffsetDateTime::from_unix_timestamp(now_unix_secs as i64)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default();
    let value = serde_json::json!({
        "event": incident.event(),
        "account": account,
        "chain": chain,
        "time": time,
        "title": incident.title(),
        "text": incident.text(),
        "sms": incident.sms_text(),
        "details": details(incident),
    });
    value.to_string().into_bytes()
}

/// The webhook channel.
pub struct WebhookNotifier {
    settings: WebhookSettings,
    clock: SharedClock,
}

impl WebhookNotifier {
    pub fn new(settings: WebhookSettings, clock: SharedClock) -> Self {
        Self { settings, clock }
    }
}

impl Notifier for WebhookNotifier {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn send<'a>(&'a self, incident: &'a Incident) -> SendFuture<'a> {
        Box::pin(async move {
            let s = &self.settings;
            let client = http::client(&s.policy)?;
            let body = body(incident, self.clock.now_secs());
            let sig = s.hmac_secret.as_ref().map(|k| signature(k.expose_secret().as_bytes(), &body));
            let request = || {
                let mut r = client
                    .post(s.url.expose_secret())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(EVENT_HEADER, incident.event())
                    .body(body.clone());
                if let Some(t) = &s.bearer_token {
                    r = r.bearer_auth(t.expose_secret());
                }
                if let Some(sig) = &sig {
                    r = r.header(SIGNATURE_HEADER, sig);
                }
                r
            };
            http::post_with_retries(self.name(), &s.policy, self.clock.as_ref(), request, |a: &Answer<'_>| a.standard())
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc_4231_test_case_2() {
        // RFC 4231 §4.3: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_body_is_the_documented_shape() {
        let i = Incident::Swapped {
            witness: "alice".into(),
            chain: "hive".into(),
            missed: 3,
            new_key: "STM6LLegbAgLAy28EHrffBVuANFWcFgmqRMW13wBmTExqFE9SCkg4".into(),
            txid: "0aa98236d8bb88a32d7436d58a8114b2e3c2e53d".into(),
            by: None,
        };
        let v: serde_json::Value = serde_json::from_slice(&body(&i, 1_796_184_000)).unwrap();
        assert_eq!(v["event"], "fired");
        assert_eq!(v["account"], "alice");
        assert_eq!(v["chain"], "hive");
        assert_eq!(v["time"], "2026-12-02T04:00:00Z");
        assert_eq!(v["details"]["txid"], "0aa98236d8bb88a32d7436d58a8114b2e3c2e53d");
        assert_eq!(v["details"]["missed"], 3);
        assert!(v["sms"].as_str().unwrap().chars().count() <= 160);
    }
}
