//! The consultation record and the people and places around it.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::ids::{ConsultationId, SiteId, UserId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Coordinator,
    Specialist,
    Doctor,
    Viewer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteLevel {
    City,
    County,
    Township,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Site {
    pub id: SiteId,
    pub name: String,
    pub level: SiteLevel,
    /// IANA zone used to show times to this site's staff; storage is always UTC.
    pub time_zone: String,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub site_id: Option<SiteId>,
    pub specialty: Option<String>,
    pub disabled: bool,
    pub password_hash: String,
    /// Bumped on logout and password change; refresh tokens carry it, so old ones stop working.
    pub token_generation: u64,
    pub created_at: Timestamp,
    /// The password is a one-time one (the first start's, or one reset from the command line):
    /// until its user sets their own, a session may do nothing else (issue 14).
    #[serde(default)]
    pub must_change_password: bool,
}

/// What the API shows of a user: never the password hash.
#[derive(Clone, Debug, Serialize)]
pub struct UserView {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub site_id: Option<SiteId>,
    pub specialty: Option<String>,
    pub disabled: bool,
    pub created_at: Timestamp,
    pub must_change_password: bool,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.clone(),
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            role: u.role,
            site_id: u.site_id.clone(),
            specialty: u.specialty.clone(),
            disabled: u.disabled,
            created_at: u.created_at,
            must_change_password: u.must_change_password,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Consultation,
    CaseDiscussion,
    Teaching,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    Routine,
    Urgent,
    Emergency,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RecordingPolicy {
    #[default]
    Off,
    Allowed,
    Required,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Requested,
    Scheduled,
    Live,
    Ended,
    Reported,
    Rejected,
    Cancelled,
    NoShow,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Requested => "requested",
            Status::Scheduled => "scheduled",
            Status::Live => "live",
            Status::Ended => "ended",
            Status::Reported => "reported",
            Status::Rejected => "rejected",
            Status::Cancelled => "cancelled",
            Status::NoShow => "no_show",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "requested" => Status::Requested,
            "scheduled" => Status::Scheduled,
            "live" => Status::Live,
            "ended" => Status::Ended,
            "reported" => Status::Reported,
            "rejected" => Status::Rejected,
            "cancelled" => Status::Cancelled,
            "no_show" => Status::NoShow,
            _ => return None,
        })
    }
    /// No one meets in the room any more.
    pub fn is_closed(self) -> bool {
        !matches!(self, Status::Requested | Status::Scheduled | Status::Live)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub from: Timestamp,
    pub to: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Opinion {
    pub author: UserId,
    pub text: String,
    pub updated_at: Timestamp,
    /// Once set the opinion is part of the record and can no longer change.
    pub signed_at: Option<Timestamp>,
    /// The server's signature over it, made when the specialist signed with their password
    /// (issue 15). Opinions signed before that carry the time only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<crate::auth::report_key::OpinionSignature>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub author: UserId,
    pub text: String,
    pub recorded_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Consultation {
    pub id: ConsultationId,
    /// Optimistic concurrency: every write states the version it read.
    pub version: u64,
    pub kind: Kind,
    pub specialty: String,
    pub urgency: Urgency,
    /// The readable number reports carry (`HZ-2026-000123`: per year, per deployment), given
    /// when the request is made. Records from before it have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// Case summary: patient data. Never logged, never put in the audit trail.
    pub summary: String,
    /// Who the consultation is about (issue 15): patient data, like the summary. Optional:
    /// teaching sessions and case discussions may have none, and older records have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<super::patient::Patient>,
    pub wished: Option<Window>,
    pub recording: RecordingPolicy,
    pub status: Status,
    pub requester: UserId,
    pub requester_site: Option<SiteId>,
    pub coordinator: Option<UserId>,
    /// The first specialist leads (hosts) the consultation.
    pub specialists: Vec<UserId>,
    /// Further invitees: other sites' doctors in a case discussion, trainees of a teaching session.
    pub participants: Vec<UserId>,
    pub start: Option<Timestamp>,
    pub duration_minutes: Option<u32>,
    /// Why it was rejected or cancelled.
    pub reason: Option<String>,
    pub opinions: Vec<Opinion>,
    pub plan: Option<Plan>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    /// Links for people without an account (an outside expert, the patient's family).
    #[serde(default)]
    pub guests: Vec<GuestLink>,
    /// Operating-room encoders and OBS that may publish into the room by WHIP (issue 18).
    #[serde(default)]
    pub encoders: Vec<EncoderLink>,
    /// Invited members who come before a host go straight in instead of waiting in the
    /// lobby (a teaching broadcast's audience). Guests always wait to be admitted.
    #[serde(default)]
    pub auto_admit: bool,
    /// Files attached to the case (issue 15): their names may name the patient.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// Referrals up and back down (双向转诊) that came of it (issue 15).
    #[serde(default)]
    pub referrals: Vec<super::referral::Referral>,
    /// At rest only: the summary and the patient, sealed (`store::sealed`). Never set in a
    /// record the rest of the server sees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<SealedCase>,
}

/// One attached file; the file itself is in the attachments directory (`attachments.rs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: String,
    /// The name it was uploaded with: patient data (sealed with the case).
    pub name: String,
    pub kind: crate::attachments::Kind,
    pub size: u64,
    /// Hex SHA-256 of the file as uploaded.
    pub sha256: String,
    pub uploaded_by: UserId,
    pub uploaded_at: Timestamp,
    /// What a DICOM attachment holds (files, modalities, frames): nothing that names anyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dicom: Option<crate::attachments::DicomInfo>,
}

/// The case's patient data as stored when a key is set: AES-256-GCM under a key derived from
/// the master key and a fresh salt per write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SealedCase {
    /// Base64 of the 16-byte salt.
    pub salt: String,
    /// Base64 of the sealed JSON.
    pub data: String,
}

/// A one-time link into one consultation for someone without an account (issue 14). The
/// link itself is a signed token naming this id; the record says whether it still works.
/// The label and the name the guest gave may name people: like the summary, they are never
/// logged and never put in the audit trail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuestLink {
    pub id: String,
    /// What the inviter wrote to tell links apart ("外院专家", "患者家属").
    pub label: String,
    pub created_by: UserId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// When the guest first came through it, and the name they gave: from then on the link
    /// opens for no one else.
    pub used_at: Option<Timestamp>,
    pub guest_name: Option<String>,
}

impl GuestLink {
    /// The room identity of whoever came through this link.
    pub fn identity(&self) -> String {
        guest_identity(&self.id)
    }

    /// Not revoked and not expired (used or not).
    pub fn open_at(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// An encoder's publishing credential (WHIP, RFC 9725): a host makes one for a camera or
/// encoder in the operating room, whose operator enters the URL and token once. Unlike a guest
/// link it is used again and again (an encoder reconnects) until it expires or is withdrawn.
/// The label names a room or a device ("手术室 3 腔镜"), not a person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncoderLink {
    pub id: String,
    pub label: String,
    pub created_by: UserId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl EncoderLink {
    /// The room identity of the encoder publishing with this credential.
    pub fn identity(&self) -> String {
        encoder_identity(&self.id)
    }

    pub fn open_at(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// Encoders' room identities: never a user id (those are 32 hex digits without a dash).
pub fn encoder_identity(id: &str) -> String {
    format!("encoder-{id}")
}

/// Guests' room identities: never a user id (those are 32 hex digits without a dash).
pub fn guest_identity(link: &str) -> String {
    format!("guest-{link}")
}

impl Consultation {
    /// The booked slot, if a time has been set.
    pub fn slot(&self) -> Option<(Timestamp, Timestamp)> {
        let start = self.start?;
        let minutes = self.duration_minutes?;
        // Checked: a record is never booked near the end of the calendar (`MAX_AHEAD`), but a
        // slot that cannot be computed is no slot rather than a panic.
        Some((start, start.checked_add(SignedDuration::from_mins(i64::from(minutes))).ok()?))
    }

    /// Whether this record holds its specialists' time: only scheduled and live ones do.
    pub fn holds_booking(&self) -> bool {
        matches!(self.status, Status::Scheduled | Status::Live) && self.slot().is_some()
    }

    /// Everyone who takes part: may read it, join it, and see the report.
    pub fn involves(&self, user: &UserId) -> bool {
        &self.requester == user
            || self.coordinator.as_ref() == Some(user)
            || self.specialists.contains(user)
            || self.participants.contains(user)
    }

    /// Who may read it: everyone involved, and the consultation centre (any coordinator).
    pub fn visible_to(&self, user: &UserId, role: Role) -> bool {
        self.involves(user) || role == Role::Coordinator
    }

    /// Everyone who should find it under "mine".
    pub fn involved_users(&self) -> Vec<UserId> {
        let mut v = vec![self.requester.clone()];
        v.extend(self.coordinator.iter().cloned());
        v.extend(self.specialists.iter().cloned());
        v.extend(self.participants.iter().cloned());
        v.sort();
        v.dedup();
        v
    }

    /// Hosts run the room: start, end, admit from the lobby. The lead specialist and the
    /// coordinator who scheduled it; in an emergency the requesting doctor too, because no one
    /// else may be there yet.
    pub fn is_host(&self, user: &UserId) -> bool {
        self.specialists.first() == Some(user)
            || self.coordinator.as_ref() == Some(user)
            || (self.urgency == Urgency::Emergency && &self.requester == user)
    }

    /// The time lists sort and filter on.
    pub fn sort_time(&self) -> Timestamp {
        self.start.unwrap_or(self.created_at)
    }
}

#[cfg(test)]
mod tests {
    use super::Status;

    #[test]
    fn status_names_round_trip_and_match_serde() {
        use Status::*;
        for s in [Requested, Scheduled, Live, Ended, Reported, Rejected, Cancelled, NoShow] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).ok(), Some(serde_json::Value::String(s.as_str().into())));
        }
        assert_eq!(Status::parse("Live"), None);
    }
}
