//! The three-node namespace lab (`scripts/lab.sh`) under a unique prefix, taken down when
//! dropped.

use std::process::{Command, Output};

use super::{sh_ok, BIN};

const LAB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lab.sh");

pub struct Lab {
    pub prefix: String,
}

impl Lab {
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(LAB)
            .args(args)
            .env("VNET_LAB_PREFIX", &self.prefix)
            .env("VNET_BIN", BIN)
            .output()
            .unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "lab.sh {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn namespaces(&self) -> Vec<String> {
        sh_ok(&["ip", "netns", "list"])
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with(&format!("{}-", self.prefix)))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.run(&["down"]);
    }
}
