//! The comparison matrix: scenarios × profiles. Each cell is a set of runs of one scenario under
//! one profile, summed up in a `Cell` that is saved as soon as it completes (so an interrupted
//! matrix resumes where it stopped), and the whole is rendered as one table — Markdown for the
//! terminal and the README, JSON, and an HTML page (a bar chart of what clients waited, then
//! the table coloured by grade).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use patroni_lab_probe::html::escape;
use serde::{Deserialize, Serialize};

use patroni_lab_scenario::report::ScenarioReport;

pub mod run;

pub const SCHEMA: &str = "patroni-lab/matrix";
pub const SCHEMA_VERSION: u32 = 1;

/// One figure over a cell's runs: median and worst (`None`: measured in no run).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    pub median: Option<f64>,
    pub max: Option<f64>,
}

/// One cell: a scenario's runs under one profile, summed up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub profile: String,
    pub scenario: String,
    pub runs: usize,
    pub passed_runs: usize,
    pub window_ms: Figure,
    pub stall_ms: Figure,
    pub failed: Figure,
    pub in_doubt: Figure,
    /// Lost acknowledged writes over all runs; `None` when a run's check did not run.
    pub lost: Option<u64>,
    pub acknowledged: u64,
    pub split_brain_writes: u64,
    /// Runs in which another member led afterwards: a failover (for a short freeze, a false
    /// one that a longer ttl would have avoided).
    #[serde(default)]
    pub failovers: usize,
    /// A fault step that failed in some run (the cell then says so instead of a grade).
    pub fault_error: Option<String>,
    /// Seconds the cell took.
    pub took_s: f64,
    /// What produced it ([`key`]): a cell is reused only by a matrix with the same key.
    #[serde(default)]
    pub key: String,
    /// The settings' predictions over the cell's runs, one per moment predicted (empty: the
    /// fault has none, or no run was broken into phases).
    #[serde(default)]
    pub predictions: Vec<CellPrediction>,
    /// What the reader endpoint's clients saw over the cell's runs (`None`: no run read there).
    #[serde(default)]
    pub readers: Option<CellReaders>,
}

/// The reader side of a cell, over its runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CellReaders {
    pub reads: u64,
    pub failed: u64,
    /// The worst run's staleness p99 and the stalest read of all (ms).
    pub staleness_p99_ms: f64,
    pub staleness_max_ms: f64,
    /// Reads that missed their own client's newest write (read-your-writes).
    pub own_write_missing: u64,
    pub monotonic_violations: u64,
}

impl CellReaders {
    fn over<'a>(
        runs: impl IntoIterator<Item = &'a patroni_lab_probe::readers::Readers>,
    ) -> Option<Self> {
        runs.into_iter().fold(None, |acc: Option<Self>, r| {
            let mut c = acc.unwrap_or_default();
            c.reads += r.reads;
            c.failed += r.failed;
            c.staleness_p99_ms = c.staleness_p99_ms.max(r.staleness.p99_ms);
            c.staleness_max_ms = c.staleness_max_ms.max(r.staleness.max_ms);
            c.own_write_missing += r.own_write_missing;
            c.monotonic_violations += r.monotonic_violations;
            Some(c)
        })
    }

    /// `readers: stale p99 0.0 s (max 1.2), failed 12, own write missing 3 of 2400, monotonic 0`.
    fn text(&self) -> String {
        format!(
            "readers: staleness p99 {:.2} s (max {:.2}), failed {}, own write missing {} of {}, monotonic {}",
            self.staleness_p99_ms / 1000.0,
            self.staleness_max_ms / 1000.0,
            self.failed,
            self.own_write_missing,
            self.reads,
            self.monotonic_violations
        )
    }
}

/// One predicted moment over a cell's runs: the span of the ranges predicted (each run has its
/// own, from where the fault landed in the loop), the span measured, and the runs outside theirs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellPrediction {
    pub moment: String,
    /// Runs that predicted it.
    pub runs: usize,
    /// Runs whose measured moment lay outside their own range, or was not seen.
    pub outside: usize,
    /// ms after the injection: the lowest minimum and the highest maximum predicted.
    pub predicted_ms: (f64, f64),
    /// ms after the injection: the earliest and the latest measured (`None`: seen in no run).
    pub measured_ms: Option<(f64, f64)>,
}

/// The window's end as a predicted moment.
const FIRST_WRITE: &str = "the first client write";

impl CellPrediction {
    /// Per moment, in the order first met, over the runs' phases; the first client write last.
    pub fn over<'a>(
        runs: impl IntoIterator<Item = &'a patroni_lab_scenario::phases::Phases>,
    ) -> Vec<Self> {
        let mut out: Vec<Self> = Vec::new();
        let mut add = |moment: &str,
                       pred: &patroni_lab_scenario::phases::Predicted,
                       measured: Option<f64>| {
            let i = out
                .iter()
                .position(|c| c.moment == moment)
                .unwrap_or_else(|| {
                    out.push(Self {
                        moment: moment.to_string(),
                        runs: 0,
                        outside: 0,
                        predicted_ms: (pred.min_ms, pred.max_ms),
                        measured_ms: None,
                    });
                    out.len() - 1
                });
            let c = &mut out[i];
            c.runs += 1;
            c.outside += usize::from(pred.outside || measured.is_none());
            c.predicted_ms = (
                c.predicted_ms.0.min(pred.min_ms),
                c.predicted_ms.1.max(pred.max_ms),
            );
            if let Some(v) = measured {
                c.measured_ms = Some(c.measured_ms.map_or((v, v), |(a, b)| (a.min(v), b.max(v))));
            }
        };
        for p in runs {
            let after = |at: Option<i64>| {
                at.zip(p.injected_at_us)
                    .map(|(at, inj)| (at - inj) as f64 / 1000.0)
            };
            for m in &p.milestones {
                if let Some(pred) = &m.predicted_ms {
                    add(m.name, pred, after(m.at_us));
                }
            }
            if let Some(pred) = &p.predicted_end_ms {
                add(FIRST_WRITE, pred, after(Some(p.window_end_us)));
            }
        }
        out
    }

    /// `lock left the old leader: predicted 0.6–22.9 s, measured 0.8–22.5 s, outside 0/3`.
    pub fn text(&self) -> String {
        let s = |ms: f64| format!("{:.1}", ms / 1000.0);
        let measured = self.measured_ms.map_or("not seen".into(), |(a, b)| {
            format!("measured {}–{} s", s(a), s(b))
        });
        format!(
            "{}: predicted {}–{} s, {measured}, outside {}/{}",
            self.moment,
            s(self.predicted_ms.0),
            s(self.predicted_ms.1),
            self.outside,
            self.runs
        )
    }
}

impl Cell {
    /// `scenario` is the row's label (`freeze-leader:4` for a freeze of 4 s).
    pub fn of(profile: &str, scenario: &str, r: &ScenarioReport, took_s: f64, key: &str) -> Self {
        let spread = |metric: &str| {
            r.spreads.iter().find(|s| s.metric == metric).map_or(
                Figure {
                    median: None,
                    max: None,
                },
                |s| Figure {
                    median: s.median,
                    max: s.max,
                },
            )
        };
        let stalls: Vec<Option<f64>> = r
            .runs
            .iter()
            .map(|run| {
                Some(
                    run.probe
                        .analysis
                        .stalls
                        .iter()
                        .map(|s| s.duration_ms)
                        .fold(0.0, f64::max),
                )
            })
            .collect();
        let stall = patroni_lab_scenario::report::Spread::of("stall", &stalls);
        let lost = r
            .runs
            .iter()
            .map(|run| {
                let l = &run.probe.lost_writes;
                l.checked.then_some(l.missing.len() as u64)
            })
            .sum::<Option<u64>>();
        Self {
            profile: profile.to_string(),
            scenario: scenario.to_string(),
            runs: r.runs.len(),
            passed_runs: r.runs.iter().filter(|x| x.passed).count(),
            window_ms: spread("longest_window_ms"),
            stall_ms: Figure {
                median: stall.median,
                max: stall.max,
            },
            failed: spread("failed"),
            in_doubt: spread("in_doubt"),
            lost,
            acknowledged: r
                .runs
                .iter()
                .map(|x| x.probe.lost_writes.acknowledged)
                .sum(),
            split_brain_writes: r
                .runs
                .iter()
                .flat_map(|x| x.probe.analysis.split_brain.iter())
                .map(|b| b.writes_after_takeover)
                .sum(),
            failovers: r
                .runs
                .iter()
                .filter(|x| {
                    x.leader_after
                        .as_ref()
                        .is_some_and(|l| *l != x.leader_before)
                })
                .count(),
            fault_error: r.runs.iter().find_map(|x| x.fault_error.clone()),
            took_s,
            key: key.to_string(),
            predictions: CellPrediction::over(r.runs.iter().filter_map(|x| x.phases.as_ref())),
            readers: CellReaders::over(
                r.runs
                    .iter()
                    .filter_map(|x| x.probe.analysis.readers.as_ref()),
            ),
        }
    }

    pub fn passed(&self) -> bool {
        self.fault_error.is_none() && self.runs > 0 && self.passed_runs == self.runs
    }

    /// The grade as the table shows it.
    pub fn grade(&self) -> String {
        match &self.fault_error {
            Some(_) => "ERROR".into(),
            None if self.passed() => format!("PASS {}/{}", self.passed_runs, self.runs),
            None => format!("FAIL {}/{}", self.passed_runs, self.runs),
        }
    }
}

/// What a profile costs when nothing fails: a steady probe run under it, no fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Steady {
    pub profile: String,
    pub secs: f64,
    /// Acknowledged transactions per second.
    pub tx_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub failed: u64,
    #[serde(default)]
    pub in_doubt: u64,
    /// What produced it ([`key`]).
    #[serde(default)]
    pub key: String,
}

impl Steady {
    pub fn of(profile: &str, r: &patroni_lab_probe::report::Report, key: &str) -> Self {
        let secs = r.duration_ms / 1000.0;
        let a = &r.analysis;
        Self {
            profile: profile.to_string(),
            secs,
            tx_per_s: if secs > 0.0 {
                a.totals.ok as f64 / secs
            } else {
                0.0
            },
            p50_ms: a.latency.overall.p50_ms,
            p99_ms: a.latency.overall.p99_ms,
            failed: a.totals.failed,
            in_doubt: a.totals.in_doubt,
            key: key.to_string(),
        }
    }
}

/// What produced a cell or a steady run, as a short hash of everything that changes its
/// figures: the profile's resolved settings, the scenario, the runs, the load, the topology and
/// the binary's version (`parts`, joined). FNV-1a, 64 bits, hex.
pub fn key(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.join("\u{1f}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// A saved steady run of `profile` made with the same `key` and lasting `secs` (within a
/// second), if any.
pub fn saved_steady(dir: &Path, profile: &str, secs: f64, key: &str) -> Option<Steady> {
    let text = std::fs::read_to_string(steady_path(dir, profile)).ok()?;
    let s: Steady = serde_json::from_str(&text).ok()?;
    (s.profile == profile && (s.secs - secs).abs() < 1.0 && s.key == key).then_some(s)
}

pub fn steady_path(dir: &Path, profile: &str) -> PathBuf {
    dir.join("cells").join(profile).join("steady.json")
}

/// Writes `text` to `path` by a temporary file and a rename, making the folder first.
fn write_whole(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}

pub fn save_steady(dir: &Path, s: &Steady) -> std::io::Result<()> {
    write_whole(
        &steady_path(dir, &s.profile),
        &(serde_json::to_string_pretty(s)? + "\n"),
    )
}

/// Where a matrix keeps its cells: `<dir>/cells/<profile>/<scenario>.json`.
pub fn cell_path(dir: &Path, profile: &str, scenario: &str) -> PathBuf {
    dir.join("cells")
        .join(profile)
        .join(format!("{scenario}.json"))
}

/// A cell saved by an earlier, interrupted matrix with the same number of runs and the same
/// `key`, if any; a cell whose fault did not run as planned (ERROR) is never reused.
pub fn saved_cell(
    dir: &Path,
    profile: &str,
    scenario: &str,
    runs: usize,
    key: &str,
) -> Option<Cell> {
    let text = std::fs::read_to_string(cell_path(dir, profile, scenario)).ok()?;
    let cell: Cell = serde_json::from_str(&text).ok()?;
    (cell.runs == runs
        && cell.profile == profile
        && cell.scenario == scenario
        && cell.key == key
        && cell.fault_error.is_none())
    .then_some(cell)
}

/// Saves a cell (a temporary file, then a rename: an interruption leaves no half cell).
pub fn save_cell(dir: &Path, cell: &Cell) -> std::io::Result<()> {
    write_whole(
        &cell_path(dir, &cell.profile, &cell.scenario),
        &(serde_json::to_string_pretty(cell)? + "\n"),
    )
}

/// The matrix as written to `matrix.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    pub schema: &'static str,
    pub schema_version: u32,
    pub profiles: Vec<String>,
    pub scenarios: Vec<String>,
    pub runs_per_cell: usize,
    pub cells: Vec<Cell>,
    /// One steady run per profile (empty when asked for none).
    pub steady: Vec<Steady>,
}

impl Matrix {
    fn cell(&self, profile: &str, scenario: &str) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.profile == profile && c.scenario == scenario)
    }
}

fn secs(ms: Option<f64>) -> String {
    ms.map_or("n/a".into(), |v| format!("{:.1}", v / 1000.0))
}

fn count(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.0}"))
}

/// One cell as the Markdown table shows it.
fn cell_text(c: &Cell) -> String {
    let window = if c.window_ms.max.unwrap_or(0.0) == 0.0 {
        format!("no window, stall {} s", secs(c.stall_ms.median))
    } else {
        format!(
            "{} s (worst {})",
            secs(c.window_ms.median),
            secs(c.window_ms.max)
        )
    };
    let lost = c
        .lost
        .map_or("lost: not checked".into(), |n| format!("lost {n}"));
    let predicted: String = c
        .predictions
        .iter()
        .map(|p| format!("; {}", p.text()))
        .chain(c.readers.iter().map(|r| format!("; {}", r.text())))
        .collect();
    format!(
        "{window}; failed {} / in doubt {}; {lost}; split brain {}; failover {}/{}{predicted}; **{}**",
        count(c.failed.median),
        count(c.in_doubt.median),
        c.split_brain_writes,
        c.failovers,
        c.runs,
        c.grade()
    )
}

/// The Markdown table: a row per scenario, a column per profile.
pub fn markdown(m: &Matrix) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| scenario | {} |", m.profiles.join(" | "));
    let _ = writeln!(s, "|---|{}", "---|".repeat(m.profiles.len()));
    for scenario in &m.scenarios {
        let cells: Vec<String> = m
            .profiles
            .iter()
            .map(|p| m.cell(p, scenario).map_or("not run".into(), cell_text))
            .collect();
        let _ = writeln!(s, "| {scenario} | {} |", cells.join(" | "));
    }
    if !m.steady.is_empty() {
        let cells: Vec<String> = m
            .profiles
            .iter()
            .map(|p| {
                m.steady
                    .iter()
                    .find(|x| &x.profile == p)
                    .map_or("not run".into(), |x| {
                        format!(
                            "{:.0} tx/s, p50 {:.1} ms, p99 {:.1} ms, failed {}, in doubt {}",
                            x.tx_per_s, x.p50_ms, x.p99_ms, x.failed, x.in_doubt
                        )
                    })
            })
            .collect();
        let _ = writeln!(s, "| steady, no fault | {} |", cells.join(" | "));
    }
    let _ = writeln!(
        s,
        "\nEach cell: median window (worst) over {} runs, median failed / in-doubt transactions, lost acknowledged writes over all runs, split-brain writes, runs in which another member led afterwards, each moment the settings predict (the span of the runs' predicted ranges, the span measured, runs outside their own range), what clients reading on the reader endpoint saw (with `--readers`: the worst run's staleness p99, the stalest read, failed reads, reads without their own newest write, monotonic-read violations), grade.",
        m.runs_per_cell
    );
    s
}

/// Bar colours, one per profile column (cycled).
const PALETTE: [&str; 6] = [
    "#8c6d31", "#3182bd", "#31a354", "#756bb1", "#e6550d", "#636363",
];

/// What clients waited, per cell: the median window (the stall when no transaction failed) and
/// the worst run.
fn waited_ms(c: &Cell) -> (Option<f64>, Option<f64>) {
    if c.window_ms.max.unwrap_or(0.0) > 0.0 {
        (c.window_ms.median, c.window_ms.max)
    } else {
        (c.stall_ms.median, c.stall_ms.max)
    }
}

/// The chart: per scenario, a bar per profile for the median wait (a line to the worst run),
/// outlined red when the cell failed, with the lost writes written beside it.
pub fn chart(m: &Matrix) -> String {
    const LABEL: f64 = 170.0;
    const WIDTH: f64 = 1000.0;
    const BAR: f64 = 14.0;
    const GAP: f64 = 12.0;
    let plot = WIDTH - LABEL - 140.0;
    let longest = m
        .cells
        .iter()
        .filter_map(|c| waited_ms(c).1)
        .fold(1.0f64, f64::max);
    let x = |ms: f64| LABEL + ms / longest * plot;
    let group = BAR * m.profiles.len() as f64 + GAP;
    let height = 40.0 + group * m.scenarios.len() as f64 + 30.0;
    let mut svg = format!(
        r#"<svg id="matrix-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    for (i, p) in m.profiles.iter().enumerate() {
        let lx = LABEL + i as f64 * 120.0;
        let _ = write!(
            svg,
            r#"<rect x="{lx}" y="8" width="12" height="12" fill="{}"/><text x="{}" y="18">{}</text>"#,
            PALETTE[i % PALETTE.len()],
            lx + 16.0,
            escape(p)
        );
    }
    for (row, scenario) in m.scenarios.iter().enumerate() {
        let top = 36.0 + row as f64 * group;
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            LABEL - 8.0,
            top + group / 2.0,
            escape(scenario)
        );
        for (i, p) in m.profiles.iter().enumerate() {
            let y = top + i as f64 * BAR;
            let Some(c) = m.cell(p, scenario) else {
                continue;
            };
            let (median, worst) = waited_ms(c);
            let w = x(median.unwrap_or(0.0)) - LABEL;
            let stroke = if c.passed() { "none" } else { "#d62728" };
            let _ = write!(
                svg,
                r#"<rect class="bar" x="{LABEL}" y="{y:.1}" width="{w:.1}" height="{:.1}" fill="{}" stroke="{stroke}" stroke-width="2"><title>{} × {}: {}</title></rect>"#,
                BAR - 2.0,
                PALETTE[i % PALETTE.len()],
                escape(p),
                escape(scenario),
                escape(&cell_text(c).replace("**", ""))
            );
            if let Some(worst) = worst {
                let _ = write!(
                    svg,
                    r##"<line x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#333"/>"##,
                    x(median.unwrap_or(0.0)),
                    x(worst),
                    y + BAR / 2.0 - 1.0,
                    y + BAR / 2.0 - 1.0
                );
            }
            let note = match c.lost {
                Some(0) => format!("{} s", secs(median)),
                Some(n) => format!("{} s, lost {n}", secs(median)),
                None => format!("{} s, lost: not checked", secs(median)),
            };
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                x(worst.or(median).unwrap_or(0.0)) + 4.0,
                y + BAR - 4.0,
                escape(&note)
            );
        }
    }
    let _ = write!(
        svg,
        r#"<text x="{LABEL}" y="{:.1}">seconds clients waited: median window (or stall) per cell, line to the worst run; red outline: the cell failed its grade</text></svg>"#,
        height - 8.0
    );
    svg
}

/// The HTML page: the chart, then the table with each cell coloured by its grade.
pub fn html(m: &Matrix) -> String {
    let mut rows = String::new();
    for scenario in &m.scenarios {
        let _ = write!(rows, "<tr><th>{}</th>", escape(scenario));
        for p in &m.profiles {
            match m.cell(p, scenario) {
                Some(c) => {
                    let class = if c.passed() { "pass" } else { "fail" };
                    let text = cell_text(c).replace("**", "");
                    let _ = write!(rows, "<td class=\"{class}\">{}</td>", escape(&text));
                }
                None => rows.push_str("<td class=\"none\">not run</td>"),
            }
        }
        rows.push_str("</tr>\n");
    }
    let head: String = m
        .profiles
        .iter()
        .map(|p| format!("<th>{}</th>", escape(p)))
        .collect();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>patroni-lab matrix</title><style>\
body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}th,td{{border:1px solid #999;padding:.4em .6em;vertical-align:top}}\
td.pass{{background:#d8f5d0}}td.fail{{background:#f8d0d0}}td.none{{background:#eee;color:#777}}</style></head><body>\
<h1>patroni-lab: scenarios × profiles</h1><p>{} runs per cell.</p>{chart}<table id=\"matrix\"><tr><th>scenario</th>{head}</tr>\n{rows}</table></body></html>\n",
        m.runs_per_cell,
        chart = chart(m),
    )
}

/// The estimated time left: the mean time per run so far, times the runs still to do.
pub fn eta_s(done_runs: usize, spent_s: f64, left_runs: usize) -> Option<f64> {
    (done_runs > 0).then(|| spent_s / done_runs as f64 * left_runs as f64)
}

/// Cells in the order the matrix runs them: profile by profile (one profile change each), the
/// scenarios in the order given.
pub fn plan(profiles: &[String], scenarios: &[String]) -> Vec<(String, String)> {
    let mut order = Vec::new();
    for p in profiles {
        for s in scenarios {
            order.push((p.clone(), s.clone()));
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(profile: &str, scenario: &str, window: f64, passed: usize) -> Cell {
        Cell {
            profile: profile.into(),
            scenario: scenario.into(),
            runs: 3,
            passed_runs: passed,
            window_ms: Figure {
                median: Some(window),
                max: Some(window + 500.0),
            },
            stall_ms: Figure {
                median: Some(window),
                max: Some(window),
            },
            failed: Figure {
                median: Some(10.0),
                max: Some(12.0),
            },
            in_doubt: Figure {
                median: Some(2.0),
                max: Some(3.0),
            },
            lost: Some(0),
            acknowledged: 900,
            split_brain_writes: 0,
            failovers: 3,
            fault_error: None,
            took_s: 60.0,
            key: "k1".into(),
            predictions: Vec::new(),
            readers: None,
        }
    }

    fn matrix() -> Matrix {
        Matrix {
            schema: SCHEMA,
            schema_version: SCHEMA_VERSION,
            profiles: vec!["default".into(), "seed".into()],
            scenarios: vec!["switchover".into(), "kill-leader".into()],
            runs_per_cell: 3,
            steady: vec![Steady {
                profile: "default".into(),
                secs: 20.0,
                tx_per_s: 180.4,
                p50_ms: 20.06,
                p99_ms: 41.0,
                failed: 0,
                in_doubt: 1,
                key: "k1".into(),
            }],
            cells: vec![
                cell("default", "switchover", 2300.0, 3),
                cell("seed", "switchover", 15200.0, 0),
                cell("default", "kill-leader", 27000.0, 3),
            ],
        }
    }

    #[test]
    fn markdown_has_a_row_per_scenario_and_a_column_per_profile() {
        let md = markdown(&matrix());
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines[0], "| scenario | default | seed |");
        assert_eq!(
            lines[2],
            "| switchover | 2.3 s (worst 2.8); failed 10 / in doubt 2; lost 0; split brain 0; failover 3/3; **PASS 3/3** | 15.2 s (worst 15.7); failed 10 / in doubt 2; lost 0; split brain 0; failover 3/3; **FAIL 0/3** |"
        );
        assert!(lines[3].ends_with("| not run |"), "{}", lines[3]);
        assert_eq!(
            lines[4],
            "| steady, no fault | 180 tx/s, p50 20.1 ms, p99 41.0 ms, failed 0, in doubt 1 | not run |"
        );
    }

    #[test]
    fn a_cell_with_readers_sums_their_reads_and_keeps_the_worst_staleness() {
        use patroni_lab_probe::readers::Readers;
        let run = |reads, p99_ms, max_ms, missing| {
            let mut r = Readers {
                reads,
                failed: 1,
                own_write_missing: missing,
                ..Readers::default()
            };
            (r.staleness.p99_ms, r.staleness.max_ms) = (p99_ms, max_ms);
            r
        };
        let runs = [run(100, 0.0, 3.0, 1), run(200, 850.0, 1900.0, 40)];
        let mut c = cell("default", "lag-replica:20", 0.0, 3);
        c.readers = CellReaders::over(runs.iter());
        let text = cell_text(&c);
        assert!(
            text.contains("readers: staleness p99 0.85 s (max 1.90), failed 2, own write missing 41 of 300, monotonic 0"),
            "{text}"
        );
        assert_eq!(CellReaders::over([].iter()), None);
    }

    #[test]
    fn html_colours_cells_by_grade() {
        let page = html(&matrix());
        assert!(page.contains("<td class=\"pass\">2.3 s"));
        assert!(page.contains("<td class=\"fail\">15.2 s"));
        assert!(page.contains("<td class=\"none\">not run</td>"));
    }

    #[test]
    fn the_chart_has_a_bar_per_cell_scaled_to_the_worst_and_outlines_failures() {
        let m = matrix();
        let svg = chart(&m);
        let bars = svg.matches("<rect class=\"bar\"").count();
        assert_eq!(bars, m.cells.len());
        // The failing cell (15.2 s) is outlined red and its bar is the longest.
        let failing = svg
            .split("<rect class=\"bar\"")
            .find(|b| b.contains("15.2 s"))
            .unwrap();
        assert!(failing.contains("stroke=\"#d62728\""), "{failing}");
        assert_eq!(svg.matches("stroke=\"#d62728\"").count(), 1);
    }

    #[test]
    fn a_saved_cell_is_found_again_only_for_the_same_runs_and_key_and_never_an_error() {
        let dir = std::env::temp_dir().join(format!("plab-matrix-{}", std::process::id()));
        let c = cell("fast", "switchover", 2000.0, 3);
        save_cell(&dir, &c).unwrap();
        assert_eq!(
            saved_cell(&dir, "fast", "switchover", 3, "k1"),
            Some(c.clone())
        );
        assert_eq!(saved_cell(&dir, "fast", "switchover", 5, "k1"), None);
        assert_eq!(saved_cell(&dir, "fast", "kill-leader", 3, "k1"), None);
        // Made under another profile content, load, topology or build: not reused.
        assert_eq!(saved_cell(&dir, "fast", "switchover", 3, "k2"), None);
        let error = Cell {
            fault_error: Some("kill: no such container".into()),
            ..c
        };
        save_cell(&dir, &error).unwrap();
        assert_eq!(saved_cell(&dir, "fast", "switchover", 3, "k1"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_key_changes_with_any_part() {
        let k = key(&["ttl=30", "switchover", "3"]);
        assert_eq!(k, key(&["ttl=30", "switchover", "3"]));
        assert_ne!(k, key(&["ttl=20", "switchover", "3"]));
        assert_ne!(k, key(&["ttl=30", "switchover3", ""]));
        assert_eq!(k.len(), 16);
    }

    #[test]
    fn eta_is_unknown_before_the_first_run() {
        assert_eq!(eta_s(0, 0.0, 10), None);
        assert_eq!(eta_s(2, 100.0, 3), Some(150.0));
    }

    #[test]
    fn lost_not_checked_is_never_zero() {
        let mut c = cell("default", "switchover", 2300.0, 3);
        c.lost = None;
        assert!(cell_text(&c).contains("lost: not checked"));
    }

    fn lock_run(
        predicted: (f64, f64),
        at_ms: Option<f64>,
        outside: bool,
    ) -> patroni_lab_scenario::phases::Phases {
        use patroni_lab_scenario::phases::{Milestone, Phases, Predicted};
        Phases {
            span: patroni_lab_scenario::phases::SpanKind::Window,
            window_start_us: 0,
            window_end_us: 30_000_000,
            window_ms: 30_000.0,
            injected_at_us: Some(1_000_000),
            milestones: vec![
                Milestone {
                    name: "old leader stopped serving",
                    at_us: Some(1_000_000),
                    precision_ms: Some(100.0),
                    predicted_ms: None,
                    already: false,
                },
                Milestone {
                    name: "lock left the old leader",
                    at_us: at_ms.map(|ms| 1_000_000 + (ms * 1000.0) as i64),
                    precision_ms: Some(100.0),
                    predicted_ms: Some(Predicted {
                        min_ms: predicted.0,
                        max_ms: predicted.1,
                        rule: "lease left".into(),
                        outside,
                    }),
                    already: false,
                },
            ],
            phases: Vec::new(),
            dominant: None,
            cluster_ms: None,
            precision_ms: Some(100.0),
            predicted_end_ms: None,
            accounted_for: true,
            findings: Vec::new(),
        }
    }

    #[test]
    fn a_cell_spans_its_runs_predictions_and_counts_the_misses() {
        let mut runs = [
            lock_run((4_000.0, 5_000.0), Some(4_500.0), false),
            lock_run((20_000.0, 21_000.0), Some(22_000.0), true),
            lock_run((12_000.0, 13_000.0), None, false),
        ];
        let p = CellPrediction::over(&runs);
        assert_eq!(p.len(), 1, "only the predicted moment: {p:?}");
        // A run whose first client write was predicted too: its own moment, after the rest.
        runs[0].predicted_end_ms = Some(patroni_lab_scenario::phases::Predicted {
            min_ms: 4_000.0,
            max_ms: 30_000.0,
            rule: "end".into(),
            outside: false,
        });
        let with_end = CellPrediction::over(&runs);
        assert_eq!(with_end.len(), 2);
        assert_eq!(with_end[1].moment, "the first client write");
        assert_eq!(with_end[1].measured_ms, Some((29_000.0, 29_000.0)));
        assert_eq!((with_end[1].runs, with_end[1].outside), (1, 0));
        assert_eq!(p[0].runs, 3);
        assert_eq!(p[0].outside, 2, "the miss and the moment not seen");
        assert_eq!(p[0].predicted_ms, (4_000.0, 21_000.0));
        assert_eq!(p[0].measured_ms, Some((4_500.0, 22_000.0)));
        let mut c = cell("default", "kill-leader", 27_000.0, 3);
        c.predictions = p;
        assert!(
            cell_text(&c).contains(
                "lock left the old leader: predicted 4.0–21.0 s, measured 4.5–22.0 s, outside 2/3"
            ),
            "{}",
            cell_text(&c)
        );
        assert!(CellPrediction::over(&[]).is_empty());
    }
}
