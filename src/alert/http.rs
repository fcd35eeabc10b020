//! What the HTTP channels share: one POST with a timeout, retried a bounded number of times, with each
//! channel's own reading of the answer.
//!
//! The policy is the same everywhere: 2xx is delivered; 429 and 5xx (and a timeout or a refused
//! connection) are retried with doubling back-off, honouring the server's `Retry-After` up to a minute;
//! any other 4xx is final (the request will not get better). A channel refines this by reading the body
//! (Telegram's `ok` and `retry_after`, Discord's 404). Errors never carry the URL: webhook URLs and the
//! Telegram token are secrets, and reqwest's errors print the URL unless it is stripped.

use std::time::Duration;

use chain_clock::Clock;
use reqwest::header::HeaderMap;

/// The longest wait a server may ask for between two attempts: an alert that waits longer is late.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How hard one channel tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Timeout of one request.
    pub timeout: Duration,
    /// Attempts, the first one included.
    pub max_attempts: u32,
    /// First back-off; doubles after each retry.
    pub backoff: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(10), max_attempts: 4, backoff: Duration::from_secs(2) }
    }
}

/// What one answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Worth another attempt, after at least `after` if the server said so.
    Retry {
        after: Option<Duration>,
        why: String,
    },
    /// Final: retrying would not help.
    Refused(String),
}

/// One answer, as a channel's judge sees it.
pub struct Answer<'a> {
    pub status: u16,
    pub headers: &'a HeaderMap,
    pub body: &'a str,
}

impl Answer<'_> {
    /// The standard reading: 2xx delivered; 429 and 5xx retried (after `Retry-After`); other 4xx refused.
    pub fn standard(&self) -> Verdict {
        match self.status {
            200..=299 => Verdict::Delivered,
            429 | 500..=599 => Verdict::Retry { after: self.retry_after(), why: self.describe() },
            _ => Verdict::Refused(self.describe()),
        }
    }

    /// `Retry-After` in seconds, if given as a number.
    pub fn retry_after(&self) -> Option<Duration> {
        let v = self.headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<f64>().ok()?;
        seconds(v)
    }

    /// `"HTTP 400: <start of the body>"`.
    pub fn describe(&self) -> String {
        let body: String = self.body.trim().chars().take(200).collect();
        if body.is_empty() {
            format!("HTTP {}", self.status)
        } else {
            format!("HTTP {}: {body}", self.status)
        }
    }
}

/// A server's "retry after this many seconds", if it is a sane number.
pub fn seconds(v: f64) -> Option<Duration> {
    (v.is_finite() && v >= 0.0).then(|| Duration::from_secs_f64(v.min(MAX_RETRY_AFTER.as_secs_f64())))
}

/// A client for one channel: rustls, the policy's timeout, no redirects (a redirected webhook is
/// misconfigured, and following it would send the alert somewhere nobody chose).
pub fn client(policy: &Policy) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(policy.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("witness-trap/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {}", e.without_url()))
}

/// A transport error without its URL.
pub fn describe_error(e: reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        format!("no answer within {} s", timeout.as_secs_f64())
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        e.without_url().to_string()
    }
}

/// Send `request()` until `judge` says delivered or refused, or the attempts run out. Back-off sleeps go
/// through `clock`, so a time-compressed test or demo does not wait real seconds. The error is a readable
/// reason with no URL in it.
pub async fn post_with_retries(
    sink: &'static str,
    policy: &Policy,
    clock: &dyn Clock,
    request: impl Fn() -> reqwest::RequestBuilder,
    judge: impl Fn(&Answer<'_>) -> Verdict,
) -> Result<(), String> {
    let attempts = policy.max_attempts.max(1);
    let mut backoff = policy.backoff;
    let mut last = String::new();
    for attempt in 1..=attempts {
        let mut wait = backoff;
        match request().send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                let body = resp.text().await.unwrap_or_default();
                match judge(&Answer { status, headers: &headers, body: &body }) {
                    Verdict::Delivered => {
                        tracing::debug!(sink, attempt, status, "accepted");
                        return Ok(());
                    }
                    Verdict::Refused(why) => return Err(format!("refused: {why}")),
                    Verdict::Retry { after, why } => {
                        tracing::warn!(sink, attempt, status, reason = %why, "busy or failing; will retry");
                        if let Some(after) = after {
                            wait = wait.max(after);
                        }
                        last = why;
                    }
                }
            }
            Err(e) => {
                last = describe_error(e, policy.timeout);
                tracing::warn!(sink, attempt, error = %last, "cannot deliver; will retry");
            }
        }
        if attempt < attempts {
            clock.sleep(wait).await;
            backoff = backoff.saturating_mul(2);
        }
    }
    Err(format!("gave up after {attempts} attempts: {last}"))
}

/// An http(s) URL, or why not, without echoing it (webhook URLs are secrets).
pub fn check_url(url: &str) -> Result<reqwest::Url, String> {
    match reqwest::Url::parse(url.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
        Ok(_) => Err("is not an http(s) URL".to_string()),
        Err(e) => Err(format!("is not a URL ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry_after: Option<&str>) -> Verdict {
        let mut headers = HeaderMap::new();
        if let Some(v) = retry_after {
            headers.insert(reqwest::header::RETRY_AFTER, v.parse().unwrap());
        }
        Answer { status, headers: &headers, body: "" }.standard()
    }

    #[test]
    fn the_standard_reading() {
        assert_eq!(answer(200, None), Verdict::Delivered);
        assert_eq!(answer(204, None), Verdict::Delivered);
        assert_eq!(answer(400, None), Verdict::Refused("HTTP 400".into()));
        assert_eq!(answer(404, None), Verdict::Refused("HTTP 404".into()));
        assert_eq!(answer(503, None), Verdict::Retry { after: None, why: "HTTP 503".into() });
        assert_eq!(
            answer(429, Some("3")),
            Verdict::Retry { after: Some(Duration::from_secs(3)), why: "HTTP 429".into() }
        );
        // A server asking for an hour gets a minute; nonsense is ignored.
        assert_eq!(answer(429, Some("3600")), Verdict::Retry { after: Some(MAX_RETRY_AFTER), why: "HTTP 429".into() });
        assert_eq!(answer(429, Some("soon")), Verdict::Retry { after: None, why: "HTTP 429".into() });
    }

    #[test]
    fn urls_are_checked_without_being_echoed() {
        assert!(check_url("https://hooks.slack.com/services/T/B/secret").is_ok());
        for bad in ["hooks.slack.com/x", "ftp://host/x", "https://", "secret-token"] {
            let e = check_url(bad).unwrap_err();
            assert!(!e.contains("secret") && !e.contains("hooks"), "{e}");
        }
    }
}
