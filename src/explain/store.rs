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

/// The store lines of an ADD: lock, one exclusive file per range set, the round-robin hint.
pub fn add_lines(p: &AddPreview, id: &str, ifname: &str) -> Vec<Line> {
    let dir = &p.dir;
    let tmp = q(&dir.join(".vnet-tmp.$$"));
    let write_tmp = format!("printf '{id}\\r\\n{ifname}' > {tmp}");
    let mut out = vec![Line::new(
        format!("mkdir -p {}", q(dir)),
        "one directory per network holds its reservations",
    )];
    if !p.allocations.is_empty() {
        out.push(Line::new(
            write_tmp.clone(),
            "the owner is written aside and synced to disk before the lock, so parallel ADDs do not queue behind the disk (vnet uses an unnamed O_TMPFILE file: a crash leaves nothing)",
        ));
    }
    out.push(Line::new(
        format!("exec 9>>{} && flock 9", q(&dir.join("lock"))),
        "one allocation at a time on this node (the same lock as host-local)",
    ));
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
        // The first set's file was written before the lock; each further one under it.
        let write = if set == 0 {
            String::new()
        } else {
            format!("{write_tmp} && ")
        };
        out.push(Line::new(
            format!("{write}ln {tmp} {} && rm {tmp}", q(&dir.join(ip.to_string()))),
            "linked to its name: ln fails if the address is taken, so the reservation appears whole or not at all, and never twice",
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
