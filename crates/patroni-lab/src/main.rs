//! `patroni-lab`: the thin command-line edge over the library crates.
//!
//! Argument parsing happens here and nowhere else; each subcommand hands over to a library
//! crate and turns its typed errors into one line on stderr and an exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod callback;
mod probe;
mod scenario;
mod signals;

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
    /// Keep writing through an endpoint and report what clients saw: windows, errors, lost writes.
    Probe(Box<probe::ProbeArgs>),
    /// Fault scenarios with the probe running through them, graded (`scenario list`).
    #[command(subcommand)]
    Scenario(scenario::ScenarioCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Callback { args } => callback::run(&args),
        Command::Probe(args) => probe::run(*args),
        Command::Scenario(cmd) => scenario::run(cmd),
    }
}
