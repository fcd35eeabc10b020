//! Configuration: every variable parsed into typed settings, every problem collected into one report.
//!
//! Two stages (as ripgrep's low/high args): [`load`] turns strings into values valid by construction
//! without touching the network; [`check`] compares them with the chain. Either way the operator gets all
//! the problems at once, each naming its variable and what to do, and never the value of a secret.

pub mod agent;
pub mod alerts;
pub mod antelope;
pub mod check;
#[cfg(feature = "etcd")]
pub mod coordination;
pub mod env_map;
pub mod solana;
pub mod vars;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::ExposeSecret;

use crate::chain::antelope::AntelopeSettings;
use crate::chain::graphene::rpc::reading::ReaderSettings;
use crate::chain::graphene::{Detection, GrapheneSettings};
use crate::chain::solana::SolanaSettings;
use crate::chain::{ChainKind, Identity};
use crate::logging::LogFormat;
use crate::trap::{TrapSettings, Trigger};
pub use alerts::AlertSettings;
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
    /// `COORDINATION=etcd`: this trap is one replica of several (`None`: the single trap of `STATE_FILE`).
    #[cfg(feature = "etcd")]
    pub coordination: Option<coordination::CoordinationSettings>,
}

/// The producer's settings, by chain family.
pub enum ChainSettings {
    Graphene(GrapheneSettings),
    Antelope(AntelopeSettings),
    Solana(SolanaSettings),
}

impl Settings {
    pub fn identity(&self) -> Identity {
        match &self.chain {
            ChainSettings::Graphene(g) => Identity { producer: g.reader.account.clone(), chain: g.chain.name.clone() },
            ChainSettings::Antelope(a) => Identity { producer: a.producer.clone(), chain: a.network.clone() },
            ChainSettings::Solana(s) => Identity { producer: s.vote_account.clone(), chain: s.cluster.clone() },
        }
    }

    pub fn kind(&self) -> ChainKind {
        match &self.chain {
            ChainSettings::Graphene(_) => ChainKind::Graphene,
            ChainSettings::Antelope(_) => ChainKind::Antelope,
            ChainSettings::Solana(_) => ChainKind::Solana,
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
pub(crate) struct Collector<'a> {
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
    let timeout = c.seconds(vars::RPC_TIMEOUT_SECS, vars::DEFAULT_RPC_TIMEOUT_SECS, 60);
    let max_head_age = c.seconds(vars::MAX_HEAD_AGE_SECS, vars::DEFAULT_MAX_HEAD_AGE_SECS, 600);
    // 3600 s is the limit of Steem and pre-HF28 Hive (protocol.md §3.4) and Antelope's default
    // max_transaction_lifetime (antelope-protocol.md §0 item 16).
    let tx_expiration = c.seconds(vars::TX_EXPIRATION_SECS, vars::DEFAULT_TX_EXPIRATION_SECS, 3600);
    let antelope = antelope::is_antelope(src);
    let solana = solana::is_solana(src);
    let chain = if solana {
        solana::settings(&mut c, timeout).map(ChainSettings::Solana)
    } else if antelope {
        antelope::settings(&mut c, timeout, max_head_age, tx_expiration).map(ChainSettings::Antelope)
    } else {
        graphene_settings(&mut c, timeout, max_head_age, tx_expiration).map(ChainSettings::Graphene)
    };
    let trigger = if solana {
        solana::trigger(&mut c)
    } else if antelope {
        antelope::trigger(&mut c)
    } else {
        trigger(&mut c)
    };
    let default_poll = if solana { solana::DEFAULT_POLL_INTERVAL_SECS } else { vars::DEFAULT_POLL_INTERVAL_SECS };
    let poll_interval = c.seconds(vars::POLL_INTERVAL_SECS, default_poll, 3600);
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
    if antelope {
        antelope::check_fire_timeout(&mut c, fire_timeout);
    }
    let state_file = state_file(src);
    check_state_file(&mut c, &state_file);
    let alerts = alerts::alerts(&mut c);
    let blind_alert_after = c.seconds(vars::BLIND_ALERT_SECS, vars::DEFAULT_BLIND_ALERT_SECS, 86_400);
    let (log_format, log_level) = logging(&mut c);
    let kind = if solana {
        ChainKind::Solana
    } else if antelope {
        ChainKind::Antelope
    } else {
        ChainKind::Graphene
    };
    #[cfg(feature = "etcd")]
    let coordination = coordination::settings(&mut c, kind, poll_interval);
    #[cfg(not(feature = "etcd"))]
    no_coordination(&mut c, kind);
    let (Some(chain), Some(trigger)) = (chain, trigger) else {
        return Err(Report { problems: c.problems });
    };
    let (backups, after_last) = match &chain {
        ChainSettings::Graphene(g) => (
            g.backups.iter().map(|k| k.to_text(&g.chain.key_prefix)).collect::<Vec<_>>(),
            g.disable_after_last.then(|| PublicKey::NULL.to_text(&g.chain.key_prefix)),
        ),
        ChainSettings::Antelope(a) => match &a.pause_resume {
            // Pause/resume: the "keys" are the nodes, the backups the agents after the primary's.
            Some(p) => (
                p.nodes
                    .iter()
                    .skip(1)
                    .map(|n| format!("{}{}", crate::chain::antelope::pause_resume::NODE_PREFIX, n.name))
                    .collect(),
                None,
            ),
            None => (a.backups.iter().map(|k| k.to_legacy()).collect(), None),
        },
        // The staked identity moves between nodes: the backups are the agents after the primary's.
        ChainSettings::Solana(s) => (
            s.nodes
                .iter()
                .skip(1)
                .map(|n| format!("{}{}", crate::chain::antelope::pause_resume::NODE_PREFIX, n.name))
                .collect(),
            None,
        ),
    };
    if let ChainSettings::Antelope(crate::chain::antelope::AntelopeSettings { pause_resume: Some(p), .. }) = &chain {
        if p.fence + Duration::from_secs(60) > fire_timeout {
            c.push(
                vars::PAUSE_FENCE_SECS,
                format!(
                    "{} s leaves no time to resume the backup within FIRE_TIMEOUT_SECS ({} s)",
                    p.fence.as_secs(),
                    fire_timeout.as_secs()
                ),
                "raise FIRE_TIMEOUT_SECS to at least PAUSE_FENCE_SECS + 60, or lower PAUSE_FENCE_SECS",
            );
        }
    }
    if let ChainSettings::Solana(s) = &chain {
        // The wait for a safe tower must fit in the fire, with a minute to promote after it.
        let wait = crate::chain::solana::SLOT * u32::try_from(s.tower_safe_slots).unwrap_or(u32::MAX);
        let waits = s.unreachable_primary == crate::chain::solana::UnreachablePrimary::Wait;
        if waits && wait + Duration::from_secs(60) > fire_timeout {
            c.push(
                vars::FIRE_TIMEOUT_SECS,
                format!(
                    "{} s leaves no time to promote after TOWER_SAFE_SLOTS ({} slots, {} s)",
                    fire_timeout.as_secs(),
                    s.tower_safe_slots,
                    wait.as_secs()
                ),
                "raise FIRE_TIMEOUT_SECS to at least TOWER_SAFE_SLOTS × 0.4 s + 60, or lower TOWER_SAFE_SLOTS",
            );
        }
    }
    if matches!(trigger, Trigger::Absolute(_)) && (backups.len() > 1 || after_last.is_some()) {
        c.push(
            vars::THRESHOLD,
            "an absolute threshold cannot carry over to the next backup after a fire",
            "use MISSED_BLOCKS_ALLOWED with BACKUP_SIGNING_KEYS or DISABLE_AFTER_LAST_BACKUP",
        );
    }
    let settings = Settings {
        chain,
        trap: TrapSettings { poll_interval, trigger, fire_timeout, blind_alert_after, backups, after_last },
        state_file,
        alerts,
        log_format,
        log_level,
        #[cfg(feature = "etcd")]
        coordination,
    };
    c.finish(settings)
}

/// A build without `--features etcd` refuses `COORDINATION=etcd` rather than running as a lone trap.
#[cfg(not(feature = "etcd"))]
fn no_coordination(c: &mut Collector, _kind: ChainKind) {
    match c.src.get(vars::COORDINATION).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("none") | Some("") => {}
        Some(_) => c.push(
            vars::COORDINATION,
            "this build of witness-trap has no etcd coordination",
            "build with `cargo build --release --features etcd`, or set COORDINATION=none",
        ),
    }
}

/// The Hive/Steem producer's variables.
fn graphene_settings(
    c: &mut Collector,
    timeout: Duration,
    max_head_age: Duration,
    tx_expiration: Duration,
) -> Option<GrapheneSettings> {
    let witness = witness_account(c);
    let chain = chain(c);
    let urls = rpc_urls(c, "https://api.hive.blog");
    let backups: Option<(&str, Vec<PublicKey>)> = backup_key_texts(c, "the backup node's public signing key (STM…)")
        .and_then(|(var, texts)| {
            let keys: Vec<Option<PublicKey>> = texts.iter().map(|t| public_key_text(c, &chain, var, t)).collect();
            keys.into_iter().collect::<Option<Vec<_>>>().map(|k| (var, k))
        });
    let backup_key = backups.as_ref().and_then(|(_, k)| k.first().copied());
    let signing_key = private_key(c, vars::SIGNING_WIF);
    let active_key = private_key(c, vars::ACTIVE_WIF);
    let backup_signing_key = private_key(c, vars::BACKUP_SIGNING_WIF);
    let disable = disable_after_last(c);
    if let (Some((_, keys)), Some(k)) = (&backups, &backup_signing_key) {
        if !keys.contains(&k.public_key()) {
            c.push(
                vars::BACKUP_SIGNING_WIF,
                "is not the private key of a backup key (BACKUP_SIGNING_KEY or BACKUP_SIGNING_KEYS)",
                "give the backup node's signing WIF (`witness-trap key pub` on it prints its public key), or remove it",
            );
        }
    }
    // Each swap after the first is signed from the backup then on chain: its WIF or the active key.
    if let (Some((var, keys)), None) = (&backups, &active_key) {
        let from = if disable { keys.len() } else { keys.len().saturating_sub(1) };
        let held = backup_signing_key.as_ref().map(|k| k.public_key());
        if let Some(k) = keys[..from].iter().find(|k| Some(**k) != held) {
            c.push(
                var,
                format!(
                    "a fire can move on from {} to the next key, and the trap holds no key to sign that swap",
                    k.to_text(&chain.key_prefix)
                ),
                "set ACTIVE_WIF (witness_update), or BACKUP_SIGNING_WIF to that backup's WIF (it covers one backup)",
            );
        }
    }
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
    let detection = match c.src.get(vars::DETECTION).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
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
    let (witness, urls, backup_key) = (witness?, urls?, backup_key?);
    let backups = backups.map(|(_, k)| k).unwrap_or_default();
    let chain_id_hex = chain.chain_id_hex();
    Some(GrapheneSettings {
        backups,
        disable_after_last: disable,
        chain,
        reader: ReaderSettings { urls, timeout, max_head_age, account: witness, chain_id_hex },
        backup_key,
        signing_key,
        active_key,
        backup_signing_key,
        tx_expiration,
        detection,
    })
}

/// What `test-alert` needs: who is guarded and every alert channel.
pub fn load_alert(src: &dyn Source) -> Result<(Identity, AlertSettings), Report> {
    let mut c = Collector { src, problems: Vec::new() };
    let identity = if antelope::is_antelope(src) {
        antelope::identity(&mut c)
    } else {
        let witness = witness_account(&mut c);
        let chain = chain(&mut c);
        witness.map(|w| Identity { producer: w, chain: chain.name })
    };
    let alerts = alerts::alerts(&mut c);
    match identity {
        Some(identity) if c.problems.is_empty() => Ok((identity, alerts)),
        _ => Err(Report { problems: c.problems }),
    }
}

/// What `health` needs: the state file and the poll interval.
///
/// Deliberately neither the state file's directory nor `LOG_LEVEL`/`LOG_FORMAT` is checked here: `health`
/// only reads (docker runs it every 30 s; it must not create probe files in the state directory), and a
/// trap whose configuration [`load`] refuses never arms, so `health` already answers "unhealthy" with the
/// reason it can see (no state file, or no recent poll), while `run` reports the problem itself.
pub fn load_health(src: &dyn Source) -> Result<(PathBuf, Duration), Report> {
    let mut c = Collector { src, problems: Vec::new() };
    let poll = c.seconds(vars::POLL_INTERVAL_SECS, vars::DEFAULT_POLL_INTERVAL_SECS, 3600);
    c.finish((state_file(src), poll))
}

/// Logging settings, read before anything else so problems can be logged. Never fails: an invalid
/// `LOG_FORMAT` or `LOG_LEVEL` falls back to the default here (human, `info`), and [`load`] reports it.
pub fn log_settings(src: &dyn Source) -> (LogFormat, Option<String>) {
    let level = src.get(vars::LOG_LEVEL).filter(|v| crate::logging::parse_filter(v).is_ok());
    (LogFormat::from_env_value(src.get(vars::LOG_FORMAT).as_deref()), level)
}

/// `LOG_FORMAT` and `LOG_LEVEL`, each invalid value a problem.
fn logging(c: &mut Collector) -> (LogFormat, Option<String>) {
    let format = match c.src.get(vars::LOG_FORMAT) {
        None => LogFormat::default(),
        Some(v) => LogFormat::parse(&v).unwrap_or_else(|| {
            c.push(
                vars::LOG_FORMAT,
                format!("{:?} is not a log format", v.trim()),
                format!("set LOG_FORMAT to {}, or remove it", LogFormat::ACCEPTED),
            );
            LogFormat::default()
        }),
    };
    let level = c.src.get(vars::LOG_LEVEL).and_then(|v| match crate::logging::parse_filter(&v) {
        Ok(_) => Some(v.trim().to_string()),
        Err(e) => {
            c.push(
                vars::LOG_LEVEL,
                format!("{:?} is not a log filter: {e}", v.trim()),
                format!(
                    "set LOG_LEVEL to a level (error, warn, info, debug, trace) or a RUST_LOG-style filter such as \
                     warn,witness_trap=debug; or remove it for {}",
                    crate::logging::DEFAULT_FILTER
                ),
            );
            None
        }
    });
    (format, level)
}

fn state_file(src: &dyn Source) -> PathBuf {
    PathBuf::from(src.get(vars::STATE_FILE).unwrap_or_else(|| vars::DEFAULT_STATE_FILE.to_string()))
}

/// The state file must be somewhere the trap can keep it: its directory exists and takes new files (the
/// atomic save writes a temporary file there and renames it; the lock and `.instance.json` live there
/// too). Symlinks are followed as the store follows them ([`crate::store::atomic::resolve`]), so it is the
/// real file's directory that is checked. Writability is tested by creating and removing a uniquely named
/// empty file, the only test that also holds for root, read-only mounts and ACLs.
fn check_state_file(c: &mut Collector, path: &std::path::Path) {
    let shown = path.display();
    let dir_of = |p: &std::path::Path| match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.display().to_string(),
        _ => ".".to_string(),
    };
    let real = match crate::store::atomic::resolve(path) {
        Ok(real) => real,
        Err(e) => {
            let own_dir_exists = std::path::Path::new(&dir_of(path)).is_dir();
            let (message, fix) = match e.kind() {
                _ if own_dir_exists && path.is_symlink() => (
                    format!(
                        "{shown} is a symbolic link to {}, which cannot be followed: {e}",
                        std::fs::read_link(path).map_or_else(|_| "?".into(), |t| t.display().to_string())
                    ),
                    "point the link (or STATE_FILE) at a file in an existing, writable directory".to_string(),
                ),
                std::io::ErrorKind::NotFound => (
                    format!("{shown}: the directory {} does not exist", dir_of(path)),
                    format!(
                        "create it (mkdir -p {}), or point STATE_FILE at a file in an existing, writable directory \
                         (in docker: on the mounted volume)",
                        dir_of(path)
                    ),
                ),
                std::io::ErrorKind::NotADirectory => (
                    format!("{shown}: {} is not a directory", dir_of(path)),
                    "point STATE_FILE at a file inside a directory (in docker: on the mounted volume)".to_string(),
                ),
                _ => (
                    format!("{shown}: cannot find the file it names: {e}"),
                    "point STATE_FILE at a file in an existing, writable directory (symlinks are followed)".to_string(),
                ),
            };
            c.push(vars::STATE_FILE, message, fix);
            return;
        }
    };
    let via = if real.as_path() == path { String::new() } else { format!(" (which is {})", real.display()) };
    if real.is_dir() {
        c.push(
            vars::STATE_FILE,
            format!("{shown}{via} is a directory, not a file"),
            format!("point STATE_FILE at a file in it, e.g. {}", real.join("witness-trap-state.json").display()),
        );
        return;
    }
    let dir = real.parent().unwrap_or(std::path::Path::new("/"));
    if let Err(e) = probe_writable(dir, &real) {
        c.push(
            vars::STATE_FILE,
            format!("{shown}{via}: cannot create files in {}: {e}", dir.display()),
            "make the directory writable by the user witness-trap runs as (in docker: a writable volume), or \
             point STATE_FILE elsewhere",
        );
    }
}

/// Create and remove a uniquely named empty file in `dir`, beside `file`.
fn probe_writable(dir: &std::path::Path, file: &std::path::Path) -> std::io::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let mut last = None;
    for _ in 0..8 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let probe = dir.join(format!(".{name}.probe-{}-{nanos}-{n}", std::process::id()));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
            Ok(f) => {
                drop(f);
                return std::fs::remove_file(&probe);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no unique file name")))
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
            c.push(
                vars::CHAIN,
                format!("{v:?} is not a supported chain"),
                "set CHAIN to hive or steem, or to an Antelope network: eos, wax, telos, jungle (or antelope with CHAIN_ID)",
            );
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

fn rpc_urls(c: &mut Collector, example: &str) -> Option<Vec<String>> {
    let raw = c.required(vars::RPC_URLS, &format!("one or more comma-separated API URLs, e.g. {example}"))?;
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

/// `BACKUP_SIGNING_KEY` or `BACKUP_SIGNING_KEYS` (never both): the variable used and its keys' texts, in order.
pub(crate) fn backup_key_texts(c: &mut Collector, what: &str) -> Option<(&'static str, Vec<String>)> {
    let one = c.src.get(vars::BACKUP_SIGNING_KEY).map(|v| v.trim().to_string());
    let many = c.src.get(vars::BACKUP_SIGNING_KEYS).map(|v| v.trim().to_string());
    let (var, texts) = match (one, many) {
        (Some(_), Some(_)) => {
            c.push(
                vars::BACKUP_SIGNING_KEYS,
                "is set together with BACKUP_SIGNING_KEY",
                "keep one: BACKUP_SIGNING_KEY for one backup, BACKUP_SIGNING_KEYS for several (comma-separated, in order)",
            );
            return None;
        }
        (None, None) => {
            c.push(
                vars::BACKUP_SIGNING_KEY,
                "is not set",
                format!("set BACKUP_SIGNING_KEY to {what} (or BACKUP_SIGNING_KEYS to several, in order)"),
            );
            return None;
        }
        (Some(one), None) => (vars::BACKUP_SIGNING_KEY, vec![one]),
        (None, Some(many)) => (
            vars::BACKUP_SIGNING_KEYS,
            many.split(',').map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).collect::<Vec<_>>(),
        ),
    };
    if texts.is_empty() {
        c.push(var, "holds no key", format!("give {what}"));
        return None;
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = texts.iter().find(|t| !seen.insert(t.as_str())) {
        c.push(var, format!("lists {dup} twice"), "list each backup node's key once, in the order to move to them");
        return None;
    }
    Some((var, texts))
}

/// `DISABLE_AFTER_LAST_BACKUP`: `true` or `false` (default).
pub(crate) fn disable_after_last(c: &mut Collector) -> bool {
    match c.src.get(vars::DISABLE_AFTER_LAST_BACKUP).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            c.push(
                vars::DISABLE_AFTER_LAST_BACKUP,
                format!("{other:?} is not true or false"),
                "set it to true or false",
            );
            false
        }
    }
}

fn public_key_text(c: &mut Collector, chain: &ChainSpec, var: &str, text: &str) -> Option<PublicKey> {
    match PublicKey::from_text(text, &chain.key_prefix) {
        Ok(k) if k.is_null() => {
            c.push(
                var,
                "holds the null key, which disables the witness instead of failing over",
                "give backup nodes' public keys (DISABLE_AFTER_LAST_BACKUP=true moves to the null key at the very end)",
            );
            None
        }
        Ok(k) => Some(k),
        Err(e) => {
            c.push(
                var,
                format!("{text:?} is not a valid public key: {e}"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A complete, valid configuration keeping its state at `state_file`.
    fn valid(state_file: &Path) -> VarMap {
        let signing = PrivateKey::generate();
        let backup = PrivateKey::generate().public_key();
        let urls = vec!["http://127.0.0.1:9/".to_string(), "http://127.0.0.1:10/".to_string()];
        VarMap::graphene("alice", &ChainSpec::hive(), &urls, &backup, &signing.to_wif(), state_file)
            .with(vars::MISSED_BLOCKS_ALLOWED, 1)
            .with_twilio("http://127.0.0.1:9", "AC1", "token", "+15005550006", "+14155550123")
    }

    /// The problems `load` reports for `map`; panics if it loads.
    fn problems(map: &VarMap) -> Vec<Problem> {
        match load(map) {
            Ok(_) => panic!("loaded, but a problem was expected"),
            Err(report) => report.problems,
        }
    }

    /// The one problem of `var`, asserting it is there.
    fn problem_of<'a>(problems: &'a [Problem], var: &str) -> &'a Problem {
        problems.iter().find(|p| p.var == var).unwrap_or_else(|| panic!("no {var} problem in {problems:?}"))
    }

    #[test]
    fn backup_signing_wif_must_belong_to_the_backup_key_and_is_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.json");
        let stranger = PrivateKey::generate().to_wif();
        let all = problems(&valid(&state).with(vars::BACKUP_SIGNING_WIF, stranger.as_str()));
        let p = problem_of(&all, vars::BACKUP_SIGNING_WIF);
        assert!(p.message.contains("not the private key of a backup key"), "{p:?}");
        assert!(!format!("{all:?}").contains(stranger.as_str()), "the WIF is never echoed");
        let all = problems(&valid(&state).with(vars::BACKUP_SIGNING_WIF, "5notawif"));
        assert!(problem_of(&all, vars::BACKUP_SIGNING_WIF).message.contains("not a valid WIF"));
        // Its own key loads.
        let backup = PrivateKey::generate();
        let urls = vec!["http://127.0.0.1:9/".to_string()];
        let map = VarMap::graphene(
            "alice",
            &ChainSpec::hive(),
            &urls,
            &backup.public_key(),
            &PrivateKey::generate().to_wif(),
            &state,
        )
        .with(vars::MISSED_BLOCKS_ALLOWED, 1)
        .with_twilio("http://127.0.0.1:9", "AC1", "token", "+15005550006", "+14155550123")
        .with(vars::BACKUP_SIGNING_WIF, backup.to_wif().as_str());
        let settings = load(&map).unwrap_or_else(|r| panic!("{r}"));
        let ChainSettings::Graphene(g) = settings.chain else { panic!("hive") };
        assert_eq!(g.backup_signing_key.map(|k| k.public_key()), Some(backup.public_key()));
    }

    #[test]
    fn a_writable_state_directory_loads_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let settings = load(&valid(&dir.path().join("s.json"))).unwrap_or_else(|r| panic!("{r}"));
        assert_eq!(settings.state_file, dir.path().join("s.json"), "the path as configured");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the probe file is removed");
    }

    #[test]
    fn a_missing_state_directory_is_a_state_file_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing/s.json");
        let all = problems(&valid(&path));
        assert_eq!(all.len(), 1, "{all:?}");
        let p = problem_of(&all, vars::STATE_FILE);
        assert!(p.message.contains("does not exist") && p.message.contains("missing"), "{p:?}");
        assert!(p.fix.contains("mkdir -p"), "{p:?}");
        assert!(!dir.path().join("missing").exists(), "nothing created");
    }

    #[test]
    fn a_state_directory_that_is_a_regular_file_is_a_state_file_problem() {
        // Holds for root too: nobody can create a file inside a regular file.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("regular");
        std::fs::write(&file, b"x").unwrap();
        let all = problems(&valid(&file.join("s.json")));
        let p = problem_of(&all, vars::STATE_FILE);
        assert!(p.message.contains("is not a directory"), "{p:?}");
        assert_eq!(std::fs::read(&file).unwrap(), b"x");
    }

    #[test]
    fn a_state_file_that_is_a_directory_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let p = problems(&valid(dir.path())).into_iter().find(|p| p.var == vars::STATE_FILE).expect("STATE_FILE");
        assert!(p.message.contains("is a directory"), "{p:?}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_unwritable_state_directory_is_a_problem_even_for_root() {
        // /proc refuses new files whoever asks, so this holds when the tests run as root (in docker).
        if !Path::new("/proc/self").exists() {
            return;
        }
        let all = problems(&valid(Path::new("/proc/witness-trap-test-state.json")));
        let p = problem_of(&all, vars::STATE_FILE);
        assert!(p.message.contains("cannot create files in /proc"), "{p:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_read_only_state_directory_is_a_problem_unless_root() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        // Root ignores the permission bits: then the directory is writable and must load.
        let writable = std::fs::write(ro.join("try"), b"").is_ok();
        let result = load(&valid(&ro.join("s.json")));
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
        match (writable, result) {
            (true, Ok(_)) => {}
            (false, Err(report)) => {
                let p = problem_of(&report.problems, vars::STATE_FILE);
                assert!(p.message.contains("cannot create files"), "{p:?}");
            }
            (true, Err(r)) => panic!("a writable directory was refused: {r}"),
            (false, Ok(_)) => panic!("a read-only directory was accepted"),
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_state_directory_checked_is_the_one_a_symlink_leads_to() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("s.json");
        std::os::unix::fs::symlink(dir.path().join("gone/s.json"), &link).unwrap();
        let all = problems(&valid(&link));
        let p = problem_of(&all, vars::STATE_FILE);
        assert!(p.message.contains("symbolic link"), "{p:?}");
        // Through a symlinked directory that exists, it loads.
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("alias")).unwrap();
        assert!(load(&valid(&dir.path().join("alias/s.json"))).is_ok());
    }

    #[test]
    fn a_bad_log_level_is_a_problem_and_logging_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let map = valid(&dir.path().join("s.json")).with(vars::LOG_LEVEL, "not[a[filter");
        let all = problems(&map);
        assert_eq!(all.len(), 1, "{all:?}");
        let p = problem_of(&all, vars::LOG_LEVEL);
        assert!(p.message.contains("not[a[filter") && p.message.contains("not a log filter"), "{p:?}");
        assert_eq!(log_settings(&map), (LogFormat::Human, None), "logging itself starts at the default");
    }

    #[test]
    fn a_bad_log_format_is_a_problem_and_logging_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let map = valid(&dir.path().join("s.json")).with(vars::LOG_FORMAT, "yaml").with(vars::LOG_LEVEL, "debug");
        let all = problems(&map);
        assert_eq!(all.len(), 1, "{all:?}");
        let p = problem_of(&all, vars::LOG_FORMAT);
        assert!(p.message.contains("yaml") && p.fix.contains("json"), "{p:?}");
        assert_eq!(log_settings(&map), (LogFormat::Human, Some("debug".to_string())));
    }

    #[test]
    fn good_log_settings_load() {
        let dir = tempfile::tempdir().unwrap();
        let map = valid(&dir.path().join("s.json"))
            .with(vars::LOG_FORMAT, "JSON")
            .with(vars::LOG_LEVEL, "warn,witness_trap=debug");
        let settings = load(&map).unwrap_or_else(|r| panic!("{r}"));
        assert_eq!(
            (settings.log_format, settings.log_level.as_deref()),
            (LogFormat::Json, Some("warn,witness_trap=debug"))
        );
        assert_eq!(log_settings(&map), (LogFormat::Json, Some("warn,witness_trap=debug".to_string())));
    }

    #[test]
    fn these_problems_come_with_every_other_problem() {
        let map = valid(Path::new("/nonexistent-dir-for-test/s.json"))
            .with(vars::LOG_LEVEL, "not[a[filter")
            .with(vars::LOG_FORMAT, "yaml")
            .with(vars::POLL_INTERVAL_SECS, "0");
        let mut map = map;
        map.unset(vars::WITNESS_ACCOUNT);
        let all = problems(&map);
        for var in
            [vars::STATE_FILE, vars::LOG_LEVEL, vars::LOG_FORMAT, vars::POLL_INTERVAL_SECS, vars::WITNESS_ACCOUNT]
        {
            problem_of(&all, var);
        }
        let text = Report { problems: all }.to_string();
        assert!(text.contains("STATE_FILE: /nonexistent-dir-for-test/s.json"), "{text}");
    }

    #[test]
    fn health_only_reads_and_ignores_these() {
        // `health` must answer (not 78) and must not write probe files: it gets the path as configured.
        let map = valid(Path::new("/nonexistent-dir-for-test/s.json")).with(vars::LOG_LEVEL, "not[a[filter");
        let (path, _) = load_health(&map).unwrap_or_else(|r| panic!("{r}"));
        assert_eq!(path, Path::new("/nonexistent-dir-for-test/s.json"));
    }
}
