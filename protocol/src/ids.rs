//! Identifiers that appear in MQTT topics and payloads.
//!
//! Both kinds follow one rule, `[A-Za-z0-9._-]{1,64}`, so they are safe as a topic level
//! (no `/`, `+`, `#`), as a file name and in a URL path, without escaping.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The string was empty.
    #[error("{kind} is empty")]
    Empty {
        /// Which kind of id.
        kind: &'static str,
    },
    /// The string was longer than 64 bytes.
    #[error("{kind} `{value}` is longer than 64 characters")]
    TooLong {
        /// Which kind of id.
        kind: &'static str,
        /// The first 64 characters of what was given.
        value: String,
    },
    /// The string held a character outside `[A-Za-z0-9._-]`.
    #[error("{kind} `{value}` may only contain letters, digits, `.`, `_` and `-` (found {found:?})")]
    BadChar {
        /// Which kind of id.
        kind: &'static str,
        /// What was given.
        value: String,
        /// The first offending character.
        found: char,
    },
}

fn validate(kind: &'static str, value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if value.len() > 64 {
        return Err(IdError::TooLong { kind, value: value.chars().take(64).collect() });
    }
    if let Some(found) = value.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(IdError::BadChar { kind, value: value.to_string(), found });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validate and wrap.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                validate($kind, &value)?;
                Ok($name(value))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                $name::new(value).map_err(serde::de::Error::custom)
            }
        }

        impl bincode::Encode for $name {
            fn encode<E: bincode::enc::Encoder>(&self, encoder: &mut E) -> Result<(), bincode::error::EncodeError> {
                self.0.encode(encoder)
            }
        }

        /// Decoding validates, exactly as deserializing from JSON does.
        impl<Context> bincode::Decode<Context> for $name {
            fn decode<D: bincode::de::Decoder<Context = Context>>(
                decoder: &mut D,
            ) -> Result<Self, bincode::error::DecodeError> {
                let value = String::decode(decoder)?;
                $name::new(value).map_err(|e| bincode::error::DecodeError::OtherString(e.to_string()))
            }
        }

        bincode::impl_borrow_decode!($name);
    };
}

id_type!(
    /// An agent's id, by default its host name: `web-01`.
    AgentId,
    "agent id"
);

id_type!(
    /// A check's name from the agent config: `disk-root`.
    CheckName,
    "check name"
);

impl AgentId {
    /// An agent id made from a host name: characters outside the id alphabet become `-`,
    /// and the result is cut to 64 characters. `None` when nothing usable is left.
    pub fn from_hostname(hostname: &str) -> Option<AgentId> {
        let cleaned: String = hostname
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' })
            .take(64)
            .collect();
        AgentId::new(cleaned).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_id_alphabet() {
        for ok in ["web-01", "a", "db_2.example.com", &"x".repeat(64)] {
            assert!(AgentId::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_topic_metacharacters_and_length() {
        for bad in ["", "a/b", "+", "#", "a b", "å", &"x".repeat(65)] {
            assert!(CheckName::new(bad).is_err(), "{bad:?}");
        }
        let err = CheckName::new("disk/root").unwrap_err();
        assert_eq!(
            err.to_string(),
            "check name `disk/root` may only contain letters, digits, `.`, `_` and `-` (found '/')"
        );
    }

    #[test]
    fn hostnames_are_cleaned() {
        assert_eq!(AgentId::from_hostname("my host").unwrap().as_str(), "my-host");
        assert!(AgentId::from_hostname("").is_none());
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<AgentId>("\"ok-1\"").is_ok());
        assert!(serde_json::from_str::<AgentId>("\"no/slash\"").is_err());
    }
}
