//! The collector's two ways onto MQTT: rumqttc to any broker, or the embedded broker's
//! in-process link. Both feed [`Inbound`] to ingest and publish its [`Outbound`] acks, sign
//! the collector's online state, and tell [`Health`] whether they are up. A lost link is
//! re-established: rumqttc reconnects with backoff; the embedded broker hands out a spare
//! in-process link (its client ids are reserved, see `broker`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use protocol::{CollectorState, Encoding, SigningKey, Topics, WIRE_VERSION, encode};
use rand::RngExt;
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use rumqttd::Notification;
use rumqttd::local::{LinkRx, LinkTx};
use tokio::sync::{mpsc, watch};

use crate::app::ingest::{Inbound, Outbound};
use crate::health::Health;

/// How the collector connects to an external broker.
#[derive(Debug, Clone)]
pub struct ExternalSettings {
    pub options: MqttOptions,
    pub topics: Topics,
    /// `$share/{group}/…` when several collectors split the load.
    pub share_group: Option<String>,
    pub collector_name: String,
}

/// The collector's online or offline state, signed.
fn collector_state(name: &str, online: bool, key: &SigningKey) -> Vec<u8> {
    let mut state = CollectorState {
        v: WIRE_VERSION,
        collector: name.to_string(),
        online,
        ts: SystemTime::now(),
        sig: String::new(),
    };
    key.sign(&mut state);
    encode(&state, Encoding::Json)
}

/// What both links share: where messages go and who hears how the link is doing.
#[derive(Debug, Clone)]
pub struct LinkContext {
    pub inbound: mpsc::Sender<Inbound>,
    pub key: Arc<SigningKey>,
    pub health: Arc<Health>,
}

impl LinkContext {
    /// Hand one message to ingest; `false` once ingest is gone.
    async fn deliver(&self, topic: &[u8], payload: bytes::Bytes) -> bool {
        let topic = String::from_utf8_lossy(topic).into_owned();
        self.health.received(1, crate::now_ms());
        self.inbound.send(Inbound { topic, payload }).await.is_ok()
    }
}

/// Run against an external broker until `stop` turns true: reconnects with backoff, announces
/// the collector (retained online state, Will = offline), subscribes to every agent.
pub async fn external(
    settings: ExternalSettings,
    context: LinkContext,
    mut outbound: mpsc::Receiver<Outbound>,
    mut stop: watch::Receiver<bool>,
) {
    let key = context.key.clone();
    let state_topic = settings.topics.collector_state();
    let filter = settings.topics.agents_filter(settings.share_group.as_deref());
    let mut backoff = Duration::from_millis(500);
    loop {
        let mut options = settings.options.clone();
        options.set_last_will(LastWill::new(
            state_topic.clone(),
            collector_state(&settings.collector_name, false, &key),
            QoS::AtLeastOnce,
            true,
        ));
        let (client, eventloop) = AsyncClient::new(options, 1024);
        // `poll` is not cancellation-safe while connecting (a dropped poll closes the socket
        // after CONNECT): the event loop runs in its own task.
        let (events_tx, mut events) = mpsc::channel(1024);
        let poller = tokio::spawn(poll_events(eventloop, events_tx));
        let _abort = AbortOnDrop(poller);
        let mut connected = false;
        loop {
            tokio::select! {
                event = events.recv() => match event.unwrap_or(Err(rumqttc::ConnectionError::RequestsDone)) {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        connected = true;
                        backoff = Duration::from_millis(500);
                        tracing::info!(filter = %filter, "collector connected to the broker");
                        // Up once the subscription is in place (SubAck), not at the CONNACK: until
                        // then nothing an agent sends reaches ingest.
                        let _ = client.try_subscribe(filter.clone(), QoS::AtLeastOnce);
                        let _ = client.try_publish(state_topic.clone(), QoS::AtLeastOnce, true, collector_state(&settings.collector_name, true, &key));
                    }
                    Ok(Event::Incoming(Packet::SubAck(ack))) => {
                        if ack.return_codes.iter().all(|c| matches!(c, rumqttc::SubscribeReasonCode::Success(_))) {
                            context.health.link_up();
                        } else {
                            // A broker that refuses the subscription (an ACL) leaves ingest deaf.
                            let why = format!("the broker refused the subscription to {filter}");
                            context.health.link_down(crate::now_ms(), &why);
                            tracing::error!(filter = %filter, "{why}; retrying");
                            break;
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if !context.deliver(p.topic.as_ref(), p.payload).await {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        context.health.link_down(crate::now_ms(), &error.to_string());
                        tracing::warn!(error = %error, connected, "collector lost the broker");
                        break;
                    }
                },
                message = outbound.recv() => match message {
                    Some(m) => {
                        if client.try_publish(m.topic, QoS::AtLeastOnce, false, m.payload).is_err() {
                            tracing::debug!("MQTT queue full; an ack was skipped");
                        }
                    }
                    None => return,
                },
                _ = stop.wait_for(|s| *s) => {
                    let _ = client.try_publish(state_topic.clone(), QoS::AtLeastOnce, true, collector_state(&settings.collector_name, false, &key));
                    let _ = client.try_disconnect();
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
                    while let Ok(Some(Ok(event))) = tokio::time::timeout_at(deadline, events.recv()).await {
                        if matches!(event, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                            break;
                        }
                    }
                    return;
                }
            }
        }
        let pause = Duration::from_secs_f64(rand::rng().random_range(0.5..=1.0) * backoff.as_secs_f64());
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn poll_events(mut eventloop: rumqttc::EventLoop, tx: mpsc::Sender<Result<Event, rumqttc::ConnectionError>>) {
    loop {
        let event = eventloop.poll().await;
        let failed = event.is_err();
        if tx.send(event).await.is_err() || failed {
            return;
        }
    }
}

/// Run on the embedded broker's in-process links until ingest goes away: the first link, and
/// when it fails the next spare (`broker::start` makes them before the broker starts; the
/// broker can make no more later). Without a spare left the collector cannot collect: it says
/// so, and `/readyz` and the self-monitor say so too.
///
/// rumqttd fills a local link's buffer up to `max_outgoing_packet_count` notifications, then
/// appends `Notification::Unschedule` and pauses the link until it hears `Ready`. Without
/// re-arming, delivery silently stops after 200 messages; re-arming at any other time trips
/// the router's own assertion. So: `wake()` exactly when `Unschedule` arrives.
pub async fn embedded(
    topics: Topics,
    links: Vec<(LinkTx, LinkRx)>,
    context: LinkContext,
    mut outbound: mpsc::Receiver<Outbound>,
) {
    let total = links.len();
    for (n, (mut tx, mut rx)) in links.into_iter().enumerate() {
        if let Err(error) = tx.subscribe(topics.agents_filter(None)) {
            context.health.link_down(crate::now_ms(), &format!("subscribing: {error}"));
            tracing::error!(error = %error, link = n, "could not subscribe on the embedded broker; trying the next link");
            continue;
        }
        // The online state is retained: agents and subscribers that come later hear it too
        // (`LinkTx::publish` cannot retain; the packet can).
        let state = collector_state("vakt-collector", true, &context.key);
        let publish = rumqttd::protocol::Publish::new(Bytes::from(topics.collector_state()), Bytes::from(state), true);
        if let Err(error) = tx.send(rumqttd::protocol::Packet::Publish(publish, None)).await {
            tracing::warn!(error = %error, "could not announce the collector on the embedded broker");
        }
        context.health.link_up();
        if n > 0 {
            tracing::warn!(link = n, spares_left = total - n - 1, "collector re-attached to the embedded broker");
        }
        let why = loop {
            tokio::select! {
                notification = rx.next() => match notification {
                    Ok(Some(Notification::Forward(forward))) => {
                        if !context.deliver(forward.publish.topic.as_ref(), forward.publish.payload).await {
                            return;
                        }
                    }
                    Ok(Some(Notification::Unschedule)) => {
                        if let Err(error) = rx.wake().await {
                            break format!("re-arming the link: {error}");
                        }
                    }
                    Ok(_) => {}
                    Err(error) => break error.to_string(),
                },
                message = outbound.recv() => match message {
                    Some(m) => {
                        if let Err(error) = tx.try_publish(m.topic, m.payload) {
                            tracing::debug!(error = %error, "embedded broker refused an ack");
                        }
                    }
                    None => return,
                },
            }
        };
        context.health.link_down(crate::now_ms(), &why);
        tracing::error!(error = %why, link = n, spares_left = total - n - 1, "the collector's link to the embedded broker failed");
    }
    context
        .health
        .link_down(crate::now_ms(), "every in-process link to the embedded broker failed; restart the collector");
    tracing::error!(
        "no in-process link to the embedded broker is left: nothing is collected until the collector restarts"
    );
    // Keep draining acks so ingest does not block on a full queue.
    while outbound.recv().await.is_some() {}
}
