//! The `matrix` subcommand: its flags, checked before anything slow, handed to the library's
//! matrix engine (`crate::matrix::run`); the table printed, the end turned into
//! an exit code.

use patroni_lab_common::say;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::matrix::Cell;
use crate::matrix::run::{self as engine, Ended, MatrixPlan};
use anyhow::Result;
use clap::Args;
use patroni_lab_cluster::lab::Lab;

use patroni_lab_common::exit::Exit;

#[derive(Args)]
pub struct MatrixArgs {
    /// Profiles, comma-separated: the table's columns (see `patroni-lab profile list`).
    #[arg(long, value_delimiter = ',', required = true)]
    profiles: Vec<String>,
    /// Scenarios, comma-separated: the table's rows (see `patroni-lab scenario list`); a fault
    /// takes its seconds and parameters after colons (freeze-leader:4, partition-leader:etcd).
    /// By default the faults that declare themselves matrix rows (`scenario list` order).
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Runs per cell (1 to 100).
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Seconds of a steady run per profile, no fault (what the profile costs when nothing
    /// fails); 0 for none.
    #[arg(long, default_value_t = 20)]
    steady: u64,
    /// Folder for the cells and the table; a matrix interrupted there resumes from its cells.
    #[arg(long, default_value = "probe-out/matrix")]
    out: PathBuf,
    #[command(flatten)]
    load: patroni_lab_probe::load::LoadArgs,
    /// Clients also read their own newest row on the reader endpoint after each acknowledged
    /// write: every cell gains the reader side (lag-replica reads there in any case).
    #[arg(long)]
    readers: bool,
}

fn check(args: &MatrixArgs) -> Result<MatrixPlan, String> {
    let lab = Lab::from_env();
    let mut probe = patroni_lab_scenario::plan::probe_for(&lab, |p| args.load.apply(p))?;
    probe.reader = args.readers.then(|| lab.reader()).transpose()?;
    let scenarios: Vec<String> = if args.scenarios.is_empty() {
        patroni_lab_faults::faults::matrix_defaults()
            .iter()
            .map(|f| f.name().to_string())
            .collect()
    } else {
        args.scenarios.clone()
    };
    engine::check(
        &args.profiles,
        &scenarios,
        args.runs,
        args.steady,
        args.out.clone(),
        probe,
    )
}

async fn run_matrix(checked: MatrixPlan) -> Result<ExitCode> {
    let lab = Lab::from_env();
    let stop = patroni_lab_cluster::guard::stop_undoing_faults(
        "undoing the fault, stopping the probe; saved cells are kept",
    )?;
    let (m, ended, spent) = engine::run(&lab, &checked, stop, |line| eprintln!("{line}")).await?;
    let md = crate::matrix::markdown(&m);
    say!("{}", md.trim_end_matches('\n'));
    say!(
        "matrix: {}/matrix.{{md,json,html}}; {spent}",
        checked.out.display()
    );
    let complete = m.cells.len() == m.profiles.len() * m.scenarios.len();
    Ok(ExitCode::from(if ended == Ended::Interrupted {
        Exit::Interrupted
    } else if !complete {
        Exit::Error
    } else if m.cells.iter().any(|c| c.fault_error.is_some()) {
        Exit::FaultError
    } else if m.cells.iter().all(Cell::passed) {
        Exit::Pass
    } else {
        Exit::Failed
    }))
}

pub fn run(args: MatrixArgs) -> ExitCode {
    patroni_lab_common::signals::run_checked("matrix", check(&args), run_matrix)
}
