//! Reading the text of a scenario file into TOML values that are sure not to break the reader
//! (`text.rs`: keys nested too deep, milliseconds beyond [`MAX_MS`]), then validating each
//! table with a function of its own: here the file's own keys (`format`, `title`, `source`,
//! `seeds`); `strategy.rs` the schemes or strategies and the strategies' parameters;
//! `client.rs` the schemes, `[client]` and `[server]`; `request.rs` `[client.request]`;
//! `workload.rs` `[client.workload]`; `expect.rs` `[expect]` and `[bounds]`; `path.rs`
//! `[[path]]`, `twin` and `[[faults]]`. [`parse`] calls them in a fixed order, one line each, so a file with
//! several mistakes always gets the same first one.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::error::locate;
use super::raw::RawScenario;
use super::{FORMAT, MAX_FILE_BYTES, MAX_MS, Scenario, ScenarioError};
use text::MAX_KEY_PARTS;

pub(crate) use text::millisecond_beyond_limit;

mod client;
mod expect;
mod path;
mod reconnect;
mod request;
mod strategy;
mod text;
mod workload;

/// The text being read and the name of its file: where each mistake is located.
#[derive(Clone, Copy)]
struct Source<'a> {
    file: &'a str,
    text: &'a str,
}

impl Source<'_> {
    /// The error `message` at the start of `span`.
    fn fail(self, span: Range<usize>, message: impl Into<String>) -> ScenarioError {
        locate(self.file, self.text, span.start, message.into())
    }

    /// The milliseconds of `v`, which must be at least 1 (`name` says whose).
    fn positive(self, v: &Spanned<u64>, name: &str) -> Result<Duration, ScenarioError> {
        if *v.get_ref() == 0 {
            Err(self.fail(v.span(), format!("`{name}` must be at least 1")))
        } else {
            Ok(Duration::from_millis(*v.get_ref()))
        }
    }
}

/// Reads and validates a scenario file (of at most [`MAX_FILE_BYTES`]).
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let bytes = crate::files::read_file(path, MAX_FILE_BYTES, "a scenario file").map_err(|e| {
        ScenarioError {
            file: file.clone(),
            line: 1,
            col: 1,
            message: format!("cannot read the file: {e}"),
            excerpt: None,
        }
    })?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => parse(&file, text),
        Err(e) => {
            let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
            Err(locate(
                &file,
                valid,
                valid.len(),
                format!(
                    "the file is not UTF-8 text (invalid byte 0x{:02x})",
                    bytes[e.valid_up_to()]
                ),
            ))
        }
    }
}

/// Parses and validates scenario text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let src = Source { file, text };
    let raw = read(src)?;
    header(src, &raw)?;
    let seeds = seeds(src, raw.seeds)?;
    let (schemes, kinds) = strategy::listed(src, &raw.client)?;
    let (expect, expect_strategies) = expect::expect(src, raw.expect, &schemes, &kinds)?;
    let path_is_empty = raw.path.is_empty();
    let reset_at = (raw.client.get_ref().workload.client_reset.as_ref()).map(toml::Spanned::span);
    let client = client::client(src, raw.client, schemes, &kinds, path_is_empty)?;
    let path = path::hops(src, raw.path)?;
    if let (true, Some(at), Some(last)) = (client.workload.client_reset, reset_at, path.last()) {
        if last.backends() > 1 {
            return Err(src.fail(
                at,
                format!(
                    "`client-reset` asks the server whether the reset reached it: not through a last hop that balances over {} servers, where the question may reach another",
                    last.backends()
                ),
            ));
        }
    }
    let twin = path::twin(src, raw.twin)?;
    let faults = path::faults(src, raw.faults, &path)?;
    let server = client::server(src, raw.server, &client.schemes, &kinds)?;
    let bounds = expect::bounds(src, raw.bounds)?;
    Ok(Scenario {
        file: file.to_string(),
        title: raw.title.into_inner(),
        source: raw.source.into_inner(),
        tags: raw.tags,
        seeds,
        network: raw.network,
        path,
        twin,
        faults,
        client,
        server,
        expect,
        expect_strategies,
        strategy: None,
        bounds,
    })
}

/// The file's TOML, every millisecond value in it within [`MAX_MS`].
fn read(src: Source<'_>) -> Result<RawScenario, ScenarioError> {
    let raw: RawScenario = toml::from_str(src.text).map_err(|e| {
        // The reader's nesting limit comes without a location: find the key that hit it.
        if let (None, Some((at, parts))) = (e.span(), text::deep_key(src.text)) {
            return locate(
                src.file,
                src.text,
                at,
                format!(
                    "this key has {parts} dotted parts; at most {MAX_KEY_PARTS} are allowed (TOML readers nest tables no deeper)"
                ),
            );
        }
        let at = e.span().map_or(0, |s| s.start);
        locate(src.file, src.text, at, e.message().trim_end().to_string())
    })?;
    if let Some((key, value, span)) = text::millisecond_beyond_limit(src.text) {
        return Err(src.fail(
            span,
            format!("`{key}` must be at most {MAX_MS} (365 days), got {value}"),
        ));
    }
    Ok(raw)
}

/// `format`, which this build must read, and `title` and `source`, which must say something.
fn header(src: Source<'_>, raw: &RawScenario) -> Result<(), ScenarioError> {
    if *raw.format.get_ref() != FORMAT {
        return Err(src.fail(
            raw.format.span(),
            format!(
                "format {} is not supported: this build reads format {FORMAT}",
                raw.format.get_ref()
            ),
        ));
    }
    for (field, value) in [("title", &raw.title), ("source", &raw.source)] {
        if value.get_ref().trim().is_empty() {
            return Err(src.fail(value.span(), format!("`{field}` must not be empty")));
        }
    }
    Ok(())
}

/// `seeds`: at least one if given, `[1]` if not.
fn seeds(src: Source<'_>, seeds: Option<Spanned<Vec<u64>>>) -> Result<Vec<u64>, ScenarioError> {
    match seeds {
        None => Ok(vec![1]),
        Some(s) if s.get_ref().is_empty() => {
            Err(src.fail(s.span(), "`seeds` must list at least one seed"))
        }
        Some(s) => Ok(s.into_inner()),
    }
}

#[cfg(test)]
mod tests;
