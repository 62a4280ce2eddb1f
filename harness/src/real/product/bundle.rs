//! Templates that are several files: Apache Traffic Server reads a folder of configuration
//! files (`records.config`, `remap.config`, `ip_allow.yaml`, …), so its template is one file
//! cut into parts by marker lines, `#=== file NAME ===` (a comment to every format it holds),
//! each part written to `NAME` in the working directory.

use std::path::Path;

use super::ProductError;
use super::error::io_error;

/// What starts a marker line, before the file's name.
const MARK: &str = "#=== file ";

/// The parts of `text`: each marker's file name and the lines up to the next marker (the
/// text before the first marker, the template's header, belongs to none).
pub(super) fn parts(text: &str) -> Vec<(&str, String)> {
    let mut parts: Vec<(&str, String)> = Vec::new();
    for line in text.split_inclusive('\n') {
        let name = line
            .trim_end()
            .strip_prefix(MARK)
            .and_then(|rest| rest.strip_suffix(" ==="));
        match (name, parts.last_mut()) {
            (Some(name), _) => parts.push((name.trim(), String::new())),
            (None, Some((_, body))) => body.push_str(line),
            (None, None) => {}
        }
    }
    parts
}

/// Writes every part of the rendered `text` into `dir`; a file name that is not a plain
/// name is an error naming `template`.
pub(super) fn write(text: &str, template: &Path, dir: &Path) -> Result<(), ProductError> {
    for (name, body) in parts(text) {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(io_error(
                format!(
                    "{}: `{MARK}{name} ===` is not a plain file name",
                    template.display()
                ),
                std::io::ErrorKind::InvalidInput.into(),
            ));
        }
        let path = dir.join(name);
        std::fs::write(&path, body)
            .map_err(|e| io_error(format!("cannot write {}", path.display()), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_is_cut_at_its_markers() {
        let text = "# header\n#=== file a.config ===\nx 1\n# kept\n#=== file b.yaml ===\ny: 2\n";
        let parts = parts(text);
        assert_eq!(
            parts,
            [
                ("a.config", "x 1\n# kept\n".to_string()),
                ("b.yaml", "y: 2\n".to_string())
            ]
        );
        let dir = std::env::temp_dir().join(format!("gauntlet-bundle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = write("#=== file ../x ===\n", Path::new("t.conf"), &dir).unwrap_err();
        assert!(bad.to_string().contains("not a plain file name"), "{bad}");
        write(text, Path::new("t.conf"), &dir).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("b.yaml")).unwrap(),
            "y: 2\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
