//! Grades: a scenario's expectations, each checked against the observed figure and printed
//! PASS or FAIL with both. A figure that was not measured (lost writes not checked, the
//! cluster never whole again) fails its expectation and says so; it never reads as zero.

use std::time::Duration;

use patroni_lab_probe::report::Report;
use serde::Serialize;

/// What a scenario expects; `None` is "not graded".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expectations {
    #[serde(with = "opt_ms")]
    pub max_window: Option<Duration>,
    pub max_failed: Option<u64>,
    pub max_in_doubt: Option<u64>,
    pub max_lost: Option<u64>,
    pub max_split_brain: Option<u64>,
    #[serde(with = "ms")]
    pub whole_within: Duration,
}

/// One expectation, graded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grade {
    pub name: &'static str,
    /// The limit as text ("<= 6000 ms").
    pub expected: String,
    /// The observed figure as text, or why there is none.
    pub observed: String,
    pub pass: bool,
}

fn grade_count(name: &'static str, limit: Option<u64>, observed: u64) -> Option<Grade> {
    limit.map(|max| Grade {
        name,
        expected: format!("<= {max}"),
        observed: observed.to_string(),
        pass: observed <= max,
    })
}

/// Grades a run: the probe's report and how long the cluster took to be whole again after the
/// fault (`None`: it was not whole within the limit).
pub fn grade(e: &Expectations, r: &Report, whole_again: Option<Duration>) -> Vec<Grade> {
    let a = &r.analysis;
    let mut out = Vec::new();
    if let Some(max) = e.max_window {
        let open = a.windows.iter().any(|w| w.open_at_end);
        out.push(Grade {
            name: "longest window",
            expected: format!("<= {} ms", max.as_millis()),
            observed: format!(
                "{:.0} ms{}",
                a.longest_window_ms,
                if open { " (still open at the end)" } else { "" }
            ),
            pass: !open && a.longest_window_ms <= max.as_secs_f64() * 1000.0,
        });
    }
    out.extend(grade_count("failed", e.max_failed, a.totals.failed));
    out.extend(grade_count("in doubt", e.max_in_doubt, a.totals.in_doubt));
    if let Some(max) = e.max_lost {
        let l = &r.lost_writes;
        out.push(if l.checked {
            Grade {
                name: "lost writes",
                expected: format!("<= {max}"),
                observed: format!("{} of {}", l.missing.len(), l.acknowledged),
                pass: l.missing.len() as u64 <= max,
            }
        } else {
            Grade {
                name: "lost writes",
                expected: format!("<= {max}"),
                observed: format!(
                    "NOT CHECKED: {}",
                    l.error.as_deref().unwrap_or("no reason given")
                ),
                pass: false,
            }
        });
    }
    let brains: u64 = a.split_brain.iter().map(|b| b.writes_after_takeover).sum();
    out.extend(grade_count("split-brain writes", e.max_split_brain, brains));
    out.push(Grade {
        name: "whole again",
        expected: format!("within {} s", e.whole_within.as_secs()),
        observed: whole_again.map_or_else(
            || "not within the limit".to_string(),
            |d| format!("after {:.1} s", d.as_secs_f64()),
        ),
        pass: whole_again.is_some_and(|d| d <= e.whole_within),
    });
    out
}

mod ms {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

mod opt_ms {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(d.as_millis() as u64),
            None => s.serialize_none(),
        }
    }
}
