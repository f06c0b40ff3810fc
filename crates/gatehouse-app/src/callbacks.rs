//! Which callback URLs a request may name, and which addresses a callback
//! may reach (the configuration file's `[callbacks] allow`).
//!
//! Callers choose callback URLs, so each one is a request the server makes
//! on a stranger's behalf. Only hosts on the admin's allowlist are called,
//! and addresses inside the operator's networks (private, loopback,
//! link-local, and the other special ranges) are refused unless the
//! allowlist names them, both for an address in the URL and for every
//! address a name resolves to when the callback is sent.

use std::net::IpAddr;

use ipnet::IpNet;

/// The allowlist: host names (exact, or `*.` and a domain for its
/// subdomains) and networks (an address, or CIDR).
#[derive(Debug, Clone, Default)]
pub struct CallbackAllowlist {
    hosts: Vec<String>,
    suffixes: Vec<String>,
    networks: Vec<IpNet>,
}

impl CallbackAllowlist {
    /// Parses the allowlist's entries; an entry that is none of the three
    /// forms is an error naming it.
    pub fn parse(entries: &[String]) -> Result<CallbackAllowlist, String> {
        let mut list = CallbackAllowlist::default();
        for raw in entries {
            let entry = raw.trim().trim_end_matches('.').to_ascii_lowercase();
            let bare = entry.trim_start_matches('[').trim_end_matches(']');
            if let Ok(net) = bare.parse::<IpNet>() {
                list.networks.push(net.trunc());
            } else if let Ok(ip) = bare.parse::<IpAddr>() {
                list.networks.push(IpNet::from(ip));
            } else if let Some(domain) = entry.strip_prefix("*.") {
                check_name(raw, domain)?;
                list.suffixes.push(format!(".{domain}"));
            } else {
                check_name(raw, &entry)?;
                list.hosts.push(entry);
            }
        }
        Ok(list)
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.suffixes.is_empty() && self.networks.is_empty()
    }

    /// Checks a callback URL when a request names it: http(s), no
    /// credentials, a host on the allowlist, and, for an address, one
    /// that may be reached.
    pub fn check_url(&self, raw: &str) -> Result<url::Url, String> {
        let url = url::Url::parse(raw).map_err(|e| format!("callback_url is not a URL: {e}"))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err("callback_url must be an http or https URL".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("callback_url must not carry credentials".into());
        }
        match url.host() {
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if !self.name_allowed(&name) {
                    return Err(format!(
                        "the host {name:?} is not on this server's callback allowlist"
                    ));
                }
            }
            Some(url::Host::Ipv4(ip)) => self.literal_allowed(IpAddr::V4(ip))?,
            Some(url::Host::Ipv6(ip)) => self.literal_allowed(IpAddr::V6(ip))?,
            None => return Err("callback_url has no host".into()),
        }
        Ok(url)
    }

    fn name_allowed(&self, name: &str) -> bool {
        self.hosts.iter().any(|h| h == name) || self.suffixes.iter().any(|s| name.ends_with(s))
    }

    fn literal_allowed(&self, ip: IpAddr) -> Result<(), String> {
        if self.networks.iter().any(|n| n.contains(&ip)) {
            Ok(())
        } else {
            Err(format!(
                "the address {ip} is not on this server's callback allowlist"
            ))
        }
    }

    /// Whether a callback may connect to `ip` (an address a name resolved
    /// to): public addresses may, special ones only when allowlisted.
    pub fn address_allowed(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|n| n.contains(&ip)) || !is_special(ip)
    }
}

fn check_name(raw: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{raw:?} is not a host name, *.domain, address or network"
        ))
    }
}

/// Addresses that belong to someone's own networks or to no one: never
/// reached on a caller's say-so.
pub fn is_special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                // Shared address space (RFC 6598), benchmarking (RFC 2544),
                // reserved (240/4).
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_special(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64 reaches IPv4 space
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> CallbackAllowlist {
        CallbackAllowlist::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap()
    }

    #[test]
    fn hosts_must_be_listed() {
        let l = list(&["hooks.example.com", "*.corp.example", "127.0.0.1"]);
        assert!(l.check_url("https://hooks.example.com/x").is_ok());
        assert!(l.check_url("https://HOOKS.example.com./x").is_ok());
        assert!(l.check_url("https://a.b.corp.example/x").is_ok());
        assert!(l.check_url("https://corp.example/x").is_err());
        assert!(l.check_url("https://evil.example.com/x").is_err());
        assert!(l.check_url("http://127.0.0.1:9/x").is_ok());
        assert!(l.check_url("http://127.0.0.2/x").is_err());
        assert!(l.check_url("http://[::1]/x").is_err());
        assert!(l.check_url("ftp://hooks.example.com/x").is_err());
        assert!(l.check_url("https://u:p@hooks.example.com/x").is_err());
        assert!(l.check_url("not a url").is_err());
        // Address tricks: decimal and hex forms are normalised by the URL
        // parser to the dotted address they stand for.
        assert!(l.check_url("http://2130706434/").is_err());
        assert!(l.check_url("http://0x7f000002/").is_err());
    }

    #[test]
    fn special_addresses_need_the_allowlist() {
        let l = list(&["10.1.0.0/16"]);
        for ip in [
            "127.0.0.1",
            "10.2.3.4",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!l.address_allowed(ip.parse().unwrap()), "{ip} allowed");
        }
        assert!(l.address_allowed("10.1.2.3".parse().unwrap()));
        assert!(l.address_allowed("93.184.216.34".parse().unwrap()));
        assert!(l.address_allowed("2606:2800:220:1::1".parse().unwrap()));
    }

    #[test]
    fn bad_entries_are_named() {
        let err = CallbackAllowlist::parse(&["exa mple.com".to_string()]).unwrap_err();
        assert!(err.contains("exa mple.com"), "{err}");
    }
}
