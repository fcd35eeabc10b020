//! Sending the SMS through Twilio's Messages API with reqwest: form POST, HTTP basic auth, bounded retry.
//!
//! `POST {api_url}/2010-04-01/Accounts/{sid}/Messages.json` with `To`, `From`, `Body`, one request per
//! recipient, under the shared policy of [`super::http`] (429 and 5xx retried with back-off, honouring
//! `Retry-After`; other 4xx final, with Twilio's error code and message). The auth token travels only in
//! the `Authorization` header, never in a URL, and is a `SecretString` everywhere else.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use chain_clock::{Clock, SharedClock};
use serde::Deserialize;

use super::http::{self, Answer, Policy, Verdict};
use super::{Incident, Notifier, SendFuture};

/// An E.164 phone number, valid by construction: `^\+[1-9][0-9]{7,14}$`.
#[derive(Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

/// Why a phone number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an E.164 number (a '+', the country code and the number, 8 to 15 digits, e.g. +14155550123)")]
pub struct PhoneNumberError;

impl PhoneNumber {
    pub fn parse(s: &str) -> Result<Self, PhoneNumberError> {
        let s = s.trim();
        let digits = s.strip_prefix('+').ok_or(PhoneNumberError)?;
        let ok =
            (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
        if ok {
            Ok(PhoneNumber(s.to_string()))
        } else {
            Err(PhoneNumberError)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.0)
    }
}

/// Everything needed to send an SMS.
#[derive(Debug, Clone)]
pub struct TwilioSettings {
    /// Base URL, `https://api.twilio.com` in production; tests point it at a local server.
    pub api_url: String,
    pub account_sid: String,
    pub auth_token: SecretString,
    pub from: PhoneNumber,
    pub to: Vec<PhoneNumber>,
    /// Timeout and retries of each recipient's SMS.
    pub policy: Policy,
}

#[derive(Deserialize)]
struct TwilioErrorBody {
    code: Option<i64>,
    message: Option<String>,
}

/// Twilio's reading: the standard one, with Twilio's own error code and message when it gives them.
fn judge(a: &Answer<'_>) -> Verdict {
    let explain = || match serde_json::from_str::<TwilioErrorBody>(a.body) {
        Ok(TwilioErrorBody { code, message: Some(m) }) => match code {
            Some(c) => format!("HTTP {}, code {c}: {m}", a.status),
            None => format!("HTTP {}: {m}", a.status),
        },
        _ => a.describe(),
    };
    match a.standard() {
        Verdict::Refused(_) => Verdict::Refused(explain()),
        Verdict::Retry { after, .. } => Verdict::Retry { after, why: explain() },
        Verdict::Delivered => Verdict::Delivered,
    }
}

/// Send `body` to every recipient; each recipient is tried independently, with the policy's retries.
/// Returns one result per recipient. Back-off sleeps go through `clock`, so a time-compressed test or demo
/// does not wait real seconds. The auth token travels only in the `Authorization` header.
pub async fn send_sms(settings: &TwilioSettings, body: &str, clock: &dyn Clock) -> Vec<Result<(), String>> {
    let client = match http::client(&settings.policy) {
        Ok(c) => c,
        Err(e) => return settings.to.iter().map(|_| Err(e.clone())).collect(),
    };
    let url = format!(
        "{}/2010-04-01/Accounts/{}/Messages.json",
        settings.api_url.trim_end_matches('/'),
        settings.account_sid
    );
    let mut results = Vec::with_capacity(settings.to.len());
    for to in &settings.to {
        let form = [("To", to.as_str()), ("From", settings.from.as_str()), ("Body", body)];
        let result = match serde_urlencoded::to_string(form) {
            Ok(encoded) => {
                let request = || {
                    client
                        .post(&url)
                        .basic_auth(&settings.account_sid, Some(settings.auth_token.expose_secret()))
                        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(encoded.clone())
                };
                http::post_with_retries("twilio", &settings.policy, clock, request, judge).await
            }
            Err(e) => Err(format!("cannot encode the SMS: {e}")),
        };
        if result.is_ok() {
            tracing::info!(to = %to, "SMS accepted by twilio");
        }
        results.push(result.map_err(|e| format!("SMS to {to} {e}")));
    }
    results
}

/// The Twilio SMS channel: one SMS per `TWILIO_TO` number; it fails if any number was not reached.
pub struct TwilioNotifier {
    settings: TwilioSettings,
    clock: SharedClock,
}

impl TwilioNotifier {
    pub fn new(settings: TwilioSettings, clock: SharedClock) -> Self {
        Self { settings, clock }
    }
}

impl Notifier for TwilioNotifier {
    fn name(&self) -> &'static str {
        "twilio"
    }

    fn send<'a>(&'a self, incident: &'a Incident) -> SendFuture<'a> {
        Box::pin(async move {
            let body = incident.sms_text();
            tracing::info!(%body, recipients = self.settings.to.len(), "sending the SMS");
            let results = send_sms(&self.settings, &body, self.clock.as_ref()).await;
            let mut sent = Vec::new();
            let mut failed = Vec::new();
            for (to, r) in self.settings.to.iter().zip(results) {
                match r {
                    Ok(()) => sent.push(to.to_string()),
                    Err(e) => failed.push(e),
                }
            }
            if failed.is_empty() {
                Ok(())
            } else if sent.is_empty() {
                Err(failed.join("; "))
            } else {
                Err(format!("{} (delivered to {})", failed.join("; "), sent.join(", ")))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_table() {
        let cases = [
            ("+14155550123", true, "US number"),
            ("+447911123456", true, "UK mobile"),
            ("+12345678", true, "8 digits, the shortest"),
            ("+123456789012345", true, "15 digits, the longest"),
            ("+1234567", false, "7 digits"),
            ("+1234567890123456", false, "16 digits"),
            ("14155550123", false, "no plus"),
            ("+04155550123", false, "leading zero"),
            ("+1 415 555 0123", false, "spaces"),
            ("+1415555012a", false, "letter"),
            ("", false, "empty"),
        ];
        for (input, ok, why) in cases {
            assert_eq!(PhoneNumber::parse(input).is_ok(), ok, "{why}: {input:?}");
        }
    }
}
