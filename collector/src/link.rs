//! The collector's two ways onto MQTT: rumqttc to any broker, or the embedded broker's
//! in-process link. Both feed [`Inbound`] to ingest and publish its [`Outbound`] acks.

use std::time::{Duration, SystemTime};

use protocol::{CollectorState, Encoding, Topics, WIRE_VERSION, encode};
use rand::RngExt;
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use rumqttd::Notification;
use rumqttd::local::{LinkRx, LinkTx};
use tokio::sync::{mpsc, watch};

use crate::ingest::{Inbound, Outbound};

/// How the collector connects to an external broker.
#[derive(Debug, Clone)]
pub struct ExternalSettings {
    pub options: MqttOptions,
    pub topics: Topics,
    /// `$share/{group}/…` when several collectors split the load.
    pub share_group: Option<String>,
    pub collector_name: String,
}

fn collector_state(name: &str, online: bool) -> Vec<u8> {
    let state = CollectorState { v: WIRE_VERSION, collector: name.to_string(), online, ts: SystemTime::now() };
    encode(&state, Encoding::Json)
}

/// Run against an external broker until `stop` turns true: reconnects with backoff, announces
/// the collector (retained online state, Will = offline), subscribes to every agent.
pub async fn external(
    settings: ExternalSettings,
    inbound: mpsc::Sender<Inbound>,
    mut outbound: mpsc::Receiver<Outbound>,
    mut stop: watch::Receiver<bool>,
) {
    let state_topic = settings.topics.collector_state();
    let filter = settings.topics.agents_filter(settings.share_group.as_deref());
    let mut backoff = Duration::from_millis(500);
    loop {
        let mut options = settings.options.clone();
        options.set_last_will(LastWill::new(
            state_topic.clone(),
            collector_state(&settings.collector_name, false),
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
                        let _ = client.try_subscribe(filter.clone(), QoS::AtLeastOnce);
                        let _ = client.try_publish(state_topic.clone(), QoS::AtLeastOnce, true, collector_state(&settings.collector_name, true));
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let topic = String::from_utf8_lossy(p.topic.as_ref()).into_owned();
                        if inbound.send(Inbound { topic, payload: p.payload }).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
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
                    let _ = client.try_publish(state_topic.clone(), QoS::AtLeastOnce, true, collector_state(&settings.collector_name, false));
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

/// Run on the embedded broker's in-process link until the link or ingest goes away.
///
/// rumqttd fills a local link's buffer up to `max_outgoing_packet_count` notifications, then
/// appends `Notification::Unschedule` and pauses the link until it hears `Ready`. Without
/// re-arming, delivery silently stops after 200 messages; re-arming at any other time trips
/// the router's own assertion. So: `wake()` exactly when `Unschedule` arrives.
pub async fn embedded(
    topics: Topics,
    mut tx: LinkTx,
    mut rx: LinkRx,
    inbound: mpsc::Sender<Inbound>,
    mut outbound: mpsc::Receiver<Outbound>,
) {
    if let Err(error) = tx.subscribe(topics.agents_filter(None)) {
        tracing::error!(error = %error, "could not subscribe on the embedded broker");
        return;
    }
    tokio::spawn(async move {
        while let Some(m) = outbound.recv().await {
            if let Err(error) = tx.try_publish(m.topic, m.payload) {
                tracing::debug!(error = %error, "embedded broker refused an ack");
            }
        }
    });
    loop {
        match rx.next().await {
            Ok(Some(Notification::Forward(forward))) => {
                let topic = String::from_utf8_lossy(forward.publish.topic.as_ref()).into_owned();
                if inbound.send(Inbound { topic, payload: forward.publish.payload }).await.is_err() {
                    return;
                }
            }
            Ok(Some(Notification::Unschedule)) => {
                if rx.wake().await.is_err() {
                    tracing::error!("embedded broker link closed");
                    return;
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(error = %error, "embedded broker link failed");
                return;
            }
        }
    }
}
