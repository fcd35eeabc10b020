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
    /// Parse `LOG_FORMAT`; anything but `json` (case-insensitive) is human.
    pub fn from_env_value(v: Option<&str>) -> Self {
        match v {
            Some(s) if s.trim().eq_ignore_ascii_case("json") => LogFormat::Json,
            _ => LogFormat::Human,
        }
    }
}

/// Install the global subscriber writing to stderr. `filter` is a `RUST_LOG`-style directive
/// (default `info`). Calling it twice is harmless (the second call does nothing).
pub fn init(format: LogFormat, filter: Option<&str>) {
    init_with_writer(format, filter, std::io::stderr);
}

/// Same as [`init`] with a custom writer.
pub fn init_with_writer<W>(format: LogFormat, filter: Option<&str>, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter.unwrap_or("info")).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
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
        assert_eq!(LogFormat::from_env_value(Some("text")), LogFormat::Human);
        assert_eq!(LogFormat::from_env_value(None), LogFormat::Human);
    }
}
