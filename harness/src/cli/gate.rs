//! `gauntlet gate`: the gate suite through the user's own proxy.

use std::collections::BTreeMap;
use std::time::Duration;

use gauntlet::real::gate::{self as g, DEFAULT_QUIET, Proxy, QUICK_QUIET};
use gauntlet::real::product::Product;
use gauntlet::real::product::command::CommandLine;
use gauntlet_reports::Results;

use crate::*;

/// The longest quiet period `--quiet-s` takes: a day.
const MAX_QUIET_S: u64 = 86_400;

/// `gauntlet gate`'s flags.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("proxy").required(true).args(["proxy_cmd", "product"])))]
pub(crate) struct GateArgs {
    /// The proxy's command line, with {listen} and {upstream} ({listen} only with
    /// --forward).
    #[arg(long, value_name = "CMD", conflicts_with_all = ["template", "values"])]
    proxy_cmd: Option<String>,
    /// The proxy is a forward proxy, reached by CONNECT: every behaviour runs with the
    /// proxy as the client's explicit proxy, for ws and wss.
    #[arg(long, conflicts_with = "product")]
    forward: bool,
    /// Gate a real product instead of a command: nginx, haproxy, apache (or apache2, httpd),
    /// squid, tinyproxy, caddy, lighttpd, h2o, varnish, trafficserver (or ats),
    /// node-http-proxy or mitmproxy, started for each behaviour from its built-in WebSocket
    /// configuration (or --template), ws and wss (ws only where the template does not
    /// listen for TLS: Varnish).
    #[arg(long, value_name = "NAME", value_parser = parse_product)]
    product: Option<Product>,
    /// The product's configuration template instead of its built-in one ({{listen}},
    /// {{upstream}}, {{dir}} and the rest filled in: see the README).
    #[arg(long, value_name = "FILE", requires = "product")]
    template: Option<PathBuf>,
    /// A value for a placeholder of the product's template (KEY=VALUE; may repeat), over
    /// the built-in template's own (nginx's read_timeout=3600s, HAProxy's
    /// tunnel_timeout=3600s).
    #[arg(long = "value", value_name = "KEY=VALUE", requires = "product", value_parser = parse_value)]
    values: Vec<(String, String)>,
    /// Another gate suite than the one built in (scenarios/gate): a folder of scenario
    /// files with one `pass` hop each, which the proxy replaces.
    #[arg(long, value_name = "DIR")]
    suite: Option<PathBuf>,
    /// Write a JUnit report here: a testcase per behaviour and scheme, named by the
    /// behaviour's title, with its time, its reason and its transcript excerpt.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write the results as JSON here (the shape of results.json).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a Markdown summary here, for a pull-request comment.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Behaviours run at a time (each with its own proxy process).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    jobs: u64,
    /// Print every behaviour's whole transcript (a failed behaviour prints an excerpt
    /// otherwise).
    #[arg(long)]
    transcript: bool,
    /// How long the quiet-tunnel behaviours keep the tunnel silent, in seconds (1 to 86400).
    /// The default, 75, catches the 60 s idle timeouts of nginx and AWS ALB; a proxy that
    /// closes quiet tunnels after N seconds passes any shorter period.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=MAX_QUIET_S))]
    quiet_s: Option<u64>,
    /// A quick run for local iteration: a quiet period of 3 s instead of 75 s. It cannot
    /// catch an idle limit longer than 3 s (nginx's and AWS ALB's 60 s among them).
    #[arg(long, conflicts_with = "quiet_s")]
    quick: bool,
}

/// `--product`'s value.
fn parse_product(name: &str) -> Result<Product, String> {
    name.parse::<Product>().map_err(|e| e.to_string())
}

/// `--value`'s `KEY=VALUE`.
fn parse_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{text}`")),
    }
}

impl GateArgs {
    /// The quiet period, and whether it is a quick run's.
    fn quiet(&self) -> (Duration, bool) {
        match (self.quick, self.quiet_s) {
            (true, _) => (QUICK_QUIET, true),
            (false, Some(s)) => (Duration::from_secs(s), false),
            (false, None) => (DEFAULT_QUIET, false),
        }
    }

    /// The proxy under test, as the flags name it.
    fn proxy(&self) -> anyhow::Result<Proxy> {
        let Some(product) = self.product else {
            let role = if self.forward {
                Role::Forward
            } else {
                Role::Reverse
            };
            let line = self.proxy_cmd.as_deref().unwrap_or_default();
            let command = CommandLine::parse_as(line, role)
                .map_err(|e| anyhow::anyhow!("--proxy-cmd: {e}"))?;
            return Ok(Proxy::Command(command));
        };
        let values: BTreeMap<String, String> = self.values.iter().cloned().collect();
        let gate = match &self.template {
            Some(file) => {
                if let Err(e) = std::fs::metadata(file) {
                    anyhow::bail!("--template {}: cannot read it: {e}", file.display());
                }
                g::ProductGate::from_file(product, file, values)
            }
            None => g::ProductGate::built_in(product, values, &std::env::temp_dir())
                .map_err(|e| anyhow::anyhow!("--product {product}: {e}"))?,
        };
        // A value no placeholder takes would be ignored: a misspelt name.
        let text = std::fs::read_to_string(&gate.template)
            .with_context(|| format!("reading {}", gate.template.display()))?;
        let used = gauntlet::real::product::template::placeholders(&text);
        for (name, _) in &self.values {
            if !used.contains(name) {
                anyhow::bail!(
                    "--value {name}: {} has no placeholder `{{{{{name}}}}}` (its placeholders: {})",
                    gate.template_name,
                    used.iter().cloned().collect::<Vec<_>>().join(", ")
                );
            }
        }
        Ok(Proxy::Product(gate))
    }
}

/// What the output and the reports say of a quiet period: what it catches, and, for a quick
/// run, what it cannot.
fn quiet_note(quiet: Duration, quick: bool) -> String {
    let q = g::seconds(quiet);
    if quick {
        format!(
            "quick run: the quiet period is {q}, so an idle limit longer than {q} goes \
             unseen (nginx's and AWS ALB's 60 s among them); run without --quick to check {}",
            g::seconds(DEFAULT_QUIET)
        )
    } else {
        format!("quiet period {q}: a proxy that closes a tunnel quiet for less fails")
    }
}

/// `gauntlet gate`: the gate suite through the proxy `--proxy-cmd` starts (or `--product`),
/// one behaviour per line.
pub(crate) fn gate(args: &GateArgs) -> anyhow::Result<ExitCode> {
    let proxy = args.proxy()?;
    let suite = args.suite.clone().map_or(g::Suite::BuiltIn, g::Suite::Dir);
    let (jobs, show_transcript) = (args.jobs as usize, args.transcript);
    let schemes = g::schemes(&proxy);
    let mut scenarios = match g::load(&suite, &proxy) {
        Ok(s) => s,
        Err(errors) => {
            for e in &errors {
                errln!("{e}");
            }
            anyhow::bail!("{suite} is not a gate suite");
        }
    };
    let (quiet, quick) = args.quiet();
    g::set_quiet(&mut scenarios, quiet);
    let first =
        g::preflight(&proxy).map_err(|e| anyhow::anyhow!("the proxy did not start: {e}"))?;
    let (kind, how) = match proxy.role() {
        Role::Reverse => ("reverse proxy", "in front of the server"),
        Role::Forward => ("forward proxy", "reached by CONNECT"),
    };
    let schemes_text = schemes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" and ");
    outln!(
        "gating {proxy} as a {kind} {how} (it starts: pid {} listened on {}) with {} from {suite}, {schemes_text} on live, {jobs} at a time",
        first.pid,
        first.addr,
        plural(scenarios.len(), "behaviour"),
    );
    let notes = vec![
        format!("gated {proxy} as a {kind} {how}, {schemes_text}, with {suite}"),
        quiet_note(quiet, quick),
    ];
    outln!("{}", notes[1]);
    let style = Style::for_stdout();
    let name = |s: &scenario::Scenario| {
        Path::new(&s.file)
            .file_stem()
            .map_or_else(|| s.file.clone(), |n| n.to_string_lossy().into_owned())
    };
    let width = scenarios.iter().map(|s| name(s).len()).max().unwrap_or(0);
    let product = proxy.product();
    let mut results = g::run(&scenarios, schemes, jobs, |s, entry, finished| {
        let verdict = if entry.pass {
            style.paint("32", "pass")
        } else {
            style.paint("31;1", "FAIL")
        };
        outln!(
            "{verdict}  {:<width$}  {:<3}  {:<18}  {}",
            name(s),
            entry.scheme,
            entry.outcome,
            entry.detail
        );
        if !entry.pass {
            outln!("      {}: expected {}", s.title, entry.expected);
        }
        match (&finished.output, show_transcript) {
            (Ok(out), true) => {
                for line in out.rendered().lines() {
                    outln!("      {line}");
                }
            }
            _ if !entry.pass => {
                for line in &entry.excerpt {
                    outln!("      {line}");
                }
                if let (Some(product), false) = (product, entry.product_log.is_empty()) {
                    outln!("      {product}'s log lines:");
                    for line in &entry.product_log {
                        outln!("        {line}");
                    }
                }
            }
            _ => {}
        }
    });
    results.notes = notes;
    write_reports(args, &results)?;
    let (passed, failed) = results.tally();
    let errors = results
        .runs
        .iter()
        .filter(|r| r.outcome == "harness-error")
        .count();
    for (i, f) in gauntlet_reports::faults(&results).iter().enumerate() {
        if f.runs.len() > 1 {
            outln!(
                "fault {}: {} ({}) explains {} failures",
                gauntlet_reports::Fault::id(i),
                f.outcome,
                f.runs[0].detail,
                f.runs.len()
            );
        }
    }
    let summary = format!("{passed} passed, {failed} failed");
    outln!(
        "{}",
        style.paint(if failed == 0 { "32" } else { "31;1" }, &summary)
    );
    if quick {
        outln!("{}", results.notes[1]);
    }
    if errors > 0 {
        anyhow::bail!(
            "{} could not run (see above): the proxy did not start every time",
            plural(errors, "behaviour")
        );
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A report rendered from the results.
type Render = fn(&Results) -> String;

/// Writes the reports the flags ask for: JUnit, JSON, Markdown.
fn write_reports(args: &GateArgs, results: &Results) -> anyhow::Result<()> {
    let reports: [(&Option<PathBuf>, &str, Render); 3] = [
        (&args.junit, "junit", gauntlet_reports::gate_junit),
        (&args.json, "json", Results::to_json),
        (&args.markdown, "markdown", gauntlet_reports::gate_markdown),
    ];
    for (path, what, render) in reports {
        if let Some(path) = path {
            gauntlet::files::write_file(path, &render(results))
                .with_context(|| format!("writing {}", path.display()))?;
            outln!("{what}: {}", path.display());
        }
    }
    Ok(())
}
