//! `[client.reconnect]`: what a strategy's client does when its session is cut: reconnect
//! after a backoff, as socket.io-client's Manager does, and what becomes of the messages due
//! while it is disconnected ([`Reconnect`]).

use std::time::Duration;

use serde::Deserialize;

/// What happens to the messages due while the client is disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WhileDisconnected {
    /// Kept and sent once reconnected: socket.io-client's `sendBuffer`, where `emit` puts
    /// packets while the socket is not connected; for pushes, the server sends again from
    /// the first one the client has not received, as a message log replayed from the last
    /// id seen would (Server-Sent Events' `Last-Event-ID`).
    #[default]
    Buffer,
    /// Lost: the messages whose time came while disconnected are never sent (volatile
    /// emits, `socket.volatile.emit`), counted as lost.
    Drop,
}

impl WhileDisconnected {
    /// The name scenario files use.
    pub fn as_str(self) -> &'static str {
        match self {
            WhileDisconnected::Buffer => "buffer",
            WhileDisconnected::Drop => "drop",
        }
    }
}

/// Reconnecting after a cut: socket.io-client 4.8's Manager options, with its defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconnect {
    /// Reconnection attempts in a row that may fail before the client gives up:
    /// `reconnectionAttempts`. socket.io-client's default is `Infinity`; a run needs an end,
    /// so the default here is 10 (about 45 s of attempts at the default delays).
    pub attempts: u32,
    /// The delay before the first attempt: `reconnectionDelay`, 1000 ms, doubled per failed
    /// attempt in a row (backo2's `factor` 2) and reset once a session opens.
    pub delay: Duration,
    /// The longest the delay grows: `reconnectionDelayMax`, 5000 ms.
    pub delay_max: Duration,
    /// How far each delay is drawn from it, either way, in thousandths:
    /// `randomizationFactor`, 0.5 (500); 0 for no jitter. The draws come from the run's seed.
    pub randomization_thousandths: u32,
    /// What becomes of the messages due while disconnected.
    pub while_disconnected: WhileDisconnected,
}

impl Default for Reconnect {
    fn default() -> Self {
        Self {
            attempts: 10,
            delay: Duration::from_millis(1000),
            delay_max: Duration::from_millis(5000),
            randomization_thousandths: 500,
            while_disconnected: WhileDisconnected::Buffer,
        }
    }
}

impl Reconnect {
    /// The delay before attempt `attempt` (0 for the first after a cut) from a draw `rand` in
    /// [0, 1), as socket.io-client's backoff computes it.
    pub fn backoff(&self, attempt: u32, rand: f64) -> Duration {
        backoff(
            self.delay,
            self.delay_max,
            self.randomization_thousandths,
            attempt,
            rand,
        )
    }

    /// The longest all the attempts can wait, for the run's time limit.
    pub fn longest_wait(&self) -> Duration {
        self.delay_max
            .saturating_mul(self.attempts.saturating_add(1))
    }
}

/// socket.io-client's backoff (`contrib/backo2.js`): `delay × 2^attempt`, less or more (by
/// the draw's first decimal digit being even or odd) `⌊rand × factor × that⌋`, at most
/// `max`; `factor` is `randomization_thousandths / 1000`.
pub fn backoff(
    delay: Duration,
    max: Duration,
    randomization_thousandths: u32,
    attempt: u32,
    rand: f64,
) -> Duration {
    let base = delay.as_millis() as f64 * 2f64.powi(attempt.min(60) as i32);
    let factor = f64::from(randomization_thousandths) / 1000.0;
    let deviation = (rand * factor * base).floor();
    let ms = if ((rand * 10.0).floor() as u64) & 1 == 0 {
        base - deviation
    } else {
        base + deviation
    };
    let max = max.as_millis() as f64;
    Duration::from_millis(ms.clamp(0.0, max) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_to_its_cap_and_jitter_goes_either_way() {
        let r = Reconnect::default();
        assert_eq!(r.backoff(0, 0.25), Duration::from_millis(875));
        assert_eq!(r.backoff(0, 0.35), Duration::from_millis(1175));
        assert_eq!(r.backoff(2, 0.0), Duration::from_millis(4000));
        assert_eq!(r.backoff(40, 0.99), Duration::from_millis(5000));
        let steady = Reconnect {
            randomization_thousandths: 0,
            ..r
        };
        assert_eq!(steady.backoff(0, 0.77), Duration::from_millis(1000));
    }
}
