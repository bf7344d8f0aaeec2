//! The consultation lifecycle as a pure function: given a record, who acts, what they ask and
//! the time, it returns the next record or says why not. No store, no clock, no I/O — the
//! API layer loads, calls `apply`, and commits with the version it read.
//!
//! ```text
//! requested ──accept──▶ scheduled ──start──▶ live ──end──▶ ended ──plan──▶ reported
//!     │                  │   ▲ reschedule
//!     ├─reject─▶ rejected │   │
//!     └─cancel─▶ cancelled◀┘   └─ no_show ─▶ no_show
//! emergency requests are created live.
//! ```

use crate::text::{TextKind, forbidden_char};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::json;

use super::model::*;
use crate::ids::{ConsultationId, SiteId, UserId};

/// Tunables that the lifecycle needs; from config.
#[derive(Clone, Debug)]
pub struct Rules {
    pub join_early_minutes: u32,
    pub emergency_duration_minutes: u32,
    /// Where "today" is (a date of birth today is not in the future; an age turns at local
    /// midnight): the deployment's zone, Beijing time by default.
    pub time_zone: jiff::tz::TimeZone,
}

/// Beijing time, the zone of every consortium this serves unless configured otherwise.
pub fn beijing() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get("Asia/Shanghai").unwrap_or_else(|_| jiff::tz::TimeZone::fixed(jiff::tz::offset(8)))
}

impl Default for Rules {
    fn default() -> Self {
        Self { join_early_minutes: 15, emergency_duration_minutes: 60, time_zone: beijing() }
    }
}

impl Rules {
    /// The calendar date at `now` where the deployment is.
    pub fn today(&self, now: Timestamp) -> jiff::civil::Date {
        now.to_zoned(self.time_zone.clone()).date()
    }
}

pub const MAX_SUMMARY_CHARS: usize = 4000;
pub const MAX_TEXT_CHARS: usize = 20_000;
pub const MAX_REASON_CHARS: usize = 1000;
pub const MAX_SPECIALISTS: usize = 6;
pub const MAX_PARTICIPANTS: usize = 500;
pub const MIN_DURATION: u32 = 10;
pub const MAX_DURATION: u32 = 8 * 60;
/// A start a little in the past is a clock skew between coordinator PC and server, not an error.
const START_SKEW: SignedDuration = SignedDuration::from_mins(5);
/// How far ahead a consultation may be booked. Also keeps every slot's arithmetic far from
/// the end of the calendar (a start in year 9999 once overflowed and panicked a handler).
pub const MAX_AHEAD: SignedDuration = SignedDuration::from_hours(2 * 366 * 24);

#[derive(Clone, Debug)]
pub struct Actor {
    pub id: UserId,
    pub role: Role,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestInput {
    pub kind: Kind,
    pub specialty: String,
    pub urgency: Urgency,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub wished: Option<Window>,
    #[serde(default)]
    pub recording: RecordingPolicy,
    /// Other sites or trainees to invite (user ids).
    #[serde(default)]
    pub participants: Vec<UserId>,
    #[serde(default)]
    pub patient: Option<super::patient::Patient>,
}

#[derive(Clone, Debug)]
pub enum Action {
    Accept {
        specialists: Vec<UserId>,
        start: Timestamp,
        duration_minutes: u32,
        recording: Option<RecordingPolicy>,
    },
    Reject {
        reason: String,
    },
    Reschedule {
        start: Timestamp,
        duration_minutes: u32,
        specialists: Option<Vec<UserId>>,
    },
    /// Add specialists to a live consultation (an emergency starts with none).
    Assign {
        specialists: Vec<UserId>,
    },
    Invite {
        participants: Vec<UserId>,
    },
    Cancel {
        reason: String,
    },
    Start,
    End,
    NoShow,
    Opinion {
        text: String,
        sign: bool,
    },
    Plan {
        text: String,
    },
    /// A one-time link for a guest without an account; `id` is fresh, made by the caller.
    CreateGuestLink {
        id: String,
        label: String,
        expires_at: Timestamp,
    },
    RevokeGuestLink {
        id: String,
    },
    /// The guest came through link `id` and gave `name`: the link is used from now on.
    GuestArrived {
        id: String,
        name: String,
    },
    /// A credential for an encoder to publish by WHIP; `id` is fresh, made by the caller.
    CreateEncoder {
        id: String,
        label: String,
        expires_at: Timestamp,
    },
    RevokeEncoder {
        id: String,
    },
    /// How the room treats those who come before a host.
    Settings {
        auto_admit: bool,
    },
    /// A file, stored and checked (`api::attachments`), joins the case.
    Attach {
        attachment: Attachment,
    },
    /// A step of a referral (`referral.rs`), by someone at `site`.
    Referral {
        step: super::referral::Step,
        site: Option<SiteId>,
    },
}

impl Action {
    /// Stable name for the audit trail and error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Accept { .. } => "accept",
            Action::Reject { .. } => "reject",
            Action::Reschedule { .. } => "reschedule",
            Action::Assign { .. } => "assign",
            Action::Invite { .. } => "invite",
            Action::Cancel { .. } => "cancel",
            Action::Start => "start",
            Action::End => "end",
            Action::NoShow => "no_show",
            Action::Opinion { sign: false, .. } => "opinion_draft",
            Action::Opinion { sign: true, .. } => "opinion_sign",
            Action::Plan { .. } => "plan",
            Action::CreateGuestLink { .. } => "guest_link_create",
            Action::RevokeGuestLink { .. } => "guest_link_revoke",
            Action::GuestArrived { .. } => "guest_arrived",
            Action::CreateEncoder { .. } => "encoder_create",
            Action::RevokeEncoder { .. } => "encoder_revoke",
            Action::Settings { .. } => "settings",
            Action::Attach { .. } => "attach",
            Action::Referral { step, .. } => step.name(),
        }
    }

    /// What the step acted on, for the audit trail: ids only.
    pub fn target(&self) -> Option<&str> {
        match self {
            Action::CreateGuestLink { id, .. }
            | Action::RevokeGuestLink { id }
            | Action::GuestArrived { id, .. }
            | Action::CreateEncoder { id, .. }
            | Action::RevokeEncoder { id } => Some(id),
            Action::Attach { attachment } => Some(&attachment.id),
            Action::Referral { step, .. } => Some(step.target()),
            _ => None,
        }
    }
}

/// At most this many guest links per consultation, used, revoked and expired ones included.
pub const MAX_GUEST_LINKS: usize = 50;
pub const MAX_GUEST_LABEL_CHARS: usize = 60;
pub const MAX_GUEST_NAME_CHARS: usize = 40;
/// How long a guest link may stay open: a week.
pub const MAX_GUEST_LINK_HOURS: i64 = 7 * 24;
pub const MAX_ATTACHMENTS: usize = 200;
/// Encoder credentials per consultation, withdrawn and expired ones included.
pub const MAX_ENCODERS: usize = 20;
pub const MAX_ENCODER_LABEL_CHARS: usize = 40;
/// How long an encoder credential may stay valid: a month of teaching sessions.
pub const MAX_ENCODER_HOURS: i64 = 31 * 24;

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum LifecycleError {
    #[error("{action} is not possible while the consultation is {status}")]
    WrongState { action: &'static str, status: &'static str },
    #[error("your role may not {action} this consultation")]
    Forbidden { action: &'static str },
    /// A field rule broken: see `AppError::field`.
    #[error("{message}")]
    Invalid { code: &'static str, field: &'static str, numbers: serde_json::Value, message: String },
    #[error("the consultation cannot start before {opens_at}")]
    TooEarly { opens_at: Timestamp },
    #[error("the opinion has been signed and can no longer change")]
    OpinionSigned,
    #[error("the plan needs at least one signed opinion")]
    NoSignedOpinion,
    #[error("start must be within two years from now")]
    StartTooFar,
    #[error("{field} contains a control, zero-width or direction-changing character")]
    InvalidCharacters { field: &'static str },
    /// The guest link is unknown, revoked, expired or used (`code` says which).
    #[error("{message}")]
    GuestLink { code: &'static str, message: &'static str },
    /// What the step names (a referral) is not in the record.
    #[error("{message}")]
    NotFound { code: &'static str, message: &'static str },
}

pub(super) fn invalid(
    code: &'static str,
    field: &'static str,
    numbers: serde_json::Value,
    message: impl Into<String>,
) -> LifecycleError {
    LifecycleError::Invalid { code, field, numbers, message: message.into() }
}

fn too_many_participants() -> LifecycleError {
    invalid(
        "too_many_participants",
        "participants",
        json!({ "max": MAX_PARTICIPANTS }),
        format!("at most {MAX_PARTICIPANTS} participants"),
    )
}

pub(super) fn check_text(
    field: &'static str,
    kind: TextKind,
    text: &str,
    max: usize,
    required: bool,
) -> Result<String, LifecycleError> {
    if forbidden_char(text, kind).is_some() {
        return Err(LifecycleError::InvalidCharacters { field });
    }
    let t = text.trim();
    if required && t.is_empty() {
        return Err(invalid("text_required", field, json!({}), format!("{field} must not be empty")));
    }
    if t.chars().count() > max {
        return Err(invalid(
            "text_too_long",
            field,
            json!({ "max": max }),
            format!("{field} is longer than {max} characters"),
        ));
    }
    Ok(t.to_owned())
}

fn check_slot(start: Timestamp, duration: u32, now: Timestamp) -> Result<(), LifecycleError> {
    if !(MIN_DURATION..=MAX_DURATION).contains(&duration) {
        return Err(invalid(
            "duration_out_of_range",
            "duration_minutes",
            json!({ "min": MIN_DURATION, "max": MAX_DURATION }),
            format!("duration_minutes must be between {MIN_DURATION} and {MAX_DURATION}"),
        ));
    }
    if start < now - START_SKEW {
        return Err(invalid("start_in_past", "start", json!({}), "start lies in the past"));
    }
    if start > now + MAX_AHEAD {
        return Err(LifecycleError::StartTooFar);
    }
    Ok(())
}

fn check_people(specialists: &[UserId], min: usize) -> Result<Vec<UserId>, LifecycleError> {
    let v = specialists.to_vec();
    let mut sorted = v.clone();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != v.len() {
        return Err(invalid("specialist_repeated", "specialists", json!({}), "a specialist is listed twice"));
    }
    if v.len() < min || v.len() > MAX_SPECIALISTS {
        return Err(invalid(
            "specialist_count",
            "specialists",
            json!({ "min": min, "max": MAX_SPECIALISTS }),
            format!("between {min} and {MAX_SPECIALISTS} specialists are needed"),
        ));
    }
    Ok(v)
}

fn merge_unique(into: &mut Vec<UserId>, add: &[UserId]) {
    for u in add {
        if !into.contains(u) {
            into.push(u.clone());
        }
    }
}

/// A doctor's new request. Emergencies open at once: they are created live.
pub fn new_request(
    actor: &Actor,
    site: Option<SiteId>,
    input: RequestInput,
    now: Timestamp,
    rules: &Rules,
) -> Result<Consultation, LifecycleError> {
    if actor.role != Role::Doctor {
        return Err(LifecycleError::Forbidden { action: "request" });
    }
    let specialty = check_text("specialty", TextKind::Name, &input.specialty, 100, true)?;
    // With the patient block the clinical question is in its fields; the summary is then a
    // free note. Without it, the summary is all the specialist has.
    let summary = check_text("summary", TextKind::Prose, &input.summary, MAX_SUMMARY_CHARS, input.patient.is_none())?;
    let today = rules.today(now);
    let patient = input.patient.map(|p| p.checked(today)).transpose()?;
    if let Some(w) = input.wished
        && w.to <= w.from
    {
        return Err(invalid("wished_reversed", "wished", json!({}), "wished.to must be after wished.from"));
    }
    // A wish that has already passed cannot be met (a scheduler would have to ask again).
    if let Some(w) = input.wished
        && w.to < now - START_SKEW
    {
        return Err(invalid("wished_in_past", "wished", json!({}), "the preferred time has passed"));
    }
    if input.participants.len() > MAX_PARTICIPANTS {
        return Err(too_many_participants());
    }
    let mut participants = Vec::new();
    merge_unique(&mut participants, &input.participants);
    participants.retain(|p| p != &actor.id);
    let emergency = input.urgency == Urgency::Emergency;
    Ok(Consultation {
        id: ConsultationId::generate(),
        version: 1,
        kind: input.kind,
        specialty,
        urgency: input.urgency,
        number: None,
        summary,
        patient,
        wished: input.wished,
        recording: input.recording,
        status: if emergency { Status::Live } else { Status::Requested },
        requester: actor.id.clone(),
        requester_site: site,
        coordinator: None,
        specialists: Vec::new(),
        participants,
        start: emergency.then_some(now),
        duration_minutes: emergency.then_some(rules.emergency_duration_minutes),
        reason: None,
        opinions: Vec::new(),
        plan: None,
        created_at: now,
        updated_at: now,
        started_at: emergency.then_some(now),
        ended_at: None,
        guests: Vec::new(),
        encoders: Vec::new(),
        auto_admit: false,
        attachments: Vec::new(),
        referrals: Vec::new(),
        sealed: None,
    })
}

/// One step of the lifecycle. Returns the new record with `version` bumped.
pub fn apply(
    c: &Consultation,
    actor: &Actor,
    action: Action,
    now: Timestamp,
    rules: &Rules,
) -> Result<Consultation, LifecycleError> {
    use Status::*;
    let name = action.name();
    let coordinator = actor.role == Role::Coordinator;
    let wrong_state = || LifecycleError::WrongState { action: name, status: c.status.as_str() };
    let forbidden = || LifecycleError::Forbidden { action: name };
    let mut n = c.clone();
    match action {
        Action::Accept { specialists, start, duration_minutes, recording } => {
            if !coordinator {
                return Err(forbidden());
            }
            if c.status != Requested {
                return Err(wrong_state());
            }
            n.specialists = check_people(&specialists, 1)?;
            check_slot(start, duration_minutes, now)?;
            n.start = Some(start);
            n.duration_minutes = Some(duration_minutes);
            n.coordinator = Some(actor.id.clone());
            if let Some(r) = recording {
                n.recording = r;
            }
            n.status = Scheduled;
        }
        Action::Reject { reason } => {
            if !coordinator {
                return Err(forbidden());
            }
            if c.status != Requested {
                return Err(wrong_state());
            }
            n.reason = Some(check_text("reason", TextKind::Prose, &reason, MAX_REASON_CHARS, true)?);
            n.coordinator = Some(actor.id.clone());
            n.status = Rejected;
        }
        Action::Reschedule { start, duration_minutes, specialists } => {
            if !coordinator {
                return Err(forbidden());
            }
            if c.status != Scheduled {
                return Err(wrong_state());
            }
            check_slot(start, duration_minutes, now)?;
            if let Some(s) = specialists {
                n.specialists = check_people(&s, 1)?;
            }
            n.start = Some(start);
            n.duration_minutes = Some(duration_minutes);
        }
        Action::Assign { specialists } => {
            if !coordinator {
                return Err(forbidden());
            }
            if c.status != Live {
                return Err(wrong_state());
            }
            let mut all = c.specialists.clone();
            merge_unique(&mut all, &specialists);
            n.specialists = check_people(&all, 1)?;
            if n.coordinator.is_none() {
                n.coordinator = Some(actor.id.clone());
            }
        }
        Action::Invite { participants } => {
            may_invite(c, actor)?;
            merge_unique(&mut n.participants, &participants);
            if n.participants.len() > MAX_PARTICIPANTS {
                return Err(too_many_participants());
            }
        }
        Action::Cancel { reason } => {
            if !(coordinator || (actor.role == Role::Doctor && c.requester == actor.id)) {
                return Err(forbidden());
            }
            if !matches!(c.status, Requested | Scheduled) {
                return Err(wrong_state());
            }
            n.reason = Some(check_text("reason", TextKind::Prose, &reason, MAX_REASON_CHARS, true)?);
            n.status = Cancelled;
        }
        Action::Start => {
            if !(coordinator || c.is_host(&actor.id)) {
                return Err(forbidden());
            }
            if c.status != Scheduled {
                return Err(wrong_state());
            }
            if let Some(start) = c.start {
                let opens_at = start - SignedDuration::from_mins(i64::from(rules.join_early_minutes));
                if now < opens_at {
                    return Err(LifecycleError::TooEarly { opens_at });
                }
            }
            n.status = Live;
            n.started_at = Some(now);
        }
        Action::End => {
            if !(coordinator || c.is_host(&actor.id)) {
                return Err(forbidden());
            }
            if c.status != Live {
                return Err(wrong_state());
            }
            n.status = Ended;
            n.ended_at = Some(now);
        }
        Action::NoShow => {
            if !coordinator {
                return Err(forbidden());
            }
            if c.status != Scheduled {
                return Err(wrong_state());
            }
            if c.start.is_some_and(|s| now < s) {
                return Err(invalid(
                    "no_show_before_start",
                    "start",
                    json!({}),
                    "a consultation can be marked no-show only after its start",
                ));
            }
            n.status = NoShow;
        }
        Action::Opinion { text, sign } => {
            if !(actor.role == Role::Specialist && c.specialists.contains(&actor.id)) {
                return Err(forbidden());
            }
            if !matches!(c.status, Live | Ended) {
                return Err(wrong_state());
            }
            let text = check_text("text", TextKind::Prose, &text, MAX_TEXT_CHARS, sign)?;
            match n.opinions.iter_mut().find(|o| o.author == actor.id) {
                Some(o) if o.signed_at.is_some() => return Err(LifecycleError::OpinionSigned),
                Some(o) => {
                    o.text = text;
                    o.updated_at = now;
                    o.signed_at = sign.then_some(now);
                }
                None => n.opinions.push(Opinion {
                    author: actor.id.clone(),
                    text,
                    updated_at: now,
                    signed_at: sign.then_some(now),
                    signature: None,
                }),
            }
        }
        Action::Plan { text } => {
            if !(actor.role == Role::Doctor && c.requester == actor.id) {
                return Err(forbidden());
            }
            if c.status != Ended {
                return Err(wrong_state());
            }
            if !c.opinions.iter().any(|o| o.signed_at.is_some()) {
                return Err(LifecycleError::NoSignedOpinion);
            }
            let text = check_text("text", TextKind::Prose, &text, MAX_TEXT_CHARS, true)?;
            n.plan = Some(Plan { author: actor.id.clone(), text, recorded_at: now });
            n.status = Reported;
        }
        Action::CreateGuestLink { id, label, expires_at } => {
            may_invite(c, actor)?;
            let label = check_text("label", TextKind::Name, &label, MAX_GUEST_LABEL_CHARS, false)?;
            let kind = LinkKind {
                field: "guests",
                count: c.guests.len(),
                max: MAX_GUEST_LINKS,
                too_many: "too_many_guest_links",
                max_hours: MAX_GUEST_LINK_HOURS,
                validity: "guest_link_validity",
                what: ("guest links", "a guest link"),
            };
            kind.check(expires_at, now)?;
            n.guests.push(GuestLink {
                id,
                label,
                created_by: actor.id.clone(),
                created_at: now,
                expires_at,
                revoked_at: None,
                used_at: None,
                guest_name: None,
            });
        }
        Action::RevokeGuestLink { id } => {
            may_invite(c, actor)?;
            let Some(g) = n.guests.iter_mut().find(|g| g.id == id) else {
                return Err(LifecycleError::GuestLink { code: "guest_link_not_found", message: "no such guest link" });
            };
            // Revoking twice is revoking once: the first time stays on record.
            g.revoked_at.get_or_insert(now);
        }
        Action::CreateEncoder { id, label, expires_at } => {
            may_host(c, actor, "encoder_create")?;
            let label = check_text("label", TextKind::Name, &label, MAX_ENCODER_LABEL_CHARS, true)?;
            let kind = LinkKind {
                field: "encoders",
                count: c.encoders.len(),
                max: MAX_ENCODERS,
                too_many: "too_many_encoder_links",
                max_hours: MAX_ENCODER_HOURS,
                validity: "encoder_validity",
                what: ("encoder credentials", "an encoder credential"),
            };
            kind.check(expires_at, now)?;
            n.encoders.push(EncoderLink {
                id,
                label,
                created_by: actor.id.clone(),
                created_at: now,
                expires_at,
                revoked_at: None,
            });
        }
        Action::RevokeEncoder { id } => {
            may_host(c, actor, "encoder_revoke")?;
            let Some(e) = n.encoders.iter_mut().find(|e| e.id == id) else {
                return Err(LifecycleError::NotFound {
                    code: "encoder_not_found",
                    message: "no such encoder credential",
                });
            };
            e.revoked_at.get_or_insert(now);
        }
        Action::GuestArrived { id, name } => {
            // The guest is no actor with a role: the signed link stood for them (api::guests).
            if c.status.is_closed() {
                return Err(wrong_state());
            }
            let name = check_text("name", TextKind::Name, &name, MAX_GUEST_NAME_CHARS, true)?;
            let Some(g) = n.guests.iter_mut().find(|g| g.id == id) else {
                return Err(LifecycleError::GuestLink {
                    code: "guest_link_invalid",
                    message: "this guest link is not valid",
                });
            };
            if g.revoked_at.is_some() {
                return Err(LifecycleError::GuestLink {
                    code: "guest_link_revoked",
                    message: "this guest link has been withdrawn",
                });
            }
            if now >= g.expires_at {
                return Err(LifecycleError::GuestLink {
                    code: "guest_link_expired",
                    message: "this guest link has expired",
                });
            }
            if g.used_at.is_some() {
                return Err(LifecycleError::GuestLink {
                    code: "guest_link_used",
                    message: "this guest link has been used already; ask for a new one",
                });
            }
            g.used_at = Some(now);
            g.guest_name = Some(name);
        }
        Action::Attach { attachment } => {
            may_attach(c, actor)?;
            if c.attachments.len() >= MAX_ATTACHMENTS {
                return Err(invalid(
                    "too_many_attachments",
                    "attachments",
                    json!({ "max": MAX_ATTACHMENTS }),
                    format!("at most {MAX_ATTACHMENTS} attachments per consultation"),
                ));
            }
            n.attachments.push(attachment);
        }
        Action::Referral { step, site } => super::referral::apply(&mut n, actor, site.as_ref(), step, now)?,
        Action::Settings { auto_admit } => {
            let its_coordinator = coordinator && c.coordinator.as_ref().is_none_or(|k| *k == actor.id);
            if !(its_coordinator || c.is_host(&actor.id)) {
                return Err(forbidden());
            }
            if c.status.is_closed() {
                return Err(wrong_state());
            }
            n.auto_admit = auto_admit;
        }
    }
    n.version = c.version + 1;
    n.updated_at = now;
    Ok(n)
}

/// Whether `actor` may attach files to `c` now: anyone taking part who is not only watching
/// (a viewer), and the consultation centre, from the request until it is reported; never to
/// one rejected, cancelled or not held.
pub fn may_attach(c: &Consultation, actor: &Actor) -> Result<(), LifecycleError> {
    let part = c.involves(&actor.id) || actor.role == Role::Coordinator;
    if !part || actor.role == Role::Viewer {
        return Err(LifecycleError::Forbidden { action: "attach" });
    }
    if matches!(c.status, Status::Rejected | Status::Cancelled | Status::NoShow) {
        return Err(LifecycleError::WrongState { action: "attach", status: c.status.as_str() });
    }
    Ok(())
}

/// Whether `actor` may invite people into `c` now: its coordinator (any coordinator while it
/// has none; another centre's coordinator may see it but not let people, itself included,
/// in), a host or the requester, while people still meet in it.
/// Hosts of the consultation and its coordinator, while it is not over: who may let an
/// encoder publish into the room.
pub fn may_host(c: &Consultation, actor: &Actor, action: &'static str) -> Result<(), LifecycleError> {
    let its_coordinator = actor.role == Role::Coordinator && c.coordinator.as_ref().is_none_or(|k| *k == actor.id);
    if !(its_coordinator || c.is_host(&actor.id)) {
        return Err(LifecycleError::Forbidden { action });
    }
    still_open(c, action)
}

/// Hosts, the coordinator and the requesting doctor, while it is not over.
pub fn may_invite(c: &Consultation, actor: &Actor) -> Result<(), LifecycleError> {
    if c.requester == actor.id {
        return still_open(c, "invite");
    }
    may_host(c, actor, "invite")
}

fn still_open(c: &Consultation, action: &'static str) -> Result<(), LifecycleError> {
    if c.status.is_closed() {
        return Err(LifecycleError::WrongState { action, status: c.status.as_str() });
    }
    Ok(())
}

/// The limits of a kind of link a consultation hands out (guest links, encoder
/// credentials): how many it may list and how long one may stay valid, each refused with the
/// kind's own code.
struct LinkKind {
    field: &'static str,
    count: usize,
    max: usize,
    too_many: &'static str,
    max_hours: i64,
    validity: &'static str,
    /// (plural, singular with its article) for the messages.
    what: (&'static str, &'static str),
}

impl LinkKind {
    fn check(&self, expires_at: Timestamp, now: Timestamp) -> Result<(), LifecycleError> {
        let (many, one) = self.what;
        // `self::invalid`: the codes are the kinds' (error.rs's code scan lists them by hand).
        if self.count >= self.max {
            return Err(self::invalid(
                self.too_many,
                self.field,
                json!({ "max": self.max }),
                format!("at most {} {many} per consultation", self.max),
            ));
        }
        let longest = now + SignedDuration::from_hours(self.max_hours);
        if expires_at <= now || expires_at > longest {
            return Err(self::invalid(
                self.validity,
                "valid_hours",
                json!({ "min": 1, "max": self.max_hours }),
                format!("{one} is valid for 1 to {} hours", self.max_hours),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn actor(id: &str, role: Role) -> Actor {
        Actor { id: UserId(id.into()), role }
    }
    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }
    fn request(urgency: Urgency) -> Consultation {
        let input = RequestInput {
            kind: Kind::Consultation,
            specialty: "cardiology".into(),
            urgency,
            summary: "chest pain".into(),
            wished: None,
            recording: RecordingPolicy::Off,
            participants: vec![],
            patient: None,
        };
        new_request(&actor("doc", Role::Doctor), None, input, t("2026-01-01T00:00:00Z"), &Rules::default()).unwrap()
    }
    fn accept(c: &Consultation) -> Consultation {
        let a = Action::Accept {
            specialists: vec![UserId("spec".into())],
            start: t("2026-01-02T06:00:00Z"),
            duration_minutes: 30,
            recording: None,
        };
        apply(c, &actor("coord", Role::Coordinator), a, t("2026-01-01T01:00:00Z"), &Rules::default()).unwrap()
    }

    /// Issue 13 item 7: every coordinator may see a consultation, but only its own may invite.
    #[test]
    fn another_coordinator_may_not_invite_itself() {
        let r = Rules::default();
        let at = t("2026-01-01T02:00:00Z");
        let invite = |who: &str| Action::Invite { participants: vec![UserId(who.into())] };
        let scheduled = accept(&request(Urgency::Routine));
        let other = actor("coord-west", Role::Coordinator);
        assert_eq!(
            apply(&scheduled, &other, invite("coord-west"), at, &r),
            Err(LifecycleError::Forbidden { action: "invite" })
        );
        let own = apply(&scheduled, &actor("coord", Role::Coordinator), invite("trainee"), at, &r).unwrap();
        assert_eq!(own.participants, vec![UserId("trainee".into())]);
        // While the request waits for the centre, it has no coordinator yet: any may invite.
        let waiting = request(Urgency::Routine);
        assert!(apply(&waiting, &other, invite("trainee"), at, &r).is_ok());
    }

    /// Issue 13 item 8: a start in year 9999 once overflowed the slot arithmetic and panicked.
    #[test]
    fn a_start_beyond_two_years_is_refused_with_its_own_error() {
        let r = Rules::default();
        let requested = request(Urgency::Routine);
        let coord = actor("coord", Role::Coordinator);
        let now = t("2026-01-01T01:00:00Z");
        for start in ["9999-12-30T00:00:00Z", "2028-01-04T00:00:00Z"] {
            let a = Action::Accept {
                specialists: vec![UserId("spec".into())],
                start: t(start),
                duration_minutes: 480,
                recording: None,
            };
            assert_eq!(apply(&requested, &coord, a, now, &r), Err(LifecycleError::StartTooFar), "{start}");
        }
        let mut far = accept(&requested);
        far.start = Some(t("9999-12-30T21:45:00Z"));
        assert_eq!(far.slot(), None, "a slot past the calendar's end is none, not a panic");
    }

    #[test]
    fn whole_lifecycle_reaches_reported() {
        let r = Rules::default();
        let c = accept(&request(Urgency::Routine));
        assert_eq!(c.status, Status::Scheduled);
        assert_eq!(c.version, 2);
        let spec = actor("spec", Role::Specialist);
        let c = apply(&c, &spec, Action::Start, t("2026-01-02T05:50:00Z"), &r).unwrap();
        assert_eq!(c.status, Status::Live);
        let c = apply(&c, &spec, Action::End, t("2026-01-02T06:30:00Z"), &r).unwrap();
        let c = apply(&c, &spec, Action::Opinion { text: "draft".into(), sign: false }, t("2026-01-02T06:31:00Z"), &r)
            .unwrap();
        let doc = actor("doc", Role::Doctor);
        assert_eq!(
            apply(&c, &doc, Action::Plan { text: "plan".into() }, t("2026-01-02T06:32:00Z"), &r),
            Err(LifecycleError::NoSignedOpinion)
        );
        let c = apply(&c, &spec, Action::Opinion { text: "final".into(), sign: true }, t("2026-01-02T06:33:00Z"), &r)
            .unwrap();
        assert_eq!(
            apply(&c, &spec, Action::Opinion { text: "changed".into(), sign: true }, t("2026-01-02T06:34:00Z"), &r),
            Err(LifecycleError::OpinionSigned)
        );
        let c = apply(&c, &doc, Action::Plan { text: "plan".into() }, t("2026-01-02T06:35:00Z"), &r).unwrap();
        assert_eq!(c.status, Status::Reported);
        assert_eq!(c.version, 7);
    }

    #[test]
    fn emergency_is_created_live() {
        let c = request(Urgency::Emergency);
        assert_eq!(c.status, Status::Live);
        assert!(c.is_host(&UserId("doc".into())));
        assert!(c.holds_booking());
    }

    #[test]
    fn each_step_names_the_roles_that_may_take_it() {
        let r = Rules::default();
        let now = t("2026-01-01T01:00:00Z");
        let c = request(Urgency::Routine);
        let accept = Action::Accept {
            specialists: vec![UserId("spec".into())],
            start: t("2026-01-02T06:00:00Z"),
            duration_minutes: 30,
            recording: None,
        };
        for role in [Role::Doctor, Role::Specialist, Role::Viewer, Role::Admin] {
            assert_eq!(
                apply(&c, &actor("x", role), accept.clone(), now, &r),
                Err(LifecycleError::Forbidden { action: "accept" })
            );
        }
        // Another doctor may not cancel someone else's request.
        assert!(matches!(
            apply(&c, &actor("other", Role::Doctor), Action::Cancel { reason: "x".into() }, now, &r),
            Err(LifecycleError::Forbidden { .. })
        ));
        let s = super::tests::accept(&c);
        // A second specialist who does not lead may not start; the lead may, but not too early.
        assert!(matches!(
            apply(&s, &actor("other", Role::Specialist), Action::Start, now, &r),
            Err(LifecycleError::Forbidden { .. })
        ));
        assert!(matches!(
            apply(&s, &actor("spec", Role::Specialist), Action::Start, now, &r),
            Err(LifecycleError::TooEarly { .. })
        ));
        // Opinion only by an assigned specialist, not before the call.
        assert!(matches!(
            apply(&s, &actor("spec", Role::Specialist), Action::Opinion { text: "x".into(), sign: true }, now, &r),
            Err(LifecycleError::WrongState { .. })
        ));
    }

    #[test]
    fn bad_slots_are_refused() {
        let r = Rules::default();
        let c = request(Urgency::Routine);
        let co = actor("coord", Role::Coordinator);
        let now = t("2026-01-01T01:00:00Z");
        let past = Action::Accept {
            specialists: vec![UserId("s".into())],
            start: t("2025-12-31T00:00:00Z"),
            duration_minutes: 30,
            recording: None,
        };
        assert!(matches!(apply(&c, &co, past, now, &r), Err(LifecycleError::Invalid { .. })));
        let long = Action::Accept {
            specialists: vec![UserId("s".into())],
            start: t("2026-01-02T00:00:00Z"),
            duration_minutes: 10_000,
            recording: None,
        };
        assert!(matches!(apply(&c, &co, long, now, &r), Err(LifecycleError::Invalid { .. })));
        let none = Action::Accept {
            specialists: vec![],
            start: t("2026-01-02T00:00:00Z"),
            duration_minutes: 30,
            recording: None,
        };
        assert!(matches!(apply(&c, &co, none, now, &r), Err(LifecycleError::Invalid { .. })));
        let twice = Action::Accept {
            specialists: vec![UserId("s".into()), UserId("s".into())],
            start: t("2026-01-02T00:00:00Z"),
            duration_minutes: 30,
            recording: None,
        };
        assert!(matches!(apply(&c, &co, twice, now, &r), Err(LifecycleError::Invalid { .. })));
    }
}
