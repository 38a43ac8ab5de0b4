//! The set of acknowledged writes, per client, kept as sorted inclusive ranges of sequence
//! numbers so that it stays small however long the run (the lost-write check reads it).

use std::collections::BTreeMap;

/// Acknowledged write sequence numbers, per client, as sorted inclusive ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acked {
    pub ranges: BTreeMap<u32, Vec<(u64, u64)>>,
}

impl Acked {
    pub fn insert(&mut self, client: u32, seq: u64) {
        let ranges = self.ranges.entry(client).or_default();
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == seq => *end = seq,
            Some((_, end)) if *end >= seq => {
                // Out of order (never from the probe, but keep the set right).
                let mut all: Vec<u64> = ranges.iter().flat_map(|(a, b)| *a..=*b).collect();
                all.push(seq);
                all.sort_unstable();
                all.dedup();
                *ranges = Vec::new();
                for s in all {
                    match ranges.last_mut() {
                        Some((_, e)) if *e + 1 == s => *e = s,
                        _ => ranges.push((s, s)),
                    }
                }
            }
            _ => ranges.push((seq, seq)),
        }
    }

    pub fn len(&self) -> u64 {
        self.ranges
            .values()
            .flat_map(|r| r.iter().map(|(a, b)| b - a + 1))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acked_ranges_stay_compact_and_right() {
        let mut acked = Acked::default();
        for s in [1, 2, 3, 5, 6, 9] {
            acked.insert(7, s);
        }
        assert_eq!(acked.ranges[&7], vec![(1, 3), (5, 6), (9, 9)]);
        acked.insert(7, 4);
        assert_eq!(acked.ranges[&7], vec![(1, 6), (9, 9)]);
        assert_eq!(acked.len(), 7);
    }
}
