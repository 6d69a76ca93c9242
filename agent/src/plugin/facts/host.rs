//! Identity and uptime of the host.

use super::{FactError, Facts};
use crate::plugin::bindings::system::HostFacts;

impl Facts {
    pub(crate) fn host(&self) -> Result<HostFacts, FactError> {
        use sysinfo::System;
        Ok(HostFacts {
            hostname: System::host_name().unwrap_or_default(),
            os: System::long_os_version().unwrap_or_default(),
            kernel: System::kernel_version().unwrap_or_default(),
            uptime_seconds: System::uptime().map_err(|e| format!("reading uptime: {e}"))?,
            boot_time: System::boot_time().map_err(|e| format!("reading boot time: {e}"))?,
        })
    }
}
