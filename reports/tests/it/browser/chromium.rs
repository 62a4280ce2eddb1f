//! The browser process and the DevTools protocol connection that drives it, each bound by the
//! session's [`Deadline`].

use std::fs;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

use super::WINDOW;

/// A point on the wall clock by which the browser session must be over.
#[derive(Debug, Clone, Copy)]
pub(super) struct Deadline {
    started: Instant,
    limit: Duration,
}

impl Deadline {
    // A real browser runs on the wall clock; nothing simulated reads this one.
    #[allow(clippy::disallowed_methods)]
    pub(super) fn start(limit: Duration) -> Self {
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
pub(super) struct Browser {
    child: Child,
    profile: PathBuf,
    log: PathBuf,
    deadline: Deadline,
}

impl Browser {
    /// Starts Chromium headless on `about:blank` with a fresh profile under `dir`, its output
    /// in `dir/chromium.log`.
    pub(super) fn launch(binary: &Path, dir: &Path, deadline: Deadline) -> Self {
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
    pub(super) fn connect(&mut self) -> DevTools {
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
    pub(super) fn close(mut self, devtools: DevTools) -> Duration {
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
pub(super) struct DevTools {
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
    pub(super) fn open_page(&mut self) -> String {
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
    pub(super) fn load(&mut self, session: &str, url: &str) {
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
    pub(super) fn evaluate(&mut self, session: &str, expression: &str) -> Value {
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
    pub(super) fn screenshot(&mut self, session: &str) -> Vec<u8> {
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

    pub(super) fn take_errors(&mut self) -> Vec<String> {
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
