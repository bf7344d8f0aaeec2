//! Where a room lives (issue 16). One node alone holds every room that its sockets reach
//! (`LocalRouter`). Several nodes on one Redis give every room one home (`RedisRouter`): `/join`
//! finds it, or places the room on the least loaded live node, atomically, so that everyone
//! who joins meets on one node; a socket that reaches another node is turned away with the
//! home's address. A home is a lease: each node renews its own entry and its rooms' homes by a
//! heartbeat, so a dead node's rooms find a new home once its lease runs out, and nothing else
//! ever takes a room a live node holds. LiveKit's `routing.Router` is the model.

use std::sync::Arc;
use std::time::Duration;

use ::redis::Script;
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::ids::ConsultationId;

/// A node as the others see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub id: String,
    /// The base URL clients reach it at (`node.public_url`).
    pub url: String,
}

/// A room's home, seen from this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Home {
    /// This node holds the room (or, alone, holds every room).
    Here(Option<Node>),
    Elsewhere(Node),
}

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("no live node can take the room")]
    NoNode,
    #[error("the room registry (Redis) is unavailable: {0}")]
    Unavailable(String),
}

/// What a node carries, published with its heartbeat; placement prefers the lowest `score`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Load {
    pub rooms: u64,
    pub participants: u64,
    pub packets_per_sec: u64,
    /// This process's CPU over the last heartbeat, in percent of one core.
    pub cpu_percent: f64,
}

impl Load {
    /// Participants and CPU percent weigh alike: a node of 40 quiet members and one of 10
    /// members forwarding a broadcast at 30% CPU are about as full.
    pub fn score(&self) -> f64 {
        self.participants as f64 + self.cpu_percent
    }
}

#[async_trait]
pub trait RoomRouter: Send + Sync {
    /// The room's home, placing it on the least loaded live node when it has none (`/join`).
    async fn home(&self, room: &ConsultationId) -> Result<Home, RouterError>;
    /// A socket or an encoder for the room reached this node: it becomes the room's home unless
    /// a live node holds it. `held`: the room already runs here (then Redis being away is no
    /// reason to turn anyone away).
    async fn claim(&self, room: &ConsultationId, held: bool) -> Result<Home, RouterError>;
    /// This node's own entry, when it is one of several.
    fn me(&self) -> Option<&Node>;
}

/// One node: every room is here.
pub struct LocalRouter;

#[async_trait]
impl RoomRouter for LocalRouter {
    async fn home(&self, _: &ConsultationId) -> Result<Home, RouterError> {
        Ok(Home::Here(None))
    }
    async fn claim(&self, _: &ConsultationId, _: bool) -> Result<Home, RouterError> {
        Ok(Home::Here(None))
    }
    fn me(&self) -> Option<&Node> {
        None
    }
}

/// Finds the room's live home, or makes `ARGV[3]` (or, when empty, the lowest scored live
/// node) its home. Answers `{id, node entry}`, or false when no node is alive.
/// KEYS[1] the room's home; ARGV: key prefix, lease in ms, preferred node id.
const PLACE_LUA: &str = r"
local prefix, lease, chosen = ARGV[1], ARGV[2], ARGV[3]
local home = redis.call('GET', KEYS[1])
if home then
  local entry = redis.call('GET', prefix .. 'node:' .. home)
  if entry then return {home, entry} end
end
if chosen == '' then
  local ids = redis.call('ZRANGE', prefix .. 'nodes', 0, -1)
  for _, id in ipairs(ids) do
    if redis.call('EXISTS', prefix .. 'node:' .. id) == 1 then chosen = id break end
    redis.call('ZREM', prefix .. 'nodes', id)
  end
  if chosen == '' then return false end
end
local entry = redis.call('GET', prefix .. 'node:' .. chosen)
if not entry then return false end
redis.call('SET', KEYS[1], chosen, 'PX', lease)
-- Rooms placed before the node's next heartbeat count against it, so a burst spreads.
redis.call('ZINCRBY', prefix .. 'nodes', 1, chosen)
return {chosen, entry}
";

/// Renews the homes of the rooms this node holds (KEYS); answers the positions (1-based) of
/// those another node has taken meanwhile. A home that lapsed (Redis restarted, or a long
/// outage) is taken back. ARGV: this node's id, lease in ms.
const RENEW_LUA: &str = r"
local lost = {}
for i, k in ipairs(KEYS) do
  local h = redis.call('GET', k)
  if h == ARGV[1] then redis.call('PEXPIRE', k, ARGV[2])
  elseif not h then redis.call('SET', k, ARGV[1], 'PX', ARGV[2])
  else table.insert(lost, i) end
end
return lost
";

/// Deletes a room's home (KEYS[1]) only if it is still ARGV[1]'s.
const RELEASE_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Takes a node out of the registry (KEYS[1] its entry) if its entry is still ARGV[1], the one
/// that was judged; ARGV[2] the placement set, ARGV[3] its id.
const EVICT_LUA: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', ARGV[2], ARGV[3])
return 1
";

/// Recordings of consultation KEYS[1] (a hash) now held by the node at ARGV[1] instead of
/// the one at ARGV[2] (a retired node): every entry naming ARGV[2] goes.
const MOVE_RECORDINGS_LUA: &str = r"
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if all[i + 1] == ARGV[2] then redis.call('HDEL', KEYS[1], all[i]) end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[1])
return 1
";

/// Each call's bound: a `/join` waits no longer than this for Redis.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// Several nodes on one Redis.
pub struct RedisRouter {
    conn: ConnectionManager,
    prefix: String,
    me: Node,
    lease: Duration,
    place: Script,
    renew: Script,
    release: Script,
    evict: Script,
    move_recordings: Script,
    draining: std::sync::atomic::AtomicBool,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    url: String,
    load: Load,
    draining: bool,
    /// When the node wrote it (Unix ms): a node that missed a beat may be dead.
    #[serde(default)]
    beat_ms: u64,
}

fn unavailable(e: impl std::fmt::Display) -> RouterError {
    RouterError::Unavailable(e.to_string())
}

/// A Redis call given at most `REDIS_TIMEOUT`.
async fn bounded<T>(call: impl Future<Output = ::redis::RedisResult<T>>) -> Result<T, RouterError> {
    tokio::time::timeout(REDIS_TIMEOUT, call)
        .await
        .map_err(|_| RouterError::Unavailable("redis did not answer in time".into()))?
        .map_err(unavailable)
}

impl RedisRouter {
    pub fn connect(redis_url: &str, prefix: &str, public_url: &str, lease: Duration) -> Result<Self, RouterError> {
        let client = ::redis::Client::open(redis_url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(0);
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(unavailable)?;
        let me = Node { id: uuid::Uuid::new_v4().simple().to_string(), url: public_url.to_owned() };
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            me,
            lease,
            place: Script::new(PLACE_LUA),
            renew: Script::new(RENEW_LUA),
            release: Script::new(RELEASE_LUA),
            evict: Script::new(EVICT_LUA),
            move_recordings: Script::new(MOVE_RECORDINGS_LUA),
            draining: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn home_key(&self, room: &str) -> String {
        format!("{}room-home:{room}", self.prefix)
    }

    fn lease_ms(&self) -> u64 {
        self.lease.as_millis() as u64
    }

    /// The room's home as `place_once` finds it, unless that is a node that both missed its
    /// last heartbeat and does not take a TCP connection: then that node is taken out of the
    /// registry and the room placed again, without waiting for its lease to run out. (A killed
    /// node's rooms move within about a heartbeat instead of a lease; a node merely slow to
    /// beat still answers the connection and keeps its rooms; a node the others cannot reach
    /// is taken out only once it also misses a beat, and is back with its next one.)
    async fn place(&self, room: &ConsultationId, prefer: &str) -> Result<Home, RouterError> {
        let (home, entry) = self.place_once(room, prefer).await?;
        let (Home::Elsewhere(node), Some((raw, entry))) = (&home, entry) else { return Ok(home) };
        let missed = unix_ms().saturating_sub(entry.beat_ms) > self.lease_ms() / 3 + 1000;
        if !missed || reachable(&node.url).await {
            return Ok(home);
        }
        tracing::warn!(node = %node.id, url = %node.url, "a room's home missed its heartbeat and does not answer: placing its rooms elsewhere");
        let mut conn = self.conn.clone();
        let mut evict = self.evict.key(format!("{}node:{}", self.prefix, node.id));
        evict.arg(&raw).arg(format!("{}nodes", self.prefix)).arg(&node.id);
        let _ = tokio::time::timeout(REDIS_TIMEOUT, evict.invoke_async::<i64>(&mut conn)).await;
        Ok(self.place_once(room, prefer).await?.0)
    }

    async fn place_once(
        &self,
        room: &ConsultationId,
        prefer: &str,
    ) -> Result<(Home, Option<(String, Entry)>), RouterError> {
        let mut conn = self.conn.clone();
        let mut call = self.place.key(self.home_key(room.as_str()));
        call.arg(&self.prefix).arg(self.lease_ms()).arg(prefer);
        let answer: Option<(String, String)> = bounded(call.invoke_async(&mut conn)).await?;
        let (id, raw) = answer.ok_or(RouterError::NoNode)?;
        if id == self.me.id {
            return Ok((Home::Here(Some(self.me.clone())), None));
        }
        let entry: Entry = serde_json::from_str(&raw).map_err(unavailable)?;
        Ok((Home::Elsewhere(Node { id, url: entry.url.clone() }), Some((raw, entry))))
    }

    /// Publishes this node's entry and load and renews its rooms' homes; answers the rooms
    /// another node holds now (their members here must go there).
    pub async fn heartbeat(&self, load: Load, rooms: &[String]) -> Result<Vec<String>, RouterError> {
        let draining = self.draining.load(std::sync::atomic::Ordering::Relaxed);
        let entry = Entry { url: self.me.url.clone(), load, draining, beat_ms: unix_ms() };
        let entry = serde_json::to_string(&entry).map_err(unavailable)?;
        let mut conn = self.conn.clone();
        let mut pipe = ::redis::pipe();
        pipe.cmd("SET").arg(format!("{}node:{}", self.prefix, self.me.id)).arg(entry).arg("PX").arg(self.lease_ms());
        if draining {
            pipe.cmd("ZREM").arg(format!("{}nodes", self.prefix)).arg(&self.me.id);
        } else {
            pipe.cmd("ZADD").arg(format!("{}nodes", self.prefix)).arg(load.score()).arg(&self.me.id);
        }
        let mut renew = self.renew.prepare_invoke();
        for r in rooms {
            renew.key(self.home_key(r));
        }
        renew.arg(&self.me.id).arg(self.lease_ms());
        let beat = async {
            pipe.query_async::<()>(&mut conn).await?;
            if rooms.is_empty() {
                return Ok(Vec::new());
            }
            renew.invoke_async::<Vec<usize>>(&mut conn).await
        };
        let lost = bounded(beat).await?;
        Ok(lost.into_iter().filter_map(|i| rooms.get(i.wrapping_sub(1)).cloned()).collect())
    }

    /// Stops taking new rooms (the rooms here keep their home); `false` takes them again.
    pub fn set_draining(&self, on: bool) {
        self.draining.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Gives up `room`'s home if it is this node's, so the next `/join` places it elsewhere.
    pub async fn release(&self, room: &str) {
        let mut conn = self.conn.clone();
        let mut call = self.release.key(self.home_key(room));
        call.arg(&self.me.id);
        if let Ok(Err(e)) = tokio::time::timeout(REDIS_TIMEOUT, call.invoke_async::<i64>(&mut conn)).await {
            tracing::warn!(room, error = %e, "room home not released; it lapses with the lease");
        }
    }

    /// Takes this node out of placement at once (the heartbeat keeps it out while draining).
    async fn withdraw(&self) {
        let mut conn = self.conn.clone();
        let zrem = ::redis::cmd("ZREM").arg(format!("{}nodes", self.prefix)).arg(&self.me.id).clone();
        let _ = tokio::time::timeout(REDIS_TIMEOUT, zrem.query_async::<i64>(&mut conn)).await;
    }

    /// Leaves the registry at a clean stop, so no room is placed here meanwhile.
    pub async fn leave(&self) {
        let mut conn = self.conn.clone();
        let mut pipe = ::redis::pipe();
        pipe.cmd("DEL").arg(format!("{}node:{}", self.prefix, self.me.id));
        pipe.cmd("ZREM").arg(format!("{}nodes", self.prefix)).arg(&self.me.id);
        let _ = tokio::time::timeout(REDIS_TIMEOUT, pipe.query_async::<()>(&mut conn)).await;
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }

    fn recording_nodes_key(&self, consultation: &str) -> String {
        format!("{}recording-nodes:{consultation}", self.prefix)
    }

    /// This node holds a recording of `consultation` (its files are on this node's disk):
    /// any node's recordings list and downloads find it here. Keyed by the node's URL, which
    /// outlives the process (its id is new at every start): a node restarted is the same
    /// holder, not a second one.
    pub async fn note_recording(&self, consultation: &str) -> Result<(), RouterError> {
        let mut conn = self.conn.clone();
        let hset = ::redis::cmd("HSET")
            .arg(self.recording_nodes_key(consultation))
            .arg(&self.me.url)
            .arg(&self.me.url)
            .clone();
        bounded(hset.query_async::<i64>(&mut conn)).await?;
        Ok(())
    }

    /// `consultation`'s recordings that the node at `retired_url` held are now on this node
    /// (`huizhen adopt-recordings`): lists and downloads look here, not there.
    pub async fn adopt_recordings(&self, consultation: &str, retired_url: &str) -> Result<(), RouterError> {
        let mut conn = self.conn.clone();
        let mut call = self.move_recordings.key(self.recording_nodes_key(consultation));
        call.arg(&self.me.url).arg(retired_url);
        bounded(call.invoke_async::<i64>(&mut conn)).await?;
        Ok(())
    }

    /// The other nodes that hold recordings of `consultation`, each once, by URL. (Entries
    /// written before they were keyed by URL are keyed by a process id: still read by URL,
    /// so a restarted node is neither asked twice nor asked by itself.)
    pub async fn recording_nodes(&self, consultation: &str) -> Result<Vec<Node>, RouterError> {
        let mut conn = self.conn.clone();
        let all = ::redis::cmd("HGETALL").arg(self.recording_nodes_key(consultation)).clone();
        let all: Vec<(String, String)> = bounded(all.query_async(&mut conn)).await?;
        let urls: std::collections::BTreeSet<String> =
            all.into_iter().map(|(_, url)| url).filter(|url| *url != self.me.url).collect();
        Ok(urls.into_iter().map(|url| Node { id: url.clone(), url }).collect())
    }
}

#[async_trait]
impl RoomRouter for RedisRouter {
    async fn home(&self, room: &ConsultationId) -> Result<Home, RouterError> {
        self.place(room, "").await
    }

    async fn claim(&self, room: &ConsultationId, held: bool) -> Result<Home, RouterError> {
        match self.place(room, &self.me.id).await {
            Err(RouterError::Unavailable(_)) if held => Ok(Home::Here(Some(self.me.clone()))),
            // Not yet registered (Redis came back after an outage): the heartbeat will say.
            Err(RouterError::NoNode) if held => Ok(Home::Here(Some(self.me.clone()))),
            other => other,
        }
    }

    fn me(&self) -> Option<&Node> {
        Some(&self.me)
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Whether a node's listener takes a TCP connection within a second (its public URL's host and
/// port). A loaded node still accepts; a dead one refuses, or its host does not answer.
async fn reachable(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.split('/').next().unwrap_or(rest);
    let default_port = if url.starts_with("https://") { 443 } else { 80 };
    let target =
        if host_port.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok() && !host_port.ends_with(']')) {
            host_port.to_owned()
        } else {
            format!("{host_port}:{default_port}")
        };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(target.as_str())).await,
        Ok(Ok(_))
    )
}

/// This process's CPU time so far (every thread), for the load a node publishes.
fn process_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec.max(0) as u64, t.tv_nsec.clamp(0, 999_999_999) as u32)
}

/// Renews this node's entry and its rooms' homes every third of the lease, for as long as the
/// hub lives. A room another node holds now (this node's lease lapsed, in a Redis outage or
/// a long pause) is closed here with a reason, so its members come back through `/join`.
pub fn heartbeat(router: Arc<RedisRouter>, hub: super::hub::Hub, sfu: huizhen_sfu::Sfu) {
    tokio::spawn(async move {
        let every = router.lease() / 3;
        // After a failed beat (Redis away) try again sooner: when Redis returns, this node and
        // its rooms are back in the registry before a /join could place them elsewhere.
        let mut wait = Duration::ZERO;
        let mut last = (
            std::time::Instant::now(),
            process_cpu(),
            sfu.stats().forwarded_packets.load(std::sync::atomic::Ordering::Relaxed),
        );
        loop {
            tokio::time::sleep(wait).await;
            if hub.is_closed() {
                router.leave().await;
                return;
            }
            let (now, cpu, fwd) = (
                std::time::Instant::now(),
                process_cpu(),
                sfu.stats().forwarded_packets.load(std::sync::atomic::Ordering::Relaxed),
            );
            let secs = now.duration_since(last.0).as_secs_f64().max(0.001);
            let load = Load {
                rooms: hub.room_count() as u64,
                participants: hub.participant_count(),
                packets_per_sec: (fwd.saturating_sub(last.2) as f64 / secs) as u64,
                // The first beat has no interval behind it (the start-up's CPU is not load).
                cpu_percent: if secs < 0.5 {
                    0.0
                } else {
                    ((cpu.saturating_sub(last.1)).as_secs_f64() / secs * 100.0 * 10.0).round() / 10.0
                },
            };
            last = (now, cpu, fwd);
            let beat = router.heartbeat(load, &hub.room_ids()).await;
            wait = if beat.is_ok() { every } else { every.min(Duration::from_secs(1)) };
            match beat {
                Ok(lost) => {
                    for room in lost {
                        tracing::warn!(room = %room, "another node holds this room now; its members here move there");
                        hub.move_away(&room).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "node heartbeat not written; rooms here keep running"),
            }
        }
    });
}

/// Drains this node (a rolling upgrade): no new room is placed here from now on, `/readyz`
/// says so, and the rooms here run on until they end; those still here after `deadline` move:
/// their homes are released and their members told, so they come back through `/join` on
/// another node. Answers at once; the rest runs in the background.
pub fn drain(router: Arc<RedisRouter>, hub: super::hub::Hub, deadline: Duration) {
    if router.draining.swap(true, std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    tracing::info!(rooms = hub.room_count(), deadline_secs = deadline.as_secs(), "draining: no new rooms here");
    tokio::spawn(async move {
        router.withdraw().await;
        let until = tokio::time::Instant::now() + deadline;
        let mut check = tokio::time::interval(Duration::from_secs(1));
        loop {
            check.tick().await;
            if hub.room_count() == 0 || hub.is_closed() {
                tracing::info!("drained: no rooms left here; the node can be stopped");
                return;
            }
            if tokio::time::Instant::now() >= until {
                break;
            }
        }
        for room in hub.room_ids() {
            router.release(&room).await;
            hub.move_away(&room).await;
        }
        tracing::info!("drain deadline reached: the rooms still here were moved");
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_node_that_takes_no_connection_is_unreachable() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(reachable(&format!("http://127.0.0.1:{port}")).await);
        drop(listener);
        assert!(!reachable(&format!("http://127.0.0.1:{port}")).await);
    }

    #[test]
    fn the_score_weighs_members_and_cpu() {
        let quiet = Load { rooms: 10, participants: 40, packets_per_sec: 100, cpu_percent: 5.0 };
        let busy = Load { rooms: 1, participants: 10, packets_per_sec: 90_000, cpu_percent: 60.0 };
        assert!(quiet.score() < busy.score());
        assert_eq!(Load::default().score(), 0.0);
    }
}
