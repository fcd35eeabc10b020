//! The alert channels, the events they get, the dead-man's switch and the metrics endpoint, from their
//! variables. A channel is configured when any of its variables is set; then all of its required ones
//! must be valid. At least one channel must be configured: a trap nobody hears from guards nothing.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::vars::{self, Problem};
use super::Collector;
use crate::alert::{EventSet, PhoneNumber, TwilioSettings};

/// Every configured alert channel, and what goes out through them.
#[derive(Debug, Clone, Default)]
pub struct AlertSettings {
    pub twilio: Option<TwilioSettings>,
    /// `ALERT_EVENTS`.
    pub events: EventSet,
    /// `HEARTBEAT_URL` and `HEARTBEAT_EVERY_SECS`.
    pub heartbeat: Option<HeartbeatSettings>,
    /// `METRICS_ADDR`.
    pub metrics_addr: Option<SocketAddr>,
}

/// The dead-man's switch.
#[derive(Debug, Clone)]
pub struct HeartbeatSettings {
    /// A secret: whoever has it can silence the switch.
    pub url: SecretString,
    pub every: Duration,
}

impl AlertSettings {
    /// How many channels are configured.
    pub fn channels(&self) -> usize {
        usize::from(self.twilio.is_some())
    }
}

/// Is any of `names` set?
fn any_set(c: &Collector, names: &[&str]) -> bool {
    names.iter().any(|n| c.src.get(n).is_some() || c.src.get(&format!("{n}_FILE")).is_some())
}

pub(super) fn alerts(c: &mut Collector) -> AlertSettings {
    let twilio_vars =
        [vars::TWILIO_ACCOUNT_SID, vars::TWILIO_AUTH_TOKEN, vars::TWILIO_FROM, vars::TWILIO_TO, vars::TWILIO_API_URL];
    let twilio = if any_set(c, &twilio_vars) { twilio(c) } else { None };
    let events = match c.src.get(vars::ALERT_EVENTS) {
        None => EventSet::default(),
        Some(list) => EventSet::parse(&list).unwrap_or_else(|e| {
            c.push(
                vars::ALERT_EVENTS,
                e,
                "give comma-separated events: armed, fired, fire_failed, blind, recovered, distrust, disarmed_start",
            );
            EventSet::default()
        }),
    };
    let heartbeat = heartbeat(c);
    let metrics_addr = c.src.get(vars::METRICS_ADDR).and_then(|v| match v.trim().parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            c.push(
                vars::METRICS_ADDR,
                format!("{:?} is not an address and port", v.trim()),
                "give host:port, e.g. 127.0.0.1:9464 (0.0.0.0:9464 inside a container), or remove it",
            );
            None
        }
    });
    let settings = AlertSettings { twilio, events, heartbeat, metrics_addr };
    if settings.channels() == 0 && !c.problems.iter().any(|p| p.var.starts_with("TWILIO")) {
        c.problems.push(Problem::new(
            "alert channels",
            "none is configured: nobody would hear that the trap fired",
            "configure at least one: Twilio (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM, TWILIO_TO)",
        ));
    }
    settings
}

fn heartbeat(c: &mut Collector) -> Option<HeartbeatSettings> {
    let every = c.seconds(vars::HEARTBEAT_EVERY_SECS, vars::DEFAULT_HEARTBEAT_EVERY_SECS, 86_400);
    let url = match vars::secret(c.src, vars::HEARTBEAT_URL) {
        Ok(u) => u?,
        Err(p) => {
            c.problems.push(p);
            return None;
        }
    };
    match reqwest::Url::parse(url.expose_secret()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Some(HeartbeatSettings { url, every }),
        // Never echo the URL: it is the switch's secret.
        _ => {
            c.push(vars::HEARTBEAT_URL, "is not an http(s) URL", "give the ping URL your monitor shows");
            None
        }
    }
}

fn twilio(c: &mut Collector) -> Option<TwilioSettings> {
    let sid = c.required(vars::TWILIO_ACCOUNT_SID, "your Twilio Account SID (AC…)");
    if let Some(s) = &sid {
        if !s.chars().all(|ch| ch.is_ascii_alphanumeric()) {
            c.push(
                vars::TWILIO_ACCOUNT_SID,
                "contains characters other than letters and digits",
                "copy the Account SID from the Twilio console",
            );
        }
    }
    let token = match vars::secret(c.src, vars::TWILIO_AUTH_TOKEN) {
        Ok(Some(t)) => Some(t),
        Ok(None) => {
            c.push(vars::TWILIO_AUTH_TOKEN, "is not set", "set TWILIO_AUTH_TOKEN or TWILIO_AUTH_TOKEN_FILE");
            None
        }
        Err(p) => {
            c.problems.push(p);
            None
        }
    };
    let from =
        c.required(vars::TWILIO_FROM, "your Twilio phone number in E.164 form, e.g. +14155550123").and_then(|v| {
            PhoneNumber::parse(&v)
                .map_err(|e| {
                    c.push(vars::TWILIO_FROM, e.to_string(), "give the Twilio number as + country code and number")
                })
                .ok()
        });
    let to = c.required(vars::TWILIO_TO, "one or more comma-separated E.164 numbers to alert").and_then(|v| {
        let mut numbers = Vec::new();
        for (i, part) in v.split(',').map(str::trim).enumerate() {
            match PhoneNumber::parse(part) {
                Ok(n) => numbers.push(n),
                Err(e) => {
                    c.push(
                        vars::TWILIO_TO,
                        format!("number {} of the list: {e}", i + 1),
                        "give comma-separated numbers like +14155550123,+447911123456",
                    );
                    return None;
                }
            }
        }
        Some(numbers)
    });
    let api_url = c.src.get(vars::TWILIO_API_URL).unwrap_or_else(|| vars::DEFAULT_TWILIO_API_URL.to_string());
    if reqwest::Url::parse(&api_url).map_or(true, |u| !matches!(u.scheme(), "http" | "https")) {
        c.push(
            vars::TWILIO_API_URL,
            format!("{api_url:?} is not an http(s) URL"),
            "remove it for https://api.twilio.com",
        );
    }
    Some(TwilioSettings {
        api_url,
        account_sid: sid?,
        auth_token: token?,
        from: from?,
        to: to?,
        timeout: Duration::from_secs(10),
        max_attempts: 4,
        backoff: Duration::from_secs(2),
    })
}
