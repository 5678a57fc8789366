//! A netfilter netlink socket in the node namespace, speaking the nf_tables messages of
//! `nft_wire.rs`: one batch per change (one transaction, all or nothing), dumps for
//! reading. No `nft` process: a plugin call runs no other program.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, send, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};

use super::nft_wire::{self as wire, Reply};

/// Large enough for a dump's batch of messages (the kernel fills up to a page or two).
const RECV_BUF: usize = 64 << 10;

/// How often an interrupted dump is read again before the caller gets EINTR.
const DUMP_TRIES: u32 = 5;

pub(crate) struct NftSock {
    fd: OwnedFd,
    seq: u32,
}

/// What a transaction or a dump failed with: the kernel's errno (`EEXIST`, `ENOENT`…),
/// or a socket error.
pub(crate) type NftResult<T> = Result<T, Errno>;

impl NftSock {
    /// A socket in the calling thread's network namespace.
    pub(crate) fn open() -> io::Result<NftSock> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        Ok(NftSock { fd, seq: 1 })
    }

    fn next_seq(&mut self, n: usize) -> u32 {
        let s = self.seq;
        self.seq = self.seq.wrapping_add(n as u32 + 2);
        s
    }

    /// Sends `build(first_seq)`'s messages as one batch. The kernel processes a batch
    /// inside `send` (netlink input runs in the sender's context), so every answer is
    /// queued when `send` returns: read them without waiting, first error wins.
    pub(crate) fn transact(&mut self, msgs: impl FnOnce(u32) -> Vec<Vec<u8>>) -> NftResult<()> {
        // Sequence numbers: BEGIN, the messages, END.
        let seq = self.next_seq(64);
        let msgs = msgs(seq + 1);
        let frame = wire::batch(seq, &msgs);
        self.drain();
        send(self.fd.as_raw_fd(), &frame, MsgFlags::empty())?;
        let mut buf = vec![0u8; RECV_BUF];
        let mut first_err = None;
        loop {
            let n = match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(n) => n,
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            };
            for r in wire::replies(&buf[..n]) {
                if r.kind == wire::NLMSG_ERROR {
                    match wire::error_code(r.payload) {
                        Some(0) | None => {}
                        Some(e) => {
                            first_err.get_or_insert(Errno::from_raw(e));
                        }
                    }
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Answers left from an earlier request (none in practice): never read as ours.
    fn drain(&mut self) {
        let mut buf = [0u8; 4096];
        while recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT).is_ok() {}
    }

    /// Sends one request and collects the payloads of every message of type `kind` in
    /// the answer, up to the end of a dump or the one answer of a get.
    pub(crate) fn request(
        &mut self,
        kind: u16,
        build: impl Fn(u32) -> Vec<u8>,
        dump: bool,
    ) -> NftResult<Vec<Vec<u8>>> {
        // A dump the kernel marks interrupted is read again (a few times: every change
        // elsewhere on the node can interrupt one).
        let mut tries = 0;
        loop {
            match self.request_once(kind, &build, dump) {
                Err(Errno::EINTR) if dump && tries < DUMP_TRIES => tries += 1,
                r => return r,
            }
        }
    }

    fn request_once(
        &mut self,
        kind: u16,
        build: &impl Fn(u32) -> Vec<u8>,
        dump: bool,
    ) -> NftResult<Vec<Vec<u8>>> {
        let seq = self.next_seq(1);
        self.drain();
        send(self.fd.as_raw_fd(), &build(seq), MsgFlags::empty())?;
        let want = (wire::NFNL_SUBSYS_NFTABLES << 8) | kind;
        let mut out = Vec::new();
        let mut interrupted = false;
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            let n = match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            };
            for Reply {
                kind,
                flags,
                seq: s,
                payload,
            } in wire::replies(&buf[..n])
            {
                if s != seq {
                    continue;
                }
                // The ruleset changed under the dump: what was read may miss an entry.
                // Callers treat EINTR as "read again".
                if dump && flags & wire::NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                match kind {
                    wire::NLMSG_DONE if interrupted => return Err(Errno::EINTR),
                    wire::NLMSG_DONE => return Ok(out),
                    wire::NLMSG_ERROR => {
                        return match wire::error_code(payload) {
                            Some(0) | None => Ok(out),
                            Some(e) => Err(Errno::from_raw(e)),
                        }
                    }
                    k if k == want => {
                        out.push(payload.to_vec());
                        if !dump {
                            return Ok(out);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}
