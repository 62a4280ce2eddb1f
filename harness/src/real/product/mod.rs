//! Real proxies (nginx, HAProxy, Apache httpd, Squid, tinyproxy, Caddy, lighttpd, H2O,
//! Varnish, Traffic Server, node-http-proxy, mitmproxy) started on loopback from a
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
//! the templates built into the binary; `invoke.rs` each product's command lines;
//! `locate.rs` where the products that are not Debian packages are; `bundle.rs` a template
//! that is several files.

pub mod builtin;
mod bundle;
pub mod command;
mod error;
mod invoke;
mod listeners;
mod locate;
mod options;
mod process;
mod program;
mod running;
pub mod template;
mod words;

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
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

/// The user H2O switches to when started as root without a `user` directive.
const H2O_USER: &str = "nobody";

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
    /// Caddy, a reverse proxy (`reverse_proxy`).
    Caddy,
    /// lighttpd with mod_proxy (`proxy.server`).
    Lighttpd,
    /// H2O, a reverse proxy (`proxy.reverse.url`).
    H2o,
    /// Varnish Cache, a caching reverse proxy (VCL).
    Varnish,
    /// Apache Traffic Server, a caching reverse proxy (`remap.config`).
    Trafficserver,
    /// node-http-proxy (npm `http-proxy`) in a Node.js script.
    NodeHttpProxy,
    /// mitmproxy's `mitmdump`, a reverse or forward proxy.
    Mitmproxy,
}

/// Where a product comes from, for the message that says how to install it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A Debian package.
    Debian(&'static str),
    /// The Node package under `target/gauntlet/node` (`cargo xtask test` installs it with
    /// `npm ci` from `harness/tests/node/package-lock.json`), run by Debian's `nodejs`.
    Npm(&'static str),
    /// The Python package in its own virtualenv under `target/gauntlet` (`cargo xtask test`
    /// makes it from `harness/tests/python/`).
    Pip(&'static str),
}

/// What each product is: its names, where it comes from, its configuration file, its role.
struct Info {
    name: &'static str,
    binary: &'static str,
    var: &'static str,
    source: Source,
    config: &'static str,
    reverse: bool,
}

const fn info(product: Product) -> Info {
    let (name, binary, var, source, config, reverse) = match product {
        Product::Nginx => (
            "nginx",
            "nginx",
            "GAUNTLET_NGINX",
            Source::Debian("nginx"),
            "nginx.conf",
            true,
        ),
        Product::Haproxy => (
            "haproxy",
            "haproxy",
            "GAUNTLET_HAPROXY",
            Source::Debian("haproxy"),
            "haproxy.cfg",
            true,
        ),
        Product::Apache => (
            "apache",
            "apache2",
            "GAUNTLET_APACHE",
            Source::Debian("apache2"),
            "httpd.conf",
            true,
        ),
        Product::Squid => (
            "squid",
            "squid",
            "GAUNTLET_SQUID",
            Source::Debian("squid"),
            "squid.conf",
            false,
        ),
        Product::Tinyproxy => (
            "tinyproxy",
            "tinyproxy",
            "GAUNTLET_TINYPROXY",
            Source::Debian("tinyproxy"),
            "tinyproxy.conf",
            false,
        ),
        Product::Caddy => (
            "caddy",
            "caddy",
            "GAUNTLET_CADDY",
            Source::Debian("caddy"),
            "Caddyfile",
            true,
        ),
        Product::Lighttpd => (
            "lighttpd",
            "lighttpd",
            "GAUNTLET_LIGHTTPD",
            Source::Debian("lighttpd"),
            "lighttpd.conf",
            true,
        ),
        Product::H2o => (
            "h2o",
            "h2o",
            "GAUNTLET_H2O",
            Source::Debian("h2o"),
            "h2o.conf",
            true,
        ),
        Product::Varnish => (
            "varnish",
            "varnishd",
            "GAUNTLET_VARNISH",
            Source::Debian("varnish"),
            "default.vcl",
            true,
        ),
        Product::Trafficserver => (
            "trafficserver",
            "traffic_server",
            "GAUNTLET_TRAFFICSERVER",
            Source::Debian("trafficserver"),
            "trafficserver.conf",
            true,
        ),
        Product::NodeHttpProxy => (
            "node-http-proxy",
            "node",
            "GAUNTLET_NODE",
            Source::Npm("http-proxy"),
            "proxy.js",
            true,
        ),
        Product::Mitmproxy => (
            "mitmproxy",
            "mitmdump",
            "GAUNTLET_MITMPROXY",
            Source::Pip("mitmproxy"),
            "config.yaml",
            true,
        ),
    };
    Info {
        name,
        binary,
        var,
        source,
        config,
        reverse,
    }
}

impl Product {
    /// Whether the product is a reverse proxy (in front of servers) rather than a forward
    /// proxy (for clients that name it as theirs).
    pub fn is_reverse(self) -> bool {
        info(self).reverse
    }

    /// Every product, in a fixed order.
    pub const ALL: [Product; 12] = [
        Product::Nginx,
        Product::Haproxy,
        Product::Apache,
        Product::Squid,
        Product::Tinyproxy,
        Product::Caddy,
        Product::Lighttpd,
        Product::H2o,
        Product::Varnish,
        Product::Trafficserver,
        Product::NodeHttpProxy,
        Product::Mitmproxy,
    ];

    /// Its name in files and messages: `nginx`, `haproxy`, `apache`, `squid`, `tinyproxy`,
    /// `caddy`, `lighttpd`, `h2o`, `varnish`, `trafficserver`, `node-http-proxy`,
    /// `mitmproxy`.
    pub fn name(self) -> &'static str {
        info(self).name
    }

    /// The Debian package that installs it (for node-http-proxy, Node.js's: the `http-proxy`
    /// module itself comes from npm; for mitmproxy, Python's `venv`: mitmproxy itself comes
    /// from PyPI).
    pub fn package(self) -> &'static str {
        match info(self).source {
            Source::Debian(package) => package,
            Source::Npm(_) => "nodejs",
            Source::Pip(_) => "python3-venv",
        }
    }

    /// What to run to install it.
    pub fn install_hint(self) -> String {
        match info(self).source {
            Source::Debian(package) => format!("apt-get install -y {package}"),
            Source::Npm(module) => format!(
                "cargo xtask test (it installs `{module}` into {} with npm ci, from {}; \
                 Node.js is apt-get install -y nodejs npm)",
                locate::NODE_DIR,
                locate::NODE_LOCK
            ),
            Source::Pip(package) => format!(
                "cargo xtask test (it makes the virtualenv {} with `{package}` from {})",
                locate::MITMPROXY_VENV,
                locate::MITMPROXY_REQUIREMENTS
            ),
        }
    }

    /// The file name of its binary.
    pub fn binary_name(self) -> &'static str {
        info(self).binary
    }

    /// The environment variable that, when set, names its binary instead of the search:
    /// `GAUNTLET_` and the name in capitals (`GAUNTLET_NGINX`, `GAUNTLET_TRAFFICSERVER`),
    /// `GAUNTLET_NODE` for node-http-proxy's `node`.
    pub fn override_var(self) -> &'static str {
        info(self).var
    }

    /// Its binary: the file [`Product::override_var`] names if that is set, else the first
    /// executable [`Product::binary_name`] on `PATH`, then in `/usr/sbin` and `/usr/bin`
    /// (Debian puts daemons in `/usr/sbin`, often not on a user's `PATH`), then, for
    /// mitmproxy, in its virtualenv under `target/gauntlet`.
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
        let extra = match info(self).source {
            Source::Pip(_) => locate::workspace_dirs(locate::MITMPROXY_BIN),
            _ => Vec::new(),
        };
        std::env::split_paths(path.unwrap_or_default())
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
            .chain(extra)
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
            install: self.install_hint(),
            detail,
        }
    }

    /// The file name its rendered configuration gets in the working directory.
    pub fn config_file_name(self) -> &'static str {
        info(self).config
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
        if let Source::Npm(module) = info(self).source {
            if locate::node_modules().is_none() {
                return Err(self.not_installed(format!(
                    "no `{module}` in {}/node_modules here or above, nor in $GAUNTLET_NODE_MODULES",
                    locate::NODE_DIR
                )));
            }
        }
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
        if self == Product::Trafficserver {
            bundle::write(&rendered, template, dir)?;
        }
        std::fs::write(&config, rendered)
            .map_err(|e| io_error(format!("cannot write {}", config.display()), e))?;
        self.prepare_dir(dir)?;
        let tls = template::placeholders(&text).contains("tls_listen");
        Ok((self.command(&binary, &config, dir, port), tls))
    }

    /// Makes `dir` usable by the product. Squid started as root switches to `proxy`, and H2O
    /// to `nobody`, which must be able to write their logs and pid file there, so the
    /// directory is given to that user.
    fn prepare_dir(self, dir: &Path) -> Result<(), ProductError> {
        let user = match self {
            Product::Squid => SQUID_USER,
            Product::H2o => H2O_USER,
            _ => return Ok(()),
        };
        if !rustix::process::geteuid().is_root() {
            return Ok(());
        }
        let (uid, gid) = passwd_ids(user)?;
        std::os::unix::fs::chown(dir, Some(uid), Some(gid))
            .map_err(|e| io_error(format!("cannot give {} to {user}", dir.display()), e))
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Product {
    type Err = ProductError;

    /// A product's [`Product::name`], or another spelling of it: `httpd` and `apache2` for
    /// Apache, `ats` and `traffic_server` for Traffic Server, `http-proxy` for
    /// node-http-proxy, `mitmdump` for mitmproxy.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let alias = match name {
            "httpd" | "apache2" => Some(Product::Apache),
            "ats" | "traffic_server" | "traffic-server" => Some(Product::Trafficserver),
            "http-proxy" => Some(Product::NodeHttpProxy),
            "mitmdump" => Some(Product::Mitmproxy),
            _ => None,
        };
        alias
            .or_else(|| Product::ALL.into_iter().find(|p| p.name() == name))
            .ok_or_else(|| ProductError::Unknown(name.to_string()))
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
                format!("started as root, the product runs as `{user}`, which /etc/passwd lacks"),
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
        assert_eq!("ats".parse::<Product>().unwrap(), Product::Trafficserver);
        let err = "pound".parse::<Product>().unwrap_err().to_string();
        assert!(err.starts_with("unknown product `pound`"), "{err}");
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
