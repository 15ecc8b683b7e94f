//! The `oauth_client_credentials` identity-token source: an OAuth 2.0
//! client-credentials grant whose access token is the identity token.

use serde::Serialize;
use serde_json::Value;

use super::{allow_only, object, optional_string, path, required_string};
use crate::error::Error;
use crate::origin;

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// `private_key_jwt`: a JWT client assertion signed (ES256) with a P-256
    /// key in a PKCS#8 PEM file.
    PrivateKeyJwt {
        /// The key file.
        private_key_file: String,
        /// The JWT header's `kid`, when set.
        key_id: Option<String>,
    },
    /// `client_secret_basic`: HTTP Basic with the secret an environment
    /// variable holds.
    ClientSecretBasic {
        /// The variable that holds the client secret.
        client_secret_env: String,
    },
}

/// An identity token from an OAuth 2.0 client-credentials grant (Okta
/// service apps, Entra ID, Keycloak…).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OauthSource {
    /// The authorization server's token endpoint; also the assertion's `aud`.
    pub token_url: String,
    /// The client id; the assertion's `iss` and `sub`.
    pub client_id: String,
    /// The `scope` asked for, when set.
    pub scope: Option<String>,
    /// How the client authenticates.
    pub client_auth: ClientAuth,
}

impl OauthSource {
    /// Validates the `oauth_client_credentials` block at `field`.
    pub(super) fn from_value(value: &Value, field: &str) -> Result<OauthSource, Error> {
        let block = object(value, field)?;
        allow_only(
            block,
            field,
            &[
                "token_url",
                "client_id",
                "scope",
                "private_key_file",
                "key_id",
                "client_secret_env",
            ],
        )?;
        let token_url = required_string(block, field, "token_url")?;
        let url_field = path(field, "token_url");
        let origin = origin::origin(&token_url).map_err(|e| Error::config(&url_field, e))?;
        if !origin.starts_with("https://") && !origin::is_loopback(&origin) {
            return Err(Error::config(
                url_field,
                "must use https (plain http is only allowed for localhost, 127.0.0.1 and [::1])",
            ));
        }
        if token_url.contains('#') {
            return Err(Error::config(url_field, "must not have a fragment"));
        }
        let client_id = required_string(block, field, "client_id")?;
        let scope = optional_string(block, field, "scope")?;
        for (name, value) in [("client_id", Some(&client_id)), ("scope", scope.as_ref())] {
            if value.is_some_and(|v| v.chars().any(char::is_control)) {
                return Err(Error::config(
                    path(field, name),
                    "must not contain control characters",
                ));
            }
        }
        let key = optional_string(block, field, "private_key_file")?;
        let key_id = optional_string(block, field, "key_id")?;
        let secret_env = optional_string(block, field, "client_secret_env")?;
        let client_auth = match (key, secret_env) {
            (Some(_), Some(_)) => {
                return Err(Error::config(
                    field,
                    "has both `private_key_file` and `client_secret_env`; keep exactly one",
                ));
            }
            (None, None) => {
                return Err(Error::config(
                    field,
                    "needs `private_key_file` (private_key_jwt) or `client_secret_env` (client_secret_basic)",
                ));
            }
            (Some(private_key_file), None) => {
                if private_key_file.contains('\0') {
                    return Err(Error::config(
                        path(field, "private_key_file"),
                        "must not contain a NUL character",
                    ));
                }
                if key_id
                    .as_ref()
                    .is_some_and(|k| k.chars().any(char::is_control))
                {
                    return Err(Error::config(
                        path(field, "key_id"),
                        "must not contain control characters",
                    ));
                }
                ClientAuth::PrivateKeyJwt {
                    private_key_file,
                    key_id,
                }
            }
            (None, Some(client_secret_env)) => {
                if key_id.is_some() {
                    return Err(Error::config(
                        path(field, "key_id"),
                        "is only allowed with `private_key_file`",
                    ));
                }
                if client_secret_env.contains(['=', '\0']) {
                    return Err(Error::config(
                        path(field, "client_secret_env"),
                        "must be a variable name, without `=` or NUL characters",
                    ));
                }
                ClientAuth::ClientSecretBasic { client_secret_env }
            }
        };
        Ok(OauthSource {
            token_url,
            client_id,
            scope,
            client_auth,
        })
    }
}
