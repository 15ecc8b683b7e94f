//! What the single-use rule for assertions means for each identity-token
//! source: the token endpoint refuses an assertion it has already exchanged
//! (a generic `401 invalid_grant`, the reason shown only in the Console), so
//! a source must hand out a new identity token for every exchange.

use crate::config::{Config, IdentitySource};
use crate::error::Error;
use crate::sources::kind_of;

/// A refusal of an assertion that was already exchanged, with the
/// federation-rule hint replaced by what to change in the source; any other
/// error unchanged.
pub(crate) fn refused_again(error: Error, config: &Config) -> Error {
    match error {
        Error::ExchangeRejected(mut rejection)
            if rejection.status == 401 || rejection.error.as_deref() == Some("invalid_grant") =>
        {
            rejection.hint = Some(explanation(config));
            Error::ExchangeRejected(rejection)
        }
        other => other,
    }
}

/// The error of a source that handed back the assertion of the cached
/// token, when there is no token left to serve.
pub(crate) fn unchanged(config: &Config) -> Error {
    Error::SourceFailed {
        kind: kind_of(&config.identity_token),
        federation_rule_id: config.federation_rule_id.clone(),
        message: explanation(config),
    }
}

/// Why the same assertion does not work twice, and what to change in the
/// config's source.
fn explanation(config: &Config) -> String {
    let change = match &config.identity_token {
        IdentitySource::File(path) => format!(
            "the issuer must write a new token to {path} more often than the access token \
             expires (kubelet rotates a projected service-account token at 80 % of its \
             expirationSeconds: choose expirationSeconds so that 80 % of it is shorter than \
             the access token's lifetime)"
        ),
        IdentitySource::Env(name) => format!(
            "{name} still holds the token already exchanged: set a new one before the next \
             exchange (a variable does not change inside a running process; long-running \
             processes should read a file or run a command)"
        ),
        IdentitySource::Command(argv) => format!(
            "the command {} is returning a cached token: make it mint a new identity token \
             on every run",
            argv.first().map(String::as_str).unwrap_or_default()
        ),
        IdentitySource::Url { url, .. } => format!(
            "{url} is returning a cached token: make it issue a new identity token on every \
             request"
        ),
        IdentitySource::Aws(_) => "AWS STS returned a token it had already issued, which it \
             does not do for a new GetWebIdentityToken call: check that no proxy or endpoint \
             override (AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL) caches its answers"
            .to_string(),
        IdentitySource::OauthClientCredentials(oauth) => format!(
            "{} is returning a cached access token: make the authorization server issue a \
             new one for every client-credentials grant",
            oauth.token_url
        ),
    };
    format!(
        "the identity token has not changed since it was last exchanged, and assertions are \
         single-use (the token endpoint refuses one it has already exchanged); {change}"
    )
}

#[cfg(test)]
mod tests;
