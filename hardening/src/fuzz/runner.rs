//! The campaign loop every target shares: case `i` of a campaign with seed `s` is drawn from
//! its own generator, seeded from `(s, i)`, so any one case can be run again alone
//! (`--case I`); a failing case is shrunk with proptest's value trees (each `simplify` kept
//! while the case still fails, each `complicate` tried when it stops failing) and reported
//! with the smallest input found and the command that reproduces it.
//!
//! A panic is a failure like any other: a process-wide hook records its message and location
//! (and prints nothing, so that shrinking stays quiet), and the case's check runs under
//! `catch_unwind`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gauntlet_proxies::rng::Rng;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use super::Clock;

/// What one case's check says: `Ok` with a label counted in the summary (what kind of case
/// it was: "accepted", "refused", …), or what went wrong.
pub type Checked = Result<&'static str, String>;

/// How a campaign is run: how many cases, from which seed, or only one case.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Cases to run.
    pub cases: u64,
    /// The campaign's seed.
    pub seed: u64,
    /// Run only this case (and shrink it if it fails).
    pub only: Option<u64>,
}

/// A failed case, shrunk.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Its index in the campaign.
    pub case: u64,
    /// What the check said about the smallest failing input found.
    pub message: String,
    /// That input, as the target renders it.
    pub input: String,
    /// Shrinking steps tried.
    pub shrink_steps: u64,
}

/// What a campaign did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Cases run.
    pub cases: u64,
    /// The labels the checks returned, counted.
    pub tally: BTreeMap<&'static str, u64>,
    /// The first failure, if any (the campaign stops there).
    pub failure: Option<Failure>,
}

/// The most shrinking steps, and the most wall time, spent on one failure.
const SHRINK_STEPS: u64 = 20_000;
const SHRINK_TIME: Duration = Duration::from_secs(120);

/// The case a watchdog sees as running, for reporting a case that never ends.
pub static CURRENT_CASE: AtomicU64 = AtomicU64::new(0);

/// Checks started so far (shrinking included): the watchdog's sign of progress.
pub static GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The last panic on this thread: message and location.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The process-wide panic hook: remembers the panic on its thread instead of printing it.
pub fn install_panic_hook() {
    static ONCE: Mutex<bool> = Mutex::new(false);
    let mut done = ONCE.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    *done = true;
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        LAST_PANIC
            .with(|p| *p.borrow_mut() = Some(format!("panicked{at} (thread {name}): {message}")));
    }));
}

/// Takes the last panic recorded on this thread.
pub fn take_panic() -> Option<String> {
    LAST_PANIC.with(|p| p.borrow_mut().take())
}

/// Runs `check` on `value`, turning a panic into a failure that says where it happened.
fn guarded<V>(check: &mut dyn FnMut(&V) -> Checked, value: &V) -> Checked {
    GENERATION.fetch_add(1, Ordering::Relaxed);
    take_panic();
    match std::panic::catch_unwind(AssertUnwindSafe(|| check(value))) {
        Ok(Ok(label)) => {
            // A panic caught inside the check (by an engine, say) and turned into an error is
            // the check's business; one it did not report is still a failure.
            Ok(label)
        }
        Ok(Err(message)) => Err(match take_panic() {
            Some(p) if !message.contains("panicked") => format!("{message}\n{p}"),
            _ => message,
        }),
        Err(_) => Err(take_panic().unwrap_or_else(|| "panicked (no message)".into())),
    }
}

/// The generator of case `case` of a campaign seeded with `seed`.
pub fn case_runner(seed: u64, case: u64) -> TestRunner {
    let mut rng = Rng::derive(seed, case);
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes);
    let config = Config {
        max_shrink_iters: u32::MAX,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Runs a campaign: `plan.cases` cases of `strategy` through `check` (or the one case
/// `plan.only`), stopping at the first failure, which is shrunk and rendered with `show`.
/// `progress` is called every few seconds with the cases done so far.
pub fn campaign<S: Strategy>(
    strategy: &S,
    plan: &Plan,
    clock: &Clock,
    mut check: impl FnMut(&S::Value) -> Checked,
    show: impl Fn(&S::Value) -> String,
    mut progress: impl FnMut(u64),
) -> Outcome {
    install_panic_hook();
    let mut out = Outcome::default();
    let cases: Box<dyn Iterator<Item = u64>> = match plan.only {
        Some(i) => Box::new(std::iter::once(i)),
        None => Box::new(0..plan.cases),
    };
    let mut last_report = clock.elapsed();
    for case in cases {
        CURRENT_CASE.store(case, Ordering::Relaxed);
        let mut runner = case_runner(plan.seed, case);
        let mut tree = match strategy.new_tree(&mut runner) {
            Ok(t) => t,
            Err(reason) => {
                out.failure = Some(Failure {
                    case,
                    message: format!("the generator gave up: {reason}"),
                    input: String::new(),
                    shrink_steps: 0,
                });
                out.cases += 1;
                return out;
            }
        };
        let value = tree.current();
        out.cases += 1;
        match guarded(&mut check, &value) {
            Ok(label) => *out.tally.entry(label).or_default() += 1,
            Err(message) => {
                out.failure = Some(shrink(&mut tree, case, message, clock, &mut check, &show));
                return out;
            }
        }
        if clock.elapsed() - last_report >= Duration::from_secs(5) {
            last_report = clock.elapsed();
            progress(out.cases);
        }
    }
    out
}

fn shrink<T: ValueTree>(
    tree: &mut T,
    case: u64,
    message: String,
    clock: &Clock,
    check: &mut dyn FnMut(&T::Value) -> Checked,
    show: &dyn Fn(&T::Value) -> String,
) -> Failure {
    let mut best = (tree.current(), message);
    let mut steps = 0;
    let give_up = clock.elapsed() + SHRINK_TIME;
    if tree.simplify() {
        while steps < SHRINK_STEPS && clock.elapsed() < give_up {
            steps += 1;
            let value = tree.current();
            match guarded(check, &value) {
                Err(message) => {
                    best = (value, message);
                    if !tree.simplify() {
                        break;
                    }
                }
                Ok(_) => {
                    if !tree.complicate() {
                        break;
                    }
                }
            }
        }
    }
    Failure {
        case,
        message: best.1,
        input: show(&best.0),
        shrink_steps: steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn plan(cases: u64) -> Plan {
        Plan {
            cases,
            seed: 7,
            only: None,
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_cases_and_one_case_alone_is_the_same() {
        let strategy = proptest::collection::vec(any::<u8>(), 0..64);
        let draw = |seed, case| {
            let mut runner = case_runner(seed, case);
            strategy.new_tree(&mut runner).unwrap().current()
        };
        assert_eq!(draw(1, 5), draw(1, 5));
        assert_ne!(draw(1, 5), draw(2, 5));
        assert_ne!(draw(1, 5), draw(1, 6));
    }

    /// Fails an input with two bytes of 200 or more.
    fn two_big_bytes(v: &[u8]) -> Result<&'static str, String> {
        if v.iter().filter(|b| **b >= 200).count() >= 2 {
            Err("two big bytes".into())
        } else {
            Ok("ok")
        }
    }

    #[test]
    fn a_failure_is_shrunk_to_a_small_input() {
        let clock = Clock::start();
        let strategy = proptest::collection::vec(any::<u8>(), 0..256);
        let out = campaign(
            &strategy,
            &plan(1000),
            &clock,
            |v: &Vec<u8>| two_big_bytes(v),
            |v| format!("{v:?}"),
            |_| {},
        );
        let failure = out.failure.expect("a failing case");
        assert_eq!(failure.input, "[200, 200]");
        // Running that case alone fails the same way.
        let again = campaign(
            &strategy,
            &Plan {
                only: Some(failure.case),
                ..plan(1)
            },
            &clock,
            |v: &Vec<u8>| two_big_bytes(v),
            |v| format!("{v:?}"),
            |_| {},
        );
        assert_eq!(again.failure.map(|f| f.input), Some(failure.input));
    }

    #[test]
    fn a_panic_is_a_failure_that_says_where() {
        let clock = Clock::start();
        let out = campaign(
            &(0u32..1000),
            &plan(1000),
            &clock,
            |v: &u32| {
                assert!(*v < 500, "too big: {v}");
                Ok("ok")
            },
            |v| v.to_string(),
            |_| {},
        );
        let failure = out.failure.expect("a failing case");
        assert_eq!(failure.input, "500");
        assert!(
            failure.message.contains("too big: 500"),
            "{}",
            failure.message
        );
        assert!(failure.message.contains("runner.rs"), "{}", failure.message);
    }
}
