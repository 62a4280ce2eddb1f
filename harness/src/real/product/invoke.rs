//! How each [`Product`] is run: its foreground command line ([`Product::command`]) and the
//! command that prints its version ([`Product::version`]).

use std::io;
use std::path::Path;
use std::process::{Command, Stdio};

use super::error::io_error;
use super::{Product, ProductError, locate};

impl Product {
    /// The command that runs it in the foreground with `config`, in `dir`, on `port`:
    ///
    /// - nginx: `nginx -p DIR -c CONFIG -e DIR/error.log -g 'daemon off;'` (so templates
    ///   must not say `daemon`; `-e` keeps nginx from opening its packaged error log first);
    /// - HAProxy: `haproxy -db -f CONFIG`;
    /// - Apache: `apache2 -DFOREGROUND -f CONFIG` (the template is self-contained: no
    ///   `APACHE_*` variables, explicit `LoadModule` lines);
    /// - Squid: `squid -N -n gauntletPORT -f CONFIG` (a service name of its own, which names
    ///   its shared memory segments);
    /// - tinyproxy: `tinyproxy -d -c CONFIG`;
    /// - Caddy: `caddy run --config CONFIG --adapter caddyfile`, with `HOME` and the XDG
    ///   folders in DIR (Caddy keeps its data there);
    /// - lighttpd: `lighttpd -D -f CONFIG`;
    /// - H2O: `h2o -c CONFIG`;
    /// - Varnish: `varnishd -F -n DIR -a 127.0.0.1:PORT -f CONFIG -s malloc,64m` (the VCL
    ///   cannot say where to listen), with `-j none` when started as root (no jail: the
    ///   worker runs as root and can use DIR);
    /// - Traffic Server: `traffic_server` with `TS_RUNROOT` the `runroot.yaml` that
    ///   `bundle.rs` writes from the template (its configuration files under DIR);
    /// - node-http-proxy: `node CONFIG`, with `NODE_PATH` the `node_modules` under
    ///   `target/gauntlet/node` that holds `http-proxy`;
    /// - mitmproxy: `mitmdump --set confdir=DIR` (it reads CONFIG, `config.yaml`, there).
    pub fn command(self, binary: &Path, config: &Path, dir: &Path, port: u16) -> Command {
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
            // Squid names its shared memory segments after its service name (`squid` by
            // default, `/dev/shm/squid-cf__metadata.shm`): two instances at once under one
            // name collide, the second failing with `shm_open … File exists`.
            Product::Squid => command
                .arg("-N")
                .arg("-n")
                .arg(format!("gauntlet{port}"))
                .arg("-f")
                .arg(config),
            Product::Tinyproxy => command.arg("-d").arg("-c").arg(config),
            Product::Caddy => command
                .args(["run", "--config"])
                .arg(config)
                .args(["--adapter", "caddyfile"])
                .env("HOME", dir)
                .env("XDG_DATA_HOME", dir.join("data"))
                .env("XDG_CONFIG_HOME", dir.join("config")),
            Product::Lighttpd => command.arg("-D").arg("-f").arg(config),
            Product::H2o => command.arg("-c").arg(config),
            Product::Varnish => {
                command
                    .arg("-F")
                    .arg("-n")
                    .arg(dir)
                    .arg("-a")
                    .arg(format!("127.0.0.1:{port}"))
                    .arg("-f")
                    .arg(config)
                    .args(["-s", "malloc,64m"]);
                if rustix::process::geteuid().is_root() {
                    command.args(["-j", "none"]);
                }
                &mut command
            }
            Product::Trafficserver => command.env("TS_RUNROOT", dir.join("runroot.yaml")),
            Product::NodeHttpProxy => {
                command.arg(config);
                if let Some(modules) = locate::node_modules() {
                    command.env("NODE_PATH", modules);
                }
                &mut command
            }
            Product::Mitmproxy => command
                .arg("--set")
                .arg(format!("confdir={}", dir.display())),
        };
        command.current_dir(dir).stdin(Stdio::null());
        command
    }

    /// The command that prints its version ([`Product::version`]).
    fn version_command(self) -> Result<Command, ProductError> {
        let binary = self.binary()?;
        let mut command = Command::new(&binary);
        match self {
            Product::Caddy => command.arg("version"),
            Product::H2o | Product::Mitmproxy => command.arg("--version"),
            Product::Varnish | Product::Trafficserver => command.arg("-V"),
            Product::NodeHttpProxy => {
                if let Some(modules) = locate::node_modules() {
                    command.env("NODE_PATH", modules);
                }
                command.args([
                    "-e",
                    "console.log(`http-proxy ${require('http-proxy/package.json').version} on Node.js ${process.version}`)",
                ])
            }
            _ => command.arg("-v"),
        };
        command.stdin(Stdio::null());
        Ok(command)
    }

    /// Its version as it reports it (`nginx -v`, `caddy version`, `varnishd -V`, …): the
    /// first line it prints that names a version.
    pub fn version(self) -> Result<String, ProductError> {
        let mut command = self.version_command()?;
        let out = command
            .output()
            .map_err(|e| io_error(format!("cannot run {command:?}"), e))?;
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| {
                l.chars().any(|c| c.is_ascii_digit()) && !l.starts_with("traffic_server: using")
            })
            .unwrap_or("");
        if out.status.success() && !line.is_empty() {
            Ok(line.to_string())
        } else {
            Err(io_error(
                format!(
                    "{command:?} printed no version ({}): {}",
                    out.status,
                    text.trim()
                ),
                io::Error::other("no version"),
            ))
        }
    }

    /// The least time it is given to accept connections, whatever
    /// [`StartOptions::ready_timeout`](super::StartOptions::ready_timeout) says: Traffic
    /// Server, which loads its plugins and configuration before it listens, and mitmproxy,
    /// a Python program, were each seen taking more than 10 s with eight instances starting at
    /// once on two cores; 30 s for them.
    pub fn least_ready_timeout(self) -> std::time::Duration {
        match self {
            Product::Trafficserver | Product::Mitmproxy => std::time::Duration::from_secs(30),
            _ => std::time::Duration::ZERO,
        }
    }
}
