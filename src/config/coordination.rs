//! `COORDINATION=etcd`: the settings of a trap replica (`ETCD_*`, `LEASE_TTL_SECS`, `REPLICA_NAME`) and the
//! checks made before anything is armed, each naming its variable: the endpoint list (1 member, or 3 or
//! more), TLS files present and readable when an endpoint is `https://`, credentials in pairs, the prefix,
//! a lease shorter than the producer's round (a dead holder must be replaced before the producer's next
//! slot comes round) and a poll interval strictly below a third of it (a holder renews and looks within
//! its lease). That the members answer is checked by `run` and `check` ([`coordination::check_reachable`]).

use std::path::PathBuf;
use std::time::Duration;

use coordination::{EtcdOptions, TlsFiles};

use super::{vars, Collector};
use crate::chain::ChainKind;

/// The longest lease accepted: a holder that dies leaves the trap without a guard this long.
const MAX_TTL_SECS: u64 = 300;

/// A replica's settings.
#[derive(Debug, Clone)]
pub struct CoordinationSettings {
    pub etcd: EtcdOptions,
}

impl CoordinationSettings {
    pub fn replica(&self) -> &str {
        &self.etcd.replica
    }
}

/// The host's name, the default `REPLICA_NAME`.
pub fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok().map(|h| h.trim().to_string()).filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

/// The coordination settings; `None` for `COORDINATION=none` (or unset) and when a problem was pushed.
pub(super) fn settings(c: &mut Collector, kind: ChainKind, poll: Duration) -> Option<CoordinationSettings> {
    match c.src.get(vars::COORDINATION).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("none") | Some("") => {
            let stray = [vars::ETCD_ENDPOINTS, vars::REPLICA_NAME, vars::LEASE_TTL_SECS];
            if let Some(v) = stray.iter().find(|v| c.src.get(v).is_some()) {
                c.push(v, "is set but COORDINATION is not etcd", "set COORDINATION=etcd, or remove it");
            }
            return None;
        }
        Some("etcd") => {}
        Some(other) => {
            c.push(vars::COORDINATION, format!("{other:?} is not a coordination"), "set COORDINATION to none or etcd");
            return None;
        }
    }
    let problems_before = c.problems.len();
    let endpoints: Vec<String> = c
        .required(vars::ETCD_ENDPOINTS, "the etcd members, comma-separated (http://10.0.0.5:2379,…)")
        .map(|v| v.split(',').map(|e| e.trim().trim_end_matches('/').to_string()).filter(|e| !e.is_empty()).collect())
        .unwrap_or_default();
    let tls_on = match coordination::check_endpoints(&endpoints) {
        Ok(tls) => tls,
        Err(why) if !endpoints.is_empty() => {
            c.push(
                vars::ETCD_ENDPOINTS,
                why.trim_start_matches("ETCD_ENDPOINTS").trim_start_matches(": "),
                "list 1 member (a test) or 3 or 5, each http://host:port (or https://)",
            );
            false
        }
        Err(_) => false,
    };
    let prefix = c.src.get(vars::ETCD_PREFIX).map(|p| p.trim().to_string()).unwrap_or_else(|| "/witness-trap/".into());
    if let Err(why) = coordination::check_prefix(&prefix) {
        c.push(
            vars::ETCD_PREFIX,
            why.trim_start_matches("ETCD_PREFIX "),
            "give a key prefix like /witness-trap/, or remove it",
        );
    }
    let tls = tls_files(c, tls_on);
    let user = match (c.src.get(vars::ETCD_USERNAME), vars::secret(c.src, vars::ETCD_PASSWORD)) {
        (None, Ok(None)) => None,
        (Some(u), Ok(Some(p))) => Some((u.trim().to_string(), p)),
        (Some(_), Ok(None)) => {
            c.push(
                vars::ETCD_PASSWORD,
                "is not set but ETCD_USERNAME is",
                "set ETCD_PASSWORD (or ETCD_PASSWORD_FILE), or remove ETCD_USERNAME",
            );
            None
        }
        (None, Ok(Some(_))) => {
            c.push(
                vars::ETCD_USERNAME,
                "is not set but ETCD_PASSWORD is",
                "set ETCD_USERNAME, or remove ETCD_PASSWORD",
            );
            None
        }
        (_, Err(p)) => {
            c.problems.push(p);
            None
        }
    };
    let ttl = c.seconds(vars::LEASE_TTL_SECS, 10, MAX_TTL_SECS);
    let round = match kind {
        // 21 witnesses × 3 s; 21 producers × 12 blocks × 0.5 s.
        ChainKind::Graphene => Duration::from_secs(63),
        ChainKind::Antelope => Duration::from_secs(126),
        // The delinquency distance: 128 slots of 400 ms.
        ChainKind::Solana => Duration::from_millis(128 * 400),
    };
    if ttl < Duration::from_secs(3) {
        c.push(
            vars::LEASE_TTL_SECS,
            format!("{} s is too short to be renewed reliably", ttl.as_secs()),
            "set LEASE_TTL_SECS to at least 3 (default 10)",
        );
    } else if ttl >= round {
        c.push(
            vars::LEASE_TTL_SECS,
            format!("{} s is not shorter than the producer's round ({} s): a dead holder would be replaced only after the producer's next slot", ttl.as_secs(), round.as_secs()),
            format!("set LEASE_TTL_SECS below {} (default 10)", round.as_secs()),
        );
    }
    if poll * 3 >= ttl {
        c.push(
            vars::POLL_INTERVAL_SECS,
            format!("{} s is not strictly below a third of LEASE_TTL_SECS ({} s): a holder must look at the chain several times within its lease", poll.as_secs(), ttl.as_secs()),
            format!("set POLL_INTERVAL_SECS to at most {} (or raise LEASE_TTL_SECS)", (ttl.as_secs().saturating_sub(1)) / 3),
        );
    }
    let replica = match c.src.get(vars::REPLICA_NAME).map(|v| v.trim().to_string()) {
        Some(name)
            if !name.is_empty()
                && name.len() <= 64
                && name.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch)) =>
        {
            name
        }
        Some(name) => {
            c.push(
                vars::REPLICA_NAME,
                format!("{name:?} is not a name of 1 to 64 letters, digits, '-', '_' or '.'"),
                "give each replica a short unique name (trap-a), or remove it for the host name",
            );
            String::new()
        }
        None => host_name(),
    };
    if c.problems.len() > problems_before {
        return None;
    }
    let mut etcd = EtcdOptions::new(endpoints, replica);
    etcd.prefix = prefix;
    etcd.tls = tls;
    etcd.user = user;
    etcd.lease_ttl = ttl;
    // A request may take a third of the lease at most, and never more than 2 s.
    etcd.request_timeout = (ttl / 3).min(Duration::from_secs(2));
    Some(CoordinationSettings { etcd })
}

/// `ETCD_CA_FILE` (required with `https://`), `ETCD_CERT_FILE` with `ETCD_KEY_FILE` (client certificates).
fn tls_files(c: &mut Collector, tls_on: bool) -> Option<TlsFiles> {
    let path = |c: &mut Collector, var: &str| -> Option<PathBuf> {
        let p = PathBuf::from(c.src.get(var)?.trim());
        match std::fs::read(&p) {
            Ok(bytes) if String::from_utf8_lossy(&bytes).contains("-----BEGIN") => Some(p),
            Ok(_) => {
                c.push(var, format!("{} is not a PEM file", p.display()), "give a PEM file (-----BEGIN …)");
                None
            }
            Err(e) => {
                c.push(var, format!("cannot read {}: {e}", p.display()), "give a readable PEM file");
                None
            }
        }
    };
    let set = |c: &Collector, var: &str| c.src.get(var).is_some();
    if !tls_on {
        for var in [vars::ETCD_CA_FILE, vars::ETCD_CERT_FILE, vars::ETCD_KEY_FILE] {
            if set(c, var) {
                c.push(
                    var,
                    "is set but ETCD_ENDPOINTS are http://, without TLS",
                    "use https:// endpoints, or remove it",
                );
            }
        }
        return None;
    }
    if !set(c, vars::ETCD_CA_FILE) {
        c.push(
            vars::ETCD_CA_FILE,
            "is not set but ETCD_ENDPOINTS are https://",
            "set ETCD_CA_FILE to the CA certificate (PEM) that signed the etcd members' certificates",
        );
    }
    let ca = path(c, vars::ETCD_CA_FILE);
    let client = match (set(c, vars::ETCD_CERT_FILE), set(c, vars::ETCD_KEY_FILE)) {
        (false, false) => None,
        (true, true) => match (path(c, vars::ETCD_CERT_FILE), path(c, vars::ETCD_KEY_FILE)) {
            (Some(cert), Some(key)) => Some((cert, key)),
            _ => None,
        },
        (true, false) => {
            c.push(
                vars::ETCD_KEY_FILE,
                "is not set but ETCD_CERT_FILE is",
                "set both (a client certificate and its key), or neither",
            );
            None
        }
        (false, true) => {
            c.push(
                vars::ETCD_CERT_FILE,
                "is not set but ETCD_KEY_FILE is",
                "set both (a client certificate and its key), or neither",
            );
            None
        }
    };
    ca.map(|ca| TlsFiles { ca, client })
}
