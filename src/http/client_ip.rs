//! Who the client is, as far as the network can tell: the socket peer, or,
//! when the peer is one of our reverse proxies (`TRUSTED_PROXIES`), the
//! address the proxies report in the one header they write
//! (`TRUSTED_PROXY_HEADER`: `X-Forwarded-For` or `Forwarded`, RFC 7239; the
//! other is never read, since a proxy passes it through from the client
//! untouched). Rate limits, the lockout and the audit trail all use this
//! one answer.
//!
//! The forwarding headers are read from the right: each trusted hop names
//! the one before it, and the first address that is not a trusted proxy is
//! the client. Anything a client wrote further left is never believed, and
//! from an untrusted peer the headers are ignored altogether.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, Request},
    http::{header, HeaderMap},
};
use ipnet::IpNet;

use crate::config::ProxyHeader;

/// The proxies to believe and the header they write.
#[derive(Debug, Clone)]
pub struct Proxies {
    pub trusted: std::sync::Arc<[IpNet]>,
    pub header: ProxyHeader,
}

/// The resolved client address, put in the request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct ResolvedClient(pub IpAddr);

/// Resolves the client of every request once, before anything needs it
/// (a step of `http::middleware`'s edge layer).
pub fn resolve(proxies: &Proxies, req: &mut Request) {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(peer) = peer {
        let client = client_of(peer, req.headers(), &proxies.trusted, proxies.header);
        req.extensions_mut().insert(ResolvedClient(client));
    }
}

fn trusted_hop(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    trusted.iter().any(|net| net.contains(&ip))
}

/// The client behind `peer`, given the request's forwarding headers.
pub fn client_of(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[IpNet],
    header: ProxyHeader,
) -> IpAddr {
    if trusted.is_empty() || !trusted_hop(peer, trusted) {
        return peer;
    }
    let chain = match header {
        ProxyHeader::Forwarded => forwarded_chain(headers),
        ProxyHeader::XForwardedFor => x_forwarded_for_chain(headers),
    };
    let mut client = peer;
    for hop in chain.iter().rev() {
        match hop {
            Some(ip) => {
                client = *ip;
                if !trusted_hop(*ip, trusted) {
                    break;
                }
            }
            // An obfuscated or unreadable hop: nothing left of it is ours
            // to believe; the last trusted proxy stands for the client.
            None => break,
        }
    }
    client
}

/// The addresses in `Forwarded`, leftmost (furthest) first; `None` for a
/// hop that is hidden (`unknown`, `_name`) or unreadable.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all(header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(','))
        .map(|element| {
            element
                .split(';')
                .filter_map(|pair| pair.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                .and_then(|(_, v)| parse_node(v))
        })
        .collect()
}

/// The addresses in `X-Forwarded-For`, leftmost first.
fn x_forwarded_for_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(','))
        .map(parse_node)
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:80`, `"[2001:db8::1]:443"`, `2001:db8::1`.
fn parse_node(raw: &str) -> Option<IpAddr> {
    let v = raw.trim().trim_matches('"').trim();
    if let Ok(ip) = v.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sock) = v.parse::<SocketAddr>() {
        return Some(sock.ip());
    }
    let bracketed = v.strip_prefix('[')?;
    bracketed.split(']').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const XFF: ProxyHeader = ProxyHeader::XForwardedFor;
    const FWD: ProxyHeader = ProxyHeader::Forwarded;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().expect("net")).collect()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let h = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(
            client_of(ip("203.0.113.9"), &h, &[], XFF),
            ip("203.0.113.9")
        );
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_of(ip("203.0.113.9"), &h, &trusted, XFF),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_first_untrusted_hop_from_the_right_is_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        // The client forged the leftmost entry; our two proxies appended.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 198.51.100.7, 10.0.0.5")]);
        assert_eq!(
            client_of(ip("10.0.0.1"), &h, &trusted, XFF),
            ip("198.51.100.7")
        );
        // Several header lines are one list.
        let h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(
            client_of(ip("10.0.0.1"), &h, &trusted, XFF),
            ip("198.51.100.7")
        );
        // No header: the proxy itself.
        assert_eq!(
            client_of(ip("10.0.0.1"), &HeaderMap::new(), &trusted, XFF),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn only_the_configured_header_is_read_and_forwarded_forms_parse() {
        let trusted = nets(&["10.0.0.0/8", "fd00::/8"]);
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.99"),
            (
                "forwarded",
                r#"for=192.0.2.43;proto=https, for="[2001:db8:cafe::17]:4711";by=10.0.0.2"#,
            ),
        ]);
        assert_eq!(
            client_of(ip("fd00::3"), &h, &trusted, FWD),
            ip("2001:db8:cafe::17")
        );
        // Behind a proxy that writes X-Forwarded-For, a client's own
        // Forwarded header is never read.
        assert_eq!(
            client_of(ip("fd00::3"), &h, &trusted, XFF),
            ip("198.51.100.99")
        );
        // A hidden hop stops the walk at the last trusted proxy.
        let h = headers(&[("forwarded", "for=192.0.2.43, for=_hidden")]);
        assert_eq!(client_of(ip("10.0.0.1"), &h, &trusted, FWD), ip("10.0.0.1"));
        let h = headers(&[("forwarded", r#"for="192.0.2.60:8080""#)]);
        assert_eq!(
            client_of(ip("10.0.0.1"), &h, &trusted, FWD),
            ip("192.0.2.60")
        );
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_networks() {
        let trusted = nets(&["127.0.0.1/32"]);
        let h = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(
            client_of(ip("::ffff:127.0.0.1"), &h, &trusted, XFF),
            ip("198.51.100.7")
        );
    }
}
