//! The `witness-trap` binary: parse the command line, run it, map the outcome to an exit status.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = witness_trap::cli::Cli::parse();
    witness_trap::cli::run(cli).into()
}
