//! The component's logic compiled natively, as the baseline of the "through
//! the component" rows.

use super::*;

/// The root crate's logic natively: std for files, variables, commands and
/// the clock, ureq for HTTP.
pub(crate) struct NativeCaps {
    pub(crate) agent: ureq::Agent,
}

impl NativeCaps {
    pub(crate) fn new() -> NativeCaps {
        NativeCaps {
            agent: bare_agent(),
        }
    }
}

impl anthropic_wif::Capabilities for NativeCaps {
    fn read_file(&self, path: &str) -> Result<Vec<u8>, anthropic_wif::CapError> {
        use anthropic_wif::CapError;
        std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => CapError::NotFound(path.into()),
            std::io::ErrorKind::IsADirectory => CapError::IsDirectory(path.into()),
            kind => CapError::Failed(format!("{path}: {kind}")),
        })
    }

    fn get_env(&self, name: &str) -> Result<Option<String>, anthropic_wif::CapError> {
        Ok(std::env::var(name).ok())
    }

    fn http_fetch(
        &self,
        request: &anthropic_wif::HttpRequest,
    ) -> Result<anthropic_wif::HttpResponse, anthropic_wif::CapError> {
        use anthropic_wif::{CapError, Header, HttpResponse};
        let failed = |e: ureq::Error| CapError::Failed(e.to_string());
        let mut response = match request.method.as_str() {
            "GET" => {
                let mut builder = self.agent.get(&request.url);
                for h in &request.headers {
                    builder = builder.header(&h.name, &h.value);
                }
                builder.call().map_err(failed)?
            }
            "POST" => {
                let mut builder = self.agent.post(&request.url);
                for h in &request.headers {
                    builder = builder.header(&h.name, &h.value);
                }
                builder.send(&request.body[..]).map_err(failed)?
            }
            other => return Err(CapError::Failed(format!("method {other}"))),
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                Some(Header {
                    name: name.as_str().to_string(),
                    value: value.to_str().ok()?.to_string(),
                })
            })
            .collect();
        let body = response.body_mut().read_to_vec().map_err(failed)?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    fn run_command(
        &self,
        argv: &[String],
        _timeout_ms: u32,
    ) -> Result<anthropic_wif::CommandOutput, anthropic_wif::CapError> {
        use anthropic_wif::CapError;
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| CapError::Failed("empty command".into()))?;
        let output = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| CapError::Failed(format!("{program}: {}", e.kind())))?;
        Ok(anthropic_wif::CommandOutput {
            exit_code: output.status.code(),
            stdout: output.stdout,
            stderr: output.stderr,
        })
    }

    fn now_millis(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default()
    }
}
