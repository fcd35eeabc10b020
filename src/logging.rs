//! Logging through `tracing`: human-readable by default, one JSON object per line with `LOG_FORMAT=json`.
//!
//! The writer is injectable so tests can capture everything the program logs (at trace level) and scan it
//! for secrets. Secrets never reach a log call in the first place: keys are `PrivateKey`/`SecretString`
//! types without a printing `Debug`.

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

impl LogFormat {
    /// The values `LOG_FORMAT` accepts, for messages.
    pub const ACCEPTED: &'static str = "human (default) or json";

    /// Parse a `LOG_FORMAT` value strictly: `human` or `json` (case-insensitive, surrounding blanks
    /// ignored); anything else is `None`, which `config::load` reports.
    pub fn parse(v: &str) -> Option<Self> {
        match v.trim().to_ascii_lowercase().as_str() {
            "human" => Some(LogFormat::Human),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }

    /// `LOG_FORMAT` for initialising logging, before the configuration is checked: unset or invalid is
    /// human (the invalid value is then reported by `config::load`).
    pub fn from_env_value(v: Option<&str>) -> Self {
        v.and_then(Self::parse).unwrap_or_default()
    }
}

/// The filter logging uses when `LOG_LEVEL` is unset (or invalid, until `config::load` reports it).
pub const DEFAULT_FILTER: &str = "info";

/// Check a `LOG_LEVEL` value: a `RUST_LOG`-style [`EnvFilter`] directive list (`info`,
/// `warn,witness_trap=debug`). The error says what the filter parser refused.
pub fn parse_filter(v: &str) -> Result<EnvFilter, String> {
    EnvFilter::try_new(v.trim()).map_err(|e| e.to_string())
}

/// Install the global subscriber writing to stderr. `filter` is a `RUST_LOG`-style directive
/// (default `info`). Calling it twice is harmless (the second call does nothing).
pub fn init(format: LogFormat, filter: Option<&str>) {
    // Colours only on a terminal: a log file or `docker logs` gets plain text.
    use std::io::IsTerminal;
    install(format, filter, std::io::stderr, std::io::stderr().is_terminal());
}

/// Same as [`init`] with a custom writer (no colours).
pub fn init_with_writer<W>(format: LogFormat, filter: Option<&str>, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    install(format, filter, writer, false);
}

fn install<W>(format: LogFormat, filter: Option<&str>, writer: W, ansi: bool)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = parse_filter(filter.unwrap_or(DEFAULT_FILTER)).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    let _ = match format {
        LogFormat::Human => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_parsing() {
        assert_eq!(LogFormat::from_env_value(Some("JSON")), LogFormat::Json);
        assert_eq!(LogFormat::from_env_value(Some("text")), LogFormat::Human, "logging falls back");
        assert_eq!(LogFormat::from_env_value(None), LogFormat::Human);
        assert_eq!(LogFormat::parse(" Json "), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse("human"), Some(LogFormat::Human));
        assert_eq!(LogFormat::parse("text"), None, "but the value is not accepted");
        assert_eq!(LogFormat::parse("jsonl"), None);
    }

    #[test]
    fn filter_parsing() {
        for ok in ["info", "TRACE", " warn ", "warn,witness_trap=debug", "witness_trap::trap=trace"] {
            assert!(parse_filter(ok).is_ok(), "{ok:?} should be accepted");
        }
        for bad in ["not[a[filter", "witness_trap=loud", "info,=debug=x"] {
            assert!(parse_filter(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
