//! `healthcrm healthcheck`: asks the server on this host whether it is
//! ready (`GET /ready` on `BIND_ADDR`) and exits 0 when it answers 200, 1
//! otherwise. For container health checks: the runtime image carries no
//! HTTP client, and this needs none of the server's settings but the
//! address.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// The address to probe: `BIND_ADDR`, with a wildcard host replaced by
/// loopback (a server bound to 0.0.0.0 answers on 127.0.0.1).
pub fn probe_addr(bind_addr: Option<&str>) -> Result<SocketAddr, String> {
    let raw = bind_addr.unwrap_or("127.0.0.1:8080");
    let mut addr: SocketAddr = raw
        .parse()
        .map_err(|_| format!("BIND_ADDR {raw:?} is not an address like 0.0.0.0:8080"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    Ok(addr)
}

/// `Ok` when `GET /ready` at `addr` answers 200 within `timeout`.
pub async fn probe(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let ask = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        stream
            .write_all(b"GET /ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| format!("cannot ask {addr}: {e}"))?;
        let mut head = [0u8; 32];
        let mut read = 0;
        while read < head.len() {
            match stream.read(&mut head[read..]).await {
                Ok(0) => break,
                Ok(n) => read += n,
                Err(e) => return Err(format!("no answer from {addr}: {e}")),
            }
        }
        let status_line = String::from_utf8_lossy(&head[..read]);
        if status_line.starts_with("HTTP/1.1 200 ") {
            Ok(())
        } else {
            Err(format!(
                "{addr}/ready answered {:?}",
                status_line.lines().next().unwrap_or("")
            ))
        }
    };
    tokio::time::timeout(timeout, ask)
        .await
        .map_err(|_| format!("{addr}/ready did not answer within {timeout:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_hosts_are_probed_on_loopback() {
        assert_eq!(
            probe_addr(Some("0.0.0.0:8080")).unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            probe_addr(Some("[::]:9000")).unwrap(),
            "[::1]:9000".parse().unwrap()
        );
        assert_eq!(probe_addr(None).unwrap(), "127.0.0.1:8080".parse().unwrap());
        assert!(probe_addr(Some("localhost")).is_err());
    }
}
