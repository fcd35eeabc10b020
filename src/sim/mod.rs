//! The simulated Hive/Steem node.

pub mod chain;
pub mod proto;
