//! `GET /events/ws`: the change log over a WebSocket. A connection first replays the
//! events after its cursor from the database, then receives each event as it commits,
//! so a client that reconnects with the last id it saw misses nothing and gets
//! nothing twice.
//!
//! One [`EventHub`] per server tails the event table and fans each new event out
//! through a bounded `broadcast` channel, serialized once for every client. A client
//! that falls further behind than the channel holds is closed with code
//! [`CLOSE_LAGGING`] and reconnects from its cursor; a send that cannot complete in
//! two heartbeats, or a peer that stops answering pings, closes the connection. So a
//! slow or dead client costs its own task only, never the server or other clients.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast;
use utoipa::IntoParams;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::Query;
use crate::domain::Event;
use crate::domain::ids::*;
use crate::store::Store;

/// Close code for a client that fell too far behind: reconnect with `after=<last id>`.
pub const CLOSE_LAGGING: u16 = 4008;
/// Close code when the server is shutting down.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Events read from the database per query, in replay and in the hub's tail.
const PAGE: i64 = 500;

/// An event as every client receives it: serialized once, shared.
#[derive(Debug, Clone)]
pub struct LiveEvent {
    pub id: i64,
    pub spec_task_id: Option<SpecTaskId>,
    pub frame: Utf8Bytes,
}

/// The one tail of the event table that every WebSocket listens to.
pub struct EventHub {
    tx: broadcast::Sender<Arc<LiveEvent>>,
    /// The newest event id the tail has sent on (for the metrics' event lag).
    published: AtomicI64,
}

fn event_frame(event: &Event) -> Utf8Bytes {
    serde_json::json!({ "type": "event", "event": event })
        .to_string()
        .into()
}

impl EventHub {
    /// Starts the tail: from the newest event now, it publishes every event committed
    /// after, in id order. `capacity` bounds how far a client may fall behind.
    pub fn start(
        store: Arc<dyn Store>,
        capacity: usize,
    ) -> (Arc<EventHub>, tokio::task::JoinHandle<()>) {
        let (tx, _) = broadcast::channel(capacity.max(1));
        let hub = Arc::new(EventHub {
            tx: tx.clone(),
            published: AtomicI64::new(0),
        });
        let tail = hub.clone();
        let handle = tokio::spawn(async move {
            // Subscribed before reading the cursor, so nothing committed in between is missed.
            let mut changes = store.subscribe_events();
            let mut last = loop {
                match store.last_event_id().await {
                    Ok(id) => break id,
                    Err(err) => {
                        tracing::error!(error = %err, "event hub: reading the newest event failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            };
            tail.published.store(last, Ordering::Relaxed);
            loop {
                match Self::publish_after(&store, &tx, last).await {
                    Ok(newest) => {
                        last = newest;
                        tail.published.store(last, Ordering::Relaxed);
                    }
                    Err(err) => {
                        // The next commit, or this retry, reads again from the same cursor.
                        tracing::error!(error = %err, "event hub: reading new events failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
                if changes.changed().await.is_err() {
                    return;
                }
            }
        });
        (hub, handle)
    }

    /// Publishes every event after `last`; returns the newest id published.
    async fn publish_after(
        store: &Arc<dyn Store>,
        tx: &broadcast::Sender<Arc<LiveEvent>>,
        mut last: i64,
    ) -> crate::store::Result<i64> {
        loop {
            let page = store.list_events(last, None, PAGE).await?;
            for event in &page {
                last = event.id;
                // No receivers is not an error: nobody is listening yet.
                let _ = tx.send(Arc::new(LiveEvent {
                    id: event.id,
                    spec_task_id: event.spec_task_id,
                    frame: event_frame(event),
                }));
            }
            if (page.len() as i64) < PAGE {
                return Ok(last);
            }
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.tx.subscribe()
    }

    /// WebSocket clients connected: each holds one receiver from its handshake to
    /// its close (the tail itself holds none).
    pub fn clients(&self) -> usize {
        self.tx.receiver_count()
    }

    /// The newest event id sent on to the clients (0 before the tail has started).
    pub fn published(&self) -> i64 {
        self.published.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WsQuery {
    /// Replay the events with an id above this first (default 0: from the start).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Only events of this spec task.
    pub spec_task: Option<i64>,
}

/// The change log, live, over a WebSocket: text frames
/// `{"type":"event","event":{…}}` in id order (the events after `after`, then each
/// new one), one `{"type":"caught_up","after":N}` when the replay is done. A client
/// too far behind is closed with code 4008 and reconnects with `after=<last id>`.
/// Authenticated by a bearer token or the browser session cookie (then the
/// handshake's `Origin` must be the dashboard's).
#[utoipa::path(get, path = "/events/ws", tag = "events", params(WsQuery),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, body = ErrorBody, description = "Not a WebSocket handshake"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "A cookie-authenticated handshake from another origin"),
        (status = 422, body = ErrorBody)))]
pub async fn events_ws(
    State(state): State<AppState>,
    Query(q): Query<WsQuery>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::Validation("after: must be 0 or more".into()));
    }
    let upgrade = upgrade.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    // Subscribed now, before the replay reads the database: nothing falls in between.
    let live = state.hub.subscribe();
    let heartbeat = state.web.ws_heartbeat;
    let store = state.store.clone();
    let shutdown = state.shutdown.clone();
    Ok(upgrade.on_upgrade(move |socket| async move {
        let client = Client {
            store,
            spec_task: q.spec_task.map(SpecTaskId),
            heartbeat,
        };
        if let Err(reason) = client.serve(socket, live, after, shutdown).await {
            tracing::debug!(reason, "websocket closed");
        }
    }))
}

struct Client {
    store: Arc<dyn Store>,
    spec_task: Option<SpecTaskId>,
    heartbeat: Duration,
}

type Sink = futures::stream::SplitSink<WebSocket, Message>;

impl Client {
    /// Sends within two heartbeats or gives the connection up.
    async fn send(&self, sink: &mut Sink, message: Message) -> Result<(), &'static str> {
        match tokio::time::timeout(self.heartbeat * 2, sink.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err("the peer went away"),
            Err(_) => Err("a send did not complete in two heartbeats"),
        }
    }

    async fn close(&self, sink: &mut Sink, code: u16, reason: String) {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = self.send(sink, Message::Close(Some(frame))).await;
    }

    async fn serve(
        self,
        socket: WebSocket,
        mut live: broadcast::Receiver<Arc<LiveEvent>>,
        after: i64,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), &'static str> {
        let (mut sink, mut stream) = socket.split();
        // The last id this client has been sent (or skipped by its filter).
        let mut cursor = after;
        loop {
            let page = match self.store.list_events(cursor, self.spec_task, PAGE).await {
                Ok(page) => page,
                Err(err) => {
                    tracing::error!(error = %err, "websocket replay failed");
                    self.close(
                        &mut sink,
                        1011,
                        format!("replay failed: reconnect with after={cursor}"),
                    )
                    .await;
                    return Err("replay failed");
                }
            };
            for event in &page {
                self.send(&mut sink, Message::Text(event_frame(event)))
                    .await?;
                cursor = event.id;
            }
            if (page.len() as i64) < PAGE {
                break;
            }
        }
        let caught_up = serde_json::json!({ "type": "caught_up", "after": cursor }).to_string();
        self.send(&mut sink, Message::Text(caught_up.into()))
            .await?;

        let mut ping = tokio::time::interval(self.heartbeat);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        let mut heard = tokio::time::Instant::now();
        loop {
            tokio::select! {
                received = live.recv() => match received {
                    Ok(event) => {
                        // Already replayed, or not this client's task.
                        if event.id <= cursor {
                            continue;
                        }
                        cursor = event.id;
                        if self.spec_task.is_none() || self.spec_task == event.spec_task_id {
                            self.send(&mut sink, Message::Text(event.frame.clone())).await?;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        let reason = format!("too far behind ({missed} events): reconnect with after={cursor}");
                        self.close(&mut sink, CLOSE_LAGGING, reason).await;
                        return Err("lagging");
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        self.close(&mut sink, CLOSE_GOING_AWAY, "the server is shutting down".into()).await;
                        return Ok(());
                    }
                },
                incoming = stream.next() => match incoming {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(()),
                    // Pongs, and anything else the client says, prove it is alive.
                    Some(Ok(_)) => heard = tokio::time::Instant::now(),
                },
                _ = ping.tick() => {
                    if heard.elapsed() > self.heartbeat * 2 {
                        self.close(&mut sink, CLOSE_GOING_AWAY, "no answer to pings".into())
                            .await;
                        return Err("no pong");
                    }
                    self.send(&mut sink, Message::Ping(Vec::new().into())).await?;
                }
                _ = shutdown.changed() => {
                    self.close(&mut sink, CLOSE_GOING_AWAY, "the server is shutting down".into()).await;
                    return Ok(());
                }
            }
        }
    }
}
