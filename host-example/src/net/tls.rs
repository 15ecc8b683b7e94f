//! Which certificates the host trusts, and its TLS client configuration.
//!
//! Trust is the platform's, through `rustls-platform-verifier`: the OS
//! store on macOS and Windows; on Linux and other Unix systems the system
//! bundle, where `SSL_CERT_FILE` and `SSL_CERT_DIR`, when set, replace the
//! system roots (as OpenSSL, Python and Go read them; done by
//! `rustls-native-certs`). The policy's `[http] ca_files` are added to
//! those roots. TLS 1.2 is the minimum (1.2 and 1.3 are offered).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::ClientConfig;
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// The protocol versions offered: TLS 1.3 and TLS 1.2, nothing older.
pub static PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Reads the certificates of a PEM file. The error says what is wrong with
/// the file (never its contents).
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = crate::local_file::read_bytes(path, 16 * 1024 * 1024)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not a valid PEM file ({e})", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
            path.display()
        ));
    }
    Ok(certs)
}

/// Where the roots come from, in words, for `doctor` and errors.
pub fn roots_description(ca_files: &[PathBuf]) -> String {
    let mut out = platform_roots_description();
    for file in ca_files {
        out.push_str(&format!(" + {}", file.display()));
    }
    out
}

fn platform_roots_description() -> String {
    if cfg!(any(target_vendor = "apple", target_os = "windows")) {
        return "the operating system's trust store".into();
    }
    let file = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty());
    let dir = std::env::var_os("SSL_CERT_DIR").filter(|v| !v.is_empty());
    match (file, dir) {
        (None, None) => "the system CA bundle".into(),
        (file, dir) => {
            let named: Vec<String> = [("SSL_CERT_FILE", file), ("SSL_CERT_DIR", dir)]
                .into_iter()
                .filter_map(|(name, value)| Some(format!("{name}={}", value?.to_string_lossy())))
                .collect();
            format!("{} (instead of the system CA bundle)", named.join(", "))
        }
    }
}

/// The TLS client configuration: platform roots plus `ca_files`, TLS 1.2
/// minimum; `wrap` may wrap the verifier (e.g. to record what it saw).
pub fn client_config_with(
    ca_files: &[PathBuf],
    wrap: impl FnOnce(Arc<dyn ServerCertVerifier>) -> Arc<dyn ServerCertVerifier>,
) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut extra = Vec::new();
    for file in ca_files {
        extra.extend(load_ca_file(file)?);
    }
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())
            .map_err(|e| format!("cannot load the trusted CA certificates: {e}"))?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(|e| format!("TLS configuration: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(wrap(Arc::new(verifier)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A TLS client configuration built on first use (loading the system roots
/// costs time) and then shared.
#[derive(Debug)]
pub struct LazyClientConfig {
    ca_files: Vec<PathBuf>,
    config: OnceLock<Result<Arc<ClientConfig>, String>>,
}

impl LazyClientConfig {
    /// A configuration trusting the platform's roots and `ca_files`.
    pub fn new(ca_files: Vec<PathBuf>) -> LazyClientConfig {
        LazyClientConfig {
            ca_files,
            config: OnceLock::new(),
        }
    }

    /// The configuration, or why it cannot be built.
    pub fn get(&self) -> Result<Arc<ClientConfig>, String> {
        self.config
            .get_or_init(|| client_config_with(&self.ca_files, |verifier| verifier))
            .clone()
    }
}
