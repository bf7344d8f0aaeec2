//! The embedded store: one redb file in the data directory. redb commits are durable
//! (fsync before `commit` returns) and copy-on-write, so a `kill -9` or power loss leaves the
//! last committed state. redb has a single writer, so a check-then-write inside one write
//! transaction is atomic — that is what makes double-booking impossible here. Consultation
//! commits go through one writer thread that puts whatever commits are waiting into one
//! transaction, each checked before it writes anything, so one fsync makes a group durable.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};

use super::*;

const SITES: TableDefinition<&str, &[u8]> = TableDefinition::new("sites");
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
const USERNAMES: TableDefinition<&str, &str> = TableDefinition::new("usernames");
const CONSULTS: TableDefinition<&str, &[u8]> = TableDefinition::new("consultations");
/// (specialist, start ms, consultation id) → end ms. A clash check reads only the bookings that
/// start less than the longest slot before the new one.
const BOOKINGS: TableDefinition<(&str, i64, &str), i64> = TableDefinition::new("bookings_by_start");
const MAX_SLOT_MS: i64 = crate::consult::lifecycle::MAX_DURATION as i64 * 60_000;
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
/// series → the last number given (`Store::next_number`).
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

pub struct EmbeddedStore {
    db: Arc<Database>,
    /// Commits go to one writer thread, which groups them (`write_commits`).
    writer: Option<(std::sync::mpsc::Sender<Pending>, std::thread::JoinHandle<()>)>,
}

pub(super) fn io<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl EmbeddedStore {
    pub fn open(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let db = Database::create(path).map_err(io)?;
        // Create every table up front so readers never meet a missing table.
        let tx = db.begin_write().map_err(io)?;
        tx.open_table(SITES).map_err(io)?;
        tx.open_table(USERS).map_err(io)?;
        tx.open_table(USERNAMES).map_err(io)?;
        tx.open_table(CONSULTS).map_err(io)?;
        tx.open_table(BOOKINGS).map_err(io)?;
        tx.open_table(AUDIT).map_err(io)?;
        if super::list_index::open(&tx)? {
            tracing::info!("list indexes by status built for the existing consultations");
        }
        tx.commit().map_err(io)?;
        let db = Arc::new(db);
        let (commits, pending) = std::sync::mpsc::channel();
        let writer = std::thread::Builder::new().name("store-writer".into()).spawn({
            let db = db.clone();
            move || write_commits(&db, &pending)
        });
        Ok(Self { db, writer: Some((commits, writer.map_err(io)?)) })
    }

    /// A point read (one record, one user's bookings, one page of a list): done where the
    /// caller is. redb reads a transaction's pages from its cache without waiting on a writer,
    /// in microseconds; handing each to the blocking pool cost more than the read did (the
    /// thread switches were about a sixth of the server's CPU in a profile of listing, against
    /// under a tenth for redb itself; docs/performance.md). Commits, and reads of unbounded
    /// size (every user, the audit trail, a count over a date range), stay on the pool.
    fn read<T>(&self, f: impl FnOnce(&Database) -> StoreResult<T>) -> StoreResult<T> {
        f(&self.db)
    }

    /// redb is blocking: run on the blocking pool so the async workers keep serving.
    async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> StoreResult<T> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db)).await.map_err(io)?
    }
}

fn append_audit_tx(tx: &WriteTransaction, entries: &[AuditEntry]) -> StoreResult<u64> {
    let mut t = tx.open_table(AUDIT).map_err(io)?;
    let mut seq = t.last().map_err(io)?.map(|(k, _)| k.value()).unwrap_or(0);
    for e in entries {
        seq += 1;
        t.insert(seq, encode(e).as_slice()).map_err(io)?;
    }
    Ok(seq)
}

/// The specialist's bookings starting in `[from_ms, to_ms)`, by start.
fn read_bookings(
    t: &impl ReadableTable<(&'static str, i64, &'static str), i64>,
    specialist: &str,
    from_ms: i64,
    to_ms: i64,
) -> StoreResult<Vec<Booking>> {
    let ts = |ms: i64| Timestamp::from_millisecond(ms).map_err(|e| StoreError::Corrupt(e.to_string()));
    let mut out = Vec::new();
    for row in t.range((specialist, from_ms, "")..(specialist, to_ms, "")).map_err(io)? {
        let (k, v) = row.map_err(io)?;
        let (_, start, id) = k.value();
        out.push(Booking { consultation: ConsultationId(id.to_owned()), start: ts(start)?, end: ts(v.value())? });
    }
    Ok(out)
}

/// One consultation's commit inside a write transaction that may carry others: the version
/// and booking checks come before any write, so a refused commit leaves nothing behind and the
/// transaction can go on with the next one.
fn commit_tx(tx: &WriteTransaction, c: &Consultation, expected: Option<u64>, audit: &[AuditEntry]) -> StoreResult<()> {
    {
        let mut consults = tx.open_table(CONSULTS).map_err(io)?;
        let old: Option<Consultation> =
            consults.get(c.id.as_str()).map_err(io)?.map(|v| decode(v.value())).transpose()?;
        if old.as_ref().map(|o| o.version) != expected || c.version != expected.unwrap_or(0) + 1 {
            return Err(StoreError::VersionConflict);
        }
        let mut bookings = tx.open_table(BOOKINGS).map_err(io)?;
        if let Some((start, end)) = c.slot().filter(|_| c.holds_booking()) {
            let (s_ms, e_ms) = (start.as_millisecond(), end.as_millisecond());
            for s in &c.specialists {
                let near = read_bookings(&bookings, s.as_str(), s_ms - MAX_SLOT_MS, e_ms)?;
                if let Some((specialist, conflicting)) = find_clash(c, near.iter().map(|b| (s, b))) {
                    return Err(StoreError::SpecialistBusy { specialist, conflicting });
                }
            }
        }
        // Drop what the old record held, then write what the new one holds.
        if let Some((start, _)) = old.as_ref().and_then(|o| o.slot().filter(|_| o.holds_booking())) {
            for s in &old.as_ref().map(|o| o.specialists.clone()).unwrap_or_default() {
                bookings.remove((s.as_str(), start.as_millisecond(), c.id.as_str())).map_err(io)?;
            }
        }
        if let Some((start, end)) = c.slot().filter(|_| c.holds_booking()) {
            for s in &c.specialists {
                bookings
                    .insert((s.as_str(), start.as_millisecond(), c.id.as_str()), end.as_millisecond())
                    .map_err(io)?;
            }
        }
        consults.insert(c.id.as_str(), encode(c).as_slice()).map_err(io)?;
        super::list_index::Indexes::open(tx)?.update(old.as_ref(), c)?;
    }
    append_audit_tx(tx, audit)?;
    Ok(())
}

/// A commit waiting for the writer.
struct Pending {
    c: Consultation,
    expected: Option<u64>,
    audit: Vec<AuditEntry>,
    done: tokio::sync::oneshot::Sender<StoreResult<()>>,
}

/// Commits taken into one write transaction at most.
const GROUP_MAX: usize = 64;

/// The writer thread: whatever commits are waiting when it is free go into one transaction, so
/// one fsync makes many durable. A durable commit costs the disk's flush time (about 25 ms
/// here); one commit per transaction held sixteen concurrent bookings to that rate.
fn write_commits(db: &Database, pending: &std::sync::mpsc::Receiver<Pending>) {
    while let Ok(first) = pending.recv() {
        let mut group = vec![first];
        while group.len() < GROUP_MAX
            && let Ok(next) = pending.try_recv()
        {
            group.push(next);
        }
        let results = commit_group(db, &group);
        for (p, r) in group.into_iter().zip(results) {
            // A caller that stopped waiting (its request was cancelled) is simply not told.
            let _ = p.done.send(r);
        }
    }
}

/// One transaction for the group; every commit's own result. A refused commit (version,
/// booking) only refuses itself; any other error aborts the transaction, and then each commit
/// is tried alone so that one bad record cannot fail its neighbours.
fn commit_group(db: &Database, group: &[Pending]) -> Vec<StoreResult<()>> {
    let all = |e: StoreError| group.iter().map(|_| Err(e.clone())).collect();
    let tx = match db.begin_write() {
        Ok(tx) => tx,
        Err(e) => return all(io(e)),
    };
    let mut results = Vec::with_capacity(group.len());
    for p in group {
        match commit_tx(&tx, &p.c, p.expected, &p.audit) {
            Ok(()) => results.push(Ok(())),
            Err(e @ (StoreError::VersionConflict | StoreError::SpecialistBusy { .. })) => results.push(Err(e)),
            Err(e) if group.len() == 1 => return all(e),
            Err(_) => {
                drop(tx);
                return group.iter().flat_map(|p| commit_group(db, std::slice::from_ref(p))).collect();
            }
        }
    }
    match tx.commit() {
        Ok(()) => results,
        Err(e) => all(io(e)),
    }
}

/// The writer finishes what it was given and lets go of the database before the store is gone,
/// so the file can be opened again at once.
impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        if let Some((commits, writer)) = self.writer.take() {
            drop(commits);
            let _ = writer.join();
        }
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn ping(&self) -> StoreResult<()> {
        self.run(|db| db.begin_read().map(|_| ()).map_err(io)).await
    }

    async fn put_site(&self, site: &Site) -> StoreResult<()> {
        let site = site.clone();
        self.run(move |db| {
            let tx = db.begin_write().map_err(io)?;
            tx.open_table(SITES).map_err(io)?.insert(site.id.as_str(), encode(&site).as_slice()).map_err(io)?;
            tx.commit().map_err(io)
        })
        .await
    }

    async fn get_site(&self, id: &SiteId) -> StoreResult<Option<Site>> {
        self.read(|db| {
            let tx = db.begin_read().map_err(io)?;
            let t = tx.open_table(SITES).map_err(io)?;
            t.get(id.as_str()).map_err(io)?.map(|v| decode(v.value())).transpose()
        })
    }

    async fn list_sites(&self) -> StoreResult<Vec<Site>> {
        self.run(|db| {
            let tx = db.begin_read().map_err(io)?;
            let t = tx.open_table(SITES).map_err(io)?;
            let mut out = Vec::new();
            for row in t.iter().map_err(io)? {
                let (_, v) = row.map_err(io)?;
                out.push(decode::<Site>(v.value())?);
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
        .await
    }

    async fn create_user(&self, user: &User) -> StoreResult<()> {
        let user = user.clone();
        self.run(move |db| {
            let tx = db.begin_write().map_err(io)?;
            {
                let mut names = tx.open_table(USERNAMES).map_err(io)?;
                if names.get(user.username.as_str()).map_err(io)?.is_some() {
                    return Err(StoreError::Duplicate("username"));
                }
                names.insert(user.username.as_str(), user.id.as_str()).map_err(io)?;
                tx.open_table(USERS).map_err(io)?.insert(user.id.as_str(), encode(&user).as_slice()).map_err(io)?;
            }
            tx.commit().map_err(io)
        })
        .await
    }

    async fn update_user(&self, user: &User) -> StoreResult<()> {
        let user = user.clone();
        self.run(move |db| {
            let tx = db.begin_write().map_err(io)?;
            {
                let mut t = tx.open_table(USERS).map_err(io)?;
                let old: User = match t.get(user.id.as_str()).map_err(io)? {
                    Some(v) => decode(v.value())?,
                    None => return Err(StoreError::NotFound),
                };
                if old.username != user.username {
                    return Err(StoreError::Corrupt("username cannot change".into()));
                }
                t.insert(user.id.as_str(), encode(&user).as_slice()).map_err(io)?;
            }
            tx.commit().map_err(io)
        })
        .await
    }

    async fn get_user(&self, id: &UserId) -> StoreResult<Option<User>> {
        self.read(|db| {
            let tx = db.begin_read().map_err(io)?;
            let t = tx.open_table(USERS).map_err(io)?;
            t.get(id.as_str()).map_err(io)?.map(|v| decode(v.value())).transpose()
        })
    }

    async fn get_user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
        self.read(|db| {
            let tx = db.begin_read().map_err(io)?;
            let names = tx.open_table(USERNAMES).map_err(io)?;
            let Some(id) = names.get(username).map_err(io)?.map(|v| v.value().to_owned()) else {
                return Ok(None);
            };
            let t = tx.open_table(USERS).map_err(io)?;
            t.get(id.as_str()).map_err(io)?.map(|v| decode(v.value())).transpose()
        })
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        self.run(|db| {
            let tx = db.begin_read().map_err(io)?;
            let t = tx.open_table(USERS).map_err(io)?;
            let mut out = Vec::new();
            for row in t.iter().map_err(io)? {
                let (_, v) = row.map_err(io)?;
                out.push(decode::<User>(v.value())?);
            }
            out.sort_by(|a, b| a.username.cmp(&b.username));
            Ok(out)
        })
        .await
    }

    async fn count_users(&self) -> StoreResult<u64> {
        self.run(|db| {
            let tx = db.begin_read().map_err(io)?;
            tx.open_table(USERS).map_err(io)?.len().map_err(io)
        })
        .await
    }

    async fn commit_consultation(
        &self,
        c: &Consultation,
        expected: Option<u64>,
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        let (done, result) = tokio::sync::oneshot::channel();
        let pending = Pending { c: c.clone(), expected, audit: audit.to_vec(), done };
        let gone = || StoreError::Unavailable("the store's writer has stopped".into());
        self.writer.as_ref().ok_or_else(gone)?.0.send(pending).map_err(|_| gone())?;
        result.await.map_err(|_| gone())?
    }

    async fn get_consultation(&self, id: &ConsultationId) -> StoreResult<Option<Consultation>> {
        self.read(|db| {
            let tx = db.begin_read().map_err(io)?;
            let t = tx.open_table(CONSULTS).map_err(io)?;
            t.get(id.as_str()).map_err(io)?.map(|v| decode(v.value())).transpose()
        })
    }

    async fn list_consultations(&self, q: &ConsultationQuery) -> StoreResult<Page<Consultation>> {
        fn page(db: &Database, q: &ConsultationQuery) -> StoreResult<Page<Consultation>> {
            let tx = db.begin_read().map_err(io)?;
            let consults = tx.open_table(CONSULTS).map_err(io)?;
            let (ids, total, next_offset) = super::list_index::page(&tx, q)?;
            let mut items = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(v) = consults.get(id.as_str()).map_err(io)? {
                    items.push(decode::<Consultation>(v.value())?);
                }
            }
            Ok(Page { items, total, next_offset })
        }
        // A page reads at most offset + limit entries of each status, and its total comes from
        // the counts; with a date range the total is a count over the range, of any length.
        if q.from.is_none() && q.to.is_none() {
            self.read(|db| page(db, q))
        } else {
            let q = q.clone();
            self.run(move |db| page(db, &q)).await
        }
    }

    async fn bookings(&self, specialist: &UserId) -> StoreResult<Vec<Booking>> {
        self.read(|db| {
            let tx = db.begin_read().map_err(io)?;
            let t = tx.open_table(BOOKINGS).map_err(io)?;
            read_bookings(&t, specialist.as_str(), i64::MIN, i64::MAX)
        })
    }

    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<u64> {
        let entry = entry.clone();
        self.run(move |db| {
            let tx = db.begin_write().map_err(io)?;
            let seq = append_audit_tx(&tx, std::slice::from_ref(&entry))?;
            tx.commit().map_err(io)?;
            Ok(seq)
        })
        .await
    }

    async fn next_number(&self, series: &str) -> StoreResult<u64> {
        let series = series.to_owned();
        self.run(move |db| {
            let tx = db.begin_write().map_err(io)?;
            let next = {
                let mut t = tx.open_table(COUNTERS).map_err(io)?;
                let next = t.get(series.as_str()).map_err(io)?.map(|v| v.value()).unwrap_or(0) + 1;
                t.insert(series.as_str(), next).map_err(io)?;
                next
            };
            tx.commit().map_err(io)?;
            Ok(next)
        })
        .await
    }

    async fn audit_len(&self) -> StoreResult<u64> {
        self.run(|db| {
            let tx = db.begin_read().map_err(io)?;
            let t = tx.open_table(AUDIT).map_err(io)?;
            Ok(t.last().map_err(io)?.map(|(k, _)| k.value()).unwrap_or(0))
        })
        .await
    }

    async fn audit_range(&self, from: u64, to: u64) -> StoreResult<Vec<AuditRecord>> {
        self.run(move |db| {
            let tx = db.begin_read().map_err(io)?;
            let t = tx.open_table(AUDIT).map_err(io)?;
            let mut out = Vec::new();
            if from < to {
                for row in t.range(from..to).map_err(io)? {
                    let (k, v) = row.map_err(io)?;
                    out.push(AuditRecord { seq: k.value(), entry: decode(v.value())? });
                }
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::contract::scheduled;

    fn pending(c: &Consultation, expected: Option<u64>) -> (Pending, tokio::sync::oneshot::Receiver<StoreResult<()>>) {
        let (done, rx) = tokio::sync::oneshot::channel();
        let e = AuditEntry::new("doc", "consultation.request", Timestamp::now()).consultation(&c.id);
        (Pending { c: c.clone(), expected, audit: vec![e], done }, rx)
    }

    /// A group with a commit that fails for a reason other than a refusal (here its old record
    /// does not decode) aborts its transaction, and the others are then written one by one:
    /// the bad one fails alone, a refused one is refused, the good ones land with their audit.
    #[test]
    fn a_bad_record_in_a_group_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("t.redb")).unwrap();
        let doc = UserId::generate();
        let (good, bad, stale, later) = (
            scheduled(&doc, &[], 0, 30),
            scheduled(&doc, &[], 60, 30),
            scheduled(&doc, &[], 120, 30),
            scheduled(&doc, &[], 180, 30),
        );
        let tx = store.db.begin_write().unwrap();
        tx.open_table(CONSULTS).unwrap().insert(bad.id.as_str(), b"not json".as_slice()).unwrap();
        tx.commit().unwrap();
        let mut bumped = bad.clone();
        bumped.version = 2;
        let group =
            [pending(&good, None).0, pending(&bumped, Some(1)).0, pending(&stale, Some(3)).0, pending(&later, None).0];
        let results = commit_group(&store.db, &group);
        assert_eq!(results[0], Ok(()));
        assert!(matches!(results[1], Err(StoreError::Corrupt(_))), "{:?}", results[1]);
        assert_eq!(results[2], Err(StoreError::VersionConflict));
        assert_eq!(results[3], Ok(()));
        let tx = store.db.begin_read().unwrap();
        let consults = tx.open_table(CONSULTS).unwrap();
        assert!(
            consults.get(good.id.as_str()).unwrap().is_some() && consults.get(later.id.as_str()).unwrap().is_some()
        );
        assert!(consults.get(stale.id.as_str()).unwrap().is_none());
        let audit = tx.open_table(AUDIT).unwrap();
        let ids: Vec<Option<ConsultationId>> =
            audit.iter().unwrap().map(|r| decode::<AuditEntry>(r.unwrap().1.value()).unwrap().consultation).collect();
        assert_eq!(ids, vec![Some(good.id.clone()), Some(later.id.clone())]);
    }

    /// Commits sent through the store's writer come back with their own results, in a group
    /// or not, and the writer lets the file go when the store is dropped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_answers_each_commit_and_lets_go_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        let doc = UserId::generate();
        let c = scheduled(&doc, &[], 0, 30);
        {
            let store = EmbeddedStore::open(&path).unwrap();
            store.commit_consultation(&c, None, &[]).await.unwrap();
            assert_eq!(store.commit_consultation(&c, None, &[]).await, Err(StoreError::VersionConflict));
        }
        let store = EmbeddedStore::open(&path).unwrap();
        assert_eq!(store.get_consultation(&c.id).await.unwrap().map(|c| c.version), Some(1));
    }
}
