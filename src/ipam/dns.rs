//! resolv.conf parsing for the `dns` part of the result, like the reference's dns.go.
use super::IpamError;
use std::path::Path;

/// DNS settings read from a resolv.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dns {
    pub nameservers: Vec<String>,
    pub domain: Option<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// Reads `nameserver`, `domain`, `search` and `options` lines; skips blank lines, comments
/// (`#`, `;`) and lines with fewer than two fields. A later `domain` wins.
pub fn read_dns(path: &Path) -> Result<Dns, IpamError> {
    let text = crate::files::read_path(path, crate::files::cap::RESOLV_CONF)
        .map_err(|e| IpamError::io("read", path, e))?;
    Ok(parse(&String::from_utf8_lossy(&text)))
}

fn parse(text: &str) -> Dns {
    let mut dns = Dns::default();
    for line in text.lines().map(str::trim) {
        if line.starts_with(['#', ';']) {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [key, first, ..] = fields.as_slice() else {
            continue;
        };
        let rest = fields[1..].iter().map(|s| s.to_string());
        match *key {
            "nameserver" => dns.nameservers.push(first.to_string()),
            "domain" => dns.domain = Some(first.to_string()),
            "search" => dns.search.extend(rest),
            "options" => dns.options.extend(rest),
            _ => {}
        }
    }
    dns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_the_reference() {
        let dns = parse(
            "# comment\n; other comment\n\nnameserver 10.1.2.123\n  nameserver 2001:db8::53 extra\n\
             domain example.com\nsearch example.com  other.example\noptions ndots:5 rotate\n\
             nameserver\nsortlist 10.0.0.0\ndomain last.example\n",
        );
        assert_eq!(dns.nameservers, ["10.1.2.123", "2001:db8::53"]);
        assert_eq!(dns.domain.as_deref(), Some("last.example"));
        assert_eq!(dns.search, ["example.com", "other.example"]);
        assert_eq!(dns.options, ["ndots:5", "rotate"]);
    }

    #[test]
    fn empty_file_gives_empty_dns() {
        assert_eq!(parse(""), Dns::default());
    }

    #[test]
    fn missing_file_is_an_io_error_naming_the_path() {
        let e = read_dns(Path::new("/nonexistent/vnet/resolv.conf")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to read /nonexistent/vnet/resolv.conf"
        );
    }
}
