//! A run's latency figures, from an HDR histogram of its message latencies (microseconds,
//! three significant digits: each figure within 0.1 % of a latency measured), and the latency
//! bounds a scenario sets.

use std::time::Duration;

use gauntlet_reports::Latency;
use hdrhistogram::Histogram;

use crate::endpoints::client::Report;
use crate::scenario::Bounds;
use crate::verdict::outcome::Outcome;

/// The most latency samples a run keeps in its results (the first ones); percentiles count
/// them all.
pub const SAMPLES_KEPT: usize = 200;

/// Percentiles of `latencies`, or `None` without any.
pub fn latency(latencies: &[Duration]) -> Option<Latency> {
    // One microsecond to a day, three significant digits: 0.1 % resolution.
    let mut h = Histogram::<u64>::new_with_bounds(1, 86_400_000_000, 3).ok()?;
    for l in latencies {
        h.saturating_record(u64::try_from(l.as_micros()).unwrap_or(u64::MAX).max(1));
    }
    if h.is_empty() {
        return None;
    }
    // A bucket's middle value: within 0.05 % of every value recorded in it.
    let ms = |us: u64| h.median_equivalent(us) as f64 / 1000.0;
    Some(Latency {
        p50: ms(h.value_at_quantile(0.50)),
        p90: ms(h.value_at_quantile(0.90)),
        p99: ms(h.value_at_quantile(0.99)),
        max: ms(h.max()),
        count: h.len(),
    })
}

/// Holds a run that would be `delivered` to `bounds`, given its latency figures (from
/// [`latency`]): a broken bound makes it `degraded`, and the detail names each broken bound
/// with the measured figure.
pub fn apply_bounds(bounds: &Bounds, figures: Option<&Latency>, report: &mut Report) {
    if report.outcome != Outcome::Delivered || *bounds == Bounds::default() {
        return;
    }
    let got = |f: fn(&Latency) -> f64| figures.map(f);
    let checks = [
        ("latency p50", bounds.latency_p50, got(|l| l.p50)),
        ("latency p90", bounds.latency_p90, got(|l| l.p90)),
        ("latency p99", bounds.latency_p99, got(|l| l.p99)),
        ("latency max", bounds.latency_max, got(|l| l.max)),
        (
            "handshake",
            bounds.handshake,
            report.handshake.map(|h| h.as_secs_f64() * 1000.0),
        ),
    ];
    let mut broken = Vec::new();
    for (what, bound, figure) in checks {
        let Some(bound) = bound else { continue };
        let bound_ms = bound.as_secs_f64() * 1000.0;
        match figure {
            Some(v) if v > bound_ms => {
                broken.push(format!(
                    "{what} {v:.1} ms above the bound of {bound_ms:.0} ms"
                ));
            }
            Some(_) => {}
            None => broken.push(format!(
                "{what}: nothing measured against the bound of {bound_ms:.0} ms"
            )),
        }
    }
    if !broken.is_empty() {
        report.outcome = Outcome::Degraded;
        report.detail = format!("{} ({})", broken.join("; "), report.detail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(latencies_ms: &[u64]) -> Report {
        Report {
            outcome: Outcome::Delivered,
            detail: "5/5 echoed".into(),
            handshake: Some(Duration::from_millis(30)),
            phases: Default::default(),
            latencies: latencies_ms
                .iter()
                .map(|m| Duration::from_millis(*m))
                .collect(),
            sent: latencies_ms.len() as u64,
            received: latencies_ms.len() as u64,
            ..Report::new()
        }
    }

    /// Within the histogram's precision (0.1 %).
    fn close(got: f64, want: f64) -> bool {
        (got - want).abs() <= want / 1000.0
    }

    #[test]
    fn percentiles_come_from_every_sample() {
        let l = latency(&(1..=100).map(Duration::from_millis).collect::<Vec<_>>()).unwrap();
        assert_eq!(l.count, 100);
        for (got, want) in [(l.p50, 50.0), (l.p90, 90.0), (l.p99, 99.0), (l.max, 100.0)] {
            assert!(close(got, want), "{got} for {want}: {l:?}");
        }
        assert!(latency(&[]).is_none());
    }

    #[test]
    fn a_broken_bound_degrades_a_delivered_run_and_names_the_figure() {
        let mut r = report(&[20, 20, 20, 20, 280]);
        let bounds = Bounds {
            latency_p99: Some(Duration::from_millis(250)),
            handshake: Some(Duration::from_secs(1)),
            ..Bounds::default()
        };
        apply_bounds(&bounds, latency(&r.latencies).as_ref(), &mut r);
        assert_eq!(r.outcome, Outcome::Degraded);
        let figure: f64 = r
            .detail
            .strip_prefix("latency p99 ")
            .and_then(|d| d.split_once(" ms above the bound of 250 ms (5/5 echoed)"))
            .and_then(|(v, rest)| rest.is_empty().then(|| v.parse().ok())?)
            .unwrap_or_else(|| panic!("{}", r.detail));
        assert!(close(figure, 280.0), "{}", r.detail);
    }

    #[test]
    fn bounds_met_or_a_failed_run_leave_the_outcome_alone() {
        let bounds = Bounds {
            latency_p99: Some(Duration::from_millis(250)),
            ..Bounds::default()
        };
        let mut ok = report(&[20, 30, 40]);
        apply_bounds(&bounds, latency(&ok.latencies).as_ref(), &mut ok);
        assert_eq!(ok.outcome, Outcome::Delivered);
        let mut failed = report(&[900]);
        failed.outcome = Outcome::Stalled;
        apply_bounds(&bounds, latency(&failed.latencies).as_ref(), &mut failed);
        assert_eq!(failed.outcome, Outcome::Stalled);
    }

    #[test]
    fn a_bound_with_nothing_measured_is_broken() {
        let mut r = report(&[]);
        apply_bounds(
            &Bounds {
                latency_max: Some(Duration::from_millis(100)),
                ..Bounds::default()
            },
            latency(&r.latencies).as_ref(),
            &mut r,
        );
        assert_eq!(r.outcome, Outcome::Degraded);
        assert!(r.detail.contains("nothing measured"), "{}", r.detail);
    }
}
