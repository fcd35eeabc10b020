//! A real full filesystem under the real binary: the state lives on a tiny tmpfs that the test fills after
//! arming. The trap still fires, confirms the swap and alerts (one "state not writable" warning, then
//! FIRED), and exits 0; the fire could not be stored, so the disk still says `armed`, and a restart on the
//! same full disk is refused by the pre-arming check (the chain already shows the backup key): exit 78
//! naming BACKUP_SIGNING_KEY, nothing broadcast.
//!
//! The tmpfs is mounted in a private mount namespace (`unshare -rm`, util-linux): as root (CI), or
//! unprivileged where user namespaces are allowed. Without it the test fails; it never skips.

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus as ProcessStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chain_clock::SharedClock;
use graphene_protocol::chain::ChainSpec;
use wiremock::MockServer;
use witness_trap::trap::state::Phase;

use crate::support::*;

/// The whole scenario, both runs; it takes some 10-20 s of real time (POLL_INTERVAL_SECS is 3).
const LIMIT: Duration = Duration::from_secs(60);

/// Run inside `unshare -rm`. `$FT_TMPFS` becomes a 64 KiB tmpfs holding the state; `$FT_OUT` is a directory
/// outside it that the test watches: `full` (the tmpfs is full now), `first` (the first run's exit status),
/// `go` (the test's answer: run again), `second`, and the logs and a copy of the state file.
const SCRIPT: &str = r#"
set -u
d=$FT_TMPFS o=$FT_OUT bin=$FT_BIN
unset FT_TMPFS FT_OUT FT_BIN
if ! mount -t tmpfs -o size=64k,mode=0700 witness-trap-full "$d"; then
  echo "cannot mount a tmpfs on $d" >&2
  exit 90
fi
"$bin" run --exit-when-disarmed >"$o/run1.out" 2>"$o/run1.err" &
pid=$!
i=0
while [ ! -e "$d/state.json" ]; do
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid"
    echo "the trap exited with $? before arming" >&2
    exit 91
  fi
  i=$((i + 1))
  if [ "$i" -gt 600 ]; then
    kill "$pid"
    echo "the trap did not arm within 30 s" >&2
    exit 92
  fi
  sleep 0.05
done
dd if=/dev/zero of="$d/fill" bs=1k 2>"$o/dd.err"
# A save that was under way while dd ran frees the page of the file it replaces: take that page too.
sleep 0.2
dd if=/dev/zero of="$d/fill2" bs=1k 2>>"$o/dd.err"
df -k "$d" >"$o/df"
touch "$o/full"
wait "$pid"
first=$?
ls -la "$d" >"$o/ls"
cp "$d/state.json" "$o/state-after.json"
echo "$first" >"$o/first"
i=0
while [ ! -e "$o/go" ]; do
  i=$((i + 1))
  if [ "$i" -gt 600 ]; then
    echo "the test did not say go within 30 s" >&2
    exit 93
  fi
  sleep 0.05
done
"$bin" run --exit-when-disarmed >"$o/run2.out" 2>"$o/run2.err"
second=$?
df -k "$d" >>"$o/df"
echo "$second" >"$o/second"
"#;

/// Every SMS Twilio received: (To, Body).
async fn sms(server: &MockServer) -> Vec<(String, String)> {
    let field = |f: &std::collections::HashMap<String, String>, name: &str| f.get(name).cloned().unwrap_or_default();
    sms_forms(server).await.iter().map(|f| (field(f, "To"), field(f, "Body"))).collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The script's own output and everything it left in `out`, for a failure message.
fn diagnostics(child: &mut Child, out: &Path) -> String {
    let mut text = String::new();
    for stream in [child.stdout.take().map(read_all), child.stderr.take().map(read_all)].into_iter().flatten() {
        text.push_str(&stream);
    }
    for name in ["dd.err", "df", "ls", "first", "second", "run1.err", "run2.err"] {
        text.push_str(&format!("\n--- {name}:\n{}", read(&out.join(name))));
    }
    text
}

fn read_all<R: std::io::Read>(mut r: R) -> String {
    let mut s = String::new();
    let _ = r.read_to_string(&mut s);
    s
}

/// Kill the script and the trap it started (the script leads its own process group).
fn kill_group(child: &mut Child) {
    let group = format!("-{}", child.id());
    let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
    let _ = child.wait();
}

/// Wait until `done` holds, without blocking the runtime (the scripted nodes answer on it). If the script
/// ends first or the deadline passes, the script and its trap are killed and the test fails with everything
/// they left.
async fn wait_for(what: &str, child: &mut Child, out: &Path, deadline: Instant, done: impl Fn() -> bool) {
    while !done() {
        if let Some(status) = child.try_wait().expect("script status") {
            if done() {
                return;
            }
            kill_group(child);
            panic!("the script ended ({status}) before {what}: {}", diagnostics(child, out));
        }
        if Instant::now() > deadline {
            kill_group(child);
            panic!("timed out after {LIMIT:?} waiting for {what}: {}", diagnostics(child, out));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait for the script to end (killing it and failing at the deadline).
async fn wait_exit(child: &mut Child, out: &Path, deadline: Instant) -> ProcessStatus {
    loop {
        if let Some(status) = child.try_wait().expect("script status") {
            return status;
        }
        if Instant::now() > deadline {
            kill_group(child);
            panic!("timed out after {LIMIT:?} waiting for the script to end: {}", diagnostics(child, out));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_real_full_disk_does_not_stop_the_fire_and_a_restart_refuses() {
    let keys = Keys::new();
    // The binary runs on the system clock; so do the scripted nodes.
    let clock: SharedClock = Arc::new(chain_clock::SystemClock);
    let start = |clock: SharedClock| {
        FakeNode::start(ChainSpec::hive(), "alice", keys.primary.public_key(), keys.active.public_key(), clock)
    };
    let a = start(clock.clone()).await;
    let b = start(clock).await;
    let twilio = twilio_any().await;
    let tmpfs = tempfile::tempdir().expect("mount point");
    let outside = tempfile::tempdir().expect("outside dir");
    let out = outside.path().to_path_buf();
    let state_file: PathBuf = tmpfs.path().join("state.json");
    let vars: HashMap<String, String> = vars(&keys, &[&a.url, &b.url], &state_file, &twilio.uri());

    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    let mut child = Command::new("unshare")
        .args(["-rm", "sh", "-c", SCRIPT])
        .env_clear()
        .envs(&vars)
        .env("PATH", path)
        .env("LOG_LEVEL", "trace")
        .env("FT_TMPFS", tmpfs.path())
        .env("FT_OUT", &out)
        .env("FT_BIN", env!("CARGO_BIN_EXE_witness-trap"))
        // No .env is read from here.
        .current_dir(&out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("this test needs `unshare` (util-linux) to mount a tmpfs privately: {e}"));
    let deadline = Instant::now() + LIMIT;

    // Armed on a tmpfs that is now full: make the witness miss; the trap must fire anyway.
    wait_for("the tmpfs to be mounted, armed and full", &mut child, &out, deadline, || out.join("full").exists()).await;
    let dd = read(&out.join("dd.err"));
    assert!(dd.contains("No space left on device"), "the tmpfs was filled: {dd}");
    for node in [&a, &b] {
        node.set(|s| s.total_missed = 12);
    }
    wait_for("the first run to end", &mut child, &out, deadline, || out.join("first").exists()).await;
    let first = read(&out.join("first"));
    let err1 = read(&out.join("run1.err"));
    let out1 = read(&out.join("run1.out"));
    assert_eq!(first.trim(), "0", "swap confirmed and SMS delivered despite the full disk:\n{err1}");

    // Exactly one swap: one transaction, accepted by both nodes, and both show the backup key.
    let broadcasts = (a.get(|s| s.broadcasts), b.get(|s| s.broadcasts));
    let txs: std::collections::BTreeSet<String> =
        [&a, &b].iter().flat_map(|n| n.get(|s| s.accepted.iter().map(|t| t.to_string()).collect::<Vec<_>>())).collect();
    assert_eq!(txs.len(), 1, "one swap transaction: {txs:?}");
    assert!(broadcasts.0 <= 2 && broadcasts.1 <= 2, "a few broadcasts, not a loop: {broadcasts:?}");
    for node in [&a, &b] {
        assert_eq!(node.get(|s| s.signing_key), keys.backup.public_key(), "the chain expects the backup key");
    }

    // The operator heard of the disk once (per number), then of the fire.
    let messages = sms(&twilio).await;
    let recipients: std::collections::BTreeSet<&str> = messages.iter().map(|(to, _)| to.as_str()).collect();
    assert_eq!(recipients.len(), 2, "both TWILIO_TO numbers: {messages:?}");
    for to in &recipients {
        let bodies: Vec<&str> = messages.iter().filter(|(t, _)| t == to).map(|(_, b)| b.as_str()).collect();
        assert_eq!(
            bodies.iter().filter(|b| b.contains("state not writable")).count(),
            1,
            "one disk warning to {to}: {bodies:?}"
        );
        assert_eq!(bodies.iter().filter(|b| b.starts_with("FIRED")).count(), 1, "one FIRED to {to}: {bodies:?}");
        let warned = bodies.iter().position(|b| b.contains("state not writable"));
        let fired = bodies.iter().position(|b| b.starts_with("FIRED"));
        assert!(warned < fired, "the warning came before the FIRED alert: {bodies:?}");
    }

    // The disk was full before the crossing: the poll that saw it could not even be recorded.
    let unrecorded = err1.find("cannot record the last poll").expect("a poll on the full disk");
    let crossing = err1.find("threshold reached").expect("the crossing is logged");
    assert!(unrecorded < crossing, "the disk was full before the crossing:\n{err1}");
    assert!(err1.contains("cannot store the trap's state; guarding from memory"), "{err1}");
    assert!(err1.contains("No space left on device"), "the log says why: {err1}");

    // What is on disk is still the armed state: the fire could not be stored.
    assert_eq!(load_state(&out.join("state-after.json")).phase, Phase::Armed, "{}", read(&out.join("ls")));

    // Restart on the same full disk: the state says armed, the chain shows the backup key: refused.
    std::fs::write(out.join("go"), b"").expect("say go");
    let status = wait_exit(&mut child, &out, deadline).await;
    let second = read(&out.join("second"));
    let err2 = read(&out.join("run2.err"));
    let out2 = read(&out.join("run2.out"));
    assert!(status.success(), "the script ran to its end: {}", diagnostics(&mut child, &out));
    assert_eq!(second.trim(), "78", "the pre-arming check refuses:\n{err2}");
    assert!(err2.contains("BACKUP_SIGNING_KEY"), "the refusal names BACKUP_SIGNING_KEY:\n{err2}");
    assert_eq!((a.get(|s| s.broadcasts), b.get(|s| s.broadcasts)), broadcasts, "the restart broadcast nothing");
    assert_eq!(sms(&twilio).await.len(), messages.len(), "nor alerted again");

    let wif = keys.primary.to_wif().to_string();
    for (name, text) in [("run1.err", &err1), ("run1.out", &out1), ("run2.err", &err2), ("run2.out", &out2)] {
        assert!(!text.contains(&wif), "the signing WIF leaked into {name}");
        assert!(!text.contains(TWILIO_TOKEN), "the Twilio token leaked into {name}");
    }
}
