//! Server-Sent Events, the `text/event-stream` format of the WHATWG HTML standard (§9.2,
//! "Server-sent events", "Parsing an event stream" and "Interpreting an event stream"): the
//! server's encoder ([`event`]) and the client's reader ([`Reader`]), incremental and bounded.
//!
//! A stream is lines, each ended by CRLF, LF or CR. A line starting with `:` is a comment; any
//! other is a field, `name: value` (one space after the colon is dropped; a line without a
//! colon is a field with an empty value). `data` appends its value and a LF to the event's
//! data, `event` sets its type, `id` and `retry` are read and set nothing here, other fields
//! are ignored. An empty line ends the event: with data, it is dispatched (its last LF
//! removed, its type `message` unless `event` said otherwise); without, it is dropped. A
//! byte-order mark before the first line is skipped. Lines are decoded as UTF-8, an invalid
//! sequence becoming U+FFFD, as the standard decodes the stream.

use std::collections::VecDeque;

/// The type of an event without an `event` field.
pub const MESSAGE: &str = "message";

/// One event as the reader dispatches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its type: the last `event` field's value, or [`MESSAGE`].
    pub name: String,
    /// Its `data` fields' values, joined by LF.
    pub data: String,
}

/// The event of type `name` (none: [`MESSAGE`]) carrying `data`, as the stream's bytes: each
/// line of `data` a `data:` field, then the empty line. `data` must hold no CR, which the
/// format reads as a line end (the server sends such text in base64).
pub fn event(name: Option<&str>, data: &str) -> String {
    let mut out = String::with_capacity(data.len() + 16);
    if let Some(name) = name {
        out.push_str("event: ");
        out.push_str(name);
        out.push('\n');
    }
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

/// Why a stream cannot be read as events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// A line longer than the reader takes, without its end.
    #[error("an event-stream line longer than {max} bytes without its end")]
    LineTooLong {
        /// The limit.
        max: usize,
    },
    /// An event whose data is longer than the reader takes.
    #[error("an event whose data is longer than {max} bytes")]
    EventTooLong {
        /// The limit.
        max: usize,
    },
}

/// Reads an event stream as its bytes arrive, cut anywhere: [`Reader::push`] them, then
/// [`Reader::take`] the events they completed. It holds at most one unfinished line and one
/// unfinished event's data, each bounded by [`Reader::new`]'s `max`; a peer that sends more
/// without a line end, or an event with more data, is an error.
#[derive(Debug, Clone)]
pub struct Reader {
    max: usize,
    /// The unfinished line's bytes.
    line: Vec<u8>,
    /// The last byte was a CR: a LF next ends nothing.
    after_cr: bool,
    /// Whether the stream's first bytes were looked at for a byte-order mark.
    started: bool,
    /// The event being read: its type and its data so far.
    name: String,
    data: String,
    /// Events complete, not yet taken.
    ready: VecDeque<Event>,
}

impl Reader {
    /// A reader that takes lines, and events' data, of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            line: Vec::new(),
            after_cr: false,
            started: false,
            name: String::new(),
            data: String::new(),
            ready: VecDeque::new(),
        }
    }

    /// Reads `bytes`, the stream's next; the events they complete wait for [`Reader::take`].
    pub fn push(&mut self, mut bytes: &[u8]) -> Result<(), SseError> {
        if !self.started {
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            let seen = self.line.len() + bytes.len();
            if seen < BOM.len() && BOM.starts_with(&[&self.line[..], bytes].concat()) {
                self.line.extend_from_slice(bytes);
                return Ok(());
            }
            self.started = true;
            let held = std::mem::take(&mut self.line);
            let mut all = held;
            all.extend_from_slice(bytes);
            let all = all.strip_prefix(BOM).unwrap_or(&all).to_vec();
            return self.lines(&all);
        }
        if self.after_cr && bytes.first() == Some(&b'\n') {
            bytes = &bytes[1..];
        }
        self.after_cr = false;
        self.lines(bytes)
    }

    /// Splits `bytes` into lines, each read as it ends.
    fn lines(&mut self, mut bytes: &[u8]) -> Result<(), SseError> {
        while let Some(end) = bytes.iter().position(|b| *b == b'\r' || *b == b'\n') {
            if self.line.len() + end > self.max {
                return Err(SseError::LineTooLong { max: self.max });
            }
            self.line.extend_from_slice(&bytes[..end]);
            let line = std::mem::take(&mut self.line);
            self.field(&String::from_utf8_lossy(&line))?;
            let cr = bytes[end] == b'\r';
            bytes = &bytes[end + 1..];
            if cr {
                match bytes.first() {
                    Some(b'\n') => bytes = &bytes[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        if self.line.len() + bytes.len() > self.max {
            return Err(SseError::LineTooLong { max: self.max });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    /// One whole line.
    fn field(&mut self, line: &str) -> Result<(), SseError> {
        if line.is_empty() {
            if !self.data.is_empty() {
                self.data.pop();
                let name = match std::mem::take(&mut self.name) {
                    n if n.is_empty() => MESSAGE.to_string(),
                    n => n,
                };
                let data = std::mem::take(&mut self.data);
                self.ready.push_back(Event { name, data });
            }
            self.name.clear();
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.name = value.to_string(),
            "data" => {
                if self.data.len() + value.len() + 1 > self.max {
                    return Err(SseError::EventTooLong { max: self.max });
                }
                self.data.push_str(value);
                self.data.push('\n');
            }
            _ => {}
        }
        Ok(())
    }

    /// The next complete event, if one is.
    pub fn take(&mut self) -> Option<Event> {
        self.ready.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(pieces: &[&[u8]], max: usize) -> Result<Vec<Event>, SseError> {
        let mut r = Reader::new(max);
        let mut out = Vec::new();
        for p in pieces {
            r.push(p)?;
            while let Some(e) = r.take() {
                out.push(e);
            }
        }
        Ok(out)
    }

    fn ev(name: &str, data: &str) -> Event {
        Event {
            name: name.into(),
            data: data.into(),
        }
    }

    /// The standard's examples: comments, multi-line data, a field without a colon, the
    /// space after the colon dropped once, an event without data dropped, `event` reset per
    /// event.
    #[test]
    fn the_standards_examples_read_as_it_says() {
        let stream = b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\nevent: add\ndata: 73857293\n\nevent: lone\n\ndata\ndata\n\ndata:\n\ndata: x\n\n";
        let events = read_all(&[stream], 1024).unwrap();
        assert_eq!(
            events,
            [
                ev("message", "first event"),
                ev("message", "second event"),
                ev("message", " third event"),
                ev("add", "73857293"),
                ev("message", "\n"),
                ev("message", ""),
                ev("message", "x"),
            ]
        );
    }

    #[test]
    fn events_come_back_as_encoded() {
        let mut bytes = event(Some("open"), "abc");
        bytes.push_str(&event(None, "two\nlines"));
        bytes.push_str(&event(Some("binary"), ""));
        let events = read_all(&[bytes.as_bytes()], 1024).unwrap();
        assert_eq!(
            events,
            [
                ev("open", "abc"),
                ev("message", "two\nlines"),
                ev("binary", "")
            ]
        );
    }

    /// Every way of cutting a stream in two, with every kind of line end and a byte-order
    /// mark, reads the same events.
    #[test]
    fn every_cut_point_reads_the_same_events() {
        let stream = "\u{feff}event: open\r\ndata: sid\r\n\r\ndata: a\rdata: b\r\rdata: é\n: c\n\ndata: end\r\n\r\n".as_bytes();
        let whole = read_all(&[stream], 1024).unwrap();
        assert_eq!(
            whole,
            [
                ev("open", "sid"),
                ev("message", "a\nb"),
                ev("message", "é"),
                ev("message", "end")
            ]
        );
        for cut in 0..=stream.len() {
            let got = read_all(&[&stream[..cut], &stream[cut..]], 1024).unwrap();
            assert_eq!(got, whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(read_all(&bytes, 1024).unwrap(), whole);
    }

    /// A peer that never ends a line, or sends an event without end, is refused at the bound,
    /// however its bytes come: the reader holds no more.
    #[test]
    fn a_line_or_an_event_beyond_the_bound_is_an_error() {
        let long = [b'x'; 100];
        assert_eq!(
            read_all(&[&long[..60], &long[60..]], 64),
            Err(SseError::LineTooLong { max: 64 })
        );
        let mut r = Reader::new(64);
        for _ in 0..64 {
            r.push(b"a").unwrap();
        }
        assert_eq!(r.push(b"a"), Err(SseError::LineTooLong { max: 64 }));
        assert!(r.line.len() <= 64);
        let many = "data: 0123456789\n".repeat(10);
        assert_eq!(
            read_all(&[many.as_bytes()], 64),
            Err(SseError::EventTooLong { max: 64 })
        );
        assert_eq!(
            SseError::LineTooLong { max: 64 }.to_string(),
            "an event-stream line longer than 64 bytes without its end"
        );
    }

    #[test]
    fn invalid_utf8_becomes_the_replacement_character() {
        let events = read_all(&[b"data: a\xffb\n\n"], 64).unwrap();
        assert_eq!(events, [ev("message", "a\u{fffd}b")]);
    }
}
