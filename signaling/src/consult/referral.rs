//! Two-way referral (双向转诊, issue 15): after a consultation the requesting doctor refers the
//! patient up to another hospital; that site's coordinator accepts with a date or declines
//! with a reason; the admission and the discharge are recorded; the discharge sends a referral
//! back down to the county doctor with instructions, which the doctor receives.
//!
//! ```text
//! up:   requested ──accept──▶ accepted ──admit──▶ admitted ──discharge──▶ discharged
//!           │  └──decline──▶ declined        (a `down` referral is made)
//!           └──cancel──▶ cancelled (the referring doctor, before admission)
//! down: requested ──receive──▶ received
//! ```
//!
//! A referral lives in its consultation's record (its patient, its material, its audit and
//! version), as a pure function of the record like the rest of the lifecycle.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::lifecycle::{Actor, LifecycleError, check_text, invalid};
use super::model::{Consultation, Role, Status, Urgency};
use crate::ids::SiteId;
use crate::text::TextKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the requesting site to a higher-level hospital.
    Up,
    /// Back to the requesting site after the stay.
    Down,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefStatus {
    Requested,
    Accepted,
    Declined,
    Cancelled,
    Admitted,
    Discharged,
    /// A referral down, taken in by the county doctor.
    Received,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Referral {
    pub id: String,
    pub direction: Direction,
    pub from_site: SiteId,
    pub to_site: SiteId,
    /// The department asked for (心内科…).
    pub department: String,
    /// Why (up), or the instructions for the county doctor (down): patient data.
    pub reason: String,
    pub urgency: Urgency,
    pub status: RefStatus,
    pub requested_by: crate::ids::UserId,
    pub requested_at: Timestamp,
    /// The up referral a down one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<crate::ids::UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<Timestamp>,
    /// The day the patient is expected (accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_date: Option<Date>,
    /// Why it was declined or cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admitted_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discharged_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<Timestamp>,
}

/// One step of a referral, as the API hands it to the lifecycle.
#[derive(Clone, Debug)]
pub enum Step {
    /// The requesting doctor refers the patient up; `id` is fresh, made by the caller.
    Refer {
        id: String,
        to_site: SiteId,
        department: String,
        reason: String,
        urgency: Urgency,
    },
    Accept {
        referral: String,
        planned_date: Date,
    },
    Decline {
        referral: String,
        reason: String,
    },
    Cancel {
        referral: String,
        reason: String,
    },
    Admit {
        referral: String,
    },
    /// The stay ends; `down` is the fresh id of the referral back down.
    Discharge {
        referral: String,
        instructions: String,
        down: String,
    },
    Receive {
        referral: String,
    },
}

impl Step {
    pub fn name(&self) -> &'static str {
        match self {
            Step::Refer { .. } => "referral_request",
            Step::Accept { .. } => "referral_accept",
            Step::Decline { .. } => "referral_decline",
            Step::Cancel { .. } => "referral_cancel",
            Step::Admit { .. } => "referral_admit",
            Step::Discharge { .. } => "referral_discharge",
            Step::Receive { .. } => "referral_receive",
        }
    }

    pub fn target(&self) -> &str {
        match self {
            Step::Refer { id, .. } => id,
            Step::Accept { referral, .. }
            | Step::Decline { referral, .. }
            | Step::Cancel { referral, .. }
            | Step::Admit { referral }
            | Step::Discharge { referral, .. }
            | Step::Receive { referral } => referral,
        }
    }
}

pub const MAX_REFERRALS: usize = 20;
pub const MAX_DEPARTMENT_CHARS: usize = 60;
pub const MAX_REASON_CHARS: usize = 4000;

fn wrong(step: &'static str, status: RefStatus) -> LifecycleError {
    invalid(
        "referral_invalid_state",
        "referral",
        json!({ "status": status }),
        format!("{step} is not possible while the referral is {status:?}"),
    )
}

/// Applies `step` by `actor` (at `site`) to the referrals of `c` (already a copy).
pub fn apply(
    c: &mut Consultation,
    actor: &Actor,
    site: Option<&SiteId>,
    step: Step,
    now: Timestamp,
) -> Result<(), LifecycleError> {
    let name = step.name();
    let forbidden = || LifecycleError::Forbidden { action: name };
    // The receiving site's coordinator decides and records the stay.
    let receiving = |r: &Referral| actor.role == Role::Coordinator && site == Some(&r.to_site);
    // Only a referral up is decided, admitted and discharged; one back down is received.
    let up_only = |r: &Referral| if r.direction == Direction::Up { Ok(()) } else { Err(wrong(name, r.status)) };
    match step {
        Step::Refer { id, to_site, department, reason, urgency } => {
            if !(actor.role == Role::Doctor && c.requester == actor.id) {
                return Err(forbidden());
            }
            if !matches!(c.status, Status::Live | Status::Ended | Status::Reported) {
                return Err(LifecycleError::WrongState { action: name, status: c.status.as_str() });
            }
            let from_site = c.requester_site.clone().ok_or_else(forbidden)?;
            if from_site == to_site {
                return Err(invalid("referral_same_site", "to_site", json!({}), "a referral goes to another site"));
            }
            if c.referrals.len() >= MAX_REFERRALS {
                return Err(invalid(
                    "too_many_referrals",
                    "referrals",
                    json!({ "max": MAX_REFERRALS }),
                    format!("at most {MAX_REFERRALS} referrals per consultation"),
                ));
            }
            let open = c.referrals.iter().any(|r| {
                r.direction == Direction::Up
                    && matches!(r.status, RefStatus::Requested | RefStatus::Accepted | RefStatus::Admitted)
            });
            if open {
                return Err(invalid(
                    "referral_open",
                    "referrals",
                    json!({}),
                    "this patient already has a referral under way",
                ));
            }
            c.referrals.push(Referral {
                id,
                direction: Direction::Up,
                from_site,
                to_site,
                department: check_text("department", TextKind::Name, &department, MAX_DEPARTMENT_CHARS, true)?,
                reason: check_text("reason", TextKind::Prose, &reason, MAX_REASON_CHARS, true)?,
                urgency,
                status: RefStatus::Requested,
                requested_by: actor.id.clone(),
                requested_at: now,
                answers: None,
                decided_by: None,
                decided_at: None,
                planned_date: None,
                refusal: None,
                admitted_at: None,
                discharged_at: None,
                received_at: None,
            });
        }
        Step::Accept { referral, planned_date } => {
            let r = find(c, &referral)?;
            if !receiving(r) {
                return Err(forbidden());
            }
            up_only(r)?;
            if r.status != RefStatus::Requested {
                return Err(wrong(name, r.status));
            }
            if planned_date < now.to_zoned(jiff::tz::TimeZone::UTC).date().saturating_sub(jiff::Span::new().days(1)) {
                return Err(invalid("planned_date_in_past", "planned_date", json!({}), "the planned date has passed"));
            }
            let r = find_mut(c, &referral)?;
            r.status = RefStatus::Accepted;
            r.planned_date = Some(planned_date);
            r.decided_by = Some(actor.id.clone());
            r.decided_at = Some(now);
        }
        Step::Decline { referral, reason } => {
            let r = find(c, &referral)?;
            if !receiving(r) {
                return Err(forbidden());
            }
            up_only(r)?;
            if r.status != RefStatus::Requested {
                return Err(wrong(name, r.status));
            }
            let reason = check_text("reason", TextKind::Prose, &reason, MAX_REASON_CHARS, true)?;
            let r = find_mut(c, &referral)?;
            r.status = RefStatus::Declined;
            r.refusal = Some(reason);
            r.decided_by = Some(actor.id.clone());
            r.decided_at = Some(now);
        }
        Step::Cancel { referral, reason } => {
            let r = find(c, &referral)?;
            if r.requested_by != actor.id {
                return Err(forbidden());
            }
            if !matches!(r.status, RefStatus::Requested | RefStatus::Accepted) || r.direction != Direction::Up {
                return Err(wrong(name, r.status));
            }
            let reason = check_text("reason", TextKind::Prose, &reason, MAX_REASON_CHARS, true)?;
            let r = find_mut(c, &referral)?;
            r.status = RefStatus::Cancelled;
            r.refusal = Some(reason);
        }
        Step::Admit { referral } => {
            let r = find(c, &referral)?;
            if !receiving(r) {
                return Err(forbidden());
            }
            up_only(r)?;
            if r.status != RefStatus::Accepted {
                return Err(wrong(name, r.status));
            }
            let r = find_mut(c, &referral)?;
            r.status = RefStatus::Admitted;
            r.admitted_at = Some(now);
        }
        Step::Discharge { referral, instructions, down } => {
            let r = find(c, &referral)?;
            if !receiving(r) {
                return Err(forbidden());
            }
            up_only(r)?;
            if r.status != RefStatus::Admitted {
                return Err(wrong(name, r.status));
            }
            let instructions = check_text("instructions", TextKind::Prose, &instructions, MAX_REASON_CHARS, true)?;
            let back = Referral {
                id: down,
                direction: Direction::Down,
                from_site: r.to_site.clone(),
                to_site: r.from_site.clone(),
                department: r.department.clone(),
                reason: instructions,
                urgency: Urgency::Routine,
                status: RefStatus::Requested,
                requested_by: actor.id.clone(),
                requested_at: now,
                answers: Some(r.id.clone()),
                decided_by: None,
                decided_at: None,
                planned_date: None,
                refusal: None,
                admitted_at: None,
                discharged_at: None,
                received_at: None,
            };
            let r = find_mut(c, &referral)?;
            r.status = RefStatus::Discharged;
            r.discharged_at = Some(now);
            c.referrals.push(back);
        }
        Step::Receive { referral } => {
            let r = find(c, &referral)?;
            // The county doctor who asked for the consultation takes the patient back.
            if !(r.direction == Direction::Down && c.requester == actor.id) {
                return Err(forbidden());
            }
            if r.status != RefStatus::Requested {
                return Err(wrong(name, r.status));
            }
            let r = find_mut(c, &referral)?;
            r.status = RefStatus::Received;
            r.received_at = Some(now);
        }
    }
    Ok(())
}

fn not_found() -> LifecycleError {
    LifecycleError::NotFound { code: "referral_not_found", message: "no such referral" }
}

fn find<'a>(c: &'a Consultation, id: &str) -> Result<&'a Referral, LifecycleError> {
    c.referrals.iter().find(|r| r.id == id).ok_or_else(not_found)
}

fn find_mut<'a>(c: &'a mut Consultation, id: &str) -> Result<&'a mut Referral, LifecycleError> {
    c.referrals.iter_mut().find(|r| r.id == id).ok_or_else(not_found)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ids::UserId;

    #[test]
    fn a_referral_back_down_is_received_not_decided() {
        let mut c = crate::store::contract::scheduled(&UserId("doc".into()), &[], 0, 30);
        let county = SiteId("county".into());
        c.referrals.push(Referral {
            id: "d1".into(),
            direction: Direction::Down,
            from_site: SiteId("city".into()),
            to_site: county.clone(),
            department: "心内科".into(),
            reason: "复查".into(),
            urgency: Urgency::Routine,
            status: RefStatus::Requested,
            requested_by: UserId("coord".into()),
            requested_at: Timestamp::UNIX_EPOCH,
            answers: None,
            decided_by: None,
            decided_at: None,
            planned_date: None,
            refusal: None,
            admitted_at: None,
            discharged_at: None,
            received_at: None,
        });
        let county_coord = Actor { id: UserId("cc".into()), role: Role::Coordinator };
        let accept = Step::Accept { referral: "d1".into(), planned_date: jiff::civil::date(2031, 1, 1) };
        let err = apply(&mut c.clone(), &county_coord, Some(&county), accept, Timestamp::UNIX_EPOCH).unwrap_err();
        assert!(matches!(err, LifecycleError::Invalid { code: "referral_invalid_state", .. }), "{err:?}");
        let doc = Actor { id: UserId("doc".into()), role: Role::Doctor };
        apply(&mut c, &doc, None, Step::Receive { referral: "d1".into() }, Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!(c.referrals[0].status, RefStatus::Received);
    }
}
