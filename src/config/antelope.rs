//! The Antelope variables (EOS, WAX, Telos, Jungle): `CHAIN`/`CHAIN_ID`, `PRODUCER_ACCOUNT`,
//! `BACKUP_SIGNING_KEY`, `FAILOVER_PERMISSION`, `FAILOVER_WIF`, `BACKUP_FINALIZER_KEY`; and the Hive/Steem
//! variables refused here with what to use instead (the trap never needs the active or owner key).

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;

use super::{rpc_urls, vars, Collector};
use crate::chain::antelope::pause_resume::{AgentNode, PauseResumeSettings, DEFAULT_FENCE};
use crate::chain::antelope::AntelopeSettings;
use crate::chain::Identity;
use crate::trap::Trigger;
use antelope_protocol::chain::{network, ChainId};
use antelope_protocol::keys::{PrivateKey, PublicKey};
use antelope_protocol::name::Name;

/// The `CHAIN` names that mean Antelope; `antelope` needs `CHAIN_ID`.
pub const NETWORKS: &[&str] = &["eos", "wax", "telos", "jungle", "wax-testnet", "telos-testnet", "kylin", "antelope"];

/// Schedule latency worst case (antelope-chain.md §1.4): a proposal at most every 60 s, active one to two
/// rounds of 126 s later. A fire timeout below this could give up on a swap that is on its way.
pub const WORST_SCHEDULE_LATENCY_SECS: u64 = 60 + 2 * 126;

/// Whether `CHAIN` names an Antelope network.
pub fn is_antelope(src: &dyn vars::Source) -> bool {
    src.get(vars::CHAIN).is_some_and(|v| NETWORKS.contains(&v.trim().to_ascii_lowercase().as_str()))
}

/// The network's name and chain id.
fn chain(c: &mut Collector) -> Option<(String, ChainId, bool)> {
    let name = c.src.get(vars::CHAIN).map(|v| v.trim().to_ascii_lowercase()).unwrap_or_default();
    let id = c.src.get(vars::CHAIN_ID).map(|v| v.trim().to_string());
    let parsed = match id.as_deref().map(ChainId::from_hex) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            c.push(
                vars::CHAIN_ID,
                "is not 64 hex characters",
                "give the chain id as 64 hex characters (get_info's chain_id)",
            );
            return None;
        }
    };
    if name == "antelope" {
        return match parsed {
            Some(id) => Some((network_name_of(&id), id, true)),
            None => {
                c.push(
                    vars::CHAIN_ID,
                    "is not set, and CHAIN=antelope needs it",
                    "set CHAIN_ID to the chain's id (64 hex, get_info's chain_id), or set CHAIN to eos, wax, telos or jungle",
                );
                None
            }
        };
    }
    let net = network(&name)?;
    if let Some(id) = parsed {
        if id != net.chain_id {
            c.push(
                vars::CHAIN_ID,
                format!("is not the chain id of {name} ({})", net.chain_id.to_hex()),
                format!("remove CHAIN_ID (CHAIN={name} knows its id), or set CHAIN=antelope for another chain"),
            );
            return None;
        }
    }
    Some((net.name.to_string(), net.chain_id, false))
}

/// A known network's name for a custom id, else `antelope`.
fn network_name_of(id: &ChainId) -> String {
    antelope_protocol::chain::network_by_id(id).map_or_else(|| "antelope".to_string(), |n| n.name.to_string())
}

fn producer(c: &mut Collector) -> Option<String> {
    if c.src.get(vars::PRODUCER_ACCOUNT).is_none() && c.src.get(vars::WITNESS_ACCOUNT).is_some() {
        c.push(
            vars::PRODUCER_ACCOUNT,
            "is not set (WITNESS_ACCOUNT is, but that is the Hive/Steem name)",
            "set PRODUCER_ACCOUNT to the producer's account, e.g. PRODUCER_ACCOUNT=alice, and remove WITNESS_ACCOUNT",
        );
        return None;
    }
    let raw = c.required(vars::PRODUCER_ACCOUNT, "the producer's account name, e.g. alice")?;
    match Name::new(&raw) {
        Ok(n) => Some(n.to_string()),
        Err(e) => {
            c.push(
                vars::PRODUCER_ACCOUNT,
                format!("{raw:?} is not a valid Antelope account name: {e}"),
                "use the account name: up to 12 characters a-z, 1-5 and '.', not ending in '.'",
            );
            None
        }
    }
}

/// Who is guarded (for `test-alert`).
pub(crate) fn identity(c: &mut Collector) -> Option<Identity> {
    let chain = chain(c);
    let producer = producer(c)?;
    Some(Identity { producer, chain: chain?.0 })
}

/// Variables of Hive and Steem that have no meaning here: each refused with what to use instead.
fn refuse_graphene(c: &mut Collector) {
    for var in [vars::SIGNING_WIF, vars::ACTIVE_WIF] {
        for v in [var.to_string(), format!("{var}_FILE")] {
            if c.src.get(&v).is_some() {
                c.push(
                    &v,
                    "is a Hive/Steem key and is not used on Antelope chains",
                    "remove it: on Antelope the swap is signed by FAILOVER_PERMISSION's key (FAILOVER_WIF); the trap never \
                     needs the active or owner key (`witness-trap tx setup-permission` sets the permission up)",
                );
            }
        }
    }
    if let Some(d) = c.src.get(vars::DETECTION) {
        if !d.trim().eq_ignore_ascii_case("slots") {
            c.push(vars::DETECTION, "Antelope producers are always watched slot by slot", "remove DETECTION");
        }
    }
}

pub(crate) fn settings(
    c: &mut Collector,
    timeout: Duration,
    max_head_age: Duration,
    tx_expiration: Duration,
) -> Option<AntelopeSettings> {
    refuse_graphene(c);
    let chain = chain(c);
    let producer = producer(c);
    let urls = rpc_urls(c, "https://eos.greymass.com");
    let pause_resume = match c.src.get(vars::SWAP).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("regproducer") => None,
        Some("producer-api") => Some(pause_resume_settings(c)),
        Some(other) => {
            c.push(vars::SWAP, format!("{other:?} is not a swap"), "set SWAP to regproducer (default) or producer-api");
            None
        }
    };
    if let Some(settings) = pause_resume {
        for var in
            [vars::BACKUP_SIGNING_KEY, vars::BACKUP_SIGNING_KEYS, vars::FAILOVER_PERMISSION, vars::BACKUP_FINALIZER_KEY]
                .into_iter()
                .map(String::from)
                .chain([vars::FAILOVER_WIF.to_string(), format!("{}_FILE", vars::FAILOVER_WIF)])
        {
            if c.src.get(&var).is_some() {
                c.push(
                    &var,
                    "is for the regproducer swap; SWAP=producer-api signs nothing on chain",
                    "remove it (the nodes share one key; AGENT_URLS names them)",
                );
            }
        }
        let (chain, producer, urls, settings) = (chain?, producer?, urls?, settings?);
        return Some(AntelopeSettings {
            backups: Vec::new(),
            network: chain.0,
            chain_id: chain.1,
            custom_chain: chain.2,
            urls,
            timeout,
            max_head_age,
            producer,
            // Unused: no key moves with pause/resume.
            backup_key: PublicKey::NULL,
            permission: vars::DEFAULT_FAILOVER_PERMISSION.to_string(),
            failover_key: None,
            backup_finalizer_key: None,
            tx_expiration,
            pause_resume: Some(settings),
        });
    }
    let backups: Option<Vec<PublicKey>> =
        super::backup_key_texts(c, "the backup node's public key (EOS… or PUB_K1_…)").and_then(|(var, texts)| {
            let keys: Vec<Option<PublicKey>> = texts
                .iter()
                .map(|text| match PublicKey::from_text(text) {
                    Ok(k) if k.is_null() => {
                        c.push(
                            var,
                            "holds the null key, which stops production instead of failing over",
                            "give backup nodes' public signing keys",
                        );
                        None
                    }
                    Ok(k) => Some(k),
                    Err(e) => {
                        c.push(
                            var,
                            format!("{text:?} is not a valid Antelope public key: {e}"),
                            "give the backup node's public key, EOS… or PUB_K1_… (`witness-trap key pub --chain eos` prints it)",
                        );
                        None
                    }
                })
                .collect();
            keys.into_iter().collect()
        });
    let backup_key = backups.as_ref().and_then(|k| k.first().copied());
    if super::disable_after_last(c) {
        c.push(
            vars::DISABLE_AFTER_LAST_BACKUP,
            "is for Hive and Steem: regproducer refuses the null key on Antelope chains",
            "remove it; after the last backup the trap stops and alerts (unregprod, if wanted, is the operator's act)",
        );
    }
    let permission = match c.src.get(vars::FAILOVER_PERMISSION).map(|v| v.trim().to_string()) {
        None => Some(vars::DEFAULT_FAILOVER_PERMISSION.to_string()),
        Some(p) if p == "owner" || p == "active" => {
            c.push(
                vars::FAILOVER_PERMISSION,
                format!("is {p}: a key that can do anything must never sit in a watchdog"),
                "use a permission linked to eosio::regproducer alone (default failover; `witness-trap tx setup-permission`)",
            );
            None
        }
        Some(p) => match Name::new(&p) {
            Ok(n) => Some(n.to_string()),
            Err(e) => {
                c.push(
                    vars::FAILOVER_PERMISSION,
                    format!("{p:?} is not a valid permission name: {e}"),
                    "use a name such as failover",
                );
                None
            }
        },
    };
    let failover_key = match vars::secret(c.src, vars::FAILOVER_WIF) {
        Err(p) => {
            c.problems.push(p);
            None
        }
        Ok(None) => {
            c.push(
                vars::FAILOVER_WIF,
                "is not set: the trap has no key to sign the swap",
                "set FAILOVER_WIF (or FAILOVER_WIF_FILE) to the private key of PRODUCER_ACCOUNT@FAILOVER_PERMISSION",
            );
            None
        }
        Ok(Some(secret)) => match PrivateKey::from_text(secret.expose_secret().trim()) {
            Ok(k) => Some(k),
            Err(e) => {
                c.push(
                    vars::FAILOVER_WIF,
                    format!("is not a valid private key: {e}"),
                    "give the failover permission's private key as a WIF (5…) or PVT_K1_… text",
                );
                None
            }
        },
    };
    if let (Some(b), Some(k)) = (backup_key, &failover_key) {
        if k.public_key() == b {
            c.push(
                vars::BACKUP_SIGNING_KEY,
                "is the public key of FAILOVER_WIF: the failover permission's key must not be a block signing key",
                "set BACKUP_SIGNING_KEY to the backup node's signing key, and give the permission a key of its own",
            );
        }
    }
    let finalizer = c.src.get(vars::BACKUP_FINALIZER_KEY).map(|v| v.trim().to_string());
    if finalizer.is_some() && backups.as_ref().is_some_and(|b| b.len() > 1) {
        c.push(
            vars::BACKUP_FINALIZER_KEY,
            "names one node's finalizer key, but BACKUP_SIGNING_KEYS lists several backups",
            "remove BACKUP_FINALIZER_KEY, or keep one backup (BACKUP_SIGNING_KEY)",
        );
    }
    if let Some(f) = &finalizer {
        if let Err(why) = check_bls_text(f) {
            c.push(
                vars::BACKUP_FINALIZER_KEY,
                format!("is not a BLS public key: {why}"),
                "give the backup node's finalizer key as PUB_BLS_… text (as regfinkey registered it), or remove it",
            );
        }
    }
    let (chain, producer, urls, backup_key, permission, failover_key) =
        (chain?, producer?, urls?, backup_key?, permission?, failover_key?);
    Some(AntelopeSettings {
        backups: backups.unwrap_or_default(),
        network: chain.0,
        chain_id: chain.1,
        custom_chain: chain.2,
        urls,
        timeout,
        max_head_age,
        producer,
        backup_key,
        permission,
        failover_key: Some(failover_key),
        backup_finalizer_key: finalizer,
        tx_expiration,
        pause_resume: None,
    })
}

/// `AGENT_URLS`, `AGENT_CLIENT_KEY_FILE`, `AGENT_CA_FILE`, `PAUSE_FENCE_SECS` for `SWAP=producer-api`.
fn pause_resume_settings(c: &mut Collector) -> Option<PauseResumeSettings> {
    let fleet = agent_fleet(c);
    let fence = c.seconds(vars::PAUSE_FENCE_SECS, DEFAULT_FENCE.as_secs(), 3600);
    // Shorter than two rounds, the silence could be the gap between two turns, not a stopped node.
    if fence < DEFAULT_FENCE {
        c.push(
            vars::PAUSE_FENCE_SECS,
            format!("{} s is less than two rounds of 21 producers ({} s)", fence.as_secs(), DEFAULT_FENCE.as_secs()),
            "use at least 252: the producer must be seen missing a whole turn before it counts as stopped",
        );
    }
    let AgentFleet { nodes, client_key, ca_pem } = fleet?;
    Some(PauseResumeSettings { nodes, fence, client_key, ca_pem, timeout: Duration::from_secs(15) })
}

/// The node agents a trap drives: `AGENT_URLS` (the primary first), the trap's key, the CA to trust.
pub(crate) struct AgentFleet {
    pub nodes: Vec<AgentNode>,
    pub client_key: Arc<crate::agent::keys::AgentSigningKey>,
    pub ca_pem: Option<Vec<u8>>,
}

/// `AGENT_URLS`, `AGENT_CLIENT_KEY_FILE` and `AGENT_CA_FILE`, shared by every failover through agents.
pub(crate) fn agent_fleet(c: &mut Collector) -> Option<AgentFleet> {
    let mut nodes = Vec::new();
    match c.required(
        vars::AGENT_URLS,
        "NAME=URL of each node's agent, the primary first (bp1=https://10.0.0.1:8443,bp2=…)",
    ) {
        None => {}
        Some(text) => {
            for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                let Some((name, url)) = entry.split_once('=') else {
                    c.push(
                        vars::AGENT_URLS,
                        format!("{entry:?} is not NAME=URL"),
                        "write each agent as NAME=URL, e.g. bp1=https://10.0.0.1:8443",
                    );
                    continue;
                };
                let (name, url) = (name.trim(), url.trim());
                if !crate::agent::request::is_valid_node_name(name) {
                    c.push(
                        vars::AGENT_URLS,
                        format!("{name:?} is not a node name"),
                        "use the agent's AGENT_NODE_NAME: 1 to 64 of A-Z a-z 0-9 . _ -",
                    );
                    continue;
                }
                if !(url.starts_with("https://") || url.starts_with("http://")) || reqwest::Url::parse(url).is_err() {
                    c.push(
                        vars::AGENT_URLS,
                        format!("{name}: {:?} is not an http(s) URL", crate::redact::url(url)),
                        "give the agent's URL, https://host:port",
                    );
                    continue;
                }
                if nodes.iter().any(|n: &AgentNode| n.name == name) {
                    c.push(vars::AGENT_URLS, format!("names {name} twice"), "name each node once");
                    continue;
                }
                nodes.push(AgentNode { name: name.to_string(), url: url.to_string() });
            }
            if nodes.len() < 2 {
                c.push(
                    vars::AGENT_URLS,
                    "needs at least two agents: the primary's, then a backup's",
                    "list the primary's agent first, then each backup's",
                );
            }
        }
    }
    let client_key = match super::agent::client_key(c.src) {
        Ok(Some(k)) => Some(Arc::new(k)),
        Ok(None) => {
            c.push(
                format!("{}_FILE", vars::AGENT_CLIENT_KEY).as_str(),
                "is not set: the trap cannot sign requests to the agents",
                "make a key with `witness-trap key new --kind agent --out PATH`, give its public key to every agent's \
                 AGENT_TRUSTED_KEYS, and set AGENT_CLIENT_KEY_FILE to PATH",
            );
            None
        }
        Err(p) => {
            c.problems.push(p);
            None
        }
    };
    let ca_pem = match c.src.get(vars::AGENT_CA_FILE) {
        None => None,
        Some(path) => match std::fs::read(path.trim()) {
            Ok(pem) => Some(pem),
            Err(e) => {
                c.push(
                    vars::AGENT_CA_FILE,
                    format!("cannot read {}: {e}", path.trim()),
                    "give a readable PEM file, or remove it",
                );
                None
            }
        },
    };
    let (client_key, true) = (client_key?, nodes.len() >= 2) else { return None };
    Some(AgentFleet { nodes, client_key, ca_pem })
}

/// `PUB_BLS_` and base64url text of 96 key bytes and a 4-byte checksum (134 characters, no padding).
fn check_bls_text(text: &str) -> Result<(), String> {
    let body = text.strip_prefix("PUB_BLS_").ok_or("it does not start with PUB_BLS_")?;
    if !body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err("it is not base64url text".into());
    }
    if body.len() != 134 {
        return Err(format!("its key part is {} characters, not 134", body.len()));
    }
    Ok(())
}

/// `MISSED_BLOCKS_ALLOWED` only: Antelope keeps no counter an absolute `THRESHOLD` could name.
pub(crate) fn trigger(c: &mut Collector) -> Option<Trigger> {
    if c.src.get(vars::THRESHOLD).is_some() {
        c.push(
            vars::THRESHOLD,
            "is an absolute total_missed, a counter Antelope chains do not keep",
            "remove THRESHOLD and set MISSED_BLOCKS_ALLOWED: the trap fires when the producer's missed slots since arming reach it",
        );
        return None;
    }
    let Some(v) = c.src.get(vars::MISSED_BLOCKS_ALLOWED) else {
        c.push(
            vars::MISSED_BLOCKS_ALLOWED,
            "is not set",
            "set MISSED_BLOCKS_ALLOWED, e.g. 2: fire when the producer has missed 2 block slots since arming",
        );
        return None;
    };
    match v.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Some(Trigger::Allowed(n)),
        _ => {
            c.push(
                vars::MISSED_BLOCKS_ALLOWED,
                format!("{:?} is not a whole number ≥ 1", v.trim()),
                "set MISSED_BLOCKS_ALLOWED to a whole number ≥ 1",
            );
            None
        }
    }
}

/// The fire timeout must cover the schedule latency: the swap counts only once the schedule carries it.
pub(crate) fn check_fire_timeout(c: &mut Collector, fire_timeout: Duration) {
    if fire_timeout.as_secs() < WORST_SCHEDULE_LATENCY_SECS {
        c.push(
            vars::FIRE_TIMEOUT_SECS,
            format!(
                "{} s is less than the worst schedule latency of an Antelope chain (about {WORST_SCHEDULE_LATENCY_SECS} s: \
                 a change is proposed at most every 60 s and active one to two rounds later)",
                fire_timeout.as_secs()
            ),
            format!("raise FIRE_TIMEOUT_SECS to at least {WORST_SCHEDULE_LATENCY_SECS}, or remove it for the default"),
        );
    }
}
