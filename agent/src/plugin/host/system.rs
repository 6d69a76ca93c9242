//! `system` interface: read-only host facts, after the `system` access check.

use crate::grant::Capability;
use crate::plugin::bindings::HostError;
use crate::plugin::bindings::system::{CpuStats, Disk, Host, HostFacts, LoadAvg, MemoryStats, NetIf, Process};
use crate::plugin::state::PluginState;

type Answer<T> = wasmtime::Result<Result<T, HostError>>;

impl PluginState {
    fn system_fact<T>(&self, read: impl FnOnce(&crate::plugin::facts::Facts) -> Result<T, String>) -> Answer<T> {
        if let Err(why) = self.access.require(Capability::System) {
            return Ok(Err(HostError::Denied(why)));
        }
        Ok(read(&self.services.facts).map_err(HostError::Failed))
    }
}

impl Host for PluginState {
    async fn cpu(&mut self) -> Answer<CpuStats> {
        if let Err(why) = self.access.require(Capability::System) {
            return Ok(Err(HostError::Denied(why)));
        }
        Ok(self.services.facts.cpu().await.map_err(HostError::Failed))
    }

    async fn memory(&mut self) -> Answer<MemoryStats> {
        self.system_fact(|f| f.memory())
    }

    async fn load(&mut self) -> Answer<LoadAvg> {
        self.system_fact(|f| f.load())
    }

    async fn disks(&mut self) -> Answer<Vec<Disk>> {
        self.system_fact(|f| f.disks())
    }

    async fn networks(&mut self) -> Answer<Vec<NetIf>> {
        self.system_fact(|f| f.networks())
    }

    async fn processes(&mut self, filter: Option<String>) -> Answer<Vec<Process>> {
        self.system_fact(|f| f.processes(filter.as_deref()))
    }

    async fn host(&mut self) -> Answer<HostFacts> {
        self.system_fact(|f| f.host())
    }
}
