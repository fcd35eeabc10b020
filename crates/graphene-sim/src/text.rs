//! Text as a node writes it in JSON: chain time and legacy asset amounts (protocol.md §1.3).

use super::proto::ChainSpec;

/// Chain time as JSON writes it: "YYYY-MM-DDTHH:MM:SS", UTC, no zone (§1.3).
pub fn time_text(secs: u64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00".into())
}

/// Parse "YYYY-MM-DDTHH:MM:SS" back to seconds.
pub fn parse_time_text(s: &str) -> Option<u64> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let t = time::PrimitiveDateTime::parse(s, &fmt).ok()?;
    u64::try_from(t.assume_utc().unix_timestamp()).ok()
}

/// Asset text in the legacy (condenser) form, e.g. "3.000 HIVE" (§1.3).
pub fn asset_text(milli: i64, symbol: &str) -> String {
    let sign = if milli < 0 { "-" } else { "" };
    let m = milli.unsigned_abs();
    format!("{sign}{}.{:03} {symbol}", m / 1000, m % 1000)
}

/// (core, debt) symbols as JSON writes them on this chain.
pub fn symbols(spec: &ChainSpec) -> (&str, &str) {
    (&spec.core_symbol, &spec.debt_symbol)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        assert_eq!(time_text(1_735_689_600), "2025-01-01T00:00:00");
        assert_eq!(parse_time_text("2025-01-01T00:00:00"), Some(1_735_689_600));
        assert_eq!(parse_time_text("2025-01-01 00:00"), None);
        assert_eq!(asset_text(3000, "HIVE"), "3.000 HIVE");
        assert_eq!(asset_text(1, "STEEM"), "0.001 STEEM");
        assert_eq!(asset_text(-1500, "SBD"), "-1.500 SBD");
    }
}
