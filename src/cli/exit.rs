//! Exit statuses: one table, here and in the README ("Exit statuses").

use std::process::ExitCode;

use crate::service::{RunOutcome, ServiceError};

/// Every way the program ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Done: the swap is confirmed and the SMS sent; a check passed; stopped by a signal while armed.
    Ok,
    /// An unexpected failure (the state file cannot be written, …); the message says what.
    Failure,
    /// The command line is wrong (clap's own status).
    Usage,
    /// The swap is confirmed on chain but the SMS could not be delivered.
    AlertFailed,
    /// The trap fired but the swap was not confirmed within `FIRE_TIMEOUT_SECS`.
    SwapFailed,
    /// No RPC endpoint gave a fresh reading, so nothing could be checked or armed.
    ChainUnavailable,
    /// `health`: the trap is not armed and polling well.
    Unhealthy,
    /// `switch`: the key changed, but the producer's next turn was missed.
    TurnMissed,
    /// The configuration is invalid; nothing was armed and nothing broadcast.
    Config,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Ok => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Usage => 2,
            ExitStatus::AlertFailed => 3,
            ExitStatus::SwapFailed => 4,
            ExitStatus::ChainUnavailable => 5,
            ExitStatus::Unhealthy => 6,
            ExitStatus::TurnMissed => 7,
            ExitStatus::Config => 78,
        }
    }
}

impl ExitStatus {
    /// The status of a `run`: the one table from outcomes to statuses.
    pub fn of_run(result: &Result<RunOutcome, ServiceError>) -> Self {
        match result {
            Ok(RunOutcome::Stopped) | Ok(RunOutcome::AlreadyFired { .. }) => ExitStatus::Ok,
            Ok(RunOutcome::Fired(f)) => match (f.swapped(), f.alert_ok()) {
                (true, true) => ExitStatus::Ok,
                (true, false) => ExitStatus::AlertFailed,
                (false, _) => ExitStatus::SwapFailed,
            },
            Err(e) => Self::of_error(e),
        }
    }

    /// The status of a `switch`.
    pub fn of_switch(result: &Result<crate::service::SwitchOutcome, ServiceError>) -> Self {
        use crate::service::{NextTurn, SwitchOutcome};
        match result {
            Ok(SwitchOutcome::DryRun(_)) | Ok(SwitchOutcome::Cancelled) => ExitStatus::Ok,
            Ok(SwitchOutcome::Switched { next: NextTurn::Produced { .. }, .. }) => ExitStatus::Ok,
            Ok(SwitchOutcome::Switched { next: NextTurn::Missed { .. }, .. }) => ExitStatus::TurnMissed,
            Ok(SwitchOutcome::Switched { next: NextTurn::Unknown(_), .. }) => ExitStatus::Failure,
            Err(e) => Self::of_error(e),
        }
    }

    /// The status of a command that failed.
    pub fn of_error(e: &ServiceError) -> Self {
        match e {
            ServiceError::Config(_) | ServiceError::Refused(_) => ExitStatus::Config,
            ServiceError::ChainUnavailable(_) => ExitStatus::ChainUnavailable,
            ServiceError::Locked { .. }
            | ServiceError::Failure(_)
            | ServiceError::Busy(_)
            | ServiceError::Coordination(_) => ExitStatus::Failure,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> Self {
        ExitCode::from(s.code())
    }
}
