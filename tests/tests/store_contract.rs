//! The store contract, run against both stores: a redb file and a real `redis-server`.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use huizhen::store::DynStore;
use huizhen::store::contract;
use huizhen::store::embedded::EmbeddedStore;
use huizhen::store::redis::RedisStore;
use huizhen_tests::RedisServer;

fn embedded() -> (DynStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(&dir.path().join("t.redb")).unwrap();
    (Arc::new(s), dir)
}

fn redis() -> (DynStore, RedisServer) {
    let r = RedisServer::start().expect("redis-server");
    let s = RedisStore::connect(&r.url(), "hztest:").unwrap();
    (Arc::new(s), r)
}

macro_rules! contract_tests {
    ($($name:ident),*) => {
        mod embedded_store {
            $( #[tokio::test] async fn $name() { let (s, _d) = super::embedded(); huizhen::store::contract::$name(&*s).await; } )*
        }
        mod redis_store {
            $( #[tokio::test] async fn $name() { let (s, _r) = super::redis(); huizhen::store::contract::$name(&*s).await; } )*
        }
    };
}

contract_tests!(
    users_and_sites,
    versions_are_checked,
    specialist_cannot_be_double_booked,
    lists_filter_and_page,
    lists_by_status_merge_and_count,
    audit_is_append_only_and_atomic,
    numbers_count_per_series_and_never_repeat
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_concurrent_bookings_have_one_winner() {
    let (s, _d) = embedded();
    contract::concurrent_bookings_have_one_winner(s, 32).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_concurrent_bookings_have_one_winner() {
    let (s, _r) = redis();
    contract::concurrent_bookings_have_one_winner(s, 32).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_concurrent_commits_stand_alone() {
    let (s, _d) = embedded();
    contract::concurrent_commits_stand_alone(s, 48).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_concurrent_commits_stand_alone() {
    let (s, _r) = redis();
    contract::concurrent_commits_stand_alone(s, 48).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_bookings_race_across_separate_connections() {
    // Two nodes = two connection managers on one Redis: the Lua script still admits one winner.
    let r = RedisServer::start().unwrap();
    let a: DynStore = Arc::new(RedisStore::connect(&r.url(), "hz2:").unwrap());
    let b: DynStore = Arc::new(RedisStore::connect(&r.url(), "hz2:").unwrap());
    let doc = huizhen::ids::UserId::generate();
    let sp = huizhen::ids::UserId::generate();
    let mut handles = Vec::new();
    for i in 0..20 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        let c = contract::scheduled(&doc, std::slice::from_ref(&sp), 300 + i, 45);
        handles.push(tokio::spawn(async move { s.commit_consultation(&c, None, &[]).await.is_ok() }));
    }
    let mut won = 0;
    for h in handles {
        won += usize::from(h.await.unwrap());
    }
    assert_eq!(won, 1);
}

#[tokio::test]
async fn redis_prefixes_keep_deployments_apart() {
    let r = RedisServer::start().unwrap();
    let a = RedisStore::connect(&r.url(), "one:").unwrap();
    let b = RedisStore::connect(&r.url(), "two:").unwrap();
    contract::users_and_sites(&a).await;
    contract::users_and_sites(&b).await;
}

#[tokio::test]
async fn embedded_data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let doc = huizhen::ids::UserId::generate();
    let c = contract::scheduled(&doc, &[], 0, 30);
    {
        let s = EmbeddedStore::open(&path).unwrap();
        huizhen::store::Store::commit_consultation(&s, &c, None, &[]).await.unwrap();
    }
    let s = EmbeddedStore::open(&path).unwrap();
    assert_eq!(huizhen::store::Store::get_consultation(&s, &c.id).await.unwrap(), Some(c));
}
