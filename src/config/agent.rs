//! The node agent's variables (`witness-trap agent`), every problem named by its variable; and the trap
//! side's agent key (`AGENT_CLIENT_KEY_FILE`).
//!
//! Nothing here touches the network: the TLS files are read and the certificate and key checked to
//! belong together, the trusted keys parsed, the nodeos endpoint parsed. A bad secret (the TLS key, the
//! client key) is named by its variable and never quoted.

use std::net::SocketAddr;
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
}

/// The values `AGENT_ACTION` takes.
pub const ACTIONS: &str = "antelope-producer-api";

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
        let AgentActionSettings::AntelopeProducerApi { endpoint, timeout } = s.action;
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
