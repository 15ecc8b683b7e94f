//! The component glue: the generated bindings, the imports behind
//! [`Capabilities`] and the `provider` export over [`Provider`] and its
//! [`Client`]s.

use std::cell::RefCell;

use crate::capabilities as logic;
use crate::{Capabilities, Client, Provider};

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

/// A token as the WIT returns it.
fn access_token(token: crate::AccessToken) -> wit::AccessToken {
    wit::AccessToken {
        assertion_sha256: token.assertion.to_hex(),
        token: token.token.into_string(),
        token_type: token.token_type,
        expires_at: token.expires_at,
        refresh_after: token.refresh_after,
        refresh_by: token.refresh_by,
        issued_at: token.issued_at,
    }
}

/// A token a host hands back; `None` when its fingerprint is not 64 hex
/// digits (it did not come from this component).
fn restored_token(token: wit::AccessToken) -> Option<crate::AccessToken> {
    Some(crate::AccessToken {
        assertion: crate::Fingerprint::from_hex(&token.assertion_sha256)?,
        token: crate::Secret::new(token.token),
        token_type: token.token_type,
        expires_at: token.expires_at,
        refresh_after: token.refresh_after,
        refresh_by: token.refresh_by,
        issued_at: token.issued_at,
    })
}

/// What a config needs, as the WIT lists it.
fn host_requirements(needs: crate::Requirements) -> wit::HostRequirements {
    let urls = |urls: Vec<crate::UrlRequirement>| {
        urls.into_iter()
            .map(|u| wit::UrlRequirement {
                template: u.template,
                origin: u.origin,
            })
            .collect()
    };
    wit::HostRequirements {
        env: needs.env,
        optional_env: needs.optional_env,
        files: needs.files,
        origins: needs.origins,
        urls: urls(needs.urls),
        when_set_urls: urls(needs.when_set_urls),
        commands: needs.commands,
    }
}

/// The exported `client` resource.
struct ClientResource(Client);

impl wit::GuestClient for ClientResource {
    fn new(config: String) -> Result<ClientResource, wit::Error> {
        PROVIDER
            .with(|p| p.borrow_mut().client(&config))
            .map(ClientResource)
            .map_err(error)
    }

    fn token(&self) -> Result<wit::AccessToken, wit::Error> {
        self.0
            .token(&HostCapabilities)
            .map(access_token)
            .map_err(error)
    }

    fn token_valid_for(&self, seconds: u32) -> Result<wit::AccessToken, wit::Error> {
        self.0
            .token_valid_for(&HostCapabilities, u64::from(seconds))
            .map(access_token)
            .map_err(error)
    }

    fn invalidate(&self) {
        self.0.invalidate();
    }

    fn invalidate_rejected(&self, token: String) {
        self.0.invalidate_rejected(&token);
    }

    fn restore(&self, token: wit::AccessToken) {
        if let Some(token) = restored_token(token) {
            self.0.restore(&token);
        }
    }

    fn requirements(&self) -> wit::HostRequirements {
        host_requirements(self.0.requirements().clone())
    }

    fn identity_token(&self) -> Result<String, wit::Error> {
        self.0
            .identity_token(&HostCapabilities)
            .map(crate::Secret::into_string)
            .map_err(error)
    }
}

/// The exported `provider` interface.
struct Component;

impl wit::Guest for Component {
    type Client = ClientResource;

    fn get_token(config: String) -> Result<wit::AccessToken, wit::Error> {
        let client = PROVIDER.with(|p| p.borrow_mut().client(&config));
        client
            .and_then(|client| client.token(&HostCapabilities))
            .map(access_token)
            .map_err(error)
    }
}

export!(Component);
