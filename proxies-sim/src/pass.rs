//! `pass`: the identity intermediary. Dials upstream on the port it was reached on and relays
//! bytes, FINs and resets unchanged both ways. The baseline every other model is compared with.

use serde::Deserialize;

use crate::model::{Connection, Cx, Event, Hop, Side};
use crate::registry::{HopError, Model, each};
use crate::spec::HopEnv;

/// `pass` takes no parameters.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Params {}

impl Model for Params {
    const NAME: &'static str = "pass";
    const DESCRIPTION: &'static str = "relays bytes, FIN and RST unchanged: the baseline";

    fn hop(&self, _: &HopEnv) -> Result<Box<dyn Hop>, HopError> {
        each(self, |_| Pass)
    }
}

/// A connection through `pass`.
#[derive(Debug, Default)]
pub struct Pass;

impl Connection for Pass {
    fn on_event(&mut self, cx: &mut Cx, event: Event<'_>) {
        relay(cx, event);
    }
}

/// Opaque relaying, shared by every model that tunnels bytes it does not understand: dial on
/// accept, copy bytes, carry FIN and RST across, reset the client if the dial fails.
pub fn relay(cx: &mut Cx, event: Event<'_>) {
    match event {
        Event::Accepted { port } => cx.dial(port),
        Event::Dialed | Event::Timer { .. } => {}
        Event::DialFailed { reason } => {
            cx.note(format!(
                "upstream dial failed ({reason}): resetting the client"
            ));
            cx.reset(Side::Client);
        }
        Event::Data { from, bytes } => cx.send(from.other(), bytes),
        Event::Fin { from } => cx.fin(from.other()),
        Event::Reset { from } => cx.reset(from.other()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, CloseHow};

    #[test]
    fn pass_dials_on_the_accepted_port_and_relays_both_ways() {
        let mut cx = Cx::new(1);
        let mut conn = Pass;
        conn.on_event(&mut cx, Event::Accepted { port: 443 });
        conn.on_event(
            &mut cx,
            Event::Data {
                from: Side::Client,
                bytes: b"hello",
            },
        );
        conn.on_event(
            &mut cx,
            Event::Data {
                from: Side::Upstream,
                bytes: b"world",
            },
        );
        conn.on_event(
            &mut cx,
            Event::Fin {
                from: Side::Upstream,
            },
        );
        conn.on_event(&mut cx, Event::Reset { from: Side::Client });
        assert_eq!(
            cx.take_actions(),
            vec![
                Action::Dial {
                    backend: 0,
                    port: 443
                },
                Action::Send {
                    to: Side::Upstream,
                    bytes: b"hello".to_vec()
                },
                Action::Send {
                    to: Side::Client,
                    bytes: b"world".to_vec()
                },
                Action::Close {
                    side: Side::Client,
                    how: CloseHow::Fin
                },
                Action::Close {
                    side: Side::Upstream,
                    how: CloseHow::Reset
                },
            ]
        );
    }

    #[test]
    fn pass_resets_the_client_when_the_dial_fails() {
        let mut cx = Cx::new(1);
        Pass.on_event(&mut cx, Event::DialFailed { reason: "refused" });
        let actions = cx.take_actions();
        assert!(matches!(actions[0], Action::Note(_)));
        assert_eq!(
            actions[1],
            Action::Close {
                side: Side::Client,
                how: CloseHow::Reset
            }
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::model::Action;

    proptest! {
        /// Whatever the segmentation, `pass` delivers exactly the bytes it received, in order.
        #[test]
        fn pass_preserves_bytes_under_any_segmentation(
            data in proptest::collection::vec(any::<u8>(), 0..2048),
            cuts in proptest::collection::vec(1usize..64, 0..40),
        ) {
            let mut cx = Cx::new(1);
            let mut conn = Pass;
            conn.on_event(&mut cx, Event::Accepted { port: 80 });
            let mut rest = &data[..];
            for cut in cuts.iter().copied().chain(std::iter::repeat(64)) {
                if rest.is_empty() { break; }
                let (segment, tail) = rest.split_at(cut.min(rest.len()));
                conn.on_event(&mut cx, Event::Data { from: Side::Client, bytes: segment });
                rest = tail;
            }
            let relayed: Vec<u8> = cx
                .take_actions()
                .into_iter()
                .filter_map(|a| match a {
                    Action::Send { to: Side::Upstream, bytes } => Some(bytes),
                    _ => None,
                })
                .flatten()
                .collect();
            prop_assert_eq!(relayed, data);
        }
    }
}
