//! The node agent's variables (`witness-trap agent`), every problem named by its variable; and the trap
//! side's agent key (`AGENT_CLIENT_KEY_FILE`).
//!
//! Nothing here touches the network: the TLS files are read and the certificate and key checked to
//! belong together, the trusted keys parsed, the nodeos endpoint parsed, and for `solana-admin` the ledger
//! directory checked and both identity keypair files read once for their public keys. A bad secret (the
//! TLS key, the client key, a keypair file) is named by its variable and never quoted.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::ExposeSecret as _;
use zeroize::Zeroizing;

use super::vars::{self, Problem, Source};
use super::{Collector, Report};
use crate::agent::backend::{ProducerApi, DEFAULT_PRODUCER_API};
use crate::agent::keys::{AgentPublicKey, AgentSigningKey};
use crate::agent::request::{is_valid_node_name, MAX_NODE_NAME};
use crate::agent::solana_admin::{read_keypair_public, IdentityFile, KeypairError, SOCKET_NAME};
use crate::logging::LogFormat;

/// Everything `witness-trap agent` needs.
#[derive(Debug)]
pub struct AgentSettings {
    pub listen: SocketAddr,
    /// Set when `AGENT_TLS_CERT_FILE` and `AGENT_TLS_KEY_FILE` are.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub trusted_keys: Vec<AgentPublicKey>,
    pub node_name: String,
    pub action: AgentActionSettings,
    pub log_format: LogFormat,
    pub log_level: Option<String>,
}

/// `AGENT_ACTION` and its own variables.
#[derive(Debug, Clone)]
pub enum AgentActionSettings {
    /// `antelope-producer-api`: nodeos's `producer_api` at `NODEOS_PRODUCER_API`.
    AntelopeProducerApi { endpoint: ProducerApi, timeout: Duration },
    /// `solana-admin`: the validator's admin socket `<LEDGER_PATH>/admin.rpc`; the paths are absolute, the
    /// public keys base58 (the secret halves are not kept).
    SolanaAdmin {
        ledger: PathBuf,
        /// `TOWER_PATH`, or the ledger.
        tower_dir: PathBuf,
        junk: IdentityFile,
        staked: IdentityFile,
        timeout: Duration,
    },
}

/// The values `AGENT_ACTION` takes.
pub const ACTIONS: &str = "antelope-producer-api or solana-admin";

/// Load the agent's settings, or every problem.
pub fn load(src: &dyn Source) -> Result<AgentSettings, Report> {
    let mut c = Collector { src, problems: Vec::new() };
    let listen = listen(&mut c);
    let tls = tls(&mut c);
    let trusted_keys = trusted_keys(&mut c);
    let node_name = node_name(&mut c);
    let action = action(&mut c);
    let (log_format, log_level) = super::logging(&mut c);
    let (Some(listen), Some(trusted_keys), Some(node_name), Some(action)) = (listen, trusted_keys, node_name, action)
    else {
        return Err(Report { problems: c.problems });
    };
    c.finish(AgentSettings { listen, tls, trusted_keys, node_name, action, log_format, log_level })
}

fn listen(c: &mut Collector) -> Option<SocketAddr> {
    let raw = c.required(vars::AGENT_LISTEN, "the address and port to listen on, e.g. 0.0.0.0:8443")?;
    match raw.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            c.push(
                vars::AGENT_LISTEN,
                format!("{raw:?} is not an address and port"),
                "give ip:port, e.g. 0.0.0.0:8443 (every interface) or 10.0.0.5:8443; [::]:8443 for IPv6",
            );
            None
        }
    }
}

fn tls(c: &mut Collector) -> Option<Arc<rustls::ServerConfig>> {
    let (cert_var, key_var) = (vars::AGENT_TLS_CERT_FILE, vars::AGENT_TLS_KEY_FILE);
    let (cert_path, key_path) = match (c.src.get(cert_var), c.src.get(key_var)) {
        (None, None) => return None,
        (Some(cert), Some(key)) => (cert.trim().to_string(), key.trim().to_string()),
        (Some(_), None) | (None, Some(_)) => {
            let missing = if c.src.get(cert_var).is_none() { cert_var } else { key_var };
            c.push(
                missing,
                format!("is not set, but {} is: TLS needs both", if missing == cert_var { key_var } else { cert_var }),
                format!("set both {cert_var} and {key_var} (PEM files), or neither for plain HTTP"),
            );
            return None;
        }
    };
    let certs = match std::fs::read(&cert_path) {
        Err(e) => {
            c.push(cert_var, format!("cannot read {cert_path}: {e}"), "point it at a readable PEM certificate chain");
            None
        }
        Ok(pem) => match CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>() {
            Ok(certs) if !certs.is_empty() => Some(certs),
            Ok(_) => {
                c.push(
                    cert_var,
                    format!("{cert_path} holds no PEM certificate"),
                    "give the PEM certificate chain, leaf first",
                );
                None
            }
            Err(e) => {
                c.push(cert_var, format!("{cert_path} is not PEM: {e}"), "give the PEM certificate chain, leaf first");
                None
            }
        },
    };
    let key = match std::fs::read(&key_path) {
        Err(e) => {
            c.push(key_var, format!("cannot read {key_path}: {e}"), "point it at a readable PEM private key");
            None
        }
        Ok(pem) => {
            let pem = Zeroizing::new(pem);
            match PrivateKeyDer::from_pem_slice(&pem) {
                Ok(key) => Some(key),
                // The error names the PEM problem, never the key's bytes.
                Err(e) => {
                    c.push(
                        key_var,
                        format!("{key_path} holds no usable PEM private key ({e})"),
                        "give the PEM private key (PKCS#8, PKCS#1 or SEC1) of the certificate",
                    );
                    None
                }
            }
        }
    };
    let (certs, key) = (certs?, key?);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key));
    match config {
        Ok(mut config) => {
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(Arc::new(config))
        }
        Err(e) => {
            c.push(
                key_var,
                format!("cannot serve TLS with {cert_var} and this key: {e}"),
                "give the private key of the certificate's leaf (RSA, ECDSA P-256/P-384 or Ed25519)",
            );
            None
        }
    }
}

fn trusted_keys(c: &mut Collector) -> Option<Vec<AgentPublicKey>> {
    let raw = c.required(
        vars::AGENT_TRUSTED_KEYS,
        "the comma-separated public keys of the traps (`witness-trap key new --kind agent` prints one)",
    )?;
    let mut keys = Vec::new();
    let mut ok = true;
    for (i, text) in raw.split(',').map(str::trim).enumerate() {
        if text.is_empty() {
            continue;
        }
        match AgentPublicKey::parse(text) {
            Ok(k) if !keys.contains(&k) => keys.push(k),
            Ok(_) => {}
            Err(e) => {
                ok = false;
                let shown: String = text.chars().take(60).collect();
                c.push(
                    vars::AGENT_TRUSTED_KEYS,
                    format!("key {} ({shown:?}) {e}", i + 1),
                    "give the \"public_key\" text `witness-trap key new --kind agent` printed: ed25519:<base64>",
                );
            }
        }
    }
    if ok && keys.is_empty() {
        c.push(vars::AGENT_TRUSTED_KEYS, "holds no key", "give at least one trap's public key (ed25519:…)");
        return None;
    }
    ok.then_some(keys)
}

fn node_name(c: &mut Collector) -> Option<String> {
    let name = c.required(vars::AGENT_NODE_NAME, "this node's name, which the trap's requests must carry")?;
    if is_valid_node_name(&name) {
        Some(name)
    } else {
        c.push(
            vars::AGENT_NODE_NAME,
            format!("{name:?} is not a node name"),
            format!("use 1 to {MAX_NODE_NAME} letters, digits, '.', '_' or '-', e.g. bp1-primary"),
        );
        None
    }
}

fn action(c: &mut Collector) -> Option<AgentActionSettings> {
    let timeout = c.seconds(vars::AGENT_ACTION_TIMEOUT_SECS, vars::DEFAULT_AGENT_ACTION_TIMEOUT_SECS, 60);
    let chosen = c.src.get(vars::AGENT_ACTION).map(|a| a.trim().to_ascii_lowercase());
    if chosen.as_deref() == Some("solana-admin") {
        return solana_admin(c, timeout);
    }
    let endpoint = match c.src.get(vars::NODEOS_PRODUCER_API) {
        None => ProducerApi::parse(DEFAULT_PRODUCER_API).ok(),
        Some(raw) => match ProducerApi::parse(&raw) {
            Ok(e) => Some(e),
            Err(why) => {
                c.push(
                    vars::NODEOS_PRODUCER_API,
                    format!("{:?} {why}", crate::redact::url(raw.trim())),
                    "give http://127.0.0.1:8888 (the default), or the socket of `--http-category-address producer_rw,/path.sock` as unix:/path.sock",
                );
                None
            }
        },
    };
    let raw = c.required(vars::AGENT_ACTION, &format!("what the agent does: {ACTIONS}"))?;
    match raw.to_ascii_lowercase().as_str() {
        "antelope-producer-api" => Some(AgentActionSettings::AntelopeProducerApi { endpoint: endpoint?, timeout }),
        _ => {
            c.push(
                vars::AGENT_ACTION,
                format!("{raw:?} is not an agent action"),
                format!("set AGENT_ACTION to {ACTIONS}"),
            );
            None
        }
    }
}

/// `AGENT_ACTION=solana-admin`'s variables: the ledger (and tower) directories and the two identities.
fn solana_admin(c: &mut Collector, timeout: Duration) -> Option<AgentActionSettings> {
    let ledger = directory(c, vars::LEDGER_PATH, true);
    let tower_dir = match c.src.get(vars::TOWER_PATH) {
        None => ledger.clone(),
        Some(_) => directory(c, vars::TOWER_PATH, false),
    };
    let junk =
        identity(c, vars::JUNK_IDENTITY_FILE, "the unstaked identity this host runs when it is not the producer");
    let staked = identity(c, vars::STAKED_IDENTITY_FILE, "the staked identity, set when this host is promoted");
    let (ledger, tower_dir, (junk_file, junk_pubkey), (staked_file, staked_pubkey)) =
        (ledger?, tower_dir?, junk?, staked?);
    if junk_pubkey == staked_pubkey {
        c.push(
            vars::STAKED_IDENTITY_FILE,
            format!("is the same identity ({staked_pubkey}) as {}", vars::JUNK_IDENTITY_FILE),
            format!(
                "give {} the staked identity and {} a separate unstaked one (`solana-keygen new -o junk.json`)",
                vars::STAKED_IDENTITY_FILE,
                vars::JUNK_IDENTITY_FILE
            ),
        );
        return None;
    }
    let junk = IdentityFile { file: junk_file, pubkey: junk_pubkey };
    let staked = IdentityFile { file: staked_file, pubkey: staked_pubkey };
    Some(AgentActionSettings::SolanaAdmin { ledger, tower_dir, junk, staked, timeout })
}

/// `var` as an existing directory, made absolute (the socket path and the tower files are relative to it).
fn directory(c: &mut Collector, var: &str, required: bool) -> Option<PathBuf> {
    let raw = if required {
        c.required(var, &format!("the validator's ledger directory (agave-validator --ledger), holding {SOCKET_NAME}"))?
    } else {
        c.src.get(var)?.trim().to_string()
    };
    match std::fs::metadata(&raw) {
        Ok(m) if m.is_dir() => match std::path::absolute(&raw) {
            Ok(path) => Some(path),
            Err(e) => {
                c.push(var, format!("cannot make {raw:?} absolute: {e}"), "give an absolute directory path");
                None
            }
        },
        Ok(_) => {
            c.push(var, format!("{raw:?} is not a directory"), "give the validator's directory, not a file in it");
            None
        }
        Err(e) => {
            let what = if var == vars::TOWER_PATH {
                "the validator's --tower directory (default: LEDGER_PATH)"
            } else {
                "the validator's --ledger directory"
            };
            c.push(var, format!("{raw:?}: {e}"), format!("give {what}; it must exist when the agent starts"));
            None
        }
    }
}

/// `var` as a Solana CLI keypair file: its absolute path (the validator opens it from its own working
/// directory) and its base58 public key.
fn identity(c: &mut Collector, var: &str, what: &str) -> Option<(PathBuf, String)> {
    let raw = c.required(var, &format!("the keypair file (Solana CLI JSON) of {what}"))?;
    let path = match std::path::absolute(&raw) {
        Ok(p) if p.to_str().is_some() => p,
        // The path travels as a JSON string to the validator.
        _ => {
            c.push(
                var,
                format!("{raw:?} is not a usable UTF-8 path"),
                "give an absolute UTF-8 path to the keypair file",
            );
            return None;
        }
    };
    match read_keypair_public(&path) {
        Ok(pubkey) => Some((path, pubkey)),
        Err(e) => {
            let fix = match e {
                KeypairError::Unreadable { .. } => {
                    "point it at a keypair file the agent can read (and the validator too)"
                }
                KeypairError::PublicMismatch { .. } => {
                    "the file is damaged or was assembled by hand: use the file `solana-keygen new` wrote"
                }
                KeypairError::TooLarge { .. } | KeypairError::NotKeypair { .. } => {
                    "give a keypair file as `solana-keygen new -o FILE` writes it: [n,n,…] with 64 numbers"
                }
            };
            c.push(var, e.to_string(), fix);
            None
        }
    }
}

/// The trap's agent signing key, from `AGENT_CLIENT_KEY_FILE` (or `AGENT_CLIENT_KEY`); `None` when unset.
pub fn client_key(src: &dyn Source) -> Result<Option<AgentSigningKey>, Problem> {
    let Some(secret) = vars::secret(src, vars::AGENT_CLIENT_KEY)? else { return Ok(None) };
    let var = if src.get(vars::AGENT_CLIENT_KEY).is_some() {
        vars::AGENT_CLIENT_KEY.to_string()
    } else {
        format!("{}_FILE", vars::AGENT_CLIENT_KEY)
    };
    AgentSigningKey::parse(secret.expose_secret()).map(Some).map_err(|e| {
        Problem::new(
            var,
            format!("is not an agent signing key: it {e}"),
            "give the file `witness-trap key new --kind agent --out PATH` wrote (ed25519-secret:…)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VarMap;

    fn valid() -> (VarMap, AgentSigningKey) {
        let key = AgentSigningKey::generate();
        let map = VarMap::new()
            .with(vars::AGENT_LISTEN, "127.0.0.1:0")
            .with(vars::AGENT_TRUSTED_KEYS, format!(" {} ,", key.public_key()))
            .with(vars::AGENT_NODE_NAME, "bp1")
            .with(vars::AGENT_ACTION, "antelope-producer-api");
        (map, key)
    }

    fn problems(map: &VarMap) -> Vec<Problem> {
        load(map).err().map(|r| r.problems).unwrap_or_default()
    }

    #[test]
    fn a_valid_configuration_loads_with_the_defaults() {
        let (map, key) = valid();
        let s = load(&map).unwrap_or_else(|r| panic!("{r}"));
        assert_eq!(s.trusted_keys, vec![key.public_key()]);
        assert!(s.tls.is_none());
        let AgentActionSettings::AntelopeProducerApi { endpoint, timeout } = s.action else { panic!("{:?}", s.action) };
        assert_eq!((endpoint.shown(), timeout.as_secs()), ("http://127.0.0.1:8888".to_string(), 5));
    }

    #[test]
    fn every_problem_names_its_variable() {
        let map = VarMap::new()
            .with(vars::AGENT_LISTEN, "localhost")
            .with(vars::AGENT_TRUSTED_KEYS, "ed25519:AAAA,EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV")
            .with(vars::AGENT_NODE_NAME, "bp 1")
            .with(vars::AGENT_ACTION, "solana-set-identity")
            .with(vars::NODEOS_PRODUCER_API, "https://127.0.0.1:8888")
            .with(vars::AGENT_ACTION_TIMEOUT_SECS, "0")
            .with(vars::AGENT_TLS_CERT_FILE, "/nonexistent/cert.pem");
        let all = problems(&map);
        let vars_named: Vec<&str> = all.iter().map(|p| p.var.as_str()).collect();
        for var in [
            vars::AGENT_LISTEN,
            vars::AGENT_TRUSTED_KEYS,
            vars::AGENT_NODE_NAME,
            vars::AGENT_ACTION,
            vars::NODEOS_PRODUCER_API,
            vars::AGENT_ACTION_TIMEOUT_SECS,
            vars::AGENT_TLS_KEY_FILE,
        ] {
            assert!(vars_named.contains(&var), "{var} not named in {all:?}");
        }
        assert_eq!(vars_named.iter().filter(|v| **v == vars::AGENT_TRUSTED_KEYS).count(), 2, "each bad key named");
        let missing = problems(&VarMap::new());
        for var in [vars::AGENT_LISTEN, vars::AGENT_TRUSTED_KEYS, vars::AGENT_NODE_NAME, vars::AGENT_ACTION] {
            assert!(missing.iter().any(|p| p.var == var && p.message == "is not set"), "{var}: {missing:?}");
        }
    }

    /// A valid solana-admin configuration in `dir`: the map, the junk and the staked public keys.
    fn solana(dir: &std::path::Path) -> (VarMap, String, String) {
        let ledger = dir.join("ledger");
        std::fs::create_dir_all(&ledger).unwrap();
        let junk = crate::agent::solana_admin::write_test_keypair(&dir.join("junk.json"));
        let staked = crate::agent::solana_admin::write_test_keypair(&dir.join("staked.json"));
        let (map, _) = valid();
        let map = map
            .with(vars::AGENT_ACTION, "solana-admin")
            .with(vars::LEDGER_PATH, ledger.to_str().unwrap())
            .with(vars::JUNK_IDENTITY_FILE, dir.join("junk.json").to_str().unwrap())
            .with(vars::STAKED_IDENTITY_FILE, dir.join("staked.json").to_str().unwrap());
        (map, junk, staked)
    }

    #[test]
    fn a_valid_solana_admin_configuration_loads() {
        let dir = tempfile::tempdir().unwrap();
        let (map, junk, staked) = solana(dir.path());
        // A bad NODEOS_PRODUCER_API is not this action's business.
        let map = map.with(vars::NODEOS_PRODUCER_API, "https://x").with(vars::AGENT_ACTION_TIMEOUT_SECS, "3");
        let s = load(&map).unwrap_or_else(|r| panic!("{r}"));
        let AgentActionSettings::SolanaAdmin { ledger, tower_dir, junk: j, staked: k, timeout } = s.action else {
            panic!("{:?}", s.action)
        };
        assert_eq!((j.pubkey, k.pubkey, timeout.as_secs()), (junk, staked, 3));
        assert_eq!((ledger.clone(), tower_dir), (dir.path().join("ledger"), dir.path().join("ledger")));
        assert_eq!((j.file, k.file), (dir.path().join("junk.json"), dir.path().join("staked.json")));
        let towers = dir.path().join("towers");
        std::fs::create_dir(&towers).unwrap();
        let s = load(&map.with(vars::TOWER_PATH, towers.to_str().unwrap())).unwrap_or_else(|r| panic!("{r}"));
        assert!(matches!(s.action, AgentActionSettings::SolanaAdmin { tower_dir, .. } if tower_dir == towers));
    }

    #[test]
    fn every_solana_admin_problem_names_its_variable_and_never_quotes_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let (map, _, _) = solana(dir.path());
        let named = |map: &VarMap, var: &str| {
            let all = problems(map);
            assert!(all.iter().any(|p| p.var == var), "{var} not named in {all:?}");
            Report { problems: all }.to_string()
        };
        let missing = problems(&VarMap::new().with(vars::AGENT_ACTION, "solana-admin"));
        for var in [vars::LEDGER_PATH, vars::JUNK_IDENTITY_FILE, vars::STAKED_IDENTITY_FILE] {
            assert!(missing.iter().any(|p| p.var == var && p.message == "is not set"), "{var}: {missing:?}");
        }
        named(&map.clone().with(vars::LEDGER_PATH, dir.path().join("none").to_str().unwrap()), vars::LEDGER_PATH);
        named(&map.clone().with(vars::LEDGER_PATH, dir.path().join("junk.json").to_str().unwrap()), vars::LEDGER_PATH);
        named(&map.clone().with(vars::TOWER_PATH, dir.path().join("none").to_str().unwrap()), vars::TOWER_PATH);
        let junk_text = std::fs::read_to_string(dir.path().join("junk.json")).unwrap();
        let seed: String = junk_text.split(',').take(6).collect::<Vec<_>>().join(",");

        // Not a keypair file; then a public half that is not the seed's.
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, junk_text.replace(']', ",1]")).unwrap();
        let text = named(&map.clone().with(vars::JUNK_IDENTITY_FILE, bad.to_str().unwrap()), vars::JUNK_IDENTITY_FILE);
        assert!(!text.contains(&seed), "{text}");
        let mut numbers: Vec<u8> = serde_json::from_str(&junk_text).unwrap();
        numbers[63] ^= 1;
        std::fs::write(&bad, serde_json::to_string(&numbers).unwrap()).unwrap();
        let text =
            named(&map.clone().with(vars::STAKED_IDENTITY_FILE, bad.to_str().unwrap()), vars::STAKED_IDENTITY_FILE);
        assert!(text.contains("public key") && !text.contains(&seed), "{text}");
        named(
            &map.clone().with(vars::STAKED_IDENTITY_FILE, dir.path().join("none.json").to_str().unwrap()),
            vars::STAKED_IDENTITY_FILE,
        );

        // The same identity twice.
        let same = map.clone().with(vars::STAKED_IDENTITY_FILE, dir.path().join("junk.json").to_str().unwrap());
        let text = named(&same, vars::STAKED_IDENTITY_FILE);
        assert!(text.contains("same identity"), "{text}");
    }

    #[test]
    fn tls_files_are_checked_and_the_key_never_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, "not a certificate").unwrap();
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n")
            .unwrap();
        let (map, _) = valid();
        let map = map
            .with(vars::AGENT_TLS_CERT_FILE, cert.to_str().unwrap())
            .with(vars::AGENT_TLS_KEY_FILE, key.to_str().unwrap());
        let all = problems(&map);
        assert!(all.iter().any(|p| p.var == vars::AGENT_TLS_CERT_FILE), "{all:?}");
        let text = Report { problems: all }.to_string();
        assert!(!text.contains("c2VjcmV0"), "{text}");
    }

    #[test]
    fn the_client_key_is_named_and_never_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.key");
        let key = AgentSigningKey::generate();
        std::fs::write(&path, format!("{}\n", key.to_secret_text().as_str())).unwrap();
        let map = VarMap::new().with("AGENT_CLIENT_KEY_FILE", path.to_str().unwrap());
        assert_eq!(client_key(&map).unwrap().unwrap().public_key(), key.public_key());
        std::fs::write(&path, "ed25519-secret:c2VjcmV0\n").unwrap();
        let p = client_key(&map).unwrap_err();
        assert_eq!(p.var, "AGENT_CLIENT_KEY_FILE");
        assert!(!p.message.contains("c2VjcmV0"), "{p:?}");
        assert!(client_key(&VarMap::new()).unwrap().is_none());
    }
}
