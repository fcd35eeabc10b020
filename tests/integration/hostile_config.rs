//! Hostile configuration through the real binary: a state file the trap cannot keep, or a log setting it
//! cannot use, is a configuration error naming the variable (exit 78), reported before anything is armed,
//! and a second trap reaching the same state file through a symlink is refused.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// A valid configuration against an unreachable loopback endpoint (no network needed) keeping its state
/// at `state_file`.
fn valid(keys: &Keys, state_file: &Path) -> HashMap<String, String> {
    vars(keys, &["http://127.0.0.1:9/"], state_file, "http://127.0.0.1:9")
}

fn run_bin(args: &[&str], env: &HashMap<String, String>) -> Output {
    bin().args(args).envs(env).output().expect("binary runs")
}

/// Exit 78 with a report naming `var`, and nothing printed on stdout.
fn assert_config_error(out: &Output, var: &str, why: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(78), "{why}: {err}");
    assert!(err.contains("in the configuration") && err.contains(&format!("  {var}: ")), "{why}: {err}");
    err
}

#[test]
fn a_state_file_in_a_missing_directory_exits_78_naming_state_file() {
    let keys = Keys::new();
    let v = valid(&keys, Path::new("/nonexistent-dir/s.json"));
    for command in ["check", "run"] {
        let out = run_bin(&[command], &v);
        let err = assert_config_error(&out, "STATE_FILE", command);
        assert!(err.contains("/nonexistent-dir") && err.contains("does not exist"), "{command}: {err}");
        assert!(!err.contains("cannot lock"), "{command}: the lock is never tried: {err}");
    }
    assert!(!Path::new("/nonexistent-dir").exists(), "nothing was created");
}

#[test]
fn a_state_directory_that_is_a_regular_file_exits_78() {
    // Holds as root too: no one can create a file inside a regular file.
    let keys = Keys::new();
    let (dir, _) = temp_state();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write");
    let out = run_bin(&["run"], &valid(&keys, &file.join("s.json")));
    let err = assert_config_error(&out, "STATE_FILE", "regular file as directory");
    assert!(err.contains("is not a directory"), "{err}");
}

#[test]
fn a_bad_log_level_exits_78_naming_log_level() {
    let keys = Keys::new();
    let (_dir, state) = temp_state();
    let mut v = valid(&keys, &state);
    v.insert("LOG_LEVEL".into(), "not[a[filter".into());
    for command in ["check", "run"] {
        let out = run_bin(&[command], &v);
        let err = assert_config_error(&out, "LOG_LEVEL", command);
        assert!(err.contains("not[a[filter"), "{command}: {err}");
    }
    assert!(!state.exists(), "nothing armed");
}

#[test]
fn a_bad_log_format_exits_78_naming_log_format() {
    let keys = Keys::new();
    let (_dir, state) = temp_state();
    let mut v = valid(&keys, &state);
    v.insert("LOG_FORMAT".into(), "yaml".into());
    let out = run_bin(&["run"], &v);
    let err = assert_config_error(&out, "LOG_FORMAT", "run");
    assert!(err.contains("\"yaml\"") && err.contains("json"), "{err}");
    assert!(!state.exists(), "nothing armed");
}

#[test]
fn every_problem_comes_in_one_report() {
    let keys = Keys::new();
    let mut v = valid(&keys, Path::new("/nonexistent-dir/s.json"));
    v.insert("LOG_LEVEL".into(), "not[a[filter".into());
    v.insert("LOG_FORMAT".into(), "yaml".into());
    v.remove("WITNESS_ACCOUNT");
    let out = run_bin(&["check"], &v);
    let err = assert_config_error(&out, "STATE_FILE", "all together");
    assert!(err.starts_with("witness-trap: 4 problems in the configuration"), "{err}");
    for var in ["LOG_LEVEL", "LOG_FORMAT", "WITNESS_ACCOUNT"] {
        assert!(err.contains(&format!("  {var}: ")), "{var}: {err}");
    }
}

/// `health` only reads: a bad log setting or a missing directory is not a configuration error there
/// (the trap cannot be armed, so it is simply unhealthy, exit 6, with the reason it sees).
#[test]
fn health_stays_a_read_only_verdict() {
    let keys = Keys::new();
    let mut v = valid(&keys, Path::new("/nonexistent-dir/s.json"));
    v.insert("LOG_LEVEL".into(), "not[a[filter".into());
    let out = run_bin(&["health"], &v);
    assert_eq!(out.status.code(), Some(6), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no state file"), "says why");
}

/// Run `cmd` for at most `limit`: its output if it exited, `None` (and killed) if it was still running.
fn run_for(cmd: &mut Command, limit: Duration) -> Option<Output> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if child.try_wait().expect("wait").is_some() {
            return Some(child.wait_with_output().expect("output"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Two `run`s whose `STATE_FILE`s are one file, one of them through a symlink: the second is refused by
/// the lock, and the link is left a link. The state is armed already, so the first resumes blind (the
/// endpoint is unreachable) and holds the lock until it is killed.
#[cfg(unix)]
#[test]
fn a_second_run_through_a_symlink_is_refused() {
    let keys = Keys::new();
    let (dir, state) = temp_state();
    let clock: chain_clock::SharedClock = std::sync::Arc::new(chain_clock::SystemClock);
    write_state(&state, &armed_state(&clock, 10, 2));
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink("state.json", &link).expect("symlink");
    let mut first =
        bin().arg("run").envs(valid(&keys, &link)).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
    // The lock file appears beside the real file just before it is locked.
    let lock = dir.path().join("state.json.lock");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lock.exists() && Instant::now() < deadline && first.try_wait().expect("wait").is_none() {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let still_running = first.try_wait().expect("wait").is_none();
    let second = run_for(bin().arg("run").envs(valid(&keys, &state)), Duration::from_secs(30));
    let _ = first.kill();
    let _ = first.wait();
    assert!(still_running && lock.exists(), "the first run did not take the lock beside the real file");
    assert!(!dir.path().join("link.json.lock").exists(), "no lock beside the link");
    let out = second.expect("the second run was not refused: it ran beside the first");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("another witness-trap process"), "{err}");
    assert!(std::fs::symlink_metadata(&link).expect("link").file_type().is_symlink(), "the link is still a link");
    assert_eq!(load_state(&link), load_state(&state));
}
