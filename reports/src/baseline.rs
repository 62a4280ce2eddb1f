//! The direct path as the baseline of latency: what a message takes with no intermediary, so
//! that a scenario's percentiles say how much its path adds.
//!
//! The baseline of a scheme is every group whose intermediary kind is [`DIRECT`] (the client
//! reaches the server with no hop: the catalogue's `scenarios/baseline/direct.toml`) with
//! that scheme, their samples merged as [`crate::aggregate::groups`] merges seeds. A scheme
//! without a direct run (a client strategy's, say) is compared with the first scheme that has
//! one, in report order (`ws` first): the direct path of a plain WebSocket.

use crate::aggregate::{Group, merged_latency, sorted_finite};
use crate::{Latency, text};

/// The intermediary kind of a run with no hop.
pub const DIRECT: &str = "direct";

/// The direct path's latency with one scheme.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// The scheme.
    pub scheme: String,
    /// The direct scenarios merged into it, in report order.
    pub scenarios: Vec<String>,
    /// Their percentiles.
    pub latency: Latency,
    /// Their samples, merged and sorted ascending (empty when the runs kept only summaries).
    pub samples_ms: Vec<f64>,
}

impl Baseline {
    /// The scenarios in a few words, for captions: `baseline/direct`, or `baseline/direct and
    /// 1 more`.
    pub fn source(&self) -> String {
        let first = self
            .scenarios
            .first()
            .map_or("", |s| text::short_scenario(s));
        match self.scenarios.len() {
            0 | 1 => first.to_string(),
            n => format!("{first} and {} more", n - 1),
        }
    }
}

impl Baseline {
    /// How much later than the direct path a group's p50 and p99 are, in milliseconds:
    /// `+9.5 / +12`, `−0.5 / ±0`.
    pub(crate) fn versus(&self, l: &Latency) -> String {
        format!(
            "{} / {}",
            text::delta(l.p50, self.latency.p50),
            text::delta(l.p99, self.latency.p99)
        )
    }
}

/// The direct path's latency per scheme, from `groups` (in report order); schemes whose direct
/// runs carried no message have none.
pub fn baselines(groups: &[Group]) -> Vec<Baseline> {
    let mut out: Vec<(Baseline, Vec<Latency>)> = Vec::new();
    for g in groups.iter().filter(|g| g.kind == DIRECT) {
        let Some(latency) = g.latency else { continue };
        let i = match out.iter().position(|(b, _)| b.scheme == g.scheme) {
            Some(i) => i,
            None => {
                out.push((
                    Baseline {
                        scheme: g.scheme.clone(),
                        scenarios: Vec::new(),
                        latency,
                        samples_ms: Vec::new(),
                    },
                    Vec::new(),
                ));
                out.len() - 1
            }
        };
        let (b, summaries) = &mut out[i];
        b.scenarios.push(g.scenario.clone());
        b.samples_ms.extend_from_slice(&g.samples_ms);
        summaries.push(latency);
    }
    out.sort_by(|(a, _), (b, _)| crate::aggregate::scheme_order(&a.scheme, &b.scheme));
    out.into_iter()
        .map(|(mut b, summaries)| {
            b.samples_ms = sorted_finite(b.samples_ms);
            if let Some(latency) = merged_latency(&b.samples_ms, summaries) {
                b.latency = latency;
            }
            b
        })
        .collect()
}

/// The baseline to compare a group with `scheme` against: the one with the same scheme, else
/// the first.
pub fn for_scheme<'a>(baselines: &'a [Baseline], scheme: &str) -> Option<&'a Baseline> {
    baselines
        .iter()
        .find(|b| b.scheme == scheme)
        .or(baselines.first())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(scenario: &str, scheme: &str, kind: &str, samples: &[f64]) -> Group {
        Group::delivered(scenario, scheme, kind, samples)
    }

    #[test]
    fn the_direct_groups_of_a_scheme_merge_into_its_baseline() {
        let groups = [
            group(
                "scenarios/baseline/direct.toml",
                "ws",
                DIRECT,
                &[10.0, 12.0],
            ),
            group("scenarios/baseline/direct.toml", "wss", DIRECT, &[11.0]),
            group("scenarios/baseline/pass.toml", "ws", "pass", &[50.0]),
            group(
                "scenarios/other/direct-slow.toml",
                "ws",
                DIRECT,
                &[30.0, 40.0],
            ),
            group("scenarios/other/quiet.toml", "ws", DIRECT, &[]),
        ];
        let b = baselines(&groups);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].scheme, "ws");
        assert_eq!(b[0].samples_ms, [10.0, 12.0, 30.0, 40.0]);
        assert_eq!((b[0].latency.p50, b[0].latency.p99), (12.0, 40.0));
        assert_eq!(b[0].source(), "baseline/direct and 1 more");
        assert_eq!(b[1].source(), "baseline/direct");
        assert_eq!(for_scheme(&b, "wss").unwrap().scheme, "wss");
        assert_eq!(for_scheme(&b, "streaming").unwrap().scheme, "ws");
        assert_eq!(for_scheme(&[], "ws"), None);
    }
}
