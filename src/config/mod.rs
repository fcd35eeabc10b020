//! Configuration: every variable parsed into typed settings, every problem collected into one report.
//!
//! Two stages (as ripgrep's low/high args): [`load`] turns strings into values valid by construction
//! without touching the network; [`check`] compares them with the chain. Either way the operator gets all
//! the problems at once, each naming its variable and what to do, and never the value of a secret.

pub mod check;
pub mod env_map;
pub mod vars;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::ExposeSecret;

use crate::alert::{PhoneNumber, TwilioSettings};
use crate::chain::graphene::rpc::reading::ReaderSettings;
use crate::chain::graphene::{Detection, GrapheneSettings};
use crate::chain::{ChainKind, Identity};
use crate::logging::LogFormat;
use crate::trap::{TrapSettings, Trigger};
pub use env_map::VarMap;
use graphene_protocol::chain::{parse_chain_id_hex, ChainSpec, Family};
use graphene_protocol::keys::{PrivateKey, PublicKey};
pub use vars::{EnvSource, Problem, Source};

/// Everything `run` needs.
pub struct Settings {
    /// The guarded producer and its chain family.
    pub chain: ChainSettings,
    pub trap: TrapSettings,
    /// Where the file store keeps the state (`STATE_FILE`).
    pub state_file: PathBuf,
    pub alerts: AlertSettings,
    pub log_format: LogFormat,
    pub log_level: Option<String>,
}

/// The producer's settings, by chain family.
pub enum ChainSettings {
    Graphene(GrapheneSettings),
}

/// Every configured alert channel.
#[derive(Debug, Clone, Default)]
pub struct AlertSettings {
    pub twilio: Option<TwilioSettings>,
}

impl Settings {
    pub fn identity(&self) -> Identity {
        match &self.chain {
            ChainSettings::Graphene(g) => Identity { producer: g.reader.account.clone(), chain: g.chain.name.clone() },
        }
    }

    pub fn kind(&self) -> ChainKind {
        match &self.chain {
            ChainSettings::Graphene(_) => ChainKind::Graphene,
        }
    }
}

/// All the problems found, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub problems: Vec<Problem>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(f, "{n} problem{} in the configuration; the trap will not run:", if n == 1 { "" } else { "s" })?;
        for p in &self.problems {
            writeln!(f, "  {}: {}", p.var, p.message)?;
            writeln!(f, "    fix: {}", p.fix)?;
        }
        Ok(())
    }
}

impl std::error::Error for Report {}

/// Collects problems while parsing.
struct Collector<'a> {
    src: &'a dyn Source,
    problems: Vec<Problem>,
}

impl<'a> Collector<'a> {
    fn required(&mut self, var: &str, what: &str) -> Option<String> {
        let v = self.src.get(var).map(|v| v.trim().to_string());
        if v.is_none() {
            self.problems.push(Problem::new(var, "is not set", format!("set {var} to {what}")));
        }
        v
    }

    /// A whole number of seconds in `1..=max` (bounded so no later arithmetic can overflow).
    fn seconds(&mut self, var: &str, default: u64, max: u64) -> Duration {
        match self.src.get(var) {
            None => Duration::from_secs(default),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if (1..=max).contains(&n) => Duration::from_secs(n),
                _ => {
                    self.problems.push(Problem::new(
                        var,
                        format!("{:?} is not a whole number of seconds from 1 to {max}", v.trim()),
                        format!("set {var} to a number of seconds, or remove it for the default {default}"),
                    ));
                    Duration::from_secs(default)
                }
            },
        }
    }

    fn push(&mut self, var: &str, message: impl Into<String>, fix: impl Into<String>) {
        self.problems.push(Problem::new(var, message, fix));
    }

    fn finish<T>(self, value: T) -> Result<T, Report> {
        if self.problems.is_empty() {
            Ok(value)
        } else {
            Err(Report { problems: self.problems })
        }
    }
}

/// Load everything `run`, `check`, `status`, `rearm` and `fire` need.
pub fn load(src: &dyn Source) -> Result<Settings, Report> {
    let mut c = Collector { src, problems: Vec::new() };
    let witness = witness_account(&mut c);
    let chain = chain(&mut c);
    let urls = rpc_urls(&mut c);
    let backup_key = public_key(&mut c, &chain, vars::BACKUP_SIGNING_KEY);
    let signing_key = private_key(&mut c, vars::SIGNING_WIF);
    let active_key = private_key(&mut c, vars::ACTIVE_WIF);
    if signing_key.is_none()
        && active_key.is_none()
        && !c.problems.iter().any(|p| p.var.starts_with("SIGNING_WIF") || p.var.starts_with("ACTIVE_WIF"))
    {
        c.push(
            vars::SIGNING_WIF,
            "neither SIGNING_WIF nor ACTIVE_WIF is set: the trap has no key to sign the swap",
            "set SIGNING_WIF to the witness's current block signing key (preferred: it cannot move funds), or ACTIVE_WIF",
        );
    }
    if let (Some(b), Some(s)) = (backup_key, &signing_key) {
        if s.public_key() == b {
            c.push(
                vars::BACKUP_SIGNING_KEY,
                "is the public key of SIGNING_WIF: swapping to it would change nothing",
                "set it to the backup node's public key (on the backup: `witness-trap key pub`)",
            );
        }
    }
    let trigger = trigger(&mut c);
    let poll_interval = c.seconds(vars::POLL_INTERVAL_SECS, vars::DEFAULT_POLL_INTERVAL_SECS, 3600);
    let timeout = c.seconds(vars::RPC_TIMEOUT_SECS, vars::DEFAULT_RPC_TIMEOUT_SECS, 60);
    let max_head_age = c.seconds(vars::MAX_HEAD_AGE_SECS, vars::DEFAULT_MAX_HEAD_AGE_SECS, 600);
    // 3600 s is the limit of Steem and pre-HF28 Hive (protocol.md §3.4).
    let tx_expiration = c.seconds(vars::TX_EXPIRATION_SECS, vars::DEFAULT_TX_EXPIRATION_SECS, 3600);
    let fire_timeout = c.seconds(vars::FIRE_TIMEOUT_SECS, vars::DEFAULT_FIRE_TIMEOUT_SECS, 86_400);
    // Firing must outlive at least two attempts, or it could give up while its only attempt is still valid.
    if fire_timeout < tx_expiration * 2 {
        c.push(
            vars::FIRE_TIMEOUT_SECS,
            format!(
                "{} s is less than twice TX_EXPIRATION_SECS ({} s)",
                fire_timeout.as_secs(),
                tx_expiration.as_secs()
            ),
            "raise FIRE_TIMEOUT_SECS or lower TX_EXPIRATION_SECS",
        );
    }
    let detection = match src.get(vars::DETECTION).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("slots") => Detection::Slots,
        Some("poll") => Detection::Poll,
        Some(other) => {
            c.push(
                vars::DETECTION,
                format!("{other:?} is not a detection mode"),
                "set DETECTION to slots (default) or poll",
            );
            Detection::Slots
        }
    };
    let state_file = state_file(src);
    let twilio = twilio(&mut c);
    let log_format = LogFormat::from_env_value(src.get(vars::LOG_FORMAT).as_deref());
    let log_level = src.get(vars::LOG_LEVEL);
    let (Some(witness), Some(urls), Some(backup_key), Some(trigger)) = (witness, urls, backup_key, trigger) else {
        return Err(Report { problems: c.problems });
    };
    let chain_id_hex = chain.chain_id_hex();
    let settings = Settings {
        chain: ChainSettings::Graphene(GrapheneSettings {
            chain,
            reader: ReaderSettings { urls, timeout, max_head_age, account: witness, chain_id_hex },
            backup_key,
            signing_key,
            active_key,
            tx_expiration,
            detection,
        }),
        trap: TrapSettings { poll_interval, trigger, fire_timeout },
        state_file,
        alerts: AlertSettings { twilio },
        log_format,
        log_level,
    };
    c.finish(settings)
}

/// What `test-alert` needs: who is guarded and every alert channel.
pub fn load_alert(src: &dyn Source) -> Result<(Identity, AlertSettings), Report> {
    let mut c = Collector { src, problems: Vec::new() };
    let witness = witness_account(&mut c);
    let chain = chain(&mut c);
    let twilio = twilio(&mut c);
    match (witness, twilio) {
        (Some(w), Some(t)) if c.problems.is_empty() => {
            Ok((Identity { producer: w, chain: chain.name }, AlertSettings { twilio: Some(t) }))
        }
        _ => Err(Report { problems: c.problems }),
    }
}

/// What `health` needs: the state file and the poll interval.
pub fn load_health(src: &dyn Source) -> Result<(PathBuf, Duration), Report> {
    let mut c = Collector { src, problems: Vec::new() };
    let poll = c.seconds(vars::POLL_INTERVAL_SECS, vars::DEFAULT_POLL_INTERVAL_SECS, 3600);
    c.finish((state_file(src), poll))
}

/// Logging settings, read before anything else so problems can be logged.
pub fn log_settings(src: &dyn Source) -> (LogFormat, Option<String>) {
    (LogFormat::from_env_value(src.get(vars::LOG_FORMAT).as_deref()), src.get(vars::LOG_LEVEL))
}

fn state_file(src: &dyn Source) -> PathBuf {
    PathBuf::from(src.get(vars::STATE_FILE).unwrap_or_else(|| vars::DEFAULT_STATE_FILE.to_string()))
}

/// Hive account names: 3 to 16 characters, dot-separated segments of lower-case letters, digits and
/// hyphens, each starting with a letter (protocol `is_valid_account_name`).
pub fn is_valid_account_name(name: &str) -> bool {
    (3..=16).contains(&name.len())
        && name.split('.').all(|seg| {
            seg.len() >= 3
                && seg.starts_with(|c: char| c.is_ascii_lowercase())
                && !seg.ends_with('-')
                && seg.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !seg.contains("--")
        })
}

fn witness_account(c: &mut Collector) -> Option<String> {
    let raw = c.required(vars::WITNESS_ACCOUNT, "the witness's account name, e.g. alice")?;
    let name = raw.trim_start_matches('@').to_string();
    if is_valid_account_name(&name) {
        Some(name)
    } else {
        c.push(
            vars::WITNESS_ACCOUNT,
            format!("{name:?} is not a valid account name"),
            "use the account name without @: 3-16 lower-case letters, digits, '-' or '.'",
        );
        None
    }
}

fn chain(c: &mut Collector) -> ChainSpec {
    let family = match c.src.get(vars::CHAIN).map(|v| v.trim().to_ascii_lowercase()) {
        None => Family::Hive,
        Some(v) if v == "hive" => Family::Hive,
        Some(v) if v == "steem" => Family::Steem,
        Some(v) => {
            c.push(vars::CHAIN, format!("{v:?} is not a supported chain"), "set CHAIN to hive or steem");
            Family::Hive
        }
    };
    match c.src.get(vars::CHAIN_ID) {
        None => match family {
            Family::Hive => ChainSpec::hive(),
            Family::Steem => ChainSpec::steem(),
        },
        Some(hex) => match parse_chain_id_hex(hex.trim()) {
            // A known id means its preset (Hive mainnet or mirrornet, Steem mainnet), not a testnet.
            Ok(id) => {
                let known = [ChainSpec::hive(), ChainSpec::steem(), ChainSpec::hive_mirrornet()];
                match known.into_iter().find(|k| k.chain_id == id) {
                    Some(k) if k.family == family => k,
                    Some(k) => {
                        c.push(
                            vars::CHAIN_ID,
                            format!(
                                "is the chain id of {}, but CHAIN is {}",
                                k.name,
                                if family == Family::Hive { "hive" } else { "steem" }
                            ),
                            "make CHAIN and CHAIN_ID name the same chain (or remove CHAIN_ID for mainnet)",
                        );
                        k
                    }
                    None => ChainSpec::testnet(family, id),
                }
            }
            Err(e) => {
                c.push(vars::CHAIN_ID, format!("{e}"), "give 64 hex characters, or remove CHAIN_ID for mainnet");
                ChainSpec::hive()
            }
        },
    }
}

fn rpc_urls(c: &mut Collector) -> Option<Vec<String>> {
    let raw = c.required(vars::RPC_URLS, "one or more comma-separated JSON-RPC URLs, e.g. https://api.hive.blog")?;
    let urls: Vec<String> = raw.split(',').map(|u| u.trim().to_string()).filter(|u| !u.is_empty()).collect();
    let bad: Vec<&String> = urls
        .iter()
        .filter(|u| reqwest::Url::parse(u).map_or(true, |p| !matches!(p.scheme(), "http" | "https")))
        .collect();
    if urls.is_empty() || !bad.is_empty() {
        c.push(
            vars::RPC_URLS,
            format!(
                "not a list of http(s) URLs: {}",
                bad.iter().map(|s| format!("{:?}", crate::redact::url(s))).collect::<Vec<_>>().join(", ")
            ),
            "give comma-separated URLs starting with https:// (or http:// for a local node)",
        );
        return None;
    }
    // The same server listed twice would corroborate itself.
    let mut seen = std::collections::HashSet::new();
    for u in &urls {
        let key = reqwest::Url::parse(u)
            .map(|p| p.to_string().trim_end_matches('/').to_ascii_lowercase())
            .unwrap_or_default();
        if !seen.insert(key) {
            c.push(
                vars::RPC_URLS,
                format!("lists the same endpoint twice ({})", crate::redact::url(u)),
                "list each endpoint once: a crossing must be confirmed by a different server",
            );
            return None;
        }
    }
    Some(urls)
}

fn public_key(c: &mut Collector, chain: &ChainSpec, var: &str) -> Option<PublicKey> {
    let text = c.required(var, "the backup node's public signing key (STM…)")?;
    match PublicKey::from_text(&text, &chain.key_prefix) {
        Ok(k) => Some(k),
        Err(e) => {
            c.push(
                var,
                format!("is not a valid public key: {e}"),
                format!(
                    "give the backup node's public key, {}… (`witness-trap key pub` prints it from the WIF)",
                    chain.key_prefix
                ),
            );
            None
        }
    }
}

fn private_key(c: &mut Collector, var: &str) -> Option<PrivateKey> {
    let secret = match vars::secret(c.src, var) {
        Ok(s) => s?,
        Err(p) => {
            c.problems.push(p);
            return None;
        }
    };
    match PrivateKey::from_wif(secret.expose_secret().trim()) {
        Ok(k) => Some(k),
        Err(e) => {
            c.push(
                var,
                format!("is not a valid WIF private key: {e}"),
                "give the standard 51-character WIF starting with 5 (what cli_wallet and Hive Keychain export)",
            );
            None
        }
    }
}

fn trigger(c: &mut Collector) -> Option<Trigger> {
    let parse = |c: &mut Collector, var: &str, min: u64| -> Option<u64> {
        let v = c.src.get(var)?;
        match v.trim().parse::<u64>() {
            Ok(n) if n >= min => Some(n),
            _ => {
                c.push(
                    var,
                    format!("{:?} is not a whole number ≥ {min}", v.trim()),
                    format!("set {var} to a whole number ≥ {min}"),
                );
                None
            }
        }
    };
    let both = c.src.get(vars::THRESHOLD).is_some() && c.src.get(vars::MISSED_BLOCKS_ALLOWED).is_some();
    if both {
        c.push(
            vars::THRESHOLD,
            "both THRESHOLD and MISSED_BLOCKS_ALLOWED are set",
            "keep exactly one: MISSED_BLOCKS_ALLOWED (missed blocks since arming) or THRESHOLD (absolute total_missed)",
        );
        return None;
    }
    if c.src.get(vars::THRESHOLD).is_some() {
        return parse(c, vars::THRESHOLD, 1).map(Trigger::Absolute);
    }
    if c.src.get(vars::MISSED_BLOCKS_ALLOWED).is_some() {
        return parse(c, vars::MISSED_BLOCKS_ALLOWED, 1).map(Trigger::Allowed);
    }
    c.push(
        vars::MISSED_BLOCKS_ALLOWED,
        "neither MISSED_BLOCKS_ALLOWED nor THRESHOLD is set",
        "set MISSED_BLOCKS_ALLOWED (e.g. 2: fire after 2 more missed blocks) or THRESHOLD (an absolute total_missed)",
    );
    None
}

fn twilio(c: &mut Collector) -> Option<TwilioSettings> {
    let sid = c.required(vars::TWILIO_ACCOUNT_SID, "your Twilio Account SID (AC…)");
    if let Some(s) = &sid {
        if !s.chars().all(|ch| ch.is_ascii_alphanumeric()) {
            c.push(
                vars::TWILIO_ACCOUNT_SID,
                "contains characters other than letters and digits",
                "copy the Account SID from the Twilio console",
            );
        }
    }
    let token = match vars::secret(c.src, vars::TWILIO_AUTH_TOKEN) {
        Ok(Some(t)) => Some(t),
        Ok(None) => {
            c.push(vars::TWILIO_AUTH_TOKEN, "is not set", "set TWILIO_AUTH_TOKEN or TWILIO_AUTH_TOKEN_FILE");
            None
        }
        Err(p) => {
            c.problems.push(p);
            None
        }
    };
    let from =
        c.required(vars::TWILIO_FROM, "your Twilio phone number in E.164 form, e.g. +14155550123").and_then(|v| {
            PhoneNumber::parse(&v)
                .map_err(|e| {
                    c.push(vars::TWILIO_FROM, e.to_string(), "give the Twilio number as + country code and number")
                })
                .ok()
        });
    let to = c.required(vars::TWILIO_TO, "one or more comma-separated E.164 numbers to alert").and_then(|v| {
        let mut numbers = Vec::new();
        for (i, part) in v.split(',').map(str::trim).enumerate() {
            match PhoneNumber::parse(part) {
                Ok(n) => numbers.push(n),
                Err(e) => {
                    c.push(
                        vars::TWILIO_TO,
                        format!("number {} of the list: {e}", i + 1),
                        "give comma-separated numbers like +14155550123,+447911123456",
                    );
                    return None;
                }
            }
        }
        Some(numbers)
    });
    let api_url = c.src.get(vars::TWILIO_API_URL).unwrap_or_else(|| vars::DEFAULT_TWILIO_API_URL.to_string());
    if reqwest::Url::parse(&api_url).map_or(true, |u| !matches!(u.scheme(), "http" | "https")) {
        c.push(
            vars::TWILIO_API_URL,
            format!("{api_url:?} is not an http(s) URL"),
            "remove it for https://api.twilio.com",
        );
    }
    Some(TwilioSettings {
        api_url,
        account_sid: sid?,
        auth_token: token?,
        from: from?,
        to: to?,
        timeout: Duration::from_secs(10),
        max_attempts: 4,
        backoff: Duration::from_secs(2),
    })
}
