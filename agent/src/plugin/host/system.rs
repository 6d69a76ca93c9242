//! `system` interface: read-only host facts, after the `system` access check — from this host,
//! or from a facts file (`plugin::tape`).

use crate::grant::Capability;
use crate::plugin::bindings::HostError;
use crate::plugin::bindings::system::{CpuStats, Disk, Host, HostFacts, LoadAvg, MemoryStats, NetIf, Process};
use crate::plugin::facts::process::matches;
use crate::plugin::state::PluginState;
use crate::plugin::tape::FactsFile;

type Answer<T> = wasmtime::Result<Result<T, HostError>>;

impl PluginState {
    /// One fact: refused without `system`; from the tape when replaying; else read by `live`
    /// and, when recording, kept with `keep`.
    fn system_fact<T: Clone>(
        &self,
        what: &str,
        recorded: impl FnOnce(&FactsFile) -> Option<T>,
        live: impl FnOnce(&crate::plugin::facts::Facts) -> Result<T, String>,
        keep: impl FnOnce(&mut FactsFile, T),
    ) -> Answer<T> {
        if let Err(why) = self.access.require(Capability::System) {
            return Ok(Err(HostError::Denied(why)));
        }
        if let Some(tape) = &self.services.tape
            && let Some(answer) = tape.replay(|f| recorded(f).map(Ok), what)
        {
            return Ok(answer);
        }
        let answer = live(&self.services.facts).map_err(HostError::Failed);
        if let (Some(tape), Ok(value)) = (&self.services.tape, &answer) {
            tape.record(|f| keep(f, value.clone()));
        }
        Ok(answer)
    }
}

impl Host for PluginState {
    async fn cpu(&mut self) -> Answer<CpuStats> {
        if let Err(why) = self.access.require(Capability::System) {
            return Ok(Err(HostError::Denied(why)));
        }
        if let Some(answer) = self.services.tape.as_ref().and_then(|t| t.replay(|f| f.cpu.clone().map(Ok), "cpu")) {
            return Ok(answer);
        }
        let answer = self.services.facts.cpu().await.map_err(HostError::Failed);
        if let (Some(tape), Ok(value)) = (&self.services.tape, &answer) {
            tape.record(|f| f.cpu = Some(value.clone()));
        }
        Ok(answer)
    }

    async fn memory(&mut self) -> Answer<MemoryStats> {
        self.system_fact("memory", |f| f.memory, |f| f.memory(), |f, v| f.memory = Some(v))
    }

    async fn load(&mut self) -> Answer<LoadAvg> {
        self.system_fact("load", |f| f.load, |f| f.load(), |f, v| f.load = Some(v))
    }

    async fn disks(&mut self) -> Answer<Vec<Disk>> {
        self.system_fact("disks", |f| f.disks.clone(), |f| f.disks(), |f, v| f.disks = Some(v))
    }

    async fn networks(&mut self) -> Answer<Vec<NetIf>> {
        self.system_fact("networks", |f| f.networks.clone(), |f| f.networks(), |f, v| f.networks = Some(v))
    }

    async fn processes(&mut self, filter: Option<String>) -> Answer<Vec<Process>> {
        // Recorded whole, filtered as the host filters, so one file answers every filter.
        let all = if self.services.tape.is_some() {
            self.system_fact("processes", |f| f.processes.clone(), |f| f.processes(None), |f, v| f.processes = Some(v))?
        } else {
            self.system_fact("processes", |_| None, |f| f.processes(filter.as_deref()), |_, _| {})?
        };
        Ok(all.map(|list| list.into_iter().filter(|p| filter.as_deref().is_none_or(|f| matches(p, f))).collect()))
    }

    async fn host(&mut self) -> Answer<HostFacts> {
        self.system_fact("host", |f| f.host.clone(), |f| f.host(), |f, v| f.host = Some(v))
    }
}
