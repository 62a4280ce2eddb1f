//! Child processes for the tests that run programs: stdout and stderr read line by line as
//! they come (or stderr left unread, for the tests of a child whose stderr nobody drains),
//! every wait bounded by [`PATIENCE`] (a safety net, not a claim about speed), and the child
//! killed by its PID when the guard is dropped, panic or not. A wait that runs out kills the
//! child and panics with what it had written.

use std::io::{BufRead as _, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The safety net on every wait.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Removes the proxy settings a child would otherwise take from the environment (a client
/// library that honours `http_proxy` would not connect where the test says).
pub fn without_proxy_settings(command: &mut Command) {
    for var in [
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ] {
        command.env_remove(var);
    }
}

/// How a child ended.
#[derive(Debug)]
pub struct Exit {
    /// The exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    /// What it wrote on stdout and nobody read with [`Process::line`].
    pub stdout: String,
    /// Everything it wrote on stderr.
    pub stderr: String,
}

/// A running child, killed by its PID when dropped.
pub struct Process {
    child: Child,
    what: String,
    lines: mpsc::Receiver<String>,
    stderr: Stderr,
}

/// A child's stderr: unread until asked, or read line by line on a thread.
struct Stderr {
    /// Not read yet ([`Process::start_holding_stderr`]).
    held: Option<ChildStderr>,
    /// Lines, as the reading thread gets them.
    lines: Option<mpsc::Receiver<String>>,
    /// Lines received so far.
    seen: String,
}

/// Sends each line `from` gives (invalid UTF-8 replaced; with its line end when `ends`) until
/// its end.
fn read_lines(from: impl Read + Send + 'static, ends: bool) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut from = BufReader::new(from);
        loop {
            let mut line = Vec::new();
            match from.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if !ends {
                        while line.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
                            line.pop();
                        }
                    }
                    if tx
                        .send(String::from_utf8_lossy(&line).into_owned())
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    rx
}

impl Process {
    /// Starts `command` with stdout and stderr piped and read; `what` names it in failures.
    pub fn start(what: &str, command: &mut Command) -> Self {
        let mut process = Self::start_holding_stderr(what, command);
        process.read_stderr();
        process
    }

    /// Starts `command` with stdout and stderr piped, and stdout read; nothing reads stderr
    /// until [`Process::read_stderr`], so a child that writes more than the pipe holds finds
    /// it full.
    pub fn start_holding_stderr(what: &str, command: &mut Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{what} does not start: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        Self {
            child,
            what: what.to_string(),
            lines: read_lines(stdout, false),
            stderr: Stderr {
                held: Some(stderr),
                lines: None,
                seen: String::new(),
            },
        }
    }

    /// Starts reading stderr (a no-op when it is read already).
    pub fn read_stderr(&mut self) {
        if let Some(held) = self.stderr.held.take() {
            self.stderr.lines = Some(read_lines(held, true));
        }
    }

    /// Waits for a line on stderr containing `needle` and returns it; every line up to it
    /// stays in what [`Process::wait`] returns.
    pub fn stderr_line(&mut self, needle: &str) -> String {
        self.read_stderr();
        let lines = self.stderr.lines.as_ref().expect("stderr is read");
        loop {
            match lines.recv_timeout(PATIENCE) {
                Ok(line) => {
                    self.stderr.seen.push_str(&line);
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => {
                    let exit = self.kill();
                    panic!(
                        "{} wrote no line containing {needle:?} on stderr within {PATIENCE:?}; \
                         stderr:\n{}",
                        self.what, exit.stderr
                    )
                }
            }
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line on stdout.
    pub fn line(&mut self) -> String {
        match self.lines.recv_timeout(PATIENCE) {
            Ok(line) => line,
            Err(_) => {
                let exit = self.kill();
                panic!(
                    "{} printed no line within {PATIENCE:?}; stdout:\n{}stderr:\n{}",
                    self.what, exit.stdout, exit.stderr
                )
            }
        }
    }

    /// The address in the next line on stdout, which must be `{prefix} ADDRESS`.
    pub fn address(&mut self, prefix: &str) -> SocketAddr {
        let line = self.line();
        line.strip_prefix(prefix)
            .and_then(|rest| rest.trim().parse().ok())
            .unwrap_or_else(|| panic!("{}: not a `{prefix} ADDRESS` line: {line:?}", self.what))
    }

    /// Waits for the exit: its code and output. A child still running after [`PATIENCE`] is
    /// killed, and the test fails with what it wrote.
    pub fn wait(&mut self) -> Exit {
        let step = Duration::from_millis(10);
        let mut waited = Duration::ZERO;
        loop {
            if self.child.try_wait().expect("the child's status").is_some() {
                return self.collect();
            }
            if waited >= PATIENCE {
                let exit = self.kill();
                panic!(
                    "{} did not exit within {PATIENCE:?}; stdout:\n{}stderr:\n{}",
                    self.what, exit.stdout, exit.stderr
                );
            }
            std::thread::sleep(step);
            waited += step;
        }
    }

    /// Kills the child (by its PID) and returns what it wrote.
    pub fn kill(&mut self) -> Exit {
        let _ = self.child.kill();
        self.collect()
    }

    /// Reaps the child and reads its output to the end.
    fn collect(&mut self) -> Exit {
        let status = self.child.wait().expect("the child's status");
        let stdout: Vec<String> = std::iter::from_fn(|| self.lines.recv_timeout(PATIENCE).ok())
            .map(|line| line + "\n")
            .collect();
        self.read_stderr();
        if let Some(lines) = &self.stderr.lines {
            while let Ok(line) = lines.recv_timeout(PATIENCE) {
                self.stderr.seen.push_str(&line);
            }
        }
        Exit {
            code: status.code(),
            stdout: stdout.concat(),
            stderr: std::mem::take(&mut self.stderr.seen),
        }
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> Exit {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        self.wait()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
