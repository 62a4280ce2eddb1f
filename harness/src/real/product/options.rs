//! [`StartOptions`]: what a start needs besides the template (the port, the upstreams, the
//! template's own values and files, the timeouts), every placeholder's value, and the free
//! port a program is told before it binds it.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::ProductError;
use super::error::io_error;

/// What [`Product::start`](super::Product::start) needs besides the template.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// The port for `{{listen}}` on 127.0.0.1; `None` picks a free ephemeral port.
    pub listen: Option<u16>,
    /// The upstreams, as `{{upstream0}}`, `{{upstream1}}`, …; the first is also
    /// `{{upstream}}`, and its port alone `{{upstream_port}}`.
    pub upstreams: Vec<SocketAddr>,
    /// Further placeholders, such as `read_timeout`. The harness's own names (`listen`, `dir`,
    /// `upstream`, `upstream_port`, `upstreamN`) cannot be given here.
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
    /// Whether [`StartOptions::tls`] chose `tls_listen`, so a start may choose it again.
    tls_chosen: bool,
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
            tls_chosen: false,
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
    ///
    /// A start that finds a chosen port taken by another process by the time the program
    /// binds it chooses again ([`Program::start`](super::Program::start)): the port the
    /// program listens on for TLS is [`Running::tls_addr`](super::Running::tls_addr)'s.
    pub fn tls(mut self, cert_pem: &str, key_pem: &str) -> Result<Self, ProductError> {
        let port = free_port()?;
        self.tls_chosen = true;
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

    /// The port `tls` chose, if it was called (a start may have had to choose another:
    /// [`Running::tls_addr`](super::Running::tls_addr) is where the program listens).
    pub fn tls_port(&self) -> Option<u16> {
        self.values.get("tls_listen").and_then(|p| p.parse().ok())
    }

    /// Chooses the ports the start chose again (`{{listen}}` unless given, `tls_listen` if
    /// [`StartOptions::tls`] chose it), after one of them was taken.
    pub(super) fn choose_ports_again(&mut self) -> Result<(), ProductError> {
        if self.tls_chosen {
            self.values
                .insert("tls_listen".into(), free_port()?.to_string());
        }
        Ok(())
    }

    /// Listens on this port instead of a free one.
    pub fn listen(mut self, port: u16) -> Self {
        self.listen = Some(port);
        self
    }

    /// Every placeholder's value for a product on `port` working in `dir`.
    pub(super) fn values_for(
        &self,
        port: u16,
        dir: &Path,
    ) -> Result<BTreeMap<String, String>, ProductError> {
        let mut values = BTreeMap::new();
        values.insert("listen".to_string(), port.to_string());
        values.insert("dir".to_string(), dir.display().to_string());
        for (i, upstream) in self.upstreams.iter().enumerate() {
            if i == 0 {
                values.insert("upstream".to_string(), upstream.to_string());
                values.insert("upstream_port".to_string(), upstream.port().to_string());
            }
            values.insert(format!("upstream{i}"), upstream.to_string());
        }
        let files = self
            .files
            .iter()
            .map(|(name, (file, _))| (name, dir.join(file).display().to_string()));
        let given = self.values.iter().map(|(n, v)| (n, v.clone()));
        for (name, value) in given.chain(files) {
            let reserved = ["listen", "dir", "upstream", "upstream_port"].contains(&name.as_str())
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
pub(super) fn free_port() -> Result<u16, ProductError> {
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
    fn harness_values_cannot_be_overridden() {
        for name in ["listen", "dir", "upstream", "upstream3", "upstream_port"] {
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
                "upstream_port",
                "upstreams_note"
            ]
        );
        assert_eq!(values["upstream"], "127.0.0.1:1");
        assert_eq!(values["upstream_port"], "1");
    }
}
