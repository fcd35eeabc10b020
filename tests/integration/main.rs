//! Integration tests: one binary, one module per area (ripgrep's layout).

/// The node agent on loopback: signed pause/resume/paused to a fake nodeos (TCP, Unix socket), every refusal, TLS, the binary, `key new --kind agent`.
mod agent;
/// Antelope producers end to end on the simulated nodeos: the swap, the schedule, hostile endpoints.
mod antelope;
/// Antelope configuration and pre-arming checks: every variable named, nothing armed.
mod antelope_config;
/// `switch` on Antelope: regproducer after the producer's turn, the schedule carrying the key, a trap stepping aside.
mod antelope_switch;
/// Every alert channel end to end: variables, test-alert, a fire and a blind episode, rearm, heartbeat.
mod channels;
/// The binary's commands as an operator runs them; no secret in any output.
mod cli;
/// Configuration problems: every bad variable is named, nothing is armed or broadcast.
mod config;
/// `COORDINATION=etcd` (with `--features etcd`): three replicas against a real etcd and the simulated chain; one fires.
#[cfg(feature = "etcd")]
mod coordinated;
/// `COORDINATION=etcd` on EOS: three replicas, the holder killed as it commits; one `regproducer`.
#[cfg(feature = "etcd")]
mod coordinated_antelope;
/// `COORDINATION=etcd` with `BACKUP_SIGNING_KEYS`: the group moves down the list across a holder's death.
#[cfg(feature = "etcd")]
mod coordinated_backups;
/// `witness-trap demo --chain eos`: the Antelope incident narrated to the end.
mod demo;
/// End to end against the simulated chain: both operations and chains, restarts, faults, alerts, slots.
mod e2e;
/// A real full filesystem (a tmpfs the test fills) under the real binary: it still fires and alerts; a restart is refused.
mod full_disk;
/// One endpoint of two lies, lags or forks: no fire on it, no veto by it, only agreed data on chain, confirmed in a block.
mod hostile_chain;
/// Hostile configuration: an unusable state directory or log setting exits 78 naming it; one trap per file.
mod hostile_config;
/// Hostile RPC endpoints against the reader: oversize and nested answers, values out of range, a head far ahead once, a chain id that changes.
mod hostile_rpc;
/// State files of the previous release (version 1) load, migrate and behave as before.
mod legacy;
/// `METRICS_ADDR`: /metrics scraped and parsed while armed, firing and disarmed; a busy port refused.
mod metrics;
/// Ordered backups: a fire moves down BACKUP_SIGNING_KEYS, never back, across a restart; the null key at the end.
mod ordered_backups;
/// `SWAP=producer-api`: pause/resume through the real node agents on same-key simulated nodes, never two producing.
mod pause_resume;
/// `COORDINATION=etcd` with three processes of the real binary: the holder SIGKILLed as it commits the fire, SIGSTOPped past its TTL.
#[cfg(feature = "etcd")]
mod replica_processes;
/// `witness-trap sim`: its printed configuration, key files, controls, and the real trap firing against it.
mod sim_cmd;
/// Solana validators: the simulated cluster, the solana-admin agents, the trap; detection, every "not when", promotions under failures, never two staked.
mod solana;
/// Scripted RPC node, Twilio mock, keys, settings, log capture.
mod support;
/// `switch`: a planned key change between two turns, with no missed block; dry run; refusals; the lock.
mod switch;
/// The trap end to end through `service::run` against the scripted node: fire once, restarts, faults, alerts.
mod trap;
