//! The Redis store, for hospitals that run several nodes. Every key lives under a configurable
//! prefix. Writes that must be atomic (booking a specialist, creating a unique username) are Lua
//! scripts: Redis runs a script to completion before any other command, so two coordinators
//! racing for one specialist are serialised and the second sees the first's booking.
//!
//! Keys (`p` = prefix): `p c:{id}` consultation JSON · `p cs` zset of ids by sort time ·
//! `p cs:s:{status}` the same per status · `p inv:{user}` and `p inv:{user}:s:{status}` zsets of a
//! user's ids by sort time · `p busy:{specialist}` hash id → booking and `p bz:{specialist}` zset
//! id by booking start ·
//! `p user:{id}`, `p username:{name}`, `p users` · `p site:{id}`, `p sites` · `p audit` list ·
//! `p n:{series}` counter (`next_number`).

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands, Script};
use async_trait::async_trait;

use super::*;

/// The longest slot a booking can have: the clash check looks back this far.
const MAX_SLOT_MS: i64 = crate::consult::lifecycle::MAX_DURATION as i64 * 60_000;

/// How long one store call may take before the API answers 503 instead of hanging.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

const COMMIT_LUA: &str = r#"
local p, id, expected, json, score = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local holds, s_ms, e_ms, booking = ARGV[6] == '1', tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9]
local status, max_ms = ARGV[10], tonumber(ARGV[11])
local nspec = tonumber(ARGV[12])
local specs = {}
for i = 1, nspec do specs[i] = ARGV[12 + i] end
local at = 13 + nspec
local ninv = tonumber(ARGV[at])
local inv = {}
for i = 1, ninv do inv[i] = ARGV[at + i] end
at = at + ninv + 1
local naudit = tonumber(ARGV[at])

local ckey = p .. 'c:' .. id
local cur = redis.call('GET', ckey)
local old = nil
if cur then old = cjson.decode(cur) end
if expected == '' then
  if old then return {'conflict'} end
elseif (not old) or old.version ~= tonumber(expected) then
  return {'conflict'}
end

-- Only bookings that start less than the longest slot before ours can overlap it.
if holds then
  for _, s in ipairs(specs) do
    local near = redis.call('ZRANGEBYSCORE', p .. 'bz:' .. s, s_ms - max_ms, '(' .. e_ms)
    for _, other in ipairs(near) do
      if other ~= id then
        local b = cjson.decode(redis.call('HGET', p .. 'busy:' .. s, other))
        if b.s < e_ms and s_ms < b.e then return {'busy', s, other} end
      end
    end
  end
end

local function unindex(u, st) redis.call('ZREM', p .. 'inv:' .. u, id); redis.call('ZREM', p .. 'inv:' .. u .. ':s:' .. st, id) end
if old then
  for _, s in ipairs(old.specialists) do
    redis.call('HDEL', p .. 'busy:' .. s, id)
    redis.call('ZREM', p .. 'bz:' .. s, id)
  end
  redis.call('ZREM', p .. 'cs:s:' .. old.status, id)
  if type(old.requester) == 'string' then unindex(old.requester, old.status) end
  if type(old.coordinator) == 'string' then unindex(old.coordinator, old.status) end
  for _, u in ipairs(old.specialists) do unindex(u, old.status) end
  for _, u in ipairs(old.participants) do unindex(u, old.status) end
end
if holds then
  for _, s in ipairs(specs) do
    redis.call('HSET', p .. 'busy:' .. s, id, booking)
    redis.call('ZADD', p .. 'bz:' .. s, s_ms, id)
  end
end
redis.call('SET', ckey, json)
redis.call('ZADD', p .. 'cs', score, id)
redis.call('ZADD', p .. 'cs:s:' .. status, score, id)
for _, u in ipairs(inv) do
  redis.call('ZADD', p .. 'inv:' .. u, score, id)
  redis.call('ZADD', p .. 'inv:' .. u .. ':s:' .. status, score, id)
end
for i = 1, naudit do redis.call('RPUSH', p .. 'audit', ARGV[at + i]) end
return {'ok'}
"#;

const CREATE_USER_LUA: &str = r#"
if redis.call('SETNX', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"#;

pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    commit: Script,
    create_user: Script,
}

/// The stored form of a booking: the API's fields plus millisecond bounds the Lua script compares.
#[derive(Serialize)]
struct StoredBooking<'a> {
    #[serde(flatten)]
    booking: &'a Booking,
    s: i64,
    e: i64,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl RedisStore {
    /// Connects lazily: the server starts even if Redis is briefly away, and the connection
    /// manager reconnects by itself whenever the connection drops.
    pub fn connect(url: &str, prefix: &str) -> StoreResult<Self> {
        let client = ::redis::Client::open(url).map_err(|e| StoreError::Unavailable(format!("bad redis url: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(unavailable)?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            commit: Script::new(COMMIT_LUA),
            create_user: Script::new(CREATE_USER_LUA),
        })
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut k = self.prefix.clone();
        for p in parts {
            k.push_str(p);
        }
        k
    }

    async fn call<T, F, Fut>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = ::redis::RedisResult<T>>,
    {
        match tokio::time::timeout(CALL_TIMEOUT, f(self.conn.clone())).await {
            Ok(r) => r.map_err(unavailable),
            Err(_) => Err(StoreError::Unavailable("redis did not answer in time".into())),
        }
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(&self, key: String) -> StoreResult<Option<T>> {
        let raw: Option<Vec<u8>> = self.call(|mut c| async move { c.get(key).await }).await?;
        raw.map(|b| decode(&b)).transpose()
    }

    async fn mget_json<T: for<'de> Deserialize<'de>>(&self, keys: Vec<String>) -> StoreResult<Vec<T>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(keys.len());
        // Bounded batches keep one reply from growing without limit.
        for chunk in keys.chunks(500) {
            let chunk = chunk.to_vec();
            let raws: Vec<Option<Vec<u8>>> = self.call(|mut c| async move { c.mget(chunk).await }).await?;
            for raw in raws.into_iter().flatten() {
                out.push(decode(&raw)?);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn ping(&self) -> StoreResult<()> {
        let pong: String = self.call(|mut c| async move { ::redis::cmd("PING").query_async(&mut c).await }).await?;
        if pong == "PONG" { Ok(()) } else { Err(StoreError::Unavailable(format!("unexpected ping reply {pong}"))) }
    }

    async fn put_site(&self, site: &Site) -> StoreResult<()> {
        let key = self.key(&["site:", site.id.as_str()]);
        let set = self.key(&["sites"]);
        let id = site.id.to_string();
        let body = encode(site);
        self.call(|mut c| async move {
            ::redis::pipe().atomic().set(key, body).ignore().sadd(set, id).ignore().query_async::<()>(&mut c).await
        })
        .await
    }

    async fn get_site(&self, id: &SiteId) -> StoreResult<Option<Site>> {
        self.get_json(self.key(&["site:", id.as_str()])).await
    }

    async fn list_sites(&self) -> StoreResult<Vec<Site>> {
        let set = self.key(&["sites"]);
        let ids: Vec<String> = self.call(|mut c| async move { c.smembers(set).await }).await?;
        let mut sites: Vec<Site> = self.mget_json(ids.iter().map(|i| self.key(&["site:", i])).collect()).await?;
        sites.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(sites)
    }

    async fn create_user(&self, user: &User) -> StoreResult<()> {
        let (k1, k2, k3) =
            (self.key(&["username:", &user.username]), self.key(&["user:", user.id.as_str()]), self.key(&["users"]));
        let id = user.id.to_string();
        let body = encode(user);
        let script = &self.create_user;
        let created: i64 = self
            .call(|mut c| async move { script.key(k1).key(k2).key(k3).arg(id).arg(body).invoke_async(&mut c).await })
            .await?;
        if created == 1 { Ok(()) } else { Err(StoreError::Duplicate("username")) }
    }

    async fn update_user(&self, user: &User) -> StoreResult<()> {
        let key = self.key(&["user:", user.id.as_str()]);
        let body = encode(user);
        let done: Option<String> = self
            .call(|mut c| async move { ::redis::cmd("SET").arg(key).arg(body).arg("XX").query_async(&mut c).await })
            .await?;
        if done.is_some() { Ok(()) } else { Err(StoreError::NotFound) }
    }

    async fn get_user(&self, id: &UserId) -> StoreResult<Option<User>> {
        self.get_json(self.key(&["user:", id.as_str()])).await
    }

    async fn get_user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
        let key = self.key(&["username:", username]);
        let id: Option<String> = self.call(|mut c| async move { c.get(key).await }).await?;
        match id {
            Some(id) => self.get_json(self.key(&["user:", &id])).await,
            None => Ok(None),
        }
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let set = self.key(&["users"]);
        let ids: Vec<String> = self.call(|mut c| async move { c.smembers(set).await }).await?;
        let mut users: Vec<User> = self.mget_json(ids.iter().map(|i| self.key(&["user:", i])).collect()).await?;
        users.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(users)
    }

    async fn count_users(&self) -> StoreResult<u64> {
        let set = self.key(&["users"]);
        self.call(|mut c| async move { c.scard(set).await }).await
    }

    async fn commit_consultation(
        &self,
        c: &Consultation,
        expected: Option<u64>,
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        if c.version != expected.unwrap_or(0) + 1 {
            return Err(StoreError::VersionConflict);
        }
        let slot = c.slot().filter(|_| c.holds_booking());
        let (start, end) = slot.unwrap_or((c.created_at, c.created_at));
        let booking = Booking { consultation: c.id.clone(), start, end };
        let stored = StoredBooking { booking: &booking, s: start.as_millisecond(), e: end.as_millisecond() };
        let mut inv = self.commit.prepare_invoke();
        inv.arg(&self.prefix)
            .arg(c.id.as_str())
            .arg(expected.map(|v| v.to_string()).unwrap_or_default())
            .arg(encode(c))
            .arg(c.sort_time().as_millisecond())
            .arg(if slot.is_some() { "1" } else { "0" })
            .arg(start.as_millisecond())
            .arg(end.as_millisecond())
            .arg(encode(&stored))
            .arg(c.status.as_str())
            .arg(MAX_SLOT_MS)
            .arg(c.specialists.len());
        for s in &c.specialists {
            inv.arg(s.as_str());
        }
        let involved = c.involved_users();
        inv.arg(involved.len());
        for u in &involved {
            inv.arg(u.as_str());
        }
        inv.arg(audit.len());
        for a in audit {
            inv.arg(encode(a));
        }
        let reply: Vec<String> = self.call(|mut conn| async move { inv.invoke_async(&mut conn).await }).await?;
        match reply.first().map(String::as_str) {
            Some("ok") => Ok(()),
            Some("conflict") => Err(StoreError::VersionConflict),
            Some("busy") if reply.len() == 3 => Err(StoreError::SpecialistBusy {
                specialist: UserId(reply[1].clone()),
                conflicting: ConsultationId(reply[2].clone()),
            }),
            _ => Err(StoreError::Corrupt(format!("unexpected commit reply {reply:?}"))),
        }
    }

    async fn get_consultation(&self, id: &ConsultationId) -> StoreResult<Option<Consultation>> {
        self.get_json(self.key(&["c:", id.as_str()])).await
    }

    /// Reads only the page: one zset per wanted status (or the whole set), each asked for its
    /// count and its first `offset + limit` entries in order, merged here.
    async fn list_consultations(&self, q: &ConsultationQuery) -> StoreResult<Page<Consultation>> {
        let base = match &q.involving {
            Some(u) => self.key(&["inv:", u.as_str()]),
            None => self.key(&["cs"]),
        };
        let zsets: Vec<String> = if q.statuses.is_empty() {
            vec![base]
        } else {
            q.statuses.iter().map(|s| format!("{base}:s:{}", s.as_str())).collect()
        };
        let min = q.from.map(|t| t.as_millisecond().to_string()).unwrap_or_else(|| "-inf".into());
        // `to` is exclusive.
        let max = q.to.map(|t| format!("({}", t.as_millisecond())).unwrap_or_else(|| "+inf".into());
        let limit = q.limit.max(1);
        let want = q.offset.saturating_add(limit);
        // One set is read in order as it is; several (one per status) are merged here by score,
        // so only then are scores asked for (Redis formats each as floating-point text, a
        // visible part of its time in a profile of listing).
        let scored = zsets.len() > 1;
        let mut pipe = ::redis::pipe();
        for z in &zsets {
            pipe.cmd("ZCOUNT").arg(z).arg(&min).arg(&max);
            if q.ascending {
                pipe.cmd("ZRANGEBYSCORE").arg(z).arg(&min).arg(&max);
            } else {
                pipe.cmd("ZREVRANGEBYSCORE").arg(z).arg(&max).arg(&min);
            }
            if scored {
                pipe.arg("WITHSCORES");
            }
            pipe.arg("LIMIT").arg(0).arg(want);
        }
        let replies: Vec<::redis::Value> = self.call(|mut c| async move { pipe.query_async(&mut c).await }).await?;
        let mut total = 0usize;
        let mut entries: Vec<(i64, String)> = Vec::new();
        for pair in replies.chunks(2) {
            let [count, range] = pair else { return Err(StoreError::Corrupt("short pipeline reply".into())) };
            total += ::redis::from_redis_value_ref::<usize>(count).map_err(unavailable)?;
            if scored {
                let scored: Vec<(String, i64)> = ::redis::from_redis_value_ref(range).map_err(unavailable)?;
                entries.extend(scored.into_iter().map(|(id, at)| (at, id)));
            } else {
                let ids: Vec<String> = ::redis::from_redis_value_ref(range).map_err(unavailable)?;
                entries.extend(ids.into_iter().map(|id| (0, id)));
            }
        }
        if scored {
            entries.sort();
            if !q.ascending {
                entries.reverse();
            }
        }
        let ids: Vec<String> = entries.into_iter().skip(q.offset).take(limit).map(|(_, id)| id).collect();
        let next = q.offset + ids.len();
        let items = self.mget_json(ids.iter().map(|i| self.key(&["c:", i])).collect()).await?;
        Ok(Page { items, total, next_offset: (next < total).then_some(next) })
    }

    async fn bookings(&self, specialist: &UserId) -> StoreResult<Vec<Booking>> {
        let key = self.key(&["busy:", specialist.as_str()]);
        let raw: Vec<Vec<u8>> = self.call(|mut c| async move { c.hvals(key).await }).await?;
        let mut out = raw.iter().map(|b| decode::<Booking>(b)).collect::<StoreResult<Vec<_>>>()?;
        out.sort_by_key(|b| b.start);
        Ok(out)
    }

    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<u64> {
        let key = self.key(&["audit"]);
        let body = encode(entry);
        self.call(|mut c| async move { c.rpush(key, body).await }).await
    }

    async fn next_number(&self, series: &str) -> StoreResult<u64> {
        let key = self.key(&["n:", series]);
        self.call(|mut c| async move { c.incr(key, 1u64).await }).await
    }

    async fn audit_len(&self) -> StoreResult<u64> {
        let key = self.key(&["audit"]);
        self.call(|mut c| async move { c.llen(key).await }).await
    }

    async fn audit_range(&self, from: u64, to: u64) -> StoreResult<Vec<AuditRecord>> {
        let from = from.max(1);
        if from >= to {
            return Ok(Vec::new());
        }
        let key = self.key(&["audit"]);
        // List index = seq - 1.
        let (lo, hi) = ((from - 1) as isize, (to - 2) as isize);
        let raw: Vec<Vec<u8>> = self.call(|mut c| async move { c.lrange(key, lo, hi).await }).await?;
        raw.iter().enumerate().map(|(i, b)| Ok(AuditRecord { seq: from + i as u64, entry: decode(b)? })).collect()
    }
}

/// A token bucket on Redis's clock: refilled at `per_sec` up to `burst`, then `take` (one
/// token, 1 when there was one) or `give` (one back). Kept while it is not full.
const BUCKET_LUA: &str = r#"
local per_sec = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local v = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(v[1]) or burst
local at = tonumber(v[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * per_sec)
local ok = 1
if ARGV[3] == 'take' then
  if tokens >= 1 then tokens = tokens - 1 else ok = 0 end
else
  tokens = math.min(burst, tokens + 1)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / per_sec * 1000) + 1000)
return ok
"#;

/// How long a limit waits for Redis before the node decides alone: every API request asks.
const BUCKET_TIMEOUT: Duration = Duration::from_millis(250);

/// Token buckets every node on this Redis shares (issue 16): the failed sign-in throttle and
/// the per-address API limit hold however a proxy spreads the requests. One script call per
/// request, on Redis's clock (nodes' clocks may disagree).
pub struct RedisBuckets {
    conn: ConnectionManager,
    prefix: String,
    script: Script,
}

impl RedisBuckets {
    pub fn connect(url: &str, prefix: &str) -> StoreResult<Self> {
        let client = ::redis::Client::open(url).map_err(|e| StoreError::Unavailable(format!("bad redis url: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(BUCKET_TIMEOUT))
            .set_number_of_retries(0);
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(unavailable)?;
        Ok(Self { conn, prefix: prefix.to_owned(), script: Script::new(BUCKET_LUA) })
    }

    /// `take`: one token from bucket `name`/`key` if it has one; otherwise `give` one back.
    pub async fn apply(&self, name: &str, key: &str, per_sec: f64, burst: u32, take: bool) -> StoreResult<bool> {
        let k = format!("{}bucket:{name}:{key}", self.prefix);
        let op = if take { "take" } else { "give" };
        let mut conn = self.conn.clone();
        let mut call = self.script.key(k);
        call.arg(per_sec).arg(burst).arg(op);
        match tokio::time::timeout(BUCKET_TIMEOUT, call.invoke_async::<i64>(&mut conn)).await {
            Ok(Ok(ok)) => Ok(ok == 1),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(StoreError::Unavailable("redis did not answer in time".into())),
        }
    }
}
