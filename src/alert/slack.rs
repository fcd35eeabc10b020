//! Slack: an incoming webhook.
//!
//! `POST SLACK_WEBHOOK_URL` with `{"text"}`; Slack answers `200 ok`, `429` with `Retry-After`, or a 4xx
//! naming the problem (`invalid_token`, `channel_is_archived`, `no_service`), which is final. The webhook
//! URL is the secret: it is never logged or put in an error.

use secrecy::{ExposeSecret, SecretString};

use chain_clock::SharedClock;

use super::http::{self, Answer, Policy};
use super::{Incident, Notifier, SendFuture};

/// Everything needed to post to one Slack channel.
#[derive(Debug, Clone)]
pub struct SlackSettings {
    pub webhook_url: SecretString,
    pub policy: Policy,
}

/// The Slack channel.
pub struct SlackNotifier {
    settings: SlackSettings,
    clock: SharedClock,
}

impl SlackNotifier {
    pub fn new(settings: SlackSettings, clock: SharedClock) -> Self {
        Self { settings, clock }
    }
}

/// Slack's mrkdwn treats `&`, `<` and `>` as markup: escape what the trap did not write itself.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

impl Notifier for SlackNotifier {
    fn name(&self) -> &'static str {
        "slack"
    }

    fn send<'a>(&'a self, incident: &'a Incident) -> SendFuture<'a> {
        Box::pin(async move {
            let s = &self.settings;
            let client = http::client(&s.policy)?;
            let url = s.webhook_url.expose_secret();
            let body = serde_json::json!({
                "text": format!("*{}*\n{}", escape(&incident.title()), escape(&incident.text())),
            });
            http::post_with_retries(
                self.name(),
                &s.policy,
                self.clock.as_ref(),
                || client.post(url).json(&body),
                |a: &Answer<'_>| a.standard(),
            )
            .await
        })
    }
}
