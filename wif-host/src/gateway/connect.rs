//! The connections to the upstream, for the pooled HTTP client of
//! [`super::upstream`]: by the route the policy chose (directly, through a
//! CONNECT tunnel of an `http://` or `https://` proxy with its credentials,
//! or through a SOCKS5 proxy), then TLS with the host's configuration
//! ([`anthropic_wif_host::net::tls`]) for an `https` upstream. A failure
//! is reported as the host's HTTP client reports it, so that
//! [`anthropic_wif_host::net::errors::explain`] explains it the same way.
//! Every read or write that makes no progress for the idle time fails.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anthropic_wif_host::net::errors::{ProxyTlsFailure, unwrap_rustls};
use anthropic_wif_host::net::proxy::Route;
use anthropic_wif_host::net::tls::LazyClientConfig;
use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

mod handshake;
mod idle;

use handshake::{socks5, tunnel};
use idle::Idle;

/// A byte stream of any of the layers (TCP, TLS, TLS in TLS).
trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// Opens connections to the upstream by one route.
#[derive(Clone)]
pub struct Connector {
    inner: Arc<Settings>,
}

/// What every connection shares.
struct Settings {
    route: Route,
    tls: LazyClientConfig,
    connect: Duration,
    idle: Duration,
}

impl Connector {
    /// Connects by `route`, trusting as `tls` says, within `connect`;
    /// then a read or write without progress for `idle` fails.
    pub fn new(route: Route, tls: LazyClientConfig, connect: Duration, idle: Duration) -> Self {
        Connector {
            inner: Arc::new(Settings {
                route,
                tls,
                connect,
                idle,
            }),
        }
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = Upstream;
    type Error = ureq::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Upstream, ureq::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ureq::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let settings = self.inner.clone();
        Box::pin(async move {
            let stream = tokio::time::timeout(settings.connect, settings.open(&uri))
                .await
                .map_err(|_| ureq::Error::Timeout(ureq::Timeout::Connect))??;
            Ok(Upstream(TokioIo::new(Idle::new(stream, settings.idle))))
        })
    }
}

/// The destination of a connection, from its URL.
struct Destination<'a> {
    /// The host, without the brackets of an IPv6 address.
    host: &'a str,
    port: u16,
    tls: bool,
}

impl<'a> Destination<'a> {
    fn of(uri: &'a Uri) -> Result<Destination<'a>, ureq::Error> {
        let tls = uri.scheme_str() == Some("https");
        let host = uri
            .host()
            .ok_or_else(|| ureq::Error::BadUri("the upstream URL has no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Destination { host, port, tls })
    }

    /// `host:port`, an IPv6 address in brackets.
    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl Settings {
    /// The stream to `uri`, by the route, TLS included.
    async fn open(&self, uri: &Uri) -> Result<Box<dyn Stream>, ureq::Error> {
        let destination = Destination::of(uri)?;
        let stream: Box<dyn Stream> = match &self.route {
            Route::Direct(_) => Box::new(tcp(destination.host, destination.port).await?),
            Route::Proxy { proxy, .. } if proxy.scheme().starts_with("socks5") => {
                let mut stream = tcp(proxy.host(), proxy.port()).await?;
                socks5(&mut stream, proxy, &destination).await?;
                Box::new(stream)
            }
            Route::Proxy { proxy, .. } => {
                let stream = tcp(proxy.host(), proxy.port()).await?;
                if proxy.scheme() == "https" {
                    let host = proxy.host().trim_start_matches('[').trim_end_matches(']');
                    let mut stream = self.tls(stream, host).await.map_err(|error| match error {
                        ureq::Error::Rustls(tls) => {
                            ureq::Error::Io(io::Error::other(ProxyTlsFailure(tls)))
                        }
                        other => other,
                    })?;
                    tunnel(&mut stream, proxy, &destination).await?;
                    Box::new(stream)
                } else {
                    let mut stream = stream;
                    tunnel(&mut stream, proxy, &destination).await?;
                    Box::new(stream)
                }
            }
        };
        if destination.tls {
            Ok(Box::new(self.tls(stream, destination.host).await?))
        } else {
            Ok(stream)
        }
    }

    /// TLS over `stream` with `host`.
    async fn tls<S: Stream>(
        &self,
        stream: S,
        host: &str,
    ) -> Result<tokio_rustls::client::TlsStream<S>, ureq::Error> {
        let config = self
            .tls
            .get()
            .map_err(|message| ureq::Error::Rustls(rustls::Error::General(message)))?;
        let name = ServerName::try_from(host)
            .map_err(|_| ureq::Error::Tls("the host is not a valid TLS server name"))?
            .to_owned();
        tokio_rustls::TlsConnector::from(config)
            .connect(name, stream)
            .await
            .map_err(unwrap_rustls)
    }
}

/// A TCP connection to `host:port`: each of its addresses in turn, the
/// first that answers. A name that does not resolve is
/// [`ureq::Error::HostNotFound`].
async fn tcp(host: &str, port: u16) -> Result<TcpStream, ureq::Error> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| ureq::Error::HostNotFound)?
            .collect(),
    };
    let mut last = ureq::Error::HostNotFound;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(error) => last = ureq::Error::Io(error),
        }
    }
    Err(last)
}

/// A connection to the upstream, as the pooled client takes it.
pub struct Upstream(TokioIo<Idle<Box<dyn Stream>>>);

impl Connection for Upstream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for Upstream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Upstream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
