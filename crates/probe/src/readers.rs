//! What reading clients saw on the reader endpoint: after its writes (acknowledged or not:
//! reads go on while writes fail; one read at a time, in a task of its own, so a read that
//! hangs never holds up a write) a client reads its own newest row there, so every read
//! says how far behind the newest acknowledged write the data it saw was (staleness, on the
//! writer's acknowledgement clock), whether the client's own newest acknowledged write was
//! visible (read-your-writes), whether it saw older data than its previous read (monotonic
//! reads), and which node answered (a replica, or a primary).

use std::collections::HashMap;

use serde::Serialize;

use crate::classify::Outcome;
use crate::percentile::ms;
use crate::percentile::{Latencies, Percentiles};
use crate::record::Attempt;

/// The reader side of a run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Readers {
    /// Reads attempted on the reader endpoint: after each write attempt, one at a time per
    /// client (writes made while a read runs ask for one more read).
    pub reads: u64,
    pub ok: u64,
    pub failed: u64,
    /// Reads that did not see their client's newest acknowledged write.
    pub own_write_missing: u64,
    /// Reads that saw older data than the same client's previous read.
    pub monotonic_violations: u64,
    /// Reads answered by a server not in recovery (a primary: the fallback, or a promoted node).
    pub answered_by_primary: u64,
    /// How far behind each successful read was: from the acknowledgement of the oldest of its
    /// client's writes it did not see to the read's start (0 when it saw them all).
    pub staleness: Percentiles,
    /// Reads that were stale at all (staleness > 0).
    pub stale_reads: u64,
    /// How long after its acknowledgement each write was first seen by its client on the
    /// reader endpoint: to the end of the first read that saw it (an upper bound; the read
    /// before, which did not, bounds it from below). `count`: writes whose visibility was seen.
    pub own_write_visible_within: Percentiles,
    /// The longest stretch from a failed read to the next successful one, any client (ms).
    pub longest_failing_ms: f64,
    /// Of the reads a replica answered: how far its replayed WAL position was behind the
    /// primary's at the newest write acknowledged before the read began (bytes; p50 and p99
    /// exact to 0.1 %, max exact; all to within one write's own WAL: a write's position is
    /// taken just before its commit record). `None`: no replica read carried positions.
    pub replica_lag_bytes: Option<ByteSpread>,
    /// Per second of the run (by each read's start), what the readers saw.
    pub per_second: Vec<ReaderSecond>,
}

/// A spread of byte counts.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ByteSpread {
    pub count: u64,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

/// One second of reads.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ReaderSecond {
    pub reads: u32,
    pub failed: u32,
    /// Reads that did not see their client's own newest write.
    pub own_write_missing: u32,
    /// Reads that saw older data than their client's previous read.
    pub monotonic_violations: u32,
    /// The stalest read that second (ms); `None` when no read succeeded.
    pub staleness_max_ms: Option<f64>,
    /// The furthest behind a replica's replay was in a read that second (bytes).
    pub replica_lag_bytes_max: Option<u64>,
}

/// Pass-1 state: the clients' acknowledged writes and their last reads.
#[derive(Debug, Default)]
pub struct ReaderPass {
    r: Readers,
    /// Per client: (seq, acknowledged at) of its acknowledged writes, in order.
    acked: HashMap<u32, Vec<(u64, u64)>>,
    last_seen: HashMap<u32, u64>,
    staleness: Latencies,
    failing_since: Option<u64>,
    /// (acknowledged at, WAL position) of every acknowledged write, in time order.
    acked_wal: Vec<(u64, u64)>,
    lag: Option<hdrhistogram::Histogram<u64>>,
    /// The exact largest lag (the histogram's is exact to 0.1 %).
    lag_max: u64,
    /// Per client, the newest of its writes already seen on the reader endpoint.
    visible_upto: HashMap<u32, u64>,
    visible: Latencies,
}

impl ReaderPass {
    /// A write the writer endpoint acknowledged.
    pub fn acknowledged(&mut self, client: u32, seq: u64, at_us: u64, wal: Option<u64>) {
        self.acked.entry(client).or_default().push((seq, at_us));
        if let Some(wal) = wal {
            // Clients' records arrive nearly in time order: the rare late one goes in its place.
            let at = self.acked_wal.partition_point(|(t, _)| *t <= at_us);
            self.acked_wal.insert(at, (at_us, wal));
        }
    }

    fn second(&mut self, start_us: u64) -> &mut ReaderSecond {
        let i = (start_us / 1_000_000) as usize;
        let seconds = &mut self.r.per_second;
        if seconds.len() <= i {
            seconds.resize_with(i + 1, ReaderSecond::default);
        }
        &mut seconds[i]
    }

    /// How far a replica's replayed position `wal` was behind the newest write acknowledged
    /// before `start_us` (0 when it was not behind).
    fn lag_bytes(&self, start_us: u64, wal: u64) -> Option<u64> {
        let i = self.acked_wal.partition_point(|(t, _)| *t < start_us);
        let (_, newest) = self.acked_wal.get(i.checked_sub(1)?)?;
        Some(newest.saturating_sub(wal))
    }

    /// A read on the reader endpoint (`seq`: the client's newest acknowledged write, 0 for none;
    /// `seen`: the newest of the client's rows it saw, 0 for none).
    pub fn read(&mut self, at: &Attempt) {
        self.r.reads += 1;
        self.second(at.start_us).reads += 1;
        if at.outcome != Outcome::Ok {
            self.r.failed += 1;
            self.second(at.start_us).failed += 1;
            self.failing_since.get_or_insert(at.start_us);
            return;
        }
        let lag = match (at.in_recovery, at.wal) {
            (Some(true), Some(wal)) => self.lag_bytes(at.start_us, wal),
            _ => None,
        };
        let r = &mut self.r;
        if let Some(since) = self.failing_since.take() {
            r.longest_failing_ms = r
                .longest_failing_ms
                .max(ms(at.end_us.saturating_sub(since)));
        }
        r.ok += 1;
        r.answered_by_primary += u64::from(at.in_recovery == Some(false));
        let seen = at.seen.unwrap_or(0);
        r.own_write_missing += u64::from(seen < at.seq);
        let went_back = self
            .last_seen
            .insert(at.client, seen)
            .is_some_and(|before| before > seen);
        r.monotonic_violations += u64::from(went_back);
        // The oldest acknowledged write of this client the read did not see.
        let acked = self.acked.get(&at.client).map_or(&[][..], Vec::as_slice);
        // The writes this read is the first to see.
        let upto = self.visible_upto.get(&at.client).copied().unwrap_or(0);
        if seen > upto {
            let new = acked.partition_point(|(s, _)| *s <= upto)
                ..acked.partition_point(|(s, _)| *s <= seen);
            for (_, ack) in &acked[new] {
                self.visible.record(at.end_us.saturating_sub(*ack));
            }
            self.visible_upto.insert(at.client, seen);
        }
        let first_unseen = acked.partition_point(|(s, _)| *s <= seen);
        let stale_us = acked
            .get(first_unseen)
            .filter(|(_, ack)| *ack <= at.start_us)
            .map_or(0, |(_, ack)| at.start_us - ack);
        let missing = seen < at.seq;
        self.r.stale_reads += u64::from(stale_us > 0);
        self.staleness.record(stale_us);
        if let Some(bytes) = lag {
            self.lag_max = self.lag_max.max(bytes);
            self.lag
                .get_or_insert_with(|| {
                    // 1 byte to 32 TiB of WAL, 3 significant digits.
                    hdrhistogram::Histogram::new_with_bounds(1, 1 << 45, 3)
                        .expect("constant histogram bounds are valid")
                })
                .saturating_record(bytes);
        }
        let sec = self.second(at.start_us);
        sec.own_write_missing += u32::from(missing);
        sec.monotonic_violations += u32::from(went_back);
        let stale_ms = ms(stale_us);
        sec.staleness_max_ms = Some(sec.staleness_max_ms.map_or(stale_ms, |m| m.max(stale_ms)));
        if let Some(bytes) = lag {
            sec.replica_lag_bytes_max =
                Some(sec.replica_lag_bytes_max.map_or(bytes, |m| m.max(bytes)));
        }
    }

    /// The summary; `None` when no read was made (no reader endpoint).
    pub fn finish(mut self) -> Option<Readers> {
        if self.r.reads == 0 {
            return None;
        }
        self.r.staleness = self.staleness.percentiles();
        self.r.own_write_visible_within = self.visible.percentiles();
        self.r.replica_lag_bytes = self.lag.map(|h| ByteSpread {
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            max: self.lag_max,
        });
        Some(self.r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Kind;

    fn read(client: u32, seq: u64, seen: Option<u64>, start_ms: u64, ok: bool) -> Attempt {
        Attempt {
            client,
            seq,
            kind: Kind::ReplicaRead,
            start_us: start_ms * 1000,
            end_us: start_ms * 1000 + 2000,
            outcome: if ok { Outcome::Ok } else { Outcome::Failed },
            connected: true,
            server: None,
            in_recovery: Some(true),
            error: None,
            seen,
            wal: None,
        }
    }

    #[test]
    fn a_read_behind_its_own_writes_is_stale_by_the_oldest_it_missed() {
        let mut p = ReaderPass::default();
        // Writes 1..=3 acknowledged at 100, 200, 300 ms.
        for (seq, at) in [(1, 100), (2, 200), (3, 300)] {
            p.acknowledged(0, seq, at * 1000, None);
        }
        // Fresh: sees 1 right after it.
        p.read(&read(0, 1, Some(1), 110, true));
        // Sees only 1 at 310 ms: 2 was acknowledged 110 ms before, its own 3 missing.
        p.read(&read(0, 3, Some(1), 310, true));
        // Sees nothing at all later: older than before (monotonic), 2 and 3... from 1 (100 ms).
        p.read(&read(0, 3, None, 400, true));
        // A failed read, then a fresh one 500 ms later.
        p.read(&read(0, 3, None, 500, false));
        p.read(&read(0, 3, Some(3), 1000, true));
        let r = p.finish().unwrap();
        assert_eq!((r.reads, r.ok, r.failed), (5, 4, 1));
        assert_eq!(r.own_write_missing, 2);
        assert_eq!(r.monotonic_violations, 1);
        assert_eq!(r.per_second[0].monotonic_violations, 1);
        assert_eq!(r.stale_reads, 2);
        // The histogram keeps 3 significant digits.
        assert!(
            (r.staleness.max_ms - 300.0).abs() < 0.5,
            "{}",
            r.staleness.max_ms
        );
        assert_eq!(r.staleness.count, 4);
        // Write 1 first seen by the read ending at 112 ms (acknowledged at 100); 2 and 3 by the
        // one ending at 1002 ms.
        let v = &r.own_write_visible_within;
        assert_eq!(v.count, 3);
        assert!((v.max_ms - 802.0).abs() < 1.0, "{v:?}");
        assert!((v.p50_ms - 702.0).abs() < 1.0, "{v:?}");
        assert_eq!(r.longest_failing_ms, 502.0);
        assert_eq!(r.answered_by_primary, 0);
    }

    #[test]
    fn a_replica_read_lags_the_newest_write_acknowledged_before_it_in_bytes_and_per_second() {
        let mut p = ReaderPass::default();
        // Two clients' writes at WAL 1000, 5000, 9000, acknowledged at 100, 200, 300 ms; the
        // last arrives out of order.
        p.acknowledged(0, 1, 100_000, Some(1000));
        p.acknowledged(1, 1, 300_000, Some(9000));
        p.acknowledged(0, 2, 200_000, Some(5000));
        // At 250 ms a replica replayed up to 2000: behind the write at 200 ms by 3000 bytes.
        let mut r1 = read(0, 2, Some(1), 250, true);
        r1.wal = Some(2000);
        p.read(&r1);
        // At 1310 ms, caught up beyond the newest (9000): 0 behind.
        let mut r2 = read(0, 2, Some(2), 1310, true);
        r2.wal = Some(9500);
        p.read(&r2);
        // A primary's answer has no replay lag: not counted in bytes.
        let mut r3 = read(1, 1, Some(1), 1400, true);
        (r3.in_recovery, r3.wal) = (Some(false), Some(9600));
        p.read(&r3);
        p.read(&read(1, 1, None, 1500, false));
        let r = p.finish().unwrap();
        let lag = r.replica_lag_bytes.unwrap();
        assert_eq!((lag.count, lag.max), (2, 3000));
        assert_eq!(r.per_second.len(), 2);
        let (s0, s1) = (&r.per_second[0], &r.per_second[1]);
        assert_eq!((s0.reads, s0.failed, s0.own_write_missing), (1, 0, 1));
        assert_eq!(s0.replica_lag_bytes_max, Some(3000));
        // Stale by the write at 200 ms: 50 ms.
        assert!((s0.staleness_max_ms.unwrap() - 50.0).abs() < 0.1, "{s0:?}");
        assert_eq!((s1.reads, s1.failed, s1.own_write_missing), (3, 1, 0));
        assert_eq!(s1.replica_lag_bytes_max, Some(0));
        assert_eq!(s1.staleness_max_ms, Some(0.0));
    }

    #[test]
    fn no_reads_no_reader_side() {
        assert_eq!(ReaderPass::default().finish(), None);
    }
}
