//! The dead-man's switch (`HEARTBEAT_URL`, for healthchecks.io, Uptime Kuma push, Better Stack and the
//! like): a ping after healthy polls, at most one per `HEARTBEAT_EVERY_SECS`; `<url>/fail` while blind
//! (and no success ping then); a final ping when the trap fires. A dead process sends nothing, so the
//! outside monitor pages the operator. The URL is a secret: whoever has it can silence the switch.

use std::sync::Mutex;
use std::time::Duration;

use chain_clock::SharedClock;
use secrecy::ExposeSecret;

use crate::chain::ChainTime;
use crate::config::alerts::HeartbeatSettings;

/// What a ping says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// A healthy poll.
    Ok,
    /// Blind: no healthy endpoint.
    Fail,
    /// The trap fired (the last ping it sends).
    Fired,
}

/// The switch.
pub struct Heartbeat {
    settings: HeartbeatSettings,
    client: reqwest::Client,
    clock: SharedClock,
    last: Mutex<Option<(Beat, ChainTime)>>,
}

impl Heartbeat {
    pub fn new(settings: HeartbeatSettings, clock: SharedClock) -> Self {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        Self { settings, client, clock, last: Mutex::new(None) }
    }

    /// Whether `beat` is due now: a change of kind always is, the same kind once per `every`.
    fn due(&self, beat: Beat) -> bool {
        let now = ChainTime::now(self.clock.as_ref());
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let due = match *last {
            Some((kind, at)) => kind != beat || beat == Beat::Fired || now.since(at) >= self.settings.every,
            None => true,
        };
        if due {
            *last = Some((beat, now));
        }
        due
    }

    /// Send `beat` if it is due. Failures are logged without the URL; they never stop anything.
    pub async fn beat(&self, beat: Beat) {
        if !self.due(beat) {
            return;
        }
        let base = self.settings.url.expose_secret().trim_end_matches('/');
        let url = match beat {
            Beat::Ok | Beat::Fired => base.to_string(),
            Beat::Fail => format!("{base}/fail"),
        };
        match self.client.post(url).body(format!("{beat:?}")).send().await {
            Ok(r) if r.status().is_success() => tracing::debug!(?beat, "heartbeat sent"),
            Ok(r) => tracing::warn!(?beat, status = r.status().as_u16(), "the heartbeat monitor refused a ping"),
            Err(e) => tracing::warn!(?beat, error = %e.without_url(), "cannot reach the heartbeat monitor"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[tokio::test]
    async fn pings_are_rate_limited_fail_while_blind_and_the_url_never_leaks() {
        let server = MockServer::start().await;
        Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
        // 20×: the minute is 3 s of wall time, longer than any ping takes on a loaded machine.
        let clock: SharedClock = Arc::new(chain_clock::ScaledClock::starting_now(20.0));
        let url = format!("{}/ping/secret-uuid", server.uri());
        let hb = Heartbeat::new(
            HeartbeatSettings { url: url.clone().into(), every: Duration::from_secs(60) },
            clock.clone(),
        );
        hb.beat(Beat::Ok).await;
        hb.beat(Beat::Ok).await; // within a minute: not sent
        hb.beat(Beat::Fail).await; // a change: sent, to /fail
        hb.beat(Beat::Fail).await; // not again within the minute
        clock.sleep(Duration::from_secs(61)).await;
        hb.beat(Beat::Fail).await; // a minute later: again
        hb.beat(Beat::Ok).await;
        hb.beat(Beat::Fired).await;
        let paths: Vec<String> =
            server.received_requests().await.unwrap().iter().map(|r| r.url.path().to_string()).collect();
        assert_eq!(
            paths,
            [
                "/ping/secret-uuid",
                "/ping/secret-uuid/fail",
                "/ping/secret-uuid/fail",
                "/ping/secret-uuid",
                "/ping/secret-uuid"
            ]
        );
        // Unreachable: logged, not an error, and nothing panics.
        let dead = Heartbeat::new(
            HeartbeatSettings { url: "http://127.0.0.1:9/secret".to_string().into(), every: Duration::from_secs(1) },
            clock,
        );
        dead.beat(Beat::Ok).await;
        let _ = path("/");
    }
}
