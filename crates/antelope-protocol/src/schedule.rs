//! Block time slots (antelope-chain.md §1.3): 0.5 s slots since 2000-01-01, 12 consecutive slots per
//! producer, producers in schedule order; and the block-time text nodeos prints.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

pub const BLOCK_INTERVAL_MS: u64 = 500;
pub const BLOCKS_PER_TURN: u64 = 12;
/// 2000-01-01T00:00:00 UTC, the epoch of `block_timestamp_type`.
pub const EPOCH_MS: u64 = 946_684_800_000;

/// The slot of a time (times before the epoch are slot 0).
pub fn slot_of_unix_ms(ms: u64) -> u64 {
    ms.saturating_sub(EPOCH_MS) / BLOCK_INTERVAL_MS
}

/// The start of a slot.
pub fn unix_ms_of_slot(slot: u64) -> u64 {
    EPOCH_MS.saturating_add(slot.saturating_mul(BLOCK_INTERVAL_MS))
}

/// Which producer of a schedule of `producers` owns `slot`.
pub fn scheduled_index(slot: u64, producers: usize) -> usize {
    let n = producers.max(1) as u64;
    ((slot % (BLOCKS_PER_TURN * n)) / BLOCKS_PER_TURN) as usize
}

const WITH_MS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]");
const NO_MS: &[FormatItem<'static>] = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a block time (expected 2025-01-01T00:00:01.500)")]
pub struct TimeError;

/// `2025-01-01T00:00:01.500` (or without milliseconds, or with a trailing `Z`) → Unix milliseconds.
pub fn parse_block_time(text: &str) -> Result<u64, TimeError> {
    let t = text.strip_suffix('Z').unwrap_or(text);
    let dt =
        PrimitiveDateTime::parse(t, WITH_MS).or_else(|_| PrimitiveDateTime::parse(t, NO_MS)).map_err(|_| TimeError)?;
    let ms = dt.assume_utc().unix_timestamp_nanos() / 1_000_000;
    u64::try_from(ms).map_err(|_| TimeError)
}

/// Unix milliseconds → `2025-01-01T00:00:01.500`.
pub fn format_block_time(unix_ms: u64) -> String {
    let nanos = i128::from(unix_ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(WITH_MS).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_and_times_agree() {
        let t = parse_block_time("2025-01-01T00:00:01.500").expect("time");
        assert_eq!(t, 1_735_689_601_500);
        assert_eq!(format_block_time(t), "2025-01-01T00:00:01.500");
        assert_eq!(parse_block_time("2025-01-01T00:00:01Z"), Ok(1_735_689_601_000));
        assert_eq!(unix_ms_of_slot(slot_of_unix_ms(t)), t);
        assert_eq!(slot_of_unix_ms(EPOCH_MS + 1_250), 2);
        assert!(parse_block_time("yesterday").is_err());
    }

    #[test]
    fn twelve_slots_per_producer_in_order() {
        assert_eq!(scheduled_index(0, 21), 0);
        assert_eq!(scheduled_index(11, 21), 0);
        assert_eq!(scheduled_index(12, 21), 1);
        assert_eq!(scheduled_index(12 * 21, 21), 0);
        assert_eq!(scheduled_index(12 * 21 - 1, 21), 20);
    }
}
