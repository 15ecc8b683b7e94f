//! What a config needs from the host, so a host can derive or approve its
//! policy before the first call.

use crate::config::{Config, IdentitySource};
use crate::error::Error;
use crate::exchange::token_endpoint;
use crate::expand;
use crate::origin::origin;

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
    /// Files.
    pub files: Vec<String>,
    /// Fixed origins: the token endpoint's and, when fixed, the identity
    /// URL's.
    pub origins: Vec<String>,
    /// Identity-token URLs as written.
    pub urls: Vec<UrlRequirement>,
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
        }
        if let Ok(endpoint) = origin(&token_endpoint(&config.base_url))
            && !needs.origins.contains(&endpoint)
        {
            needs.origins.push(endpoint);
        }
        Ok(needs)
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
}
