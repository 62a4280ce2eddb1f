//! The scenario reader's tests: defaults, located errors, each table's rules, and properties
//! over any text (a scenario or a located error, never a panic).

use std::time::Duration;

use super::parse;
use super::text::deep_key;
use crate::scenario::error::locate;
use crate::scenario::{
    Idle, MAX_MESSAGES, MAX_MS, Network, Route, Scheme, Workload, WorkloadKind, close_code_valid,
};
use crate::tls::TlsVersions;
use crate::verdict::outcome::Outcome;

const MINIMAL: &str = "format = 1\ntitle = \"t\"\nsource = \"s\"\n[client]\nschemes = [\"ws\"]\n[expect]\nws = \"delivered\"\n";

#[test]
fn a_minimal_file_gets_the_documented_defaults() {
    let s = parse("m.toml", MINIMAL).unwrap();
    assert_eq!(s.seeds, vec![1]);
    assert_eq!(
        s.network,
        Network {
            latency_ms: 5,
            jitter_ms: 0
        }
    );
    assert_eq!(s.client.route, Route::Transparent);
    assert_eq!(s.client.workload.messages, 5);
    assert_eq!(s.expect, vec![(Scheme::Ws, Outcome::Delivered)]);
    assert!(s.path.is_empty());
}

#[test]
fn errors_point_at_line_and_column() {
    let e = parse("m.toml", &MINIMAL.replace("schemes", "schemas")).unwrap_err();
    assert_eq!((e.line, e.col), (5, 1), "{e}");
    assert!(e.message.contains("unknown field `schemas`"), "{e}");
}

#[test]
fn smuggle_sends_one_frame_and_may_go_unmasked() {
    let text = MINIMAL.replace(
        "[expect]",
        "mask = false\n[client.workload]\nkind = \"smuggle\"\nreply-timeout-ms = 700\n[expect]",
    );
    let s = parse("m.toml", &text).unwrap();
    assert!(!s.client.mask);
    assert_eq!(s.client.workload.kind, WorkloadKind::Smuggle);
    assert_eq!(s.client.workload.messages, 1);
    assert_eq!(
        s.time_limit(),
        Duration::from_millis(2 * 5000 + 4 * 700 + 10_000)
    );
    assert!(parse("m.toml", MINIMAL).unwrap().client.mask);
    let e = parse("m.toml", &text.replace("reply-timeout-ms", "interval-ms")).unwrap_err();
    assert!(e.message.starts_with("`interval-ms` does not apply"), "{e}");
    let e = parse(
        "m.toml",
        &text.replace(
            "[expect]",
            "idle = [{ after-message = 0, ms = 5 }]\n[expect]",
        ),
    )
    .unwrap_err();
    assert!(e.message.starts_with("`idle` does not apply"), "{e}");
}

#[test]
fn the_gate_options_are_read_with_their_defaults() {
    let w = parse("m.toml", MINIMAL).unwrap().client.workload;
    assert_eq!(w, Workload::new(WorkloadKind::Echo));
    let text = MINIMAL.replace(
        "[expect]",
        "[client.workload]\npayload-bytes = 0\nbinary = true\nfragment-bytes = 7\nserver-fragment-bytes = 9\nclose-code = 4999\n[expect]",
    );
    let w = parse("m.toml", &text).unwrap().client.workload;
    assert_eq!(w.payload_bytes, 0);
    assert!(w.binary);
    assert_eq!(
        (w.fragment_bytes, w.server_fragment_bytes),
        (Some(7), Some(9))
    );
    assert_eq!((w.close_code, w.server_close_code), (4999, None));
    let text = text.replace("close-code", "server-close-code");
    let w = parse("m.toml", &text).unwrap().client.workload;
    assert_eq!((w.close_code, w.server_close_code), (1000, Some(4999)));
}

#[test]
fn the_server_accepts_both_tls_versions_unless_a_wss_scenario_pins_one() {
    assert_eq!(
        parse("m.toml", MINIMAL).unwrap().server.tls_version,
        TlsVersions::Any
    );
    let wss = MINIMAL
        .replace("[\"ws\"]", "[\"ws\", \"wss\"]")
        .replace("[expect]", "[expect]\nwss = \"delivered\"");
    for versions in TlsVersions::ALL {
        let text = format!("{wss}[server]\ntls-version = \"{versions}\"\n");
        let s = parse("m.toml", &text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.server.tls_version, versions);
    }
    let e = parse("m.toml", &format!("{wss}[server]\ntls-version = \"1.1\"\n")).unwrap_err();
    assert_eq!((e.line, e.col), (10, 15), "{e}");
    assert!(
        e.message.contains("expected one of `any`, `1.2`, `1.3`"),
        "{e}"
    );
    let e = parse(
        "m.toml",
        &format!("{MINIMAL}[server]\ntls-version = \"1.3\"\n"),
    )
    .unwrap_err();
    assert_eq!((e.line, e.col), (9, 15), "{e}");
    assert!(e.message.contains("applies to wss only"), "{e}");
}

#[test]
fn close_codes_follow_rfc_6455_section_7_4() {
    for code in [1000, 1003, 1007, 1013, 3000, 4999] {
        assert!(close_code_valid(code), "{code}");
    }
    for code in [0, 999, 1004, 1005, 1006, 1014, 1015, 2999, 5000] {
        assert!(!close_code_valid(code), "{code}");
    }
}

#[test]
fn the_time_limit_saturates_for_a_scenario_built_by_hand() {
    let mut s = parse("m.toml", MINIMAL).unwrap();
    let w = &mut s.client.workload;
    w.interval = Duration::MAX;
    w.messages = MAX_MESSAGES;
    w.idle = vec![
        Idle {
            after_message: 1,
            ms: u64::MAX
        };
        2
    ];
    assert_eq!(s.time_limit(), Duration::MAX);
}

#[test]
fn a_workload_may_last_a_year_and_no_more() {
    let workload =
        |lines: &str| MINIMAL.replace("[expect]", &format!("[client.workload]\n{lines}\n[expect]"));
    let year = parse(
        "m.toml",
        &workload(&format!(
            "messages = 2\ninterval-ms = {}\nidle = [{{ after-message = 2, ms = 0 }}]",
            MAX_MS
        )),
    )
    .unwrap();
    assert_eq!(year.client.workload.interval, Duration::from_millis(MAX_MS));
    let e = parse(
        "m.toml",
        &workload(&format!(
            "messages = 2\ninterval-ms = {}\nidle = [{{ after-message = 2, ms = 1 }}]",
            MAX_MS
        )),
    )
    .unwrap_err();
    assert_eq!((e.line, e.col), (9, 9), "{e}");
    assert!(
        e.message
            .starts_with("the idle periods add up to 1 ms with this one, besides 31536000000 ms"),
        "{e}"
    );
}

#[test]
fn a_deep_key_is_found_past_comments_strings_and_values() {
    let key = |parts: usize| vec!["a"; parts].join(".");
    let deep = key(81);
    assert_eq!(deep_key(&format!("x = 1\n{deep} = 1\n")), Some((6, 81)));
    assert_eq!(deep_key(&format!("{} = 1\n", key(80))), None);
    // In a table header, an array of tables, an inline table; quoted parts; spaces.
    assert_eq!(deep_key(&format!("[{deep}]\n")), Some((1, 81)));
    assert_eq!(deep_key(&format!("[[{deep}]]\n")), Some((2, 81)));
    assert_eq!(
        deep_key(&format!("t = {{ x = 1, {deep} = 2 }}")),
        Some((13, 81))
    );
    let spaced = vec!["\"a.b\""; 82].join(" . ");
    assert_eq!(deep_key(&format!("  {spaced} = 1")), Some((2, 82)));
    // Dots in comments and strings are not keys.
    for text in [
        format!("# {deep}\nx = 1\n"),
        format!("x = \"{deep}\"\n"),
        format!("x = '{deep}'\n"),
        format!("x = \"\"\"\n{deep}\n\"\"\"\n"),
        format!("x = '''\n{deep}\n''''\n"),
        format!("x = \"\\\" {deep}\"\n"),
    ] {
        assert_eq!(deep_key(&text), None, "{text}");
    }
    // The key the reader refuses is located there, whatever comes before it.
    let text = MINIMAL.replace(
        "[expect]",
        &format!("x = \"\"\"{deep}\"\"\"\n  {deep} = 1\n[expect]"),
    );
    let e = parse("m.toml", &text).unwrap_err();
    assert_eq!((e.line, e.col), (7, 3), "{e}");
}

#[test]
fn locate_counts_characters_not_bytes() {
    let e = locate("f", "a = \"é\" x", 9, "m".into());
    assert_eq!((e.line, e.col), (1, 9));
}

#[test]
fn an_error_at_the_end_of_a_crlf_line_points_just_past_its_last_character() {
    // Found by `cargo xtask fuzz` (target `scenario`): an unterminated string on a line
    // ended by CRLF was located one column past the end of the line its excerpt shows.
    let text = "format = 1\r\nws = \"nope\r\n";
    let e = parse("f.toml", text).unwrap_err();
    assert_eq!((e.line, e.col), (2, 11), "{e}");
    assert_eq!(e.excerpt.as_deref(), Some("ws = \"nope"));
    let e = locate("f", "ab\r\n", 3, "m".into());
    assert_eq!((e.line, e.col), (1, 3));
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    const VALID: &str = include_str!("../../../../scenarios/seeds/transparent-strip.toml");

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any text at all gives a scenario or a located error, never a panic.
        #[test]
        fn any_text_parses_or_fails_with_a_location(text in "\\PC{0,300}") {
            if let Err(e) = parse("p.toml", &text) {
                prop_assert!(e.line >= 1 && e.col >= 1);
            }
        }

        /// A valid file with one span cut out or replaced fails cleanly or still validates.
        #[test]
        fn damaged_valid_files_never_panic(start in 0usize..VALID.len(), len in 0usize..40, junk in "\\PC{0,8}") {
            let mut text = VALID.to_string();
            let start = (0..=start).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            let end = (start + len).min(text.len());
            let end = (end..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
            text.replace_range(start..end, &junk);
            if let Err(e) = parse("p.toml", &text) {
                let lines = text.lines().count().max(1);
                prop_assert!(e.line <= lines + 1, "line {} of {}", e.line, lines);
            }
        }
    }
}
