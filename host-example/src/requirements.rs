//! What a config needs from the host: the component's `requirements`, in
//! host types. The policy derives its minimal grants from it
//! ([`crate::Policy::minimal`]) and the provider produces it
//! ([`crate::Provider::requirements`], converting the component's record
//! here); neither depends on the other for it.

/// What a config needs from the host (from the component's
/// `requirements`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Requirements {
    /// Environment variables.
    pub env: Vec<String>,
    /// Environment variables read when set; unset is fine.
    pub optional_env: Vec<String>,
    /// Files; `${NAME}` is the file the variable `NAME` names, read only
    /// when it is set.
    pub files: Vec<String>,
    /// Fixed origins (`scheme://host[:port]`).
    pub origins: Vec<String>,
    /// Identity URLs as written, with their origin when fixed.
    pub urls: Vec<(String, Option<String>)>,
    /// URLs fetched only when every variable their template references is
    /// set (endpoint overrides, fallbacks), with their origin when fixed.
    pub when_set_urls: Vec<(String, Option<String>)>,
    /// Commands as argv.
    pub commands: Vec<Vec<String>>,
}

impl Requirements {
    /// The path a `files` entry names: the entry itself, or for `${NAME}`
    /// the value `env` gives the variable; `None` when it is unset or empty
    /// (the file is then not read).
    pub fn file_path(entry: &str, env: impl Fn(&str) -> Option<String>) -> Option<String> {
        match entry
            .strip_prefix("${")
            .and_then(|rest| rest.strip_suffix('}'))
        {
            Some(name) => env(name.strip_prefix("env.").unwrap_or(name)).filter(|p| !p.is_empty()),
            None => Some(entry.to_string()),
        }
    }
}

impl From<crate::bindings::exports::anthropic_wif::federation::provider::HostRequirements>
    for Requirements
{
    fn from(
        needs: crate::bindings::exports::anthropic_wif::federation::provider::HostRequirements,
    ) -> Requirements {
        let urls = |urls: Vec<
            crate::bindings::exports::anthropic_wif::federation::provider::UrlRequirement,
        >| { urls.into_iter().map(|u| (u.template, u.origin)).collect() };
        Requirements {
            env: needs.env,
            optional_env: needs.optional_env,
            files: needs.files,
            origins: needs.origins,
            urls: urls(needs.urls),
            when_set_urls: urls(needs.when_set_urls),
            commands: needs.commands,
        }
    }
}
