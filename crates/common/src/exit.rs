//! Every exit code the binary uses, each said once (README, "Exit codes"). Precedence when
//! several apply to one run: INTERRUPTED, then FAULT_ERROR, then FAILED, then NOT_CHECKED, then
//! ERROR.

/// Everything ran and every grade or limit held.
pub const PASS: u8 = 0;
/// Something went wrong that is not the input: the lab not ready, a report not written.
pub const ERROR: u8 = 1;
/// Bad input, found before anything slow (clap uses 2 as well).
pub const BAD_INPUT: u8 = 2;
/// The run completed but an expectation (scenario, matrix, soak) or a limit (probe) failed.
pub const FAILED: u8 = 3;
/// The probe's run completed but its lost writes could not be checked (the doctor: nothing
/// wrong found, but some part could not be read).
pub const NOT_CHECKED: u8 = 4;
/// A fault step failed or its effect was not proven: the run measured no fault.
pub const FAULT_ERROR: u8 = 5;
/// A signal (Ctrl-C, SIGTERM) cut the run short: not graded, nothing saved as a result.
pub const INTERRUPTED: u8 = 6;
/// The doctor: the cluster serves clients, but something makes the next failure cost more.
pub const DEGRADED: u8 = 7;
/// The doctor: clients are not served, or a member needs a repair.
pub const BROKEN: u8 = 8;
/// A second signal aborted the run before its report.
pub const ABORTED: i32 = 130;
