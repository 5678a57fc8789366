//! MAC address text form and random host-side veth names.

use std::{
    collections::hash_map::RandomState,
    fs::File,
    hash::{BuildHasher, Hasher},
    io::Read,
    process,
    time::{SystemTime, UNIX_EPOCH},
};

/// `aa:bb:cc:dd:ee:ff` (lower-case, as the kernel and the reference plugin print it).
pub fn format_mac(mac: &[u8; 6]) -> String {
    let parts: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

/// Parse a 6-byte MAC written with `:` or `-` separators, any case.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let sep = if s.contains('-') { '-' } else { ':' };
    let mut mac = [0u8; 6];
    let mut parts = s.split(sep);
    for byte in &mut mac {
        let part = parts.next()?;
        // Explicit digit check: `from_str_radix` would accept a leading `+`.
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// `veth` + 8 lower-case hex digits from 4 random bytes, like the reference plugin.
pub fn random_veth_name() -> String {
    format!("veth{:08x}", random_u32())
}

fn random_u32() -> u32 {
    let mut buf = [0u8; 4];
    match File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)) {
        Ok(()) => u32::from_ne_bytes(buf),
        // No /dev (odd chroot): std's per-process random hash keys, mixed with pid and time.
        Err(_) => {
            let mut h = RandomState::new().build_hasher();
            h.write_u32(process::id());
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            h.write_u128(nanos);
            h.finish() as u32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trips() {
        let mac = [0x0a, 0x58, 0x0a, 0xf4, 0x01, 0xff];
        assert_eq!(format_mac(&mac), "0a:58:0a:f4:01:ff");
        assert_eq!(parse_mac("0a:58:0a:f4:01:ff"), Some(mac));
        assert_eq!(parse_mac("0A-58-0A-F4-01-FF"), Some(mac));
    }

    #[test]
    fn malformed_macs_are_rejected() {
        for bad in [
            "",
            "0a:58:0a:f4:01",
            "0a:58:0a:f4:01:ff:00",
            "0a:58:0a:f4:01:f",
            "0a:58:0a:f4:01:zz",
            "0a58:0a:f4:01:ff:0",
            "0a:58-0a:f4:01:ff",
            "+a:58:0a:f4:01:ff",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn veth_names_look_like_the_reference() {
        let a = random_veth_name();
        assert_eq!(a.len(), 12);
        assert!(a.starts_with("veth"));
        assert!(a[4..]
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, random_veth_name());
    }
}
