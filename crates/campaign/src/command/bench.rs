//! The `bench` subcommand: the tables of `scripts/bench-*.sh`. The scripts run the programs
//! (scenario runs, pgbench, the probe) and hand their figures here; the arithmetic (medians,
//! p95, ratios, CPU per transaction) is `crate::bench`'s.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use patroni_lab_common::exit::Exit;
use patroni_lab_common::say;

use crate::bench;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// The paused switchover against the plain one, from the scenario reports
    /// DIR/bench-{switchover,switchover-paused}-{per-tx,persistent}.json.
    PausedSwitchover {
        /// Runs per cell (as the reports were made).
        #[arg(long)]
        runs: u32,
        /// Folder holding the four reports.
        #[arg(long, default_value = "probe-out")]
        dir: PathBuf,
    },
    /// What one client login costs PgBouncer: per round and medians.
    LoginCost {
        #[arg(long)]
        clients: u32,
        #[arg(long)]
        seconds: f64,
        /// PgBouncer's clock ticks per second (getconf CLK_TCK in its container).
        #[arg(long)]
        hz: f64,
        #[arg(long)]
        leader_port: u16,
        /// Each round: "N|order|secret_tps secret_ticks|plain_tps plain_ticks|direct_tps
        /// direct_ticks".
        #[arg(required = true)]
        rounds: Vec<String>,
    },
    /// Is the probe ever the bottleneck: pgbench -C against the probe, per round and medians.
    ProbeVsPgbench {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        clients: u32,
        #[arg(long)]
        seconds: f64,
        /// Each round: "N|order|pgbench_tps user_s sys_s|probe_tps user_s sys_s".
        #[arg(required = true)]
        rounds: Vec<String>,
    },
    /// The current headline figures: the latest dated measurement of each event under each
    /// profile (`## Headline figures` in docs/measurements/*.md), as the docs include them.
    Figures {
        /// The folder of dated measurement files.
        #[arg(long, default_value = "docs/measurements")]
        dir: PathBuf,
    },
}

pub fn run(cmd: BenchCommand) -> ExitCode {
    let table = match &cmd {
        BenchCommand::PausedSwitchover { runs, dir } => bench::paused_switchover(dir, *runs),
        BenchCommand::LoginCost {
            clients,
            seconds,
            hz,
            leader_port,
            rounds,
        } => bench::login_cost(*clients, *seconds, *hz, *leader_port, rounds),
        BenchCommand::ProbeVsPgbench {
            port,
            clients,
            seconds,
            rounds,
        } => bench::probe_vs_pgbench(*port, *clients, *seconds, rounds),
        BenchCommand::Figures { dir } => crate::figures::read_dir(dir)
            .and_then(|files| crate::figures::current(&files))
            .map(|now| crate::figures::markdown(&now, &dir.display().to_string()))
            .map_err(bench::BenchInput),
    };
    match table {
        Ok(t) => {
            say!("{}", t.trim_end_matches('\n'));
            ExitCode::from(Exit::Pass)
        }
        Err(e) => {
            eprintln!("patroni-lab bench: {e}");
            ExitCode::from(Exit::BadInput)
        }
    }
}
