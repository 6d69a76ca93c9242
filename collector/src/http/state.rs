//! What every handler can reach: the store, the policy, the public snapshot, the counters and
//! health the rest of the collector keeps, the login limiter and the bounded hashing pool.

use std::sync::Arc;

use crate::health::counters::{BrokerStats, IngestStats, ReloadStats};
use crate::store::Store;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub stats: Arc<IngestStats>,
    pub status: crate::http::public::status::Shared,
    pub policy: crate::rules::live::LivePolicy,
    /// Login attempts, and subscriptions per source (the public form sends mail).
    pub limiter: Arc<crate::auth::LoginLimiter>,
    /// Served over TLS: cookies get `Secure`.
    pub secure: bool,
    /// Wakes the status snapshot's refresh after an operator change.
    pub refresh: Arc<tokio::sync::Notify>,
    /// What `/readyz` answers from.
    pub health: Arc<crate::health::Health>,
    /// Connection counters of the HTTP server.
    pub serve_stats: Arc<crate::http::serve::ServeStats>,
    /// The embedded broker's refused logins (none without an embedded broker).
    pub broker_stats: Arc<BrokerStats>,
    /// Policy reloads: how many, and why the last one was refused.
    pub reload_stats: Arc<ReloadStats>,
    /// Password hashing, bounded (see [`crate::auth::hashing`]).
    pub hashing: Arc<crate::auth::hashing::Hashing>,
    /// Refused requests, counted and written to the audit trail in aggregate.
    pub denials: Arc<crate::http::denials::Denials>,
    /// The CA and what enrolled agents are given (`None`: this collector does not enrol).
    pub authority: Option<Arc<crate::auth::ca::Authority>>,
    /// Signs device cookies (a browser that logged in as a user before).
    pub device_secret: Arc<[u8; 32]>,
}

impl AppState {
    pub fn new(
        store: Store,
        stats: Arc<IngestStats>,
        status: crate::http::public::status::Shared,
        policy: crate::rules::live::LivePolicy,
    ) -> Self {
        AppState {
            store,
            stats,
            status,
            policy,
            limiter: Arc::default(),
            secure: false,
            refresh: Arc::new(tokio::sync::Notify::new()),
            health: Arc::new(crate::health::Health::new(crate::now_ms())),
            serve_stats: Arc::default(),
            broker_stats: Arc::default(),
            reload_stats: Arc::default(),
            hashing: Arc::new(crate::auth::hashing::Hashing::for_this_host()),
            denials: Arc::default(),
            authority: None,
            device_secret: Arc::new(rand::random()),
        }
    }

    /// An operator changed something the public may see: refresh the snapshot now.
    pub fn changed(&self) {
        self.refresh.notify_one();
    }
}
