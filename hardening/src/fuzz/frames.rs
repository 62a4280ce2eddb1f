//! `ws-frames`: the two WebSocket frame readers, `gauntlet_proxies::ws_frames::FrameScanner`
//! (boundaries only, for models) and `gauntlet::endpoints::smuggle::decode` (whole frames, for the
//! cache-poisoning demonstration), on streams of frames with any header bits and lengths,
//! valid frames, and random bytes, cut anywhere.
//!
//! Held to: no panic; the scanner always makes progress and finds the same boundaries however
//! the stream is cut; where the decoder reads a whole frame, the scanner's boundary is at the
//! same byte, one byte less is `Partial`, and a valid frame decodes to what was encoded.

use gauntlet::endpoints::smuggle::{self, Decoded};
use gauntlet_proxies::ws_frames::{self, FrameScanner};
use proptest::prelude::*;

use super::inputs::{self, cuts, pieces, show_bytes};
use super::runner::Checked;

/// One case: a stream and how it is cut; and, for one valid frame, what it encodes.
#[derive(Debug, Clone)]
pub struct FramesCase {
    stream: Vec<u8>,
    cuts: Vec<usize>,
    encoded: Option<(u8, Vec<u8>, Option<[u8; 4]>)>,
}

pub fn case() -> impl Strategy<Value = FramesCase> {
    let part = prop_oneof![
        4 => inputs::frame(),
        3 => prop_oneof![inputs::valid_frame(true), inputs::valid_frame(false)],
        1 => prop::collection::vec(any::<u8>(), 0..40),
    ];
    let stream = inputs::mutated(
        prop::collection::vec(part, 0..6).prop_map(|p| p.concat()),
        3,
    );
    let one = (
        prop::sample::select(&[0x0u8, 0x1, 0x2, 0x8, 0x9, 0xA]),
        prop_oneof![
            3 => prop::collection::vec(any::<u8>(), 0..200),
            1 => prop::sample::select(&[125usize, 126, 65_535, 65_536]).prop_map(|n| vec![0x5A; n]),
        ],
        prop::option::of(any::<[u8; 4]>()),
    );
    (stream, cuts(), prop::option::weighted(0.3, one)).prop_map(|(stream, cuts, encoded)| {
        FramesCase {
            stream,
            cuts,
            encoded,
        }
    })
}

pub fn show(c: &FramesCase) -> String {
    let mut out = format!(
        "stream cut into pieces of {:?}:\n{}",
        c.cuts,
        show_bytes(&c.stream)
    );
    if let Some((op, payload, mask)) = &c.encoded {
        out.push_str(&format!(
            "\nand a frame encoded with opcode {op:#x}, mask {mask:?}, payload {}",
            show_bytes(payload)
        ));
    }
    out
}

/// The boundaries the scanner finds, feeding `stream` in `cuts` with `step`.
fn boundaries(stream: &[u8], cuts: &[usize]) -> Result<Vec<usize>, String> {
    let mut s = FrameScanner::new();
    let mut seen = Vec::new();
    let mut at = 0;
    for piece in pieces(stream, cuts) {
        let mut rest = piece;
        while !rest.is_empty() {
            let n = s.step(rest);
            if n == 0 || n > rest.len() {
                return Err(format!(
                    "step used {n} of {} bytes at offset {at}",
                    rest.len()
                ));
            }
            at += n;
            rest = &rest[n..];
            if s.at_boundary() {
                seen.push(at);
            }
        }
    }
    Ok(seen)
}

pub fn check(c: &FramesCase) -> Checked {
    let whole = boundaries(&c.stream, &[usize::MAX])?;
    let cut = boundaries(&c.stream, &c.cuts)?;
    if whole != cut {
        return Err(format!("boundaries whole {whole:?}, in pieces {cut:?}"));
    }
    let mut fed = FrameScanner::new();
    fed.feed(&c.stream);
    if fed.at_boundary() != (whole.last() == Some(&c.stream.len()) || c.stream.is_empty()) {
        return Err(format!(
            "feed ends at_boundary {} but step's boundaries are {whole:?}",
            fed.at_boundary()
        ));
    }
    // The decoder, frame after frame, from the start.
    let mut at = 0;
    let mut label = "no frame";
    let mut frames = 0;
    loop {
        let rest = &c.stream[at..];
        match smuggle::decode(rest) {
            Decoded::Frame(frame, n) => {
                if n == 0 || n > rest.len() {
                    return Err(format!(
                        "decode read a frame of {n} bytes from {} at {at}",
                        rest.len()
                    ));
                }
                if smuggle::decode(&rest[..n - 1]) != Decoded::Partial {
                    return Err(format!(
                        "the frame at {at} of {n} bytes less its last byte is not Partial"
                    ));
                }
                if frame.payload.len() > n {
                    return Err(format!("a {n}-byte frame with a longer payload"));
                }
                at += n;
                if !whole.contains(&at) {
                    return Err(format!(
                        "decode ends a frame at {at}, the scanner's boundaries are {whole:?}"
                    ));
                }
                frames += 1;
                label = if frames > 1 { "frames" } else { "one frame" };
            }
            Decoded::Partial => break,
            Decoded::Invalid(reason) if reason.is_empty() => {
                return Err(format!("invalid at {at} with an empty reason"));
            }
            Decoded::Invalid(_) => {
                if frames == 0 {
                    label = "invalid";
                }
                break;
            }
        }
        if at == c.stream.len() {
            break;
        }
    }
    if let Some((op, payload, mask)) = &c.encoded {
        let bytes = ws_frames::encode(*op, payload, *mask);
        let want = smuggle::Frame {
            fin: true,
            rsv1: false,
            opcode: *op,
            masked: mask.is_some(),
            payload: payload.clone(),
        };
        match smuggle::decode(&bytes) {
            Decoded::Frame(f, n) if f == want && n == bytes.len() => {}
            other => {
                return Err(format!("encode then decode gave {other:?}"));
            }
        }
        if boundaries(&bytes, &c.cuts)? != vec![bytes.len()] {
            return Err("the scanner does not end an encoded frame at its end".into());
        }
    }
    Ok(label)
}
