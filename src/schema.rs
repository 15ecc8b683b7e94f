//! The JSON Schema of the `auth` block, generated from the types below.
//!
//! The types describe the document exactly as [`crate::Config::parse`]
//! accepts it (field names, id patterns, one source of six, no extra
//! fields); they exist for the schema, editors and other tools. The checked-in
//! `docs/auth.schema.json` is [`auth_schema`]'s output, and a test fails when
//! the two drift apart.

use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};

/// The `auth` block of an agent config.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "anthropic-wif auth block")]
pub struct AuthBlock {
    /// Always `workload_identity_federation`.
    #[serde(rename = "type")]
    pub auth_type: AuthType,
    /// The federation settings.
    pub workload_identity_federation: Federation,
}

/// The only supported authentication type.
#[derive(Serialize, Deserialize, JsonSchema)]
pub enum AuthType {
    /// Workload Identity Federation.
    #[serde(rename = "workload_identity_federation")]
    WorkloadIdentityFederation,
}

/// Which federation rule, organization and identity token to use.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Federation {
    /// The federation rule, `fdrl_…`.
    #[schemars(regex(pattern = r"^fdrl_[A-Za-z0-9_-]+$"))]
    pub federation_rule_id: String,
    /// The organization, a UUID.
    #[schemars(regex(
        pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    ))]
    pub organization_id: String,
    /// The service account, `svac_…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^svac_[A-Za-z0-9_-]+$"))]
    pub service_account_id: Option<String>,
    /// The workspace, `wrkspc_…` or `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(default|wrkspc_[A-Za-z0-9_-]+)$"))]
    pub workspace_id: Option<String>,
    /// The token endpoint's base URL (https; http only for localhost,
    /// 127.0.0.1 and [::1]). Default `https://api.anthropic.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(
        pattern = r"^(https://|http://(localhost|127\.0\.0\.1|\[::1\])([:/]|$))[^?#@]*$"
    ))]
    pub base_url: Option<String>,
    /// Where the identity token comes from: exactly one source.
    pub identity_token: IdentityToken,
}

/// Exactly one identity-token source.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
#[schemars(transform = one_of)]
pub enum IdentityToken {
    /// A file.
    File(FileSource),
    /// An environment variable.
    Env(EnvSource),
    /// A program's stdout.
    Command(CommandSource),
    /// An HTTP GET.
    Url(UrlSource),
    /// AWS STS `GetWebIdentityToken`.
    Aws(AwsBlock),
    /// An OAuth 2.0 client-credentials grant.
    OauthClientCredentials(OauthBlock),
}

/// A file holding the identity token, read on every exchange.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    /// The file's path.
    #[schemars(length(min = 1))]
    pub file: String,
}

/// An environment variable holding the identity token.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvSource {
    /// The variable's name.
    #[schemars(regex(pattern = r"^[^=\u0000]+$"))]
    pub env: String,
}

/// A program that prints the identity token (argv, no shell, 30 s).
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandSource {
    /// The program and its arguments.
    #[schemars(length(min = 1), inner(length(min = 1)))]
    pub command: Vec<String>,
}

/// A URL that answers with the identity token.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UrlSource {
    /// The URL; `${NAME}` and `${env.NAME}` references are expanded from the
    /// environment.
    #[schemars(regex(pattern = r"^(https?://|\$\{)"))]
    pub url: String,
    /// Request headers; values may hold `${NAME}` or `${env.NAME}`
    /// references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// The top-level JSON string field that holds the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub response_field: Option<String>,
}

/// An identity token from AWS STS `GetWebIdentityToken`, signed with the
/// workload's AWS credentials.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsBlock {
    /// The settings; every one is optional.
    pub aws: AwsSettings,
}

/// What to ask STS for.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsSettings {
    /// The STS region; default `AWS_REGION`, then `AWS_DEFAULT_REGION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9]+(-[a-z0-9]+)*$"))]
    pub region: Option<String>,
    /// The token's audience; default `https://api.anthropic.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub audience: Option<String>,
    /// The key STS signs with; default `RS256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_algorithm: Option<AwsSigningAlgorithm>,
    /// The token's lifetime in seconds; default STS's (300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 60, max = 3600))]
    pub duration_seconds: Option<u32>,
}

/// The algorithms STS signs identity tokens with.
#[derive(Serialize, Deserialize, JsonSchema)]
pub enum AwsSigningAlgorithm {
    /// RSA with SHA-256.
    RS256,
    /// ECDSA P-384 with SHA-384.
    ES384,
}

/// An identity token from an OAuth 2.0 client-credentials grant (its access
/// token).
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OauthBlock {
    /// The grant's settings.
    pub oauth_client_credentials: OauthSettings,
}

/// The client and how it authenticates: exactly one of `private_key_file`
/// and `client_secret_env`.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
#[schemars(transform = one_of)]
pub enum OauthSettings {
    /// `private_key_jwt`.
    PrivateKey(OauthPrivateKey),
    /// `client_secret_basic`.
    ClientSecret(OauthClientSecret),
}

/// A client authenticated with a signed JWT (`private_key_jwt`).
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OauthPrivateKey {
    /// The token endpoint (https; http only for loopback); the assertion's
    /// audience.
    #[schemars(regex(
        pattern = r"^(https://|http://(localhost|127\.0\.0\.1|\[::1\])([:/]|$))[^#@]*$"
    ))]
    pub token_url: String,
    /// The client id.
    #[schemars(length(min = 1))]
    pub client_id: String,
    /// The scope asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub scope: Option<String>,
    /// A PKCS#8 PEM private key: P-256 (ES256); RSA keys are refused.
    #[schemars(length(min = 1))]
    pub private_key_file: String,
    /// The JWT header's `kid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub key_id: Option<String>,
}

/// A client authenticated with HTTP Basic (`client_secret_basic`).
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OauthClientSecret {
    /// The token endpoint (https; http only for loopback).
    #[schemars(regex(
        pattern = r"^(https://|http://(localhost|127\.0\.0\.1|\[::1\])([:/]|$))[^#@]*$"
    ))]
    pub token_url: String,
    /// The client id.
    #[schemars(length(min = 1))]
    pub client_id: String,
    /// The scope asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub scope: Option<String>,
    /// The environment variable that holds the client secret.
    #[schemars(regex(pattern = r"^[^=\u0000]+$"))]
    pub client_secret_env: String,
}

/// Exactly one branch must match: each source has its own required key and
/// no extra fields.
fn one_of(schema: &mut Schema) {
    if let Some(branches) = schema.remove("anyOf") {
        schema.insert("oneOf".into(), branches);
    }
}

/// The JSON Schema of the `auth` block, pretty-printed with a final newline.
pub fn auth_schema() -> String {
    let schema = schemars::schema_for!(AuthBlock);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
