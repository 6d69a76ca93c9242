//! The operator's configuration as a plugin sees it: checked against the keys the plugin
//! declared, with defaults applied, and typed getters whose errors name the key.

use core::str::FromStr;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::{CheckError, Threshold, Thresholds, duration};

/// A configuration key a plugin understands, declared as a constant in [`crate::Check::CONFIG`].
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    pub help: &'static str,
    pub default: Option<&'static str>,
    pub required: bool,
}

impl Key {
    /// A key the check cannot run without.
    pub const fn required(name: &'static str, help: &'static str) -> Key {
        Key { name, help, default: None, required: true }
    }

    /// A key with a default value.
    pub const fn with_default(name: &'static str, default: &'static str, help: &'static str) -> Key {
        Key { name, help, default: Some(default), required: false }
    }

    /// A key that may be left out and has no default.
    pub const fn optional(name: &'static str, help: &'static str) -> Key {
        Key { name, help, default: None, required: false }
    }
}

/// Validated configuration: every key is known, every required key present, defaults filled in.
#[derive(Debug, Clone, Default)]
pub struct Config {
    values: BTreeMap<String, String>,
}

fn bad(message: String) -> CheckError {
    CheckError::BadConfig(message)
}

impl Config {
    /// Check `pairs` against `keys`. Unknown keys are an error (a typo must not silently fall
    /// back to a default), so are duplicates and missing required keys.
    pub fn from_pairs(keys: &[Key], pairs: Vec<(String, String)>) -> Result<Config, CheckError> {
        let mut values = BTreeMap::new();
        for (name, value) in pairs {
            if !keys.iter().any(|k| k.name == name) {
                let known: Vec<&str> = keys.iter().map(|k| k.name).collect();
                return Err(bad(format!(
                    "unknown key `{name}`; this plugin understands: {}",
                    if known.is_empty() { "no keys".to_string() } else { known.join(", ") }
                )));
            }
            if values.insert(name.clone(), value).is_some() {
                return Err(bad(format!("key `{name}` is set twice")));
            }
        }
        for key in keys {
            if values.contains_key(key.name) {
                continue;
            }
            match (key.default, key.required) {
                (Some(default), _) => {
                    values.insert(key.name.to_string(), default.to_string());
                }
                (None, true) => return Err(bad(format!("missing required key `{}`: {}", key.name, key.help))),
                (None, false) => {}
            }
        }
        Ok(Config { values })
    }

    /// The raw text of `key`, if set (or defaulted).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// The raw text of a key that is required or has a default.
    pub fn text(&self, key: &str) -> Result<&str, CheckError> {
        self.get(key).ok_or_else(|| bad(format!("missing key `{key}`")))
    }

    /// Parse `key` with `FromStr`, if set.
    pub fn parse_opt<T: FromStr>(&self, key: &str) -> Result<Option<T>, CheckError>
    where
        T::Err: core::fmt::Display,
    {
        match self.get(key) {
            None => Ok(None),
            Some(text) => {
                text.trim().parse().map(Some).map_err(|e| bad(format!("key `{key}`: cannot use `{text}`: {e}")))
            }
        }
    }

    /// Parse a key that is required or has a default.
    pub fn parse<T: FromStr>(&self, key: &str) -> Result<T, CheckError>
    where
        T::Err: core::fmt::Display,
    {
        self.parse_opt(key)?.ok_or_else(|| bad(format!("missing key `{key}`")))
    }

    /// A Nagios range (`80`, `10:`, `~:10`, `10:20`, `@10:20`), if set.
    pub fn threshold(&self, key: &str) -> Result<Option<Threshold>, CheckError> {
        self.parse_opt(key)
    }

    /// The `warning` and `critical` keys as ranges.
    pub fn thresholds(&self) -> Result<Thresholds, CheckError> {
        Ok(Thresholds { warning: self.threshold("warning")?, critical: self.threshold("critical")? })
    }

    /// A duration such as `90s`, `15m`, `26h`, `7d`, if set.
    pub fn duration_opt(&self, key: &str) -> Result<Option<Duration>, CheckError> {
        match self.get(key) {
            None => Ok(None),
            Some(text) => duration::parse(text).map(Some).map_err(|e| bad(format!("key `{key}`: {e}"))),
        }
    }

    /// A duration key that is required or has a default.
    pub fn duration(&self, key: &str) -> Result<Duration, CheckError> {
        self.duration_opt(key)?.ok_or_else(|| bad(format!("missing key `{key}`")))
    }

    /// `true`/`false` (also `yes`/`no`, `1`/`0`).
    pub fn flag(&self, key: &str) -> Result<bool, CheckError> {
        match self.get(key).map(str::trim) {
            None | Some("false" | "no" | "0") => Ok(false),
            Some("true" | "yes" | "1") => Ok(true),
            Some(other) => Err(bad(format!("key `{key}`: `{other}` is not true or false"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[Key] = &[
        Key::required("path", "mount point"),
        Key::with_default("warning", "80", "warn %"),
        Key::optional("critical", "crit %"),
    ];

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn message(err: CheckError) -> String {
        match err {
            CheckError::BadConfig(m) => m,
            other => panic!("expected bad-config, got {other:?}"),
        }
    }

    #[test]
    fn defaults_fill_in_and_optional_stays_unset() {
        let config = Config::from_pairs(KEYS, pairs(&[("path", "/")])).unwrap();
        assert_eq!(config.get("warning"), Some("80"));
        assert_eq!(config.get("critical"), None);
        assert_eq!(config.parse::<f64>("warning").unwrap(), 80.0);
    }

    #[test]
    fn unknown_key_is_rejected_with_the_known_ones_listed() {
        let err = Config::from_pairs(KEYS, pairs(&[("path", "/"), ("warnign", "1")])).unwrap_err();
        let text = message(err);
        assert!(text.contains("unknown key `warnign`"), "{text}");
        assert!(text.contains("path, warning, critical"), "{text}");
    }

    #[test]
    fn missing_required_key_is_rejected() {
        let text = message(Config::from_pairs(KEYS, vec![]).unwrap_err());
        assert!(text.contains("missing required key `path`"), "{text}");
    }

    #[test]
    fn duplicate_key_is_rejected() {
        let err = Config::from_pairs(KEYS, pairs(&[("path", "/"), ("path", "/var")])).unwrap_err();
        assert!(message(err).contains("set twice"));
    }

    #[test]
    fn typed_getters_name_the_key_on_error() {
        let config = Config::from_pairs(KEYS, pairs(&[("path", "/"), ("critical", "lots")])).unwrap();
        let text = message(config.threshold("critical").unwrap_err());
        assert!(text.contains("key `critical`"), "{text}");
        let text = message(config.parse::<u16>("path").unwrap_err());
        assert!(text.contains("key `path`"), "{text}");
    }

    #[test]
    fn flags_accept_common_spellings() {
        let keys = &[Key::optional("tls", "use tls")];
        for (text, want) in [("true", true), ("yes", true), ("1", true), ("no", false)] {
            let config = Config::from_pairs(keys, pairs(&[("tls", text)])).unwrap();
            assert_eq!(config.flag("tls").unwrap(), want);
        }
        let config = Config::from_pairs(keys, pairs(&[("tls", "maybe")])).unwrap();
        assert!(config.flag("tls").is_err());
    }
}
