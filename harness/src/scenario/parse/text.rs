//! What is read from a scenario's text beside the TOML reader: millisecond values beyond
//! [`MAX_MS`] at any depth, and the key whose dotted parts pass the reader's nesting limit,
//! which the reader refuses without saying where.

use toml::Spanned;

use crate::scenario::MAX_MS;

/// The first millisecond value in `text` above [`MAX_MS`], in document order: its key, the
/// value as written, and where the value is. A millisecond value is an integer under a key
/// named `ms` or ending in `-ms`, at any depth, hop parameters included, so every model's
/// timers are held to the same limit as the harness's own.
pub(crate) fn millisecond_beyond_limit(
    text: &str,
) -> Option<(String, String, std::ops::Range<usize>)> {
    use toml::de::{DeTable, DeValue};
    type Found = Option<(String, String, std::ops::Range<usize>)>;
    fn in_table(text: &str, table: &DeTable<'_>) -> Found {
        table
            .iter()
            .find_map(|(key, value)| in_value(text, key.get_ref(), value))
    }
    fn in_value(text: &str, key: &str, value: &Spanned<DeValue<'_>>) -> Found {
        match value.get_ref() {
            DeValue::Integer(n) if key == "ms" || key.ends_with("-ms") => {
                let beyond = i128::from_str_radix(n.as_str(), n.radix())
                    .map_or(true, |n| n > i128::from(MAX_MS));
                let span = value.span();
                let written = text.get(span.clone()).unwrap_or(n.as_str()).to_string();
                beyond.then(|| (key.to_string(), written, span))
            }
            DeValue::Table(table) => in_table(text, table),
            DeValue::Array(items) => items.iter().find_map(|v| in_value(text, key, v)),
            _ => None,
        }
    }
    let doc = DeTable::parse(text).ok()?;
    in_table(text, doc.get_ref())
}

/// The most dotted parts a key may have: the `toml` crate, like other TOML readers, nests
/// tables at most 80 deep, and refuses a deeper key without saying where it is.
pub(super) const MAX_KEY_PARTS: usize = 80;

/// The first key in `text` of more than [`MAX_KEY_PARTS`] dotted parts: where it starts and
/// how many parts it has. Reads TOML only as far as keys need: a key is bare (`a-z`, `A-Z`,
/// `0-9`, `_`, `-`) or quoted parts joined by dots, with spaces or tabs around them; comments
/// and strings are skipped whole, so dots inside them are not keys. A value such as `1.5`
/// reads as a key of two parts, far below the limit.
pub(super) fn deep_key(text: &str) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let bare = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    // The current run of parts: where it starts and how many; whether a dot follows its last.
    let mut run: Option<(usize, usize)> = None;
    let mut dotted = false;
    let mut i = 0;
    while i < bytes.len() {
        let part_end = match bytes[i] {
            b'"' | b'\'' => Some(string_end(bytes, i)),
            b if bare(b) => Some(i + bytes[i..].iter().take_while(|b| bare(**b)).count()),
            _ => None,
        };
        if let Some(end) = part_end {
            run = match run {
                Some((start, parts)) if dotted => Some((start, parts + 1)),
                Some((start, parts)) if parts > MAX_KEY_PARTS => return Some((start, parts)),
                _ => Some((i, 1)),
            };
            dotted = false;
            i = end;
            continue;
        }
        match bytes[i] {
            b'.' if run.is_some() && !dotted => dotted = true,
            b' ' | b'\t' => {}
            b => {
                if let Some(deep) = run.take().filter(|r| r.1 > MAX_KEY_PARTS) {
                    return Some(deep);
                }
                dotted = false;
                if b == b'#' {
                    i += bytes[i..].iter().take_while(|b| **b != b'\n').count();
                    continue;
                }
            }
        }
        i += 1;
    }
    run.filter(|r| r.1 > MAX_KEY_PARTS)
}

/// Where the TOML string starting at `bytes[start]` (a `"` or `'`) ends: just past its closing
/// quote, or at the end of its line if it has none (of the text, for a multi-line string).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let triple = bytes[start..].starts_with(&[quote; 3]);
    let mut i = start + if triple { 3 } else { 1 };
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote == b'"' => i += 2,
            b'\n' if !triple => return i,
            b if b == quote && !triple => return i + 1,
            b if b == quote && bytes[i..].starts_with(&[quote; 3]) => {
                // Up to two quotes more are the string's own last characters.
                let extra = bytes[i + 3..]
                    .iter()
                    .take(2)
                    .take_while(|b| **b == quote)
                    .count();
                return i + 3 + extra;
            }
            _ => i += 1,
        }
    }
    bytes.len()
}
