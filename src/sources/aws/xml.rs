//! The little XML reading STS's query protocol needs: the text of one
//! element, entities decoded.

/// The text of the first `<name>…</name>` element of `xml`, with the five
/// predefined entities and numeric character references decoded; `None`
/// when there is no such element, when it holds markup (a child element,
/// CDATA, a comment) or an entity that is not understood.
pub(crate) fn element_text(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    decode(&xml[start..end])
}

/// `text` with `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`, `&#NN;` and
/// `&#xHH;` decoded; `None` for markup or an unknown or invalid entity.
fn decode(text: &str) -> Option<String> {
    if text.contains('<') {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semicolon = after.find(';')?;
        let entity = &after[..semicolon];
        let decoded = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = match entity.strip_prefix("#x") {
                    Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                    None => entity.strip_prefix('#')?.parse().ok()?,
                };
                char::from_u32(code)?
            }
        };
        out.push(decoded);
        rest = &after[semicolon + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_element_and_decodes_entities() {
        let xml = "<R><A>x</A><Token>a&amp;b&lt;&gt;&quot;&apos;&#65;&#x42;</Token></R>";
        assert_eq!(element_text(xml, "Token").as_deref(), Some("a&b<>\"'AB"));
        assert_eq!(element_text(xml, "A").as_deref(), Some("x"));
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        assert_eq!(element_text("<Tokens>x</Tokens>", "Token"), None);
        assert_eq!(element_text("<Token>x", "Token"), None);
        assert_eq!(element_text("<Token><b>x</b></Token>", "Token"), None);
        assert_eq!(element_text("<Token>a&nbsp;b</Token>", "Token"), None);
        assert_eq!(element_text("<Token>a&amp b</Token>", "Token"), None);
        assert_eq!(element_text("<Token>&#xD800;</Token>", "Token"), None);
        assert_eq!(element_text("<Token>&#99999999999;</Token>", "Token"), None);
        assert_eq!(element_text("", "Token"), None);
    }
}
