//! The transcript's tests: keeping, printing through a gated sink, dropping and flushing.

use super::*;
use std::sync::mpsc;

/// A sink that records what it is given; a gated one announces each write on `entered`,
/// waits for a permit (none needed once the permits' sender is dropped), and announces
/// the write done on `wrote`.
#[derive(Clone)]
struct Sink {
    out: Arc<Mutex<Vec<u8>>>,
    gate: Option<Gate>,
}

#[derive(Clone)]
struct Gate {
    permits: Arc<Mutex<mpsc::Receiver<()>>>,
    entered: mpsc::Sender<()>,
    wrote: mpsc::Sender<()>,
}

/// The test's side of a gated sink.
struct Control {
    permits: mpsc::Sender<()>,
    entered: mpsc::Receiver<()>,
    wrote: mpsc::Receiver<()>,
}

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn a_transcript_keeping_the_last_lines_drops_the_oldest_and_says_how_many() {
    let t = Transcript::keeping_last(3);
    for i in 0..5u64 {
        t.log(Duration::from_millis(i), "hop1", format!("line {i}"));
    }
    let kept: Vec<String> = t.entries().into_iter().map(|e| e.what).collect();
    assert_eq!(
        kept,
        [
            "2 earlier lines dropped: the last 3 are kept",
            "line 2",
            "line 3",
            "line 4"
        ]
    );
    let all = Transcript::default();
    all.log(Duration::ZERO, "a", "only");
    assert_eq!(all.entries().len(), 1);
}

impl Control {
    /// Waits until the writer is inside a write (it has taken what was queued).
    fn entered(&self) {
        self.entered.recv_timeout(WAIT).expect("the writer writes");
    }

    /// Lets one write through and waits until it is done.
    fn let_one_through(&self) {
        self.permits.send(()).expect("the writer waits");
        self.wrote.recv_timeout(WAIT).expect("the write is done");
    }
}

impl Sink {
    fn open() -> Self {
        Self {
            out: Arc::default(),
            gate: None,
        }
    }

    fn gated() -> (Self, Control) {
        let (permits, gate) = mpsc::channel();
        let (entered, entries) = mpsc::channel();
        let (wrote, writes) = mpsc::channel();
        let sink = Self {
            out: Arc::default(),
            gate: Some(Gate {
                permits: Arc::new(Mutex::new(gate)),
                entered,
                wrote,
            }),
        };
        let control = Control {
            permits,
            entered: entries,
            wrote: writes,
        };
        (sink, control)
    }

    fn text(&self) -> String {
        String::from_utf8(self.out.lock().unwrap().clone()).unwrap()
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(gate) = &self.gate {
            let _ = gate.entered.send(());
            // Err: the permits' sender is gone, the gate stays open.
            let _ = gate.permits.lock().unwrap().recv();
        }
        self.out.lock().unwrap().extend_from_slice(buf);
        if let Some(gate) = &self.gate {
            let _ = gate.wrote.send(());
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn finish_waits_until_every_queued_line_is_written() {
    let sink = Sink::open();
    let t = Transcript::printing_to(sink.clone(), PRINT_QUEUE_BYTES);
    for i in 0..2000 {
        t.log(Duration::from_millis(i), "server", format!("event {i}"));
    }
    t.say("listening on 127.0.0.1:9");
    t.finish();
    let text = sink.text();
    assert_eq!(text.lines().count(), 2001, "{text}");
    assert!(
        text.starts_with("      0.000 ms  server  event 0\n"),
        "{text}"
    );
    assert!(
        text.ends_with("event 1999\nlistening on 127.0.0.1:9\n"),
        "{text}"
    );
    // Lines after the end are not printed, and nothing waits for them.
    t.say("too late");
    t.finish();
    assert!(!sink.text().contains("too late"));
}

#[test]
fn a_full_queue_drops_lines_counts_them_and_says_so_where_they_were() {
    let (sink, control) = Sink::gated();
    // Ten 10-byte lines fit.
    let t = Transcript::printing_to(sink.clone(), 100);
    t.say("first 000");
    // The writer has taken the first line and waits: the queue is empty again.
    control.entered();
    for i in 1..=25 {
        t.say(&format!("line {i:04}"));
    }
    // The writer catches up: the first line, then the ten that fitted.
    control.let_one_through();
    control.entered();
    control.let_one_through();
    t.say("after 0000");
    drop(control);
    t.finish();
    let expected: Vec<String> = std::iter::once("first 000".to_string())
        .chain((1..=10).map(|i| format!("line {i:04}")))
        .chain([
            "transcript: 15 lines dropped (stderr was not read fast enough)".to_string(),
            "after 0000".to_string(),
        ])
        .collect();
    assert_eq!(sink.text().lines().collect::<Vec<_>>(), expected);
}

#[test]
fn lines_dropped_just_before_the_end_are_still_counted() {
    let (sink, control) = Sink::gated();
    let t = Transcript::printing_to(sink.clone(), 10);
    t.say("first 000");
    control.entered();
    t.say("fits 0000");
    t.say("dropped 0");
    t.say("dropped 1");
    drop(control);
    t.finish();
    assert_eq!(
        sink.text(),
        "first 000\nfits 0000\ntranscript: 2 lines dropped (stderr was not read fast enough)\n"
    );
}

#[test]
fn finish_gives_up_on_a_writer_that_makes_no_progress() {
    let (sink, control) = Sink::gated();
    let t = Transcript::printing_to(sink.clone(), PRINT_QUEUE_BYTES);
    t.say("stuck");
    control.entered();
    // Nobody reads: finish returns rather than hold the process forever.
    t.finish();
    assert_eq!(sink.text(), "");
    drop(control);
}
