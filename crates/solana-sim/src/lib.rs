//! A simulated Solana-family cluster on 127.0.0.1 for witness-trap's demo, tests and benchmark.
//!
//! [`Cluster::start`] runs a slot ticker on a [`SharedClock`] (a [`chain_clock::ScaledClock`] makes 400 ms
//! slots pass in a few ms). One vote account has one staked identity; [`Cluster::add_validator`] adds processes
//! that each serve Agave's admin socket at `<ledger>/admin.rpc` (`admin.rs`: `setIdentity`, `contactInfo`, with
//! jsonrpc-ipc-server's framing) and vote every slot while they hold the staked identity (`state.rs`), writing a
//! tower file (`tower.rs`). [`Cluster::endpoint`] serves the cluster JSON-RPC the off-host trap reads (`rpc.rs`,
//! `methods.rs`), each endpoint with its own [`Behaviour`] (behind, unhealthy, down, wrong genesis, frozen votes).
//! A checker records a [`Violation`] whenever two running validators hold the staked identity or one starts
//! voting without the tower inside the lockout window. The sim imports only `chain-clock` of the workspace.
//!
//! ```no_run
//! # async fn demo(ledger_a: &std::path::Path, ledger_b: &std::path::Path) -> Result<(), solana_sim::SimError> {
//! use solana_sim::{Cluster, ClusterConfig, Keypair};
//! let clock = std::sync::Arc::new(chain_clock::ScaledClock::starting_now(20.0));
//! let cluster = Cluster::start(ClusterConfig::new(clock)).await?;
//! let primary = cluster.add_validator("primary", ledger_a, Keypair::generate(), true).await?;
//! let _backup = cluster.add_validator("backup", ledger_b, Keypair::generate(), false).await?;
//! let rpc = cluster.endpoint().await?;
//! primary.crash();
//! assert!(cluster.violations().is_empty());
//! # let _ = rpc.url(); Ok(()) }
//! ```

mod admin;
pub mod jsonrpc;
pub mod keys;
mod methods;
mod rpc;
mod state;
pub mod tower;
mod validator;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chain_clock::SharedClock;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

pub use keys::Keypair;
pub use rpc::{Behaviour, Endpoint};
pub use state::{Violation, ViolationKind, ROOT_DISTANCE, TOWER_SAFE_SLOTS};
pub use validator::{AdminFault, Validator};

use state::{Params, State};

/// Errors of the simulated cluster.
#[derive(Debug, Error)]
pub enum SimError {
    #[error("invalid cluster settings: {0}")]
    Config(String),
    #[error("cannot listen on {what}: {source}")]
    Bind {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An unreadable or inconsistent keypair (the text is what the admin socket reports after the path).
    #[error("{0}")]
    Keypair(String),
    #[error("a validator named {0} already exists")]
    DuplicateValidator(String),
    #[error("no validator named {0}")]
    NoSuchValidator(String),
}

/// Settings of a simulated cluster; [`ClusterConfig::new`] fills mainnet-like defaults.
#[derive(Clone)]
pub struct ClusterConfig {
    /// Slot `first_slot + (clock.now() - start) / slot_duration` is the current one.
    pub clock: SharedClock,
    pub slot_duration: Duration,
    /// Base58, what `getGenesisHash` answers.
    pub genesis_hash: String,
    pub slots_per_epoch: u64,
    /// The slot number at start.
    pub first_slot: u64,
    /// The staked identity leads `leader_run` consecutive slots every `leader_every` slots.
    pub leader_every: u64,
    pub leader_run: u64,
    /// `activatedStake` of the vote account (0 = unstaked).
    pub stake_lamports: u64,
    /// `getBalance` of the staked identity.
    pub identity_balance: u64,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("slot_duration", &self.slot_duration)
            .field("genesis_hash", &self.genesis_hash)
            .field("slots_per_epoch", &self.slots_per_epoch)
            .field("first_slot", &self.first_slot)
            .field("leader_every", &self.leader_every)
            .field("leader_run", &self.leader_run)
            .field("stake_lamports", &self.stake_lamports)
            .field("identity_balance", &self.identity_balance)
            .finish_non_exhaustive()
    }
}

impl ClusterConfig {
    /// 400 ms slots, 8192-slot epochs from slot 330 000 000, 4 leader slots in 40, 42 000 SOL staked, 5 SOL
    /// on the identity, a random genesis hash.
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            slot_duration: Duration::from_millis(400),
            genesis_hash: keys::random_hash(),
            slots_per_epoch: 8192,
            first_slot: 330_000_000,
            leader_every: 40,
            leader_run: 4,
            stake_lamports: 42_000_000_000_000,
            identity_balance: 5_000_000_000,
        }
    }
}

/// State shared by the ticker, the endpoints, the admin sockets and the handles.
pub(crate) struct Shared {
    clock: SharedClock,
    /// Clock time of `first_slot`'s start.
    start: Duration,
    slot_duration: Duration,
    pub(crate) first_slot: u64,
    pub(crate) genesis_hash: String,
    pub(crate) vote_account: String,
    pub(crate) staked: Keypair,
    state: Mutex<State>,
    pub(crate) shutdown: CancellationToken,
}

impl Shared {
    /// The slot the clock is in now.
    fn clock_slot(&self) -> u64 {
        let elapsed = self.clock.now().saturating_sub(self.start).as_nanos();
        let k = elapsed / self.slot_duration.as_nanos().max(1);
        self.first_slot.saturating_add(u64::try_from(k).unwrap_or(u64::MAX))
    }

    /// Clock time until the next slot begins (at least 1 ms, so a ticker never spins).
    fn until_next_slot(&self) -> Duration {
        let d = self.slot_duration.as_nanos().max(1);
        let elapsed = self.clock.now().saturating_sub(self.start).as_nanos();
        let left = d - elapsed % d;
        Duration::from_nanos(u64::try_from(left).unwrap_or(u64::MAX)).max(Duration::from_millis(1))
    }

    /// The state without catching up with the clock.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // State methods do not panic on peer input; a poisoned lock means a bug already reported by that panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state caught up with the clock: every read and change happens at the current slot.
    pub(crate) fn now(&self) -> MutexGuard<'_, State> {
        let target = self.clock_slot();
        let mut st = self.lock();
        st.advance_to(target);
        st
    }
}

/// Processes every slot as the clock reaches it, until the cluster is dropped.
async fn tick(shared: Arc<Shared>) {
    loop {
        drop(shared.now());
        let wait = shared.until_next_slot();
        tokio::select! {
            _ = shared.clock.sleep(wait) => {}
            _ = shared.shutdown.cancelled() => return,
        }
    }
}

/// Stops the ticker, the endpoints and the admin sockets when the last [`Cluster`] clone goes.
struct Owner {
    shared: Arc<Shared>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

/// A running simulated cluster. Cheap to clone; dropping the last clone stops it.
#[derive(Clone)]
pub struct Cluster {
    owner: Arc<Owner>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("vote_account", &self.shared().vote_account).finish_non_exhaustive()
    }
}

impl Cluster {
    /// Check the settings, generate the vote account and the staked identity, and start the slot ticker.
    pub async fn start(cfg: ClusterConfig) -> Result<Cluster, SimError> {
        if cfg.slot_duration.is_zero() {
            return Err(SimError::Config("slot_duration must be positive".into()));
        }
        if cfg.slots_per_epoch == 0 {
            return Err(SimError::Config("slots_per_epoch must be positive".into()));
        }
        if !keys::is_pubkey(&cfg.genesis_hash) {
            return Err(SimError::Config(format!("genesis hash {:?} is not 32 bytes of base58", cfg.genesis_hash)));
        }
        let staked = Keypair::generate();
        let params = Params {
            staked: staked.pubkey(),
            first_slot: cfg.first_slot,
            slots_per_epoch: cfg.slots_per_epoch,
            leader_every: cfg.leader_every,
            leader_run: cfg.leader_run,
        };
        let shared = Arc::new(Shared {
            start: cfg.clock.now(),
            clock: cfg.clock,
            slot_duration: cfg.slot_duration,
            first_slot: cfg.first_slot,
            genesis_hash: cfg.genesis_hash,
            vote_account: keys::random_hash(),
            staked,
            state: Mutex::new(State::new(params, cfg.stake_lamports, cfg.identity_balance)),
            shutdown: CancellationToken::new(),
        });
        tokio::spawn(tick(shared.clone()));
        Ok(Cluster { owner: Arc::new(Owner { shared }) })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.owner.shared
    }

    /// The vote account's address (base58).
    pub fn vote_account(&self) -> String {
        self.shared().vote_account.clone()
    }

    /// The staked identity: the vote account's `nodePubkey`.
    pub fn staked(&self) -> &Keypair {
        &self.shared().staked
    }

    pub fn genesis_hash(&self) -> String {
        self.shared().genesis_hash.clone()
    }

    /// The cluster's current slot.
    pub fn slot(&self) -> u64 {
        self.shared().now().slot
    }

    /// The vote account's last vote.
    pub fn last_vote(&self) -> Option<u64> {
        self.shared().now().last_vote
    }

    /// Start validator `name` with its ledger in `ledger` (created if missing) and its admin socket at
    /// `<ledger>/admin.rpc`. It runs with `junk`, or with the staked identity (and a tower holding the cluster's
    /// last vote) when `staked`; a staked one votes from the next slot.
    pub async fn add_validator(
        &self,
        name: &str,
        ledger: &Path,
        junk: Keypair,
        staked: bool,
    ) -> Result<Validator, SimError> {
        let shared = self.shared();
        std::fs::create_dir_all(ledger).map_err(|source| SimError::Io { path: ledger.to_path_buf(), source })?;
        {
            let mut st = shared.now();
            if st.nodes.contains_key(name) {
                return Err(SimError::DuplicateValidator(name.to_string()));
            }
            if staked {
                let staked_id = shared.staked.pubkey();
                tower::write(ledger, &staked_id, st.last_vote)
                    .map_err(|source| SimError::Io { path: tower::path(ledger, &staked_id), source })?;
            }
            st.nodes.insert(name.to_string(), validator::new_node(ledger, junk));
        }
        if let Err(e) = validator::launch(shared, name, staked) {
            shared.lock().nodes.remove(name);
            return Err(e);
        }
        Ok(Validator::new(shared.clone(), name))
    }

    /// A handle on validator `name`.
    pub fn validator(&self, name: &str) -> Option<Validator> {
        let known = self.shared().lock().nodes.contains_key(name);
        known.then(|| Validator::new(self.shared().clone(), name))
    }

    /// Names of running validators holding the staked identity now.
    pub fn holders(&self) -> Vec<String> {
        self.shared().now().holders()
    }

    /// Every safety violation recorded so far (empty = safe).
    pub fn violations(&self) -> Vec<Violation> {
        self.shared().now().violations.clone()
    }

    /// The first slot after `slot` at which `name` voted with the staked identity.
    pub fn first_vote_after(&self, name: &str, slot: u64) -> Option<u64> {
        let st = self.shared().now();
        st.nodes.get(name)?.votes.range(slot.saturating_add(1)..).next().copied()
    }

    /// The vote account's `activatedStake` from now on.
    pub fn set_stake(&self, lamports: u64) {
        self.shared().now().stake = lamports;
    }

    /// The staked identity's balance from now on.
    pub fn set_identity_balance(&self, lamports: u64) {
        self.shared().now().identity_balance = lamports;
    }

    /// A new cluster JSON-RPC endpoint on an ephemeral port of 127.0.0.1, honest until told otherwise.
    pub async fn endpoint(&self) -> Result<Endpoint, SimError> {
        rpc::spawn(self.shared().clone()).await
    }
}
