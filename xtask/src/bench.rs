//! `cargo xtask bench`: whole-run figures on both engines, then criterion's micro-benchmarks.
//!
//! Each sample is a fresh `gauntlet bench` process (release build), so its peak memory is its
//! own; a figure is the median of its samples. Every figure is printed beside turmoil's,
//! measured in the same invocation, as a ratio (turmoil's crowds stop at 10,000 clients). The
//! crowds' wall time per client is printed for each, with the largest's ratio to 1,000
//! clients': 1 when the cost grows linearly. A population's sampled sessions are timed by
//! [`crate::sessions`]. A sample whose runs miss their expectations is
//! an error: a benchmark of broken runs measures nothing.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, ExitCode};

use crate::sessions;

/// What one `gauntlet bench` process reported.
#[derive(Debug, Clone, Copy)]
struct Sample {
    wall_ms: f64,
    rss_mb: f64,
}

/// The median of a figure's samples.
#[derive(Debug, Clone, Copy)]
struct Figure {
    wall_ms: f64,
    rss_mb: f64,
    samples: usize,
}

/// One measured line: what, its sim figure, and turmoil's if measured.
struct Line {
    key: String,
    what: String,
    sim: Figure,
    turmoil: Option<Figure>,
}

struct Options {
    runs: usize,
    quick: bool,
    criterion: bool,
    /// Only the relay's throughput (no simulated runs, no criterion).
    relay_only: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        runs: 5,
        quick: false,
        criterion: true,
        relay_only: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--no-criterion" => o.criterion = false,
            "--relay-only" => {
                o.relay_only = true;
                o.criterion = false;
            }
            "--runs" => {
                let v = it.next().ok_or("--runs needs a value")?;
                o.runs = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--runs takes a positive number, got `{v}`"))?;
            }
            other => return Err(format!("unknown flag `{other}` for bench")),
        }
    }
    if o.quick {
        o.runs = 1;
    }
    Ok(o)
}

pub fn main(root: &Path, args: &[String]) -> ExitCode {
    let opts = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}\n\n{}", super::USAGE);
            return ExitCode::from(2);
        }
    };
    eprintln!("building gauntlet (release)…");
    let gauntlet = match super::build_gauntlet_in(root, "release") {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let simulated = if opts.relay_only {
        Ok((Vec::new(), Vec::new()))
    } else {
        measure_all(root, &gauntlet, &opts).and_then(|lines| {
            let mut population = Vec::new();
            for &n in sessions::sizes(opts.quick) {
                population.push(sessions::figure(root, &gauntlet, n, opts.runs.min(3))?);
            }
            Ok((lines, population))
        })
    };
    let measured = simulated.and_then(|(lines, population)| {
        let (rounds, seconds) = if opts.quick {
            (1, 1)
        } else {
            (opts.runs.min(3), 3)
        };
        let target = gauntlet
            .parent()
            .map_or_else(|| root.join("target"), Path::to_path_buf);
        let relay = crate::relay::measure(&gauntlet, &target, rounds, seconds)?;
        Ok((lines, population, relay, rounds, seconds))
    });
    match measured {
        Ok((lines, population, relay, rounds, seconds)) => {
            if !lines.is_empty() {
                print!("{}", table(&lines));
            }
            if !population.is_empty() {
                print!("{}", sessions::table(&population));
            }
            print!("{}", crate::relay::table(&relay, rounds, seconds));
            let mut json = bench_json(&lines, &opts);
            json.truncate(json.trim_end().trim_end_matches('}').trim_end().len());
            for field in sessions::json(&population)
                .into_iter()
                .chain(crate::relay::json_fields(&relay))
            {
                json.push_str(",\n");
                json.push_str(&field);
            }
            json.push_str("\n}\n");
            let path = root.join("target/gauntlet/bench.json");
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&path, json));
            if let Err(e) = written {
                eprintln!("error: writing {}: {e}", path.display());
                return ExitCode::from(2);
            }
            println!("\nwritten: {}", path.display());
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    if opts.criterion {
        eprintln!("\ncriterion micro-benchmarks (cargo bench -p gauntlet-proxies)…");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(root).args([
            "bench",
            "--package",
            "gauntlet-proxies",
            "--bench",
            "models",
            "--",
        ]);
        if opts.quick {
            cmd.arg("--quick");
        } else {
            cmd.args(["--warm-up-time", "1", "--measurement-time", "3"]);
        }
        match cmd.status() {
            Ok(s) if s.success() => {}
            Ok(_) => return ExitCode::FAILURE,
            Err(e) => {
                eprintln!("error: cannot run cargo bench: {e}");
                return ExitCode::from(2);
            }
        }
    }
    ExitCode::SUCCESS
}

/// The crowds measured, in clients: to 100,000 in full, to 10,000 with `--quick` (CI's, where
/// 100,000 clients would take half a minute and 2 GiB).
fn crowds(quick: bool) -> &'static [usize] {
    if quick {
        &[100, 1000, 10_000]
    } else {
        &[100, 1000, 10_000, 100_000]
    }
}

/// The largest crowd also measured on turmoil, which takes several times sim's time and
/// memory for a crowd (and turmoil's, with `--quick`, only to 1,000 clients).
const TURMOIL_MAX_CLIENTS: usize = 10_000;

/// The crowd whose per-client cost the others are compared with.
const BASE_CROWD: usize = 1000;

fn measure_all(root: &Path, gauntlet: &Path, o: &Options) -> Result<Vec<Line>, String> {
    let jobs = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .to_string();
    let turmoil_runs = o.runs.min(3);
    let mut lines = Vec::new();

    let idle = ["xtask/bench/idle-hour.toml"];
    lines.push(Line {
        key: "idle_hour".into(),
        what: "an idle simulated hour, client → pass → server".into(),
        sim: figure(root, gauntlet, &idle, "sim", o.runs.max(3))?,
        turmoil: Some(figure(root, gauntlet, &idle, "turmoil", turmoil_runs)?),
    });

    let catalogue = ["scenarios", "--seeds", "3", "--jobs", jobs.as_str()];
    lines.push(Line {
        key: "catalogue".into(),
        what: format!("the catalogue × ws/wss × 3 seeds, {jobs} at a time"),
        sim: figure(root, gauntlet, &catalogue, "sim", o.runs)?,
        turmoil: Some(figure(root, gauntlet, &catalogue, "turmoil", turmoil_runs)?),
    });

    for &n in crowds(o.quick) {
        let clients = n.to_string();
        let args = ["xtask/bench/crowd-l4.toml", "--clients", clients.as_str()];
        let turmoil_max = if o.quick {
            BASE_CROWD
        } else {
            TURMOIL_MAX_CLIENTS
        };
        let turmoil = if n <= turmoil_max {
            Some(figure(root, gauntlet, &args, "turmoil", turmoil_runs)?)
        } else {
            None
        };
        lines.push(Line {
            key: format!("conns_{n}"),
            what: format!(
                "{n} WebSocket clients at once → L4 balancer → 4 backends, 10 messages 1 s apart"
            ),
            sim: figure(root, gauntlet, &args, "sim", o.runs.min(3))?,
            turmoil,
        });
    }
    Ok(lines)
}

/// Runs `gauntlet bench ARGS --engine ENGINE` `runs` times; the median.
fn figure(
    root: &Path,
    gauntlet: &Path,
    args: &[&str],
    engine: &str,
    runs: usize,
) -> Result<Figure, String> {
    eprintln!(
        "measuring on {engine} ({runs}×): gauntlet bench {}",
        args.join(" ")
    );
    let mut samples = Vec::new();
    for _ in 0..runs {
        samples.push(sample(root, gauntlet, args, engine)?);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok(Figure {
        wall_ms: median(samples.iter().map(|s| s.wall_ms).collect()),
        rss_mb: median(samples.iter().map(|s| s.rss_mb).collect()),
        samples: samples.len(),
    })
}

fn sample(root: &Path, gauntlet: &Path, args: &[&str], engine: &str) -> Result<Sample, String> {
    let out = Command::new(gauntlet)
        .current_dir(root)
        .arg("bench")
        .args(args)
        .args(["--engine", engine])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", gauntlet.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let command = format!("gauntlet bench {} --engine {engine}", args.join(" "));
    if !out.status.success() {
        return Err(format!(
            "`{command}` failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let field = |name: &str| -> Result<f64, String> {
        number(&text, name).ok_or_else(|| format!("`{command}` printed no `{name}`: {text}"))
    };
    let (runs, passed, clients) = (field("runs")?, field("passed")?, field("clients")?);
    let expected = if clients > 1.0 { clients } else { runs };
    if passed != expected {
        return Err(format!(
            "`{command}`: only {passed} of {expected} met their expectation, so the figure would \
             measure broken runs; `cargo xtask scenarios --engine {engine}` shows which"
        ));
    }
    Ok(Sample {
        wall_ms: field("wall_ms")?,
        rss_mb: field("peak_rss_mb").unwrap_or(f64::NAN),
    })
}

/// The number after `"name":` in a flat JSON object.
fn number(json: &str, name: &str) -> Option<f64> {
    let at = json.find(&format!("\"{name}\":"))? + name.len() + 3;
    let rest = &json[at..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

pub(crate) fn ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2} ms")
    } else if v < 1000.0 {
        format!("{v:.0} ms")
    } else {
        format!("{:.2} s", v / 1000.0)
    }
}

fn table(lines: &[Line]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n{}", machine());
    let _ = writeln!(
        out,
        "\n{:<84}  {:>10}  {:>9}  {:>10}  {:>9}  {:>12}",
        "measurement (median)", "sim", "sim RSS", "turmoil", "t. RSS", "turmoil/sim"
    );
    for l in lines {
        let (t, t_rss, ratio) = match l.turmoil {
            Some(t) => (
                ms(t.wall_ms),
                format!("{:.0} MiB", t.rss_mb),
                format!("{:.0}×", t.wall_ms / l.sim.wall_ms),
            ),
            None => ("not run".into(), "-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "{:<84}  {:>10}  {:>5.0} MiB  {:>10}  {:>9}  {:>12}",
            l.what,
            ms(l.sim.wall_ms),
            l.sim.rss_mb,
            t,
            t_rss,
            ratio
        );
    }
    let crowd = crowd_lines(lines);
    if !crowd.is_empty() {
        let _ = writeln!(
            out,
            "\nsim cost per client (flat if linear; memory counted from the previous point):"
        );
        let mut before: Option<(usize, f64)> = None;
        for &(n, l) in &crowd {
            let memory = match before {
                Some((m, rss)) => format!(
                    "{:>6.1} KiB",
                    (l.sim.rss_mb - rss) * 1024.0 / (n - m) as f64
                ),
                None => "     -    ".into(),
            };
            let _ = writeln!(
                out,
                "  {n:>6} clients: {:>7.1} µs wall, {memory} memory per client",
                per_client_us(l, n),
            );
            before = Some((n, l.sim.rss_mb));
        }
        if let Some((largest, ratio)) = per_client_ratio(&crowd) {
            let _ = writeln!(
                out,
                "  {largest} / {BASE_CROWD} clients: {ratio:.2}× the wall time per client{}",
                if largest < 100_000 {
                    " (100000 clients without --quick)"
                } else {
                    ""
                }
            );
        }
    }
    out
}

/// How many clients a crowd's line measured (`None` for another line).
fn clients(l: &Line) -> Option<usize> {
    l.key.strip_prefix("conns_")?.parse().ok()
}

/// The crowd lines, with their clients, fewest first.
fn crowd_lines(lines: &[Line]) -> Vec<(usize, &Line)> {
    lines
        .iter()
        .filter_map(|l| Some((clients(l)?, l)))
        .collect()
}

/// Wall time per client of a crowd of `n`, in µs.
fn per_client_us(l: &Line, n: usize) -> f64 {
    l.sim.wall_ms * 1000.0 / n as f64
}

/// The largest crowd measured and its wall time per client over [`BASE_CROWD`]'s: 1 if the
/// cost grows linearly with clients.
fn per_client_ratio(crowd: &[(usize, &Line)]) -> Option<(usize, f64)> {
    let base = crowd.iter().find(|(n, _)| *n == BASE_CROWD)?;
    let largest = crowd.iter().max_by_key(|(n, _)| *n)?;
    (largest.0 > base.0).then(|| {
        (
            largest.0,
            per_client_us(largest.1, largest.0) / per_client_us(base.1, base.0),
        )
    })
}

/// The machine, in one line: CPU model, cores, memory.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| number_after(&t, "MemTotal:"))
        .map_or_else(
            || "unknown memory".into(),
            |kib| format!("{:.0} GiB", kib / 1048576.0),
        );
    format!("machine: {cpu}, {cores} cores, {mem}")
}

fn number_after(text: &str, label: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with(label))?;
    line[label.len()..].split_whitespace().next()?.parse().ok()
}

fn bench_json(lines: &[Line], o: &Options) -> String {
    let mut out = String::from("{\n");
    let machine = machine();
    let machine = machine.trim_start_matches("machine: ").replace('"', "'");
    let _ = writeln!(out, "  \"machine\": \"{machine}\",");
    let _ = writeln!(out, "  \"runs\": {},", o.runs);
    let num = |v: f64| {
        if v.is_finite() {
            format!("{v:.3}")
        } else {
            "null".into()
        }
    };
    let mut fields = Vec::new();
    let crowd = crowd_lines(lines);
    for l in lines {
        fields.push(format!("  \"{}_ms\": {}", l.key, num(l.sim.wall_ms)));
        if let Some(n) = clients(l) {
            fields.push(format!(
                "  \"{}_us_per_client\": {}",
                l.key,
                num(per_client_us(l, n))
            ));
        }
        fields.push(format!("  \"{}_rss_mb\": {}", l.key, num(l.sim.rss_mb)));
        fields.push(format!("  \"{}_samples\": {}", l.key, l.sim.samples));
        if let Some(t) = l.turmoil {
            fields.push(format!("  \"{}_turmoil_ms\": {}", l.key, num(t.wall_ms)));
            fields.push(format!("  \"{}_turmoil_rss_mb\": {}", l.key, num(t.rss_mb)));
            fields.push(format!(
                "  \"{}_turmoil_ratio\": {}",
                l.key,
                num(t.wall_ms / l.sim.wall_ms)
            ));
        }
    }
    if let Some((largest, ratio)) = per_client_ratio(&crowd) {
        fields.push(format!(
            "  \"conns_{largest}_per_{BASE_CROWD}_ratio\": {}",
            num(ratio)
        ));
    }
    out.push_str(&fields.join(",\n"));
    out.push_str("\n}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_come_out_of_a_flat_json_object() {
        let j = r#"{"engine":"sim","runs":3,"wall_ms":1.5,"peak_rss_mb":null}"#;
        assert_eq!(number(j, "runs"), Some(3.0));
        assert_eq!(number(j, "wall_ms"), Some(1.5));
        assert_eq!(number(j, "peak_rss_mb"), None);
        assert_eq!(number(j, "absent"), None);
    }

    #[test]
    fn bench_json_has_the_documented_keys() {
        let f = Figure {
            wall_ms: 2.0,
            rss_mb: 10.0,
            samples: 3,
        };
        let lines = [
            Line {
                key: "idle_hour".into(),
                what: String::new(),
                sim: f,
                turmoil: Some(Figure {
                    wall_ms: 4000.0,
                    ..f
                }),
            },
            Line {
                key: "conns_10000".into(),
                what: String::new(),
                sim: f,
                turmoil: None,
            },
        ];
        let json = bench_json(
            &lines,
            &Options {
                runs: 3,
                quick: false,
                criterion: false,
                relay_only: false,
            },
        );
        for key in [
            "idle_hour_ms",
            "idle_hour_turmoil_ms",
            "idle_hour_turmoil_ratio",
            "conns_10000_ms",
            "conns_10000_rss_mb",
        ] {
            assert!(json.contains(&format!("\"{key}\":")), "{key} in {json}");
        }
        assert!(json.contains("\"idle_hour_turmoil_ratio\": 2000.000"));
        assert!(!json.contains("conns_10000_turmoil"));
        // 2 ms for 10,000 clients: 0.2 µs each; no 1,000-client crowd, so no ratio.
        assert!(json.contains("\"conns_10000_us_per_client\": 0.200"));
        assert!(!json.contains("_per_1000_ratio"));
        assert!(!json.contains("idle_hour_us_per_client"));
    }

    fn crowd(n: usize, wall_ms: f64) -> Line {
        Line {
            key: format!("conns_{n}"),
            what: format!("{n} clients"),
            sim: Figure {
                wall_ms,
                rss_mb: n as f64 / 50.0,
                samples: 1,
            },
            turmoil: None,
        }
    }

    #[test]
    fn the_per_client_cost_is_compared_with_a_thousand_clients() {
        let lines = [
            crowd(100, 20.0),
            crowd(1000, 250.0),
            crowd(10_000, 2500.0),
            crowd(100_000, 30_000.0),
        ];
        let crowd = crowd_lines(&lines);
        assert_eq!(per_client_ratio(&crowd), Some((100_000, 1.2)));
        let text = table(&lines);
        assert!(text.contains("100000 clients:   300.0 µs wall"), "{text}");
        assert!(text.contains("100000 / 1000 clients: 1.20×"), "{text}");
        assert!(!text.contains("without --quick"), "{text}");
        let json = bench_json(
            &lines,
            &Options {
                runs: 1,
                quick: false,
                criterion: false,
                relay_only: false,
            },
        );
        assert!(
            json.contains("\"conns_1000_us_per_client\": 250.000"),
            "{json}"
        );
        assert!(
            json.contains("\"conns_100000_per_1000_ratio\": 1.200"),
            "{json}"
        );
        // --quick stops at 10,000 clients and says where 100,000 are.
        let text = table(&lines[..3]);
        assert!(
            text.contains("10000 / 1000 clients: 1.00× the wall time per client (100000 clients without --quick)"),
            "{text}"
        );
    }
}
