//! Where the gateway listens: the `--listen` address, the refusal of an
//! address that would make it forward to itself, binding (a stale Unix
//! socket is replaced, anything else at its path refused; a new socket is
//! 0600 before anyone can connect), and removing the socket file it
//! created.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

/// The listen queue of the gateway's socket.
const BACKLOG: i32 = 1024;

/// Where the gateway listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A loopback TCP address.
    Tcp(SocketAddr),
    /// A Unix socket path.
    Unix(PathBuf),
}

/// Why a `--listen` address, or the upstream for it, is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// `unix:` without a path.
    #[error("--listen unix: needs a socket path")]
    EmptySocketPath,
    /// Neither `IP:PORT` nor `unix:PATH`.
    #[error("--listen {text:?} is neither IP:PORT nor unix:PATH")]
    Unparsable {
        /// What was given.
        text: String,
    },
    /// Not a loopback address.
    #[error(
        "--listen {address} is not a loopback address: the gateway hands out credentials, so it \
         listens only on 127.0.0.1, ::1 or a Unix socket"
    )]
    NotLoopback {
        /// The address.
        address: SocketAddr,
    },
    /// The upstream is the listen address itself.
    #[error(
        "the config's base_url {upstream} is the gateway's own --listen address {address}: \
         every request would be forwarded back to the gateway; set base_url to the API the \
         gateway forwards to, or listen elsewhere"
    )]
    Loop {
        /// The upstream base URL.
        upstream: String,
        /// The listen address.
        address: SocketAddr,
    },
}

impl AddressError {
    /// Always false: an address is refused for what it is, and the same
    /// address is refused again.
    pub fn is_transient(&self) -> bool {
        false
    }
}

impl Listen {
    /// Parses `127.0.0.1:PORT`, `[::1]:PORT` or `unix:PATH`; any
    /// non-loopback address is refused.
    pub fn parse(text: &str) -> Result<Listen, AddressError> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(AddressError::EmptySocketPath);
            }
            return Ok(Listen::Unix(PathBuf::from(path)));
        }
        let address: SocketAddr = text.parse().map_err(|_| AddressError::Unparsable {
            text: text.to_string(),
        })?;
        if !address.ip().is_loopback() {
            return Err(AddressError::NotLoopback { address });
        }
        Ok(Listen::Tcp(address))
    }

    /// Refuses an `upstream` that is this address: the gateway would
    /// forward every request to itself. The upstream's host counts as this
    /// address when it is the same IP (an IPv4-mapped IPv6 address
    /// included) or `localhost`, and the ports match (the scheme's default
    /// port when the URL names none). Names are not resolved.
    pub fn refuse_loop(&self, upstream: &str) -> Result<(), AddressError> {
        let Listen::Tcp(address) = self else {
            return Ok(());
        };
        let Ok(url) = url::Url::parse(upstream) else {
            return Ok(());
        };
        let same_host = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).to_canonical() == address.ip(),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).to_canonical() == address.ip(),
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                name == "localhost" || name.ends_with(".localhost")
            }
            None => false,
        };
        if same_host && url.port_or_known_default() == Some(address.port()) {
            return Err(AddressError::Loop {
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
    /// The new socket at the path is not the private socket just made
    /// (the path was swapped while it was being made).
    #[error("cannot listen on unix:{}: the socket file changed while it was being made private", path.display())]
    Swapped {
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
    /// Whether trying again may succeed: another process is listening (it
    /// may stop), the socket changed while it was made, or a passing I/O
    /// failure (an address still in use). Something that is not a socket
    /// at the path stays there until someone removes it.
    pub fn is_transient(&self) -> bool {
        match self {
            ListenError::InUse { .. } | ListenError::Swapped { .. } => true,
            ListenError::Io { source, .. } => {
                anthropic_wif_host::net::errors::is_transient_io(source.kind())
            }
            ListenError::NotASocket { .. } => false,
        }
    }
}

/// A bound listening socket. Dropping it stops accepting and, for a Unix
/// socket, removes the socket file it created (unless another file has
/// replaced it since).
pub struct Listener {
    socket: Socket,
    #[cfg(unix)]
    created: Option<CreatedSocket>,
}

/// The bound socket.
pub(super) enum Socket {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix socket listener.
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixListener),
}

/// The socket file a listener created, told apart from a later one at the
/// same path by its device and inode.
#[cfg(unix)]
struct CreatedSocket {
    path: PathBuf,
    device: u64,
    inode: u64,
}

impl Listener {
    /// Binds `listen`. At a Unix socket path, a socket nobody accepts on
    /// (left by a process that ended without removing it) is replaced;
    /// a live socket, or any other kind of file, is refused. A new Unix
    /// socket is made 0600 whatever the umask, between `bind` and
    /// `listen`: nobody can connect before it is private.
    pub fn bind(listen: &Listen) -> Result<Listener, ListenError> {
        let failed = |source| ListenError::Io {
            listen: listen.clone(),
            source,
        };
        match listen {
            Listen::Tcp(address) => {
                let socket = bind_tcp(*address).map_err(failed)?;
                Ok(Listener {
                    socket: Socket::Tcp(socket),
                    #[cfg(unix)]
                    created: None,
                })
            }
            #[cfg(unix)]
            Listen::Unix(path) => {
                remove_stale_socket(path, listen)?;
                let (socket, created) = bind_private_socket(path, listen)?;
                Ok(Listener {
                    socket: Socket::Unix(socket),
                    created: Some(created),
                })
            }
            #[cfg(not(unix))]
            Listen::Unix(_) => Err(failed(io::Error::other("Unix sockets need a Unix system"))),
        }
    }

    /// The address it listens on, with the port the system chose for
    /// `127.0.0.1:0`.
    pub fn address(&self) -> io::Result<Listen> {
        match &self.socket {
            Socket::Tcp(listener) => listener.local_addr().map(Listen::Tcp),
            #[cfg(unix)]
            Socket::Unix(_) => Ok(Listen::Unix(
                self.created
                    .as_ref()
                    .map(|c| c.path.clone())
                    .unwrap_or_default(),
            )),
        }
    }

    /// A second handle on the listening socket (non-blocking), for the
    /// server's event loop; this listener keeps the socket file.
    pub(super) fn socket(&self) -> io::Result<Socket> {
        match &self.socket {
            Socket::Tcp(listener) => listener.try_clone().map(Socket::Tcp),
            #[cfg(unix)]
            Socket::Unix(listener) => listener.try_clone().map(Socket::Unix),
        }
    }
}

/// Binds a non-blocking TCP listener on `address` with a listen queue of
/// [`BACKLOG`] (the standard library's is 128: a burst of new connections
/// beyond it would be reset).
fn bind_tcp(address: SocketAddr) -> io::Result<TcpListener> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType, sockopt};
    let family = match address {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    let socket = rustix::net::socket_with(
        family,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    sockopt::set_socket_reuseaddr(&socket, true)?;
    rustix::net::bind(&socket, &address)?;
    rustix::net::listen(&socket, BACKLOG)?;
    Ok(TcpListener::from(socket))
}

/// Binds a Unix socket at `path`, made 0600 before it listens; the
/// listener and the file it made.
#[cfg(unix)]
fn bind_private_socket(
    path: &Path,
    listen: &Listen,
) -> Result<(std::os::unix::net::UnixListener, CreatedSocket), ListenError> {
    use rustix::fs::{Mode, chmod};
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    let failed = |source: io::Error| ListenError::Io {
        listen: listen.clone(),
        source,
    };
    let socket = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .map_err(|e| failed(e.into()))?;
    let address = SocketAddrUnix::new(path).map_err(|e| failed(e.into()))?;
    rustix::net::bind(&socket, &address).map_err(|e| failed(e.into()))?;
    // Not listening yet: a connect fails until `listen`, so the mode the
    // umask gave the file is never usable by anyone.
    let made_private = chmod(path, Mode::from_raw_mode(0o600));
    let metadata = std::fs::symlink_metadata(path);
    let created = match (made_private, metadata) {
        (Ok(()), Ok(metadata))
            if metadata.file_type().is_socket()
                && metadata.permissions().mode() & 0o777 == 0o600 =>
        {
            CreatedSocket {
                path: path.to_path_buf(),
                device: metadata.dev(),
                inode: metadata.ino(),
            }
        }
        (Err(e), _) => return Err(failed(e.into())),
        (_, Err(e)) => return Err(failed(e)),
        _ => {
            return Err(ListenError::Swapped {
                path: path.to_path_buf(),
            });
        }
    };
    rustix::net::listen(&socket, BACKLOG).map_err(|e| failed(e.into()))?;
    Ok((std::os::unix::net::UnixListener::from(socket), created))
}

/// Makes room for a Unix socket at `path`: nothing there is fine; a socket
/// that refuses connections is stale and removed; anything else is an
/// error naming the path.
#[cfg(unix)]
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

#[cfg(unix)]
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
