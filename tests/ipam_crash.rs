//! Crash safety of the store: kill -9 at random times and at every named step of a write,
//! then DEL/GC; and manual releases racing a storm of ADDs. Invariants checked: no address
//! held by two containers, no reservation lost, nothing leaked after the clean-up, and the
//! index agrees with the directory (`vnet ipam status`).

#![allow(clippy::unwrap_used)]

mod common;
mod ipam_common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::process::Child;
use std::time::{Duration, Instant};

use ipam_common::*;
use serde_json::{json, Value};

const POINTS: [&str; 9] = [
    "tmp-partial",
    "tmp-written",
    "linked",
    "tmp-removed",
    "indexed",
    "unlinked",
    "before-seal",
    "rebuild-scanned",
    "rebuild-written",
];

enum Outcome {
    Ok(Value),
    Failed(Value),
    Killed,
}

/// Waits for `child`, killing it with SIGKILL after `kill_after` if it still runs.
fn finish(mut child: Child, kill_after: Option<Duration>) -> Outcome {
    if let Some(d) = kill_after {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::hint::spin_loop();
        }
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    if out.status.signal() == Some(9) {
        return Outcome::Killed;
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    if out.status.success() {
        Outcome::Ok(v)
    } else {
        Outcome::Failed(v)
    }
}

/// Owner of each reservation file, by address.
fn owners(s: &Store) -> BTreeMap<String, String> {
    s.files()
        .into_iter()
        .map(|(ip, c)| (ip, String::from_utf8_lossy(&c).into_owned()))
        .collect()
}

/// Every container the model believes holds an address still holds exactly that file,
/// and no two of them share one.
fn check_no_loss(s: &Store, live: &BTreeMap<String, String>, step: usize) {
    let files = owners(s);
    let mut seen = BTreeSet::new();
    for (id, ip) in live {
        assert!(
            seen.insert(ip.clone()),
            "step {step}: {ip} handed out twice"
        );
        assert_eq!(
            files.get(ip).map(String::as_str),
            Some(format!("{id}\r\neth0").as_str()),
            "step {step}: {id} lost {ip}"
        );
    }
}

/// After clean-up: the store holds exactly `live`, no temp file, and status is clean
/// with a valid index.
fn check_final(s: &Store, live: &BTreeMap<String, String>) {
    let want: BTreeMap<String, String> = live
        .iter()
        .map(|(id, ip)| (ip.clone(), format!("{id}\r\neth0")))
        .collect();
    assert_eq!(owners(s), want, "leaked or lost reservations");
    let (code, doc) = s.status_json();
    assert_eq!(code, 0, "status findings: {doc}");
    assert_eq!(doc["networks"][0]["index"], "valid", "{doc}");
    assert!(
        !s.names().iter().any(|n| n.starts_with(".vnet-tmp")),
        "{:?}",
        s.names()
    );
}

fn gc_to(s: &Store, live: &BTreeMap<String, String>) {
    let valid: Vec<Value> = live
        .keys()
        .map(|id| json!({"containerID": id, "ifname": "eth0"}))
        .collect();
    let list = s.data.path().join("valid.json");
    std::fs::write(&list, json!(valid).to_string()).unwrap();
    let out = s.cli(&[
        "gc",
        "--valid",
        list.to_str().unwrap(),
        "--min-age",
        "0",
        "--allow-empty",
        "--apply",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kill_9_during_200_add_and_del_calls_leaves_no_leak_and_no_duplicate() {
    let seed = 0x5eed_0000_0000_0001 ^ u64::from(std::process::id());
    eprintln!("seed {seed:#x}");
    let mut rng = Rng(seed);
    // 29 addresses for 24 containers: round robin wraps several times.
    let s = Store::new(json!({"subnet": "10.49.0.0/27", "rangeEnd": "10.49.0.30"}));
    let mut live: BTreeMap<String, String> = BTreeMap::new();
    let mut unsure: BTreeSet<String> = BTreeSet::new();
    let mut killed = 0;
    for step in 0..200 {
        let id = format!("c{}", rng.below(24));
        let add = !live.contains_key(&id) && !unsure.contains(&id);
        let crash_at = (rng.below(4) == 0).then(|| POINTS[rng.below(POINTS.len() as u64) as usize]);
        let kill_after = (rng.below(3) == 0).then(|| Duration::from_micros(rng.below(4000)));
        let child = s.spawn(if add { "ADD" } else { "DEL" }, &id, crash_at);
        match (finish(child, kill_after), add) {
            (Outcome::Killed, _) => {
                killed += 1;
                // What it did is unknown; the runtime will DEL it.
                live.remove(&id);
                unsure.insert(id);
            }
            (Outcome::Ok(r), true) => {
                let ip = ip_of(&r);
                assert!(
                    !live.values().any(|v| *v == ip),
                    "step {step}: {ip} given twice"
                );
                live.insert(id, ip);
            }
            // Exhausted: per CNI the runtime DELs a failed ADD.
            (Outcome::Failed(e), true) => {
                assert_eq!(e["code"], 100, "step {step}: {e}");
                unsure.insert(id);
            }
            (Outcome::Ok(_), false) => {
                live.remove(&id);
                unsure.remove(&id);
            }
            (Outcome::Failed(e), false) => panic!("step {step}: DEL failed: {e}"),
        }
        check_no_loss(&s, &live, step);
    }
    eprintln!(
        "{killed} of 200 calls killed; {} unsure, {} live",
        unsure.len(),
        live.len()
    );
    assert!(killed >= 20, "only {killed} calls were killed");
    // Half of the interrupted containers get their DEL, GC catches the rest.
    for id in unsure.iter().step_by(2) {
        s.del(id);
    }
    gc_to(&s, &live);
    check_final(&s, &live);
    for id in live.keys() {
        s.del(id);
    }
    check_final(&s, &BTreeMap::new());
}

#[test]
fn a_crash_at_every_step_of_add_and_del_is_recovered() {
    for point in POINTS {
        let s = Store::subnet("10.50.0.0/24");
        let a = s.add("a");
        let b = s.add("b");
        // ADD crashes at `point`; whatever it reserved is c's and nobody else's.
        let out = finish(s.spawn("ADD", "c", Some(point)), None);
        let crashed = matches!(out, Outcome::Killed);
        let d = s.add("d");
        assert!(d != a && d != b, "{point}: d got a taken address");
        let held: Vec<(String, String)> = owners(&s)
            .into_iter()
            .filter(|(_, o)| o.starts_with("c\r"))
            .collect();
        assert!(held.len() <= 1, "{point}: c holds {held:?}");
        assert!(held.iter().all(|(ip, _)| *ip != d), "{point}: {d} twice");
        // DEL crashes at `point` for b; a retried DEL (the runtime's) finishes the job.
        let out_del = finish(s.spawn("DEL", "b", Some(point)), None);
        s.del("b");
        s.del("c");
        let live = BTreeMap::from([("a".to_string(), a.clone()), ("d".to_string(), d)]);
        check_final(&s, &live);
        // Some points only exist on some paths; the ADD must reach the write points.
        if [
            "tmp-partial",
            "tmp-written",
            "linked",
            "tmp-removed",
            "indexed",
            "before-seal",
        ]
        .contains(&point)
        {
            assert!(crashed, "{point}: ADD did not stop there");
        }
        if point == "unlinked" {
            assert!(
                matches!(out_del, Outcome::Killed),
                "DEL did not stop at {point}"
            );
        }
    }
}

#[test]
fn rebuild_crashes_are_recovered_too() {
    let s = Store::subnet("10.51.0.0/24");
    let a = s.add("a");
    // A foreign change forces the next call to rebuild the index, which crashes.
    s.write("10.51.0.99", b"x\r\neth0");
    for point in ["rebuild-scanned", "rebuild-written"] {
        assert!(matches!(
            finish(s.spawn("DEL", "x", Some(point)), None),
            Outcome::Killed
        ));
        assert!(s.files().iter().any(|f| f.0 == "10.51.0.99"));
    }
    s.del("x");
    check_final(&s, &BTreeMap::from([("a".to_string(), a)]));
}

/// ADD until it gets an address: a full pool (code 100) is retried, as kubelet would.
fn add_until_ok(s: &Store, id: &str) -> (String, usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut full = 0;
    loop {
        match finish(s.spawn("ADD", id, None), None) {
            Outcome::Ok(r) => return (ip_of(&r), full),
            Outcome::Failed(e) if e["code"] == 100 && Instant::now() < deadline => {
                full += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            Outcome::Failed(e) => panic!("ADD {id}: {e}"),
            Outcome::Killed => panic!("nobody kills here"),
        }
    }
}

#[test]
fn release_races_a_storm_of_adds_without_duplicate_or_loss() {
    // 50 addresses; 20 pods exist, 40 new ones arrive while the 20 are released by hand,
    // so the last ADDs can only succeed with released addresses.
    let s = Store::new(json!({"subnet": "10.52.0.0/24", "rangeEnd": "10.52.0.51"}));
    let old: Vec<(String, String)> = (0..20)
        .map(|i| {
            let id = format!("old{i}");
            let ip = s.add(&id);
            (id, ip)
        })
        .collect();
    let results = std::thread::scope(|sc| {
        let releaser = sc.spawn(|| {
            for (i, (id, ip)) in old.iter().enumerate() {
                let out = if i % 2 == 0 {
                    s.cli(&["release", ip])
                } else {
                    s.cli(&["release", "--container", id])
                };
                assert!(out.status.success(), "release {id}: {}", text(&out));
                assert!(text(&out).contains(&format!("released {ip} (held by {id}/eth0)")));
            }
        });
        let adders: Vec<_> = (0..4)
            .map(|t| {
                let s = &s;
                sc.spawn(move || {
                    (0..10)
                        .map(|i| {
                            let id = format!("new{t}-{i}");
                            let (ip, _) = add_until_ok(s, &id);
                            (id, ip)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        releaser.join().unwrap();
        adders
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    let mut live = BTreeMap::new();
    for (id, ip) in results {
        assert!(!live.values().any(|v| *v == ip), "{ip} handed out twice");
        live.insert(id, ip);
    }
    assert_eq!(live.len(), 40);
    let reused = old
        .iter()
        .filter(|(_, ip)| live.values().any(|v| v == ip))
        .count();
    assert_eq!(
        reused, 10,
        "40 new pods in 50 addresses reuse 10 released ones"
    );
    check_no_loss(&s, &live, 0);
    check_final(&s, &live);
}
