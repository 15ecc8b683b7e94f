//! What a config needs from the host: the component's `requirements`, in
//! host types. The policy derives its minimal grants from it
//! ([`crate::Policy::minimal`]) and the provider produces it
//! ([`crate::Provider::requirements`]); neither depends on the other for it.

/// What a config needs from the host (from the component's
/// `requirements`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Requirements {
    /// Environment variables.
    pub env: Vec<String>,
    /// Files.
    pub files: Vec<String>,
    /// Fixed origins (`scheme://host[:port]`).
    pub origins: Vec<String>,
    /// Identity URLs as written, with their origin when fixed.
    pub urls: Vec<(String, Option<String>)>,
    /// Commands as argv.
    pub commands: Vec<Vec<String>>,
}
