//! Quoting for POSIX shells, for output meant to be `eval`ed.

/// `text` as one POSIX shell word: wrapped in single quotes, each embedded
/// `'` written as `'\''` (close the quotes, an escaped quote, reopen them).
/// Inside single quotes a shell gives no character a meaning, so `eval` of
/// the result yields `text` exactly, whatever it holds.
pub fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('\'');
    for c in text.chars() {
        if c == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    quoted
}

#[cfg(test)]
mod tests;
