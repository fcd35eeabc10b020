//! The Solana backend (`AGENT_ACTION=solana-admin`): the validator's admin socket `<LEDGER_PATH>/admin.rpc`,
//! spoken as `agave-validator --ledger L set-identity [--require-tower] KEYPAIR` speaks it (solana.md §2.3).
//!
//! The socket is Agave's `jsonrpc-ipc-server`: one JSON-RPC 2.0 request object followed by `"\n"`, answered
//! by one JSON value (read incrementally until it is complete, at most [`MAX_ANSWER_BYTES`]). Two methods:
//!
//! * `contactInfo` (params `[]`) answers `{"id":"<base58 identity>",…}`: how the identity is read back;
//! * `setIdentity` (params `["<keypair file>", require_tower]`) answers `null`, or a JSON-RPC error.
//!
//! The validator reads the keypair file itself: no key byte crosses the socket, and the agent reads each
//! file once at start-up ([`read_keypair_public`]) to keep its public half only. Every call has the action
//! timeout, so a hung validator cannot hang the agent.
//!
//! * `identity`: `contactInfo`.
//! * `demote`: `setIdentity(junk, false)`, then `contactInfo` must report the junk identity; the staked
//!   identity's tower file (`<tower dir>/tower-1_9-<staked>.bin`), when there is one, comes back in base64.
//! * `promote`: already staked is success with nothing done. Otherwise the request's tower, if any, is
//!   written atomically as the staked identity's tower file, then `setIdentity(staked, require_tower)` with
//!   `require_tower` set exactly when a tower came, then `contactInfo` must report the staked identity.
//!   Without a tower the trap has waited the tower-safe slots: its decision, not the agent's.
//!
//! `pause`, `resume`, `paused` and `head` are nodeos's: refused as [`BackendError::Unsupported`].

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};
use thiserror::Error;
use zeroize::Zeroizing;

use super::backend::{shown_answer, Backend, BackendError, BoxFuture, Performed};
use super::request::{Action, Request, MAX_TOWER_BYTES};

/// The admin socket's name inside the ledger directory.
pub const SOCKET_NAME: &str = "admin.rpc";
/// Largest answer read from the admin socket.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Largest keypair file read: a Solana CLI keypair is ~250 bytes of JSON.
const MAX_KEYPAIR_FILE_BYTES: usize = 4096;
const BACKEND: &str = "solana admin socket";

/// The file name of `pubkey`'s tower, as Agave's file tower storage names it.
pub fn tower_file_name(pubkey: &str) -> String {
    format!("tower-1_9-{pubkey}.bin")
}

/// An identity the agent can switch to: the keypair file the validator reads, and its public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityFile {
    /// Absolute: the validator, not the agent, opens it, from its own working directory.
    pub file: PathBuf,
    /// Base58.
    pub pubkey: String,
}

/// Why a keypair file is not usable. Never quotes the file's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeypairError {
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{path} is larger than {MAX_KEYPAIR_FILE_BYTES} bytes: not a Solana keypair file")]
    TooLarge { path: String },
    #[error("{path} is not a Solana keypair file (a JSON array of exactly 64 integers 0 to 255)")]
    NotKeypair { path: String },
    #[error("{path}: its last 32 bytes are not the public key of its first 32 (the secret seed)")]
    PublicMismatch { path: String },
}

/// Read the Solana CLI keypair file at `path` (`[s0,…,s31,p0,…,p31]`), check that its public half belongs
/// to its secret seed, and return the public key in base58. Everything read is zeroized.
pub fn read_keypair_public(path: &Path) -> Result<String, KeypairError> {
    let shown = path.display().to_string();
    let unreadable = |e: std::io::Error| KeypairError::Unreadable { path: shown.clone(), reason: e.to_string() };
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    // A fixed buffer, so no reallocation leaves a copy of the secret behind.
    let mut buf = Zeroizing::new([0u8; MAX_KEYPAIR_FILE_BYTES + 1]);
    let mut len = 0;
    loop {
        let n = file.read(&mut buf[len..]).map_err(unreadable)?;
        if n == 0 {
            break;
        }
        len += n;
        if len > MAX_KEYPAIR_FILE_BYTES {
            return Err(KeypairError::TooLarge { path: shown });
        }
    }
    let keypair = parse_keypair(&buf[..len]).ok_or_else(|| KeypairError::NotKeypair { path: shown.clone() })?;
    let mut seed = Zeroizing::new([0u8; 32]);
    seed.copy_from_slice(&keypair[..32]);
    // SigningKey zeroizes itself on drop (ed25519-dalek's `zeroize` feature).
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    if public[..] != keypair[32..] {
        return Err(KeypairError::PublicMismatch { path: shown });
    }
    Ok(bs58::encode(public).into_string())
}

/// `[n,…]` with exactly 64 integers 0..=255, whitespace allowed; parsed by hand into a zeroized array
/// (a generic JSON parser would leave copies of the secret in memory it does not clear).
fn parse_keypair(text: &[u8]) -> Option<Zeroizing<[u8; 64]>> {
    let mut out = Zeroizing::new([0u8; 64]);
    let mut at = 0;
    let skip = |at: &mut usize| {
        while text.get(*at).is_some_and(u8::is_ascii_whitespace) {
            *at += 1;
        }
    };
    skip(&mut at);
    if text.get(at) != Some(&b'[') {
        return None;
    }
    at += 1;
    let mut count = 0;
    loop {
        skip(&mut at);
        let start = at;
        let mut value: u16 = 0;
        while let Some(d) = text.get(at).filter(|b| b.is_ascii_digit()) {
            value = value * 10 + u16::from(d - b'0');
            at += 1;
            if at - start > 3 || value > 255 {
                return None;
            }
        }
        if at == start || count == 64 {
            return None;
        }
        out[count] = u8::try_from(value).ok()?;
        count += 1;
        skip(&mut at);
        match text.get(at) {
            Some(b',') => at += 1,
            Some(b']') => {
                at += 1;
                break;
            }
            _ => return None,
        }
    }
    skip(&mut at);
    (count == 64 && at == text.len()).then_some(out)
}

/// The validator's admin socket.
#[derive(Debug)]
pub struct SolanaAdmin {
    socket: PathBuf,
    tower_dir: PathBuf,
    junk: IdentityFile,
    staked: IdentityFile,
    timeout: Duration,
    next_id: AtomicU64,
}

impl SolanaAdmin {
    /// The validator whose ledger is `ledger` (its socket is `<ledger>/admin.rpc`), keeping its tower files
    /// in `tower_dir`.
    pub fn new(
        ledger: PathBuf,
        tower_dir: PathBuf,
        junk: IdentityFile,
        staked: IdentityFile,
        timeout: Duration,
    ) -> Self {
        Self { socket: ledger.join(SOCKET_NAME), tower_dir, junk, staked, timeout, next_id: AtomicU64::new(1) }
    }

    fn shown(&self) -> String {
        self.socket.display().to_string()
    }

    fn tower_path(&self) -> PathBuf {
        self.tower_dir.join(tower_file_name(&self.staked.pubkey))
    }

    async fn act(&self, request: &Request) -> Result<Performed, BackendError> {
        let identity = |id: String| Performed { identity: Some(id), ..Performed::default() };
        match request.action {
            Action::Identity => self.contact_info().await.map(identity),
            Action::Demote => {
                self.set_identity(&self.junk, false).await?;
                let id = self.confirm(Action::Demote, &self.junk).await?;
                let tower = self.read_tower().await.map(|bytes| STANDARD.encode(bytes));
                Ok(Performed { tower, ..identity(id) })
            }
            Action::Promote => {
                let tower = request.tower_bytes().map_err(|reason| BackendError::TowerUnwritable {
                    path: self.tower_path().display().to_string(),
                    reason,
                })?;
                // Already staked: done. Writing the tower now would overwrite the running validator's own,
                // newer one.
                let now = self.contact_info().await?;
                if now == self.staked.pubkey {
                    return Ok(identity(now));
                }
                let require_tower = tower.is_some();
                if let Some(bytes) = tower {
                    self.write_tower(bytes).await?;
                }
                self.set_identity(&self.staked, require_tower).await?;
                self.confirm(Action::Promote, &self.staked).await.map(identity)
            }
            other @ (Action::Pause | Action::Resume | Action::Paused | Action::Head) => {
                Err(BackendError::Unsupported { action: other.as_str(), backend: BACKEND })
            }
        }
    }

    /// The identity the validator reports, which must now be `expected`'s.
    async fn confirm(&self, action: Action, expected: &IdentityFile) -> Result<String, BackendError> {
        let id = self.contact_info().await?;
        if id != expected.pubkey {
            return Err(BackendError::IdentityMismatch {
                socket: self.shown(),
                action: action.as_str(),
                expected: expected.pubkey.clone(),
                reported: id,
            });
        }
        Ok(id)
    }

    async fn contact_info(&self) -> Result<String, BackendError> {
        let info = self.call("contactInfo", json!([])).await?;
        match info.get("id").and_then(Value::as_str) {
            Some(id) => Ok(id.chars().take(64).collect()),
            None => Err(self.refused("contactInfo", None, format!("no \"id\" in {}", shown_value(&info)))),
        }
    }

    async fn set_identity(&self, identity: &IdentityFile, require_tower: bool) -> Result<(), BackendError> {
        let path = identity.file.to_string_lossy();
        self.call("setIdentity", json!([path, require_tower])).await.map(drop)
    }

    /// The staked identity's tower file, when there is one. A tower that cannot be read is left out (and
    /// logged): the trap then waits the tower-safe slots before promoting, which is safe.
    async fn read_tower(&self) -> Option<Vec<u8>> {
        use tokio::io::AsyncReadExt as _;
        let path = self.tower_path();
        let read = async {
            let file = tokio::fs::File::open(&path).await?;
            let mut bytes = Vec::new();
            file.take(MAX_TOWER_BYTES as u64 + 1).read_to_end(&mut bytes).await?;
            Ok::<_, std::io::Error>(bytes)
        };
        match read.await {
            Ok(bytes) if bytes.len() <= MAX_TOWER_BYTES => Some(bytes),
            Ok(_) => {
                tracing::warn!(path = %path.display(), max = MAX_TOWER_BYTES, "tower file too large to hand over; left out");
                None
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the tower file; left out");
                None
            }
        }
    }

    /// Write the staked identity's tower file: a temporary file in the same directory, synced, renamed
    /// over it, so the validator never restores half a tower.
    async fn write_tower(&self, bytes: Vec<u8>) -> Result<(), BackendError> {
        let (dir, name) = (self.tower_dir.clone(), tower_file_name(&self.staked.pubkey));
        let path = self.tower_path().display().to_string();
        let written = tokio::task::spawn_blocking(move || write_atomically(&dir, &name, &bytes)).await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(BackendError::TowerUnwritable { path, reason: e.to_string() }),
            Err(e) => Err(BackendError::TowerUnwritable { path, reason: format!("the write task failed: {e}") }),
        }
    }

    /// One JSON-RPC call within the timeout: its `result`, or why not.
    async fn call(&self, method: &'static str, params: Value) -> Result<Value, BackendError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(self.timeout, self.exchange(id, method, params)).await {
            Ok(result) => result,
            Err(_) => {
                Err(BackendError::ValidatorTimeout { socket: self.shown(), method, secs: self.timeout.as_secs() })
            }
        }
    }

    #[cfg(unix)]
    async fn exchange(&self, id: u64, method: &'static str, params: Value) -> Result<Value, BackendError> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let unreachable =
            |e: std::io::Error| BackendError::ValidatorUnreachable { socket: self.shown(), reason: e.to_string() };
        let mut stream = tokio::net::UnixStream::connect(&self.socket).await.map_err(unreachable)?;
        let mut line = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string();
        line.push('\n');
        stream.write_all(line.as_bytes()).await.map_err(unreachable)?;
        let mut answer = Vec::new();
        let mut chunk = [0u8; 4096];
        let value = loop {
            let n = stream.read(&mut chunk).await.map_err(unreachable)?;
            if n == 0 {
                let why = format!("the socket closed before a complete answer: {}", shown_answer(&answer));
                return Err(self.refused(method, None, why));
            }
            answer.extend_from_slice(&chunk[..n]);
            match serde_json::Deserializer::from_slice(&answer).into_iter::<Value>().next() {
                Some(Ok(value)) => break value,
                // Incomplete (or only whitespace so far): read on, within the bound.
                Some(Err(e)) if e.is_eof() => {}
                None => {}
                Some(Err(_)) => return Err(self.refused(method, None, format!("not JSON: {}", shown_answer(&answer)))),
            }
            if answer.len() >= MAX_ANSWER_BYTES {
                return Err(self.refused(method, None, format!("the answer is larger than {MAX_ANSWER_BYTES} bytes")));
            }
        };
        self.interpret(id, method, value)
    }

    #[cfg(not(unix))]
    async fn exchange(&self, _id: u64, _method: &'static str, _params: Value) -> Result<Value, BackendError> {
        Err(BackendError::ValidatorUnreachable {
            socket: self.shown(),
            reason: "Unix sockets are not supported on this platform".into(),
        })
    }

    /// A JSON-RPC 2.0 answer to request `id`: its `result`, or its `error` as [`BackendError::ValidatorRefused`].
    fn interpret(&self, id: u64, method: &'static str, answer: Value) -> Result<Value, BackendError> {
        if let Some(error) = answer.get("error") {
            let code = error.get("code").and_then(Value::as_i64);
            let message = match error.get("message").and_then(Value::as_str) {
                Some(m) => shown_answer(m.as_bytes()),
                None => shown_value(error),
            };
            return Err(self.refused(method, code, message));
        }
        if answer.get("id").and_then(Value::as_u64) != Some(id) {
            return Err(self.refused(
                method,
                None,
                format!("not the answer to request {id}: {}", shown_value(&answer)),
            ));
        }
        match answer {
            Value::Object(mut fields) if fields.contains_key("result") => {
                Ok(fields.remove("result").unwrap_or(Value::Null))
            }
            other => Err(self.refused(method, None, format!("no \"result\": {}", shown_value(&other)))),
        }
    }

    fn refused(&self, method: &'static str, code: Option<i64>, message: String) -> BackendError {
        BackendError::ValidatorRefused { socket: self.shown(), method, code, message }
    }
}

impl Backend for SolanaAdmin {
    fn describe(&self) -> String {
        format!("{BACKEND} {} (junk {}, staked {})", self.shown(), self.junk.pubkey, self.staked.pubkey)
    }

    fn perform<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<Performed, BackendError>> {
        Box::pin(self.act(request))
    }
}

fn shown_value(value: &Value) -> String {
    shown_answer(value.to_string().as_bytes())
}

fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let temporary = dir.join(format!(".{name}.{}.tmp", hex::encode(rand::random::<[u8; 8]>())));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, dir.join(name))?;
        // The rename itself survives a crash once the directory is synced; best effort.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// Keypair files for tests: a fresh Solana CLI keypair at `path`, its base58 public key returned.
#[cfg(test)]
pub(crate) fn write_test_keypair(path: &Path) -> String {
    let seed: [u8; 32] = rand::random();
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    let all: Vec<u8> = seed.iter().chain(public.iter()).copied().collect();
    std::fs::write(path, serde_json::to_string(&all).unwrap()).unwrap();
    bs58::encode(public).into_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

    /// What the fake validator does and was asked.
    #[derive(Default)]
    struct State {
        identity: String,
        /// keypair path → public key: what the fake "reads" for setIdentity.
        keys: HashMap<String, String>,
        calls: Vec<(String, Value)>,
        hang: bool,
        error: Option<(i64, String)>,
        /// contactInfo reports this instead of the identity set.
        report: Option<String>,
        tower_dir: PathBuf,
    }

    struct Fake {
        _dir: tempfile::TempDir,
        ledger: PathBuf,
        junk: IdentityFile,
        staked: IdentityFile,
        state: Arc<Mutex<State>>,
    }

    impl Fake {
        /// A validator running as the junk (`staked == false`) or the staked identity, its socket listening.
        async fn start(staked: bool) -> Fake {
            let dir = tempfile::tempdir().unwrap();
            let ledger = dir.path().join("ledger");
            std::fs::create_dir(&ledger).unwrap();
            let identity = |name: &str| {
                let file = dir.path().join(name);
                let pubkey = write_test_keypair(&file);
                IdentityFile { file, pubkey }
            };
            let (junk, staked_id) = (identity("junk.json"), identity("staked.json"));
            let state = Arc::new(Mutex::new(State {
                identity: if staked { staked_id.pubkey.clone() } else { junk.pubkey.clone() },
                keys: [&junk, &staked_id]
                    .iter()
                    .map(|i| (i.file.to_string_lossy().into_owned(), i.pubkey.clone()))
                    .collect(),
                tower_dir: ledger.clone(),
                ..State::default()
            }));
            let listener = tokio::net::UnixListener::bind(ledger.join(SOCKET_NAME)).unwrap();
            let served = state.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(serve(stream, served.clone()));
                }
            });
            Fake { _dir: dir, ledger, junk, staked: staked_id, state }
        }

        fn admin(&self, timeout: Duration) -> SolanaAdmin {
            SolanaAdmin::new(self.ledger.clone(), self.ledger.clone(), self.junk.clone(), self.staked.clone(), timeout)
        }

        fn calls(&self) -> Vec<(String, Value)> {
            self.state.lock().unwrap().calls.clone()
        }

        fn tower_path(&self) -> PathBuf {
            self.ledger.join(tower_file_name(&self.staked.pubkey))
        }
    }

    /// Agave's shapes: a line in, one JSON value out (here in two writes, to exercise incremental parsing).
    async fn serve(stream: tokio::net::UnixStream, state: Arc<Mutex<State>>) {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let request: Value = serde_json::from_str(&line).unwrap();
            let (id, method, params) =
                (request["id"].clone(), request["method"].as_str().unwrap().to_string(), request["params"].clone());
            let answer = {
                let mut s = state.lock().unwrap();
                s.calls.push((method.clone(), params.clone()));
                if s.hang {
                    None
                } else if let Some((code, message)) = s.error.clone() {
                    Some(json!({ "jsonrpc": "2.0", "error": { "code": code, "message": message }, "id": id }))
                } else if method == "contactInfo" {
                    let reported = s.report.clone().unwrap_or_else(|| s.identity.clone());
                    Some(
                        json!({ "jsonrpc": "2.0", "result": { "id": reported, "gossip": "127.0.0.1:8001" }, "id": id }),
                    )
                } else if method == "setIdentity" {
                    let path = params[0].as_str().unwrap_or_default();
                    match s.keys.get(path).cloned() {
                        None => Some(
                            json!({ "jsonrpc": "2.0", "error": { "code": -32602, "message": format!("Failed to read identity keypair from {path}") }, "id": id }),
                        ),
                        Some(pubkey)
                            if params[1] == json!(true) && !s.tower_dir.join(tower_file_name(&pubkey)).exists() =>
                        {
                            Some(
                                json!({ "jsonrpc": "2.0", "error": { "code": -32602, "message": "Requested tower not found" }, "id": id }),
                            )
                        }
                        Some(pubkey) => {
                            s.identity = pubkey;
                            Some(json!({ "jsonrpc": "2.0", "result": null, "id": id }))
                        }
                    }
                } else {
                    Some(
                        json!({ "jsonrpc": "2.0", "error": { "code": -32601, "message": "Method not found" }, "id": id }),
                    )
                }
            };
            let Some(answer) = answer else {
                std::future::pending::<()>().await;
                return;
            };
            let text = answer.to_string();
            let (first, rest) = text.split_at(text.len() / 2);
            write.write_all(first.as_bytes()).await.unwrap();
            write.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            write.write_all(format!("{rest}\n").as_bytes()).await.unwrap();
        }
    }

    fn request(action: Action, tower: Option<&[u8]>) -> Request {
        Request {
            action,
            node: "v1".into(),
            nonce: "00".repeat(16),
            expires_at: 1,
            tower: tower.map(|t| STANDARD.encode(t)),
        }
    }

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn identity_reads_contact_info() {
        let fake = Fake::start(true).await;
        let done = fake.admin(T).perform(&request(Action::Identity, None)).await.unwrap();
        assert_eq!(done, Performed { identity: Some(fake.staked.pubkey.clone()), ..Performed::default() });
        assert_eq!(fake.calls(), vec![("contactInfo".to_string(), json!([]))]);
    }

    #[tokio::test]
    async fn demote_confirms_the_junk_identity_and_returns_the_tower() {
        let fake = Fake::start(true).await;
        std::fs::write(fake.tower_path(), b"saved tower bytes").unwrap();
        let admin = fake.admin(T);
        let done = admin.perform(&request(Action::Demote, None)).await.unwrap();
        assert_eq!(done.identity.as_deref(), Some(fake.junk.pubkey.as_str()));
        assert_eq!(done.tower, Some(STANDARD.encode(b"saved tower bytes")));
        let junk_path = fake.junk.file.to_string_lossy().into_owned();
        assert_eq!(
            fake.calls(),
            vec![("setIdentity".to_string(), json!([junk_path, false])), ("contactInfo".to_string(), json!([]))]
        );
        // Idempotent; and with no tower file, no tower.
        std::fs::remove_file(fake.tower_path()).unwrap();
        let again = admin.perform(&request(Action::Demote, None)).await.unwrap();
        assert_eq!((again.identity, again.tower), (Some(fake.junk.pubkey.clone()), None));
    }

    #[tokio::test]
    async fn promote_writes_the_tower_then_requires_it() {
        let fake = Fake::start(false).await;
        let admin = fake.admin(T);
        let tower = vec![9u8; 3000];
        let done = admin.perform(&request(Action::Promote, Some(&tower))).await.unwrap();
        assert_eq!(done, Performed { identity: Some(fake.staked.pubkey.clone()), ..Performed::default() });
        assert_eq!(std::fs::read(fake.tower_path()).unwrap(), tower);
        let staked_path = fake.staked.file.to_string_lossy().into_owned();
        let sets: Vec<Value> = fake.calls().into_iter().filter(|(m, _)| m == "setIdentity").map(|(_, p)| p).collect();
        assert_eq!(sets, vec![json!([staked_path, true])]);
        let leftovers: Vec<_> = std::fs::read_dir(&fake.ledger)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        // Already staked: success, and neither the tower nor the identity touched again.
        std::fs::write(fake.tower_path(), b"the validator's own newer tower").unwrap();
        let again = admin.perform(&request(Action::Promote, Some(&tower))).await.unwrap();
        assert_eq!(again.identity, Some(fake.staked.pubkey.clone()));
        assert_eq!(std::fs::read(fake.tower_path()).unwrap(), b"the validator's own newer tower");
        assert_eq!(fake.calls().iter().filter(|(m, _)| m == "setIdentity").count(), 1);
    }

    #[tokio::test]
    async fn promote_without_a_tower_does_not_require_one() {
        let fake = Fake::start(false).await;
        let done = fake.admin(T).perform(&request(Action::Promote, None)).await.unwrap();
        assert_eq!(done.identity, Some(fake.staked.pubkey.clone()));
        let staked_path = fake.staked.file.to_string_lossy().into_owned();
        assert!(fake.calls().contains(&("setIdentity".to_string(), json!([staked_path, false]))), "{:?}", fake.calls());
        assert!(!fake.tower_path().exists());
    }

    #[tokio::test]
    async fn a_hung_validator_times_out() {
        let fake = Fake::start(false).await;
        fake.state.lock().unwrap().hang = true;
        let started = std::time::Instant::now();
        let e = fake.admin(Duration::from_millis(200)).perform(&request(Action::Demote, None)).await.unwrap_err();
        assert_eq!((e.code(), e.status()), ("validator_timeout", 504), "{e}");
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(e.to_string().contains("admin.rpc") && e.to_string().contains("setIdentity"), "{e}");
    }

    #[tokio::test]
    async fn a_json_rpc_error_is_reported_with_its_code_and_message() {
        let fake = Fake::start(true).await;
        fake.state.lock().unwrap().error = Some((-32602, "Failed to read identity keypair".into()));
        let e = fake.admin(T).perform(&request(Action::Demote, None)).await.unwrap_err();
        assert_eq!((e.code(), e.status()), ("validator_refused", 502));
        assert!(
            matches!(&e, BackendError::ValidatorRefused { code: Some(-32602), message, .. } if message == "Failed to read identity keypair"),
            "{e:?}"
        );
        assert!(e.to_string().contains("Failed to read identity keypair") && e.to_string().contains("-32602"), "{e}");
        // A real Agave error: the tower is required and missing.
        let fake = Fake::start(false).await;
        std::fs::create_dir(fake.ledger.join("elsewhere")).unwrap();
        let admin = SolanaAdmin::new(
            fake.ledger.clone(),
            fake.ledger.join("elsewhere"),
            fake.junk.clone(),
            fake.staked.clone(),
            T,
        );
        let e = admin.perform(&request(Action::Promote, Some(b"tower"))).await.unwrap_err();
        assert!(e.to_string().contains("Requested tower not found"), "{e}");
    }

    #[tokio::test]
    async fn another_identity_after_set_identity_is_a_mismatch() {
        let fake = Fake::start(false).await;
        let stranger = write_test_keypair(&fake.ledger.join("other.json"));
        fake.state.lock().unwrap().report = Some(stranger.clone());
        let e = fake.admin(T).perform(&request(Action::Demote, None)).await.unwrap_err();
        assert_eq!((e.code(), e.status()), ("identity_mismatch", 502));
        assert!(e.to_string().contains(&stranger) && e.to_string().contains(&fake.junk.pubkey), "{e}");
        let e = fake.admin(T).perform(&request(Action::Promote, None)).await.unwrap_err();
        assert_eq!(e.code(), "identity_mismatch");
    }

    #[tokio::test]
    async fn a_missing_socket_is_unreachable_and_named() {
        let fake = Fake::start(false).await;
        let admin = SolanaAdmin::new(
            fake.ledger.join("nowhere"),
            fake.ledger.clone(),
            fake.junk.clone(),
            fake.staked.clone(),
            T,
        );
        let e = admin.perform(&request(Action::Identity, None)).await.unwrap_err();
        assert_eq!((e.code(), e.status()), ("validator_unreachable", 502));
        assert!(e.to_string().contains("nowhere/admin.rpc"), "{e}");
    }

    #[tokio::test]
    async fn antelope_actions_are_refused_and_nothing_is_called() {
        let fake = Fake::start(false).await;
        let admin = fake.admin(T);
        for action in [Action::Pause, Action::Resume, Action::Paused, Action::Head] {
            let e = admin.perform(&request(action, None)).await.unwrap_err();
            assert_eq!((e.code(), e.status()), ("unsupported_action", 400), "{e}");
        }
        assert!(fake.calls().is_empty());
        assert!(admin.describe().contains(&fake.junk.pubkey) && admin.describe().contains("admin.rpc"));
    }

    #[test]
    fn junk_answers_are_refused() {
        let admin = SolanaAdmin::new(
            "/l".into(),
            "/l".into(),
            IdentityFile { file: "/j".into(), pubkey: "j".into() },
            IdentityFile { file: "/s".into(), pubkey: "s".into() },
            T,
        );
        assert_eq!(
            admin.interpret(3, "contactInfo", json!({ "jsonrpc": "2.0", "result": { "id": "x" }, "id": 3 })).unwrap(),
            json!({ "id": "x" })
        );
        for bad in [
            json!({ "jsonrpc": "2.0", "result": null, "id": 4 }),
            json!({ "jsonrpc": "2.0", "id": 3 }),
            json!([1]),
            json!("x"),
        ] {
            assert_eq!(
                admin.interpret(3, "setIdentity", bad.clone()).unwrap_err().code(),
                "validator_refused",
                "{bad}"
            );
        }
    }

    #[test]
    fn keypair_files_are_checked_and_never_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.json");
        let pubkey = write_test_keypair(&path);
        assert_eq!(read_keypair_public(&path).unwrap(), pubkey);
        let good = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!(" \n{}\n", good.replace(',', " , "))).unwrap();
        assert_eq!(read_keypair_public(&path).unwrap(), pubkey, "whitespace is allowed");

        let mut numbers: Vec<u16> = serde_json::from_str(&good).unwrap();
        numbers[40] ^= 1;
        std::fs::write(&path, serde_json::to_string(&numbers).unwrap()).unwrap();
        let e = read_keypair_public(&path).unwrap_err();
        assert!(matches!(e, KeypairError::PublicMismatch { .. }), "{e}");
        let mut bad_values = Vec::new();
        for bad in [
            serde_json::to_string(&numbers[..63]).unwrap(),
            serde_json::to_string(&[numbers.clone(), vec![1]].concat()).unwrap(),
            serde_json::to_string(&[&numbers[..63], &[256]].concat()).unwrap(),
            format!("{}x", serde_json::to_string(&numbers).unwrap()),
            good.replace('[', "{"),
            "[]".into(),
            "[1,,2]".into(),
            String::new(),
        ] {
            std::fs::write(&path, &bad).unwrap();
            let e = read_keypair_public(&path).unwrap_err();
            assert!(matches!(e, KeypairError::NotKeypair { .. }), "{bad}: {e}");
            bad_values.push(e.to_string());
        }
        std::fs::write(&path, vec![b' '; MAX_KEYPAIR_FILE_BYTES + 1]).unwrap();
        assert!(matches!(read_keypair_public(&path).unwrap_err(), KeypairError::TooLarge { .. }));
        assert!(matches!(read_keypair_public(&dir.path().join("none")).unwrap_err(), KeypairError::Unreadable { .. }));
        let seed_text = numbers[..8].iter().map(u16::to_string).collect::<Vec<_>>().join(",");
        assert!(bad_values.iter().all(|m| !m.contains(&seed_text)), "{bad_values:?}");
    }
}
