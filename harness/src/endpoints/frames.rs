//! WebSocket frames read by hand ([`decode`], [`decode_with`]), masked or not: for the
//! cache-poisoning demonstration's close handshake and attacker's endpoint, and for
//! permessage-deflate's compressed frames, which tungstenite refuses; frames are written by
//! [`gauntlet_proxies::ws_frames::encode`].

/// The largest frame payload read by hand.
const MAX_FRAME_PAYLOAD: u64 = 1 << 20;

/// A frame read by hand, its payload unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Whether it is a message's last frame.
    pub fin: bool,
    /// Whether RSV1 is set: a compressed message's first frame under permessage-deflate
    /// (RFC 7692 §6), read only by [`decode_with`] allowing it.
    pub rsv1: bool,
    /// The opcode.
    pub opcode: u8,
    /// Whether it came masked.
    pub masked: bool,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
}

/// What reading a frame at the start of a buffer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A frame of this many bytes.
    Frame(Frame, usize),
    /// More bytes are needed.
    Partial,
    /// Not a WebSocket frame; the reason says why.
    Invalid(String),
}

/// Reads one frame at the start of `buf`; any reserved bit set makes it invalid.
pub fn decode(buf: &[u8]) -> Decoded {
    decode_with(buf, false)
}

/// [`decode`], RSV1 allowed when `rsv1` (an extension that uses it was negotiated).
pub fn decode_with(buf: &[u8], rsv1: bool) -> Decoded {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Decoded::Partial;
    };
    let reserved = if rsv1 { 0x30 } else { 0x70 };
    if b0 & reserved != 0 {
        return Decoded::Invalid(format!("reserved bits set in 0x{b0:02x}"));
    }
    let opcode = b0 & 0x0f;
    if ![0x0, 0x1, 0x2, 0x8, 0x9, 0xa].contains(&opcode) {
        return Decoded::Invalid(format!("unknown opcode 0x{opcode:x}"));
    }
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Decoded::Partial,
        },
        127 => match buf.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(b) => (u64::from_be_bytes(b), 10),
            None => return Decoded::Partial,
        },
        n => (u64::from(n), 2),
    };
    if len > MAX_FRAME_PAYLOAD {
        return Decoded::Invalid(format!("a {len}-byte payload"));
    }
    let mask = if masked {
        let Some(m) = buf
            .get(at..at + 4)
            .and_then(|m| <[u8; 4]>::try_from(m).ok())
        else {
            return Decoded::Partial;
        };
        at += 4;
        Some(m)
    } else {
        None
    };
    let end = at + len as usize;
    let Some(payload) = buf.get(at..end) else {
        return Decoded::Partial;
    };
    let payload = match mask {
        Some(m) => payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ m[i % 4])
            .collect(),
        None => payload.to_vec(),
    };
    Decoded::Frame(
        Frame {
            fin: b0 & 0x80 != 0,
            rsv1: b0 & 0x40 != 0,
            opcode,
            masked,
            payload,
        },
        end,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use gauntlet_proxies::ws_frames::{encode, opcode};

    #[test]
    fn frames_round_trip_masked_or_not_at_every_length_form() {
        for len in [0, 5, 125, 126, 65_535, 65_536] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            for mask in [None, Some([1, 2, 3, 4])] {
                let bytes = encode(opcode::BINARY, &payload, mask);
                assert_eq!(
                    decode(&bytes),
                    Decoded::Frame(
                        Frame {
                            fin: true,
                            rsv1: false,
                            opcode: opcode::BINARY,
                            masked: mask.is_some(),
                            payload: payload.clone()
                        },
                        bytes.len()
                    )
                );
                assert_eq!(decode(&bytes[..bytes.len() - 1]), Decoded::Partial);
            }
        }
        assert!(matches!(decode(b"HTTP/1.1 200 OK"), Decoded::Invalid(_)));
    }
}
