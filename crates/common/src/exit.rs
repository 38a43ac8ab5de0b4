//! Every exit code the binary uses, each said once (README, "Exit codes"). Precedence when
//! several apply to one run: `Interrupted`, then `FaultError`, then `Failed`, then
//! `NotChecked`, then `Error`.

use std::process::ExitCode;

/// How a run of `patroni-lab` ended, as its exit code says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Everything ran and every grade or limit held.
    Pass = 0,
    /// Something went wrong that is not the input: the lab not ready, a report not written.
    Error = 1,
    /// Bad input, found before anything slow (clap uses 2 as well).
    BadInput = 2,
    /// The run completed but an expectation (scenario, matrix, soak) or a limit (probe) failed.
    Failed = 3,
    /// The probe's run completed but its lost writes could not be checked (the doctor: nothing
    /// wrong found, but some part could not be read).
    NotChecked = 4,
    /// A fault step failed or its effect was not proven: the run measured no fault.
    FaultError = 5,
    /// A signal (Ctrl-C, SIGTERM) cut the run short: not graded, nothing saved as a result.
    Interrupted = 6,
    /// The doctor: the cluster serves clients, but something makes the next failure cost more.
    Degraded = 7,
    /// The doctor: clients are not served, or a member needs a repair.
    Broken = 8,
}

impl Exit {
    /// The number the process exits with.
    pub const fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// A second signal aborted the run before its report (128 + SIGINT, as a shell says it).
pub const ABORTED: i32 = 130;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_are_the_documented_numbers() {
        let all = [
            (Exit::Pass, 0),
            (Exit::Error, 1),
            (Exit::BadInput, 2),
            (Exit::Failed, 3),
            (Exit::NotChecked, 4),
            (Exit::FaultError, 5),
            (Exit::Interrupted, 6),
            (Exit::Degraded, 7),
            (Exit::Broken, 8),
        ];
        for (e, n) in all {
            assert_eq!(e.code(), n, "{e:?}");
        }
    }
}
