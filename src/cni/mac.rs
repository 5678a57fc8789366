//! MAC address text form, as used by CNI results and `CNI_ARGS MAC=`.

pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for byte in out.iter_mut() {
        let p = parts.next()?;
        // Explicit digit check: `from_str_radix` would accept a leading `+`.
        if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *byte = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = parse_mac("0A:58:0a:f4:01:ff").unwrap();
        assert_eq!(format_mac(&m), "0a:58:0a:f4:01:ff");
        for bad in [
            "",
            "0a:58:0a:f4:01",
            "0a:58:0a:f4:01:ff:00",
            "0a-58-0a-f4-01-ff",
            "g0:58:0a:f4:01:ff",
            "a:58:0a:f4:01:ff",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad:?}");
        }
    }
}
