//! TCP connect probe.

use std::time::Duration;

use super::{AddressPolicy, Connected, ProbeError, Prober, within};

impl Prober {
    /// Connect to `host:port` and close again. Returns the address used and the connect time.
    pub async fn tcp_connect(
        &self,
        host: &str,
        port: u16,
        limit: Duration,
        policy: &dyn AddressPolicy,
    ) -> Result<(std::net::SocketAddr, Duration), ProbeError> {
        let Connected { addr, connect, .. } = within(limit, self.connect(host, port, policy)).await?;
        Ok((addr, connect))
    }
}
