//! Configuration templates: `{{name}}` placeholders replaced by values.
//!
//! The syntax is two opening braces, a name of ASCII letters, digits and `_` (spaces around
//! it are allowed), and two closing braces: `listen 127.0.0.1:{{listen}};`. Single braces
//! are left alone, so nginx's `server { … }` blocks need no escaping; none of the products
//! Gauntlet starts uses `{{` in its own syntax, so there is no escape for it. Every
//! placeholder must have a value; values nobody uses are fine (callers pass the same set to
//! several templates).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::ProductError;
use super::error::TemplateError;

/// Replaces every `{{name}}` in `text` with `values[name]`. `origin` names the template in
/// errors, which give its line and the placeholder at fault.
pub fn render(
    text: &str,
    origin: &Path,
    values: &BTreeMap<String, String>,
) -> Result<String, ProductError> {
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let rendered = render_line(line, values).map_err(|error| ProductError::Template {
            file: origin.to_path_buf(),
            line: index + 1,
            error,
        })?;
        out.push_str(&rendered);
    }
    Ok(out)
}

/// The names of the placeholders `text` uses, each once (lines that are not well formed
/// name none: [`render`] says what is wrong with them).
pub fn placeholders(text: &str) -> BTreeSet<String> {
    text.split_inclusive('\n')
        .filter_map(|line| pieces(line).ok())
        .flatten()
        .filter_map(|piece| match piece {
            Piece::Name(name) => Some(name.to_string()),
            Piece::Text(_) => None,
        })
        .collect()
}

/// One line, or what is wrong with it.
fn render_line(line: &str, values: &BTreeMap<String, String>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(line.len());
    for piece in pieces(line)? {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Name(name) => match values.get(name) {
                Some(value) => out.push_str(value),
                None => {
                    return Err(TemplateError::Unknown {
                        name: name.to_string(),
                        known: values.keys().cloned().collect(),
                    });
                }
            },
        }
    }
    Ok(out)
}

/// A piece of a template's line.
enum Piece<'a> {
    /// Text, as it stands.
    Text(&'a str),
    /// A placeholder's name.
    Name(&'a str),
}

/// `line` as text and placeholders, or what is wrong with it.
fn pieces(line: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(open) = rest.find("{{") {
        out.push(Piece::Text(&rest[..open]));
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(TemplateError::Unclosed {
                line: line.trim_end().to_string(),
            });
        };
        let name = after[..close].trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(TemplateError::NotAName {
                inner: after[..close].to_string(),
            });
        }
        out.push(Piece::Name(name));
        rest = &after[close + 2..];
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> BTreeMap<String, String> {
        [("listen", "8080"), ("upstream", "127.0.0.1:9000")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn err(text: &str) -> String {
        render(text, Path::new("t.conf"), &values())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn placeholders_are_replaced_and_single_braces_kept() {
        let text =
            "server {\n  listen 127.0.0.1:{{listen}};\n  proxy_pass http://{{ upstream }}/;\n}\n";
        let out = render(text, Path::new("t.conf"), &values()).unwrap();
        assert_eq!(
            out,
            "server {\n  listen 127.0.0.1:8080;\n  proxy_pass http://127.0.0.1:9000/;\n}\n"
        );
    }

    #[test]
    fn an_unknown_placeholder_names_the_file_line_and_known_names() {
        assert_eq!(
            err("a\nb {{read_timeout}}\n"),
            "t.conf:2: unknown placeholder `{{read_timeout}}` (known: listen, upstream)"
        );
    }

    #[test]
    fn an_unclosed_or_malformed_placeholder_is_an_error() {
        assert!(err("x {{listen\n").starts_with("t.conf:1: `{{` without a closing `}}`"));
        assert!(err("{{a-b}}").contains("`{{a-b}}` is not a placeholder"));
        assert!(err("{{}}").contains("is not a placeholder"));
    }

    #[test]
    fn the_placeholders_a_template_uses_are_listed_once() {
        let names = placeholders("a {{listen}} {{ listen }}\n{{x_1}}\n{{y}} {{bad\n{ single }\n");
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["listen", "x_1"]);
    }

    #[test]
    fn text_without_placeholders_is_unchanged() {
        let text = "a { b } }} {\n";
        assert_eq!(render(text, Path::new("t"), &values()).unwrap(), text);
    }
}
