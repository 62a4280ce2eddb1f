//! `gauntlet overhead`: measures bytes on the wire and latency per message for each transport
//! ([`gauntlet::run::overhead`]), prints the bytes per message, and writes or checks the
//! rendered page, its chart and the measurements.

use gauntlet::run::overhead;
use gauntlet_reports::overhead::{Overhead, Sweep};

use crate::cli::report::write_or_check;
use crate::*;

/// Where `gauntlet overhead` writes.
pub(crate) struct Outputs<'a> {
    pub(crate) markdown: Option<&'a Path>,
    pub(crate) svg: Option<&'a Path>,
    pub(crate) json: Option<&'a Path>,
    /// Compare the Markdown page and the chart with the files there instead of writing them.
    pub(crate) check: bool,
    pub(crate) invoked_as: &'a str,
}

pub(crate) fn overhead(out: &Outputs<'_>) -> anyhow::Result<ExitCode> {
    outln!(
        "measuring {} cells on the simulated engine (the reconnect storms are {} clients each)",
        overhead::cells(),
        overhead::STORM_CLIENTS
    );
    let progress = crate::cli::run::Progress::start(overhead::cells());
    let measured = overhead::measure(|_, _| progress.advance())?;
    progress.finish();
    print_table(&measured);
    let rendered = [
        (
            out.markdown,
            gauntlet_reports::overhead_markdown(&measured, out.invoked_as),
        ),
        (out.svg, gauntlet_reports::overhead_svg(&measured)),
    ];
    let stale = !write_or_check(&rendered, out.check, out.invoked_as, "a rendered page")?;
    if let Some(path) = out.json {
        let json = serde_json::to_string_pretty(&measured).context("encoding the measurements")?;
        gauntlet::files::write_file(path, &format!("{json}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
        outln!("wrote {}", path.display());
    }
    Ok(if stale {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Bytes per message (both ways) for each transport, a line per cell.
fn print_table(o: &Overhead) {
    let transports = o.transports();
    let mut head = format!("{:<6} {:>8} {:>7}", "sweep", "payload", "msg/s");
    for t in &transports {
        head.push_str(&format!(" {t:>14}"));
    }
    outln!("{head}   (bytes on the wire per message, both ways)");
    let mut rows: Vec<(Sweep, u64, f64)> = Vec::new();
    for cell in &o.cells {
        let key = (cell.sweep, cell.payload_bytes, cell.rate_per_s);
        if !rows.contains(&key) {
            rows.push(key);
        }
    }
    for (sweep, payload, rate) in rows {
        let name = match sweep {
            Sweep::Size => "size",
            Sweep::Rate => "rate",
        };
        let mut line = format!("{name:<6} {payload:>8} {rate:>7}");
        for t in &transports {
            let text = match o.cell(sweep, t, payload, rate) {
                Some(cell) if cell.outcome == "delivered" => format!("{:.1}", cell.per_message()),
                Some(cell) => cell.outcome.clone(),
                None => "-".into(),
            };
            line.push_str(&format!(" {text:>14}"));
        }
        outln!("{line}");
    }
}
