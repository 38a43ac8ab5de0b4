//! What reading clients saw on the reader endpoint: after each acknowledged write a client reads
//! its own newest row there, so every read says how far behind the newest acknowledged write the
//! data it saw was (staleness, on the writer's acknowledgement clock), whether the client's own
//! write was visible (read-your-writes), whether it saw older data than its previous read
//! (monotonic reads), and which node answered (a replica, or a primary).

use std::collections::HashMap;

use serde::Serialize;

use crate::classify::Outcome;
use crate::model::ms;
use crate::percentile::{Latencies, Percentiles};
use crate::record::Attempt;

/// The reader side of a run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Readers {
    /// Reads attempted on the reader endpoint, one after each acknowledged write.
    pub reads: u64,
    pub ok: u64,
    pub failed: u64,
    /// Reads that did not see the write their client had just had acknowledged.
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
    /// The longest stretch from a failed read to the next successful one, any client (ms).
    pub longest_failing_ms: f64,
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
}

impl ReaderPass {
    /// A write the writer endpoint acknowledged.
    pub fn acknowledged(&mut self, client: u32, seq: u64, at_us: u64) {
        self.acked.entry(client).or_default().push((seq, at_us));
    }

    /// A read on the reader endpoint (`seq`: the write just acknowledged; `seen`: the newest of
    /// the client's rows it saw, 0 for none).
    pub fn read(&mut self, at: &Attempt) {
        let r = &mut self.r;
        r.reads += 1;
        if at.outcome != Outcome::Ok {
            r.failed += 1;
            self.failing_since.get_or_insert(at.start_us);
            return;
        }
        if let Some(since) = self.failing_since.take() {
            r.longest_failing_ms = r
                .longest_failing_ms
                .max(ms(at.end_us.saturating_sub(since)));
        }
        r.ok += 1;
        r.answered_by_primary += u64::from(at.in_recovery == Some(false));
        let seen = at.seen.unwrap_or(0);
        r.own_write_missing += u64::from(seen < at.seq);
        if self
            .last_seen
            .insert(at.client, seen)
            .is_some_and(|before| before > seen)
        {
            r.monotonic_violations += 1;
        }
        // The oldest acknowledged write of this client the read did not see.
        let acked = self.acked.get(&at.client).map_or(&[][..], Vec::as_slice);
        let first_unseen = acked.partition_point(|(s, _)| *s <= seen);
        let stale_us = acked
            .get(first_unseen)
            .filter(|(_, ack)| *ack < at.start_us)
            .map_or(0, |(_, ack)| at.start_us - ack);
        self.r.stale_reads += u64::from(stale_us > 0);
        self.staleness.record(stale_us);
    }

    /// The summary; `None` when no read was made (no reader endpoint).
    pub fn finish(mut self) -> Option<Readers> {
        if self.r.reads == 0 {
            return None;
        }
        self.r.staleness = self.staleness.percentiles();
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
        }
    }

    #[test]
    fn a_read_behind_its_own_writes_is_stale_by_the_oldest_it_missed() {
        let mut p = ReaderPass::default();
        // Writes 1..=3 acknowledged at 100, 200, 300 ms.
        for (seq, at) in [(1, 100), (2, 200), (3, 300)] {
            p.acknowledged(0, seq, at * 1000);
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
        assert_eq!(r.stale_reads, 2);
        // The histogram keeps 3 significant digits.
        assert!(
            (r.staleness.max_ms - 300.0).abs() < 0.5,
            "{}",
            r.staleness.max_ms
        );
        assert_eq!(r.staleness.count, 4);
        assert_eq!(r.longest_failing_ms, 502.0);
        assert_eq!(r.answered_by_primary, 0);
    }

    #[test]
    fn no_reads_no_reader_side() {
        assert_eq!(ReaderPass::default().finish(), None);
    }
}
