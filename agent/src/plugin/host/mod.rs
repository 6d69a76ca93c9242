//! Implementations of the WIT interfaces a plugin imports, one file per interface. Each
//! function checks the plugin's access before doing anything, and answers a refused call
//! with `host-error::denied`, never a trap.

mod fs;
mod log;
mod net;
mod system;

use crate::probe::ProbeError;

use super::bindings::{HostError, vakt};
use super::state::PluginState;

impl vakt::check::types::Host for PluginState {}

impl From<ProbeError> for HostError {
    fn from(error: ProbeError) -> Self {
        match error {
            ProbeError::Denied(why) => HostError::Denied(why),
            ProbeError::Invalid(why) => HostError::Invalid(why),
            ProbeError::Timeout => HostError::Timeout,
            ProbeError::Failed(why) => HostError::Failed(why),
        }
    }
}
