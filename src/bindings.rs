//! The component glue: the generated bindings, the imports behind
//! [`Capabilities`] and the `provider` export over [`Provider`].

use std::cell::RefCell;

use crate::capabilities as logic;
use crate::{Capabilities, Provider};

wit_bindgen::generate!({
    world: "federation",
    path: "wit",
    generate_all,
});

use anthropic_wif::federation::capabilities as host;
use exports::anthropic_wif::federation::provider as wit;

thread_local! {
    /// The component instance's provider and its token cache.
    static PROVIDER: RefCell<Provider> = RefCell::new(Provider::new());
}

/// The host's imports as [`Capabilities`].
struct HostCapabilities;

impl Capabilities for HostCapabilities {
    fn read_file(&self, path: &str) -> Result<Vec<u8>, logic::CapError> {
        host::read_file(path).map_err(cap_error)
    }

    fn get_env(&self, name: &str) -> Result<Option<String>, logic::CapError> {
        host::get_env(name).map_err(cap_error)
    }

    fn http_fetch(
        &self,
        request: &logic::HttpRequest,
    ) -> Result<logic::HttpResponse, logic::CapError> {
        let request = host::HttpRequest {
            method: request.method.clone(),
            url: request.url.clone(),
            headers: request
                .headers
                .iter()
                .map(|h| host::Header {
                    name: h.name.clone(),
                    value: h.value.clone(),
                })
                .collect(),
            body: request.body.clone(),
        };
        let response = host::http_fetch(&request).map_err(cap_error)?;
        Ok(logic::HttpResponse {
            status: response.status,
            headers: response
                .headers
                .into_iter()
                .map(|h| logic::Header {
                    name: h.name,
                    value: h.value,
                })
                .collect(),
            body: response.body,
        })
    }

    fn run_command(
        &self,
        argv: &[String],
        timeout_ms: u32,
    ) -> Result<logic::CommandOutput, logic::CapError> {
        let output = host::run_command(argv, timeout_ms).map_err(cap_error)?;
        Ok(logic::CommandOutput {
            exit_code: output.exit_code,
            stdout: output.stdout,
            stderr: output.stderr,
        })
    }

    fn now_millis(&self) -> u64 {
        let now = wasi::clocks::wall_clock::now();
        now.seconds
            .saturating_mul(1000)
            .saturating_add(u64::from(now.nanoseconds / 1_000_000))
    }
}

fn cap_error(error: host::CapError) -> logic::CapError {
    match error {
        host::CapError::Denied(d) => logic::CapError::Denied(d),
        host::CapError::NotFound(d) => logic::CapError::NotFound(d),
        host::CapError::IsDirectory(d) => logic::CapError::IsDirectory(d),
        host::CapError::Timeout(d) => logic::CapError::Timeout(d),
        host::CapError::TooLarge(d) => logic::CapError::TooLarge(d),
        host::CapError::Failed(d) => logic::CapError::Failed(d),
    }
}

fn error(error: crate::Error) -> wit::Error {
    use crate::{Capability, Error, SourceKind};
    match error {
        Error::InvalidConfig { field, message } => {
            wit::Error::InvalidConfig(wit::ConfigError { field, message })
        }
        Error::Denied { capability, detail } => wit::Error::Denied(wit::Denial {
            capability: match capability {
                Capability::ReadFile => "read-file",
                Capability::GetEnv => "get-env",
                Capability::HttpFetch => "http-fetch",
                Capability::RunCommand => "run-command",
            }
            .into(),
            detail,
        }),
        Error::SourceFailed {
            kind,
            federation_rule_id,
            message,
        } => wit::Error::SourceFailed(wit::SourceError {
            kind: match kind {
                SourceKind::File => wit::SourceKind::File,
                SourceKind::Env => wit::SourceKind::Env,
                SourceKind::Command => wit::SourceKind::Command,
                SourceKind::Url => wit::SourceKind::Url,
                SourceKind::Aws => wit::SourceKind::Aws,
                SourceKind::OauthClientCredentials => wit::SourceKind::OauthClientCredentials,
            },
            federation_rule_id,
            message,
        }),
        Error::ExchangeFailed(message) => wit::Error::ExchangeFailed(message),
        Error::ExchangeRejected(r) => wit::Error::ExchangeRejected(wit::Rejection {
            status: r.status,
            error: r.error,
            error_description: r.error_description,
            error_uri: r.error_uri,
            request_id: r.request_id,
            body_snippet: r.body_snippet,
            hint: r.hint,
        }),
        Error::MalformedResponse(message) => wit::Error::MalformedResponse(message),
    }
}

/// The exported `provider` interface.
struct Component;

impl wit::Guest for Component {
    fn get_token(config: String) -> Result<wit::AccessToken, wit::Error> {
        let token = PROVIDER.with(|p| p.borrow_mut().get_token(&HostCapabilities, &config));
        token
            .map(|t| wit::AccessToken {
                token: t.token.expose().to_string(),
                token_type: t.token_type,
                expires_at: t.expires_at,
                refresh_after: t.refresh_after,
                refresh_by: t.refresh_by,
                issued_at: t.issued_at,
                assertion_sha256: t.assertion.to_string(),
            })
            .map_err(error)
    }

    fn invalidate(config: String) {
        PROVIDER.with(|p| p.borrow_mut().invalidate(&config));
    }

    fn restore(config: String, token: wit::AccessToken) {
        // A token whose fingerprint is not 64 hex digits did not come from
        // `get-token`: there is nothing to restore.
        let Some(assertion) = crate::Fingerprint::from_hex(&token.assertion_sha256) else {
            return;
        };
        let token = crate::AccessToken {
            token: crate::Secret::new(token.token),
            token_type: token.token_type,
            expires_at: token.expires_at,
            refresh_after: token.refresh_after,
            refresh_by: token.refresh_by,
            issued_at: token.issued_at,
            assertion,
        };
        PROVIDER.with(|p| p.borrow_mut().restore(&config, &token));
    }

    fn requirements(config: String) -> Result<wit::HostRequirements, wit::Error> {
        let needs = PROVIDER.with(|p| p.borrow_mut().requirements(&config));
        needs
            .map(|n| {
                let urls = |urls: Vec<crate::UrlRequirement>| {
                    urls.into_iter()
                        .map(|u| wit::UrlRequirement {
                            template: u.template,
                            origin: u.origin,
                        })
                        .collect()
                };
                wit::HostRequirements {
                    env: n.env,
                    optional_env: n.optional_env,
                    files: n.files,
                    origins: n.origins,
                    urls: urls(n.urls),
                    when_set_urls: urls(n.when_set_urls),
                    commands: n.commands,
                }
            })
            .map_err(error)
    }

    fn identity_token(config: String) -> Result<String, wit::Error> {
        PROVIDER
            .with(|p| p.borrow_mut().identity_token(&HostCapabilities, &config))
            .map(|assertion| assertion.expose().to_string())
            .map_err(error)
    }
}

export!(Component);
