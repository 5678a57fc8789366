//! The `CNI_*` environment: which command, and the parameters it needs.

use std::path::PathBuf;

use super::error::{code, CniError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    Gc,
    Status,
}

impl Command {
    pub fn parse(s: &str) -> Option<Command> {
        Some(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "VERSION" => Command::Version,
            "GC" => Command::Gc,
            "STATUS" => Command::Status,
            _ => return None,
        })
    }

    /// The variables this command reads, per the spec's table (1.x, "Parameters"):
    /// required ones must be set and valid; optional ones are validated when set.
    /// Anything else in the environment is not read at all, whatever it holds: libcni
    /// probes every plugin of a conflist with `CNI_COMMAND=VERSION` and the placeholder
    /// `dummy` in all the other variables, and a plugin that judged those for VERSION
    /// would make the whole network unusable.
    fn reads(self) -> &'static [(Var, Need)] {
        use Need::*;
        use Var::*;
        match self {
            Command::Add | Command::Check => &[
                (ContainerId, Required),
                (Netns, Required),
                (Ifname, Required),
                (Args, Optional),
                (Path, Optional),
            ],
            Command::Del => &[
                (ContainerId, Required),
                (Ifname, Required),
                (Netns, Optional),
                (Args, Optional),
                (Path, Optional),
            ],
            Command::Gc => &[(Path, Required)],
            Command::Status => &[(Path, Optional)],
            Command::Version => &[],
        }
    }
}

/// The `CNI_*` variables besides `CNI_COMMAND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    ContainerId,
    Netns,
    Ifname,
    Args,
    Path,
}

impl Var {
    fn name(self) -> &'static str {
        match self {
            Var::ContainerId => "CNI_CONTAINERID",
            Var::Netns => "CNI_NETNS",
            Var::Ifname => "CNI_IFNAME",
            Var::Args => "CNI_ARGS",
            Var::Path => "CNI_PATH",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Required,
    Optional,
}

/// Longest container ID accepted. The spec sets no limit, but IDs end up in file contents
/// and firewall comments; runtimes use 64 hex characters.
pub const MAX_CONTAINER_ID: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    pub command: Command,
    pub container_id: String,
    /// `None` when unset or empty (DEL may come without one).
    pub netns: Option<PathBuf>,
    pub ifname: String,
    pub args: String,
    pub path: Vec<PathBuf>,
}

impl Env {
    /// Reads and validates the environment through `get` (so tests need not touch the
    /// process environment). Unset and empty are the same thing, as in the reference.
    pub fn parse(get: impl Fn(&str) -> Option<String>) -> Result<Env, CniError> {
        let var = |k: &str| get(k).filter(|v| !v.is_empty());
        let raw = get("CNI_COMMAND").unwrap_or_default();
        let command = Command::parse(&raw).ok_or_else(|| {
            CniError::new(code::INVALID_ENV, format!("unknown CNI_COMMAND: {raw:?}"))
        })?;
        let reads = command.reads();
        let missing: Vec<&str> = reads
            .iter()
            .filter(|(v, need)| *need == Need::Required && var(v.name()).is_none())
            .map(|(v, _)| v.name())
            .collect();
        if !missing.is_empty() {
            return Err(CniError::new(
                code::INVALID_ENV,
                format!("required env variables [{}] missing", missing.join(",")),
            ));
        }
        // Only what this command reads; the rest stays unread (see `Command::reads`).
        let read = |want: Var| -> Option<String> {
            reads
                .iter()
                .any(|(v, _)| *v == want)
                .then(|| var(want.name()))
                .flatten()
        };
        let container_id = read(Var::ContainerId).unwrap_or_default();
        if reads.contains(&(Var::ContainerId, Need::Required)) {
            validate_container_id(&container_id)?;
        }
        let ifname = read(Var::Ifname).unwrap_or_default();
        if reads.contains(&(Var::Ifname, Need::Required)) {
            validate_ifname(&ifname)?;
        }
        let netns = read(Var::Netns).map(PathBuf::from);
        if let Some(p) = &netns {
            if !p.is_absolute() {
                return Err(CniError::new(
                    code::INVALID_ENV,
                    format!(
                        "CNI_NETNS must be an absolute path, got {:?}",
                        p.display().to_string()
                    ),
                ));
            }
        }
        let path = read(Var::Path)
            .map(|p| {
                p.split(':')
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Env {
            command,
            container_id,
            netns,
            ifname,
            args: read(Var::Args).unwrap_or_default(),
            path,
        })
    }
}

/// Spec 1.0: "must start with an alphanumeric, followed by alphanumerics, `_`, `.`, `-`".
/// This also keeps IDs free of `/` and NUL, so they can never name a path.
pub fn validate_container_id(id: &str) -> Result<(), CniError> {
    let mut bytes = id.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !first_ok || !rest_ok {
        return Err(CniError::new(
            code::INVALID_ENV,
            format!("invalid characters in CNI_CONTAINERID {id:?}"),
        ));
    }
    if id.len() > MAX_CONTAINER_ID {
        return Err(CniError::new(
            code::INVALID_ENV,
            format!(
                "CNI_CONTAINERID is {} bytes, longer than {MAX_CONTAINER_ID}",
                id.len()
            ),
        ));
    }
    Ok(())
}

/// The kernel's rules for interface names (IFNAMSIZ 16 with the NUL, no `/`, `:` or
/// whitespace, not `.` or `..`).
pub fn validate_ifname(name: &str) -> Result<(), CniError> {
    let why = if name.len() > 15 {
        Some("longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("is . or ..")
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c == '\0')
    {
        Some("contains '/', ':', NUL or whitespace")
    } else {
        None
    };
    match why {
        Some(w) => Err(CniError::new(
            code::INVALID_ENV,
            format!("invalid CNI_IFNAME {name:?}: {w}"),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<Env, CniError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env::parse(|k| m.get(k).cloned())
    }

    const ADD: &[(&str, &str)] = &[
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "abc123"),
        ("CNI_NETNS", "/run/netns/p1"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin:/usr/lib/cni"),
        ("CNI_ARGS", "IgnoreUnknown=1"),
    ];

    #[test]
    fn full_add_env() {
        let e = env(ADD).unwrap();
        assert_eq!(e.command, Command::Add);
        assert_eq!(e.netns, Some(PathBuf::from("/run/netns/p1")));
        assert_eq!(e.path.len(), 2);
    }

    #[test]
    fn missing_vars_are_named() {
        let e = env(&[("CNI_COMMAND", "ADD"), ("CNI_IFNAME", "eth0")]).unwrap_err();
        assert_eq!(e.code, code::INVALID_ENV);
        assert_eq!(
            e.msg,
            "required env variables [CNI_CONTAINERID,CNI_NETNS] missing"
        );
        let e = env(&[("CNI_COMMAND", "GC")]).unwrap_err();
        assert!(e.msg.contains("CNI_PATH"));
    }

    #[test]
    fn del_needs_no_netns_and_empty_means_absent() {
        let e = env(&[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "c"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", ""),
        ])
        .unwrap();
        assert_eq!(e.netns, None);
    }

    #[test]
    fn unknown_command() {
        let e = env(&[("CNI_COMMAND", "FROB")]).unwrap_err();
        assert_eq!(e.code, code::INVALID_ENV);
        assert!(e.msg.contains("FROB"));
    }

    #[test]
    fn container_id_rules() {
        assert!(validate_container_id("a").is_ok());
        assert!(validate_container_id("A1_b.c-d").is_ok());
        for bad in ["", "-a", "_a", "a/b", "../x", "a b", "a\0b", "é"] {
            assert_eq!(validate_container_id(bad).unwrap_err().code, 4, "{bad:?}");
        }
        assert!(validate_container_id(&"a".repeat(MAX_CONTAINER_ID + 1)).is_err());
    }

    #[test]
    fn ifname_rules() {
        assert!(validate_ifname("eth0").is_ok());
        assert!(validate_ifname("a23456789012345").is_ok());
        for bad in ["a234567890123456", ".", "..", "a/b", "a:b", "a b", "a\tb"] {
            assert!(validate_ifname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn relative_netns_refused() {
        let mut v = ADD.to_vec();
        v[2] = ("CNI_NETNS", "run/netns/p1");
        assert_eq!(env(&v).unwrap_err().code, code::INVALID_ENV);
    }

    /// What libcni sends when it validates a conflist: VERSION with `dummy` everywhere.
    const LIBCNI_PROBE: &[(&str, &str)] = &[
        ("CNI_COMMAND", "VERSION"),
        ("CNI_CONTAINERID", "dummy"),
        ("CNI_NETNS", "dummy"),
        ("CNI_IFNAME", "dummy"),
        ("CNI_PATH", "dummy"),
    ];

    #[test]
    fn version_reads_only_the_command() {
        let e = env(LIBCNI_PROBE).unwrap();
        assert_eq!(e.command, Command::Version);
        assert_eq!((e.netns, e.path.len()), (None, 0));
        assert_eq!((e.container_id.as_str(), e.ifname.as_str()), ("", ""));
        // Worse than placeholders: nothing but CNI_COMMAND is judged.
        let e = env(&[
            ("CNI_COMMAND", "VERSION"),
            ("CNI_CONTAINERID", "../../etc"),
            ("CNI_NETNS", "relative"),
            ("CNI_IFNAME", "a/b:c d e f g h i j"),
            ("CNI_ARGS", "not;key;value"),
        ]);
        assert!(e.is_ok(), "{e:?}");
        assert!(env(&[("CNI_COMMAND", "VERSION")]).is_ok());
    }

    #[test]
    fn gc_and_status_ignore_the_attachment_variables() {
        for cmd in ["GC", "STATUS"] {
            let mut v = LIBCNI_PROBE.to_vec();
            v[0] = ("CNI_COMMAND", cmd);
            v.push(("CNI_ARGS", "garbage"));
            let e = env(&v).unwrap();
            assert_eq!(e.netns, None, "{cmd}");
            assert_eq!(e.args, "", "{cmd}");
            assert_eq!(e.path, vec![PathBuf::from("dummy")], "{cmd}");
        }
        // GC needs CNI_PATH, STATUS does not.
        assert!(env(&[("CNI_COMMAND", "STATUS")]).is_ok());
        let e = env(&[("CNI_COMMAND", "GC")]).unwrap_err();
        assert_eq!(e.msg, "required env variables [CNI_PATH] missing");
    }

    #[test]
    fn add_and_check_judge_the_placeholders() {
        for cmd in ["ADD", "CHECK"] {
            let mut v = LIBCNI_PROBE.to_vec();
            v[0] = ("CNI_COMMAND", cmd);
            let e = env(&v).unwrap_err();
            assert_eq!(e.code, code::INVALID_ENV, "{cmd}");
            assert!(e.msg.contains("CNI_NETNS"), "{cmd}: {}", e.msg);
            let e = env(&[("CNI_COMMAND", cmd)]).unwrap_err();
            assert_eq!(
                e.msg,
                "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME] missing"
            );
        }
    }

    #[test]
    fn del_judges_netns_only_when_set() {
        let mut v = LIBCNI_PROBE.to_vec();
        v[0] = ("CNI_COMMAND", "DEL");
        assert!(env(&v).unwrap_err().msg.contains("CNI_NETNS"));
        v[2] = ("CNI_NETNS", "");
        let e = env(&v).unwrap();
        assert_eq!(
            (e.container_id.as_str(), e.ifname.as_str()),
            ("dummy", "dummy")
        );
        let e = env(&[("CNI_COMMAND", "DEL"), ("CNI_NETNS", "/run/netns/x")]).unwrap_err();
        assert_eq!(
            e.msg,
            "required env variables [CNI_CONTAINERID,CNI_IFNAME] missing"
        );
        v[1] = ("CNI_CONTAINERID", "-bad");
        assert!(env(&v).unwrap_err().msg.contains("CNI_CONTAINERID"));
    }
}
