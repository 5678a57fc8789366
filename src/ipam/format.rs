//! What a reservation file should hold, judged strictly for `vnet ipam status`.
//!
//! Allocation, DEL and GC read files leniently, as the reference does ([`Owner::parse`]:
//! trimmed, split at the first CRLF). Status also says when a file does not look like
//! anything host-local or vnet writes: empty (a crash right after the exclusive create),
//! cut inside the CRLF separator, binary, or an ID or ifname no runtime would pass.
//!
//! [`Owner::parse`]: super::store::Owner::parse

/// The verdict on one file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// `<id>\r\n<ifname>`, written since host-local v0.8.0 and by vnet.
    Current,
    /// `<id>` alone, from host-local before v0.8.0.
    Legacy,
    /// Anything else; the text says what is wrong.
    Malformed(String),
}

/// Spec: a container ID starts alphanumeric, then alphanumerics, `_`, `.`, `-`.
fn bad_id(id: &str) -> bool {
    let mut b = id.bytes();
    !(b.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c)))
}

/// The kernel's rules: at most 15 bytes, not `.`/`..`, no `/`, `:` or whitespace.
fn bad_ifname(name: &str) -> bool {
    name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c == '\0' || c.is_whitespace())
}

pub(crate) fn check(content: &[u8]) -> Format {
    let bad = |why: &str| Format::Malformed(why.to_string());
    if content.is_empty() {
        return bad("empty file (a write cut short right after the file was created?)");
    }
    let Ok(text) = std::str::from_utf8(content) else {
        return bad("not text (invalid UTF-8)");
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return bad("only whitespace");
    }
    match trimmed.split_once("\r\n") {
        Some((id, _)) if bad_id(id) => {
            bad("the container ID has characters outside [A-Za-z0-9_.-]")
        }
        Some((_, ifname)) if bad_ifname(ifname) => bad("the interface name is not a valid ifname"),
        Some(_) => Format::Current,
        // The ID and then a cut: "<id>\r" or "<id>\r\n" with the ifname missing.
        None if text.trim_end_matches(['\n', ' ', '\t']).ends_with('\r') => {
            bad("truncated after the container ID: no interface name")
        }
        None if bad_id(trimmed) => bad("not a container ID, nor <id>\\r\\n<ifname>"),
        None => Format::Legacy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn malformed(c: &[u8]) -> bool {
        matches!(check(c), Format::Malformed(_))
    }

    #[test]
    fn current_and_legacy_files_pass() {
        assert_eq!(check(b"0123abcd\r\neth0"), Format::Current);
        assert_eq!(check(b"k8s_POD-x.y\r\nnet1\n"), Format::Current);
        assert_eq!(check(b"0123abcd"), Format::Legacy);
        assert_eq!(check(b"  dummy \n"), Format::Legacy);
    }

    #[test]
    fn damaged_files_are_malformed() {
        assert!(malformed(b""));
        assert!(malformed(b" \r\n "));
        assert!(malformed(&[0xff, 0xfe, 0x00]));
        assert!(malformed(b"0123abcd\r\n"));
        assert!(malformed(b"0123abcd\r"));
        assert!(malformed(b"hello world"));
        assert!(malformed(b"abc\r\neth0 extra"));
        assert!(malformed(b"abc\r\nan-interface-name-too-long"));
        assert!(malformed(b"a/b\r\neth0"));
    }
}
