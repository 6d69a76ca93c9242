//! Loading a plugin: checks on the bytes, compile (or cache hit), link once into an
//! `InstancePre`, and read its `info`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use protocol::text as sanitise;
use tokio::time::Instant;
use wasmtime::component::Component;

use super::ConfigKeyInfo;
use super::bindings::CheckPre;
use super::capability::Access;
use super::run::describe_error;
use super::{CacheUse, LoadError, Plugin, PluginInfo, PluginSource, RunLimits, Runtime};
use crate::grant::{Capability, GrantSet};

impl Runtime {
    /// Check, compile (or load from the cache), link and describe a plugin. `info` runs under
    /// the same deadline as a run of the check (`info_timeout`): a plugin that does not answer
    /// does not load, and says so.
    pub async fn load(&self, source: PluginSource, info_timeout: Duration) -> Result<Plugin, LoadError> {
        let plugin = source.label.clone();
        let sha256 = source.digest();
        if let Some(pin) = &source.pin
            && !pin.eq_ignore_ascii_case(&sha256)
        {
            return Err(LoadError::PinMismatch { plugin, expected: pin.to_ascii_lowercase(), actual: sha256 });
        }
        if wasmparser::Parser::is_core_wasm(&source.bytes) {
            return Err(LoadError::CoreModule { plugin });
        }
        if !wasmparser::Parser::is_component(&source.bytes) {
            return Err(LoadError::NotWasm { plugin });
        }

        // Compiling is CPU-bound and can take seconds for interpreted guests.
        let inner = self.inner.clone();
        let bytes = source.bytes.clone();
        let key = sha256.clone();
        let compiled = tokio::task::spawn_blocking(move || match &inner.cache {
            Some(cache) => cache.load_or_compile(&inner.engine, &bytes, &key),
            None => Component::new(&inner.engine, &*bytes).map(|c| (c, CacheUse::Bypass)),
        })
        .await
        .map_err(|e| LoadError::Compile { plugin: plugin.clone(), reason: e.to_string() })?;
        let (component, cache_use) =
            compiled.map_err(|e| LoadError::Compile { plugin: plugin.clone(), reason: format!("{e:#}") })?;

        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .and_then(CheckPre::new)
            .map_err(|e| LoadError::Link { plugin: plugin.clone(), reason: format!("{e:#}") })?;

        let mut loaded = Plugin {
            runtime: self.clone(),
            label: source.label,
            sha256,
            standard: source.standard,
            pre,
            info: PluginInfo {
                name: String::new(),
                version: String::new(),
                description: String::new(),
                needs: BTreeSet::new(),
                config: Vec::new(),
            },
            cache_use,
        };
        loaded.info = loaded.read_info(info_timeout).await.map_err(|reason| LoadError::Info { plugin, reason })?;
        Ok(loaded)
    }
}

impl Plugin {
    async fn read_info(&self, timeout: Duration) -> Result<PluginInfo, String> {
        let deadline = Instant::now() + timeout;
        // `info` runs before any check config is known: allow what the largest check may use.
        let limits = RunLimits { memory: self.runtime.inner.max_memory, ..RunLimits::default() };
        let access = Access::new(BTreeSet::new(), GrantSet::default(), false);
        let (mut store, stdio) = self.store(access, &limits, deadline, Arc::from(self.label.as_str()));
        let call = async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            instance.call_info(&mut store).await
        };
        let info = match tokio::time::timeout_at(deadline, call).await {
            Ok(Ok(info)) => info,
            Ok(Err(error)) if error.is::<super::run::DeadlineExceeded>() => {
                return Err(format!("no answer within the deadline of {timeout:?}"));
            }
            Ok(Err(error)) => return Err(describe_error(&error, &stdio.stderr)),
            Err(_) => return Err(format!("no answer within the deadline of {timeout:?}")),
        };
        // Everything `info` says is shown by `vakt-agent plugins` and logged: one line each.
        let line = |text: &str| sanitise::line(text, 1024);
        let mut needs = BTreeSet::new();
        for need in &info.needs {
            needs.insert(need.parse::<Capability>().map_err(|e| format!("`needs`: {}", line(&e.to_string())))?);
        }
        if info.name.trim().is_empty() {
            return Err("`info` returned an empty name".into());
        }
        Ok(PluginInfo {
            name: line(&info.name),
            version: line(&info.version),
            description: line(&info.description),
            needs,
            config: info
                .config
                .into_iter()
                .map(|k| ConfigKeyInfo {
                    name: line(&k.name),
                    help: line(&k.help),
                    default: k.default.as_deref().map(line),
                    required: k.required,
                })
                .collect(),
        })
    }
}
