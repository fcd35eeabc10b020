//! The names of the variables witness-trap reads, their defaults, and where values come from.
//!
//! Only this module knows variable names. Values are read through [`Source`]: the process environment
//! layered over the `.env` file in production, a plain map in tests (tests never mutate the process
//! environment). A secret `X` may instead be given as `X_FILE`, a path (docker secrets); both set is an error.

use std::collections::HashMap;
use std::path::Path;

use secrecy::SecretString;

/// The witness account to guard.
pub const WITNESS_ACCOUNT: &str = "WITNESS_ACCOUNT";
/// `hive` (default), `steem`, or an Antelope network: `eos`, `wax`, `telos`, `jungle`, `antelope` (with
/// `CHAIN_ID`).
pub const CHAIN: &str = "CHAIN";
/// Optional 64-hex chain id: makes a Hive/Steem chain a testnet of the `CHAIN` family; with
/// `CHAIN=antelope`, the Antelope chain to guard.
pub const CHAIN_ID: &str = "CHAIN_ID";
/// The Antelope producer to guard (`WITNESS_ACCOUNT` is the Hive/Steem name).
pub const PRODUCER_ACCOUNT: &str = "PRODUCER_ACCOUNT";
/// The Antelope permission the swap is signed by; default [`DEFAULT_FAILOVER_PERMISSION`].
pub const FAILOVER_PERMISSION: &str = "FAILOVER_PERMISSION";
/// That permission's private key (WIF or `PVT_K1_…`).
pub const FAILOVER_WIF: &str = "FAILOVER_WIF";
/// Optional `PUB_BLS_…` key of the backup node: the swap then also carries `actfinkey`.
pub const BACKUP_FINALIZER_KEY: &str = "BACKUP_FINALIZER_KEY";
pub const DEFAULT_FAILOVER_PERMISSION: &str = "failover";
/// Comma-separated JSON-RPC endpoints.
pub const RPC_URLS: &str = "RPC_URLS";
/// The backup node's public signing key.
pub const BACKUP_SIGNING_KEY: &str = "BACKUP_SIGNING_KEY";
/// Several backup nodes' public keys, comma-separated, in the order a fire moves to them.
pub const BACKUP_SIGNING_KEYS: &str = "BACKUP_SIGNING_KEYS";
/// `true`: after the last backup also misses, move the key to the null key (Hive/Steem) instead of leaving
/// a dead key scheduled.
pub const DISABLE_AFTER_LAST_BACKUP: &str = "DISABLE_AFTER_LAST_BACKUP";
/// The witness's current block signing key (WIF): `witness_set_properties`, cannot move funds.
pub const SIGNING_WIF: &str = "SIGNING_WIF";
/// The account's active key (WIF): `witness_update`, the fallback.
pub const ACTIVE_WIF: &str = "ACTIVE_WIF";
/// Optional WIF of the backup node's signing key: after `switch --swap-roles` it is the current key and
/// signs `witness_set_properties` back to the primary.
pub const BACKUP_SIGNING_WIF: &str = "BACKUP_SIGNING_WIF";
/// Absolute `total_missed` at which to fire.
pub const THRESHOLD: &str = "THRESHOLD";
/// Fire when `total_missed` has grown by this much since arming.
pub const MISSED_BLOCKS_ALLOWED: &str = "MISSED_BLOCKS_ALLOWED";
/// Seconds between polls; default [`DEFAULT_POLL_INTERVAL_SECS`].
pub const POLL_INTERVAL_SECS: &str = "POLL_INTERVAL_SECS";
/// Where the trap keeps its state; default [`DEFAULT_STATE_FILE`].
pub const STATE_FILE: &str = "STATE_FILE";
pub const TWILIO_ACCOUNT_SID: &str = "TWILIO_ACCOUNT_SID";
pub const TWILIO_AUTH_TOKEN: &str = "TWILIO_AUTH_TOKEN";
pub const TWILIO_FROM: &str = "TWILIO_FROM";
/// One or more comma-separated E.164 numbers.
pub const TWILIO_TO: &str = "TWILIO_TO";
/// Default [`DEFAULT_TWILIO_API_URL`]; tests point it at a local server.
pub const TWILIO_API_URL: &str = "TWILIO_API_URL";
/// Timeout of one RPC request; default [`DEFAULT_RPC_TIMEOUT_SECS`].
pub const RPC_TIMEOUT_SECS: &str = "RPC_TIMEOUT_SECS";
/// A head block older than this is stale; default [`DEFAULT_MAX_HEAD_AGE_SECS`].
pub const MAX_HEAD_AGE_SECS: &str = "MAX_HEAD_AGE_SECS";
/// Expiration of the swap transaction after head block time; default [`DEFAULT_TX_EXPIRATION_SECS`].
pub const TX_EXPIRATION_SECS: &str = "TX_EXPIRATION_SECS";
/// How long firing may take before it is declared failed; default [`DEFAULT_FIRE_TIMEOUT_SECS`].
pub const FIRE_TIMEOUT_SECS: &str = "FIRE_TIMEOUT_SECS";
/// `slots` (default): read right after each of the witness's slots; `poll`: every poll interval only.
pub const DETECTION: &str = "DETECTION";
/// `json` for JSON log lines.
pub const LOG_FORMAT: &str = "LOG_FORMAT";
/// `RUST_LOG`-style filter; default `info`.
pub const LOG_LEVEL: &str = "LOG_LEVEL";

/// Comma-separated events that reach the operator (`alert::Event` names).
pub const ALERT_EVENTS: &str = "ALERT_EVENTS";
/// Seconds without a healthy endpoint before the `blind` alert; default [`DEFAULT_BLIND_ALERT_SECS`].
pub const BLIND_ALERT_SECS: &str = "BLIND_ALERT_SECS";
pub const TELEGRAM_BOT_TOKEN: &str = "TELEGRAM_BOT_TOKEN";
pub const TELEGRAM_CHAT_ID: &str = "TELEGRAM_CHAT_ID";
/// Base URL of the Bot API; the trap appends `/bot<token>/sendMessage`.
pub const TELEGRAM_API_URL: &str = "TELEGRAM_API_URL";
pub const SLACK_WEBHOOK_URL: &str = "SLACK_WEBHOOK_URL";
pub const DISCORD_WEBHOOK_URL: &str = "DISCORD_WEBHOOK_URL";
pub const PAGERDUTY_ROUTING_KEY: &str = "PAGERDUTY_ROUTING_KEY";
/// Base URL of the Events API; the trap appends `/v2/enqueue`.
pub const PAGERDUTY_API_URL: &str = "PAGERDUTY_API_URL";
pub const WEBHOOK_URL: &str = "WEBHOOK_URL";
pub const WEBHOOK_BEARER_TOKEN: &str = "WEBHOOK_BEARER_TOKEN";
/// HMAC-SHA256 key of the raw body, sent as `X-Witness-Trap-Signature: sha256=<hex>`.
pub const WEBHOOK_HMAC_SECRET: &str = "WEBHOOK_HMAC_SECRET";
/// lettre's URL form: `smtps://host:465`, `smtp://host:587?tls=required`; plain `smtp://` only to loopback.
pub const SMTP_URL: &str = "SMTP_URL";
pub const SMTP_USERNAME: &str = "SMTP_USERNAME";
pub const SMTP_PASSWORD: &str = "SMTP_PASSWORD";
pub const SMTP_FROM: &str = "SMTP_FROM";
/// Comma-separated mailboxes.
pub const SMTP_TO: &str = "SMTP_TO";
/// The dead-man's switch: pinged after healthy polls, `/fail` when blind, nothing when dead.
pub const HEARTBEAT_URL: &str = "HEARTBEAT_URL";
/// At most one heartbeat ping per this many seconds; default [`DEFAULT_HEARTBEAT_EVERY_SECS`].
pub const HEARTBEAT_EVERY_SECS: &str = "HEARTBEAT_EVERY_SECS";
/// `host:port` of the Prometheus `/metrics` endpoint; off unless set.
pub const METRICS_ADDR: &str = "METRICS_ADDR";

/// The node agent (`witness-trap agent`): `host:port` to listen on.
pub const AGENT_LISTEN: &str = "AGENT_LISTEN";
/// The agent's TLS certificate chain (PEM); with [`AGENT_TLS_KEY_FILE`], or neither.
pub const AGENT_TLS_CERT_FILE: &str = "AGENT_TLS_CERT_FILE";
/// The agent's TLS private key (PEM); with [`AGENT_TLS_CERT_FILE`], or neither.
pub const AGENT_TLS_KEY_FILE: &str = "AGENT_TLS_KEY_FILE";
/// Comma-separated `ed25519:…` public keys of the traps the agent obeys.
pub const AGENT_TRUSTED_KEYS: &str = "AGENT_TRUSTED_KEYS";
/// The name requests must carry in `node`.
pub const AGENT_NODE_NAME: &str = "AGENT_NODE_NAME";
/// What the agent does: `antelope-producer-api`.
pub const AGENT_ACTION: &str = "AGENT_ACTION";
/// Timeout of one local action; default [`DEFAULT_AGENT_ACTION_TIMEOUT_SECS`].
pub const AGENT_ACTION_TIMEOUT_SECS: &str = "AGENT_ACTION_TIMEOUT_SECS";
/// nodeos's `producer_api`: `http://host:port` or a Unix socket path; default
/// `crate::agent::backend::DEFAULT_PRODUCER_API`.
pub const NODEOS_PRODUCER_API: &str = "NODEOS_PRODUCER_API";
/// The trap's agent signing key (`ed25519-secret:…`); a secret, usually given as `AGENT_CLIENT_KEY_FILE`.
pub const AGENT_CLIENT_KEY: &str = "AGENT_CLIENT_KEY";
/// Antelope: `regproducer` (default) or `producer-api` (pause/resume through the node agents).
pub const SWAP: &str = "SWAP";
/// `none` (default: one trap, its state in `STATE_FILE`) or `etcd` (several replicas, one fires).
pub const COORDINATION: &str = "COORDINATION";
/// etcd members, comma-separated `http://host:port` or `https://host:port` (1, or 3 or more).
pub const ETCD_ENDPOINTS: &str = "ETCD_ENDPOINTS";
/// Under which key prefix the traps keep their lock, state and replica reports; default `/witness-trap/`.
pub const ETCD_PREFIX: &str = "ETCD_PREFIX";
pub const ETCD_CA_FILE: &str = "ETCD_CA_FILE";
pub const ETCD_CERT_FILE: &str = "ETCD_CERT_FILE";
pub const ETCD_KEY_FILE: &str = "ETCD_KEY_FILE";
pub const ETCD_USERNAME: &str = "ETCD_USERNAME";
/// A secret: `ETCD_PASSWORD` or `ETCD_PASSWORD_FILE`.
pub const ETCD_PASSWORD: &str = "ETCD_PASSWORD";
/// The replica's etcd lease, in seconds; default 10.
pub const LEASE_TTL_SECS: &str = "LEASE_TTL_SECS";
/// This replica's name in the lock, `status` and the alerts; default the host name.
pub const REPLICA_NAME: &str = "REPLICA_NAME";
/// With `SWAP=producer-api`: `NAME=URL` of each node's agent, comma-separated, the primary first.
pub const AGENT_URLS: &str = "AGENT_URLS";
/// A PEM certificate (or CA) to trust for `https://` agents.
pub const AGENT_CA_FILE: &str = "AGENT_CA_FILE";
/// With `SWAP=producer-api`: seconds without a block of the producer that stand in for a pause that could not
/// be confirmed; default two rounds (252 s).
pub const PAUSE_FENCE_SECS: &str = "PAUSE_FENCE_SECS";
pub const DEFAULT_AGENT_ACTION_TIMEOUT_SECS: u64 = 5;

// Solana-family validators (`CHAIN=solana`, issue 18).
/// With `CHAIN=solana`: `mainnet-beta` (default), `testnet`, `devnet`, or another cluster given by its
/// `GENESIS_HASH`.
pub const SOLANA_CLUSTER: &str = "SOLANA_CLUSTER";
/// The base58 genesis hash of the cluster to guard (`getGenesisHash`); presets know theirs.
pub const GENESIS_HASH: &str = "GENESIS_HASH";
/// The guarded vote account (base58).
pub const VOTE_ACCOUNT: &str = "VOTE_ACCOUNT";
/// The staked identity's public key (base58): the vote account's `nodePubkey`.
pub const IDENTITY: &str = "IDENTITY";
/// Slots `slot − lastVote` may reach before a look counts as down; default [`DEFAULT_MAX_VOTE_LAG_SLOTS`].
pub const MAX_VOTE_LAG_SLOTS: &str = "MAX_VOTE_LAG_SLOTS";
pub const DEFAULT_MAX_VOTE_LAG_SLOTS: u64 = 128;
/// Consecutive down looks before a fire; default [`DEFAULT_CONFIRMATIONS`].
pub const CONFIRMATIONS: &str = "CONFIRMATIONS";
pub const DEFAULT_CONFIRMATIONS: u64 = 3;
/// Slots past the last vote the cluster saw from the staked identity before a backup may be promoted
/// without the primary's tower; default [`DEFAULT_TOWER_SAFE_SLOTS`].
pub const TOWER_SAFE_SLOTS: &str = "TOWER_SAFE_SLOTS";
pub const DEFAULT_TOWER_SAFE_SLOTS: u64 = 200;
/// What a fire does when the primary's agent cannot demote it: `wait` (default: promote after
/// `TOWER_SAFE_SLOTS`) or `refuse` (alert, never promote).
pub const UNREACHABLE_PRIMARY: &str = "UNREACHABLE_PRIMARY";
/// The agent's (`AGENT_ACTION=solana-admin`) validator ledger directory: its `admin.rpc` socket and,
/// unless `TOWER_PATH` says otherwise, its tower files.
pub const LEDGER_PATH: &str = "LEDGER_PATH";
/// Where the validator keeps its tower files (`--tower`); default `LEDGER_PATH`.
pub const TOWER_PATH: &str = "TOWER_PATH";
/// The host's unstaked identity keypair (Solana CLI JSON), set on a demoted node.
pub const JUNK_IDENTITY_FILE: &str = "JUNK_IDENTITY_FILE";
/// The staked identity keypair (Solana CLI JSON), set on a promoted node.
pub const STAKED_IDENTITY_FILE: &str = "STAKED_IDENTITY_FILE";

pub const DEFAULT_BLIND_ALERT_SECS: u64 = 300;
pub const DEFAULT_HEARTBEAT_EVERY_SECS: u64 = 60;
pub const DEFAULT_TELEGRAM_API_URL: &str = "https://api.telegram.org";
pub const DEFAULT_PAGERDUTY_API_URL: &str = "https://events.pagerduty.com";

pub const DEFAULT_POLL_INTERVAL_SECS: u64 = 30;
pub const DEFAULT_STATE_FILE: &str = "./witness-trap-state.json";
pub const DEFAULT_TWILIO_API_URL: &str = "https://api.twilio.com";
pub const DEFAULT_RPC_TIMEOUT_SECS: u64 = 5;
/// Five blocks: a healthy chain's head is at most one block (3 s) old plus the node's own lag.
pub const DEFAULT_MAX_HEAD_AGE_SECS: u64 = 15;
/// Well inside the 1 h limit of Steem and pre-HF28 Hive (protocol.md §3.4); short, so an expired attempt is
/// retried quickly with fresh TaPoS.
pub const DEFAULT_TX_EXPIRATION_SECS: u64 = 60;
pub const DEFAULT_FIRE_TIMEOUT_SECS: u64 = 600;

/// Where variable values come from.
pub trait Source: Send + Sync {
    /// The value of `name`; an empty value counts as unset (docker's `env_file` writes `X=` for blanks).
    fn get(&self, name: &str) -> Option<String>;
}

impl Source for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).filter(|v| !v.trim().is_empty()).cloned()
    }
}

/// The process environment layered over the variables of a `.env` file: real environment variables win.
/// The file is read into memory; the process environment is never modified.
#[derive(Debug, Default)]
pub struct EnvSource {
    file: HashMap<String, String>,
}

/// A `.env` file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the env file {path}: {message}")]
pub struct EnvFileError {
    pub path: String,
    pub message: String,
}

impl EnvSource {
    /// Read `path` if given (it must exist), else `./.env` if it exists.
    pub fn load(path: Option<&Path>) -> Result<Self, EnvFileError> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (Path::new(".env").to_path_buf(), false),
        };
        if !required && !path.exists() {
            return Ok(Self::default());
        }
        let err = |message: String| EnvFileError { path: path.display().to_string(), message };
        let iter = dotenvy::from_path_iter(&path).map_err(|e| err(describe_dotenv_error(&e)))?;
        let mut file = HashMap::new();
        for item in iter {
            let (k, v) = item.map_err(|e| err(describe_dotenv_error(&e)))?;
            file.insert(k, v);
        }
        Ok(Self { file })
    }
}

/// dotenvy's parse errors quote the offending line, which may hold a secret: say only where it is.
fn describe_dotenv_error(e: &dotenvy::Error) -> String {
    match e {
        dotenvy::Error::LineParse(_, index) => format!("syntax error at character {index}"),
        dotenvy::Error::Io(io) => io.to_string(),
        _ => "cannot parse the file".to_string(),
    }
}

impl Source for EnvSource {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .or_else(|| self.file.get(name).filter(|v| !v.trim().is_empty()).cloned())
    }
}

/// A problem with one variable, reported with every other problem before anything is armed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The variable at fault.
    pub var: String,
    /// What is wrong (never the value of a secret).
    pub message: String,
    /// What the operator should do.
    pub fix: String,
}

impl Problem {
    pub fn new(var: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { var: var.into(), message: message.into(), fix: fix.into() }
    }
}

/// Read a secret `name`, or the file named by `name_FILE` (one trailing newline stripped).
pub fn secret(src: &dyn Source, name: &str) -> Result<Option<SecretString>, Problem> {
    let file_var = format!("{name}_FILE");
    match (src.get(name), src.get(&file_var)) {
        (Some(_), Some(_)) => Err(Problem::new(
            name,
            format!("both {name} and {file_var} are set"),
            format!("keep only one: {file_var} (a path, for docker secrets) or {name}"),
        )),
        (Some(v), None) => Ok(Some(SecretString::from(v.trim().to_string()))),
        (None, Some(path)) => match std::fs::read_to_string(&path) {
            Ok(mut text) => {
                if text.ends_with('\n') {
                    text.pop();
                    if text.ends_with('\r') {
                        text.pop();
                    }
                }
                Ok(Some(SecretString::from(text)))
            }
            Err(e) => Err(Problem::new(
                file_var.clone(),
                format!("cannot read {path}: {e}"),
                format!("point {file_var} at a readable file holding only the secret"),
            )),
        },
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn secret_from_value_file_both_and_neither() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wif");
        std::fs::write(&path, "s3cret\n\n").unwrap();
        let p = path.to_str().unwrap();

        let v = secret(&map(&[("X", "abc")]), "X").unwrap().unwrap();
        assert_eq!(v.expose_secret(), "abc");
        // Only one trailing newline is stripped.
        let v = secret(&map(&[("X_FILE", p)]), "X").unwrap().unwrap();
        assert_eq!(v.expose_secret(), "s3cret\n");
        let e = secret(&map(&[("X", "abc"), ("X_FILE", p)]), "X").unwrap_err();
        assert!(e.message.contains("both X and X_FILE"));
        assert!(!e.message.contains("abc"));
        let e = secret(&map(&[("X_FILE", "/nonexistent/x")]), "X").unwrap_err();
        assert_eq!(e.var, "X_FILE");
        assert!(secret(&map(&[("X", "  ")]), "X").unwrap().is_none(), "blank counts as unset");
    }
}
