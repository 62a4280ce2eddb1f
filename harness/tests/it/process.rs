//! Child processes for the tests that run programs: stdout read line by line, stderr
//! collected, every wait bounded by [`PATIENCE`] (a safety net, not a claim about speed), and
//! the child killed by its PID when the guard is dropped, panic or not.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The safety net on every wait.
pub const PATIENCE: Duration = Duration::from_secs(20);

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
    stderr: mpsc::Receiver<String>,
    stderr_lines: mpsc::Receiver<String>,
}

impl Process {
    /// Starts `command` with stdout and stderr piped; `what` names it in failures.
    pub fn start(what: &str, command: &mut Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{what} does not start: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (line_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if line_tx.send(line).is_err() {
                    return;
                }
            }
        });
        let (err_tx, stderr_rx) = mpsc::channel();
        let (err_line_tx, stderr_lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = err_line_tx.send(line.clone());
                text.push_str(&line);
                text.push('\n');
            }
            let _ = err_tx.send(text);
        });
        Self {
            child,
            what: what.to_string(),
            lines,
            stderr: stderr_rx,
            stderr_lines,
        }
    }

    /// Waits for a line on stderr that contains `needle`, and gives it.
    pub fn stderr_line_containing(&self, needle: &str) -> String {
        loop {
            match self.stderr_lines.recv_timeout(PATIENCE) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!(
                    "{} wrote no line containing {needle:?} on stderr within {PATIENCE:?}",
                    self.what
                ),
            }
        }
    }

    /// The next line on stdout.
    pub fn line(&self) -> String {
        self.lines
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("{} printed no line within {PATIENCE:?}", self.what))
    }

    /// The address in the next line on stdout, which must be `{prefix} ADDRESS`.
    pub fn address(&self, prefix: &str) -> SocketAddr {
        let line = self.line();
        line.strip_prefix(prefix)
            .and_then(|rest| rest.trim().parse().ok())
            .unwrap_or_else(|| panic!("{}: not a `{prefix} ADDRESS` line: {line:?}", self.what))
    }

    /// Waits for the exit: its code and output.
    pub fn wait(&mut self) -> Exit {
        let step = Duration::from_millis(10);
        let mut waited = Duration::ZERO;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("the child's status") {
                break status;
            }
            assert!(
                waited < PATIENCE,
                "{} did not exit within {PATIENCE:?}",
                self.what
            );
            std::thread::sleep(step);
            waited += step;
        };
        let stdout: Vec<String> = std::iter::from_fn(|| self.lines.recv_timeout(PATIENCE).ok())
            .map(|line| line + "\n")
            .collect();
        Exit {
            code: status.code(),
            stdout: stdout.concat(),
            stderr: self.stderr.recv_timeout(PATIENCE).unwrap_or_default(),
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
