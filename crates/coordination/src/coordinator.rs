//! The operations that need no lease: read the trap's record, clear it with a compare on its revision
//! (`rearm`), see who holds the lock and which replicas report (`status`).

use etcd_client::{Client, Compare, CompareOp, GetOptions, Txn, TxnOp};

use crate::{CoordError, EtcdOptions};

/// The trap's record as etcd holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub value: String,
    /// The record's `mod_revision`: the compare of the next write.
    pub revision: i64,
}

/// A replica's last report (its value is the service's JSON) and whether its lease still holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub name: String,
    pub report: String,
}

/// An etcd client bound to one trap's keys.
#[derive(Clone)]
pub struct Coordinator {
    pub(crate) client: Client,
    pub(crate) options: EtcdOptions,
    pub(crate) scope: String,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator").field("endpoints", &self.options.endpoints).field("scope", &self.scope).finish()
    }
}

impl Coordinator {
    /// A client for the trap `scope` (`chain/account`). Connecting is lazy: an etcd that is down shows at
    /// the first request.
    pub async fn connect(options: EtcdOptions, scope: &str) -> Result<Self, CoordError> {
        let client = Client::connect(&options.endpoints, Some(options.connect_options()?)).await?;
        Ok(Self { client, options, scope: scope.to_string() })
    }

    pub fn replica(&self) -> &str {
        &self.options.replica
    }

    pub(crate) fn key(&self, leaf: &str) -> String {
        format!("{}{}/{leaf}", self.options.prefix, self.scope)
    }

    pub(crate) fn lock_key(&self) -> String {
        self.key("lock")
    }

    pub(crate) fn record_key(&self) -> String {
        self.key("trap")
    }

    pub(crate) fn switch_key(&self) -> String {
        self.key("switch")
    }

    pub(crate) fn replica_key(&self, name: &str) -> String {
        self.key(&format!("replicas/{name}"))
    }

    /// Bounded: a request that hangs is etcd unavailable.
    pub(crate) async fn bounded<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, CoordError> {
        match tokio::time::timeout(self.options.request_timeout, f).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(CoordError::Unavailable(format!(
                "no answer within {} ms",
                self.options.request_timeout.as_millis()
            ))),
        }
    }

    /// The trap's record, if there is one.
    pub async fn read(&self) -> Result<Option<Record>, CoordError> {
        let mut c = self.client.clone();
        let resp = self.bounded(c.get(self.record_key(), None)).await?;
        Ok(resp
            .kvs()
            .first()
            .map(|kv| Record { value: String::from_utf8_lossy(kv.value()).into_owned(), revision: kv.mod_revision() }))
    }

    /// The lock holder's replica name.
    pub async fn holder(&self) -> Result<Option<String>, CoordError> {
        let mut c = self.client.clone();
        let resp = self.bounded(c.get(self.lock_key(), None)).await?;
        Ok(resp.kvs().first().map(|kv| String::from_utf8_lossy(kv.value()).into_owned()))
    }

    /// Who asked the holder to step aside for a planned switch, if anyone (`witness-trap switch`).
    pub async fn switch_request(&self) -> Result<Option<String>, CoordError> {
        let mut c = self.client.clone();
        let resp = self.bounded(c.get(self.switch_key(), None)).await?;
        Ok(resp.kvs().first().map(|kv| String::from_utf8_lossy(kv.value()).into_owned()))
    }

    /// Every replica whose lease still holds its report, by name.
    pub async fn replicas(&self) -> Result<Vec<Replica>, CoordError> {
        let mut c = self.client.clone();
        let prefix = self.replica_key("");
        let resp = self.bounded(c.get(prefix.clone(), Some(GetOptions::new().with_prefix()))).await?;
        Ok(resp
            .kvs()
            .iter()
            .map(|kv| Replica {
                name: String::from_utf8_lossy(kv.key()).trim_start_matches(&prefix).to_string(),
                report: String::from_utf8_lossy(kv.value()).into_owned(),
            })
            .collect())
    }

    /// Replace the record read at `expected` with `value` (`rearm`): refused with [`CoordError::Conflict`]
    /// when it changed since. No lock: a rearm by hand must work while no replica runs.
    pub async fn replace(&self, expected: i64, value: &str) -> Result<i64, CoordError> {
        let key = self.record_key();
        let txn = Txn::new()
            .when([Compare::mod_revision(key.clone(), CompareOp::Equal, expected)])
            .and_then([TxnOp::put(key.clone(), value, None)])
            .or_else([TxnOp::get(key, None)]);
        let mut c = self.client.clone();
        let resp = self.bounded(c.txn(txn)).await?;
        if resp.succeeded() {
            return Ok(resp.header().map_or(0, |h| h.revision()));
        }
        Err(CoordError::Conflict { expected, found: found_revision(&resp) })
    }
}

/// The record's revision from the `or_else` get of a failed transaction (0: absent).
pub(crate) fn found_revision(resp: &etcd_client::TxnResponse) -> i64 {
    resp.op_responses()
        .into_iter()
        .find_map(|op| match op {
            etcd_client::TxnOpResponse::Get(g) => Some(g.kvs().first().map_or(0, |kv| kv.mod_revision())),
            _ => None,
        })
        .unwrap_or(0)
}
