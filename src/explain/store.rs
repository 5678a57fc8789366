//! The IPAM file operations of ADD and DEL as shell commands, from a read-only preview.

use std::net::IpAddr;
use std::path::Path;

use crate::ipam::AddPreview;

use crate::plan::render::Line;

fn q(p: &Path) -> String {
    let s = p.display().to_string();
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-:$".contains(&b))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The store lines of an ADD, in host-local's model: a lock, one file per reserved address
/// holding who has it, and where round robin stands. (How vnet makes that file appear
/// whole, and sooner under load, is docs/ipam.md's business, not the student's.)
pub fn add_lines(p: &AddPreview, id: &str, ifname: &str) -> Vec<Line> {
    let dir = &p.dir;
    let mut out = vec![
        Line::new(
            format!("mkdir -p {}", q(dir)),
            "one directory per network: a file per reserved address",
        ),
        Line::new(
            format!("exec 9>>{} && flock 9", q(&dir.join("lock"))),
            "one allocation at a time on this node (host-local's lock)",
        ),
    ];
    for (set, alloc) in p.allocations.iter().enumerate() {
        let ip = alloc.address.addr();
        let hint = match p.last_before.get(set).copied().flatten() {
            Some(last) => format!(
                "last_reserved_ip.{set} is {last}: round robin takes the next free address, {ip}"
            ),
            None => format!(
                "no last_reserved_ip.{set} yet: the first free address of the range is {ip}"
            ),
        };
        out.push(Line::note(hint));
        // `set -C`: the shell's O_EXCL, so the write fails if the address is taken.
        out.push(Line::new(
            format!(
                "(set -C; printf '{id}\\r\\n{ifname}' > {})",
                q(&dir.join(ip.to_string()))
            ),
            "the reservation: a file named by the address, holding the container and interface (never two for one address)",
        ));
        out.push(Line::new(
            format!(
                "printf {ip} > {}",
                q(&dir.join(format!("last_reserved_ip.{set}")))
            ),
            "the next ADD continues after this address (freed ones are reused last)",
        ));
    }
    out.push(Line::new("exec 9>&-", "unlock"));
    out
}

/// The store lines of a DEL: remove every file holding `<id>\r\n<ifname>`.
pub fn del_lines(dir: &Path, held: &[IpAddr], id: &str, ifname: &str) -> Vec<Line> {
    if held.is_empty() {
        return vec![Line::note(format!(
            "no reservation holds {id}/{ifname}: nothing to release (DEL still succeeds)"
        ))];
    }
    let mut out = vec![Line::new(
        format!("exec 9>>{} && flock 9", q(&dir.join("lock"))),
        "the same lock as ADD",
    )];
    for ip in held {
        out.push(Line::new(
            format!("rm -f {}", q(&dir.join(ip.to_string()))),
            format!("release {ip}: its file holds {id}\\r\\n{ifname}"),
        ));
    }
    out.push(Line::new("exec 9>&-", "unlock"));
    out
}
