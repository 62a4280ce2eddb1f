//! [`Running`]: a started program, its address, processes, working directory and logs; the
//! readiness probe that waits for its port; and its stop ([`Stopped`]), also when dropped.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use super::ProductError;
use super::error::io_error;
use super::listeners;
use super::process::{Deadline, Supervised};

/// How often the readiness probe tries to connect.
const PROBE_INTERVAL: Duration = Duration::from_millis(20);

/// A program that [`Program::start`](super::Program::start) (or [`Product::start`](super::Product::start)) started and that accepts
/// connections.
#[derive(Debug)]
pub struct Running {
    pub(super) name: String,
    pub(super) process: Supervised,
    pub(super) addr: SocketAddr,
    /// The `tls_listen` port, for a product started with one.
    pub(super) tls_port: Option<u16>,
    pub(super) dir: PathBuf,
    pub(super) keep_dir: bool,
    pub(super) stop_grace: Duration,
    /// Whether it was sent SIGTERM mid-run ([`Running::terminate`]).
    pub(super) terminated: bool,
}

/// What [`Running::stop`] found.
#[derive(Debug)]
pub struct Stopped {
    /// The product's exit status (a signal, if it had to be killed).
    pub status: ExitStatus,
    /// Whether it outlived [`StartOptions::stop_grace`](super::StartOptions::stop_grace) after SIGTERM and was killed.
    pub forced: bool,
    /// Processes of its group that outlived it and were killed (normally none).
    pub killed_survivors: Vec<u32>,
    /// Its logs at the end, as [`Running::logs`] gives them.
    pub logs: String,
}

impl Running {
    /// Which program this is: [`Program::name`](super::Program::name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where it listens: 127.0.0.1 and the `{{listen}}` port.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where it listens for TLS: 127.0.0.1 and the `tls_listen` port, for a product started
    /// with [`StartOptions::tls`](super::StartOptions::tls).
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_port
            .map(|port| SocketAddr::from((self.addr.ip(), port)))
    }

    /// Whether it still listens on every port it listened on when it started (a socket of
    /// its process group listens there): false once it has exited or closed a listener.
    pub fn still_listening(&self) -> bool {
        let group = self.process.group();
        self.ports()
            .all(|port| listeners::held_by(&group, &listeners::listening_inodes(port)))
    }

    /// Its main process's id.
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Its live processes (its process group: a master and its workers, for instance).
    pub fn processes(&self) -> Vec<u32> {
        self.process.group()
    }

    /// Its working directory (a product's rendered configuration, pid file and logs; a
    /// command's captured output).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Everything it has logged so far: every `*.log` file in its working directory
    /// (captured stdout and stderr, and its own error and access logs), each under a header.
    pub fn logs(&self) -> String {
        read_logs(&self.dir)
    }

    /// Sends it SIGTERM and lets it stop its own way (drain or cut its connections), for a
    /// scenario that stops it mid-run; [`Running::stop`] still ends it when the run does.
    pub fn terminate(&mut self) -> Result<(), ProductError> {
        let what = format!("cannot send SIGTERM to {} (pid {})", self.name, self.pid());
        self.process.terminate().map_err(|e| io_error(what, e))?;
        self.terminated = true;
        Ok(())
    }

    /// Whether it was sent SIGTERM mid-run.
    pub fn terminated(&self) -> bool {
        self.terminated
    }

    /// Stops it (see the module's lifecycle: SIGTERM, a bounded wait, SIGKILL, no process of
    /// its group left behind), then removes its working directory unless asked to keep it.
    pub fn stop(mut self) -> Result<Stopped, ProductError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<Stopped, ProductError> {
        let what = format!("cannot stop {} (pid {})", self.name, self.process.id());
        let ending = self
            .process
            .stop(self.stop_grace)
            .map_err(|e| io_error(what, e))?;
        let logs = read_logs(&self.dir);
        if !self.keep_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
            self.keep_dir = true;
        }
        Ok(Stopped {
            status: ending.status,
            forced: ending.forced,
            killed_survivors: ending.survivors,
            logs,
        })
    }

    /// Probes its ports until each accepts a connection and is the program's own (a socket of
    /// its process group listens there), the process exits, or `timeout` passes. A port that
    /// accepts for another process is not ready: the program will fail to bind it and exit.
    pub(super) fn wait_ready(&mut self, timeout: Duration) -> Result<(), ProductError> {
        let deadline = Deadline::after(timeout);
        loop {
            if self.process.exited() {
                self.keep_dir = true;
                let stopped = self.shutdown()?;
                return Err(ProductError::Exited {
                    program: self.name.clone(),
                    status: stopped.status,
                    addr: self.addr,
                    dir: self.dir.clone(),
                    logs: stopped.logs,
                });
            }
            if self.listening() && !self.process.exited() {
                return Ok(());
            }
            if deadline.passed() {
                self.keep_dir = true;
                let stopped = self.shutdown()?;
                return Err(ProductError::NotReady {
                    program: self.name.clone(),
                    addr: self.addr,
                    waited: timeout,
                    dir: self.dir.clone(),
                    logs: stopped.logs,
                });
            }
            std::thread::sleep(PROBE_INTERVAL);
        }
    }
}

impl Running {
    /// The ports it listens on: `{{listen}}`, and `tls_listen` if its template uses it.
    fn ports(&self) -> impl Iterator<Item = u16> + use<> {
        std::iter::once(self.addr.port()).chain(self.tls_port)
    }

    /// Whether every port it is to listen on accepts a connection, on a socket of its own.
    fn listening(&self) -> bool {
        let group = self.process.group();
        self.ports().all(|port| {
            let addr = SocketAddr::from((self.addr.ip(), port));
            TcpStream::connect_timeout(&addr, PROBE_INTERVAL * 5).is_ok()
                && listeners::held_by(&group, &listeners::listening_inodes(port))
        })
    }
}

impl Drop for Running {
    /// Stops the product. While a panic unwinds, its logs go to stderr and its working
    /// directory is kept, so a failed test shows what the product said.
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.keep_dir = true;
            eprintln!(
                "{} (pid {}) stopped by a panic; logs in {}:\n{}",
                self.name,
                self.process.id(),
                self.dir.display(),
                self.logs()
            );
        }
        match self.shutdown() {
            Ok(stopped) if stopped.forced || !stopped.killed_survivors.is_empty() => eprintln!(
                "{} (pid {}) did not stop cleanly: {}, survivors killed: {:?}; its logs:\n{}",
                self.name,
                self.process.id(),
                if stopped.forced {
                    "killed after the grace"
                } else {
                    "exited on SIGTERM"
                },
                stopped.killed_survivors,
                stopped.logs
            ),
            Ok(_) => {}
            Err(e) => eprintln!("{e}"),
        }
    }
}

/// Every `*.log` file in `dir`, in name order, each under `==> NAME <==`.
fn read_logs(dir: &Path) -> String {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return format!("(no logs: {} is gone)\n", dir.display());
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    let mut out = String::new();
    for file in files {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        let text = std::fs::read(&file)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_else(|e| format!("(unreadable: {e})"));
        out.push_str(&format!("==> {name} <==\n{text}"));
        if !text.is_empty() && !text.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}
