//! What the upgrade request's query asks of the server's answer (`[client.request]`), each
//! something an intermediary on the way may get wrong, and how the client checks what came
//! back:
//!
//! - `reply-field=NAME:VALUE` (named as [`crate::endpoints::fields`] names a request's
//!   fields): the 101 carries the field, and the client must find it as the server sent it
//!   ([`reply_fields_differ`]). A 101 is a response like any other; its end-to-end fields
//!   (RFC 9110 §6.3), such as the affinity cookie a balancer or the application sets, are
//!   the client's.
//! - `refuse=STATUS`: the server refuses the upgrade with STATUS, `Retry-After`, a JSON
//!   `Content-Type` and a 1 KiB body ([`refusal_body`]), and the client must get all of it
//!   back ([`refusal_differs`]): an application tells its client why (an expired token, a
//!   server draining), and a proxy that swaps in its own error page hides it.
//! - `push-with-101`: the server writes its first push in the same write as the 101, so the
//!   two arrive in one segment (one TLS record for wss). A proxy that reads the response head
//!   and forgets what came after it in the same read loses the first message.

use std::collections::BTreeMap;

use gauntlet_proxies::http::Head;

use crate::endpoints::fields;

/// The parameter naming a field the 101 carries.
pub const REPLY_PARAM: &str = "reply-field";

/// The parameter asking for a refusal with its status.
pub const REFUSE_PARAM: &str = "refuse";

/// The parameter asking for the first push in the 101's write.
pub const PUSH_WITH_101_PARAM: &str = "push-with-101";

/// The refusal's `Retry-After` (RFC 9110 §10.2.3), in seconds.
pub const RETRY_AFTER: &str = "30";

/// The refusal's `Content-Type`.
pub const REFUSAL_TYPE: &str = "application/json";

/// The refusal body's length: more than a proxy's own short error pages, one segment.
pub const REFUSAL_BYTES: usize = 1024;

/// The statuses a refusal may have: the client's and the server's errors (RFC 9110 §15.5,
/// §15.6).
pub const REFUSAL_STATUSES: std::ops::RangeInclusive<u16> = 400..=599;

/// The query parameters asking for `reply_fields`, a refusal with `refuse`, and the first
/// push in the 101's write, in that order.
pub fn query(
    reply_fields: &BTreeMap<String, String>,
    refuse: Option<u16>,
    push_with_101: bool,
) -> Vec<String> {
    let mut params: Vec<String> = (reply_fields.iter())
        .map(|(name, value)| fields::param_as(REPLY_PARAM, name, value))
        .collect();
    if let Some(status) = refuse {
        params.push(format!("{REFUSE_PARAM}={status}"));
    }
    if push_with_101 {
        params.push(format!("{PUSH_WITH_101_PARAM}=1"));
    }
    params
}

/// The fields `query` asks the 101 to carry, in its order; one not NAME:VALUE is skipped (the
/// client, which asked, finds it missing).
pub fn reply_fields(query: &str) -> Vec<(String, String)> {
    fields::named(query, REPLY_PARAM).flatten().collect()
}

/// The status `query` asks the server to refuse with, if one in [`REFUSAL_STATUSES`].
pub fn refusal(query: &str) -> Option<u16> {
    query
        .split('&')
        .filter_map(|pair| pair.strip_prefix(REFUSE_PARAM)?.strip_prefix('='))
        .find_map(|v| v.parse().ok())
        .filter(|s| REFUSAL_STATUSES.contains(s))
}

/// Whether `query` asks for the first push in the 101's write.
pub fn push_with_101(query: &str) -> bool {
    query
        .split('&')
        .any(|pair| pair == format!("{PUSH_WITH_101_PARAM}=1"))
}

/// The refusal's body for `status`: JSON naming the status and why, padded with letters to
/// [`REFUSAL_BYTES`].
pub fn refusal_body(status: u16) -> String {
    let mut body =
        format!("{{\"status\":{status},\"error\":\"refused, as the request asked\",\"detail\":\"");
    let end = "\"}\n";
    while body.len() < REFUSAL_BYTES - end.len() {
        body.push(char::from(b'a' + (body.len() % 26) as u8));
    }
    body.push_str(end);
    body
}

/// What differs in a refusal the client got, asked with `refuse=want`, from what the
/// server sent: the status, `Retry-After`, `Content-Type`, or the body (`body`, decoded from
/// its framing); `None` when it came back intact.
pub fn refusal_differs(want: u16, head: &Head, body: &[u8]) -> Option<String> {
    let status = head.status().unwrap_or_default();
    if status != want {
        return Some(format!(
            "status {status}, where the server refuses with {want} (`{REFUSE_PARAM}={want}`)"
        ));
    }
    for (name, value) in [("Retry-After", RETRY_AFTER), ("Content-Type", REFUSAL_TYPE)] {
        let got = text(head, name);
        if got != value {
            return Some(format!("{name} `{got}`; the server sent `{value}`"));
        }
    }
    let sent = refusal_body(want);
    if body != sent.as_bytes() {
        let same = body
            .iter()
            .zip(sent.as_bytes())
            .take_while(|(a, b)| a == b)
            .count();
        return Some(format!(
            "a {}-byte body; the server sent {} bytes (the first {same} alike)",
            body.len(),
            sent.len()
        ));
    }
    None
}

/// The first field of `want` a 101 (`head`) does not carry as the server sent it, said in
/// a line; `None` when every one arrived.
pub fn reply_fields_differ(want: &BTreeMap<String, String>, head: &Head) -> Option<String> {
    want.iter().find_map(|(name, value)| {
        let got = text(head, name);
        (got != *value).then(|| format!("{name} arrived as `{got}`; the server sent `{value}`"))
    })
}

/// A field's values as they arrived, joined by `, `; `-` for none.
fn text(head: &Head, name: &str) -> String {
    let values: Vec<String> = (head.fields.iter())
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| String::from_utf8_lossy(v).trim().to_string())
        .collect();
    if values.is_empty() {
        "-".to_string()
    } else {
        values.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gauntlet_proxies::http::{MAX_HEAD_BYTES, Parsed, parse_response};

    fn head(text: &str) -> Head {
        match parse_response(text.as_bytes(), MAX_HEAD_BYTES) {
            Parsed::Complete(head, _) => head,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_query_names_what_the_answer_carries_and_the_server_reads_it_back() {
        let fields = BTreeMap::from([("Set-Cookie".to_string(), "a=b; Path=/".to_string())]);
        let q = query(&fields, Some(503), true).join("&");
        assert_eq!(
            q,
            "reply-field=Set-Cookie%3Aa%3Db%3B%20Path%3D%2F&refuse=503&push-with-101=1"
        );
        assert_eq!(
            reply_fields(&q),
            vec![("Set-Cookie".to_string(), "a=b; Path=/".to_string())]
        );
        assert_eq!(refusal(&q), Some(503));
        assert!(push_with_101(&q));
        assert_eq!(refusal("refuse=200"), None);
        assert_eq!(refusal("refuse=x"), None);
        assert!(!push_with_101("push-with-101=0"));
        assert!(reply_fields("reply-field=Set-Cookie").is_empty());
    }

    #[test]
    fn a_refusal_is_intact_only_with_its_status_fields_and_body() {
        let body = refusal_body(503);
        assert_eq!(body.len(), REFUSAL_BYTES);
        assert!(body.starts_with("{\"status\":503,"), "{body}");
        let intact = head(
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 30\r\nContent-Type: application/json\r\n\r\n",
        );
        assert_eq!(refusal_differs(503, &intact, body.as_bytes()), None);
        assert_eq!(
            refusal_differs(503, &intact, b"<html>502</html>").as_deref(),
            Some("a 16-byte body; the server sent 1024 bytes (the first 0 alike)")
        );
        let page = head("HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\n\r\n");
        assert_eq!(
            refusal_differs(503, &page, b"").as_deref(),
            Some("status 502, where the server refuses with 503 (`refuse=503`)")
        );
        let bare =
            head("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\r\n");
        assert_eq!(
            refusal_differs(503, &bare, body.as_bytes()).as_deref(),
            Some("Retry-After `-`; the server sent `30`")
        );
    }

    #[test]
    fn a_101_must_carry_every_field_the_server_put_in_it() {
        let want = BTreeMap::from([("Set-Cookie".to_string(), "a=b".to_string())]);
        let with = head("HTTP/1.1 101 Switching Protocols\r\nset-cookie: a=b\r\n\r\n");
        assert_eq!(reply_fields_differ(&want, &with), None);
        let without = head("HTTP/1.1 101 Switching Protocols\r\n\r\n");
        assert_eq!(
            reply_fields_differ(&want, &without).as_deref(),
            Some("Set-Cookie arrived as `-`; the server sent `a=b`")
        );
    }
}
