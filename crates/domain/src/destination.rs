//! The SSRF guard's rule: which resolved addresses a webhook may be sent to. The dispatcher
//! applies it to the very address it connects to, so DNS rebinding cannot slip past it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Decides whether an address may receive webhooks.
#[derive(Debug, Clone, Default)]
pub struct DestinationPolicy {
    /// When true every address is allowed (development and tests only).
    pub allow_private: bool,
    /// Networks allowed even though they are private (e.g. an internal receiver).
    pub allow_list: Vec<IpNet>,
}

impl DestinationPolicy {
    /// `Err(reason)` when `addr` must not be connected to.
    pub fn check(&self, addr: IpAddr) -> Result<(), &'static str> {
        if self.allow_private || self.allow_list.iter().any(|net| net.contains(&addr)) {
            return Ok(());
        }
        match forbidden_reason(addr) {
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }
}

/// Why `addr` is not a public unicast address, or `None` when it is.
pub fn forbidden_reason(addr: IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn in_v4(addr: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(addr) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn forbidden_v4(addr: Ipv4Addr) -> Option<&'static str> {
    const RULES: &[([u8; 4], u32, &str)] = &[
        ([0, 0, 0, 0], 8, "a 'this network' address"),
        ([10, 0, 0, 0], 8, "a private address"),
        ([100, 64, 0, 0], 10, "a carrier-grade NAT address"),
        ([127, 0, 0, 0], 8, "a loopback address"),
        ([169, 254, 0, 0], 16, "a link-local address"),
        ([172, 16, 0, 0], 12, "a private address"),
        ([192, 0, 0, 0], 24, "a reserved address"),
        ([192, 0, 2, 0], 24, "a documentation address"),
        ([192, 88, 99, 0], 24, "a reserved address"),
        ([192, 168, 0, 0], 16, "a private address"),
        ([198, 18, 0, 0], 15, "a benchmarking address"),
        ([198, 51, 100, 0], 24, "a documentation address"),
        ([203, 0, 113, 0], 24, "a documentation address"),
        ([224, 0, 0, 0], 4, "a multicast address"),
        ([240, 0, 0, 0], 4, "a reserved address"),
    ];
    RULES
        .iter()
        .find(|(net, prefix, _)| in_v4(addr, *net, *prefix))
        .map(|(_, _, reason)| *reason)
}

fn forbidden_v6(addr: Ipv6Addr) -> Option<&'static str> {
    let bits = u128::from(addr);
    let segments = addr.segments();
    if addr.is_unspecified() {
        return Some("an unspecified address");
    }
    if addr.is_loopback() {
        return Some("a loopback address");
    }
    // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d)
    // forms all reach the embedded IPv4 address.
    let embedded_low = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if bits >> 32 == 0xffff || bits >> 32 == 0 || bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return Some(forbidden_v4(embedded_low).unwrap_or("an IPv4 address hidden in IPv6"));
    }
    if segments[0] == 0x0064 && segments[1] == 0xff9b {
        return Some("a NAT64 address");
    }
    if segments[0] == 0x2002 {
        return Some("a 6to4 address");
    }
    if segments[0] == 0x2001 && segments[1] == 0 {
        return Some("a Teredo address");
    }
    if segments[0] == 0x2001 && segments[1] == 0x0db8 {
        return Some("a documentation address");
    }
    if segments[0] & 0xfe00 == 0xfc00 {
        return Some("a unique-local address");
    }
    if segments[0] & 0xffc0 == 0xfe80 || segments[0] & 0xffc0 == 0xfec0 {
        return Some("a link-local address");
    }
    if segments[0] & 0xff00 == 0xff00 {
        return Some("a multicast address");
    }
    if segments[0] == 0x0100 && segments[1..4] == [0, 0, 0] {
        return Some("a discard-only address");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(text: &str) -> Option<&'static str> {
        forbidden_reason(text.parse().unwrap())
    }

    #[test]
    fn public_addresses_pass() {
        for ok in [
            "1.1.1.1",
            "93.184.216.34",
            "2606:4700:4700::1111",
            "8.8.8.8",
        ] {
            assert_eq!(reason(ok), None, "{ok}");
        }
    }

    #[test]
    fn private_and_special_addresses_are_refused() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2001::1",
        ] {
            assert!(reason(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn mapped_forms_name_the_embedded_reason() {
        assert_eq!(reason("::ffff:127.0.0.1"), Some("a loopback address"));
    }

    #[test]
    fn policy_switches_and_allow_list() {
        let strict = DestinationPolicy::default();
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(strict.check(loopback).is_err());
        let open = DestinationPolicy {
            allow_private: true,
            allow_list: vec![],
        };
        assert!(open.check(loopback).is_ok());
        let listed = DestinationPolicy {
            allow_private: false,
            allow_list: vec!["10.0.0.0/8".parse().unwrap()],
        };
        assert!(listed.check("10.9.9.9".parse().unwrap()).is_ok());
        assert!(listed.check(loopback).is_err());
    }
}
