//! What the reference client and server do when the peer breaks the protocol after the
//! opening handshake: _Fail the WebSocket Connection_ (RFC 6455 §7.1.7), which is a Close
//! frame with the status code the violation calls for (§7.4.1), then closing the TCP
//! connection, without processing anything more the peer sends.
//!
//! tungstenite detects the violations and reports them as errors: [`close_code`] maps an
//! error to its code, or to none when the error is not the peer's violation (the connection
//! failed, or it already closed). tungstenite leaves its sink usable after such an error
//! (its state is still open), so the Close goes out through it, masked on the client's side:
//! [`fail`] sends it, unless a Close already went out, and closes the transport's write side.

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// 1002: a frame the protocol does not allow (§7.4.1).
pub const PROTOCOL_ERROR: u16 = 1002;
/// 1007: a text message or a Close reason that is not UTF-8 (§7.4.1, §8.1).
pub const INVALID_PAYLOAD: u16 = 1007;
/// 1009: a frame or message larger than the endpoint takes (§7.4.1, §10.4).
pub const TOO_BIG: u16 = 1009;

/// The status code to fail the connection with after `e`, when `e` is the peer's violation
/// of the protocol: 1002 for framing (reserved bits without an extension, §5.2; masking the
/// wrong way, §5.1; a reserved opcode, §5.2; a control frame fragmented or over 125 bytes,
/// §5.5; a continuation with nothing to continue, or a new message inside a fragmented one,
/// §5.4; a one-byte Close, §5.5.1), 1007 for text or a Close reason that is not UTF-8 (§8.1),
/// 1009 for a frame or message over the limits (`ws_config`). `None` for everything else:
/// transport errors, a connection that ended without a Close, the close handshake already
/// under way. A Close carrying a code that must never be sent (1005, 1006, 1015, or outside
/// the ranges of §7.4.2) is no error here: tungstenite answers it with 1002 itself.
pub fn close_code(e: &WsError) -> Option<u16> {
    match e {
        WsError::Protocol(
            ProtocolError::NonZeroReservedBits
            | ProtocolError::UnmaskedFrameFromClient
            | ProtocolError::MaskedFrameFromServer
            | ProtocolError::FragmentedControlFrame
            | ProtocolError::ControlFrameTooBig
            | ProtocolError::UnknownControlFrameType(_)
            | ProtocolError::UnknownDataFrameType(_)
            | ProtocolError::UnexpectedContinueFrame
            | ProtocolError::ExpectedFragment(_)
            | ProtocolError::InvalidOpcode(_)
            | ProtocolError::InvalidCloseSequence,
        ) => Some(PROTOCOL_ERROR),
        WsError::Utf8(_) => Some(INVALID_PAYLOAD),
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => Some(TOO_BIG),
        _ => None,
    }
}

/// The Close frame's reason for `code`.
fn reason(code: u16) -> &'static str {
    match code {
        PROTOCOL_ERROR => "protocol error",
        INVALID_PAYLOAD => "invalid UTF-8",
        TOO_BIG => "message too big",
        _ => "",
    }
}

/// Fails the connection with `code`: a Close frame (none if a Close already went out: the
/// close handshake is then under way and only the TCP connection is left to close), then the
/// transport's write side closed (TLS close_notify, then FIN). The error is the Close's,
/// which only a broken transport causes.
pub async fn fail<S>(ws: &mut WebSocketStream<S>, code: u16) -> Result<(), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason(code).into(),
    };
    let sent = match ws.close(Some(frame)).await {
        Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Ok(()),
        other => other,
    };
    let _ = ws.get_mut().shutdown().await;
    sent
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::Data;

    #[test]
    fn violations_map_to_their_codes_and_the_rest_to_none() {
        let protocol = |p| close_code(&WsError::Protocol(p));
        assert_eq!(protocol(ProtocolError::NonZeroReservedBits), Some(1002));
        assert_eq!(protocol(ProtocolError::MaskedFrameFromServer), Some(1002));
        assert_eq!(
            protocol(ProtocolError::ExpectedFragment(Data::Text)),
            Some(1002)
        );
        assert_eq!(close_code(&WsError::Utf8("bad".into())), Some(1007));
        let big = CapacityError::MessageTooLong {
            size: 2,
            max_size: 1,
        };
        assert_eq!(close_code(&WsError::Capacity(big)), Some(1009));
        assert_eq!(protocol(ProtocolError::ResetWithoutClosingHandshake), None);
        assert_eq!(protocol(ProtocolError::ReceivedAfterClosing), None);
        assert_eq!(close_code(&WsError::ConnectionClosed), None);
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(close_code(&WsError::Io(reset)), None);
    }
}
