//! What an outcome says about the path, apart from what the scenario expected.
//!
//! A report answers two questions per cell, and keeps them apart: *did it work?* (the
//! [`Class`] of the outcome, shown as its colour and glyph: a failure is red even when the
//! scenario expects it) and *is that what the scenario expects?* (a separate mark,
//! [`Group::expectation_tag`]: `expected` beside a failure or a cost the scenario expects,
//! `unexpected` beside any outcome it does not).

use crate::aggregate::{DELIVERED, FELL_BACK, Group};

/// How an outcome reads to someone asking "does it work through this path?", whatever the
/// scenario expected. Ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Every message arrived within its bounds: `delivered`, or `fell-back` (a client
    /// strategy that carried everything on its fallback transport). The same outcomes count
    /// as delivered in [`crate::aggregate::kinds`].
    Works,
    /// Messages got through at a cost: `degraded` (a latency bound missed), `reconnected` (the
    /// session was cut and came back), `partial` (it came back, but lost messages).
    Impaired,
    /// Anything else: refused, rejected, dropped, stalled, corrupted, a harness error.
    Fails,
}

impl Class {
    /// In legend order.
    pub const ALL: [Class; 3] = [Class::Works, Class::Impaired, Class::Fails];

    /// The class of one outcome (a kebab-case name; one this crate does not know fails).
    pub fn of(outcome: &str) -> Class {
        match outcome {
            DELIVERED | FELL_BACK => Class::Works,
            "degraded" | "reconnected" | "partial" => Class::Impaired,
            _ => Class::Fails,
        }
    }

    /// The class in words, for legends: `works`, `works at a cost`, `fails`.
    pub fn name(self) -> &'static str {
        match self {
            Class::Works => "works",
            Class::Impaired => "works at a cost",
            Class::Fails => "fails",
        }
    }

    /// The outcomes of the class, for legends (`delivered, fell-back`); `any other outcome`
    /// for [`Class::Fails`].
    pub fn outcomes(self) -> &'static str {
        match self {
            Class::Works => "delivered, fell-back",
            Class::Impaired => "degraded, reconnected, partial",
            Class::Fails => "any other outcome",
        }
    }

    /// A glyph for text: `✓`, `~`, `✗`.
    pub fn glyph(self) -> char {
        match self {
            Class::Works => '✓',
            Class::Impaired => '~',
            Class::Fails => '✗',
        }
    }

    /// A CSS class name for the HTML report: `works`, `impaired`, `fails`.
    pub fn css(self) -> &'static str {
        match self {
            Class::Works => "works",
            Class::Impaired => "impaired",
            Class::Fails => "fails",
        }
    }
}

impl Group {
    /// The worst class among the group's outcomes: a group with one failed seed fails.
    pub fn class(&self) -> Class {
        self.outcomes
            .iter()
            .map(|(o, _)| Class::of(o))
            .max()
            .unwrap_or(Class::Fails)
    }

    /// Whether the outcomes are what the scenario expects, as the mark beside them: `None` for
    /// a group that works as expected (nothing to remark), `expected` for a failure or a cost
    /// the scenario expects on every seed, and `unexpected (expects X)` when any seed got
    /// another outcome than the scenario expects.
    pub fn expectation_tag(&self) -> Option<String> {
        if !self.all_passed() {
            Some(format!(
                "unexpected (expects {})",
                self.expected.join(" or ")
            ))
        } else if self.class() == Class::Works {
            None
        } else {
            Some("expected".to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(outcomes: &[(&str, usize)], expected: &str, passed: usize) -> Group {
        Group {
            runs: outcomes.iter().map(|(_, n)| n).sum(),
            passed,
            expected: vec![expected.into()],
            outcomes: outcomes.iter().map(|(o, n)| (o.to_string(), *n)).collect(),
            ..Group::delivered("scenarios/a.toml", "ws", "", &[])
        }
    }

    #[test]
    fn outcomes_fall_in_three_classes_whatever_was_expected() {
        assert_eq!(Class::of("delivered"), Class::Works);
        assert_eq!(Class::of("fell-back"), Class::Works);
        assert_eq!(Class::of("degraded"), Class::Impaired);
        assert_eq!(Class::of("reconnected"), Class::Impaired);
        assert_eq!(Class::of("partial"), Class::Impaired);
        for failed in [
            "handshake-rejected",
            "dropped",
            "harness-error",
            "new-outcome",
        ] {
            assert_eq!(Class::of(failed), Class::Fails, "{failed}");
        }
    }

    #[test]
    fn an_expected_failure_fails_and_says_it_was_expected() {
        let g = group(&[("handshake-rejected", 2)], "handshake-rejected", 2);
        assert_eq!(g.class(), Class::Fails);
        assert_eq!(g.expectation_tag().as_deref(), Some("expected"));
    }

    #[test]
    fn a_success_as_expected_has_no_mark_and_any_surprise_has_one() {
        let works = group(&[("delivered", 1)], "delivered", 1);
        assert_eq!(
            (works.class(), works.expectation_tag()),
            (Class::Works, None)
        );
        let surprise = group(&[("delivered", 1)], "handshake-rejected", 0);
        assert_eq!(surprise.class(), Class::Works);
        assert_eq!(
            surprise.expectation_tag().as_deref(),
            Some("unexpected (expects handshake-rejected)")
        );
    }

    #[test]
    fn one_failed_seed_makes_the_group_fail() {
        let g = group(&[("delivered", 2), ("dropped", 1)], "delivered", 2);
        assert_eq!(g.class(), Class::Fails);
        let g = group(&[("delivered", 2), ("degraded", 1)], "delivered", 2);
        assert_eq!(g.class(), Class::Impaired);
    }
}
