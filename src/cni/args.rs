//! `CNI_ARGS`: `K=V;K2=V2`, the deprecated but still universal way runtimes pass extras.
//!
//! Keys are case-sensitive, as in the reference (Go matches struct field names). Unknown
//! keys are an error unless `IgnoreUnknown` is true; Kubernetes runtimes always send it
//! together with their `K8S_POD_*` keys.

use std::net::IpAddr;

use super::error::{code, CniError};
use super::mac::parse_mac;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs {
    pub mac: Option<[u8; 6]>,
    pub ips: Vec<IpAddr>,
}

const KNOWN: &[&str] = &["IgnoreUnknown", "MAC", "IP"];

pub fn parse(raw: &str) -> Result<CniArgs, CniError> {
    let bad = |msg: String| CniError::new(code::INVALID_ENV, format!("CNI_ARGS: {msg}"));
    let mut pairs = Vec::new();
    for item in raw.split(';').filter(|s| !s.is_empty()) {
        let mut kv = item.split('=');
        match (kv.next(), kv.next(), kv.next()) {
            (Some(k), Some(v), None) if !k.is_empty() => pairs.push((k, v)),
            _ => return Err(bad(format!("invalid pair {item:?}"))),
        }
    }
    let ignore_unknown = pairs
        .iter()
        .any(|(k, v)| *k == "IgnoreUnknown" && (v.eq_ignore_ascii_case("true") || *v == "1"));
    let unknown: Vec<&str> = pairs
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !KNOWN.contains(k))
        .collect();
    if !unknown.is_empty() && !ignore_unknown {
        return Err(bad(format!("unknown args [{}]", unknown.join(" "))));
    }
    let mut out = CniArgs::default();
    for (k, v) in pairs {
        match k {
            "MAC" => out.mac = Some(parse_mac(v).ok_or_else(|| bad(format!("invalid MAC {v:?}")))?),
            "IP" => {
                for one in v.split(',').filter(|s| !s.is_empty()) {
                    out.ips.push(
                        parse_ip_maybe_prefix(one)
                            .ok_or_else(|| bad(format!("invalid IP {one:?}")))?,
                    );
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// `10.1.2.3` or `10.1.2.3/24`: the prefix is accepted and ignored, as host-local does.
pub fn parse_ip_maybe_prefix(s: &str) -> Option<IpAddr> {
    let ip = s.split_once('/').map_or(
        s,
        |(ip, prefix)| {
            if prefix.parse::<u8>().is_ok() {
                ip
            } else {
                ""
            }
        },
    );
    ip.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_nothing() {
        assert_eq!(parse("").unwrap(), CniArgs::default());
    }

    #[test]
    fn kubernetes_style() {
        let a = parse("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;MAC=0a:58:0a:f4:01:05;IP=10.244.1.9").unwrap();
        assert_eq!(a.mac, Some([0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x05]));
        assert_eq!(a.ips, vec!["10.244.1.9".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn unknown_without_ignore_is_refused() {
        let e = parse("K8S_POD_NAME=web").unwrap_err();
        assert_eq!(e.code, code::INVALID_ENV);
        assert!(e.msg.contains("K8S_POD_NAME"));
        assert!(parse("IgnoreUnknown=TRUE;Foo=1").is_ok());
        assert!(parse("IgnoreUnknown=0;Foo=1").is_err());
    }

    #[test]
    fn keys_are_case_sensitive() {
        assert!(parse("mac=0a:58:0a:f4:01:05").is_err());
    }

    #[test]
    fn malformed_pairs() {
        for bad in [
            "MAC",
            "=x",
            "a=b=c",
            "MAC=zz:zz",
            "IP=10.1.2",
            "IP=10.0.0.1/x",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ip_with_prefix_and_several() {
        let a = parse("IP=10.1.2.3/24,2001:db8::5").unwrap();
        assert_eq!(a.ips.len(), 2);
    }
}
