//! The VM lab cannot boot here, so it is kept valid instead: the Vagrantfile parses as
//! Ruby (and passes `vagrant validate` where vagrant is installed), and its provisioning
//! scripts parse as bash and call the node-setup code the namespace lab runs.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn path(rel: &str) -> String {
    Path::new(ROOT).join(rel).display().to_string()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(path(rel)).unwrap()
}

#[test]
fn vagrantfile_is_valid_ruby() {
    if !tool_or_skip("vagrantfile_is_valid_ruby", "ruby") {
        return;
    }
    let out = sh_ok(&["ruby", "-c", &path("vagrant/Vagrantfile")]);
    assert!(out.contains("Syntax OK"), "{out}");
    // Not installed on CI (no Debian package in bookworm); used where it is.
    if has_tool("vagrant") {
        let dir = path("vagrant");
        sh_ok(&["sh", "-c", "cd \"$1\" && vagrant validate", "sh", &dir]);
    }
}

#[test]
fn provisioning_runs_the_namespace_lab_code() {
    for script in [
        "vagrant/provision.sh",
        "scripts/node-setup.sh",
        "scripts/lab.sh",
    ] {
        sh_ok(&["bash", "-n", &path(script)]);
    }
    let provision = read("vagrant/provision.sh");
    for step in [
        "node-setup.sh\" install",
        "node-setup.sh\" pods",
        "node-setup.sh\" probe",
    ] {
        assert!(provision.contains(step), "provision.sh lacks {step}");
    }
    assert!(
        read("scripts/lab.sh").contains("node-setup.sh"),
        "lab.sh does not use node-setup.sh"
    );
    let vagrantfile = read("vagrant/Vagrantfile");
    for ip in ["192.168.1.11", "192.168.1.12", "192.168.1.13"] {
        assert!(vagrantfile.contains(ip), "Vagrantfile lacks node {ip}");
    }
    assert!(vagrantfile.contains("provision.sh"));
}
