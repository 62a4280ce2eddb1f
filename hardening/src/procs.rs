//! The `gauntlet serve` and `gauntlet proxy` processes the live campaigns and the soak start:
//! started from the built binary with stderr to a log file, their listening addresses read
//! from stdout, measured through `/proc`, and stopped by their id (SIGTERM, a bounded wait,
//! then SIGKILL), on drop too. Every running one is in a registry, so that a campaign that
//! gives up on a stuck case can kill them before it exits.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use rustix::process::{Pid, Signal};

use crate::Clock;

/// Ids of the processes started and not yet reaped: only these are ever signalled, and an
/// unreaped child's id cannot have been reused.
static RUNNING: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

fn running() -> std::sync::MutexGuard<'static, BTreeSet<i32>> {
    RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sends SIGKILL to every process started and not yet reaped (before exiting in a hurry).
pub fn kill_all() {
    for &pid in running().iter() {
        if let Some(pid) = Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(pid, Signal::KILL);
        }
    }
}

/// A started process.
#[derive(Debug)]
pub struct Proc {
    /// What it is, for messages: `serve`, `proxy (ws)`, …
    pub name: String,
    child: Child,
    /// Its id.
    pub pid: u32,
    /// Where its stderr goes.
    pub log: PathBuf,
    /// The addresses it announced (`listening on ADDR`, `listening (tls) on ADDR`), in order.
    pub addrs: Vec<SocketAddr>,
    status: Option<ExitStatus>,
}

/// How long a process may take to announce its addresses.
const START_WAIT: Duration = Duration::from_secs(30);
/// How long a process may take to exit after SIGTERM.
const STOP_WAIT: Duration = Duration::from_secs(10);

impl Proc {
    /// Starts `gauntlet serve` (`gauntlet` is its binary) on ephemeral loopback ports, ws and
    /// wss, its CA written to `ca`, with `extra` flags; stderr to `log`. Its addresses are
    /// `addrs[0]` (ws) and `addrs[1]` (wss).
    pub fn serve(
        name: &str,
        gauntlet: &Path,
        ca: &Path,
        extra: &[String],
        log: &Path,
    ) -> anyhow::Result<Proc> {
        let mut args: Vec<String> = [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-listen",
            "127.0.0.1:0",
            "--ca-out",
        ]
        .map(String::from)
        .into();
        args.push(ca.display().to_string());
        args.extend_from_slice(extra);
        Proc::start(name, gauntlet, &args, log, 2)
    }

    /// Starts `gauntlet proxy --model pass` on an ephemeral loopback port in front of
    /// `upstream`; stderr to `log`.
    pub fn pass_proxy(
        name: &str,
        gauntlet: &Path,
        upstream: SocketAddr,
        log: &Path,
    ) -> anyhow::Result<Proc> {
        let mut args: Vec<String> = [
            "proxy",
            "--model",
            "pass",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
        ]
        .map(String::from)
        .into();
        args.push(upstream.to_string());
        Proc::start(name, gauntlet, &args, log, 1)
    }

    /// Starts `program args`, stderr to `log`, and waits for it to announce `listeners`
    /// addresses on stdout.
    pub fn start(
        name: &str,
        program: &Path,
        args: &[String],
        log: &Path,
        listeners: usize,
    ) -> anyhow::Result<Proc> {
        let stderr =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let pid = child.id();
        running().insert(pid as i32);
        let (tx, rx) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            // Reads stdout to its end, so the child never blocks on a full pipe.
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    let _ = tx.send(line);
                }
            });
        }
        let mut proc = Proc {
            name: name.to_string(),
            child,
            pid,
            log: log.to_path_buf(),
            addrs: Vec::new(),
            status: None,
        };
        let clock = Clock::start();
        while proc.addrs.len() < listeners {
            let left = START_WAIT.saturating_sub(clock.elapsed());
            let Ok(line) = rx.recv_timeout(left.max(Duration::from_millis(1))) else {
                break;
            };
            let addr: Option<SocketAddr> = line
                .strip_prefix("listening")
                .and_then(|rest| rest.rsplit(' ').next())
                .and_then(|a| a.parse().ok());
            proc.addrs.extend(addr);
        }
        if proc.addrs.len() < listeners {
            let status = proc.stop().ok();
            bail!(
                "{name} announced {} of {listeners} listening addresses (exit {status:?}); its log:\n{}",
                proc.addrs.len(),
                proc.log_tail(20)
            );
        }
        Ok(proc)
    }

    /// Whether it has exited, and how.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                running().remove(&(self.pid as i32));
                self.status = Some(status);
            }
        }
        self.status
    }

    /// Stops it: SIGTERM, then SIGKILL if it has not exited within a few seconds. Gives its
    /// exit status (a process already gone gives the status it exited with).
    pub fn stop(&mut self) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.exited() {
            return Ok(status);
        }
        if let Some(pid) = Pid::from_raw(self.pid as i32) {
            let _ = rustix::process::kill_process(pid, Signal::TERM);
        }
        let clock = Clock::start();
        while clock.elapsed() < STOP_WAIT {
            if let Some(status) = self.exited() {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let status = self.child.wait().context("waiting for a killed process")?;
        running().remove(&(self.pid as i32));
        self.status = Some(status);
        Ok(status)
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
