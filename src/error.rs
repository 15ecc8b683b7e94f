//! The component's error type: one kind per failure class.
//!
//! No variant ever carries a token, an identity assertion or an expanded
//! environment value: messages name fields, files, variables, programs and
//! URLs as written in the configuration.

use std::fmt;

/// Which identity-token source a failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// `identity_token.file`.
    File,
    /// `identity_token.env`.
    Env,
    /// `identity_token.command`.
    Command,
    /// `identity_token.url`.
    Url,
    /// `identity_token.aws`.
    Aws,
    /// `identity_token.oauth_client_credentials`.
    OauthClientCredentials,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::File => "file",
            SourceKind::Env => "env",
            SourceKind::Command => "command",
            SourceKind::Url => "url",
            SourceKind::Aws => "aws",
            SourceKind::OauthClientCredentials => "oauth_client_credentials",
        })
    }
}

/// One of the four imported capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// `read-file`.
    ReadFile,
    /// `get-env`.
    GetEnv,
    /// `http-fetch`.
    HttpFetch,
    /// `run-command`.
    RunCommand,
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Capability::ReadFile => "read-file",
            Capability::GetEnv => "get-env",
            Capability::HttpFetch => "http-fetch",
            Capability::RunCommand => "run-command",
        })
    }
}

/// The token endpoint's refusal of an exchange.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rejection {
    /// HTTP status.
    pub status: u16,
    /// OAuth `error`.
    pub error: Option<String>,
    /// OAuth `error_description`.
    pub error_description: Option<String>,
    /// OAuth `error_uri`.
    pub error_uri: Option<String>,
    /// The `request-id` response header.
    pub request_id: Option<String>,
    /// A bounded snippet of a body that was not a JSON error.
    pub body_snippet: Option<String>,
    /// What to check next.
    pub hint: Option<String>,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "token endpoint rejected the exchange with status {}",
            self.status
        )?;
        if let Some(error) = &self.error {
            write!(f, ": {error}")?;
        }
        if let Some(description) = &self.error_description {
            write!(f, ": {description}")?;
        }
        if let Some(uri) = &self.error_uri {
            write!(f, " (see {uri})")?;
        }
        if let Some(snippet) = &self.body_snippet {
            write!(f, ": body: {snippet}")?;
        }
        if let Some(request_id) = &self.request_id {
            write!(f, " [request-id {request_id}]")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, ". Hint: {hint}")?;
        }
        Ok(())
    }
}

/// Why no token could be returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid; `field` is its path, e.g.
    /// `workload_identity_federation.identity_token.url` (empty for the
    /// document as a whole).
    #[error("invalid config: {}{message}", field_prefix(field))]
    InvalidConfig {
        /// Path of the offending field.
        field: String,
        /// What is wrong and what to write instead.
        message: String,
    },
    /// The host's policy refused a capability.
    #[error("{capability} denied by the host's policy: {detail}")]
    Denied {
        /// The refused capability.
        capability: Capability,
        /// The host's description of the refused item.
        detail: String,
    },
    /// The identity-token source failed.
    #[error(
        "identity token from the {kind} source (federation rule {federation_rule_id}): {message}"
    )]
    SourceFailed {
        /// Which source.
        kind: SourceKind,
        /// The federation rule the token was for.
        federation_rule_id: String,
        /// Why it failed.
        message: String,
    },
    /// The token endpoint could not be reached or did not answer in time.
    #[error("token exchange failed: {0}")]
    ExchangeFailed(String),
    /// The token endpoint refused the exchange.
    #[error("{0}")]
    ExchangeRejected(Box<Rejection>),
    /// A 2xx answer that is not a valid token response.
    #[error("token endpoint response is malformed: {0}")]
    MalformedResponse(String),
}

fn field_prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("{field}: ")
    }
}

impl Error {
    /// An [`Error::InvalidConfig`] for `field`.
    pub(crate) fn config(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::InvalidConfig {
            field: field.into(),
            message: message.into(),
        }
    }
}
