//! What a config needs from the host, so a host can derive or approve its
//! policy before the first call.

use crate::config::{AwsSource, ClientAuth, Config, IdentitySource, OauthSource};
use crate::error::Error;
use crate::exchange::token_endpoint;
use crate::expand;
use crate::origin::origin;
use crate::sources::aws::{
    CONTAINER_HOST, CREDENTIAL_VARIABLES, ENDPOINT_VARIABLES, IMDS_ENDPOINT, REGION_VARIABLES,
    regional_origin,
};

/// An identity-token URL a config fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlRequirement {
    /// The URL as written, references unexpanded.
    pub template: String,
    /// Its origin, when no `${NAME}` or `${env.NAME}` decides it.
    pub origin: Option<String>,
}

/// The env vars, files, origins, URLs and commands a config uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Requirements {
    /// Environment variables, including every variable the identity URL and
    /// its header values reference (`NAME` for both `${NAME}` and
    /// `${env.NAME}`).
    pub env: Vec<String>,
    /// Environment variables read when they are set, unset being fine (the
    /// `aws` source's credential chain and overrides).
    pub optional_env: Vec<String>,
    /// Files. `${NAME}` stands for the file the variable `NAME` names, read
    /// only when it is set.
    pub files: Vec<String>,
    /// Fixed origins: the token endpoint's and, when fixed, the identity
    /// URL's.
    pub origins: Vec<String>,
    /// Identity-token URLs as written.
    pub urls: Vec<UrlRequirement>,
    /// URLs fetched only when every variable their template references is
    /// set (endpoint overrides, fallbacks).
    pub when_set_urls: Vec<UrlRequirement>,
    /// Commands, as argv.
    pub commands: Vec<Vec<String>>,
}

impl Requirements {
    /// What `config` needs.
    pub fn of(config: &Config) -> Result<Requirements, Error> {
        let mut needs = Requirements::default();
        match &config.identity_token {
            IdentitySource::File(path) => needs.files.push(path.clone()),
            IdentitySource::Env(name) => needs.env.push(name.clone()),
            IdentitySource::Command(argv) => needs.commands.push(argv.clone()),
            IdentitySource::Url { url, headers, .. } => {
                let templates = std::iter::once(url).chain(headers.iter().map(|(_, value)| value));
                for template in templates {
                    for name in expand::variables(template).map_err(|e| Error::config("", e.0))? {
                        if !needs.env.contains(&name) {
                            needs.env.push(name);
                        }
                    }
                }
                let fixed_origin = fixed_origin(url);
                needs.origins.extend(fixed_origin.clone());
                needs.urls.push(UrlRequirement {
                    template: url.clone(),
                    origin: fixed_origin,
                });
            }
            IdentitySource::Aws(aws) => needs.add_aws(aws),
            IdentitySource::OauthClientCredentials(oauth) => needs.add_oauth(oauth),
        }
        if let Ok(endpoint) = origin(&token_endpoint(&config.base_url))
            && !needs.origins.contains(&endpoint)
        {
            needs.origins.push(endpoint);
        }
        Ok(needs)
    }
}

impl Requirements {
    /// The `oauth_client_credentials` source: the key file or the secret
    /// variable, and the token endpoint's origin.
    fn add_oauth(&mut self, source: &OauthSource) {
        match &source.client_auth {
            ClientAuth::PrivateKeyJwt {
                private_key_file, ..
            } => self.files.push(private_key_file.clone()),
            ClientAuth::ClientSecretBasic { client_secret_env } => {
                self.env.push(client_secret_env.clone());
            }
        }
        self.origins.extend(origin(&source.token_url).ok());
    }

    /// The `aws` source: the region and endpoint variables, the credential
    /// chain's variables, endpoints and token file.
    fn add_aws(&mut self, source: &AwsSource) {
        let when_set = |template: String| UrlRequirement {
            origin: fixed_origin(&template),
            template,
        };
        match &source.region {
            Some(region) => self.origins.push(regional_origin(region)),
            None => {
                for name in REGION_VARIABLES {
                    self.optional_env.push(name.to_string());
                    self.when_set_urls
                        .push(when_set(format!("https://sts.${{{name}}}.amazonaws.com/")));
                }
            }
        }
        for name in ENDPOINT_VARIABLES {
            self.optional_env.push(name.to_string());
            self.when_set_urls.push(when_set(format!("${{{name}}}")));
        }
        self.optional_env
            .extend(CREDENTIAL_VARIABLES.iter().map(|name| name.to_string()));
        // The relative URI starts with `/`: the host is fixed.
        self.when_set_urls.push(UrlRequirement {
            template: format!("{CONTAINER_HOST}${{AWS_CONTAINER_CREDENTIALS_RELATIVE_URI}}"),
            origin: Some(CONTAINER_HOST.to_string()),
        });
        for name in [
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        ] {
            self.when_set_urls.push(when_set(format!("${{{name}}}")));
        }
        self.files.extend(
            [
                "${AWS_WEB_IDENTITY_TOKEN_FILE}",
                "${AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE}",
            ]
            .map(String::from),
        );
        self.origins.push(IMDS_ENDPOINT.to_string());
    }
}

/// The origin of `url` when the part up to the path holds no reference.
fn fixed_origin(url: &str) -> Option<String> {
    let after_scheme = url.split_once("://")?.1;
    let authority_end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    let head_len = url.len() - after_scheme.len() + authority_end;
    if expand::has_reference(&url[..head_len]) {
        return None;
    }
    origin(url).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(source: serde_json::Value) -> Requirements {
        let json = serde_json::json!({
            "type": "workload_identity_federation",
            "workload_identity_federation": {
                "federation_rule_id": "fdrl_1",
                "organization_id": "12345678-9abc-def0-1234-56789abcdef0",
                "identity_token": source
            }
        });
        Requirements::of(&Config::parse(&json.to_string()).unwrap()).unwrap()
    }

    #[test]
    fn file_env_and_command_sources() {
        let file = needs(serde_json::json!({"file": "/t"}));
        assert_eq!(file.files, ["/t"]);
        assert_eq!(file.origins, ["https://api.anthropic.com"]);
        assert_eq!(needs(serde_json::json!({"env": "TOK"})).env, ["TOK"]);
        assert_eq!(
            needs(serde_json::json!({"command": ["a", "b"]})).commands,
            [["a", "b"]]
        );
    }

    #[test]
    fn url_source_lists_every_variable_and_fixed_origins() {
        let url = needs(serde_json::json!({
            "url": "${REQ_URL}&audience=${AUD}",
            "headers": {"Authorization": "bearer ${REQ_TOKEN}", "X": "${AUD}"}
        }));
        assert_eq!(url.env, ["REQ_URL", "AUD", "REQ_TOKEN"]);
        assert_eq!(
            url.urls,
            [UrlRequirement {
                template: "${REQ_URL}&audience=${AUD}".into(),
                origin: None
            }]
        );
        assert_eq!(url.origins, ["https://api.anthropic.com"]);

        let fixed = needs(serde_json::json!({"url": "http://169.254.169.254/token?aud=${AUD}"}));
        assert_eq!(
            fixed.origins,
            ["http://169.254.169.254", "https://api.anthropic.com"]
        );
        assert_eq!(
            fixed.urls[0].origin.as_deref(),
            Some("http://169.254.169.254")
        );
        assert_eq!(fixed.env, ["AUD"]);
    }

    #[test]
    fn the_env_form_lists_the_bare_variable_name() {
        let url = needs(serde_json::json!({
            "url": "${env.ACTIONS_ID_TOKEN_REQUEST_URL}&audience=https://api.anthropic.com",
            "headers": {
                "Authorization": "bearer ${env.ACTIONS_ID_TOKEN_REQUEST_TOKEN}",
                "X-Same": "${ACTIONS_ID_TOKEN_REQUEST_TOKEN}"
            }
        }));
        assert_eq!(
            url.env,
            [
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
            ]
        );
        assert_eq!(
            url.urls[0].template,
            "${env.ACTIONS_ID_TOKEN_REQUEST_URL}&audience=https://api.anthropic.com",
            "the URL is kept as written"
        );
        assert_eq!(url.urls[0].origin, None);

        let fixed = needs(serde_json::json!({"url": "https://idp.example/t?aud=${env.AUD}"}));
        assert_eq!(fixed.urls[0].origin.as_deref(), Some("https://idp.example"));
        assert_eq!(fixed.env, ["AUD"]);
    }

    #[test]
    fn the_oauth_source_lists_its_key_or_secret_and_token_endpoint() {
        let key = needs(serde_json::json!({"oauth_client_credentials": {
            "token_url": "https://idp.example:8443/oauth2/v1/token",
            "client_id": "c",
            "private_key_file": "/keys/client.pem"
        }}));
        assert_eq!(key.files, ["/keys/client.pem"]);
        assert!(key.env.is_empty());
        assert_eq!(
            key.origins,
            ["https://idp.example:8443", "https://api.anthropic.com"]
        );
        let secret = needs(serde_json::json!({"oauth_client_credentials": {
            "token_url": "https://idp.example/oauth2/v1/token",
            "client_id": "c",
            "client_secret_env": "CLIENT_SECRET"
        }}));
        assert_eq!(secret.env, ["CLIENT_SECRET"]);
        assert!(secret.files.is_empty());
        assert_eq!(
            secret.origins,
            ["https://idp.example", "https://api.anthropic.com"]
        );
    }

    #[test]
    fn the_aws_source_lists_its_chain() {
        let env_region = needs(serde_json::json!({"aws": {}}));
        assert!(env_region.env.is_empty());
        assert_eq!(
            env_region.optional_env,
            [
                "AWS_REGION",
                "AWS_DEFAULT_REGION",
                "AWS_ENDPOINT_URL_STS",
                "AWS_ENDPOINT_URL",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN",
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_ROLE_ARN",
                "AWS_ROLE_SESSION_NAME",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                "AWS_EC2_METADATA_DISABLED",
                "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            ]
        );
        assert_eq!(
            env_region.files,
            [
                "${AWS_WEB_IDENTITY_TOKEN_FILE}",
                "${AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE}"
            ]
        );
        assert_eq!(
            env_region.origins,
            ["http://169.254.169.254", "https://api.anthropic.com"]
        );
        let templates: Vec<(&str, Option<&str>)> = env_region
            .when_set_urls
            .iter()
            .map(|u| (u.template.as_str(), u.origin.as_deref()))
            .collect();
        assert_eq!(
            templates,
            [
                ("https://sts.${AWS_REGION}.amazonaws.com/", None),
                ("https://sts.${AWS_DEFAULT_REGION}.amazonaws.com/", None),
                ("${AWS_ENDPOINT_URL_STS}", None),
                ("${AWS_ENDPOINT_URL}", None),
                (
                    "http://169.254.170.2${AWS_CONTAINER_CREDENTIALS_RELATIVE_URI}",
                    Some("http://169.254.170.2")
                ),
                ("${AWS_CONTAINER_CREDENTIALS_FULL_URI}", None),
                ("${AWS_EC2_METADATA_SERVICE_ENDPOINT}", None),
            ]
        );
        assert!(env_region.urls.is_empty());

        let fixed = needs(serde_json::json!({"aws": {"region": "eu-west-3"}}));
        assert_eq!(
            fixed.origins,
            [
                "https://sts.eu-west-3.amazonaws.com",
                "http://169.254.169.254",
                "https://api.anthropic.com"
            ]
        );
        assert!(!fixed.optional_env.iter().any(|n| n.ends_with("REGION")));
        assert_eq!(fixed.when_set_urls.len(), 5);
    }
}
