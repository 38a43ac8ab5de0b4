//! The client-load flags that `probe` and `scenario run` share (clients, mode, rate, read
//! ratio): defined once here, with their defaults from the probe's settings, and applied to the
//! probe's settings once.

use crate::settings::{Mode, Settings, defaults};
use clap::{Args, ValueEnum};

#[derive(Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// A new connection for every transaction (like pgbench -C).
    PerTx,
    /// One connection per client, reopened when it fails.
    Persistent,
}

#[derive(Args)]
pub struct LoadArgs {
    /// Concurrent clients (1 to 10000).
    #[arg(short, long, default_value_t = i64::from(defaults::CLIENTS), allow_negative_numbers = true)]
    clients: i64,
    #[arg(long, value_enum, default_value = defaults::MODE)]
    mode: ModeArg,
    /// Target transactions per second over all clients (default: flat out).
    #[arg(long, allow_negative_numbers = true)]
    rate: Option<f64>,
    /// Share of transactions that are reads, 0 to 1.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    read_ratio: f64,
}

impl LoadArgs {
    /// Puts the load into `s`; a client count that does not fit is bad input (the other ranges
    /// are checked by `Settings::check`).
    pub fn apply(&self, s: &mut Settings) -> Result<(), String> {
        let (_, _, clients_range) = crate::settings::CLIENTS;
        s.clients = u32::try_from(self.clients).map_err(|_| {
            format!(
                "--clients {} is out of range: allowed {clients_range}",
                self.clients
            )
        })?;
        s.mode = match self.mode {
            ModeArg::PerTx => Mode::PerTransaction,
            ModeArg::Persistent => Mode::Persistent,
        };
        s.rate = self.rate;
        s.read_ratio = self.read_ratio;
        Ok(())
    }
}
