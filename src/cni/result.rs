//! The CNI result, kept version-neutral inside and printed in the caller's version.
//!
//! Field order follows the reference Go types (040 and 100) so a field-by-field or
//! textual comparison with the reference plugins lines up.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::version::Version;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniResult {
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    pub routes: Vec<Route>,
    pub dns: Dns,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    pub address: IpNet,
    pub gateway: Option<IpAddr>,
    pub interface: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub dst: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advmss: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u8>,
}

impl Route {
    pub fn new(dst: IpNet, gw: Option<IpAddr>) -> Route {
        Route {
            dst,
            gw,
            mtu: None,
            advmss: None,
            priority: None,
            table: None,
            scope: None,
        }
    }

    /// The 1.1-only fields, dropped when printing an older version.
    fn without_extras(&self) -> Route {
        Route::new(self.dst, self.gw)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        self == &Dns::default()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    cni_version: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    interfaces: Vec<Interface>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ips: Vec<WireIp>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    routes: Vec<Route>,
    // The reference prints `"dns": {}` even when empty (a struct, not a pointer).
    dns: &'a Dns,
}

#[derive(Serialize, Deserialize)]
struct WireIp {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interface: Option<usize>,
    address: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gateway: Option<IpAddr>,
}

#[derive(Deserialize)]
struct WireIn {
    #[serde(default)]
    interfaces: Vec<Interface>,
    #[serde(default)]
    ips: Vec<WireIp>,
    #[serde(default)]
    routes: Vec<Route>,
    #[serde(default)]
    dns: Dns,
}

impl CniResult {
    /// The result as the caller's spec version spells it.
    pub fn to_json(&self, version: Version) -> serde_json::Value {
        let ips = self
            .ips
            .iter()
            .map(|ip| WireIp {
                version: version.ips_carry_version().then(|| {
                    if ip.address.addr().is_ipv4() {
                        "4"
                    } else {
                        "6"
                    }
                    .to_string()
                }),
                interface: ip.interface,
                address: ip.address,
                gateway: ip.gateway,
            })
            .collect();
        let (interfaces, routes) = if version.has_route_extras() {
            (self.interfaces.clone(), self.routes.clone())
        } else {
            let ifs = self
                .interfaces
                .iter()
                .map(|i| Interface {
                    mtu: None,
                    ..i.clone()
                })
                .collect();
            (ifs, self.routes.iter().map(Route::without_extras).collect())
        };
        let wire = Wire {
            cni_version: version.to_string(),
            interfaces,
            ips,
            routes,
            dns: &self.dns,
        };
        serde_json::to_value(wire).unwrap_or_default()
    }

    /// Reads a result of any supported version (a `prevResult`, or a delegated IPAM
    /// plugin's output). `ips[].version` is accepted and ignored.
    pub fn from_json(v: &serde_json::Value) -> Result<CniResult, String> {
        let w: WireIn = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
        Ok(CniResult {
            interfaces: w.interfaces,
            ips: w
                .ips
                .into_iter()
                .map(|ip| IpConfig {
                    address: ip.address,
                    gateway: ip.gateway,
                    interface: ip.interface,
                })
                .collect(),
            routes: w.routes,
            dns: w.dns,
        })
    }
}

/// Prints JSON the way the reference does: 4-space indent, no trailing newline.
pub fn to_pretty(v: &serde_json::Value) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    if v.serialize(&mut ser).is_err() {
        return v.to_string();
    }
    String::from_utf8(out).unwrap_or_else(|_| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> CniResult {
        CniResult {
            interfaces: vec![
                Interface {
                    name: "v-net-0".into(),
                    mac: Some("aa:bb:cc:dd:ee:01".into()),
                    ..Default::default()
                },
                Interface {
                    name: "veth0a1b2c3d".into(),
                    mac: Some("aa:bb:cc:dd:ee:02".into()),
                    ..Default::default()
                },
                Interface {
                    name: "eth0".into(),
                    mac: Some("aa:bb:cc:dd:ee:03".into()),
                    mtu: Some(1500),
                    sandbox: Some("/run/netns/p1".into()),
                },
            ],
            ips: vec![
                IpConfig {
                    address: "10.1.2.2/24".parse().unwrap(),
                    gateway: Some("10.1.2.1".parse().unwrap()),
                    interface: Some(2),
                },
                IpConfig {
                    address: "2001:db8:1::2/64".parse().unwrap(),
                    gateway: Some("2001:db8:1::1".parse().unwrap()),
                    interface: Some(2),
                },
            ],
            routes: vec![Route {
                table: Some(100),
                ..Route::new(
                    "0.0.0.0/0".parse().unwrap(),
                    Some("10.1.2.1".parse().unwrap()),
                )
            }],
            dns: Dns::default(),
        }
    }

    #[test]
    fn v040_has_ip_versions_and_no_extras() {
        let v = sample().to_json(Version(0, 4, 0));
        assert_eq!(v["cniVersion"], "0.4.0");
        assert_eq!(
            v["ips"][0],
            json!({"version": "4", "interface": 2, "address": "10.1.2.2/24", "gateway": "10.1.2.1"})
        );
        assert_eq!(v["ips"][1]["version"], "6");
        assert_eq!(
            v["routes"][0],
            json!({"dst": "0.0.0.0/0", "gw": "10.1.2.1"})
        );
        assert!(v["interfaces"][2].get("mtu").is_none());
        assert_eq!(v["dns"], json!({}));
    }

    #[test]
    fn v100_drops_ip_version_v110_keeps_extras() {
        let v = sample().to_json(Version(1, 0, 0));
        assert!(v["ips"][0].get("version").is_none());
        assert!(v["routes"][0].get("table").is_none());
        let v = sample().to_json(Version(1, 1, 0));
        assert_eq!(v["routes"][0]["table"], 100);
        assert_eq!(v["interfaces"][2]["mtu"], 1500);
    }

    #[test]
    fn round_trips_through_any_version() {
        for ver in [Version(0, 3, 0), Version(0, 4, 0), Version(1, 1, 0)] {
            let back = CniResult::from_json(&sample().to_json(ver)).unwrap();
            assert_eq!(back.ips, sample().ips);
        }
    }

    #[test]
    fn field_order_matches_the_reference() {
        let text = to_pretty(&sample().to_json(Version(0, 4, 0)));
        let at = |k: &str| text.find(k).unwrap();
        assert!(at("\"cniVersion\"") < at("\"interfaces\""));
        assert!(at("\"interfaces\"") < at("\"ips\""));
        assert!(at("\"ips\"") < at("\"routes\""));
        assert!(at("\"routes\"") < at("\"dns\""));
        assert!(at("\"version\"") < at("\"interface\": 2"));
        assert!(!text.ends_with('\n'));
        assert!(text.contains("\n    \"cniVersion\""));
    }

    #[test]
    fn rejects_garbage() {
        assert!(CniResult::from_json(&json!({"ips": [{"address": "nope"}]})).is_err());
        assert!(CniResult::from_json(&json!({"ips": 3})).is_err());
    }
}
