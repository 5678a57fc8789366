//! The nf_tables messages, checked byte by byte where it matters and read back with the
//! same parser that reads the kernel's answers.
use super::*;

const N: Names<'static> = Names {
    table: "vnet",
    chain: "postrouting",
};

fn header(msg: &[u8]) -> (u32, u16, u16, u32) {
    (
        u32::from_ne_bytes(msg[0..4].try_into().unwrap()),
        u16::from_ne_bytes(msg[4..6].try_into().unwrap()),
        u16::from_ne_bytes(msg[6..8].try_into().unwrap()),
        u32::from_ne_bytes(msg[8..12].try_into().unwrap()),
    )
}

#[test]
fn a_batch_frames_its_messages_and_lengths_add_up() {
    let t = new_table(&N, 8);
    let b = batch(7, std::slice::from_ref(&t));
    let msgs = replies(&b);
    assert_eq!(msgs.len(), 3);
    assert_eq!((msgs[0].kind, msgs[0].seq), (0x10, 7));
    assert_eq!(msgs[1].kind, (NFNL_SUBSYS_NFTABLES << 8) | MSG_NEWTABLE);
    assert_eq!((msgs[2].kind, msgs[2].seq), (0x11, 9));
    // The batch frame names the nf_tables subsystem in its nfgenmsg resource id.
    assert_eq!(&msgs[0].payload[2..4], &NFNL_SUBSYS_NFTABLES.to_be_bytes());
    let (len, _, flags, seq) = header(&t);
    assert_eq!(len as usize, t.len());
    assert_eq!(seq, 8);
    assert_eq!(flags, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK);
    // family inet, then the name as a NUL-terminated string attribute.
    assert_eq!(t[16], NFPROTO_INET);
    assert_eq!(attrs(&t[20..]), vec![(TABLE_NAME, &b"vnet\0"[..])]);
}

#[test]
fn the_set_is_created_exclusively() {
    let s = new_set(&N, "pods4_x", 1, Family::V4, 1);
    let (_, _, flags, _) = header(&s);
    assert_ne!(flags & NLM_F_EXCL, 0);
    let a = attrs(&s[20..]);
    assert!(a.contains(&(SET_KEY_LEN, &4u32.to_be_bytes()[..])));
    assert!(a.contains(&(SET_KEY_TYPE, &TYPE_IPADDR.to_be_bytes()[..])));
    let s6 = new_set(&N, "pods6_x", 1, Family::V6, 1);
    assert!(attrs(&s6[20..]).contains(&(SET_KEY_LEN, &16u32.to_be_bytes()[..])));
}

#[test]
fn elements_round_trip_with_their_comments() {
    let ips: Vec<IpAddr> = vec!["10.244.1.2".parse().unwrap(), "10.244.1.3".parse().unwrap()];
    let m = set_elems(
        &N,
        "pods4_x",
        &[(ips[0], Some("vnet v-net c1 eth0")), (ips[1], None)],
        false,
        3,
    );
    let got = parse_set_elems(&m[16..]);
    assert_eq!(
        got,
        vec![
            (ips[0], Some("vnet v-net c1 eth0".to_string())),
            (ips[1], None)
        ]
    );
    let del = set_elems(&N, "pods4_x", &[(ips[0], None)], true, 4);
    let (_, kind, flags, _) = header(&del);
    assert_eq!(kind, (NFNL_SUBSYS_NFTABLES << 8) | MSG_DELSETELEM);
    assert_eq!(flags & NLM_F_EXCL, 0);
    let v6: IpAddr = "fd00::2".parse().unwrap();
    let m6 = set_elems(&N, "pods6_x", &[(v6, Some("t"))], false, 5);
    assert_eq!(parse_set_elems(&m6[16..]), vec![(v6, Some("t".into()))]);
}

#[test]
fn comments_are_nft_user_data() {
    let u = comment_udata("vnet v-net");
    assert_eq!(u[0], 0);
    assert_eq!(u[1] as usize, "vnet v-net".len() + 1);
    assert_eq!(*u.last().unwrap(), 0);
    assert_eq!(comment_of(&u).as_deref(), Some("vnet v-net"));
    // Another record first, then the comment; truncated data is no comment.
    let mut two = vec![1, 2, 9, 9];
    two.extend_from_slice(&u);
    assert_eq!(comment_of(&two).as_deref(), Some("vnet v-net"));
    assert_eq!(comment_of(&u[..4]), None);
}

#[test]
fn the_rule_looks_up_the_set_and_excludes_each_prefix() {
    let exclude: Vec<IpNet> = vec![
        "10.244.0.0/16".parse().unwrap(),
        "fd00::/64".parse().unwrap(),
        "224.0.0.0/4".parse().unwrap(),
    ];
    let r = new_rule(&N, "pods4_x", 1, Family::V4, &exclude, "vnet v-net", 9);
    let a = attrs(&r[20..]);
    let exprs = a.iter().find(|(k, _)| *k == RULE_EXPRESSIONS).unwrap().1;
    let names: Vec<String> = attrs(exprs)
        .iter()
        .map(|(_, e)| {
            let n = attrs(e)[0].1;
            String::from_utf8_lossy(&n[..n.len() - 1]).into_owned()
        })
        .collect();
    // nfproto check, saddr lookup, then (payload, bitwise, cmp) per IPv4 prefix only.
    assert_eq!(
        names,
        [
            "meta", "cmp", "payload", "lookup", "payload", "bitwise", "cmp", "payload", "bitwise",
            "cmp", "masq"
        ]
    );
    let ud = a.iter().find(|(k, _)| *k == RULE_USERDATA).unwrap().1;
    assert_eq!(comment_of(ud).as_deref(), Some("vnet v-net"));
}

#[test]
fn errors_and_truncated_answers_are_read_safely() {
    let mut err = Msg::new(NLMSG_ERROR, 0, 5, 0, 0).done();
    err.truncate(16);
    err.extend_from_slice(&(-libc::EEXIST).to_ne_bytes());
    let len = err.len() as u32;
    err[0..4].copy_from_slice(&len.to_ne_bytes());
    let r = replies(&err);
    assert_eq!(r.len(), 1);
    assert_eq!(error_code(r[0].payload), Some(libc::EEXIST));
    // A length beyond the buffer stops the walk instead of reading past it.
    let mut bad = err.clone();
    bad[0..4].copy_from_slice(&1000u32.to_ne_bytes());
    assert!(replies(&bad).is_empty());
    assert!(attrs(&[8, 0, 1]).is_empty());
    assert!(parse_set_elems(&[]).is_empty());
    assert_eq!(parse_rule(&[0, 0, 0, 0]), None);
}
