//! A fake Twilio: the Messages API on 127.0.0.1 for the demo and the alert tests.
//!
//! It speaks what the trap's alert client uses of the real API — `POST
//! /2010-04-01/Accounts/{AccountSid}/Messages.json` with form fields `To`, `From`, `Body` and HTTP basic auth
//! `AccountSid:AuthToken` — and answers with Twilio's status codes and JSON shapes: 201 with a message resource,
//! 401 code 20003 on bad credentials, 400 code 21211 on an invalid `To`. Fault switches make it answer 500 or
//! 429 (with `Retry-After`) so retries can be tested. It records every accepted message; it never sends
//! anything anywhere. Knowing what the SMS should say is the alert module's business, not this one's.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine as _;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Errors starting the sink or waiting on it.
#[derive(Debug, Error)]
pub enum SmsSinkError {
    #[error("cannot listen on 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
    #[error("timed out after {0:?} waiting for {1} message(s), got {2}")]
    Timeout(Duration, usize, usize),
}

/// One message the sink accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsMessage {
    pub sid: String,
    pub account_sid: String,
    pub to: String,
    pub from: String,
    pub body: String,
}

#[derive(Debug, Default)]
struct Faults {
    /// Answer 500 to the next N requests.
    fail_next: u32,
    /// Answer 429 to the next N requests, with this `Retry-After` (seconds).
    rate_limit_next: u32,
    retry_after_secs: u32,
    /// Answer 500 to every request.
    fail_forever: bool,
}

#[derive(Debug, Default)]
struct Inner {
    messages: Vec<SmsMessage>,
    faults: Faults,
    requests: u64,
}

struct SmsState {
    account_sid: String,
    auth_token: SecretString,
    inner: Mutex<Inner>,
    count: watch::Sender<usize>,
}

impl SmsState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock can only come from a bug in this file; keep serving anyway.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running fake Twilio. Dropping it stops the server.
pub struct SmsSink {
    url: String,
    state: Arc<SmsState>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for SmsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsSink").field("url", &self.url).finish_non_exhaustive()
    }
}

impl SmsSink {
    /// Listen on 127.0.0.1 (ephemeral port) and accept messages authenticated as `account_sid:auth_token`.
    pub async fn start(account_sid: &str, auth_token: SecretString) -> Result<SmsSink, SmsSinkError> {
        Self::start_on(0, account_sid, auth_token).await
    }

    /// The same on `port` of 127.0.0.1 (0: an ephemeral one).
    pub async fn start_on(port: u16, account_sid: &str, auth_token: SecretString) -> Result<SmsSink, SmsSinkError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.map_err(SmsSinkError::Bind)?;
        let addr = listener.local_addr().map_err(SmsSinkError::Bind)?;
        let state = Arc::new(SmsState {
            account_sid: account_sid.to_string(),
            auth_token,
            inner: Mutex::new(Inner::default()),
            count: watch::channel(0).0,
        });
        let app = Router::new()
            .route("/2010-04-01/Accounts/{sid}/Messages.json", post(create_message))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            // serve returns only on a listener error; the sink then simply stops answering.
            let _ = axum::serve(listener, app).await;
        });
        Ok(SmsSink { url: format!("http://{addr}"), state, task })
    }

    /// Base URL to use in place of `https://api.twilio.com`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Messages accepted so far, oldest first.
    pub fn messages(&self) -> Vec<SmsMessage> {
        self.state.lock().messages.clone()
    }

    /// Every POST received, including those answered with an error.
    pub fn requests(&self) -> u64 {
        self.state.lock().requests
    }

    /// Answer 500 (code 20500) to the next `n` requests.
    pub fn fail_next(&self, n: u32) {
        self.state.lock().faults.fail_next = n;
    }

    /// Answer 429 (code 20429) with `Retry-After: retry_after_secs` to the next `n` requests.
    pub fn rate_limit_next(&self, n: u32, retry_after_secs: u32) {
        let mut inner = self.state.lock();
        inner.faults.rate_limit_next = n;
        inner.faults.retry_after_secs = retry_after_secs;
    }

    /// Answer 500 to every request until switched off.
    pub fn fail_forever(&self, on: bool) {
        self.state.lock().faults.fail_forever = on;
    }

    /// Switch every fault off.
    pub fn clear_faults(&self) {
        self.state.lock().faults = Faults::default();
    }

    /// Wait (real time) until at least `n` messages were accepted; returns them.
    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> Result<Vec<SmsMessage>, SmsSinkError> {
        let mut rx = self.state.count.subscribe();
        let reached = tokio::time::timeout(timeout, async { rx.wait_for(|c| *c >= n).await.is_ok() }).await;
        match reached {
            Ok(true) => Ok(self.messages()),
            _ => Err(SmsSinkError::Timeout(timeout, n, self.messages().len())),
        }
    }

    /// Stop the server.
    pub fn shutdown(self) {}
}

impl Drop for SmsSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Twilio's error body: `{"code", "message", "more_info", "status"}`.
fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, axum::Json(body)).into_response()
}

/// `user:password` from an `Authorization: Basic …` header.
fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// E.164 as Twilio wants it: `+`, a non-zero digit, at most 15 digits in all.
fn is_e164(number: &str) -> bool {
    number
        .strip_prefix('+')
        .is_some_and(|d| (2..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0'))
}

async fn create_message(
    State(state): State<Arc<SmsState>>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    {
        let mut inner = state.lock();
        inner.requests += 1;
        let f = &mut inner.faults;
        if f.fail_forever {
            return twilio_error(StatusCode::INTERNAL_SERVER_ERROR, 20500, "An internal server error has occurred");
        }
        if f.fail_next > 0 {
            f.fail_next -= 1;
            return twilio_error(StatusCode::INTERNAL_SERVER_ERROR, 20500, "An internal server error has occurred");
        }
        if f.rate_limit_next > 0 {
            f.rate_limit_next -= 1;
            let mut resp = twilio_error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests");
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(f.retry_after_secs));
            return resp;
        }
    }

    let authed = basic_auth(&headers).is_some_and(|(user, pass)| {
        user == state.account_sid && pass == state.auth_token.expose_secret() && sid == state.account_sid
    });
    if !authed {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }

    let fields: Vec<(String, String)> = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(_) => return twilio_error(StatusCode::BAD_REQUEST, 21620, "Invalid form body"),
    };
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let Some(to) = field("To") else {
        return twilio_error(StatusCode::BAD_REQUEST, 21604, "A 'To' phone number is required.");
    };
    let Some(from) = field("From") else {
        return twilio_error(StatusCode::BAD_REQUEST, 21603, "A 'From' phone number is required.");
    };
    let body_text = field("Body").unwrap_or_default();
    if !is_e164(&to) {
        return twilio_error(StatusCode::BAD_REQUEST, 21211, &format!("Invalid 'To' Phone Number: {to}"));
    }
    if !is_e164(&from) {
        return twilio_error(StatusCode::BAD_REQUEST, 21212, &format!("Invalid From Number (caller ID): {from}"));
    }
    if body_text.is_empty() {
        return twilio_error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    }
    if body_text.chars().count() > 1600 {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        );
    }

    let msid = format!("SM{:032x}", rand::thread_rng().gen::<u128>());
    let now = time::OffsetDateTime::from(SystemTime::now())
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    // GSM-7 fits 160 per segment, longer texts are split in 153-character parts.
    let segments = match body_text.chars().count() {
        0..=160 => 1,
        n => n.div_ceil(153),
    };
    let uri = format!("/2010-04-01/Accounts/{}/Messages/{msid}.json", state.account_sid);
    let resource: Value = json!({
        "account_sid": state.account_sid,
        "api_version": "2010-04-01",
        "body": body_text,
        "date_created": now,
        "date_sent": null,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": from,
        "messaging_service_sid": null,
        "num_media": "0",
        "num_segments": segments.to_string(),
        "price": null,
        "price_unit": "USD",
        "sid": msid,
        "status": "queued",
        "subresource_uris": {"media": format!("/2010-04-01/Accounts/{}/Messages/{msid}/Media.json", state.account_sid)},
        "to": to,
        "uri": uri,
    });
    let count = {
        let mut inner = state.lock();
        inner.messages.push(SmsMessage {
            sid: msid,
            account_sid: state.account_sid.clone(),
            to,
            from,
            body: body_text,
        });
        inner.messages.len()
    };
    state.count.send_replace(count);
    (StatusCode::CREATED, axum::Json(resource)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164() {
        for ok in ["+15005550006", "+447700900123", "+12"] {
            assert!(is_e164(ok), "{ok}");
        }
        for bad in ["15005550006", "+0123", "+1", "+1234567890123456", "+1 500", ""] {
            assert!(!is_e164(bad), "{bad}");
        }
    }

    #[test]
    fn basic_auth_header() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic QUMxMjM6c2VjcmV0"));
        assert_eq!(basic_auth(&h), Some(("AC123".into(), "secret".into())));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(basic_auth(&h), None);
    }
}
