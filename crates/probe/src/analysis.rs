//! Analysis of a history file: unavailability windows, stalls, cut-overs, split brain,
//! errors by class, latency, and the per-second timeline. Reads the history as a stream, in
//! two passes, so memory does not grow with the length of the run (bar the acknowledged-write
//! ranges, kept compact for the lost-write check).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

pub use crate::acked::Acked;
use crate::classify::{ErrorClass, Outcome};
use crate::percentile::Latencies;
use crate::readers::ReaderPass;
use crate::record::{Attempt, Kind, ServerId};
use crate::seconds::SecondLatencies;
use crate::windows::{OpenWindow, merge};

pub use crate::model::{
    Analysis, Cutover, Latency, Second, ServerSpan, SplitBrain, Stall, Totals, Window,
};
use crate::percentile::ms;

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The cause is part of the message (not a `source`), so it is printed once.
    #[error("cannot read history {path}: {detail}")]
    Io { path: String, detail: String },
    #[error("history {path}, line {line}: {detail}")]
    BadLine {
        path: String,
        line: usize,
        detail: String,
    },
}

/// Streams the attempts of a history file.
pub fn read_history(
    path: &Path,
) -> Result<impl Iterator<Item = Result<Attempt, AnalysisError>>, AnalysisError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|e| AnalysisError::Io {
        path: name.clone(),
        detail: e.to_string(),
    })?;
    Ok(BufReader::new(file)
        .lines()
        .enumerate()
        .filter(|(_, l)| l.as_ref().map_or(true, |l| !l.trim().is_empty()))
        .map(move |(i, line)| {
            let line = line.map_err(|e| AnalysisError::Io {
                path: name.clone(),
                detail: e.to_string(),
            })?;
            serde_json::from_str(&line).map_err(|e| AnalysisError::BadLine {
                path: name.clone(),
                line: i + 1,
                detail: e.to_string(),
            })
        }))
}

/// Pass 1 over the history: counts, per-client windows, stalls, servers, acknowledged writes,
/// the per-second timeline.
struct FirstPass {
    a: Analysis,
    stall_threshold_us: u64,
    open: HashMap<u32, OpenWindow>,
    last_end: HashMap<u32, u64>,
    overall: Latencies,
    per_second: SecondLatencies,
    spans: BTreeMap<ServerId, ServerSpan>,
    last_ack: Option<u64>,
    stalls: Vec<Stall>,
    readers: ReaderPass,
}

impl FirstPass {
    fn new(stall_threshold_us: u64) -> Self {
        Self {
            a: Analysis::default(),
            stall_threshold_us,
            open: HashMap::new(),
            last_end: HashMap::new(),
            overall: Latencies::default(),
            per_second: SecondLatencies::default(),
            spans: BTreeMap::new(),
            last_ack: None,
            stalls: Vec::new(),
            readers: ReaderPass::default(),
        }
    }

    fn add(&mut self, at: Attempt) {
        // The reader endpoint's reads are the reader side's alone: no writer figure counts them.
        if at.kind == Kind::ReplicaRead {
            self.readers.read(&at);
            return;
        }
        if at.kind == Kind::Write && at.outcome == Outcome::Ok {
            self.readers
                .acknowledged(at.client, at.seq, at.end_us, at.wal);
        }
        let a = &mut self.a;
        a.totals.attempts += 1;
        a.totals.connects += u64::from(at.connected);
        self.last_end.insert(at.client, at.end_us);
        let second = (at.end_us / 1_000_000) as usize;
        if a.timeline.len() <= second {
            a.timeline.resize_with(second + 1, Second::default);
        }
        match at.outcome {
            Outcome::Ok => self.add_ok(&at, second),
            Outcome::Failed | Outcome::InDoubt => self.add_failure(&at, second),
        }
    }

    fn add_ok(&mut self, at: &Attempt, second: usize) {
        let a = &mut self.a;
        a.totals.ok += 1;
        let sec = &mut a.timeline[second];
        sec.ok += 1;
        let m = ms(at.latency_us());
        sec.max_ms = Some(sec.max_ms.map_or(m, |x| x.max(m)));
        self.per_second
            .record(&mut a.timeline, second, at.latency_us());
        self.overall.record(at.latency_us());
        if let Some(w) = self.open.remove(&at.client) {
            a.client_windows.push(w.closed(at.client, at.end_us, false));
        }
        if let Some(prev) = self.last_ack {
            if at.end_us > prev + self.stall_threshold_us {
                self.stalls.push(Stall {
                    start_us: prev,
                    end_us: at.end_us,
                    duration_ms: ms(at.end_us - prev),
                    errors: 0,
                    open_at_end: false,
                });
            }
        }
        self.last_ack = Some(self.last_ack.map_or(at.end_us, |p| p.max(at.end_us)));
        match at.kind {
            Kind::ReplicaRead => {}
            Kind::Read => {
                a.totals.reads_ok += 1;
                a.totals.reads_from_recovery += u64::from(at.in_recovery == Some(true));
            }
            Kind::Write => {
                a.totals.writes_ok += 1;
                a.acked.insert(at.client, at.seq);
                if let Some(server) = &at.server {
                    let span = self
                        .spans
                        .entry(server.clone())
                        .or_insert_with(|| ServerSpan {
                            server: server.clone(),
                            writes: 0,
                            first_commit_us: at.end_us,
                            last_commit_us: at.end_us,
                            last_start_us: at.start_us,
                        });
                    span.writes += 1;
                    span.first_commit_us = span.first_commit_us.min(at.end_us);
                    span.last_commit_us = span.last_commit_us.max(at.end_us);
                    span.last_start_us = span.last_start_us.max(at.start_us);
                }
            }
        }
    }

    fn add_failure(&mut self, at: &Attempt, second: usize) {
        let a = &mut self.a;
        let sec = &mut a.timeline[second];
        if at.outcome == Outcome::Failed {
            a.totals.failed += 1;
            sec.failed += 1;
        } else {
            a.totals.in_doubt += 1;
            sec.in_doubt += 1;
            if at.kind == Kind::Write {
                a.in_doubt.push((at.client, at.seq));
            }
        }
        let class = at.error.as_ref().map(|e| &e.class);
        if class == Some(&ErrorClass::ReadOnly) && at.kind == Kind::Write {
            a.totals.read_only_refusals += 1;
        }
        let label = class.map_or_else(|| "unknown".into(), ErrorClass::label);
        *a.errors_by_class.entry(label.clone()).or_default() += 1;
        let w = self.open.entry(at.client).or_insert_with(|| OpenWindow {
            start_us: at.start_us,
            ..OpenWindow::default()
        });
        w.errors += 1;
        *w.classes.entry(label).or_default() += 1;
    }

    /// Closes what is still open at the run's end (windows, a stall) and orders the servers.
    fn finish(mut self, run_end_us: u64) -> (Analysis, Vec<Stall>, Vec<ServerSpan>) {
        let run_end_us = self.last_end.values().copied().fold(run_end_us, u64::max);
        let a = &mut self.a;
        for (client, w) in self.open {
            a.client_windows.push(w.closed(client, run_end_us, true));
        }
        // No acknowledgement since the last one (or since the start) until the run ended.
        let quiet_since = self.last_ack.unwrap_or(0);
        if run_end_us > quiet_since + self.stall_threshold_us {
            self.stalls.push(Stall {
                start_us: quiet_since,
                end_us: run_end_us,
                duration_ms: ms(run_end_us - quiet_since),
                errors: 0,
                open_at_end: true,
            });
        }
        a.client_windows.sort_by_key(|w| (w.start_us, w.client));
        a.windows = merge(&a.client_windows);
        a.longest_window_ms = a.windows.iter().map(|w| w.duration_ms).fold(0.0, f64::max);
        self.per_second.close_all(&mut a.timeline);
        for (i, s) in a.timeline.iter_mut().enumerate() {
            s.second = i as u64;
        }
        a.latency.overall = self.overall.percentiles();
        // Servers in the order they first committed.
        let mut servers: Vec<ServerSpan> = self.spans.into_values().collect();
        servers.sort_by_key(|s| s.first_commit_us);
        self.a.readers = self.readers.finish();
        (self.a, self.stalls, servers)
    }
}

/// A takeover that may be split brain: servers `old` and `new` (indexes), and the new one's
/// first commit.
struct Takeover {
    old: usize,
    new: usize,
    at_us: u64,
}

/// Consecutive servers are cut-overs; one whose old server still began writes after the new
/// one's first commit is a possible split brain (counted in pass 2).
fn cutovers(servers: &[ServerSpan]) -> (Vec<Cutover>, Vec<Takeover>) {
    let mut cuts = Vec::new();
    let mut takeovers = Vec::new();
    for (i, pair) in servers.windows(2).enumerate() {
        let (old, new) = (&pair[0], &pair[1]);
        cuts.push(Cutover {
            from: old.server.clone(),
            to: new.server.clone(),
            last_old_commit_us: old.last_commit_us,
            first_new_commit_us: new.first_commit_us,
            gap_ms: ms(new.first_commit_us.saturating_sub(old.last_commit_us)),
        });
        if old.last_start_us > new.first_commit_us {
            takeovers.push(Takeover {
                old: i,
                new: i + 1,
                at_us: new.first_commit_us,
            });
        }
    }
    (cuts, takeovers)
}

/// Analyses a history file. `stall_threshold_us`: a gap between acknowledgements longer than
/// this is a stall. `run_end_us`: when the run ended (on the history's clock), so that a window
/// or stall still open then is reported with its length so far.
pub fn analyze(
    path: &Path,
    stall_threshold_us: u64,
    run_end_us: u64,
) -> Result<Analysis, AnalysisError> {
    analyze_passes(|| read_history(path), stall_threshold_us, run_end_us)
}

/// The same analysis of attempts kept in memory (in the order they ended, as the file has them).
pub fn analyze_attempts(
    attempts: &[Attempt],
    stall_threshold_us: u64,
    run_end_us: u64,
) -> Analysis {
    let passes = analyze_passes(
        || Ok(attempts.iter().cloned().map(Ok)),
        stall_threshold_us,
        run_end_us,
    );
    match passes {
        Ok(a) => a,
        Err(e) => unreachable!("attempts in memory cannot fail to read: {e}"),
    }
}

/// Both passes over the history `history()` streams (it is called once per pass).
fn analyze_passes<I, F>(
    mut history: F,
    stall_threshold_us: u64,
    run_end_us: u64,
) -> Result<Analysis, AnalysisError>
where
    F: FnMut() -> Result<I, AnalysisError>,
    I: Iterator<Item = Result<Attempt, AnalysisError>>,
{
    let mut first = FirstPass::new(stall_threshold_us);
    for attempt in history()? {
        first.add(attempt?);
    }
    let (mut a, mut stalls, servers) = first.finish(run_end_us);
    let (cuts, takeovers) = cutovers(&servers);
    a.cutovers = cuts;

    // Pass 2: what needs the windows and the takeovers: latency inside windows, errors inside
    // stalls, and the writes an old primary took after the new one had taken over.
    let mut in_windows = Latencies::default();
    let mut after_takeover = vec![0u64; takeovers.len()];
    if !a.windows.is_empty() || !stalls.is_empty() || !takeovers.is_empty() {
        for attempt in history()? {
            let at = attempt?;
            if at.kind == Kind::ReplicaRead {
                continue;
            }
            if at.outcome != Outcome::Ok {
                if let Some(s) = stalls
                    .iter_mut()
                    .find(|s| at.end_us > s.start_us && at.end_us <= s.end_us)
                {
                    s.errors += 1;
                }
                continue;
            }
            let overlaps = a
                .windows
                .iter()
                .any(|w| at.start_us <= w.end_us && at.end_us >= w.start_us);
            if overlaps {
                in_windows.record(at.latency_us());
            }
            if at.kind == Kind::Write {
                for (k, t) in takeovers.iter().enumerate() {
                    if at.server.as_ref() == Some(&servers[t.old].server) && at.start_us > t.at_us {
                        after_takeover[k] += 1;
                    }
                }
            }
        }
    }
    a.split_brain = takeovers
        .iter()
        .zip(after_takeover)
        .map(|(t, n)| SplitBrain {
            earlier: servers[t.old].server.clone(),
            later: servers[t.new].server.clone(),
            writes_after_takeover: n,
        })
        .collect();
    a.stalls = stalls;
    a.servers = servers;
    a.latency.in_windows = in_windows.percentiles();
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{ErrorClass, Failure};
    use std::io::Write;

    fn ok(client: u32, seq: u64, start_ms: u64, end_ms: u64, server: &str, tl: u32) -> Attempt {
        Attempt {
            client,
            seq,
            kind: Kind::Write,
            start_us: start_ms * 1000,
            end_us: end_ms * 1000,
            outcome: Outcome::Ok,
            connected: true,
            server: Some(ServerId {
                addr: server.into(),
                timeline: Some(tl),
            }),
            in_recovery: Some(false),
            error: None,
            seen: None,
            wal: None,
        }
    }

    fn failed(
        client: u32,
        seq: u64,
        start_ms: u64,
        end_ms: u64,
        class: ErrorClass,
        outcome: Outcome,
    ) -> Attempt {
        Attempt {
            outcome,
            server: None,
            in_recovery: None,
            error: Some(Failure {
                class,
                sqlstate: None,
                severity: None,
                message: String::new(),
            }),
            ..ok(client, seq, start_ms, end_ms, "", 0)
        }
    }

    fn analyze_attempts(attempts: &[Attempt], stall_ms: u64) -> Analysis {
        let end_ms = attempts.iter().map(|a| a.end_us / 1000).max().unwrap_or(0);
        analyze_until(attempts, stall_ms, end_ms)
    }

    fn analyze_until(attempts: &[Attempt], stall_ms: u64, run_end_ms: u64) -> Analysis {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("plab-analysis-{}-{n}.jsonl", std::process::id()));
        let mut f = File::create(&path).unwrap();
        for at in attempts {
            writeln!(f, "{}", serde_json::to_string(at).unwrap()).unwrap();
        }
        drop(f);
        let a = analyze(&path, stall_ms * 1000, run_end_ms * 1000).unwrap();
        std::fs::remove_file(&path).unwrap();
        // The same attempts kept in memory give the very same analysis.
        let in_memory = super::analyze_attempts(attempts, stall_ms * 1000, run_end_ms * 1000);
        assert_eq!(
            serde_json::to_value(&in_memory).unwrap(),
            serde_json::to_value(&a).unwrap(),
            "the analysis of attempts in memory differs from the file's"
        );
        // And what the report leaves out, the lost-write check's input.
        assert_eq!(in_memory.acked, a.acked);
        assert_eq!(in_memory.in_doubt, a.in_doubt);
        a
    }

    /// Two clients: a switchover from A (tl1) to B (tl2) around 1.0 s to 1.5 s.
    fn switchover() -> Vec<Attempt> {
        vec![
            ok(0, 1, 0, 10, "A", 1),
            ok(1, 1, 5, 15, "A", 1),
            ok(0, 2, 500, 510, "A", 1),
            failed(
                1,
                2,
                1000,
                1010,
                ErrorClass::AdminShutdown,
                Outcome::InDoubt,
            ),
            failed(
                0,
                3,
                1000,
                1020,
                ErrorClass::ConnectionLost,
                Outcome::InDoubt,
            ),
            failed(
                1,
                3,
                1100,
                1110,
                ErrorClass::ConnectRefused,
                Outcome::Failed,
            ),
            failed(0, 4, 1200, 1210, ErrorClass::ReadOnly, Outcome::Failed),
            ok(1, 4, 1400, 1450, "B", 2),
            ok(0, 5, 1500, 1520, "B", 2),
            ok(0, 6, 1600, 1610, "B", 2),
        ]
    }

    #[test]
    fn windows_run_from_first_failure_to_next_success() {
        let a = analyze_attempts(&switchover(), 5000);
        assert_eq!(a.client_windows.len(), 2);
        let c0 = a
            .client_windows
            .iter()
            .find(|w| w.client == Some(0))
            .unwrap();
        assert_eq!(
            (c0.start_us, c0.end_us, c0.errors),
            (1_000_000, 1_520_000, 2)
        );
        let c1 = a
            .client_windows
            .iter()
            .find(|w| w.client == Some(1))
            .unwrap();
        assert_eq!((c1.start_us, c1.end_us), (1_000_000, 1_450_000));
        assert_eq!(a.windows.len(), 1);
        let w = &a.windows[0];
        assert_eq!(
            (w.start_us, w.end_us, w.clients),
            (1_000_000, 1_520_000, Some(2))
        );
        assert_eq!(w.errors, 4);
        assert_eq!(a.longest_window_ms, 520.0);
    }

    #[test]
    fn counts_reads_a_replica_answered() {
        let read = |seq, in_recovery| Attempt {
            kind: Kind::Read,
            in_recovery: Some(in_recovery),
            ..ok(0, seq, seq * 10, seq * 10 + 5, "10.0.0.1:5432", 1)
        };
        let a = analyze_attempts(&[read(1, false), read(2, true), read(3, true)], 5000);
        assert_eq!((a.totals.reads_ok, a.totals.reads_from_recovery), (3, 2));
    }

    #[test]
    fn counts_classes_and_outcomes() {
        let a = analyze_attempts(&switchover(), 5000);
        assert_eq!(a.totals.attempts, 10);
        assert_eq!(a.totals.ok, 6);
        assert_eq!(a.totals.failed, 2);
        assert_eq!(a.totals.in_doubt, 2);
        assert_eq!(a.totals.read_only_refusals, 1);
        assert_eq!(a.totals.reads_from_recovery, 0);
        assert_eq!(a.errors_by_class["57P01_admin_shutdown"], 1);
        assert_eq!(a.errors_by_class["connect_refused"], 1);
        assert_eq!(a.in_doubt, vec![(1, 2), (0, 3)]);
        assert_eq!(a.acked.len(), 6);
        assert_eq!(a.acked.ranges[&0], vec![(1, 2), (5, 6)]);
    }

    #[test]
    fn cutover_gap_is_last_old_commit_to_first_new_commit() {
        let a = analyze_attempts(&switchover(), 5000);
        assert_eq!(a.cutovers.len(), 1);
        let c = &a.cutovers[0];
        assert_eq!(c.from.addr, "A");
        assert_eq!(c.to.addr, "B");
        assert_eq!(c.gap_ms, 940.0);
        assert!(a.split_brain.is_empty());
    }

    #[test]
    fn stall_is_a_gap_between_acknowledgements() {
        let a = analyze_attempts(&switchover(), 500);
        assert_eq!(a.stalls.len(), 1, "{:?}", a.stalls);
        let s = &a.stalls[0];
        assert_eq!((s.start_us, s.end_us), (510_000, 1_450_000));
        assert_eq!(s.errors, 4);
        // A gap with no errors is a stall too (clients were queued, not refused).
        let quiet = vec![ok(0, 1, 0, 10, "A", 1), ok(0, 2, 10, 2_000, "A", 1)];
        let a = analyze_attempts(&quiet, 1000);
        assert_eq!(a.stalls.len(), 1);
        assert_eq!(a.stalls[0].errors, 0);
        assert!(a.windows.is_empty());
    }

    #[test]
    fn split_brain_is_flagged() {
        let attempts = vec![
            ok(0, 1, 0, 10, "A", 1),
            ok(1, 1, 100, 110, "B", 2),
            // A commits a write that began after B had acknowledged one.
            ok(0, 2, 200, 210, "A", 1),
            ok(0, 3, 300, 310, "A", 1),
            ok(1, 2, 400, 410, "B", 2),
        ];
        let a = analyze_attempts(&attempts, 5000);
        assert_eq!(a.split_brain.len(), 1);
        assert_eq!(a.split_brain[0].earlier.addr, "A");
        assert_eq!(a.split_brain[0].writes_after_takeover, 2);
    }

    #[test]
    fn window_open_at_the_end_is_reported_open() {
        let attempts = vec![
            ok(0, 1, 0, 10, "A", 1),
            failed(0, 2, 100, 110, ErrorClass::ConnectRefused, Outcome::Failed),
            failed(0, 3, 200, 210, ErrorClass::ConnectRefused, Outcome::Failed),
        ];
        let a = analyze_attempts(&attempts, 5000);
        assert_eq!(a.windows.len(), 1);
        assert!(a.windows[0].open_at_end);
        assert_eq!(a.windows[0].end_us, 210_000);
        // Measured to the end of the run, not to the last attempt: its length so far.
        let a = analyze_until(&attempts, 5000, 3_000);
        assert!(a.windows[0].open_at_end);
        assert_eq!(a.windows[0].end_us, 3_000_000);
        assert_eq!(a.windows[0].duration_ms, 2_900.0);
        assert_eq!(a.longest_window_ms, 2_900.0);
    }

    #[test]
    fn stall_open_at_the_end_is_reported_open() {
        // Clients queued (no errors) from 0.5 s until the run ended at 4 s.
        let attempts = vec![ok(0, 1, 0, 10, "A", 1), ok(0, 2, 400, 500, "A", 1)];
        let a = analyze_until(&attempts, 1000, 4_000);
        assert_eq!(a.stalls.len(), 1, "{:?}", a.stalls);
        let s = &a.stalls[0];
        assert!(s.open_at_end);
        assert_eq!((s.start_us, s.end_us), (500_000, 4_000_000));
        assert_eq!(s.duration_ms, 3_500.0);
        // Nothing acknowledged at all: stalled from the start.
        let a = analyze_until(&[], 1000, 2_000);
        assert_eq!(a.stalls.len(), 1);
        assert_eq!((a.stalls[0].start_us, a.stalls[0].open_at_end), (0, true));
        // Ending within the threshold of the last acknowledgement is no stall.
        let a = analyze_until(&attempts, 1000, 1_400);
        assert!(a.stalls.is_empty());
    }

    #[test]
    fn per_second_percentiles_are_hdr_exact() {
        // 100 writes in second 0 with latencies 1..=100 ms: p50 50 ms, p99 99 ms.
        let attempts: Vec<Attempt> = (1..=100).map(|i| ok(0, i, 900 - i, 900, "A", 1)).collect();
        let a = analyze_attempts(&attempts, 5000);
        let s = &a.timeline[0];
        assert_eq!(s.ok, 100);
        assert!((s.p50_ms.unwrap() - 50.0).abs() < 0.1, "{s:?}");
        assert!((s.p99_ms.unwrap() - 99.0).abs() < 0.1, "{s:?}");
        assert_eq!(s.max_ms, Some(100.0));
        assert_eq!(a.latency.overall.p99_ms, s.p99_ms.unwrap());
    }

    #[test]
    fn seconds_far_apart_each_get_their_own_percentiles() {
        let mut attempts = vec![ok(0, 1, 0, 10, "A", 1)];
        attempts.push(ok(0, 2, 100_000, 100_500, "A", 1));
        let a = analyze_attempts(&attempts, 500_000);
        assert_eq!(a.timeline.len(), 101);
        let near = |v: Option<f64>, want: f64| (v.unwrap() - want).abs() <= want / 1000.0;
        assert!(near(a.timeline[0].p99_ms, 10.0), "{:?}", a.timeline[0]);
        assert!(near(a.timeline[100].p99_ms, 500.0), "{:?}", a.timeline[100]);
        assert_eq!(a.timeline[50].p99_ms, None);
    }

    #[test]
    fn timeline_has_a_row_per_second() {
        let a = analyze_attempts(&switchover(), 5000);
        assert_eq!(a.timeline.len(), 2);
        assert_eq!(a.timeline[0].ok, 3);
        assert_eq!(a.timeline[1].failed + a.timeline[1].in_doubt, 4);
        // Second 1's successes took 50, 20 and 10 ms (HDR: exact to 0.1 %).
        let p99 = a.timeline[1].p99_ms.unwrap();
        let p50 = a.timeline[1].p50_ms.unwrap();
        assert!(
            (p99 - 50.0).abs() <= 0.05 && (p50 - 20.0).abs() <= 0.02,
            "{:?}",
            a.timeline[1]
        );
    }

    #[test]
    fn bad_history_line_names_the_line() {
        let path = std::env::temp_dir().join(format!("plab-bad-{}.jsonl", std::process::id()));
        std::fs::write(&path, "{\"client\":1}\n").unwrap();
        let err = analyze(&path, 1000, 0).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
