//! `log` interface: plugin messages into the agent's log, bounded per run, each on one line
//! (see `sanitise::log`): a plugin cannot write a log line of the agent's.

use crate::plugin::bindings::log::{Host, Level};
use crate::plugin::state::{LOG_MESSAGE_BYTES, PluginState};
use protocol::text as sanitise;

impl Host for PluginState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        if self.logs_left == 0 {
            self.logs_dropped += 1;
            return Ok(());
        }
        self.logs_left -= 1;
        let check = &*self.check;
        let message = sanitise::log(&message, LOG_MESSAGE_BYTES);
        let message = message.as_str();
        match level {
            Level::Trace => tracing::trace!(check, message, "plugin log"),
            Level::Debug => tracing::debug!(check, message, "plugin log"),
            Level::Info => tracing::info!(check, message, "plugin log"),
            Level::Warn => tracing::warn!(check, message, "plugin log"),
            Level::Error => tracing::error!(check, message, "plugin log"),
        }
        Ok(())
    }
}
