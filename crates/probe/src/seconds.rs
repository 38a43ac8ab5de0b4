//! The per-second latency percentiles of the timeline: one HDR histogram per second still
//! open, summarised into the second's p50/p99 once it is old enough, and recycled.

use std::collections::BTreeMap;

use crate::model::Second;
use crate::percentile::Latencies;

/// How long after a second has passed its latencies are still taken: the history is written
/// in the order attempts end, give or take the scheduling of the clients' tasks, so a few
/// seconds suffice. Seconds older than this are summarised and their histogram reused.
const OPEN_SECONDS: usize = 30;

/// The per-second latency histograms still open (at most `OPEN_SECONDS` of them).
#[derive(Default)]
pub(crate) struct SecondLatencies {
    open: BTreeMap<usize, Latencies>,
    spare: Vec<Latencies>,
}

impl SecondLatencies {
    pub(crate) fn record(&mut self, timeline: &mut [Second], second: usize, us: u64) {
        let spare = &mut self.spare;
        self.open
            .entry(second)
            .or_insert_with(|| spare.pop().unwrap_or_default())
            .record(us);
        while let Some((&oldest, _)) = self.open.first_key_value() {
            if oldest + OPEN_SECONDS >= second {
                break;
            }
            self.close(timeline, oldest);
        }
    }

    fn close(&mut self, timeline: &mut [Second], second: usize) {
        if let Some(mut h) = self.open.remove(&second) {
            let s = &mut timeline[second];
            // A late attempt for a second already closed adds to it (max only), never replaces.
            s.p50_ms = s.p50_ms.or(h.quantile_ms(0.5));
            s.p99_ms = s.p99_ms.or(h.quantile_ms(0.99));
            h.reset();
            self.spare.push(h);
        }
    }

    pub(crate) fn close_all(&mut self, timeline: &mut [Second]) {
        let seconds: Vec<usize> = self.open.keys().copied().collect();
        for second in seconds {
            self.close(timeline, second);
        }
    }
}
