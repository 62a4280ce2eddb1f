//! Subprotocol negotiation (RFC 6455 §1.9, §4.1, §4.2.2): the client offers names in
//! `Sec-WebSocket-Protocol` (`[client] subprotocols`), and the reference server picks one of
//! them, which its 101 names. The server's rule is [`choose`]: the last name offered. A proxy
//! that drops the offer leaves the server nothing to pick; one that keeps only the first name,
//! or reorders them, makes it pick another; one that drops the answer leaves the 101 without
//! it. The client, knowing the rule, tells each apart from a faithful relay.

/// The field both directions use.
pub const FIELD: &str = "sec-websocket-protocol";

/// The names an offer lists, in order, from each `Sec-WebSocket-Protocol` value the request
/// carries (RFC 6455 §4.1: a comma-separated list, possibly split over several fields).
pub fn offered<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect()
}

/// The reference server's pick among `offer`: the last name, so that an offer cut short or
/// reordered on the way gets another answer than the whole one. `None` for no offer.
pub fn choose(offer: &[String]) -> Option<&str> {
    offer.last().map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_picks_the_last_name_of_an_offer_however_it_is_split() {
        let offer = offered(["chat, superchat", " v3 "]);
        assert_eq!(offer, ["chat", "superchat", "v3"]);
        assert_eq!(choose(&offer), Some("v3"));
        assert_eq!(choose(&offered(["chat,superchat"])), Some("superchat"));
        assert_eq!(choose(&offered(["chat"])), Some("chat"));
        assert_eq!(choose(&offered([" , "])), None);
        assert_eq!(choose(&[]), None);
    }
}
