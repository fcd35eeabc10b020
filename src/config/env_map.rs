//! Variables built in code rather than read from a `.env` file: the demo, the benchmark and the tests arm
//! the real trap through the same configuration path an operator uses, and name every variable by its
//! constant in [`super::vars`], so a renamed variable breaks them at compile time, not at run time.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::path::Path;

use graphene_protocol::chain::{ChainSpec, Family};
use graphene_protocol::keys::PublicKey;

use super::vars::{self, Source};

/// A map of variable names to values, usable wherever a [`Source`] is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VarMap(HashMap<String, String>);

impl VarMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// The variables of a Hive/Steem trap: who, where, the backup key, the signing key and the state file.
    pub fn graphene(
        account: &str,
        chain: &ChainSpec,
        rpc_urls: &[String],
        backup_key: &PublicKey,
        signing_wif: &str,
        state_file: &Path,
    ) -> Self {
        let mut m = Self::new()
            .with(vars::WITNESS_ACCOUNT, account)
            .with(vars::CHAIN, if chain.family == Family::Steem { "steem" } else { "hive" })
            .with(vars::RPC_URLS, rpc_urls.join(","))
            .with(vars::BACKUP_SIGNING_KEY, backup_key.to_text(&chain.key_prefix))
            .with(vars::SIGNING_WIF, signing_wif)
            .with(vars::STATE_FILE, state_file.display());
        if chain.testnet {
            m.set(vars::CHAIN_ID, chain.chain_id_hex());
        }
        m
    }

    /// The variables of an Antelope trap: the network (`eos`, `wax`, …), the producer, where, the backup
    /// key, the failover permission's key and the state file.
    pub fn antelope(
        network: &str,
        producer: &str,
        rpc_urls: &[String],
        backup_key: &antelope_protocol::keys::PublicKey,
        failover_wif: &str,
        state_file: &Path,
    ) -> Self {
        Self::new()
            .with(vars::CHAIN, network)
            .with(vars::PRODUCER_ACCOUNT, producer)
            .with(vars::RPC_URLS, rpc_urls.join(","))
            .with(vars::BACKUP_SIGNING_KEY, backup_key.to_legacy())
            .with(vars::FAILOVER_WIF, failover_wif)
            .with(vars::STATE_FILE, state_file.display())
    }

    /// Twilio's variables, pointed at `api_url` (a fake Twilio in the demo and the tests).
    pub fn with_twilio(self, api_url: &str, account_sid: &str, auth_token: &str, from: &str, to: &str) -> Self {
        self.with(vars::TWILIO_API_URL, api_url)
            .with(vars::TWILIO_ACCOUNT_SID, account_sid)
            .with(vars::TWILIO_AUTH_TOKEN, auth_token)
            .with(vars::TWILIO_FROM, from)
            .with(vars::TWILIO_TO, to)
    }

    /// This map with `var` set to `value`.
    pub fn with(mut self, var: &str, value: impl ToString) -> Self {
        self.set(var, value);
        self
    }

    pub fn set(&mut self, var: &str, value: impl ToString) -> &mut Self {
        self.0.insert(var.to_string(), value.to_string());
        self
    }

    pub fn unset(&mut self, var: &str) -> &mut Self {
        self.0.remove(var);
        self
    }

    pub fn into_map(self) -> HashMap<String, String> {
        self.0
    }

    /// As `.env` lines, sorted by name.
    pub fn to_dotenv(&self) -> String {
        let mut lines: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        lines.sort();
        lines.concat()
    }
}

impl Deref for VarMap {
    type Target = HashMap<String, String>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for VarMap {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl From<VarMap> for HashMap<String, String> {
    fn from(m: VarMap) -> Self {
        m.0
    }
}

impl Source for VarMap {
    fn get(&self, name: &str) -> Option<String> {
        Source::get(&self.0, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graphene_protocol::keys::PrivateKey;

    #[test]
    fn a_graphene_map_loads_as_settings() {
        let signing = PrivateKey::generate();
        let backup = PrivateKey::generate().public_key();
        let urls = vec!["http://127.0.0.1:1/".to_string(), "http://127.0.0.1:2/".to_string()];
        let chain = ChainSpec::steem();
        let map = VarMap::graphene("alice", &chain, &urls, &backup, &signing.to_wif(), Path::new("/tmp/s.json"))
            .with(vars::MISSED_BLOCKS_ALLOWED, 1)
            .with_twilio("http://127.0.0.1:3", "AC1", "token", "+15005550006", "+14155550123");
        let settings = match crate::config::load(&map) {
            Ok(s) => s,
            Err(report) => panic!("{report}"),
        };
        assert_eq!(settings.identity().producer, "alice");
        assert_eq!(settings.identity().chain, "steem");
        assert!(map.to_dotenv().contains("CHAIN=steem\n"));
        let testnet = ChainSpec::testnet(Family::Hive, [7; 32]);
        let map = VarMap::graphene("alice", &testnet, &urls, &backup, "5K", Path::new("s"));
        assert_eq!(map.get(vars::CHAIN_ID).as_deref(), Some("07".repeat(32).as_str()));
    }
}
