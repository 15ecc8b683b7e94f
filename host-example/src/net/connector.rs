//! The HTTP client's connection chain: SOCKS or CONNECT proxy, TCP, then
//! TLS with our own rustls configuration (see [`super::tls`]), in place of
//! ureq's, whose roots cannot be "the platform's plus these files"; and a
//! resolver whose failures say they are DNS failures.

use std::fmt;
use std::io::{Read, Write};
use std::sync::Arc;

use rustls::{ClientConnection, StreamOwned};
use rustls_pki_types::ServerName;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout,
    SocksConnector, TcpConnector, Transport, TransportAdapter,
};

use super::errors::ProxyTlsFailure;
use super::tls::LazyClientConfig;

/// An agent whose TLS is ours; `config` carries the proxy and timeouts,
/// `https_proxy` the host and port of an `https://` proxy, if that is the
/// proxy (its TLS failures are then told apart from the destination's).
pub(super) fn agent(
    config: ureq::config::Config,
    tls: Arc<LazyClientConfig>,
    https_proxy: Option<(String, u16)>,
) -> ureq::Agent {
    let chain =
        ().chain(SocksConnector::default())
            .chain(ConnectProxyConnector::default())
            .chain(TcpConnector::default())
            .chain(TlsConnector { tls, https_proxy });
    ureq::Agent::with_parts(config, chain, DnsResolver::default())
}

/// The system resolver, whose failures are all DNS failures: a lookup that
/// fails (ureq reports an I/O error, e.g. "Name or service not known") is
/// [`ureq::Error::HostNotFound`], one that runs out of time is a
/// [`ureq::Timeout::Resolve`] timeout.
#[derive(Debug, Default)]
struct DnsResolver {
    system: DefaultResolver,
}

impl Resolver for DnsResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        self.system
            .resolve(uri, config, timeout)
            .map_err(|error| match error {
                ureq::Error::Io(_) => ureq::Error::HostNotFound,
                ureq::Error::Timeout(_) => ureq::Error::Timeout(ureq::Timeout::Resolve),
                other => other,
            })
    }
}

/// Wraps the connection in TLS when the URL (the destination, or an
/// `https://` proxy) needs it.
struct TlsConnector {
    tls: Arc<LazyClientConfig>,
    https_proxy: Option<(String, u16)>,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector").finish()
    }
}

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Err(ureq::Error::ConnectionFailed);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let config = self
            .tls
            .get()
            .map_err(|message| ureq::Error::Rustls(rustls::Error::General(message)))?;
        let host = details
            .uri
            .host()
            .ok_or(ureq::Error::Tls("the URL has no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = details.uri.port_u16().unwrap_or(443);
        let to_proxy = self
            .https_proxy
            .as_ref()
            .is_some_and(|(proxy_host, proxy_port)| proxy_host == host && *proxy_port == port);
        let name = ServerName::try_from(host)
            .map_err(|_| ureq::Error::Tls("the host is not a valid TLS server name"))?
            .to_owned();
        let mut connection = ClientConnection::new(config, name)?;
        let mut socket = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        socket.set_timeout(details.timeout);
        connection
            .complete_io(&mut socket)
            .map_err(super::errors::unwrap_rustls)
            .map_err(|error| match error {
                ureq::Error::Rustls(tls) if to_proxy => {
                    ureq::Error::Io(std::io::Error::other(ProxyTlsFailure(tls)))
                }
                other => other,
            })?;
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(Either::B(TlsTransport {
            buffers,
            stream: StreamOwned::new(connection, socket),
        })))
    }
}

/// A TLS connection as a ureq transport.
struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport").finish()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream
            .write_all(output)
            .map_err(super::errors::unwrap_rustls)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self
            .stream
            .read(input)
            .map_err(super::errors::unwrap_rustls)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}
