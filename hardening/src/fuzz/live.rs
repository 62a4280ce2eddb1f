//! `live-serve` and `live-proxy`: the real `gauntlet serve` (ws and wss listeners) and
//! `gauntlet proxy --model pass` in front of another `gauntlet serve`, started from the built
//! binary, fed hostile bytes over loopback: random and mutated request heads, a valid upgrade
//! followed by frames with any header, garbage for the TLS listener; each connection then
//! half-closed, dropped, or kept open for a while.
//!
//! Held to, after every case: both processes still run, and a normal session (upgrade, one
//! text message echoed, the close handshake) through the same address succeeds. A process
//! that died is restarted for the next case (so a failure can be shrunk), and the report
//! carries its exit status and the end of its log.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use gauntlet::endpoints::smuggle::{self, Decoded};
use gauntlet_proxies::ws_frames::{self, opcode};
use proptest::prelude::*;

use super::inputs::{self, show_bytes};
use super::runner::Checked;
use crate::procs::Proc;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn upgrade(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// How a hostile connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Half-close, then read what comes until the server closes (or a few seconds pass).
    Fin,
    /// Close at once (a reset if the server's answer is unread).
    Drop,
    /// Keep it open during the normal session, then drop it.
    KeepOpen,
}

/// One case: where the bytes go (the TLS listener or not), the writes, and the ending.
#[derive(Debug, Clone)]
pub struct LiveCase {
    tls: bool,
    writes: Vec<Vec<u8>>,
    end: End,
}

fn close_frame() -> impl Strategy<Value = Vec<u8>> {
    (prop::collection::vec(any::<u8>(), 0..130), any::<[u8; 4]>())
        .prop_map(|(payload, mask)| ws_frames::encode(opcode::CLOSE, &payload, Some(mask)))
}

pub fn case(tls_listener: bool) -> impl Strategy<Value = LiveCase> {
    let path = prop::sample::select(&[
        "/echo",
        "/push?count=2&interval=1&size=8",
        "/echo?fragment=3",
        "/echo?close=4000&count=1",
        "/attacker",
        "/script.js",
        "/nope",
    ]);
    let heads = prop::collection::vec(
        prop_oneof![
            4 => inputs::mutated(inputs::head(true), 4),
            2 => inputs::mutated(path.clone().prop_map(upgrade), 3),
            1 => prop::collection::vec(any::<u8>(), 1..300),
        ],
        1..3,
    );
    let frames = (
        path,
        prop::collection::vec(
            prop_oneof![
                3 => inputs::frame(),
                3 => inputs::valid_frame(true),
                1 => inputs::valid_frame(false),
                1 => close_frame(),
                1 => inputs::mutated(inputs::valid_frame(true), 2),
            ],
            0..8,
        ),
    )
        .prop_map(|(path, frames)| {
            let mut writes = vec![upgrade(path)];
            writes.extend(frames);
            writes
        });
    let tls_bytes = prop::collection::vec(
        prop_oneof![
            1 => prop::collection::vec(any::<u8>(), 1..200),
            1 => prop::collection::vec(any::<u8>(), 0..200).prop_map(|b| [&[0x16u8, 0x03, 0x01, 0x01, 0x00][..], &b].concat()),
        ],
        1..3,
    );
    let end = prop_oneof![3 => Just(End::Fin), 2 => Just(End::Drop), 1 => Just(End::KeepOpen)];
    let plain =
        (prop_oneof![1 => heads, 1 => frames], end.clone()).prop_map(|(writes, end)| LiveCase {
            tls: false,
            writes,
            end,
        });
    if tls_listener {
        prop_oneof![
            4 => plain,
            1 => (tls_bytes, end).prop_map(|(writes, end)| LiveCase { tls: true, writes, end }),
        ]
        .boxed()
    } else {
        plain.boxed()
    }
}

pub fn show(c: &LiveCase) -> String {
    let mut out = format!(
        "to the {} listener, then {:?}; writes:",
        if c.tls { "TLS" } else { "ws" },
        c.end
    );
    for w in &c.writes {
        out.push_str("\n  ");
        out.push_str(&show_bytes(w));
    }
    out
}

/// The processes a live campaign runs against, started on demand.
#[derive(Debug)]
pub struct Live {
    gauntlet: PathBuf,
    scratch: PathBuf,
    proxied: bool,
    serve: Option<Proc>,
    proxy: Option<Proc>,
    /// How many times the processes were started.
    pub starts: u64,
}

impl Live {
    pub fn new(gauntlet: &Path, scratch: &Path, proxied: bool) -> Self {
        Self {
            gauntlet: gauntlet.to_path_buf(),
            scratch: scratch.to_path_buf(),
            proxied,
            serve: None,
            proxy: None,
            starts: 0,
        }
    }

    fn tag(&self) -> &'static str {
        if self.proxied {
            "live-proxy"
        } else {
            "live-serve"
        }
    }

    /// Starts whatever is not running.
    fn ensure(&mut self) -> anyhow::Result<()> {
        let dead = |p: &mut Option<Proc>| p.as_mut().is_none_or(|p| p.exited().is_some());
        if dead(&mut self.serve) || (self.proxied && dead(&mut self.proxy)) {
            self.proxy = None;
            self.serve = None;
            self.starts += 1;
            let tag = self.tag();
            let ca = self.scratch.join(format!("{tag}-ca.pem"));
            let serve = Proc::serve(
                "gauntlet serve",
                &self.gauntlet,
                &ca,
                &[],
                &self.scratch.join(format!("{tag}-serve.log")),
            )?;
            if self.proxied {
                self.proxy = Some(Proc::pass_proxy(
                    "gauntlet proxy --model pass",
                    &self.gauntlet,
                    serve.addrs[0],
                    &self.scratch.join(format!("{tag}-proxy.log")),
                )?);
            }
            self.serve = Some(serve);
        }
        Ok(())
    }

    /// Where hostile bytes and normal sessions go: (ws, tls).
    fn addrs(&self) -> (SocketAddr, Option<SocketAddr>) {
        match (&self.proxy, &self.serve) {
            (Some(p), _) => (p.addrs[0], None),
            (None, Some(s)) => (s.addrs[0], s.addrs.get(1).copied()),
            (None, None) => unreachable!("ensure starts the server"),
        }
    }

    /// A process that has exited, with its status and log.
    fn casualty(&mut self) -> Option<String> {
        for p in [self.serve.as_mut(), self.proxy.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Some(status) = p.exited() {
                return Some(format!(
                    "{} (pid {}) exited: {status}; the end of its log:\n{}",
                    p.name,
                    p.pid,
                    p.log_tail(30)
                ));
            }
        }
        None
    }

    /// Stops the processes; a process that does not exit 0 on SIGTERM is a failure.
    pub fn stop(&mut self) -> Result<(), String> {
        let mut wrong = Vec::new();
        for p in [self.proxy.as_mut(), self.serve.as_mut()]
            .into_iter()
            .flatten()
        {
            match p.stop() {
                Ok(s) if s.success() => {}
                Ok(s) => wrong.push(format!("{} (pid {}) stopped with {s}", p.name, p.pid)),
                Err(e) => wrong.push(format!("{} (pid {}): {e:#}", p.name, p.pid)),
            }
        }
        self.proxy = None;
        self.serve = None;
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(wrong.join("\n"))
        }
    }

    pub fn check(&mut self, c: &LiveCase, n: u64) -> Checked {
        self.ensure()
            .map_err(|e| format!("starting the processes: {e:#}"))?;
        let (ws, tls) = self.addrs();
        let to = if c.tls { tls.unwrap_or(ws) } else { ws };
        let mut hostile = TcpStream::connect_timeout(&to, Duration::from_secs(5))
            .map_err(|e| format!("connecting to {to}: {e}"))?;
        let _ = hostile.set_nodelay(true);
        for w in &c.writes {
            if hostile.write_all(w).is_err() {
                break;
            }
        }
        let mut kept = None;
        match c.end {
            End::Fin => {
                let _ = hostile.shutdown(Shutdown::Write);
                let _ = hostile.set_read_timeout(Some(Duration::from_secs(3)));
                let mut sink = [0u8; 4096];
                while matches!(hostile.read(&mut sink), Ok(n) if n > 0) {}
            }
            End::Drop => drop(hostile),
            End::KeepOpen => kept = Some(hostile),
        }
        if let Some(died) = self.casualty() {
            return Err(died);
        }
        let session = normal_session(ws, n);
        drop(kept);
        if let Some(died) = self.casualty() {
            return Err(died);
        }
        session.map_err(|e| format!("a normal session to {ws} afterwards failed: {e}"))?;
        Ok(if c.tls { "tls garbage" } else { "plain" })
    }
}

/// An upgrade to `/echo`, one masked text message echoed back, and the close handshake.
pub fn normal_session(addr: SocketAddr, n: u64) -> Result<(), String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let _ = s.set_nodelay(true);
    s.write_all(&upgrade("/echo"))
        .map_err(|e| format!("writing the upgrade: {e}"))?;
    let mut buf = Vec::new();
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 16 << 10 {
            return Err("no end of the answer's head in 16 KiB".into());
        }
        read_more(&mut s, &mut buf, "the answer to the upgrade")?;
    };
    if !buf.starts_with(b"HTTP/1.1 101 ") {
        return Err(format!("answered {}", show_bytes(&buf[..end.min(80)])));
    }
    buf.drain(..end);
    let text = format!("hello {n}");
    let mask = (n as u32).to_be_bytes();
    s.write_all(&ws_frames::encode(
        opcode::TEXT,
        text.as_bytes(),
        Some(mask),
    ))
    .map_err(|e| format!("writing the message: {e}"))?;
    let echo = next_frame(&mut s, &mut buf)?;
    if echo.opcode != opcode::TEXT || echo.payload != text.as_bytes() || echo.masked {
        return Err(format!("the echo was {echo:?}"));
    }
    s.write_all(&ws_frames::close_frame(1000, Some(mask)))
        .map_err(|e| format!("writing the Close: {e}"))?;
    let close = next_frame(&mut s, &mut buf)?;
    if close.opcode != opcode::CLOSE || close.payload.get(..2) != Some(&[0x03, 0xE8][..]) {
        return Err(format!("the answer to Close 1000 was {close:?}"));
    }
    Ok(())
}

fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>, what: &str) -> Result<(), String> {
    let mut chunk = [0u8; 4096];
    match s.read(&mut chunk) {
        Ok(0) => Err(format!("the connection ended while reading {what}")),
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(())
        }
        Err(e) => Err(format!("reading {what}: {e}")),
    }
}

fn next_frame(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<smuggle::Frame, String> {
    loop {
        match smuggle::decode(buf) {
            Decoded::Frame(f, n) => {
                buf.drain(..n);
                if f.opcode == 0x9 || f.opcode == 0xA {
                    continue;
                }
                return Ok(f);
            }
            Decoded::Partial => read_more(s, buf, "a frame")?,
            Decoded::Invalid(why) => return Err(format!("not a frame: {why}")),
        }
    }
}
