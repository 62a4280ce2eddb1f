//! The model table of `scenarios/README.md` is made from the models' declarations
//! ([`MODELS`]): a row per registered model, in catalogue order, with its description and
//! parameters. `GAUNTLET_BLESS=1 cargo test -p gauntlet-proxies --test docs` writes it.

use std::fs;
use std::path::PathBuf;

use gauntlet_proxies::MODELS;

/// The table's header row, which the test finds it by.
const HEADER: &str = "| model | what it does | parameters |";

fn readme() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/README.md")
}

/// The table as the declarations make it.
fn table() -> String {
    let mut out = format!("{HEADER}\n|---|---|---|\n");
    for m in MODELS {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            m.name, m.description, m.parameters
        ));
    }
    out
}

#[test]
fn the_scenario_readme_lists_exactly_the_registered_models() {
    let path = readme();
    let text = fs::read_to_string(&path).expect("scenarios/README.md");
    let start = text
        .find(&format!("\n{HEADER}\n"))
        .map(|at| at + 1)
        .expect("scenarios/README.md has the model table");
    let len: usize = text[start..]
        .split_inclusive('\n')
        .take_while(|line| line.starts_with('|'))
        .map(str::len)
        .sum();
    let expected = table();
    if text[start..start + len] == expected {
        return;
    }
    if std::env::var_os("GAUNTLET_BLESS").is_some() {
        let new = format!("{}{expected}{}", &text[..start], &text[start + len..]);
        fs::write(&path, new).expect("writing scenarios/README.md");
        return;
    }
    panic!(
        "scenarios/README.md's model table is not the registered models' (their NAME, \
         DESCRIPTION and PARAMETERS, in the order of the list in proxies-sim/src/spec.rs); \
         `GAUNTLET_BLESS=1 cargo test -p gauntlet-proxies --test docs` writes it:\n\n{expected}"
    );
}

#[test]
fn the_scenario_readme_names_every_preset() {
    let text = fs::read_to_string(readme()).expect("scenarios/README.md");
    let missing: Vec<String> = MODELS
        .iter()
        .flat_map(|m| m.presets().iter().map(move |p| (m.name, p)))
        .filter(|(_, p)| !text.contains(&format!("`{p}`")))
        .map(|(m, p)| format!("{m}: `{p}`"))
        .collect();
    assert!(
        missing.is_empty(),
        "presets scenarios/README.md does not name: {missing:?}"
    );
}
