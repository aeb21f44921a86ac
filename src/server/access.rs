//! Who may ask a server: an access list of networks, checked against each client's
//! address before anything it sent is read.
//!
//! The local server recurses on its clients' behalf, which costs it upstream queries and
//! cache room and, left open to the world, makes it a tool for reflection and cache
//! poisoning; so, like Unbound (which answers only localhost unless `access-control`
//! says otherwise), it answers only this machine and the networks it is bound on unless
//! `--allow` lists others. The root and TLD servers answer everyone: authoritative
//! service is public.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::Arc;

/// A network: an address and a prefix length (`10.0.0.0/24`, `::1/128`). An address
/// alone is a network of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Net {
    /// The address with the bits past the prefix cleared.
    addr: IpAddr,
    prefix: u8,
}

/// Why a network could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    #[error("{0:?} is not an IP address or a network such as 10.0.0.0/24")]
    Address(String),
    #[error("prefix length {prefix:?} of {net:?} is not a number from 0 to {max}")]
    Prefix {
        net: String,
        prefix: String,
        max: u8,
    },
}

impl Net {
    /// The network of `prefix` bits around `addr` (its other bits cleared); `None` if the
    /// prefix is longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Net> {
        let addr = canonical(addr);
        let bits = max_prefix(addr);
        if prefix > bits {
            return None;
        }
        Some(Net {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// A network of one address.
    pub fn host(addr: IpAddr) -> Net {
        let addr = canonical(addr);
        Net {
            addr,
            prefix: max_prefix(addr),
        }
    }

    /// Whether `ip` is in the network. An IPv4 client seen through an IPv6 socket
    /// (`::ffff:10.0.0.1`) counts as the IPv4 address it is.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

/// The address an IPv4-mapped IPv6 address stands for; any other as it is.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

fn max_prefix(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `ip` with every bit past the first `prefix` cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & kept))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & kept))
        }
    }
}

impl FromStr for Net {
    type Err = NetError;

    /// `ADDR/PREFIX` or `ADDR`. Bits past the prefix may be set (`10.0.0.7/24` is
    /// `10.0.0.0/24`), as `ip addr` prints an interface's network.
    fn from_str(s: &str) -> Result<Net, NetError> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| NetError::Address(s.to_owned()))?;
        let Some(prefix) = prefix else {
            return Ok(Net::host(addr));
        };
        let max = max_prefix(addr);
        let bad = || NetError::Prefix {
            net: s.to_owned(),
            prefix: prefix.to_owned(),
            max,
        };
        let bits: u8 = prefix.trim().parse().map_err(|_| bad())?;
        // An IPv4-mapped IPv6 network names IPv4 addresses: its prefix counts from bit 96.
        match (addr, canonical(addr)) {
            (IpAddr::V6(_), IpAddr::V4(_)) if (96..=128).contains(&bits) => {
                Net::new(addr, bits - 96).ok_or_else(bad)
            }
            _ => Net::new(addr, bits).ok_or_else(bad),
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Which clients a server answers, as configured; [`Allow::resolve`] makes it an
/// [`Access`] once the address the server binds is known.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Allow {
    /// Every client (the root and TLD servers).
    #[default]
    Everyone,
    /// Loopback, and the networks of the address the server binds: of the interface
    /// that holds it, or of every interface when it binds an unspecified address
    /// (`0.0.0.0`, `::`). The local server's default.
    BoundNetworks,
    /// Exactly these networks (`--allow`), loopback included only if listed.
    Only(Vec<Net>),
}

/// Loopback, always among the bound networks: this machine's own programs.
const LOOPBACK: [Net; 2] = [
    Net {
        addr: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)),
        prefix: 8,
    },
    Net {
        addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
        prefix: 128,
    },
];

impl Allow {
    /// The access list of a server bound to `bind`. Only [`Allow::BoundNetworks`]
    /// reads the machine's interfaces, and fails only if they cannot be read.
    pub fn resolve(&self, bind: IpAddr) -> io::Result<Access> {
        Ok(match self {
            Allow::Everyone => Access::everyone(),
            Allow::Only(nets) => Access::only(nets.clone()),
            Allow::BoundNetworks => {
                let interfaces = if bind.is_loopback() {
                    Vec::new()
                } else {
                    if_addrs::get_if_addrs()?
                        .into_iter()
                        .filter_map(|i| interface_net(&i.addr))
                        .collect()
                };
                Access::only(bound_networks(bind, &interfaces))
            }
        })
    }
}

/// The network of an interface's address.
fn interface_net(addr: &if_addrs::IfAddr) -> Option<Net> {
    match addr {
        if_addrs::IfAddr::V4(a) => Net::new(IpAddr::V4(a.ip), a.prefixlen),
        if_addrs::IfAddr::V6(a) => Net::new(IpAddr::V6(a.ip), a.prefixlen),
    }
}

/// Loopback and the networks of `bind` among `interfaces` (the networks of the
/// machine's interface addresses): every one for an unspecified address; for another,
/// those that hold it, or the address alone if no interface network does.
fn bound_networks(bind: IpAddr, interfaces: &[Net]) -> Vec<Net> {
    let mut nets = LOOPBACK.to_vec();
    let bound: Vec<Net> = if bind.is_unspecified() {
        interfaces.to_vec()
    } else if bind.is_loopback() {
        Vec::new()
    } else {
        let holding: Vec<Net> = interfaces
            .iter()
            .filter(|n| n.contains(bind))
            .copied()
            .collect();
        if holding.is_empty() {
            vec![Net::host(bind)]
        } else {
            holding
        }
    };
    for net in bound {
        if !nets
            .iter()
            .any(|n| n.prefix <= net.prefix && n.contains(net.addr))
        {
            nets.push(net);
        }
    }
    nets
}

/// An access list in force: who a running server answers. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Access(Option<Arc<[Net]>>);

impl Access {
    /// Everyone may ask.
    pub fn everyone() -> Access {
        Access(None)
    }

    /// Only clients in `nets` may ask (none, if it is empty).
    pub fn only(nets: Vec<Net>) -> Access {
        Access(Some(nets.into()))
    }

    /// Whether a client at `ip` may ask.
    pub fn allows(&self, ip: IpAddr) -> bool {
        match &self.0 {
            None => true,
            Some(nets) => nets.iter().any(|n| n.contains(ip)),
        }
    }

    /// The networks allowed; `None`: everyone.
    pub fn networks(&self) -> Option<&[Net]> {
        self.0.as_deref()
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.networks() {
            None => f.write_str("everyone"),
            Some([]) => f.write_str("no one"),
            Some(nets) => {
                for (i, net) in nets.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{net}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Net {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_parse_and_contain() {
        assert_eq!(net("10.0.0.7/24").to_string(), "10.0.0.0/24");
        assert_eq!(net("10.0.0.7").to_string(), "10.0.0.7/32");
        assert_eq!(net("::1").to_string(), "::1/128");
        assert_eq!(net("2001:db8::1/32").to_string(), "2001:db8::/32");
        assert_eq!(net("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(net("::ffff:10.1.2.3/120").to_string(), "10.1.2.0/24");
        let lan = net("192.168.1.0/24");
        assert!(lan.contains(ip("192.168.1.200")));
        assert!(lan.contains(ip("::ffff:192.168.1.200")), "a mapped client");
        assert!(!lan.contains(ip("192.168.2.1")));
        assert!(!lan.contains(ip("::1")));
        assert!(net("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(!net("0.0.0.0/0").contains(ip("2001:db8::1")));
        assert!(net("::/0").contains(ip("2001:db8::1")));
    }

    #[test]
    fn bad_networks_say_what_is_wrong() {
        for (text, message) in [
            (
                "10.0.0/24",
                "\"10.0.0/24\" is not an IP address or a network such as 10.0.0.0/24",
            ),
            (
                "10.0.0.0/33",
                "prefix length \"33\" of \"10.0.0.0/33\" is not a number from 0 to 32",
            ),
            (
                "::/x",
                "prefix length \"x\" of \"::/x\" is not a number from 0 to 128",
            ),
            (
                "localhost",
                "\"localhost\" is not an IP address or a network such as 10.0.0.0/24",
            ),
        ] {
            assert_eq!(text.parse::<Net>().unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn the_default_is_loopback_and_the_bound_networks() {
        let interfaces = [
            net("127.0.0.1/8"),
            net("10.1.0.5/24"),
            net("192.168.7.2/16"),
        ];
        let show = |bind: &str| Access::only(bound_networks(ip(bind), &interfaces)).to_string();
        assert_eq!(show("127.0.0.1"), "127.0.0.0/8, ::1/128");
        assert_eq!(show("10.1.0.5"), "127.0.0.0/8, ::1/128, 10.1.0.0/24");
        assert_eq!(
            show("0.0.0.0"),
            "127.0.0.0/8, ::1/128, 10.1.0.0/24, 192.168.0.0/16"
        );
        assert_eq!(show("::"), show("0.0.0.0"));
        // An address no interface holds (bound with IP_FREEBIND, say): itself alone.
        assert_eq!(show("172.16.0.1"), "127.0.0.0/8, ::1/128, 172.16.0.1/32");

        let access = Access::only(bound_networks(ip("10.1.0.5"), &interfaces));
        assert!(access.allows(ip("127.0.0.2")));
        assert!(access.allows(ip("::1")));
        assert!(access.allows(ip("10.1.0.200")));
        assert!(!access.allows(ip("10.1.1.1")));
        assert!(!access.allows(ip("192.168.7.9")));
    }

    #[test]
    fn an_explicit_list_is_exactly_who_may_ask() {
        let access = Allow::Only(vec![net("127.0.0.1")])
            .resolve(ip("0.0.0.0"))
            .unwrap();
        assert!(access.allows(ip("127.0.0.1")));
        assert!(!access.allows(ip("127.0.0.2")));
        assert!(!access.allows(ip("::1")));
        assert!(!Access::only(Vec::new()).allows(ip("127.0.0.1")));
        assert!(Allow::Everyone
            .resolve(ip("127.0.0.1"))
            .unwrap()
            .allows(ip("203.0.113.9")));
    }

    #[test]
    fn the_machine_s_interfaces_are_read() {
        // Whatever this machine has, loopback is allowed and the list resolves.
        let access = Allow::BoundNetworks.resolve(ip("0.0.0.0")).unwrap();
        assert!(access.allows(ip("127.0.0.1")));
        assert!(access.allows(ip("::1")));
    }
}
