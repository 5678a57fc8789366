//! The module graph points down: each module of `src/` uses only modules in layers below
//! its own (`vnet::LAYERS`, written out in `src/lib.rs`). Test code is left out: a test
//! may borrow a helper from anywhere.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Files that exist only for tests.
fn test_only(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    name.ends_with("_tests.rs")
        || name == "test_util.rs"
        || name == "mem_store.rs"
        || path.components().any(|c| c.as_os_str() == "tests")
}

/// The non-test part of a file: up to a `#[cfg(test)]` that opens a test module.
fn code(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim() == "#[cfg(test)]" {
            let next = lines[i + 1..].iter().find(|l| !l.trim().is_empty());
            if next.is_some_and(|n| {
                n.trim_start().starts_with("mod ") || n.trim_start().starts_with("#[path")
            }) {
                break;
            }
        }
        let line = line.split("//").next().unwrap_or("");
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `crate::<module>` (and `vnet::<module>` in the binary) mentioned in `text`.
fn uses(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for prefix in ["crate::", "vnet::"] {
        for part in text.split(prefix).skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

fn layer_of(module: &str) -> Option<usize> {
    vnet::LAYERS.iter().position(|l| l.contains(&module))
}

#[test]
fn every_module_uses_only_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    let mut checked = 0;
    for path in files {
        let rel = path.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        let Some(own) = layer_of(&module) else {
            continue; // lib.rs, main.rs, arena.rs
        };
        if test_only(rel) {
            continue;
        }
        checked += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        for used in uses(&code(&text)) {
            match layer_of(&used) {
                Some(l) if l < own => {}
                Some(_) if used == module => {}
                Some(_) => wrong.push(format!("{}: {module} uses {used}", rel.display())),
                None => {}
            }
        }
    }
    assert!(checked > 50, "only {checked} files looked at");
    assert!(
        wrong.is_empty(),
        "imports that point up or sideways:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_checker_sees_an_upward_import() {
    let text = "use crate::plugin::x;\n#[cfg(test)]\nmod tests { use crate::cli; }\n";
    assert_eq!(uses(&code(text)), BTreeSet::from(["plugin".to_string()]));
    assert!(layer_of("plugin") > layer_of("net"));
}
