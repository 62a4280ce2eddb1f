//! Splitting a command line into words the way a shell splits simple words, without a shell
//! (see [`command`](super::command)): whitespace separates words; `'…'` keeps everything
//! literally; `"…"` keeps everything but `\"` and `\\`, which stand for `"` and `\`; outside
//! quotes, `\` keeps the next character.

use super::command::CommandError;

/// Splits a command line into words (see the module's documentation).
pub(super) fn split(text: &str) -> Result<Vec<String>, CommandError> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => current.push(c),
                        None => return Err(unterminated('\'', text)),
                    }
                }
            }
            '"' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => current.push(c),
                            Some(c) => {
                                current.push('\\');
                                current.push(c);
                            }
                            None => return Err(unterminated('"', text)),
                        },
                        Some(c) => current.push(c),
                        None => return Err(unterminated('"', text)),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => {
                    return Err(CommandError::LoneBackslash {
                        text: text.to_string(),
                    });
                }
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

fn unterminated(quote: char, text: &str) -> CommandError {
    CommandError::Unterminated {
        quote,
        text: text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_on_whitespace_and_quotes_group_them() {
        let words = split(r#"a  'b c' "d \"e\" \\ \n" f\ g '' h"#).unwrap();
        assert_eq!(words, ["a", "b c", r#"d "e" \ \n"#, "f g", "", "h"]);
        assert_eq!(split("   ").unwrap(), Vec::<String>::new());
        assert_eq!(
            split("a 'b").unwrap_err().to_string(),
            "unterminated ' quote in `a 'b`"
        );
        assert!(
            split("a \"b")
                .unwrap_err()
                .to_string()
                .contains("unterminated \" quote")
        );
        assert_eq!(
            split("a \\").unwrap_err().to_string(),
            "`a \\` ends with a lone `\\`"
        );
    }
}
