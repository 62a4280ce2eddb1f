//! The codec against the protocol document's examples, its errors, and properties: every
//! packet comes back from its encodings, and no input makes a decoder panic.

use proptest::prelude::*;

use super::*;

fn message(text: &str) -> Packet {
    Packet::message(text)
}

#[test]
fn the_documents_polling_payloads() {
    let examples: [(&[u8], Vec<Packet>); 2] = [
        (
            b"4hello\x1e2\x1e4world",
            vec![
                message("hello"),
                Packet::bare(PacketType::Ping),
                message("world"),
            ],
        ),
        (
            b"4hello\x1ebAQIDBA==",
            vec![message("hello"), Packet::Binary(vec![1, 2, 3, 4])],
        ),
    ];
    for (payload, packets) in examples {
        assert_eq!(decode_payload(payload).as_ref(), Ok(&packets));
        let encoded = encode_payload(&packets).expect("encodable");
        assert_eq!(encoded.as_bytes(), payload);
    }
}

#[test]
fn base64_without_padding_is_read_as_nodes_decoder_reads_it() {
    assert_eq!(
        Packet::decode_text("bAQIDBA"),
        Ok(Packet::Binary(vec![1, 2, 3, 4]))
    );
    assert_eq!(Packet::decode_text("b"), Ok(Packet::Binary(Vec::new())));
}

#[test]
fn over_a_websocket_text_packets_are_text_and_binary_ones_as_they_are() {
    assert_eq!(message("hello").to_frame(), Frame::Text("4hello".into()));
    assert_eq!(
        Packet::Binary(vec![1, 2, 3, 4]).to_frame(),
        Frame::Binary(vec![1, 2, 3, 4])
    );
    assert_eq!(
        Packet::from_frame(Frame::Text("2probe".into())),
        Ok(Packet::Text(PacketType::Ping, "probe".into()))
    );
    assert!(
        Packet::from_frame(Frame::Text("3probe".into()))
            .is_ok_and(|p| p.is(PacketType::Pong, "probe"))
    );
    assert_eq!(
        Packet::from_frame(Frame::Binary(vec![0xff])),
        Ok(Packet::Binary(vec![0xff]))
    );
    assert_eq!(
        Packet::bare(PacketType::Upgrade).to_frame(),
        Frame::Text("5".into())
    );
}

#[test]
fn the_documents_open_packet() {
    let json = r#"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
    let packet = Packet::decode_text(&format!("0{json}")).expect("a packet");
    let handshake = Handshake::from_packet(&packet).expect("a handshake");
    assert_eq!(
        handshake,
        Handshake {
            sid: "lv_VI97HAXpY6yYWAAAC".into(),
            upgrades: vec!["websocket".into()],
            ping_interval: 25000,
            ping_timeout: 20000,
            max_payload: 1_000_000,
        }
    );
    assert_eq!(handshake.to_packet(), packet, "the same JSON, key for key");
    assert!(matches!(
        Handshake::from_packet(&Packet::decode_text("0{}").expect("a packet")),
        Err(DecodeError::Handshake(_))
    ));
    assert_eq!(
        Handshake::from_packet(&Packet::bare(PacketType::Noop)),
        Err(DecodeError::NotOpen("noop"))
    );
}

#[test]
fn errors_name_what_is_wrong() {
    assert_eq!(Packet::decode_text(""), Err(DecodeError::Empty));
    assert_eq!(
        Packet::decode_text("abc"),
        Err(DecodeError::UnknownType('a'))
    );
    assert_eq!(Packet::decode_text("7"), Err(DecodeError::UnknownType('7')));
    assert_eq!(
        Packet::decode_text("été"),
        Err(DecodeError::UnknownType('é'))
    );
    assert!(matches!(
        Packet::decode_text("b!!"),
        Err(DecodeError::Base64(_))
    ));
    assert_eq!(decode_payload(b""), Err(DecodeError::Empty));
    assert_eq!(decode_payload(b"4a\x1e"), Err(DecodeError::Empty));
    assert_eq!(decode_payload(b"4\xff"), Err(DecodeError::NotUtf8));
    assert_eq!(
        DecodeError::UnknownType('a').to_string(),
        "unknown packet type 'a'"
    );
    let packets = [message("a\x1eb")];
    assert_eq!(
        encode_payload(&packets),
        Err(EncodeError::Separator("message"))
    );
}

#[test]
fn a_payloads_packets_come_one_at_a_time_up_to_the_first_error() {
    let read: Vec<_> = payload_packets(b"4a\x1exyz\x1e4b").collect();
    assert_eq!(
        read,
        vec![
            Ok(message("a")),
            Err(DecodeError::UnknownType('x')),
            Ok(message("b"))
        ]
    );
    assert_eq!(
        decode_payload(b"4a\x1exyz\x1e4b"),
        Err(DecodeError::UnknownType('x'))
    );
}

#[test]
fn error_bodies_are_engine_ios() {
    let body = ErrorBody::new(ErrorCode::SessionIdUnknown);
    assert_eq!(body.json(), r#"{"code":1,"message":"Session ID unknown"}"#);
    let read: ErrorBody = serde_json::from_str(&body.json()).expect("JSON");
    assert_eq!(read.error_code(), Some(ErrorCode::SessionIdUnknown));
    let messages: Vec<(u8, &str, u16)> = ErrorCode::ALL
        .iter()
        .map(|c| (c.number(), c.message(), c.status()))
        .collect();
    assert_eq!(
        messages,
        vec![
            (0, "Transport unknown", 400),
            (1, "Session ID unknown", 400),
            (2, "Bad handshake method", 400),
            (3, "Bad request", 400),
            (4, "Forbidden", 403),
            (5, "Unsupported protocol version", 400),
        ]
    );
    assert_eq!(ErrorCode::from_number(6), None);
}

#[test]
fn types_are_their_digits() {
    for (i, kind) in PacketType::ALL.iter().enumerate() {
        assert_eq!(usize::from(kind.digit() - b'0'), i);
        assert_eq!(PacketType::from_digit(kind.digit()), Some(*kind));
    }
    assert_eq!(PacketType::from_digit(b'7'), None);
    assert_eq!(PacketType::from_digit(b'/'), None);
}

fn any_kind() -> impl Strategy<Value = PacketType> {
    proptest::sample::select(PacketType::ALL.to_vec())
}

/// Any packet; text without the record separator when `polling`.
fn any_packet(polling: bool) -> impl Strategy<Value = Packet> {
    let text = if polling {
        "[^\u{1e}]{0,40}"
    } else {
        "\\PC{0,40}"
    };
    prop_oneof![
        (any_kind(), text).prop_map(|(k, d)| Packet::Text(k, d)),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Packet::Binary),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A packet comes back from its WebSocket message.
    #[test]
    fn a_packet_survives_a_websocket(packet in any_packet(false)) {
        prop_assert_eq!(Packet::from_frame(packet.to_frame()), Ok(packet));
    }

    /// Packets come back from their polling payload, in order.
    #[test]
    fn packets_survive_a_payload(packets in proptest::collection::vec(any_packet(true), 1..8)) {
        let payload = encode_payload(&packets).expect("no separator in the text");
        prop_assert_eq!(decode_payload(payload.as_bytes()), Ok(packets));
    }

    /// A handshake comes back from its open packet.
    #[test]
    fn a_handshake_survives_its_packet(
        sid in "[A-Za-z0-9_-]{0,24}",
        ping_interval in any::<u32>(),
        ping_timeout in any::<u32>(),
        max_payload in any::<u64>(),
        upgrade in any::<bool>(),
    ) {
        let handshake = Handshake {
            sid,
            upgrades: if upgrade { vec!["websocket".into()] } else { Vec::new() },
            ping_interval: u64::from(ping_interval),
            ping_timeout: u64::from(ping_timeout),
            max_payload,
        };
        let packet = Packet::decode_text(match &handshake.to_packet().to_frame() {
            Frame::Text(text) => text,
            Frame::Binary(_) => unreachable!("an open packet is text"),
        });
        prop_assert_eq!(Handshake::from_packet(&packet.expect("a packet")), Ok(handshake));
    }

    /// Any bytes decode to packets or an error, never a panic.
    #[test]
    fn any_bytes_decode_or_fail(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_payload(&bytes);
        let _ = payload_packets(&bytes).count();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Ok(packet) = Packet::from_frame(Frame::Text(text)) {
            let _ = Handshake::from_packet(&packet);
        }
    }

    /// Any text starting with a packet type, `b` included, decodes or fails, never panics.
    #[test]
    fn any_typed_text_decodes_or_fails(first in "[0-9b]", rest in "\\PC{0,60}") {
        let _ = Packet::decode_text(&format!("{first}{rest}"));
    }
}
