//! Command lines for any proxy program: `my-proxy --listen {listen} --upstream {upstream}`.
//!
//! A command line is split into words the way a shell splits simple words, without a shell:
//! whitespace separates words; `'…'` keeps everything literally; `"…"` keeps everything but
//! `\"` and `\\`, which stand for `"` and `\`; outside quotes, `\` keeps the next character.
//! Nothing else is special: no variables, globs, pipes or redirections.
//!
//! Then, in each word, the placeholders are replaced (a word stays one word whatever its value):
//!
//! | placeholder | value |
//! |---|---|
//! | `{listen}` | `127.0.0.1:PORT`, the address the program must listen on |
//! | `{listen_port}` | `PORT` alone |
//! | `{upstream}` | `127.0.0.1:PORT`, where it must send each connection |
//! | `{upstream_port}` | that `PORT` alone |
//!
//! A reverse proxy's command ([`Role::Reverse`], the default) must name where to listen
//! (`{listen}` or `{listen_port}`) and its upstream (`{upstream}` or `{upstream_port}`). A
//! forward proxy's ([`Role::Forward`]: `gauntlet gate --forward`) must name where to listen
//! and must not name an upstream: each client tells a forward proxy its destination in its
//! `CONNECT`, so an `{upstream}` there is an error rather than an address the proxy would
//! ignore or misuse. Any other `{name}` made of lowercase letters and `_` is an error naming
//! the four, so a misspelt placeholder is not passed on as text; other braces (`{}`,
//! `{"a": 1}`) pass through untouched.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};

/// The placeholders a command line may use, in the order the error messages list them.
pub const PLACEHOLDERS: [&str; 4] = ["listen", "listen_port", "upstream", "upstream_port"];

/// What is wrong with a command line: its words do not split, its placeholders are unknown
/// or not the ones its role needs, or it cannot be filled in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// A quote opened and never closed.
    #[error("unterminated {quote} quote in `{text}`")]
    Unterminated {
        /// The quote: `'` or `"`.
        quote: char,
        /// The command line.
        text: String,
    },
    /// A `\` with nothing after it.
    #[error("`{text}` ends with a lone `\\`")]
    LoneBackslash {
        /// The command line.
        text: String,
    },
    /// No words at all.
    #[error("the command line is empty")]
    Empty,
    /// A `{name}` that is not one of [`PLACEHOLDERS`].
    #[error("unknown placeholder `{{{name}}}` in `{text}` (known: {})", known())]
    UnknownPlaceholder {
        /// The name between the braces.
        name: String,
        /// The command line.
        text: String,
    },
    /// A reverse proxy's command without a listening address or an upstream.
    #[error(
        "the command must contain `{{listen}}` (or `{{listen_port}}`) and `{{upstream}}` \
         (or `{{upstream_port}}`) for the addresses the harness gives it, got `{text}`"
    )]
    ReverseAddresses {
        /// The command line.
        text: String,
    },
    /// A forward proxy's command without a listening address.
    #[error(
        "a forward proxy's command must contain `{{listen}}` (or `{{listen_port}}`) for \
         the address the harness gives it, got `{text}`"
    )]
    ForwardListen {
        /// The command line.
        text: String,
    },
    /// A forward proxy's command naming an upstream.
    #[error(
        "a forward proxy's command has no `{{upstream}}` or `{{upstream_port}}`: each \
         client names its destination in its CONNECT; remove it from `{text}`"
    )]
    ForwardUpstream {
        /// The command line.
        text: String,
    },
    /// A reverse proxy's command rendered without an upstream address.
    #[error("`{text}` needs an upstream for `{{upstream}}`")]
    NoUpstream {
        /// The command line.
        text: String,
    },
}

/// What kind of proxy a command starts, which decides the placeholders it needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Role {
    /// In front of a server: told its upstream by `{upstream}`.
    #[default]
    Reverse,
    /// Named by its clients as their proxy: told each destination by `CONNECT`.
    Forward,
}

/// A command line, split into words, placeholders not yet filled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandLine {
    text: String,
    words: Vec<String>,
    role: Role,
}

impl CommandLine {
    /// Splits `text` into words and checks its placeholders for a reverse proxy (see the
    /// module's documentation), or says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, CommandError> {
        Self::parse_as(text, Role::Reverse)
    }

    /// Splits `text` into words and checks its placeholders for a proxy of `role`, or says
    /// what is wrong with it.
    pub fn parse_as(text: &str, role: Role) -> Result<Self, CommandError> {
        let words = split(text)?;
        if words.is_empty() {
            return Err(CommandError::Empty);
        }
        let mut used = Vec::new();
        for word in &words {
            for name in placeholders(word) {
                if !PLACEHOLDERS.contains(&name) {
                    return Err(CommandError::UnknownPlaceholder {
                        name: name.to_string(),
                        text: text.to_string(),
                    });
                }
                used.push(name);
            }
        }
        let has = |names: [&str; 2]| names.iter().any(|n| used.contains(n));
        let (listens, sends) = (
            has(["listen", "listen_port"]),
            has(["upstream", "upstream_port"]),
        );
        match role {
            Role::Reverse if !listens || !sends => Err(CommandError::ReverseAddresses {
                text: text.to_string(),
            }),
            Role::Forward if !listens => Err(CommandError::ForwardListen {
                text: text.to_string(),
            }),
            Role::Forward if sends => Err(CommandError::ForwardUpstream {
                text: text.to_string(),
            }),
            _ => Ok(CommandLine {
                text: text.to_string(),
                words,
                role,
            }),
        }
    }

    /// Whether the command starts a reverse or a forward proxy.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The command line as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The program: the first word, as written.
    pub fn program(&self) -> &str {
        self.words.first().map_or("", String::as_str)
    }

    /// A short name for messages and logs: the program's file name.
    pub fn name(&self) -> &str {
        let program = self.program();
        program.rsplit('/').next().unwrap_or(program)
    }

    /// The words with the placeholders filled for a program listening on 127.0.0.1:`listen`
    /// and sending to `upstream`, or an error if the command needs an upstream (a reverse
    /// proxy's) and has none.
    pub fn render(
        &self,
        listen: u16,
        upstream: Option<SocketAddr>,
    ) -> Result<Vec<String>, CommandError> {
        let upstream = match (self.role, upstream) {
            (Role::Reverse, None) => {
                return Err(CommandError::NoUpstream {
                    text: self.text.clone(),
                });
            }
            (Role::Reverse, Some(addr)) => Some(addr),
            // A forward proxy's command has no upstream placeholder to fill.
            (Role::Forward, _) => None,
        };
        let listen_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, listen));
        let mut values = vec![
            ("listen", listen_addr.to_string()),
            ("listen_port", listen.to_string()),
        ];
        if let Some(addr) = upstream {
            values.push(("upstream", addr.to_string()));
            values.push(("upstream_port", addr.port().to_string()));
        }
        Ok(self
            .words
            .iter()
            .map(|word| {
                let mut out = word.clone();
                for (name, value) in &values {
                    out = out.replace(&format!("{{{name}}}"), value);
                }
                out
            })
            .collect())
    }
}

impl fmt::Display for CommandLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `{listen}`, `{listen_port}`, … for messages.
fn known() -> String {
    PLACEHOLDERS.map(|n| format!("{{{n}}}")).join(", ")
}

/// The `{name}` placeholders in `word`, where `name` is lowercase ASCII letters and `_`.
fn placeholders(word: &str) -> impl Iterator<Item = &str> {
    word.split('{').skip(1).filter_map(|after| {
        let name = &after[..after.find('}')?];
        let is_name = !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        is_name.then_some(name)
    })
}

/// Splits a command line into words (see the module's documentation).
fn split(text: &str) -> Result<Vec<String>, CommandError> {
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

    #[test]
    fn placeholders_fill_inside_words() {
        let line = CommandLine::parse(
            "./my-proxy --listen={listen} -p {listen_port} '--to {upstream}' {upstream_port} {}",
        )
        .unwrap();
        assert_eq!(line.name(), "my-proxy");
        let upstream = "127.0.0.1:9000".parse().unwrap();
        assert_eq!(
            line.render(8080, Some(upstream)).unwrap(),
            [
                "./my-proxy",
                "--listen=127.0.0.1:8080",
                "-p",
                "8080",
                "--to 127.0.0.1:9000",
                "9000",
                "{}"
            ]
        );
    }

    #[test]
    fn a_command_must_say_where_to_listen_and_where_to_send() {
        let err = CommandLine::parse("my-proxy --port 8080")
            .unwrap_err()
            .to_string();
        assert!(err.contains("must contain `{listen}`"), "{err}");
        let err = CommandLine::parse("my-proxy {listen}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`{upstream}`"), "{err}");
        assert!(CommandLine::parse("p {listen_port} {upstream_port}").is_ok());
        let err = CommandLine::parse("p {listen} {upstrem}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown placeholder `{upstrem}` in `p {listen} {upstrem}` (known: {listen}, {listen_port}, {upstream}, {upstream_port})"
        );
        assert_eq!(CommandLine::parse(""), Err(CommandError::Empty));
        let err = CommandLine::parse("p {listen} {upstream}")
            .unwrap()
            .render(1, None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`p {listen} {upstream}` needs an upstream for `{upstream}`"
        );
    }

    #[test]
    fn a_forward_proxy_listens_and_is_told_no_upstream() {
        let line = CommandLine::parse_as("fwd --port {listen_port}", Role::Forward).unwrap();
        assert_eq!(line.role(), Role::Forward);
        assert_eq!(line.render(3128, None).unwrap(), ["fwd", "--port", "3128"]);
        let upstream = "127.0.0.1:9000".parse().ok();
        assert_eq!(
            line.render(3128, upstream).unwrap(),
            ["fwd", "--port", "3128"]
        );
        let err = CommandLine::parse_as("fwd {listen} {upstream}", Role::Forward)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no `{upstream}`") && err.contains("CONNECT"),
            "{err}"
        );
        let err = CommandLine::parse_as("fwd {upstream_port}", Role::Forward)
            .unwrap_err()
            .to_string();
        assert!(err.contains("must contain `{listen}`"), "{err}");
        let err = CommandLine::parse_as("fwd {listen} {upstrem}", Role::Forward)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("unknown placeholder"), "{err}");
        assert_eq!(
            CommandLine::parse("p {listen} {upstream}").unwrap().role(),
            Role::Reverse
        );
    }
}
