//! Which events reach the operator (`ALERT_EVENTS`): every configured channel gets every chosen event,
//! exactly once.

use std::collections::BTreeSet;
use std::fmt;

/// An event the trap can alert on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Event {
    /// The trap armed (or resumed armed).
    Armed,
    /// The swap is confirmed: txid, new key, blocks missed.
    Fired,
    /// The trap fired and the swap was not confirmed.
    FireFailed,
    /// No healthy endpoint for `BLIND_ALERT_SECS` (once per episode).
    Blind,
    /// Healthy again after a `blind` alert.
    Recovered,
    /// The data cannot be trusted: a counter went backwards, a chain id changed, endpoints contradict each
    /// other, one is untrusted.
    Distrust,
    /// A fired trap was started again (it idles, disarmed).
    DisarmedStart,
}

impl Event {
    pub const ALL: [Event; 7] = [
        Event::Armed,
        Event::Fired,
        Event::FireFailed,
        Event::Blind,
        Event::Recovered,
        Event::Distrust,
        Event::DisarmedStart,
    ];
    /// `ALERT_EVENTS` when unset.
    pub const DEFAULT: [Event; 5] = [Event::Fired, Event::FireFailed, Event::Blind, Event::Recovered, Event::Distrust];

    pub fn name(self) -> &'static str {
        match self {
            Event::Armed => "armed",
            Event::Fired => "fired",
            Event::FireFailed => "fire_failed",
            Event::Blind => "blind",
            Event::Recovered => "recovered",
            Event::Distrust => "distrust",
            Event::DisarmedStart => "disarmed_start",
        }
    }

    pub fn parse(s: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.name().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The chosen events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSet(BTreeSet<Event>);

impl Default for EventSet {
    fn default() -> Self {
        Self(Event::DEFAULT.into_iter().collect())
    }
}

impl EventSet {
    pub fn all() -> Self {
        Self(Event::ALL.into_iter().collect())
    }

    /// A comma-separated list of event names; the error names the word that is not one.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            set.insert(Event::parse(word).ok_or_else(|| format!("{word:?} is not an event"))?);
        }
        Ok(Self(set))
    }

    pub fn contains(&self, e: Event) -> bool {
        self.0.contains(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_the_default_is_the_issue_s() {
        for e in Event::ALL {
            assert_eq!(Event::parse(e.name()), Some(e));
        }
        let d = EventSet::default();
        assert!(d.contains(Event::Fired) && d.contains(Event::Distrust) && !d.contains(Event::Armed));
        let s = EventSet::parse("fired, ARMED,disarmed_start").unwrap();
        assert!(s.contains(Event::Armed) && s.contains(Event::DisarmedStart) && !s.contains(Event::Blind));
        assert!(EventSet::parse("fired,lunch").unwrap_err().contains("lunch"));
    }
}
