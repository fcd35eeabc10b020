//! `witness-trap sim`: a simulated Hive or Steem chain, or a simulated Antelope chain (`--chain eos`, wax,
//! telos, jungle), standing alone on 127.0.0.1, in real time, for rehearsing a setup (the container, the
//! `.env`, the alerts) before arming against mainnet, and for the docker test.
//!
//! It starts the simulated node (two or more endpoints), a fake Twilio and a control server on
//! consecutive ports from `--port`, writes throwaway keys to files in `--dir` (mode 0600) with `sim.env`
//! (the variables that arm a trap against it), prints those lines and the control URL, and runs until
//! SIGINT or SIGTERM. The control server (`graphene_sim::control`, or `antelope_sim::control` for an
//! Antelope chain) takes the primary node down and up and reports the chain; SIGUSR1 and SIGUSR2 do the
//! same as `POST /primary/down` and `/up`. An Antelope chain's `/status` has no SMS list: the SMS the fake
//! Twilio receives are printed on stderr instead.
//!
//! Real time only: a trap reads head block times against its own clock, so a faster chain would look
//! stale or ahead to it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use graphene_protocol::chain::ChainSpec;
use graphene_protocol::keys::PrivateKey;
use graphene_sim::control::{self, Controlled};
use graphene_sim::{SimConfig, SimNode, SmsSink};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::config::vars;

/// The fake Twilio account.
const SID: &str = "ACsim0000000000000000000000000000";

/// The chain `witness-trap sim` simulates.
#[derive(Debug, Clone)]
pub enum SimChain {
    /// Hive or Steem.
    Graphene(ChainSpec),
    /// An Antelope network by name: `eos`, `wax`, `telos` or `jungle`.
    Antelope(String),
}

impl SimChain {
    fn name(&self) -> &str {
        match self {
            SimChain::Graphene(spec) => &spec.name,
            SimChain::Antelope(network) => network,
        }
    }
}

/// What `witness-trap sim` was asked for.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub chain: SimChain,
    pub endpoints: usize,
    /// First port: endpoints from here, then the fake Twilio, then control; 0 for ephemeral ports.
    pub port: u16,
    pub dir: PathBuf,
    /// The witness's (or the Antelope producer's) account name.
    pub witness: String,
}

/// Why the simulated chain could not start.
#[derive(Debug, thiserror::Error)]
pub enum RehearsalError {
    #[error("--endpoints must be at least 2 (the trap cross-checks endpoints), got {0}")]
    Endpoints(usize),
    #[error("--port {0}: the ports from it up to {1} must fit below 65536")]
    PortRange(u16, u32),
    #[error("{0:?} is not a valid account name for --witness")]
    Witness(String),
    #[error("{0:?} is not a valid Antelope account name for --witness (up to 12 of a-z, 1-5 and '.')")]
    Producer(String),
    #[error("no Antelope network {0:?}")]
    Network(String),
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("{what}: {reason}; choose another --port")]
    Listen { what: String, reason: String },
    #[error("{0} is not empty and is not an earlier sim's directory (no sim.env): the sim writes keys there; give a new --dir")]
    ForeignDir(String),
    #[error("cannot wait for signals: {0}")]
    Signals(std::io::Error),
}

/// The running simulated chain, as the signals drive it.
enum Node {
    Graphene(Arc<Controlled>),
    /// The Antelope node (behind its control server) and the fake Twilio (not part of it).
    Antelope(Arc<antelope_sim::control::Controlled>, SmsSink),
}

impl Node {
    fn fail_primary(&self) {
        match self {
            Node::Graphene(c) => c.node.fail_primary(),
            Node::Antelope(c, _) => c.node.fail_primary(),
        }
    }
    fn restore_primary(&self) {
        match self {
            Node::Graphene(c) => c.node.restore_primary(),
            Node::Antelope(c, _) => c.node.restore_primary(),
        }
    }
    /// The fake Twilio's messages when the control server does not show them.
    fn unseen_sms(&self) -> Option<Vec<graphene_sim::SmsMessage>> {
        match self {
            Node::Graphene(_) => None,
            Node::Antelope(_, sms) => Some(sms.messages()),
        }
    }
}

/// What is running.
struct Running {
    node: Node,
    control_port: u16,
    lines: Vec<String>,
}

fn port_at(base: u16, offset: usize) -> u16 {
    if base == 0 {
        0
    } else {
        base + offset as u16
    }
}

/// Start the chain, write the keys and `sim.env`, print the lines, and serve until SIGINT/SIGTERM.
pub async fn run(opts: SimOptions, out: &mut (impl Write + Send)) -> Result<(), RehearsalError> {
    if opts.endpoints < 2 {
        return Err(RehearsalError::Endpoints(opts.endpoints));
    }
    let last = u32::from(opts.port) + opts.endpoints as u32 + 1;
    if opts.port != 0 && last > u32::from(u16::MAX) {
        return Err(RehearsalError::PortRange(opts.port, last));
    }
    match &opts.chain {
        SimChain::Graphene(_) if !crate::config::is_valid_account_name(&opts.witness) => {
            return Err(RehearsalError::Witness(opts.witness.clone()));
        }
        SimChain::Antelope(_) if antelope_protocol::name::Name::new(&opts.witness).is_err() => {
            return Err(RehearsalError::Producer(opts.witness.clone()));
        }
        _ => {}
    }
    let stop = CancellationToken::new();
    let running = match &opts.chain {
        SimChain::Graphene(spec) => start(&opts, spec, stop.clone()).await?,
        SimChain::Antelope(network) => start_antelope(&opts, network, stop.clone()).await?,
    };
    let who = match &opts.chain {
        SimChain::Graphene(_) => format!("@{}", opts.witness),
        SimChain::Antelope(_) => format!("producer {}", opts.witness),
    };
    for line in &running.lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "control: http://127.0.0.1:{}", running.control_port);
    let _ = out.flush();
    eprintln!(
        "witness-trap sim: a simulated {} chain for {who}; arm a trap with {}\n  \
         take the primary down: curl -X POST http://127.0.0.1:{port}/primary/down (or kill -USR1 {pid})\n  \
         bring it back:         curl -X POST http://127.0.0.1:{port}/primary/up   (or kill -USR2 {pid})\n  \
         what the chain saw:    curl http://127.0.0.1:{port}/status\n  stop: Ctrl-C",
        opts.chain.name(),
        opts.dir.join("sim.env").display(),
        port = running.control_port,
        pid = std::process::id(),
    );
    serve_signals(&running.node, stop).await
}

async fn start(opts: &SimOptions, chain: &ChainSpec, stop: CancellationToken) -> Result<Running, RehearsalError> {
    let primary = PrivateKey::generate();
    let backup = PrivateKey::generate();
    let active = PrivateKey::generate();
    let prefix = chain.key_prefix.clone();
    let mut cfg =
        SimConfig::new(chain.clone(), &opts.witness, primary.public_key(), backup.public_key(), active.public_key());
    cfg.endpoints = opts.endpoints;
    cfg.ports = if opts.port == 0 { Vec::new() } else { (0..opts.endpoints).map(|i| port_at(opts.port, i)).collect() };
    cfg.initial_total_missed = 7;
    cfg.seed = rand::random();
    let node = SimNode::start(cfg)
        .await
        .map_err(|e| RehearsalError::Listen { what: "the simulated endpoints".into(), reason: e.to_string() })?;
    let token = format!("sim-token-{}", hex::encode(rand::random::<[u8; 8]>()));
    let sms_port = port_at(opts.port, opts.endpoints);
    let sms = SmsSink::start_on(sms_port, SID, SecretString::from(token.clone())).await.map_err(|e| {
        RehearsalError::Listen { what: format!("the fake Twilio on 127.0.0.1:{sms_port}"), reason: e.to_string() }
    })?;
    let twilio_url = sms.url().to_string();
    let urls = node.urls();
    let controlled = Arc::new(Controlled { node, sms });
    let control_port = port_at(opts.port, opts.endpoints + 1);
    let (control_port, _task) =
        control::serve(controlled.clone(), control_port, stop).await.map_err(|e| RehearsalError::Listen {
            what: format!("the control server on 127.0.0.1:{control_port}"),
            reason: e.to_string(),
        })?;

    let dir = prepare_dir(&opts.dir)?;
    let file = |name: &str| dir.join(name);
    write_secret(&file("signing_wif"), &primary.to_wif())?;
    write_secret(&file("active_wif"), &active.to_wif())?;
    write_secret(&file("twilio_auth_token"), &token)?;
    // Single-quoted when a path holds a space or a '#', so the .env parser reads it whole.
    let path = |name: &str| dotenv_value(&file(name).display().to_string());
    let lines = vec![
        format!("{}={}", vars::WITNESS_ACCOUNT, opts.witness),
        format!("{}={}", vars::CHAIN, chain.name),
        format!("{}={}", vars::RPC_URLS, urls.join(",")),
        format!("{}={}", vars::BACKUP_SIGNING_KEY, backup.public_key().to_text(&prefix)),
        format!("{}_FILE={}", vars::SIGNING_WIF, path("signing_wif")),
        format!("{}=1", vars::MISSED_BLOCKS_ALLOWED),
        format!("{}=10", vars::POLL_INTERVAL_SECS),
        format!("{}={SID}", vars::TWILIO_ACCOUNT_SID),
        format!("{}_FILE={}", vars::TWILIO_AUTH_TOKEN, path("twilio_auth_token")),
        format!("{}=+15005550006", vars::TWILIO_FROM),
        format!("{}=+14155550123", vars::TWILIO_TO),
        format!("{}={twilio_url}", vars::TWILIO_API_URL),
        format!("{}={}", vars::STATE_FILE, path("witness-trap-state.json")),
    ];
    write_env(&dir, &lines)?;
    Ok(Running { node: Node::Graphene(controlled), control_port, lines })
}

/// The Antelope chain: the simulated nodeos in real time, its control server, the fake Twilio, the
/// failover permission's key in a file and `sim.env`.
async fn start_antelope(opts: &SimOptions, network: &str, stop: CancellationToken) -> Result<Running, RehearsalError> {
    use antelope_protocol::keys::PrivateKey;
    let net = antelope_protocol::chain::network(network).ok_or_else(|| RehearsalError::Network(network.into()))?;
    let primary = PrivateKey::generate();
    let backup = PrivateKey::generate();
    let active = PrivateKey::generate();
    let failover = PrivateKey::generate();
    let mut cfg = antelope_sim::SimConfig::new(
        net.chain_id,
        &opts.witness,
        primary.public_key(),
        backup.public_key(),
        active.public_key(),
        failover.public_key(),
    );
    cfg.network = net.name.to_string();
    cfg.core_symbol = crate::demo_antelope::core_symbol(net.name).to_string();
    // Real time: the trap reads block times against the system clock.
    cfg.clock = Some(Arc::new(chain_clock::SystemClock));
    cfg.endpoints = opts.endpoints;
    cfg.ports = if opts.port == 0 { Vec::new() } else { (0..opts.endpoints).map(|i| port_at(opts.port, i)).collect() };
    cfg.seed = rand::random();
    let k1_text = cfg.k1_text;
    let node = antelope_sim::SimNode::start(cfg)
        .await
        .map_err(|e| RehearsalError::Listen { what: "the simulated endpoints".into(), reason: e.to_string() })?;
    let token = format!("sim-token-{}", hex::encode(rand::random::<[u8; 8]>()));
    let sms_port = port_at(opts.port, opts.endpoints);
    let sms = SmsSink::start_on(sms_port, SID, SecretString::from(token.clone())).await.map_err(|e| {
        RehearsalError::Listen { what: format!("the fake Twilio on 127.0.0.1:{sms_port}"), reason: e.to_string() }
    })?;
    let twilio_url = sms.url().to_string();
    let urls = node.urls();
    let controlled = Arc::new(antelope_sim::control::Controlled { node, network: net.name.to_string(), k1_text });
    let control_port = port_at(opts.port, opts.endpoints + 1);
    let (control_port, _task) =
        antelope_sim::control::serve(controlled.clone(), control_port, stop).await.map_err(|e| {
            RehearsalError::Listen {
                what: format!("the control server on 127.0.0.1:{control_port}"),
                reason: e.to_string(),
            }
        })?;

    let dir = prepare_dir(&opts.dir)?;
    let file = |name: &str| dir.join(name);
    write_secret(&file("failover_wif"), &failover.to_wif())?;
    write_secret(&file("twilio_auth_token"), &token)?;
    let path = |name: &str| dotenv_value(&file(name).display().to_string());
    let lines = vec![
        format!("{}={}", vars::CHAIN, net.name),
        format!("{}={}", vars::PRODUCER_ACCOUNT, opts.witness),
        format!("{}={}", vars::RPC_URLS, urls.join(",")),
        format!("{}={}", vars::BACKUP_SIGNING_KEY, backup.public_key().to_legacy()),
        format!("{}_FILE={}", vars::FAILOVER_WIF, path("failover_wif")),
        format!("{}=2", vars::MISSED_BLOCKS_ALLOWED),
        format!("{}=10", vars::POLL_INTERVAL_SECS),
        format!("{}={SID}", vars::TWILIO_ACCOUNT_SID),
        format!("{}_FILE={}", vars::TWILIO_AUTH_TOKEN, path("twilio_auth_token")),
        format!("{}=+15005550006", vars::TWILIO_FROM),
        format!("{}=+14155550123", vars::TWILIO_TO),
        format!("{}={twilio_url}", vars::TWILIO_API_URL),
        format!("{}={}", vars::STATE_FILE, path("witness-trap-state.json")),
    ];
    write_env(&dir, &lines)?;
    Ok(Running { node: Node::Antelope(controlled, sms), control_port, lines })
}

/// `--dir` made absolute, claimed (new, empty or an earlier sim's) and private (mode 0700); refused when
/// its path cannot be written into `sim.env`.
fn prepare_dir(dir: &Path) -> Result<PathBuf, RehearsalError> {
    let dir = absolute(dir);
    if dir.to_string_lossy().contains(['\'', '\n']) {
        return Err(RehearsalError::Write {
            path: dir.display().to_string(),
            source: std::io::Error::other("a --dir with a quote or a newline cannot be written into sim.env"),
        });
    }
    claim_dir(&dir)?;
    private_dir(&dir)?;
    Ok(dir)
}

/// `sim.env` in `dir`: the printed lines.
fn write_env(dir: &Path, lines: &[String]) -> Result<(), RehearsalError> {
    let env = lines.join("\n") + "\n";
    let path = dir.join("sim.env");
    std::fs::write(&path, env).map_err(|source| RehearsalError::Write { path: path.display().to_string(), source })
}

/// Serve SIGUSR1 (primary down) and SIGUSR2 (primary up) until SIGINT or SIGTERM; print the SMS that
/// the control server does not show.
async fn serve_signals(node: &Node, stop: CancellationToken) -> Result<(), RehearsalError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut usr1 = signal(SignalKind::user_defined1()).map_err(RehearsalError::Signals)?;
    let mut usr2 = signal(SignalKind::user_defined2()).map_err(RehearsalError::Signals)?;
    let mut term = signal(SignalKind::terminate()).map_err(RehearsalError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(RehearsalError::Signals)?;
    let mut sms_seen = 0usize;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = usr1.recv() => {
                node.fail_primary();
                eprintln!("witness-trap sim: the primary node is DOWN");
            }
            _ = usr2.recv() => {
                node.restore_primary();
                eprintln!("witness-trap sim: the primary node is up");
            }
            _ = tick.tick() => {
                if let Some(messages) = node.unseen_sms() {
                    for m in messages.iter().skip(sms_seen) {
                        eprintln!("witness-trap sim: SMS to {}: {:?}", m.to, m.body);
                    }
                    sms_seen = messages.len();
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    stop.cancel();
    Ok(())
}

/// `value` as a `.env` value: as it is, or single-quoted when it holds white space or `#`.
fn dotenv_value(value: &str) -> String {
    if value.contains(|c: char| c.is_whitespace() || c == '#') {
        format!("'{value}'")
    } else {
        value.to_string()
    }
}

fn absolute(dir: &Path) -> PathBuf {
    if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(dir)).unwrap_or_else(|_| dir.to_path_buf())
    }
}

/// `dir` must be new, empty, or an earlier sim's (it holds `sim.env`): the keys written here must never
/// replace real ones (`--dir docker/secrets` by mistake). An earlier sim's trap state belongs to its old
/// keys, so it goes.
fn claim_dir(dir: &Path) -> Result<(), RehearsalError> {
    let Ok(mut entries) = std::fs::read_dir(dir) else { return Ok(()) };
    if entries.next().is_none() {
        return Ok(());
    }
    if !dir.join("sim.env").exists() {
        return Err(RehearsalError::ForeignDir(dir.display().to_string()));
    }
    for stale in ["witness-trap-state.json", "witness-trap-state.json.instance.json"] {
        if std::fs::remove_file(dir.join(stale)).is_ok() {
            eprintln!("witness-trap sim: removed the earlier sim's {stale} (it belongs to its old keys)");
        }
    }
    Ok(())
}

fn private_dir(dir: &Path) -> Result<(), RehearsalError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let err = |source| RehearsalError::Write { path: dir.display().to_string(), source };
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(err)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)
}

/// Write a secret to a new file readable by its owner only (an old one is replaced).
fn write_secret(path: &Path, secret: &str) -> Result<(), RehearsalError> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| RehearsalError::Write { path: path.display().to_string(), source };
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(err)?;
    f.write_all(secret.as_bytes()).and_then(|_| f.write_all(b"\n")).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_spaces_survive_the_env_file() {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join("sim.env");
        let value = dotenv_value("/tmp/my sim #1/signing_wif");
        std::fs::write(&env, format!("SIGNING_WIF_FILE={value}\nPLAIN={}\n", dotenv_value("/tmp/plain"))).unwrap();
        let read: std::collections::HashMap<String, String> =
            dotenvy::from_path_iter(&env).unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(read["SIGNING_WIF_FILE"], "/tmp/my sim #1/signing_wif");
        assert_eq!(read["PLAIN"], "/tmp/plain");
    }
}
