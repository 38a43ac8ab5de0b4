//! The `probe` subcommand: flags to settings, Ctrl-C to a stop signal, the report to files,
//! limits to the exit code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use patroni_lab_probe::report::{Limits, summary};
use patroni_lab_probe::settings::{Mode, Settings, parse_duration};
use patroni_lab_probe::{html, session};

#[derive(Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// A new connection for every transaction (like pgbench -C).
    PerTx,
    /// One connection per client, reopened when it fails.
    Persistent,
}

#[derive(Args)]
pub struct ProbeArgs {
    /// Connection string (URL or key=value). Without a password in it: PGPASSWORD, else "postgres".
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    url: String,
    /// Concurrent clients.
    #[arg(short, long, default_value_t = 4)]
    clients: u32,
    #[arg(long, value_enum, default_value = "per-tx")]
    mode: ModeArg,
    /// Target transactions per second over all clients (default: flat out).
    #[arg(long)]
    rate: Option<f64>,
    /// Share of transactions that are reads, 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    read_ratio: f64,
    /// How long to run (500ms, 30s, 5m); 0 runs until Ctrl-C.
    #[arg(short = 'T', long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Whole connect time-out: TCP + startup + authentication.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    connect_timeout: Duration,
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    statement_timeout: Duration,
    /// Longest pause between retries after failures (it doubles from 20 ms).
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    backoff_max: Duration,
    /// A gap between acknowledgements longer than this is a stall.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    stall: Duration,
    /// How long the final lost-write check waits for a primary.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    verify_timeout: Duration,
    /// Table for the probe's rows (made if missing).
    #[arg(long, default_value = "probe_writes")]
    table: String,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the HTML report (chart included) here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Keep every attempt as JSON lines here.
    #[arg(long)]
    history: Option<PathBuf>,
    /// No live line per second.
    #[arg(short, long)]
    quiet: bool,
    /// Exit 3 when the longest unavailability window is longer than this.
    #[arg(long, value_parser = parse_duration)]
    max_window: Option<Duration>,
    /// Exit 3 when more attempts than this failed or ended in doubt.
    #[arg(long)]
    max_failed: Option<u64>,
    /// Exit 3 when more acknowledged writes than this were lost (0: any loss fails).
    #[arg(long)]
    max_lost: Option<u64>,
}

/// Exit code when the run completed but a limit was exceeded.
const LIMITS_EXCEEDED: u8 = 3;

fn settings(args: &ProbeArgs) -> Result<Settings> {
    let parsed: tokio_postgres::Config = args.url.parse().context("cannot read --url")?;
    let mut s = Settings::lab_defaults(&args.url);
    s.endpoint = patroni_lab_probe::workload::describe_endpoint(&parsed);
    // When the connection string has no password: PGPASSWORD as libpq would, else the lab's.
    s.password = Some(std::env::var("PGPASSWORD").unwrap_or_else(|_| "postgres".into()));
    s.clients = args.clients;
    s.mode = match args.mode {
        ModeArg::PerTx => Mode::PerTransaction,
        ModeArg::Persistent => Mode::Persistent,
    };
    s.rate = args.rate;
    s.read_ratio = args.read_ratio;
    s.duration = (!args.duration.is_zero()).then_some(args.duration);
    s.connect_timeout = args.connect_timeout;
    s.statement_timeout = args.statement_timeout;
    s.backoff_max = args.backoff_max;
    s.stall_threshold = args.stall;
    s.verify_timeout = args.verify_timeout;
    s.live = !args.quiet;
    s.history_path = args.history.clone();
    s.table = args.table.clone();
    s.check()?;
    Ok(s)
}

async fn execute(args: ProbeArgs) -> Result<ExitCode> {
    let settings = settings(&args)?;
    let limits = Limits {
        max_window_ms: args.max_window.map(|d| d.as_secs_f64() * 1000.0),
        max_failed: args.max_failed,
        max_lost: args.max_lost,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: stopping clients, then the analysis and the lost-write check");
            let _ = stop_tx.send(true);
        }
    });
    if settings.live {
        eprintln!(
            "probe: {} clients, {:?}, against {} (Ctrl-C stops and still reports)",
            settings.clients, settings.mode, settings.endpoint
        );
    }
    let report = session::run(&settings, &limits, stop_rx).await?;
    print!("{}", summary(&report));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write the JSON report to {}", path.display()))?;
        println!("JSON report: {}", path.display());
    }
    if let Some(path) = &args.html {
        std::fs::write(path, html::page(&report))
            .with_context(|| format!("cannot write the HTML report to {}", path.display()))?;
        println!("HTML report: {}", path.display());
    }
    Ok(if report.exceeded.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(LIMITS_EXCEEDED)
    })
}

pub fn run(args: ProbeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("patroni-lab probe: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("patroni-lab probe: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
