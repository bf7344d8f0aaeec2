//! The contract every `Store` must keep. Both stores run exactly these checks
//! (`tests/tests/store_contract.rs`), against a real redb file and a real `redis-server`.
//! Each check panics with a message naming the broken promise.
#![allow(clippy::unwrap_used)]

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::consult::model::*;

fn user(name: &str, role: Role) -> User {
    User {
        id: UserId::generate(),
        username: name.into(),
        display_name: name.into(),
        role,
        site_id: None,
        specialty: None,
        disabled: false,
        password_hash: "x".into(),
        token_generation: 0,
        must_change_password: false,
        created_at: Timestamp::now(),
    }
}

/// A scheduled consultation for `specialists` at `start` (minutes from a fixed base).
pub fn scheduled(requester: &UserId, specialists: &[UserId], start_min: i64, minutes: u32) -> Consultation {
    let base: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
    Consultation {
        id: ConsultationId::generate(),
        version: 1,
        kind: Kind::Consultation,
        specialty: "cardiology".into(),
        urgency: Urgency::Routine,
        summary: "case".into(),
        wished: None,
        recording: RecordingPolicy::Off,
        status: Status::Scheduled,
        requester: requester.clone(),
        requester_site: None,
        coordinator: None,
        specialists: specialists.to_vec(),
        participants: vec![],
        start: Some(base + SignedDuration::from_mins(start_min)),
        duration_minutes: Some(minutes),
        reason: None,
        opinions: vec![],
        plan: None,
        created_at: base,
        updated_at: base,
        started_at: None,
        ended_at: None,
        guests: Vec::new(),
        encoders: Vec::new(),
        number: None,
        patient: None,
        auto_admit: false,
        attachments: Vec::new(),
        referrals: Vec::new(),
        sealed: None,
    }
}

fn bump(c: &Consultation) -> Consultation {
    let mut n = c.clone();
    n.version += 1;
    n
}

pub async fn users_and_sites(s: &dyn Store) {
    assert_eq!(s.count_users().await.unwrap(), 0, "a new store has no users");
    let site = Site {
        id: SiteId::generate(),
        name: "County".into(),
        level: SiteLevel::County,
        time_zone: "Asia/Shanghai".into(),
        created_at: Timestamp::now(),
    };
    s.put_site(&site).await.unwrap();
    assert_eq!(s.get_site(&site.id).await.unwrap(), Some(site.clone()));
    assert_eq!(s.list_sites().await.unwrap(), vec![site]);
    let mut a = user("alice", Role::Doctor);
    s.create_user(&a).await.unwrap();
    let dup = user("alice", Role::Admin);
    assert_eq!(s.create_user(&dup).await, Err(StoreError::Duplicate("username")), "usernames are unique");
    assert_eq!(s.get_user_by_name("alice").await.unwrap().unwrap().id, a.id);
    assert_eq!(s.get_user_by_name("nobody").await.unwrap(), None);
    a.token_generation = 7;
    s.update_user(&a).await.unwrap();
    assert_eq!(s.get_user(&a.id).await.unwrap().unwrap().token_generation, 7);
    let ghost = user("ghost", Role::Doctor);
    assert_eq!(s.update_user(&ghost).await, Err(StoreError::NotFound), "update does not create");
    s.create_user(&user("bob", Role::Specialist)).await.unwrap();
    assert_eq!(s.count_users().await.unwrap(), 2);
    let names: Vec<_> = s.list_users().await.unwrap().into_iter().map(|u| u.username).collect();
    assert_eq!(names, vec!["alice", "bob"]);
}

pub async fn versions_are_checked(s: &dyn Store) {
    let doc = UserId::generate();
    let c = scheduled(&doc, &[], 0, 30);
    s.commit_consultation(&c, None, &[]).await.unwrap();
    assert_eq!(s.commit_consultation(&c, None, &[]).await, Err(StoreError::VersionConflict), "create twice");
    let mut n = bump(&c);
    n.summary = "changed".into();
    assert_eq!(s.commit_consultation(&n, Some(5), &[]).await, Err(StoreError::VersionConflict), "stale version");
    s.commit_consultation(&n, Some(1), &[]).await.unwrap();
    assert_eq!(s.get_consultation(&c.id).await.unwrap().unwrap(), n);
    assert_eq!(s.commit_consultation(&n, Some(1), &[]).await, Err(StoreError::VersionConflict), "same write twice");
}

pub async fn specialist_cannot_be_double_booked(s: &dyn Store) {
    let doc = UserId::generate();
    let (sp, other) = (UserId::generate(), UserId::generate());
    let a = scheduled(&doc, std::slice::from_ref(&sp), 60, 60); // 01:00–02:00
    s.commit_consultation(&a, None, &[]).await.unwrap();
    let clash = scheduled(&doc, &[other.clone(), sp.clone()], 90, 60); // 01:30–02:30
    match s.commit_consultation(&clash, None, &[]).await {
        Err(StoreError::SpecialistBusy { specialist, conflicting }) => {
            assert_eq!(specialist, sp);
            assert_eq!(conflicting, a.id);
        }
        r => panic!("overlapping booking must fail with SpecialistBusy, got {r:?}"),
    }
    assert_eq!(s.get_consultation(&clash.id).await.unwrap(), None, "a refused booking writes nothing");
    assert!(s.bookings(&other).await.unwrap().is_empty(), "a refused booking holds no one's time");
    // Back to back is not an overlap.
    let next = scheduled(&doc, std::slice::from_ref(&sp), 120, 30);
    s.commit_consultation(&next, None, &[]).await.unwrap();
    assert_eq!(s.bookings(&sp).await.unwrap().len(), 2);
    // Rescheduling a consultation over its own old slot is fine.
    let mut moved = bump(&a);
    moved.start = Some(moved.start.unwrap() + SignedDuration::from_mins(-30));
    s.commit_consultation(&moved, Some(1), &[]).await.unwrap();
    // Cancelling releases the time.
    let mut cancelled = bump(&moved);
    cancelled.status = Status::Cancelled;
    s.commit_consultation(&cancelled, Some(2), &[]).await.unwrap();
    assert_eq!(s.bookings(&sp).await.unwrap().len(), 1, "cancelled consultations hold no booking");
    let fresh = scheduled(&doc, &[other.clone(), sp.clone()], 60, 30); // the cancelled slot
    s.commit_consultation(&fresh, None, &[]).await.unwrap();
    // Swapping the specialist releases the old one.
    let mut swapped = bump(&fresh);
    swapped.specialists = vec![other.clone()];
    s.commit_consultation(&swapped, Some(1), &[]).await.unwrap();
    let held: Vec<_> = s.bookings(&sp).await.unwrap().into_iter().map(|b| b.consultation).collect();
    assert_eq!(held, vec![next.id.clone()]);
    // A long slot that started hours earlier still clashes.
    let third = UserId::generate();
    let long = scheduled(&doc, std::slice::from_ref(&third), 10_000, 480);
    s.commit_consultation(&long, None, &[]).await.unwrap();
    let late = scheduled(&doc, std::slice::from_ref(&third), 10_000 + 470, 30);
    assert!(matches!(s.commit_consultation(&late, None, &[]).await, Err(StoreError::SpecialistBusy { .. })));
    let after = scheduled(&doc, std::slice::from_ref(&third), 10_000 + 480, 30);
    s.commit_consultation(&after, None, &[]).await.unwrap();
}

/// Many tasks book one specialist for overlapping slots at once: exactly one wins.
pub async fn concurrent_bookings_have_one_winner(s: DynStore, tasks: usize) {
    let doc = UserId::generate();
    let sp = UserId::generate();
    let mut handles = Vec::new();
    for i in 0..tasks {
        let s = s.clone();
        let c = scheduled(&doc, std::slice::from_ref(&sp), 600 + i as i64, 60);
        handles.push(tokio::spawn(async move { s.commit_consultation(&c, None, &[]).await }));
    }
    let mut won = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::SpecialistBusy { .. }) => {}
            Err(e) => panic!("unexpected error in booking race: {e}"),
        }
    }
    assert_eq!(won, 1, "exactly one of {tasks} racing bookings may win");
    assert_eq!(s.bookings(&sp).await.unwrap().len(), 1);
}

/// Many commits at once, some refused (a stale version): each stands or falls alone, and the
/// refused ones leave neither a record nor an audit entry (the embedded store writes commits
/// that wait together in one transaction).
pub async fn concurrent_commits_stand_alone(s: DynStore, tasks: usize) {
    let doc = UserId::generate();
    let t = Timestamp::now();
    let mut handles = Vec::new();
    for i in 0..tasks {
        let s = s.clone();
        let c = scheduled(&doc, &[], 2_000 + i as i64, 30);
        let stale = i % 3 == 0;
        let action = if stale { "consultation.never" } else { "consultation.request" };
        let e = AuditEntry::new(doc.as_str(), action, t).consultation(&c.id);
        let expected = stale.then_some(4);
        handles
            .push(tokio::spawn(async move { (c.id.clone(), stale, s.commit_consultation(&c, expected, &[e]).await) }));
    }
    let mut kept = 0;
    for h in handles {
        let (id, stale, r) = h.await.unwrap();
        if stale {
            assert_eq!(r, Err(StoreError::VersionConflict));
            assert_eq!(s.get_consultation(&id).await.unwrap(), None);
        } else {
            r.unwrap();
            assert_eq!(s.get_consultation(&id).await.unwrap().map(|c| c.version), Some(1));
            kept += 1;
        }
    }
    let len = s.audit_len().await.unwrap();
    assert_eq!(len, kept);
    let audit = s.audit_range(1, len + 1).await.unwrap();
    assert_eq!(audit.iter().map(|r| r.seq).collect::<Vec<_>>(), (1..=len).collect::<Vec<_>>());
    assert!(audit.iter().all(|r| r.entry.action == "consultation.request"));
}

pub async fn lists_filter_and_page(s: &dyn Store) {
    let (doc, other) = (UserId::generate(), UserId::generate());
    let mut ids = Vec::new();
    for i in 0..5 {
        let c = scheduled(if i < 4 { &doc } else { &other }, &[], i * 10, 30);
        s.commit_consultation(&c, None, &[]).await.unwrap();
        ids.push(c.id);
    }
    let mut req = scheduled(&doc, &[], 100, 30);
    req.status = Status::Requested;
    s.commit_consultation(&req, None, &[]).await.unwrap();
    let q = ConsultationQuery { involving: Some(doc.clone()), limit: 2, ..Default::default() };
    let p = s.list_consultations(&q).await.unwrap();
    assert_eq!(p.total, 5, "mine counts only my consultations");
    assert_eq!(
        p.items.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        vec![req.id.clone(), ids[3].clone()],
        "newest first"
    );
    assert_eq!(p.next_offset, Some(2));
    let q = ConsultationQuery {
        involving: Some(doc.clone()),
        statuses: vec![Status::Scheduled],
        ascending: true,
        offset: 1,
        limit: 10,
        ..Default::default()
    };
    let p = s.list_consultations(&q).await.unwrap();
    assert_eq!(p.items.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), ids[1..4].to_vec());
    assert_eq!(p.next_offset, None);
    let base: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
    let q = ConsultationQuery {
        from: Some(base + SignedDuration::from_mins(10)),
        to: Some(base + SignedDuration::from_mins(40)),
        ascending: true,
        limit: 10,
        ..Default::default()
    };
    let p = s.list_consultations(&q).await.unwrap();
    assert_eq!(
        p.items.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        ids[1..4].to_vec(),
        "date range is [from, to)"
    );
    // Involvement follows changes: a specialist added later finds it under "mine".
    let sp = UserId::generate();
    let mut n = bump(&req);
    n.specialists = vec![sp.clone()];
    s.commit_consultation(&n, Some(1), &[]).await.unwrap();
    let q = ConsultationQuery { involving: Some(sp.clone()), limit: 10, ..Default::default() };
    assert_eq!(s.list_consultations(&q).await.unwrap().total, 1);
    // ...and loses it when replaced; a new start time moves it in the date order.
    let mut m = bump(&n);
    m.specialists = vec![UserId::generate()];
    m.start = Some(base - SignedDuration::from_mins(5));
    s.commit_consultation(&m, Some(2), &[]).await.unwrap();
    assert_eq!(s.list_consultations(&q).await.unwrap().total, 0);
    let q = ConsultationQuery { involving: Some(doc.clone()), ascending: true, limit: 1, ..Default::default() };
    assert_eq!(s.list_consultations(&q).await.unwrap().items[0], m);
}

/// The centre's queue and "mine" by several statuses at once: merged in time order, counted,
/// paged, within a date range or not; a change of status moves a consultation from one count
/// to the other, for everyone and for each user involved.
pub async fn lists_by_status_merge_and_count(s: &dyn Store) {
    let (doc, other) = (UserId::generate(), UserId::generate());
    let base: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
    let mins = |m: i64| base + SignedDuration::from_mins(m);
    // At minutes 0, 10, … 90: even ones scheduled, odd ones requested; the last is `other`'s.
    let mut all = Vec::new();
    for i in 0..10 {
        let mut c = scheduled(if i == 9 { &other } else { &doc }, &[], i * 10, 30);
        if i % 2 == 1 {
            c.status = Status::Requested;
        }
        s.commit_consultation(&c, None, &[]).await.unwrap();
        all.push(c);
    }
    let ids = |p: &Page<Consultation>| p.items.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
    let of = |idx: &[usize]| idx.iter().map(|i| all[*i].id.clone()).collect::<Vec<_>>();
    let both = vec![Status::Requested, Status::Scheduled];
    let q = ConsultationQuery { statuses: both.clone(), offset: 3, limit: 3, ..Default::default() };
    let p = s.list_consultations(&q).await.unwrap();
    assert_eq!(ids(&p), of(&[6, 5, 4]), "two statuses merged, newest first, second page");
    assert_eq!((p.total, p.next_offset), (10, Some(6)));
    let q = ConsultationQuery { statuses: vec![Status::Requested], limit: 2, ..Default::default() };
    let p = s.list_consultations(&q).await.unwrap();
    assert_eq!((ids(&p), p.total, p.next_offset), (of(&[9, 7]), 5, Some(2)), "the queue of one status");
    let q = ConsultationQuery {
        involving: Some(doc.clone()),
        statuses: both.clone(),
        from: Some(mins(10)),
        to: Some(mins(60)),
        ascending: true,
        limit: 10,
        ..Default::default()
    };
    let p = s.list_consultations(&q).await.unwrap();
    assert_eq!((ids(&p), p.total, p.next_offset), (of(&[1, 2, 3, 4, 5]), 5, None), "mine, two statuses, [from, to)");
    let q = ConsultationQuery { involving: Some(doc.clone()), from: Some(mins(70)), limit: 10, ..Default::default() };
    let p = s.list_consultations(&q).await.unwrap();
    assert_eq!((ids(&p), p.total), (of(&[8, 7]), 2), "mine from a date on, any status");
    // Minute 10's request is scheduled now: one requested fewer, one scheduled more.
    let mut c = bump(&all[1]);
    c.status = Status::Scheduled;
    s.commit_consultation(&c, Some(1), &[]).await.unwrap();
    let total = |involving: Option<&UserId>, statuses: Vec<Status>| {
        let q = ConsultationQuery { involving: involving.cloned(), statuses, limit: 1, ..Default::default() };
        async move { s.list_consultations(&q).await.unwrap().total }
    };
    assert_eq!(total(None, vec![Status::Requested]).await, 4);
    assert_eq!(total(None, vec![Status::Scheduled]).await, 6);
    assert_eq!(total(Some(&doc), vec![Status::Requested]).await, 3);
    assert_eq!(total(Some(&doc), vec![Status::Scheduled]).await, 6);
    assert_eq!(total(None, vec![]).await, 10);
    assert_eq!(total(Some(&doc), vec![]).await, 9);
    assert_eq!(total(Some(&other), both).await, 1);
}

pub async fn audit_is_append_only_and_atomic(s: &dyn Store) {
    let t = Timestamp::now();
    assert_eq!(s.append_audit(&AuditEntry::new("u1", "auth.login", t)).await.unwrap(), 1);
    let doc = UserId::generate();
    let c = scheduled(&doc, &[], 0, 30);
    let e = AuditEntry::new(doc.as_str(), "consultation.request", t).consultation(&c.id);
    s.commit_consultation(&c, None, std::slice::from_ref(&e)).await.unwrap();
    // A refused commit writes none of its audit entries.
    let refused = AuditEntry::new(doc.as_str(), "consultation.never", t);
    assert!(s.commit_consultation(&c, None, &[refused]).await.is_err());
    assert_eq!(s.audit_len().await.unwrap(), 2);
    assert_eq!(s.append_audit(&AuditEntry::new("u1", "auth.logout", t)).await.unwrap(), 3);
    let all = s.audit_range(1, 4).await.unwrap();
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(all[1].entry, e);
    assert_eq!(s.audit_range(2, 3).await.unwrap().len(), 1);
    assert!(s.audit_range(3, 3).await.unwrap().is_empty());
}

/// Report numbers: each series counts from 1 on its own, with no number given twice even to
/// writers racing.
pub async fn numbers_count_per_series_and_never_repeat(s: &dyn Store) {
    assert_eq!(s.next_number("report-2026").await.unwrap(), 1);
    assert_eq!(s.next_number("report-2026").await.unwrap(), 2);
    assert_eq!(s.next_number("report-2027").await.unwrap(), 1);
    let racing = futures_join(s, "race", 20).await;
    let mut sorted = racing.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, (1..=20).collect::<Vec<u64>>(), "every number once: {racing:?}");
}

async fn futures_join(s: &dyn Store, series: &str, n: usize) -> Vec<u64> {
    let calls = (0..n).map(|_| s.next_number(series));
    let mut out = Vec::new();
    for r in futures_util::future::join_all(calls).await {
        out.push(r.unwrap());
    }
    out
}
