//! witness-trap: an off-host failover watchdog for Hive and Steem witnesses.

pub mod clock;

pub mod protocol;

pub mod cli;

pub mod sim;
