//! The attacker's endpoint on the reference server, after the 101: frames read by hand,
//! masked or not; a frame carrying an HTTP request is answered raw with the attacker's
//! script.

use gauntlet_proxies::http::{self, Parsed};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{MAX_HEAD, attacker_response, encode, opcode, printable};
use crate::endpoints::frames::{Decoded, decode};
use crate::engine::NetRef;
use crate::verdict::transcript::Transcript;

/// The attacker's endpoint on the reference server, after the 101: reads frames by hand
/// (masked or not), answers any text or binary frame whose payload is an HTTP request with
/// [`attacker_response`], raw, and answers a Close with a Close.
pub async fn attacker_endpoint<S>(net: NetRef, mut io: S, t: Transcript)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let who = net.host().to_string();
    let log = |what: String| t.log(net.now(), &who, format!("attacker endpoint: {what}"));
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        loop {
            match decode(&buf) {
                Decoded::Partial => break,
                Decoded::Invalid(reason) => {
                    log(format!(
                        "{} bytes that are not a WebSocket frame ({reason}): closing",
                        buf.len()
                    ));
                    let _ = io.shutdown().await;
                    return;
                }
                Decoded::Frame(frame, len) => {
                    buf.drain(..len);
                    let masked = if frame.masked { "masked" } else { "unmasked" };
                    match frame.opcode {
                        opcode::TEXT | opcode::BINARY => {
                            match http::parse_request(&frame.payload, MAX_HEAD) {
                                Parsed::Complete(head, _) => {
                                    let host = head
                                        .get("host")
                                        .map(|h| format!(", Host: {}", String::from_utf8_lossy(h)))
                                        .unwrap_or_default();
                                    log(format!(
                                        "{masked} frame carries the request `{}`{host}: answering it raw with the attacker's script",
                                        printable(&frame.payload)
                                    ));
                                    if let Err(e) = io.write_all(&attacker_response()).await {
                                        log(format!("answer failed: {e}"));
                                        return;
                                    }
                                }
                                _ => log(format!(
                                    "ignored a {masked} {}-byte frame that carries no request",
                                    frame.payload.len()
                                )),
                            }
                        }
                        opcode::CLOSE => {
                            let code: Vec<u8> = frame.payload.iter().take(2).copied().collect();
                            log(format!("{masked} close received, replying"));
                            let _ = io.write_all(&encode(opcode::CLOSE, &code, None)).await;
                            let _ = io.shutdown().await;
                            log("closed".to_string());
                            return;
                        }
                        _ => {}
                    }
                }
            }
        }
        match io.read(&mut chunk).await {
            Ok(0) => {
                log("the client closed the connection".to_string());
                let _ = io.shutdown().await;
                return;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => {
                log(format!("read failed: {e}"));
                return;
            }
        }
    }
}
