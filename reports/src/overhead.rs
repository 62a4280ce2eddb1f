//! `reports/OVERHEAD.md` and its chart `reports/overhead.svg`: what each transport puts on the
//! wire per message, and how late its messages arrive, against the seed article's claim that
//! WebSocket gives "1000:1" less traffic and latency than Comet long-polling.
//!
//! The measurements ([`Overhead`]) come from `gauntlet overhead`, which runs them on the
//! simulated engine; this module only renders them, so the same measurements always render
//! to the same bytes.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::Latency;
use crate::svg::{GRID, MUTED, PALETTE, Scale, c, close, label, open};

/// What `gauntlet overhead` measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overhead {
    /// Whose request heads the clients wrote (`Chromium 156`).
    pub browser: String,
    /// The one-way latency of every link, in milliseconds.
    pub link_ms: f64,
    /// How many messages the short and the long run of each cell carried: bytes per message
    /// are the difference of the two runs' bytes over the difference of their messages.
    pub messages: (u64, u64),
    /// Every cell, sweep by sweep, transport by transport.
    pub cells: Vec<Cell>,
    /// The reconnect storms: with socket.io-client's jitter, and without.
    #[serde(default)]
    pub storms: Vec<Storm>,
}

/// Many clients cut at once, reconnecting: how fast the reconnections hit the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Storm {
    /// The clients, all connected at once and cut together.
    pub clients: u64,
    /// Their backoff's `randomizationFactor`.
    pub randomization: f64,
    /// How many ended `reconnected`.
    pub reconnected: u64,
    /// Connections begun after the first of each client.
    pub reconnections: u64,
    /// The most reconnections begun within one window, as a rate per second.
    pub peak_per_s: f64,
    /// The window, in milliseconds.
    pub window_ms: f64,
    /// When the first and the last reconnection began, in milliseconds of simulated time.
    pub first_ms: f64,
    /// See `first_ms`.
    pub last_ms: f64,
}

/// Which sweep a cell belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sweep {
    /// Echoes of every size at one message a second: bytes each way.
    Size,
    /// Pushes of one size at every rate: bytes and one-way latency.
    Rate,
}

/// One transport at one message size and rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// The sweep.
    pub sweep: Sweep,
    /// `ws`, `wss`, `long-polling`, `streaming`.
    pub transport: String,
    /// Application payload bytes per message.
    pub payload_bytes: u64,
    /// Messages per second.
    pub rate_per_s: f64,
    /// The long run's outcome (`delivered` unless something is wrong).
    pub outcome: String,
    /// Client-to-server bytes on the wire per message, past the setup.
    pub up_per_message: f64,
    /// Server-to-client bytes on the wire per message, past the setup.
    pub down_per_message: f64,
    /// Bytes on the wire both ways that do not grow with the messages (handshakes, the
    /// open, the close): the long run's bytes less its messages' share.
    pub setup_bytes: f64,
    /// The long run's message latencies: round trips for echoes, one way for pushes.
    pub latency: Option<Latency>,
}

impl Cell {
    /// Bytes on the wire per message, both ways.
    pub fn per_message(&self) -> f64 {
        self.up_per_message + self.down_per_message
    }

    /// Bytes on the wire per message for each payload byte, both ways (an echo carries its
    /// payload twice, a push once).
    pub fn per_payload_byte(&self) -> Option<f64> {
        let carried = match self.sweep {
            Sweep::Size => 2 * self.payload_bytes,
            Sweep::Rate => self.payload_bytes,
        };
        (carried > 0).then(|| self.per_message() / carried as f64)
    }
}

impl Overhead {
    /// The transports measured, in the order they were.
    pub fn transports(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for cell in &self.cells {
            if !seen.contains(&cell.transport.as_str()) {
                seen.push(&cell.transport);
            }
        }
        seen
    }

    /// The cell of `sweep` for `transport` at `payload_bytes` and `rate_per_s`.
    pub fn cell(&self, sweep: Sweep, transport: &str, payload: u64, rate: f64) -> Option<&Cell> {
        self.cells.iter().find(|c| {
            c.sweep == sweep
                && c.transport == transport
                && c.payload_bytes == payload
                && c.rate_per_s == rate
        })
    }

    fn values<T: PartialEq + Copy>(&self, sweep: Sweep, of: impl Fn(&Cell) -> T) -> Vec<T> {
        let mut seen = Vec::new();
        for cell in self.cells.iter().filter(|c| c.sweep == sweep) {
            let v = of(cell);
            if !seen.contains(&v) {
                seen.push(v);
            }
        }
        seen
    }

    /// The ratio of long-polling's bytes per message to ws's in a cell, if both were
    /// measured.
    fn ratio(&self, sweep: Sweep, payload: u64, rate: f64) -> Option<f64> {
        let ws = self.cell(sweep, "ws", payload, rate)?.per_message();
        let polling = self
            .cell(sweep, "long-polling", payload, rate)?
            .per_message();
        (ws > 0.0).then(|| polling / ws)
    }
}

/// The seed's sentence, and its gloss.
const CLAIM: &str = "长轮询……每个请求和响应载体会有许多不必要的 HTTP 头信息开销和延迟。这正是 HTML5 \
Web Sockets 大展身手的地方——它能够提供 1000:1 的降低不必要的网络流量和延迟。";
const GLOSS: &str = "long-polling … every request and response carries a lot of unnecessary \
HTTP header overhead and latency; this is where HTML5 Web Sockets shine: they can give a \
1000:1 reduction in unnecessary network traffic and latency";

/// `reports/OVERHEAD.md`: the method, the two sweeps as tables, and the claim set beside
/// what was measured. `invoked_as` is the command that regenerates it.
pub fn overhead_markdown(o: &Overhead, invoked_as: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Bytes on the wire and latency per message: the seed's \"1000:1\", measured\n\n\
         Generated by `{invoked_as}` from measurements on the simulated engine; do not edit.\n\n\
         Lubbers, InfoQ 2010 (seeds/001, \"Comet and proxy servers\"): \"{CLAIM}\" ({GLOSS}).\n"
    );
    let (short, long) = o.messages;
    let _ = writeln!(
        out,
        "## How it was measured\n\n\
         - Each transport carries the same workload from the reference client to the reference \
         server over a direct path whose links add {} ms each way. Request heads are {}'s, \
         field by field (`[client] browser = \"chromium\"`; no cookies, which would ride on \
         every polling request and on no WebSocket frame), and HTTP connections are kept \
         alive between requests as the browser keeps them.\n\
         - `ws` and `wss` are WebSockets (RFC 6455: 2 to 14 bytes of frame header, a 4-byte \
         mask on the client's frames); `long-polling` is Engine.IO v4 polling (Socket.IO's \
         fallback) with engine.io's defaults (a ping every 25 s), never upgraded; \
         `streaming` is a response held open (Server-Sent Events, chunked), each message \
         from the client a POST of its own (the Kaazing-style fallback).\n\
         - Bytes are the TCP payload of every connection the client made, each way: HTTP \
         heads, TLS records, frame headers, Engine.IO packets; IP and TCP headers are not \
         counted. Bytes per message are the difference between a run of {long} messages and \
         one of {short}, over the {} messages between: what one more message costs, with the \
         handshakes and the close left out: those cost, once per session, both ways, {}.\n",
        c(o.link_ms),
        o.browser,
        long - short,
        setup(o)
    );
    size_table(&mut out, o);
    rate_table(&mut out, o);
    claim(&mut out, o);
    storms(&mut out, o);
    out
}

/// The reconnect storm: a row per jitter.
fn storms(out: &mut String, o: &Overhead) {
    let Some(first) = o.storms.first() else {
        return;
    };
    let _ = writeln!(
        out,
        "## The reconnect storm\n\n\
         {} WebSocket clients connect at once through a 30 s connection lifetime (GCP's \
         backend service timeout, `lifetime-cap` preset `gcp-backend`), which cuts them all \
         together; each reconnects with socket.io-client's backoff (`reconnectionDelay` \
         1000 ms) and its `randomizationFactor`. The peak is the most reconnections begun \
         in one {} window, as a rate.\n\n\
         | randomization | reconnected | reconnections | peak rate | spread over |\n\
         |---:|---:|---:|---:|---:|",
        first.clients,
        msec(first.window_ms)
    );
    for s in &o.storms {
        let _ = writeln!(
            out,
            "| {} | {} of {} | {} | {}/s | {} |",
            c(s.randomization),
            s.reconnected,
            s.clients,
            s.reconnections,
            c(s.peak_per_s.round()),
            msec(s.last_ms - s.first_ms)
        );
    }
    if let (Some(with), Some(without)) = (
        o.storms.iter().find(|s| s.randomization > 0.0),
        o.storms.iter().find(|s| s.randomization == 0.0),
    ) {
        let _ = writeln!(
            out,
            "\nWithout jitter every client comes back in the same instant; socket.io-client's \
             default jitter spreads them over {} and cuts the peak {}.\n",
            msec(with.last_ms - with.first_ms),
            times(without.peak_per_s / with.peak_per_s.max(1.0))
        );
    }
}

/// The setup bytes of each transport, from the size sweep's 32-byte cells: `ws 1234 B, …`.
fn setup(o: &Overhead) -> String {
    o.transports()
        .iter()
        .filter_map(|t| {
            let cell = o.cell(Sweep::Size, t, 32, 1.0)?;
            Some(format!("{t} {} B", c(cell.setup_bytes.round())))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn size_table(out: &mut String, o: &Overhead) {
    let transports = o.transports();
    let _ = writeln!(
        out,
        "## By message size: echoes at one message a second\n\n\
         Bytes on the wire per message, client to server + server to client (the payload \
         crosses each way once). ![bytes per message by size](overhead.svg)\n"
    );
    let mut head = String::from("| payload |");
    let mut rule = String::from("|---:|");
    for t in &transports {
        let _ = write!(head, " {t} |");
        rule.push_str("---:|");
    }
    head.push_str(" long-polling ÷ ws |");
    rule.push_str("---:|");
    let _ = writeln!(out, "{head}\n{rule}");
    for payload in o.values(Sweep::Size, |c| c.payload_bytes) {
        let _ = write!(out, "| {} |", bytes(payload as f64));
        for t in &transports {
            match o.cell(Sweep::Size, t, payload, 1.0) {
                Some(cell) if cell.outcome == "delivered" => {
                    let _ = write!(
                        out,
                        " {} + {} |",
                        c(cell.up_per_message),
                        c(cell.down_per_message)
                    );
                }
                Some(cell) => {
                    let _ = write!(out, " {} |", cell.outcome);
                }
                None => out.push_str(" |"),
            }
        }
        let ratio = o.ratio(Sweep::Size, payload, 1.0);
        let _ = writeln!(out, " {} |", ratio.map_or("-".into(), times));
    }
    out.push('\n');
}

fn rate_table(out: &mut String, o: &Overhead) {
    let transports = o.transports();
    let Some(payload) = o.values(Sweep::Rate, |c| c.payload_bytes).first().copied() else {
        return;
    };
    let _ = writeln!(
        out,
        "## By message rate: pushes of {payload} bytes\n\n\
         Bytes on the wire per message (both ways), and the one-way latency of the messages, \
         median and 99th percentile.\n"
    );
    let mut head = String::from("| messages/s |");
    let mut rule = String::from("|---:|");
    for t in &transports {
        let _ = write!(head, " {t} bytes | {t} p50 / p99 |");
        rule.push_str("---:|---:|");
    }
    head.push_str(" long-polling ÷ ws |");
    rule.push_str("---:|");
    let _ = writeln!(out, "{head}\n{rule}");
    for rate in o.values(Sweep::Rate, |c| c.rate_per_s) {
        let _ = write!(out, "| {} |", c(rate));
        for t in &transports {
            match o.cell(Sweep::Rate, t, payload, rate) {
                Some(cell) if cell.outcome == "delivered" => {
                    let latency = cell
                        .latency
                        .as_ref()
                        .map_or("-".into(), |l| format!("{} / {}", msec(l.p50), msec(l.p99)));
                    let _ = write!(out, " {} | {latency} |", c(cell.per_message()));
                }
                Some(cell) => {
                    let _ = write!(out, " {} | |", cell.outcome);
                }
                None => out.push_str(" | |"),
            }
        }
        let ratio = o.ratio(Sweep::Rate, payload, rate);
        let _ = writeln!(out, " {} |", ratio.map_or("-".into(), times));
    }
    out.push('\n');
}

/// The claim beside the measurement: the largest and smallest ratios, where each was, and
/// what 1000:1 would take.
fn claim(out: &mut String, o: &Overhead) {
    let mut ratios: Vec<(f64, Sweep, u64, f64)> = o
        .cells
        .iter()
        .filter(|c| c.transport == "ws")
        .filter_map(|c| {
            let r = o.ratio(c.sweep, c.payload_bytes, c.rate_per_s)?;
            Some((r, c.sweep, c.payload_bytes, c.rate_per_s))
        })
        .collect();
    ratios.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (Some(most), Some(least)) = (ratios.first(), ratios.last()) else {
        return;
    };
    let at = |&(_, sweep, payload, rate): &(f64, Sweep, u64, f64)| match sweep {
        Sweep::Size => format!("echoes of {} at 1/s", bytes(payload as f64)),
        Sweep::Rate => format!("pushes of {} at {}/s", bytes(payload as f64), c(rate)),
    };
    let _ = writeln!(
        out,
        "## The claim, and what was measured\n\n\
         - Long-polling puts {} the bytes of a WebSocket on the wire per message at most \
         ({}), and {} at least ({}). The claimed 1000:1 is not reached anywhere in these \
         sweeps.",
        times(most.0),
        at(most),
        times(least.0),
        at(least)
    );
    if let (Some(ws), Some(polling)) = (
        o.cell(Sweep::Size, "ws", most.2, most.3)
            .filter(|_| most.1 == Sweep::Size),
        o.cell(Sweep::Size, "long-polling", most.2, most.3)
            .filter(|_| most.1 == Sweep::Size),
    ) {
        let needed = 1000.0 * ws.per_message() - polling.per_message();
        let _ = writeln!(
            out,
            "- The ratio is the HTTP heads a message costs over the frame headers it costs. \
             For {}, a WebSocket carries {} bytes per message and long-polling {}: reaching \
             1000:1 would take {} more bytes of heads per message, cookies for instance \
             (they ride on every polling request, never on a frame), or a frame-less \
             WebSocket.",
            at(most),
            c(ws.per_message()),
            c(polling.per_message()),
            c(needed.max(0.0))
        );
    }
    latency_claim(out, o);
    let _ = writeln!(
        out,
        "- The ratio falls as messages grow: headers are a fixed cost, and from a few \
         kilobytes the payload dominates both transports. At low rates long-polling also pays \
         the heartbeat's requests per message; at high rates it batches several messages into \
         one answer, so its cost per message falls while its latency rises by up to a round \
         trip (the next poll), as the rate table shows.\n"
    );
}

/// The latency half of the claim: where long-polling's median one-way latency is furthest
/// from ws's.
fn latency_claim(out: &mut String, o: &Overhead) {
    let p50 = |t: &str, rate: f64| {
        o.cells
            .iter()
            .find(|c| c.sweep == Sweep::Rate && c.transport == t && c.rate_per_s == rate)
            .and_then(|c| c.latency.as_ref())
            .map(|l| l.p50)
    };
    let worst = o
        .values(Sweep::Rate, |c| c.rate_per_s)
        .into_iter()
        .filter_map(|rate| Some((rate, p50("ws", rate)?, p50("long-polling", rate)?)))
        .max_by(|a, b| (a.2 / a.1).total_cmp(&(b.2 / b.1)));
    if let Some((rate, ws, polling)) = worst {
        let _ = writeln!(
            out,
            "- Latency: a held poll is answered as soon as a message is ready, so while \
             messages are rarer than round trips a message arrives one link latency after it \
             is sent on every transport. Long-polling's median is furthest from ws's at {}/s: \
             {} against {} ({}), not 1000×.",
            c(rate),
            msec(polling),
            msec(ws),
            times(polling / ws)
        );
    }
}

/// `55 ms`, `12.5 ms`.
fn msec(v: f64) -> String {
    format!("{} ms", c(v))
}

/// `12.3×` or `1,234×`.
fn times(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.1}×")
    }
}

/// `2 B`, `1 KiB`, `64 KiB`.
fn bytes(n: f64) -> String {
    if n >= 1024.0 && n % 1024.0 == 0.0 {
        format!("{} KiB", n / 1024.0)
    } else {
        format!("{} B", c(n))
    }
}

/// The chart: bytes on the wire per message against payload size, both on logarithmic axes,
/// a line per transport, from the size sweep.
pub fn overhead_svg(o: &Overhead) -> String {
    const W: f64 = 640.0;
    const H: f64 = 400.0;
    const LEFT: f64 = 80.0;
    const RIGHT: f64 = 150.0;
    const TOP: f64 = 40.0;
    const BOTTOM: f64 = 60.0;
    let cells: Vec<&Cell> = o
        .cells
        .iter()
        .filter(|c| c.sweep == Sweep::Size && c.outcome == "delivered" && c.payload_bytes > 0)
        .collect();
    let xs = Scale::for_values(cells.iter().map(|c| c.payload_bytes as f64));
    let ys = Scale::for_values(cells.iter().map(|c| c.per_message()));
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let x = |v: f64| LEFT + xs.fraction(v) * pw;
    let y = |v: f64| TOP + ph - ys.fraction(v) * ph;
    let mut out = String::new();
    open(
        &mut out,
        W,
        H,
        "Bytes on the wire per message (both ways) by payload size, echoes at 1/s",
    );
    label(
        &mut out,
        LEFT,
        20.0,
        "start",
        "#000000",
        "bytes on the wire per message (both ways), by payload size",
    );
    for t in xs.ticks() {
        let _ = writeln!(
            out,
            "<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"{GRID}\"/>",
            c(x(t)),
            c(TOP),
            c(TOP + ph)
        );
        label(&mut out, x(t), TOP + ph + 18.0, "middle", MUTED, &tick(t));
    }
    for t in ys.ticks() {
        let _ = writeln!(
            out,
            "<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"{GRID}\"/>",
            c(LEFT),
            c(y(t)),
            c(LEFT + pw)
        );
        label(&mut out, LEFT - 6.0, y(t) + 4.0, "end", MUTED, &tick(t));
    }
    label(
        &mut out,
        LEFT + pw / 2.0,
        H - 14.0,
        "middle",
        MUTED,
        "payload bytes per message (logarithmic)",
    );
    for (i, t) in o.transports().iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let points: Vec<String> = cells
            .iter()
            .filter(|c| c.transport == *t)
            .map(|cell| {
                format!(
                    "{},{}",
                    c(x(cell.payload_bytes as f64)),
                    c(y(cell.per_message()))
                )
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>",
            points.join(" ")
        );
        for p in &points {
            let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(
                out,
                "<circle cx=\"{px}\" cy=\"{py}\" r=\"3\" fill=\"{colour}\"/>"
            );
        }
        let ly = TOP + 16.0 + i as f64 * 18.0;
        let _ = writeln!(
            out,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{colour}\" stroke-width=\"2\"/>",
            c(LEFT + pw + 12.0),
            c(ly - 4.0),
            c(LEFT + pw + 32.0),
            c(ly - 4.0)
        );
        label(&mut out, LEFT + pw + 38.0, ly, "start", "#000000", t);
    }
    close(&mut out);
    // A file of its own (the page links it), so it names its namespace.
    out.replacen("<svg ", "<svg xmlns=\"http://www.w3.org/2000/svg\" ", 1)
}

/// An axis tick: `10 B`, `1 kB`, `100 kB` (the ticks are powers of ten).
fn tick(v: f64) -> String {
    if v >= 1000.0 {
        format!("{} kB", c(v / 1000.0))
    } else {
        format!("{} B", c(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(sweep: Sweep, transport: &str, payload: u64, rate: f64, up: f64, down: f64) -> Cell {
        Cell {
            sweep,
            transport: transport.into(),
            payload_bytes: payload,
            rate_per_s: rate,
            outcome: "delivered".into(),
            up_per_message: up,
            down_per_message: down,
            setup_bytes: 500.0,
            latency: None,
        }
    }

    fn sample() -> Overhead {
        Overhead {
            browser: "Chromium 156".into(),
            link_ms: 25.0,
            messages: (10, 110),
            storms: vec![],
            cells: vec![
                cell(Sweep::Size, "ws", 2, 1.0, 8.0, 4.0),
                cell(Sweep::Size, "long-polling", 2, 1.0, 700.0, 500.0),
                cell(Sweep::Size, "ws", 1024, 1.0, 1034.0, 1028.0),
                cell(Sweep::Size, "long-polling", 1024, 1.0, 1800.0, 1600.0),
                cell(Sweep::Rate, "ws", 32, 10.0, 0.0, 34.0),
                cell(Sweep::Rate, "long-polling", 32, 10.0, 300.0, 250.0),
            ],
        }
    }

    #[test]
    fn the_ratio_is_long_pollings_bytes_over_websockets_and_the_claim_names_where() {
        let o = sample();
        assert_eq!(o.ratio(Sweep::Size, 2, 1.0), Some(100.0));
        let md = overhead_markdown(&o, "cargo xtask report");
        assert!(md.contains("| 2 B | 8 + 4 | 700 + 500 | 100×"), "{md}");
        assert!(md.contains("at most (echoes of 2 B at 1/s)"), "{md}");
        assert!(md.contains("would take 10800 more bytes"), "{md}");
        assert!(md.contains("| 10 | 34 | - | 550 | - | 16.2× |"), "{md}");
    }

    #[test]
    fn the_chart_draws_a_line_per_transport() {
        let svg = overhead_svg(&sample());
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert!(svg.contains(">long-polling</text>"), "{svg}");
    }
}
