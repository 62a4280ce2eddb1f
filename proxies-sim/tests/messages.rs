//! Every model that reads HTTP reads messages the same way, because every one of them stands
//! on the one message layer (`gauntlet_proxies::http::Messages`): an interim response (RFC 9110
//! §15.2) reaches the client ahead of its final response and leaves the request waiting for
//! it; bodies framed by length and by chunked coding are relayed whole however the network
//! cuts them; the next request on the connection is then read and answered.

use gauntlet_proxies::{Action, Connection, Cx, Event, HopEnv, ModelSpec, Side};

/// Every model that reads HTTP, as a hop table, with the port it reads on and the target its
/// requests name (a forward proxy is sent absolute-form targets).
const HTTP_MODELS: &[(&str, u16, &str)] = &[
    ("model = 'transparent-proxy'\nbehaviour = 'strip'", 80, "/"),
    (
        "model = 'transparent-proxy'\nbehaviour = 'forward-then-choke'",
        80,
        "/",
    ),
    (
        "model = 'header-mangler'\nadd-via = '1.1 gauntlet'",
        80,
        "/",
    ),
    ("model = 'l7-balancer'\nterminate-tls = false", 80, "/"),
    (
        "model = 'l7-balancer'\npreset = 'nginx'\nterminate-tls = false",
        80,
        "/",
    ),
    (
        "model = 'connect-proxy'\npreset = 'tinyproxy'",
        3128,
        "http://server/",
    ),
    ("model = 'caching-proxy'", 80, "/"),
    ("model = 'buffering-proxy'", 80, "/"),
    (
        "model = 'buffering-proxy'\npreset = 'antivirus-hold-until-close'",
        80,
        "/",
    ),
];

fn connection(hop: &str) -> Box<dyn Connection> {
    let spec: ModelSpec = toml::from_str(hop).unwrap_or_else(|e| panic!("{hop}: {e}"));
    spec.hop(&HopEnv::default())
        .unwrap_or_else(|e| panic!("{hop}: {e}"))
        .connection()
}

/// What the connection sent each side, and whether it dialed.
#[derive(Default)]
struct Seen {
    client: Vec<u8>,
    upstream: Vec<u8>,
    dialed: bool,
    closed: Vec<String>,
    notes: Vec<String>,
}

impl Seen {
    /// What the client got, without the `Via` fields a proxy adds (RFC 9110 §7.6.3).
    fn client(&self) -> Vec<u8> {
        let text = String::from_utf8_lossy(&self.client);
        text.split_inclusive("\r\n")
            .filter(|line| !line.starts_with("Via: "))
            .collect::<String>()
            .into_bytes()
    }

    fn take(&mut self, cx: &mut Cx) {
        for action in cx.take_actions() {
            match action {
                Action::Send {
                    to: Side::Client,
                    bytes,
                } => self.client.extend(bytes),
                Action::Send {
                    to: Side::Upstream,
                    bytes,
                } => self.upstream.extend(bytes),
                Action::Dial { .. } | Action::DialNamed { .. } => self.dialed = true,
                Action::Close { side, how } => self.closed.push(format!("{side:?} {how:?}")),
                Action::Note(note) => self.notes.push(note),
                _ => {}
            }
        }
    }
}

/// Feeds `bytes` from `from` in pieces of `piece` bytes.
fn feed(
    c: &mut dyn Connection,
    cx: &mut Cx,
    seen: &mut Seen,
    from: Side,
    bytes: &[u8],
    piece: usize,
) {
    for chunk in bytes.chunks(piece) {
        c.on_event(cx, Event::Data { from, bytes: chunk });
        seen.take(cx);
    }
}

const INTERIM: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
const FINAL: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
const CHUNKED: &[u8] =
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=1\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n";

fn post(target: &str) -> Vec<u8> {
    format!("POST {target} HTTP/1.1\r\nHost: server\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody").into_bytes()
}

fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: server\r\n\r\n").into_bytes()
}

/// Whether `hay` holds `needle`.
fn holds(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn an_interim_response_then_bodies_of_every_framing_reach_the_client_through_every_model() {
    let mut wrong = Vec::new();
    for &(hop, port, target) in HTTP_MODELS {
        for piece in [1, 7, 4096] {
            let name = format!("{} in pieces of {piece}", hop.replace('\n', " "));
            let mut c = connection(hop);
            let mut cx = Cx::new(1);
            let mut seen = Seen::default();
            c.on_event(&mut cx, Event::Accepted { port });
            seen.take(&mut cx);
            feed(
                &mut *c,
                &mut cx,
                &mut seen,
                Side::Client,
                &post(target),
                piece,
            );
            if !seen.dialed {
                wrong.push(format!(
                    "{name}: the POST was not forwarded: {:?}",
                    seen.notes
                ));
                continue;
            }
            c.on_event(&mut cx, Event::Dialed);
            seen.take(&mut cx);
            let answer = [INTERIM, FINAL].concat();
            feed(&mut *c, &mut cx, &mut seen, Side::Upstream, &answer, piece);
            if !seen.client().ends_with(&answer) || !seen.closed.is_empty() {
                wrong.push(format!(
                    "{name}: the client got {:?} then {:?}, notes {:?}",
                    String::from_utf8_lossy(&seen.client),
                    seen.closed,
                    seen.notes
                ));
                continue;
            }
            let before = seen.upstream.len();
            feed(
                &mut *c,
                &mut cx,
                &mut seen,
                Side::Client,
                &get(target),
                piece,
            );
            if !holds(&seen.upstream[before..], b"GET ") {
                wrong.push(format!(
                    "{name}: the next request was not forwarded after the final response: {:?}",
                    seen.notes
                ));
                continue;
            }
            let before = seen.client().len();
            feed(&mut *c, &mut cx, &mut seen, Side::Upstream, CHUNKED, piece);
            if seen.client()[before..] != *CHUNKED || !seen.closed.is_empty() {
                wrong.push(format!(
                    "{name}: the chunked response arrived as {:?} then {:?}, notes {:?}",
                    String::from_utf8_lossy(&seen.client()[before..]),
                    seen.closed,
                    seen.notes
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
