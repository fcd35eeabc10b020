//! How to reach etcd and who this replica is: the `ETCD_*`, `LEASE_TTL_SECS` and `REPLICA_NAME` settings,
//! already validated by the service's configuration (and by [`crate::check_endpoints`]).

use std::path::PathBuf;
use std::time::Duration;

use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};
use secrecy::{ExposeSecret, SecretString};

use crate::CoordError;

/// TLS files (`ETCD_CA_FILE`, and for client certificates `ETCD_CERT_FILE` with `ETCD_KEY_FILE`).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub client: Option<(PathBuf, PathBuf)>,
}

/// Everything a replica needs to coordinate.
#[derive(Debug, Clone)]
pub struct EtcdOptions {
    /// `http://host:port` or `https://host:port`, all of one scheme.
    pub endpoints: Vec<String>,
    /// Starts and ends with `/`.
    pub prefix: String,
    /// Required when the endpoints are `https://`.
    pub tls: Option<TlsFiles>,
    /// `ETCD_USERNAME` and `ETCD_PASSWORD[_FILE]`.
    pub user: Option<(String, SecretString)>,
    pub lease_ttl: Duration,
    /// `REPLICA_NAME`: in the lock, in `status`, in the alerts.
    pub replica: String,
    /// One etcd request's limit; well under the TTL so a hung etcd cannot outlast the lease unnoticed.
    pub request_timeout: Duration,
}

impl EtcdOptions {
    /// Options with the defaults of the settings (`/witness-trap/`, a 10 s lease, 2 s requests).
    pub fn new(endpoints: Vec<String>, replica: impl Into<String>) -> Self {
        Self {
            endpoints,
            prefix: "/witness-trap/".into(),
            tls: None,
            user: None,
            lease_ttl: Duration::from_secs(10),
            replica: replica.into(),
            request_timeout: Duration::from_secs(2),
        }
    }

    pub(crate) fn connect_options(&self) -> Result<ConnectOptions, CoordError> {
        let mut o = ConnectOptions::new()
            .with_timeout(self.request_timeout)
            .with_connect_timeout(self.request_timeout)
            .with_require_leader(true);
        if let Some((name, password)) = &self.user {
            o = o.with_user(name.clone(), password.expose_secret().to_string());
        }
        if let Some(tls) = &self.tls {
            let read = |p: &PathBuf, var: &str| {
                std::fs::read(p).map_err(|e| CoordError::Settings(format!("{var} {}: {e}", p.display())))
            };
            let mut t = TlsOptions::new().ca_certificate(Certificate::from_pem(read(&tls.ca, "ETCD_CA_FILE")?));
            if let Some((cert, key)) = &tls.client {
                t = t.identity(Identity::from_pem(read(cert, "ETCD_CERT_FILE")?, read(key, "ETCD_KEY_FILE")?));
            }
            o = o.with_tls(t);
        }
        Ok(o)
    }
}
