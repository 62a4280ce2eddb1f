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
//!
//! This file holds [`Product`], what each product is and how it is found, configured and
//! started; `program.rs` the [`Program`] that starts, a product or a command line;
//! `options.rs` the [`StartOptions`] a start takes; `running.rs` the [`Running`] program,
//! its readiness and its stop; `error.rs` [`ProductError`]; `process.rs` the process
//! lifecycle; `template.rs` and `command.rs` the two kinds of configuration; `builtin.rs`
//! the templates built into the binary.

pub mod builtin;
pub mod command;
mod error;
mod listeners;
mod options;
mod process;
mod program;
mod running;
pub mod template;

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;

use error::io_error;

pub use error::{ProductError, TemplateError};
pub use options::StartOptions;
pub use process::{is_alive, stop_all_and_exit};
pub use program::{PORT_CHOICES, Program};
pub use running::{Running, Stopped};

/// The user Debian's Squid switches to when started as root (`--with-default-user=proxy`):
/// its working directory must be writable by that user.
const SQUID_USER: &str = "proxy";

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
    /// Whether the product is a reverse proxy (in front of servers) rather than a forward
    /// proxy (for clients that name it as theirs).
    pub fn is_reverse(self) -> bool {
        matches!(self, Product::Nginx | Product::Haproxy | Product::Apache)
    }

    /// Every product, in a fixed order.
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

    /// Renders `template` into `dir` for a product on `port`: its command, and whether the
    /// template listens on `tls_listen`.
    fn prepare(
        self,
        template: &Path,
        port: u16,
        dir: &Path,
        options: &StartOptions,
    ) -> Result<(Command, bool), ProductError> {
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
        let tls = template::placeholders(&text).contains("tls_listen");
        Ok((self.command(&binary, &config, dir), tls))
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

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
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
