//! The run's transcript: every host's notable events in simulated time, in the order they
//! happened. Deterministic for a seed: it holds no random bytes (no masks, keys or TLS records).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::rc::Rc;
use std::time::Duration;

/// One line of a transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Simulated time.
    pub at: Duration,
    /// The host that logged it.
    pub who: String,
    /// What happened.
    pub what: String,
}

/// A shared, append-only transcript, or one that keeps nothing.
#[derive(Debug, Clone)]
pub struct Transcript(Option<Rc<RefCell<Vec<Entry>>>>);

impl Default for Transcript {
    fn default() -> Self {
        Self(Some(Rc::default()))
    }
}

impl Transcript {
    /// A transcript that keeps nothing (for runs whose log would cost more than the run).
    pub fn discarding() -> Self {
        Self(None)
    }

    /// Appends a line.
    pub fn log(&self, at: Duration, who: &str, what: impl Into<String>) {
        if let Some(lines) = &self.0 {
            lines.borrow_mut().push(Entry {
                at,
                who: who.to_string(),
                what: what.into(),
            });
        }
    }

    /// A copy of the lines so far.
    pub fn entries(&self) -> Vec<Entry> {
        self.0
            .as_ref()
            .map(|l| l.borrow().clone())
            .unwrap_or_default()
    }
}

/// Renders entries as aligned text, one line each: time in ms, host, event.
pub fn render(entries: &[Entry]) -> String {
    let width = entries.iter().map(|e| e.who.len()).max().unwrap_or(0);
    let mut out = String::new();
    for e in entries {
        let ms = e.at.as_secs_f64() * 1000.0;
        let _ = writeln!(out, "{ms:>11.3} ms  {:<width$}  {}", e.who, e.what);
    }
    out
}

/// FNV-1a over the rendered transcript, as 16 hex digits: equal transcripts, equal hashes.
pub fn hash(entries: &[Entry]) -> String {
    let h = gauntlet_proxies::rng::fnv1a(render(entries).as_bytes());
    format!("{h:016x}")
}
