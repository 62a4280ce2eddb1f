//! The run's transcript: every host's notable events in simulated time, in the order they
//! happened. Deterministic for a seed: it holds no random bytes (no masks, keys or TLS records).
//!
//! A printing transcript (`gauntlet proxy`, `gauntlet serve`) never makes its host wait for
//! stderr: lines go to a bounded queue that a thread of their own writes out. When stderr is
//! not drained (a pipe nobody reads) and the queue is full, lines are dropped and counted, and
//! the count is printed where they would have been (`transcript: N lines dropped`) once the
//! writer has caught up.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::Write;
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
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
pub struct Transcript(Keep, Label);

/// What a transcript appends to each host's name (see [`Transcript::labelled`]).
type Label = Option<Rc<str>>;

#[derive(Debug, Clone)]
enum Keep {
    Lines(Rc<RefCell<Lines>>),
    Nothing,
    Print(Rc<Printer>),
}

/// The lines a keeping transcript holds: every line, or the last `cap` of them.
#[derive(Debug)]
struct Lines {
    kept: VecDeque<Entry>,
    cap: usize,
    /// Lines dropped to stay within `cap`, the oldest first.
    dropped: u64,
}

impl Lines {
    fn new(cap: usize) -> Self {
        Self {
            kept: VecDeque::new(),
            cap,
            dropped: 0,
        }
    }

    fn push(&mut self, entry: Entry) {
        if self.cap == 0 {
            self.dropped += 1;
            return;
        }
        if self.kept.len() == self.cap {
            self.kept.pop_front();
            self.dropped += 1;
        }
        self.kept.push_back(entry);
    }
}

impl Default for Transcript {
    /// A transcript that keeps every line (a run's: its time limit bounds it).
    fn default() -> Self {
        Self(
            Keep::Lines(Rc::new(RefCell::new(Lines::new(usize::MAX)))),
            None,
        )
    }
}

/// How many bytes of lines a printing transcript holds for its writer before it drops lines:
/// four times what a Linux pipe buffers, so that a reader that is only slow loses nothing.
pub const PRINT_QUEUE_BYTES: usize = 256 * 1024;

/// How long [`Transcript::finish`] waits for a writer that makes no progress (a stderr nobody
/// reads) before giving up on the lines still queued.
const FLUSH_STALL: Duration = Duration::from_secs(1);

/// The writer writes at most this much at a time, so that [`Transcript::finish`] sees progress.
const WRITE_CHUNK: usize = 4096;

impl Transcript {
    /// A transcript that keeps the last `cap` lines (for a proxy or server that runs as long as
    /// its user wants): [`Transcript::entries`] starts with a line saying how many earlier
    /// lines were dropped, if any were.
    pub fn keeping_last(cap: usize) -> Self {
        Self(Keep::Lines(Rc::new(RefCell::new(Lines::new(cap)))), None)
    }

    /// A transcript that keeps nothing (for runs whose log would cost more than the run).
    pub fn discarding() -> Self {
        Self(Keep::Nothing, None)
    }

    /// A transcript that keeps nothing and prints each line to stderr, in the form [`render`]
    /// gives, from a thread of its own (for `gauntlet proxy` and `gauntlet serve`, which run
    /// until interrupted): logging never waits for stderr. At most [`PRINT_QUEUE_BYTES`] wait
    /// to be written; beyond that, lines are dropped and their count printed in their place.
    /// Call [`Transcript::finish`] before the process exits.
    pub fn printing() -> Self {
        Self::printing_to(std::io::stderr(), PRINT_QUEUE_BYTES)
    }

    /// [`Transcript::printing`] to `sink`, holding at most `capacity` bytes for it.
    pub fn printing_to(sink: impl Write + Send + 'static, capacity: usize) -> Self {
        Self(Keep::Print(Rc::new(Printer::start(sink, capacity))), None)
    }

    /// A printing transcript's queue, to hand to another thread ([`Transcript::printing_into`]):
    /// lines logged there join this transcript's, in the order they are logged. `None` for a
    /// transcript that does not print.
    pub fn queue(&self) -> Option<PrintQueue> {
        match &self.0 {
            Keep::Print(printer) => Some(PrintQueue(printer.shared.clone())),
            Keep::Lines(_) | Keep::Nothing => None,
        }
    }

    /// A transcript that prints through `queue`, on another thread than the transcript it
    /// came from. Its [`Transcript::finish`] does nothing: the original's waits for every line.
    pub fn printing_into(queue: PrintQueue) -> Self {
        Self(
            Keep::Print(Rc::new(Printer {
                shared: queue.0,
                finished: Cell::new(false),
                owner: false,
            })),
            None,
        )
    }

    /// The same transcript, with `label` appended to the host's name on every line logged
    /// through it (`hop1/w2`: the second worker's first hop).
    pub fn labelled(&self, label: &str) -> Self {
        Self(self.0.clone(), Some(label.into()))
    }

    /// Appends a line.
    pub fn log(&self, at: Duration, who: &str, what: impl Into<String>) {
        let labelled;
        let who = match &self.1 {
            Some(label) => {
                labelled = format!("{who}{label}");
                labelled.as_str()
            }
            None => who,
        };
        match &self.0 {
            Keep::Lines(lines) => lines.borrow_mut().push(Entry {
                at,
                who: who.to_string(),
                what: what.into(),
            }),
            Keep::Nothing => {}
            Keep::Print(printer) => printer.push(&line(at, who, 0, &what.into())),
        }
    }

    /// A printing transcript prints `text` as a line of its own, as it is (for what is not an
    /// event of the run, such as where a server listens); other transcripts ignore it.
    pub fn say(&self, text: &str) {
        if let Keep::Print(printer) = &self.0 {
            printer.push(&format!("{text}\n"));
        }
    }

    /// A printing transcript stops taking lines and waits until those queued are written, for
    /// as long as its writer makes progress (it gives up on a stderr nobody reads after a
    /// second without progress). Other transcripts have nothing to do.
    pub fn finish(&self) {
        if let Keep::Print(printer) = &self.0 {
            printer.finish();
        }
    }

    /// A copy of the lines kept so far; after a line saying how many earlier ones were dropped,
    /// if [`Transcript::keeping_last`] dropped any.
    pub fn entries(&self) -> Vec<Entry> {
        match &self.0 {
            Keep::Lines(lines) => {
                let lines = lines.borrow();
                let mut out = Vec::with_capacity(lines.kept.len() + 1);
                if lines.dropped > 0 {
                    out.push(Entry {
                        at: lines.kept.front().map_or(Duration::ZERO, |e| e.at),
                        who: "transcript".to_string(),
                        what: format!(
                            "{} earlier lines dropped: the last {} are kept",
                            lines.dropped, lines.cap
                        ),
                    });
                }
                out.extend(lines.kept.iter().cloned());
                out
            }
            Keep::Nothing | Keep::Print(_) => Vec::new(),
        }
    }
}

/// The queue between a printing transcript and its writer thread.
struct Printer {
    shared: Arc<Shared>,
    finished: Cell<bool>,
    /// This printer started the writer, and its [`Printer::finish`] ends it.
    owner: bool,
}

/// A printing transcript's queue, sent to another thread (see [`Transcript::queue`]).
#[derive(Clone)]
pub struct PrintQueue(Arc<Shared>);

impl std::fmt::Debug for PrintQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrintQueue")
    }
}

impl std::fmt::Debug for Printer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Printer")
            .field("queued", &state.queued.len())
            .field("dropped", &state.dropped)
            .finish()
    }
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the writer: lines queued, or no more to come.
    wake: Condvar,
    /// Wakes [`Printer::finish`]: a chunk written, or the writer done.
    progress: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct State {
    /// Lines waiting for the writer.
    queued: String,
    capacity: usize,
    /// Lines dropped since the last report.
    dropped: u64,
    /// No more lines will come.
    closed: bool,
    /// The writer has written everything and stopped.
    done: bool,
    /// Chunks written so far.
    written: u64,
}

/// The line that stands for `count` dropped lines.
fn dropped_line(count: u64) -> String {
    let lines = if count == 1 { "line" } else { "lines" };
    format!("transcript: {count} {lines} dropped (stderr was not read fast enough)\n")
}

impl Printer {
    fn start(mut sink: impl Write + Send + 'static, capacity: usize) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queued: String::new(),
                capacity,
                dropped: 0,
                closed: false,
                done: false,
                written: 0,
            }),
            wake: Condvar::new(),
            progress: Condvar::new(),
        });
        let theirs = shared.clone();
        let writer = std::thread::Builder::new()
            .name("transcript".into())
            .spawn(move || write_out(&theirs, &mut sink));
        if writer.is_err() {
            // Without a writer nothing is printed; the run goes on.
            let mut state = shared.lock();
            state.closed = true;
            state.done = true;
        }
        Self {
            shared,
            finished: Cell::new(false),
            owner: true,
        }
    }

    /// Queues `line`, or counts it as dropped when the queue is full.
    fn push(&self, line: &str) {
        let mut state = self.shared.lock();
        if state.closed {
            return;
        }
        let report = (state.dropped > 0).then(|| dropped_line(state.dropped));
        let need = line.len() + report.as_ref().map_or(0, String::len);
        if !state.queued.is_empty() && state.queued.len() + need > state.capacity {
            state.dropped += 1;
            return;
        }
        if let Some(report) = report {
            state.queued.push_str(&report);
            state.dropped = 0;
        }
        state.queued.push_str(line);
        drop(state);
        self.shared.wake.notify_one();
    }

    fn finish(&self) {
        if !self.owner || self.finished.replace(true) {
            return;
        }
        let mut state = self.shared.lock();
        state.closed = true;
        self.shared.wake.notify_one();
        while !state.done {
            let before = state.written;
            let (next, waited) = self
                .shared
                .progress
                .wait_timeout_while(state, FLUSH_STALL, |s| !s.done && s.written == before)
                .unwrap_or_else(PoisonError::into_inner);
            state = next;
            if waited.timed_out() {
                return;
            }
        }
    }
}

impl Drop for Printer {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The writer thread: writes what is queued, in chunks, and, each time it has caught up, the
/// count of lines dropped since the last report, if any; stops once the queue is closed and
/// empty. A sink that fails (a closed stderr) loses the lines; nothing waits on it.
fn write_out(shared: &Shared, sink: &mut dyn Write) {
    loop {
        let batch = {
            let mut state = shared.lock();
            loop {
                if !state.queued.is_empty() {
                    break std::mem::take(&mut state.queued);
                }
                if state.dropped > 0 {
                    let report = dropped_line(state.dropped);
                    state.dropped = 0;
                    break report;
                }
                if state.closed {
                    state.done = true;
                    drop(state);
                    shared.progress.notify_all();
                    return;
                }
                state = shared
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        for chunk in batch.as_bytes().chunks(WRITE_CHUNK) {
            let _ = sink.write_all(chunk);
            shared.lock().written += 1;
            shared.progress.notify_all();
        }
        let _ = sink.flush();
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

#[cfg(test)]
mod tests;
