//! The messages of a run, seeded: text of letters after the message's index, or binary
//! bytes that are never UTF-8.

use gauntlet_proxies::rng::Rng;
use tokio_tungstenite::tungstenite::Message;

/// Message `i` of a run: text from [`payload`], or binary from [`binary_payload`].
pub fn message(seed: u64, i: u32, len: usize, binary: bool) -> Message {
    if binary {
        Message::binary(binary_payload(seed, i, len))
    } else {
        Message::text(payload(seed, i, len))
    }
}

/// Binary message `i` of a run: 0xFF (a byte UTF-8 never contains, so the message is not
/// text), the index in four bytes (big-endian), then seeded bytes of any value, `len` bytes in
/// all.
pub fn binary_payload(seed: u64, i: u32, len: usize) -> Vec<u8> {
    let mut rng = Rng::derive(seed, 0x6269_6e61 + u64::from(i));
    let mut bytes = vec![0xFF];
    bytes.extend_from_slice(&i.to_be_bytes());
    while bytes.len() < len {
        bytes.push(rng.below(256) as u8);
    }
    bytes.truncate(len);
    bytes
}

/// Message `i` of a run: its index, then seeded letters, `len` bytes in all.
pub fn payload(seed: u64, i: u32, len: usize) -> String {
    let mut rng = Rng::derive(seed, 0x7061_7969 + u64::from(i));
    let mut text = format!("#{i:05} ");
    while text.len() < len {
        text.push((b'a' + rng.below(26) as u8) as char);
    }
    text.truncate(len);
    text
}

/// Push `i` of `size` bytes sent at `at` (simulated time since the run began): `push <i> at
/// <µs>` padded with dots, as the server writes every push (WebSocket, Engine.IO, HTTP
/// streaming) and [`push_stamp`] reads it.
pub fn push_text(i: u32, at: std::time::Duration, size: usize) -> String {
    let mut text = format!("push {i} at {}", at.as_micros());
    text.extend(std::iter::repeat_n('.', size.saturating_sub(text.len())));
    text
}

/// The send time, in microseconds of simulated time, that push `i` of `size` bytes carries, if
/// `text` is that push: `push <i> at <µs>` padded with dots, as the server writes it.
pub fn push_stamp(text: &str, i: u32, size: usize) -> Option<u64> {
    if text.len() != size {
        return None;
    }
    text.strip_prefix(&format!("push {i} at "))
        .and_then(|rest| rest.split('.').next())
        .and_then(|us| us.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_the_asked_length_and_depend_on_seed_and_index() {
        assert_eq!(payload(1, 0, 32).len(), 32);
        assert_eq!(payload(1, 3, 3), "#00");
        assert_eq!(payload(1, 2, 40), payload(1, 2, 40));
        assert_ne!(payload(1, 2, 40), payload(2, 2, 40));
        assert_ne!(payload(1, 2, 40), payload(1, 3, 40));
    }

    #[test]
    fn binary_payloads_are_seeded_and_never_utf8() {
        assert_eq!(binary_payload(1, 0, 0), Vec::<u8>::new());
        assert_eq!(binary_payload(1, 7, 5), [0xFF, 0, 0, 0, 7]);
        let long = binary_payload(1, 2, 1000);
        assert_eq!(long.len(), 1000);
        assert!(std::str::from_utf8(&long).is_err());
        assert_eq!(long, binary_payload(1, 2, 1000));
        assert_ne!(long, binary_payload(2, 2, 1000));
        assert!(long.iter().any(|b| *b >= 0x80 && *b != 0xFF));
    }
}
