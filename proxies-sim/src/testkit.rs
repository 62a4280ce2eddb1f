//! Helpers the models' unit tests share: reading actions back.

use crate::model::{Action, CloseHow, Connection, Cx, Event, Side};

/// Every byte sent toward `to`, concatenated in order.
pub fn sent(actions: &[Action], to: Side) -> Vec<u8> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { to: t, bytes } if *t == to => Some(bytes.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Every close, in order.
pub fn closes(actions: &[Action]) -> Vec<(Side, CloseHow)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Close { side, how } => Some((*side, *how)),
            _ => None,
        })
        .collect()
}

/// Every transcript note, in order.
pub fn notes(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Note(n) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

/// What a model does with a client that sends `request` and FIN before the upstream dial
/// completes, when the upstream then sends `answer` (a complete response) and FIN, or never
/// answers, or cannot be reached; with a client that FINs only after the upstream has answered
/// and closed; and with a client that connects and FINs at once. Returns
/// what went wrong, if anything: every such connection must end with both sides closed by the
/// model, and, unless `answer` opens a tunnel, as soon as the answer is relayed, without waiting
/// for the upstream's FIN.
pub fn half_closed_client(
    make: &mut dyn FnMut() -> Box<dyn Connection>,
    port: u16,
    request: &[u8],
    answer: &[u8],
    tunnels: bool,
) -> Vec<String> {
    let mut wrong = Vec::new();
    let both = |actions: &[Action]| {
        let c = closes(actions);
        let count = |side| c.iter().filter(|(s, _)| *s == side).count();
        (count(Side::Client), count(Side::Upstream))
    };
    let run = |c: &mut dyn Connection, cx: &mut Cx, events: &[Event<'_>]| -> Vec<Action> {
        for e in events {
            c.on_event(cx, e.clone());
        }
        cx.take_actions()
    };
    let start = [
        Event::Accepted { port },
        Event::Data {
            from: Side::Client,
            bytes: request,
        },
        Event::Fin { from: Side::Client },
    ];

    let (mut c, mut cx) = (make(), Cx::new(1));
    let mut answered = run(&mut *c, &mut cx, &start);
    answered.extend(run(
        &mut *c,
        &mut cx,
        &[
            Event::Dialed,
            Event::Data {
                from: Side::Upstream,
                bytes: answer,
            },
        ],
    ));
    let status = &answer[..answer.iter().position(|&b| b == b'\r').unwrap_or(0)];
    if !sent(&answered, Side::Client).starts_with(status) {
        wrong.push(format!(
            "the answer did not reach the client: {:?}",
            notes(&answered)
        ));
    }
    if !tunnels && both(&answered) != (1, 1) {
        wrong.push(format!(
            "once the answer is relayed both sides should be closed, once each: {:?} ({:?})",
            closes(&answered),
            notes(&answered)
        ));
    }
    let after = run(
        &mut *c,
        &mut cx,
        &[Event::Fin {
            from: Side::Upstream,
        }],
    );
    let all = [answered, after].concat();
    if both(&all) != (1, 1) {
        wrong.push(format!(
            "after the upstream's FIN both sides should be closed, once each: {:?} ({:?})",
            closes(&all),
            notes(&all)
        ));
    }

    let (mut c, mut cx) = (make(), Cx::new(1));
    let mut first = run(&mut *c, &mut cx, &start[..2]);
    first.extend(run(
        &mut *c,
        &mut cx,
        &[
            Event::Dialed,
            Event::Data {
                from: Side::Upstream,
                bytes: answer,
            },
            Event::Fin {
                from: Side::Upstream,
            },
            Event::Fin { from: Side::Client },
        ],
    ));
    if both(&first) != (1, 1) {
        wrong.push(format!(
            "when the upstream closes first, then the client, both sides should be closed, once each: {:?} ({:?})",
            closes(&first),
            notes(&first)
        ));
    }

    let (mut c, mut cx) = (make(), Cx::new(1));
    let mut silent = run(&mut *c, &mut cx, &start);
    silent.extend(run(&mut *c, &mut cx, &[Event::Dialed]));
    if both(&silent).1 != 1 {
        wrong.push(format!(
            "with no answer yet the upstream should have its FIN: {:?}",
            closes(&silent)
        ));
    }

    let (mut c, mut cx) = (make(), Cx::new(1));
    let mut failed = run(&mut *c, &mut cx, &start);
    failed.extend(run(
        &mut *c,
        &mut cx,
        &[Event::DialFailed { reason: "refused" }],
    ));
    if both(&failed).0 != 1 {
        wrong.push(format!(
            "after a failed dial the client should be closed: {:?}",
            closes(&failed)
        ));
    }

    let (mut c, mut cx) = (make(), Cx::new(1));
    let idle = run(
        &mut *c,
        &mut cx,
        &[Event::Accepted { port }, Event::Fin { from: Side::Client }],
    );
    if both(&idle).0 != 1 {
        wrong.push(format!(
            "a client that closes before sending anything should be closed: {:?}",
            closes(&idle)
        ));
    }
    wrong
}

/// Lets `conn`'s header timer run out (at [`crate::http::HEADER_TIMEOUT`]) and gives the
/// actions that follow.
pub fn header_timer_runs_out(conn: &mut dyn Connection, cx: &mut Cx) -> Vec<Action> {
    cx.set_now(crate::http::HEADER_TIMEOUT);
    conn.on_event(
        cx,
        Event::Timer {
            id: crate::http::HEADER_TIMER,
        },
    );
    cx.take_actions()
}
