//! The scenario report: one JSON document for a set of runs (schema
//! `patroni-lab/scenario-report`, version 1, see SCENARIOS.md), the text summary, and the HTML
//! page (a table of the set first, then each run's chart with the fault's timeline on it).

use std::fmt::Write as _;

use patroni_lab_probe::html::{self, Marker, escape};
use serde::Serialize;

use crate::runner::ScenarioRun;
use patroni_lab_faults::faults::Fault;
use patroni_lab_faults::grade::Expectations;

pub const SCHEMA: &str = "patroni-lab/scenario-report";
pub const SCHEMA_VERSION: u32 = 1;

/// min / median / p95 / max of one figure over the runs that measured it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Spread {
    pub metric: &'static str,
    /// Runs that measured it (a lost-write count is not measured when the check did not run).
    pub runs: usize,
    pub min: Option<f64>,
    pub median: Option<f64>,
    pub p95: Option<f64>,
    pub max: Option<f64>,
}

impl Spread {
    pub fn of(metric: &'static str, values: &[Option<f64>]) -> Self {
        let mut v: Vec<f64> = values.iter().flatten().copied().collect();
        v.sort_by(f64::total_cmp);
        // Nearest rank: the smallest value with at least q of the runs at or below it.
        let rank = |q: f64| {
            (!v.is_empty()).then(|| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1])
        };
        let median = match v.len() {
            0 => None,
            n if n % 2 == 1 => Some(v[n / 2]),
            n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
        };
        Self {
            metric,
            runs: v.len(),
            min: v.first().copied(),
            median,
            p95: rank(0.95),
            max: v.last().copied(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    pub schema: &'static str,
    pub schema_version: u32,
    pub scenario: &'static str,
    pub fault: Fault,
    pub description: String,
    pub expectations: Expectations,
    /// Whether every expectation held in every run (never when a run was interrupted or its
    /// fault did not run as planned).
    pub passed: bool,
    /// A signal cut some run short: the set is no measurement.
    pub interrupted: bool,
    /// PASS, FAIL, ERROR (a fault did not run as planned or was not proven) or INTERRUPTED.
    pub verdict: Verdict,
    pub spreads: Vec<Spread>,
    /// Runs asked for; `runs` holds those that ran (fewer only when a signal stopped the set:
    /// then INTERRUPTED, never a PASS of fewer runs).
    pub runs_requested: u32,
    /// Parts of the cluster no run could check because they were not given (a cluster given
    /// by URLs: its HAProxy, its PgBouncer, its members' PostgreSQL directly), each with what
    /// that leaves out. Never this lab's parts in their place.
    pub not_checked: Vec<String>,
    pub runs: Vec<ScenarioRun>,
}

impl ScenarioReport {
    pub fn new(
        fault: Fault,
        expectations: Expectations,
        runs: Vec<ScenarioRun>,
        runs_requested: u32,
        not_checked: Vec<String>,
    ) -> Self {
        let figure = |f: &dyn Fn(&ScenarioRun) -> Option<f64>| -> Vec<Option<f64>> {
            runs.iter().map(f).collect()
        };
        fn accounted(r: &ScenarioRun) -> Option<&crate::phases::Phases> {
            r.phases.as_ref().filter(|p| p.accounted_for)
        }
        let spreads = vec![
            Spread::of(
                "longest_window_ms",
                &figure(&|r| Some(r.probe.analysis.longest_window_ms)),
            ),
            Spread::of(
                "failed",
                &figure(&|r| Some(r.probe.analysis.totals.failed as f64)),
            ),
            Spread::of(
                "in_doubt",
                &figure(&|r| Some(r.probe.analysis.totals.in_doubt as f64)),
            ),
            Spread::of(
                "lost",
                &figure(&|r| {
                    let l = &r.probe.lost_writes;
                    l.checked.then_some(l.missing.len() as f64)
                }),
            ),
            Spread::of(
                "split_brain_writes",
                &figure(&|r| {
                    let a = &r.probe.analysis;
                    Some(
                        a.split_brain
                            .iter()
                            .map(|b| b.writes_after_takeover)
                            .sum::<u64>() as f64,
                    )
                }),
            ),
            Spread::of(
                "old_leader_writes_after_lock_lost",
                &figure(&|r| r.old_leader_writes_after_lock_lost.map(|n| n as f64)),
            ),
            // The window's part the cluster took (Patroni's floor) and the clients' way back,
            // side by side over the runs: what a client-side setting can still lower. Each is
            // a range (the new primary's moment seen to within a sampling gap): its ends are
            // spread apart. Runs whose phases are not accounted for are left out.
            Spread::of(
                "cluster_part_min_ms",
                &figure(&|r| accounted(r).and_then(|p| p.cluster_ms.map(|c| c.min_ms))),
            ),
            Spread::of(
                "cluster_part_max_ms",
                &figure(&|r| accounted(r).and_then(|p| p.cluster_ms.map(|c| c.max_ms))),
            ),
            Spread::of(
                "clients_part_min_ms",
                &figure(&|r| accounted(r).and_then(|p| p.clients_ms().map(|c| c.min_ms))),
            ),
            Spread::of(
                "clients_part_max_ms",
                &figure(&|r| accounted(r).and_then(|p| p.clients_ms().map(|c| c.max_ms))),
            ),
            Spread::of("whole_again_ms", &figure(&|r| r.whole_again_ms)),
            Spread::of(
                "lease_remaining_at_inject_ms",
                &figure(&|r| r.lease_at_inject.map(|p| p.remaining_ms)),
            ),
        ];
        // Fewer runs than asked: a signal stopped the set between runs.
        let short = (runs.len() < runs_requested as usize).then_some(());
        Self {
            schema: SCHEMA,
            schema_version: SCHEMA_VERSION,
            scenario: fault.name(),
            fault,
            description: fault.describe(),
            expectations,
            passed: short.is_none() && !runs.is_empty() && runs.iter().all(|r| r.passed),
            interrupted: short.is_some() || runs.iter().any(|r| r.interrupted),
            verdict: if short.is_some() {
                Verdict::Interrupted
            } else {
                Verdict::of(&runs)
            },
            spreads,
            runs_requested,
            not_checked,
            runs,
        }
    }
}

/// What a set of runs earned, in order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// A signal cut a run short: nothing was graded.
    Interrupted,
    /// A fault step failed or its effect was not proven.
    Error,
    /// Some expectation failed in some run.
    Fail,
    /// Every run met every expectation.
    Pass,
}

impl Verdict {
    /// The exit code that says this verdict.
    pub fn exit_code(self) -> patroni_lab_common::exit::Exit {
        use patroni_lab_common::exit::Exit;
        match self {
            Verdict::Interrupted => Exit::Interrupted,
            Verdict::Error => Exit::FaultError,
            Verdict::Fail => Exit::Failed,
            Verdict::Pass => Exit::Pass,
        }
    }

    pub fn of(runs: &[ScenarioRun]) -> Self {
        if runs.is_empty() || runs.iter().any(|r| r.interrupted) {
            Self::Interrupted
        } else if runs.iter().any(|r| r.fault_error.is_some()) {
            Self::Error
        } else if runs.iter().all(|r| r.passed) {
            Self::Pass
        } else {
            Self::Fail
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Interrupted => "INTERRUPTED (not graded)",
            Self::Error => "ERROR (the fault did not run as planned)",
            Self::Fail => "FAIL",
            Self::Pass => "PASS",
        }
    }
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "not measured".into(), |x| format!("{x:.0}"))
}

/// One run's timeline and grades, as text.
pub fn run_summary(run: &ScenarioRun) -> String {
    let mut s = String::new();
    if let Some(e) = &run.fault_error {
        let _ = writeln!(s, "  FAULT DID NOT RUN AS PLANNED: {e}");
    }
    if run.interrupted {
        let _ = writeln!(
            s,
            "  INTERRUPTED by a signal: the fault was cut short or never ran; not graded"
        );
    }
    let _ = writeln!(s, "  timeline (probe's clock):");
    for e in &run.events {
        let _ = writeln!(s, "    {:>+8.2} s  {}", e.at_us as f64 / 1e6, e.what);
    }
    if let Some(pool) = &run.reader_pool {
        for line in pool.lines() {
            let _ = writeln!(s, "  {line}");
        }
    }
    if let Some(p) = &run.phases {
        for line in crate::phases::lines(p) {
            let _ = writeln!(s, "  {line}");
        }
    }
    if let (Some(at), Some(n)) = (run.lock_lost_at_us, run.old_leader_writes_after_lock_lost) {
        let _ = writeln!(
            s,
            "  {} lost the leader lock at {:+.2} s; writes it acknowledged after that: {n}",
            run.leader_before,
            at as f64 / 1e6
        );
        if let Some(r) = run.old_leader_reads_after_lock_lost {
            let _ = writeln!(s, "    reads it answered as a primary after that: {r}");
        }
    }
    if let Some(d) = &run.dcs_log {
        let _ = writeln!(s, "  {}", d.line());
    }
    let gaps: Vec<String> = run
        .sampling
        .iter()
        .map(|g| {
            let ms =
                |v: Option<f64>| v.map_or("not measured".to_string(), |x| format!("{x:.0} ms"));
            format!(
                "{} {} samples, gap p99 {} max {}",
                g.source,
                g.samples,
                ms(g.p99_gap_ms),
                ms(g.max_gap_ms)
            )
        })
        .collect();
    if !gaps.is_empty() {
        let _ = writeln!(s, "  sampling: {}", gaps.join("; "));
    }
    let t = &run.client_timeouts;
    let _ = writeln!(
        s,
        "  clients: statement time-out {:.0} ms, connect time-out {:.0} ms{}; longest single wait {}",
        t.statement_ms,
        t.connect_ms,
        t.changed_by_scenario
            .as_deref()
            .map_or(String::new(), |n| format!(" ({n})")),
        run.longest_wait_ms
            .map_or("not measured".to_string(), |ms| format!("{ms:.0} ms"))
    );
    for g in &run.grades {
        let _ = writeln!(
            s,
            "  {}  {:<20} expected {:<16} observed {}",
            if g.pass { "PASS" } else { "FAIL" },
            g.name,
            g.expected,
            g.observed
        );
    }
    s
}

/// The set, as text: each run's probe summary, timeline and grades, then the spread.
pub fn summary(r: &ScenarioReport) -> String {
    let mut s = String::new();
    for (i, run) in r.runs.iter().enumerate() {
        let _ = writeln!(
            s,
            "== {} run {} of {}: {} (leader {} -> {})",
            r.scenario,
            i + 1,
            r.runs_requested,
            r.description,
            run.leader_before,
            run.leader_after.as_deref().unwrap_or("?")
        );
        s.push_str(&patroni_lab_probe::report::summary(&run.probe));
        s.push_str(&run_summary(run));
    }
    if r.runs.len() > 1 {
        let _ = writeln!(
            s,
            "== {} over {} runs: min / median / p95 / max",
            r.scenario,
            r.runs.len()
        );
        for sp in &r.spreads {
            let _ = writeln!(
                s,
                "  {:<34} {} / {} / {} / {}{}",
                sp.metric,
                num(sp.min),
                num(sp.median),
                num(sp.p95),
                num(sp.max),
                if sp.runs < r.runs.len() {
                    format!("   (measured in {} of {} runs)", sp.runs, r.runs.len())
                } else {
                    String::new()
                }
            );
        }
    }
    for n in &r.not_checked {
        let _ = writeln!(s, "not checked: {n}");
    }
    let _ = writeln!(
        s,
        "{}: {} ({} of {} runs passed every expectation{})",
        r.scenario,
        r.verdict.as_str(),
        r.runs.iter().filter(|x| x.passed).count(),
        r.runs_requested,
        if r.runs.len() < r.runs_requested as usize {
            format!("; {} ran before a signal stopped the set", r.runs.len())
        } else {
            String::new()
        }
    );
    s
}

/// The HTML page: the set's table first, then each run's chart with its timeline.
pub fn page(r: &ScenarioReport) -> String {
    let mut table = String::new();
    let _ = write!(
        table,
        "<h2>{} — {}</h2><p><b>{}</b></p><table><tr><th>metric</th><th>runs</th><th>min</th><th>median</th><th>p95</th><th>max</th></tr>",
        escape(r.scenario),
        escape(&r.description),
        r.verdict.as_str()
    );
    for sp in &r.spreads {
        let _ = write!(
            table,
            "<tr><td style=\"text-align:left\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            sp.metric,
            sp.runs,
            num(sp.min),
            num(sp.median),
            num(sp.p95),
            num(sp.max)
        );
    }
    table.push_str("</table>");
    let mut pages = String::new();
    for (i, run) in r.runs.iter().enumerate() {
        let markers: Vec<Marker> = run
            .events
            .iter()
            .map(|e| Marker {
                at_us: e.at_us,
                label: e.what.clone(),
            })
            .collect();
        let extra = format!(
            "{}<h2>Timeline and grades</h2><pre>{}</pre>",
            run.phases
                .as_ref()
                .map_or(String::new(), crate::phases::html_bar),
            escape(&run_summary(run))
        );
        let title = format!("{} run {} of {}", r.scenario, i + 1, r.runs.len());
        let page = html::page_with(&run.probe, &title, &extra, &markers);
        // Each run's page body, one after the other, under the set's table.
        let body = page
            .split_once("<body>")
            .and_then(|(_, b)| b.rsplit_once("</body>"))
            .map_or(page.as_str(), |(b, _)| b);
        pages.push_str(body);
    }
    format!(
        "{}<h1>patroni-lab scenario {}</h1>{table}{pages}</body></html>\n",
        html::head(&format!("patroni-lab scenario {}", r.scenario)),
        escape(r.scenario)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_of_runs_and_unmeasured_ones() {
        let s = Spread::of("x", &[Some(3.0), Some(1.0), None, Some(2.0)]);
        assert_eq!(s.runs, 3);
        assert_eq!(
            (s.min, s.median, s.p95, s.max),
            (Some(1.0), Some(2.0), Some(3.0), Some(3.0))
        );
        let none = Spread::of("x", &[None, None]);
        assert_eq!((none.runs, none.median), (0, None));
        let even = Spread::of("x", &[Some(1.0), Some(2.0), Some(3.0), Some(4.0)]);
        assert_eq!(even.median, Some(2.5));
        assert_eq!(num(None), "not measured");
    }
}
