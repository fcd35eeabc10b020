//! Telegram: the Bot API's `sendMessage` to one chat.
//!
//! `POST {TELEGRAM_API_URL}/bot<token>/sendMessage` with `{"chat_id", "text"}`. Telegram answers
//! `{"ok": true, …}`; anything else is read from its `description`, and a 429 carries
//! `parameters.retry_after`, which is honoured. The token is part of the URL path, so the URL is never
//! logged or put in an error.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use chain_clock::SharedClock;

use super::http::{self, Answer, Policy, Verdict};
use super::{Incident, Notifier, SendFuture};

/// The Bot API's base URL.
pub const DEFAULT_API_URL: &str = "https://api.telegram.org";

/// Everything needed to post to one chat.
#[derive(Debug, Clone)]
pub struct TelegramSettings {
    /// Base URL; the trap appends `/bot<token>/sendMessage`.
    pub api_url: String,
    pub bot_token: SecretString,
    /// A numeric chat id (negative for groups) or `@channelname`.
    pub chat_id: String,
    pub policy: Policy,
}

/// Whether `token` looks like a bot token (`123456789:AA…`), without echoing it.
pub fn check_token(token: &str) -> Result<(), &'static str> {
    let (id, key) = token.split_once(':').ok_or("is not a bot token: expected <digits>:<key> from @BotFather")?;
    let id_ok = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
    let key_ok = key.len() >= 20 && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if id_ok && key_ok {
        Ok(())
    } else {
        Err("is not a bot token: expected <digits>:<key> from @BotFather")
    }
}

/// Whether `chat` is a chat id Telegram accepts: an integer, or `@` and a public channel's name.
pub fn check_chat_id(chat: &str) -> Result<(), &'static str> {
    let numeric = chat.strip_prefix('-').unwrap_or(chat);
    let ok = (!numeric.is_empty() && numeric.bytes().all(|b| b.is_ascii_digit()))
        || chat
            .strip_prefix('@')
            .is_some_and(|n| n.len() >= 5 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    if ok {
        Ok(())
    } else {
        Err("is not a chat id: give a number (negative for groups, e.g. -1001234567890) or @channelname")
    }
}

#[derive(Deserialize)]
struct Reply {
    ok: bool,
    description: Option<String>,
    parameters: Option<Parameters>,
}

#[derive(Deserialize)]
struct Parameters {
    retry_after: Option<f64>,
}

/// Telegram's reading: `ok` decides, `retry_after` is honoured.
fn judge(a: &Answer<'_>) -> Verdict {
    let reply: Option<Reply> = serde_json::from_str(a.body).ok();
    let why = match reply.as_ref().and_then(|r| r.description.clone()) {
        Some(d) => format!("HTTP {}: {d}", a.status),
        None => a.describe(),
    };
    match (a.status, reply) {
        (200, Some(r)) if r.ok => Verdict::Delivered,
        (200, Some(_)) => Verdict::Refused(why),
        // A 200 that is not Telegram's JSON is a proxy or a wrong TELEGRAM_API_URL; it may pass.
        (200, None) => Verdict::Retry { after: None, why: format!("{why} (not a Bot API answer)") },
        (429, r) => {
            let after = r.and_then(|r| r.parameters).and_then(|p| p.retry_after).and_then(http::seconds);
            Verdict::Retry { after: after.or_else(|| a.retry_after()), why }
        }
        (500..=599, _) => Verdict::Retry { after: a.retry_after(), why },
        _ => Verdict::Refused(why),
    }
}

/// The Telegram channel.
pub struct TelegramNotifier {
    settings: TelegramSettings,
    clock: SharedClock,
}

impl TelegramNotifier {
    pub fn new(settings: TelegramSettings, clock: SharedClock) -> Self {
        Self { settings, clock }
    }
}

impl Notifier for TelegramNotifier {
    fn name(&self) -> &'static str {
        "telegram"
    }

    fn send<'a>(&'a self, incident: &'a Incident) -> SendFuture<'a> {
        Box::pin(async move {
            let s = &self.settings;
            let client = http::client(&s.policy)?;
            let url = format!("{}/bot{}/sendMessage", s.api_url.trim_end_matches('/'), s.bot_token.expose_secret());
            // Plain text: no parse_mode, so nothing an endpoint says can break the markup.
            let body = serde_json::json!({
                "chat_id": s.chat_id,
                "text": format!("{}\n{}", incident.title(), incident.text()),
                "disable_web_page_preview": true,
            });
            http::post_with_retries(
                self.name(),
                &s.policy,
                self.clock.as_ref(),
                || client.post(&url).json(&body),
                judge,
            )
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_chat_ids() {
        assert!(check_token("123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw").is_ok());
        for bad in [
            "",
            "123456789",
            ":AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
            "12a:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
            "1:short",
        ] {
            assert!(check_token(bad).is_err(), "{bad:?}");
        }
        for ok in ["123456", "-1001234567890", "@my_channel"] {
            assert!(check_chat_id(ok).is_ok(), "{ok:?}");
        }
        for bad in ["", "-", "12 34", "@ab", "my_channel", "@bad-name"] {
            assert!(check_chat_id(bad).is_err(), "{bad:?}");
        }
    }
}
