//! WebSocket frame boundaries (RFC 6455 §5.2), for models that must act between frames: a
//! balancer that says goodbye with a Close frame has to wait for the frame in flight to end.
//! Only the header is read; payloads are counted, never unmasked or copied.

/// Tracks where frames begin and end in one direction of a WebSocket stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameScanner {
    /// Header bytes of the frame being read, while its header is incomplete.
    header: Vec<u8>,
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
}

impl FrameScanner {
    /// A scanner at the start of a frame.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the stream so far ends exactly at the end of a frame.
    pub fn at_boundary(&self) -> bool {
        self.header.is_empty() && self.payload_left == 0
    }

    /// Consumes bytes up to the end of the frame in progress (or of the next frame, when at a
    /// boundary), and returns how many it consumed: all of `bytes` if that frame does not end
    /// inside them.
    pub fn step(&mut self, bytes: &[u8]) -> usize {
        let mut used = 0;
        while used < bytes.len() {
            if self.payload_left > 0 {
                let take = self.payload_left.min((bytes.len() - used) as u64);
                self.payload_left -= take;
                used += take as usize;
                if self.payload_left == 0 {
                    return used;
                }
                continue;
            }
            self.header.push(bytes[used]);
            used += 1;
            if let Some(payload) = header_done(&self.header) {
                self.header.clear();
                self.payload_left = payload;
                if payload == 0 {
                    return used;
                }
            }
        }
        used
    }

    /// Consumes all of `bytes`.
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = self.step(rest);
            rest = &rest[n..];
        }
    }
}

/// The payload length once `header` is a complete frame header, else `None`.
fn header_done(header: &[u8]) -> Option<u64> {
    if header.len() < 2 {
        return None;
    }
    let masked = header[1] & 0x80 != 0;
    let len7 = header[1] & 0x7f;
    let ext = match len7 {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let need = 2 + ext + if masked { 4 } else { 0 };
    if header.len() < need {
        return None;
    }
    Some(match len7 {
        126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
        127 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&header[2..10]);
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    })
}

/// Opcodes (RFC 6455 §5.2).
pub mod opcode {
    /// A text frame.
    pub const TEXT: u8 = 0x1;
    /// A binary frame.
    pub const BINARY: u8 = 0x2;
    /// A Close frame.
    pub const CLOSE: u8 = 0x8;
}

/// A final frame with `opcode` and `payload`, masked with `mask` if given (RFC 6455 §5.2; a
/// frame toward a server must be masked, §5.3), with the shortest length encoding.
pub fn encode(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![0x80 | (opcode & 0x0f)];
    let bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(bit | len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(bit | 126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        Some(m) => {
            out.extend_from_slice(&m);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A Close frame with `code` and no reason, masked with `mask` when given.
pub fn close_frame(code: u16, mask: Option<[u8; 4]>) -> Vec<u8> {
    encode(opcode::CLOSE, &code.to_be_bytes(), mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(len: usize, masked: bool) -> Vec<u8> {
        encode(
            opcode::BINARY,
            &vec![0xAB; len],
            masked.then_some([1, 2, 3, 4]),
        )
    }

    #[test]
    fn steps_stop_at_the_end_of_each_frame() {
        let mut bytes = frame(3, false);
        let first = bytes.len();
        bytes.extend(frame(0, true));
        let mut s = FrameScanner::new();
        assert!(s.at_boundary());
        assert_eq!(s.step(&bytes), first);
        assert!(s.at_boundary());
        assert_eq!(s.step(&bytes[first..]), bytes.len() - first);
        assert!(s.at_boundary());
        assert_eq!(s.step(&bytes[..1]), 1);
        assert!(!s.at_boundary());
    }

    #[test]
    fn close_frames_carry_the_code() {
        assert_eq!(close_frame(1001, None), vec![0x88, 0x02, 0x03, 0xE9]);
        let masked = close_frame(1001, Some([0xFF, 0, 0, 0]));
        assert_eq!(masked[1], 0x82);
        assert_eq!(masked[6..], [0x03 ^ 0xFF, 0xE9]);
    }

    proptest! {
        #[test]
        fn boundaries_are_found_whatever_the_segmentation(
            sizes in proptest::collection::vec((0usize..70_000, any::<bool>()), 1..6),
            cuts in proptest::collection::vec(1usize..5000, 0..40),
        ) {
            let mut stream = Vec::new();
            let mut ends = Vec::new();
            for (len, masked) in &sizes {
                stream.extend(frame(*len, *masked));
                ends.push(stream.len());
            }
            let mut s = FrameScanner::new();
            let mut seen = Vec::new();
            let mut pos = 0;
            let mut cut = cuts.iter().cycle();
            while pos < stream.len() {
                let end = (pos + cut.next().copied().unwrap_or(stream.len())).min(stream.len());
                let mut rest = &stream[pos..end];
                let mut at = pos;
                while !rest.is_empty() {
                    let n = s.step(rest);
                    at += n;
                    rest = &rest[n..];
                    if s.at_boundary() {
                        seen.push(at);
                    }
                }
                pos = end;
            }
            prop_assert_eq!(seen, ends);
        }
    }
}
