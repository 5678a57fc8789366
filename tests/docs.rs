//! The walkthroughs in docs/ are tested: every `$ command` in a ```console block runs, in
//! order, in a private mount namespace with a fresh /run (so the lab's namespace names and
//! data directories collide with nothing), and its output must match what the doc shows,
//! allowing for MACs, random veth names, ages and timings.
//!
//! `VNET_DOCS_UPDATE=1 cargo test --test docs` rewrites the blocks with the real output.
//! A command is expected to exit 0 unless its shown output ends with `[exit N]`.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// `lab.sh up` links /usr/local/bin/vnet, outside the private /run, and `down` removes
/// its own link: two labs at once would take vnet away from each other mid-walkthrough.
static ONE_LAB_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_lab_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_LAB_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug)]
struct Step {
    cmd: String,
    shown: Vec<String>,
    /// Line index of the command in the file, for messages and updates.
    line: usize,
}

/// `$ cmd` lines of ```console blocks and the lines shown after each.
fn steps(text: &str) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::new();
    let mut in_block = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block && line.trim() == "```console";
            continue;
        }
        if !in_block {
            continue;
        }
        if let Some(cmd) = line.strip_prefix("$ ") {
            out.push(Step {
                cmd: cmd.to_string(),
                shown: Vec::new(),
                line: i,
            });
        } else if let Some(last) = out.last_mut() {
            last.shown.push(line.to_string());
        }
    }
    out
}

/// Text that differs from run to run, replaced by a stable token on both sides.
fn normalize(lines: &[String]) -> Vec<String> {
    let rules = [
        (r"\b[0-9a-f]{2}(:[0-9a-f]{2}){5}\b", "<mac>"),
        (r"\bveth[0-9a-f]{8}\b", "veth<id>"),
        (r"\b\d+(\.\d+)? ?(ms|µs|us|ns)\b", "<time>"),
        (r"= [\d.]+/[\d.]+/[\d.]+/[\d.]+ ms", "= <rtt>"),
        (r"\btime \d+ms\b", "time <t>"),
        (r"\b\d+[smhd] ago\b", "<age> ago"),
        (
            r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?\b",
            "<timestamp>",
        ),
        (r"\bid: \d+\b", "id: <n>"),
        (r"\bif\d+\b", "if<n>"),
        (r"^\d+: ", "<n>: "),
        // Ages in `vnet ipam status` tables.
        (r"\b\d+(\.\d+)?[smhd]\b", "<age>"),
        // Table columns move with the width of what changed above; compare content.
        (r" {2,}", "  "),
    ];
    let rules: Vec<(Regex, &str)> = rules
        .iter()
        .map(|(r, t)| (Regex::new(r).unwrap(), *t))
        .collect();
    lines
        .iter()
        .map(|l| {
            let mut s = l.trim_end().to_string();
            for (re, token) in &rules {
                s = re.replace_all(&s, *token).into_owned();
            }
            s
        })
        .collect()
}

/// How a doc's commands are run.
#[derive(Clone, Copy)]
enum Mode {
    /// In this checkout, with the test's vnet first on PATH and as the lab's binary.
    Checkout,
    /// As a student runs them from a fresh clone at `root`: `env -i` with only the system
    /// directories on PATH, no vnet and no cargo on it; `sudo` adds what Debian's
    /// secure_path adds (/usr/local/bin, where `lab.sh up` links vnet); the lab builds
    /// vnet itself. The whole doc runs `passes` times in a row.
    FreshClone { passes: usize },
}

/// Debian's sudo `secure_path`.
const SECURE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const PLAIN_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs all steps of one doc as one bash script, so state carries from step to step.
fn run(doc: &Path, steps: &[Step]) -> Vec<(i32, Vec<String>)> {
    run_in(doc, steps, Path::new(ROOT), Mode::Checkout)
}

fn run_in(doc: &Path, steps: &[Step], root: &Path, mode: Mode) -> Vec<(i32, Vec<String>)> {
    let bin = common::TempDir::new("docbin");
    std::os::unix::fs::symlink(common::BIN, bin.path().join("vnet")).unwrap();
    let (mut script, passes) = match mode {
        Mode::Checkout => (
            String::from(
                "cd \"$VNET_ROOT\"\nexport PATH=\"$VNET_DOC_BIN_DIR:$PATH\"\nsudo() { \"$@\"; }\n",
            ),
            1,
        ),
        Mode::FreshClone { passes } => (
            format!("cd \"$VNET_ROOT\"\nsudo() {{ PATH={SECURE_PATH} \"$@\"; }}\n"),
            passes,
        ),
    };
    let all: Vec<&Step> = (0..passes).flat_map(|_| steps.iter()).collect();
    for (i, s) in all.iter().enumerate() {
        script.push_str(&format!(
            "echo '@@step {i}@@'\n{{\n{}\n}} 2>&1\nrc=$?\nprintf '\\n@@rc %s@@\\n' \"$rc\"\n",
            s.cmd
        ));
    }
    // The lab's echo servers are processes: never leave them behind, even when a doc
    // does not end with `lab.sh down`.
    script.push_str("scripts/lab.sh down >/dev/null 2>&1 || true\n");
    // What down left behind in this private /run (a walkthrough's namespaces and files
    // must go with the lab; vnet's own lock files under /run/vnet may stay).
    script.push_str("echo '@@left@@'; ls -A /run/netns 2>/dev/null; ls -A /run | grep -vx -e netns -e vnet || true\n");
    // A fresh /run in a private mount namespace: `ip netns` names and the lab's data live
    // there, invisible to the machine and to other tests, and vanish with it.
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "bash", "-c"])
        .arg(format!(
            "mount -t tmpfs vnet-docs /run && exec bash -c {}",
            shell_quote(&script)
        ))
        .env("VNET_ROOT", root);
    match mode {
        Mode::Checkout => {
            cmd.env("VNET_DOC_BIN_DIR", bin.path())
                // The lab uses this binary instead of building a release one.
                .env("VNET_BIN", common::BIN)
                .env_remove("CNI_COMMAND");
        }
        Mode::FreshClone { .. } => {
            cmd.env_clear()
                .env("PATH", PLAIN_PATH)
                .env("VNET_ROOT", root);
        }
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let left: Vec<&str> = text
        .split("@@left@@")
        .nth(1)
        .unwrap_or("<no @@left@@ marker>")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(
        left.is_empty(),
        "lab.sh down left these behind after the walkthroughs: {left:?}"
    );
    let mut results = vec![(-1, Vec::new()); all.len()];
    let mut cur: Option<usize> = None;
    for line in text.lines() {
        if line == "@@left@@" {
            break;
        }
        if let Some(n) = line
            .strip_prefix("@@step ")
            .and_then(|r| r.strip_suffix("@@"))
        {
            cur = n.parse().ok();
        } else if let Some(rc) = line
            .strip_prefix("@@rc ")
            .and_then(|r| r.strip_suffix("@@"))
        {
            if let Some(i) = cur {
                results[i].0 = rc.parse().unwrap_or(-1);
            }
        } else if let Some(i) = cur {
            results[i].1.push(line.to_string());
        }
    }
    // Output that ended without a newline is as good as one that did.
    for r in &mut results {
        while r.1.last().is_some_and(|l| l.trim().is_empty()) {
            r.1.pop();
        }
    }
    assert!(
        results.iter().all(|r| r.0 >= 0),
        "{}: the walkthrough stopped early: {}",
        doc.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    results
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn expected_exit(shown: &[String]) -> (i32, Vec<String>) {
    let mut lines = shown.to_vec();
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    if let Some(code) = lines
        .last()
        .and_then(|l| {
            l.trim()
                .strip_prefix("[exit ")
                .and_then(|r| r.strip_suffix(']'))
        })
        .and_then(|n| n.parse().ok())
    {
        lines.pop();
        return (code, lines);
    }
    (0, lines)
}

fn update(doc: &Path, text: &str, steps: &[Step], results: &[(i32, Vec<String>)]) {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    for (step, (rc, got)) in steps.iter().zip(results) {
        while i < step.line {
            out.push(lines[i].to_string());
            i += 1;
        }
        out.push(lines[i].to_string());
        i += 1 + step.shown.len();
        // Keep the blank line or fence that ended the shown output where it was.
        out.extend(got.iter().map(|l| l.trim_end().to_string()));
        if *rc != 0 {
            out.push(format!("[exit {rc}]"));
        }
        let trailing_blank = step.shown.last().is_some_and(|l| l.trim().is_empty());
        if trailing_blank {
            out.push(String::new());
        }
    }
    out.extend(lines[i..].iter().map(|l| l.to_string()));
    std::fs::write(doc, out.join("\n") + "\n").unwrap();
}

fn docs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "md"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The docs that have commands to run: path, text and steps.
fn walkthroughs() -> Vec<(PathBuf, String, Vec<Step>)> {
    docs()
        .into_iter()
        .filter_map(|doc| {
            let text = std::fs::read_to_string(&doc).unwrap();
            let steps = steps(&text);
            (!steps.is_empty()).then_some((doc, text, steps))
        })
        .collect()
}

#[test]
fn walkthroughs_run_and_show_real_output() {
    if !common::root_or_skip("docs") {
        return;
    }
    let _lab = one_lab_at_a_time();
    let updating = std::env::var_os("VNET_DOCS_UPDATE").is_some();
    let mut checked = 0;
    let mut failures = Vec::new();
    for (doc, text, steps) in walkthroughs() {
        let results = run(&doc, &steps);
        if updating {
            update(&doc, &text, &steps, &results);
            continue;
        }
        for (step, (rc, got)) in steps.iter().zip(&results) {
            checked += 1;
            let (want_rc, want) = expected_exit(&step.shown);
            let mut got = got.clone();
            while got.last().is_some_and(|l| l.trim().is_empty()) {
                got.pop();
            }
            if *rc != want_rc || normalize(&got) != normalize(&want) {
                failures.push(format!(
                    "{}:{}: `{}` exited {rc} (doc says {want_rc})\n--- doc shows ---\n{}\n--- it printed ---\n{}",
                    doc.display(),
                    step.line + 1,
                    step.cmd,
                    want.join("\n"),
                    got.join("\n")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} doc commands differ:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    if !updating {
        assert!(checked > 0, "no walkthrough commands found in docs/");
    }
}

/// The student's path, end to end: a fresh clone, as root with only the system directories
/// on PATH (no vnet, no cargo: `sudo` from a rustup user's shell), runs `lab.sh up`, every
/// walkthrough command as printed, twice in a row, and `lab.sh down`; each command exits as
/// its doc says both times, and the machine is as before: the root namespace, the
/// /usr/local/bin/vnet link, and (in the private /run) no namespace or file left.
#[test]
fn a_fresh_clone_runs_every_walkthrough_twice_with_a_plain_path() {
    if !common::root_or_skip("fresh clone") {
        return;
    }
    // Once per suite: the clone builds its own vnet, whichever build the suite tests.
    if option_env!("VNET_TEST_BIN").is_some() {
        return;
    }
    let _lab = one_lab_at_a_time();
    let root_ns = common::rootns::RootNs::snapshot();
    let link = Path::new("/usr/local/bin/vnet");
    let link_before = std::fs::read_link(link).ok();
    let clone = common::TempDir::new("clone");
    let dir = clone.path().join("vnet");
    let git = Command::new("git")
        .args(["clone", "--quiet", ROOT])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(git.status.success(), "git clone: {git:?}");
    let mut failures = Vec::new();
    for (doc, _, steps) in walkthroughs() {
        let in_clone = dir.join("docs").join(doc.file_name().unwrap());
        let results = run_in(&in_clone, &steps, &dir, Mode::FreshClone { passes: 2 });
        let twice = steps.iter().chain(steps.iter()).zip(&results);
        for (pass, (step, (rc, got))) in twice.enumerate().map(|(i, x)| (i / steps.len() + 1, x)) {
            let (want_rc, _) = expected_exit(&step.shown);
            if *rc != want_rc {
                failures.push(format!(
                    "{}:{} (pass {pass}): `{}` exited {rc}, the doc says {want_rc}:\n{}",
                    doc.display(),
                    step.line + 1,
                    step.cmd,
                    got.join("\n")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_eq!(
        std::fs::read_link(link).ok(),
        link_before,
        "/usr/local/bin/vnet changed"
    );
    root_ns.assert_unchanged();
}

#[test]
fn normalization_keeps_what_matters() {
    let a = normalize(&["64 bytes from 10.244.2.2: icmp_seq=1 ttl=63 time=0.081 ms".into()]);
    let b = normalize(&["64 bytes from 10.244.2.2: icmp_seq=1 ttl=63 time=1.2 ms".into()]);
    assert_eq!(a, b);
    let c = normalize(&["64 bytes from 10.244.2.3: icmp_seq=1 ttl=63 time=1.2 ms".into()]);
    assert_ne!(a, c, "addresses still count");
    assert_eq!(
        normalize(&["link/ether 0a:58:0a:f4:01:02 veth0a1b2c3d".into()]),
        vec!["link/ether <mac> veth<id>"]
    );
    let s = steps("text\n```console\n$ echo hi\nhi\n\n$ false\n[exit 1]\n```\n$ not a step\n");
    assert_eq!(s.len(), 2);
    assert_eq!(expected_exit(&s[1].shown), (1, vec![]));
}
