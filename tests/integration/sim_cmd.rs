//! `witness-trap sim` as an operator runs it: the printed `.env` lines arm a valid trap, the key files are
//! private and never printed, the control server takes the primary down and up, SIGTERM stops it; and the
//! real trap, in real time, fires against it. With `--chain eos` the lines arm an Antelope trap that
//! `check --env-file sim.env` accepts against the running sim.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use witness_trap::cli::ExitStatus;
use witness_trap::config::vars as v;

use crate::support::run;

/// A running `witness-trap sim`, its variables and its control URL.
struct Sim {
    child: Child,
    vars: HashMap<String, String>,
    control: String,
    stderr: std::process::ChildStderr,
    _dir: tempfile::TempDir,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[&str]) -> Sim {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_witness-trap"))
        .env_clear()
        .args(["sim", "--port", "0", "--dir"])
        .arg(dir.path().join("sim"))
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let mut vars = HashMap::new();
    let mut control = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("a line");
        if let Some(url) = line.strip_prefix("control: ") {
            control = url.to_string();
            break;
        }
        let (k, val) = line.split_once('=').expect("NAME=value");
        vars.insert(k.to_string(), val.to_string());
    }
    assert!(!control.is_empty(), "no control line");
    Sim { child, vars, control, stderr, _dir: dir }
}

async fn status(sim: &Sim) -> serde_json::Value {
    reqwest::get(format!("{}/status", sim.control)).await.expect("status").json().await.expect("JSON")
}

async fn post(sim: &Sim, path: &str) {
    let r = reqwest::Client::new().post(format!("{}{path}", sim.control)).send().await.expect("control");
    assert!(r.status().is_success());
}

#[tokio::test]
async fn sim_prints_a_valid_trap_configuration_and_obeys_its_controls() {
    let mut sim = start(&[]);
    for var in [
        v::WITNESS_ACCOUNT,
        v::CHAIN,
        v::RPC_URLS,
        v::BACKUP_SIGNING_KEY,
        "SIGNING_WIF_FILE",
        v::MISSED_BLOCKS_ALLOWED,
        v::TWILIO_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN_FILE",
        v::TWILIO_FROM,
        v::TWILIO_TO,
        v::TWILIO_API_URL,
        v::STATE_FILE,
    ] {
        assert!(sim.vars.contains_key(var), "{var} missing from {:?}", sim.vars);
    }
    let wif_file = std::path::PathBuf::from(&sim.vars["SIGNING_WIF_FILE"]);
    let wif = std::fs::read_to_string(&wif_file).expect("the WIF file");
    assert_eq!(std::fs::metadata(&wif_file).expect("meta").permissions().mode() & 0o777, 0o600);
    let env_file = wif_file.with_file_name("sim.env");
    let written = std::fs::read_to_string(&env_file).expect("sim.env");
    assert_eq!(written.lines().count(), sim.vars.len(), "sim.env holds the printed lines");
    assert!(!written.contains(wif.trim()), "sim.env names the WIF's file, not the WIF");
    let settings = witness_trap::config::load(&sim.vars).expect("a valid configuration");
    assert_eq!(settings.identity().producer, "sim-witness");

    let s = status(&sim).await;
    assert_eq!(s["signing_key"], s["primary_key"]);
    assert_eq!((s["primary_up"].as_bool(), s["total_missed"].as_u64()), (Some(true), Some(7)));
    post(&sim, "/primary/down").await;
    assert_eq!(status(&sim).await["primary_up"], false);
    post(&sim, "/primary/up").await;
    assert_eq!(status(&sim).await["primary_up"], true);

    let pid = sim.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let exit = sim.child.wait().expect("exits");
    assert!(exit.success(), "{exit:?}");
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut sim.stderr, &mut err);
    assert!(!err.contains(wif.trim()), "no WIF on stderr");
}

#[test]
fn a_foreign_directory_is_never_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("signing_wif"), "the operator's real key\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_witness-trap"))
        .env_clear()
        .args(["sim", "--port", "0", "--dir"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an earlier sim's directory"));
    let kept = std::fs::read_to_string(dir.path().join("signing_wif")).expect("still there");
    assert_eq!(kept, "the operator's real key\n");
}

#[test]
fn a_busy_port_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_witness-trap"))
        .env_clear()
        .args(["sim", "--port", &port, "--dir"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("127.0.0.1:{port}")) && err.contains("--port"), "{err}");
}

/// The real trap in real time (`SystemClock`), armed from the printed variables: the primary goes down,
/// the witness's next slot (at most a 63 s round away) is missed, the trap fires, the backup key is on the
/// simulated chain and the fake Twilio has the SMS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_trap_in_real_time_fires_against_the_sim() {
    let sim = start(&[]);
    let clock: chain_clock::SharedClock = Arc::new(chain_clock::SystemClock);
    let vars = sim.vars.clone();
    let task = tokio::spawn(async move { run(&vars, clock, CancellationToken::new(), true).await });
    let state_file = std::path::PathBuf::from(&sim.vars[v::STATE_FILE]);
    for _ in 0..300 {
        if state_file.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(state_file.exists(), "the trap armed");
    post(&sim, "/primary/down").await;
    let exit = tokio::time::timeout(Duration::from_secs(240), task).await.expect("fired in time").expect("join");
    assert_eq!(exit, ExitStatus::Ok);
    let s = status(&sim).await;
    assert_eq!(s["signing_key"], s["backup_key"], "{s}");
    assert_eq!(s["key_changes"], 1);
    let sms = s["sms"].as_array().expect("sms");
    assert_eq!(sms.len(), 1);
    assert!(sms[0]["body"].as_str().unwrap_or_default().contains("@sim-witness"), "{s}");
}

/// `sim --chain eos`: the printed lines are an Antelope trap's variables, the failover key is in a private
/// file and never printed, `check --env-file sim.env` accepts them while the sim runs, the control server
/// takes the primary down and up, and SIGTERM stops it.
#[tokio::test]
async fn sim_for_eos_writes_a_sim_env_that_check_accepts() {
    let mut sim = start(&["--chain", "eos"]);
    for var in [
        v::CHAIN,
        v::PRODUCER_ACCOUNT,
        v::RPC_URLS,
        v::BACKUP_SIGNING_KEY,
        "FAILOVER_WIF_FILE",
        v::MISSED_BLOCKS_ALLOWED,
        v::TWILIO_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN_FILE",
        v::TWILIO_FROM,
        v::TWILIO_TO,
        v::TWILIO_API_URL,
        v::STATE_FILE,
    ] {
        assert!(sim.vars.contains_key(var), "{var} missing from {:?}", sim.vars);
    }
    assert_eq!(sim.vars[v::CHAIN], "eos");
    assert_eq!(sim.vars[v::PRODUCER_ACCOUNT], "simproducer");
    assert_eq!(sim.vars[v::RPC_URLS].split(',').count(), 2);
    for graphene in [v::WITNESS_ACCOUNT, "SIGNING_WIF_FILE", "ACTIVE_WIF_FILE"] {
        assert!(!sim.vars.contains_key(graphene), "{graphene} has no place in an Antelope trap");
    }
    let wif_file = std::path::PathBuf::from(&sim.vars["FAILOVER_WIF_FILE"]);
    let wif = std::fs::read_to_string(&wif_file).expect("the failover key's file");
    assert_eq!(std::fs::metadata(&wif_file).expect("meta").permissions().mode() & 0o777, 0o600);
    let env_file = wif_file.with_file_name("sim.env");
    let written = std::fs::read_to_string(&env_file).expect("sim.env");
    assert_eq!(written.lines().count(), sim.vars.len(), "sim.env holds the printed lines");
    assert!(!written.contains(wif.trim()), "sim.env names the key's file, not the key");
    let settings = witness_trap::config::load(&sim.vars).expect("a valid configuration");
    assert_eq!(settings.identity().producer, "simproducer");

    // The whole pre-arming check against the running sim, as an operator runs it.
    let env_arg = env_file.display().to_string();
    let check = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_witness-trap"))
            .env_clear()
            .args(["--env-file", &env_arg, "check"])
            .output()
            .expect("check runs")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{stdout}{}", String::from_utf8_lossy(&check.stderr));
    assert!(stdout.contains("ok: simproducer on eos"), "{stdout}");
    assert!(!stdout.contains(wif.trim()), "no key in check's output");

    let s = status(&sim).await;
    assert_eq!((s["network"].as_str(), s["producer"].as_str()), (Some("eos"), Some("simproducer")));
    assert_eq!(s["producer_key"], s["primary_key"]);
    assert_eq!(s["backup_key"].as_str(), Some(sim.vars[v::BACKUP_SIGNING_KEY].as_str()));
    assert_eq!(s["primary_up"], true);
    post(&sim, "/primary/down").await;
    assert_eq!(status(&sim).await["primary_up"], false);
    post(&sim, "/primary/up").await;
    assert_eq!(status(&sim).await["primary_up"], true);

    let pid = sim.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let exit = sim.child.wait().expect("exits");
    assert!(exit.success(), "{exit:?}");
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut sim.stderr, &mut err);
    assert!(err.contains("producer simproducer"), "{err}");
    assert!(!err.contains(wif.trim()), "no key on stderr");
}

#[test]
fn an_antelope_sim_refuses_a_hive_style_account_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_witness-trap"))
        .env_clear()
        .args(["sim", "--chain", "eos", "--witness", "sim-witness", "--port", "0", "--dir"])
        .arg(dir.path().join("sim"))
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sim-witness") && err.contains("Antelope"), "{err}");
    assert!(!dir.path().join("sim").exists(), "nothing written");
}
