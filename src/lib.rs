//! witness-trap: an off-host failover watchdog for block producers (Hive and Steem witnesses, Antelope
//! producers, Solana-family validators).
//!
//! # Layout
//! The flow of `witness-trap run`, module by module:
//! `cli` (parse, then build the runtime) → `config` (variables → typed settings) → `service::run` (the
//! arm/resume policy; `config::check` against the chain before arming) → `trap` loop over the `chain`
//! boundary: `Producer::observe` → `trap::decide` → `Producer::corroborate` → the swap (`prepare`, stored,
//! `fence`, `execute`, `status`) → every transition stored through a `store::StateStore` → `alert::Fanout`
//! → a typed outcome, which `cli::exit` maps to the exit status.
//!
//! | module | job |
//! | --- | --- |
//! | [`cli`] | subcommands, printing, and the one table from outcomes to exit statuses |
//! | [`service`] | the product's commands on typed settings: `run`, `check`, `status`, `dry_run`, `rearm`, `switch`, `test_alert`, `health`; `service/replica.rs` (`--features etcd`): `run` as one replica of several (`COORDINATION=etcd`) |
//! | [`config`] | variables, `.env`, `*_FILE` secrets, the report of every problem, the pre-arming check; [`config::VarMap`] for code that builds variables |
//! | [`chain`] | the chain boundary ([`chain::Producer`], chain time) and one module per chain family |
//! | [`chain::graphene`] | Hive and Steem: its RPC client (`rpc/`), slot-aware watching, the key swap |
//! | [`chain::solana`] | Solana-family validators: the cluster JSON-RPC client (`rpc`), one look decided (`look`: voting, down, disagreeing, unstaked, broke, blind), the streak and pre-arming checks (`producer`), the failover through the agents (`promotion`: demote, move the tower or wait `TOWER_SAFE_SLOTS`, promote, confirm by votes) |
//! | [`chain::antelope`] | EOS, WAX, Telos, Jungle: the nodeos client (`rpc`, `api`), slot-exact miss counting from headers (`follow`, `watch`), the `regproducer` swap and its two-step confirmation (`swap`), the pre-arming checks (`preflight`) |
//! | [`trap`] | the state machine armed → firing → fired (→ armed on the next backup, with ordered backups; `switched` after a planned switch): `decide`, `step`, `run`, the state's layout and its migration |
//! | [`alert`] | the [`alert::Notifier`] trait, the fan-out, the events, the alert text, one module per channel (Twilio, Telegram, Slack, Discord, PagerDuty, webhook, e-mail) with their shared HTTP retry policy, and the heartbeat |
//! | [`agent`] | `witness-trap agent`: the node agent beside a producer's node, signed requests (scheme in its doc), nodeos's `producer_api` backend, a Solana validator's admin-socket backend (`solana_admin`: identity, demote, promote), and the client the trap uses |
//! | [`metrics`] | the Prometheus families and the `/metrics` endpoint (`METRICS_ADDR`) |
//! | [`store`] | the [`store::StateStore`] trait (load with revision, compare-and-swap, per-instance facts): file and memory stores; `store::handoff`, how a planned switch asks a running trap to step aside; `store::etcd` (`--features etcd`), the replicas' store behind the fenced commit |
//! | [`logging`] | tracing, human or JSON |
//! | [`redact`] | URLs without their credentials |
//! | [`demo`] | `witness-trap demo`: the simulated incident, narrated (Hive and Steem) |
//! | [`demo_antelope`] | `witness-trap demo --chain eos` (wax, telos, jungle): the Antelope incident, narrated |
//! | [`demo_solana`] | `witness-trap demo --chain solana`: a validator that stops voting, its staked identity moved to the backup through the agents, narrated; its `stage` (cluster, validators, agents) serves the tests and the bench too |
//! | [`demo_pause_resume`] | `witness-trap demo --chain eos --swap producer-api`: the same-key pause/resume failover through node agents, narrated |
//! | [`rehearsal`] | `witness-trap sim`: the simulated chain standing alone in real time, with a control server, to rehearse a trap or the container against |
//!
//! Workspace crates that must not import the service (the compiler keeps that rule): `graphene-protocol`
//! (byte-exact Hive/Steem keys, serialization, digests, signatures, condenser JSON; no I/O),
//! `antelope-protocol` (the same for Antelope: names, K1 keys, the `eosio` failover actions, transactions,
//! fc-canonical signatures, nodeos JSON), `graphene-sim` and `antelope-sim` (a simulated Hive/Steem node
//! with a fake Twilio, and a simulated nodeos, on 127.0.0.1 for the demo, the tests and the benchmark; they
//! never import the trap or its RPC clients), `solana-sim` (a simulated Solana cluster: JSON-RPC endpoints,
//! validators voting every slot, Agave-shaped admin sockets, a checker for two staked validators), `chain-clock` (system and time-compressed clocks) and
//! `coordination` (etcd v3 through `etcd-client`: a replica's lease, the trap's lock, the fenced commit of
//! its state; optional, behind the `etcd` feature, because etcd's client needs protoc to build).
//!
//! # Where new things go
//! A **fourth chain family** (after Hive/Steem, Antelope and Solana) is a module `chain/<family>/` with its
//! RPC client, implementing [`chain::Producer`] with its own `Baseline`; its bytes are a workspace crate
//! `crates/<family>-protocol` (Solana needs none: the trap signs nothing there), its simulator `crates/<family>-sim`; `config` gains a
//! [`config::ChainSettings`] variant and `chain::ChainKind` names its variables. An **eighth alert
//! channel** is a file `alert/<channel>.rs` implementing [`alert::Notifier`], registered in
//! `service::fanout` from an [`config::AlertSettings`] field (its variables in `config/alerts.rs`; an HTTP
//! channel reuses `alert::http`, and `alert/sink_tests.rs` runs every HTTP channel through one table). A **third state store** is a file
//! `store/<store>.rs` implementing [`store::StateStore`] (see `store/memory.rs` for the smallest one, and
//! `store/etcd.rs` for one whose writes can be refused: such errors must stop the trap, never be guarded
//! from memory as a full disk is), chosen in `service::run`.

pub mod agent;
pub mod alert;
pub mod chain;
pub mod cli;
pub mod config;
pub mod demo;
pub mod demo_antelope;
pub mod demo_pause_resume;
pub mod demo_solana;
pub mod logging;
pub mod metrics;
pub mod redact;
pub mod rehearsal;
pub mod service;
pub mod store;
pub mod trap;
