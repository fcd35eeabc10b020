//! The command line: one subcommand per operator task.
//!
//! `main.rs` parses and calls [`run`]; this module dispatches, and every command returns an
//! [`ExitStatus`] ([`exit`] is the one table). Trap commands live in [`commands`] (they call
//! `crate::service`), offline key and transaction tools in [`offline`], the demos in `crate::demo` (Hive, Steem) and
//! `crate::demo_antelope` (EOS, WAX, Telos, Jungle).

pub mod antelope_tools;
pub mod commands;
pub mod exit;
pub mod offline;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use exit::ExitStatus;

/// Off-host failover trap for Hive and Steem witnesses: when the witness misses blocks, swap its block
/// signing key to a backup node, confirm it on chain, alert every configured channel, and disarm.
#[derive(Debug, Parser)]
#[command(name = "witness-trap", version, about, long_about = None)]
pub struct Cli {
    /// Read variables from this file instead of ./.env (real environment variables win).
    #[arg(long, global = true, value_name = "PATH")]
    pub env_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check everything, arm (or resume) the trap and watch until it fires.
    Run {
        /// When the state file says the trap already fired, exit at once instead of staying up idle.
        #[arg(long)]
        exit_when_disarmed: bool,
    },
    /// The whole pre-arming check against the chain, plus endpoint health; arms nothing.
    Check,
    /// Witness, chain, current key, total_missed, threshold, trap state and last poll.
    Status,
    /// Build and sign the key swap from live chain data and print it, without broadcasting.
    Fire {
        /// Required: this command never broadcasts (the trap fires by itself).
        #[arg(long)]
        dry_run: bool,
    },
    /// Reset the state to armed with the current total_missed as baseline (after a fire, by hand).
    Rearm,
    /// A planned key change (upgrade, maintenance), timed so that no block is missed; the trap must be stopped.
    Switch {
        /// The key to move to: a public key (STM…), `backup` (BACKUP_SIGNING_KEY) or `primary` (SIGNING_WIF's key).
        #[arg(long)]
        to: String,
        /// `safe`: right after the witness's own slot, with time before its next one; `now`: at once.
        #[arg(long, value_enum, default_value_t = WhenArg::Safe)]
        when: WhenArg,
        /// Sign and print the transaction as JSON; never broadcast.
        #[arg(long)]
        dry_run: bool,
        /// Re-arm the trap afterwards guarding the new key, with the old one as its backup (the upgrade
        /// dance). Needs a key that can swap back: BACKUP_SIGNING_WIF (the new key's WIF) or ACTIVE_WIF.
        #[arg(long)]
        swap_roles: bool,
    },
    /// Send one test alert through every configured channel; one line per channel.
    TestAlert,
    /// Exit 0 if the trap is armed and its last poll is recent and healthy (for docker's HEALTHCHECK).
    Health,
    /// A simulated chain, a failing witness and the real trap, narrated in the terminal. No network needed.
    Demo {
        /// hive or steem; an Antelope chain: eos, wax, telos or jungle; or solana (a validator's identity
        /// moved through node agents).
        #[arg(long, default_value = "hive")]
        chain: String,
        /// How many times faster than real time the simulated chain runs [default: 6 for hive and steem,
        /// 20 for Antelope chains, whose schedule takes minutes of chain time to carry a new key, and for solana].
        #[arg(long)]
        speed: Option<f64>,
        /// Antelope chains: the failover to show, `regproducer` (the schedule carries the backup key) or
        /// `producer-api` (two same-key nodes, paused and resumed through node agents).
        #[arg(long, value_enum, default_value = "regproducer")]
        swap: DemoSwap,
    },
    /// A simulated chain on 127.0.0.1 in real time, to rehearse a trap (or the container) against before
    /// mainnet: prints the .env lines that arm a trap against it and a control URL (primary down/up).
    Sim {
        /// hive or steem; or an Antelope chain: eos, wax, telos or jungle.
        #[arg(long, default_value = "hive")]
        chain: String,
        /// How many RPC endpoints (at least 2).
        #[arg(long, default_value_t = 2)]
        endpoints: usize,
        /// First port: the endpoints, then the fake Twilio, then the control server; 0 for any free ports.
        #[arg(long, default_value_t = 18090)]
        port: u16,
        /// Where the throwaway keys and sim.env are written (created, mode 0700).
        #[arg(long, default_value = "./witness-trap-sim")]
        dir: std::path::PathBuf,
        /// The simulated witness's (or Antelope producer's) account name [default: sim-witness, or
        /// simproducer on an Antelope chain].
        #[arg(long)]
        witness: Option<String>,
    },
    /// The node agent, on a producer's host: serve signed pause/resume/paused requests from the trap
    /// (AGENT_LISTEN, AGENT_TRUSTED_KEYS, AGENT_NODE_NAME, AGENT_ACTION; see the README's "Node agent").
    Agent,
    /// Offline key tools (JSON on stdin/stdout).
    Key {
        #[command(subcommand)]
        command: offline::KeyCommand,
    },
    /// Offline transaction tools (JSON on stdin/stdout).
    Tx {
        #[command(subcommand)]
        command: offline::TxCommand,
    },
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> ExitStatus {
    match cli.command {
        Command::Key { command } => {
            offline_result(offline::run_key(&command, &mut std::io::stdin().lock(), &mut std::io::stdout().lock()))
        }
        Command::Tx { command } => {
            offline_result(offline::run_tx(&command, &mut std::io::stdin().lock(), &mut std::io::stdout().lock()))
        }
        Command::Demo { chain, speed, swap } => demo(&chain, speed, swap),
        Command::Sim { chain, endpoints, port, dir, witness } => sim(&chain, endpoints, port, dir, witness),
        other => commands::run_command(other, cli.env_file.as_deref()),
    }
}

fn offline_result(r: Result<(), offline::OfflineError>) -> ExitStatus {
    match r {
        Ok(()) => ExitStatus::Ok,
        Err(e) => {
            eprintln!("witness-trap: {e}");
            ExitStatus::Failure
        }
    }
}

/// `--chain` of `demo` and `sim`: Hive/Steem, or an Antelope network's name.
enum DemoChain {
    Graphene(graphene_protocol::chain::ChainSpec),
    Antelope(String),
    Solana,
}

fn chain_spec(chain: &str, command: &str) -> Option<DemoChain> {
    match chain {
        "hive" => Some(DemoChain::Graphene(graphene_protocol::chain::ChainSpec::hive())),
        "steem" => Some(DemoChain::Graphene(graphene_protocol::chain::ChainSpec::steem())),
        a if crate::demo_antelope::NETWORKS.contains(&a) => Some(DemoChain::Antelope(a.to_string())),
        "solana" if command == "demo" => Some(DemoChain::Solana),
        other => {
            let solana = if command == "demo" { ", jungle or solana" } else { " or jungle" };
            eprintln!("witness-trap: --chain {other:?}: the {command} runs on hive, steem, eos, wax, telos{solana}");
            None
        }
    }
}

fn sim(chain: &str, endpoints: usize, port: u16, dir: std::path::PathBuf, witness: Option<String>) -> ExitStatus {
    let (chain, default_name) = match chain_spec(chain, "simulated chain") {
        Some(DemoChain::Graphene(spec)) => (crate::rehearsal::SimChain::Graphene(spec), "sim-witness"),
        Some(DemoChain::Antelope(network)) => (crate::rehearsal::SimChain::Antelope(network), "simproducer"),
        Some(DemoChain::Solana) | None => return ExitStatus::Usage,
    };
    let witness = witness.unwrap_or_else(|| default_name.to_string());
    let opts = crate::rehearsal::SimOptions { chain, endpoints, port, dir, witness };
    commands::with_runtime(|rt| match rt.block_on(crate::rehearsal::run(opts, &mut std::io::stdout())) {
        Ok(()) => ExitStatus::Ok,
        Err(e) => {
            eprintln!("witness-trap: {e}");
            ExitStatus::Failure
        }
    })
}

/// `demo --swap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoSwap {
    Regproducer,
    ProducerApi,
}

fn demo(chain: &str, speed: Option<f64>, swap: DemoSwap) -> ExitStatus {
    let Some(chain) = chain_spec(chain, "demo") else { return ExitStatus::Usage };
    if swap == DemoSwap::ProducerApi && matches!(chain, DemoChain::Graphene(_) | DemoChain::Solana) {
        eprintln!(
            "witness-trap: --swap producer-api is an Antelope failover: use it with --chain eos, wax, telos or jungle"
        );
        return ExitStatus::Usage;
    }
    let default_speed = match chain {
        DemoChain::Graphene(_) => crate::demo::DemoOptions::default().speedup,
        DemoChain::Antelope(_) => crate::demo_antelope::DEFAULT_SPEEDUP,
        DemoChain::Solana => crate::demo_solana::DEFAULT_SPEEDUP,
    };
    let speed = speed.unwrap_or(default_speed);
    if !(1.0..=100.0).contains(&speed) {
        eprintln!("witness-trap: --speed must be between 1 and 100");
        return ExitStatus::Usage;
    }
    let run = |rt: &tokio::runtime::Runtime| match chain {
        DemoChain::Graphene(chain) => {
            crate::demo::init_logging();
            let opts = crate::demo::DemoOptions { chain, speedup: speed, ..Default::default() };
            rt.block_on(crate::demo::run(opts, &mut std::io::stdout()))
        }
        DemoChain::Solana => {
            crate::demo_solana::init_logging();
            rt.block_on(crate::demo_solana::run(speed, &mut std::io::stdout()))
        }
        DemoChain::Antelope(network) if swap == DemoSwap::ProducerApi => {
            crate::demo_pause_resume::init_logging();
            let opts = crate::demo_antelope::AntelopeDemoOptions { network, speedup: speed, ..Default::default() };
            rt.block_on(crate::demo_pause_resume::run(opts, &mut std::io::stdout()))
        }
        DemoChain::Antelope(network) => {
            crate::demo_antelope::init_logging();
            let opts = crate::demo_antelope::AntelopeDemoOptions { network, speedup: speed, ..Default::default() };
            rt.block_on(crate::demo_antelope::run(opts, &mut std::io::stdout()))
        }
    };
    commands::with_runtime(|rt| match run(rt) {
        Ok(result) => {
            if let Err(e) = &result {
                return commands::report_error(e);
            }
            ExitStatus::of_run(&result)
        }
        Err(e) => {
            eprintln!("witness-trap: {e}");
            ExitStatus::Failure
        }
    })
}

/// `switch --when`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WhenArg {
    Safe,
    Now,
}
