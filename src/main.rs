//! Minimal dispatcher from the `protocol` branch: only the offline tools (`key`, `tx`). The full CLI is
//! owned elsewhere; this exists so `tests/offline_cli.rs` can run the binary.

use std::io;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use witness_trap::cli::offline::{run_key, run_tx, KeyCommand, TxCommand};

#[derive(Parser)]
#[command(name = "witness-trap", version, about = "Failover watchdog for Hive and Steem witnesses")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Key tools (offline).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Transaction tools (offline).
    #[command(subcommand)]
    Tx(TxCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut stdin = io::stdin().lock();
    let mut stdout = io::stdout().lock();
    let result = match &cli.command {
        Command::Key(cmd) => run_key(cmd, &mut stdin, &mut stdout),
        Command::Tx(cmd) => run_tx(cmd, &mut stdin, &mut stdout),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
