//! The matrix engine: every scenario under every profile, a cell at a time, with progress and
//! an ETA; each cell saved as it completes (keyed by what produced it) so an interrupted matrix
//! resumes; an interrupted cell never saved; the table written as Markdown, JSON and HTML; the
//! profile the lab had before put back at the end.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use patroni_lab_probe::settings::Settings as ProbeSettings;
use patroni_lab_profile::profile::{self, Settings};
use tokio::sync::watch;

use super::{Cell, Matrix, SCHEMA, SCHEMA_VERSION, Steady};
use patroni_lab_cluster::cluster::Live;
use patroni_lab_cluster::lab::{ConfigReader, Lab};
use patroni_lab_cluster::profiles::{self, ProfileLabError};
use patroni_lab_faults::faults::Fault;
use patroni_lab_faults::grade::Overrides;
use patroni_lab_scenario::plan::{self, Progress};
use patroni_lab_scenario::runner::Jitter;

#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    #[error("{0}")]
    Lab(String),
    #[error(transparent)]
    Profile(#[from] ProfileLabError),
    #[error(transparent)]
    Runner(#[from] patroni_lab_scenario::runner::RunnerError),
    #[error("{what}: {detail}")]
    Io { what: String, detail: String },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> MatrixError {
    let what = what.into();
    move |e| MatrixError::Io {
        what,
        detail: e.to_string(),
    }
}

/// A matrix to run, checked before anything slow.
pub struct MatrixPlan {
    /// The columns, with their resolved settings.
    pub profiles: Vec<(String, Settings)>,
    /// The rows: each label (`freeze-leader:4`) and its fault.
    pub scenarios: Vec<(String, Fault)>,
    pub runs: u32,
    /// Seconds of a steady run per profile (0: none).
    pub steady: u64,
    pub out: PathBuf,
    /// The probe's settings for the lab with the load.
    pub probe: ProbeSettings,
    /// Every profile, completed from default (to recognise and put back the lab's own).
    pub all_profiles: Vec<(String, Settings)>,
}

/// How a matrix ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every cell done (saved now or earlier).
    Complete,
    /// A signal stopped it; the cells done are saved.
    Interrupted,
}

/// A row of the matrix: a scenario, or `name:secs` for a fault that lasts (a freeze ladder:
/// `freeze-leader:2,freeze-leader:4,freeze-leader:8`).
pub fn scenario_of(label: &str) -> Result<Fault, String> {
    Fault::from_spec(label).map_err(|e| e.to_string())
}

/// Checks a matrix request: profiles that resolve, scenarios that parse, runs and steady in
/// range, an output folder that can be written.
pub fn check(
    profile_names: &[String],
    scenario_labels: &[String],
    runs: u32,
    steady: u64,
    out: PathBuf,
    probe: ProbeSettings,
) -> Result<MatrixPlan, String> {
    let all = profile::load_all(&profile::folder()).map_err(|e| e.to_string())?;
    let mut profiles = Vec::new();
    for name in profile_names {
        let (_, settings) = profile::resolve(&all, name).map_err(|e| e.to_string())?;
        profiles.push((name.clone(), settings));
    }
    let scenarios = scenario_labels
        .iter()
        .map(|s| scenario_of(s).map(|f| (s.clone(), f)))
        .collect::<Result<Vec<_>, _>>()?;
    if !(1..=100).contains(&runs) {
        return Err(format!("--runs {runs} is out of range: allowed 1 to 100"));
    }
    if steady > 3600 {
        return Err(format!(
            "--steady {steady} is out of range: allowed 0 to 3600 seconds"
        ));
    }
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot write to {}: {e}", out.display()))?;
    Ok(MatrixPlan {
        profiles,
        scenarios,
        runs,
        steady,
        out,
        probe,
        all_profiles: profiles::completed(&all).into_iter().collect(),
    })
}

/// Runs a blocking call on the lab (REST, the admin console, docker) off the async workers:
/// those calls start runtimes of their own.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ProfileLabError> + Send + 'static,
) -> Result<T, MatrixError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| MatrixError::Lab(e.to_string()))?
        .map_err(MatrixError::from)
}

/// The first profile the running lab matches, read from its services.
pub async fn active_profile(
    lab: &Lab,
    all: &[(String, Settings)],
) -> Result<Option<String>, MatrixError> {
    let live = {
        let lab = lab.clone();
        blocking(move || profiles::live(&lab)).await?
    };
    Ok(profiles::matching(all.iter().map(|(n, s)| (n, s)), &live)
        .into_iter()
        .next())
}

/// Applies profile `name` (`default`'s settings when it is not among `all`), saying so.
pub async fn apply(
    lab: &Lab,
    all: &[(String, Settings)],
    name: &str,
    log: &mut impl FnMut(String),
    what: &str,
) -> Result<(), MatrixError> {
    let default = all
        .iter()
        .find(|(n, _)| n == "default")
        .map(|(_, s)| s.clone())
        .expect("default is always there");
    let settings = all
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s.clone())
        .unwrap_or(default.clone());
    log(format!("profile {name}: {what}"));
    let (lab, n) = (lab.clone(), name.to_string());
    blocking(move || profiles::apply(&lab, &n, &settings, &default))
        .await
        .map(|_| ())
}

/// Runs done, the seconds they took, runs left: the matrix's ETA.
struct Eta {
    done_runs: usize,
    spent_s: f64,
    left_runs: usize,
}

/// A cell's runs, each announced with the matrix's ETA and its line when it ends, then the
/// cell and its report saved; `None` when a signal cut it short (nothing saved). `here`: the
/// profile, the scenario, the log prefix, the cell's key.
async fn run_cell(
    lab: &Lab,
    run_plan: &patroni_lab_scenario::runner::Plan,
    m: &MatrixPlan,
    (profile_name, scenario, at, key): (&str, &str, &str, &str),
    eta: &mut Eta,
    stop: &watch::Receiver<bool>,
    log: &mut impl FnMut(String),
) -> Result<Option<Cell>, MatrixError> {
    let started = Instant::now();
    let mut run_started = Instant::now();
    let runs = m.runs;
    let report = plan::run_set(
        lab,
        run_plan,
        runs,
        stop.clone(),
        |progress| match progress {
            Progress::Starting(i) => {
                run_started = Instant::now();
                let left = super::eta_s(eta.done_runs, eta.spent_s, eta.left_runs)
                    .map_or("ETA after the first run".into(), |s| {
                        format!("ETA {} for the matrix", minutes(s))
                    });
                log(format!("{at}: run {i} of {runs}; {left}"));
            }
            Progress::Ended(run) => {
                eta.done_runs += 1;
                eta.left_runs -= 1;
                eta.spent_s += run_started.elapsed().as_secs_f64();
                log(format!("  {}", plan::run_line(run)));
            }
        },
    )
    .await?;
    if report.runs.len() < runs as usize || report.interrupted || *stop.borrow() {
        log(format!(
            "{at}: interrupted after {} of {runs} runs; not saved",
            report.runs.len()
        ));
        return Ok(None);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cell = Cell::of(profile_name, scenario, &report, elapsed, key);
    super::save_cell(&m.out, &cell)
        .map_err(io(format!("saving the cell in {}", m.out.display())))?;
    save_report(m, profile_name, scenario, &report)?;
    log(format!("{at}: {}", cell.grade()));
    Ok(Some(cell))
}

/// A cell's run plan, made after its profile is applied: ttl-bound faults are graded against
/// that profile's ttl. Its runs are spread evenly over the leader's loop (`--phases`), so a
/// cell's few runs cover the loop by construction (at random where no etcd lease can be read).
async fn cell_plan(
    lab: &Lab,
    m: &MatrixPlan,
    fault: Fault,
) -> Result<patroni_lab_scenario::runner::Plan, MatrixError> {
    // Patroni's settings under this profile, read once for the cell's runs.
    let live = Live::read(lab, ConfigReader::Run)
        .await
        .map_err(MatrixError::Lab)?;
    let expectations =
        plan::live_expectations(&live, fault, &Overrides::default()).map_err(MatrixError::Lab)?;
    let mut probe = m.probe.clone();
    if fault.effects().needs_readers && probe.reader.is_none() {
        probe.reader = Some(lab.reader().map_err(MatrixError::Lab)?);
    }
    plan::plan_for(
        fault,
        expectations,
        probe,
        plan::default_duration(plan::MATRIX_INJECT_AT),
        if lab.etcd_url.is_some() {
            Jitter::Stratified(m.runs)
        } else {
            Jitter::LoopWait
        },
        plan::default_duration(plan::MATRIX_TAIL),
        live,
    )
    .map_err(MatrixError::Lab)
}

/// Applies `name` unless it is the profile applied last.
async fn ensure(
    lab: &Lab,
    m: &MatrixPlan,
    name: &str,
    applied: &mut Option<String>,
    log: &mut impl FnMut(String),
) -> Result<(), MatrixError> {
    if applied.as_deref() != Some(name) {
        apply(lab, &m.profiles, name, log, "applying").await?;
        *applied = Some(name.to_string());
    }
    Ok(())
}

/// What produces a profile's figures besides the scenario: its resolved settings, the load,
/// the topology and this very build (see [`super::key`], [`build_id`]).
fn made_by(settings: &Settings, load: &ProbeSettings) -> String {
    format!(
        "{settings:?}|clients {} {:?} rate {:?} reads {} readers {}|LAB_NODES={}|patroni-lab {} {}",
        load.clients,
        load.mode,
        load.rate,
        load.read_ratio,
        load.reader.is_some(),
        std::env::var("LAB_NODES").unwrap_or_else(|_| "2".into()),
        env!("CARGO_PKG_VERSION"),
        build_id()
    )
}

/// This build, by the bytes of the running program: a saved cell is reused only by the code
/// that graded it (the crate's version alone stays the same across commits, and the
/// expectations are code). A program that cannot read itself reuses nothing.
fn build_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| match std::env::current_exe() {
        Ok(exe) => id_of(&exe),
        Err(e) => format!("unreadable build {e} {}", patroni_lab_common::unix_us()),
    })
    .clone()
}

/// The id of the program at `path`: a hash of its bytes.
fn id_of(path: &std::path::Path) -> String {
    use std::hash::{Hash, Hasher};
    match std::fs::read(path) {
        Ok(bytes) => {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut h);
            format!("build {:016x}", h.finish())
        }
        Err(e) => format!("unreadable build {e} {}", patroni_lab_common::unix_us()),
    }
}

fn minutes(s: f64) -> String {
    format!("{}:{:02}", (s / 60.0) as u64, (s % 60.0) as u64)
}

/// Runs the matrix; `log` hears every progress line. Returns the table (also written to
/// `out/matrix.{md,json,html}`), how it ended, and the minutes spent on runs.
pub async fn run(
    lab: &Lab,
    m: &MatrixPlan,
    stop: watch::Receiver<bool>,
    mut log: impl FnMut(String),
) -> Result<(Matrix, Ended, String), MatrixError> {
    patroni_lab_cluster::cluster::containers_up(lab).map_err(MatrixError::Lab)?;
    let all = &m.all_profiles;
    // The profile the lab runs now: applying it again would change nothing; put back at the end.
    let active = active_profile(lab, all).await?;
    let before = active.clone().unwrap_or_else(|| "default".to_string());
    let mut applied = active;
    let labels: Vec<String> = m.scenarios.iter().map(|(l, _)| l.clone()).collect();
    let names: Vec<String> = m.profiles.iter().map(|(n, _)| n.clone()).collect();
    let order = super::plan(&names, &labels);
    let runs = m.runs as usize;
    let mut eta = Eta {
        done_runs: 0,
        spent_s: 0.0,
        left_runs: order.len() * runs,
    };
    let (mut cells, mut steady) = (Vec::new(), Vec::new());
    let mut ended = Ended::Complete;
    // A cell that fails to run ends the loop, but the profile is still put back and the table
    // of the cells done still written; the error is returned after.
    let mut failure: Option<MatrixError> = None;
    macro_rules! or_end {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        };
    }
    for (index, (profile_name, scenario)) in order.iter().enumerate() {
        if *stop.borrow() {
            ended = Ended::Interrupted;
            break;
        }
        let at = format!(
            "[cell {} of {}] {profile_name} × {scenario}",
            index + 1,
            order.len()
        );
        let settings = &m
            .profiles
            .iter()
            .find(|(n, _)| n == profile_name)
            .expect("checked")
            .1;
        let producer = made_by(settings, &m.probe);
        let first_of_profile = index == 0 || order[index - 1].0 != *profile_name;
        if first_of_profile && m.steady > 0 {
            let here = (profile_name.as_str(), producer.as_str(), at.as_str());
            match or_end!(steady_of(lab, m, here, &mut applied, &mut log, &stop).await) {
                Some(s) => steady.push(s),
                None => {
                    ended = Ended::Interrupted;
                    break;
                }
            }
        }
        let key = super::key(&[&producer, scenario, &runs.to_string()]);
        if let Some(cell) = super::saved_cell(&m.out, profile_name, scenario, runs, &key) {
            log(format!(
                "{at}: saved by an earlier run, kept ({})",
                cell.grade()
            ));
            eta.left_runs -= runs;
            cells.push(cell);
            continue;
        }
        or_end!(ensure(lab, m, profile_name, &mut applied, &mut log).await);
        let fault = m
            .scenarios
            .iter()
            .find(|(l, _)| l == scenario)
            .expect("checked")
            .1;
        let run_plan = or_end!(cell_plan(lab, m, fault).await);
        let here = (
            profile_name.as_str(),
            scenario.as_str(),
            at.as_str(),
            key.as_str(),
        );
        match or_end!(run_cell(lab, &run_plan, m, here, &mut eta, &stop, &mut log).await) {
            Some(cell) => cells.push(cell),
            None => {
                ended = Ended::Interrupted;
                break;
            }
        }
    }
    let put_back = if applied.as_deref() != Some(before.as_str()) {
        apply(lab, all, &before, &mut log, "put back").await
    } else {
        Ok(())
    };
    let table = Matrix {
        schema: SCHEMA,
        schema_version: SCHEMA_VERSION,
        profiles: names,
        scenarios: labels,
        runs_per_cell: runs,
        cells,
        steady,
    };
    let written = write_table(m, &table);
    if let Some(e) = failure {
        if let Err(p) = &put_back {
            log(format!("the profile was not put back: {p}"));
        }
        if let Err(w) = &written {
            log(format!("the table was not written: {w}"));
        }
        return Err(e);
    }
    put_back?;
    written?;
    let spent = format!("spent {} on {} runs", minutes(eta.spent_s), eta.done_runs);
    Ok((table, ended, spent))
}

/// The steady run of a profile: saved by an earlier matrix, else run now and saved; `None`
/// when a signal cut it short. `here`: the profile, what produces its figures, the log prefix.
async fn steady_of(
    lab: &Lab,
    m: &MatrixPlan,
    (profile_name, producer, at): (&str, &str, &str),
    applied: &mut Option<String>,
    log: &mut impl FnMut(String),
    stop: &watch::Receiver<bool>,
) -> Result<Option<Steady>, MatrixError> {
    let secs = m.steady as f64;
    let key = super::key(&[producer, "steady", &m.steady.to_string()]);
    if let Some(s) = super::saved_steady(&m.out, profile_name, secs, &key) {
        return Ok(Some(s));
    }
    ensure(lab, m, profile_name, applied, log).await?;
    log(format!(
        "profile {profile_name}: steady run of {secs} s, no fault"
    ));
    let s = steady_run(lab, m, profile_name, &key, stop.clone()).await?;
    if *stop.borrow() {
        log(format!("{at}: the steady run was interrupted; not saved"));
        return Ok(None);
    }
    super::save_steady(&m.out, &s).map_err(io("saving a steady run"))?;
    Ok(Some(s))
}

/// A cell's whole report beside the cell: `cells/<profile>/<scenario>.report.json`.
fn save_report(
    m: &MatrixPlan,
    profile_name: &str,
    scenario: &str,
    report: &patroni_lab_scenario::report::ScenarioReport,
) -> Result<(), MatrixError> {
    let report_path = m
        .out
        .join("cells")
        .join(profile_name)
        .join(format!("{scenario}.report.json"));
    let text = serde_json::to_string_pretty(report).map_err(|e| MatrixError::Io {
        what: "the cell's report".into(),
        detail: e.to_string(),
    })?;
    std::fs::write(&report_path, text + "\n")
        .map_err(io(format!("cannot write {}", report_path.display())))
}

/// The table as `matrix.md`, `matrix.json` and `matrix.html` in the matrix's folder.
fn write_table(m: &MatrixPlan, table: &Matrix) -> Result<(), MatrixError> {
    let json = serde_json::to_string_pretty(table).map_err(|e| MatrixError::Io {
        what: "the matrix".into(),
        detail: e.to_string(),
    })?;
    for (file, text) in [
        ("matrix.md", super::markdown(table)),
        ("matrix.json", json + "\n"),
        ("matrix.html", super::html(table)),
    ] {
        let path = m.out.join(file);
        std::fs::write(&path, text).map_err(io(format!("cannot write {}", path.display())))?;
    }
    Ok(())
}

/// A steady probe run under the active profile, once the cluster is whole.
async fn steady_run(
    lab: &Lab,
    m: &MatrixPlan,
    profile: &str,
    key: &str,
    stop: watch::Receiver<bool>,
) -> Result<Steady, MatrixError> {
    let live = Live::read_within(lab, ConfigReader::Run, plan::WHOLE_BEFORE, &stop)
        .await
        .map_err(MatrixError::Lab)?;
    patroni_lab_cluster::cluster::wait_whole(lab, &live, plan::WHOLE_BEFORE, &stop)
        .await
        .map_err(MatrixError::Lab)?;
    let mut probe = m.probe.clone();
    probe.duration = Some(Duration::from_secs(m.steady));
    probe.check().map_err(|e| MatrixError::Lab(e.to_string()))?;
    let report = patroni_lab_probe::session::run(
        &probe,
        &patroni_lab_probe::report::Limits::default(),
        stop,
    )
    .await
    .map_err(|e| MatrixError::Lab(format!("the probe failed: {e}")))?;
    Ok(Steady::of(profile, &report, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cell is keyed by the program that graded it: the bytes of this very build, not only
    /// the crate's version (which stays the same across commits).
    #[test]
    fn a_cells_key_names_the_build_that_graded_it() {
        // A program one byte different is another build; the same bytes are the same one.
        let exe = std::env::current_exe().unwrap();
        let copy = std::env::temp_dir().join(format!("plab-build-id-{}", std::process::id()));
        let mut bytes = std::fs::read(&exe).unwrap();
        std::fs::write(&copy, &bytes).unwrap();
        let same = id_of(&copy);
        bytes.push(0);
        std::fs::write(&copy, &bytes).unwrap();
        let other = id_of(&copy);
        let _ = std::fs::remove_file(&copy);
        let id = build_id();
        assert_eq!(same, id);
        assert_ne!(other, id);
        assert!(id.starts_with("build "), "{id}");
        let settings = profile::Profile::parse("x", "x.ini", ";; x\n[patroni]\nttl = 30\n")
            .unwrap()
            .settings;
        let made = made_by(&settings, &ProbeSettings::lab_defaults("host=x"));
        assert!(made.ends_with(&id), "{made}");
    }
}
