//! Talking to Hive/Steem JSON-RPC nodes (protocol.md §5).
//!
//! [`client`] is one endpoint: a bounded-time POST and a typed [`RpcError`]. [`api`] gives the handful of
//! calls the trap makes, typed and strict: a field missing or of the wrong type makes the answer garbage,
//! never a default. [`reading`] turns one poll across all endpoints into fresh, well-formed readings and
//! says why every other endpoint was skipped.

pub mod api;
pub mod client;
pub mod reading;

pub use client::{Endpoint, RpcError};
