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
//! | `{tls_listen}` | `127.0.0.1:PORT`, where it must listen for TLS (wss) |
//! | `{tls_listen_port}` | that `PORT` alone |
//! | `{cert}`, `{key}` | PEM files: the certificate for its TLS listener (signed by the CA the client trusts) and its key |
//! | `{cert_and_key}` | both in one PEM file |
//! | `{upstream_tls}` | `127.0.0.1:PORT`, the server's TLS (wss) port, for a proxy that encrypts again |
//! | `{upstream_tls_port}` | that `PORT` alone |
//! | `{ca}` | a PEM file: the CA that signed the server's certificate (which names the host `server`) |
//!
//! A reverse proxy's command ([`Role::Reverse`], the default) must name where to listen
//! (`{listen}` or `{listen_port}`) and its upstream (`{upstream}` or `{upstream_port}`, or
//! the TLS port's). One that names a TLS listener is a TLS-terminating proxy: it must name
//! the certificate for it (`{cert}` and `{key}`, or `{cert_and_key}`), and it is published
//! on port 443 as well, so wss runs go through it; a certificate named without a TLS
//! listener is an error. A forward proxy's ([`Role::Forward`]: `gauntlet gate --forward`)
//! must name where to listen and must not name an upstream or anything of TLS: each client
//! tells a forward proxy its destination in its `CONNECT`, and TLS runs end to end through
//! the tunnel, so an `{upstream}` there is an error rather than an address the proxy would
//! ignore or misuse. Any other `{name}` made of lowercase letters and `_` is an error naming
//! the known ones, so a misspelt placeholder is not passed on as text; other braces (`{}`,
//! `{"a": 1}`) pass through untouched.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};

use super::words::split;

/// The placeholders a command line may use, in the order the error messages list them.
pub const PLACEHOLDERS: [&str; 12] = [
    "listen",
    "listen_port",
    "upstream",
    "upstream_port",
    "tls_listen",
    "tls_listen_port",
    "cert",
    "key",
    "cert_and_key",
    "upstream_tls",
    "upstream_tls_port",
    "ca",
];

/// The placeholders of a TLS listener's certificate, which need a TLS listener.
const CERTIFICATE: [&str; 3] = ["cert", "key", "cert_and_key"];

/// The placeholders of TLS at the proxy (its listener, its certificate, the CA), which a
/// forward proxy's command has none of: TLS runs end to end through its tunnels.
const TLS: [&str; 6] = [
    "tls_listen",
    "tls_listen_port",
    "cert",
    "key",
    "cert_and_key",
    "ca",
];

/// The values a command line's placeholders are filled with ([`CommandLine::render_with`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filled {
    /// The port on 127.0.0.1 for `{listen}`.
    pub listen: u16,
    /// `{upstream}`.
    pub upstream: Option<SocketAddr>,
    /// The port on 127.0.0.1 for `{tls_listen}`.
    pub tls_listen: Option<u16>,
    /// `{upstream_tls}`.
    pub upstream_tls: Option<SocketAddr>,
    /// Files' paths by placeholder: `cert`, `key`, `cert_and_key`, `ca`.
    pub files: BTreeMap<String, String>,
}

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
         (or `{{upstream_port}}`, or `{{upstream_tls}}` for the server's TLS port) for the \
         addresses the harness gives it, got `{text}`"
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
    /// A TLS listener without its certificate.
    #[error(
        "a TLS listener (`{{tls_listen}}`) needs its certificate: the command must also \
         contain `{{cert}}` and `{{key}}` (or `{{cert_and_key}}`), got `{text}`"
    )]
    TlsCertificate {
        /// The command line.
        text: String,
    },
    /// A certificate without a TLS listener to serve it on.
    #[error(
        "`{{{name}}}` is the certificate of a TLS listener: the command must also contain \
         `{{tls_listen}}` (or `{{tls_listen_port}}`), got `{text}`"
    )]
    CertificateWithoutListener {
        /// The placeholder.
        name: String,
        /// The command line.
        text: String,
    },
    /// A forward proxy's command naming something of TLS.
    #[error(
        "a forward proxy's command has no `{{{name}}}`: TLS runs end to end through its \
         CONNECT tunnels; remove it from `{text}`"
    )]
    ForwardTls {
        /// The placeholder.
        name: String,
        /// The command line.
        text: String,
    },
    /// A placeholder the start has no value for.
    #[error("`{text}` needs a value for `{{{name}}}`, which this start does not give")]
    Unfilled {
        /// The placeholder.
        name: String,
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
        let has = |names: &[&str]| names.iter().any(|n| used.contains(n));
        let (listens, sends) = (
            has(&["listen", "listen_port"]),
            has(&[
                "upstream",
                "upstream_port",
                "upstream_tls",
                "upstream_tls_port",
            ]),
        );
        let tls_listener = has(&["tls_listen", "tls_listen_port"]);
        let text_ = || text.to_string();
        if role == Role::Forward {
            if let Some(name) = TLS.iter().find(|n| used.contains(n)) {
                return Err(CommandError::ForwardTls {
                    name: (*name).to_string(),
                    text: text_(),
                });
            }
        }
        if role == Role::Reverse {
            let certified = has(&["cert_and_key"]) || (has(&["cert"]) && has(&["key"]));
            if tls_listener && !certified {
                return Err(CommandError::TlsCertificate { text: text_() });
            }
            if let Some(name) = CERTIFICATE.iter().find(|n| used.contains(n)) {
                if !tls_listener {
                    return Err(CommandError::CertificateWithoutListener {
                        name: (*name).to_string(),
                        text: text_(),
                    });
                }
            }
        }
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

    /// Whether the command names `{name}` (or `{name_port}`, for the addresses).
    pub fn names(&self, name: &str) -> bool {
        let port = format!("{name}_port");
        self.words
            .iter()
            .flat_map(|w| placeholders(w))
            .any(|n| n == name || n == port)
    }

    /// Whether the command starts a TLS listener (`{tls_listen}`), so that it terminates wss.
    pub fn tls_listener(&self) -> bool {
        self.names("tls_listen")
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
        self.render_with(&Filled {
            listen,
            upstream,
            ..Filled::default()
        })
    }

    /// The words with every placeholder filled from `filled`, or an error naming the first
    /// one it has no value for.
    pub fn render_with(&self, filled: &Filled) -> Result<Vec<String>, CommandError> {
        let local = |port: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut values: BTreeMap<&str, String> = BTreeMap::new();
        let mut address = |name: &'static str, port: &'static str, addr: Option<SocketAddr>| {
            if let Some(addr) = addr {
                values.insert(name, addr.to_string());
                values.insert(port, addr.port().to_string());
            }
        };
        address("listen", "listen_port", Some(local(filled.listen)));
        // A forward proxy's command has no upstream placeholder to fill.
        if self.role == Role::Reverse {
            address("upstream", "upstream_port", filled.upstream);
            address("upstream_tls", "upstream_tls_port", filled.upstream_tls);
        }
        address(
            "tls_listen",
            "tls_listen_port",
            filled.tls_listen.map(local),
        );
        for (name, path) in &filled.files {
            if let Some(known) = PLACEHOLDERS.iter().find(|n| **n == name.as_str()) {
                values.insert(known, path.clone());
            }
        }
        self.words
            .iter()
            .map(|word| {
                let mut out = word.clone();
                for name in placeholders(word) {
                    let Some(value) = values.get(name) else {
                        return Err(if name.starts_with("upstream") && !name.contains("tls") {
                            CommandError::NoUpstream {
                                text: self.text.clone(),
                            }
                        } else {
                            CommandError::Unfilled {
                                name: name.to_string(),
                                text: self.text.clone(),
                            }
                        });
                    };
                    out = out.replace(&format!("{{{name}}}"), value);
                }
                Ok(out)
            })
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

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
            "unknown placeholder `{upstrem}` in `p {listen} {upstrem}` (known: {listen}, {listen_port}, {upstream}, {upstream_port}, {tls_listen}, {tls_listen_port}, {cert}, {key}, {cert_and_key}, {upstream_tls}, {upstream_tls_port}, {ca})"
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
    fn a_tls_listener_comes_with_its_certificate_and_fills_from_what_the_start_gives() {
        let line = CommandLine::parse(
            "p {listen} --tls {tls_listen_port} --cert {cert} --key {key} --to {upstream_tls} --ca {ca}",
        )
        .unwrap();
        assert!(line.tls_listener() && line.names("upstream_tls") && !line.names("upstream"));
        let files = [
            ("cert", "/d/c.pem"),
            ("key", "/d/k.pem"),
            ("ca", "/d/ca.pem"),
        ];
        let filled = Filled {
            listen: 8080,
            tls_listen: Some(8443),
            upstream_tls: "127.0.0.1:9443".parse().ok(),
            files: files
                .iter()
                .map(|(n, p)| (n.to_string(), p.to_string()))
                .collect(),
            ..Filled::default()
        };
        assert_eq!(
            line.render_with(&filled).unwrap().join(" "),
            "p 127.0.0.1:8080 --tls 8443 --cert /d/c.pem --key /d/k.pem --to 127.0.0.1:9443 --ca /d/ca.pem"
        );
        let unfilled = Filled {
            tls_listen: None,
            ..filled
        };
        assert_eq!(
            line.render_with(&unfilled).unwrap_err().to_string(),
            format!(
                "`{}` needs a value for `{{tls_listen_port}}`, which this start does not give",
                line.text()
            )
        );
        assert!(CommandLine::parse("p {listen} {tls_listen} {cert_and_key} {upstream}").is_ok());
        let err = CommandLine::parse("p {listen} {tls_listen} {cert} {upstream}").unwrap_err();
        assert!(matches!(err, CommandError::TlsCertificate { .. }), "{err}");
        let err = CommandLine::parse("p {listen} {key} {upstream}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`{key}` is the certificate of a TLS listener: the command must also contain `{tls_listen}` (or `{tls_listen_port}`), got `p {listen} {key} {upstream}`"
        );
        let err = CommandLine::parse_as("fwd {listen} {tls_listen}", Role::Forward).unwrap_err();
        assert!(matches!(err, CommandError::ForwardTls { .. }), "{err}");
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
