//! Telling the operator: an [`Incident`] fanned out to every configured [`Notifier`].
//!
//! The trap never names a vendor: it hands an incident to [`Fanout::deliver`] with the channels still
//! pending, and records each channel's [`Delivery`] in its state, so a restart resends only what did not go
//! out. Channels are sent to concurrently; one that fails or hangs never delays another. The text of each
//! incident is in [`text`]; each channel is a module ([`twilio`], [`telegram`], [`slack`], [`discord`],
//! [`pagerduty`], [`webhook`], [`email`]); the HTTP ones share [`http`]'s timeout and retry policy.

pub mod discord;
pub mod email;
pub mod events;
pub mod heartbeat;
pub mod http;
pub mod pagerduty;
pub mod slack;
pub mod telegram;
pub mod text;
pub mod twilio;
pub mod webhook;

#[cfg(test)]
mod sink_tests;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use discord::{DiscordNotifier, DiscordSettings};
pub use events::{Event, EventSet};
pub use http::Policy;
pub use pagerduty::{PagerDutyNotifier, PagerDutySettings};
pub use slack::{SlackNotifier, SlackSettings};
pub use telegram::{TelegramNotifier, TelegramSettings};
pub use text::Incident;
pub use twilio::{PhoneNumber, PhoneNumberError, TwilioNotifier, TwilioSettings};
pub use webhook::{WebhookNotifier, WebhookSettings};

/// Whether one channel has told the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "delivery", rename_all = "snake_case")]
pub enum Delivery {
    Pending,
    Sent,
    Failed { reason: String },
}

/// Each channel's delivery, by channel name.
pub type Deliveries = BTreeMap<String, Delivery>;

/// A boxed send, so that notifiers can be kept as `dyn Notifier`.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// One alert channel.
pub trait Notifier: Send + Sync {
    /// The channel's name in the state file, the log and `test-alert` ("twilio").
    fn name(&self) -> &'static str;
    /// Deliver `incident`, with the channel's own timeout and bounded retries. The error is a readable
    /// reason that never contains a secret (token, webhook URL).
    fn send<'a>(&'a self, incident: &'a Incident) -> SendFuture<'a>;
}

/// Every configured channel, and the events chosen for them.
#[derive(Clone, Default)]
pub struct Fanout {
    notifiers: Vec<Arc<dyn Notifier>>,
    events: EventSet,
    /// Counts every delivery by channel and outcome, when `METRICS_ADDR` is set.
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl Fanout {
    /// The channels, with the default events.
    pub fn new(notifiers: Vec<Arc<dyn Notifier>>) -> Self {
        Self { notifiers, events: EventSet::default(), metrics: None }
    }

    /// The channels, with the `ALERT_EVENTS` chosen.
    pub fn with_events(notifiers: Vec<Arc<dyn Notifier>>, events: EventSet) -> Self {
        Self { notifiers, events, metrics: None }
    }

    /// Count every delivery in `metrics`.
    pub fn with_metrics(mut self, metrics: Option<Arc<crate::metrics::Metrics>>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Whether `incident` is to go out at all (tests and warnings always are).
    pub fn chosen(&self, incident: &Incident) -> bool {
        incident.kind().is_none_or(|e| self.events.contains(e))
    }

    pub fn is_empty(&self) -> bool {
        self.notifiers.is_empty()
    }

    /// The names of the configured channels.
    pub fn names(&self) -> Vec<&'static str> {
        self.notifiers.iter().map(|n| n.name()).collect()
    }

    /// Every configured channel as pending: what a fired trap records before it alerts (none when the
    /// fire's event is not chosen).
    pub fn pending_for(&self, incident_kind: Event) -> Deliveries {
        if !self.events.contains(incident_kind) {
            return Deliveries::new();
        }
        self.all_pending()
    }

    /// Every configured channel as pending.
    pub fn all_pending(&self) -> Deliveries {
        self.names().into_iter().map(|n| (n.to_string(), Delivery::Pending)).collect()
    }

    /// Send `incident` to every channel that is `Pending` in `deliveries`, concurrently, and record each
    /// result there. A pending channel that is no longer configured is marked failed, saying so.
    pub async fn deliver(&self, incident: &Incident, deliveries: &mut Deliveries) {
        let mut set = tokio::task::JoinSet::new();
        for (name, delivery) in deliveries.iter_mut() {
            if *delivery != Delivery::Pending {
                continue;
            }
            match self.notifiers.iter().find(|n| n.name() == name) {
                Some(n) => {
                    let n = n.clone();
                    let incident = incident.clone();
                    set.spawn(async move { (n.name(), n.send(&incident).await) });
                }
                None => {
                    *delivery = Delivery::Failed { reason: format!("{name} is no longer configured") };
                }
            }
        }
        while let Some(joined) = set.join_next().await {
            let Ok((name, result)) = joined else { continue };
            if let Some(m) = &self.metrics {
                m.alert_delivery(name, result.is_ok());
            }
            let delivery = match result {
                Ok(()) => {
                    tracing::info!(channel = name, "alert delivered");
                    Delivery::Sent
                }
                Err(reason) => {
                    tracing::error!(channel = name, %reason, "alert NOT delivered");
                    Delivery::Failed { reason }
                }
            };
            deliveries.insert(name.to_string(), delivery);
        }
        // A send task that panicked leaves its channel pending; it is not sent twice in this run.
    }

    /// An alert that is not a fire: every channel when its event is chosen, results logged, nothing
    /// recorded.
    pub async fn notify(&self, incident: &Incident) {
        if !self.chosen(incident) {
            tracing::debug!(event = incident.event(), "event not in ALERT_EVENTS: not sent");
            return;
        }
        let mut deliveries = self.all_pending();
        self.deliver(incident, &mut deliveries).await;
    }

    /// `test-alert`: one result per channel, in configuration order.
    pub async fn test(&self, incident: &Incident) -> Vec<(&'static str, Result<(), String>)> {
        let mut deliveries = self.all_pending();
        self.deliver(incident, &mut deliveries).await;
        self.names()
            .into_iter()
            .map(|name| {
                let r = match deliveries.get(name) {
                    Some(Delivery::Sent) => Ok(()),
                    Some(Delivery::Failed { reason }) => Err(reason.clone()),
                    _ => Err("not sent".to_string()),
                };
                (name, r)
            })
            .collect()
    }
}

/// Whether every channel that was to be told was told.
pub fn all_sent(deliveries: &Deliveries) -> bool {
    deliveries.values().all(|d| *d == Delivery::Sent)
}

/// Whether the operator was told at all: some channel delivered, or none was to be told.
pub fn any_sent(deliveries: &Deliveries) -> bool {
    deliveries.is_empty() || deliveries.values().any(|d| *d == Delivery::Sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Fake {
        name: &'static str,
        ok: bool,
        calls: AtomicUsize,
    }

    impl Notifier for Fake {
        fn name(&self) -> &'static str {
            self.name
        }
        fn send<'a>(&'a self, _incident: &'a Incident) -> SendFuture<'a> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let ok = self.ok;
            Box::pin(async move {
                if ok {
                    Ok(())
                } else {
                    Err("refused".to_string())
                }
            })
        }
    }

    #[tokio::test]
    async fn only_pending_channels_are_sent_and_each_result_is_recorded() {
        let good = Arc::new(Fake { name: "good", ok: true, calls: AtomicUsize::new(0) });
        let bad = Arc::new(Fake { name: "bad", ok: false, calls: AtomicUsize::new(0) });
        let metrics = Arc::new(crate::metrics::Metrics::new("alice", "hive", &[], &["good", "bad"]));
        let fanout = Fanout::new(vec![good.clone(), bad.clone()]).with_metrics(Some(metrics.clone()));
        let incident = Incident::Test { witness: "alice".into(), chain: "hive".into() };
        let mut d = fanout.all_pending();
        fanout.deliver(&incident, &mut d).await;
        assert_eq!(d["good"], Delivery::Sent);
        assert_eq!(d["bad"], Delivery::Failed { reason: "refused".into() });
        assert!(!all_sent(&d));
        // A restart resends only what is still pending: nothing here.
        fanout.deliver(&incident, &mut d).await;
        assert_eq!((good.calls.load(Ordering::SeqCst), bad.calls.load(Ordering::SeqCst)), (1, 1));
        // Each delivery is counted by channel and outcome.
        let text = metrics.encode();
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parses");
        let count = |sink: &str, outcome: &str| {
            let s = scrape.samples.iter().find(|s| {
                s.metric == "witness_trap_alert_deliveries_total"
                    && s.labels.get("sink") == Some(sink)
                    && s.labels.get("outcome") == Some(outcome)
            });
            match s.map(|s| &s.value) {
                Some(prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v)) => *v,
                other => panic!("{sink}/{outcome}: {other:?}"),
            }
        };
        assert_eq!(
            [count("good", "sent"), count("good", "failed"), count("bad", "sent"), count("bad", "failed")],
            [1.0, 0.0, 0.0, 1.0]
        );
        // A channel recorded pending but no longer configured is failed, not silently dropped.
        let mut d: Deliveries = [("gone".to_string(), Delivery::Pending)].into();
        fanout.deliver(&incident, &mut d).await;
        assert!(matches!(&d["gone"], Delivery::Failed { reason } if reason.contains("no longer configured")));
    }
}
