//! Configuration templates: `{{name}}` placeholders replaced by values.
//!
//! The syntax is two opening braces, a name of ASCII letters, digits and `_` (spaces around
//! it are allowed), and two closing braces: `listen 127.0.0.1:{{listen}};`. Single braces
//! are left alone, so nginx's `server { … }` blocks need no escaping; none of the products
//! Gauntlet starts uses `{{` in its own syntax, so there is no escape for it. Every
//! placeholder must have a value; values nobody uses are fine (callers pass the same set to
//! several templates).

use std::collections::BTreeMap;
use std::path::Path;

use super::ProductError;

/// Replaces every `{{name}}` in `text` with `values[name]`. `origin` names the template in
/// errors, which give its line and the placeholder at fault.
pub fn render(
    text: &str,
    origin: &Path,
    values: &BTreeMap<String, String>,
) -> Result<String, ProductError> {
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let rendered = render_line(line, values).map_err(|message| ProductError::Template {
            file: origin.to_path_buf(),
            line: index + 1,
            message,
        })?;
        out.push_str(&rendered);
    }
    Ok(out)
}

/// One line, or what is wrong with it.
fn render_line(line: &str, values: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(format!(
                "`{{{{` without a closing `}}}}` in `{}`",
                line.trim_end()
            ));
        };
        let name = after[..close].trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "`{{{{{}}}}}` is not a placeholder: names are ASCII letters, digits and `_`",
                &after[..close]
            ));
        }
        let Some(value) = values.get(name) else {
            let known: Vec<&str> = values.keys().map(String::as_str).collect();
            return Err(format!(
                "unknown placeholder `{{{{{name}}}}}` (known: {})",
                known.join(", ")
            ));
        };
        out.push_str(value);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
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
    fn text_without_placeholders_is_unchanged() {
        let text = "a { b } }} {\n";
        assert_eq!(render(text, Path::new("t"), &values()).unwrap(), text);
    }
}
