//! Hiding the values of granted environment variables in a command's
//! stderr, which the component may quote in an error.

/// Values shorter than this are not hidden: they carry no secret worth the
/// name, and replacing them would garble every message (`1`, `true`).
const MIN_SECRET_BYTES: usize = 4;

/// `stderr` with every occurrence of each of `values` replaced by
/// `[redacted]`, longest value first (so that a value is replaced whole
/// before a shorter one that it contains).
pub(super) fn redact_values(stderr: Vec<u8>, values: &[Vec<u8>]) -> Vec<u8> {
    let mut values: Vec<&[u8]> = values
        .iter()
        .map(Vec::as_slice)
        .filter(|v| v.len() >= MIN_SECRET_BYTES)
        .collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values
        .into_iter()
        .fold(stderr, |text, value| replace(&text, value))
}

fn replace(text: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(value) {
            out.extend_from_slice(b"[redacted]");
            i += value.len();
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests;
