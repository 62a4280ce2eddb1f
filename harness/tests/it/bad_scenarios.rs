//! Bad scenario files: each gets a located, readable error (snapshot), never a panic.

use gauntlet::scenario;

#[test]
fn bad_scenario_files_get_located_errors() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    insta::glob!("../bad", "*.toml", |path| {
        let relative = path.strip_prefix(root).unwrap_or(path);
        let err = match scenario::load(relative) {
            Ok(s) => panic!("{} was accepted: {s:?}", relative.display()),
            Err(e) => e,
        };
        // The location is a place in the file: its line exists, the column is on it (or just
        // past its end), and the excerpt under the message quotes that line as written (up to
        // the first byte that is not UTF-8, where that is the error).
        let text =
            String::from_utf8_lossy(&std::fs::read(path).expect("the file reads")).into_owned();
        let line = text
            .lines()
            .nth(err.line.saturating_sub(1))
            .unwrap_or_else(|| panic!("{}: line {} is past the end", relative.display(), err.line));
        assert!(
            err.line >= 1 && err.col >= 1 && err.col <= line.chars().count() + 1,
            "{}: column {} is not on line {} ({line:?})",
            relative.display(),
            err.col,
            err.line
        );
        let shown = err.to_string();
        let gutter = format!("{} | ", err.line);
        let quoted = shown.lines().find_map(|l| l.strip_prefix(&gutter));
        let at = format!("{}:{}:{}: ", relative.display(), err.line, err.col);
        assert!(
            shown.starts_with(&at) && quoted.is_some_and(|q| line.starts_with(q)),
            "{shown}"
        );
        insta::assert_snapshot!(shown);
    });
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let err = scenario::load(std::path::Path::new("tests/bad/no-such-file.toml")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("tests/bad/no-such-file.toml:1:1: cannot read the file"),
        "{err}"
    );
}

/// Numbers beyond what a run can hold (sums that overflow, a year of jitter, a hop timeout
/// past any run) are refused where they are written, with the limit in the message.
#[test]
fn numbers_beyond_their_limits_are_refused_where_they_are_written() {
    let cases = [
        (
            "jitter-beyond-a-year.toml",
            7,
            13,
            "`jitter-ms` must be at most",
        ),
        ("idle-beyond-a-year.toml", 10, 31, "`ms` must be at most"),
        (
            "idle-periods-add-up-beyond-a-year.toml",
            11,
            5,
            "idle periods add up to",
        ),
        (
            "messages-times-interval-beyond-a-year.toml",
            9,
            15,
            "1000000 messages 100000 ms apart",
        ),
        (
            "interval-overflows.toml",
            9,
            15,
            "`interval-ms` must be at most",
        ),
        (
            "hop-timeout-beyond-a-year.toml",
            7,
            14,
            "`timeout-ms` must be at most",
        ),
    ];
    for (file, line, col, message) in cases {
        let path = std::path::Path::new("tests/bad").join(file);
        let err = match scenario::load(&path) {
            Ok(_) => panic!("{file} was accepted"),
            Err(e) => e,
        };
        assert_eq!((err.line, err.col), (line, col), "{err}");
        assert!(err.message.contains(message), "{err}");
    }
}

mod extreme_numbers {
    //! Scenario files with extreme numbers in their numeric fields: whatever `check` accepts
    //! runs on the simulated engine to an outcome, without a panic or a harness error.

    use gauntlet::engine::sim::Sim;
    use gauntlet::scenario::{self, MAX_MS, Scheme};
    use proptest::prelude::*;

    /// Each numeric field of the generated files: its name, its ordinary values ("" leaves it
    /// out), and its own extremes, where the general ones ([`extreme`]) would make valid runs
    /// that take minutes of wall time even on `sim` (a million messages, a 16 MiB message in
    /// 7-byte frames, a ping every millisecond through a year of idling); empty for those.
    const FIELDS: &[(&str, &[&str], &[&str])] = &[
        ("seed", &["1", "7"], &[]),
        ("latency-ms", &["0", "5", "100"], &[]),
        ("jitter-ms", &["", "3", "40"], &[]),
        ("hop parameter", &["2", "50"], &[]),
        ("second hop parameter", &["1", "100"], &[]),
        ("at-ms", &["10", "200"], &[]),
        ("handshake-timeout-ms", &["", "100", "5000"], &[]),
        (
            "messages",
            &["3"],
            &["0", "-1", "1000001", "4294967296", "1e300", "nan"],
        ),
        ("interval-ms", &["0", "10", "100"], &[]),
        (
            "payload-bytes",
            &["1", "32", "2000"],
            &[
                "0",
                "-1",
                "65536",
                "16777217",
                "18446744073709551615",
                "inf",
            ],
        ),
        ("reply-timeout-ms", &["50", "5000"], &[]),
        ("first idle after-message", &["1"], &[]),
        ("first idle ms", &["10", "1000"], &[]),
        ("second idle after-message", &["2"], &[]),
        ("second idle ms", &["", "10"], &[]),
        ("server-fragment-bytes", &["", "7"], &[]),
        ("close-code", &["", "4001"], &[]),
        ("latency-max-ms", &["", "100"], &[]),
        ("handshake-ms", &["", "100"], &[]),
        (
            "ping-interval-ms",
            &[""],
            &[
                "0",
                "-1",
                "1e300",
                "20000000000",
                "31536000000",
                "31536000001",
                "9223372036854775807",
                "18446744073709551615",
            ],
        ),
    ];

    /// The hops tried: a model with up to two numeric parameters, whose values are the
    /// fields called "hop parameter" and "second hop parameter".
    const HOPS: &[(&str, &str, &str)] = &[
        ("", "", ""),
        ("model = \"idle-killer\"", "timeout-ms", ""),
        ("model = \"lifetime-cap\"", "max-age-ms", ""),
        (
            "model = \"buffering-proxy\"",
            "flush-interval-ms",
            "hold-bytes",
        ),
        (
            "model = \"l7-balancer\"\nterminate-tls = false",
            "timeout-ms",
            "timeout-tunnel-ms",
        ),
        (
            "model = \"l7-balancer\"\nterminate-tls = false",
            "drain-at-ms",
            "drain-deadline-ms",
        ),
        ("model = \"caching-proxy\"", "max-entries", ""),
        ("model = \"l4-balancer\"", "backends", ""),
    ];

    /// An extreme value: the edges of the integer types TOML and Rust read, the scenario
    /// limits and their neighbours, huge and odd floats, and any integer.
    fn extreme() -> impl Strategy<Value = String> {
        let edges = prop::sample::select(vec![
            "0",
            "1",
            "-1",
            "65535",
            "65536",
            "4294967295",
            "4294967296",
            "31536000000",
            "31536000001",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "18446744073709551616",
            "1e300",
            "-1e300",
            "inf",
            "nan",
            "0.5",
        ]);
        prop_oneof![
            3 => edges.prop_map(str::to_string),
            1 => Just(u64::MAX.to_string()),
            1 => any::<u64>().prop_map(|n| n.to_string()),
            2 => (0..=MAX_MS).prop_map(|n| n.to_string()),
        ]
    }

    prop_compose! {
        /// A scenario file with ordinary values in every field but one to three, which are
        /// extreme.
        fn scenario_text()(
            ordinary in FIELDS
                .iter()
                .map(|(_, values, _)| prop::sample::select(values.to_vec()))
                .collect::<Vec<_>>(),
            extremes in prop::collection::vec(
                (0..FIELDS.len(), extreme(), any::<prop::sample::Index>()),
                1..=3,
            ),
            hop in 0..HOPS.len(),
            crash in any::<bool>(),
            kind in prop::sample::select(vec!["echo", "push"]),
        ) -> String {
            let mut v: Vec<String> = ordinary.iter().map(|s| s.to_string()).collect();
            for (field, value, pick) in extremes {
                let own = FIELDS[field].2;
                v[field] = if own.is_empty() { value } else { pick.get(own).to_string() };
            }
            // A field's value by name, and `key = value` for a field that is not left out.
            let get = |name: &str| {
                let i = FIELDS.iter().position(|f| f.0 == name).expect("a field of FIELDS");
                v[i].as_str()
            };
            let line = |key: &str, field: &str| match get(field) {
                "" => String::new(),
                value => format!("{key} = {value}\n"),
            };
            let (model, first, second) = HOPS[hop];
            let path = if model.is_empty() {
                String::new()
            } else {
                let mut p = format!("[[path]]\n{model}\n{}", line(first, "hop parameter"));
                if !second.is_empty() {
                    p += &line(second, "second hop parameter");
                }
                p
            };
            let fault = if crash {
                let server = if model.contains("l4-balancer") { "server1" } else { "server" };
                format!("[[faults]]\n{}crash = \"{server}\"\n", line("at-ms", "at-ms"))
            } else {
                String::new()
            };
            let period = |which: &str| {
                format!(
                    "{{ after-message = {}, ms = {} }}",
                    get(&format!("{which} idle after-message")),
                    get(&format!("{which} idle ms")),
                )
            };
            let mut idle = vec![period("first")];
            if !get("second idle ms").is_empty() {
                idle.push(period("second"));
            }
            let bounds = line("latency-max-ms", "latency-max-ms") + &line("handshake-ms", "handshake-ms");
            let bounds = if bounds.is_empty() {
                String::new()
            } else {
                format!("[bounds]\n{bounds}")
            };
            let same = |key: &str| line(key, key);
            [
                "format = 1\ntitle = \"extreme numbers\"\nsource = \"a property test\"\n".to_string(),
                format!("seeds = [{}]\n[network]\n", get("seed")),
                same("latency-ms"),
                same("jitter-ms"),
                path,
                fault,
                "[client]\nschemes = [\"ws\"]\n".to_string(),
                same("handshake-timeout-ms"),
                same("ping-interval-ms"),
                format!("[client.workload]\nkind = \"{kind}\"\n"),
                same("messages"),
                same("interval-ms"),
                same("payload-bytes"),
                same("reply-timeout-ms"),
                format!("idle = [{}]\n", idle.join(", ")),
                same("server-fragment-bytes"),
                same("close-code"),
                bounds,
                "[expect]\nws = \"delivered\"\n".to_string(),
            ]
            .concat()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever `check` accepts runs to an outcome on `sim`: no panic, no harness error.
        #[test]
        fn what_check_accepts_runs_on_sim(text in scenario_text()) {
            let Ok(s) = scenario::parse("extreme.toml", &text) else {
                return Ok(());
            };
            let run = gauntlet::run::run(&Sim, &s, Scheme::Ws, s.seeds[0]);
            prop_assert!(run.is_ok(), "{text}\n{:#}", run.err().map_or(String::new(), |e| format!("{e:#}")));
        }
    }
}

/// TOML readers stop nesting at 80 levels; a key of more dotted parts is an error at the key,
/// not at the start of the file.
#[test]
fn a_key_of_more_than_80_dotted_parts_is_refused_at_the_key() {
    let path = std::path::Path::new("tests/bad/dotted-key-too-deep.toml");
    let err = scenario::load(path).unwrap_err();
    assert_eq!((err.line, err.col), (8, 3), "{err}");
    assert!(err.message.contains("81 dotted parts"), "{err}");
}
