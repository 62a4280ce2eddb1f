//! [`Program`]: what starts, a product from its template or any proxy program from a command
//! line, and how: in a working directory of its own, its output captured, until its port
//! accepts connections.

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use super::command::{CommandError, CommandLine, Filled};
use super::error::io_error;
use super::options::free_port;
use super::process::Supervised;
use super::{Product, ProductError, Running, StartOptions};

/// What [`Program::start`] starts: a product from its configuration template, or any proxy
/// program from a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// A product, its configuration rendered from `template` (see [`template`](super::template)).
    Product {
        /// The product.
        product: Product,
        /// Its configuration template.
        template: PathBuf,
    },
    /// Any program, from a command line whose placeholders name its addresses (see
    /// [`command`](super::command)). It runs in the harness's working directory, so a relative program path
    /// means what it says; its working directory holds only its captured output.
    Command(CommandLine),
}

impl Program {
    /// Its name in directories, messages and logs: the product's name, or the command's
    /// program file name.
    pub fn name(&self) -> &str {
        match self {
            Program::Product { product, .. } => product.name(),
            Program::Command(line) => line.name(),
        }
    }

    /// Starts it in its own process group, with a working directory of its own (created under
    /// `options.base_dir`) where its stdout and stderr are captured to `stdout.log` and
    /// `stderr.log`, and waits until it listens on `127.0.0.1:{{listen}}` (and on
    /// `tls_listen`, if set): until each port accepts a TCP connect and the socket listening
    /// there is the program's own (one of its process group holds it). If it exits first, or
    /// `options.ready_timeout` passes, it is stopped and the error carries its logs; the
    /// working directory is kept for inspection.
    ///
    /// Ports the start chose (`{{listen}}` unless `options.listen` fixes it, `tls_listen` if
    /// [`StartOptions::tls`] chose it) were free a moment before the program binds them;
    /// another process can take one in that moment. A program that exits saying "Address
    /// already in use" is started again on ports chosen again, at most
    /// [`PORT_CHOICES`] times in all.
    ///
    /// A product's template gets every placeholder [`StartOptions`] sets. A command gets the
    /// listening port, the first upstream, and of the options' values and files those its
    /// placeholders name: `tls_listen` (which it is then waited on too), `upstream_tls`, and
    /// the files `cert`, `key`, `cert_and_key` and `ca`, written into its directory.
    pub fn start(&self, options: &StartOptions) -> Result<Running, ProductError> {
        let mut options = options.clone();
        let mut choice = 1;
        loop {
            let port = match options.listen {
                Some(port) => port,
                None => free_port()?,
            };
            match self.start_on(port, &options) {
                Err(ProductError::Exited { ref logs, .. })
                    if choice < PORT_CHOICES && logs.contains(ADDRESS_IN_USE) =>
                {
                    choice += 1;
                    options.choose_ports_again()?;
                }
                started => return started,
            }
        }
    }

    /// What `line`'s placeholders are filled with for a command on `port` (and `tls_port`)
    /// working in `dir`: the first upstream, `options`' `upstream_tls` value, and the paths
    /// in `dir` of those of `options`' files the command names.
    pub fn filled(
        line: &CommandLine,
        port: u16,
        tls_port: Option<u16>,
        dir: &Path,
        options: &StartOptions,
    ) -> Filled {
        Filled {
            listen: port,
            upstream: options.upstreams.first().copied(),
            tls_listen: tls_port,
            upstream_tls: options
                .values
                .get("upstream_tls")
                .and_then(|a| a.parse().ok()),
            files: options
                .files
                .iter()
                .filter(|(name, _)| line.names(name))
                .map(|(name, (file, _))| (name.clone(), dir.join(file).display().to_string()))
                .collect(),
        }
    }

    /// [`Program::start`] on `port`, once.
    fn start_on(&self, port: u16, options: &StartOptions) -> Result<Running, ProductError> {
        let dir = make_dir(options.base_dir.as_deref(), self.name())?;
        let prepared = match self {
            Program::Product { product, template } => {
                product.prepare(template, port, &dir, options)
            }
            Program::Command(line) => {
                command_for(line, port, &dir, options).map(|c| (c, line.tls_listener()))
            }
        };
        let (mut command, tls) = match prepared {
            Ok(prepared) => prepared,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let log = |name: &str| {
            let path = dir.join(name);
            File::create(&path)
                .map_err(|e| io_error(format!("cannot create {}", path.display()), e))
        };
        command
            .stdout(log("stdout.log")?)
            .stderr(log("stderr.log")?);
        let cleanup = (!options.keep_dir).then(|| dir.clone());
        let process = Supervised::spawn(&mut command, cleanup).map_err(|e| {
            let program = Path::new(command.get_program()).display().to_string();
            io_error(format!("cannot run {program}"), e)
        })?;
        let mut running = Running {
            name: self.name().to_string(),
            process,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            tls_port: options.tls_port().filter(|_| tls),
            dir,
            keep_dir: options.keep_dir,
            stop_grace: options.stop_grace,
            terminated: false,
        };
        let ready_timeout = match self {
            Program::Product { product, .. } => {
                options.ready_timeout.max(product.least_ready_timeout())
            }
            Program::Command(_) => options.ready_timeout,
        };
        running.wait_ready(ready_timeout)?;
        Ok(running)
    }
}

/// How many times [`Program::start`] chooses ports for one start.
pub const PORT_CHOICES: usize = 3;

/// What a program that could not bind its port says (`strerror(EADDRINUSE)`, in nginx's,
/// HAProxy's, Apache's, Squid's and tinyproxy's messages alike).
const ADDRESS_IN_USE: &str = "Address already in use";

/// The command that runs `line` listening on `port`, sending to the first upstream (a
/// forward proxy's command has none), with the TLS listener, the server's TLS address and
/// the files `options` give, the files written into `dir`.
fn command_for(
    line: &CommandLine,
    port: u16,
    dir: &Path,
    options: &StartOptions,
) -> Result<Command, ProductError> {
    for (name, (file, contents)) in &options.files {
        if line.names(name) {
            let path = dir.join(file);
            std::fs::write(&path, contents)
                .map_err(|e| io_error(format!("cannot write {}", path.display()), e))?;
        }
    }
    let filled = Program::filled(line, port, options.tls_port(), dir, options);
    let words = line.render_with(&filled)?;
    let (program, args) = words.split_first().ok_or(CommandError::Empty)?;
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::null());
    Ok(command)
}

/// A new directory `gauntlet-NAME-PID-N` under `base` (default: the temporary directory).
fn make_dir(base: Option<&Path>, name: &str) -> Result<PathBuf, ProductError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = base.map_or_else(std::env::temp_dir, Path::to_path_buf);
    std::fs::create_dir_all(&base)
        .map_err(|e| io_error(format!("cannot create {}", base.display()), e))?;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("gauntlet-{name}-{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_error(format!("cannot create {}", dir.display()), e)),
        }
    }
}
