//! Where a daemon listens: `host:port` as written in either config (`:5000` meaning every
//! interface, IPv6 included, as registry:2 and docker_auth mean it), binding dual-stack, and
//! raising the process's open-file limit so that the connection cap, not the kernel, decides
//! how many clients are served.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

use crate::error::Error;

/// Pending connections the kernel queues while the accept loop is at its cap.
pub(crate) const BACKLOG: i32 = 1024;

/// Parses `127.0.0.1:5000`, `[::1]:5000` or `:5000` (every interface: `[::]:5000`, bound
/// dual-stack by [`bind`]).
///
/// # Errors
/// [`Error::ListenAddr`] for anything else.
pub fn parse_listen_addr(text: &str) -> Result<SocketAddr, Error> {
    let parsed = match text.strip_prefix(':') {
        Some(port) => port
            .parse::<u16>()
            .ok()
            .map(|p| SocketAddr::from((Ipv6Addr::UNSPECIFIED, p))),
        None => text.parse().ok(),
    };
    parsed.ok_or_else(|| Error::ListenAddr(text.to_owned()))
}

/// Binds `addr`. The IPv6 wildcard `[::]` accepts IPv4 clients too (IPV6_V6ONLY off); on a host
/// without IPv6 it falls back to `0.0.0.0`.
///
/// # Errors
/// [`Error::Bind`] when the address is taken or not ours.
pub fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    let bound = match bind_socket(addr) {
        Err(e) if addr.ip() == Ipv6Addr::UNSPECIFIED && no_ipv6(&e) => {
            tracing::warn!("no IPv6 on this host: listening on IPv4 only");
            bind_socket(SocketAddr::from((Ipv4Addr::UNSPECIFIED, addr.port())))
        }
        other => other,
    };
    bound.map_err(|cause| Error::Bind {
        addr: addr.to_string(),
        cause,
    })
}

fn no_ipv6(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::AFNOSUPPORT.raw_os_error())
        || e.kind() == std::io::ErrorKind::AddrNotAvailable
}

fn bind_socket(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// Raises the soft open-file limit to the hard one (as Go's runtime does at start) and returns
/// the limit in force, or `None` when it cannot be read.
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if let (Some(soft), Some(hard)) = (limit.current, limit.maximum) {
        if soft < hard {
            limit.current = Some(hard);
            if let Err(e) = setrlimit(Resource::Nofile, limit) {
                tracing::warn!(error = %e, "cannot raise the open-file limit");
            }
        }
    }
    getrlimit(Resource::Nofile).current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            parse_listen_addr(":5000").unwrap(),
            "[::]:5000".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(parse_listen_addr("127.0.0.1:0").unwrap().port(), 0);
        assert!(parse_listen_addr("[::1]:5001").unwrap().is_ipv6());
        for bad in [
            "",
            ":",
            ":99999",
            "nope",
            "5000",
            "localhost:5000",
            "::1:5000",
        ] {
            assert!(parse_listen_addr(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_wildcard_accepts_ipv4_and_ipv6_clients() {
        let listener = bind(parse_listen_addr(":0").unwrap()).unwrap();
        let port = listener.local_addr().unwrap().port();
        for client in ["127.0.0.1", "::1"] {
            let ip: std::net::IpAddr = client.parse().unwrap();
            let connect = tokio::net::TcpStream::connect((ip, port));
            let (connected, accepted) = tokio::join!(connect, listener.accept());
            if client == "::1" && connected.is_err() {
                continue; // a host without IPv6 loopback
            }
            connected.unwrap();
            accepted.unwrap();
        }
    }

    #[test]
    fn the_fd_limit_is_the_hard_one() {
        let limit = raise_fd_limit();
        let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
        assert_eq!(limit, hard);
    }
}
