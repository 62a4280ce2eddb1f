//! The HTTP/1.1 message layer every model that reads HTTP stands on: one direction of a
//! connection read as a sequence of messages (RFC 9112 §6): a head, then a body delimited as
//! the head says, then the next message.
//!
//! - [`HeadReader`] reads a head in time linear in its length however the bytes are cut, up to a
//!   limit ([`super::MAX_HEAD_BYTES`] unless a model sets its own).
//! - [`Framing`] says where a body ends ([`super::Head::framing`], RFC 9112 §6.3), and
//!   [`ChunkedScanner`] finds the end of a chunked body without decoding it (RFC 9112 §7.1).
//! - [`Messages`] puts them together: bytes in, [`Item`]s out (a head, body pieces, the end of
//!   the message), with what delimits each body decided by the caller, who knows what a
//!   response answers and whether a 101 turns the connection into a tunnel.
//! - [`answer`] matches responses to the requests that await them: an interim response (1xx
//!   other than 101) leaves its request waiting for the final one (RFC 9110 §15.2).

use std::collections::VecDeque;

use super::{FramingError, Head, Parsed, examine, parse_request, parse_response};

/// Which kind of head a [`HeadReader`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A request head.
    Request,
    /// A response head.
    Response,
}

/// What a [`HeadReader`] found in the buffer so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A complete head of `len` bytes.
    Complete(Head, usize),
    /// More bytes are needed.
    Partial,
    /// The bytes are not an HTTP/1.x head; the reason says why.
    Invalid(String),
    /// No head ends within the first `max` bytes: the head is too long.
    TooLong,
}

/// Where the end-of-head search stands: what the last bytes were, as far as a blank line is
/// concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineEnd {
    /// Before the first byte of the head (empty lines before it are skipped, RFC 9112 §2.2).
    Before,
    /// Inside a line.
    Text,
    /// Just after a LF.
    Lf,
    /// Just after a LF and a CR.
    LfCr,
}

/// Reads one head at the start of a buffer that grows a piece at a time, in time linear in the
/// head's length however it is cut: it remembers how far its search for the head's end (an
/// empty line: LF, an optional CR, LF, as httparse reads line ends) got, and calls the parser
/// only when the head is complete, or when the buffer has doubled since it last did, so that
/// bytes which are not HTTP are still found at once (the first piece is always parsed). The
/// caller passes the whole buffer each time, and calls [`HeadReader::reset`] once it has taken
/// the head (or thrown the buffer away).
#[derive(Debug, Clone)]
pub struct HeadReader {
    kind: Kind,
    /// Bytes of the buffer searched for the end of the head.
    searched: usize,
    /// The search's state at `searched`.
    state: LineEnd,
    /// Where the head ends, once found.
    end: Option<usize>,
    /// The buffer's length when the parser last read it.
    parsed: usize,
}

impl HeadReader {
    /// A reader at the start of a head of `kind`.
    pub fn new(kind: Kind) -> Self {
        Self {
            kind,
            searched: 0,
            state: LineEnd::Before,
            end: None,
            parsed: 0,
        }
    }

    /// Starts over: the next call reads a new head at the start of the buffer.
    pub fn reset(&mut self) {
        *self = Self::new(self.kind);
    }

    /// The caller removed `n` bytes from the front of the buffer, and what is left starts with
    /// a byte of a head (not CR or LF): a lenient reader dropping a candidate head for one that
    /// starts later. The search goes on where it stood, since the first empty line after the
    /// new start is the first one after the old start, if it is after the new start at all.
    pub fn advance(&mut self, n: usize) {
        if n >= self.searched || self.state == LineEnd::Before {
            return self.reset();
        }
        self.searched -= n;
        self.end = self.end.map(|e| e - n);
        self.parsed = self.parsed.saturating_sub(n);
    }

    fn parse(&self, buf: &[u8]) -> Parsed {
        match self.kind {
            Kind::Request => parse_request(buf, usize::MAX),
            Kind::Response => parse_response(buf, usize::MAX),
        }
    }

    /// Searches the bytes not searched yet, within the first `limit`, for the end of the head.
    fn search(&mut self, buf: &[u8], limit: usize) {
        let from = self.searched.min(limit);
        for (i, &b) in buf[from..limit].iter().enumerate() {
            self.state = match (self.state, b) {
                (LineEnd::Before, b'\r' | b'\n') => LineEnd::Before,
                (LineEnd::Lf | LineEnd::LfCr, b'\n') => {
                    self.end = Some(from + i + 1);
                    LineEnd::Text
                }
                (_, b'\n') => LineEnd::Lf,
                (LineEnd::Lf, b'\r') => LineEnd::LfCr,
                _ => LineEnd::Text,
            };
            if self.end.is_some() {
                break;
            }
        }
        self.searched = self.end.unwrap_or(limit);
        examine(self.searched - from);
    }

    /// Reads the head at the start of `buf` (everything received so far), allowing at most
    /// `max` bytes for it.
    pub fn read(&mut self, buf: &[u8], max: usize) -> Progress {
        loop {
            if self.end.is_none() {
                self.search(buf, buf.len().min(max));
            }
            if let Some(end) = self.end {
                self.parsed = self.parsed.max(end);
                match self.parse(&buf[..end]) {
                    Parsed::Complete(head, len) => return Progress::Complete(head, len),
                    Parsed::Invalid(reason) => return Progress::Invalid(reason),
                    Parsed::Partial => {
                        // Not the end after all (cannot happen with httparse's line ends,
                        // but the search can go on safely).
                        self.end = None;
                        continue;
                    }
                }
            }
            if buf.len() > max {
                // One parse tells bytes that are not HTTP from a head that is too long.
                return match self.parse(&buf[..max]) {
                    Parsed::Invalid(reason) => Progress::Invalid(reason),
                    _ => Progress::TooLong,
                };
            }
            if buf.len() > self.parsed && buf.len() >= 2 * self.parsed {
                self.parsed = buf.len();
                if let Parsed::Invalid(reason) = self.parse(buf) {
                    return Progress::Invalid(reason);
                }
            }
            return Progress::Partial;
        }
    }
}

/// Where a message body ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding; the scanner finds its end.
    Chunked(ChunkedScanner),
    /// Until the sender closes (responses only).
    UntilClose,
}

/// Finds the end of a chunked body without decoding it (RFC 9112 §7.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChunkedScanner {
    state: ChunkState,
    size: u64,
    line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ChunkState {
    #[default]
    Size,
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    Trailer,
    TrailerLf,
    Done,
}

/// Why bytes are not chunked coding (RFC 9112 §7.1): what [`ChunkedScanner::scan`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// A chunk size larger than 64 bits hold.
    #[error("chunk size overflows")]
    SizeOverflows,
    /// A byte that is neither a hexadecimal digit nor the start of an extension or the line's
    /// end, where a chunk size is read.
    #[error("unexpected byte 0x{0:02x} in a chunk size")]
    SizeByte(u8),
    /// A chunk size line whose CR is not followed by LF.
    #[error("chunk size line not ended by CRLF")]
    SizeLineEnd,
    /// A chunk's data not followed by CRLF.
    #[error("chunk data not followed by CRLF")]
    DataEnd,
    /// A trailer line whose CR is not followed by LF.
    #[error("trailer line not ended by CRLF")]
    TrailerLineEnd,
}

impl ChunkedScanner {
    /// Consumes body bytes from `buf`: returns how many belong to the body, and whether the
    /// body ended within them. An error means the bytes are not chunked coding.
    pub fn scan(&mut self, buf: &[u8]) -> Result<(usize, bool), ChunkError> {
        self.walk(buf, |_| {})
    }

    /// As [`ChunkedScanner::scan`], appending the chunks' data (the body decoded) to `data`:
    /// what a client reading a chunked body piece by piece as it arrives needs.
    pub fn decode(&mut self, buf: &[u8], data: &mut Vec<u8>) -> Result<(usize, bool), ChunkError> {
        self.walk(buf, |d| data.extend_from_slice(d))
    }

    /// Reads `buf` as chunked coding, handing each run of chunk data to `on_data`.
    fn walk(
        &mut self,
        buf: &[u8],
        mut on_data: impl FnMut(&[u8]),
    ) -> Result<(usize, bool), ChunkError> {
        let mut i = 0;
        while i < buf.len() {
            if self.state == ChunkState::Done {
                break;
            }
            let b = buf[i];
            match self.state {
                ChunkState::Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        let digit = (b as char).to_digit(16).unwrap_or(0) as u64;
                        self.size = self
                            .size
                            .checked_mul(16)
                            .and_then(|s| s.checked_add(digit))
                            .ok_or(ChunkError::SizeOverflows)?;
                    }
                    b';' | b' ' | b'\t' => self.state = ChunkState::Extension,
                    b'\r' => self.state = ChunkState::SizeLf,
                    _ => return Err(ChunkError::SizeByte(b)),
                },
                ChunkState::Extension => {
                    if b == b'\r' {
                        self.state = ChunkState::SizeLf;
                    }
                }
                ChunkState::SizeLf => {
                    if b != b'\n' {
                        return Err(ChunkError::SizeLineEnd);
                    }
                    self.state = if self.size == 0 {
                        self.line = 0;
                        ChunkState::Trailer
                    } else {
                        ChunkState::Data
                    };
                }
                ChunkState::Data => {
                    let take = usize::try_from(self.size)
                        .unwrap_or(usize::MAX)
                        .min(buf.len() - i);
                    on_data(&buf[i..i + take]);
                    self.size -= take as u64;
                    i += take;
                    if self.size == 0 {
                        self.state = ChunkState::DataCr;
                    }
                    continue;
                }
                ChunkState::DataCr => {
                    if b != b'\r' {
                        return Err(ChunkError::DataEnd);
                    }
                    self.state = ChunkState::DataLf;
                }
                ChunkState::DataLf => {
                    if b != b'\n' {
                        return Err(ChunkError::DataEnd);
                    }
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailer => {
                    if b == b'\r' {
                        self.state = ChunkState::TrailerLf;
                    } else {
                        self.line += 1;
                    }
                }
                ChunkState::TrailerLf => {
                    if b != b'\n' {
                        return Err(ChunkError::TrailerLineEnd);
                    }
                    if self.line == 0 {
                        self.state = ChunkState::Done;
                    } else {
                        self.line = 0;
                        self.state = ChunkState::Trailer;
                    }
                }
                ChunkState::Done => unreachable!("loop exits on Done"),
            }
            i += 1;
        }
        Ok((i, self.state == ChunkState::Done))
    }
}

/// What [`Messages::read`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A complete head, parsed, and its bytes as they came. What delimits its body is the
    /// caller's to say next, with [`Messages::body`]: nothing more is read until it does.
    Head {
        /// The parsed head.
        head: Head,
        /// The head's bytes as received.
        raw: Vec<u8>,
    },
    /// The next bytes of the current message's body, as received (chunked coding included).
    Body(Vec<u8>),
    /// The current message is complete; a head is next.
    End,
}

/// Bytes that cannot be read as HTTP messages. The bytes stay buffered, from where reading
/// stopped ([`Messages::take`] hands them over).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageError {
    /// Where a head should start, bytes that are not one; the parser's reason.
    NotHttp(String),
    /// No head ends within the first `max` bytes; `held` bytes of it came.
    HeadTooLong {
        /// The limit.
        max: usize,
        /// The bytes buffered without the head's end.
        held: usize,
    },
    /// A chunked body whose coding is broken; what is wrong.
    Chunked(ChunkError),
}

impl std::fmt::Display for MessageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MessageError::NotHttp(reason) => f.write_str(reason),
            MessageError::Chunked(e) => e.fmt(f),
            MessageError::HeadTooLong { max, held } => write!(
                f,
                "head longer than {max} bytes ({held} bytes without its end)"
            ),
        }
    }
}

impl std::error::Error for MessageError {}

/// Where a [`Messages`] stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum At {
    /// A head is next.
    Head,
    /// A head was read; the caller has yet to say how its body is delimited.
    Decide,
    /// In a body delimited as said.
    Body(Framing),
    /// The body ended; [`Item::End`] is next.
    End,
}

/// One direction of an HTTP/1.1 connection, read incrementally as a sequence of messages:
/// [`Messages::push`] the bytes as they come, then call [`Messages::read`] until it returns
/// `Ok(None)` (more bytes are needed, or a head awaits the caller's [`Messages::body`]).
///
/// Bytes are held until they are read, so a caller that stops reading (a proxy holding a
/// pipelined request until the last one is answered) bounds [`Messages::buffered`] itself.
///
/// ```
/// use gauntlet_proxies::http::{Framing, Item, Kind, MAX_HEAD_BYTES, Messages};
///
/// let mut down = Messages::new(Kind::Response, MAX_HEAD_BYTES);
/// down.push(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel");
/// let Ok(Some(Item::Head { head, .. })) = down.read() else { panic!() };
/// down.body(head.framing(Some("GET")).unwrap());
/// assert_eq!(down.read(), Ok(Some(Item::Body(b"hel".to_vec()))));
/// assert_eq!(down.read(), Ok(None));
/// down.push(b"loHTTP/1.1 204 No Content\r\n\r\n");
/// assert_eq!(down.read(), Ok(Some(Item::Body(b"lo".to_vec()))));
/// assert_eq!(down.read(), Ok(Some(Item::End)));
/// assert!(matches!(down.read(), Ok(Some(Item::Head { .. }))));
/// down.body(Framing::None);
/// assert_eq!(down.read(), Ok(Some(Item::End)));
/// assert!(down.idle());
/// ```
#[derive(Debug, Clone)]
pub struct Messages {
    max_head: usize,
    /// Bytes received and not yet read.
    buf: Vec<u8>,
    /// Reads the head at the start of `buf`.
    reader: HeadReader,
    at: At,
}

impl Messages {
    /// A direction whose messages are of `kind`, whose heads may be at most `max_head` bytes.
    pub fn new(kind: Kind, max_head: usize) -> Self {
        Self {
            max_head,
            buf: Vec::new(),
            reader: HeadReader::new(kind),
            at: At::Head,
        }
    }

    /// Bytes received.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// How many received bytes are not read yet.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether a head is next (between messages).
    pub fn between(&self) -> bool {
        matches!(self.at, At::Head | At::End)
    }

    /// Whether it is between messages with nothing buffered.
    pub fn idle(&self) -> bool {
        self.between() && self.buf.is_empty()
    }

    /// Says how the rest of the current message is delimited: after [`Item::Head`], its body
    /// ([`Head::framing`], or what the model decides instead); at any other time, the bytes from
    /// here on ([`Framing::UntilClose`] reads everything that comes as one body).
    pub fn body(&mut self, framing: Framing) {
        self.at = match framing {
            Framing::None | Framing::Length(0) => At::End,
            framing => At::Body(framing),
        };
    }

    /// Hands over every byte not read yet; a head is read from the next bytes that come (or
    /// the body goes on, if one was being read).
    pub fn take(&mut self) -> Vec<u8> {
        self.reader.reset();
        std::mem::take(&mut self.buf)
    }

    /// Forgets every byte not read yet and the message they began: a head is next.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.reader.reset();
        self.at = At::Head;
    }

    /// The first `n` buffered bytes, taken off the buffer.
    fn front(&mut self, n: usize) -> Vec<u8> {
        if n >= self.buf.len() {
            std::mem::take(&mut self.buf)
        } else {
            self.buf.drain(..n).collect()
        }
    }

    /// Reads the next item from the bytes received so far. `Ok(None)`: more bytes are needed,
    /// or a head awaits [`Messages::body`]. An error leaves the bytes where reading stopped.
    pub fn read(&mut self) -> Result<Option<Item>, MessageError> {
        match &mut self.at {
            At::Decide => Ok(None),
            At::End => {
                self.at = At::Head;
                Ok(Some(Item::End))
            }
            At::Head => {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                match self.reader.read(&self.buf, self.max_head) {
                    Progress::Partial => Ok(None),
                    Progress::Invalid(reason) => Err(MessageError::NotHttp(reason)),
                    Progress::TooLong => Err(MessageError::HeadTooLong {
                        max: self.max_head,
                        held: self.buf.len(),
                    }),
                    Progress::Complete(head, len) => {
                        let raw = self.front(len);
                        self.reader.reset();
                        self.at = At::Decide;
                        Ok(Some(Item::Head { head, raw }))
                    }
                }
            }
            _ if self.buf.is_empty() => Ok(None),
            At::Body(Framing::UntilClose) => Ok(Some(Item::Body(self.front(usize::MAX)))),
            At::Body(Framing::Length(left)) => {
                let take = (*left).min(self.buf.len() as u64);
                *left -= take;
                if *left == 0 {
                    self.at = At::End;
                }
                Ok(Some(Item::Body(self.front(take as usize))))
            }
            At::Body(Framing::Chunked(scanner)) => {
                let mut next = scanner.clone();
                let (used, done) = next.scan(&self.buf).map_err(MessageError::Chunked)?;
                self.at = if done {
                    At::End
                } else {
                    At::Body(Framing::Chunked(next))
                };
                Ok(Some(Item::Body(self.front(used))))
            }
            At::Body(Framing::None) => {
                self.at = At::Head;
                Ok(Some(Item::End))
            }
        }
    }
}

/// Whether a response with `status` is interim (RFC 9110 §15.2): a 1xx other than 101, which
/// ends the exchange by switching protocols (§15.2.2). An interim response leaves its request
/// waiting for the final response.
pub fn interim(status: u16) -> bool {
    (100..200).contains(&status) && status != 101
}

/// The request a response with `status` answers, from those awaiting answers, oldest first:
/// an [`interim`] response answers the oldest and leaves it waiting; any other takes it off.
/// `None`: no request awaits an answer.
pub fn answer<T: Clone>(pending: &mut VecDeque<T>, status: u16) -> Option<T> {
    if interim(status) {
        pending.front().cloned()
    } else {
        pending.pop_front()
    }
}

/// Why a model that read a head cannot go on with the exchange it belongs to: its body
/// cannot be delimited, or it is a response when no request awaits one. Either is bytes that
/// are not HTTP the model can follow, handled as such (noted, answered 400 or 502, closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// The head's body cannot be delimited.
    #[error(transparent)]
    Framing(#[from] FramingError),
    /// A response, with this status, when no request awaits an answer.
    #[error("a {0} response to no request")]
    Unanswered(u16),
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::parse_request;
    use super::*;

    fn response(text: &str) -> Head {
        match parse_response(text.as_bytes(), usize::MAX) {
            Parsed::Complete(head, _) => head,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn request(text: &str) -> Head {
        match parse_request(text.as_bytes(), usize::MAX) {
            Parsed::Complete(head, _) => head,
            other => panic!("{text}: {other:?}"),
        }
    }

    /// RFC 9112 §6.3, rule by rule: what delimits a body.
    #[test]
    fn framing_follows_rfc_9112_section_6_3() {
        let chunked = || Ok(Framing::Chunked(ChunkedScanner::default()));
        let cases: &[(&str, Option<&str>, Result<Framing, FramingError>)] = &[
            // 1: a response to HEAD, any 1xx, 204 or 304 ends at its head.
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                Some("HEAD"),
                Ok(Framing::None),
            ),
            (
                "HTTP/1.1 100 Continue\r\n\r\n",
                Some("POST"),
                Ok(Framing::None),
            ),
            (
                "HTTP/1.1 103 Early Hints\r\nContent-Length: 5\r\n\r\n",
                None,
                Ok(Framing::None),
            ),
            (
                "HTTP/1.1 101 Switching Protocols\r\n\r\n",
                Some("GET"),
                Ok(Framing::None),
            ),
            (
                "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
                None,
                Ok(Framing::None),
            ),
            (
                "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
                None,
                Ok(Framing::None),
            ),
            // 2: a 2xx to CONNECT is a tunnel from the end of its head.
            (
                "HTTP/1.1 200 Connection established\r\nContent-Length: 5\r\n\r\n",
                Some("CONNECT"),
                Ok(Framing::UntilClose),
            ),
            (
                "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 5\r\n\r\n",
                Some("CONNECT"),
                Ok(Framing::Length(5)),
            ),
            // 3 and 4: Transfer-Encoding overrides Content-Length; chunked last is chunked; a
            // response whose last coding is not chunked runs to the close.
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
                None,
                chunked(),
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n",
                None,
                chunked(),
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                None,
                Ok(Framing::UntilClose),
            ),
            // 5: differing or unreadable lengths are errors.
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                None,
                Err(FramingError::ConflictingLengths),
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: five\r\n\r\n",
                None,
                Err(FramingError::LengthNotNumber("five".into())),
            ),
            // 6: a valid length.
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
                None,
                Ok(Framing::Length(5)),
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                None,
                Ok(Framing::None),
            ),
            // 8: otherwise a response runs to the close.
            (
                "HTTP/1.1 200 OK\r\n\r\n",
                Some("GET"),
                Ok(Framing::UntilClose),
            ),
        ];
        for (text, method, expected) in cases {
            assert_eq!(
                &response(text).framing(*method),
                expected,
                "{text:?} to {method:?}"
            );
        }
        let requests: &[(&str, Result<Framing, FramingError>)] = &[
            // 4: a request whose last coding is not chunked cannot be read (400).
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
                Err(FramingError::RequestCoding("gzip".into())),
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                chunked(),
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n",
                Ok(Framing::Length(11)),
            ),
            // 6: a request with neither has no body.
            ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", Ok(Framing::None)),
        ];
        for (text, expected) in requests {
            assert_eq!(&request(text).framing(None), expected, "{text:?}");
        }
        // What each says, as the transcript notes and error pages write it.
        let said = [
            (
                FramingError::ConflictingLengths,
                "conflicting Content-Length fields",
            ),
            (FramingError::LengthNotAscii, "Content-Length is not ASCII"),
            (
                FramingError::LengthNotNumber("five".into()),
                "Content-Length `five` is not a number",
            ),
            (
                FramingError::RequestCoding("gzip".into()),
                "request body transfer coding `gzip` is not chunked",
            ),
        ];
        for (error, text) in said {
            assert_eq!(error.to_string(), text);
        }
    }

    /// Requests of every framing, pipelined: a GET, a POST by length, a chunked POST with an
    /// extension and a trailer, and a GET.
    const REQUESTS: &[u8] = b"GET /a HTTP/1.1\r\nHost: s\r\n\r\n\
POST /b HTTP/1.1\r\nHost: s\r\nContent-Length: 11\r\n\r\nhello world\
POST /c HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\n4;x=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\n\
GET /d HTTP/1.1\r\nHost: s\r\n\r\n";

    /// Responses to GET, HEAD, POST, GET: an interim 100 before the GET's final response, a
    /// body by length, a HEAD's head alone, a 204, and a body that runs to the close.
    const RESPONSES: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n\
HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc\
HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n\
HTTP/1.1 204 No Content\r\n\r\n\
HTTP/1.1 200 OK\r\n\r\nto the close HTTP/1.1 200 OK\r\n\r\n";

    /// What reading `bytes` in pieces cut at `cuts` gives: each message's first line, body and
    /// whether it ended, with the body of each message joined however it was cut. Responses
    /// are matched to `methods`, oldest first, through [`answer`].
    fn read(
        kind: Kind,
        bytes: &[u8],
        cuts: &[usize],
        methods: &[&str],
    ) -> Vec<(String, Vec<u8>, bool)> {
        let mut pending: VecDeque<&str> = methods.iter().copied().collect();
        let mut messages = Messages::new(kind, 1024);
        let mut out: Vec<(String, Vec<u8>, bool)> = Vec::new();
        let mut from = 0;
        for &cut in cuts.iter().chain([&bytes.len()]) {
            let to = cut.clamp(from, bytes.len());
            messages.push(&bytes[from..to]);
            from = to;
            while let Some(item) = messages.read().unwrap() {
                match item {
                    Item::Head { head, raw } => {
                        assert_eq!(raw, head.to_bytes());
                        let method = match head.status() {
                            Some(status) => answer(&mut pending, status),
                            None => None,
                        };
                        messages.body(head.framing(method).unwrap());
                        out.push((super::super::first_line(&raw), Vec::new(), false));
                    }
                    Item::Body(bytes) => out.last_mut().unwrap().1.extend(bytes),
                    Item::End => out.last_mut().unwrap().2 = true,
                }
            }
        }
        out
    }

    fn whole(kind: Kind, bytes: &[u8], methods: &[&str]) -> Vec<(String, Vec<u8>, bool)> {
        read(kind, bytes, &[], methods)
    }

    const METHODS: &[&str] = &["GET", "HEAD", "POST", "GET"];

    #[test]
    fn pipelined_messages_of_every_framing_are_read_whole() {
        let requests = whole(Kind::Request, REQUESTS, &[]);
        let lines: Vec<&str> = requests.iter().map(|(l, _, _)| l.as_str()).collect();
        assert_eq!(
            lines,
            [
                "GET /a HTTP/1.1",
                "POST /b HTTP/1.1",
                "POST /c HTTP/1.1",
                "GET /d HTTP/1.1"
            ]
        );
        assert_eq!(requests[1].1, b"hello world");
        assert_eq!(
            requests[2].1,
            b"4;x=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\n"
        );
        assert!(requests.iter().all(|(_, _, ended)| *ended));

        let responses = whole(Kind::Response, RESPONSES, METHODS);
        let summary: Vec<(&str, &[u8], bool)> = responses
            .iter()
            .map(|(l, b, e)| (l.as_str(), b.as_slice(), *e))
            .collect();
        assert_eq!(
            summary,
            [
                ("HTTP/1.1 100 Continue", &b""[..], true),
                ("HTTP/1.1 200 OK", b"abc", true),
                ("HTTP/1.1 200 OK", b"", true),
                ("HTTP/1.1 204 No Content", b"", true),
                (
                    "HTTP/1.1 200 OK",
                    b"to the close HTTP/1.1 200 OK\r\n\r\n",
                    false
                ),
            ]
        );
    }

    #[test]
    fn a_stream_cut_in_two_anywhere_reads_as_when_whole() {
        for (kind, bytes, methods) in [
            (Kind::Request, REQUESTS, &[][..]),
            (Kind::Response, RESPONSES, METHODS),
        ] {
            let expected = whole(kind, bytes, methods);
            for cut in 0..=bytes.len() {
                assert_eq!(read(kind, bytes, &[cut], methods), expected, "cut at {cut}");
            }
        }
    }

    proptest! {
        /// However the bytes are cut, the messages read are the same.
        #[test]
        fn a_stream_cut_anywhere_reads_as_when_whole(
            mut cuts in proptest::collection::vec(0usize..400, 0..24),
        ) {
            cuts.sort_unstable();
            prop_assert_eq!(read(Kind::Request, REQUESTS, &cuts, &[]), whole(Kind::Request, REQUESTS, &[]));
            prop_assert_eq!(read(Kind::Response, RESPONSES, &cuts, METHODS), whole(Kind::Response, RESPONSES, METHODS));
        }
    }

    #[test]
    fn a_head_waits_for_its_framing_before_anything_after_it_is_read() {
        let mut m = Messages::new(Kind::Request, 1024);
        m.push(b"GET / HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n");
        assert!(matches!(m.read(), Ok(Some(Item::Head { .. }))));
        assert_eq!(m.read(), Ok(None));
        assert!(!m.between());
        m.body(Framing::None);
        assert_eq!(m.read(), Ok(Some(Item::End)));
        assert!(
            matches!(m.read(), Ok(Some(Item::Head { head, .. })) if head.to_bytes().starts_with(b"GET /next"))
        );
    }

    #[test]
    fn bytes_that_cannot_be_read_stay_where_reading_stopped() {
        let mut m = Messages::new(Kind::Response, 1024);
        m.push(b"\x81\x05hello");
        assert!(matches!(m.read(), Err(MessageError::NotHttp(_))));
        assert_eq!(m.take(), b"\x81\x05hello");

        let mut m = Messages::new(Kind::Response, 1024);
        m.push(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n");
        let Ok(Some(Item::Head { head, .. })) = m.read() else {
            panic!()
        };
        m.body(head.framing(None).unwrap());
        let err = m.read().unwrap_err();
        assert_eq!(err, MessageError::Chunked(ChunkError::SizeByte(b'z')));
        assert_eq!(err.to_string(), "unexpected byte 0x7a in a chunk size");
        assert_eq!(m.take(), b"3\r\nabc\r\nzz\r\n");

        let mut m = Messages::new(Kind::Request, 32);
        m.push(b"GET / HTTP/1.1\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaa");
        assert_eq!(
            m.read(),
            Err(MessageError::HeadTooLong { max: 32, held: 51 })
        );
        assert_eq!(m.buffered(), 51);
    }

    #[test]
    fn an_interim_response_leaves_its_request_waiting_and_a_101_ends_it() {
        let mut pending: VecDeque<&str> = ["a", "b", "c"].into();
        assert_eq!(answer(&mut pending, 100), Some("a"));
        assert_eq!(answer(&mut pending, 103), Some("a"));
        assert_eq!(answer(&mut pending, 200), Some("a"));
        assert_eq!(answer(&mut pending, 101), Some("b"));
        assert_eq!(answer(&mut pending, 404), Some("c"));
        assert_eq!(answer(&mut pending, 200), None);
        assert_eq!(
            ExchangeError::Unanswered(200).to_string(),
            "a 200 response to no request"
        );
        assert!(interim(100) && interim(199) && !interim(101) && !interim(200));
    }

    #[test]
    fn decode_gives_the_chunks_data_however_the_body_is_cut() {
        let coded = b"3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\nrest";
        for cut in 0..=coded.len() {
            let (mut scanner, mut data) = (ChunkedScanner::default(), Vec::new());
            let (a, done_a) = scanner.decode(&coded[..cut], &mut data).unwrap();
            assert_eq!(a, cut.min(coded.len() - 4));
            let (b, done_b) = scanner.decode(&coded[a..], &mut data).unwrap();
            assert_eq!(a + b, coded.len() - 4, "cut at {cut}");
            assert!(done_b || done_a);
            assert_eq!(data, b"abcde", "cut at {cut}");
        }
    }
}
