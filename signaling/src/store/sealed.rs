//! Patient data sealed at rest (issue 15). With `recording.encryption_key` set, the store
//! below never holds a consultation's summary or patient block in the clear: this wrapper
//! seals them on every write and opens them on every read, so the rest of the server, and
//! both stores' own logic (bookings, indexes, versions), see plain records and never a key.
//! Attachments' names and referrals' reasons are sealed with them (a file name often names the patient).
//! The sealed text names its consultation: a blob copied into another record does not open.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use huizhen_recorder::crypt::{MasterKey, SALT_LEN, random_salt};
use serde::{Deserialize, Serialize};

use super::{AuditEntry, AuditRecord, Booking, ConsultationQuery, DynStore, Page, Store, StoreError, StoreResult};
use crate::consult::model::{Consultation, SealedCase, Site, User};
use crate::consult::patient::Patient;
use crate::ids::{ConsultationId, SiteId, UserId};

/// The store as the server uses it: sealing when there is a key, the store itself otherwise.
pub fn wrap(inner: DynStore, key: Option<MasterKey>) -> DynStore {
    match key {
        Some(key) => Arc::new(Sealed { inner, key }),
        None => inner,
    }
}

struct Sealed {
    inner: DynStore,
    key: MasterKey,
}

#[derive(Serialize, Deserialize)]
struct Case {
    id: ConsultationId,
    summary: String,
    patient: Option<Patient>,
    /// The attachments' names, by id (a file name often names the patient).
    #[serde(default)]
    names: Vec<(String, String)>,
    /// The referrals' reasons (or instructions) and refusals, by id.
    #[serde(default)]
    referrals: Vec<(String, String, Option<String>)>,
}

impl Sealed {
    fn seal(&self, c: &Consultation) -> Consultation {
        seal(&self.key, c)
    }

    fn open(&self, c: Consultation) -> StoreResult<Consultation> {
        open(&self.key, c)
    }
}

fn seal(key: &MasterKey, c: &Consultation) -> Consultation {
    let mut out = c.clone();
    let names = out.attachments.iter_mut().map(|a| (a.id.clone(), std::mem::take(&mut a.name))).collect();
    let referrals =
        out.referrals.iter_mut().map(|r| (r.id.clone(), std::mem::take(&mut r.reason), r.refusal.take())).collect();
    let case = Case {
        id: c.id.clone(),
        summary: std::mem::take(&mut out.summary),
        patient: out.patient.take(),
        names,
        referrals,
    };
    let salt = random_salt();
    let data = key.file_key(&salt).seal(0, true, &super::encode(&case));
    out.sealed = Some(SealedCase { salt: B64.encode(salt), data: B64.encode(data) });
    out
}

fn open(key: &MasterKey, mut c: Consultation) -> StoreResult<Consultation> {
    let Some(s) = c.sealed.take() else {
        // Written before the key was set: plain until its next write.
        return Ok(c);
    };
    let corrupt = |what: &str| StoreError::Corrupt(format!("consultation {}: {what}", c.id));
    let salt: [u8; SALT_LEN] =
        B64.decode(&s.salt).ok().and_then(|v| v.try_into().ok()).ok_or_else(|| corrupt("sealed case salt"))?;
    let data = B64.decode(&s.data).map_err(|_| corrupt("sealed case data"))?;
    let plain =
        key.file_key(&salt).open(0, true, &data).map_err(|_| corrupt("the sealed case does not open with this key"))?;
    let case: Case = super::decode(&plain)?;
    if case.id != c.id {
        return Err(corrupt("the sealed case belongs to another consultation"));
    }
    c.summary = case.summary;
    c.patient = case.patient;
    for (id, name) in case.names {
        if let Some(a) = c.attachments.iter_mut().find(|a| a.id == id) {
            a.name = name;
        }
    }
    for (id, reason, refusal) in case.referrals {
        if let Some(r) = c.referrals.iter_mut().find(|r| r.id == id) {
            r.reason = reason;
            r.refusal = refusal;
        }
    }
    Ok(c)
}

#[async_trait]
impl Store for Sealed {
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
    async fn put_site(&self, site: &Site) -> StoreResult<()> {
        self.inner.put_site(site).await
    }
    async fn get_site(&self, id: &SiteId) -> StoreResult<Option<Site>> {
        self.inner.get_site(id).await
    }
    async fn list_sites(&self) -> StoreResult<Vec<Site>> {
        self.inner.list_sites().await
    }
    async fn create_user(&self, user: &User) -> StoreResult<()> {
        self.inner.create_user(user).await
    }
    async fn update_user(&self, user: &User) -> StoreResult<()> {
        self.inner.update_user(user).await
    }
    async fn get_user(&self, id: &UserId) -> StoreResult<Option<User>> {
        self.inner.get_user(id).await
    }
    async fn get_user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
        self.inner.get_user_by_name(username).await
    }
    async fn list_users(&self) -> StoreResult<Vec<User>> {
        self.inner.list_users().await
    }
    async fn count_users(&self) -> StoreResult<u64> {
        self.inner.count_users().await
    }
    async fn commit_consultation(
        &self,
        c: &Consultation,
        expected_version: Option<u64>,
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        self.inner.commit_consultation(&self.seal(c), expected_version, audit).await
    }
    async fn get_consultation(&self, id: &ConsultationId) -> StoreResult<Option<Consultation>> {
        self.inner.get_consultation(id).await?.map(|c| self.open(c)).transpose()
    }
    async fn list_consultations(&self, q: &ConsultationQuery) -> StoreResult<Page<Consultation>> {
        let page = self.inner.list_consultations(q).await?;
        let items = page.items.into_iter().map(|c| self.open(c)).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page { items, total: page.total, next_offset: page.next_offset })
    }
    async fn bookings(&self, specialist: &UserId) -> StoreResult<Vec<Booking>> {
        self.inner.bookings(specialist).await
    }
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<u64> {
        self.inner.append_audit(entry).await
    }
    async fn audit_len(&self) -> StoreResult<u64> {
        self.inner.audit_len().await
    }
    async fn audit_range(&self, from: u64, to: u64) -> StoreResult<Vec<AuditRecord>> {
        self.inner.audit_range(from, to).await
    }
    async fn next_number(&self, series: &str) -> StoreResult<u64> {
        self.inner.next_number(series).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn record(id: &str) -> Consultation {
        let mut c = crate::store::contract::scheduled(&UserId("doc".into()), &[], 0, 30);
        c.id = ConsultationId(id.into());
        c.summary = "胸痛".into();
        c
    }

    #[test]
    fn a_sealed_case_opens_with_its_key_in_its_own_record_only() {
        let key = MasterKey::new([7; 32]);
        let sealed = seal(&key, &record("a"));
        assert!(sealed.summary.is_empty() && sealed.patient.is_none() && sealed.sealed.is_some());
        assert_eq!(open(&key, sealed.clone()).unwrap().summary, "胸痛");
        assert!(open(&MasterKey::new([8; 32]), sealed.clone()).is_err(), "another key");
        let mut moved = record("b");
        moved.sealed = sealed.sealed.clone();
        assert!(open(&key, moved).is_err(), "copied into another record");
        // A record from before the key stays readable.
        assert_eq!(open(&key, record("c")).unwrap().summary, "胸痛");
    }
}
