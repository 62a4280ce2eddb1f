//! The run's transcript: every host's notable events in simulated time, in the order they
//! happened. Deterministic for a seed: it holds no random bytes (no masks, keys or TLS records).

use std::cell::RefCell;
use std::io::Write as _;
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

/// A shared, append-only transcript, one that keeps nothing, or one that prints each line
/// to stderr as it is logged.
#[derive(Debug, Clone)]
pub struct Transcript(Keep);

#[derive(Debug, Clone)]
enum Keep {
    Lines(Rc<RefCell<Vec<Entry>>>),
    Nothing,
    Print,
}

impl Default for Transcript {
    fn default() -> Self {
        Self(Keep::Lines(Rc::default()))
    }
}

impl Transcript {
    /// A transcript that keeps nothing (for runs whose log would cost more than the run).
    pub fn discarding() -> Self {
        Self(Keep::Nothing)
    }

    /// A transcript that keeps nothing and prints each line to stderr as it is logged, in
    /// the form [`render`] gives (for `gauntlet proxy`, which runs until interrupted).
    pub fn printing() -> Self {
        Self(Keep::Print)
    }

    /// Appends a line.
    pub fn log(&self, at: Duration, who: &str, what: impl Into<String>) {
        match &self.0 {
            Keep::Lines(lines) => lines.borrow_mut().push(Entry {
                at,
                who: who.to_string(),
                what: what.into(),
            }),
            Keep::Nothing => {}
            Keep::Print => {
                // A closed stderr loses the line; it does not stop the run.
                let _ = std::io::stderr().write_all(line(at, who, 0, &what.into()).as_bytes());
            }
        }
    }

    /// A copy of the lines so far.
    pub fn entries(&self) -> Vec<Entry> {
        match &self.0 {
            Keep::Lines(lines) => lines.borrow().clone(),
            Keep::Nothing | Keep::Print => Vec::new(),
        }
    }
}

/// One rendered line: time in ms, host padded to `width`, event.
fn line(at: Duration, who: &str, width: usize, what: &str) -> String {
    let ms = at.as_secs_f64() * 1000.0;
    format!("{ms:>11.3} ms  {who:<width$}  {what}\n")
}

/// Renders entries as aligned text, one line each: time in ms, host, event.
pub fn render(entries: &[Entry]) -> String {
    let width = entries.iter().map(|e| e.who.len()).max().unwrap_or(0);
    let mut out = String::new();
    for e in entries {
        out.push_str(&line(e.at, &e.who, width, &e.what));
    }
    out
}

/// FNV-1a over the rendered transcript, as 16 hex digits: equal transcripts, equal hashes.
pub fn hash(entries: &[Entry]) -> String {
    let h = gauntlet_proxies::rng::fnv1a(render(entries).as_bytes());
    format!("{h:016x}")
}
