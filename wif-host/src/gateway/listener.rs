//! Where the gateway listens: the `--listen` address, the refusal of an
//! address that would make it forward to itself, binding (a stale Unix
//! socket is replaced, anything else at its path refused), accepting until
//! woken, and removing the socket file it created.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the gateway listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A loopback TCP address.
    Tcp(SocketAddr),
    /// A Unix socket path.
    Unix(PathBuf),
}

impl Listen {
    /// Parses `127.0.0.1:PORT`, `[::1]:PORT` or `unix:PATH`; any
    /// non-loopback address is refused.
    pub fn parse(text: &str) -> Result<Listen, ListenAddressError> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(ListenAddressError::NoSocketPath);
            }
            return Ok(Listen::Unix(PathBuf::from(path)));
        }
        let address: SocketAddr =
            text.parse()
                .map_err(|source| ListenAddressError::Unparsable {
                    text: text.to_string(),
                    source,
                })?;
        if !address.ip().is_loopback() {
            return Err(ListenAddressError::NotLoopback { address });
        }
        Ok(Listen::Tcp(address))
    }

    /// Refuses an `upstream` that is this address: the gateway would
    /// forward every request to itself. The upstream's host counts as this
    /// address when it is the same IP (an IPv4-mapped IPv6 address
    /// included) or a loopback name (`localhost`, `*.localhost`: see
    /// [`anthropic_wif_host::local_host::is_loopback_name`]), and the ports match (the scheme's default
    /// port when the URL names none). Names are not resolved.
    pub fn refuse_loop(&self, upstream: &str) -> Result<(), ListenAddressError> {
        let Listen::Tcp(address) = self else {
            return Ok(());
        };
        let Ok(url) = url::Url::parse(upstream) else {
            return Ok(());
        };
        let same_host = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).to_canonical() == address.ip(),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).to_canonical() == address.ip(),
            Some(url::Host::Domain(name)) => anthropic_wif_host::local_host::is_loopback_name(name),
            None => false,
        };
        if same_host && url.port_or_known_default() == Some(address.port()) {
            return Err(ListenAddressError::Loop {
                upstream: upstream.to_string(),
                address: *address,
            });
        }
        Ok(())
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Tcp(address) => write!(f, "{address}"),
            Listen::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Why a `--listen` address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListenAddressError {
    /// `unix:` without a path.
    #[error("--listen unix: needs a socket path")]
    NoSocketPath,
    /// Neither `IP:PORT` nor `unix:PATH`.
    #[error("--listen {text:?} is neither IP:PORT nor unix:PATH")]
    Unparsable {
        /// The address as given.
        text: String,
        /// Why it is not `IP:PORT`.
        #[source]
        source: std::net::AddrParseError,
    },
    /// An IP address that is not loopback.
    #[error(
        "--listen {address} is not a loopback address: the gateway hands out credentials, so it \
         listens only on 127.0.0.1, ::1 or a Unix socket"
    )]
    NotLoopback {
        /// The address.
        address: SocketAddr,
    },
    /// The upstream is the listen address itself ([`Listen::refuse_loop`]).
    #[error(
        "the config's base_url {upstream} is the gateway's own --listen address {address}: \
         every request would be forwarded back to the gateway; set base_url to the API the \
         gateway forwards to, or listen elsewhere"
    )]
    Loop {
        /// The config's base URL.
        upstream: String,
        /// The listen address.
        address: SocketAddr,
    },
}

impl ListenAddressError {
    /// Whether a retry may help: never, the command line or the config
    /// must change.
    pub fn is_transient(&self) -> bool {
        false
    }
}

/// Why the gateway cannot listen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// Something that is not a socket is at the socket path.
    #[error("cannot listen on unix:{}: it exists and is not a socket; refusing to replace it", path.display())]
    NotASocket {
        /// The socket path.
        path: PathBuf,
    },
    /// A process accepts connections on the socket at the path.
    #[error("cannot listen on unix:{}: another process is listening on that socket", path.display())]
    InUse {
        /// The socket path.
        path: PathBuf,
    },
    /// Binding (or inspecting the path) failed.
    #[error("cannot listen on {listen}: {source}")]
    Io {
        /// The address.
        listen: Listen,
        /// The failure.
        source: io::Error,
    },
}

impl ListenError {
    /// Whether a retry may help: when binding failed for a passing reason
    /// (the address still in use, an interruption; see
    /// [`anthropic_wif_host::net::errors::is_transient_io`]), or another process
    /// listens on the socket, which may be ending. A file that is not a
    /// socket stays until someone removes it.
    pub fn is_transient(&self) -> bool {
        match self {
            ListenError::NotASocket { .. } => false,
            ListenError::InUse { .. } => true,
            ListenError::Io { source, .. } => {
                anthropic_wif_host::net::errors::is_transient_io(source.kind())
            }
        }
    }
}

/// A bound listening socket. Dropping it stops accepting and, for a Unix
/// socket, removes the socket file it created (unless another file has
/// replaced it since).
pub struct Listener {
    socket: Socket,
    created: Option<CreatedSocket>,
}

enum Socket {
    Tcp(TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

/// The socket file a listener created, told apart from a later one at the
/// same path by its device and inode.
struct CreatedSocket {
    path: PathBuf,
    device: u64,
    inode: u64,
}

impl Listener {
    /// Binds `listen`. At a Unix socket path, a socket nobody accepts on
    /// (left by a process that ended without removing it) is replaced;
    /// a live socket, or any other kind of file, is refused.
    pub fn bind(listen: &Listen) -> Result<Listener, ListenError> {
        let failed = |source| ListenError::Io {
            listen: listen.clone(),
            source,
        };
        match listen {
            Listen::Tcp(address) => {
                let socket = TcpListener::bind(address).map_err(failed)?;
                // Accepting follows poll: a connection gone in
                // between must not block the loop.
                socket.set_nonblocking(true).map_err(failed)?;
                Ok(Listener {
                    socket: Socket::Tcp(socket),
                    created: None,
                })
            }
            Listen::Unix(path) => {
                use std::os::unix::fs::MetadataExt;
                remove_stale_socket(path, listen)?;
                let socket = std::os::unix::net::UnixListener::bind(path).map_err(failed)?;
                socket.set_nonblocking(true).map_err(failed)?;
                let metadata = std::fs::symlink_metadata(path).map_err(failed)?;
                Ok(Listener {
                    socket: Socket::Unix(socket),
                    created: Some(CreatedSocket {
                        path: path.clone(),
                        device: metadata.dev(),
                        inode: metadata.ino(),
                    }),
                })
            }
        }
    }

    /// The next connection, or `None` once `wake` is readable (a byte was
    /// written to its peer, or the peer was closed).
    pub fn accept_until(
        &self,
        wake: &std::os::unix::net::UnixStream,
    ) -> io::Result<Option<Connection>> {
        use rustix::event::{PollFd, PollFlags};
        use std::os::fd::AsFd;
        let listening = match &self.socket {
            Socket::Tcp(listener) => listener.as_fd(),
            Socket::Unix(listener) => listener.as_fd(),
        };
        loop {
            let mut fds = [
                PollFd::from_borrowed_fd(listening, PollFlags::IN),
                PollFd::from_borrowed_fd(wake.as_fd(), PollFlags::IN),
            ];
            rustix::io::retry_on_intr(|| rustix::event::poll(&mut fds, None))?;
            if !fds[1].revents().is_empty() {
                return Ok(None);
            }
            if !fds[0].revents().is_empty() {
                match self.accept() {
                    Ok(connection) => return Ok(Some(connection)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// The next connection, or `WouldBlock` when none is waiting. The
    /// connection itself is blocking.
    pub fn accept(&self) -> io::Result<Connection> {
        match &self.socket {
            Socket::Tcp(listener) => {
                let (stream, _) = listener.accept()?;
                stream.set_nonblocking(false)?;
                let _ = stream.set_nodelay(true);
                Ok(Connection::Tcp(stream))
            }
            Socket::Unix(listener) => {
                let (stream, _) = listener.accept()?;
                stream.set_nonblocking(false)?;
                Ok(Connection::Unix(stream))
            }
        }
    }
}

/// Makes room for a Unix socket at `path`: nothing there is fine; a socket
/// that refuses connections is stale and removed; anything else is an
/// error naming the path.
fn remove_stale_socket(path: &Path, listen: &Listen) -> Result<(), ListenError> {
    use std::os::unix::fs::FileTypeExt;
    let failed = |source| ListenError::Io {
        listen: listen.clone(),
        source,
    };
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(failed(e)),
    };
    if !metadata.file_type().is_socket() {
        return Err(ListenError::NotASocket { path: path.into() });
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(ListenError::InUse { path: path.into() }),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            std::fs::remove_file(path).map_err(failed)?;
            tracing::info!(path = %path.display(), "replaced a stale socket nobody listened on");
            Ok(())
        }
        Err(e) => Err(failed(e)),
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        let Some(created) = &self.created else {
            return;
        };
        let ours = std::fs::symlink_metadata(&created.path)
            .is_ok_and(|m| m.dev() == created.device && m.ino() == created.inode);
        if ours {
            let _ = std::fs::remove_file(&created.path);
        }
    }
}

/// One accepted client connection.
pub enum Connection {
    /// Over TCP.
    Tcp(TcpStream),
    /// Over a Unix socket.
    Unix(std::os::unix::net::UnixStream),
}

impl Connection {
    /// A second handle on the same connection (one reads, one writes).
    pub fn try_clone(&self) -> io::Result<Connection> {
        match self {
            Connection::Tcp(stream) => stream.try_clone().map(Connection::Tcp),
            Connection::Unix(stream) => stream.try_clone().map(Connection::Unix),
        }
    }

    /// Ends reads that wait longer than `timeout`.
    pub fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Connection::Tcp(stream) => stream.set_read_timeout(Some(timeout)),
            Connection::Unix(stream) => stream.set_read_timeout(Some(timeout)),
        }
    }
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Connection::Tcp(stream) => stream.read(buf),
            Connection::Unix(stream) => stream.read(buf),
        }
    }
}

impl Write for Connection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Connection::Tcp(stream) => stream.write(buf),
            Connection::Unix(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Connection::Tcp(stream) => stream.flush(),
            Connection::Unix(stream) => stream.flush(),
        }
    }
}
