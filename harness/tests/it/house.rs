//! The house keeps its shape: the modules of `harness/src` form no dependency cycle, no source
//! file there is longer than [`MAX_LINES`], `ARCHITECTURE.md` names every source file and
//! command there is, and no source file that is gone, and no library code says its errors
//! in a bare `String`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, as paths relative to it, sorted.
fn sources(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("reading a source folder") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).expect("under the root");
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A source file's module path (`endpoints/client.rs`: `endpoints::client`; `run/mod.rs`:
/// `run`); `None` for the crate roots.
fn module(file: &str) -> Option<String> {
    let stem = file.strip_suffix(".rs")?;
    if stem == "lib" || stem == "main" {
        return None;
    }
    let stem = stem.strip_suffix("/mod").unwrap_or(stem);
    Some(stem.replace('/', "::"))
}

/// The code of a source file that the library builds: no comments, no test module.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Each module's dependencies on the others: every `crate::a::b…` path it names, as the
/// longest module that path starts with (grouped imports `crate::a::{b, c}` included).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let files = sources(&src());
    let modules: BTreeMap<String, String> = files
        .iter()
        .filter_map(|f| module(f).map(|m| (m, f.clone())))
        .collect();
    let mut deps = BTreeMap::new();
    for (m, file) in &modules {
        let text = code(&std::fs::read_to_string(src().join(file)).expect("a source file"));
        let mut paths = BTreeSet::new();
        for (at, _) in text.match_indices("crate::") {
            let rest = &text[at + "crate::".len()..];
            let path: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let path = path.trim_end_matches(':').to_string();
            if rest[path.len()..].trim_start_matches(':').starts_with('{') {
                let group = &rest[path.len()..];
                let inner = &group[group.find('{').unwrap_or(0) + 1..group.find('}').unwrap_or(0)];
                for name in inner.split(',') {
                    let name = name.trim().split([' ', ':']).next().unwrap_or("");
                    if !name.is_empty() {
                        paths.insert(format!("{path}::{name}"));
                    }
                }
            }
            paths.insert(path);
        }
        let mine: &mut BTreeSet<String> = deps.entry(m.clone()).or_default();
        for path in paths {
            let parts: Vec<&str> = path.split("::").collect();
            let found = (1..=parts.len())
                .rev()
                .map(|k| parts[..k].join("::"))
                .find(|candidate| modules.contains_key(candidate));
            if let Some(dep) = found {
                if dep != *m && !m.starts_with(&format!("{dep}::")) {
                    mine.insert(dep);
                }
            }
        }
    }
    deps
}

/// The cycles of `deps`: its strongly connected components of more than one module.
fn cycles(deps: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Two modules are in one cycle when each reaches the other.
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(m) = todo.pop() {
            for d in deps.get(&m).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    todo.push(d.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> = deps.keys().map(|m| (m, reach(m))).collect();
    let mut found: Vec<Vec<String>> = Vec::new();
    for (m, from_m) in &reaches {
        let cycle: Vec<String> = from_m
            .iter()
            .filter(|d| reaches.get(d).is_some_and(|r| r.contains(*m)))
            .cloned()
            .collect();
        if !cycle.is_empty() && !found.iter().any(|c| c.contains(m)) {
            found.push(cycle);
        }
    }
    found
}

#[test]
fn the_modules_of_harness_src_form_no_dependency_cycle() {
    let deps = graph();
    assert!(deps.len() >= 30, "found only {} modules", deps.len());
    // The graph sees real edges.
    assert!(
        deps["endpoints::client"].contains("endpoints::connect"),
        "{deps:?}"
    );
    assert!(deps["run"].contains("engine"), "{deps:?}");
    let found = cycles(&deps);
    let shown: Vec<String> = found
        .iter()
        .map(|c| {
            c.iter()
                .map(|m| {
                    format!(
                        "{m} -> {}",
                        deps[m].iter().cloned().collect::<Vec<_>>().join(", ")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n  ")
        })
        .collect();
    assert!(
        found.is_empty(),
        "dependency cycles:\n  {}",
        shown.join("\n\n  ")
    );
}

#[test]
fn a_cycle_is_found_where_there_is_one() {
    let edges = |list: &[(&str, &[&str])]| -> BTreeMap<String, BTreeSet<String>> {
        list.iter()
            .map(|(m, ds)| (m.to_string(), ds.iter().map(|d| d.to_string()).collect()))
            .collect()
    };
    let with = edges(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &["a"])]);
    assert_eq!(cycles(&with), vec![vec!["a", "b", "c"]]);
    let without = edges(&[("a", &["b"]), ("b", &["c"]), ("c", &[]), ("d", &["a"])]);
    assert!(cycles(&without).is_empty());
}

/// The most lines a source file of `harness/src` may have: past them, a file holds more than
/// one responsibility and is split into a folder of files, one each.
const MAX_LINES: usize = 600;

/// Each of `files` (paths under `dir`) that has more than [`MAX_LINES`] lines, with its count.
fn too_long(dir: &Path, files: &[String]) -> Vec<String> {
    files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(dir.join(f)).expect("a source file");
            let lines = text.lines().count();
            (lines > MAX_LINES).then(|| format!("{f} ({lines} lines)"))
        })
        .collect()
}

#[test]
fn no_source_file_of_harness_src_is_longer_than_600_lines() {
    let files = sources(&src());
    assert!(files.len() >= 30, "found only {} files", files.len());
    let long = too_long(&src(), &files);
    assert!(
        long.is_empty(),
        "source files of harness/src over {MAX_LINES} lines: {}",
        long.join(", ")
    );
}

#[test]
fn a_file_over_the_limit_is_named_with_its_count() {
    let dir = std::env::temp_dir().join(format!("gauntlet-house-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    std::fs::write(dir.join("short.rs"), "fn a() {}\n".repeat(MAX_LINES)).expect("a file");
    std::fs::write(dir.join("long.rs"), "fn a() {}\n".repeat(MAX_LINES + 1)).expect("a file");
    let long = too_long(&dir, &sources(&dir));
    std::fs::remove_dir_all(&dir).expect("removing the temporary folder");
    assert_eq!(long, vec![format!("long.rs ({} lines)", MAX_LINES + 1)]);
}

/// `ARCHITECTURE.md`.
fn architecture() -> String {
    std::fs::read_to_string(crate::root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md")
}

/// Every `` `…` `` span of `text`.
fn quoted(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn architecture_names_every_source_file_of_harness_src() {
    let named = quoted(&architecture());
    let missing: Vec<String> = sources(&src())
        .into_iter()
        .filter(|f| {
            let folder = f.strip_suffix("mod.rs").map(str::to_string);
            !named.contains(f) && folder.is_none_or(|d| !named.contains(&d))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map does not name (as `path` from harness/src): {missing:?}"
    );
}

#[test]
fn every_source_file_architecture_names_exists() {
    let root = crate::root();
    let crates = ["harness", "proxies-sim", "reports", "hardening", "xtask"];
    let mut all: BTreeSet<String> = BTreeSet::new();
    for krate in crates {
        // A build script stands beside its crate's folders.
        if root.join(krate).join("build.rs").is_file() {
            all.insert(format!("{krate}/build.rs"));
        }
        for dir in ["src", "tests", "benches"] {
            let base = root.join(krate).join(dir);
            if base.is_dir() {
                for f in sources(&base) {
                    all.insert(f.clone());
                    // Prose names a file by its name alone where the context says which.
                    if let Some((folder, name)) = f.rsplit_once('/') {
                        all.insert(format!("{folder}/"));
                        all.insert(name.to_string());
                    }
                    all.insert(format!("{dir}/{f}"));
                    all.insert(format!("{krate}/{dir}/{f}"));
                }
            }
        }
    }
    let gone: Vec<String> = quoted(&architecture())
        .into_iter()
        .filter(|q| q.ends_with(".rs") && !q.contains(' ') && !q.contains('*') && !all.contains(q))
        .collect();
    assert!(
        gone.is_empty(),
        "ARCHITECTURE.md names files that do not exist: {gone:?}"
    );
}

#[test]
fn architecture_names_every_command() {
    let main = std::fs::read_to_string(src().join("main.rs")).expect("main.rs");
    let start = main.find("enum Command {").expect("the Command enum");
    let body = &main[start..];
    let body = &body[..body.find("\n}\n").expect("its end")];
    let commands: Vec<String> = body
        .lines()
        .filter_map(|l| {
            let name = l.strip_prefix("    ")?.split([' ', ',', '{', '(']).next()?;
            name.chars()
                .next()
                .is_some_and(char::is_uppercase)
                .then(|| name.to_lowercase())
        })
        .collect();
    assert!(commands.len() >= 9, "found {commands:?}");
    let text = architecture();
    let missing: Vec<&String> = commands
        .iter()
        .filter(|c| !text.contains(&format!("`gauntlet {c}")))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names no `gauntlet <command>` for {missing:?} (of {commands:?})"
    );
}

/// The library's sources: `harness/src` but the command line (`main.rs`, `cli/`), and the
/// sources of `proxies-sim` and `reports`, as paths from the workspace's root.
fn library_sources() -> Vec<String> {
    let root = crate::root();
    let mut files = Vec::new();
    for krate in ["harness", "proxies-sim", "reports"] {
        for f in sources(&root.join(krate).join("src")) {
            if krate == "harness" && (f == "main.rs" || f.starts_with("cli/")) {
                continue;
            }
            files.push(format!("{krate}/src/{f}"));
        }
    }
    files
}

/// `line` without what its string and character literals hold, so that braces and text
/// inside them count for nothing (a lifetime's quote is left as it is).
fn without_literals(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                out.push_str("\"\"");
            }
            '\'' => {
                let rest: String = chars.clone().take(3).collect();
                let literal = rest.starts_with('\\') || rest.chars().nth(1) == Some('\'');
                if literal {
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' => {
                                chars.next();
                            }
                            '\'' => break,
                            _ => {}
                        }
                    }
                    out.push_str("' '");
                } else {
                    out.push(c);
                }
            }
            '/' if chars.peek() == Some(&'/') => break,
            c => out.push(c),
        }
    }
    out
}

/// The lines of `text` that a library build compiles, numbered from 1: without comments,
/// and without each item marked `#[cfg(test)]` (a test module, a test-only function or
/// statement). String and character literals are emptied.
fn compiled_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut skipping = false;
    let mut depth = 0usize;
    let mut opened = false;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        let line = without_literals(raw);
        if !skipping && line.trim() == "#[cfg(test)]" {
            (skipping, depth, opened) = (true, 0, false);
            continue;
        }
        if skipping {
            if line.trim_start().starts_with("#[") && !opened {
                continue;
            }
            for c in line.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            let ended = if opened {
                depth == 0
            } else {
                line.trim_end().ends_with(';')
            };
            if ended {
                skipping = false;
            }
            continue;
        }
        out.push((i + 1, line));
    }
    out
}

/// The lines of `text` where its compiled code says an error is a `String`: a
/// `Result<…, String>` (its last type argument `String`, however deeply the others nest and
/// over however many lines), or an `Err` or `Error` associated type that is `String`.
fn string_error_lines(text: &str) -> Vec<usize> {
    let lines = compiled_lines(text);
    let mut code = String::new();
    let mut starts = Vec::with_capacity(lines.len());
    for (n, line) in &lines {
        starts.push((code.len(), *n));
        code.push_str(line);
        code.push('\n');
    }
    let line_at = |at: usize| {
        let i = starts.partition_point(|(start, _)| *start <= at);
        starts[i.saturating_sub(1)].1
    };
    let mut found = Vec::new();
    for (at, _) in code.match_indices("type Err") {
        let after = code[at + "type Err".len()..].trim_start_matches("or");
        let after = after.trim_start();
        if let Some(ty) = after.strip_prefix('=') {
            if ty.trim_start().starts_with("String;") {
                found.push(line_at(at));
            }
        }
    }
    for (at, _) in code.match_indices("Result<") {
        let args = &code[at + "Result<".len()..];
        let mut depth = 0usize;
        let mut last = 0;
        for (i, c) in args.char_indices() {
            match c {
                '<' | '(' | '[' => depth += 1,
                '>' if depth == 0 => {
                    let error = args[last..i].trim().trim_end_matches(',').trim();
                    if last > 0 && matches!(error, "String" | "std::string::String") {
                        found.push(line_at(at));
                    }
                    break;
                }
                '>' | ')' | ']' => depth = depth.saturating_sub(1),
                ',' if depth == 0 && !args[i + 1..].trim_start().starts_with('>') => {
                    last = i + 1;
                }
                _ => {}
            }
        }
    }
    found.sort_unstable();
    found
}

/// Each place in `files` (paths under `root`) whose compiled code says an error is a
/// `String`, as `file:line: the line`.
fn string_errors(root: &Path, files: &[String]) -> Vec<String> {
    files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(root.join(f)).expect("a source file");
            string_errors_in(f, &text)
        })
        .collect()
}

/// Each place in `text`, the file `file`, whose compiled code says an error is a `String`, as
/// `file:line: the line`.
fn string_errors_in(file: &str, text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    string_error_lines(text)
        .into_iter()
        .map(|n| format!("{file}:{n}: {}", lines[n - 1].trim()))
        .collect()
}

#[test]
fn library_errors_are_types_not_strings() {
    let files = library_sources();
    assert!(files.len() >= 60, "found only {} files", files.len());
    let found = string_errors(&crate::root(), &files);
    assert!(
        found.is_empty(),
        "library code whose errors are a String (give it an error type, with thiserror):\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn a_string_error_is_found_where_there_is_one() {
    let text = r#"//! `fn doc() -> Result<(), String>` in a doc comment is prose.
/// Nor here: Result<u8, String>.
pub fn a() -> Result<u8, String> {
    Ok(1)
}
pub fn fine() -> Result<Option<String>, Oops> {
    let s = "Result<u8, String>";
    Ok(None)
}
pub fn nested() -> Result<Vec<(u8, String)>, String> {
    todo!()
}
impl FromStr for X {
    type Err = String;
}
#[cfg(test)]
fn helper() -> Result<(), String> {
    Ok(())
}
#[cfg(test)]
mod tests {
    fn parse() -> Result<(), String> {
        let brace = '{';
        Ok(())
    }
}
pub fn after() -> Result<
    u8,
    String,
> {
    Ok(1)
}
pub fn last() -> std::result::Result<(), std::string::String> {
    Ok(())
}
"#;
    let found = string_errors_in("a.rs", text);
    let lines: Vec<&str> = found
        .iter()
        .map(|f| f.split(':').nth(1).unwrap_or(""))
        .collect();
    assert_eq!(lines, ["3", "10", "14", "27", "33"], "{found:#?}");
    assert!(found[0].starts_with("a.rs:3: pub fn a() -> Result<u8, String>"));
}
