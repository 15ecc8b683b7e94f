//! The host's error type: the component's failure classes plus the host's
//! own (loading, traps, deadlines).

use std::fmt;

use crate::bindings::exports::anthropic_wif::federation::provider as wit;

/// Which identity-token source failed.
pub use wit::SourceKind;

/// Why no token (or no requirements) could be had. [`Error::is_transient`]
/// tells a failure a retry may mend from one that needs a change first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    #[error("invalid config: {}{message}", if field.is_empty() { String::new() } else { format!("{field}: ") })]
    InvalidConfig {
        /// Path of the field, e.g. `workload_identity_federation.identity_token.url`.
        field: String,
        /// What is wrong and what to write.
        message: String,
    },
    /// The policy refused a capability the config needs.
    #[error("{capability} denied by the host's policy: {detail}")]
    Denied {
        /// `read-file`, `get-env`, `http-fetch` or `run-command`.
        capability: String,
        /// The refused item.
        detail: String,
    },
    /// The identity-token source failed.
    #[error("identity token from the {} source (federation rule {federation_rule_id}): {message}", kind_name(*kind))]
    SourceFailed {
        /// Which source.
        kind: SourceKind,
        /// The federation rule.
        federation_rule_id: String,
        /// Why.
        message: String,
    },
    /// The token endpoint could not be reached.
    #[error("token exchange failed: {0}")]
    ExchangeFailed(String),
    /// The token endpoint refused the exchange.
    #[error("{0}")]
    ExchangeRejected(Box<Rejection>),
    /// The token endpoint's 2xx answer is not a token response.
    #[error("token endpoint response is malformed: {0}")]
    MalformedResponse(String),
    /// The component trapped, ran past its deadline or its memory cap; the
    /// next call uses a fresh instance.
    #[error("the component failed: {0}")]
    Component(String),
    /// The component could not be loaded or instantiated.
    #[error("cannot load the component: {0}")]
    Load(String),
}

impl Error {
    /// Whether a retry, unchanged, may succeed: the token endpoint was
    /// unreachable or answered a temporary refusal (a 5xx, 429 or 408), an
    /// identity-token source other than a variable failed (a file not yet
    /// mounted, a command or a metadata endpoint that failed or timed
    /// out), or the component failed (the next call runs a fresh
    /// instance). An invalid config, a denial by the policy, a permanent
    /// refusal by the endpoint, a malformed answer, a variable (this
    /// process's environment does not change) and a component that cannot
    /// be loaded need a change first.
    ///
    /// The component reports a transport failure of the exchange as one
    /// message, so a TLS refusal of the token endpoint counts as
    /// unreachable here; its message says which it was.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::InvalidConfig { .. }
            | Error::Denied { .. }
            | Error::MalformedResponse(_)
            | Error::Load(_) => false,
            Error::SourceFailed { kind, .. } => *kind != SourceKind::Env,
            Error::ExchangeFailed(_) | Error::Component(_) => true,
            Error::ExchangeRejected(rejection) => rejection.is_transient(),
        }
    }
}

/// The token endpoint's refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// HTTP status.
    pub status: u16,
    /// OAuth `error`.
    pub error: Option<String>,
    /// OAuth `error_description`.
    pub error_description: Option<String>,
    /// OAuth `error_uri`.
    pub error_uri: Option<String>,
    /// The `request-id` header.
    pub request_id: Option<String>,
    /// A bounded snippet of a non-JSON body.
    pub body_snippet: Option<String>,
    /// What to check next.
    pub hint: Option<String>,
}

impl Rejection {
    /// Whether the refusal is temporary: a server error (5xx), too many
    /// requests (429) or a request timeout (408).
    pub fn is_transient(&self) -> bool {
        self.status >= 500 || self.status == 429 || self.status == 408
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "token endpoint rejected the exchange with status {}",
            self.status
        )?;
        for part in [&self.error, &self.error_description].into_iter().flatten() {
            write!(f, ": {part}")?;
        }
        if let Some(uri) = &self.error_uri {
            write!(f, " (see {uri})")?;
        }
        if let Some(snippet) = &self.body_snippet {
            write!(f, ": body: {snippet}")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " [request-id {id}]")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, ". Hint: {hint}")?;
        }
        Ok(())
    }
}

fn kind_name(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::File => "file",
        SourceKind::Env => "env",
        SourceKind::Command => "command",
        SourceKind::Url => "url",
        SourceKind::Aws => "aws",
        SourceKind::OauthClientCredentials => "oauth_client_credentials",
    }
}

impl From<wit::Error> for Error {
    fn from(error: wit::Error) -> Error {
        match error {
            wit::Error::InvalidConfig(e) => Error::InvalidConfig {
                field: e.field,
                message: e.message,
            },
            wit::Error::Denied(d) => Error::Denied {
                capability: d.capability,
                detail: d.detail,
            },
            wit::Error::SourceFailed(s) => Error::SourceFailed {
                kind: s.kind,
                federation_rule_id: s.federation_rule_id,
                message: s.message,
            },
            wit::Error::ExchangeFailed(m) => Error::ExchangeFailed(m),
            wit::Error::ExchangeRejected(r) => Error::ExchangeRejected(Box::new(Rejection {
                status: r.status,
                error: r.error,
                error_description: r.error_description,
                error_uri: r.error_uri,
                request_id: r.request_id,
                body_snippet: r.body_snippet,
                hint: r.hint,
            })),
            wit::Error::MalformedResponse(m) => Error::MalformedResponse(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(status: u16) -> Error {
        Error::ExchangeRejected(Box::new(Rejection {
            status,
            error: None,
            error_description: None,
            error_uri: None,
            request_id: None,
            body_snippet: None,
            hint: None,
        }))
    }

    fn source(kind: SourceKind) -> Error {
        Error::SourceFailed {
            kind,
            federation_rule_id: "fdrl_01".into(),
            message: "failed".into(),
        }
    }

    #[test]
    fn unreachable_endpoints_and_temporary_refusals_are_transient() {
        for transient in [
            Error::ExchangeFailed(
                "https://api.anthropic.com/v1/oauth/token did not answer in time".into(),
            ),
            Error::Component("ran past its deadline".into()),
            rejected(500),
            rejected(503),
            rejected(429),
            rejected(408),
            source(SourceKind::Url),
            source(SourceKind::File),
            source(SourceKind::Command),
        ] {
            assert!(transient.is_transient(), "{transient}");
        }
    }

    #[test]
    fn config_denials_and_refusals_are_permanent() {
        for permanent in [
            Error::InvalidConfig {
                field: "workload_identity_federation.base_url".into(),
                message: "must use https".into(),
            },
            Error::Denied {
                capability: "http-fetch".into(),
                detail: "https://api.anthropic.com".into(),
            },
            Error::MalformedResponse("no access_token".into()),
            Error::Load("not a component".into()),
            rejected(400),
            rejected(401),
            rejected(403),
            source(SourceKind::Env),
        ] {
            assert!(!permanent.is_transient(), "{permanent}");
        }
    }
}
