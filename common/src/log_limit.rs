//! A rate limit for log lines, per place in the code that logs them.
//!
//! A part that fails in a loop must say why, not fill the disk saying it: the embedded
//! broker's accept loop logged "Unable to accept socket" in a busy loop when descriptors ran
//! out (1.9 GB in two minutes), and a store that refuses writes made every worker log an error
//! each second. Each call site may log a burst of [`BURST`] lines, then one a second; what is
//! held back is counted and reported once a minute per call site ("… suppressed"), so nothing
//! disappears without a trace. Used by both binaries as a filter in front of the log writer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use tracing::callsite::Identifier;
use tracing_subscriber::layer::{Context, Filter};

/// Lines a call site may log at once.
pub const BURST: f64 = 20.0;
/// Lines a second it may log after that.
pub const PER_SECOND: f64 = 1.0;
/// How often the suppressed counts are reported.
pub const REPORT_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    suppressed: u64,
    /// `target:line` of the call site, for the report.
    name: String,
}

/// The limiter; clone it to share the counts with [`RateLimit::report`].
#[derive(Debug, Clone, Default)]
pub struct RateLimit {
    buckets: Arc<Mutex<HashMap<Identifier, Bucket>>>,
}

impl RateLimit {
    pub fn new() -> RateLimit {
        RateLimit::default()
    }

    /// May one more line from this call site be written now?
    fn admit(&self, id: Identifier, name: impl FnOnce() -> String, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket =
            buckets.entry(id).or_insert_with(|| Bucket { tokens: BURST, at: now, suppressed: 0, name: name() });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * PER_SECOND;
        bucket.tokens = (bucket.tokens + refill).min(BURST);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            bucket.suppressed += 1;
            false
        }
    }

    /// Take the suppressed counts: (call site, lines held back) since the last call.
    pub fn take_suppressed(&self) -> Vec<(String, u64)> {
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<(String, u64)> = buckets
            .values_mut()
            .filter(|b| b.suppressed > 0)
            .map(|b| (b.name.clone(), std::mem::take(&mut b.suppressed)))
            .collect();
        out.sort();
        out
    }

    /// Report what was held back, once every [`REPORT_EVERY`], from a thread of its own (a
    /// log call inside the filter would re-enter the subscriber).
    pub fn report(&self) {
        let limit = self.clone();
        let _ = std::thread::Builder::new().name("log-limit".into()).spawn(move || {
            loop {
                std::thread::sleep(REPORT_EVERY);
                for (site, suppressed) in limit.take_suppressed() {
                    tracing::warn!(target: "vakt::log", site = %site, suppressed, "log lines suppressed by the rate limit");
                }
            }
        });
    }
}

impl<S> Filter<S> for RateLimit {
    fn enabled(&self, _meta: &tracing::Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(&self, event: &tracing::Event<'_>, _cx: &Context<'_, S>) -> bool {
        let meta = event.metadata();
        if meta.target() == "vakt::log" {
            return true;
        }
        let name = || format!("{}:{}", meta.target(), meta.line().unwrap_or(0));
        self.admit(meta.callsite(), name, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_a_second_and_the_rest_counted() {
        let limit = RateLimit::new();
        let id = || tracing::Level::ERROR.callsite_for_test();
        let t0 = Instant::now();
        let admitted = (0..1000).filter(|_| limit.admit(id(), || "x:1".into(), t0)).count();
        assert_eq!(admitted, BURST as usize);
        // Ten seconds later ten more.
        let later = t0 + Duration::from_secs(10);
        let admitted = (0..1000).filter(|_| limit.admit(id(), || "x:1".into(), later)).count();
        assert_eq!(admitted, 10);
        assert_eq!(limit.take_suppressed(), [("x:1".to_string(), 980 + 990)]);
        assert!(limit.take_suppressed().is_empty());
    }

    /// A call site to key buckets by, in tests.
    trait TestCallsite {
        fn callsite_for_test(self) -> Identifier;
    }

    impl TestCallsite for tracing::Level {
        fn callsite_for_test(self) -> Identifier {
            struct Site;
            static SITE: Site = Site;
            impl tracing::Callsite for Site {
                fn set_interest(&self, _: tracing::subscriber::Interest) {}
                fn metadata(&self) -> &tracing::Metadata<'_> {
                    unreachable!("not used")
                }
            }
            Identifier(&SITE)
        }
    }
}
