//! The statistics of a population's report: a proportion's Wilson score interval and the
//! nearest-rank percentile of a histogram.

/// A proportion and its 95% interval, each in 0..=1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Successes over trials (0 for no trials).
    pub rate: f64,
    /// The interval's lower end.
    pub low: f64,
    /// The interval's upper end.
    pub high: f64,
}

impl Interval {
    /// `86.9% [86.6, 87.2]`, one decimal.
    pub fn text(&self) -> String {
        format!(
            "{:.1}% [{:.1}, {:.1}]",
            self.rate * 100.0,
            self.low * 100.0,
            self.high * 100.0
        )
    }

    /// Whether `rate` (0..=1) lies within the interval.
    pub fn contains(&self, rate: f64) -> bool {
        (self.low..=self.high).contains(&rate)
    }
}

/// The normal quantile of a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// The Wilson score interval of `successes` in `trials` at 95% (Wilson 1927; Brown, Cai and
/// DasGupta 2001 recommend it over the normal approximation, which fails near 0 and 1).
/// No trials: a rate of 0 and the interval [0, 1].
pub fn wilson(successes: u64, trials: u64) -> Interval {
    if trials == 0 {
        return Interval {
            rate: 0.0,
            low: 0.0,
            high: 1.0,
        };
    }
    let n = trials as f64;
    let p = successes.min(trials) as f64 / n;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // At 0 and at every trial the interval reaches the bound exactly; rounding would leave
    // it a hair short.
    Interval {
        rate: p,
        low: if successes == 0 {
            0.0
        } else {
            (centre - half).max(0.0)
        },
        high: if successes >= trials {
            1.0
        } else {
            (centre + half).min(1.0)
        },
    }
}

/// The `p`-th percentile (0 < `p` ≤ 100) of a histogram of `[value, count]` pairs in
/// increasing order of value, by nearest rank (rank `⌈p/100 · n⌉`); `None` when it is
/// empty.
pub fn percentile(hist: &[(u64, u64)], p: f64) -> Option<u64> {
    let n: u64 = hist.iter().map(|(_, c)| c).sum();
    if n == 0 {
        return None;
    }
    let rank = ((p * n as f64 / 100.0).ceil() as u64).clamp(1, n);
    let mut seen = 0;
    for (value, count) in hist {
        seen += count;
        if seen >= rank {
            return Some(*value);
        }
    }
    hist.last().map(|(v, _)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_published_values() {
        // Brown, Cai and DasGupta (2001), and any statistics package: 81 of 263 gives
        // [0.2553, 0.3662] at 95%.
        let i = wilson(81, 263);
        assert!((i.low - 0.2553).abs() < 5e-4, "{i:?}");
        assert!((i.high - 0.3662).abs() < 5e-4, "{i:?}");
        // All successes: the upper end is 1, the lower end above 0.
        let all = wilson(10, 10);
        assert_eq!(all.high, 1.0);
        assert!((all.low - 0.7225).abs() < 5e-4, "{all:?}");
        assert_eq!(wilson(0, 0).high, 1.0);
    }

    #[test]
    fn ten_thousand_sessions_put_a_rate_within_one_point() {
        let i = wilson(5000, 10_000);
        assert!(i.high - i.low <= 0.02, "{i:?}");
        let i = wilson(5000, 9_000);
        assert!(i.high - i.low > 0.02, "{i:?}");
    }

    #[test]
    fn percentiles_of_a_histogram_go_by_nearest_rank() {
        let h = [(10, 5), (20, 4), (300, 1)];
        assert_eq!(percentile(&h, 50.0), Some(10));
        assert_eq!(percentile(&h, 90.0), Some(20));
        assert_eq!(percentile(&h, 99.0), Some(300));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
