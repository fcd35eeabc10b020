//! A real etcd for tests: Debian's `/usr/bin/etcd` (package `etcd-server`, which `.ci/run` installs) on free
//! loopback ports with a temporary data directory, stopped (by its PID) when dropped. It can be stopped
//! and started again on the same ports and data, as an outage during an incident.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One etcd member for a test.
pub struct EtcdServer {
    child: Option<Child>,
    client_port: u16,
    peer_port: u16,
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The etcd binary: `ETCD_BIN`, else `/usr/bin/etcd`, else `etcd` on the PATH.
fn binary() -> PathBuf {
    if let Some(b) = std::env::var_os("ETCD_BIN") {
        return b.into();
    }
    let debian = PathBuf::from("/usr/bin/etcd");
    if debian.exists() {
        debian
    } else {
        "etcd".into()
    }
}

impl EtcdServer {
    /// Start a one-member etcd and wait until it answers.
    pub fn start() -> Result<Self, String> {
        let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut s = Self {
            child: None,
            client_port: free_port().map_err(|e| e.to_string())?,
            peer_port: free_port().map_err(|e| e.to_string())?,
            dir: tmp.path().join("data"),
            _tmp: Some(tmp),
        };
        s.resume()?;
        Ok(s)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Start it again after [`EtcdServer::stop`] (same ports, same data).
    pub fn resume(&mut self) -> Result<(), String> {
        let client = self.url();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new(binary())
            .args(["--name", "test", "--data-dir"])
            .arg(&self.dir)
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("test={peer}"), "--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!("cannot start etcd ({}: {e}); install Debian's etcd-server (.ci/run does)", binary().display())
            })?;
        self.child = Some(child);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(30) {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    return Err(format!("etcd exited at start: {status}"));
                }
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.client_port)).is_ok() {
                // Listening; a one-member cluster elects itself within a moment.
                std::thread::sleep(Duration::from_millis(300));
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("etcd did not listen within 30 s".into())
    }

    /// Kill it (its PID): an etcd outage.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.stop();
    }
}
