//! A secret string with a redacted `Debug` output, for the access token and
//! the identity assertion (its own module, so that [`crate::token`] and
//! [`crate::fingerprint`] both depend on it and not on each other).

use std::fmt;

/// A secret string: an access token or an identity assertion.
///
/// `Debug` prints `[redacted]`; there is no `Display`. Read the value with
/// [`Secret::expose`], only where it is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The secret value, for the component's glue, which hands it to the
    /// host.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}
