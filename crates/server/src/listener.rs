//! What the accept loop listens on: a TCP listener (see [`crate::listen`]) or a Unix socket
//! (docker_auth's `server.net: unix`, for a reverse proxy on the same host), and who is on the
//! other end of each accepted connection.
//!
//! A Unix socket path is taken over only when nothing answers on it (a stale socket left by a
//! crash); a live one is an address in use, and a path that is not a socket is never removed.
//! The socket file is removed again when the listener is dropped, if it is still ours.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use socket2::{Domain, SockAddr, Socket, Type};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::error::Error;
use crate::listen::BACKLOG;

/// Where a daemon listens, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenOn {
    /// An address and port.
    Tcp(SocketAddr),
    /// A Unix socket at this path.
    Unix(PathBuf),
}

impl fmt::Display for ListenOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(addr) => write!(f, "{addr}"),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl ListenOn {
    /// Binds it: [`crate::bind`] for TCP, [`bind_unix`] for a socket path.
    ///
    /// # Errors
    /// [`Error::Bind`] when the address is taken or not ours.
    pub fn bind(&self) -> Result<Listener, Error> {
        match self {
            Self::Tcp(addr) => crate::bind(*addr).map(Listener::Tcp),
            Self::Unix(path) => bind_unix(path),
        }
    }
}

/// A bound listener.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// A Unix socket, removed when dropped.
    Unix(UnixSocket),
}

impl From<TcpListener> for Listener {
    fn from(listener: TcpListener) -> Self {
        Self::Tcp(listener)
    }
}

/// A bound Unix socket and the file it made.
#[derive(Debug)]
pub struct UnixSocket {
    listener: UnixListener,
    path: PathBuf,
    /// The socket file's device and inode, so that drop removes only our own file.
    file: (u64, u64),
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.file_type().is_socket() && (m.dev(), m.ino()) == self.file);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The other end of an accepted connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// A TCP client.
    Tcp(SocketAddr),
    /// A process on this host, through the Unix socket (its address is whatever the proxy in
    /// front of it says).
    Unix,
}

impl Peer {
    /// The client's IP address, when the connection has one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Self::Tcp(addr) => Some(addr.ip().to_canonical()),
            Self::Unix => None,
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(addr) => write!(f, "{addr}"),
            Self::Unix => f.write_str("unix"),
        }
    }
}

/// An accepted connection.
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Listener {
    /// Where it listens (the port the kernel chose, for `:0`).
    ///
    /// # Errors
    /// When the TCP listener has no local address.
    pub fn local(&self) -> io::Result<ListenOn> {
        match self {
            Self::Tcp(l) => l.local_addr().map(ListenOn::Tcp),
            Self::Unix(u) => Ok(ListenOn::Unix(u.path.clone())),
        }
    }

    pub(crate) async fn accept(&self) -> io::Result<(Stream, Peer)> {
        match self {
            Self::Tcp(l) => {
                let (s, addr) = l.accept().await?;
                Ok((Stream::Tcp(s), Peer::Tcp(addr)))
            }
            Self::Unix(u) => {
                let (s, _) = u.listener.accept().await?;
                Ok((Stream::Unix(s), Peer::Unix))
            }
        }
    }
}

/// Listens on a Unix socket at `path`, replacing a stale socket file there.
///
/// # Errors
/// [`Error::Bind`] when something answers on `path`, when `path` is not a socket, or when the
/// socket cannot be made.
pub fn bind_unix(path: &Path) -> Result<Listener, Error> {
    let refuse = |cause: io::Error| Error::Bind {
        addr: ListenOn::Unix(path.to_owned()).to_string(),
        cause,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(refuse(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "another process is listening on it",
                )));
            }
            std::fs::remove_file(path).map_err(refuse)?;
        }
        Ok(_) => {
            return Err(refuse(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the path exists and is not a socket",
            )))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(refuse(e)),
    }
    let listen = || -> io::Result<UnixSocket> {
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        socket.bind(&SockAddr::unix(path)?)?;
        let meta = std::fs::symlink_metadata(path)?;
        socket.listen(BACKLOG)?;
        socket.set_nonblocking(true)?;
        let listener = UnixListener::from_std(std::os::unix::net::UnixListener::from(
            std::os::fd::OwnedFd::from(socket),
        ))?;
        Ok(UnixSocket {
            listener,
            path: path.to_owned(),
            file: (meta.dev(), meta.ino()),
        })
    };
    listen().map(Listener::Unix).map_err(refuse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stale_socket_is_replaced_a_live_one_refused_and_drop_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sock");
        // A socket file nobody listens on, as a crash leaves it.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let live = bind_unix(&path).unwrap();
        let again = bind_unix(&path).unwrap_err().to_string();
        assert!(again.contains("another process is listening"), "{again}");
        let (connected, accepted) = tokio::join!(UnixStream::connect(&path), live.accept());
        connected.unwrap();
        assert_eq!(accepted.unwrap().1, Peer::Unix);
        assert_eq!(
            live.local().unwrap().to_string(),
            format!("unix:{}", path.display())
        );
        drop(live);
        assert!(!path.exists(), "the socket file outlived its listener");
    }

    #[test]
    fn a_file_that_is_not_a_socket_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, "keep me").unwrap();
        let err = bind_unix(&path).unwrap_err().to_string();
        assert!(err.contains("not a socket"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
    }

    #[test]
    fn a_replaced_socket_file_is_not_removed_by_the_old_listener() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sock");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let old = bind_unix(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let _other = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(old);
        assert!(path.exists(), "dropped someone else's socket file");
    }
}
