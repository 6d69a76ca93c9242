//! The process's file descriptor limit: raised to what the system allows at start, and the
//! number every connection cap is derived from (`serve`, `broker`).
//!
//! Debian starts services with a soft limit of 1024 (and systemd with 1024 soft, 524288
//! hard); a collector with a thousand agents and a busy status page needs more, and running
//! out stops everything at once. Raising the soft limit to the hard one is always allowed;
//! the caps then keep HTTP and MQTT clients well below it. Operators raise the hard limit
//! with `LimitNOFILE=` in the unit or `ulimit -Hn`.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// The soft and hard limits on open files now.
pub fn open_files() -> (u64, u64) {
    let limit = getrlimit(Resource::Nofile);
    (limit.current.unwrap_or(u64::MAX), limit.maximum.unwrap_or(u64::MAX))
}

/// Raise the soft limit to the hard one (at most 1,048,576); returns the soft limit in force.
pub fn raise_open_files() -> u64 {
    let (soft, hard) = open_files();
    let wanted = hard.min(1 << 20);
    if wanted > soft {
        let limit = Rlimit { current: Some(wanted), maximum: Some(hard).filter(|h| *h != u64::MAX) };
        if let Err(error) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(error = %error, soft, hard, "could not raise the open-files limit");
            return soft;
        }
    }
    let (soft, hard) = open_files();
    if soft < 4096 {
        tracing::warn!(
            soft,
            hard,
            "the open-files limit is low: connections are capped to fit it; raise it with LimitNOFILE= (systemd) or ulimit -n"
        );
    }
    soft
}
