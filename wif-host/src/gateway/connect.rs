//! The connections to the upstream, for the pooled HTTP client of
//! [`super::upstream`]: by the route the policy chose (directly, through a
//! CONNECT tunnel of an `http://` or `https://` proxy with its credentials,
//! or through a SOCKS5 proxy), then TLS with the host's configuration
//! ([`anthropic_wif_host::net::tls`]) for an `https` upstream. A failure
//! is reported as the host's HTTP client reports it, so that
//! [`anthropic_wif_host::net::errors::explain`] explains it the same way.
//! Every read or write that makes no progress for the idle time fails.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anthropic_wif_host::net::errors::{ProxyTlsFailure, unwrap_rustls};
use anthropic_wif_host::net::proxy::{ProxyUrl, Route};
use anthropic_wif_host::net::tls::LazyClientConfig;
use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// The longest answer of a proxy to `CONNECT`, head included.
const MAX_CONNECT_ANSWER_BYTES: usize = 16 * 1024;

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

/// Opens a tunnel to `destination` through the HTTP proxy at the other end
/// of `stream`, with the proxy's credentials if it has any.
async fn tunnel<S: Stream>(
    stream: &mut S,
    proxy: &ProxyUrl,
    destination: &Destination<'_>,
) -> Result<(), ureq::Error> {
    let authority = destination.authority();
    let mut request = format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nProxy-Connection: Keep-Alive\r\n"
    );
    if let Some(credentials) = proxy.basic_credentials() {
        request.push_str(&format!("Proxy-Authorization: Basic {credentials}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
    // Byte by byte, so that nothing after the answer's head is taken from
    // the tunnel.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_CONNECT_ANSWER_BYTES {
            return Err(ureq::Error::ConnectProxyFailed(
                "proxy server answered with too long a head".into(),
            ));
        }
        match stream.read_u8().await {
            Ok(byte) => head.push(byte),
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(ureq::Error::ConnectProxyFailed(
                    "proxy server did not respond".into(),
                ));
            }
            Err(error) => return Err(ureq::Error::Io(error)),
        }
    }
    let status = std::str::from_utf8(&head)
        .ok()
        .filter(|head| head.starts_with("HTTP/1."))
        .and_then(|head| head.split_whitespace().nth(1))
        .and_then(|status| status.parse::<u16>().ok());
    match status {
        Some(200) => Ok(()),
        Some(status) => Err(ureq::Error::ConnectProxyFailed(format!(
            "proxy server responded {status}/{}",
            hyper::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or_default()
        ))),
        None => Err(ureq::Error::ConnectProxyFailed(
            "proxy server did not respond".into(),
        )),
    }
}

/// A SOCKS5 `CONNECT` (RFC 1928) to `destination` through the proxy at the
/// other end of `stream`, with a user name and password (RFC 1929) when
/// the proxy URL has them. `socks5://` resolves the destination here,
/// `socks5h://` lets the proxy resolve it.
async fn socks5(
    stream: &mut TcpStream,
    proxy: &ProxyUrl,
    destination: &Destination<'_>,
) -> Result<(), ureq::Error> {
    let credentials = proxy.credentials();
    let greeting: &[u8] = if credentials.is_some() {
        &[5, 2, 2, 0]
    } else {
        &[5, 1, 0]
    };
    stream.write_all(greeting).await?;
    let mut reply = [0u8; 2];
    stream.read_exact(&mut reply).await?;
    if reply[0] != 5 {
        return Err(socks_failure("the proxy does not speak SOCKS5"));
    }
    match (reply[1], &credentials) {
        (0, _) => {}
        (2, Some((user, password))) => {
            let mut request = vec![1];
            for part in [user, password] {
                let length = u8::try_from(part.len())
                    .map_err(|_| socks_failure("the proxy's user name or password is too long"))?;
                request.push(length);
                request.extend_from_slice(part.as_bytes());
            }
            stream.write_all(&request).await?;
            stream.read_exact(&mut reply).await?;
            if reply[1] != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "the SOCKS5 proxy did not accept its credentials",
                )
                .into());
            }
        }
        _ => return Err(socks_failure("the SOCKS5 proxy accepts no offered method")),
    }
    let mut request = vec![5, 1, 0];
    let ip = match destination.host.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) if proxy.scheme() == "socks5" => Some(
            tokio::net::lookup_host((destination.host, destination.port))
                .await
                .map_err(|_| ureq::Error::HostNotFound)?
                .next()
                .ok_or(ureq::Error::HostNotFound)?
                .ip(),
        ),
        Err(_) => None,
    };
    match ip {
        Some(IpAddr::V4(ip)) => {
            request.push(1);
            request.extend_from_slice(&ip.octets());
        }
        Some(IpAddr::V6(ip)) => {
            request.push(4);
            request.extend_from_slice(&ip.octets());
        }
        None => {
            let length = u8::try_from(destination.host.len())
                .map_err(|_| socks_failure("the host name is too long for SOCKS5"))?;
            request.push(3);
            request.push(length);
            request.extend_from_slice(destination.host.as_bytes());
        }
    }
    request.extend_from_slice(&destination.port.to_be_bytes());
    stream.write_all(&request).await?;
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).await?;
    if head[0] != 5 || head[1] != 0 {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!(
                "the SOCKS5 proxy refused the connection (reply {})",
                head[1]
            ),
        )
        .into());
    }
    let bound = match head[3] {
        1 => 4,
        4 => 16,
        3 => usize::from(stream.read_u8().await?),
        _ => {
            return Err(socks_failure(
                "the SOCKS5 proxy answered an unknown address type",
            ));
        }
    };
    let mut rest = vec![0u8; bound + 2];
    stream.read_exact(&mut rest).await?;
    Ok(())
}

/// A SOCKS5 exchange that went wrong.
fn socks_failure(what: &'static str) -> ureq::Error {
    ureq::Error::Io(io::Error::new(io::ErrorKind::InvalidData, what))
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

/// A stream whose reads and writes fail once neither made progress for
/// `idle` while one of them waited.
pub struct Idle<S> {
    inner: S,
    idle: Duration,
    /// The last progress.
    last: Instant,
    /// Wakes a waiting read or write when `idle` may have passed.
    deadline: Pin<Box<Sleep>>,
}

impl<S> Idle<S> {
    fn new(inner: S, idle: Duration) -> Idle<S> {
        Idle {
            inner,
            idle,
            last: Instant::now(),
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }

    /// After progress (the timer is moved only when it fires, which keeps
    /// each read and write cheap).
    fn progressed(&mut self) {
        self.last = Instant::now();
    }

    /// While waiting: an error once `idle` passed since the last progress.
    fn waiting<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        loop {
            if self.deadline.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let due = self.last + self.idle;
            if Instant::now() >= due {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the upstream made no progress",
                )));
            }
            self.deadline.as_mut().reset(due);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Idle<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                self.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => self.waiting(cx),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Idle<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(result) => {
                self.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => self.waiting(cx),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Ready(result) => Poll::Ready(result),
            Poll::Pending => self.waiting(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
