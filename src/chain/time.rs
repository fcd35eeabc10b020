//! Chain time at millisecond resolution: Antelope blocks come every 0.5 s and Solana slots every 0.4 s, so the
//! boundary cannot speak in whole seconds even where Hive and Steem do.
//!
//! Written to the state file as seconds since the epoch: a whole number when the time is a whole second (as
//! every state file of version 1 has it, so those load unchanged), else a decimal with three places.

use std::fmt;
use std::time::Duration;

use chain_clock::Clock;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in chain time, milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ChainTime(u64);

impl ChainTime {
    pub const ZERO: ChainTime = ChainTime(0);

    pub fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    pub fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    /// Now, by `clock` (a scaled clock in the demo, tests and benchmark).
    pub fn now(clock: &dyn Clock) -> Self {
        Self(u64::try_from(clock.now().as_millis()).unwrap_or(u64::MAX))
    }

    pub fn as_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds, rounded down (chain timestamps of Graphene chains).
    pub fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// As a duration since the epoch (what a [`Clock`] speaks).
    pub fn as_duration(self) -> Duration {
        Duration::from_millis(self.0)
    }

    pub fn saturating_add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: ChainTime) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// ISO 8601 UTC, with milliseconds only when they are not zero.
    pub fn to_rfc3339(self) -> String {
        let fmt = time_format();
        let secs = i64::try_from(self.as_secs()).unwrap_or(i64::MAX);
        let text = time::OffsetDateTime::from_unix_timestamp(secs)
            .ok()
            .and_then(|t| t.format(&fmt).ok())
            .unwrap_or_else(|| format!("@{secs}"));
        match self.0 % 1000 {
            0 => format!("{text}Z"),
            ms => format!("{text}.{ms:03}Z"),
        }
    }
}

fn time_format() -> &'static [time::format_description::BorrowedFormatItem<'static>] {
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]")
}

impl fmt::Display for ChainTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for ChainTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_multiple_of(1000) {
            s.serialize_u64(self.0 / 1000)
        } else {
            // Three decimals round-trip exactly through f64 for any time before the year 287396.
            s.serialize_f64(self.0 as f64 / 1000.0)
        }
    }
}

impl<'de> Deserialize<'de> for ChainTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let secs = f64::deserialize(d)?;
        if !secs.is_finite() || secs < 0.0 || secs > (u64::MAX / 1000) as f64 {
            return Err(serde::de::Error::custom(format!("{secs} is not a time in seconds since the epoch")));
        }
        Ok(Self((secs * 1000.0).round() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_are_integers_and_millis_are_decimals() {
        assert_eq!(serde_json::to_string(&ChainTime::from_secs(1_795_469_094)).unwrap(), "1795469094");
        assert_eq!(serde_json::to_string(&ChainTime::from_millis(1_795_469_094_500)).unwrap(), "1795469094.5");
        for ms in [0, 1, 999, 1_795_469_094_001, 1_795_469_094_999, 4_102_444_800_123] {
            let t = ChainTime::from_millis(ms);
            let back: ChainTime = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
            assert_eq!(back, t, "{ms}");
        }
        // Version-1 state files wrote whole seconds.
        assert_eq!(serde_json::from_str::<ChainTime>("1795469094").unwrap(), ChainTime::from_secs(1_795_469_094));
        assert!(serde_json::from_str::<ChainTime>("-1").is_err());
        assert!(serde_json::from_str::<ChainTime>("\"x\"").is_err());
    }

    #[test]
    fn text() {
        assert_eq!(ChainTime::from_secs(1_735_689_600).to_string(), "2025-01-01T00:00:00Z");
        assert_eq!(ChainTime::from_millis(1_735_689_600_400).to_string(), "2025-01-01T00:00:00.400Z");
        assert_eq!(ChainTime::from_secs(10).since(ChainTime::from_secs(12)), Duration::ZERO);
    }
}
