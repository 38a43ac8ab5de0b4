//! `patroni-lab`: the thin command-line edge over the library crates.
//!
//! The subcommands and the one-line answer to a command line clap cannot read live here; each
//! subcommand's flags (defined once, with their doc and default, beside the settings they set)
//! and its edge (checks before anything slow, reports, exit code) live in its library's
//! `command` module: `probe` in the probe crate, `callback` in the callback crate, `profile` in the
//! cluster crate, `doctor` and `scenario` in theirs, `matrix`, `soak` and `bench` in the
//! campaign crate. Exit codes: `patroni_lab_common::exit`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use patroni_lab_common::exit::Exit;

use patroni_lab_callback::command as callback;
use patroni_lab_campaign::command::{bench, matrix, soak};
use patroni_lab_cluster::command as profile;
use patroni_lab_doctor::command as doctor;
use patroni_lab_probe::command as probe;
use patroni_lab_scenario::command as scenario;

#[derive(Parser)]
#[command(name = "patroni-lab", version, about = "PostgreSQL HA lab tooling")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Patroni callback: point PgBouncer's [databases] at this node when it is the leader.
    ///
    /// Patroni appends <action> <role> <scope>; configure e.g.
    /// `on_role_change: /usr/local/bin/patroni-lab callback`.
    Callback {
        /// <action> <role> <scope>, as Patroni passes them.
        #[arg(num_args = 0.., allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// PgBouncer's entrypoint: the userlist with the server's SCRAM secret, and the shared
    /// pgbouncer.ini from the image's template, keeping the leader the callback wrote.
    #[command(hide = true)]
    PgbouncerStart,
    /// Keep writing through an endpoint and report what clients saw: windows, errors, lost writes.
    Probe(Box<probe::ProbeArgs>),
    /// Fault scenarios with the probe running through them, graded (`scenario list`).
    #[command(subcommand)]
    Scenario(scenario::ScenarioCommand),
    /// Every scenario under every profile: one table (Markdown, JSON, HTML), resumable.
    Matrix(Box<matrix::MatrixArgs>),
    /// Many faults picked at random (seeded) through one probe run: nothing lost, nothing left.
    Soak(Box<soak::SoakArgs>),
    /// Read the live cluster and name every known bad state, with evidence and repair.
    Doctor(doctor::DoctorArgs),
    /// Named settings profiles (`profiles/*.ini`): what each changes.
    #[command(subcommand)]
    Profile(profile::ProfileCommand),
    /// The benchmarks' tables from what `scripts/bench-*.sh` measured (medians, ratios).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// A command line clap cannot read, as one line (clap's own text joined), exit 2. Help and the
/// version print as clap prints them.
fn parse_or_one_line() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|e| {
        if !e.use_stderr() {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            let _ = e.print();
            return ExitCode::from(Exit::BadInput);
        }
        let text = e.render().to_string();
        let said: Vec<&str> = text
            .lines()
            .map(str::trim)
            .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
            .filter(|l| !l.is_empty())
            .map(|l| l.strip_prefix("error: ").unwrap_or(l))
            .collect();
        eprintln!("patroni-lab: error: {} (see --help)", said.join(" "));
        ExitCode::from(Exit::BadInput)
    })
}

fn main() -> ExitCode {
    let cli = match parse_or_one_line() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match cli.command {
        Command::Callback { args } => callback::run(&args),
        Command::PgbouncerStart => callback::pgbouncer_start(),
        Command::Probe(args) => probe::run(*args),
        Command::Scenario(cmd) => scenario::run(cmd),
        Command::Profile(cmd) => profile::run(cmd),
        Command::Matrix(args) => matrix::run(*args),
        Command::Soak(args) => soak::run(*args),
        Command::Doctor(args) => doctor::run(args),
        Command::Bench(cmd) => bench::run(cmd),
    }
}
