use super::*;

fn pod() -> PodNs {
    PodNs::from_path("/run/netns/p1")
}

#[test]
fn pod_namespace_forms() {
    assert_eq!(
        PodNs::from_path("/var/run/netns/cni-1"),
        PodNs::Named("cni-1".into())
    );
    assert_eq!(
        PodNs::from_path("/proc/42/ns/net"),
        PodNs::Path("/proc/42/ns/net".into())
    );
    assert_eq!(PodNs::from_path("/proc/42/ns/net").link_arg(), "42");
    let l = lines(
        &[Op::LinkUp {
            ns: Ns::Pod,
            dev: "eth0".into(),
        }],
        &PodNs::from_path("/proc/42/ns/net"),
        &Facts::default(),
    );
    assert_eq!(
        l[0].cmd,
        "nsenter --net=/proc/42/ns/net ip link set eth0 up"
    );
}

#[test]
fn sysctl_names_use_slashes_only_when_a_name_has_a_dot() {
    assert_eq!(sysctl_name("net/ipv4/ip_forward"), "net.ipv4.ip_forward");
    assert_eq!(
        sysctl_name("net/ipv4/conf/eth0.100/arp_notify"),
        "net/ipv4/conf/eth0.100/arp_notify"
    );
    let l = lines(
        &[Op::Sysctl {
            ns: Ns::Pod,
            key: "net/ipv6/conf/eth0/accept_dad".into(),
            value: "0".into(),
            optional: false,
        }],
        &pod(),
        &Facts::default(),
    );
    assert_eq!(
        l[0].cmd,
        "ip netns exec p1 sysctl -qw net.ipv6.conf.eth0.accept_dad=0"
    );
    assert!(l[0].why.contains("DAD"));
}

#[test]
fn shared_pieces_are_reused_when_present() {
    let ops = [
        Op::EnsureBridge {
            name: "v-net-0".into(),
            mtu: Some(1400),
            promisc: false,
        },
        Op::EnsureBridgeAddr {
            dev: "v-net-0".into(),
            addr: "10.244.1.1/24".parse().unwrap(),
            force: false,
        },
    ];
    let fresh = lines(&ops, &pod(), &Facts::default());
    assert_eq!(fresh[0].cmd, "ip link add v-net-0 mtu 1400 type bridge");
    assert_eq!(fresh[1].cmd, "ip addr add 10.244.1.1/24 dev v-net-0");
    let facts = Facts {
        bridge_exists: true,
        bridge_addrs: vec!["10.244.1.1/24".parse().unwrap()],
        ..Facts::default()
    };
    let reused = lines(&ops, &pod(), &facts);
    assert!(reused.iter().all(|l| l.cmd.is_empty()), "{reused:?}");
}

#[test]
fn force_address_deletes_the_conflict_first() {
    let facts = Facts {
        bridge_exists: true,
        bridge_addrs: vec![
            "10.9.9.1/24".parse().unwrap(),
            "fd00:1::1/64".parse().unwrap(),
        ],
        ..Facts::default()
    };
    let op = Op::EnsureBridgeAddr {
        dev: "br0".into(),
        addr: "10.244.1.1/24".parse().unwrap(),
        force: true,
    };
    let cmds: Vec<String> = lines(&[op], &pod(), &facts)
        .into_iter()
        .map(|l| l.cmd)
        .collect();
    assert_eq!(
        cmds,
        vec![
            "ip addr del 10.9.9.1/24 dev br0",
            "ip addr add 10.244.1.1/24 dev br0"
        ]
    );
}

#[test]
fn routes_and_veth() {
    let ops = [
        Op::AddVeth {
            host: "veth1".into(),
            peer: "eth0".into(),
            mtu: Some(1400),
            peer_mac: Some([2, 0, 0, 0, 0, 9]),
        },
        Op::AddRoute {
            ns: Ns::Pod,
            dst: "::/0".parse().unwrap(),
            gw: Some("fd00::1".parse().unwrap()),
            dev: "eth0".into(),
        },
        Op::AddRoute {
            ns: Ns::Pod,
            dst: "10.96.0.0/12".parse().unwrap(),
            gw: None,
            dev: "eth0".into(),
        },
        Op::EnsureBridgeAddr {
            dev: "br0".into(),
            addr: "fd00::1/64".parse().unwrap(),
            force: false,
        },
        Op::DelLink {
            ns: Ns::Pod,
            dev: "eth0".into(),
        },
    ];
    let cmds: Vec<String> = lines(&ops, &pod(), &Facts::default())
        .into_iter()
        .map(|l| l.cmd)
        .collect();
    assert_eq!(
        cmds,
        vec![
            "ip link add veth1 mtu 1400 type veth peer name eth0 mtu 1400 address 02:00:00:00:00:09 netns p1",
            "ip -n p1 -6 route add default via fd00::1 dev eth0",
            "ip -n p1 route add 10.96.0.0/12 dev eth0",
            "ip addr add fd00::1/64 dev br0 nodad",
            "ip -n p1 link del eth0",
        ]
    );
}

#[test]
fn render_puts_each_comment_above_its_command() {
    let text = render(&[
        Line::note("hello"),
        Line::new("ip link", "a"),
        Line::new("ip", "b"),
        Line::note("next part"),
        Line::new("ip route", "c"),
    ]);
    assert_eq!(
        text,
        "# hello\n# a\nip link\n# b\nip\n\n# next part\n# c\nip route\n"
    );
}

#[test]
fn render_wraps_long_comments_at_word_boundaries() {
    let why = ["word"; 40].join(" ");
    let text = render(&[Line::new("ip link", &why)]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"ip link"));
    assert!(lines.len() > 2, "{text}");
    for l in &lines[..lines.len() - 1] {
        assert!(l.starts_with("# ") && l.len() <= 100, "{l:?}");
    }
    let rejoined: Vec<&str> = lines[..lines.len() - 1]
        .iter()
        .flat_map(|l| l[2..].split(' '))
        .collect();
    assert_eq!(rejoined.join(" "), why);
}

#[test]
fn masquerade_makes_the_network_layout_only_when_missing() {
    let op = Op::AddMasquerade {
        network: "v-net".into(),
        srcs: vec!["10.244.1.2".parse().unwrap()],
        exclude: vec!["10.244.0.0/16".parse().unwrap()],
        tag: "vnet v-net c1 eth0".into(),
    };
    let set = crate::plan::masq_set("v-net", false);
    let keep = crate::plan::rule_exclusions(&["10.244.0.0/16".parse().unwrap()], false);
    let rule = crate::plan::masq_rule_comment("v-net", &keep);
    let fresh: Vec<String> = lines(std::slice::from_ref(&op), &pod(), &Facts::default())
        .into_iter()
        .map(|l| l.cmd)
        .collect();
    assert_eq!(fresh.len(), 5, "{fresh:?}");
    assert_eq!(
        fresh[3],
        format!("nft add rule inet vnet postrouting ip saddr @{set} ip daddr != 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade comment '\"{rule}\"'")
    );
    assert_eq!(
        fresh[4],
        format!(
            "nft add element inet vnet {set} '{{ 10.244.1.2 comment \"vnet v-net c1 eth0\" }}'"
        )
    );
    let with_rules = |rules: Vec<(u64, String)>| Facts {
        masq: [MasqFacts { set: true, rules }, MasqFacts::default()],
        ..Facts::default()
    };
    let cmds = |facts: &Facts| -> Vec<String> {
        lines(std::slice::from_ref(&op), &pod(), facts)
            .into_iter()
            .map(|l| l.cmd)
            .filter(|c| !c.is_empty())
            .collect()
    };
    // The rule in place: only the element.
    let later = cmds(&with_rules(vec![(4, rule.clone())]));
    assert_eq!(later, vec![fresh[4].clone()]);
    // A flushed chain: the rule again, then the element.
    let flushed = cmds(&with_rules(vec![]));
    assert_eq!(flushed, vec![fresh[3].clone(), fresh[4].clone()]);
    // A rule made with other exclusions: the new rule, the old one deleted by handle.
    let stale = cmds(&with_rules(vec![(7, "vnet v-net v4:00000000".into())]));
    assert_eq!(
        stale,
        vec![
            fresh[3].clone(),
            "nft delete rule inet vnet postrouting handle 7".into(),
            fresh[4].clone()
        ]
    );
}
