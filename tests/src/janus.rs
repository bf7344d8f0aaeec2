//! Janus VideoRoom driven through its WebSocket API with the same webrtc-rs peers, clip and
//! measurements as the Huizhen runs, for the side-by-side benchmark. One Janus session per
//! peer; publishers `publish` an offer, subscribers take Janus's offer for a list of feeds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use webrtc::peer_connection::{PeerConnection, RTCSessionDescription};

use crate::media::{Ev, PeerOptions, PeerState, Synth, new_pc, publish_pc, read_remote};

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Conn {
    ws: Ws,
    session: u64,
    txn: u64,
    /// Messages that arrived while waiting for an answer (trickle, webrtcup, …).
    backlog: Vec<Value>,
}

impl Conn {
    async fn open(url: &str) -> Result<Conn> {
        let mut req = url.into_client_request()?;
        req.headers_mut().insert("Sec-WebSocket-Protocol", "janus-protocol".parse()?);
        let (ws, _) = tokio_tungstenite::connect_async(req).await.context("janus websocket")?;
        let mut c = Conn { ws, session: 0, txn: 0, backlog: Vec::new() };
        let r = c.call(json!({ "janus": "create" })).await?;
        c.session = r["data"]["id"].as_u64().context("session id")?;
        Ok(c)
    }

    async fn send(&mut self, mut v: Value) -> Result<String> {
        self.txn += 1;
        let t = format!("t{}", self.txn);
        v["transaction"] = json!(t);
        if self.session != 0 {
            v["session_id"] = json!(self.session);
        }
        self.ws.send(Message::text(v.to_string())).await?;
        Ok(t)
    }

    async fn next(&mut self) -> Result<Value> {
        loop {
            match tokio::time::timeout(Duration::from_secs(30), self.ws.next()).await.context("janus is silent")? {
                Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(t.as_str())?),
                Some(Ok(_)) => continue,
                other => bail!("janus closed the socket: {other:?}"),
            }
        }
    }

    /// Sends and waits for the answer with the same transaction (past `ack`s).
    async fn call(&mut self, v: Value) -> Result<Value> {
        let t = self.send(v).await?;
        loop {
            let m = self.next().await?;
            if m["transaction"] == t.as_str() && m["janus"] != "ack" {
                if m["janus"] == "error" || m["plugindata"]["data"]["error"].is_string() {
                    bail!("janus refused: {m}");
                }
                return Ok(m);
            }
            self.backlog.push(m);
        }
    }

    async fn attach(&mut self) -> Result<u64> {
        let r = self.call(json!({ "janus": "attach", "plugin": "janus.plugin.videoroom" })).await?;
        r["data"]["id"].as_u64().context("handle id")
    }

    async fn message(&mut self, handle: u64, body: Value, jsep: Option<Value>) -> Result<Value> {
        let mut v = json!({ "janus": "message", "handle_id": handle, "body": body });
        if let Some(j) = jsep {
            v["jsep"] = j;
        }
        self.call(v).await
    }
}

/// Creates a VideoRoom room (VP8 and Opus, as the Huizhen runs use).
pub async fn create_room(url: &str, room: u64, publishers: usize) -> Result<()> {
    let mut c = Conn::open(url).await?;
    let h = c.attach().await?;
    c.message(
        h,
        json!({ "request": "create", "room": room, "publishers": publishers, "videocodec": "vp8", "audiocodec": "opus",
                "bitrate": 0, "fir_freq": 0, "notify_joining": false }),
        None,
    )
    .await?;
    Ok(())
}

pub struct JanusPeer {
    pub state: Arc<Mutex<PeerState>>,
    /// The publisher's feed id (publishers only).
    pub feed: u64,
    stop: mpsc::UnboundedSender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl JanusPeer {
    pub async fn close(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }

    pub fn snapshot<R>(&self, f: impl FnOnce(&PeerState) -> R) -> R {
        f(&self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn candidate_json(c: &webrtc::peer_connection::RTCIceCandidateInit) -> Value {
    json!({ "candidate": c.candidate, "sdpMid": c.sdp_mid, "sdpMLineIndex": c.sdp_mline_index })
}

/// Runs the socket after set-up: our ICE candidates go to Janus, remote tracks are read,
/// the session is kept alive, until `stop`.
#[allow(clippy::too_many_arguments)]
fn run(
    mut c: Conn,
    handle: u64,
    pc: Arc<dyn PeerConnection>,
    mut ev: mpsc::UnboundedReceiver<Ev>,
    state: Arc<Mutex<PeerState>>,
    names: HashMap<String, String>,
    writers: Vec<tokio::task::JoinHandle<()>>,
) -> (mpsc::UnboundedSender<()>, tokio::task::JoinHandle<()>) {
    let (stop_tx, mut stop) = mpsc::unbounded_channel::<()>();
    let task = tokio::spawn(async move {
        let mut keepalive = tokio::time::interval(Duration::from_secs(20));
        let mut readers = Vec::new();
        loop {
            tokio::select! {
                _ = stop.recv() => break,
                _ = keepalive.tick() => { let _ = c.send(json!({ "janus": "keepalive" })).await; }
                e = ev.recv() => match e {
                    Some(Ev::Candidate(_, cand)) => {
                        let _ = c.send(json!({ "janus": "trickle", "handle_id": handle, "candidate": candidate_json(&cand) })).await;
                    }
                    Some(Ev::State(_, s)) => {
                        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                        let up = s == webrtc::peer_connection::RTCPeerConnectionState::Connected;
                        st.publish_connected |= up;
                        st.subscribe_connected |= up;
                    }
                    Some(Ev::Track(t)) => {
                        let track = t.track_id().await;
                        let key = names.get(&track).cloned().unwrap_or(track);
                        readers.push(tokio::spawn(read_remote(t, key, state.clone())));
                    }
                    None => break,
                },
                m = c.ws.next() => match m {
                    Some(Ok(Message::Text(t))) => {
                        let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                        if v["janus"] == "trickle" && let Ok(cand) = serde_json::from_value(v["candidate"].clone()) {
                            let _ = pc.add_ice_candidate(cand).await;
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                },
            }
        }
        for w in writers.into_iter().chain(readers) {
            w.abort();
        }
        let _ = c.send(json!({ "janus": "destroy" })).await;
        let _ = pc.close().await;
    });
    (stop_tx, task)
}

/// Joins `room` as a publisher and publishes `tracks` (answer applied before returning).
pub async fn publisher(url: &str, room: u64, display: &str, tracks: Vec<Synth>) -> Result<JanusPeer> {
    let mut c = Conn::open(url).await?;
    let h = c.attach().await?;
    let joined = c
        .message(h, json!({ "request": "join", "ptype": "publisher", "room": room, "display": display }), None)
        .await?;
    let feed = joined["plugindata"]["data"]["id"].as_u64().context("publisher id")?;
    let state = Arc::new(Mutex::new(PeerState::default()));
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let (pc, offer, writers) = publish_pc(&tracks, ev_tx, &PeerOptions::default(), state.clone()).await;
    let answer = c
        .message(
            h,
            json!({ "request": "publish", "audio": true, "video": true }),
            Some(json!({ "type": "offer", "sdp": offer.sdp })),
        )
        .await?;
    let sdp = answer["jsep"]["sdp"].as_str().context("publish answer")?.to_owned();
    pc.set_remote_description(RTCSessionDescription::answer(sdp)?).await?;
    let (stop, task) = run(c, h, pc, ev_rx, state.clone(), HashMap::new(), writers);
    Ok(JanusPeer { state, feed, stop, task })
}

/// Janus's subscriber offer for `feeds` on a new session, with the name of each m-line's
/// track by mid (`{publisher}/cam`, `{publisher}/mic`) and the video mids.
async fn subscriber_offer(
    url: &str,
    room: u64,
    feeds: &[(u64, String)],
) -> Result<(Conn, u64, String, HashMap<String, String>, Vec<String>)> {
    let mut c = Conn::open(url).await?;
    let h = c.attach().await?;
    let streams: Vec<Value> = feeds.iter().map(|(f, _)| json!({ "feed": f })).collect();
    let offer = c
        .message(h, json!({ "request": "join", "ptype": "subscriber", "room": room, "streams": streams }), None)
        .await?;
    let sdp = offer["jsep"]["sdp"].as_str().context("subscriber offer")?.to_owned();
    // Which m-line carries which feed: Janus lists them.
    let by_feed: HashMap<u64, &str> = feeds.iter().map(|(f, n)| (*f, n.as_str())).collect();
    let mut mid_name: HashMap<String, String> = HashMap::new();
    let mut video_mids = Vec::new();
    for s in offer["plugindata"]["data"]["streams"].as_array().cloned().unwrap_or_default() {
        let (Some(mid), Some(feed)) = (s["mid"].as_str(), s["feed_id"].as_u64()) else { continue };
        let kind = if s["type"] == "video" { "cam" } else { "mic" };
        if s["type"] == "video" {
            video_mids.push(mid.to_owned());
        }
        if let Some(n) = by_feed.get(&feed) {
            mid_name.insert(mid.to_owned(), format!("{n}/{kind}"));
        }
    }
    Ok((c, h, sdp, mid_name, video_mids))
}

/// Asks for simulcast layer `layer` (Janus's substream) of every video m-line.
async fn configure_layer(c: &mut Conn, h: u64, video_mids: &[String], layer: Option<u8>) -> Result<()> {
    if let Some(layer) = layer {
        let streams: Vec<Value> = video_mids.iter().map(|m| json!({ "mid": m, "substream": layer })).collect();
        c.message(h, json!({ "request": "configure", "streams": streams }), None).await?;
    }
    Ok(())
}

/// Subscribes to `feeds` (feed id, publisher name) in one connection; `substream` picks a
/// simulcast layer (0 lowest). Received tracks are named `{publisher}/cam` and `{publisher}/mic`.
pub async fn subscriber(url: &str, room: u64, feeds: &[(u64, String)], substream: Option<u8>) -> Result<JanusPeer> {
    let (mut c, h, sdp, mid_name, video_mids) = subscriber_offer(url, room, feeds).await?;
    // The msid names the track.
    let mut names = HashMap::new();
    let mut mid = String::new();
    for line in sdp.lines() {
        if let Some(m) = line.strip_prefix("a=mid:") {
            mid = m.trim().to_owned();
        } else if let Some(ms) = line.strip_prefix("a=msid:")
            && let Some(track) = ms.split_whitespace().nth(1)
            && let Some(n) = mid_name.get(&mid)
        {
            names.insert(track.to_owned(), n.clone());
        }
    }
    let state = Arc::new(Mutex::new(PeerState::default()));
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let pc = new_pc("subscribe", ev_tx, &PeerOptions::default()).await;
    pc.set_remote_description(RTCSessionDescription::offer(sdp)?).await?;
    let answer = pc.create_answer(None).await?;
    pc.set_local_description(answer.clone()).await?;
    c.message(h, json!({ "request": "start" }), Some(json!({ "type": "answer", "sdp": answer.sdp }))).await?;
    configure_layer(&mut c, h, &video_mids, substream).await?;
    let (stop, task) = run(c, h, pc, ev_rx, state.clone(), names, Vec::new());
    Ok(JanusPeer { state, feed: 0, stop, task })
}

/// [`subscriber`] as a viewer of the load swarm (one thread and socket for all of them):
/// Janus gives each subscriber its own port, so the swarm tells them apart by it.
pub async fn swarm_subscriber(
    url: &str,
    room: u64,
    feeds: &[(u64, String)],
    substream: Option<u8>,
    swarm: &crate::swarm::Swarm,
) -> Result<JanusPeer> {
    let (mut c, h, sdp, mid_name, video_mids) = subscriber_offer(url, room, feeds).await?;
    // Janus sends each m-line on one SSRC (the first listed; the others are its RTX).
    let mut tracks: Vec<(u32, String)> = Vec::new();
    let mut mid = String::new();
    let mut named = false;
    for line in sdp.lines() {
        if let Some(m) = line.strip_prefix("a=mid:") {
            (mid, named) = (m.trim().to_owned(), false);
        } else if let Some(rest) = line.strip_prefix("a=ssrc:")
            && !named
            && let Some(ssrc) = rest.split_whitespace().next().and_then(|s| s.parse().ok())
            && let Some(n) = mid_name.get(&mid)
        {
            tracks.push((ssrc, n.clone()));
            named = true;
        }
    }
    let viewer = swarm.remote();
    let state = viewer.state.clone();
    let answer = viewer.answer(sdp, tracks).await?;
    c.message(h, json!({ "request": "start" }), Some(json!({ "type": "answer", "sdp": answer }))).await?;
    configure_layer(&mut c, h, &video_mids, substream).await?;
    let (stop_tx, mut stop) = mpsc::unbounded_channel::<()>();
    let task = tokio::spawn(async move {
        let mut keepalive = tokio::time::interval(Duration::from_secs(20));
        for m in std::mem::take(&mut c.backlog) {
            trickled(&viewer, &m);
        }
        loop {
            tokio::select! {
                _ = stop.recv() => break,
                _ = keepalive.tick() => { let _ = c.send(json!({ "janus": "keepalive" })).await; }
                m = c.ws.next() => match m {
                    Some(Ok(Message::Text(t))) => trickled(&viewer, &serde_json::from_str(t.as_str()).unwrap_or(Value::Null)),
                    Some(Ok(_)) => {}
                    _ => break,
                },
            }
        }
        let _ = c.send(json!({ "janus": "destroy" })).await;
        drop(viewer);
    });
    Ok(JanusPeer { state, feed: 0, stop: stop_tx, task })
}

/// A candidate Janus trickled, handed to the swarm viewer.
fn trickled(viewer: &crate::swarm::Remote, m: &Value) {
    if m["janus"] == "trickle"
        && let Ok(cand) = serde_json::from_value(m["candidate"].clone())
    {
        viewer.candidate(cand);
    }
}
