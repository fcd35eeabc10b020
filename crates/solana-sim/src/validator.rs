//! Validator processes: starting one (its admin socket and initial identity), crashing, restarting with the
//! junk identity, stalling, and the [`Validator`] handle tests drive them with.
//!
//! A restart always comes back with the junk identity: the operators' rule "every node starts junk", so a
//! reboot cannot bring back a second staked instance.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::keys::Keypair;
use crate::state::Node;
use crate::{admin, Shared, SimError};

/// How a validator's admin socket misbehaves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AdminFault {
    #[default]
    None,
    /// Accept and read the request, never answer, never apply it.
    Hang,
    /// Wait this long (real time), then apply and answer.
    Delay(Duration),
    /// Answer JSON-RPC error -32603 with this message; nothing is applied.
    Refuse(String),
}

/// A process that is not running yet.
pub(crate) fn new_node(ledger: &Path, junk: Keypair) -> Node {
    Node {
        ledger: ledger.to_path_buf(),
        junk,
        identity: None,
        stalled: false,
        fault: AdminFault::None,
        calls: Vec::new(),
        vote_from: 0,
        unchecked: false,
        votes: Default::default(),
        admin_stop: CancellationToken::new(),
        generation: 0,
    }
}

/// The admin socket's path in `ledger`.
pub(crate) fn socket_path(ledger: &Path) -> PathBuf {
    ledger.join("admin.rpc")
}

/// Start the process `name` (known and not running): bind its admin socket, then run with the junk identity,
/// or the staked one when `staked`.
pub(crate) fn launch(shared: &Arc<Shared>, name: &str, staked: bool) -> Result<(), SimError> {
    let ledger = shared
        .lock()
        .nodes
        .get(name)
        .map(|n| n.ledger.clone())
        .ok_or_else(|| SimError::NoSuchValidator(name.into()))?;
    let listener = admin::bind(&socket_path(&ledger))?;
    let stop = shared.shutdown.child_token();
    let generation = {
        let mut st = shared.now();
        let staked_id = shared.staked.pubkey();
        let n = st.nodes.get_mut(name).ok_or_else(|| SimError::NoSuchValidator(name.into()))?;
        n.generation += 1;
        n.admin_stop = stop.clone();
        n.stalled = false;
        n.unchecked = false;
        n.identity = Some(n.junk.pubkey());
        let generation = n.generation;
        if staked {
            st.set_identity(name, staked_id);
        }
        st.check_two_staked();
        generation
    };
    tokio::spawn(admin::serve(shared.clone(), name.to_string(), generation, listener, stop));
    Ok(())
}

/// A handle on one validator process.
#[derive(Clone)]
pub struct Validator {
    shared: Arc<Shared>,
    name: String,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Validator {
    pub(crate) fn new(shared: Arc<Shared>, name: &str) -> Self {
        Self { shared, name: name.to_string() }
    }

    /// Run `f` on the process's state, caught up with the clock.
    fn with<T>(&self, f: impl FnOnce(&mut Node) -> T) -> Option<T> {
        self.shared.now().nodes.get_mut(&self.name).map(f)
    }

    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// The identity it runs with now; `None` while crashed.
    pub fn identity(&self) -> Option<String> {
        self.with(|n| n.identity.clone()).flatten()
    }

    /// Running, holding the staked identity and not stalled.
    pub fn is_voting(&self) -> bool {
        let staked = self.shared.staked.pubkey();
        self.with(|n| n.identity.as_deref() == Some(staked.as_str()) && !n.stalled).unwrap_or(false)
    }

    /// The process dies: it holds no identity, stops voting, and its admin socket is closed and removed.
    pub fn crash(&self) {
        let mut st = self.shared.now();
        let Some(n) = st.nodes.get_mut(&self.name) else { return };
        n.identity = None;
        n.unchecked = false;
        n.generation += 1;
        n.admin_stop.cancel();
        // Gone already (a crash twice, or the test removed the ledger) is the state we want.
        let _ = std::fs::remove_file(socket_path(&n.ledger));
        st.check_two_staked();
    }

    /// Start the process again (killing it first if it runs): junk identity, admin socket back, not stalled.
    pub async fn restart(&self) -> Result<(), SimError> {
        self.crash();
        launch(&self.shared, &self.name, false)
    }

    /// A stalled process stays up, keeps its identity and admin socket, but does not vote.
    pub fn stall(&self, stalled: bool) {
        self.with(|n| n.stalled = stalled);
    }

    pub fn set_admin_fault(&self, fault: AdminFault) {
        self.with(|n| n.fault = fault);
    }

    /// Method names received on the admin socket, in order (across restarts).
    pub fn admin_calls(&self) -> Vec<String> {
        self.with(|n| n.calls.clone()).unwrap_or_default()
    }

    pub fn ledger(&self) -> PathBuf {
        self.with(|n| n.ledger.clone()).unwrap_or_default()
    }

    /// `<ledger>/admin.rpc`.
    pub fn admin_socket(&self) -> PathBuf {
        socket_path(&self.ledger())
    }
}
