//! Typed access to the untyped stdin config, with errors that name the offending key.
use super::IpamError;
use ipnet::IpNet;
use serde_json::{Map, Value};
use std::net::IpAddr;

pub(crate) type Object = Map<String, Value>;

/// Looks `key` up the way Go's encoding/json matches struct fields: exact name first, then
/// case-insensitively. `null` counts as absent, as it leaves a Go field at its zero value.
pub(crate) fn field<'a>(obj: &'a Object, key: &str) -> Option<&'a Value> {
    let v = obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })?;
    (!v.is_null()).then_some(v)
}

fn wrong_type(path: &str, want: &str, got: &Value) -> IpamError {
    IpamError::Config(format!("{path}: expected {want}, got {got}"))
}

pub(crate) fn as_object<'a>(v: &'a Value, path: &str) -> Result<&'a Object, IpamError> {
    v.as_object()
        .ok_or_else(|| wrong_type(path, "an object", v))
}

pub(crate) fn as_array<'a>(v: &'a Value, path: &str) -> Result<&'a [Value], IpamError> {
    v.as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| wrong_type(path, "a list", v))
}

pub(crate) fn as_str<'a>(v: &'a Value, path: &str) -> Result<&'a str, IpamError> {
    v.as_str().ok_or_else(|| wrong_type(path, "a string", v))
}

/// The object under `key` of `obj` (whose own path is `base`), if present.
pub(crate) fn object<'a>(
    obj: &'a Object,
    base: &str,
    key: &str,
) -> Result<Option<&'a Object>, IpamError> {
    field(obj, key)
        .map(|v| as_object(v, &join(base, key)))
        .transpose()
}

pub(crate) fn array<'a>(obj: &'a Object, base: &str, key: &str) -> Result<&'a [Value], IpamError> {
    Ok(field(obj, key)
        .map(|v| as_array(v, &join(base, key)))
        .transpose()?
        .unwrap_or(&[]))
}

/// A string under `key`; an empty string counts as absent, as in the reference.
pub(crate) fn string<'a>(
    obj: &'a Object,
    base: &str,
    key: &str,
) -> Result<Option<&'a str>, IpamError> {
    let s = field(obj, key)
        .map(|v| as_str(v, &join(base, key)))
        .transpose()?;
    Ok(s.filter(|s| !s.is_empty()))
}

pub(crate) fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_string()
    } else {
        format!("{base}.{key}")
    }
}

/// An IP address; IPv4-mapped IPv6 is taken as IPv4, like Go's `To4()`.
pub(crate) fn parse_ip(s: &str, path: &str) -> Result<IpAddr, IpamError> {
    s.parse::<IpAddr>()
        .map(|ip| ip.to_canonical())
        .map_err(|_| IpamError::Config(format!("{path}: invalid IP address {s:?}")))
}

/// A CIDR; host bits are kept so the range check can report them.
pub(crate) fn parse_cidr(s: &str, path: &str) -> Result<IpNet, IpamError> {
    s.parse::<IpNet>()
        .map_err(|_| IpamError::Config(format!("{path}: invalid CIDR address {s:?}")))
}

/// A requested IP, `ip` or `ip/prefix`; the prefix is accepted and ignored.
pub(crate) fn parse_requested(s: &str, path: &str) -> Result<IpAddr, IpamError> {
    match s.split_once('/') {
        Some(_) => parse_cidr(s, path).map(|n| n.addr().to_canonical()),
        None => parse_ip(s, path),
    }
}

pub(crate) fn ip_field(obj: &Object, base: &str, key: &str) -> Result<Option<IpAddr>, IpamError> {
    let path = join(base, key);
    string(obj, base, key)?
        .map(|s| parse_ip(s, &path))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_falls_back_to_case_insensitive_and_ignores_null() {
        let v = json!({"Subnet": "a", "gateway": null, "rangeStart": "b", "rangestart": "c"});
        let o = v.as_object().unwrap();
        assert_eq!(field(o, "subnet"), Some(&json!("a")));
        assert_eq!(field(o, "gateway"), None);
        assert_eq!(field(o, "rangeStart"), Some(&json!("b")));
    }

    #[test]
    fn wrong_types_name_the_key() {
        let v = json!({"subnet": 5, "ranges": {}});
        let o = v.as_object().unwrap();
        let e = string(o, "ipam", "subnet").unwrap_err().to_string();
        assert_eq!(e, "ipam.subnet: expected a string, got 5");
        let e = array(o, "ipam", "ranges").unwrap_err().to_string();
        assert_eq!(e, "ipam.ranges: expected a list, got {}");
    }

    #[test]
    fn requested_ips_accept_a_prefix() {
        let ip: IpAddr = "10.1.2.9".parse().unwrap();
        assert_eq!(parse_requested("10.1.2.9/24", "x").unwrap(), ip);
        assert_eq!(parse_requested("10.1.2.9", "x").unwrap(), ip);
        assert_eq!(parse_requested("::ffff:10.1.2.9", "x").unwrap(), ip);
        let e = parse_requested("10.1.2/24", "args.cni.ips[0]").unwrap_err();
        assert_eq!(
            e.to_string(),
            "args.cni.ips[0]: invalid CIDR address \"10.1.2/24\""
        );
    }
}
