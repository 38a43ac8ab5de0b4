//! Turning a request into runs, each default said once: the runner's timings (inject at, tail,
//! how long to wait for a whole cluster first), the probe's settings for the lab and its load,
//! a fault's expectations under the live timing, the plan of a run, and a set of runs with
//! progress lines. The scenario command, the matrix and the soak all plan through here.

use std::time::Duration;

use patroni_lab_probe::settings::{Settings, parse_duration};

use crate::report::ScenarioReport;
use crate::runner::{self, Jitter, Plan, RunnerError, ScenarioRun};
use patroni_lab_cluster::cluster::Live;
use patroni_lab_cluster::lab::Lab;
use patroni_lab_faults::fault::Timing;
use patroni_lab_faults::faults::Fault;
use patroni_lab_faults::grade::{Expectations, Overrides};

/// When the fault is injected after the probe started (before the jitter).
pub const INJECT_AT: &str = "5s";
/// How long the probe goes on once the cluster is whole again.
pub const TAIL: &str = "3s";
/// The matrix's: a cell's runs are placed in the leader's loop (`--phases`), which waits for
/// the lease on top of this, so 2 s of writes before the fault is baseline enough; and 1 s
/// after the cluster is whole again (the clients are long back by then). 5 s a run over a
/// matrix's 120 runs is 10 minutes.
pub const MATRIX_INJECT_AT: &str = "2s";
pub const MATRIX_TAIL: &str = "1s";
/// How long a run waits for a whole cluster before it starts.
pub const WHOLE_BEFORE: Duration = Duration::from_secs(120);
/// The longest injection jitter: Patroni's own ceiling for loop_wait is far below it.
pub const MAX_JITTER: Duration = Duration::from_secs(120);

/// A default above as a duration.
pub fn default_duration(text: &str) -> Duration {
    parse_duration(text).expect("the runner's defaults are valid durations")
}

/// `--inject-jitter`: `loop` or a duration up to [`MAX_JITTER`].
pub fn parse_jitter(s: &str) -> Result<Jitter, String> {
    if s == "loop" {
        return Ok(Jitter::LoopWait);
    }
    let d =
        parse_duration(s).map_err(|e| format!("{e} (or `loop`: up to the cluster's loop_wait)"))?;
    if d > MAX_JITTER {
        return Err(format!(
            "{s} is more than {} s; a jitter is meant to cover one Patroni loop",
            MAX_JITTER.as_secs()
        ));
    }
    Ok(Jitter::UpTo(d))
}

/// The probe's settings for this lab, with the load `apply_load` puts in (no live line; the
/// lost-write check confirms the leader through the lab's REST APIs).
pub fn probe_for(
    lab: &Lab,
    apply_load: impl FnOnce(&mut Settings) -> Result<(), String>,
) -> Result<Settings, String> {
    let mut probe = Settings::lab_defaults(&lab.client_url);
    probe.password = Some(lab.password.clone());
    probe.endpoint = lab.client_url.clone();
    apply_load(&mut probe)?;
    probe.live = false;
    probe.patroni = lab.nodes.iter().map(|n| n.api_url.clone()).collect();
    Ok(probe)
}

/// A run's plan: `probe` (the lab's, with its load) adjusted for the fault and bounded by the
/// expectations.
pub fn plan_for(
    fault: Fault,
    expectations: Expectations,
    mut probe: Settings,
    inject_at: Duration,
    inject_jitter: Jitter,
    tail: Duration,
    live: Live,
) -> Result<Plan, String> {
    let client_note = bound_probe(fault, &expectations, &mut probe, inject_at, tail)?;
    Ok(Plan {
        fault,
        client_note,
        expectations,
        probe,
        inject_at,
        inject_jitter,
        tail,
        whole_before: WHOLE_BEFORE,
        live,
    })
}

/// The probe adjusted for `fault` and bounded by the expectations, checked: what the fault
/// changed in it, if anything. The scenario command checks its flags with this before it
/// reads the cluster; the plan is then made once, under the live settings.
pub fn bound_probe(
    fault: Fault,
    expectations: &Expectations,
    probe: &mut Settings,
    inject_at: Duration,
    tail: Duration,
) -> Result<Option<String>, String> {
    let client_note = fault.adjust_probe(probe);
    // The run's upper bound: the runner stops the probe once the cluster is whole again. The
    // hold is counted even when the limit to be whole was given by hand.
    let hold = Duration::from_secs(fault.secs().unwrap_or(0));
    probe.duration = Some(
        inject_at + MAX_JITTER + hold + expectations.whole_within + tail + Duration::from_secs(60),
    );
    probe.check().map_err(|e| e.to_string())?;
    Ok(client_note)
}

/// The cluster's timing in the live settings.
pub fn live_timing(live: &Live) -> Result<Timing, String> {
    Timing::from_config(&live.config)
}

/// A fault's expectations under the cluster's live timing, with the overrides.
pub fn live_expectations(
    live: &Live,
    fault: Fault,
    overrides: &Overrides,
) -> Result<Expectations, String> {
    let timing = live_timing(live)?;
    Ok(fault.expectations_for(timing).with(overrides))
}

/// Where a set of runs is, for progress lines.
pub enum Progress<'a> {
    Starting(u32),
    Ended(&'a ScenarioRun),
}

/// Runs `plan` up to `runs` times (fewer when stopped) and sums them up; `each` hears of every
/// run as it starts and ends.
pub async fn run_set(
    lab: &Lab,
    plan: &Plan,
    runs: u32,
    stop: tokio::sync::watch::Receiver<bool>,
    mut each: impl FnMut(Progress),
) -> Result<ScenarioReport, RunnerError> {
    let mut done = Vec::new();
    // Spread over the loop: each run's lease time left, from the live timing.
    let points = match plan.inject_jitter {
        Jitter::Stratified(n) => {
            let t = live_timing(&plan.live).map_err(RunnerError::NotWhole)?;
            patroni_lab_cluster::lease::stratified(n, t.ttl, t.loop_wait)
        }
        _ => Vec::new(),
    };
    for i in 1..=runs {
        each(Progress::Starting(i));
        let mut this = plan.clone();
        if !points.is_empty() {
            this.inject_jitter = Jitter::AtLeaseRemaining(points[(i as usize - 1) % points.len()]);
        }
        if *stop.borrow() {
            break;
        }
        let run = match runner::run_once(lab, &this, stop.clone()).await {
            Ok(run) => run,
            // Stopped before the fault (waiting for a whole cluster, say): the runs done so
            // far stay, and the set is short, so INTERRUPTED.
            Err(_) if *stop.borrow() => break,
            Err(e) => return Err(e),
        };
        each(Progress::Ended(&run));
        done.push(run);
        if *stop.borrow() {
            break;
        }
    }
    Ok(ScenarioReport::new(
        plan.fault,
        plan.expectations.clone(),
        done,
        runs,
        lab.not_given(),
    ))
}

/// One line on a run that ended.
pub fn run_line(run: &ScenarioRun) -> String {
    format!(
        "{}: window {:.0} ms, whole again {}",
        if run.interrupted {
            "INTERRUPTED (not graded)"
        } else if run.fault_error.is_some() {
            "ERROR (the fault did not run as planned)"
        } else if run.passed {
            "passed"
        } else {
            "FAILED"
        },
        run.probe.analysis.longest_window_ms,
        run.whole_again_ms
            .map_or("not within the limit".into(), |ms| format!(
                "after {:.1} s",
                ms / 1000.0
            ))
    )
}
