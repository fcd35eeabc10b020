//! witness-trap: an off-host failover watchdog for Hive and Steem witnesses.
//!
//! # Layout
//! The flow of `witness-trap run`, module by module:
//! `cli` → `config` (variables → typed settings; `config::check` against the chain) → `trap` loop:
//! `producer` observation (Hive/Steem: `rpc` reads, freshness, corroboration) → `trap::decide` →
//! `producer` swap (`protocol` build/sign/verify, `rpc` broadcast) → `persist` at each step → `alert` → exit status.
//! `clock` gives chain time to the trap and to `sim`, the simulated node used by the demo and the tests.
//!
//! | module | job |
//! | --- | --- |
//! | [`protocol`] | byte-exact Hive/Steem keys, serialization, digests, signatures, condenser JSON; no I/O |
//! | [`rpc`] | JSON-RPC endpoints, typed calls, one honest poll across endpoints |
//! | [`producer`] | the chain boundary the trap sees (`Producer`), and its Hive/Steem implementation |
//! | [`trap`] | the state machine: armed → firing → fired, persisted; `decide`, `step`, `run` |
//! | [`alert`] | the SMS text and Twilio |
//! | [`config`] | variables, `.env`, `*_FILE` secrets, the report of every problem |
//! | [`persist`] | atomic durable writes |
//! | [`logging`] | tracing, human or JSON |
//! | [`cli`] | subcommands and exit statuses |
//! | [`sim`] | a simulated Hive/Steem node and Twilio on 127.0.0.1, for the demo, the tests and the benchmark |
//! | [`demo`] | `witness-trap demo`: the simulated incident, narrated |

pub mod alert;
pub mod chain;
pub mod cli;
pub mod config;
pub mod demo;
pub mod logging;
pub mod redact;
pub mod service;
pub mod store;
pub mod trap;
