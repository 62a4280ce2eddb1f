//! `gauntlet gate` as CI runs it: the gate suite through `gauntlet proxy` started from
//! `--proxy-cmd`, passing with `pass` and failing with a stripping proxy, its JUnit report, no
//! process left behind, and its refusals; with `--forward`, through `connect-proxy` as the
//! client's explicit proxy, for ws and wss. Every wait has a timeout (a safety net, not a claim
//! about speed); the gate is killed by its PID on the way out, panic or not.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gauntlet::real::product::is_alive;

/// The safety net on the gate's run (a quick run of the suite takes well under a minute).
const PATIENCE: Duration = Duration::from_secs(300);

/// A running `gauntlet gate`, killed by its PID when dropped.
struct Gate(Child);

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a finished gate left: its exit code and everything it printed.
struct Ran {
    code: Option<i32>,
    text: String,
}

impl Ran {
    /// Every distinct process id the output names (`pid N`): the proxy's first start, and, with
    /// `--transcript`, the proxy of every behaviour.
    fn pids(&self) -> Vec<u32> {
        let pids: std::collections::BTreeSet<u32> = (self.text.split("pid ").skip(1))
            .filter_map(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
            .collect();
        pids.into_iter().collect()
    }
}

/// Runs `gauntlet gate ARGS` from the workspace root.
fn gate(args: &[&str]) -> Ran {
    gate_in(&crate::root(), args)
}

/// Runs `gauntlet gate ARGS` from `dir`.
fn gate_in(dir: &std::path::Path, args: &[&str]) -> Ran {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .current_dir(dir)
        .arg("gate")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the gauntlet binary starts");
    let readers = [
        read_all(
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ),
        read_all(
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ),
    ];
    let mut gate = Gate(child);
    let step = Duration::from_millis(20);
    let mut waited = Duration::ZERO;
    let status = loop {
        if let Some(status) = gate.0.try_wait().expect("the gate's status") {
            break status;
        }
        assert!(
            waited < PATIENCE,
            "the gate did not end within {PATIENCE:?}"
        );
        std::thread::sleep(step);
        waited += step;
    };
    let text = readers
        .map(|r| r.recv_timeout(PATIENCE).expect("the gate's output"))
        .concat();
    Ran {
        code: status.code(),
        text,
    }
}

/// Reads a stream to its end on a thread of its own.
fn read_all(stream: Option<Box<dyn std::io::Read + Send>>) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut s) = stream {
            let _ = s.read_to_string(&mut text);
        }
        let _ = tx.send(text);
    });
    rx
}

/// `gauntlet proxy` with `model_args` as the proxy under test.
fn proxy_cmd(model_args: &str) -> String {
    format!(
        "'{}' proxy {model_args} --listen {{listen}} --upstream {{upstream}}",
        env!("CARGO_BIN_EXE_gauntlet")
    )
}

/// `gauntlet proxy` running `connect-proxy` with `preset`, as a forward proxy (no upstream).
fn forward_cmd(preset: &str) -> String {
    format!(
        "'{}' proxy --model connect-proxy --param preset={preset} --listen {{listen}}",
        env!("CARGO_BIN_EXE_gauntlet")
    )
}

/// A JUnit file for one test, under the target folder.
fn junit_path(name: &str) -> PathBuf {
    let dir = crate::root().join("target/gauntlet/gate-tests");
    std::fs::create_dir_all(&dir).expect("a folder for the report");
    dir.join(format!("{name}-{}.xml", std::process::id()))
}

/// Runs `gauntlet gate ARGS --junit FILE`, FILE a fresh report named after `name`: what it
/// left and the report's path.
fn gate_reporting(name: &str, args: &[&str]) -> (Ran, PathBuf) {
    let junit = junit_path(name);
    let junit_arg = junit.display().to_string();
    let mut all = args.to_vec();
    all.extend(["--junit", &junit_arg]);
    (gate(&all), junit)
}

/// The gate through the command `cmd` on the behaviours of `suite`, which must fail `only` (a
/// behaviour's file) and nothing else: what it printed, every case, and that failure's message.
fn fails_only(name: &str, cmd: &str, suite: &str, only: &str) -> (Ran, Vec<Case>, String) {
    let (ran, junit) = gate_reporting(name, &["--proxy-cmd", cmd, "--suite", suite]);
    assert_eq!(ran.code, Some(1), "{}", ran.text);
    let cases = junit_cases(&junit);
    let failed: Vec<&Case> = cases.iter().filter(|c| c.failure.is_some()).collect();
    let files: Vec<&str> = failed.iter().map(|c| c.file.as_str()).collect();
    assert_eq!(files, [only], "{}", ran.text);
    let (message, _) = failed[0].failure.clone().unwrap_or_default();
    (ran, cases, message)
}

/// Each testcase's classname (the behaviour's file) and its failure's message, if it failed.
fn testcases(junit: &PathBuf) -> Vec<(String, Option<String>)> {
    junit_cases(junit)
        .into_iter()
        .map(|c| (c.file, c.failure.map(|(message, _)| message)))
        .collect()
}

/// One testcase of a JUnit report.
struct Case {
    /// The behaviour's file.
    file: String,
    /// The behaviour's title and scheme (`the upgrade passes … [wss]`).
    name: String,
    /// Its wall time in seconds.
    time: f64,
    /// The failure's message (the one-line reason) and its text, if it failed.
    failure: Option<(String, String)>,
    /// Its `<system-out>`: a failure's transcript excerpt, a pass's outcome and detail.
    out: String,
}

/// Every testcase of the JUnit report at `junit`.
fn junit_cases(junit: &PathBuf) -> Vec<Case> {
    let xml = std::fs::read_to_string(junit).expect("the gate wrote its JUnit report");
    let doc = roxmltree::Document::parse(&xml).expect("the report is well-formed XML");
    doc.descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|case| Case {
            file: case.attribute("classname").unwrap_or("").to_string(),
            name: case.attribute("name").unwrap_or("").to_string(),
            time: case
                .attribute("time")
                .and_then(|t| t.parse().ok())
                .unwrap_or(-1.0),
            failure: case
                .children()
                .find(|c| c.has_tag_name("failure"))
                .map(|f| {
                    (
                        f.attribute("message").unwrap_or("").to_string(),
                        f.text().unwrap_or("").to_string(),
                    )
                }),
            out: case
                .children()
                .find(|c| c.has_tag_name("system-out"))
                .and_then(|c| c.text())
                .unwrap_or("")
                .to_string(),
        })
        .collect()
}

/// How many behaviours the built-in gate suite has.
fn behaviours() -> usize {
    gauntlet::real::gate::BUILT_IN.len()
}

/// The built-in behaviours that run ws alone (tag `ws-only`).
fn ws_only() -> usize {
    behaviours_where(|_, text| text.contains(&format!("\"{}\"", gauntlet::real::gate::WS_ONLY)))
        .len()
}

/// The runs of the built-in suite when the gate runs ws and wss.
fn ws_and_wss_runs() -> usize {
    2 * behaviours() - ws_only()
}

/// The gate's output says `what`.
fn assert_says(ran: &Ran, what: &str) {
    assert!(ran.text.contains(what), "no `{what}` in:\n{}", ran.text);
}

/// Every process the gate's output names is gone.
fn assert_none_survive(ran: &Ran) {
    let pids = ran.pids();
    assert!(pids.len() >= 2, "no proxy pids in:\n{}", ran.text);
    for pid in pids {
        assert!(!is_alive(pid), "proxy process {pid} survived the gate");
    }
}

#[test]
fn a_pass_through_proxy_passes_every_behaviour_and_leaves_no_process_behind() {
    let cmd = proxy_cmd("--model pass");
    let (ran, junit) = gate_reporting("pass", &["--proxy-cmd", &cmd, "--transcript", "--quick"]);
    assert_eq!(ran.code, Some(0), "{}", ran.text);
    let cases = testcases(&junit);
    assert!(cases.len() >= 10, "{cases:?}");
    assert!(cases.iter().all(|(_, f)| f.is_none()), "{cases:?}");
    assert!(
        ran.text
            .contains(&format!("{} passed, 0 failed", cases.len())),
        "{}",
        ran.text
    );
    assert!(ran.text.contains("pass  upgrade "), "{}", ran.text);
    // The server saw the client's offer and the client its choice.
    assert_says(
        &ran,
        "subprotocols offered: chat, superchat; chose superchat",
    );
    assert_says(&ran, "101 Switching Protocols, subprotocol superchat");
    assert_says(&ran, "100 sessions open at once, each with its own echoes");
    // One proxy per behaviour, and the first start.
    assert_eq!(ran.pids().len(), cases.len() + 1, "{}", ran.text);
    assert_none_survive(&ran);
}

#[test]
fn a_stripping_proxy_fails_the_gate_and_the_junit_report_names_the_failed_behaviours() {
    let cmd = proxy_cmd("--model transparent-proxy --param behaviour=strip");
    let (ran, junit) = gate_reporting("strip", &["--proxy-cmd", &cmd, "--quick"]);
    assert_eq!(ran.code, Some(1), "{}", ran.text);
    let cases = testcases(&junit);
    let failed: Vec<&(String, Option<String>)> =
        cases.iter().filter(|(_, f)| f.is_some()).collect();
    let upgrade = cases
        .iter()
        .find(|(file, _)| file == "scenarios/gate/handshake/upgrade.toml")
        .expect("the upgrade behaviour is reported");
    let message = upgrade.1.as_deref().expect("the upgrade behaviour failed");
    assert!(
        message.starts_with("handshake-rejected: HTTP 426 Upgrade Required at "),
        "{message}"
    );
    // The testcase is named by the behaviour's title, timed, and carries the excerpt.
    let case = junit_cases(&junit)
        .into_iter()
        .find(|c| c.file == "scenarios/gate/handshake/upgrade.toml")
        .expect("the upgrade's testcase");
    assert_eq!(
        case.name,
        "the upgrade passes and a small echo comes back, ws and wss [ws]"
    );
    assert!(case.time >= 0.0, "{}", case.time);
    let (_, text) = case.failure.expect("a failure");
    assert!(
        text.starts_with("expected delivered, got handshake-rejected"),
        "{text}"
    );
    assert!(
        case.out.contains("client  upgrade request GET /echo"),
        "{}",
        case.out
    );
    assert!(
        case.out.contains("outcome handshake-rejected: HTTP 426"),
        "{}",
        case.out
    );
    assert!(
        ran.text.contains(&format!(
            "{} passed, {} failed",
            cases.len() - failed.len(),
            failed.len()
        )),
        "{}",
        ran.text
    );
    assert!(
        ran.text.contains("FAIL  upgrade "),
        "the gate names the failed behaviour: {}",
        ran.text
    );
    // Failed behaviours print their transcripts, the proxy's pid among them.
    assert_none_survive(&ran);
}

#[test]
fn a_forward_proxy_that_allows_every_port_passes_every_behaviour_for_ws_and_wss() {
    // Every port for CONNECT, and `Upgrade` kept on an absolute-form request.
    let cmd = format!("{} --param forward-upgrade=true", forward_cmd("tinyproxy"));
    let args = ["--forward", "--proxy-cmd", &cmd, "--transcript", "--quick"];
    let (ran, junit) = gate_reporting("forward-tinyproxy", &args);
    assert_eq!(ran.code, Some(0), "{}", ran.text);
    let cases = junit_cases(&junit);
    assert_eq!(cases.len(), ws_and_wss_runs(), "{}", ran.text);
    for (scheme, want) in [("ws", behaviours()), ("wss", behaviours() - ws_only())] {
        let runs = cases
            .iter()
            .filter(|c| c.name.ends_with(&format!(" [{scheme}]")))
            .count();
        assert_eq!(runs, want, "{scheme}: {}", ran.text);
    }
    assert!(cases.iter().all(|c| c.failure.is_none()), "{}", ran.text);
    assert_says(&ran, &format!("{} passed, 0 failed", cases.len()));
    assert_says(&ran, "as a forward proxy reached by CONNECT");
    // The client tunnels to the server's real address; the proxy dials it.
    assert_says(&ran, "CONNECT 127.0.0.1:");
    // One proxy per behaviour and scheme, and the first start.
    assert_eq!(ran.pids().len(), cases.len() + 1, "{}", ran.text);
    assert_none_survive(&ran);
}

/// The TLS-terminating proxy of `harness/tests/python/tls_terminating_proxy.py`, its upstream
/// `upstream` (placeholders and flags).
fn tls_terminating_cmd(upstream: &str) -> String {
    format!(
        "'{}' '{}' --listen {{listen}} --tls-listen {{tls_listen}} --cert {{cert}} --key {{key}} {upstream}",
        crate::interop::python().display(),
        crate::root()
            .join("harness/tests/python/tls_terminating_proxy.py")
            .display()
    )
}

#[test]
fn a_command_with_a_tls_listener_is_gated_for_wss_too_and_passes_every_behaviour() {
    let cmd = tls_terminating_cmd("--upstream {upstream}");
    let args = ["--proxy-cmd", &cmd, "--transcript", "--quick"];
    let (ran, junit) = gate_reporting("tls-terminating", &args);
    assert_eq!(ran.code, Some(0), "{}", ran.text);
    let cases = junit_cases(&junit);
    assert_eq!(cases.len(), ws_and_wss_runs(), "{}", ran.text);
    let wss = cases.iter().filter(|c| c.name.ends_with(" [wss]")).count();
    assert_eq!(wss, behaviours() - ws_only(), "{}", ran.text);
    assert!(cases.iter().all(|c| c.failure.is_none()), "{}", ran.text);
    assert_says(&ran, "ws and wss on live");
    // The client's TLS ends at the proxy's listener, published as the hop's port 443.
    assert_says(&ran, "and TLS on ");
    assert_says(&ran, "tls established");
    assert_eq!(ran.pids().len(), cases.len() + 1, "{}", ran.text);
    assert_none_survive(&ran);
}

#[test]
fn a_command_that_encrypts_again_reaches_the_servers_tls_port_and_checks_its_certificate() {
    let cmd = tls_terminating_cmd("--upstream-tls {upstream_tls} --ca {ca}");
    let args = [
        "--proxy-cmd",
        &cmd,
        "--suite",
        "scenarios/gate/handshake",
        "--transcript",
    ];
    let (ran, junit) = gate_reporting("tls-again", &args);
    assert_eq!(ran.code, Some(0), "{}", ran.text);
    let cases = junit_cases(&junit);
    assert!(
        cases.iter().any(|c| c.name.ends_with(" [wss]")),
        "{}",
        ran.text
    );
    assert!(cases.iter().all(|c| c.failure.is_none()), "{}", ran.text);
    // Every session reached the server over TLS: the proxy dialled its 443.
    assert_says(&ran, ", TLS 127.0.0.1:");
    assert_none_survive(&ran);
}

#[test]
fn a_tls_listener_without_its_certificate_is_refused_before_anything_starts() {
    let ran = gate(&["--proxy-cmd", "my-proxy {listen} {tls_listen} {upstream}"]);
    assert_eq!(ran.code, Some(2), "{}", ran.text);
    assert_says(
        &ran,
        "a TLS listener (`{tls_listen}`) needs its certificate",
    );
    let ran = gate(&["--proxy-cmd", "my-proxy {listen} {cert} {key} {upstream}"]);
    assert_eq!(ran.code, Some(2), "{}", ran.text);
    assert_says(&ran, "`{cert}` is the certificate of a TLS listener");
    let ran = gate(&["--forward", "--proxy-cmd", "fwd {listen} {ca}"]);
    assert_eq!(ran.code, Some(2), "{}", ran.text);
    assert_says(&ran, "a forward proxy's command has no `{ca}`");
}

#[test]
fn a_forward_proxy_that_allows_only_443_fails_with_403_and_the_junit_report_names_each_behaviour() {
    let cmd = forward_cmd("squid");
    let (ran, junit) = gate_reporting(
        "forward-squid",
        &["--forward", "--proxy-cmd", &cmd, "--quick"],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.text);
    let cases = junit_cases(&junit);
    assert_eq!(cases.len(), ws_and_wss_runs(), "{}", ran.text);
    // The server's ports are ephemeral, never 443: every CONNECT is refused. The request
    // that needs no CONNECT (an absolute-form GET) loses its `Upgrade`, as Squid's does.
    for case in &cases {
        let (message, _) = case.failure.as_ref().unwrap_or_else(|| {
            panic!("{} {} passed: {}", case.file, case.name, ran.text);
        });
        if case.file.ends_with("absolute-form-target.toml") {
            assert!(
                message.starts_with("handshake-rejected: HTTP 426 Upgrade Required"),
                "{message}"
            );
            continue;
        }
        assert!(
            message.starts_with("connect-refused: ")
                && message.contains("proxy answered 403 Forbidden to CONNECT 127.0.0.1:"),
            "{message}"
        );
    }
    assert!(
        cases.iter().any(
            |c| c.file == "scenarios/gate/handshake/upgrade.toml" && c.name.ends_with(" [wss]")
        ),
        "the upgrade's wss run is reported"
    );
    assert_says(&ran, &format!("0 passed, {} failed", cases.len()));
    assert_says(&ran, "FAIL  upgrade ");
    // Failed behaviours print their transcripts, the proxy's pid among them.
    assert_none_survive(&ran);
}

#[test]
fn a_bad_command_a_proxy_that_will_not_start_and_a_suite_that_is_not_a_gate_exit_2() {
    let exits = proxy_cmd("--model no-such-model");
    let cases: [(&[&str], &str); 12] = [
        (
            &["--proxy-cmd", "my-proxy --port 8080"],
            "must contain `{listen}`",
        ),
        (
            &["--forward", "--proxy-cmd", "my-proxy {listen} {upstream}"],
            "a forward proxy's command has no `{upstream}`",
        ),
        (
            &["--proxy-cmd", "my-proxy '{listen} {upstream}"],
            "unterminated ' quote",
        ),
        (&["--proxy-cmd", &exits], "the proxy did not start"),
        (
            &[
                "--proxy-cmd",
                "my-proxy {listen} {upstream}",
                "--suite",
                "scenarios/gate-negative",
            ],
            "is not a gate suite",
        ),
        (
            &[
                "--proxy-cmd",
                "p {listen} {upstream}",
                "--quick",
                "--quiet-s",
                "5",
            ],
            "'--quick' cannot be used with '--quiet-s <N>'",
        ),
        (
            &["--proxy-cmd", "p {listen} {upstream}", "--quiet-s", "0"],
            "invalid value '0' for '--quiet-s <N>'",
        ),
        (&["--product", "nginxx"], "unknown product `nginxx`"),
        (
            &["--product", "nginx", "--value", "read_timout=5s"],
            "--value read_timout: the built-in nginx-with-upgrade-lines.conf has no placeholder `{{read_timout}}`",
        ),
        (
            &["--product", "nginx", "--value", "novalue"],
            "expected KEY=VALUE, got `novalue`",
        ),
        (
            &["--product", "nginx", "--template", "no/such/template.conf"],
            "--template no/such/template.conf: cannot read it",
        ),
        (
            &[
                "--proxy-cmd",
                "p {listen} {upstream}",
                "--template",
                "t.conf",
            ],
            "'--proxy-cmd <CMD>' cannot be used with '--template <FILE>'",
        ),
    ];
    for (args, says) in cases {
        let ran = gate(args);
        assert_eq!(ran.code, Some(2), "{args:?}: {}", ran.text);
        assert!(ran.text.contains(says), "{args:?}: {}", ran.text);
    }
}

/// The built-in behaviours whose file `keep` keeps (by name and text), as reports name them.
fn behaviours_where(keep: impl Fn(&str, &str) -> bool) -> Vec<String> {
    gauntlet::real::gate::BUILT_IN
        .iter()
        .filter(|(name, text)| keep(name, text))
        .map(|(name, _)| name.to_string())
        .collect()
}

/// The behaviours that failed, by file, from the JUnit report at `junit`.
fn failed_behaviours(junit: &PathBuf) -> Vec<String> {
    junit_cases(junit)
        .into_iter()
        .filter(|c| c.failure.is_some())
        .map(|c| c.file)
        .collect()
}

#[test]
fn a_proxy_that_closes_tunnels_quiet_for_5_s_fails_the_quiet_behaviours_of_8_s_and_only_those() {
    let cmd = proxy_cmd("--model idle-killer --param timeout-ms=5000");
    let (ran, junit) = gate_reporting("idle-5s", &["--proxy-cmd", &cmd, "--quiet-s", "8"]);
    assert_eq!(ran.code, Some(1), "{}", ran.text);
    // Every behaviour that goes quiet for the quiet period, but those whose Pings keep the
    // tunnel busy (traffic either way re-arms the idle killer).
    let quiet = behaviours_where(|_, text| {
        text.contains("\"quiet-period\"") && !text.contains("ping-interval-ms")
    });
    assert!(quiet.len() >= 3, "{quiet:?}");
    assert!(quiet.contains(&"scenarios/gate/timing/quiet-tunnel.toml".to_string()));
    assert_eq!(failed_behaviours(&junit), quiet, "{}", ran.text);
    assert_says(&ran, "quiet period 8 s");
    assert_says(&ran, "FAIL  quiet-tunnel ");
    assert_says(&ran, "idle-closed");
    assert_none_survive(&ran);
}

#[test]
fn a_quick_run_misses_that_proxy_and_says_it_cannot_catch_longer_limits() {
    let cmd = proxy_cmd("--model idle-killer --param timeout-ms=5000");
    let (ran, junit) = gate_reporting("idle-5s-quick", &["--proxy-cmd", &cmd, "--quick"]);
    assert_eq!(ran.code, Some(0), "{}", ran.text);
    assert!(failed_behaviours(&junit).is_empty(), "{}", ran.text);
    assert_says(
        &ran,
        "quick run: the quiet period is 3 s, so an idle limit longer than 3 s goes unseen",
    );
}

#[test]
fn a_proxy_that_serves_one_connection_at_a_time_fails_the_concurrency_behaviours_and_only_those() {
    // `--max-connections 1` queues the others in the listen queue: one tunnel at a time.
    let cmd = proxy_cmd("--model pass --max-connections 1");
    let (ran, junit) = gate_reporting("one-at-a-time", &["--proxy-cmd", &cmd, "--quick"]);
    assert_eq!(ran.code, Some(1), "{}", ran.text);
    // Exactly the behaviours with many sessions: the concurrency folder.
    let many = behaviours_where(|_, text| text.contains("\nsessions = "));
    assert_eq!(
        many,
        behaviours_where(|name, _| name.starts_with("scenarios/gate/concurrency/"))
    );
    assert_eq!(failed_behaviours(&junit), many, "{}", ran.text);
    assert_says(&ran, "FAIL  concurrent-sessions ");
    // The first session opens and waits for the others; the rest wait for it, and time out.
    assert_says(
        &ran,
        "1 of 100 opened; sessions: 1 delivered, 99 handshake-timeout",
    );
    assert_none_survive(&ran);
}

#[test]
fn a_proxy_that_drops_the_subprotocol_offer_fails_the_negotiation_behaviours_and_only_those() {
    let cmd = proxy_cmd(
        "--model header-mangler --param 'rules=[{ field = \"Sec-WebSocket-Protocol\", action = \"drop\" }]'",
    );
    let (ran, junit) = gate_reporting("no-subprotocol", &["--proxy-cmd", &cmd, "--quick"]);
    assert_eq!(ran.code, Some(1), "{}", ran.text);
    let failed: Vec<Case> = junit_cases(&junit)
        .into_iter()
        .filter(|c| c.failure.is_some())
        .collect();
    let files: Vec<String> = failed.iter().map(|c| c.file.clone()).collect();
    // Exactly the behaviours that offer subprotocols.
    let offering = behaviours_where(|_, text| text.contains("\nsubprotocols = "));
    assert!(offering.len() >= 4, "{offering:?}");
    assert_eq!(files, offering, "{}", ran.text);
    let subprotocol = failed
        .iter()
        .find(|c| c.file == "scenarios/gate/negotiation/subprotocol.toml")
        .expect("the subprotocol behaviour failed");
    let (message, _) = subprotocol.failure.clone().unwrap_or_default();
    assert!(
        message.starts_with("handshake-invalid: 101 not valid: no `Sec-WebSocket-Protocol`, though the client offered `chat, superchat`"),
        "{message}"
    );
    // The server's side of it: no offer arrived, so it chose nothing.
    assert!(!ran.text.contains("subprotocols offered"), "{}", ran.text);
    assert_none_survive(&ran);
}

#[test]
fn a_proxy_that_drops_cookies_fails_the_cookie_behaviour_and_only_it_naming_what_arrived() {
    let cmd = proxy_cmd(
        "--model header-mangler --param 'rules=[{ field = \"Cookie\", action = \"drop\" }]'",
    );
    let (ran, cases, message) = fails_only(
        "no-cookie",
        &cmd,
        "scenarios/gate/negotiation",
        "scenarios/gate/negotiation/cookie-passes-unchanged.toml",
    );
    assert!(
        message.starts_with("handshake-rejected: HTTP 403 Forbidden at ")
            && message.contains(
                "Cookie arrived as `-`; the client sent `session=3q2+7w8Kx9M=; theme=dark`"
            ),
        "{message}"
    );
    // Origin and Authorization, which the mangler leaves alone, arrived as sent.
    assert!(cases.len() > 3, "{}", ran.text);
    assert_none_survive(&ran);
}

#[test]
fn a_proxy_that_loses_the_bytes_read_with_the_request_head_fails_that_behaviour_and_only_it() {
    let cmd = proxy_cmd(
        "--model l7-balancer --param upgrade=tunnel-losing-early-data --param terminate-tls=false",
    );
    let (ran, cases, message) = fails_only(
        "early-data",
        &cmd,
        "scenarios/gate/handshake",
        "scenarios/gate/handshake/first-message-with-the-request.toml",
    );
    assert!(
        message.starts_with("stalled: no echo of #0 within "),
        "{message}"
    );
    // The server's first push written with its 101 still arrives: only the client's early
    // bytes are lost.
    assert!(
        cases
            .iter()
            .any(|c| c.file.ends_with("first-push-with-the-101.toml") && c.failure.is_none()),
        "{}",
        ran.text
    );
    assert_none_survive(&ran);
}

#[test]
fn the_built_in_suite_runs_from_a_folder_outside_the_checkout() {
    let dir = std::env::temp_dir().join(format!("gauntlet-gate-outside-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let junit = junit_path("outside");
    let junit_arg = junit.display().to_string();
    let cmd = proxy_cmd("--model pass");
    let ran = gate_in(
        &dir,
        &["--proxy-cmd", &cmd, "--quick", "--junit", &junit_arg],
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(ran.code, Some(0), "{}", ran.text);
    assert_says(&ran, "from the built-in suite (scenarios/gate)");
    let cases = junit_cases(&junit);
    assert_eq!(cases.len(), behaviours(), "{}", ran.text);
    assert!(cases.iter().all(|c| c.failure.is_none()), "{}", ran.text);
    // A folder given with --suite is still read, relative to where the gate runs.
    let ran = gate_in(
        &std::env::temp_dir(),
        &[
            "--proxy-cmd",
            &cmd,
            "--quick",
            "--suite",
            "no-such-suite-here",
        ],
    );
    assert_eq!(ran.code, Some(2), "{}", ran.text);
    assert_says(&ran, "no-such-suite-here is not a gate suite");
}

#[test]
fn the_gate_writes_its_results_as_json_and_a_markdown_summary() {
    let cmd = proxy_cmd("--model transparent-proxy --param behaviour=strip");
    let dir = crate::root().join("target/gauntlet/gate-tests");
    let json = dir.join(format!("strip-{}.json", std::process::id()));
    let markdown = dir.join(format!("strip-{}.md", std::process::id()));
    let (j, m) = (json.display().to_string(), markdown.display().to_string());
    let (ran, _) = gate_reporting(
        "strip-reports",
        &[
            "--proxy-cmd",
            &cmd,
            "--quick",
            "--json",
            &j,
            "--markdown",
            &m,
        ],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.text);
    let text = std::fs::read_to_string(&json).expect("the gate wrote its JSON");
    let results = gauntlet_reports::Results::from_json(&text).expect("results");
    assert_eq!(results.runs.len(), behaviours());
    assert!(
        results.notes.iter().any(|n| n.starts_with("quick run: ")),
        "{:?}",
        results.notes
    );
    let upgrade = results
        .runs
        .iter()
        .find(|r| r.scenario == "scenarios/gate/handshake/upgrade.toml")
        .expect("the upgrade's run");
    assert!(!upgrade.pass && upgrade.title.starts_with("Gate: the upgrade passes"));
    assert!(
        upgrade
            .excerpt
            .iter()
            .any(|l| l.contains("outcome handshake-rejected"))
    );
    let summary = std::fs::read_to_string(&markdown).expect("the gate wrote its summary");
    let (passed, failed) = results.tally();
    assert!(
        summary.starts_with(&format!(
            "## gauntlet gate: {passed} passed, {failed} failed\n"
        )),
        "{summary}"
    );
    assert!(
        summary.contains("- quick run: the quiet period is 3 s"),
        "{summary}"
    );
    // Every behaviour fails through a stripping proxy in one of two ways, each reported once
    // with the behaviours it explains: the server's 426 where a session was expected, and
    // the 426 where the refusal the request asked for was expected.
    assert!(
        summary.contains("#### ❌ F1: `handshake-rejected`"),
        "{summary}"
    );
    let second = summary
        .split("#### ❌ F2: ")
        .nth(1)
        .expect("a second fault");
    assert!(second.starts_with("`corrupted`"), "{summary}");
    assert!(
        second.contains("status 426, where the server refuses with 503"),
        "{summary}"
    );
    assert!(!summary.contains("#### ❌ F3"), "{summary}");
    assert!(
        summary.contains("the upgrade passes and a small echo comes back, ws and wss"),
        "{summary}"
    );
    assert!(
        summary.contains("<details><summary>transcript excerpt"),
        "{summary}"
    );
}

#[test]
fn nginx_with_its_websocket_configuration_passes_every_behaviour_ws_and_wss_but_the_http10_upgrade()
{
    let (ran, junit) = gate_reporting("nginx", &["--product", "nginx", "--quick", "--transcript"]);
    assert_says(
        &ran,
        "gating nginx from the built-in nginx-with-upgrade-lines.conf as a reverse proxy",
    );
    let cases = junit_cases(&junit);
    assert_eq!(cases.len(), ws_and_wss_runs(), "{}", ran.text);
    // Every behaviour passes but one: nginx upgrades an HTTP/1.0 request, whose `Upgrade`
    // RFC 9110 §7.8 has it ignore (its documented `proxy_set_header Upgrade $http_upgrade`
    // sends the field on as HTTP/1.1 whatever the client spoke).
    let failed: Vec<&str> = cases
        .iter()
        .filter(|c| c.failure.is_some())
        .map(|c| c.file.as_str())
        .collect();
    assert_eq!(
        failed,
        [
            "scenarios/gate/handshake/http10-upgrade-not-tunnelled.toml",
            "scenarios/gate/handshake/http10-upgrade-not-tunnelled.toml"
        ],
        "{}",
        ran.text
    );
    assert_eq!(ran.code, Some(1), "{}", ran.text);
    assert_none_survive(&ran);
}

#[test]
fn nginx_without_the_upgrade_lines_fails_the_upgrade_with_its_own_log_lines_attached() {
    let template = crate::root().join("scenarios/live/templates/nginx-without-upgrade-lines.conf");
    let t = template.display().to_string();
    let json = crate::root().join(format!(
        "target/gauntlet/gate-tests/nginx-bare-{}.json",
        std::process::id()
    ));
    let j = json.display().to_string();
    let (ran, junit) = gate_reporting(
        "nginx-bare",
        &[
            "--product",
            "nginx",
            "--template",
            &t,
            "--quick",
            "--json",
            &j,
        ],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.text);
    let upgrade: Vec<Case> = junit_cases(&junit)
        .into_iter()
        .filter(|c| c.file == "scenarios/gate/handshake/upgrade.toml")
        .collect();
    assert_eq!(upgrade.len(), 2, "ws and wss: {}", ran.text);
    for case in upgrade {
        let (message, text) = case.failure.expect("the upgrade failed");
        assert!(
            message.starts_with("handshake-rejected: HTTP 426"),
            "{message}"
        );
        // nginx's access log: the request it took, and the backend's 426 it passed on.
        assert!(
            text.contains("the product's log lines:\n==> access.log <=="),
            "{text}"
        );
        assert!(text.contains("\"GET /echo HTTP/1.1\" 426"), "{text}");
    }
    assert_says(&ran, "nginx's log lines:");
    // The server saw what nginx sent it: HTTP/1.0 without Upgrade.
    assert_says(
        &ran,
        "request GET /echo HTTP/1.0, Upgrade: -, Connection: close",
    );
    let results = gauntlet_reports::Results::from_json(
        &std::fs::read_to_string(&json).expect("the gate wrote its JSON"),
    )
    .expect("results");
    assert!(
        results
            .runs
            .iter()
            .all(|r| r.product_log.iter().any(|l| l == "==> access.log <==")),
        "every run keeps nginx's access log"
    );
    assert_none_survive(&ran);
}

#[test]
fn a_proxy_stopped_mid_session_is_said_to_have_cut_it_and_a_model_to_have_drained_it() {
    let dir = std::env::temp_dir().join(format!("gauntlet-gate-stop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("lifecycle")).expect("a temporary suite");
    let file = "lifecycle/stopped-with-an-open-tunnel.toml";
    std::fs::copy(
        crate::root().join("scenarios/gate").join(file),
        dir.join(file),
    )
    .expect("the behaviour copied");
    let suite = dir.display().to_string();
    // `gauntlet proxy` exits on SIGTERM: the session is cut, and that passes.
    let (ran, junit) = gate_reporting(
        "stopped",
        &[
            "--proxy-cmd",
            &proxy_cmd("--model pass"),
            "--suite",
            &suite,
            "--transcript",
        ],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.text);
    let cases = junit_cases(&junit);
    assert_eq!(cases.len(), 1, "{}", ran.text);
    assert!(
        cases[0]
            .out
            .contains("cut: 3/10 echoed, then the connection ended "),
        "{}",
        cases[0].out
    );
    assert!(ran.text.contains(") sent SIGTERM"), "{}", ran.text);
    let pids = ran.pids();
    assert!(!pids.is_empty(), "{}", ran.text);
    for pid in pids {
        assert!(!is_alive(pid), "proxy process {pid} survived the gate");
    }
    // The model on the simulated network closes its listeners and lets the session drain.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .args(["run", "--transcript", &dir.join(file).display().to_string()])
        .output()
        .expect("gauntlet run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("detail: drained: 10/10 echoed, closed 1000"),
        "{text}"
    );
    assert!(
        text.contains("told to stop: closing the listeners"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
