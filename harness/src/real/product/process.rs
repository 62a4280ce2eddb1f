//! The processes the harness starts: each in its own process group, its id in a process-wide
//! registry until it is reaped; stopping one (SIGTERM, a bounded wait, then SIGKILL); and the
//! Ctrl-C / SIGTERM hook that stops every registered process before the harness exits.
//!
//! Signals go only to processes this module spawned: to a leader by its id while it is our
//! unreaped child, and to its group (whose id is the leader's) only while the leader is not yet
//! reaped, so neither id can have been reused by someone else's process.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};

/// Ids of the running leaders (each also its group's id), until reaped, with the directory
/// the hook removes once it has stopped them.
static REGISTRY: Mutex<BTreeMap<i32, Option<PathBuf>>> = Mutex::new(BTreeMap::new());

/// The signal hook, installed once, or why it could not be.
static HOOK: OnceLock<Result<(), Arc<io::Error>>> = OnceLock::new();

/// How often waits poll.
const POLL: Duration = Duration::from_millis(10);

/// How long the hook waits for every leader to exit after SIGTERM before SIGKILL.
const HOOK_GRACE: Duration = Duration::from_secs(3);

fn registry() -> MutexGuard<'static, BTreeMap<i32, Option<PathBuf>>> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A point on the wall clock: process supervision waits for real processes, so it reads real
/// time (never simulated code, which reads the engine's clock).
#[derive(Debug, Clone, Copy)]
pub(super) struct Deadline(Instant);

impl Deadline {
    /// `after` from now.
    #[allow(
        clippy::disallowed_methods,
        reason = "real processes run on the wall clock"
    )]
    pub(super) fn after(after: Duration) -> Self {
        Deadline(Instant::now() + after)
    }

    /// Whether it has passed.
    #[allow(
        clippy::disallowed_methods,
        reason = "real processes run on the wall clock"
    )]
    pub(super) fn passed(self) -> bool {
        Instant::now() >= self.0
    }
}

/// How a stop went.
#[derive(Debug)]
pub(super) struct Ending {
    /// The leader's exit status.
    pub(super) status: ExitStatus,
    /// Whether the grace passed and SIGKILL ended the group.
    pub(super) forced: bool,
    /// Processes of the group that outlived the leader and were killed.
    pub(super) survivors: Vec<u32>,
}

/// A spawned process leading its own process group, registered until reaped.
#[derive(Debug)]
pub(super) struct Supervised {
    child: Child,
    pid: Pid,
    status: Option<ExitStatus>,
}

impl Supervised {
    /// Spawns `command` as the leader of a new process group and registers it, with the
    /// directory to remove if the hook has to stop it. Installs the signal hook first, so no
    /// process is ever started that an interrupt would leave behind.
    pub(super) fn spawn(command: &mut Command, cleanup: Option<PathBuf>) -> io::Result<Self> {
        install_hook()?;
        command.process_group(0);
        // Held across the spawn: the hook cannot run between the spawn and the registration.
        let mut running = registry();
        let child = command.spawn()?;
        let raw = i32::try_from(child.id()).map_err(io::Error::other)?;
        let pid = Pid::from_raw(raw).ok_or_else(|| io::Error::other("process id 0"))?;
        running.insert(raw, cleanup);
        Ok(Supervised {
            child,
            pid,
            status: None,
        })
    }

    /// The leader's process id.
    pub(super) fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether the leader has exited (it may not be reaped yet).
    pub(super) fn exited(&self) -> bool {
        self.status.is_some() || leader_exited(self.pid)
    }

    /// Processes of its group still alive (not zombies), the leader included while it runs.
    pub(super) fn group(&self) -> Vec<u32> {
        if self.status.is_some() {
            return Vec::new();
        }
        group_members(self.pid.as_raw_nonzero().get())
    }

    /// Sends SIGTERM to the leader, if it has not exited, and leaves it to stop as it does:
    /// the stop a scenario asks for mid-run (`stop-proxy-after`).
    pub(super) fn terminate(&self) -> io::Result<()> {
        if leader_exited(self.pid) {
            return Ok(());
        }
        ignore_gone(rustix::process::kill_process(self.pid, Signal::TERM))
    }

    /// Stops it: SIGTERM to the leader; after `grace`, SIGKILL to its group; once the leader
    /// has exited, SIGKILL to any process of its group that outlived it (a multi-process
    /// product's master stops its workers itself, so normally there are none); then reaps the
    /// leader. Idempotent.
    pub(super) fn stop(&mut self, grace: Duration) -> io::Result<Ending> {
        if let Some(status) = self.status {
            return Ok(Ending {
                status,
                forced: false,
                survivors: Vec::new(),
            });
        }
        if !leader_exited(self.pid) {
            ignore_gone(rustix::process::kill_process(self.pid, Signal::TERM))?;
        }
        let deadline = Deadline::after(grace);
        while !leader_exited(self.pid) && !deadline.passed() {
            std::thread::sleep(POLL);
        }
        let forced = !leader_exited(self.pid);
        if forced {
            ignore_gone(rustix::process::kill_process_group(self.pid, Signal::KILL))?;
        }
        // SIGKILL cannot be caught: the leader is gone within moments.
        while !leader_exited(self.pid) {
            std::thread::sleep(POLL);
        }
        let leader = self.id();
        let survivors: Vec<u32> = self.group().into_iter().filter(|&p| p != leader).collect();
        if !survivors.is_empty() {
            ignore_gone(rustix::process::kill_process_group(self.pid, Signal::KILL))?;
            let deadline = Deadline::after(grace);
            while self.group().iter().any(|&p| p != leader) && !deadline.passed() {
                std::thread::sleep(POLL);
            }
        }
        let status = self.reap()?;
        Ok(Ending {
            status,
            forced,
            survivors,
        })
    }

    /// Reaps the exited leader and unregisters it, under the registry's lock so the hook never
    /// signals a reaped (and possibly reused) id.
    fn reap(&mut self) -> io::Result<ExitStatus> {
        let mut running = registry();
        let status = self.child.wait()?;
        running.remove(&self.pid.as_raw_nonzero().get());
        self.status = Some(status);
        Ok(status)
    }
}

/// `Ok` for a signal to a process that is already gone.
fn ignore_gone(result: rustix::io::Result<()>) -> io::Result<()> {
    match result {
        Err(rustix::io::Errno::SRCH) => Ok(()),
        other => other.map_err(io::Error::from),
    }
}

/// Whether our child `pid` has exited, without reaping it (`waitid` with `WNOWAIT`). A child
/// that cannot be waited for any more counts as exited.
fn leader_exited(pid: Pid) -> bool {
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    match rustix::process::waitid(WaitId::Pid(pid), options) {
        Ok(status) => status.is_some(),
        Err(rustix::io::Errno::INTR) => false,
        Err(_) => true,
    }
}

/// Live (not zombie) processes whose process group is `pgid`, from `/proc`, in id order.
pub(super) fn group_members(pgid: i32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut members: Vec<u32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| parse_stat(&stat))
                .is_some_and(|(state, group)| group == pgid && state != 'Z' && state != 'X')
        })
        .collect();
    members.sort_unstable();
    members
}

/// Whether a process with this id is alive (exists and is not a zombie).
pub fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| parse_stat(&stat))
        .is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

/// The state and process group from `/proc/PID/stat`: `pid (comm) state ppid pgrp …`, where
/// `comm` may hold spaces and parentheses, so fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<(char, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// Installs, once per process, a thread that waits for SIGINT or SIGTERM, stops every
/// registered process group, and exits with 128 + the signal's number. Handling these signals
/// replaces their default action, which is why the thread exits the process itself.
fn install_hook() -> io::Result<()> {
    HOOK.get_or_init(|| spawn_hook().map_err(Arc::new))
        .clone()
        .map_err(|e| io::Error::other(format!("cannot install the Ctrl-C hook: {e}")))
}

fn spawn_hook() -> io::Result<()> {
    let (ready, wait) = std::sync::mpsc::channel::<io::Result<()>>();
    std::thread::Builder::new()
        .name("gauntlet-signals".into())
        .spawn(move || {
            use tokio::signal::unix::{SignalKind, signal};
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
            let code = runtime.block_on(async move {
                let (mut interrupt, mut terminate) = match (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) {
                    (Ok(i), Ok(t)) => (i, t),
                    (Err(e), _) | (_, Err(e)) => {
                        let _ = ready.send(Err(e));
                        return None;
                    }
                };
                let _ = ready.send(Ok(()));
                Some(tokio::select! {
                    biased;
                    _ = interrupt.recv() => 130,
                    _ = terminate.recv() => 143,
                })
            });
            if let Some(code) = code {
                stop_all_and_exit(code);
            }
        })?;
    wait.recv()
        .unwrap_or_else(|_| Err(io::Error::other("the signal thread ended early")))
}

/// Stops every registered process group (`stop_all`) and exits with `code`: how the harness
/// ends other than by returning from `main` (a signal, or `gauntlet … | head` closing stdout)
/// without leaving a process it started behind.
pub fn stop_all_and_exit(code: i32) -> ! {
    stop_all();
    std::process::exit(code)
}

/// SIGTERM to every registered group, a bounded wait for the leaders, then SIGKILL to every
/// group, and their directories removed. Holds the registry's lock throughout: nothing is
/// reaped or started meanwhile.
fn stop_all() {
    let running = registry();
    let pids: Vec<Pid> = running.keys().filter_map(|&p| Pid::from_raw(p)).collect();
    for &pid in &pids {
        let _ = rustix::process::kill_process_group(pid, Signal::TERM);
    }
    let deadline = Deadline::after(HOOK_GRACE);
    while !pids.iter().all(|&p| leader_exited(p)) && !deadline.passed() {
        std::thread::sleep(POLL);
    }
    for &pid in &pids {
        let _ = rustix::process::kill_process_group(pid, Signal::KILL);
    }
    for dir in running.values().flatten() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        assert_eq!(parse_stat("42 (a) b) S 1 42 42 0"), Some(('S', 42)));
        assert_eq!(parse_stat("7 (nginx) Z 1 9 9"), Some(('Z', 9)));
        assert_eq!(parse_stat("garbage"), None);
    }
}
