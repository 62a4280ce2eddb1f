//! Real proxies (nginx, HAProxy, Apache httpd, Squid, tinyproxy) started on loopback from a
//! configuration template, for tests that compare a model with the product it stands for, and
//! any proxy program started from a command line, for `gauntlet gate`.
//!
//! [`Product::start`] renders a template (see [`template`] for the `{{name}}` syntax) into a
//! fresh working directory, starts the product in the foreground in its own process group,
//! and returns once its port accepts TCP connections: a [`Running`], stopped by
//! [`Running::stop`] or when dropped (panics included), and by a Ctrl-C / SIGTERM hook if the
//! harness is interrupted. [`Program::start`] does the same for a product or a
//! [`command::CommandLine`] (`my-proxy --listen {listen} --upstream {upstream}`). Every
//! address is on 127.0.0.1. This module knows nothing about scenarios or engines.
//!
//! ```no_run
//! use gauntlet::real::product::{Product, StartOptions};
//! # fn main() -> Result<(), gauntlet::real::product::ProductError> {
//! let upstream = "127.0.0.1:9000".parse().unwrap();
//! let nginx = Product::Nginx.start(
//!     "scenarios/live/templates/nginx-with-upgrade-lines.conf".as_ref(),
//!     &StartOptions::new().upstream(upstream).value("read_timeout", "3600s"),
//! )?;
//! println!("nginx listens on {}", nginx.addr());
//! let stopped = nginx.stop()?;
//! println!("{}", stopped.logs);
//! # Ok(())
//! # }
//! ```

pub mod command;
mod process;
pub mod template;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use command::CommandLine;
use process::{Deadline, Supervised};

pub use process::{is_alive, stop_all_and_exit};

/// The user Debian's Squid switches to when started as root (`--with-default-user=proxy`):
/// its working directory must be writable by that user.
const SQUID_USER: &str = "proxy";

/// How often the readiness probe tries to connect.
const PROBE_INTERVAL: Duration = Duration::from_millis(20);

/// A real intermediary Gauntlet can start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Product {
    /// nginx, a reverse proxy (`proxy_pass`).
    Nginx,
    /// HAProxy, a load balancer in http mode.
    Haproxy,
    /// Apache httpd with mod_proxy (`ProxyPass`).
    Apache,
    /// Squid, a forward (explicit) proxy.
    Squid,
    /// tinyproxy, a small forward (explicit) proxy.
    Tinyproxy,
}

impl Product {
    /// Every product, in a fixed order.
    /// Whether the product is a reverse proxy (in front of servers) rather than a forward
    /// proxy (for clients that name it as theirs).
    pub fn is_reverse(self) -> bool {
        matches!(self, Product::Nginx | Product::Haproxy | Product::Apache)
    }

    pub const ALL: [Product; 5] = [
        Product::Nginx,
        Product::Haproxy,
        Product::Apache,
        Product::Squid,
        Product::Tinyproxy,
    ];

    /// Its name in files and messages: `nginx`, `haproxy`, `apache`, `squid`, `tinyproxy`.
    pub fn name(self) -> &'static str {
        match self {
            Product::Nginx => "nginx",
            Product::Haproxy => "haproxy",
            Product::Apache => "apache",
            Product::Squid => "squid",
            Product::Tinyproxy => "tinyproxy",
        }
    }

    /// The Debian package that installs it.
    pub fn package(self) -> &'static str {
        match self {
            Product::Apache => "apache2",
            other => other.name(),
        }
    }

    /// The file name of its binary.
    pub fn binary_name(self) -> &'static str {
        match self {
            Product::Apache => "apache2",
            other => other.name(),
        }
    }

    /// The environment variable that, when set, names its binary instead of the search:
    /// `GAUNTLET_NGINX`, `GAUNTLET_HAPROXY`, `GAUNTLET_APACHE`, `GAUNTLET_SQUID`,
    /// `GAUNTLET_TINYPROXY`.
    pub fn override_var(self) -> &'static str {
        match self {
            Product::Nginx => "GAUNTLET_NGINX",
            Product::Haproxy => "GAUNTLET_HAPROXY",
            Product::Apache => "GAUNTLET_APACHE",
            Product::Squid => "GAUNTLET_SQUID",
            Product::Tinyproxy => "GAUNTLET_TINYPROXY",
        }
    }

    /// Its binary: the file [`Product::override_var`] names if that is set, else the first
    /// executable [`Product::binary_name`] on `PATH`, then in `/usr/sbin` and `/usr/bin`
    /// (Debian puts daemons in `/usr/sbin`, often not on a user's `PATH`).
    pub fn binary(self) -> Result<PathBuf, ProductError> {
        self.locate(
            std::env::var_os(self.override_var()).as_deref(),
            std::env::var_os("PATH").as_deref(),
        )
    }

    /// [`Product::binary`] with the override variable's and `PATH`'s values given.
    fn locate(self, chosen: Option<&OsStr>, path: Option<&OsStr>) -> Result<PathBuf, ProductError> {
        let var = self.override_var();
        if let Some(chosen) = chosen.filter(|v| !v.is_empty()) {
            let chosen = Path::new(chosen);
            return if is_executable(chosen) {
                Ok(chosen.to_path_buf())
            } else {
                Err(self.not_installed(format!(
                    "{var}={} is not an executable file; unset {var} or point it at the binary",
                    chosen.display()
                )))
            };
        }
        std::env::split_paths(path.unwrap_or_default())
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
            .map(|dir| dir.join(self.binary_name()))
            .find(|candidate| is_executable(candidate))
            .ok_or_else(|| {
                self.not_installed(format!(
                    "no `{}` on PATH or in /usr/sbin or /usr/bin; or set {var} to its binary",
                    self.binary_name()
                ))
            })
    }

    fn not_installed(self, detail: String) -> ProductError {
        ProductError::NotInstalled {
            product: self,
            package: self.package(),
            detail,
        }
    }

    /// The file name its rendered configuration gets in the working directory.
    pub fn config_file_name(self) -> &'static str {
        match self {
            Product::Nginx => "nginx.conf",
            Product::Haproxy => "haproxy.cfg",
            Product::Apache => "httpd.conf",
            Product::Squid => "squid.conf",
            Product::Tinyproxy => "tinyproxy.conf",
        }
    }

    /// The command that runs it in the foreground with `config`, in `dir`:
    ///
    /// - nginx: `nginx -p DIR -c CONFIG -e DIR/error.log -g 'daemon off;'` (so templates
    ///   must not say `daemon`; `-e` keeps nginx from opening its packaged error log first);
    /// - HAProxy: `haproxy -db -f CONFIG`;
    /// - Apache: `apache2 -DFOREGROUND -f CONFIG` (the template is self-contained: no
    ///   `APACHE_*` variables, explicit `LoadModule` lines);
    /// - Squid: `squid -N -f CONFIG`;
    /// - tinyproxy: `tinyproxy -d -c CONFIG`.
    pub fn command(self, binary: &Path, config: &Path, dir: &Path) -> Command {
        let mut command = Command::new(binary);
        match self {
            Product::Nginx => command
                .arg("-p")
                .arg(dir)
                .arg("-c")
                .arg(config)
                .arg("-e")
                .arg(dir.join("error.log"))
                .args(["-g", "daemon off;"]),
            Product::Haproxy => command.arg("-db").arg("-f").arg(config),
            Product::Apache => command.arg("-DFOREGROUND").arg("-f").arg(config),
            Product::Squid => command.arg("-N").arg("-f").arg(config),
            Product::Tinyproxy => command.arg("-d").arg("-c").arg(config),
        };
        command.current_dir(dir).stdin(Stdio::null());
        command
    }

    /// Starts it: renders `template` with `options` into a new working directory, runs
    /// [`Product::command`] with stdout and stderr captured to `stdout.log` and `stderr.log`
    /// there, and probes `127.0.0.1:{{listen}}` with TCP connects until one succeeds. If the
    /// product exits first, or `options.ready_timeout` passes, it is stopped and the error
    /// carries its logs; the working directory is kept for inspection. The same as
    /// [`Program::start`] with [`Program::Product`].
    pub fn start(self, template: &Path, options: &StartOptions) -> Result<Running, ProductError> {
        Program::Product {
            product: self,
            template: template.to_path_buf(),
        }
        .start(options)
    }

    /// Renders `template` into `dir` for a product on `port`, and its command.
    fn prepare(
        self,
        template: &Path,
        port: u16,
        dir: &Path,
        options: &StartOptions,
    ) -> Result<Command, ProductError> {
        let binary = self.binary()?;
        let text = std::fs::read_to_string(template)
            .map_err(|e| io_error(format!("cannot read template {}", template.display()), e))?;
        let rendered = options
            .values_for(port, dir)
            .and_then(|values| template::render(&text, template, &values))?;
        for (file, contents) in options.files.values() {
            let path = dir.join(file);
            std::fs::write(&path, contents)
                .map_err(|e| io_error(format!("cannot write {}", path.display()), e))?;
        }
        let config = dir.join(self.config_file_name());
        std::fs::write(&config, rendered)
            .map_err(|e| io_error(format!("cannot write {}", config.display()), e))?;
        self.prepare_dir(dir)?;
        Ok(self.command(&binary, &config, dir))
    }

    /// Makes `dir` usable by the product. Squid started as root switches to `proxy`, which
    /// must be able to write its logs and pid file there, so the directory is given to it.
    fn prepare_dir(self, dir: &Path) -> Result<(), ProductError> {
        if self != Product::Squid || !rustix::process::geteuid().is_root() {
            return Ok(());
        }
        let (uid, gid) = passwd_ids(SQUID_USER)?;
        std::os::unix::fs::chown(dir, Some(uid), Some(gid))
            .map_err(|e| io_error(format!("cannot give {} to {SQUID_USER}", dir.display()), e))
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Product {
    type Err = ProductError;

    /// `nginx`, `haproxy`, `apache` (or `httpd`, `apache2`), `squid`, `tinyproxy`.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "nginx" => Ok(Product::Nginx),
            "haproxy" => Ok(Product::Haproxy),
            "apache" | "httpd" | "apache2" => Ok(Product::Apache),
            "squid" => Ok(Product::Squid),
            "tinyproxy" => Ok(Product::Tinyproxy),
            other => Err(ProductError::Unknown(other.to_string())),
        }
    }
}

/// What [`Program::start`] starts: a product from its configuration template, or any proxy
/// program from a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// A product, its configuration rendered from `template` (see [`template`]).
    Product {
        /// The product.
        product: Product,
        /// Its configuration template.
        template: PathBuf,
    },
    /// Any program, from a command line whose placeholders name its addresses (see
    /// [`command`]). It runs in the harness's working directory, so a relative program path
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
    /// `stderr.log`, and probes `127.0.0.1:{{listen}}` with TCP connects until one succeeds.
    /// If it exits first, or `options.ready_timeout` passes, it is stopped and the error
    /// carries its logs; the working directory is kept for inspection.
    ///
    /// A product's template gets every placeholder [`StartOptions`] sets. A command gets the
    /// listening port and the first upstream (it needs one), and no other option's values.
    pub fn start(&self, options: &StartOptions) -> Result<Running, ProductError> {
        let port = match options.listen {
            Some(port) => port,
            None => free_port()?,
        };
        let dir = make_dir(options.base_dir.as_deref(), self.name())?;
        let prepared = match self {
            Program::Product { product, template } => {
                product.prepare(template, port, &dir, options)
            }
            Program::Command(line) => command_for(line, port, options),
        };
        let mut command = match prepared {
            Ok(command) => command,
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
            dir,
            keep_dir: options.keep_dir,
            stop_grace: options.stop_grace,
        };
        running.wait_ready(options.ready_timeout)?;
        Ok(running)
    }
}

/// The command that runs `line` listening on `port`, sending to the first upstream (a
/// forward proxy's command has none).
fn command_for(
    line: &CommandLine,
    port: u16,
    options: &StartOptions,
) -> Result<Command, ProductError> {
    let words = line
        .render(port, options.upstreams.first().copied())
        .map_err(ProductError::Command)?;
    let (program, args) = words
        .split_first()
        .ok_or_else(|| ProductError::Command("the command line is empty".to_string()))?;
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::null());
    Ok(command)
}

/// What [`Product::start`] needs besides the template.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// The port for `{{listen}}` on 127.0.0.1; `None` picks a free ephemeral port.
    pub listen: Option<u16>,
    /// The upstreams, as `{{upstream0}}`, `{{upstream1}}`, …; the first is also
    /// `{{upstream}}`.
    pub upstreams: Vec<SocketAddr>,
    /// Further placeholders, such as `read_timeout`. The harness's own names (`listen`, `dir`,
    /// `upstream`, `upstreamN`) cannot be given here.
    pub values: BTreeMap<String, String>,
    /// Files written into the working directory before the product starts, by placeholder:
    /// `{{placeholder}}` becomes the file's path (TLS certificates and keys, for one).
    pub files: BTreeMap<String, (String, String)>,
    /// Where working directories are made; `None` for the system's temporary directory.
    /// Squid started as root needs it traversable by the `proxy` user.
    pub base_dir: Option<PathBuf>,
    /// How long the product has to accept connections (default 10 s).
    pub ready_timeout: Duration,
    /// How long a stop waits after SIGTERM before SIGKILL (default 10 s).
    pub stop_grace: Duration,
    /// Keep the working directory after a stop (it is always kept when start fails, and
    /// when the product is dropped while panicking).
    pub keep_dir: bool,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            listen: None,
            upstreams: Vec::new(),
            values: BTreeMap::new(),
            files: BTreeMap::new(),
            base_dir: None,
            ready_timeout: Duration::from_secs(10),
            stop_grace: Duration::from_secs(10),
            keep_dir: false,
        }
    }
}

impl StartOptions {
    /// The defaults: a free port, no upstreams, no values.
    pub fn new() -> Self {
        StartOptions::default()
    }

    /// Adds an upstream (the next `{{upstreamN}}`).
    pub fn upstream(mut self, addr: SocketAddr) -> Self {
        self.upstreams.push(addr);
        self
    }

    /// Sets the placeholder `name` to `value`.
    pub fn value(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.values.insert(name.into(), value.into());
        self
    }

    /// Writes `contents` to `file_name` in the working directory and sets the placeholder
    /// `name` to its path.
    pub fn file(
        mut self,
        name: impl Into<String>,
        file_name: impl Into<String>,
        contents: impl Into<String>,
    ) -> Self {
        self.files
            .insert(name.into(), (file_name.into(), contents.into()));
        self
    }

    /// A TLS listener's placeholders, for templates that terminate TLS: `tls_listen` (a free
    /// port on 127.0.0.1), and the PEM files `cert`, `key` and `cert_and_key` (both in one
    /// file, as HAProxy's `crt` takes them).
    pub fn tls(self, cert_pem: &str, key_pem: &str) -> Result<Self, ProductError> {
        let port = free_port()?;
        Ok(self
            .value("tls_listen", port.to_string())
            .file("cert", "tls-cert.pem", cert_pem)
            .file("key", "tls-key.pem", key_pem)
            .file(
                "cert_and_key",
                "tls-cert-and-key.pem",
                format!("{cert_pem}{key_pem}"),
            ))
    }

    /// The port `tls` chose, if it was called.
    pub fn tls_port(&self) -> Option<u16> {
        self.values.get("tls_listen").and_then(|p| p.parse().ok())
    }

    /// Listens on this port instead of a free one.
    pub fn listen(mut self, port: u16) -> Self {
        self.listen = Some(port);
        self
    }

    /// Every placeholder's value for a product on `port` working in `dir`.
    fn values_for(&self, port: u16, dir: &Path) -> Result<BTreeMap<String, String>, ProductError> {
        let mut values = BTreeMap::new();
        values.insert("listen".to_string(), port.to_string());
        values.insert("dir".to_string(), dir.display().to_string());
        for (i, upstream) in self.upstreams.iter().enumerate() {
            if i == 0 {
                values.insert("upstream".to_string(), upstream.to_string());
            }
            values.insert(format!("upstream{i}"), upstream.to_string());
        }
        let files = self
            .files
            .iter()
            .map(|(name, (file, _))| (name, dir.join(file).display().to_string()));
        let given = self.values.iter().map(|(n, v)| (n, v.clone()));
        for (name, value) in given.chain(files) {
            let reserved = ["listen", "dir", "upstream"].contains(&name.as_str())
                || name
                    .strip_prefix("upstream")
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
            if reserved {
                return Err(ProductError::ReservedValue(name.clone()));
            }
            values.insert(name.clone(), value);
        }
        Ok(values)
    }
}

/// A program that [`Program::start`] (or [`Product::start`]) started and that accepts
/// connections.
#[derive(Debug)]
pub struct Running {
    name: String,
    process: Supervised,
    addr: SocketAddr,
    dir: PathBuf,
    keep_dir: bool,
    stop_grace: Duration,
}

/// What [`Running::stop`] found.
#[derive(Debug)]
pub struct Stopped {
    /// The product's exit status (a signal, if it had to be killed).
    pub status: ExitStatus,
    /// Whether it outlived [`StartOptions::stop_grace`] after SIGTERM and was killed.
    pub forced: bool,
    /// Processes of its group that outlived it and were killed (normally none).
    pub killed_survivors: Vec<u32>,
    /// Its logs at the end, as [`Running::logs`] gives them.
    pub logs: String,
}

impl Running {
    /// Which program this is: [`Program::name`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where it listens: 127.0.0.1 and the `{{listen}}` port.
    pub fn addr(&self) -> SocketAddr {
        self.addr
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

    /// Probes the port until it accepts, the process exits, or `timeout` passes.
    fn wait_ready(&mut self, timeout: Duration) -> Result<(), ProductError> {
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
            if TcpStream::connect_timeout(&self.addr, PROBE_INTERVAL * 5).is_ok() {
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

/// Why a product could not be found, configured, started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProductError {
    /// A product name that is not one of [`Product::ALL`].
    #[error(
        "unknown product `{0}`: expected nginx, haproxy, apache (or httpd), squid or tinyproxy"
    )]
    Unknown(String),
    /// Its binary is missing.
    #[error("{product} is not installed: run apt-get install -y {package} ({detail})")]
    NotInstalled {
        /// The product.
        product: Product,
        /// The Debian package to install.
        package: &'static str,
        /// Where it was looked for.
        detail: String,
    },
    /// A template that cannot be rendered.
    #[error("{}:{line}: {message}", file.display())]
    Template {
        /// The template file.
        file: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong there.
        message: String,
    },
    /// A caller's value under a name the harness sets itself.
    #[error(
        "`{{{{{0}}}}}` is set by the harness: give ports and upstreams in StartOptions' own fields"
    )]
    ReservedValue(String),
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, and on what.
        what: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// A command line that cannot be started as given.
    #[error("{0}")]
    Command(String),
    /// The program exited before accepting connections.
    #[error("{program} exited ({status}) before listening on {addr}; its logs, in {}:\n{logs}", dir.display())]
    Exited {
        /// The program's name ([`Program::name`]).
        program: String,
        /// Its exit status.
        status: ExitStatus,
        /// Where it should have listened.
        addr: SocketAddr,
        /// Its working directory (kept).
        dir: PathBuf,
        /// Its logs.
        logs: String,
    },
    /// The program did not accept connections in time; it has been stopped.
    #[error("{program} did not accept connections on {addr} within {waited:?}; its logs, in {}:\n{logs}", dir.display())]
    NotReady {
        /// The program's name ([`Program::name`]).
        program: String,
        /// Where it should have listened.
        addr: SocketAddr,
        /// How long the probe tried.
        waited: Duration,
        /// Its working directory (kept).
        dir: PathBuf,
        /// Its logs.
        logs: String,
    },
}

fn io_error(what: String, source: io::Error) -> ProductError {
    ProductError::Io { what, source }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A port on 127.0.0.1 that was free a moment ago, for a program that must be told its port
/// before it binds it. It is chosen below the kernel's ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`, 32768 and up by default), where no `bind` to
/// port 0 and no outgoing connection of any process can take it in the meantime: a port the
/// kernel picked for port 0 and then released was measured going to the next listener bound
/// to port 0 (the harness's own server, in a gate run two behaviours at a time) before the
/// program bound it. Candidates start at an offset drawn from the process id and a counter,
/// so that processes and threads choosing at once try different ports; each is checked by
/// binding it. Another program choosing a fixed port in that range could still take it; the
/// program then fails to start and says so in its logs.
fn free_port() -> Result<u16, ProductError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    // Above the well-known and the common service ports, below the ephemeral range.
    let (low, high) = (10_000u16, ephemeral.max(10_001));
    let span = u64::from(high - low);
    let seed = u64::from(std::process::id()).wrapping_mul(7919);
    for _ in 0..span.min(4096) {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = low + ((seed.wrapping_add(n.wrapping_mul(104_729))) % span) as u16;
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    Err(io_error(
        format!("cannot find a free port on 127.0.0.1 between {low} and {high}"),
        io::Error::from(io::ErrorKind::AddrInUse),
    ))
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

/// The user and group ids of `user` from `/etc/passwd`.
fn passwd_ids(user: &str) -> Result<(u32, u32), ProductError> {
    let passwd = std::fs::read_to_string("/etc/passwd")
        .map_err(|e| io_error("cannot read /etc/passwd".to_string(), e))?;
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            match fields.as_slice() {
                [name, _, uid, gid, ..] if *name == user => {
                    Some((uid.parse().ok()?, gid.parse().ok()?))
                }
                _ => None,
            }
        })
        .ok_or_else(|| {
            io_error(
                format!("squid started as root runs as `{user}`, which /etc/passwd lacks"),
                io::Error::from(io::ErrorKind::NotFound),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_lie_below_the_ephemeral_range_and_can_be_bound() {
        let ephemeral: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse().ok())
            .unwrap_or(32768);
        let ports: Vec<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        for port in &ports {
            assert!(
                (10_000..ephemeral).contains(port),
                "{port} (ephemeral from {ephemeral})"
            );
        }
        // Successive picks differ, so two products started at once are not told one port.
        let distinct: std::collections::BTreeSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        let port = free_port().unwrap();
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("the port is free");
    }

    #[test]
    fn names_parse_and_print() {
        for product in Product::ALL {
            assert_eq!(product.name().parse::<Product>().unwrap(), product);
            assert_eq!(product.to_string(), product.name());
        }
        assert_eq!("httpd".parse::<Product>().unwrap(), Product::Apache);
        let err = "varnish".parse::<Product>().unwrap_err().to_string();
        assert!(err.starts_with("unknown product `varnish`"), "{err}");
    }

    #[test]
    fn harness_values_cannot_be_overridden() {
        for name in ["listen", "dir", "upstream", "upstream3"] {
            let options = StartOptions::new().value(name, "x");
            let err = options.values_for(1, Path::new("/d")).unwrap_err();
            assert!(matches!(err, ProductError::ReservedValue(_)), "{name}");
        }
        let options = StartOptions::new()
            .upstream("127.0.0.1:1".parse().unwrap())
            .upstream("127.0.0.1:2".parse().unwrap())
            .value("upstreams_note", "ok");
        let values = options.values_for(8080, Path::new("/d")).unwrap();
        let keys: Vec<&str> = values.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "dir",
                "listen",
                "upstream",
                "upstream0",
                "upstream1",
                "upstreams_note"
            ]
        );
        assert_eq!(values["upstream"], "127.0.0.1:1");
    }

    #[test]
    fn a_missing_binary_says_what_to_install() {
        let err = Product::Apache
            .locate(Some(OsStr::new("/nonexistent/apache2")), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("apache is not installed: run apt-get install -y apache2 ("),
            "{err}"
        );
        assert!(
            err.contains("GAUNTLET_APACHE=/nonexistent/apache2"),
            "{err}"
        );
        let found = Product::Nginx
            .locate(Some(OsStr::new("/bin/sh")), None)
            .unwrap();
        assert_eq!(found, Path::new("/bin/sh"));
    }

    #[test]
    fn passwd_lookup_finds_root() {
        assert_eq!(passwd_ids("root").unwrap(), (0, 0));
        assert!(passwd_ids("no-such-user-here").is_err());
    }
}
