//! Random host-side veth names.

use std::{
    collections::hash_map::RandomState,
    fs::File,
    hash::{BuildHasher, Hasher},
    io::Read,
    process,
    time::{SystemTime, UNIX_EPOCH},
};

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
