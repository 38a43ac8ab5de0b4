//! The `matrix` subcommand: every scenario under every profile, a cell at a time, with progress
//! and an ETA; each cell is saved as it completes so an interrupted matrix resumes; the table
//! is written as Markdown, JSON and HTML. The profile the lab had before is put back at the end.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use patroni_lab_profile::profile::{self, Settings};
use patroni_lab_scenario::cluster;
use patroni_lab_scenario::faults::Fault;
use patroni_lab_scenario::lab::Lab;
use patroni_lab_scenario::matrix::{self, Cell, Matrix};
use patroni_lab_scenario::profiles;
use patroni_lab_scenario::runner::Jitter;

use crate::scenario::{Progress, live_expectations, plan_for, probe_for, run_line, run_set};

#[derive(Args)]
pub struct MatrixArgs {
    /// Profiles, comma-separated: the table's columns (see `patroni-lab profile list`).
    #[arg(long, value_delimiter = ',', required = true)]
    profiles: Vec<String>,
    /// Scenarios, comma-separated: the table's rows (see `patroni-lab scenario list`); a fault
    /// that lasts takes its seconds after a colon (freeze-leader:4).
    #[arg(long, value_delimiter = ',', required = true)]
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
    load: crate::load::LoadArgs,
}

/// Everything checked before anything slow: profiles, scenarios, runs, the output folder.
struct Checked {
    profiles: Vec<(String, Settings)>,
    faults: Vec<Fault>,
    all_profiles: Vec<(String, Settings)>,
}

/// A row of the matrix: a scenario, or `name:secs` for a fault that lasts (a freeze ladder:
/// `freeze-leader:2,freeze-leader:4,freeze-leader:8`).
pub(crate) fn scenario_of(label: &str) -> Result<Fault, String> {
    let (name, secs) = match label.split_once(':') {
        Some((name, secs)) => {
            let secs: u64 = secs
                .parse()
                .ok()
                .filter(|s| (1..=600).contains(s))
                .ok_or_else(|| format!("{label}: the seconds after ':' must be 1 to 600"))?;
            (name, Some(secs))
        }
        None => (label, None),
    };
    let fault = Fault::parse(name, secs).map_err(|e| e.to_string())?;
    if secs.is_some() && fault.secs().is_none() {
        return Err(format!(
            "{label}: {name} does not last; it takes no seconds"
        ));
    }
    Ok(fault)
}

fn check(args: &MatrixArgs) -> Result<Checked, String> {
    let all = profile::load_all(&profile::folder()).map_err(|e| e.to_string())?;
    let mut profiles = Vec::new();
    for name in &args.profiles {
        let (_, settings) = profile::resolve(&all, name).map_err(|e| e.to_string())?;
        profiles.push((name.clone(), settings));
    }
    let faults = args
        .scenarios
        .iter()
        .map(|s| scenario_of(s))
        .collect::<Result<Vec<_>, _>>()?;
    if !(1..=100).contains(&args.runs) {
        return Err(format!(
            "--runs {} is out of range: allowed 1 to 100",
            args.runs
        ));
    }
    if args.steady > 3600 {
        return Err(format!(
            "--steady {} is out of range: allowed 0 to 3600 seconds",
            args.steady
        ));
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot write to {}: {e}", args.out.display()))?;
    let all_profiles = crate::profile::completed(&all).into_iter().collect();
    Ok(Checked {
        profiles,
        faults,
        all_profiles,
    })
}

/// Runs a blocking call on the lab (REST, the admin console, docker) off the async workers:
/// those calls start runtimes of their own.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, profiles::ProfileLabError> + Send + 'static,
) -> Result<T> {
    Ok(tokio::task::spawn_blocking(f).await??)
}

/// Applies `name` unless it is the one applied last.
async fn ensure_profile(
    lab: &Lab,
    checked: &Checked,
    default: &Settings,
    name: &str,
    applied: &mut Option<String>,
) -> Result<()> {
    if applied.as_deref() == Some(name) {
        return Ok(());
    }
    let settings = &checked
        .profiles
        .iter()
        .find(|(n, _)| n == name)
        .expect("checked")
        .1;
    eprintln!("profile {name}: applying");
    let (lab, name_owned, settings, default) = (
        lab.clone(),
        name.to_string(),
        settings.clone(),
        default.clone(),
    );
    blocking(move || profiles::apply(&lab, &name_owned, &settings, &default))
        .await
        .with_context(|| format!("applying profile {name}"))?;
    *applied = Some(name.to_string());
    Ok(())
}

/// A steady probe run under the active profile, once the cluster is whole.
async fn steady_run(
    lab: &Lab,
    args: &MatrixArgs,
    profile: &str,
    key: &str,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<matrix::Steady> {
    patroni_lab_scenario::cluster::wait_whole(lab, Duration::from_secs(120), &stop)
        .await
        .map_err(anyhow::Error::msg)?;
    let mut probe = probe_for(lab, &args.load).map_err(anyhow::Error::msg)?;
    probe.duration = Some(Duration::from_secs(args.steady));
    probe.check()?;
    let report = patroni_lab_probe::session::run(
        &probe,
        &patroni_lab_probe::report::Limits::default(),
        stop,
    )
    .await?;
    Ok(matrix::Steady::of(profile, &report, key))
}

/// What produces a profile's figures besides the scenario: its resolved settings, the load,
/// the topology and this binary's version (see [`matrix::key`]).
fn made_by(settings: &Settings, load: &patroni_lab_probe::settings::Settings) -> String {
    format!(
        "{settings:?}|clients {} {:?} rate {:?} reads {}|LAB_NODES={}|patroni-lab {}",
        load.clients,
        load.mode,
        load.rate,
        load.read_ratio,
        std::env::var("LAB_NODES").unwrap_or_else(|_| "2".into()),
        env!("CARGO_PKG_VERSION")
    )
}

/// The first profile the running lab matches, read from its services.
pub(crate) async fn active_profile(
    lab: &Lab,
    all: &[(String, Settings)],
) -> Result<Option<String>> {
    let live = {
        let lab = lab.clone();
        blocking(move || profiles::live(&lab))
            .await
            .context("reading the lab's active profile")?
    };
    Ok(profiles::matching(all.iter().map(|(n, s)| (n, s)), &live)
        .into_iter()
        .next())
}

/// Applies the profile the lab had before a run (`default` when it is not among `all`).
pub(crate) async fn put_back(
    lab: &Lab,
    all: &[(String, Settings)],
    default: &Settings,
    name: &str,
) -> Result<()> {
    let settings = all
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s.clone())
        .unwrap_or(default.clone());
    eprintln!("profile {name}: put back");
    let (lab, n, d) = (lab.clone(), name.to_string(), default.clone());
    blocking(move || profiles::apply(&lab, &n, &settings, &d))
        .await
        .with_context(|| format!("putting profile {name} back"))?;
    Ok(())
}

fn minutes(s: f64) -> String {
    format!("{}:{:02}", (s / 60.0) as u64, (s % 60.0) as u64)
}

async fn run_matrix(args: &MatrixArgs, checked: Checked) -> Result<ExitCode> {
    let lab = Lab::from_env();
    cluster::containers_up(&lab).map_err(anyhow::Error::msg)?;
    let default = checked
        .all_profiles
        .iter()
        .find(|(n, _)| n == "default")
        .map(|(_, s)| s.clone())
        .expect("default is always there");
    // The profile to put back at the end: the one the lab runs now, else default.
    let active = active_profile(&lab, &checked.all_profiles).await?;
    let before = active.clone().unwrap_or_else(|| "default".to_string());

    let stop_rx = crate::signals::stop_undoing_faults(
        "undoing the fault, stopping the probe; saved cells are kept",
    )?;

    let runs = args.runs as usize;
    let order = matrix::plan(&args.profiles, &args.scenarios);
    let total_runs = order.len() * runs;
    let (mut done_runs, mut spent_s) = (0usize, 0.0f64);
    let mut left_runs = total_runs;
    let mut cells: Vec<Cell> = Vec::new();
    // The profile the services run now: applying it again would change nothing.
    let mut applied: Option<String> = active;
    let mut steady = Vec::new();
    for (index, (profile_name, scenario)) in order.iter().enumerate() {
        if *stop_rx.borrow() {
            break;
        }
        let at = format!(
            "[cell {} of {}] {profile_name} × {scenario}",
            index + 1,
            order.len()
        );
        let first_of_profile = index == 0 || order[index - 1].0 != *profile_name;
        let settings = &checked
            .profiles
            .iter()
            .find(|(n, _)| n == profile_name)
            .expect("checked")
            .1;
        let load = probe_for(&lab, &args.load).map_err(anyhow::Error::msg)?;
        let producer = made_by(settings, &load);
        if first_of_profile && args.steady > 0 {
            let secs = args.steady as f64;
            let key = matrix::key(&[&producer, "steady", &args.steady.to_string()]);
            match matrix::saved_steady(&args.out, profile_name, secs, &key) {
                Some(s) => steady.push(s),
                None => {
                    ensure_profile(&lab, &checked, &default, profile_name, &mut applied).await?;
                    eprintln!("profile {profile_name}: steady run of {secs} s, no fault");
                    let s = steady_run(&lab, args, profile_name, &key, stop_rx.clone()).await?;
                    if *stop_rx.borrow() {
                        eprintln!("{at}: the steady run was interrupted; not saved");
                        break;
                    }
                    matrix::save_steady(&args.out, &s)?;
                    steady.push(s);
                }
            }
        }
        let key = matrix::key(&[&producer, scenario, &runs.to_string()]);
        if let Some(cell) = matrix::saved_cell(&args.out, profile_name, scenario, runs, &key) {
            eprintln!("{at}: saved by an earlier run, kept ({})", cell.grade());
            left_runs -= runs;
            cells.push(cell);
            continue;
        }
        ensure_profile(&lab, &checked, &default, profile_name, &mut applied).await?;
        let fault = checked.faults[args
            .scenarios
            .iter()
            .position(|s| s == scenario)
            .expect("checked")];
        // After the profile is applied: ttl-bound faults are graded against its ttl.
        let expectations = live_expectations(
            &lab,
            fault,
            &patroni_lab_scenario::grade::Overrides::default(),
        )
        .await?;
        let plan = plan_for(
            &lab,
            fault,
            expectations,
            &args.load,
            Duration::from_secs(5),
            Jitter::LoopWait,
            Duration::from_secs(3),
        )
        .map_err(anyhow::Error::msg)?;
        let started = Instant::now();
        let mut run_started = Instant::now();
        let report = run_set(
            &lab,
            &plan,
            args.runs,
            stop_rx.clone(),
            |progress| match progress {
                Progress::Starting(i) => {
                    run_started = Instant::now();
                    let eta = matrix::eta_s(done_runs, spent_s, left_runs)
                        .map_or("ETA after the first run".into(), |s| {
                            format!("ETA {} for the matrix", minutes(s))
                        });
                    eprintln!("{at}: run {i} of {runs}; {eta}");
                }
                Progress::Ended(run) => {
                    done_runs += 1;
                    left_runs -= 1;
                    spent_s += run_started.elapsed().as_secs_f64();
                    eprintln!("  {}", run_line(run));
                }
            },
        )
        .await?;
        if report.runs.len() < runs || report.interrupted || *stop_rx.borrow() {
            eprintln!(
                "{at}: interrupted after {} of {runs} runs; not saved",
                report.runs.len()
            );
            break;
        }
        let cell = Cell::of(
            profile_name,
            scenario,
            &report,
            started.elapsed().as_secs_f64(),
            &key,
        );
        matrix::save_cell(&args.out, &cell)
            .with_context(|| format!("saving the cell in {}", args.out.display()))?;
        std::fs::write(
            args.out
                .join("cells")
                .join(profile_name)
                .join(format!("{scenario}.report.json")),
            serde_json::to_string_pretty(&report)? + "\n",
        )?;
        eprintln!("{at}: {}", cell.grade());
        cells.push(cell);
    }

    if applied.as_deref() != Some(before.as_str()) {
        put_back(&lab, &checked.all_profiles, &default, &before).await?;
    }

    let m = Matrix {
        schema: matrix::SCHEMA,
        schema_version: matrix::SCHEMA_VERSION,
        profiles: args.profiles.clone(),
        scenarios: args.scenarios.clone(),
        runs_per_cell: runs,
        cells,
        steady,
    };
    let md = matrix::markdown(&m);
    say!("{}", md.trim_end_matches('\n'));
    for (file, text) in [
        ("matrix.md", md.clone()),
        ("matrix.json", serde_json::to_string_pretty(&m)? + "\n"),
        ("matrix.html", matrix::html(&m)),
    ] {
        let path = args.out.join(file);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    say!(
        "matrix: {}/matrix.{{md,json,html}}; spent {} on {done_runs} runs",
        args.out.display(),
        minutes(spent_s)
    );
    let complete = m.cells.len() == order.len();
    Ok(ExitCode::from(if *stop_rx.borrow() {
        crate::exit::INTERRUPTED
    } else if !complete {
        crate::exit::ERROR
    } else if m.cells.iter().any(|c| c.fault_error.is_some()) {
        crate::exit::FAULT_ERROR
    } else if m.cells.iter().all(Cell::passed) {
        crate::exit::PASS
    } else {
        crate::exit::FAILED
    }))
}

pub fn run(args: MatrixArgs) -> ExitCode {
    crate::signals::run_checked("matrix", check(&args), |checked| run_matrix(&args, checked))
}
