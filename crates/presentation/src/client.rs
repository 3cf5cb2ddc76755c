//! The client's address: the peer of the connection, or, when the peer is a proxy the
//! service trusts, the address that proxy says it forwarded the request for.
//!
//! Forwarded headers (`Forwarded`, `X-Forwarded-For`) are whatever the sender wrote, so
//! they are read only when the connection comes from a trusted proxy, and then from the
//! right: each trusted proxy appends the address it received from, so the right-most
//! address that is not itself a trusted proxy is the first one no trusted proxy can
//! vouch for, which is the client. Everything left of it may be forged.

use std::future::{Ready, ready};
use std::net::IpAddr;
use std::str::FromStr;

use actix_web::dev::Payload;
use actix_web::http::header::HeaderMap;
use actix_web::{FromRequest, HttpRequest, web};

use crate::AppState;
use crate::error::ApiError;

/// Addresses and CIDR ranges of the proxies whose forwarded headers are believed; none
/// by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Network>);

/// An address and the length of its network prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Network {
    address: IpAddr,
    prefix: u8,
}

impl FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let refused = || format!("`{text}` is not an IP address or a CIDR range");
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address = IpAddr::from_str(address.trim()).map_err(|_| refused())?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|prefix| *prefix <= bits)
                .ok_or_else(refused)?,
            None => bits,
        };
        Ok(Self { address, prefix })
    }
}

impl Network {
    fn contains(self, address: IpAddr) -> bool {
        match (self.address, address.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

impl TrustedProxies {
    /// The proxies `entries` name: addresses (`10.0.0.7`) or ranges (`10.0.0.0/8`,
    /// `fd00::/8`).
    ///
    /// # Errors
    /// The first entry that is neither, in a sentence.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| entry.as_ref().parse())
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(address))
    }

    /// The client of a request that came from `peer` with `headers`.
    pub(crate) fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?.to_canonical();
        if !self.trusts(peer) {
            return Some(peer);
        }
        let chain = forwarded_chain(headers);
        let mut client = peer;
        for hop in chain.iter().rev() {
            // A hop that is not an address (`unknown`, an obfuscated name, garbage)
            // ends what can be believed: the last trusted hop is all that is known.
            let Some(address) = hop else {
                break;
            };
            client = *address;
            if !self.trusts(*address) {
                break;
            }
        }
        Some(client)
    }
}

/// The address of the request's client, as text: what the sign-in and registration
/// throttles count against and the logs show; `unknown` when the connection has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientAddress(pub String);

impl ClientAddress {
    pub(crate) fn of(request: &HttpRequest) -> Self {
        let peer = request.peer_addr().map(|peer| peer.ip());
        let client = match request.app_data::<web::Data<AppState>>() {
            Some(state) => state.trusted_proxies.client(peer, request.headers()),
            None => peer,
        };
        Self(client.map_or_else(|| "unknown".to_owned(), |client| client.to_string()))
    }
}

impl FromRequest for ClientAddress {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self::of(request)))
    }
}

/// The addresses the request was forwarded for, oldest first: from `Forwarded` when
/// there is one, else from `X-Forwarded-For`. `None` for a hop that is not an address.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(|hop| hop.trim().to_owned())
            .collect()
    };
    let forwarded = values("forwarded");
    if forwarded.is_empty() {
        values("x-forwarded-for")
            .iter()
            .map(|hop| parse_hop(hop))
            .collect()
    } else {
        forwarded
            .iter()
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, value)| parse_hop(value.trim().trim_matches('"')))
            })
            .collect()
    }
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1` or
/// `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(address) = IpAddr::from_str(hop) {
        return Some(address.to_canonical());
    }
    let host = match hop.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next()?,
        None => hop.rsplit_once(':').map_or(hop, |(host, _port)| host),
    };
    IpAddr::from_str(host)
        .ok()
        .map(|address| address.to_canonical())
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn ingress() -> TrustedProxies {
        TrustedProxies::parse(&["10.0.0.0/8", "fd00::/8"]).unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_headers_say() {
        let forged = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=1.2.3.4"),
        ]);
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(Some(ip("10.1.2.3")), &forged),
            Some(ip("10.1.2.3"))
        );
        // Nor is a peer outside the trusted ranges believed.
        assert_eq!(
            ingress().client(Some(ip("198.51.100.7")), &forged),
            Some(ip("198.51.100.7"))
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_right_most_untrusted_address_is_the_client() {
        let sent = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.0.0.4")]);
        // 6.6.6.6 is what the client claimed; 203.0.113.9 is who reached the first
        // trusted proxy.
        assert_eq!(
            ingress().client(Some(ip("10.0.0.5")), &sent),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn forwarded_is_read_before_x_forwarded_for_with_ports_brackets_and_quotes() {
        let sent = headers(&[
            (
                "forwarded",
                "for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.9",
            ),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(
            ingress().client(Some(ip("10.0.0.5")), &sent),
            Some(ip("2001:db8::7"))
        );
        let sent = headers(&[("x-forwarded-for", "192.0.2.1:5555")]);
        assert_eq!(
            ingress().client(Some(ip("10.0.0.5")), &sent),
            Some(ip("192.0.2.1"))
        );
    }

    #[test]
    fn a_hop_that_is_not_an_address_stops_the_walk_at_the_last_trusted_one() {
        let sent = headers(&[("x-forwarded-for", "203.0.113.9, garbage, 10.0.0.4")]);
        assert_eq!(
            ingress().client(Some(ip("10.0.0.5")), &sent),
            Some(ip("10.0.0.4"))
        );
        let nothing = headers(&[]);
        assert_eq!(
            ingress().client(Some(ip("10.0.0.5")), &nothing),
            Some(ip("10.0.0.5"))
        );
    }

    #[test]
    fn an_ipv4_peer_written_as_ipv6_is_matched_as_ipv4() {
        let sent = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            ingress().client(Some(ip("::ffff:10.0.0.5")), &sent),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn an_entry_that_is_neither_an_address_nor_a_range_is_refused() {
        for bad in ["10.0.0.0/33", "ingress", "10.0.0.0/", "::/129"] {
            assert!(TrustedProxies::parse(&[bad]).is_err(), "{bad}");
        }
        assert!(TrustedProxies::parse(&["0.0.0.0/0", "::1"]).is_ok());
    }
}
