//! The product, apart from its command line: arm, resume, watch, check, re-arm and report, on typed
//! settings, returning typed outcomes. `cli` parses, calls one of these and prints; the demo, the benchmark
//! and the tests call them the same way. Nothing here prints or chooses an exit status.
//!
//! Each entry point opens the producer for the configured chain family (`config::ChainSettings`) and the
//! state store, then runs the family-agnostic policy in [`mod@run`] or [`commands`] over the `Producer` trait.

pub mod commands;
pub mod health;
#[cfg(feature = "etcd")]
mod replica;
pub mod run;
pub mod switch;

use std::sync::Arc;

use chain_clock::SharedClock;

use crate::alert::{
    DiscordNotifier, Fanout, Notifier, PagerDutyNotifier, SlackNotifier, TelegramNotifier, TwilioNotifier,
    WebhookNotifier,
};
use crate::config::{AlertSettings, Report};
use crate::store::StoreError;
use crate::trap::TrapError;

pub use commands::{check, dry_run, rearm, status, test_alert, CheckReport, Rearmed, StatusReport};
pub use health::{health, health_of, Health};
pub use run::{run, RunOptions, RunOutcome};
pub use switch::{switch, NextTurn, SwitchOutcome, SwitchRequest};

/// Why a command could not do its job. The CLI turns each into one message and one exit status.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The settings are wrong, offline or against the chain; nothing was armed or broadcast.
    #[error("{0}")]
    Config(Report),
    /// No endpoint gave a fresh reading, so nothing could be checked or armed.
    #[error("{0}")]
    ChainUnavailable(Report),
    /// Another witness-trap process holds the state for writing.
    #[error("{error}; {hint}")]
    Locked { error: StoreError, hint: &'static str },
    /// The trap refused to go on with these settings (trigger or target changed since arming).
    #[error("{0}")]
    Refused(TrapError),
    /// The state could not be read or written, or the chain client could not be built.
    #[error("{0}")]
    Failure(String),
    /// Another command holds what this one needs (a switch waiting, a trap that does not step aside).
    #[error("{0}")]
    Busy(String),
    /// etcd refused or could not take a step (`COORDINATION=etcd`): this replica stops acting.
    #[error("{0}")]
    Coordination(String),
}

impl From<TrapError> for ServiceError {
    fn from(e: TrapError) -> Self {
        match e {
            #[cfg(feature = "etcd")]
            TrapError::State(crate::trap::state::StateError::Store(s @ StoreError::Coordination(_))) => {
                ServiceError::Coordination(s.to_string())
            }
            TrapError::State(crate::trap::state::StateError::Store(s @ StoreError::Conflict { .. })) if matches!(&s, StoreError::Conflict { store, .. } if store == "etcd") => {
                ServiceError::Coordination(s.to_string())
            }
            TrapError::State(s) => ServiceError::Failure(s.to_string()),
            other => ServiceError::Refused(other),
        }
    }
}

/// The alert fan-out of the configured channels.
pub fn fanout(settings: &AlertSettings, clock: SharedClock) -> Fanout {
    let mut notifiers: Vec<Arc<dyn Notifier>> = Vec::new();
    if let Some(s) = &settings.twilio {
        notifiers.push(Arc::new(TwilioNotifier::new(s.clone(), clock.clone())));
    }
    if let Some(s) = &settings.telegram {
        notifiers.push(Arc::new(TelegramNotifier::new(s.clone(), clock.clone())));
    }
    if let Some(s) = &settings.slack {
        notifiers.push(Arc::new(SlackNotifier::new(s.clone(), clock.clone())));
    }
    if let Some(s) = &settings.discord {
        notifiers.push(Arc::new(DiscordNotifier::new(s.clone(), clock.clone())));
    }
    if let Some(s) = &settings.pagerduty {
        notifiers.push(Arc::new(PagerDutyNotifier::new(s.clone(), clock.clone())));
    }
    if let Some(s) = &settings.webhook {
        notifiers.push(Arc::new(WebhookNotifier::new(s.clone(), clock.clone())));
    }
    if let Some(s) = &settings.email {
        notifiers.push(Arc::new(crate::alert::email::EmailNotifier::new(s.clone(), clock.clone())));
    }
    Fanout::with_events(notifiers, settings.events.clone())
}
