//! A population's parameters: a fixed value, or a distribution a session draws from
//! (`{ choice = […], weights = […] }`, `{ uniform = [lo, hi] }`, `{ log-uniform = [lo, hi] }`).
//!
//! A draw is a whole number: a choice's index, or a range's value (every range is of whole
//! numbers, as the products' settings are: milliseconds, seconds, ports), so that sessions
//! that drew the same values share one run ([`super::run`]).

use gauntlet_proxies::rng::Rng;

/// The most values a `choice` lists.
pub const MAX_CHOICES: usize = 1024;

/// What is wrong with a distribution's table, for the caller to locate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DistError(pub String);

impl From<&str> for DistError {
    fn from(s: &str) -> Self {
        DistError(s.to_string())
    }
}

impl From<String> for DistError {
    fn from(s: String) -> Self {
        DistError(s)
    }
}

/// A parameter of a path: a value as written, or a distribution.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// A value, the same for every session.
    Fixed(toml::Value),
    /// A value drawn for each session.
    Drawn(Dist),
}

/// A distribution over values.
#[derive(Debug, Clone, PartialEq)]
pub enum Dist {
    /// One of `values`, the i-th with probability `weights[i]` over their sum (equal weights
    /// unless given).
    Choice {
        /// The values, as written.
        values: Vec<toml::Value>,
        /// The running sums of the weights, the last their total.
        cumulative: Vec<f64>,
    },
    /// A whole number from `lo` to `hi`, both included, each equally likely.
    Uniform {
        /// The least.
        lo: i64,
        /// The greatest.
        hi: i64,
    },
    /// A whole number from `lo` to `hi` whose logarithm is uniform (each decade equally
    /// likely), rounded to the nearest whole number; `lo` at least 1.
    LogUniform {
        /// The least.
        lo: i64,
        /// The greatest.
        hi: i64,
    },
}

/// A uniform number in `[0, 1)` from 53 random bits: the same on every platform.
pub fn unit(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// The index `u` (in `[0, 1)`) of the total falls to, in `cumulative` running sums.
pub fn pick(cumulative: &[f64], u: f64) -> usize {
    let total = cumulative.last().copied().unwrap_or(0.0);
    let at = u * total;
    cumulative
        .iter()
        .position(|c| at < *c)
        .unwrap_or(cumulative.len().saturating_sub(1))
}

impl Dist {
    /// Reads a distribution from a table, or `Ok(None)` if the table is none (a hop
    /// parameter that is itself a table). The error says what is wrong, for the caller to
    /// locate.
    pub fn from_table(t: &toml::Table) -> Result<Option<Dist>, DistError> {
        let kinds = ["choice", "uniform", "log-uniform"];
        let named: Vec<&str> = kinds
            .iter()
            .copied()
            .filter(|k| t.contains_key(*k))
            .collect();
        let kind = match named.as_slice() {
            [] if t.contains_key("weights") => {
                return Err("`weights` goes with `choice`".into());
            }
            [] => return Ok(None),
            [one] => *one,
            _ => {
                return Err(format!(
                    "a distribution is one of `choice`, `uniform` or `log-uniform`, not {}",
                    named.join(" and ")
                )
                .into());
            }
        };
        let allowed: &[&str] = if kind == "choice" {
            &["choice", "weights"]
        } else {
            &[kind]
        };
        if let Some(extra) = t.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(format!("`{extra}` has no place in a `{kind}` distribution").into());
        }
        if kind == "choice" {
            return choice(t).map(Some);
        }
        let range = t.get(kind).and_then(toml::Value::as_array);
        let (lo, hi) = match range.map(Vec::as_slice) {
            Some([toml::Value::Integer(lo), toml::Value::Integer(hi)]) if lo <= hi => (*lo, *hi),
            _ => {
                return Err(format!(
                    "`{kind}` takes two whole numbers, the least and the greatest: [lo, hi]"
                )
                .into());
            }
        };
        Ok(Some(if kind == "uniform" {
            Dist::Uniform { lo, hi }
        } else if lo < 1 {
            return Err("`log-uniform` needs a least value of 1 or more".into());
        } else {
            Dist::LogUniform { lo, hi }
        }))
    }

    /// A draw: a choice's index, or a range's value.
    pub fn draw(&self, rng: &mut Rng) -> i64 {
        match self {
            Dist::Choice { cumulative, .. } => pick(cumulative, unit(rng)) as i64,
            Dist::Uniform { lo, hi } => {
                let span = hi.abs_diff(*lo).saturating_add(1);
                lo.wrapping_add(rng.below(span.max(1)) as i64)
            }
            Dist::LogUniform { lo, hi } => {
                let (a, b) = ((*lo as f64).ln(), (*hi as f64).ln());
                let v = (a + unit(rng) * (b - a)).exp().round() as i64;
                v.clamp(*lo, *hi)
            }
        }
    }

    /// The value a draw stands for.
    pub fn value(&self, drawn: i64) -> toml::Value {
        match self {
            Dist::Choice { values, .. } => values[drawn as usize].clone(),
            Dist::Uniform { .. } | Dist::LogUniform { .. } => toml::Value::Integer(drawn),
        }
    }

    /// Draws that stand for its extremes: a choice's every value, a range's ends. A path is
    /// checked with these when the file is read, so that a value it may draw and no scenario
    /// accepts is an error then, not in the middle of a run.
    pub fn extremes(&self) -> Vec<i64> {
        match self {
            Dist::Choice { values, .. } => (0..values.len() as i64).collect(),
            Dist::Uniform { lo, hi } | Dist::LogUniform { lo, hi } => vec![*lo, *hi],
        }
    }
}

fn choice(t: &toml::Table) -> Result<Dist, DistError> {
    let values = match t.get("choice") {
        Some(toml::Value::Array(v)) if !v.is_empty() && v.len() <= MAX_CHOICES => v.clone(),
        _ => {
            return Err(format!(
                "`choice` takes a list of 1 to {MAX_CHOICES} values to choose among"
            )
            .into());
        }
    };
    let weights: Vec<f64> = match t.get("weights") {
        None => vec![1.0; values.len()],
        Some(toml::Value::Array(w)) if w.len() == values.len() => {
            let mut out = Vec::with_capacity(w.len());
            for v in w {
                let x = match v {
                    toml::Value::Integer(i) => *i as f64,
                    toml::Value::Float(f) => *f,
                    _ => return Err("`weights` are numbers".into()),
                };
                if !(x.is_finite() && x >= 0.0) {
                    return Err("a weight is a number of 0 or more".into());
                }
                out.push(x);
            }
            out
        }
        Some(_) => {
            return Err(format!(
                "`weights` lists one number per value of `choice` ({})",
                values.len()
            )
            .into());
        }
    };
    let mut sum = 0.0;
    let cumulative: Vec<f64> = weights
        .iter()
        .map(|w| {
            sum += w;
            sum
        })
        .collect();
    if sum <= 0.0 {
        return Err("the weights of a `choice` add up to more than 0".into());
    }
    Ok(Dist::Choice { values, cumulative })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(text: &str) -> Result<Option<Dist>, DistError> {
        let t: toml::Table = toml::from_str(&format!("d = {text}")).unwrap();
        Dist::from_table(t["d"].as_table().unwrap())
    }

    #[test]
    fn each_kind_reads_and_draws_within_its_values() {
        let mut rng = Rng::new(1);
        let c = dist("{ choice = [60000, 100000], weights = [3, 1] }")
            .unwrap()
            .unwrap();
        let picks: Vec<i64> = (0..4000).map(|_| c.draw(&mut rng)).collect();
        let first = picks.iter().filter(|p| **p == 0).count();
        assert!(
            (2850..3150).contains(&first),
            "{first} of 4000, weight 3 of 4"
        );
        assert_eq!(c.value(1), toml::Value::Integer(100000));
        let u = dist("{ uniform = [5, 7] }").unwrap().unwrap();
        let mut seen = [0; 3];
        for _ in 0..300 {
            seen[(u.draw(&mut rng) - 5) as usize] += 1;
        }
        assert!(seen.iter().all(|n| *n > 70), "{seen:?}");
        let l = dist("{ log-uniform = [1, 10000] }").unwrap().unwrap();
        let draws: Vec<i64> = (0..4000).map(|_| l.draw(&mut rng)).collect();
        assert!(draws.iter().all(|d| (1..=10000).contains(d)));
        // Each decade is as likely as the next: about a quarter below 10.
        let low = draws.iter().filter(|d| **d < 10).count();
        assert!((850..1150).contains(&low), "{low} of 4000 below 10");
    }

    #[test]
    fn a_plain_table_is_no_distribution_and_mistakes_say_what_is_wrong() {
        assert_eq!(dist("{ field = \"Upgrade\" }"), Ok(None));
        for (text, says) in [
            ("{ choice = [] }", "list of 1 to"),
            ("{ choice = [1, 2], weights = [1] }", "one number per value"),
            ("{ choice = [1], weights = [-1] }", "0 or more"),
            ("{ choice = [1, 2], weights = [0, 0] }", "more than 0"),
            ("{ uniform = [3, 1] }", "[lo, hi]"),
            ("{ uniform = [1.5, 2] }", "whole numbers"),
            ("{ log-uniform = [0, 10] }", "1 or more"),
            (
                "{ uniform = [1, 2], choice = [1] }",
                "not choice and uniform",
            ),
            ("{ uniform = [1, 2], step = 1 }", "`step` has no place"),
            ("{ weights = [1] }", "goes with `choice`"),
        ] {
            let err = dist(text).unwrap_err().0;
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_values() {
        let l = dist("{ log-uniform = [10, 300000] }").unwrap().unwrap();
        let draw = |seed| {
            let mut rng = Rng::new(seed);
            (0..50).map(|_| l.draw(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draw(9), draw(9));
        assert_ne!(draw(9), draw(10));
    }
}
