//! The VM lab cannot boot here, so it is kept valid instead: the Vagrantfile parses as
//! Ruby (and passes `vagrant validate` where vagrant is installed), and its provisioning
//! scripts parse as bash and call the node-setup code the namespace lab runs.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn tool_or_skip(test: &str, tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("{test} needs {tool} (.ci/run installs it)");
        }
        eprintln!("\n*** SKIPPED {test}: {tool} missing (apt-get install {tool}) ***\n");
    }
    found
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn vagrantfile_is_valid_ruby() {
    if !tool_or_skip("vagrantfile_is_valid_ruby", "ruby") {
        return;
    }
    let file = Path::new(ROOT).join("vagrant/Vagrantfile");
    let out = run_ok(Command::new("ruby").arg("-c").arg(&file));
    assert!(out.contains("Syntax OK"), "{out}");
    // Not installed on CI (no Debian package in bookworm); used where it is.
    let has_vagrant = Command::new("sh")
        .args(["-c", "command -v vagrant"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has_vagrant {
        run_ok(
            Command::new("vagrant")
                .arg("validate")
                .current_dir(Path::new(ROOT).join("vagrant")),
        );
    }
}

#[test]
fn provisioning_runs_the_namespace_lab_code() {
    for script in [
        "vagrant/provision.sh",
        "scripts/node-setup.sh",
        "scripts/lab.sh",
    ] {
        run_ok(
            Command::new("bash")
                .arg("-n")
                .arg(Path::new(ROOT).join(script)),
        );
    }
    let provision = std::fs::read_to_string(Path::new(ROOT).join("vagrant/provision.sh")).unwrap();
    let lab = std::fs::read_to_string(Path::new(ROOT).join("scripts/lab.sh")).unwrap();
    for step in [
        "node-setup.sh\" install",
        "node-setup.sh\" pods",
        "node-setup.sh\" probe",
    ] {
        assert!(provision.contains(step), "provision.sh lacks {step}");
    }
    assert!(
        lab.contains("node-setup.sh"),
        "lab.sh does not use node-setup.sh"
    );
    let vagrantfile = std::fs::read_to_string(Path::new(ROOT).join("vagrant/Vagrantfile")).unwrap();
    for ip in ["192.168.1.11", "192.168.1.12", "192.168.1.13"] {
        assert!(vagrantfile.contains(ip), "Vagrantfile lacks node {ip}");
    }
    assert!(vagrantfile.contains("provision.sh"));
}
