//! The request heads `[client] browser = "chromium"` writes are the ones Chromium writes: real
//! headless Chromium loads a page from a logging server on 127.0.0.1 that makes a same-origin
//! `XMLHttpRequest` GET and POST (as Engine.IO's polling does) and opens a WebSocket, and each
//! head it sent is compared, field by field and in order, with the client's. Values that
//! name the version, the port or a random key are compared by name only.
//!
//! Chromium runs headless with background networking, sync and component updates off, its
//! host resolver pinned to loopback, a fresh profile, and `--lang=en-US`; it ends by itself
//! (`--dump-dom` after `--virtual-time-budget`), and is killed by its PID if it has not
//! within the safety net.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gauntlet::endpoints::browser::Browser;
use gauntlet_proxies::http::{Parsed, parse_request};

/// What the page does: the two requests of a polling exchange, then a WebSocket.
const PAGE: &str = "<!doctype html><title>heads</title><script>
var get = new XMLHttpRequest();
get.open('GET', '/engine.io/?EIO=4&transport=polling&t=abcdefgh');
get.onload = function () {
  var post = new XMLHttpRequest();
  post.open('POST', '/engine.io/?EIO=4&transport=polling&t=abcdefgi&sid=s1');
  post.setRequestHeader('Content-Type', 'text/plain;charset=UTF-8');
  post.onload = function () {
    var ws = new WebSocket('ws://' + location.host + '/engine.io/?EIO=4&transport=websocket&sid=s1');
    ws.onerror = function () { document.title = 'done'; };
  };
  post.send('4hello');
};
get.send();
</script>";

/// Fields whose values say the browser's version, the server's port or a fresh key.
const BY_NAME_ONLY: [&str; 6] = [
    "user-agent",
    "sec-ch-ua",
    "host",
    "origin",
    "referer",
    "sec-websocket-key",
];

/// The safety net on the browser's run.
const LIMIT: Duration = Duration::from_secs(60);

const CANDIDATES: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

#[test]
fn chromium_heads_are_the_ones_chromium_sends() {
    let heads = capture();
    let find = |start: &str| {
        heads
            .iter()
            .find(|h| h.starts_with(start))
            .unwrap_or_else(|| panic!("Chromium sent no `{start}…`; it sent:\n{heads:#?}"))
            .clone()
    };
    let get = find("GET /engine.io/?EIO=4&transport=polling");
    let post = find("POST /engine.io/");
    let ws = find("GET /engine.io/?EIO=4&transport=websocket");
    let (host, origin) = ("127.0.0.1:1", "http://127.0.0.1:1");
    let ours = Browser::Chromium;
    compare("XHR GET", &get, &ours.xhr("GET", "/t", host, origin, None));
    compare(
        "XHR POST",
        &post,
        &ours.xhr(
            "POST",
            "/t",
            host,
            origin,
            Some((6, "text/plain;charset=UTF-8")),
        ),
    );
    compare(
        "WebSocket handshake",
        &ws,
        &ours.websocket("/t", host, origin, "k", ""),
    );
}

/// Fails unless `ours` has `theirs`' fields in its order, with its values but for
/// [`BY_NAME_ONLY`].
fn compare(what: &str, theirs: &str, ours: &str) {
    let (a, b) = (fields(theirs), fields(ours));
    let names = |f: &[(String, String)]| f.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&b),
        names(&a),
        "{what}: the fields differ from Chromium's, in order\nChromium:\n{theirs}\nours:\n{ours}"
    );
    for ((name, theirs_value), (_, ours_value)) in a.iter().zip(&b) {
        if !BY_NAME_ONLY.contains(&name.as_str()) {
            assert_eq!(ours_value, theirs_value, "{what}: `{name}`");
        }
    }
}

/// A head's fields, names lowercased.
fn fields(head: &str) -> Vec<(String, String)> {
    match parse_request(head.as_bytes(), 65536) {
        Parsed::Complete(h, _) => h
            .fields
            .iter()
            .map(|(n, v)| {
                (
                    n.to_ascii_lowercase(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect(),
        other => panic!("not a request head ({other:?}):\n{head}"),
    }
}

/// Every request head Chromium sent while loading [`PAGE`].
fn capture() -> Vec<String> {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().unwrap().port();
    let heads: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = heads.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let seen = seen.clone();
            std::thread::spawn(move || serve(stream, &seen));
        }
    });
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-heads");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut command = Command::new(find_browser());
    command
        .args([
            "--headless",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-sync",
            "--disable-component-update",
            "--disable-default-apps",
            "--disable-domain-reliability",
            "--no-pings",
            "--lang=en-US",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("http://127.0.0.1:{port}/"))
        .env("LANGUAGE", "en_US")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        // Chromium refuses to run its sandbox as root.
        command.arg("--no-sandbox");
    }
    let mut child = command.spawn().expect("Chromium starts");
    #[allow(
        clippy::disallowed_methods,
        reason = "Chromium is a real process: its safety net is wall time"
    )]
    let started = Instant::now();
    loop {
        if child.try_wait().expect("Chromium's status").is_some() {
            break;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("Chromium did not end within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    heads.lock().unwrap().clone()
}

/// Answers one connection's requests: the page, `ok` to the XHRs, 400 to the WebSocket
/// handshake; records each head.
fn serve(mut stream: TcpStream, seen: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
        let mut rest = buf.split_off(end + 4);
        let length = fields(&head)
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        while rest.len() < length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => rest.extend_from_slice(&chunk[..n]),
            }
        }
        buf = rest.split_off(length);
        seen.lock().unwrap().push(head.clone());
        let answer = if head.to_ascii_lowercase().contains("upgrade: websocket") {
            let _ = stream.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            return;
        } else if head.starts_with("GET / ") {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{PAGE}",
                PAGE.len()
            )
        } else {
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok".to_string()
        };
        if stream.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// `GAUNTLET_CHROMIUM`, or the first of [`CANDIDATES`] on `PATH`; panics saying what to
/// install when there is none.
fn find_browser() -> PathBuf {
    if let Some(name) = std::env::var_os("GAUNTLET_CHROMIUM") {
        return PathBuf::from(name);
    }
    let runnable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let path = std::env::var_os("PATH").unwrap_or_default();
    CANDIDATES
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| runnable(p))
        .unwrap_or_else(|| {
            panic!(
                "no Chromium for the browser heads test: none of {} is on PATH. Install it: \
                 apt-get install -y chromium (or set GAUNTLET_CHROMIUM to a Chromium binary)",
                CANDIDATES.join(", ")
            )
        })
}
