//! Routes of the main table: listing and adding.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::{StreamExt, TryStreamExt};
use ipnet::IpNet;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteNextHop, RouteProtocol,
    RouteScope, RouteType, RouteVia,
};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST,
};
use rtnetlink::RouteMessageBuilder;

use super::{ns_suffix, NetError, Node, Ns};

/// One unicast route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination; `0.0.0.0/0` or `::/0` for a default route.
    pub dst: IpNet,
    pub gw: Option<IpAddr>,
    /// Output interface index.
    pub oif: Option<u32>,
}

impl Node {
    /// The unicast routes of the main table in `ns`, IPv4 then IPv6.
    pub fn routes(&self, ns: Ns) -> Result<Vec<Route>, NetError> {
        self.block_on(async {
            let handle = self.handle(ns)?;
            let mut routes = Vec::new();
            for query in [
                main_table_dump(RouteMessageBuilder::<Ipv4Addr>::new()),
                main_table_dump(RouteMessageBuilder::<Ipv6Addr>::new()),
            ] {
                let msgs: Vec<RouteMessage> = handle
                    .route()
                    .get(query)
                    .execute()
                    .try_collect()
                    .await
                    .map_err(|e| NetError::netlink(format!("list routes{}", ns_suffix(ns)), e))?;
                routes.extend(msgs.iter().flat_map(routes_of));
            }
            Ok(routes)
        })
    }

    /// Add a route to `dst` out of `dev`: via `gw`, or link-scope (on-link) without one.
    pub(crate) async fn add_route(
        &self,
        ns: Ns,
        dst: IpNet,
        gw: Option<IpAddr>,
        dev: &str,
    ) -> Result<(), NetError> {
        let op = match gw {
            Some(gw) => format!("add route {dst} via {gw} dev {dev}{}", ns_suffix(ns)),
            None => format!("add route {dst} dev {dev}{}", ns_suffix(ns)),
        };
        let link = self.require(ns, dev).await?;
        let mut builder = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(dst.network(), dst.prefix_len())
            .map_err(|e| NetError::invalid(&op, e))?
            .output_interface(link.index)
            // What `ip route add` and the reference plugin use (rtnetlink defaults to static).
            .protocol(RouteProtocol::Boot);
        builder = match gw {
            Some(gw) => builder.gateway(gw).map_err(|e| NetError::invalid(&op, e))?,
            None => builder.scope(RouteScope::Link),
        };
        // NLM_F_CREATE without NLM_F_EXCL (`ip route prepend`), as the reference plugins'
        // `netlink.RouteAddEcmp`: a pod attached to two networks (podman's `--network a,b`
        // or `network connect`) gets a default route from each, and the second must not
        // fail with EEXIST. IPv4 keeps both, the newer first; IPv6 joins them into one
        // multipath route. Only an identical route is still EEXIST.
        let mut req = NetlinkMessage::from(RouteNetlinkMessage::NewRoute(builder.build()));
        req.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE;
        let mut replies = self
            .handle(ns)?
            .clone()
            .request(req)
            .map_err(|e| NetError::netlink(&op, e))?;
        while let Some(reply) = replies.next().await {
            if let NetlinkPayload::Error(err) = reply.payload {
                return Err(NetError::netlink(op, rtnetlink::Error::NetlinkError(err)));
            }
        }
        Ok(())
    }
}

/// A dump request for the unicast routes of the main table, whatever their protocol.
/// The builder's default protocol (static) is a filter too under strict checking (see
/// conn.rs), which would hide the `proto boot` routes the plan adds.
pub(crate) fn main_table_dump<T>(builder: RouteMessageBuilder<T>) -> RouteMessage {
    let mut msg = builder.build();
    msg.header.protocol = RouteProtocol::Unspec;
    msg
}

/// The main-table unicast route of `msg`, one entry per next hop, or none for anything
/// else (local, broadcast, other tables, unreachable, ...). IPv6 joins routes to the same
/// destination and metric from two interfaces into one `RTA_MULTIPATH` route (a pod on
/// two networks has a default route from each): each hop is reported as a route of its
/// own, so a caller looking for "::/0 via g" finds it whichever network added it first.
pub(crate) fn routes_of(msg: &RouteMessage) -> Vec<Route> {
    if msg.header.kind != RouteType::Unicast {
        return Vec::new();
    }
    let mut table = u32::from(msg.header.table);
    let (mut dst, mut gw, mut oif) = (None, None, None);
    let mut hops: &[RouteNextHop] = &[];
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(a) => dst = ip_of(a),
            RouteAttribute::Oif(index) => oif = Some(*index),
            RouteAttribute::MultiPath(h) => hops = h,
            other => gw = gw.or_else(|| gateway_of(other)),
        }
    }
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
        return Vec::new();
    }
    let unspecified = match msg.header.address_family {
        netlink_packet_route::AddressFamily::Inet => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        netlink_packet_route::AddressFamily::Inet6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => return Vec::new(),
    };
    let Ok(dst) = IpNet::new(
        dst.unwrap_or(unspecified),
        msg.header.destination_prefix_length,
    ) else {
        return Vec::new();
    };
    if hops.is_empty() {
        return vec![Route { dst, gw, oif }];
    }
    hops.iter()
        .map(|hop| Route {
            dst,
            gw: hop.attributes.iter().find_map(gateway_of),
            oif: Some(hop.interface_index),
        })
        .collect()
}

fn gateway_of(attr: &RouteAttribute) -> Option<IpAddr> {
    match attr {
        RouteAttribute::Gateway(a) => ip_of(a),
        RouteAttribute::Via(RouteVia::Inet(ip)) => Some(IpAddr::V4(*ip)),
        RouteAttribute::Via(RouteVia::Inet6(ip)) => Some(IpAddr::V6(*ip)),
        _ => None,
    }
}

fn ip_of(addr: &RouteAddress) -> Option<IpAddr> {
    match addr {
        RouteAddress::Inet(ip) => Some(IpAddr::V4(*ip)),
        RouteAddress::Inet6(ip) => Some(IpAddr::V6(*ip)),
        _ => None,
    }
}
