//! The Solana variables (`CHAIN=solana`): the cluster (`SOLANA_CLUSTER` preset or `GENESIS_HASH`),
//! `VOTE_ACCOUNT`, `IDENTITY`, the detection (`MAX_VOTE_LAG_SLOTS`, `CONFIRMATIONS`), the promotion
//! through the agents (`AGENT_URLS`, `TOWER_SAFE_SLOTS`, `UNREACHABLE_PRIMARY`); and every variable of
//! another chain, or of the agent, refused here with what to do instead: the trap holds no Solana key.

use std::time::Duration;

use super::antelope::{agent_fleet, AgentFleet};
use super::{rpc_urls, vars, Collector};
use crate::chain::solana::{is_pubkey, SolanaSettings, UnreachablePrimary, CLUSTERS};
use crate::trap::Trigger;

/// Whether `CHAIN` names the Solana family.
pub fn is_solana(src: &dyn vars::Source) -> bool {
    src.get(vars::CHAIN).is_some_and(|v| v.trim().eq_ignore_ascii_case("solana"))
}

/// The default poll on Solana: a look every 10 s (25 slots), so three looks past the 128-slot lag fire
/// about 80 s after the last vote, well before the 200 tower-safe slots matter.
pub const DEFAULT_POLL_INTERVAL_SECS: u64 = 10;

/// The timeout of one agent request: a hung promotion is this, then an alert and a retry (svs users ask ~20 s).
pub const AGENT_TIMEOUT: Duration = Duration::from_secs(20);

/// Variables that hold a key or belong to another chain or to the agent, and what to do instead.
const REFUSED: &[(&str, &str)] = &[
    (vars::SIGNING_WIF, "is a Hive/Steem key; a Solana trap holds no key: remove it"),
    (vars::ACTIVE_WIF, "is a Hive/Steem key; a Solana trap holds no key: remove it"),
    (vars::FAILOVER_WIF, "is an Antelope key; a Solana trap holds no key: remove it"),
    (
        vars::STAKED_IDENTITY_FILE,
        "belongs to the agent on the validator host (AGENT_ACTION=solana-admin), never to the trap: remove it here",
    ),
    (
        vars::JUNK_IDENTITY_FILE,
        "belongs to the agent on the validator host (AGENT_ACTION=solana-admin): remove it here",
    ),
    (vars::THRESHOLD, "counts missed blocks; a Solana trap counts looks without a vote: use CONFIRMATIONS"),
    (vars::MISSED_BLOCKS_ALLOWED, "counts missed blocks; a Solana trap counts looks without a vote: use CONFIRMATIONS"),
    (
        vars::BACKUP_SIGNING_KEY,
        "moves a key on chain; on Solana the staked identity moves between the nodes of AGENT_URLS: remove it",
    ),
    (
        vars::BACKUP_SIGNING_KEYS,
        "moves keys on chain; on Solana the backups are the nodes after the first in AGENT_URLS: remove it",
    ),
    (vars::WITNESS_ACCOUNT, "names a Hive/Steem witness; on Solana set VOTE_ACCOUNT"),
    (vars::PRODUCER_ACCOUNT, "names an Antelope producer; on Solana set VOTE_ACCOUNT"),
    (vars::CHAIN_ID, "is a Hive/Steem or Antelope chain id; on Solana the cluster is its GENESIS_HASH"),
];

fn refuse_others(c: &mut Collector) {
    for (var, why) in REFUSED {
        for v in [var.to_string(), format!("{var}_FILE")] {
            if c.src.get(&v).is_some() {
                c.push(&v, *why, format!("remove {v} from the trap's configuration"));
            }
        }
    }
}

/// The cluster's name and genesis hash.
fn cluster(c: &mut Collector) -> Option<(String, String)> {
    let preset = c.src.get(vars::SOLANA_CLUSTER).map(|v| v.trim().to_ascii_lowercase());
    let hash = c.src.get(vars::GENESIS_HASH).map(|v| v.trim().to_string());
    if let Some(h) = &hash {
        if !is_pubkey(h) {
            c.push(
                vars::GENESIS_HASH,
                format!("{h:?} is not a base58 hash (32 bytes)"),
                "give getGenesisHash's answer",
            );
            return None;
        }
    }
    let names = || CLUSTERS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ");
    match (preset.as_deref(), hash) {
        (None | Some("custom"), Some(h)) => {
            let name = CLUSTERS.iter().find(|k| k.genesis_hash == h).map_or("solana", |k| k.name);
            Some((name.to_string(), h))
        }
        (Some("custom"), None) => {
            c.push(
                vars::GENESIS_HASH,
                "is not set, and SOLANA_CLUSTER=custom needs it",
                "set GENESIS_HASH to getGenesisHash's answer",
            );
            None
        }
        (p, h) => {
            let name = p.unwrap_or("mainnet-beta");
            let Some(k) = CLUSTERS.iter().find(|k| k.name == name) else {
                c.push(
                    vars::SOLANA_CLUSTER,
                    format!("{name:?} is not a cluster"),
                    format!("set SOLANA_CLUSTER to one of {}, or give GENESIS_HASH for another cluster", names()),
                );
                return None;
            };
            if let Some(h) = h.filter(|h| h != k.genesis_hash) {
                c.push(
                    vars::GENESIS_HASH,
                    format!("{h} is not {name}'s genesis hash ({})", k.genesis_hash),
                    "remove GENESIS_HASH (the preset knows it), or remove SOLANA_CLUSTER for another cluster",
                );
                return None;
            }
            Some((k.name.to_string(), k.genesis_hash.to_string()))
        }
    }
}

fn pubkey(c: &mut Collector, var: &str, what: &str) -> Option<String> {
    let text = c.required(var, what)?;
    if is_pubkey(&text) {
        Some(text)
    } else {
        let shown: String = text.chars().take(60).collect();
        c.push(var, format!("{shown:?} is not a base58 public key (32 bytes)"), format!("set {var} to {what}"));
        None
    }
}

/// A whole number in `min..=max`, or the default.
fn number(c: &mut Collector, var: &str, default: u64, min: u64, max: u64, what: &str) -> u64 {
    match c.src.get(var) {
        None => default,
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                c.push(
                    var,
                    format!("{:?} is not a whole number from {min} to {max}", v.trim()),
                    format!("set {var} to {what}, or remove it for the default {default}"),
                );
                default
            }
        },
    }
}

/// Everything of `CHAIN=solana`.
pub(crate) fn settings(c: &mut Collector, timeout: Duration) -> Option<SolanaSettings> {
    refuse_others(c);
    let cluster = cluster(c);
    let urls = rpc_urls(c, "https://api.mainnet-beta.solana.com");
    if let Some(u) = &urls {
        if u.len() < 2 {
            c.push(
                vars::RPC_URLS,
                "lists one endpoint: a Solana trap fires only on what two healthy endpoints agree on",
                "list at least two endpoints of the cluster, from different providers",
            );
        }
    }
    let vote_account = pubkey(c, vars::VOTE_ACCOUNT, "the validator's vote account (base58)");
    let identity = pubkey(c, vars::IDENTITY, "the staked identity's public key (the vote account's nodePubkey)");
    if let (Some(v), Some(i)) = (&vote_account, &identity) {
        if v == i {
            c.push(vars::IDENTITY, "is VOTE_ACCOUNT", "set IDENTITY to the validator's identity, not its vote account");
        }
    }
    let max_lag = number(
        c,
        vars::MAX_VOTE_LAG_SLOTS,
        vars::DEFAULT_MAX_VOTE_LAG_SLOTS,
        32,
        100_000,
        "the slots without a vote that count as down (128: Solana's delinquency distance)",
    );
    // Below Agave's ~200 slots a backup voting without the tower could vote inside the primary's lockouts.
    let tower_safe_slots = number(
        c,
        vars::TOWER_SAFE_SLOTS,
        vars::DEFAULT_TOWER_SAFE_SLOTS,
        vars::DEFAULT_TOWER_SAFE_SLOTS,
        1_000_000,
        "the slots past the last vote before a backup may vote without the primary's tower (Agave: ~200)",
    );
    let unreachable_primary = match c.src.get(vars::UNREACHABLE_PRIMARY).map(|v| v.trim().to_ascii_lowercase()) {
        None => Some(UnreachablePrimary::Wait),
        Some(v) if v == "wait" => Some(UnreachablePrimary::Wait),
        Some(v) if v == "refuse" => Some(UnreachablePrimary::Refuse),
        Some(v) => {
            c.push(
                vars::UNREACHABLE_PRIMARY,
                format!("{v:?} is neither wait nor refuse"),
                "set UNREACHABLE_PRIMARY=wait (promote after TOWER_SAFE_SLOTS of silence) or refuse (never promote \
                 without a confirmed demotion)",
            );
            None
        }
    };
    let fleet = agent_fleet(c);
    let (Some((cluster, genesis_hash)), Some(urls), Some(vote_account), Some(identity), Some(unreachable_primary)) =
        (cluster, urls, vote_account, identity, unreachable_primary)
    else {
        return None;
    };
    let AgentFleet { nodes, client_key, ca_pem } = fleet?;
    Some(SolanaSettings {
        cluster,
        genesis_hash,
        urls,
        timeout,
        vote_account,
        identity,
        max_lag,
        tower_safe_slots,
        unreachable_primary,
        nodes,
        client_key,
        ca_pem,
        agent_timeout: AGENT_TIMEOUT,
    })
}

/// `CONFIRMATIONS`: consecutive down looks before a fire.
pub(crate) fn trigger(c: &mut Collector) -> Option<Trigger> {
    let n = number(
        c,
        vars::CONFIRMATIONS,
        vars::DEFAULT_CONFIRMATIONS,
        1,
        100,
        "the consecutive looks without a vote before a fire",
    );
    Some(Trigger::Allowed(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load, ChainSettings, Problem, VarMap};

    const VOTE: &str = "3ZT31jkAGhUaw8jsy4bTknwBMP8i4Eueh52By4zXcsVw";
    const IDENTITY: &str = "B97CCUW3AEZFGy6uUg6zUdnNYvnVq5VG8PUtb2HayTDD";

    fn valid(dir: &std::path::Path) -> VarMap {
        let key = crate::agent::keys::AgentSigningKey::generate();
        VarMap::new()
            .with(vars::CHAIN, "solana")
            .with(vars::RPC_URLS, "https://a.example,https://b.example")
            .with(vars::VOTE_ACCOUNT, VOTE)
            .with(vars::IDENTITY, IDENTITY)
            .with(vars::AGENT_URLS, "val1=https://10.0.0.1:8443,val2=https://10.0.0.2:8443")
            .with(vars::AGENT_CLIENT_KEY, key.to_secret_text().as_str())
            .with(vars::STATE_FILE, dir.join("state.json").display())
            .with_twilio("https://api.twilio.example", "AC0", "token", "+15005550006", "+14155550123")
    }

    fn problems(map: &VarMap) -> Vec<Problem> {
        load(map).err().map(|r| r.problems).unwrap_or_default()
    }

    #[test]
    fn a_valid_configuration_loads_with_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let settings = load(&valid(dir.path())).unwrap_or_else(|r| panic!("{r}"));
        let ChainSettings::Solana(s) = &settings.chain else { panic!("solana") };
        assert_eq!((s.cluster.as_str(), s.genesis_hash.as_str()), ("mainnet-beta", CLUSTERS[0].genesis_hash));
        assert_eq!((s.max_lag, s.tower_safe_slots, s.unreachable_primary), (128, 200, UnreachablePrimary::Wait));
        assert_eq!(settings.trap.trigger, Trigger::Allowed(3));
        assert_eq!(settings.trap.poll_interval.as_secs(), DEFAULT_POLL_INTERVAL_SECS);
        assert_eq!(settings.trap.backups, vec!["node:val2".to_string()]);
        // A preset named by its hash, and a custom cluster.
        let map = valid(dir.path()).with(vars::GENESIS_HASH, CLUSTERS[2].genesis_hash);
        let ChainSettings::Solana(s) = load(&map).unwrap().chain else { panic!() };
        assert_eq!(s.cluster, "devnet");
        let map = valid(dir.path()).with(vars::GENESIS_HASH, IDENTITY);
        let ChainSettings::Solana(s) = load(&map).unwrap().chain else { panic!() };
        assert_eq!((s.cluster.as_str(), s.genesis_hash.as_str()), ("solana", IDENTITY));
        let map = valid(dir.path()).with(vars::SOLANA_CLUSTER, "testnet").with(vars::UNREACHABLE_PRIMARY, "Refuse");
        let ChainSettings::Solana(s) = load(&map).unwrap().chain else { panic!() };
        assert_eq!((s.cluster.as_str(), s.unreachable_primary), ("testnet", UnreachablePrimary::Refuse));
    }

    #[test]
    fn every_problem_names_its_variable() {
        let dir = tempfile::tempdir().unwrap();
        let cases: Vec<(VarMap, &str, &str)> = vec![
            (valid(dir.path()).with(vars::VOTE_ACCOUNT, "not-base58!"), vars::VOTE_ACCOUNT, "base58"),
            (valid(dir.path()).with(vars::IDENTITY, "abc"), vars::IDENTITY, "base58"),
            (valid(dir.path()).with(vars::IDENTITY, VOTE), vars::IDENTITY, "is VOTE_ACCOUNT"),
            (valid(dir.path()).with(vars::RPC_URLS, "https://a.example"), vars::RPC_URLS, "two"),
            (valid(dir.path()).with(vars::SOLANA_CLUSTER, "mainnet"), vars::SOLANA_CLUSTER, "not a cluster"),
            (
                valid(dir.path())
                    .with(vars::SOLANA_CLUSTER, "devnet")
                    .with(vars::GENESIS_HASH, CLUSTERS[0].genesis_hash),
                vars::GENESIS_HASH,
                "not devnet's",
            ),
            (valid(dir.path()).with(vars::SOLANA_CLUSTER, "custom"), vars::GENESIS_HASH, "needs it"),
            (valid(dir.path()).with(vars::MAX_VOTE_LAG_SLOTS, "5"), vars::MAX_VOTE_LAG_SLOTS, "whole number"),
            (valid(dir.path()).with(vars::CONFIRMATIONS, "0"), vars::CONFIRMATIONS, "whole number"),
            (valid(dir.path()).with(vars::TOWER_SAFE_SLOTS, "many"), vars::TOWER_SAFE_SLOTS, "whole number"),
            (valid(dir.path()).with(vars::TOWER_SAFE_SLOTS, "150"), vars::TOWER_SAFE_SLOTS, "from 200"),
            (
                valid(dir.path()).with(vars::TOWER_SAFE_SLOTS, "2000").with(vars::FIRE_TIMEOUT_SECS, "700"),
                vars::FIRE_TIMEOUT_SECS,
                "TOWER_SAFE_SLOTS",
            ),
            (valid(dir.path()).with(vars::UNREACHABLE_PRIMARY, "maybe"), vars::UNREACHABLE_PRIMARY, "neither"),
            (valid(dir.path()).with(vars::AGENT_URLS, "val1=https://10.0.0.1:8443"), vars::AGENT_URLS, "two"),
            (valid(dir.path()).with(vars::MISSED_BLOCKS_ALLOWED, "2"), vars::MISSED_BLOCKS_ALLOWED, "CONFIRMATIONS"),
            (valid(dir.path()).with(vars::STAKED_IDENTITY_FILE, "/k.json"), vars::STAKED_IDENTITY_FILE, "agent"),
            (valid(dir.path()).with("SIGNING_WIF_FILE", "/k"), "SIGNING_WIF_FILE", "no key"),
            (valid(dir.path()).with(vars::BACKUP_SIGNING_KEY, "STM1"), vars::BACKUP_SIGNING_KEY, "AGENT_URLS"),
        ];
        for (map, var, text) in cases {
            let all = problems(&map);
            assert!(
                all.iter().any(|p| p.var == var && p.message.contains(text)),
                "{var} with {text:?} not reported: {all:?}"
            );
        }
        let missing = problems(&VarMap::new().with(vars::CHAIN, "solana"));
        for var in [vars::RPC_URLS, vars::VOTE_ACCOUNT, vars::IDENTITY, vars::AGENT_URLS] {
            assert!(missing.iter().any(|p| p.var == var), "{var}: {missing:?}");
        }
    }
}
