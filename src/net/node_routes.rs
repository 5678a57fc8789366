//! Routes between nodes: the host's main-table routes with their protocol, and adding,
//! replacing and deleting routes of vnet's own protocol. Also the node's own addresses,
//! by which it finds itself in the node table.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::route::{RouteMessage, RouteProtocol};
use rtnetlink::RouteMessageBuilder;

use crate::plan::VNET_ROUTE_PROTO;

use super::error::errno_of;
use super::route::{main_table_dump, routes_of};
use super::{ns_suffix, NetError, Node, Ns};

/// A main-table unicast route of the host namespace with the protocol that installed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MainRoute {
    pub dst: IpNet,
    pub gw: Option<IpAddr>,
    /// `RTPROT_*`: 2 kernel, 3 boot (`ip route add`), 4 static, 118 vnet, ...
    pub protocol: u8,
}

impl MainRoute {
    pub fn is_vnet(&self) -> bool {
        self.protocol == VNET_ROUTE_PROTO
    }
}

/// How a node route is written: added (a parallel ADD's identical route is fine), or
/// replacing the route to the same destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RouteWrite {
    Add,
    Replace,
}

impl Node {
    /// Main-table unicast routes of the host namespace, one dump per asked family. The
    /// kernel ignores a protocol filter on a plain dump, so filtering is the caller's.
    pub fn main_routes(&self, v4: bool, v6: bool) -> Result<Vec<MainRoute>, NetError> {
        self.block_on(async {
            let mut queries = Vec::new();
            if v4 {
                queries.push(main_table_dump(RouteMessageBuilder::<Ipv4Addr>::new()));
            }
            if v6 {
                queries.push(main_table_dump(RouteMessageBuilder::<Ipv6Addr>::new()));
            }
            let mut routes = Vec::new();
            for query in queries {
                let msgs: Vec<RouteMessage> = self
                    .host
                    .handle
                    .route()
                    .get(query)
                    .execute()
                    .try_collect()
                    .await
                    .map_err(|e| NetError::netlink("list routes", e))?;
                routes.extend(msgs.iter().flat_map(|m| {
                    routes_of(m).into_iter().map(|r| MainRoute {
                        dst: r.dst,
                        gw: r.gw,
                        protocol: u8::from(m.header.protocol),
                    })
                }));
            }
            Ok(routes)
        })
    }

    /// Every address configured on any link of the host namespace.
    pub fn local_ips(&self) -> Result<Vec<IpAddr>, NetError> {
        self.ips(Ns::Host)
    }

    /// Every address configured on any link of `ns`.
    pub fn ips(&self, ns: Ns) -> Result<Vec<IpAddr>, NetError> {
        self.block_on(async {
            let msgs: Vec<AddressMessage> = self
                .handle(ns)?
                .address()
                .get()
                .execute()
                .try_collect()
                .await
                .map_err(|e| NetError::netlink(format!("list addresses{}", ns_suffix(ns)), e))?;
            Ok(msgs.iter().filter_map(local_of).collect())
        })
    }

    /// `ip route add|replace <dst> via <gw> proto 118`.
    pub(crate) async fn set_node_route(
        &self,
        dst: IpNet,
        gw: IpAddr,
        write: RouteWrite,
    ) -> Result<(), NetError> {
        let replace = write == RouteWrite::Replace;
        let verb = if replace { "replace" } else { "add" };
        let op = format!("{verb} route {dst} via {gw} proto {VNET_ROUTE_PROTO}");
        let msg = node_route(dst, Some(gw)).map_err(|e| NetError::invalid(&op, e))?;
        let request = self.host.handle.route().add(msg);
        let request = if replace { request.replace() } else { request };
        match request.execute().await {
            // A parallel ADD synced the same table first; the next sync checks the gateway.
            Err(e) if !replace && errno_of(&e) == Some(libc::EEXIST) => Ok(()),
            other => other.map_err(|e| NetError::netlink(op, e)),
        }
    }

    /// `ip route del <dst> [via <gw>] proto 118`: the kernel matches the protocol, so a
    /// route somebody else installed for the same subnet stays. Gone already is success.
    pub(crate) async fn del_node_route(
        &self,
        dst: IpNet,
        gw: Option<IpAddr>,
    ) -> Result<(), NetError> {
        let op = match gw {
            Some(gw) => format!("delete route {dst} via {gw} proto {VNET_ROUTE_PROTO}"),
            None => format!("delete route {dst} proto {VNET_ROUTE_PROTO}"),
        };
        let msg = node_route(dst, gw).map_err(|e| NetError::invalid(&op, e))?;
        match self.host.handle.route().del(msg).execute().await {
            Err(e) if matches!(errno_of(&e), Some(libc::ESRCH) | Some(libc::ENOENT)) => Ok(()),
            other => other.map_err(|e| NetError::netlink(op, e)),
        }
    }
}

fn node_route(dst: IpNet, gw: Option<IpAddr>) -> Result<RouteMessage, String> {
    let mut b = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(dst.network(), dst.prefix_len())
        .map_err(|e| e.to_string())?
        .protocol(RouteProtocol::from(VNET_ROUTE_PROTO));
    if let Some(gw) = gw {
        b = b.gateway(gw).map_err(|e| e.to_string())?;
    }
    Ok(b.build())
}

/// The interface's own address of an `RTM_NEWADDR` (`IFA_LOCAL` for IPv4).
fn local_of(msg: &AddressMessage) -> Option<IpAddr> {
    let find = |local: bool| {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(ip) if local => Some(*ip),
            AddressAttribute::Address(ip) if !local => Some(*ip),
            _ => None,
        })
    };
    find(true).or_else(|| find(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vnet_routes_are_recognised_by_protocol() {
        let r = |protocol| MainRoute {
            dst: "10.244.2.0/24".parse().unwrap(),
            gw: Some("192.168.1.12".parse().unwrap()),
            protocol,
        };
        assert!(r(118).is_vnet());
        assert!(!r(3).is_vnet());
        assert_eq!(u8::from(RouteProtocol::from(VNET_ROUTE_PROTO)), 118);
    }
}
