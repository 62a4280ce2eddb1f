//! Request fields that must reach the server as the client sent them (`[client.request.fields]`):
//! `Origin`, `Cookie`, `Authorization`, what an application's handshake depends on and what a
//! header allow-list, a WAF or a privacy filter on the way may drop or rewrite. The client
//! sends each field and names it, with its value, in the request's query
//! (`expect-field=NAME:VALUE`, percent-encoded: [`param`]); the reference server compares what
//! arrived with what was named ([`not_as_sent`]) and answers a difference with 403, saying
//! which field arrived as what. The query is what a proxy passes on untouched (the gate's
//! `handshake/deep-path-and-query` checks that), so the server learns what was sent from the
//! same request.

/// The query parameter's name.
pub const PARAM: &str = "expect-field";

/// `expect-field=NAME:VALUE`, NAME and VALUE percent-encoded but for unreserved characters
/// (RFC 3986 §2.3).
pub fn param(name: &str, value: &str) -> String {
    param_as(PARAM, name, value)
}

/// `PARAM=NAME:VALUE` for a query parameter `param` that names a field the way
/// [`PARAM`] does: the 101's fields ([`crate::endpoints::answer`]) are named so too.
pub(crate) fn param_as(param: &str, name: &str, value: &str) -> String {
    format!("{param}={}", encode(&format!("{name}:{value}")))
}

/// Each field a query names with `param`, in the query's order: its name and value, or the
/// parameter's value as given when it is not NAME:VALUE, percent-encoded.
pub(crate) fn named<'q>(
    query: &'q str,
    param: &'q str,
) -> impl Iterator<Item = Result<(String, String), &'q str>> + 'q {
    query.split('&').filter_map(move |pair| {
        let encoded = pair.strip_prefix(param)?.strip_prefix('=')?;
        Some(
            decode(encoded)
                .as_deref()
                .and_then(|d| d.split_once(':'))
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .ok_or(encoded),
        )
    })
}

/// The first field a query names that did not arrive as named: the line the refusal's body
/// carries. `field` gives a field's values as they arrived (joined by `, `; `-` for none).
/// A malformed `expect-field` is a difference too, saying so.
pub fn not_as_sent(query: &str, field: impl Fn(&str) -> String) -> Option<String> {
    for named in named(query, PARAM) {
        let (name, value) = match named {
            Ok(field) => field,
            Err(encoded) => {
                return Some(format!(
                    "`{PARAM}={encoded}` is not NAME:VALUE, percent-encoded.\n"
                ));
            }
        };
        let arrived = field(&name);
        if arrived != value {
            return Some(format!(
                "{name} arrived as `{arrived}`; the client sent `{value}`.\n"
            ));
        }
    }
    None
}

fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `text` percent-decoded, or `None` for a `%` not followed by two hex digits or bytes that
/// are not UTF-8.
fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_named_in_the_query_is_compared_with_what_arrived() {
        let cookie = "session=3q2+7w==; theme=dark";
        let query = format!("count=3&{}", param("Cookie", cookie));
        assert_eq!(
            query,
            "count=3&expect-field=Cookie%3Asession%3D3q2%2B7w%3D%3D%3B%20theme%3Ddark"
        );
        assert_eq!(not_as_sent(&query, |_| cookie.to_string()), None);
        assert_eq!(
            not_as_sent(&query, |_| "-".to_string()).as_deref(),
            Some("Cookie arrived as `-`; the client sent `session=3q2+7w==; theme=dark`.\n")
        );
        assert_eq!(not_as_sent("count=3", |_| "-".to_string()), None);
        let bad = not_as_sent("expect-field=Cookie%3", |_| String::new()).unwrap();
        assert!(bad.contains("is not NAME:VALUE"), "{bad}");
        let bad = not_as_sent("expect-field=Cookie", |_| String::new()).unwrap();
        assert!(bad.contains("is not NAME:VALUE"), "{bad}");
    }
}
