//! The alert channels, the events they get, the dead-man's switch and the metrics endpoint, from their
//! variables. A channel is configured when any of its variables is set; then all of its required ones
//! must be valid. At least one channel must be configured: a trap nobody hears from guards nothing.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::vars::{self, Problem};
use super::Collector;
use crate::alert::email::{self, EmailSettings};
use crate::alert::http::{check_url, Policy};
use crate::alert::{
    pagerduty, telegram, DiscordSettings, EventSet, PagerDutySettings, PhoneNumber, SlackSettings, TelegramSettings,
    TwilioSettings, WebhookSettings,
};

/// Every configured alert channel, and what goes out through them.
#[derive(Debug, Clone, Default)]
pub struct AlertSettings {
    pub twilio: Option<TwilioSettings>,
    pub telegram: Option<TelegramSettings>,
    pub slack: Option<SlackSettings>,
    pub discord: Option<DiscordSettings>,
    pub pagerduty: Option<PagerDutySettings>,
    pub webhook: Option<WebhookSettings>,
    pub email: Option<EmailSettings>,
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
        [
            self.twilio.is_some(),
            self.telegram.is_some(),
            self.slack.is_some(),
            self.discord.is_some(),
            self.pagerduty.is_some(),
            self.webhook.is_some(),
            self.email.is_some(),
        ]
        .into_iter()
        .filter(|&on| on)
        .count()
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
    let telegram = if any_set(c, &[vars::TELEGRAM_BOT_TOKEN, vars::TELEGRAM_CHAT_ID, vars::TELEGRAM_API_URL]) {
        telegram(c)
    } else {
        None
    };
    let slack = secret_url(
        c,
        vars::SLACK_WEBHOOK_URL,
        "the incoming webhook URL Slack shows (https://hooks.slack.com/services/…)",
    )
    .map(|webhook_url| SlackSettings { webhook_url, policy: Policy::default() });
    let discord = secret_url(
        c,
        vars::DISCORD_WEBHOOK_URL,
        "the webhook URL of the channel's Integrations (https://discord.com/api/webhooks/…)",
    )
    .map(|webhook_url| DiscordSettings { webhook_url, policy: Policy::default() });
    let pagerduty =
        if any_set(c, &[vars::PAGERDUTY_ROUTING_KEY, vars::PAGERDUTY_API_URL]) { pagerduty(c) } else { None };
    let webhook = if any_set(c, &[vars::WEBHOOK_URL, vars::WEBHOOK_BEARER_TOKEN, vars::WEBHOOK_HMAC_SECRET]) {
        webhook(c)
    } else {
        None
    };
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
    let smtp_vars = [vars::SMTP_URL, vars::SMTP_USERNAME, vars::SMTP_PASSWORD, vars::SMTP_FROM, vars::SMTP_TO];
    let email = if any_set(c, &smtp_vars) { email(c) } else { None };
    let settings =
        AlertSettings { twilio, telegram, slack, discord, pagerduty, webhook, email, events, heartbeat, metrics_addr };
    // A channel with a problem is reported as such; "none configured" only when none was attempted.
    let attempted = ["TWILIO_", "TELEGRAM_", "SLACK_", "DISCORD_", "PAGERDUTY_", "WEBHOOK_", "SMTP_"];
    if settings.channels() == 0 && !c.problems.iter().any(|p| attempted.iter().any(|a| p.var.starts_with(a))) {
        c.problems.push(Problem::new(
            "alert channels",
            "none is configured: nobody would hear that the trap fired",
            "configure at least one: Twilio (TWILIO_*), Telegram (TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_ID), \
             SLACK_WEBHOOK_URL, DISCORD_WEBHOOK_URL, PAGERDUTY_ROUTING_KEY, WEBHOOK_URL or e-mail (SMTP_*); \
             see the README's channel table",
        ));
    }
    settings
}

/// A secret (`X` or `X_FILE`) that must be set; `None` with a problem pushed otherwise.
fn required_secret(c: &mut Collector, name: &str, what: &str) -> Option<SecretString> {
    match vars::secret(c.src, name) {
        Ok(Some(v)) => Some(v),
        Ok(None) => {
            c.push(name, "is not set", format!("set {name} (or {name}_FILE, a path) to {what}"));
            None
        }
        Err(p) => {
            c.problems.push(p);
            None
        }
    }
}

/// A secret that may be unset.
fn optional_secret(c: &mut Collector, name: &str) -> Option<SecretString> {
    vars::secret(c.src, name).unwrap_or_else(|p| {
        c.problems.push(p);
        None
    })
}

/// An optional secret http(s) URL (a webhook): `None` when unset; never echoed when wrong.
fn secret_url(c: &mut Collector, name: &str, what: &str) -> Option<SecretString> {
    let url = optional_secret(c, name)?;
    match check_url(url.expose_secret()) {
        Ok(_) => Some(SecretString::from(url.expose_secret().trim().to_string())),
        Err(why) => {
            c.push(name, why, format!("give {what}"));
            None
        }
    }
}

/// A base URL that is not secret (an API's address), or its default.
fn base_url(c: &mut Collector, name: &str, default: &str) -> String {
    let url = c.src.get(name).map(|v| v.trim().to_string()).unwrap_or_else(|| default.to_string());
    if let Err(why) = check_url(&url) {
        c.push(name, format!("{:?} {why}", crate::redact::url(&url)), format!("remove it for {default}"));
    }
    url
}

fn telegram(c: &mut Collector) -> Option<TelegramSettings> {
    let token = required_secret(c, vars::TELEGRAM_BOT_TOKEN, "the token @BotFather gave your bot");
    if let Some(t) = &token {
        if let Err(why) = telegram::check_token(t.expose_secret().trim()) {
            c.push(vars::TELEGRAM_BOT_TOKEN, why, "copy the whole token, digits, ':' and key");
        }
    }
    let chat_id = c.required(vars::TELEGRAM_CHAT_ID, "the chat to alert (a number, or @channelname)");
    if let Some(id) = &chat_id {
        if let Err(why) = telegram::check_chat_id(id) {
            c.push(vars::TELEGRAM_CHAT_ID, why, "ask @userinfobot or read getUpdates for the chat's id");
        }
    }
    let api_url = base_url(c, vars::TELEGRAM_API_URL, vars::DEFAULT_TELEGRAM_API_URL);
    let bot_token = SecretString::from(token?.expose_secret().trim().to_string());
    Some(TelegramSettings { api_url, bot_token, chat_id: chat_id?, policy: Policy::default() })
}

fn email(c: &mut Collector) -> Option<EmailSettings> {
    let server = c.required(vars::SMTP_URL, "smtps://host:465, or smtp://host:587?tls=required").and_then(|u| {
        email::parse_smtp_url(&u)
            .map_err(|why| {
                c.push(
                    vars::SMTP_URL,
                    why,
                    "give smtps://host:465 (TLS) or smtp://host:587?tls=required (STARTTLS); plain smtp:// only to this host",
                )
            })
            .ok()
    });
    let from = c.required(vars::SMTP_FROM, "the sender, e.g. witness-trap <trap@example.com>").and_then(|v| {
        email::parse_mailbox(&v)
            .map_err(|why| c.push(vars::SMTP_FROM, why, "give one address, e.g. trap@example.com"))
            .ok()
    });
    let to = c.required(vars::SMTP_TO, "one or more comma-separated addresses to alert").and_then(|v| {
        email::parse_recipients(&v)
            .map_err(|why| {
                c.push(vars::SMTP_TO, why, "give comma-separated addresses, e.g. ops@example.com,me@example.com")
            })
            .ok()
    });
    let username = c.src.get(vars::SMTP_USERNAME);
    let password = optional_secret(c, vars::SMTP_PASSWORD);
    // Both or neither: the missing one is the variable to fix.
    let missing = if username.is_some() { vars::SMTP_PASSWORD } else { vars::SMTP_USERNAME };
    let auth = email::parse_auth(username.as_deref(), password).unwrap_or_else(|why| {
        c.push(missing, why, "set SMTP_USERNAME and SMTP_PASSWORD (or SMTP_PASSWORD_FILE), or neither");
        None
    });
    let mut settings = EmailSettings::new(server?, from?, to?);
    settings.auth = auth;
    Some(settings)
}

fn pagerduty(c: &mut Collector) -> Option<PagerDutySettings> {
    let key = required_secret(c, vars::PAGERDUTY_ROUTING_KEY, "the Events API v2 integration key of your service");
    if let Some(k) = &key {
        if let Err(why) = pagerduty::check_routing_key(k.expose_secret().trim()) {
            c.push(vars::PAGERDUTY_ROUTING_KEY, why, "copy the Integration Key of an Events API v2 integration");
        }
    }
    let api_url = base_url(c, vars::PAGERDUTY_API_URL, vars::DEFAULT_PAGERDUTY_API_URL);
    let routing_key = SecretString::from(key?.expose_secret().trim().to_string());
    Some(PagerDutySettings { api_url, routing_key, policy: Policy::default() })
}

fn webhook(c: &mut Collector) -> Option<WebhookSettings> {
    let url =
        secret_url(c, vars::WEBHOOK_URL, "the http(s) URL that receives the alerts (documented body in the README)");
    if url.is_none() && c.src.get(vars::WEBHOOK_URL).is_none() && c.src.get("WEBHOOK_URL_FILE").is_none() {
        c.push(
            vars::WEBHOOK_URL,
            "is not set",
            "set WEBHOOK_URL, or remove WEBHOOK_BEARER_TOKEN and WEBHOOK_HMAC_SECRET",
        );
    }
    let bearer_token = optional_secret(c, vars::WEBHOOK_BEARER_TOKEN);
    let hmac_secret = optional_secret(c, vars::WEBHOOK_HMAC_SECRET);
    Some(WebhookSettings { url: url?, bearer_token, hmac_secret, policy: Policy::default() })
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
        policy: Policy::default(),
    })
}
