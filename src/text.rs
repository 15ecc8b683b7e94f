//! Untrusted text from endpoints: bounded, printable snippets for error
//! messages, and the one check of a JSON answer that serde_json leaves out.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The longest snippet of a body or of stderr put into an error, in bytes.
pub(crate) const SNIPPET_BYTES: usize = 300;

/// Up to `max` bytes of `bytes` as text: invalid UTF-8 replaced, cut on a
/// character boundary, control characters shown as spaces, and every
/// occurrence of each `secrets` entry replaced by `[redacted]`. An ellipsis
/// marks a cut.
pub(crate) fn snippet(bytes: &[u8], max: usize, secrets: &[&str]) -> String {
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret, "[redacted]");
    }
    let text = text.trim();
    let mut out = String::with_capacity(text.len().min(max) + 3);
    for c in text.chars() {
        if out.len() + c.len_utf8() > max {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

/// The starts of credentials that [`redact_credentials`] hides: a JWT (its
/// base64url header, `{"…`) and an Anthropic key or token.
const CREDENTIAL_STARTS: [&str; 2] = ["eyJ", "sk-ant-"];

/// `text` with every credential-looking string replaced by `[redacted]`:
/// from a JWT-shaped `eyJ…` or an `sk-ant-…` to the end of its run of token
/// characters (letters, digits and `-._~+/=`). For text that no secret list
/// covers, such as a failing command's stderr, which can print what the
/// command read or was given (a helper run under `set -x`).
pub(crate) fn redact_credentials(text: &str) -> String {
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let run_len = rest.find(|c| !is_token_char(c)).unwrap_or(rest.len());
        let (run, after) = rest.split_at(run_len);
        let start = CREDENTIAL_STARTS
            .iter()
            .filter_map(|prefix| run.find(prefix))
            .min();
        match start {
            Some(start) => {
                out.push_str(&run[..start]);
                out.push_str("[redacted]");
            }
            None => out.push_str(run),
        }
        let other_len = after.find(is_token_char).unwrap_or(after.len());
        out.push_str(&after[..other_len]);
        rest = &after[other_len..];
    }
    out
}

/// `parts` joined with `separator`.
///
/// The component's own, rather than `[T]::join`, and [`sort_small`] rather
/// than the slice sorts: std's generic versions cost a few KiB each in a
/// component that must stay under 400 KiB, for lists of a handful of items.
pub(crate) fn join<S: AsRef<str>>(parts: impl IntoIterator<Item = S>, separator: &str) -> String {
    let mut joined = String::new();
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            joined.push_str(separator);
        }
        joined.push_str(part.as_ref());
    }
    joined
}

/// Sorts `items` stably so that no item comes before one it `follows`
/// (an insertion sort: the lists sorted here are headers, query parameters
/// and secret values, a few items each; comparing in place copies nothing).
pub(crate) fn sort_small<T>(items: &mut [T], follows: impl Fn(&T, &T) -> bool) {
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 && follows(&items[j - 1], &items[j]) {
            items.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// A field name that the top-level JSON object in `bytes` gives more than
/// once, if any (the first such name, for an error message).
///
/// serde_json keeps the last of duplicate fields without a word; an answer
/// with two `access_token`s (or two `value`s) means different things to
/// different parsers, so it is refused rather than guessed at. `bytes` that
/// are not a JSON object have no duplicate.
///
/// Every value is read through `deserialize_any` and a visitor that accepts
/// every kind, so serde's "invalid type" messages are never built: they
/// format floating-point numbers, and that formatting machinery alone is
/// about 16 KiB of the component.
pub(crate) fn duplicate_field(bytes: &[u8]) -> Option<String> {
    struct Fields(Option<String>);
    struct FieldsVisitor;
    struct Key(String);
    struct KeyVisitor;

    impl<'de> Visitor<'de> for KeyVisitor {
        type Value = Key;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a field name")
        }

        fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Key, E> {
            Ok(Key(name.to_string()))
        }
    }

    impl<'de> Deserialize<'de> for Key {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
            deserializer.deserialize_any(KeyVisitor)
        }
    }

    impl<'de> Visitor<'de> for FieldsVisitor {
        type Value = Fields;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
            let mut seen = BTreeSet::new();
            let mut duplicate = None;
            while let Some(Key(name)) = map.next_key::<Key>()? {
                map.next_value::<IgnoredAny>()?;
                if duplicate.is_none() && seen.contains(&name) {
                    duplicate = Some(name);
                } else {
                    seen.insert(name);
                }
            }
            Ok(Fields(duplicate))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Fields, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Fields(None))
        }

        fn visit_bool<E>(self, _: bool) -> Result<Fields, E> {
            Ok(Fields(None))
        }

        fn visit_i64<E>(self, _: i64) -> Result<Fields, E> {
            Ok(Fields(None))
        }

        fn visit_u64<E>(self, _: u64) -> Result<Fields, E> {
            Ok(Fields(None))
        }

        fn visit_f64<E>(self, _: f64) -> Result<Fields, E> {
            Ok(Fields(None))
        }

        fn visit_str<E>(self, _: &str) -> Result<Fields, E> {
            Ok(Fields(None))
        }

        fn visit_unit<E>(self) -> Result<Fields, E> {
            Ok(Fields(None))
        }
    }

    impl<'de> Deserialize<'de> for Fields {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Fields, D::Error> {
            deserializer.deserialize_any(FieldsVisitor)
        }
    }

    serde_json::from_slice::<Fields>(bytes).ok()?.0
}

/// A field name from an untrusted answer, fit for a message: shown only when
/// it is one of the `known` names (from the protocol or the config), since
/// an endpoint can echo a secret it received as a field name.
pub(crate) fn field_name(name: &str, known: &[&str]) -> String {
    if known.contains(&name) {
        format!("`{name}`")
    } else {
        "a field".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_and_sort_small() {
        assert_eq!(join(["a", "b", "c"], ", "), "a, b, c");
        assert_eq!(join(Vec::<String>::new(), "&"), "");
        let mut items = vec![(3, 'a'), (1, 'b'), (3, 'c'), (2, 'd'), (1, 'e')];
        sort_small(&mut items, |a, b| a.0 > b.0);
        assert_eq!(items, [(1, 'b'), (1, 'e'), (2, 'd'), (3, 'a'), (3, 'c')]);
    }

    #[test]
    fn cuts_on_a_character_boundary() {
        let s = snippet("ééééé".as_bytes(), 5, &[]);
        assert_eq!(s, "éé…");
    }

    #[test]
    fn replaces_invalid_utf8_and_controls() {
        assert_eq!(snippet(b"a\xffb\nc", 100, &[]), "a\u{fffd}b c");
    }

    #[test]
    fn finds_duplicate_top_level_fields_only() {
        assert_eq!(
            duplicate_field(br#"{"a": 1, "b": {"c": 1, "c": 2}, "a": 3}"#).as_deref(),
            Some("a")
        );
        // Escapes are decoded before names are compared.
        assert_eq!(
            duplicate_field(br#"{"ab": 1, "a\u0062": 2}"#).as_deref(),
            Some("ab")
        );
        assert_eq!(duplicate_field(br#"{"a": 1, "b": {"a": 2}}"#), None);
        assert_eq!(duplicate_field(br#"[{"a": 1}, {"a": 1}]"#), None);
        assert_eq!(duplicate_field(b"not json"), None);
    }

    #[test]
    fn shows_only_plain_field_names() {
        assert_eq!(
            field_name("access_token", &["access_token"]),
            "`access_token`"
        );
        assert_eq!(field_name("sk-ant-oat01-x", &["access_token"]), "a field");
        assert_eq!(field_name("bearer-secret", &[]), "a field");
    }

    #[test]
    fn redacts_credential_shaped_strings() {
        assert_eq!(
            redact_credentials(
                "+ curl -H 'Authorization: Bearer eyJhbGciOi.eyJzdWIi.c2ln' x\n\
                 key=sk-ant-api03-Ab_9~+/== next\tsk-ant-oat01-z"
            ),
            "+ curl -H 'Authorization: Bearer [redacted]' x\n\
             key=[redacted] next\t[redacted]"
        );
        assert_eq!(
            redact_credentials("error: no such file (eyJ)"),
            "error: no such file ([redacted])"
        );
        assert_eq!(
            redact_credentials("plain text, é ✓, no secret: keys, eyes"),
            "plain text, é ✓, no secret: keys, eyes"
        );
        assert_eq!(redact_credentials(""), "");
    }

    #[test]
    fn redacts_secrets() {
        assert_eq!(
            snippet(b"got eyJabc back", 100, &["eyJabc"]),
            "got [redacted] back"
        );
    }
}
