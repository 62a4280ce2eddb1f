//! The relay's throughput on real sockets: iperf3 through `gauntlet proxy --model pass`,
//! against HAProxy (`mode tcp`) and socat doing the same job, in the same invocation,
//! interleaved round by round so that each round measures the three under the same load.
//!
//! Each measurement is one `iperf3 -c` run of `seconds` through a relay in front of one
//! `iperf3 -s`, with 1 or 8 parallel streams; the figure is the median throughput of the
//! rounds, and the relay's CPU time (user + system, its children's included, from
//! `/proc/PID/stat`) per gigabyte carried. Every process started here is killed by its PID
//! when its guard is dropped, error or not; everything binds 127.0.0.1.

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The relays measured, in the order they are printed; the first is the one compared.
pub const RELAYS: [&str; 3] = ["gauntlet", "haproxy", "socat"];
/// Parallel stream counts.
pub const STREAMS: [usize; 2] = [1, 8];

/// One relay and stream count: medians over the rounds.
#[derive(Debug, Clone)]
pub struct Throughput {
    pub relay: &'static str,
    pub streams: usize,
    pub gbit_s: f64,
    pub cpu_s_per_gb: f64,
}

/// A child process, killed by its PID when dropped.
struct Guard(Child, &'static str);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port free on 127.0.0.1 now (the kernel's choice; released for the relay to take).
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))
}

/// Waits until a socket listens on 127.0.0.1:`port` (read from `/proc/net/tcp`, so no probe
/// connection reaches the relay, nor, through it, the server behind it), at most 10 s.
fn wait_listening(port: u16, what: &str, child: &mut Child) -> Result<(), String> {
    // `/proc/net/tcp` writes 127.0.0.1:PORT as `0100007F:PPPP`, and LISTEN as state `0A`.
    let local = format!("0100007F:{port:04X}");
    for _ in 0..500 {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited before listening ({status})"));
        }
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        let listening = table.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(1) == Some(&local.as_str()) && f.get(3) == Some(&"0A")
        });
        if listening {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!(
        "{what} did not listen on 127.0.0.1:{port} within 10 s"
    ))
}

fn spawn(what: &'static str, cmd: &mut Command) -> Result<Guard, String> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "{what} is not installed: run apt-get install -y iperf3 haproxy socat \
                     (the README's test set-up installs them)"
                )
            } else {
                format!("cannot start {what}: {e}")
            }
        })?;
    Ok(Guard(child, what))
}

/// Starts `relay` on a free port in front of `target`: its guard and its port.
fn start_relay(
    relay: &'static str,
    gauntlet: &Path,
    target: u16,
    dir: &Path,
) -> Result<(Guard, u16), String> {
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let upstream = format!("127.0.0.1:{target}");
    let mut guard = match relay {
        "gauntlet" => spawn(
            "gauntlet proxy",
            Command::new(gauntlet).args([
                "proxy",
                "--model",
                "pass",
                "--listen",
                &listen,
                "--upstream",
                &upstream,
            ]),
        )?,
        "haproxy" => {
            let config = dir.join("haproxy.cfg");
            let text = format!(
                "# The relay benchmark's HAProxy: one TCP frontend and backend, no logging.\n\
                 defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  \
                 timeout server 60s\n\
                 frontend relay\n  bind {listen}\n  default_backend iperf\n\
                 backend iperf\n  server iperf {upstream}\n"
            );
            std::fs::write(&config, text)
                .map_err(|e| format!("writing {}: {e}", config.display()))?;
            let config = config.to_string_lossy().into_owned();
            spawn(
                "haproxy",
                Command::new("haproxy").args(["-db", "-f", &config]),
            )?
        }
        "socat" => spawn(
            "socat",
            Command::new("socat").args([
                format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"),
                format!("TCP:{upstream}"),
            ]),
        )?,
        other => return Err(format!("no relay called {other}")),
    };
    wait_listening(port, guard.1, &mut guard.0)?;
    Ok((guard, port))
}

/// Starts `iperf3 -s` on `port` and waits for it to say it listens (a probe connection
/// would count as a test).
fn iperf_server(port: u16) -> Result<Guard, String> {
    use std::io::BufRead as _;
    let mut child = Command::new("iperf3")
        .args([
            "-s",
            "--forceflush",
            "-B",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start iperf3 (apt-get install -y iperf3): {e}"))?;
    let stdout = child.stdout.take();
    let guard = Guard(child, "iperf3 -s");
    let mut lines = std::io::BufReader::new(stdout.ok_or("iperf3 has no stdout")?).lines();
    match lines.find(|l| l.as_ref().is_ok_and(|l| l.contains("Server listening"))) {
        Some(Ok(_)) => {
            // Drains the rest, so the server never writes to a closed pipe.
            std::thread::spawn(move || lines.for_each(drop));
            Ok(guard)
        }
        _ => Err(format!("iperf3 -s did not listen on 127.0.0.1:{port}")),
    }
}

/// CPU seconds `pid` and its reaped children have used (`/proc/PID/stat`, fields 14 to 17).
fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("reading /proc/{pid}/stat: {e}"))?;
    // The command name, in parentheses, may hold spaces: fields count from after it.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| format!("/proc/{pid}/stat has no command name"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..15)
        .ok_or_else(|| format!("/proc/{pid}/stat is short"))?
        .iter()
        .map(|f| f.parse::<f64>().unwrap_or(0.0))
        .sum();
    // USER_HZ is 100 on Linux.
    Ok(ticks / 100.0)
}

/// One iperf3 client run through `port`: bits per second received and bytes carried.
fn iperf(port: u16, streams: usize, seconds: u32) -> Result<(f64, f64), String> {
    let out = Command::new("iperf3")
        .args([
            "-c",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-P",
            &streams.to_string(),
            "-t",
            &seconds.to_string(),
            "-J",
        ])
        .output()
        .map_err(|e| format!("cannot run iperf3: {e}"))?;
    let json = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "iperf3 through port {port} failed: {}{}",
            json,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // `end.sum_received`: what the server received, the relay's delivered throughput.
    let received = json
        .find("\"sum_received\"")
        .map(|at| &json[at..])
        .ok_or_else(|| format!("iperf3 printed no sum_received: {json}"))?;
    let field = |name: &str| -> Result<f64, String> {
        let at = received
            .find(&format!("\"{name}\":"))
            .ok_or_else(|| format!("iperf3's sum_received has no {name}"))?
            + name.len()
            + 3;
        let rest = &received[at..];
        let end = rest.find([',', '}', '\n']).unwrap_or(rest.len());
        rest[..end]
            .trim()
            .parse()
            .map_err(|_| format!("iperf3's {name} is not a number"))
    };
    Ok((field("bits_per_second")?, field("bytes")?))
}

/// Measures every relay and stream count `rounds` times, interleaved.
pub fn measure(
    gauntlet: &Path,
    target_dir: &Path,
    rounds: usize,
    seconds: u32,
) -> Result<Vec<Throughput>, String> {
    let dir = target_dir.join("relay-bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let mut samples: Vec<(&'static str, usize, f64, f64)> = Vec::new();
    for round in 0..rounds {
        for streams in STREAMS {
            for relay in RELAYS {
                eprintln!(
                    "relay round {}/{rounds}: iperf3 -P {streams} -t {seconds} through {relay}",
                    round + 1
                );
                // A fresh server each time: one still finishing the last test would refuse.
                let server_port = free_port()?;
                let (guard, port) = start_relay(relay, gauntlet, server_port, &dir)?;
                let server = iperf_server(server_port)?;
                let pid = guard.0.id();
                let before = cpu_seconds(pid)?;
                let (bits, bytes) = iperf(port, streams, seconds)?;
                // Children (socat's) are reaped once their connection ends; give them a moment.
                std::thread::sleep(Duration::from_millis(200));
                let cpu = cpu_seconds(pid)? - before;
                drop(guard);
                drop(server);
                samples.push((relay, streams, bits / 1e9, cpu / (bytes / 1e9)));
            }
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut out = Vec::new();
    for streams in STREAMS {
        for relay in RELAYS {
            let mine = samples.iter().filter(|s| s.0 == relay && s.1 == streams);
            out.push(Throughput {
                relay,
                streams,
                gbit_s: median(mine.clone().map(|s| s.2).collect()),
                cpu_s_per_gb: median(mine.map(|s| s.3).collect()),
            });
        }
    }
    Ok(out)
}

/// The table: a line per stream count and relay, with gauntlet's ratio to each peer.
pub fn table(figures: &[Throughput], rounds: usize, seconds: u32) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nrelay throughput on loopback, iperf3 {seconds} s per run, median of {rounds} rounds \
         (interleaved):"
    );
    let _ = writeln!(
        out,
        "  {:<10} {:>8}  {:>12}  {:>14}  {:>16}",
        "relay", "streams", "Gbit/s", "CPU-s per GB", "gauntlet / this"
    );
    for f in figures {
        let ours = figures
            .iter()
            .find(|g| g.relay == RELAYS[0] && g.streams == f.streams);
        let ratio = match ours {
            Some(g) if f.relay != RELAYS[0] => format!("{:.2}×", g.gbit_s / f.gbit_s),
            _ => "-".into(),
        };
        let _ = writeln!(
            out,
            "  {:<10} {:>8}  {:>12.2}  {:>14.2}  {:>16}",
            f.relay, f.streams, f.gbit_s, f.cpu_s_per_gb, ratio
        );
    }
    out
}

/// The figures as `bench.json` fields.
pub fn json_fields(figures: &[Throughput]) -> Vec<String> {
    let mut fields = Vec::new();
    for f in figures {
        let key = format!("relay_{}_{}", f.relay, f.streams);
        fields.push(format!("  \"{key}_gbit_s\": {:.3}", f.gbit_s));
        fields.push(format!("  \"{key}_cpu_s_per_gb\": {:.3}", f.cpu_s_per_gb));
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_gives_gauntlets_ratio_to_each_peer() {
        let f = |relay, streams, gbit_s| Throughput {
            relay,
            streams,
            gbit_s,
            cpu_s_per_gb: 1.0,
        };
        let t = table(
            &[
                f("gauntlet", 1, 4.0),
                f("haproxy", 1, 8.0),
                f("socat", 1, 5.0),
            ],
            3,
            2,
        );
        assert!(t.contains("0.50×"), "{t}");
        assert!(t.contains("0.80×"), "{t}");
    }

    #[test]
    fn cpu_time_is_read_after_the_command_name() {
        let me = std::process::id();
        assert!(cpu_seconds(me).is_ok_and(|s| s >= 0.0));
    }
}
