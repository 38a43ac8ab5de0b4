//! The reader endpoint's side of a scenario run, and why: how far behind its replica fell
//! against the lag threshold, when the replica left the reader pool and came back, and the
//! bound the settings give on reads past the threshold — with the grade of a fault about
//! readers (`lag-replica`).
//!
//! Why the bound is not "one check interval": Patroni's `GET /replica?lag=` compares the
//! replica's replayed position with the leader's position as last published in etcd, which the
//! leader does once per HA loop. A replica that fell behind is seen past the threshold only at
//! the leader's next loop (up to `loop_wait` later), then HAProxy needs `fall` failed checks
//! `inter` apart (and up to one `inter` before the first): reads past the threshold for up to
//! `loop_wait + (fall + 1) × inter`.

use serde::Serialize;

use patroni_lab_cluster::timeline::{Event, Mark, Seen};
use patroni_lab_faults::grade::Grade;

/// The live settings that decide when a lagging replica leaves the reader pool.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReaderSettings {
    pub threshold_bytes: u64,
    pub loop_wait_ms: f64,
    pub inter_ms: f64,
    pub fall: u32,
}

impl ReaderSettings {
    /// The longest a replica can serve reads past the threshold (ms): `loop_wait + (fall + 1)
    /// × inter`.
    pub fn bound_ms(&self) -> f64 {
        self.loop_wait_ms + f64::from(self.fall + 1) * self.inter_ms
    }
}

/// The pool's course in a run, on the probe's clock.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReaderPool {
    pub settings: ReaderSettings,
    /// The first second in which a replica read was more than the threshold behind.
    pub crossed_at_s: Option<u64>,
    /// From the first to the end of the last second with a replica read past the threshold
    /// (whole seconds: ±1 s). `Some(0)`: replica reads measured, none past it; `None`: no
    /// replica read carried positions — not measured.
    pub past_threshold_s: Option<u64>,
    /// When a replica that was in the reader pool at the injection was first out of it (the
    /// pool smaller, or the leader's fallback), and when the pool had as many replicas again.
    pub left_at_us: Option<i64>,
    pub rejoined_at_us: Option<i64>,
}

/// The pool's course from the probe's reader side and the timeline; `None` without readers.
pub fn pool(
    readers: Option<&patroni_lab_probe::readers::Readers>,
    events: &[Event],
    settings: ReaderSettings,
) -> Option<ReaderPool> {
    let r = readers?;
    let past: Vec<u64> = r
        .per_second
        .iter()
        .enumerate()
        .filter(|(_, s)| s.replica_lag_bytes_max > Some(settings.threshold_bytes))
        .map(|(i, _)| i as u64)
        .collect();
    let injected = events
        .iter()
        .find(|e| e.mark == Some(Mark::Injected))
        .map_or(0, |e| e.at_us);
    // The pool's members as the observer saw them (none: the leader; what it said instead is
    // no sample of the pool).
    let pools: Vec<(i64, Vec<&str>)> = events
        .iter()
        .filter_map(|e| match &e.seen {
            Some(Seen::Readers(Ok(up))) => Some((e.at_us, up.iter().map(String::as_str).collect())),
            _ => None,
        })
        .collect();
    let before = pools
        .iter()
        .take_while(|(at, _)| *at < injected)
        .last()
        .map_or(Vec::new(), |(_, m)| m.clone());
    // Left: a replica that was in the pool at the injection is out; back: as many replicas as
    // then (not necessarily the same: a switchover swaps them).
    let left_at_us = pools
        .iter()
        .find(|(at, m)| *at >= injected && before.iter().any(|b| !m.contains(b)))
        .map(|(at, _)| *at);
    let rejoined_at_us = left_at_us.and_then(|left| {
        pools
            .iter()
            .find(|(at, m)| *at > left && m.len() >= before.len())
            .map(|(at, _)| *at)
    });
    Some(ReaderPool {
        settings,
        crossed_at_s: past.first().copied(),
        past_threshold_s: r
            .replica_lag_bytes
            .as_ref()
            .map(|_| match (past.first(), past.last()) {
                (Some(a), Some(b)) => b - a + 1,
                _ => 0,
            }),
        left_at_us,
        rejoined_at_us,
    })
}

/// The reader side's grades: monotonic reads whenever clients read on the reader endpoint (a
/// client's later read never older than its earlier one: a guarantee, like no lost write), and
/// for a fault about readers the bound on reads past the lag threshold (not measured fails).
pub fn grades(
    readers: Option<&patroni_lab_probe::readers::Readers>,
    pool: Option<&ReaderPool>,
    about_readers: bool,
) -> Vec<Grade> {
    let mut out = Vec::new();
    if let Some(r) = readers {
        out.push(Grade {
            name: "monotonic-read violations",
            expected: "<= 0".into(),
            observed: r.monotonic_violations.to_string(),
            pass: r.monotonic_violations == 0,
        });
    }
    if about_readers {
        out.push(pool.map_or_else(
            || Grade {
                name: "replica reads past the lag threshold",
                expected: "measured".into(),
                observed: "not measured (no reads, or HAProxy's settings not read)".into(),
                pass: false,
            },
            ReaderPool::grade,
        ));
    }
    out
}

impl ReaderPool {
    /// The grade of a fault about readers: reads past the lag threshold for no longer than the
    /// settings allow (+1 s: whole seconds). Not measured fails.
    pub fn grade(&self) -> Grade {
        let bound = self.settings.bound_ms() / 1000.0 + 1.0;
        Grade {
            name: "replica reads past the lag threshold",
            expected: format!("<= {bound:.1} s"),
            observed: self.past_threshold_s.map_or(
                "not measured (no replica read carried its position)".into(),
                |s| format!("{s} s"),
            ),
            pass: self.past_threshold_s.is_some_and(|s| s as f64 <= bound),
        }
    }

    /// The summary's lines.
    pub fn lines(&self) -> Vec<String> {
        let s = &self.settings;
        let at =
            |us: Option<i64>| us.map_or("not seen".into(), |u| format!("{:+.2} s", u as f64 / 1e6));
        vec![
            format!(
                "readers' pool: lag threshold {} B; a replica read past it first in second {}; reads past it for {}; left the pool {}, back {}",
                s.threshold_bytes,
                self.crossed_at_s.map_or("none".into(), |x| x.to_string()),
                self.past_threshold_s
                    .map_or("not measured".into(), |x| format!("{x} s (±1 s)")),
                at(self.left_at_us),
                at(self.rejoined_at_us)
            ),
            format!(
                "  bound: loop_wait {:.0} ms (the leader publishes its position once a loop) + (fall {} + 1) x inter {:.0} ms = {:.1} s",
                s.loop_wait_ms,
                s.fall,
                s.inter_ms,
                s.bound_ms() / 1000.0
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use patroni_lab_probe::readers::{ByteSpread, ReaderSecond, Readers};

    use patroni_lab_cluster::timeline::{Source, Timeline};

    /// What the reader port routed to at `at_s` (none: the leader), as the observer records it.
    fn readers(at_s: f64, up: &[&str]) -> Event {
        let t = Timeline::default();
        t.observe(Seen::Readers(Ok(up
            .iter()
            .map(|s| s.to_string())
            .collect())));
        at(at_s, t)
    }

    /// The fault injected at `at_s`, as the runner marks it.
    fn injected(at_s: f64) -> Event {
        let t = Timeline::default();
        t.mark(Mark::Injected, "inject lag-replica (…)");
        at(at_s, t)
    }

    fn at(at_s: f64, t: Timeline) -> Event {
        let mut e = t.events(0).remove(0);
        e.at_us = (at_s * 1e6) as i64;
        assert!(e.source == Source::Cluster || e.mark.is_some());
        e
    }

    const SETTINGS: ReaderSettings = ReaderSettings {
        threshold_bytes: 65536,
        loop_wait_ms: 10_000.0,
        inter_ms: 1000.0,
        fall: 2,
    };

    #[test]
    fn reads_past_the_threshold_span_whole_seconds_and_the_pool_moments_follow_the_injection() {
        let lag = |b: Option<u64>| ReaderSecond {
            replica_lag_bytes_max: b,
            ..ReaderSecond::default()
        };
        let r = Readers {
            per_second: vec![
                lag(Some(100)),
                lag(Some(70_000)),
                lag(None),
                lag(Some(300_000)),
                lag(Some(10)),
            ],
            replica_lag_bytes: Some(ByteSpread::default()),
            ..Readers::default()
        };
        let events = [
            readers(0.2, &[]),
            readers(0.5, &["patroni2"]),
            injected(0.6),
            readers(3.9, &[]),
            readers(4.4, &["patroni2"]),
        ];
        let p = pool(Some(&r), &events, SETTINGS).unwrap();
        assert_eq!(p.crossed_at_s, Some(1));
        assert_eq!(p.past_threshold_s, Some(3));
        assert_eq!(
            (p.left_at_us, p.rejoined_at_us),
            (Some(3_900_000), Some(4_400_000))
        );
        let g = p.grade();
        assert!(g.pass, "{g:?}");
        assert_eq!(g.expected, "<= 14.0 s");
        // Nothing past: 0 s, measured; no positions at all: not measured, and that fails.
        let fresh = Readers {
            per_second: vec![lag(Some(5))],
            replica_lag_bytes: Some(ByteSpread::default()),
            ..Readers::default()
        };
        assert_eq!(
            pool(Some(&fresh), &[], SETTINGS).unwrap().past_threshold_s,
            Some(0)
        );
        let unmeasured = pool(Some(&Readers::default()), &[], SETTINGS).unwrap();
        assert_eq!(unmeasured.past_threshold_s, None);
        assert!(!unmeasured.grade().pass);
        assert_eq!(pool(None, &events, SETTINGS), None);
        // Three members: one of two replicas leaves, and comes back.
        let three = [
            readers(0.1, &["patroni2", "patroni3"]),
            injected(0.6),
            readers(20.0, &["patroni3"]),
            readers(21.0, &["patroni2", "patroni3"]),
        ];
        let p3 = pool(Some(&fresh), &three, SETTINGS).unwrap();
        assert_eq!(
            (p3.left_at_us, p3.rejoined_at_us),
            (Some(20_000_000), Some(21_000_000))
        );
        // Past it longer than the bound fails.
        let long = Readers {
            per_second: (0..20).map(|_| lag(Some(70_000))).collect(),
            replica_lag_bytes: Some(ByteSpread::default()),
            ..Readers::default()
        };
        assert!(!pool(Some(&long), &[], SETTINGS).unwrap().grade().pass);
    }

    #[test]
    fn readers_are_graded_on_monotonic_reads_and_a_reader_fault_on_its_bound() {
        let mut r = Readers::default();
        let names = |g: &[Grade]| g.iter().map(|g| (g.name, g.pass)).collect::<Vec<_>>();
        assert_eq!(grades(None, None, false), Vec::new());
        assert_eq!(
            names(&grades(Some(&r), None, false)),
            [("monotonic-read violations", true)]
        );
        r.monotonic_violations = 4;
        assert_eq!(
            names(&grades(Some(&r), None, true)),
            [
                ("monotonic-read violations", false),
                ("replica reads past the lag threshold", false)
            ]
        );
    }
}
