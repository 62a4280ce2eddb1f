//! Real programs as hops, on the live engine: a product (nginx, HAProxy, Apache httpd, Squid,
//! tinyproxy) started from its configuration template, or any proxy program started from a
//! command line, with the run's real addresses, its ports published under the hop's name, so
//! the client and the hops before it reach it as they would a model.
//!
//! A command (`command = "my-proxy --listen {listen} --upstream {upstream}"`) is a reverse
//! proxy: published on port 80, its upstream the next host's port 80 (`{upstream_tls}`: its
//! port 443, with the run's CA as `{ca}`). A command with a TLS listener (`{tls_listen}`,
//! with `{cert}` and `{key}` or `{cert_and_key}`, issued by the run's CA for the names the
//! client may dial) is published on port 443 as well, as a product's is, and carries wss;
//! one without carries ws only. A forward proxy's command
//! ([`Role::Forward`], `gauntlet gate --forward`) has no upstream: it is published on the
//! explicit-proxy port, like Squid, and carries ws and wss alike, since each client's CONNECT
//! names the server's real ws or wss address and TLS runs end to end through the tunnel.
//!
//! Reverse proxies (nginx, HAProxy, Apache) are published on port 80, and on port 443 with a
//! TLS listener whose certificate the run's CA signed, as an `l7-balancer` model terminates
//! wss; their upstream is the next host's port 80. Forward proxies (Squid, tinyproxy) are
//! published on the explicit-proxy port, and reach the server by the real address the client
//! names in its CONNECT.
//!
//! Every product gets these placeholders besides `listen`, `upstream…` and `dir`:
//! `server_ws_port` and `server_wss_port` (the real ports of the first upstream's 80 and 443),
//! and, for reverse proxies, `tls_listen`, `cert`, `key` and `cert_and_key`.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::Notify;

use crate::endpoints::client::PROXY_PORT;
use crate::engine::{NetRef, Software};
use crate::real::product::command::{CommandError, CommandLine, Role};
use crate::real::product::{ProductError, Program, Running, StartOptions};
use crate::scenario::{CommandHop, ProductHop};
use crate::verdict::transcript::Transcript;

/// How long a product waits for its upstreams to listen.
const UPSTREAM_WAIT: Duration = Duration::from_secs(5);

/// Why a hop's real program did not start: the failure of the hop's software, which ends the
/// run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HopStartError {
    /// An upstream of the hop did not listen within 5 s.
    #[error("{host}:{port} was not listening after {UPSTREAM_WAIT:?}")]
    NotListening {
        /// The upstream host.
        host: String,
        /// Its port.
        port: u16,
    },
    /// A reverse proxy's command with no host after it.
    #[error("`{command}` needs an upstream host")]
    NoUpstream {
        /// The command line.
        command: String,
    },
    /// The program could not be found, configured or started.
    #[error(transparent)]
    Product(#[from] ProductError),
    /// The command line's placeholders could not be filled.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The program's address could not be published under the hop's name.
    #[error(transparent)]
    Publish(#[from] std::io::Error),
    /// The task that starts the program did not finish.
    #[error("starting {name}: {cause}")]
    Task {
        /// The program's name.
        name: String,
        /// Why the task did not finish.
        cause: tokio::task::JoinError,
    },
}

/// The programs a run started, by host, kept so that their logs join the transcript when the
/// run ends ([`Started::stop_all`]).
#[derive(Debug, Default, Clone)]
pub struct Started(Rc<RefCell<Vec<(String, Running)>>>);

impl Started {
    /// Stops every program, in the order they started, and logs what each wrote to its own
    /// logs (a command: its stdout and stderr) under its host's name at `at`. Returns the
    /// programs that no longer listened where they had (they exited, or closed a listener),
    /// each with its exit status and logs: nothing in a run stops a real program but this
    /// stop and the SIGTERM a scenario asks for (`stop-proxy-after`, [`stopped_by`]), so a
    /// program gone before it, unless so told, is a fault of the run, whatever the client saw.
    pub fn stop_all(&self, t: &Transcript, at: Duration) -> Vec<String> {
        let started = std::mem::take(&mut *self.0.borrow_mut());
        let mut gone = Vec::new();
        for (host, running) in started {
            let name = running.name().to_string();
            let pid = running.pid();
            // A program the run stopped itself is expected to stop listening.
            let listening = running.terminated() || running.still_listening();
            match running.stop() {
                Ok(stopped) => {
                    for line in stopped.logs.lines().filter(|l| !l.trim().is_empty()) {
                        t.log(at, &host, format!("{name} log: {line}"));
                    }
                    if !listening {
                        let what = format!("{name} (pid {pid}) on {host} stopped listening");
                        t.log(at, &host, format!("{what} during the run"));
                        gone.push(format!(
                            "{what} during the run (its exit status, after the harness's \
                             stop: {}); its logs:\n{}",
                            stopped.status, stopped.logs
                        ));
                    }
                }
                Err(e) => t.log(at, &host, format!("{name} did not stop cleanly: {e}")),
            }
        }
        gone
    }
}

/// `software`, a real program's host, whose program is sent SIGTERM once `stop` is notified
/// (`stop-proxy-after`); the program then stops its own way while the run goes on.
pub fn stopped_by(
    software: Software,
    stop: Arc<Notify>,
    started: Started,
    t: Transcript,
) -> Software {
    Rc::new(move |net: NetRef| {
        let (stop, started, t) = (stop.clone(), started.clone(), t.clone());
        let host = net.host().to_string();
        let n = net.clone();
        net.spawn(
            async move {
                stop.notified().await;
                let mut list = started.0.borrow_mut();
                let what = match list.iter_mut().find(|(h, _)| *h == host) {
                    Some((_, running)) => match running.terminate() {
                        Ok(()) => {
                            format!("{} (pid {}) sent SIGTERM", running.name(), running.pid())
                        }
                        Err(e) => format!("{e}"),
                    },
                    None => "nothing started here to send SIGTERM to".to_string(),
                };
                t.log(n.now(), &host, what);
            }
            .boxed_local(),
        );
        software(net)
    })
}

/// The software of a hop that is a real product: starts it once its upstreams listen,
/// publishes its ports, and keeps it in `started` until the run ends. `tls` is a certificate
/// and key (PEM) for the names the client may dial.
pub fn product_software(
    hop: ProductHop,
    upstreams: Vec<String>,
    tls: (String, String),
    started: Started,
    t: Transcript,
) -> Software {
    hosting(started, move |net| {
        let (hop, upstreams, tls, t) = (hop.clone(), upstreams.clone(), tls.clone(), t.clone());
        async move { start(&net, &hop, &upstreams, &tls, &t).await }
    })
}

/// What a command hop may be given of TLS (PEM): a certificate and key for the names the
/// client may dial, and the run's CA, which signed them and the server's certificate.
#[derive(Debug, Clone)]
pub struct CommandTls {
    /// The certificate for its TLS listener.
    pub cert: String,
    /// Its key.
    pub key: String,
    /// The CA.
    pub ca: String,
}

/// The software of a hop that is a proxy program started from a command line, kept in
/// `started` until the run ends. A reverse proxy's starts once `upstream` (`Some`) listens on
/// port 80, with that address as its `{upstream}` (and the upstream's port 443 as its
/// `{upstream_tls}`), and its `{listen}` address is published as the hop's port 80, its
/// `{tls_listen}`, if it has one, as port 443; a forward proxy's starts at once and is
/// published on the explicit-proxy port ([`PROXY_PORT`]).
pub fn command_software(
    hop: CommandHop,
    upstream: Option<String>,
    tls: CommandTls,
    started: Started,
    t: Transcript,
) -> Software {
    hosting(started, move |net| {
        let (hop, upstream, tls, t) = (hop.clone(), upstream.clone(), tls.clone(), t.clone());
        async move { start_command(&net, &hop, upstream.as_deref(), &tls, &t).await }
    })
}

/// A host that starts one real program with `start`, telling the engine it is starting (the
/// client waits), keeps it in `started`, and then has nothing more to do.
fn hosting<F, Fut>(started: Started, start: F) -> Software
where
    F: Fn(NetRef) -> Fut + 'static,
    Fut: Future<Output = Result<Running, HopStartError>> + 'static,
{
    let start = Rc::new(start);
    Rc::new(move |net: NetRef| {
        let (start, started) = (start.clone(), started.clone());
        async move {
            net.starting();
            let result = start(net.clone()).await;
            net.started();
            let running = result?;
            started
                .0
                .borrow_mut()
                .push((net.host().to_string(), running));
            std::future::pending::<()>().await;
            Ok(())
        }
        .boxed_local()
    })
}

/// The software of a server host that is a real server program (`[server] command`): started
/// at once with `{listen}` only, published as the host's port 80, kept in `started` until
/// the run ends.
pub fn server_software(command: CommandLine, started: Started, t: Transcript) -> Software {
    hosting(started, move |net| {
        let (command, t) = (command.clone(), t.clone());
        async move {
            let running = spawn(Program::Command(command.clone()), StartOptions::new()).await?;
            let addr = running.addr();
            net.publish(80, addr)?;
            let words = command.render(addr.port(), None)?;
            t.log(
                net.now(),
                net.host(),
                format!(
                    "{} up (pid {}) on {addr} as the server: {}",
                    running.name(),
                    running.pid(),
                    words.join(" ")
                ),
            );
            Ok(running)
        }
    })
}

/// Starts `program` off the engine's thread (it waits for the program's port).
async fn spawn(program: Program, options: StartOptions) -> Result<Running, HopStartError> {
    let name = program.name().to_string();
    Ok(tokio::task::spawn_blocking(move || program.start(&options))
        .await
        .map_err(|cause| HopStartError::Task { name, cause })??)
}

async fn start_command(
    net: &NetRef,
    hop: &CommandHop,
    upstream: Option<&str>,
    tls: &CommandTls,
    t: &Transcript,
) -> Result<Running, HopStartError> {
    let command = &hop.command;
    let (mut options, towards) = match (command.role(), upstream) {
        (Role::Forward, _) => (StartOptions::new(), "a forward proxy".to_string()),
        (Role::Reverse, Some(host)) => {
            let addr = wait_for(net, host, 80).await?;
            let mut towards = format!("upstream {host} ({addr}");
            let mut options = StartOptions::new().upstream(addr);
            if command.names("upstream_tls") {
                let tls_addr = wait_for(net, host, 443).await?;
                towards.push_str(&format!(", TLS {tls_addr}"));
                options = options.value("upstream_tls", tls_addr.to_string());
            }
            towards.push(')');
            (options, towards)
        }
        (Role::Reverse, None) => {
            return Err(HopStartError::NoUpstream {
                command: command.to_string(),
            });
        }
    };
    if command.tls_listener() {
        options = options.tls(&tls.cert, &tls.key)?;
    }
    if command.names("ca") {
        options = options.file("ca", "tls-ca.pem", tls.ca.clone());
    }
    let running = spawn(Program::Command(command.clone()), options.clone()).await?;
    let addr = running.addr();
    let port = match command.role() {
        Role::Forward => PROXY_PORT,
        Role::Reverse => 80,
    };
    net.publish(port, addr)?;
    let tls_port = running.tls_addr().map(|a| a.port());
    if let Some(tls_addr) = running.tls_addr() {
        net.publish(443, tls_addr)?;
    }
    let filled = Program::filled(command, addr.port(), tls_port, running.dir(), &options);
    let words = command.render_with(&filled)?;
    t.log(
        net.now(),
        net.host(),
        format!(
            "{} up (pid {}) on {addr}{}, {towards}: {}",
            running.name(),
            running.pid(),
            tls_port.map_or(String::new(), |p| format!(" and TLS on {p}")),
            words.join(" ")
        ),
    );
    Ok(running)
}

async fn start(
    net: &NetRef,
    hop: &ProductHop,
    upstreams: &[String],
    tls: &(String, String),
    t: &Transcript,
) -> Result<Running, HopStartError> {
    let product = hop.product;
    let mut options = StartOptions::new();
    for host in upstreams {
        options = options.upstream(wait_for(net, host, 80).await?);
    }
    if let Some(first) = upstreams.first() {
        for (name, port) in [("server_ws_port", 80), ("server_wss_port", 443)] {
            if let Some(addr) = net.real_addr(first, port) {
                options = options.value(name, addr.port().to_string());
            }
        }
    }
    for (name, value) in &hop.values {
        options = options.value(name.as_str(), value.as_str());
    }
    let reverse = product.is_reverse();
    if reverse {
        options = options.tls(&tls.0, &tls.1)?;
    }
    let program = Program::Product {
        product,
        template: hop.template.clone(),
    };
    let running = spawn(program, options).await?;
    let addr = running.addr();
    if reverse {
        net.publish(80, addr)?;
        if let Some(tls) = running.tls_addr() {
            net.publish(443, tls)?;
        }
    } else {
        net.publish(PROXY_PORT, addr)?;
    }
    t.log(
        net.now(),
        net.host(),
        format!(
            "{product} up (pid {}) on {addr}{} from {}, upstream {}",
            running.pid(),
            running
                .tls_addr()
                .map_or(String::new(), |a| format!(" and TLS on {}", a.port())),
            hop.template.display(),
            upstreams.join(", ")
        ),
    );
    Ok(running)
}

/// The real address of `host:port`, once it listens.
async fn wait_for(net: &NetRef, host: &str, port: u16) -> Result<SocketAddr, HopStartError> {
    let give_up = net.now() + UPSTREAM_WAIT;
    loop {
        if let Some(addr) = net.real_addr(host, port) {
            return Ok(addr);
        }
        if net.now() >= give_up {
            return Err(HopStartError::NotListening {
                host: host.to_string(),
                port,
            });
        }
        net.sleep_until(net.now() + Duration::from_millis(5)).await;
    }
}
