//! The host as a plugin sees it, on tape: `vakt-agent check --record FILE` writes every answer
//! the host gave during one run, and `--facts FILE` answers from such a file — recorded on a
//! real host or written by hand — instead of from this host. A plugin author tests thresholds
//! and edge cases (a full disk, a refused port, an expired certificate) on any machine. The
//! grant checks run as always before the tape is consulted, so what a plugin may not do it
//! cannot do against a tape either.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::plugin::bindings::HostError;
use crate::plugin::bindings::fs::{DirEntry, FileInfo};
use crate::plugin::bindings::net::{Certificate, Connection, HttpReply, RecordKind, SmtpReply};
use crate::plugin::bindings::system::{CpuStats, Disk, HostFacts, LoadAvg, MemoryStats, NetIf, Process};

/// The largest facts file read.
pub(crate) const MAX_FACTS_BYTES: u64 = 16 << 20;

/// What the host answered: its facts, and each probe by what was asked. Every part may be
/// left out; a question the file has no answer to fails with a message naming it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FactsFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cpu: Option<CpuStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) memory: Option<MemoryStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) load: Option<LoadAvg>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) disks: Option<Vec<Disk>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) networks: Option<Vec<NetIf>>,
    /// Every process; a plugin's filter is applied to them as the host applies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) processes: Option<Vec<Process>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) host: Option<HostFacts>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) tcp: Vec<Asked<Target, Connection>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) http: Vec<Asked<HttpAsk, HttpReply>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) dns: Vec<Asked<DnsAsk, Vec<String>>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) tls: Vec<Asked<Target, Certificate>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) smtp: Vec<Asked<Target, SmtpReply>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) stat: Vec<Asked<PathAsk, FileInfo>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) list_dir: Vec<Asked<PathAsk, Vec<DirEntry>>>,
}

/// One probe: what was asked (flattened into the entry) and the answer, `{"Ok": …}` or
/// `{"Err": {"Failed": "connection refused"}}` (also `"Timeout"`, `{"Denied": …}`,
/// `{"Invalid": …}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Asked<Q, A> {
    #[serde(flatten)]
    pub(crate) asked: Q,
    pub(crate) answer: Result<A, HostError>,
}

/// A host and port (tcp, tls, smtp).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Target {
    pub(crate) host: String,
    pub(crate) port: u16,
}

/// An HTTP request, by method and URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HttpAsk {
    pub(crate) method: String,
    pub(crate) url: String,
}

/// A DNS lookup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DnsAsk {
    pub(crate) name: String,
    pub(crate) kind: RecordKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) server: Option<String>,
}

/// A path a plugin asked about, as it wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PathAsk {
    pub(crate) path: String,
}

impl FactsFile {
    /// The facts file at `path`, or why it cannot be used (the line and column of a mistake).
    pub(crate) fn read(path: &std::path::Path) -> Result<FactsFile, String> {
        let shown = path.display();
        let size = std::fs::metadata(path).map_err(|e| format!("facts file {shown}: {e}"))?.len();
        if size > MAX_FACTS_BYTES {
            return Err(format!("facts file {shown}: {size} bytes, at most {MAX_FACTS_BYTES}"));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("facts file {shown}: {e}"))?;
        serde_json::from_str(&text).map_err(|e| format!("facts file {shown}: {e}"))
    }

    /// Written as indented JSON, for people to read and edit.
    pub(crate) fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// Where the host's answers come from during a run, besides the host itself.
#[derive(Debug)]
pub(crate) enum Tape {
    /// Answer from these facts; the host is not asked.
    Replay(FactsFile),
    /// Ask the host, and keep every answer.
    Record(Mutex<FactsFile>),
}

/// A tape for a runtime (`RuntimeConfig::tape`): the facts of a file to answer from, or an
/// empty recording.
#[derive(Debug, Clone)]
pub struct FactsTape(pub(crate) Arc<Tape>);

impl FactsTape {
    /// Answer from the facts file at `path` (JSON; see the README's test kit).
    pub fn replay(path: &std::path::Path) -> Result<FactsTape, String> {
        Ok(FactsTape(Arc::new(Tape::Replay(FactsFile::read(path)?))))
    }

    /// Record every answer of the host.
    pub fn record() -> FactsTape {
        FactsTape(Arc::new(Tape::Record(Mutex::new(FactsFile::default()))))
    }

    /// What was recorded, as the JSON of a facts file.
    pub fn recorded_json(&self) -> String {
        self.0.recorded().to_json()
    }
}

/// The answer for a question the facts file does not hold.
pub(crate) fn missing(what: &str) -> HostError {
    HostError::Failed(format!("the facts file has no answer for {what}"))
}

impl Tape {
    /// When replaying: the recorded answer (or a failure naming the question).
    pub(crate) fn replay<T>(
        &self,
        pick: impl FnOnce(&FactsFile) -> Option<Result<T, HostError>>,
        what: &str,
    ) -> Option<Result<T, HostError>> {
        match self {
            Tape::Replay(facts) => Some(pick(facts).unwrap_or_else(|| Err(missing(what)))),
            Tape::Record(_) => None,
        }
    }

    /// When recording: keep an answer.
    pub(crate) fn record(&self, keep: impl FnOnce(&mut FactsFile)) {
        if let Tape::Record(facts) = self {
            keep(&mut facts.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        }
    }

    /// What was recorded (empty when replaying).
    pub(crate) fn recorded(&self) -> FactsFile {
        match self {
            Tape::Replay(_) => FactsFile::default(),
            Tape::Record(facts) => facts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
        }
    }
}

/// Keep `answer` for `asked`, in place of an earlier answer to the same question.
pub(crate) fn keep<Q: PartialEq, A>(list: &mut Vec<Asked<Q, A>>, asked: Q, answer: Result<A, HostError>) {
    list.retain(|e| e.asked != asked);
    list.push(Asked { asked, answer });
}

/// The recorded answer to `asked`.
pub(crate) fn find<Q: PartialEq, A: Clone>(list: &[Asked<Q, A>], asked: &Q) -> Option<Result<A, HostError>> {
    list.iter().find(|e| e.asked == *asked).map(|e| e.answer.clone())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_hand_written_file_reads_and_a_mistake_names_its_place() {
        let text = r#"{
            "load": {"one": 3.0, "five": 2.0, "fifteen": 1.0, "logical_cores": 2},
            "tcp": [
                {"host": "db", "port": 5432, "answer": {"Ok": {"address": "10.0.0.5:5432", "connect_ms": 0.4}}},
                {"host": "db", "port": 6432, "answer": {"Err": {"Failed": "connection refused"}}}
            ]
        }"#;
        let facts: FactsFile = serde_json::from_str(text).unwrap();
        assert_eq!(facts.load.as_ref().unwrap().logical_cores, 2);
        let refused = find(&facts.tcp, &Target { host: "db".into(), port: 6432 }).unwrap();
        assert!(matches!(refused, Err(HostError::Failed(why)) if why == "connection refused"));
        assert!(find(&facts.tcp, &Target { host: "db".into(), port: 1 }).is_none());
        let typo = serde_json::from_str::<FactsFile>(r#"{"lod": {}}"#).unwrap_err().to_string();
        assert!(typo.contains("unknown field `lod`") && typo.contains("line 1"), "{typo}");
        // What is written reads back the same.
        assert_eq!(serde_json::from_str::<FactsFile>(&facts.to_json()).unwrap(), facts);
    }

    #[test]
    fn replaying_answers_from_the_file_and_recording_keeps_the_last_answer() {
        let tape = Tape::Replay(FactsFile::default());
        let answer = tape.replay(|f| f.load.map(Ok), "load").unwrap();
        assert!(matches!(answer, Err(HostError::Failed(why)) if why == "the facts file has no answer for load"));
        let tape = Tape::Record(Mutex::new(FactsFile::default()));
        assert!(tape.replay(|f| f.load.map(Ok), "load").is_none(), "recording asks the host");
        let target = Target { host: "db".into(), port: 5432 };
        tape.record(|f| keep(&mut f.tcp, target.clone(), Err(HostError::Timeout)));
        let connected = Connection { address: "10.0.0.5:5432".into(), connect_ms: 0.5 };
        tape.record(|f| keep(&mut f.tcp, target.clone(), Ok(connected.clone())));
        let recorded = tape.recorded();
        assert_eq!(recorded.tcp.len(), 1);
        assert!(matches!(find(&recorded.tcp, &target), Some(Ok(c)) if c == connected));
    }
}
