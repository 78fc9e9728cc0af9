//! The client's IP address behind reverse proxies. `X-Forwarded-For` is read
//! from the right: each proxy appends the address it received the request
//! from, so only the entries added by proxies the host trusts say anything;
//! whatever the client itself sent stands to their left and is never taken.

use std::net::IpAddr;

use ipnet::IpNet;

/// Which proxies in front of the app are trusted to report the client's
/// address in `X-Forwarded-For`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TrustedProxies {
    /// None: the connection's peer address is the client (the default).
    #[default]
    None,
    /// Exactly this many proxies stand in front of the app (a load balancer
    /// is 1; a CDN in front of it makes 2). The client is the address the
    /// outermost of them appended; a request with fewer entries did not come
    /// through them, and its peer address is taken.
    Hops(usize),
    /// Proxies at these addresses: the client is the rightmost entry that is
    /// not one of them, walking from the peer leftwards while each hop is
    /// trusted. A peer outside these networks is the client.
    Networks(Vec<IpNet>),
}

impl TrustedProxies {
    /// `Networks` from CIDR strings (`10.0.0.0/8`, `2001:db8::/32`, or a
    /// single address); an unparsable one is an error naming it.
    pub fn networks<I, S>(cidrs: I) -> Result<TrustedProxies, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        cidrs
            .into_iter()
            .map(|c| {
                let c = c.as_ref().trim();
                c.parse::<IpNet>()
                    .or_else(|_| c.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("not an IP network: {c:?}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies::Networks)
    }

    fn trusts(&self, ip: &IpAddr) -> bool {
        match self {
            TrustedProxies::Networks(nets) => nets.iter().any(|n| n.contains(ip)),
            _ => false,
        }
    }
}

/// One `X-Forwarded-For` entry as an address (`[v6]:port` and `v4:port`
/// forms included); anything else is `None`.
fn parse_entry(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sock) = s.parse::<std::net::SocketAddr>() {
        return Some(sock.ip());
    }
    None
}

/// The client's address from the peer and every `X-Forwarded-For` header
/// value (in order; several headers are one list).
pub(crate) fn client_ip<'a>(
    trusted: &TrustedProxies,
    peer: Option<IpAddr>,
    forwarded_for: impl IntoIterator<Item = &'a str>,
) -> Option<IpAddr> {
    let peer = peer?;
    let entries = || {
        forwarded_for
            .into_iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect::<Vec<&str>>()
    };
    match trusted {
        TrustedProxies::None => Some(peer),
        TrustedProxies::Hops(0) => Some(peer),
        TrustedProxies::Hops(n) => {
            let list = entries();
            // The outermost trusted proxy appended the client's address:
            // n entries from the right.
            match list.len().checked_sub(*n) {
                Some(i) => Some(parse_entry(list[i]).unwrap_or(peer)),
                None => Some(peer),
            }
        }
        TrustedProxies::Networks(_) => {
            if !trusted.trusts(&peer) {
                return Some(peer);
            }
            let mut client = peer;
            for entry in entries().into_iter().rev() {
                match parse_entry(entry) {
                    Some(ip) => {
                        client = ip;
                        if !trusted.trusts(&ip) {
                            break;
                        }
                    }
                    // Garbage: the hop before it is as far as we can trust.
                    None => break,
                }
            }
            Some(client)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("ip"))
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let got = client_ip(&TrustedProxies::None, ip("192.0.2.1"), ["1.2.3.4"]);
        assert_eq!(got, ip("192.0.2.1"));
    }

    #[test]
    fn hops_count_from_the_right_so_a_client_prefix_changes_nothing() {
        let one = TrustedProxies::Hops(1);
        // The load balancer appended 198.51.100.7; the client forged the rest.
        assert_eq!(
            client_ip(&one, ip("10.0.0.2"), ["1.2.3.4, 5.6.7.8, 198.51.100.7"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(&one, ip("10.0.0.2"), ["198.51.100.7"]),
            ip("198.51.100.7")
        );
        // Two headers are one list.
        assert_eq!(
            client_ip(&one, ip("10.0.0.2"), ["1.2.3.4", "198.51.100.7"]),
            ip("198.51.100.7")
        );
        let two = TrustedProxies::Hops(2);
        assert_eq!(
            client_ip(&two, ip("10.0.0.2"), ["1.2.3.4, 198.51.100.7, 10.0.0.9"]),
            ip("198.51.100.7")
        );
        // Fewer entries than proxies: it did not come through them.
        assert_eq!(client_ip(&two, ip("10.0.0.2"), ["1.2.3.4"]), ip("10.0.0.2"));
        assert_eq!(
            client_ip(&one, ip("10.0.0.2"), [] as [&str; 0]),
            ip("10.0.0.2")
        );
        // A forged non-address where the proxy's entry should be: the peer.
        assert_eq!(
            client_ip(&one, ip("10.0.0.2"), ["1.2.3.4, nonsense"]),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn networks_walk_left_while_the_hop_is_trusted() {
        let t = TrustedProxies::networks(["10.0.0.0/8", "2001:db8::/32"]).expect("cidrs");
        assert_eq!(
            client_ip(&t, ip("10.0.0.2"), ["6.6.6.6, 198.51.100.7, 10.1.1.1"]),
            ip("198.51.100.7")
        );
        // A peer outside the networks is the client, whatever it says.
        assert_eq!(
            client_ip(&t, ip("203.0.113.5"), ["198.51.100.7"]),
            ip("203.0.113.5")
        );
        // Every hop trusted: the leftmost.
        assert_eq!(client_ip(&t, ip("10.0.0.2"), ["10.3.3.3"]), ip("10.3.3.3"));
        // Ports and IPv6.
        assert_eq!(
            client_ip(&t, ip("2001:db8::1"), ["[2001:db9::5]:443"]),
            ip("2001:db9::5")
        );
        assert_eq!(
            client_ip(&t, ip("10.0.0.2"), ["198.51.100.7:1234"]),
            ip("198.51.100.7")
        );
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(
            client_ip(&t, ip("10.0.0.2"), ["evil, 10.4.4.4"]),
            ip("10.4.4.4")
        );
        assert!(TrustedProxies::networks(["10.0.0.0/33"]).is_err());
        assert!(TrustedProxies::networks(["10.0.0.1"]).is_ok());
    }
}
