//! Which worker a member of a room joins. A room has a home worker, fixed by its id, where its
//! publishers and the recorder's tap go. A broadcast whose home carries `limit` members puts
//! further receive-only members on the next worker with room for them, which then holds a
//! shard of the room linked to the others (`plane::relay`). Pure bookkeeping: the caller sends
//! the links it asks for.

use std::collections::{BTreeSet, HashMap};

#[derive(Default)]
struct Place {
    /// Each identity's worker and how many of its joins are live (a reconnect overlaps the
    /// old join for a moment, and must land where the old one is).
    members: HashMap<String, (usize, u32)>,
    /// Members per worker.
    counts: Vec<usize>,
    /// Workers other than home holding a shard.
    shards: BTreeSet<usize>,
}

/// A shard to link into its room or to unlink: the worker, and every other worker holding a
/// shard of the room (home included).
#[derive(Debug, PartialEq, Eq)]
pub struct Links {
    pub worker: usize,
    pub others: Vec<usize>,
}

pub struct Placement {
    workers: usize,
    limit: usize,
    rooms: HashMap<String, Place>,
}

impl Placement {
    /// `limit`: members a room's home carries before receive-only members go elsewhere (0: a
    /// room stays on its home).
    pub fn new(workers: usize, limit: usize) -> Self {
        Self { workers, limit, rooms: HashMap::new() }
    }

    /// Whether rooms ever spread (more than one worker and a limit).
    pub fn spreads(&self) -> bool {
        self.workers > 1 && self.limit > 0
    }

    /// Places a join of `identity`: its worker, and the links to make first when that worker
    /// is new to the room.
    pub fn join(&mut self, room: &str, home: usize, identity: &str, publishes: bool) -> (usize, Option<Links>) {
        let (workers, limit) = (self.workers, self.limit);
        let place = self
            .rooms
            .entry(room.to_owned())
            .or_insert_with(|| Place { counts: vec![0; workers], ..Default::default() });
        if let Some((worker, joins)) = place.members.get_mut(identity) {
            *joins += 1;
            return (*worker, None);
        }
        let worker = if publishes || limit == 0 {
            home
        } else {
            // Fill in order from home; when every worker is full, the least full.
            let order = (0..workers).map(|i| (home + i) % workers);
            order
                .clone()
                .find(|w| place.counts[*w] < limit)
                .unwrap_or_else(|| order.min_by_key(|w| place.counts[*w]).unwrap_or(home))
        };
        place.members.insert(identity.to_owned(), (worker, 1));
        place.counts[worker] += 1;
        let links = (worker != home && place.shards.insert(worker)).then(|| Links {
            worker,
            others: std::iter::once(home).chain(place.shards.iter().copied().filter(|s| *s != worker)).collect(),
        });
        (worker, links)
    }

    /// A join of `identity` ended: the shard to unlink when it was the last member there.
    pub fn leave(&mut self, room: &str, home: usize, identity: &str) -> Option<Links> {
        let place = self.rooms.get_mut(room)?;
        let (worker, joins) = place.members.get_mut(identity)?;
        let worker = *worker;
        *joins -= 1;
        if *joins > 0 {
            return None;
        }
        place.members.remove(identity);
        place.counts[worker] -= 1;
        let links = (worker != home && place.counts[worker] == 0 && place.shards.remove(&worker))
            .then(|| Links { worker, others: std::iter::once(home).chain(place.shards.iter().copied()).collect() });
        if place.members.is_empty() && place.shards.is_empty() {
            self.rooms.remove(room);
        }
        links
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_stays_home_without_a_limit() {
        let mut p = Placement::new(4, 0);
        for i in 0..100 {
            assert_eq!(p.join("r", 2, &format!("v{i}"), false), (2, None));
        }
    }

    #[test]
    fn viewers_beyond_the_limit_go_to_the_next_workers_which_are_linked_once() {
        let mut p = Placement::new(3, 2);
        assert_eq!(p.join("r", 1, "host", true), (1, None));
        assert_eq!(p.join("r", 1, "v0", false), (1, None));
        assert_eq!(p.join("r", 1, "v1", false), (2, Some(Links { worker: 2, others: vec![1] })));
        assert_eq!(p.join("r", 1, "v2", false), (2, None));
        assert_eq!(p.join("r", 1, "v3", false), (0, Some(Links { worker: 0, others: vec![1, 2] })));
        // Publishers stay home however full it is.
        assert_eq!(p.join("r", 1, "speaker", true), (1, None));
        assert_eq!(p.join("r", 1, "v4", false), (0, None));
        // Everything full: the least full, the first of them counting from home.
        assert_eq!(p.join("r", 1, "v5", false), (2, None));
    }

    #[test]
    fn a_reconnect_lands_where_the_identity_is_and_only_its_last_leave_counts() {
        let mut p = Placement::new(2, 1);
        p.join("r", 0, "host", true);
        assert_eq!(p.join("r", 0, "v", false), (1, Some(Links { worker: 1, others: vec![0] })));
        assert_eq!(p.join("r", 0, "v", false), (1, None));
        assert_eq!(p.leave("r", 0, "v"), None);
        assert_eq!(p.leave("r", 0, "v"), Some(Links { worker: 1, others: vec![0] }));
        // The shard is gone: the next viewer links it again.
        assert_eq!(p.join("r", 0, "w", false), (1, Some(Links { worker: 1, others: vec![0] })));
    }

    #[test]
    fn the_last_member_out_forgets_the_room() {
        let mut p = Placement::new(2, 1);
        p.join("r", 0, "host", true);
        p.join("r", 0, "v", false);
        assert_eq!(p.leave("r", 0, "host"), None);
        assert_eq!(p.leave("r", 0, "v"), Some(Links { worker: 1, others: vec![0] }));
        assert!(p.rooms.is_empty());
        assert_eq!(p.leave("r", 0, "v"), None, "a leave of nobody is nothing");
    }
}
