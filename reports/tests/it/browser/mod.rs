//! The HTML report in a real browser: headless Chromium loads the fixture's report from
//! `target/gauntlet/browser/report.html` and the test requires that it logs no error, that its
//! four charts are laid out with a non-zero size, that every label of every chart is whole
//! (inside its chart's viewport and clear of the others: `labels.rs`), and that it
//! screenshots to `target/gauntlet/browser/report.png`. With `GAUNTLET_REPORT_HTML=PATH` (relative to the
//! workspace root) it loads that report instead: CI points it at the catalogue's
//! `target/gauntlet/report.html` from `cargo xtask report`. In the same session it loads the
//! populations' report (the fixture's, or `GAUNTLET_POPULATIONS_HTML`: CI's is the committed
//! `reports/populations.html`) and holds it to the same: no error, its charts laid out, every
//! label whole.
//!
//! # How
//!
//! The test starts Chromium itself (`--headless --remote-debugging-port=0`, a fresh profile in
//! `target/gauntlet/browser/profile`), waits for the `DevToolsActivePort` file Chromium writes
//! in that profile once its DevTools server listens (polling, no fixed sleep), and drives it
//! over the DevTools protocol on 127.0.0.1 with a blocking WebSocket client: open a page,
//! enable the `Runtime`, `Log` and `Page` domains, navigate to the report's `file://` URL and
//! wait for that navigation's own `load` lifecycle event, then evaluate expressions that
//! read each `<svg>`'s bounding box and each `<text>`'s against it and the others, and capture
//! the whole page as PNG. Nothing is added to the report: it stays one script-free file, and
//! the measuring expressions run from outside. `chromium.rs` holds the process and the
//! protocol connection.
//!
//! Console errors are what the protocol reports while the page is open, not what Chromium
//! prints on stderr (that is full of unrelated noise, D-Bus for one, and its format is not a
//! contract): `Runtime.consoleAPICalled` of type `error` or `assert`,
//! `Runtime.exceptionThrown`, and `Log.entryAdded` at level `error` (failed loads, blocked
//! requests, security errors). So that an empty list means something, the test
//! first loads a probe page with one of each in the same browser and requires all three
//! caught; the probe page also holds a chart with a label cut off at its edge and two labels
//! on top of each other, and the label check must find both.
//!
//! # Bounds
//!
//! Everything, from launch to exit, has [`TIME_LIMIT`]: every wait is a read with a timeout or
//! a poll that checks it. The browser process is the test's child (Debian's `/usr/bin/chromium`
//! is a shell wrapper that `exec`s the browser, so the PID is the browser's); [`Browser`]
//! closes it over the protocol and, if it has not exited (or on any panic, through `Drop`),
//! kills it by that PID and reaps it. Chromium's helper processes exit with it. Its
//! network is held to loopback (`--host-resolver-rules`), with background networking, sync,
//! component updates and extensions off.
//!
//! # The browser
//!
//! `chromium` (Debian's package), else `chromium-browser`, else `google-chrome`, looked up
//! on `PATH`; `GAUNTLET_CHROMIUM` names another binary instead (a path, or a name looked up
//! on `PATH`). Without one the test fails, saying what to install (`apt-get install -y
//! chromium`); `.ci/run` installs it, and with `CI=true` a missing browser is a failure all
//! the same, never a skip.

mod chromium;
mod labels;

use std::env;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gauntlet_reports::html;
use gauntlet_reports::population::population_html;

use crate::fixture;
use chromium::{Browser, Deadline};

/// The browsers tried, in order, when `GAUNTLET_CHROMIUM` is not set.
const CANDIDATES: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// The one line that installs the browser on Debian, as `.ci/run` does.
const INSTALL: &str = "apt-get install -y chromium";

/// The whole browser session, launch to exit.
const TIME_LIMIT: Duration = Duration::from_secs(30);

/// The window the page is laid out in.
const WINDOW: (u32, u32) = (1280, 2000);

/// The page's title, its address and the rendered size of each `<svg>`, in CSS pixels.
const MEASURE: &str = "({
    title: document.title,
    url: location.href,
    width: window.innerWidth,
    svgs: [...document.querySelectorAll('svg')].map(s => {
        const r = s.getBoundingClientRect();
        return [r.width, r.height];
    }),
})";

/// A page with one error of each kind the test watches for: a failed load, a
/// `console.error` and an uncaught exception; and a chart with a label cut off and two
/// labels on top of each other (`labels::PROBE`).
const PROBE: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"/><title>probe</title></head><body>
<img src="gauntlet-probe-missing.png" alt=""/>
PROBE_CHART
<script>
console.error("gauntlet probe: console.error");
throw new Error("gauntlet probe: uncaught");
</script>
</body></html>
"#;

#[test]
fn the_report_renders_in_headless_chromium_without_errors() {
    let dir = target_dir().join("gauntlet").join("browser");
    fs::create_dir_all(&dir).expect("create target/gauntlet/browser");
    let report = dir.join("report.html");
    match env::var_os("GAUNTLET_REPORT_HTML") {
        // A report rendered elsewhere (CI loads the catalogue's, from `cargo xtask report`).
        Some(given) => {
            let given = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(given);
            fs::copy(&given, &report)
                .unwrap_or_else(|e| panic!("copy {} to the test's folder: {e}", given.display()));
        }
        None => fs::write(&report, html(&fixture::results())).expect("write the report"),
    }
    let probe = dir.join("probe.html");
    fs::write(&probe, PROBE.replace("PROBE_CHART", labels::PROBE)).expect("write the probe page");
    let screenshot = dir.join("report.png");
    let _ = fs::remove_file(&screenshot);

    let binary = find_browser();
    let deadline = Deadline::start(TIME_LIMIT);
    let mut browser = Browser::launch(&binary, &dir, deadline);
    let mut devtools = browser.connect();
    let page = devtools.open_page();

    // The detector first: the probe's three errors must all be seen.
    devtools.load(&page, &file_url(&probe));
    devtools.evaluate(&page, "0");
    let caught = devtools.take_errors();
    for expected in [
        "console.error: gauntlet probe: console.error",
        "gauntlet probe: uncaught",
        "Failed to load resource",
    ] {
        assert!(
            caught.iter().any(|e| e.contains(expected)),
            "the probe's {expected:?} was not caught; caught: {caught:#?}"
        );
    }
    let (_, found) = labels::problems(&devtools.evaluate(&page, labels::MEASURE));
    for expected in [
        "\"cut off at the edge\" is cut off",
        "\"one\" and \"two\" overlap",
    ] {
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "the probe chart's {expected:?} was not found; found: {found:#?}"
        );
    }

    devtools.load(&page, &file_url(&report));
    let measured = devtools.evaluate(&page, MEASURE);
    assert_eq!(measured["title"], "Gauntlet report", "{measured}");
    assert_eq!(measured["url"], file_url(&report).as_str(), "{measured}");
    let sizes: Vec<(f64, f64)> = measured["svgs"]
        .as_array()
        .expect("a list of sizes")
        .iter()
        .map(|s| (s[0].as_f64().unwrap(), s[1].as_f64().unwrap()))
        .collect();
    println!(
        "{} charts in a {} px wide window, width × height in CSS px: {sizes:?}",
        sizes.len(),
        measured["width"]
    );
    assert!(
        sizes.len() >= 4,
        "{} <svg> on the page, want the 4 charts",
        sizes.len()
    );
    for (i, &(w, h)) in sizes.iter().enumerate() {
        assert!(w > 0.0 && h > 0.0, "chart {i} is rendered {w} × {h}");
    }
    let (texts, problems) = labels::problems(&devtools.evaluate(&page, labels::MEASURE));
    println!(
        "{texts} chart labels, {} cut off or overlapping",
        problems.len()
    );

    let png = devtools.screenshot(&page);
    fs::write(&screenshot, &png).expect("write the screenshot");
    let (w, h) = png_size(&png);
    println!(
        "screenshot: {} ({w} × {h}, {} bytes)",
        screenshot.display(),
        png.len()
    );
    assert!(w > 0 && h > 0, "an empty screenshot");

    let errors = devtools.take_errors();

    // The populations' report, the same way: `GAUNTLET_POPULATIONS_HTML` (CI: the committed
    // reports/populations.html) or the fixture's.
    let populations = dir.join("populations.html");
    match env::var_os("GAUNTLET_POPULATIONS_HTML") {
        Some(given) => {
            let given = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(given);
            fs::copy(&given, &populations)
                .unwrap_or_else(|e| panic!("copy {} to the test's folder: {e}", given.display()));
        }
        None => fs::write(
            &populations,
            population_html(&fixture::populations(), "the fixture"),
        )
        .expect("write the populations' report"),
    }
    devtools.load(&page, &file_url(&populations));
    let measured = devtools.evaluate(&page, MEASURE);
    assert_eq!(measured["title"], "Gauntlet populations", "{measured}");
    let charts = measured["svgs"].as_array().map_or(0, Vec::len);
    // Per population a success chart and a time-to-first-message chart, and the ping chart.
    assert!(
        charts >= 3,
        "{charts} <svg> on the populations' page: {measured}"
    );
    let (population_texts, population_problems) =
        labels::problems(&devtools.evaluate(&page, labels::MEASURE));
    println!(
        "populations: {charts} charts, {population_texts} labels, {} cut off or overlapping",
        population_problems.len()
    );
    let population_errors = devtools.take_errors();

    let took = browser.close(devtools);
    println!("the browser session took {took:?}");
    assert!(errors.is_empty(), "the report logged errors: {errors:#?}");
    labels::assert_whole(texts, &problems);
    assert!(
        population_errors.is_empty(),
        "the populations' report logged errors: {population_errors:#?}"
    );
    labels::assert_whole(population_texts, &population_problems);
}

/// `target/`, the parent of Cargo's temporary directory for integration tests.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR has a parent")
        .to_path_buf()
}

/// The browser to run: `GAUNTLET_CHROMIUM`, or the first of [`CANDIDATES`] on `PATH`.
/// Panics, saying what to install, when there is none.
fn find_browser() -> PathBuf {
    let (names, looked_for): (Vec<OsString>, String) = match env::var_os("GAUNTLET_CHROMIUM") {
        Some(name) => (
            vec![name.clone()],
            format!(
                "GAUNTLET_CHROMIUM={} is not an executable",
                name.to_string_lossy()
            ),
        ),
        None => (
            CANDIDATES.iter().map(OsString::from).collect(),
            format!("none of {} is on PATH", CANDIDATES.join(", ")),
        ),
    };
    if let Some(found) = names.iter().find_map(|n| executable(n)) {
        return found;
    }
    if env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "no browser for the HTML report test: {looked_for}. With CI=true it must be \
             installed (.ci/run runs `{INSTALL}`); this test does not skip."
        );
    }
    panic!(
        "no browser for the HTML report test: {looked_for}. Install it: {INSTALL} \
         (or set GAUNTLET_CHROMIUM to a Chromium or Chrome binary)"
    );
}

/// `name` if it is a path to an executable file, or the first executable of that name on
/// `PATH`.
fn executable(name: &OsStr) -> Option<PathBuf> {
    let runnable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if Path::new(name).components().count() > 1 {
        let path = PathBuf::from(name);
        return runnable(&path).then_some(path);
    }
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| runnable(p))
}

/// A `file://` URL for an absolute path, bytes outside the unreserved set percent-encoded.
fn file_url(path: &Path) -> String {
    let path = path.canonicalize().expect("the file exists");
    let mut url = String::from("file://");
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

/// Width and height from a PNG's header; panics if it is not a PNG.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(
        png.len() > 24 && png.starts_with(b"\x89PNG\r\n\x1a\n") && &png[12..16] == b"IHDR",
        "not a PNG ({} bytes)",
        png.len()
    );
    let be = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap());
    (be(&png[16..20]), be(&png[20..24]))
}
