//! Offline tools for operators (issue 3, item 6; issue 15, item 3): `key pub`, `key new`, `key parse`,
//! `tx digest`, `tx sign`, `tx setup-permission`. JSON on stdin, JSON on stdout; on error nothing on stdout
//! and one line (naming the field) for stderr. An Antelope `--chain` goes to `antelope_tools`.
//!
//! Secrets: a WIF read from stdin or `--wif-file` is held in zeroizing buffers and as a `SecretString`,
//! exposed only at the call that parses it; `key new` writes the WIF to a *new* file with mode 0600 and
//! prints only the public key. No error message contains key text. All protocol work is in
//! `graphene_protocol`; this file parses arguments, reads and writes.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use thiserror::Error;
use zeroize::Zeroizing;

use super::antelope_tools::{self, AntelopeToolError};
use graphene_protocol::{
    add_signature, transaction_from_json, transaction_to_json, ChainError, ChainSpec, JsonError, KeyError, PackMode,
    PrivateKey, SignError,
};

/// `witness-trap key …`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum KeyCommand {
    /// Read a private key on stdin and print its public key: {"public_key": "STM…"} on Hive/Steem; on
    /// Antelope (a WIF or PVT_K1_…) {"public_key": "EOS…", "public_key_k1": "PUB_K1_…"}.
    Pub {
        /// hive, steem, hive-testnet, steem-testnet, a 64-hex chain id, or eos, wax, telos, jungle.
        #[arg(long, default_value = "hive")]
        chain: String,
    },
    /// Read a public key on stdin and print its forms and its 33 bytes: {"public_key", "hex"} (Antelope:
    /// also "public_key_k1"); exit 1 naming the problem (bad checksum, wrong prefix, wrong length, bad base58).
    Parse {
        /// hive, steem, hive-testnet, steem-testnet, a 64-hex chain id, or eos, wax, telos, jungle.
        #[arg(long, default_value = "hive")]
        chain: String,
    },
    /// Generate a key pair: the secret goes to a new file (mode 0600, never overwritten), the public key to
    /// stdout. The secret never goes to stdout. `--kind agent`: an Ed25519 pair for the node agent, the
    /// public key as {"public_key": "ed25519:…"} (the text AGENT_TRUSTED_KEYS takes), the secret as
    /// `ed25519-secret:…` (the file AGENT_CLIENT_KEY_FILE names).
    New {
        /// Chain whose key prefix to use (chain keys only).
        #[arg(long, default_value = "hive")]
        chain: String,
        /// `chain`: a block signing key for --chain; `agent`: the trap's key for the node agent.
        #[arg(long, value_enum, default_value_t = KeyKind::Chain)]
        kind: KeyKind,
        /// File to create for the WIF; must not exist.
        #[arg(long)]
        out: PathBuf,
    },
}

/// `key new --kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyKind {
    /// A chain key (WIF), prefixed for --chain.
    Chain,
    /// An Ed25519 key of the node agent's request scheme.
    Agent,
}

/// `witness-trap tx …`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum TxCommand {
    /// Read a transaction (condenser JSON) on stdin and print {"serialized_hex", "sig_digest", "txid"} of the
    /// legacy form, plus "hf26": {…} on Hive.
    Digest {
        /// hive, steem, hive-testnet, steem-testnet, hive-mirrornet or a 64-hex chain id.
        #[arg(long)]
        chain: String,
    },
    /// Read a transaction (condenser JSON) on stdin, validate it, sign its legacy digest with the WIF in
    /// --wif-file, check the signature by recovery, and print the transaction with the signature appended.
    Sign {
        /// hive, steem, hive-testnet, steem-testnet, hive-mirrornet or a 64-hex chain id.
        #[arg(long)]
        chain: String,
        /// File holding the WIF (one line).
        #[arg(long)]
        wif_file: PathBuf,
    },
    /// Antelope: print {"transaction": {…}, "cleos": […]}: the unsigned transaction (header to fill) that
    /// creates PERMISSION under active holding KEY and links it to eosio::regproducer (and actfinkey with
    /// --finalizer), and the cleos commands that do the same. Sign it once with the active key elsewhere.
    SetupPermission {
        /// eos, wax, telos, jungle (or another Antelope network's name).
        #[arg(long)]
        chain: String,
        /// The producer account.
        #[arg(long)]
        account: String,
        /// The public key the trap will hold (EOS… or PUB_K1_…; `key new --chain eos` makes one).
        #[arg(long)]
        key: String,
        #[arg(long, default_value = "failover")]
        permission: String,
        /// Also link eosio::actfinkey (Savanna: the swap moves the finalizer key too).
        #[arg(long)]
        finalizer: bool,
    },
}

/// Errors of the offline tools; `Display` is one line naming the input and the problem.
#[derive(Debug, Error)]
pub enum OfflineError {
    /// `--chain` is not a known chain.
    #[error("--chain: {0}")]
    Chain(#[from] ChainError),
    /// stdin could not be read (or is not UTF-8).
    #[error("stdin: cannot read: {0}")]
    Stdin(io::Error),
    /// stdin is not JSON.
    #[error("stdin: invalid json: {0}")]
    InvalidJson(serde_json::Error),
    /// JSON that does not describe a transaction.
    #[error("{0}")]
    Json(#[from] JsonError),
    /// A WIF that does not parse; `origin` is `stdin` or `--wif-file <path>`. Never contains the WIF.
    #[error("{origin}: {source}")]
    Wif {
        /// Where the WIF came from.
        origin: String,
        /// Which check failed.
        source: KeyError,
    },
    /// No WIF in the input.
    #[error("{0}: no wif found (expected one line holding a wif starting with 5)")]
    EmptyWif(String),
    /// The WIF file could not be read.
    #[error("--wif-file {path}: cannot read: {source}")]
    WifFile {
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// `key new --out` names an existing file.
    #[error("--out {0}: file already exists; refusing to overwrite a key file")]
    OutExists(String),
    /// `key new --out` could not be written.
    #[error("--out {path}: cannot write: {source}")]
    OutWrite {
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// Validation or signing failed (field path included).
    #[error("{0}")]
    Sign(#[from] SignError),
    /// stdout could not be written.
    #[error("stdout: cannot write: {0}")]
    Stdout(io::Error),
    /// An Antelope tool's error.
    #[error("{0}")]
    Antelope(#[from] AntelopeToolError),
    /// A Hive/Steem public key that does not parse.
    #[error("stdin: {0}")]
    PublicKey(KeyError),
    /// A command that exists on Antelope chains only.
    #[error("--chain {0}: this command is for Antelope chains (eos, wax, telos, jungle)")]
    NotAntelope(String),
}

fn show(path: &Path) -> String {
    // Debug-quoting keeps odd file names on one line.
    let s = path.display().to_string();
    if s.chars().any(char::is_control) {
        format!("{s:?}")
    } else {
        s
    }
}

/// Runs `key pub` / `key new`.
pub fn run_key(cmd: &KeyCommand, stdin: &mut dyn Read, stdout: &mut dyn Write) -> Result<(), OfflineError> {
    match cmd {
        KeyCommand::Pub { chain } if antelope_tools::chain_of(chain).is_some() => {
            emit(stdout, &antelope_tools::key_pub(stdin)?)
        }
        KeyCommand::New { kind: KeyKind::Agent, out, .. } => {
            let key = crate::agent::AgentSigningKey::generate();
            write_new_secret_text(out, &key.to_secret_text())?;
            emit(stdout, &json!({ "public_key": key.public_key().to_string() }))
        }
        KeyCommand::New { chain, out, .. } if antelope_tools::chain_of(chain).is_some() => {
            let (key, public) = antelope_tools::key_new();
            write_new_secret_text(out, &key.to_wif())?;
            emit(stdout, &public)
        }
        KeyCommand::Parse { chain } => {
            let mut text = String::new();
            stdin.read_to_string(&mut text).map_err(OfflineError::Stdin)?;
            if antelope_tools::chain_of(chain).is_some() {
                return emit(stdout, &antelope_tools::key_parse(&text)?);
            }
            let chain = ChainSpec::from_arg(chain)?;
            let key = graphene_protocol::keys::PublicKey::from_text(text.trim(), &chain.key_prefix)
                .map_err(OfflineError::PublicKey)?;
            emit(stdout, &json!({ "public_key": key.to_text(&chain.key_prefix), "hex": key.to_hex() }))
        }
        KeyCommand::Pub { chain } => {
            let chain = ChainSpec::from_arg(chain)?;
            let mut buf = Zeroizing::new(String::with_capacity(256));
            stdin.read_to_string(&mut buf).map_err(OfflineError::Stdin)?;
            let key = parse_wif(&buf, "stdin")?;
            emit(stdout, &json!({ "public_key": key.public_key().to_text(&chain.key_prefix) }))
        }
        KeyCommand::New { chain, out, .. } => {
            let chain = ChainSpec::from_arg(chain)?;
            let key = PrivateKey::generate();
            write_new_secret_file(out, &key)?;
            emit(stdout, &json!({ "public_key": key.public_key().to_text(&chain.key_prefix) }))
        }
    }
}

/// Runs `tx digest` / `tx sign`.
pub fn run_tx(cmd: &TxCommand, stdin: &mut dyn Read, stdout: &mut dyn Write) -> Result<(), OfflineError> {
    match cmd {
        TxCommand::SetupPermission { chain, account, key, permission, finalizer } => {
            let Some(c) = antelope_tools::chain_of(chain) else {
                return Err(OfflineError::NotAntelope(chain.clone()));
            };
            emit(stdout, &antelope_tools::setup_permission(&c, account, key, permission, *finalizer)?)
        }
        TxCommand::Digest { chain } | TxCommand::Sign { chain, .. } => {
            let input = read_json(stdin)?;
            match antelope_tools::chain_of(chain).or_else(|| antelope_tools::custom_chain(chain, &input)) {
                Some(c) => antelope_tx(cmd, &c, &input, stdout),
                None => graphene_tx(cmd, input, stdout),
            }
        }
    }
}

fn antelope_tx(
    cmd: &TxCommand,
    chain: &antelope_tools::AntelopeChain,
    input: &Value,
    stdout: &mut dyn Write,
) -> Result<(), OfflineError> {
    match cmd {
        TxCommand::Sign { wif_file, .. } => {
            // Parse the transaction before touching the key: bad input never reads the secret.
            antelope_protocol::json::transaction_from_json(input).map_err(AntelopeToolError::from)?;
            let bytes = Zeroizing::new(
                fs::read(wif_file).map_err(|source| OfflineError::WifFile { path: show(wif_file), source })?,
            );
            let origin = format!("--wif-file {}", show(wif_file));
            let text = std::str::from_utf8(&bytes).map_err(|_| OfflineError::EmptyWif(origin.clone()))?;
            let key = antelope_tools::private_key(text, &origin)?;
            emit(stdout, &antelope_tools::tx_sign(chain, input, &key)?)
        }
        _ => emit(stdout, &antelope_tools::tx_digest(chain, input)?),
    }
}

fn graphene_tx(cmd: &TxCommand, input: Value, stdout: &mut dyn Write) -> Result<(), OfflineError> {
    match cmd {
        TxCommand::SetupPermission { chain, .. } => Err(OfflineError::NotAntelope(chain.clone())),
        TxCommand::Digest { chain } => {
            let chain = ChainSpec::from_arg(chain)?;
            let signed = transaction_from_json(&input, &chain)?;
            let tx = &signed.transaction;
            let form = |mode| {
                json!({
                    "serialized_hex": hex::encode(tx.serialize_for(&chain, mode)),
                    "sig_digest": hex::encode(tx.digest(&chain, mode)),
                    "txid": tx.id_for(&chain, mode).to_string(),
                })
            };
            let mut out = form(PackMode::Legacy);
            if chain.has_hf26() {
                out["hf26"] = form(PackMode::Hf26);
            }
            emit(stdout, &out)
        }
        TxCommand::Sign { chain, wif_file } => {
            let chain = ChainSpec::from_arg(chain)?;
            // Parse the transaction before touching the key: bad input never reads the secret.
            let mut signed = transaction_from_json(&input, &chain)?;
            let key = read_wif_file(wif_file)?;
            add_signature(&mut signed, &chain, &key)?;
            emit(stdout, &transaction_to_json(&signed, &chain))
        }
    }
}

fn read_json(stdin: &mut dyn Read) -> Result<Value, OfflineError> {
    let mut text = String::new();
    stdin.read_to_string(&mut text).map_err(OfflineError::Stdin)?;
    serde_json::from_str(&text).map_err(OfflineError::InvalidJson)
}

fn parse_wif(text: &str, origin: &str) -> Result<PrivateKey, OfflineError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(OfflineError::EmptyWif(origin.to_string()));
    }
    // Exact-size copy: converting it into a `SecretString` does not reallocate and leave a stray copy.
    let wif = SecretString::from(trimmed.to_string());
    PrivateKey::from_wif(wif.expose_secret()).map_err(|source| OfflineError::Wif { origin: origin.to_string(), source })
}

fn read_wif_file(path: &Path) -> Result<PrivateKey, OfflineError> {
    let bytes = Zeroizing::new(fs::read(path).map_err(|source| OfflineError::WifFile { path: show(path), source })?);
    let origin = format!("--wif-file {}", show(path));
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| OfflineError::Wif { origin: origin.clone(), source: KeyError::WifNotBase58 })?;
    parse_wif(text, &origin)
}

fn write_new_secret_file(path: &Path, key: &PrivateKey) -> Result<(), OfflineError> {
    write_new_secret_text(path, &key.to_wif())
}

/// Create `path` (mode 0600, never overwriting) holding `secret` and a newline.
fn write_new_secret_text(path: &Path, secret: &str) -> Result<(), OfflineError> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts.open(path).map_err(|source| match source.kind() {
        io::ErrorKind::AlreadyExists => OfflineError::OutExists(show(path)),
        _ => OfflineError::OutWrite { path: show(path), source },
    })?;
    let mut line = Zeroizing::new(String::with_capacity(64));
    line.push_str(secret);
    line.push('\n');
    let written = file.write_all(line.as_bytes()).and_then(|()| file.sync_all());
    if let Err(source) = written {
        // Do not leave a truncated key file that looks usable.
        drop(file);
        let _ = fs::remove_file(path);
        return Err(OfflineError::OutWrite { path: show(path), source });
    }
    Ok(())
}

fn emit(stdout: &mut dyn Write, value: &Value) -> Result<(), OfflineError> {
    // Serializing a `Value` cannot fail; `to_string_pretty` only errors on non-string map keys.
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    text.push('\n');
    stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).map_err(OfflineError::Stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test vector pub-01 (crates/graphene-protocol/tests/vectors/): a throwaway key generated for the vectors; it belongs to nobody.
    const WIF: &str = "5HtQi3NTCkxayuq97YG3FbR5ZoLjSn8rjduATq8jmdqH4Js2BDd";

    #[test]
    fn key_pub_in_process() {
        let mut out = Vec::new();
        run_key(&KeyCommand::Pub { chain: "steem".into() }, &mut format!("{WIF}\n").as_bytes(), &mut out).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["public_key"], "STM4z3STJxcpXjbW2L8Bo1LXid23M2ounqRC4VHATVq4Fvm5QJdoj");
    }

    #[test]
    fn bad_wif_writes_nothing_and_hides_the_key() {
        let mut out = Vec::new();
        let bad = &WIF[..50];
        let err = run_key(&KeyCommand::Pub { chain: "hive".into() }, &mut bad.as_bytes(), &mut out).unwrap_err();
        assert!(out.is_empty());
        let msg = err.to_string();
        assert!(msg.starts_with("stdin: wif"), "{msg}");
        assert!(!msg.contains(bad) && !msg.contains('\n'));
    }
}
