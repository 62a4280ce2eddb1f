//! Fragmented messages (RFC 6455 §5.4): one data message as a first frame with the message's
//! opcode and FIN clear, then continuation frames, the last with FIN set. The reference client
//! and server send them through tungstenite as raw frames (`Message::Frame`), which tungstenite
//! masks on the client's side as it does every client frame (§5.3); receiving, tungstenite
//! reassembles them.

use futures_util::{Sink, SinkExt};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Bytes, Error, Message};

/// `message` as frames of at most `max` payload bytes each (`max` of 0 counts as 1), always at
/// least two, so the message is fragmented whatever its length: a message of `max` bytes or
/// fewer is a first frame with all of it and an empty final continuation frame. A message
/// that is neither text nor binary (a control message) cannot be fragmented (§5.5) and is
/// returned alone, unchanged.
pub fn fragments(message: Message, max: usize) -> Vec<Message> {
    let (opcode, payload): (Data, Bytes) = match message {
        Message::Text(text) => (Data::Text, text.into()),
        Message::Binary(bytes) => (Data::Binary, bytes),
        other => return vec![other],
    };
    let max = max.max(1);
    let mut chunks: Vec<Bytes> = (0..payload.len())
        .step_by(max)
        .map(|at| payload.slice(at..(at + max).min(payload.len())))
        .collect();
    chunks.resize(chunks.len().max(2), Bytes::new());
    let last = chunks.len() - 1;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let op = if i == 0 { opcode } else { Data::Continue };
            Message::Frame(Frame::message(chunk, OpCode::Data(op), i == last))
        })
        .collect()
}

/// Sends `message` as one frame, or, with `max`, fragmented by [`fragments`]; returns how
/// many frames went out.
pub async fn send<S>(ws: &mut S, message: Message, max: Option<usize>) -> Result<usize, Error>
where
    S: Sink<Message, Error = Error> + Unpin,
{
    let Some(max) = max else {
        ws.send(message).await?;
        return Ok(1);
    };
    let frames = fragments(message, max);
    let count = frames.len();
    for frame in frames {
        ws.feed(frame).await?;
    }
    ws.flush().await?;
    Ok(count)
}

/// Sends `message` fragmented by [`fragments`] (`max`), with a Ping carrying `ping` between
/// its first and second frames: a control frame in the middle of a fragmented message, as
/// RFC 6455 §5.4 allows. Returns how many data frames went out.
pub async fn send_with_ping<S>(
    ws: &mut S,
    message: Message,
    max: usize,
    ping: Bytes,
) -> Result<usize, Error>
where
    S: Sink<Message, Error = Error> + Unpin,
{
    let frames = fragments(message, max);
    let count = frames.len();
    for (i, frame) in frames.into_iter().enumerate() {
        if i == 1 {
            ws.feed(Message::Ping(ping.clone())).await?;
        }
        ws.feed(frame).await?;
    }
    ws.flush().await?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each frame's (FIN, opcode, payload length).
    fn shape(frames: &[Message]) -> Vec<(bool, OpCode, usize)> {
        frames
            .iter()
            .map(|m| match m {
                Message::Frame(f) => (f.header().is_final, f.header().opcode, f.payload().len()),
                other => panic!("not a frame: {other:?}"),
            })
            .collect()
    }

    const TEXT: OpCode = OpCode::Data(Data::Text);
    const BINARY: OpCode = OpCode::Data(Data::Binary);
    const CONTINUE: OpCode = OpCode::Data(Data::Continue);

    #[test]
    fn a_message_is_cut_into_frames_of_at_most_max_bytes() {
        let frames = fragments(Message::text("a".repeat(10)), 4);
        assert_eq!(
            shape(&frames),
            [(false, TEXT, 4), (false, CONTINUE, 4), (true, CONTINUE, 2)]
        );
    }

    #[test]
    fn a_short_or_empty_message_still_takes_two_frames() {
        let frames = fragments(Message::binary(vec![0xff; 3]), 3);
        assert_eq!(shape(&frames), [(false, BINARY, 3), (true, CONTINUE, 0)]);
        let frames = fragments(Message::text(""), 100);
        assert_eq!(shape(&frames), [(false, TEXT, 0), (true, CONTINUE, 0)]);
    }

    #[test]
    fn the_frames_carry_the_message_in_order() {
        let payload: Vec<u8> = (0..=255).collect();
        let frames = fragments(Message::binary(payload.clone()), 7);
        let joined: Vec<u8> = frames
            .iter()
            .flat_map(|m| match m {
                Message::Frame(f) => f.payload().to_vec(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(joined, payload);
    }

    #[test]
    fn control_messages_are_not_fragmented() {
        let ping = Message::Ping(Bytes::from_static(b"p"));
        assert_eq!(fragments(ping.clone(), 1), vec![ping]);
    }
}
