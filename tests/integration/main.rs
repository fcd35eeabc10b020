//! Integration tests: one binary, one module per area (ripgrep's layout).

/// The binary's commands as an operator runs them; no secret in any output.
mod cli;
/// Configuration problems: every bad variable is named, nothing is armed or broadcast.
mod config;
/// End to end against the simulated chain: both operations and chains, restarts, faults, alerts, slots.
mod e2e;
/// State files of the previous release (version 1) load, migrate and behave as before.
mod legacy;
/// Scripted RPC node, Twilio mock, keys, settings, log capture.
mod support;
/// The trap end to end through `cli::trap::run` against the scripted node: fire once, restarts, faults, alerts.
mod trap;
