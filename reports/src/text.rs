//! Text helpers the renderers share: XML/HTML escaping, millisecond formatting and differences,
//! short scenario labels.

/// Escapes text for XML and HTML, in element content and in attribute values alike.
///
/// `&`, `<`, `>`, `"` and `'` become references; so do tab, line feed and carriage return,
/// which an XML parser would otherwise turn into spaces inside an attribute. Characters XML 1.0
/// does not allow at all (the other C0 controls, U+FFFE, U+FFFF) become U+FFFD, the
/// replacement character.
pub(crate) fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Milliseconds for people: at most three decimals, without trailing zeros (`20`, `20.5`,
/// `0.125`); `n/a` for a value that is not finite.
pub(crate) fn ms(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".to_string();
    }
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// How much later than `base` a value in milliseconds is, for people: `+9.5`, `−0.5`, or
/// `±0` when they agree to three decimals.
pub(crate) fn delta(v: f64, base: f64) -> String {
    let d = v - base;
    if ms(d.abs()) == "0" {
        "±0".to_string()
    } else if d > 0.0 {
        format!("+{}", ms(d))
    } else {
        format!("−{}", ms(-d))
    }
}

/// A scenario path without the catalogue's `scenarios/` prefix and the `.toml` suffix, for
/// chart labels where space is short (`products/nginx-upgrade`).
pub(crate) fn short_scenario(path: &str) -> &str {
    let s = path.strip_prefix("scenarios/").unwrap_or(path);
    s.strip_suffix(".toml").unwrap_or(s)
}

/// A share in 0..=1 as a whole percentage (`75%`).
pub(crate) fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_markup_quotes_and_line_breaks() {
        assert_eq!(
            xml(r#"a<b & "c" 'd'>"#),
            "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;"
        );
        assert_eq!(xml("one\ntwo\tthree\r"), "one&#10;two&#9;three&#13;");
        assert_eq!(xml("bell\u{7} nul\u{0}"), "bell\u{fffd} nul\u{fffd}");
        assert_eq!(xml("café ✓ 1006"), "café ✓ 1006");
    }

    #[test]
    fn milliseconds_drop_trailing_zeros() {
        assert_eq!(ms(20.0), "20");
        assert_eq!(ms(20.5), "20.5");
        assert_eq!(ms(0.125), "0.125");
        assert_eq!(ms(1234.5678), "1234.568");
        assert_eq!(ms(0.0), "0");
        assert_eq!(ms(-0.0), "0");
        assert_eq!(ms(f64::NAN), "n/a");
    }

    #[test]
    fn deltas_carry_their_sign() {
        assert_eq!(delta(20.0, 10.5), "+9.5");
        assert_eq!(delta(10.0, 10.5), "−0.5");
        assert_eq!(delta(10.5, 10.5), "±0");
        assert_eq!(delta(10.0001, 10.0), "±0");
    }

    #[test]
    fn short_labels_drop_the_catalogue_prefix_and_extension() {
        assert_eq!(
            short_scenario("scenarios/products/nginx-upgrade.toml"),
            "products/nginx-upgrade"
        );
        assert_eq!(short_scenario("mine/x.toml"), "mine/x");
        assert_eq!(short_scenario("x"), "x");
    }
}
