//! The HTML report in a real browser: headless Chromium loads the fixture's report from
//! `target/gauntlet/browser/report.html` and the test requires that it logs no error, that its
//! four charts are laid out with a non-zero size, and that it screenshots to
//! `target/gauntlet/browser/report.png`. With `GAUNTLET_REPORT_HTML=PATH` (relative to the
//! workspace root) it loads that report instead: CI points it at the catalogue's
//! `target/gauntlet/report.html` from `cargo xtask report`.
//!
//! # How
//!
//! The test starts Chromium itself (`--headless --remote-debugging-port=0`, a fresh profile in
//! `target/gauntlet/browser/profile`), waits for the `DevToolsActivePort` file Chromium writes
//! in that profile once its DevTools server listens (polling, no fixed sleep), and drives it
//! over the DevTools protocol on 127.0.0.1 with a blocking WebSocket client: open a page,
//! enable the `Runtime`, `Log` and `Page` domains, navigate to the report's `file://` URL and
//! wait for that navigation's own `load` lifecycle event, then evaluate an expression that
//! reads each `<svg>`'s bounding box, and capture the whole page as PNG. Nothing is added to
//! the report: it stays one script-free file, and the measuring expression runs from outside.
//!
//! Console errors are what the protocol reports while the page is open, not what Chromium
//! prints on stderr (that is full of unrelated noise, D-Bus for one, and its format is not a
//! contract): `Runtime.consoleAPICalled` of type `error` or `assert`,
//! `Runtime.exceptionThrown`, and `Log.entryAdded` at level `error` (failed loads, blocked
//! requests, security errors). So that an empty list means something, the test
//! first loads a probe page with one of each in the same browser and requires all three
//! caught.
//!
//! # Bounds
//!
//! Everything, from launch to exit, has [`TIME_LIMIT`]: every wait is a read with a timeout or
//! a poll that checks it. The browser process is the test's child (Debian's `/usr/bin/chromium`
//! is a shell wrapper that `exec`s the browser, so the PID is the browser's); [`Browser`]
//! closes it over the protocol and, if it has not exited (or on any panic, through `Drop`),
//! kills it by that PID and reaps it. Chromium's helper processes exit with it. Its
//! network is held to loopback (`--host-resolver-rules`), with background networking, sync,
//! component updates and extensions off.
//!
//! # The browser
//!
//! `chromium` (Debian's package), else `chromium-browser`, else `google-chrome`, looked up
//! on `PATH`; `GAUNTLET_CHROMIUM` names another binary instead (a path, or a name looked up
//! on `PATH`). Without one the test fails, saying what to install (`apt-get install -y
//! chromium`); `.ci/run` installs it, and with `CI=true` a missing browser is a failure all
//! the same, never a skip.

use std::env;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use gauntlet_reports::html;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

use crate::fixture;

/// The browsers tried, in order, when `GAUNTLET_CHROMIUM` is not set.
const CANDIDATES: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// The one line that installs the browser on Debian, as `.ci/run` does.
const INSTALL: &str = "apt-get install -y chromium";

/// The whole browser session, launch to exit.
const TIME_LIMIT: Duration = Duration::from_secs(30);

/// The window the page is laid out in.
const WINDOW: (u32, u32) = (1280, 2000);

/// The page's title, its address and the rendered size of each `<svg>`, in CSS pixels.
const MEASURE: &str = "({
    title: document.title,
    url: location.href,
    width: window.innerWidth,
    svgs: [...document.querySelectorAll('svg')].map(s => {
        const r = s.getBoundingClientRect();
        return [r.width, r.height];
    }),
})";

/// A page with one error of each kind the test watches for: a failed load, a
/// `console.error` and an uncaught exception.
const PROBE: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"/><title>probe</title></head><body>
<img src="gauntlet-probe-missing.png" alt=""/>
<script>
console.error("gauntlet probe: console.error");
throw new Error("gauntlet probe: uncaught");
</script>
</body></html>
"#;

#[test]
fn the_report_renders_in_headless_chromium_without_errors() {
    let dir = target_dir().join("gauntlet").join("browser");
    fs::create_dir_all(&dir).expect("create target/gauntlet/browser");
    let report = dir.join("report.html");
    match env::var_os("GAUNTLET_REPORT_HTML") {
        // A report rendered elsewhere (CI loads the catalogue's, from `cargo xtask report`).
        Some(given) => {
            let given = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(given);
            fs::copy(&given, &report)
                .unwrap_or_else(|e| panic!("copy {} to the test's folder: {e}", given.display()));
        }
        None => fs::write(&report, html(&fixture::results())).expect("write the report"),
    }
    let probe = dir.join("probe.html");
    fs::write(&probe, PROBE).expect("write the probe page");
    let screenshot = dir.join("report.png");
    let _ = fs::remove_file(&screenshot);

    let binary = find_browser();
    let deadline = Deadline::start(TIME_LIMIT);
    let mut browser = Browser::launch(&binary, &dir, deadline);
    let mut devtools = browser.connect();
    let page = devtools.open_page();

    // The detector first: the probe's three errors must all be seen.
    devtools.load(&page, &file_url(&probe));
    devtools.evaluate(&page, "0");
    let caught = devtools.take_errors();
    for expected in [
        "console.error: gauntlet probe: console.error",
        "gauntlet probe: uncaught",
        "Failed to load resource",
    ] {
        assert!(
            caught.iter().any(|e| e.contains(expected)),
            "the probe's {expected:?} was not caught; caught: {caught:#?}"
        );
    }

    devtools.load(&page, &file_url(&report));
    let measured = devtools.evaluate(&page, MEASURE);
    assert_eq!(measured["title"], "Gauntlet report", "{measured}");
    assert_eq!(measured["url"], file_url(&report).as_str(), "{measured}");
    let sizes: Vec<(f64, f64)> = measured["svgs"]
        .as_array()
        .expect("a list of sizes")
        .iter()
        .map(|s| (s[0].as_f64().unwrap(), s[1].as_f64().unwrap()))
        .collect();
    println!(
        "{} charts in a {} px wide window, width × height in CSS px: {sizes:?}",
        sizes.len(),
        measured["width"]
    );
    assert!(
        sizes.len() >= 4,
        "{} <svg> on the page, want the 4 charts",
        sizes.len()
    );
    for (i, &(w, h)) in sizes.iter().enumerate() {
        assert!(w > 0.0 && h > 0.0, "chart {i} is rendered {w} × {h}");
    }

    let png = devtools.screenshot(&page);
    fs::write(&screenshot, &png).expect("write the screenshot");
    let (w, h) = png_size(&png);
    println!(
        "screenshot: {} ({w} × {h}, {} bytes)",
        screenshot.display(),
        png.len()
    );
    assert!(w > 0 && h > 0, "an empty screenshot");

    let errors = devtools.take_errors();
    assert!(errors.is_empty(), "the report logged errors: {errors:#?}");
    let took = browser.close(devtools);
    println!("the browser session took {took:?}");
}

/// `target/`, the parent of Cargo's temporary directory for integration tests.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR has a parent")
        .to_path_buf()
}

/// The browser to run: `GAUNTLET_CHROMIUM`, or the first of [`CANDIDATES`] on `PATH`.
/// Panics, saying what to install, when there is none.
fn find_browser() -> PathBuf {
    let (names, looked_for): (Vec<OsString>, String) = match env::var_os("GAUNTLET_CHROMIUM") {
        Some(name) => (
            vec![name.clone()],
            format!(
                "GAUNTLET_CHROMIUM={} is not an executable",
                name.to_string_lossy()
            ),
        ),
        None => (
            CANDIDATES.iter().map(OsString::from).collect(),
            format!("none of {} is on PATH", CANDIDATES.join(", ")),
        ),
    };
    if let Some(found) = names.iter().find_map(|n| executable(n)) {
        return found;
    }
    if env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "no browser for the HTML report test: {looked_for}. With CI=true it must be \
             installed (.ci/run runs `{INSTALL}`); this test does not skip."
        );
    }
    panic!(
        "no browser for the HTML report test: {looked_for}. Install it: {INSTALL} \
         (or set GAUNTLET_CHROMIUM to a Chromium or Chrome binary)"
    );
}

/// `name` if it is a path to an executable file, or the first executable of that name on
/// `PATH`.
fn executable(name: &OsStr) -> Option<PathBuf> {
    let runnable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if Path::new(name).components().count() > 1 {
        let path = PathBuf::from(name);
        return runnable(&path).then_some(path);
    }
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| runnable(p))
}

/// A `file://` URL for an absolute path, bytes outside the unreserved set percent-encoded.
fn file_url(path: &Path) -> String {
    let path = path.canonicalize().expect("the file exists");
    let mut url = String::from("file://");
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

/// Width and height from a PNG's header; panics if it is not a PNG.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(
        png.len() > 24 && png.starts_with(b"\x89PNG\r\n\x1a\n") && &png[12..16] == b"IHDR",
        "not a PNG ({} bytes)",
        png.len()
    );
    let be = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap());
    (be(&png[16..20]), be(&png[20..24]))
}

/// A point on the wall clock by which the browser session must be over.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    started: Instant,
    limit: Duration,
}

impl Deadline {
    // A real browser runs on the wall clock; nothing simulated reads this one.
    #[allow(clippy::disallowed_methods)]
    fn start(limit: Duration) -> Self {
        Self {
            started: Instant::now(),
            limit,
        }
    }

    /// Time left, or `None` once the deadline has passed.
    fn remaining(&self) -> Option<Duration> {
        self.limit
            .checked_sub(self.started.elapsed())
            .filter(|d| !d.is_zero())
    }
}

/// The Chromium process this test started. Dropping it kills that process (by its PID) if it
/// is still running, and reaps it.
#[derive(Debug)]
struct Browser {
    child: Child,
    profile: PathBuf,
    log: PathBuf,
    deadline: Deadline,
}

impl Browser {
    /// Starts Chromium headless on `about:blank` with a fresh profile under `dir`, its output
    /// in `dir/chromium.log`.
    fn launch(binary: &Path, dir: &Path, deadline: Deadline) -> Self {
        let profile = dir.join("profile");
        if profile.exists() {
            fs::remove_dir_all(&profile).expect("remove the previous profile");
        }
        fs::create_dir_all(&profile).expect("create the profile directory");
        let log = dir.join("chromium.log");
        let out = fs::File::create(&log).expect("create chromium.log");
        let mut command = Command::new(binary);
        command
            .args([
                "--headless",
                "--disable-gpu",
                "--remote-debugging-port=0",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-component-extensions-with-background-pages",
                "--disable-background-networking",
                "--disable-sync",
                "--disable-component-update",
                "--disable-default-apps",
                "--disable-domain-reliability",
                "--disable-breakpad",
                "--no-pings",
                "--password-store=basic",
                "--mute-audio",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            ])
            .arg(format!("--window-size={},{}", WINDOW.0, WINDOW.1))
            .arg(format!("--user-data-dir={}", profile.display()));
        if running_as_root() {
            // Chromium refuses to run its sandbox as root.
            command.arg("--no-sandbox");
        }
        command
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("chromium.log"))
            .stderr(out);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", binary.display()));
        Self {
            child,
            profile,
            log,
            deadline,
        }
    }

    /// Waits for the DevTools server (the port file in the profile) and connects to it.
    fn connect(&mut self) -> DevTools {
        let port_file = self.profile.join("DevToolsActivePort");
        loop {
            // Two lines: the port, and the browser target's path (a UUID, so a complete file
            // is recognisable).
            if let Ok(text) = fs::read_to_string(&port_file) {
                let mut lines = text.lines();
                let port = lines.next().and_then(|p| p.trim().parse::<u16>().ok());
                let path = lines.next().map(str::trim).filter(|p| {
                    p.strip_prefix("/devtools/browser/")
                        .is_some_and(|id| id.len() == 36)
                });
                if let (Some(port), Some(path)) = (port, path) {
                    return DevTools::connect(port, path, self.deadline);
                }
            }
            if let Some(status) = self.child.try_wait().expect("poll the browser") {
                panic!(
                    "the browser exited ({status}) before its DevTools server listened; {}",
                    self.log_tail()
                );
            }
            if self.deadline.remaining().is_none() {
                panic!(
                    "timed out waiting for {}: the browser session has {:?}; {}",
                    port_file.display(),
                    self.deadline.limit,
                    self.log_tail()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asks the browser to close, waits for its process to exit (killing it after a few
    /// seconds if it has not), and says how long the session took.
    fn close(mut self, devtools: DevTools) -> Duration {
        devtools.close_browser();
        let grace = Deadline::start(Duration::from_secs(5));
        loop {
            if self.child.try_wait().expect("poll the browser").is_some() {
                return self.deadline.started.elapsed();
            }
            if grace.remaining().is_none() || self.deadline.remaining().is_none() {
                eprintln!("the browser did not exit after Browser.close; killing it");
                let _ = self.child.kill();
                let _ = self.child.wait();
                return self.deadline.started.elapsed();
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The end of the browser's log, for failure messages.
    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        format!("the end of {}:\n{tail}", self.log.display())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Whether this process runs as root (it owns its `/proc/self`).
fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A DevTools protocol connection to the browser, with the errors its pages reported.
#[derive(Debug)]
struct DevTools {
    socket: WebSocket<TcpStream>,
    next_id: u64,
    deadline: Deadline,
    /// Errors reported since the last [`DevTools::take_errors`], one line each.
    errors: Vec<String>,
    /// `(frame, loader)` of each navigation whose `load` event has arrived.
    loaded: Vec<(String, String)>,
}

impl DevTools {
    fn connect(port: u16, path: &str, deadline: Deadline) -> Self {
        let remaining = deadline.remaining().expect("time left to connect");
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = TcpStream::connect_timeout(&address, remaining)
            .unwrap_or_else(|e| panic!("connect to DevTools on {address}: {e}"));
        stream.set_read_timeout(Some(remaining)).unwrap();
        stream.set_write_timeout(Some(remaining)).unwrap();
        let url = format!("ws://{address}{path}");
        let (socket, _) = tungstenite::client(url.as_str(), stream)
            .unwrap_or_else(|e| panic!("WebSocket handshake with {url}: {e}"));
        Self {
            socket,
            next_id: 1,
            deadline,
            errors: Vec::new(),
            loaded: Vec::new(),
        }
    }

    /// Opens a page on `about:blank`, attaches to it and enables the domains the test
    /// listens to. Returns the page's session.
    fn open_page(&mut self) -> String {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        let session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        for method in ["Runtime.enable", "Log.enable", "Page.enable"] {
            self.call(Some(&session), method, json!({}));
        }
        self.call(
            Some(&session),
            "Page.setLifecycleEventsEnabled",
            json!({"enabled": true}),
        );
        session
    }

    /// Navigates the page to `url` and waits for that navigation's `load` event.
    fn load(&mut self, session: &str, url: &str) {
        let nav = self.call(Some(session), "Page.navigate", json!({"url": url}));
        if let Some(error) = nav.get("errorText") {
            panic!("navigating to {url}: {error}");
        }
        let key = (
            nav["frameId"].as_str().unwrap_or_default().to_string(),
            nav["loaderId"].as_str().unwrap_or_default().to_string(),
        );
        while !self.loaded.contains(&key) {
            let message = self.receive(&format!("the load event of {url}"));
            self.on_event(&message);
        }
    }

    /// Evaluates `expression` in the page and returns its value.
    fn evaluate(&mut self, session: &str, expression: &str) -> Value {
        let result = self.call(
            Some(session),
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("evaluating {expression}: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// The whole page (beyond the window too) as PNG.
    fn screenshot(&mut self, session: &str) -> Vec<u8> {
        let metrics = self.call(Some(session), "Page.getLayoutMetrics", json!({}));
        let size = &metrics["cssContentSize"];
        let shot = self.call(
            Some(session),
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            }),
        );
        let data = shot["data"].as_str().expect("base64 image data");
        data_encoding::BASE64
            .decode(data.as_bytes())
            .expect("the screenshot is base64")
    }

    fn take_errors(&mut self) -> Vec<String> {
        std::mem::take(&mut self.errors)
    }

    /// Sends a command (to the browser, or to a page's session) and returns its result,
    /// handling the events that arrive before it.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut command = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            command["sessionId"] = session.into();
        }
        self.socket
            .send(Message::text(command.to_string()))
            .unwrap_or_else(|e| panic!("send {method}: {e}"));
        loop {
            let message = self.receive(&format!("the answer to {method}"));
            if message["id"] == id {
                if let Some(error) = message.get("error") {
                    panic!("{method} failed: {error}");
                }
                return message["result"].clone();
            }
            self.on_event(&message);
        }
    }

    /// The next protocol message, within the deadline.
    fn receive(&mut self, waiting_for: &str) -> Value {
        loop {
            let Some(remaining) = self.deadline.remaining() else {
                panic!(
                    "timed out waiting for {waiting_for}: the browser session has {:?}",
                    self.deadline.limit
                );
            };
            self.socket
                .get_mut()
                .set_read_timeout(Some(remaining))
                .unwrap();
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    return serde_json::from_str(text.as_str())
                        .unwrap_or_else(|e| panic!("a DevTools message that is not JSON: {e}"));
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("the DevTools connection failed waiting for {waiting_for}: {e}"),
            }
        }
    }

    /// Records an event: errors, and the load events [`DevTools::load`] waits for.
    fn on_event(&mut self, message: &Value) {
        let params = &message["params"];
        let text = |v: &Value| match v.as_str() {
            Some(s) => s.to_string(),
            None => v.to_string(),
        };
        match message["method"].as_str().unwrap_or_default() {
            "Runtime.consoleAPICalled" => {
                let kind = params["type"].as_str().unwrap_or_default();
                if kind == "error" || kind == "assert" {
                    let args: Vec<String> = params["args"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| match a.get("value") {
                            Some(v) => text(v),
                            None => text(&a["description"]),
                        })
                        .collect();
                    self.errors
                        .push(format!("console.{kind}: {}", args.join(" ")));
                }
            }
            "Runtime.exceptionThrown" => {
                let details = &params["exceptionDetails"];
                let description = details["exception"]["description"]
                    .as_str()
                    .or(details["text"].as_str())
                    .unwrap_or_default();
                self.errors
                    .push(format!("uncaught exception: {description}"));
            }
            "Log.entryAdded" => {
                let entry = &params["entry"];
                if entry["level"] == "error" {
                    self.errors.push(format!(
                        "{} error: {} ({})",
                        text(&entry["source"]),
                        text(&entry["text"]),
                        entry["url"].as_str().unwrap_or_default()
                    ));
                }
            }
            "Page.lifecycleEvent" if params["name"] == "load" => {
                self.loaded
                    .push((text(&params["frameId"]), text(&params["loaderId"])));
            }
            "Inspector.targetCrashed" => panic!("the page crashed"),
            _ => {}
        }
    }

    /// Asks the browser to close and waits for its answer or for the connection to end.
    fn close_browser(mut self) {
        let id = self.next_id;
        let command = json!({"id": id, "method": "Browser.close"});
        if self
            .socket
            .send(Message::text(command.to_string()))
            .is_err()
        {
            return;
        }
        while let Some(remaining) = self.deadline.remaining() {
            let _ = self.socket.get_mut().set_read_timeout(Some(remaining));
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    let answer: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                    if answer["id"] == id {
                        return;
                    }
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return,
            }
        }
    }
}
