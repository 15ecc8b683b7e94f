//! A minimal host of the anthropic-wif component, without this crate's
//! library: the five imported functions, a one-file policy, one call.
//!
//! ```sh
//! cargo run -p anthropic-wif-host --example minimal_host -- \
//!     auth.json /var/run/secrets/anthropic.com/token https://api.anthropic.com
//! ```

#![deny(unsafe_code)]

use wasmtime::component::{Component, HasSelf, Linker, bindgen};
use wasmtime::{Engine, Store};

bindgen!({ world: "federation", path: "../wit" });

use anthropic_wif::federation::capabilities::{
    self as caps, CapError, CommandOutput, Header, HttpRequest, HttpResponse,
};
use wasi::clocks::wall_clock::{self, Datetime};

/// Grants one file and one origin; denies variables and commands.
struct MinimalHost {
    granted_file: String,
    granted_origin: String,
    http: ureq::Agent,
}

impl caps::Host for MinimalHost {
    fn read_file(&mut self, path: String) -> Result<Vec<u8>, CapError> {
        if path != self.granted_file {
            return Err(CapError::Denied(format!("file {path} is not granted")));
        }
        std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => CapError::NotFound(path),
            std::io::ErrorKind::IsADirectory => CapError::IsDirectory(path),
            kind => CapError::Failed(kind.to_string()),
        })
    }

    fn get_env(&mut self, name: String) -> Result<Option<String>, CapError> {
        Err(CapError::Denied(format!(
            "environment variable {name} is not granted"
        )))
    }

    fn http_fetch(&mut self, request: HttpRequest) -> Result<HttpResponse, CapError> {
        let url =
            url::Url::parse(&request.url).map_err(|_| CapError::Failed("invalid URL".into()))?;
        let origin = url.origin().ascii_serialization();
        if origin != self.granted_origin || !url.username().is_empty() {
            return Err(CapError::Denied(format!("origin {origin} is not granted")));
        }
        let mut call = ureq::http::Request::builder()
            .method(request.method.as_str())
            .uri(url.as_str());
        for header in &request.headers {
            call = call.header(&header.name, &header.value);
        }
        let call = call
            .body(request.body)
            .map_err(|_| CapError::Failed("invalid request".into()))?;
        let mut response = self
            .http
            .run(call)
            .map_err(|_| CapError::Failed("request failed".into()))?;
        let headers = response.headers().iter().filter_map(|(name, value)| {
            Some(Header {
                name: name.to_string(),
                value: value.to_str().ok()?.to_string(),
            })
        });
        let headers = headers.collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec();
        let body = body.map_err(|_| CapError::TooLarge("body over 1 MiB".into()))?;
        Ok(HttpResponse {
            status: response.status().as_u16(),
            headers,
            body,
        })
    }

    fn run_command(
        &mut self,
        argv: Vec<String>,
        _timeout_ms: u32,
    ) -> Result<CommandOutput, CapError> {
        Err(CapError::Denied(format!(
            "command {} is not granted",
            argv.join(" ")
        )))
    }
}

impl wall_clock::Host for MinimalHost {
    fn now(&mut self) -> Datetime {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Datetime {
            seconds: now.as_secs(),
            nanoseconds: now.subsec_nanos(),
        }
    }

    fn resolution(&mut self) -> Datetime {
        Datetime {
            seconds: 0,
            nanoseconds: 1_000_000,
        }
    }
}

fn main() -> wasmtime::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, config_path, granted_file, granted_origin] = &args[..] else {
        return Err(wasmtime::format_err!(
            "usage: minimal_host CONFIG.json TOKEN_FILE ORIGIN"
        ));
    };
    let engine = Engine::default();
    let component = Component::new(&engine, anthropic_wif_host::EMBEDDED_COMPONENT)?;
    let mut linker = Linker::new(&engine);
    Federation::add_to_linker::<_, HasSelf<_>>(&mut linker, |host| host)?;
    let http = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into();
    let host = MinimalHost {
        granted_file: granted_file.clone(),
        granted_origin: granted_origin.clone(),
        http,
    };
    let mut store = Store::new(&engine, host);
    let federation = Federation::instantiate(&mut store, &component, &linker)?;
    let config = std::fs::read_to_string(config_path)?;
    match federation
        .anthropic_wif_federation_provider()
        .call_get_token(&mut store, &config)?
    {
        Ok(token) => println!("{}", token.token),
        Err(error) => eprintln!("no token: {error:?}"),
    }
    Ok(())
}
