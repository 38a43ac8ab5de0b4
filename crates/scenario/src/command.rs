//! The `scenario` subcommand: `list` shows the fault vocabulary; `run` validates its flags,
//! runs the scenario N times through the library runner, prints the timeline and grades, writes
//! the reports, and turns the grades into the exit code. SIGINT/SIGTERM end the run early (the
//! fault is undone, the report still written); a second one undoes every armed fault and exits.

use patroni_lab_common::say;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::plan::{self, Progress};
use crate::report;
use crate::runner::Jitter;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use patroni_lab_cluster::cluster::{self, Live};
use patroni_lab_cluster::lab::{ConfigReader, Lab};
use patroni_lab_cluster::lease;
use patroni_lab_faults::faults::{self, Fault};
use patroni_lab_faults::grade::Overrides;
use patroni_lab_probe::settings::{Settings, parse_duration};

#[derive(Subcommand)]
pub enum ScenarioCommand {
    /// Every scenario, with what it does and what it expects.
    List {
        /// As the Markdown table SCENARIOS.md holds (generated from the registry).
        #[arg(long)]
        markdown: bool,
    },
    /// Run a scenario with the probe going through it, and grade what clients saw.
    Run(Box<RunArgs>),
    /// The paused switchover's dead man's switch (started by the runner, not by hand).
    #[command(hide = true)]
    ResumeAfter {
        #[arg(long)]
        secs: u64,
        #[arg(long)]
        flag: PathBuf,
        #[arg(long)]
        host: String,
        #[arg(long)]
        port: u16,
        #[arg(long)]
        user: String,
    },
}

#[derive(Args)]
pub struct RunArgs {
    /// The scenario (see `patroni-lab scenario list`).
    name: String,
    /// How long a fault that lasts is held, in seconds (1 to 600).
    #[arg(long, long_help = secs_help())]
    secs: Option<u64>,
    /// Runs of the scenario (1 to 100; default 1, or --phases N); the report gives
    /// min/median/p95/max across them.
    #[arg(long)]
    runs: Option<u32>,
    /// When the fault is injected after the probe started.
    #[arg(long, default_value = plan::INJECT_AT, value_parser = parse_duration)]
    inject_at: Duration,
    /// How much later than --inject-at the fault may land, picked at random per run: `loop`
    /// (up to the cluster's loop_wait, so faults meet the leader anywhere in its loop) or a
    /// duration (0s: exactly at --inject-at).
    #[arg(long, default_value = "loop", value_parser = plan::parse_jitter)]
    inject_jitter: Jitter,
    /// Inject not at random but once the leader lease, after --inject-at, comes down to this
    /// much time left (read from etcd): a kill then costs this long before the lock expires.
    /// It must lie within the loop (ttl − loop_wait + 1 to ttl − 1 s; checked live).
    #[arg(long, value_parser = parse_duration, conflicts_with = "inject_jitter")]
    at_lease_remaining: Option<Duration>,
    /// Spread the runs evenly over the leader's loop instead of at random: run k of N is
    /// injected when the lease has the k-th of N evenly spaced points of that range left (so
    /// N runs cover the loop by construction; more runs go round again). 1 to 20.
    #[arg(long, conflicts_with_all = ["inject_jitter", "at_lease_remaining"])]
    phases: Option<u32>,
    /// How long the probe goes on once the cluster is whole again.
    #[arg(long, default_value = plan::TAIL, value_parser = parse_duration)]
    tail: Duration,
    /// Write the JSON report (all runs) here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the HTML report (the set's table, then each run's chart) here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Override the scenario's expectation: longest window.
    #[arg(long, value_parser = parse_duration)]
    max_window: Option<Duration>,
    /// Override: failed attempts.
    #[arg(long)]
    max_failed: Option<u64>,
    /// Override: in-doubt attempts.
    #[arg(long)]
    max_in_doubt: Option<u64>,
    /// Override: lost acknowledged writes.
    #[arg(long)]
    max_lost: Option<u64>,
    /// Override: the cluster whole again within this, after the fault.
    #[arg(long, value_parser = parse_duration)]
    whole_within: Option<Duration>,
    #[command(flatten)]
    load: patroni_lab_probe::load::LoadArgs,
    /// The client endpoint (default: the lab's HAProxy on 127.0.0.1:5432).
    #[arg(long)]
    url: Option<String>,
    /// Clients also read their own newest row on the reader endpoint (the lab's HAProxy
    /// 5433) after each write: staleness, read-your-writes, monotonic reads.
    #[arg(long)]
    readers: bool,
    /// Patroni REST APIs of an existing cluster, comma-separated (then only switchover,
    /// switchover-paused and restart-leader run).
    #[arg(long, value_delimiter = ',')]
    patroni: Vec<String>,
    /// PgBouncer's admin console of an existing cluster (postgres://user@host:port/pgbouncer),
    /// for switchover-paused; the password from the URL, else POSTGRES_PASSWORD.
    #[arg(long)]
    pgbouncer: Option<String>,
}

use patroni_lab_common::exit::Exit;

pub fn run(cmd: ScenarioCommand) -> ExitCode {
    match cmd {
        ScenarioCommand::List { markdown } => {
            let text = if markdown {
                faults::markdown_table()
            } else {
                list()
            };
            say!("{}", text.trim_end_matches('\n'));
            ExitCode::SUCCESS
        }
        ScenarioCommand::ResumeAfter {
            secs,
            flag,
            host,
            port,
            user,
        } => {
            let admin = patroni_lab_callback::pgbouncer::AdminTarget {
                host,
                port,
                user,
                password: std::env::var("PGBOUNCER_ADMIN_PASSWORD").unwrap_or_default(),
            };
            match faults::resume_after(Duration::from_secs(secs), &flag, &admin) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("patroni-lab scenario resume-after: error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        ScenarioCommand::Run(args) => match prepare(&args) {
            Err(e) => {
                eprintln!("patroni-lab scenario: error: {e}");
                ExitCode::from(Exit::BadInput)
            }
            Ok(prepared) => execute(&args, prepared),
        },
    }
}

fn list() -> String {
    let mut out = String::new();
    for f in faults::all() {
        out.push_str(&format!(
            "{:<18} {}\n{:<18} expects: {}\n",
            f.name(),
            f.describe(),
            "",
            f.expects()
        ));
        for p in f.declared().params {
            out.push_str(&format!(
                "{:<18} :{} ({}, default {})\n",
                "",
                p.kind.form(),
                p.help,
                p.default
            ));
        }
    }
    out
}

/// `--secs`'s long help, from the registry (the faults that last and their defaults).
fn secs_help() -> String {
    format!(
        "How long a fault that lasts is held, in seconds (1 to 600). The faults that last, with their defaults: {}.",
        faults::lasting_defaults()
    )
}

struct Prepared {
    lab: Lab,
    fault: Fault,
    /// The probe for the lab and load, before the fault adjusts it.
    probe: Settings,
    overrides: Overrides,
}

/// Every check that needs nothing slow: flags, the fault's needs, report paths (and, against
/// a cluster given by URLs, one GET /patroni per API for the member names).
fn prepare(args: &RunArgs) -> Result<Prepared, String> {
    let fault = Fault::from_spec(&args.name).map_err(|e| e.to_string())?;
    let fault = match args.secs {
        Some(_) if faults::hold_written(&args.name) => {
            return Err(format!(
                "{}: the seconds are given twice (':' and --secs): keep one",
                args.name
            ));
        }
        Some(secs) => fault
            .with_secs(secs)
            .map_err(|e| format!("--secs {secs}: {e}"))?,
        None => fault,
    };
    if !(1..=100).contains(&args.runs()) {
        return Err(format!(
            "--runs {} is out of range: allowed 1 to 100",
            args.runs()
        ));
    }
    if let Some(n) = args.phases {
        if !(1..=20).contains(&n) {
            return Err(format!("--phases {n} is out of range: allowed 1 to 20"));
        }
    }
    let external = !args.patroni.is_empty();
    if fault.needs_containers() && external {
        return Err(format!(
            "{} needs the lab's containers; against a cluster given by --patroni only switchover, switchover-paused and restart-leader run",
            fault.name()
        ));
    }
    if fault.needs_pgbouncer() && external && args.pgbouncer.is_none() {
        return Err(format!(
            "{} against a cluster given by --patroni needs --pgbouncer postgres://user@host:port/pgbouncer",
            fault.name()
        ));
    }
    let mut lab = Lab::from_env();
    if external {
        lab = lab.with_members_at(&args.patroni)?;
    }
    if let Some(url) = &args.url {
        lab.client_url = url.clone();
    }
    if let Some(url) = &args.pgbouncer {
        let c: tokio_postgres::Config = url
            .parse()
            .map_err(|e| format!("--pgbouncer cannot be read: {e}"))?;
        let host = match c.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => {
                return Err(
                    "--pgbouncer needs a host (postgres://user@host:port/pgbouncer)".into(),
                );
            }
        };
        lab.pgbouncer_admin = Some(patroni_lab_callback::pgbouncer::AdminTarget {
            host,
            port: c
                .get_ports()
                .first()
                .copied()
                .unwrap_or(patroni_lab_callback::pgbouncer::PORT),
            user: c.get_user().unwrap_or("postgres").to_string(),
            password: c
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_else(|| lab.password.clone()),
        });
        lab.pgbouncer_admin_url = Some(url.clone());
    }
    let overrides = Overrides {
        max_window: args.max_window,
        max_failed: args.max_failed,
        max_in_doubt: args.max_in_doubt,
        max_lost: args.max_lost,
        whole_within: args.whole_within,
    };
    let mut probe = plan::probe_for(&lab, |p| args.load.apply(p))?;
    probe.reader = (args.readers || fault.effects().needs_readers)
        .then(|| lab.reader())
        .transpose()?;
    // Checked here with the default timing, before the cluster is read; the plan is made once
    // the live settings are.
    plan::bound_probe(
        fault,
        &fault.expectations().with(&overrides),
        &mut probe.clone(),
        args.inject_at,
        args.tail,
    )?;
    patroni_lab_common::reports_writable(&args.json, &args.html)?;
    Ok(Prepared {
        lab,
        fault,
        probe,
        overrides,
    })
}

impl RunArgs {
    /// Where the fault lands: spread over the loop, at a chosen lease time left, else the
    /// jitter.
    fn placement(&self) -> Jitter {
        match (self.phases, self.at_lease_remaining) {
            (Some(n), _) => Jitter::Stratified(n),
            (None, Some(left)) => Jitter::AtLeaseRemaining(left),
            (None, None) => self.inject_jitter,
        }
    }

    fn runs(&self) -> u32 {
        self.runs.or(self.phases).unwrap_or(1)
    }
}

async fn run_all(args: &RunArgs, p: Prepared) -> Result<ExitCode> {
    cluster::containers_up(&p.lab).map_err(anyhow::Error::msg)?;
    // What the hosts lack (a kernel without netem, say) refuses the run before anything.
    let (lab, fault) = (p.lab.clone(), p.fault);
    if let Err(e) = tokio::task::spawn_blocking(move || fault.preflight(&lab)).await? {
        eprintln!("patroni-lab scenario: error: {e}");
        return Ok(ExitCode::from(Exit::BadInput));
    }
    if (args.at_lease_remaining.is_some() || args.phases.is_some()) && p.lab.etcd_url.is_none() {
        eprintln!(
            "patroni-lab scenario: error: --at-lease-remaining and --phases read the lease from etcd, and a cluster given by URLs has none here; leave them out"
        );
        return Ok(ExitCode::from(Exit::BadInput));
    }
    // Patroni's settings, read once for the whole set of runs.
    let live = Live::read(&p.lab, ConfigReader::Run)
        .await
        .map_err(anyhow::Error::msg)?;
    if let Some(left) = args.at_lease_remaining {
        let timing = plan::live_timing(&live).map_err(anyhow::Error::msg)?;
        if let Err(e) = lease::check_reachable(left, timing.ttl, timing.loop_wait) {
            eprintln!("patroni-lab scenario: error: {e}");
            return Ok(ExitCode::from(Exit::BadInput));
        }
    }
    let expectations =
        plan::live_expectations(&live, p.fault, &p.overrides).map_err(anyhow::Error::msg)?;
    let plan = plan::plan_for(
        p.fault,
        expectations,
        p.probe,
        args.inject_at,
        args.placement(),
        args.tail,
        live,
    )
    .map_err(anyhow::Error::msg)?;
    let stop_rx = patroni_lab_cluster::guard::stop_undoing_faults(
        "undoing the fault, stopping the probe, then the report",
    )?;
    let (name, describe) = (plan.fault.written(), plan.fault.describe());
    let r = plan::run_set(
        &p.lab,
        &plan,
        args.runs(),
        stop_rx,
        |progress| match progress {
            Progress::Starting(i) => eprintln!("{name} run {i} of {}: {describe}", args.runs()),
            Progress::Ended(run) => eprintln!("  {}", plan::run_line(run)),
        },
    )
    .await?;
    say!("{}", report::summary(&r).trim_end_matches('\n'));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&r)? + "\n")
            .with_context(|| format!("cannot write the JSON report to {}", path.display()))?;
        say!("JSON report: {}", path.display());
    }
    if let Some(path) = &args.html {
        std::fs::write(path, report::page(&r))
            .with_context(|| format!("cannot write the HTML report to {}", path.display()))?;
        say!("HTML report: {}", path.display());
    }
    Ok(ExitCode::from(r.verdict.exit_code()))
}

fn execute(args: &RunArgs, prepared: Prepared) -> ExitCode {
    patroni_lab_common::signals::block_on("scenario", run_all(args, prepared))
}
