//! Micro-benchmarks of the models' hot paths, driven in memory as the driver would: events in,
//! actions drained after each one.
//!
//! - `http_head/parse`: a WebSocket upgrade request head through `http::parse_request`, the
//!   parser every HTTP-reading model uses.
//! - `http_head/strip`: the same head through a fresh `transparent-proxy` (`behaviour =
//!   "strip"`) connection on port 80: parse, strip the hop-by-hop fields, serialise, note.
//! - `relay/pass/N` and `relay/transparent-proxy/N`: after the handshake has passed through the
//!   model, one masked client frame with an N-byte payload per iteration, client to upstream.
//!
//! `transparent-proxy` tunnels nothing on a port it reads as HTTP: every behaviour either
//! strips the upgrade or reads the first frame as a request. It relays a port it does not
//! intercept opaquely (wss on 443 with the default `intercept-ports = [80]`), so that is the
//! path `relay/transparent-proxy` measures.
//!
//! Run with `cargo bench -p gauntlet-proxies --bench models`.

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gauntlet_proxies::http::{self, Parsed};
use gauntlet_proxies::rng::Rng;
use gauntlet_proxies::ws_frames::{self, opcode};
use gauntlet_proxies::{Action, Connection, Cx, Event, HopEnv, ModelSpec, Side};

/// A browser's WebSocket upgrade request: 13 fields, 462 bytes.
const REQUEST: &[u8] = b"GET /chat?room=lobby HTTP/1.1\r\n\
Host: server.example\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: */*\r\n\
Accept-Language: en-GB,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate\r\n\
Origin: http://server.example\r\n\
Cache-Control: no-cache\r\n\
Pragma: no-cache\r\n\
Connection: keep-alive, Upgrade\r\n\
Upgrade: websocket\r\n\
Sec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate\r\n\
\r\n";

/// The server's answer to [`REQUEST`].
const SWITCH: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
\r\n";

/// The longest head the parser accepts, as every model's default.
const MAX_HEAD: usize = http::MAX_HEAD_BYTES;

/// Frame payload sizes relayed.
const PAYLOADS: &[usize] = &[16, 1024, 64 * 1024];

/// A fresh connection of the model a scenario file's hop table describes.
fn connection(hop: &str) -> Box<dyn Connection> {
    let spec: ModelSpec = toml::from_str(hop).unwrap_or_else(|e| panic!("`{hop}`: {e}"));
    spec.hop(&HopEnv::default())
        .unwrap_or_else(|e| panic!("`{hop}`: {e}"))
        .connection()
}

/// Every byte the actions send toward `to`, in order.
fn sent(actions: &[Action], to: Side) -> Vec<u8> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { to: t, bytes } if *t == to => Some(bytes.as_slice()),
            _ => None,
        })
        .flatten()
        .copied()
        .collect()
}

fn data(conn: &mut dyn Connection, cx: &mut Cx, from: Side, bytes: &[u8]) {
    conn.on_event(cx, Event::Data { from, bytes });
}

fn http_head(c: &mut Criterion) {
    let mut group = c.benchmark_group("http_head");
    group.throughput(Throughput::Bytes(REQUEST.len() as u64));

    match http::parse_request(REQUEST, MAX_HEAD) {
        Parsed::Complete(head, len) => {
            assert_eq!(len, REQUEST.len());
            assert_eq!(head.fields.len(), 13);
            assert_eq!(len, 462);
        }
        other => panic!("the request head does not parse: {other:?}"),
    }
    group.bench_function("parse", |b| {
        b.iter(|| http::parse_request(black_box(REQUEST), MAX_HEAD))
    });

    // One request through a fresh connection, in the order a driver delivers the events: the
    // model dials once it has read the head.
    let strip = "model = 'transparent-proxy'\nbehaviour = 'strip'";
    let through = |mut conn: Box<dyn Connection>| {
        let mut cx = Cx::new(1);
        conn.on_event(&mut cx, Event::Accepted { port: 80 });
        data(conn.as_mut(), &mut cx, Side::Client, black_box(REQUEST));
        conn.on_event(&mut cx, Event::Dialed);
        (conn, cx.take_actions())
    };
    let (_, actions) = through(connection(strip));
    assert!(actions.contains(&Action::Dial {
        backend: 0,
        port: 80
    }));
    let up = String::from_utf8(sent(&actions, Side::Upstream)).expect("the head is text");
    assert!(up.starts_with("GET /chat?room=lobby HTTP/1.1\r\n"), "{up}");
    assert!(up.contains("Sec-WebSocket-Key: "), "{up}");
    assert!(!up.to_ascii_lowercase().contains("upgrade"), "{up}");
    assert!(!up.contains("keep-alive"), "{up}");
    group.bench_function("strip", |b| {
        b.iter_batched(|| connection(strip), through, BatchSize::SmallInput)
    });
    group.finish();
}

fn relay(c: &mut Criterion) {
    let models = [
        ("pass", "model = 'pass'", 80),
        (
            "transparent-proxy",
            "model = 'transparent-proxy'\nbehaviour = 'strip'",
            443,
        ),
    ];
    let frames: Vec<(usize, Vec<u8>)> = PAYLOADS
        .iter()
        .map(|&size| {
            let mut payload = vec![0; size];
            Rng::new(size as u64).fill(&mut payload);
            let mask = Some([0x37, 0xfa, 0x21, 0x3d]);
            (size, ws_frames::encode(opcode::BINARY, &payload, mask))
        })
        .collect();
    let mut group = c.benchmark_group("relay");
    for (name, hop, port) in models {
        for (size, frame) in &frames {
            let mut conn = connection(hop);
            let mut cx = Cx::new(1);
            conn.on_event(&mut cx, Event::Accepted { port });
            conn.on_event(&mut cx, Event::Dialed);
            data(conn.as_mut(), &mut cx, Side::Client, REQUEST);
            data(conn.as_mut(), &mut cx, Side::Upstream, SWITCH);
            let actions = cx.take_actions();
            assert_eq!(sent(&actions, Side::Upstream), REQUEST, "{name}");
            assert_eq!(sent(&actions, Side::Client), SWITCH, "{name}");

            // The bench must measure a relay, not a model that swallows the frame.
            data(conn.as_mut(), &mut cx, Side::Client, frame);
            let actions = cx.take_actions();
            assert_eq!(&sent(&actions, Side::Upstream), frame, "{name}");
            assert!(sent(&actions, Side::Client).is_empty(), "{name}");

            group.throughput(Throughput::Bytes(frame.len() as u64));
            group.bench_with_input(BenchmarkId::new(name, size), frame, |b, frame| {
                b.iter(|| {
                    data(conn.as_mut(), &mut cx, Side::Client, black_box(frame));
                    cx.take_actions()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, http_head, relay);
criterion_main!(benches);
