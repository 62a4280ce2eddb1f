//! [`ScenarioError`], a mistake in a scenario file located by file, line and column with the
//! offending line, and `locate`, which turns a byte offset into that location.

use std::fmt;

/// A mistake in a scenario file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file, as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// What is wrong and what was expected.
    pub message: String,
    /// The offending source line, if there is one.
    pub excerpt: Option<String>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )?;
        if let Some(line) = &self.excerpt {
            let gutter = " ".repeat(self.line.to_string().len());
            write!(
                f,
                "\n{gutter} |\n{} | {line}\n{gutter} | {}^",
                self.line,
                " ".repeat(self.col.saturating_sub(1))
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

/// Every error of a list, one after another, a line apart.
pub(crate) fn joined(errors: &[ScenarioError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A [`ScenarioError`] at byte offset `at` of `text`.
pub(crate) fn locate(file: &str, text: &str, at: usize, message: String) -> ScenarioError {
    let at = at.min(text.len());
    let at = (0..=at)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    // A CR before the LF ends the line with it (CRLF): it is no column of the line.
    let mut in_line = &text[line_start..at];
    if text[at..].starts_with('\n') {
        in_line = in_line.strip_suffix('\r').unwrap_or(in_line);
    }
    let col = in_line.chars().count() + 1;
    let excerpt = text[line_start..].lines().next().map(str::to_string);
    ScenarioError {
        file: file.to_string(),
        line,
        col,
        message,
        excerpt,
    }
}
