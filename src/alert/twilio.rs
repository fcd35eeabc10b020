//! Sending the SMS through Twilio's Messages API with reqwest: form POST, HTTP basic auth, bounded retry.
//!
//! `POST {api_url}/2010-04-01/Accounts/{sid}/Messages.json` with `To`, `From`, `Body`. 429 and 5xx are
//! retried a bounded number of times with back-off (honouring a short `Retry-After`); other 4xx are final.
//! The auth token travels only in the `Authorization` header, never in a URL (reqwest errors print URLs),
//! and is a `SecretString` everywhere else.

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use chain_clock::{Clock, SharedClock};
use serde::Deserialize;

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
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// Attempts per recipient, first one included.
    pub max_attempts: u32,
    /// First back-off; doubles after each retry.
    pub backoff: Duration,
}

/// Why an SMS did not go out.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("twilio refused the message to {to}: HTTP {status}, code {code:?}: {message}")]
    Refused { to: String, status: u16, code: Option<i64>, message: String },
    #[error("twilio kept failing for {to} after {attempts} attempts: {last}")]
    Exhausted { to: String, attempts: u32, last: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

#[derive(Deserialize)]
struct TwilioErrorBody {
    code: Option<i64>,
    message: Option<String>,
}

/// Send `body` to every recipient; each recipient is tried independently. Returns one result per recipient.
/// Back-off sleeps go through `clock`, so a time-compressed test or demo does not wait real seconds.
pub async fn send_sms(settings: &TwilioSettings, body: &str, clock: &dyn Clock) -> Vec<Result<(), AlertError>> {
    let client = match reqwest::Client::builder().timeout(settings.timeout).build() {
        Ok(c) => c,
        Err(e) => return settings.to.iter().map(|_| Err(AlertError::Client(e.to_string()))).collect(),
    };
    let mut results = Vec::with_capacity(settings.to.len());
    for to in &settings.to {
        results.push(send_one(&client, settings, to, body, clock).await);
    }
    results
}

async fn send_one(
    client: &reqwest::Client,
    s: &TwilioSettings,
    to: &PhoneNumber,
    body: &str,
    clock: &dyn Clock,
) -> Result<(), AlertError> {
    let url = format!("{}/2010-04-01/Accounts/{}/Messages.json", s.api_url.trim_end_matches('/'), s.account_sid);
    let form = [("To", to.as_str()), ("From", s.from.as_str()), ("Body", body)];
    let encoded = serde_urlencoded::to_string(form).map_err(|e| AlertError::Client(e.to_string()))?;
    let attempts = s.max_attempts.max(1);
    let mut backoff = s.backoff;
    let mut last = String::new();
    for attempt in 1..=attempts {
        let resp = client
            .post(&url)
            .basic_auth(&s.account_sid, Some(s.auth_token.expose_secret()))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(encoded.clone())
            .send()
            .await;
        let mut wait = backoff;
        match resp {
            Ok(r) if r.status().is_success() => {
                tracing::info!(to = %to, attempt, "SMS accepted by twilio");
                return Ok(());
            }
            Ok(r) => {
                let status = r.status().as_u16();
                let retry_after = r
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let text = r.text().await.unwrap_or_default();
                let parsed: Option<TwilioErrorBody> = serde_json::from_str(&text).ok();
                let code = parsed.as_ref().and_then(|b| b.code);
                let message = parsed.and_then(|b| b.message).unwrap_or_else(|| truncate(&text, 200));
                if status == 429 || (500..=599).contains(&status) {
                    last = format!("HTTP {status}: {message}");
                    if let Some(secs) = retry_after {
                        // Honour Retry-After, but never wait longer than a minute for an alert.
                        wait = wait.max(Duration::from_secs(secs.min(60)));
                    }
                    tracing::warn!(to = %to, attempt, status, "twilio busy or failing; will retry");
                } else {
                    return Err(AlertError::Refused { to: to.to_string(), status, code, message });
                }
            }
            Err(e) => {
                // Strip the URL: it holds the account SID, harmless, but keep messages short.
                last = e.without_url().to_string();
                tracing::warn!(to = %to, attempt, error = %last, "cannot reach twilio; will retry");
            }
        }
        if attempt < attempts {
            clock.sleep(wait).await;
            backoff = backoff.saturating_mul(2);
        }
    }
    Err(AlertError::Exhausted { to: to.to_string(), attempts, last })
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
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
                    Err(e) => failed.push(e.to_string()),
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
