//! Network interfaces with their addresses and counters since boot.

use std::net::IpAddr;

use tokio::time::Instant;

use super::{FactError, Facts};
use crate::plugin::bindings::system::NetIf;

impl Facts {
    /// The addresses of this host's interfaces, for the net grants: a name grant must not
    /// reach them. Shares the interface list's cache; empty if it cannot be read (loopback
    /// and link-local are refused by the grant rules anyway).
    pub(crate) fn own_addresses(&self) -> Vec<IpAddr> {
        self.with(|inner| {
            if self.stale(inner.networks_at) {
                inner.networks.refresh(true);
                inner.networks_at = Some(Instant::now());
            }
            Ok(inner.networks.values().flat_map(|data| data.ip_networks().iter().map(|n| n.addr)).collect())
        })
        .unwrap_or_default()
    }

    pub(crate) fn networks(&self) -> Result<Vec<NetIf>, FactError> {
        self.with(|inner| {
            if self.stale(inner.networks_at) {
                inner.networks.refresh(true);
                inner.networks_at = Some(Instant::now());
            }
            let mut list: Vec<NetIf> = inner
                .networks
                .iter()
                .map(|(name, data)| NetIf {
                    name: name.to_string_lossy().into_owned(),
                    mac: data.mac_address().to_string(),
                    addresses: data.ip_networks().iter().map(|n| format!("{}/{}", n.addr, n.prefix)).collect(),
                    rx_bytes: data.total_received(),
                    tx_bytes: data.total_transmitted(),
                    rx_packets: data.total_packets_received(),
                    tx_packets: data.total_packets_transmitted(),
                    rx_errors: data.total_errors_on_received(),
                    tx_errors: data.total_errors_on_transmitted(),
                })
                .collect();
            list.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(list)
        })
    }
}
