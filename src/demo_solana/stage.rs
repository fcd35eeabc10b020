//! The Solana stage: a simulated cluster (`solana-sim`) with several RPC endpoints, two validators (the
//! primary holding the staked identity, the backup its junk one), the real node agent
//! (`AGENT_ACTION=solana-admin`, in process, on 127.0.0.1) in front of each validator's admin socket, and
//! the trap's variables for it. Shared by `demo --chain solana`, the integration tests and the benchmark, so
//! all three run the same set-up; an agent can be stopped and started again on its address.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chain_clock::{ScaledClock, SharedClock};
use solana_sim::{Cluster, ClusterConfig, Endpoint, Keypair, Validator};
use tokio_util::sync::CancellationToken;

use crate::agent::solana_admin::{IdentityFile, SolanaAdmin};
use crate::agent::{Agent, AgentSigningKey, Verifier};
use crate::config::{vars, VarMap};

/// The validators' node names, as `AGENT_URLS` gives them: the primary first, then the backups in order.
pub const NODES: [&str; 3] = ["val1", "val2", "val3"];

/// One node's agent: where it listens and how to stop it.
pub struct StageAgent {
    pub name: String,
    pub addr: SocketAddr,
    stop: CancellationToken,
    backend: Arc<SolanaAdmin>,
}

/// The whole stage; its directory is removed when it is dropped.
pub struct Stage {
    pub clock: SharedClock,
    pub cluster: Cluster,
    pub endpoints: Vec<Endpoint>,
    pub validators: Vec<Validator>,
    pub agents: Vec<StageAgent>,
    pub trap_key: Arc<AgentSigningKey>,
    pub dir: PathBuf,
}

impl Drop for Stage {
    fn drop(&mut self) {
        for a in &self.agents {
            a.stop.cancel();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How the stage is built.
#[derive(Debug, Clone)]
pub struct StageOptions {
    /// How many times faster than real time the cluster runs (20: a 400 ms slot every 20 ms).
    pub speedup: f64,
    pub endpoints: usize,
    /// The agents' timeout of one admin-socket call.
    pub admin_timeout: Duration,
    /// Validators, each with its agent: 2 (a primary and a backup) or 3 (two ordered backups).
    pub validators: usize,
}

impl Default for StageOptions {
    fn default() -> Self {
        Self { speedup: 20.0, endpoints: 3, admin_timeout: Duration::from_secs(5), validators: 2 }
    }
}

fn fail(what: &str) -> impl Fn(&dyn std::fmt::Display) -> String + '_ {
    move |e| format!("{what}: {e}")
}

impl Stage {
    pub async fn start(opts: StageOptions) -> Result<Stage, String> {
        let clock: SharedClock = Arc::new(ScaledClock::starting_now(opts.speedup));
        let dir = std::env::temp_dir().join(format!(
            "witness-trap-solana-{}-{}",
            std::process::id(),
            hex::encode(rand::random::<[u8; 6]>())
        ));
        std::fs::create_dir_all(&dir).map_err(|e| fail("stage directory")(&e))?;
        let cluster = Cluster::start(ClusterConfig::new(clock.clone())).await.map_err(|e| fail("cluster")(&e))?;
        let mut endpoints = Vec::new();
        for _ in 0..opts.endpoints {
            endpoints.push(cluster.endpoint().await.map_err(|e| fail("endpoint")(&e))?);
        }
        let trap_key = Arc::new(AgentSigningKey::generate());
        let mut stage = Stage { clock, cluster, endpoints, validators: Vec::new(), agents: Vec::new(), trap_key, dir };
        for (i, name) in NODES.iter().take(opts.validators.clamp(2, NODES.len())).enumerate() {
            let ledger = stage.dir.join(name);
            std::fs::create_dir_all(&ledger).map_err(|e| fail("ledger")(&e))?;
            // Each host has its own copy of both keypair files, as an operator sets them up.
            let junk = Keypair::generate();
            let (junk_file, staked_file) = (ledger.join("junk-identity.json"), ledger.join("staked-identity.json"));
            junk.write_file(&junk_file).map_err(|e| fail("junk keypair")(&e))?;
            stage.cluster.staked().write_file(&staked_file).map_err(|e| fail("staked keypair")(&e))?;
            let validator = stage
                .cluster
                .add_validator(name, &ledger, junk.clone(), i == 0)
                .await
                .map_err(|e| fail("validator")(&e))?;
            let backend = Arc::new(SolanaAdmin::new(
                ledger.clone(),
                ledger.clone(),
                IdentityFile { file: junk_file, pubkey: junk.pubkey() },
                IdentityFile { file: staked_file, pubkey: stage.cluster.staked().pubkey() },
                opts.admin_timeout,
            ));
            let listen = SocketAddr::from(([127, 0, 0, 1], 0));
            let (addr, stop) = serve_agent(listen, name, &backend, &stage.trap_key, &stage.clock).await?;
            stage.validators.push(validator);
            stage.agents.push(StageAgent { name: name.to_string(), addr, stop, backend });
        }
        // The primary's first votes: a trap armed before them would find the validator "not voting".
        for _ in 0..500 {
            if stage.cluster.last_vote().is_some_and(|v| v + 2 >= stage.cluster.slot()) {
                return Ok(stage);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err("the simulated primary never voted".into())
    }

    /// `AGENT_URLS`.
    pub fn agent_urls(&self) -> String {
        self.agents.iter().map(|a| format!("{}=http://{}", a.name, a.addr)).collect::<Vec<_>>().join(",")
    }

    /// Stop node `i`'s agent (its address then refuses connections).
    pub fn stop_agent(&mut self, i: usize) {
        self.agents[i].stop.cancel();
    }

    /// Start node `i`'s agent again on the same address.
    pub async fn start_agent(&mut self, i: usize) -> Result<(), String> {
        let a = &self.agents[i];
        let mut last = String::new();
        for _ in 0..50 {
            match serve_agent(a.addr, &a.name, &a.backend, &self.trap_key, &self.clock).await {
                Ok((_, stop)) => {
                    self.agents[i].stop = stop;
                    return Ok(());
                }
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(last)
    }

    /// The trap's variables for this stage (no alert channel: the caller adds its own).
    pub fn vars(&self, state_file: &Path) -> VarMap {
        VarMap::new()
            .with(vars::CHAIN, "solana")
            .with(vars::GENESIS_HASH, self.cluster.genesis_hash())
            .with(vars::RPC_URLS, self.endpoints.iter().map(Endpoint::url).collect::<Vec<_>>().join(","))
            .with(vars::VOTE_ACCOUNT, self.cluster.vote_account())
            .with(vars::IDENTITY, self.cluster.staked().pubkey())
            .with(vars::AGENT_URLS, self.agent_urls())
            .with(vars::AGENT_CLIENT_KEY, self.trap_key.to_secret_text().as_str())
            .with(vars::STATE_FILE, state_file.display())
            .with(vars::RPC_TIMEOUT_SECS, 2)
    }
}

async fn serve_agent(
    listen: SocketAddr,
    name: &str,
    backend: &Arc<SolanaAdmin>,
    trap_key: &AgentSigningKey,
    clock: &SharedClock,
) -> Result<(SocketAddr, CancellationToken), String> {
    let verifier = Verifier::new(vec![trap_key.public_key()], name.into());
    let agent = Arc::new(Agent::new(verifier, backend.clone(), clock.clone()));
    let stop = CancellationToken::new();
    let (addr, _task) = crate::agent::serve(listen, None, agent, stop.clone()).await.map_err(|e| fail("agent")(&e))?;
    Ok((addr, stop))
}
