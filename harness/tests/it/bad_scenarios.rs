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
        assert!(err.line >= 1 && err.col >= 1);
        insta::assert_snapshot!(err.to_string());
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
