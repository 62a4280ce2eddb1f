//! `[[path]]`, its hops in order (only the last may balance among several backends; a
//! product's template resolved against the scenario's folder, each of its `values` a
//! placeholder there), `twin`, and `[[faults]]`, which crash servers of that path.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::Source;
use crate::real::product::template;
use crate::scenario::raw::RawFault;
use crate::scenario::{Fault, Hop, ScenarioError, host_names};

/// The folder of the scenario file, against which the paths it names are resolved.
fn folder(src: Source<'_>) -> &Path {
    Path::new(src.file).parent().unwrap_or(Path::new(""))
}

/// `[[path]]`: the hops, each product's template an existing file.
pub(super) fn hops(src: Source<'_>, path: Vec<Spanned<Hop>>) -> Result<Vec<Hop>, ScenarioError> {
    let last = path.len().saturating_sub(1);
    for (i, hop) in path.iter().enumerate() {
        if i < last && hop.get_ref().backends() > 1 {
            return Err(src.fail(
                hop.span(),
                format!(
                    "hop {} balances among {} backends, but only the last hop may have more than one",
                    i + 1,
                    hop.get_ref().backends()
                ),
            ));
        }
    }
    let mut hops: Vec<Hop> = Vec::with_capacity(path.len());
    for hop in path {
        let span = hop.span();
        let mut hop = hop.into_inner();
        if let Hop::Product(p) = &mut hop {
            p.template = folder(src).join(&p.template);
            if !p.template.is_file() {
                return Err(src.fail(
                    span,
                    format!("template `{}` is not a file", p.template.display()),
                ));
            }
            // A value no placeholder takes would be ignored: a misspelt name.
            if !p.values.is_empty() {
                let text = std::fs::read_to_string(&p.template).unwrap_or_default();
                let used = template::placeholders(&text);
                if let Some(name) = p.values.keys().find(|n| !used.contains(*n)) {
                    let names: Vec<&str> = used.iter().map(String::as_str).collect();
                    return Err(src.fail(
                        span,
                        format!(
                            "`values.{name}`: template `{}` has no placeholder `{{{{{name}}}}}` (its placeholders: {})",
                            p.template.display(),
                            names.join(", ")
                        ),
                    ));
                }
            }
        }
        hops.push(hop);
    }
    Ok(hops)
}

/// `twin`: another scenario file, resolved against this one's folder.
pub(super) fn twin(
    src: Source<'_>,
    twin: Option<Spanned<PathBuf>>,
) -> Result<Option<PathBuf>, ScenarioError> {
    let Some(t) = twin else {
        return Ok(None);
    };
    let resolved = lexical(&folder(src).join(t.get_ref()));
    if !resolved.is_file() {
        return Err(src.fail(
            t.span(),
            format!("twin `{}` is not a file", resolved.display()),
        ));
    }
    Ok(Some(resolved))
}

/// `path` with `.` and `dir/..` pairs removed, without touching the file system: a twin named
/// `../seeds/x.toml` from `scenarios/live/` reads as `scenarios/seeds/x.toml`.
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.iter().collect()
}

/// `[[faults]]`: each crashes a server of `path`.
pub(super) fn faults(
    src: Source<'_>,
    faults: Vec<RawFault>,
    path: &[Hop],
) -> Result<Vec<Fault>, ScenarioError> {
    let (_, servers) = host_names(path);
    let mut out = Vec::new();
    for f in faults {
        if !servers.contains(f.crash.get_ref()) {
            return Err(src.fail(
                f.crash.span(),
                format!(
                    "`crash` names `{}`, which is not a server of this path (servers: {})",
                    f.crash.get_ref(),
                    servers.join(", ")
                ),
            ));
        }
        out.push(Fault {
            at: Duration::from_millis(f.at_ms),
            crash: f.crash.into_inner(),
        });
    }
    Ok(out)
}
