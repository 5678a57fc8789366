//! Validation of names that end up in paths or reservation files.
use super::IpamError;

/// Refuses anything that is not one safe path component: empty, longer than 255 bytes,
/// `.`/`..`, or containing `/`, NUL, CR or LF. The network name becomes a directory; the
/// container ID and ifname are written as `<id>\r\n<ifname>`, so CR/LF would forge the format.
pub(crate) fn check_component(what: &str, value: &str) -> Result<(), IpamError> {
    let problem = if value.is_empty() {
        Some("is empty")
    } else if value.len() > 255 {
        Some("is longer than 255 bytes")
    } else if value == "." || value == ".." {
        Some("is not a file name")
    } else if value.contains(['/', '\0', '\r', '\n']) {
        Some("contains '/', NUL, CR or LF")
    } else {
        None
    };
    match problem {
        Some(p) => Err(IpamError::Config(format!("invalid {what} {value:?}: {p}"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::check_component;

    #[test]
    fn accepts_ordinary_names() {
        for ok in ["mynet", "a..b", "eth0", "0123456789abcdef", "net-1.2_x"] {
            assert!(check_component("network name", ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_unsafe_names() {
        let long = "x".repeat(256);
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../x",
            "a\0b",
            "a\r\nb",
            long.as_str(),
        ] {
            let e = check_component("network name", bad).unwrap_err();
            assert!(e.to_string().starts_with("invalid network name"), "{e}");
        }
    }
}
