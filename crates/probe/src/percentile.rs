//! The one percentile routine: HDR histograms of latencies in microseconds, read as
//! milliseconds. The summary, the per-second timeline (the chart's p50/p99) and the live line
//! all go through here, so every percentile the probe prints is computed the same way.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Lowest and highest latency a histogram holds (1 µs to 1 h); longer ones are clamped.
const LOWEST_US: u64 = 1;
const HIGHEST_US: u64 = 3_600_000_000;
/// Significant decimal digits: values are exact to 0.1 %.
const SIGNIFICANT_DIGITS: u8 = 3;

/// A latency histogram.
#[derive(Debug, Clone)]
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Self(
            Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
                .expect("constant histogram bounds are valid"),
        )
    }
}

impl Latencies {
    pub fn record(&mut self, us: u64) {
        self.0.saturating_record(us.clamp(LOWEST_US, HIGHEST_US));
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The latency at quantile `q` (0..=1) in milliseconds; `None` when nothing was recorded.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        (!self.0.is_empty()).then(|| self.0.value_at_quantile(q) as f64 / 1000.0)
    }

    pub fn max_ms(&self) -> Option<f64> {
        (!self.0.is_empty()).then(|| self.0.max() as f64 / 1000.0)
    }

    pub fn reset(&mut self) {
        self.0.reset();
    }

    /// The usual summary of the histogram.
    pub fn percentiles(&self) -> Percentiles {
        let at = |q| self.quantile_ms(q).unwrap_or(0.0);
        Percentiles {
            count: self.count(),
            p50_ms: at(0.5),
            p90_ms: at(0.9),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: self.max_ms().unwrap_or(0.0),
        }
    }
}

/// Percentiles of a set of latencies (all zero when `count` is 0).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// Microseconds as milliseconds, the unit every report gives times in.
pub(crate) fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_exact_to_a_tenth_of_a_percent() {
        let mut h = Latencies::default();
        for us in 1..=1000u64 {
            h.record(us * 1000); // 1 ms .. 1000 ms
        }
        let p = h.percentiles();
        assert_eq!(p.count, 1000);
        assert!((p.p50_ms - 500.0).abs() <= 0.5, "{p:?}");
        assert!((p.p99_ms - 990.0).abs() <= 1.0, "{p:?}");
        assert!((p.max_ms - 1000.0).abs() <= 1.0, "{p:?}");
    }

    #[test]
    fn empty_histogram_has_no_quantiles() {
        let h = Latencies::default();
        assert_eq!(h.quantile_ms(0.5), None);
        assert_eq!(h.percentiles(), Percentiles::default());
    }

    #[test]
    fn out_of_range_values_are_clamped_not_dropped() {
        let mut h = Latencies::default();
        h.record(0);
        h.record(u64::MAX);
        assert_eq!(h.count(), 2);
    }
}
