//! Outcomes: how a run ends. Exactly one per run, with a one-line detail.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// How a run ended, named in kebab-case in scenario files and results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Every message arrived intact and the connection closed cleanly (1000). With
    /// `stop-proxy-after`, also a session the stopped proxy cut (the detail says `cut:`).
    Delivered,
    /// The upgrade was answered with something other than 101 (detail: the status), or not
    /// answered at all before the connection closed.
    HandshakeRejected,
    /// A 101 arrived that the client must refuse (RFC 6455 §4.1): without a valid
    /// `Sec-WebSocket-Accept`, `Upgrade` or `Connection`, or naming an extension or a
    /// subprotocol the client did not ask for.
    HandshakeInvalid,
    /// The handshake (TCP, TLS and upgrade) did not finish within the client's timeout.
    HandshakeTimeout,
    /// The connection was refused: by an explicit proxy (detail: its status) or by the network.
    ConnectRefused,
    /// The TLS handshake failed.
    TlsFailed,
    /// The connection closed abnormally after the upgrade (detail: close code, time).
    Dropped,
    /// The connection closed abnormally while the workload was idle.
    IdleClosed,
    /// Bytes stopped arriving, with no close, for longer than the reply timeout; or the
    /// connection stayed open after the close handshake, or (`client-reset`) the server still
    /// held its side after the client's reset.
    Stalled,
    /// Delivered, but a latency bound failed.
    Degraded,
    /// A strategy's run delivered every message, on a transport other than the one it
    /// prefers: it fell back (`ws-then-wss` on wss, an Engine.IO session left on polling).
    /// The detail names the transport finally used.
    FellBack,
    /// Bytes arrived changed: a wrong echo, or data that is not a WebSocket frame (the client
    /// fails the connection with a Close 1002, 1007 or 1009), or a 101 or a refusal without
    /// what the server put in it (`[client.request]`'s `reply-fields`, `refuse`).
    Corrupted,
    /// A strategy's run with `[client.reconnect]` whose session was cut, and that reconnected
    /// and delivered every message. The detail says how many times and over what.
    Reconnected,
    /// A strategy's run with `[client.reconnect]` that reconnected and carried the workload
    /// to its end, but lost the messages due while it was disconnected
    /// (`while-disconnected = "drop"`). The detail says how many.
    Partial,
}

impl Outcome {
    /// Every outcome, in the order above.
    pub const ALL: [Outcome; 14] = [
        Outcome::Delivered,
        Outcome::HandshakeRejected,
        Outcome::HandshakeInvalid,
        Outcome::HandshakeTimeout,
        Outcome::ConnectRefused,
        Outcome::TlsFailed,
        Outcome::Dropped,
        Outcome::IdleClosed,
        Outcome::Stalled,
        Outcome::Degraded,
        Outcome::FellBack,
        Outcome::Corrupted,
        Outcome::Reconnected,
        Outcome::Partial,
    ];

    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::HandshakeRejected => "handshake-rejected",
            Outcome::HandshakeInvalid => "handshake-invalid",
            Outcome::HandshakeTimeout => "handshake-timeout",
            Outcome::ConnectRefused => "connect-refused",
            Outcome::TlsFailed => "tls-failed",
            Outcome::Dropped => "dropped",
            Outcome::IdleClosed => "idle-closed",
            Outcome::Stalled => "stalled",
            Outcome::Degraded => "degraded",
            Outcome::FellBack => "fell-back",
            Outcome::Corrupted => "corrupted",
            Outcome::Reconnected => "reconnected",
            Outcome::Partial => "partial",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of the outcomes' ([`Outcome::as_str`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown outcome `{name}`, expected one of {}", expected())]
pub struct UnknownOutcome {
    /// The name as given.
    pub name: String,
}

/// Every outcome's name, in order, comma-separated.
fn expected() -> String {
    let names: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
    names.join(", ")
}

impl FromStr for Outcome {
    type Err = UnknownOutcome;

    fn from_str(s: &str) -> Result<Self, UnknownOutcome> {
        Outcome::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| UnknownOutcome {
                name: s.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for o in Outcome::ALL {
            assert_eq!(o.as_str().parse::<Outcome>(), Ok(o));
        }
        let err = "lost".parse::<Outcome>().unwrap_err();
        assert_eq!(err.name, "lost");
        assert!(
            err.to_string().starts_with(
                "unknown outcome `lost`, expected one of delivered, handshake-rejected, "
            ),
            "{err}"
        );
    }
}
