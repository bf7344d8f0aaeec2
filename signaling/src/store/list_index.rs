//! The embedded store's list indexes: every consultation by status and time, for everyone and
//! for each involved user, and a count per (user or everyone, status). A page of the centre's
//! queue or of "mine" reads that page's index entries (from each status asked for, or each the
//! scope has) and a few counts, as the Redis store's sorted sets do; reading every entry of a
//! time index for each page cost 79 ms p99 with 20,000 consultations in the store
//! (docs/performance.md), and grew with the store. There is no index by time alone: a commit
//! writes two index trees, not four (a booking's cost is the pages it makes dirty).

use std::ops::Bound;

use redb::{ReadTransaction, ReadableTable, Table, TableDefinition, WriteTransaction};

use super::embedded::io;
use super::{ConsultationQuery, StoreResult};
use crate::consult::model::Consultation;

/// Files written before the status indexes had these, (user, sort time ms, id) → status and
/// (sort time ms, id) → status; the status indexes are built from them, then they go.
const BY_USER: TableDefinition<(&str, i64, &str), &str> = TableDefinition::new("by_user");
const BY_TIME: TableDefinition<(i64, &str), &str> = TableDefinition::new("by_time");
/// (status, sort time ms, id): the centre's queue of one status in time order.
const BY_STATUS: TableDefinition<(&str, i64, &str), ()> = TableDefinition::new("by_status");
/// (user, status, sort time ms, id): a user's consultations of one status in time order.
const BY_USER_STATUS: TableDefinition<(&str, &str, i64, &str), ()> = TableDefinition::new("by_user_status");
/// (scope, status) → how many; the scope is a user id, or `EVERYONE`.
const COUNTS: TableDefinition<(&str, &str), u64> = TableDefinition::new("list_counts");
/// What the file's indexes are: `LIST_INDEX` → `VERSION` once the status indexes and counts
/// exist and hold every consultation (files written before them are brought up to it on open).
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const LIST_INDEX: &str = "list_index";
const VERSION: u64 = 1;
/// User ids are never empty.
const EVERYONE: &str = "";
/// Above every id (ids are ASCII letters, digits, `-` and `_`).
const ID_MAX: &str = "~";

/// Creates the tables, and fills the status indexes and counts from the time indexes when the
/// file was written before they existed (their entries carry the status: no record is read).
/// Whether it had to.
pub(super) fn open(tx: &WriteTransaction) -> StoreResult<bool> {
    let mut meta = tx.open_table(META).map_err(io)?;
    if meta.get(LIST_INDEX).map_err(io)?.map(|v| v.value()) == Some(VERSION) {
        return Ok(false);
    }
    // Whatever a partial earlier attempt left is replaced (the attempt's transaction never
    // committed, but be exact about what the tables hold).
    tx.delete_table(BY_STATUS).map_err(io)?;
    tx.delete_table(BY_USER_STATUS).map_err(io)?;
    tx.delete_table(COUNTS).map_err(io)?;
    let mut by_status = tx.open_table(BY_STATUS).map_err(io)?;
    let mut by_user_status = tx.open_table(BY_USER_STATUS).map_err(io)?;
    let mut counts = tx.open_table(COUNTS).map_err(io)?;
    let by_time = tx.open_table(BY_TIME).map_err(io)?;
    for row in by_time.iter().map_err(io)? {
        let (k, v) = row.map_err(io)?;
        let ((at, id), status) = (k.value(), v.value());
        by_status.insert((status, at, id), ()).map_err(io)?;
        add_count(&mut counts, EVERYONE, status, 1)?;
    }
    let by_user = tx.open_table(BY_USER).map_err(io)?;
    for row in by_user.iter().map_err(io)? {
        let (k, v) = row.map_err(io)?;
        let ((user, at, id), status) = (k.value(), v.value());
        by_user_status.insert((user, status, at, id), ()).map_err(io)?;
        add_count(&mut counts, user, status, 1)?;
    }
    drop((by_time, by_user));
    tx.delete_table(BY_TIME).map_err(io)?;
    tx.delete_table(BY_USER).map_err(io)?;
    meta.insert(LIST_INDEX, VERSION).map_err(io)?;
    Ok(true)
}

/// Moves the count of (scope, status) by `d`; a count at zero is not kept.
fn add_count(counts: &mut Table<(&str, &str), u64>, scope: &str, status: &str, d: i64) -> StoreResult<()> {
    let n = counts.get((scope, status)).map_err(io)?.map_or(0, |v| v.value()).saturating_add_signed(d);
    if n == 0 {
        counts.remove((scope, status)).map_err(io)?;
    } else {
        counts.insert((scope, status), n).map_err(io)?;
    }
    Ok(())
}

/// The list indexes opened in one write transaction (each table is opened once per commit:
/// opening and closing a table in a write transaction writes its root back).
pub(super) struct Indexes<'t> {
    by_status: Table<'t, (&'static str, i64, &'static str), ()>,
    by_user_status: Table<'t, (&'static str, &'static str, i64, &'static str), ()>,
    counts: Table<'t, (&'static str, &'static str), u64>,
}

impl<'t> Indexes<'t> {
    pub(super) fn open(tx: &'t WriteTransaction) -> StoreResult<Self> {
        Ok(Self {
            by_status: tx.open_table(BY_STATUS).map_err(io)?,
            by_user_status: tx.open_table(BY_USER_STATUS).map_err(io)?,
            counts: tx.open_table(COUNTS).map_err(io)?,
        })
    }

    /// Moves a consultation's entries from what its old version held to what `new` holds,
    /// writing only what differs (an opinion added changes no entry; a booking changes most).
    pub(super) fn update(&mut self, old: Option<&Consultation>, new: &Consultation) -> StoreResult<()> {
        let key = |c: &Consultation| (c.sort_time().as_millisecond(), c.status.as_str());
        let id = new.id.as_str();
        let (at, status) = key(new);
        let same = old.is_some_and(|o| key(o) == (at, status));
        let old_users = old.map(Consultation::involved_users).unwrap_or_default();
        let new_users = new.involved_users();
        // Net changes of the counts, applied once each.
        let add = |deltas: &mut Vec<(String, &'static str, i64)>, scope: &str, s: &'static str, d: i64| match deltas
            .iter_mut()
            .find(|(sc, st, _)| sc == scope && *st == s)
        {
            Some(e) => e.2 += d,
            None => deltas.push((scope.to_owned(), s, d)),
        };
        let mut net: Vec<(String, &'static str, i64)> = Vec::new();
        if let Some(o) = old.filter(|_| !same) {
            let (o_at, o_status) = key(o);
            self.by_status.remove((o_status, o_at, id)).map_err(io)?;
            add(&mut net, EVERYONE, o_status, -1);
        }
        if !same {
            self.by_status.insert((status, at, id), ()).map_err(io)?;
            add(&mut net, EVERYONE, status, 1);
        }
        if let Some(o) = old {
            let (o_at, o_status) = key(o);
            for u in old_users.iter().filter(|u| !same || !new_users.contains(u)) {
                self.by_user_status.remove((u.as_str(), o_status, o_at, id)).map_err(io)?;
                add(&mut net, u.as_str(), o_status, -1);
            }
        }
        for u in new_users.iter().filter(|u| !same || !old_users.contains(u)) {
            self.by_user_status.insert((u.as_str(), status, at, id), ()).map_err(io)?;
            add(&mut net, u.as_str(), status, 1);
        }
        for (scope, s, d) in net.into_iter().filter(|(_, _, d)| *d != 0) {
            add_count(&mut self.counts, &scope, s, d)?;
        }
        Ok(())
    }
}

/// One page of the query: its ids in order, the total and the next offset. Each status range
/// the query covers gives at most `offset + limit` entries, merged by time; the total comes
/// from the counts, or, with a date range, from counting the ranges' entries (without reading
/// them out).
pub(super) fn page(tx: &ReadTransaction, q: &ConsultationQuery) -> StoreResult<(Vec<String>, usize, Option<usize>)> {
    let limit = q.limit.max(1);
    let want = q.offset.saturating_add(limit);
    let lo = q.from.map_or(i64::MIN, |t| t.as_millisecond());
    let to = q.to.map(|t| t.as_millisecond());
    let dated = q.from.is_some() || q.to.is_some();
    let scope = q.involving.as_ref().map_or(EVERYONE, |u| u.as_str());
    let counts = tx.open_table(COUNTS).map_err(io)?;
    // The statuses asked for, or every status the scope has any of (from its counts).
    let statuses: Vec<String> = if q.statuses.is_empty() {
        let mut v = Vec::new();
        for row in counts.range((scope, "")..=(scope, ID_MAX)).map_err(io)? {
            v.push(row.map_err(io)?.0.value().1.to_owned());
        }
        v
    } else {
        q.statuses.iter().map(|s| s.as_str().to_owned()).collect()
    };
    let counted = |status: &str| -> StoreResult<usize> {
        let n = counts.get((scope, status)).map_err(io)?.map_or(0, |v| v.value());
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    };
    let mut entries: Vec<(i64, String)> = Vec::new();
    let mut total = 0usize;
    match q.involving.as_ref() {
        None => {
            let t = tx.open_table(BY_STATUS).map_err(io)?;
            for s in &statuses {
                let s = s.as_str();
                let bounds = || (Bound::Included((s, lo, "")), hi(to, |a, i| (s, a, i)));
                total += if dated { count(t.range::<(&str, i64, &str)>(bounds()).map_err(io)?)? } else { counted(s)? };
                let range = t.range::<(&str, i64, &str)>(bounds()).map_err(io)?;
                take(range, q.ascending, want, |(_, at, id)| (at, id.to_owned()), &mut entries)?;
            }
        }
        Some(user) => {
            let u = user.as_str();
            let t = tx.open_table(BY_USER_STATUS).map_err(io)?;
            for s in &statuses {
                let s = s.as_str();
                let bounds = || (Bound::Included((u, s, lo, "")), hi(to, |a, i| (u, s, a, i)));
                total +=
                    if dated { count(t.range::<(&str, &str, i64, &str)>(bounds()).map_err(io)?)? } else { counted(s)? };
                let range = t.range::<(&str, &str, i64, &str)>(bounds()).map_err(io)?;
                take(range, q.ascending, want, |(_, _, at, id)| (at, id.to_owned()), &mut entries)?;
            }
        }
    }
    if statuses.len() > 1 {
        entries.sort();
        if !q.ascending {
            entries.reverse();
        }
    }
    let ids: Vec<String> = entries.into_iter().skip(q.offset).take(limit).map(|(_, id)| id).collect();
    let next = q.offset + ids.len();
    Ok((ids, total, (next < total).then_some(next)))
}

/// The upper bound of a range: `to` is exclusive; without it, everything to the end.
fn hi<T>(to: Option<i64>, key: impl Fn(i64, &'static str) -> T) -> Bound<T> {
    match to {
        Some(t) => Bound::Excluded(key(t, "")),
        None => Bound::Included(key(i64::MAX, ID_MAX)),
    }
}

fn count<K: redb::Key + 'static, V: redb::Value + 'static>(range: redb::Range<'_, K, V>) -> StoreResult<usize> {
    let mut n = 0;
    for row in range {
        row.map_err(io)?;
        n += 1;
    }
    Ok(n)
}

/// The first `want` entries of an index range, in the order asked for, as (time, id).
fn take<K: redb::Key + 'static, V: redb::Value + 'static>(
    range: redb::Range<'_, K, V>,
    ascending: bool,
    want: usize,
    at_id: impl for<'a> Fn(K::SelfType<'a>) -> (i64, String),
    out: &mut Vec<(i64, String)>,
) -> StoreResult<()> {
    let rows: Box<dyn Iterator<Item = _>> = if ascending { Box::new(range) } else { Box::new(range.rev()) };
    for row in rows.take(want) {
        let (k, _) = row.map_err(io)?;
        out.push(at_id(k.value()));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::consult::model::Status;
    use crate::ids::UserId;
    use crate::store::Store;
    use crate::store::contract::scheduled;
    use crate::store::embedded::EmbeddedStore;
    use redb::ReadableDatabase;

    /// A file written before the status indexes (time indexes, no counts) gets them on open,
    /// built from the time indexes, which then go; it answers as a new file would.
    #[tokio::test]
    async fn a_file_from_before_the_status_indexes_gets_them_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        let (doc, other) = (UserId::generate(), UserId::generate());
        let mut all = Vec::new();
        {
            let store = EmbeddedStore::open(&path).unwrap();
            for i in 0..6 {
                let mut c = scheduled(if i < 4 { &doc } else { &other }, &[], i * 10, 30);
                if i % 3 == 0 {
                    c.status = Status::Requested;
                }
                store.commit_consultation(&c, None, &[]).await.unwrap();
                all.push(c);
            }
        }
        {
            // What an older build left: time indexes, no status indexes, no counts, no version.
            let db = redb::Database::create(&path).unwrap();
            let tx = db.begin_write().unwrap();
            assert!(tx.delete_table(BY_STATUS).unwrap());
            assert!(tx.delete_table(BY_USER_STATUS).unwrap());
            assert!(tx.delete_table(COUNTS).unwrap());
            assert!(tx.delete_table(META).unwrap());
            {
                let (mut by_time, mut by_user) = (tx.open_table(BY_TIME).unwrap(), tx.open_table(BY_USER).unwrap());
                for c in &all {
                    let (at, id, status) = (c.sort_time().as_millisecond(), c.id.as_str(), c.status.as_str());
                    by_time.insert((at, id), status).unwrap();
                    for u in c.involved_users() {
                        by_user.insert((u.as_str(), at, id), status).unwrap();
                    }
                }
            }
            tx.commit().unwrap();
        }
        let store = EmbeddedStore::open(&path).unwrap();
        let q = |involving: Option<&UserId>, statuses: Vec<Status>| ConsultationQuery {
            involving: involving.cloned(),
            statuses,
            limit: 10,
            ..Default::default()
        };
        let requested = store.list_consultations(&q(None, vec![Status::Requested])).await.unwrap();
        assert_eq!(requested.total, 2);
        assert_eq!(requested.items.len(), 2);
        assert_eq!(store.list_consultations(&q(Some(&doc), vec![Status::Scheduled])).await.unwrap().total, 2);
        assert_eq!(store.list_consultations(&q(Some(&other), vec![])).await.unwrap().total, 2);
        let every = store.list_consultations(&q(None, vec![])).await.unwrap();
        assert_eq!(every.total, 6);
        let newest_first: Vec<_> = all.iter().rev().map(|c| c.id.clone()).collect();
        assert_eq!(every.items.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), newest_first);
        drop(store);
        let db = redb::Database::create(&path).unwrap();
        let tx = db.begin_read().unwrap();
        assert!(tx.open_table(BY_TIME).is_err(), "the time indexes are gone");
    }
}
