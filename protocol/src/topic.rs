//! The MQTT topic tree, built and parsed in one place.
//!
//! ```text
//! {prefix}/agents/{agent}/state            agent → retained birth (online) or death (offline, the Will)
//! {prefix}/agents/{agent}/results/{check}  agent → one check result
//! {prefix}/agents/{agent}/heartbeat        agent → liveness, spool depth, self-metrics
//! {prefix}/agents/{agent}/ack              → agent: highest contiguous seq the collector stored
//! {prefix}/agents/{agent}/commands         → agent: run-now, replay-from, reload
//! {prefix}/collector/state                 collector → retained online/offline (the Will)
//! ```
//!
//! The prefix defaults to `vakt/v1`. Ids never contain `/`, `+` or `#` (see [`crate::ids`]), so
//! every level parses back unambiguously.

use crate::{AgentId, CheckName, IdError};

/// The default topic prefix.
pub const DEFAULT_PREFIX: &str = "vakt/v1";

/// A topic that does not belong to the tree, or a prefix that cannot root one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The prefix is unusable as the root of the tree.
    #[error(
        "topic prefix `{0}` must be non-empty levels separated by `/`, without `+`, `#`, a leading `$` or empty levels"
    )]
    BadPrefix(String),
    /// The topic is not under the prefix, or has an unknown shape.
    #[error("topic `{0}` is not part of the Vakt topic tree")]
    Unknown(String),
    /// The shape is right but an id in it is not valid.
    #[error("topic `{topic}`: {source}")]
    BadId {
        /// The topic.
        topic: String,
        /// What is wrong with the id.
        source: IdError,
    },
}

/// What a topic addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic {
    /// An agent's retained lifecycle state (birth or death).
    State(AgentId),
    /// One result of one check.
    Result(AgentId, CheckName),
    /// An agent's heartbeat.
    Heartbeat(AgentId),
    /// The collector's acknowledgement to an agent.
    Ack(AgentId),
    /// Commands to an agent.
    Commands(AgentId),
    /// The collector's retained online/offline state.
    CollectorState,
}

impl Topic {
    /// The agent the topic is about, if any.
    pub fn agent(&self) -> Option<&AgentId> {
        match self {
            Topic::State(a) | Topic::Result(a, _) | Topic::Heartbeat(a) | Topic::Ack(a) | Topic::Commands(a) => Some(a),
            Topic::CollectorState => None,
        }
    }
}

/// Builds and parses topics under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
}

impl Default for Topics {
    fn default() -> Self {
        Topics { prefix: DEFAULT_PREFIX.to_string() }
    }
}

impl Topics {
    /// Topics under `prefix` (for example `vakt/v1` or `site-a/vakt/v1`).
    pub fn new(prefix: &str) -> Result<Topics, TopicError> {
        let ok = !prefix.is_empty()
            && !prefix.starts_with('$')
            && prefix.split('/').all(|level| !level.is_empty() && !level.contains(['+', '#', '\0']));
        if ok { Ok(Topics { prefix: prefix.to_string() }) } else { Err(TopicError::BadPrefix(prefix.to_string())) }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `{prefix}/agents/{agent}/state`
    pub fn state(&self, agent: &AgentId) -> String {
        format!("{}/agents/{agent}/state", self.prefix)
    }

    /// `{prefix}/agents/{agent}/results/{check}`
    pub fn result(&self, agent: &AgentId, check: &CheckName) -> String {
        format!("{}/agents/{agent}/results/{check}", self.prefix)
    }

    /// `{prefix}/agents/{agent}/heartbeat`
    pub fn heartbeat(&self, agent: &AgentId) -> String {
        format!("{}/agents/{agent}/heartbeat", self.prefix)
    }

    /// `{prefix}/agents/{agent}/ack`
    pub fn ack(&self, agent: &AgentId) -> String {
        format!("{}/agents/{agent}/ack", self.prefix)
    }

    /// `{prefix}/agents/{agent}/commands`
    pub fn commands(&self, agent: &AgentId) -> String {
        format!("{}/agents/{agent}/commands", self.prefix)
    }

    /// `{prefix}/collector/state`
    pub fn collector_state(&self) -> String {
        format!("{}/collector/state", self.prefix)
    }

    /// The filter a collector subscribes to: every agent's messages, `{prefix}/agents/+/#`.
    /// With `share = Some(group)` it becomes the shared subscription
    /// `$share/{group}/{prefix}/agents/+/#`, so several collectors split the load.
    pub fn agents_filter(&self, share: Option<&str>) -> String {
        match share {
            Some(group) => format!("$share/{group}/{}/agents/+/#", self.prefix),
            None => format!("{}/agents/+/#", self.prefix),
        }
    }

    /// A Mosquitto `acl_file` for a listener with `use_identity_as_username true`: each agent
    /// (its user name is its certificate's common name, its agent id) may publish only its own
    /// state, heartbeat and results and read only its own acks and commands and the
    /// collector's state; `collector_user` may read and write the whole tree.
    pub fn mosquitto_acl(&self, collector_user: &str) -> String {
        let p = &self.prefix;
        format!(
            "# Generated by `vakt-collector mosquitto-acl`. For a listener with `require_certificate true`\n\
             # and `use_identity_as_username true`: %u is the client certificate's common name, which\n\
             # the collector's CA sets to the agent id. An agent writes only its own topics and reads\n\
             # only its own acks and commands; nobody else's results. On a listener with per-agent\n\
             # passwords instead (`vakt-collector mosquitto-passwd`), %u is the user name, the agent id.\n\
             pattern write {p}/agents/%u/state\n\
             pattern write {p}/agents/%u/heartbeat\n\
             pattern write {p}/agents/%u/results/+\n\
             pattern read {p}/agents/%u/ack\n\
             pattern read {p}/agents/%u/commands\n\
             pattern read {p}/collector/state\n\
             \n\
             user {collector_user}\n\
             topic readwrite {p}/#\n"
        )
    }

    /// Whether `agent` may publish on `topic`: only its own state, heartbeat and results (the
    /// rule [`Topics::mosquitto_acl`] gives Mosquitto, for brokers Vakt guards itself).
    pub fn agent_may_publish(&self, agent: &AgentId, topic: &str) -> bool {
        matches!(self.parse(topic), Ok(Topic::State(a) | Topic::Heartbeat(a) | Topic::Result(a, _)) if &a == agent)
    }

    /// Whether `agent` may subscribe to `filter`: only its own acks and commands and the
    /// collector's state, named exactly (a wildcard would read other agents' messages).
    pub fn agent_may_subscribe(&self, agent: &AgentId, filter: &str) -> bool {
        match self.parse(filter) {
            Ok(Topic::Ack(a) | Topic::Commands(a)) => &a == agent,
            Ok(Topic::CollectorState) => true,
            _ => false,
        }
    }

    /// Parse a topic received on a subscription.
    pub fn parse(&self, topic: &str) -> Result<Topic, TopicError> {
        let unknown = || TopicError::Unknown(topic.to_string());
        let rest = topic.strip_prefix(self.prefix.as_str()).and_then(|r| r.strip_prefix('/')).ok_or_else(unknown)?;
        let levels: Vec<&str> = rest.split('/').collect();
        let agent = |s: &str| AgentId::new(s).map_err(|source| TopicError::BadId { topic: topic.to_string(), source });
        match levels.as_slice() {
            ["collector", "state"] => Ok(Topic::CollectorState),
            ["agents", a, "state"] => Ok(Topic::State(agent(a)?)),
            ["agents", a, "heartbeat"] => Ok(Topic::Heartbeat(agent(a)?)),
            ["agents", a, "ack"] => Ok(Topic::Ack(agent(a)?)),
            ["agents", a, "commands"] => Ok(Topic::Commands(agent(a)?)),
            ["agents", a, "results", c] => Ok(Topic::Result(
                agent(a)?,
                CheckName::new(*c).map_err(|source| TopicError::BadId { topic: topic.to_string(), source })?,
            )),
            _ => Err(unknown()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (AgentId, CheckName) {
        (AgentId::new("web-01").unwrap(), CheckName::new("disk-root").unwrap())
    }

    #[test]
    fn an_agent_may_publish_and_read_only_its_own_topics() {
        let t = Topics::default();
        let (a, c) = ids();
        let other = AgentId::new("web-02").unwrap();
        for own in [t.state(&a), t.heartbeat(&a), t.result(&a, &c)] {
            assert!(t.agent_may_publish(&a, &own), "{own}");
            assert!(!t.agent_may_publish(&other, &own), "{own}");
            assert!(!t.agent_may_subscribe(&a, &own), "{own}");
        }
        for forbidden in [t.ack(&a), t.commands(&a), t.collector_state(), "vakt/v1/agents/+/state".into(), "x".into()] {
            assert!(!t.agent_may_publish(&a, &forbidden), "{forbidden}");
        }
        for own in [t.ack(&a), t.commands(&a), t.collector_state()] {
            assert!(t.agent_may_subscribe(&a, &own), "{own}");
        }
        for filter in [
            t.ack(&other),
            "vakt/v1/#".to_string(),
            "vakt/v1/agents/+/ack".into(),
            "vakt/v1/agents/web-01/#".into(),
            "#".into(),
            "$share/g/vakt/v1/agents/web-01/ack".into(),
        ] {
            assert!(!t.agent_may_subscribe(&a, &filter), "{filter}");
        }
    }

    #[test]
    fn every_built_topic_parses_back() {
        let t = Topics::default();
        let (a, c) = ids();
        let cases = [
            (t.state(&a), Topic::State(a.clone())),
            (t.result(&a, &c), Topic::Result(a.clone(), c.clone())),
            (t.heartbeat(&a), Topic::Heartbeat(a.clone())),
            (t.ack(&a), Topic::Ack(a.clone())),
            (t.commands(&a), Topic::Commands(a.clone())),
            (t.collector_state(), Topic::CollectorState),
        ];
        for (text, topic) in cases {
            assert_eq!(t.parse(&text).unwrap(), topic, "{text}");
        }
        assert_eq!(t.result(&a, &c), "vakt/v1/agents/web-01/results/disk-root");
    }

    #[test]
    fn foreign_and_malformed_topics_are_refused() {
        let t = Topics::default();
        for bad in [
            "vakt/v2/agents/a/state",
            "vakt/v1/agents/a",
            "vakt/v1/agents/a/results",
            "vakt/v1/agents/a/results/c/extra",
            "vakt/v1/agents//state",
            "vakt/v1/agents/a/other",
            "vakt/v1agents/a/state",
            "",
        ] {
            assert!(t.parse(bad).is_err(), "{bad}");
        }
        assert!(matches!(t.parse("vakt/v1/agents/b%d/state"), Err(TopicError::BadId { .. })));
    }

    #[test]
    fn custom_prefixes_work_and_bad_ones_are_refused() {
        let t = Topics::new("site-a/vakt/v1").unwrap();
        let (a, _) = ids();
        assert_eq!(t.parse(&t.heartbeat(&a)).unwrap(), Topic::Heartbeat(a));
        assert_eq!(t.agents_filter(Some("collectors")), "$share/collectors/site-a/vakt/v1/agents/+/#");
        for bad in ["", "/vakt", "vakt/", "vakt//v1", "vakt/+", "vakt/#", "$SYS"] {
            assert!(Topics::new(bad).is_err(), "{bad}");
        }
    }
}
