//! The `aws` identity-token source: STS `GetWebIdentityToken`.

use serde::Serialize;
use serde_json::Value;

use super::{allow_only, object, optional_string, path};
use crate::error::Error;

/// The audience asked for when the config names none: the one Anthropic
/// validates.
pub const DEFAULT_AUDIENCE: &str = "https://api.anthropic.com";
/// The shortest token lifetime STS issues, in seconds.
pub const MIN_DURATION_SECONDS: u32 = 60;
/// The longest token lifetime STS issues, in seconds.
pub const MAX_DURATION_SECONDS: u32 = 3600;

/// The key STS signs the identity token with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SigningAlgorithm {
    /// RSA PKCS#1 v1.5 with SHA-256 (the default).
    RS256,
    /// ECDSA P-384 with SHA-384.
    ES384,
}

impl SigningAlgorithm {
    /// The name STS takes in `SigningAlgorithm`.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlgorithm::RS256 => "RS256",
            SigningAlgorithm::ES384 => "ES384",
        }
    }
}

/// An identity token from AWS STS `GetWebIdentityToken` (outbound identity
/// federation), signed with the workload's AWS credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AwsSource {
    /// The STS region; `None` means `AWS_REGION`, then `AWS_DEFAULT_REGION`.
    pub region: Option<String>,
    /// The token's `aud`.
    pub audience: String,
    /// The key STS signs with.
    pub signing_algorithm: SigningAlgorithm,
    /// The token's lifetime in seconds; `None` leaves STS's default (300).
    pub duration_seconds: Option<u32>,
}

impl AwsSource {
    /// Validates the `aws` block at `field`.
    pub(super) fn from_value(value: &Value, field: &str) -> Result<AwsSource, Error> {
        let block = object(value, field)?;
        allow_only(
            block,
            field,
            &[
                "region",
                "audience",
                "signing_algorithm",
                "duration_seconds",
            ],
        )?;
        let region = optional_string(block, field, "region")?;
        if let Some(region) = &region
            && !is_region(region)
        {
            return Err(Error::config(
                path(field, "region"),
                "must be an AWS region name such as `us-east-1`",
            ));
        }
        let audience =
            optional_string(block, field, "audience")?.unwrap_or_else(|| DEFAULT_AUDIENCE.into());
        if audience.chars().any(char::is_control) {
            return Err(Error::config(
                path(field, "audience"),
                "must not contain control characters",
            ));
        }
        let signing_algorithm = match optional_string(block, field, "signing_algorithm")?.as_deref()
        {
            None | Some("RS256") => SigningAlgorithm::RS256,
            Some("ES384") => SigningAlgorithm::ES384,
            Some(_) => {
                return Err(Error::config(
                    path(field, "signing_algorithm"),
                    "must be `RS256` or `ES384`",
                ));
            }
        };
        let duration_seconds = match block.get("duration_seconds") {
            None => None,
            Some(value) => Some(
                value
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| (MIN_DURATION_SECONDS..=MAX_DURATION_SECONDS).contains(n))
                    .ok_or_else(|| {
                        Error::config(
                            path(field, "duration_seconds"),
                            format!(
                                "must be a whole number of seconds from {MIN_DURATION_SECONDS} to {MAX_DURATION_SECONDS}"
                            ),
                        )
                    })?,
            ),
        };
        Ok(AwsSource {
            region,
            audience,
            signing_algorithm,
            duration_seconds,
        })
    }
}

/// Whether `name` has the shape of an AWS region (`us-east-1`,
/// `us-gov-west-1`): lower-case letters and digits in groups joined by `-`.
/// It becomes part of a host name, so nothing else is let through.
pub(crate) fn is_region(name: &str) -> bool {
    name.len() <= 32
        && name.split('-').all(|group| {
            !group.is_empty()
                && group
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}
