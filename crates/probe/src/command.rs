//! The `probe` subcommand: flags to settings, Ctrl-C to a stop signal, the report to files,
//! limits to the exit code.

use patroni_lab_common::say;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::report::{Limits, summary};
use crate::settings::{Settings, defaults, parse_duration};
use crate::{html, session};
use anyhow::{Context, Result};
use clap::Args;

#[derive(Args)]
pub struct ProbeArgs {
    /// Connection string (URL or key=value). Without a password in it: PGPASSWORD, else "postgres".
    #[arg(long, default_value = defaults::URL)]
    url: String,
    /// A reader endpoint (the lab's: postgres://postgres@127.0.0.1:5433/postgres): after each
    /// write (acknowledged or not) the client reads its own newest row there — staleness,
    /// read-your-writes and monotonic reads in the report.
    #[arg(long)]
    reader_url: Option<String>,
    #[command(flatten)]
    load: crate::load::LoadArgs,
    /// How long to run (500ms, 30s, 5m); 0 runs until Ctrl-C.
    #[arg(short = 'T', long, default_value = defaults::DURATION, value_parser = parse_duration, allow_hyphen_values = true)]
    duration: Duration,
    /// Whole connect time-out: TCP + startup + authentication.
    #[arg(long, default_value = defaults::CONNECT_TIMEOUT, value_parser = parse_duration, allow_hyphen_values = true)]
    connect_timeout: Duration,
    #[arg(long, default_value = defaults::STATEMENT_TIMEOUT, value_parser = parse_duration, allow_hyphen_values = true)]
    statement_timeout: Duration,
    /// Longest pause between retries after failures (it doubles from 20 ms).
    #[arg(long, default_value = defaults::BACKOFF_MAX, value_parser = parse_duration, allow_hyphen_values = true)]
    backoff_max: Duration,
    /// A gap between acknowledgements longer than this is a stall.
    #[arg(long, default_value = defaults::STALL, value_parser = parse_duration, allow_hyphen_values = true)]
    stall: Duration,
    /// How long the final lost-write check may take, settling the run's unfinished statements
    /// and waiting for the newest primary included.
    #[arg(long, default_value = defaults::VERIFY_TIMEOUT, value_parser = parse_duration, allow_hyphen_values = true)]
    verify_timeout: Duration,
    /// Skip the lost-write check (the exit code then does not say it was not checked).
    #[arg(long)]
    no_lost_check: bool,
    /// Patroni REST APIs (comma-separated): the lost-write check then also confirms that the
    /// node it reads holds the leader lock.
    #[arg(long, value_delimiter = ',')]
    patroni: Vec<String>,
    /// Table for the probe's rows (made if missing).
    #[arg(long, default_value = defaults::TABLE)]
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

// Exit codes (crate::exit), by precedence when several apply: a run whose limits were exceeded
// exits FAILED even when the lost-write check or a report failed afterwards; else a run whose
// lost-write check did not run (and was not skipped) exits NOT_CHECKED; else ERROR.
use patroni_lab_common::exit::Exit;

/// Input that is wrong: one line, exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadInput(String);

fn settings(args: &ProbeArgs) -> Result<Settings, BadInput> {
    let parsed: tokio_postgres::Config = args
        .url
        .parse()
        .map_err(|e| BadInput(format!("--url cannot be read: {e}")))?;
    let mut s = Settings::lab_defaults(&args.url);
    s.endpoint = crate::workload::describe_endpoint(&parsed);
    // When the connection string has no password: PGPASSWORD as libpq would, else the lab's.
    s.password = Some(std::env::var("PGPASSWORD").unwrap_or_else(|_| "postgres".into()));
    args.load.apply(&mut s).map_err(BadInput)?;
    s.duration = (!args.duration.is_zero()).then_some(args.duration);
    s.connect_timeout = args.connect_timeout;
    s.statement_timeout = args.statement_timeout;
    s.backoff_max = args.backoff_max;
    s.stall_threshold = args.stall;
    s.verify_timeout = args.verify_timeout;
    s.lost_check = !args.no_lost_check;
    for url in &args.patroni {
        if !url.starts_with("http://") {
            return Err(BadInput(format!(
                "--patroni '{url}' is not an http://host:port address of a Patroni REST API"
            )));
        }
    }
    s.patroni = args.patroni.clone();
    if let Some(url) = &args.reader_url {
        let parsed: tokio_postgres::Config = url
            .parse()
            .map_err(|e| BadInput(format!("--reader-url cannot be read: {e}")))?;
        s.reader = Some(crate::settings::Reader {
            conninfo: url.clone(),
            endpoint: crate::workload::describe_endpoint(&parsed),
        });
    }
    s.live = !args.quiet;
    if let Some(path) = &args.history {
        // Opened here so a bad path fails before anything connects; the run truncates it.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| {
                BadInput(format!(
                    "cannot write the history to {}: {e}",
                    path.display()
                ))
            })?;
    }
    s.history_path = args.history.clone();
    s.table = args.table.clone();
    s.check().map_err(|e| BadInput(e.to_string()))?;
    Ok(s)
}

/// A report file, opened (created) before the run so a bad path fails at once; removed again
/// when the run fails before there is a report to write.
struct ReportFile {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl ReportFile {
    fn open(path: &Option<PathBuf>, what: &str) -> Result<Option<Self>, BadInput> {
        let Some(path) = path else { return Ok(None) };
        let file = std::fs::File::create(path).map_err(|e| {
            BadInput(format!(
                "cannot write the {what} report to {}: {e}",
                path.display()
            ))
        })?;
        Ok(Some(Self {
            path: path.clone(),
            file: Some(file),
        }))
    }

    fn write(mut self, text: &str, what: &str) -> Result<()> {
        use std::io::Write;
        let mut file = self.file.take().expect("written once");
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write the {what} report to {}", self.path.display()))
    }
}

impl Drop for ReportFile {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

async fn execute(args: ProbeArgs) -> Result<ExitCode> {
    let settings = settings(&args)?;
    let json = ReportFile::open(&args.json, "JSON")?;
    let html_file = ReportFile::open(&args.html, "HTML")?;
    let limits = Limits {
        max_window_ms: args.max_window.map(|d| d.as_secs_f64() * 1000.0),
        max_failed: args.max_failed,
        max_lost: args.max_lost,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    patroni_lab_common::signals::stop_on_signals(
        stop_tx,
        "stopping clients, then the analysis and the lost-write check",
        || {},
    )?;
    if settings.live {
        eprintln!(
            "probe: {} clients, {:?}, against {} (Ctrl-C or SIGTERM stops and still reports)",
            settings.clients, settings.mode, settings.endpoint
        );
    }
    let signalled = stop_rx.clone();
    let report = session::run(&settings, &limits, stop_rx).await?;
    say!("{}", summary(&report).trim_end_matches('\n'));
    // A run of a set duration cut short by a signal is no measurement of that duration: it
    // still reports, and says so by its exit code. A run "until stopped" (0) ends that way.
    let cut_short = *signalled.borrow() && settings.duration.is_some_and(|d| !d.is_zero());
    // A limit exceeded in the part that ran is a measured failure: it wins.
    let verdict = if !report.exceeded.is_empty() {
        Exit::Failed
    } else if cut_short {
        say!(
            "probe: stopped by a signal before its duration: INTERRUPTED (figures are of the part that ran)"
        );
        Exit::Interrupted
    } else if settings.lost_check && !report.lost_writes.checked {
        Exit::NotChecked
    } else {
        Exit::Pass
    };
    let mut write_failed = false;
    if let Some(file) = json {
        let text = serde_json::to_string_pretty(&report)? + "\n";
        match file.write(&text, "JSON") {
            Ok(()) => say!("JSON report: {}", file_name(&args.json)),
            Err(e) => {
                eprintln!("patroni-lab probe: error: {e:#}");
                write_failed = true;
            }
        }
    }
    if let Some(file) = html_file {
        match file.write(&html::page(&report), "HTML") {
            Ok(()) => say!("HTML report: {}", file_name(&args.html)),
            Err(e) => {
                eprintln!("patroni-lab probe: error: {e:#}");
                write_failed = true;
            }
        }
    }
    Ok(ExitCode::from(match verdict {
        Exit::Pass if write_failed => Exit::Error,
        code => code,
    }))
}

fn file_name(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

pub fn run(args: ProbeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("patroni-lab probe: error: cannot start the async runtime: {e}");
            return ExitCode::from(Exit::Error);
        }
    };
    match runtime.block_on(execute(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("patroni-lab probe: error: {e:#}");
            ExitCode::from(if e.is::<BadInput>() {
                Exit::BadInput
            } else {
                Exit::Error
            })
        }
    }
}
