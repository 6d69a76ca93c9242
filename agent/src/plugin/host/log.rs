//! `log` interface: plugin messages into the agent's log, bounded per run.

use crate::plugin::bindings::log::{Host, Level};
use crate::plugin::state::{LOG_MESSAGE_BYTES, PluginState};

fn cut(message: &str) -> &str {
    if message.len() <= LOG_MESSAGE_BYTES {
        return message;
    }
    let mut end = LOG_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

impl Host for PluginState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        if self.logs_left == 0 {
            self.logs_dropped += 1;
            return Ok(());
        }
        self.logs_left -= 1;
        let check = &*self.check;
        let message = cut(&message);
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
