//! `vakt-agent plugins`: the standard plugins, their config keys and needed capabilities.

use serde_json::json;

use super::{Format, cache_dir};
use crate::plugin::{Runtime, RuntimeConfig};
use crate::standard;

/// The listing, or why the plugins could not be read.
pub async fn plugins(format: Format, cache: Option<std::path::PathBuf>) -> Result<String, String> {
    let config =
        RuntimeConfig { concurrency: 1, cache_dir: cache_dir(cache), pooling: false, ..RuntimeConfig::default() };
    let runtime = Runtime::new(config).map_err(|e| common::report(&e))?;
    let mut text = String::new();
    let mut list = Vec::new();
    for name in standard::names() {
        let source = standard::source(name).ok_or_else(|| format!("standard plugin {name} missing"))?;
        let plugin =
            runtime.load(source, crate::plugin::RunLimits::default().timeout).await.map_err(|e| common::report(&e))?;
        let info = plugin.info();
        let needs: Vec<&str> = info.needs.iter().map(|c| c.as_str()).collect();
        match format {
            Format::Text => {
                text.push_str(&format!("{} {}: {}\n", name, info.version, info.description));
                let grant_hint = if needs.contains(&"net") {
                    " (grant targets with --grant net=HOST:PORT)"
                } else if needs.contains(&"fs") {
                    " (grant paths with --grant fs=/path)"
                } else {
                    ""
                };
                text.push_str(&format!(
                    "  needs: {}{grant_hint}\n",
                    if needs.is_empty() { "nothing".to_string() } else { needs.join(", ") }
                ));
                let width = info.config.iter().map(|k| k.name.len()).max().unwrap_or(0);
                for key in &info.config {
                    let default = match (&key.default, key.required) {
                        (_, true) => " (required)".to_string(),
                        (Some(d), false) => format!(" (default: {d})"),
                        (None, false) => String::new(),
                    };
                    text.push_str(&format!("  {:width$}  {}{default}\n", key.name, key.help));
                }
                text.push('\n');
            }
            Format::Json => list.push(json!({
                "name": name,
                "version": info.version,
                "description": info.description,
                "needs": needs,
                "sha256": plugin.sha256(),
                "config": info.config.iter().map(|k| json!({
                    "name": k.name, "help": k.help, "default": k.default, "required": k.required,
                })).collect::<Vec<_>>(),
            })),
        }
    }
    Ok(match format {
        Format::Text => text.trim_end().to_string(),
        Format::Json => serde_json::to_string_pretty(&list).map_err(|e| e.to_string())?,
    })
}
