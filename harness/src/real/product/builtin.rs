//! The products' configuration templates built into the binary: every file of
//! `scenarios/live/templates/` when it was built, embedded by `harness/build.rs`, so that a
//! product can be started from one outside a checkout (`gauntlet gate --product`).

use std::path::{Path, PathBuf};

use super::ProductError;
use super::error::io_error;

/// Every built-in template, sorted by file name: its name and its text.
pub static TEMPLATES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/templates.rs"));

/// The text of the built-in template `name` (`nginx-with-upgrade-lines.conf`).
pub fn template(name: &str) -> Option<&'static str> {
    TEMPLATES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

/// Writes the built-in template `name` into `dir` under its own name, for a product to be
/// started from (the file keeps the name, so a template error names it), and returns where.
pub fn write(name: &str, dir: &Path) -> Result<PathBuf, ProductError> {
    let text = template(name).ok_or_else(|| ProductError::Io {
        what: format!("no built-in template `{name}`"),
        source: std::io::ErrorKind::NotFound.into(),
    })?;
    let path = dir.join(name);
    std::fs::create_dir_all(dir).map_err(|e| io_error(format!("creating {}", dir.display()), e))?;
    std::fs::write(&path, text).map_err(|e| io_error(format!("writing {}", path.display()), e))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_templates_are_the_template_folder_as_it_is() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/live/templates");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let built_in: Vec<&str> = TEMPLATES.iter().map(|(n, _)| *n).collect();
        assert_eq!(built_in, names);
        for (name, text) in TEMPLATES {
            assert_eq!(*text, std::fs::read_to_string(dir.join(name)).unwrap());
        }
        assert!(template("no-such.conf").is_none());
    }
}
