//! Discord: a channel webhook.
//!
//! `POST DISCORD_WEBHOOK_URL` with `{"content"}` (at most 2000 characters, mentions disabled). Discord
//! answers `204`; a `429` carries `retry_after` (seconds, fractional) in its body and `Retry-After`, which
//! is honoured; a `404` means the webhook was deleted, so it is not retried and the message says what to
//! do. The webhook URL is the secret: it is never logged or put in an error.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use chain_clock::SharedClock;

use super::http::{self, Answer, Policy, Verdict};
use super::{Incident, Notifier, SendFuture};

/// Discord's limit on a message's `content`.
pub const MAX_CONTENT: usize = 2000;

/// Everything needed to post to one Discord channel.
#[derive(Debug, Clone)]
pub struct DiscordSettings {
    pub webhook_url: SecretString,
    pub policy: Policy,
}

#[derive(Deserialize)]
struct RateLimited {
    retry_after: Option<f64>,
}

fn judge(a: &Answer<'_>) -> Verdict {
    match a.status {
        404 => Verdict::Refused(
            "HTTP 404: the webhook no longer exists; create a new one and set DISCORD_WEBHOOK_URL".to_string(),
        ),
        429 => {
            let body = serde_json::from_str::<RateLimited>(a.body).ok().and_then(|r| r.retry_after);
            let after = body.and_then(http::seconds).or_else(|| a.retry_after());
            Verdict::Retry { after, why: "HTTP 429: rate limited".to_string() }
        }
        _ => a.standard(),
    }
}

/// `text` cut to Discord's limit.
fn fit(text: String) -> String {
    super::text::cut(text, MAX_CONTENT)
}

/// The Discord channel.
pub struct DiscordNotifier {
    settings: DiscordSettings,
    clock: SharedClock,
}

impl DiscordNotifier {
    pub fn new(settings: DiscordSettings, clock: SharedClock) -> Self {
        Self { settings, clock }
    }
}

impl Notifier for DiscordNotifier {
    fn name(&self) -> &'static str {
        "discord"
    }

    fn send<'a>(&'a self, incident: &'a Incident) -> SendFuture<'a> {
        Box::pin(async move {
            let s = &self.settings;
            let client = http::client(&s.policy)?;
            let url = s.webhook_url.expose_secret();
            let body = serde_json::json!({
                "content": fit(format!("**{}**\n{}", incident.title(), incident.text())),
                // Nothing an endpoint says may ping @everyone.
                "allowed_mentions": { "parse": [] },
            });
            http::post_with_retries(self.name(), &s.policy, self.clock.as_ref(), || client.post(url).json(&body), judge)
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_content_is_cut_to_the_limit() {
        let t = fit("x".repeat(5000));
        assert_eq!(t.chars().count(), MAX_CONTENT);
        assert!(t.ends_with("..."));
        assert_eq!(fit("short".into()), "short");
    }
}
