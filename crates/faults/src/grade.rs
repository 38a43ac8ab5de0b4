//! Grades: a scenario's expectations, each checked against the observed figure and printed
//! PASS or FAIL with both. A figure that was not measured (lost writes not checked, the
//! cluster never whole again) fails its expectation and says so; it never reads as zero.

use std::time::Duration;

use patroni_lab_probe::report::Report;
use serde::Serialize;

/// What a scenario expects; `None` is "not graded".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expectations {
    #[serde(with = "patroni_lab_probe::settings::opt_ms")]
    pub max_window: Option<Duration>,
    /// No acknowledgement from any client for longer than this (queued clients stall, they do
    /// not fail).
    #[serde(with = "patroni_lab_probe::settings::opt_ms")]
    pub max_stall: Option<Duration>,
    pub max_failed: Option<u64>,
    pub max_in_doubt: Option<u64>,
    pub max_lost: Option<u64>,
    pub max_split_brain: Option<u64>,
    /// Writes the leader before the fault acknowledged after it had lost the leader lock (a
    /// primary frozen or cut off that goes on committing).
    pub max_old_leader_writes: Option<u64>,
    #[serde(with = "patroni_lab_probe::settings::ms")]
    pub whole_within: Duration,
}

/// What the user set on the command line in place of a scenario's own expectations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub max_window: Option<Duration>,
    pub max_failed: Option<u64>,
    pub max_in_doubt: Option<u64>,
    pub max_lost: Option<u64>,
    pub whole_within: Option<Duration>,
}

impl Expectations {
    /// What every fault expects unless it says more: nothing lost, no split brain, no write
    /// by an old leader after it lost the lock (a fault that never moves the lock passes that
    /// as "lock kept"), whole again within 90 s; no bound on window, stall, failed, in doubt.
    pub fn base() -> Self {
        Self {
            max_window: None,
            max_stall: None,
            max_failed: None,
            max_in_doubt: None,
            max_lost: Some(0),
            max_split_brain: Some(0),
            max_old_leader_writes: Some(0),
            whole_within: Duration::from_secs(90),
        }
    }

    /// A fault clients of the primary should not notice (a replica's, under asynchronous
    /// replication): no window over 1 s, nothing failed or in doubt.
    pub fn writers_unaffected() -> Self {
        Self {
            max_window: Some(Duration::from_secs(1)),
            max_failed: Some(0),
            max_in_doubt: Some(0),
            ..Self::base()
        }
    }

    /// In one line: "window <= 6 s, stall <= 4 s, failed <= 0, in doubt <= 0, lost 0, ...".
    pub fn summary(&self) -> String {
        let secs = |d: Duration| format!("{} s", d.as_secs_f64());
        let mut parts = Vec::new();
        if let Some(d) = self.max_window {
            parts.push(format!("window <= {}", secs(d)));
        }
        if let Some(d) = self.max_stall {
            parts.push(format!("stall <= {}", secs(d)));
        }
        if let Some(n) = self.max_failed {
            parts.push(format!("failed <= {n}"));
        }
        if let Some(n) = self.max_in_doubt {
            parts.push(format!("in doubt <= {n}"));
        }
        if let Some(n) = self.max_lost {
            parts.push(format!("lost <= {n}"));
        }
        if let Some(n) = self.max_split_brain {
            parts.push(format!("split brain <= {n}"));
        }
        if let Some(n) = self.max_old_leader_writes {
            parts.push(format!("old leader's writes after losing the lock <= {n}"));
        }
        parts.push(format!("whole again within {}", secs(self.whole_within)));
        parts.join(", ")
    }

    /// These expectations with the user's overrides in place.
    pub fn with(mut self, o: &Overrides) -> Self {
        self.max_window = o.max_window.or(self.max_window);
        self.max_failed = o.max_failed.or(self.max_failed);
        self.max_in_doubt = o.max_in_doubt.or(self.max_in_doubt);
        self.max_lost = o.max_lost.or(self.max_lost);
        self.whole_within = o.whole_within.unwrap_or(self.whole_within);
        self
    }
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

/// The fault happened and no other member took the lead: a failed grade of its own, beside
/// the window it left open.
pub fn no_failover(why: &str) -> Grade {
    Grade {
        name: "failover",
        expected: "another member leads".into(),
        observed: format!("none: {why}"),
        pass: false,
    }
}

fn grade_count(name: &'static str, limit: Option<u64>, observed: u64) -> Option<Grade> {
    limit.map(|max| Grade {
        name,
        expected: format!("<= {max}"),
        observed: observed.to_string(),
        pass: observed <= max,
    })
}

/// Writes the leader before the fault acknowledged after it lost the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldLeaderWrites {
    /// The lock never left it: there is no "after".
    LockKept,
    Counted(u64),
    /// The lock moved but the writes could not be counted (why).
    NotCounted(String),
}

/// Grades a run: the probe's report, how long the cluster took to be whole again after the
/// fault (`None`: it was not whole within the limit), and the old leader's writes after it
/// lost the lock.
pub fn grade(
    e: &Expectations,
    r: &Report,
    whole_again: Option<Duration>,
    old_leader: &OldLeaderWrites,
) -> Vec<Grade> {
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
    if let Some(max) = e.max_stall {
        let longest = a.stalls.iter().map(|s| s.duration_ms).fold(0.0, f64::max);
        let open = a.stalls.iter().any(|s| s.open_at_end);
        out.push(Grade {
            name: "longest stall",
            expected: format!("<= {} ms", max.as_millis()),
            observed: if a.stalls.is_empty() {
                "none".into()
            } else {
                format!(
                    "{longest:.0} ms{}",
                    if open { " (still open at the end)" } else { "" }
                )
            },
            pass: !open && longest <= max.as_secs_f64() * 1000.0,
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
    if let Some(max) = e.max_old_leader_writes {
        let (observed, pass) = match old_leader {
            OldLeaderWrites::LockKept => ("none: the lock never left it".to_string(), true),
            OldLeaderWrites::Counted(n) => (n.to_string(), *n <= max),
            OldLeaderWrites::NotCounted(why) => (format!("NOT COUNTED: {why}"), false),
        };
        out.push(Grade {
            name: "old leader's writes after it lost the lock",
            expected: format!("<= {max}"),
            observed,
            pass,
        });
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use patroni_lab_probe::analysis::{Analysis, Window};
    use patroni_lab_probe::lost::LostWrites;
    use patroni_lab_probe::report::{Limits, Report};
    use patroni_lab_probe::settings::Settings;

    fn report(window_ms: f64, open: bool, lost: Option<usize>) -> Report {
        let mut analysis = Analysis {
            longest_window_ms: window_ms,
            ..Analysis::default()
        };
        analysis.windows.push(Window {
            client: None,
            start_us: 0,
            end_us: (window_ms * 1000.0) as u64,
            duration_ms: window_ms,
            errors: 1,
            classes: Default::default(),
            clients: Some(1),
            open_at_end: open,
        });
        let lost_writes = match lost {
            Some(n) => LostWrites {
                checked: true,
                acknowledged: 100,
                missing: (0..n as u64)
                    .map(|seq| patroni_lab_probe::lost::WriteId { client: 0, seq })
                    .collect(),
                ..LostWrites::default()
            },
            None => LostWrites {
                checked: false,
                error: Some("no primary".into()),
                ..LostWrites::default()
            },
        };
        Report {
            schema: "",
            schema_version: 0,
            probe_version: String::new(),
            run_id: String::new(),
            application_name: String::new(),
            started_at: String::new(),
            started_unix_us: 0,
            duration_ms: 0.0,
            settings: Settings::lab_defaults("host=x"),
            server_version: String::new(),
            analysis,
            lost_writes,
            limits: Limits::default(),
            exceeded: Vec::new(),
        }
    }

    fn expect() -> Expectations {
        Expectations {
            max_window: Some(Duration::from_secs(6)),
            whole_within: Duration::from_secs(60),
            ..Expectations::base()
        }
    }

    fn passed(g: &[Grade], name: &str) -> bool {
        g.iter().find(|x| x.name == name).unwrap().pass
    }

    #[test]
    fn within_every_limit_passes() {
        let g = grade(
            &expect(),
            &report(2300.0, false, Some(0)),
            Some(Duration::from_secs(10)),
            &OldLeaderWrites::LockKept,
        );
        assert!(g.iter().all(|x| x.pass), "{g:?}");
    }

    #[test]
    fn each_limit_fails_on_its_own() {
        let g = grade(
            &expect(),
            &report(7000.0, false, Some(0)),
            Some(Duration::from_secs(10)),
            &OldLeaderWrites::LockKept,
        );
        assert!(!passed(&g, "longest window"));
        let g = grade(
            &expect(),
            &report(2000.0, true, Some(0)),
            Some(Duration::from_secs(10)),
            &OldLeaderWrites::LockKept,
        );
        assert!(!passed(&g, "longest window"), "a window still open fails");
        let g = grade(
            &expect(),
            &report(2000.0, false, Some(2)),
            Some(Duration::from_secs(10)),
            &OldLeaderWrites::LockKept,
        );
        assert!(!passed(&g, "lost writes"));
        let g = grade(
            &expect(),
            &report(2000.0, false, Some(0)),
            None,
            &OldLeaderWrites::LockKept,
        );
        assert!(!passed(&g, "whole again"));
    }

    #[test]
    fn old_leader_writes_after_the_lock_moved_fail_and_uncounted_ones_never_read_as_zero() {
        let r = report(2000.0, false, Some(0));
        let at = |o: &OldLeaderWrites| {
            let g = grade(&expect(), &r, Some(Duration::from_secs(1)), o);
            g.into_iter()
                .find(|x| x.name == "old leader's writes after it lost the lock")
                .unwrap()
        };
        assert!(at(&OldLeaderWrites::LockKept).pass);
        assert!(at(&OldLeaderWrites::Counted(0)).pass);
        let three = at(&OldLeaderWrites::Counted(3));
        assert!(!three.pass);
        assert_eq!(three.observed, "3");
        let not = at(&OldLeaderWrites::NotCounted("no history".into()));
        assert!(!not.pass);
        assert!(not.observed.starts_with("NOT COUNTED"), "{not:?}");
    }

    #[test]
    fn unchecked_lost_writes_fail_and_never_read_as_zero() {
        let g = grade(
            &expect(),
            &report(2000.0, false, None),
            Some(Duration::from_secs(1)),
            &OldLeaderWrites::LockKept,
        );
        let lost = g.iter().find(|x| x.name == "lost writes").unwrap();
        assert!(!lost.pass);
        assert!(lost.observed.starts_with("NOT CHECKED"), "{lost:?}");
    }
}
