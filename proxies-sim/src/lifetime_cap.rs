//! `lifetime-cap`: relays bytes opaquely and closes every connection at a maximum age, busy
//! or not: a total lifetime, not an idle timeout.
//!
//! Presets (calibration.md, idle and lifetime limits):
//!
//! | preset | max age | source |
//! |---|---|---|
//! | `gcp-backend` | 30 s | GCP HTTPS load balancer: the backend service timeout (30 s) is a total WebSocket lifetime |
//! | `front-door` | 4 h | Azure Front Door: maximum connection life 4 h |
//!
//! The close is a FIN to both sides (`close = "fin"`, no WebSocket Close frame: the client sees
//! 1006) or a reset (`close = "reset"`).

use std::time::Duration;

use serde::Deserialize;

use crate::model::{Connection, Cx, Event, Hop, Side};
use crate::pass::relay;
use crate::registry::{HopError, Model, ParamError, each};
use crate::spec::HopEnv;

/// The timer id the cap uses.
const AGE_TIMER: u64 = 1;

/// A product's lifetime limit.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// GCP HTTPS load balancer backend service timeout, 30 s.
    GcpBackend,
    /// Azure Front Door maximum life, 4 h.
    FrontDoor,
}

/// How the cap closes a connection.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Close {
    /// FIN both ways.
    #[default]
    Fin,
    /// RST both ways.
    Reset,
}

/// Parameters of `lifetime-cap`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(try_from = "RawParams")]
pub struct Params {
    /// The maximum age of a connection, from its accept.
    pub max_age: Duration,
    /// How it ends.
    pub close: Close,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawParams {
    preset: Option<Preset>,
    /// Milliseconds; required without a preset.
    max_age_ms: Option<u64>,
    #[serde(default)]
    close: Close,
}

impl TryFrom<RawParams> for Params {
    type Error = ParamError;

    fn try_from(raw: RawParams) -> Result<Self, ParamError> {
        let max_age = match (raw.max_age_ms, raw.preset) {
            (Some(0), _) => return Err(ParamError::Zero { key: "max-age-ms" }),
            (Some(ms), _) => Duration::from_millis(ms),
            (None, Some(Preset::GcpBackend)) => Duration::from_secs(30),
            (None, Some(Preset::FrontDoor)) => Duration::from_secs(4 * 3600),
            (None, None) => {
                return Err(ParamError::invalid(
                    "max-age-ms",
                    "lifetime-cap needs `max-age-ms` (milliseconds) or a `preset` (gcp-backend, front-door)",
                ));
            }
        };
        Ok(Params {
            max_age,
            close: raw.close,
        })
    }
}

impl Model for Params {
    const NAME: &'static str = "lifetime-cap";
    const DESCRIPTION: &'static str =
        "relays opaquely; closes every connection at a maximum age, busy or not";
    const PARAMETERS: &'static str = concat!(
        "`preset` (`gcp-backend`: 30 s; `front-door`: 4 h), `max-age-ms`, `close`: `fin` ",
        "(default) or `reset`",
    );

    fn hop(&self, _: &HopEnv) -> Result<Box<dyn Hop>, HopError> {
        each(self, |p| LifetimeCap::new(p.clone()))
    }

    fn summary(&self) -> String {
        format!(
            "lifetime-cap max-age={}ms close={}",
            self.max_age.as_millis(),
            match self.close {
                Close::Fin => "fin",
                Close::Reset => "reset",
            }
        )
    }
}

/// A connection through `lifetime-cap`.
#[derive(Debug)]
pub struct LifetimeCap {
    params: Params,
    expired: bool,
    closed: [bool; 2],
}

impl LifetimeCap {
    /// A fresh connection.
    pub fn new(params: Params) -> Self {
        Self {
            params,
            expired: false,
            closed: [false; 2],
        }
    }
}

impl Connection for LifetimeCap {
    fn on_event(&mut self, cx: &mut Cx, event: Event<'_>) {
        if self.expired {
            if let Event::Data { from, bytes } = event {
                cx.note(format!(
                    "discarded {} bytes from {} after the lifetime cap",
                    bytes.len(),
                    from.as_str()
                ));
            }
            return;
        }
        match event {
            Event::Accepted { .. } => {
                let at = cx.now() + self.params.max_age;
                cx.set_timer(AGE_TIMER, at);
            }
            Event::Timer { id: AGE_TIMER } => {
                self.expired = true;
                cx.note(format!(
                    "connection reached its maximum age of {} ms: closing",
                    self.params.max_age.as_millis()
                ));
                for side in [Side::Client, Side::Upstream] {
                    if !self.closed[side.index()] {
                        match self.params.close {
                            Close::Fin => cx.fin(side),
                            Close::Reset => cx.reset(side),
                        }
                    }
                }
                return;
            }
            Event::Fin { from } => self.closed[from.index()] = true,
            Event::Reset { .. } | Event::DialFailed { .. } => self.closed = [true; 2],
            _ => {}
        }
        relay(cx, event);
        if self.closed == [true; 2] {
            cx.cancel_timer(AGE_TIMER);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, CloseHow};

    fn cap(close: Close) -> (LifetimeCap, Cx) {
        let mut cx = Cx::new(1);
        cx.set_now(Duration::from_millis(7));
        let mut c = LifetimeCap::new(Params {
            max_age: Duration::from_secs(30),
            close,
        });
        c.on_event(&mut cx, Event::Accepted { port: 80 });
        (c, cx)
    }

    #[test]
    fn traffic_does_not_extend_the_lifetime() {
        let (mut c, mut cx) = cap(Close::Fin);
        assert_eq!(
            cx.take_actions()[0],
            Action::SetTimer {
                id: AGE_TIMER,
                at: Duration::from_millis(30_007)
            }
        );
        c.on_event(
            &mut cx,
            Event::Data {
                from: Side::Client,
                bytes: b"busy",
            },
        );
        assert!(
            !cx.take_actions()
                .iter()
                .any(|a| matches!(a, Action::SetTimer { .. }))
        );
    }

    #[test]
    fn at_the_maximum_age_both_sides_are_closed_as_configured() {
        for (close, how) in [(Close::Fin, CloseHow::Fin), (Close::Reset, CloseHow::Reset)] {
            let (mut c, mut cx) = cap(close);
            c.on_event(&mut cx, Event::Dialed);
            cx.take_actions();
            c.on_event(&mut cx, Event::Timer { id: AGE_TIMER });
            let closes: Vec<Action> = cx
                .take_actions()
                .into_iter()
                .filter(|a| matches!(a, Action::Close { .. }))
                .collect();
            assert_eq!(
                closes,
                vec![
                    Action::Close {
                        side: Side::Client,
                        how
                    },
                    Action::Close {
                        side: Side::Upstream,
                        how
                    }
                ]
            );
        }
    }

    #[test]
    fn a_connection_that_ends_first_cancels_the_timer() {
        let (mut c, mut cx) = cap(Close::Fin);
        c.on_event(&mut cx, Event::Reset { from: Side::Client });
        assert!(
            cx.take_actions()
                .contains(&Action::CancelTimer { id: AGE_TIMER })
        );
    }
}
