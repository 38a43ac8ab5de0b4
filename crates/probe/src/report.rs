//! The probe's report: the JSON document (schema `patroni-lab/probe-report`, version 2, see
//! docs/probe-report.md), the summary table printed at the end, and the limit check that
//! decides the exit code.

use std::fmt::Write as _;

use serde::Serialize;

use crate::analysis::Analysis;
use crate::lost::LostWrites;
use crate::settings::Settings;

pub const SCHEMA: &str = "patroni-lab/probe-report";
pub const SCHEMA_VERSION: u32 = 2;

/// Limits from the command line; any exceeded one makes the exit code non-zero.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Limits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_window_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_failed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_lost: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub schema_version: u32,
    pub probe_version: String,
    pub run_id: String,
    /// The application name of every session of the run (`<name> <run_id>`).
    pub application_name: String,
    pub started_at: String,
    pub started_unix_us: u64,
    pub duration_ms: f64,
    pub settings: Settings,
    pub server_version: String,
    #[serde(flatten)]
    pub analysis: Analysis,
    pub lost_writes: LostWrites,
    pub limits: Limits,
    /// Which limits were exceeded (empty: none).
    pub exceeded: Vec<String>,
}

/// RFC 3339 UTC time of a Unix time in microseconds.
pub fn rfc3339(unix_us: u64) -> String {
    let secs = unix_us / 1_000_000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Days to civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        unix_us % 1_000_000 / 1000
    )
}

impl Limits {
    /// Names of the limits the run exceeded.
    pub fn exceeded(&self, analysis: &Analysis, lost: &LostWrites) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(max) = self.max_window_ms {
            if analysis.longest_window_ms > max {
                out.push(format!(
                    "longest window {:.0} ms > --max-window {max:.0} ms",
                    analysis.longest_window_ms
                ));
            }
        }
        if let Some(max) = self.max_failed {
            let failed = analysis.totals.failed + analysis.totals.in_doubt;
            if failed > max {
                out.push(format!(
                    "{failed} failed or in-doubt attempts > --max-failed {max}"
                ));
            }
        }
        if let Some(max) = self.max_lost {
            if !lost.checked {
                out.push("lost writes could not be checked (--max-lost given)".into());
            } else if lost.missing.len() as u64 > max {
                out.push(format!(
                    "{} lost writes > --max-lost {max}",
                    lost.missing.len()
                ));
            }
        }
        out
    }
}

fn secs(us: u64) -> String {
    format!("{:.2}s", us as f64 / 1e6)
}

/// The table printed when the run ends.
pub fn summary(r: &Report) -> String {
    let a = &r.analysis;
    let t = &a.totals;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "probe {} against {}: {:.1} s, {} clients, {:?}",
        r.run_id,
        r.settings.endpoint,
        r.duration_ms / 1000.0,
        r.settings.clients,
        r.settings.mode
    );
    let _ = writeln!(
        s,
        "  attempts {:>8}   ok {:>8}   failed {:>6}   in doubt {:>4}   connects {}",
        t.attempts, t.ok, t.failed, t.in_doubt, t.connects
    );
    let _ = writeln!(
        s,
        "  throughput {:.1} ok/s   latency p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms   (in windows: p99 {:.2} ms, n={})",
        t.ok as f64 / (r.duration_ms / 1000.0).max(0.001),
        a.latency.overall.p50_ms,
        a.latency.overall.p99_ms,
        a.latency.overall.max_ms,
        a.latency.in_windows.p99_ms,
        a.latency.in_windows.count
    );
    errors_and_windows(&mut s, a);
    events(&mut s, a);
    lost_writes(&mut s, r);
    for e in &r.exceeded {
        let _ = writeln!(s, "  LIMIT EXCEEDED: {e}");
    }
    s
}

/// Errors by class and the unavailability windows.
fn errors_and_windows(s: &mut String, a: &Analysis) {
    if a.errors_by_class.is_empty() {
        let _ = writeln!(s, "  errors: none");
    } else {
        let _ = writeln!(s, "  errors by class:");
        for (class, n) in &a.errors_by_class {
            let _ = writeln!(s, "    {class:<34} {n:>6}");
        }
    }
    if a.windows.is_empty() {
        let _ = writeln!(s, "  unavailability windows: none");
    } else {
        let _ = writeln!(
            s,
            "  unavailability windows (first failure -> first success after it, any client):"
        );
        for w in &a.windows {
            let classes: Vec<String> = w.classes.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(
                s,
                "    {} -> {}  {:>8.0} ms  clients {}  errors {}{}  [{}]",
                secs(w.start_us),
                secs(w.end_us),
                w.duration_ms,
                w.clients.unwrap_or(0),
                w.errors,
                if w.open_at_end {
                    " (still open at the end)"
                } else {
                    ""
                },
                classes.join(", ")
            );
        }
    }
}

/// Stalls, cut-overs, split brain, read-only refusals and reads from a server in recovery.
fn events(s: &mut String, a: &Analysis) {
    let t = &a.totals;
    for st in &a.stalls {
        let _ = writeln!(
            s,
            "  stall: no acknowledgement {} -> {} ({:.0} ms{}, {} errors meanwhile)",
            secs(st.start_us),
            secs(st.end_us),
            st.duration_ms,
            if st.open_at_end {
                " so far, still open at the end"
            } else {
                ""
            },
            st.errors
        );
    }
    for c in &a.cutovers {
        let _ = writeln!(
            s,
            "  cut-over {} -> {}: last old commit {} first new commit {}  gap {:.0} ms",
            c.from,
            c.to,
            secs(c.last_old_commit_us),
            secs(c.first_new_commit_us),
            c.gap_ms
        );
    }
    for b in &a.split_brain {
        let _ = writeln!(
            s,
            "  SPLIT BRAIN: {} committed {} writes after {} had taken over",
            b.earlier, b.writes_after_takeover, b.later
        );
    }
    if t.read_only_refusals > 0 {
        let _ = writeln!(
            s,
            "  writes refused as read-only (25006): {}",
            t.read_only_refusals
        );
    }
    if t.reads_from_recovery > 0 {
        let _ = writeln!(
            s,
            "  reads answered by a server in recovery (possibly stale): {} of {}",
            t.reads_from_recovery, t.reads_ok
        );
    }
    if let Some(rd) = &a.readers {
        readers(s, rd);
    }
}

/// The reader endpoint's side: what reading clients saw.
fn readers(s: &mut String, rd: &crate::readers::Readers) {
    let st = &rd.staleness;
    let _ = writeln!(
        s,
        "  readers: {} reads (after writes, one at a time per client), {} ok, {} failed (longest failing {:.0} ms); answered by a primary: {}",
        rd.reads, rd.ok, rd.failed, rd.longest_failing_ms, rd.answered_by_primary
    );
    let _ = writeln!(
        s,
        "    staleness p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  ({} stale of {});  own write missing: {};  monotonic-read violations: {}",
        st.p50_ms,
        st.p99_ms,
        st.max_ms,
        rd.stale_reads,
        rd.ok,
        rd.own_write_missing,
        rd.monotonic_violations
    );
    let v = &rd.own_write_visible_within;
    if v.count > 0 {
        let _ = writeln!(
            s,
            "    own write visible within p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  ({} writes; to the end of the first read that saw it)",
            v.p50_ms, v.p99_ms, v.max_ms, v.count
        );
    }
    if let Some(lag) = &rd.replica_lag_bytes {
        let _ = writeln!(
            s,
            "    a replica's replay behind the newest acknowledged write: p50 {} B  p99 {} B  max {} B  ({} replica reads)",
            lag.p50, lag.p99, lag.max, lag.count
        );
    }
}

/// The lost-write check: what it found, the in-doubt writes, the server-side gap.
fn lost_writes(s: &mut String, r: &Report) {
    let a = &r.analysis;
    let l = &r.lost_writes;
    if l.checked {
        let on = l
            .checked_on
            .as_ref()
            .map_or_else(|| "?".into(), ToString::to_string);
        let holder = l
            .leader_confirmed
            .as_ref()
            .map_or_else(String::new, |m| format!(", {m}, the leader-lock holder"));
        let _ = writeln!(
            s,
            "  lost writes: {} of {} acknowledged   (checked on {on}, the newest primary{holder})",
            l.missing.len(),
            l.acknowledged,
        );
        let resolution = if l.settle.settled {
            "resolved: none of the run's statements still running"
        } else {
            "NOT all resolved: the run's statements could not be shown to have ended"
        };
        let _ = writeln!(
            s,
            "  in doubt: {} ({} committed, {} not; {resolution}, {} terminated)   unexpected rows: {}",
            l.in_doubt,
            l.in_doubt_found,
            l.in_doubt_missing,
            l.settle.terminated,
            l.unexpected_rows,
        );
        for m in l.missing.iter().take(20) {
            let _ = writeln!(s, "    lost: client {} seq {}", m.client, m.seq);
        }
        if let Some(g) = &l.server_gap {
            let client_side = a.stalls.iter().map(|x| x.duration_ms).fold(0.0, f64::max);
            let _ = writeln!(
                s,
                "  longest gap between server commit times: {:.0} ms ({} -> {})   longest client stall: {}",
                g.duration_ms,
                secs(g.start_us.max(0) as u64),
                secs(g.end_us.max(0) as u64),
                if a.stalls.is_empty() {
                    "none".to_string()
                } else {
                    format!("{client_side:.0} ms")
                }
            );
        }
    } else {
        let _ = writeln!(
            s,
            "  lost writes: NOT CHECKED ({} acknowledged, {} in doubt, none looked up): {}",
            l.acknowledged,
            l.in_doubt,
            l.error.as_deref().unwrap_or("?")
        );
    }
    for note in &l.settle.notes {
        let _ = writeln!(s, "  settling in-doubt writes: {note}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_748_400_123_456), "2026-11-27T03:00:00.123Z");
    }

    #[test]
    fn limits_are_checked() {
        let a = Analysis {
            longest_window_ms: 3000.0,
            totals: crate::analysis::Totals {
                failed: 5,
                ..Default::default()
            },
            ..Default::default()
        };
        let lost = LostWrites {
            checked: true,
            missing: vec![crate::lost::WriteId { client: 0, seq: 1 }],
            ..LostWrites::default()
        };
        let none = Limits::default();
        assert!(none.exceeded(&a, &lost).is_empty());
        let strict = Limits {
            max_window_ms: Some(1000.0),
            max_failed: Some(4),
            max_lost: Some(0),
        };
        assert_eq!(strict.exceeded(&a, &lost).len(), 3);
        let loose = Limits {
            max_window_ms: Some(5000.0),
            max_failed: Some(5),
            max_lost: Some(1),
        };
        assert!(loose.exceeded(&a, &lost).is_empty());
    }
}
